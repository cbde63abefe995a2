-- A backup child killed with SIGKILL at random points (several seeds), then
-- run again: every file present and verified by MD5; no file under its
-- final name that is not whole at the moment of the kill; and nothing
-- downloaded twice -- the second run fetches exactly the bytes that were
-- neither in a finished file nor in a .part (the .part files are resumed
-- with Range), so that both runs together fetch at most the bytes that
-- were in flight at the kill (under one file per job) more than the total.
local cjson = require "cjson"
local core = require "smugoauth.core"
local sandbox = require "support.sandbox"
local files = require "support.files"
local proc = require "support.proc"
local bk = require "support.backup"

local IMAGES, SIZE, JOBS = 80, 150000, 4

describe("api:backup killed with -9, then run again", function()
  local sb, api, truth, by_name, total, at, ats

  setup(function()
    sb = sandbox.start { fixture = "bench", images = IMAGES, image_size = SIZE }
    local client
    at, ats, client = sb:authorize()
    api = client:session(at, ats)
    truth = bk.truth(api, sb)
    by_name, total = {}, 0
    for _, t in pairs(truth) do
      by_name[t.name] = t
      total = total + t.size
    end
  end)

  teardown(function()
    if api then api:close() end
    if sb then sb:stop() end
  end)

  for seed = 1, 4 do
    it(("seed %d: whole files only, all verified after the re-run, nothing fetched twice"):format(seed), function()
      math.randomseed(seed)
      local root = files.tmpdir()
      local dest = root .. "/dest"
      -- downloads of 0.1 s each, four at a time: the run would take about 2 s
      sb:mode { rate = SIZE * 10 }
      sb:reset_stats()
      local job = root .. "/job.json"
      files.write_file(job, cjson.encode { origin = sb.origin, key = sb.key, secret = sb.secret, token = at,
                                           token_secret = ats, dest = dest, jobs = JOBS })
      local h = proc.spawn({ "lua5.4", "spec/support/backup_child.lua", job }, { lines = 1, timeout = 30 })
      assert.equal("STARTED", h.line, h:stderr())
      local delay = math.random() * 1.5
      require("socket").sleep(delay)
      h:signal("KILL")
      assert.equal(137, h:wait(), "killed, not finished: " .. h:stdout())
      h:close()
      local first = sb:stats().archive_bytes
      sb:mode {}
      -- what the kill left: whole files under their names, .part files
      local list = bk.files(dest)
      local finals, parts, nparts = 0, 0, 0
      for _, f in ipairs(list) do
        local name = f:match("([^/]+)$")
        local p = dest .. "/" .. f
        if name:match("%.part$") then
          parts = parts + core.file_size(p)
          nparts = nparts + 1
        else
          local t = assert(by_name[name], f)
          assert.equal(t.size, core.file_size(p), f .. " is whole")
          assert.equal(t.md5, bk.md5(p), f .. " is whole")
          finals = finals + t.size
        end
      end
      assert(nparts <= JOBS)
      -- run again
      sb:reset_stats()
      local s = assert(api:backup { dest = dest, jobs = JOBS })
      assert.is_true(s.ok)
      assert.equal(IMAGES, bk.verify(dest, truth, true))
      local again = sb:stats().archive_bytes
      assert.equal(total - finals - parts, again,
        ("seed %d (killed after %.2f s): finals %d, .part %d (%d files)"):format(seed, delay, finals, parts, nparts))
      assert(first + again <= total + JOBS * SIZE,
        ("both runs fetched %d bytes for %d"):format(first + again, total))
      assert(s.adopted <= JOBS)
      assert.equal(IMAGES, s.saved + s.adopted + s.skipped)
      os.execute("rm -rf " .. proc.q(root))
    end)
  end
end)
