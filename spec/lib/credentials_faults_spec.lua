-- Stored credentials under faults: a child `lua5.4` saves new credentials
-- over old ones (client:save_credentials -> credentials.save ->
-- core.write_private -> so_priv_write: open and check the directory, then
-- relative to it a temporary file, fchmod, write, fsync, close, renameat,
-- and the directory's fsync) while strace's syscall tampering makes one step
-- fail or kills the process at it.
--
--   (a) `strace -e inject=SYSCALL:error=ERRNO:when=N`: save returns nil, err
--       (code "io", naming the path and the failing step, no secret), the
--       file on disk is byte for byte the old one, and no temporary file is
--       left behind. Faults the code is meant to absorb (EINTR on write, a
--       name collision for the temporary file, the best-effort directory
--       fsync) must end with the complete new file instead.
--   (b) `strace -e inject=SYSCALL:signal=SIGKILL:when=N` at every system call
--       from the start of the save to just after it: the file is always the
--       complete old one (killed up to and including the rename's entry) or
--       the complete new one (after it), never partial. A killed process
--       cannot clean up, so a temporary file is left behind when the kill
--       falls between its creation and the rename: it must be mode 0600.
--
-- N is found by a first, untampered run of the same child under strace (the
-- system calls of a run are deterministic), and every tampered run checks
-- in its own trace that the call tampered with is the intended one.
-- Needs strace (Debian package "strace") and ptrace permission.
local core = require "smugoauth.core"
local cjson = require "cjson.safe"

local CONSUMER_SECRET = "consumer-S3CRET-cf"
local OLD = { token = "old-token", secret = "old-S3CRET-" .. ("o"):rep(300), key = "k" }
local NEW_TOKEN = "new-token"
local NEW_SECRET = "new-S3CRET-" .. ("n"):rep(8000)   -- one write of ~8 KB
local SECRETS = { CONSUMER_SECRET, OLD.secret, NEW_SECRET, "S3CRET" }

local ERRNO_TEXT = {
  ENOSPC = "No space left on device", EIO = "Input/output error", EMFILE = "Too many open files",
  EXDEV = "Invalid cross-device link", EACCES = "Permission denied", EEXIST = "File exists",
  EPERM = "Operation not permitted", EDQUOT = "Disk quota exceeded", EFBIG = "File too large",
  EBUSY = "Device or resource busy", EROFS = "Read-only file system", ENFILE = "Too many open files in system",
  EINVAL = "Invalid argument",
}

local files = require "support.files"
local q, slurp = files.q, files.slurp


local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, how, code = p:close()
  return out, ok, how, code
end

local ROOT = (sh("pwd"):gsub("%s+$", ""))

-- The entries of dir, sorted.
local function ls(dir)
  local names = {}
  for name in sh("ls -A " .. q(dir)):gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

-- The system calls of an strace -o file: { {name =, line =, nth =}, ... } and
-- whether the process was killed by SIGKILL.
local function parse_trace(text)
  local calls, seen, killed = {}, {}, false
  for line in (text or ""):gmatch("[^\n]+") do
    local name = line:match("^%d+%s+([%w_]+)%(")
    if name then
      seen[name] = (seen[name] or 0) + 1
      calls[#calls + 1] = { name = name, line = line, nth = seen[name] }
    elseif line:find("+++ killed by SIGKILL +++", 1, true) then
      killed = true
    end
  end
  return calls, killed
end

-- Is the decoded text the complete new credentials file?
local function is_new(text)
  if not text or text:sub(-1) ~= "\n" then return false end
  local t = cjson.decode(text)
  return type(t) == "table" and t.token == NEW_TOKEN and t.secret == NEW_SECRET and t.key == "k"
end

describe("credentials under injected faults (strace)", function()
  local work, dir, path, script, old_text
  local plan                      -- system call indexes of the save, from an untampered run
  local counts = { errors = 0, absorbed = 0, kills = 0, leftovers = 0 }

  -- Run the child under strace with an optional -e inject=SPEC; returns the
  -- child's decoded report (nil when it died) and the trace's calls.
  local function run(inject, target)
    local trace = work .. "/trace.txt"
    os.remove(trace)
    local cmd = ("strace -f -qq -o %s %s lua5.4 %s %s 2>%s"):format(q(trace),
      inject and ("-e inject=" .. q(inject)) or "", q(script), q(target or path), q(work .. "/stderr"))
    local out = sh(cmd)
    local calls, killed = parse_trace(slurp(trace))
    return cjson.decode(out), calls, killed, slurp(work .. "/stderr")
  end

  -- Put the old file back (exact bytes, 0600) and remove anything else in dir.
  local function reset()
    os.execute("rm -rf " .. q(dir) .. " && mkdir -m 700 " .. q(dir))
    assert(core.write_private(path, old_text))
  end

  local function temps()
    local t = {}
    for _, name in ipairs(ls(dir)) do
      if name ~= "c.json" then t[#t + 1] = name end
    end
    return t
  end

  local function mode(p) return (core.file_mode(p)) end

  setup(function()
    local _, ok = sh("strace -V >/dev/null 2>&1")
    assert(ok, "strace is not installed: apt-get install -y strace (and add it to .ci/deps.sh)")
    local probe = sh("strace -qq -o /dev/null echo traced 2>&1")
    assert(probe == "traced\n", "strace cannot trace here (ptrace refused?): " .. probe)
    work = os.tmpname()
    os.remove(work)
    assert(core.mkdir_private(work))
    dir = work .. "/creds"
    path = dir .. "/c.json"
    script = work .. "/saver.lua"
    local f = assert(io.open(script, "w"))
    f:write(([[
package.path = %q .. "/lua/?.lua;" .. %q .. "/lua/?/init.lua;" .. package.path
package.cpath = %q .. "/build/?.so;" .. package.cpath
local cjson = require "cjson"
local smugoauth = require "smugoauth"
local c = smugoauth.new { key = "k", secret = %q }
local ok, err = c:save_credentials(%q, %q, arg[1])
io.stdout:write(cjson.encode { ok = ok == true, code = err and err.code, message = err and err.message,
  path = err and err.path, text = err and tostring(err) })
]]):format(ROOT, ROOT, ROOT, CONSUMER_SECRET, NEW_TOKEN, NEW_SECRET))
    f:close()
    old_text = assert(cjson.encode(OLD)) .. "\n"

    -- the untampered run: where each step of the save is
    reset()
    local report, calls = run()
    assert(report and report.ok, "the untampered save failed: " .. tostring(report and report.message))
    assert(is_new(slurp(path)), "the untampered save did not write the new file")
    plan = { calls = calls }
    for i, c in ipairs(calls) do
      if c.name == "mkdir" and not plan.first then plan.first = i end
      if plan.first and not plan.dir_open and c.name == "openat"
         and c.line:find('"' .. dir .. '"', 1, true) and c.line:find("O_DIRECTORY", 1, true) then
        plan.dir_open = i
      end
      if c.name == "openat" and c.line:find(".tmp-", 1, true) and not plan.tmp_open then plan.tmp_open = i end
      if plan.tmp_open and i > plan.tmp_open then
        local after_rename = plan.rename ~= nil
        if c.name == "fchmod" and not plan.fchmod then plan.fchmod = i end
        if c.name == "write" and not plan.write then plan.write = i end
        if c.name == "fsync" and not after_rename and not plan.fsync then plan.fsync = i end
        if c.name == "close" and not after_rename and not plan.close then plan.close = i end
        if c.name:match("^rename") and not plan.rename then plan.rename = i end
        if after_rename and c.name == "fsync" and not plan.dir_fsync then plan.dir_fsync = i end
        if plan.dir_fsync and c.name == "close" and not plan.dir_close then plan.dir_close = i end
      end
    end
    for _, k in ipairs { "first", "dir_open", "tmp_open", "fchmod", "write", "fsync", "close", "rename",
                         "dir_fsync", "dir_close" } do
      assert(plan[k], "no " .. k .. " step in the trace of a save")
    end
    assert(plan.first < plan.dir_open and plan.dir_open < plan.tmp_open and plan.tmp_open < plan.write
      and plan.write < plan.fsync and plan.fsync < plan.close and plan.close < plan.rename
      and plan.rename < plan.dir_fsync)
    -- the temporary file and the rename are relative to the directory's descriptor
    local dirfd = calls[plan.dir_open].line:match("= (%d+)$")
    assert(dirfd and calls[plan.tmp_open].line:find("openat(" .. dirfd .. ", ", 1, true),
      "the temporary file is not opened relative to the directory: " .. calls[plan.tmp_open].line)
    assert(calls[plan.rename].line:find('"c.json"', 1, true), calls[plan.rename].line)
    assert(calls[plan.dir_fsync].line:find("fsync(" .. dirfd .. ")", 1, true), calls[plan.dir_fsync].line)
  end)

  teardown(function()
    if work and work:match("^/tmp/") then os.execute("rm -rf " .. q(work)) end
    print(("\ncredentials_faults_spec: %d fault cases: %d injected errors reported as nil, err; " ..
      "%d absorbed (save succeeded); %d SIGKILLs (%d left a 0600 temporary file behind)")
      :format(counts.errors + counts.absorbed + counts.kills, counts.errors, counts.absorbed,
        counts.kills, counts.leftovers))
  end)

  -- The inject spec for the plan's step `step` (an index or a name in plan).
  local function at(step, action)
    local c = plan.calls[type(step) == "number" and step or plan[step]]
    return ("%s:%s:when=%d"):format(c.name, action, c.nth), c
  end

  -- The call the tampered trace marks INJECTED (error injection).
  local function injected(calls)
    for _, c in ipairs(calls) do
      if c.line:find("(INJECTED)", 1, true) then return c end
    end
  end

  describe("(a) a failing step: nil, err; the old file intact; no temporary file", function()
    local cases = {
      { "dir_open", "EMFILE", { "directory" } },
      { "dir_open", "EACCES", { "directory" } },
      { "tmp_open", "EMFILE", { "temporary file" } },
      { "tmp_open", "ENFILE", { "temporary file" } },
      { "tmp_open", "ENOSPC", { "temporary file" } },
      { "tmp_open", "EACCES", { "temporary file" } },
      { "tmp_open", "EEXIST", { "temporary file" }, "every" },     -- all 100 names taken
      { "fchmod", "EPERM", { "mode", "chmod", "permission" } },
      { "write", "ENOSPC", { "write" } },
      { "write", "EIO", { "write" } },
      { "write", "EDQUOT", { "write" } },
      { "write", "EFBIG", { "write" } },
      { "fsync", "EIO", { "fsync", "sync", "flush" } },
      { "fsync", "ENOSPC", { "fsync", "sync", "flush" } },
      { "close", "EIO", { "write", "close" } },
      { "rename", "EXDEV", { "replace", "rename" } },
      { "rename", "EACCES", { "replace", "rename" } },
      { "rename", "EBUSY", { "replace", "rename" } },
      { "rename", "EROFS", { "replace", "rename" } },
      { "rename", "ENOSPC", { "replace", "rename" } },
    }
    for _, case in ipairs(cases) do
      local step, errno, words, every = case[1], case[2], case[3], case[4]
      it(("%s fails with %s%s"):format(step, errno, every and " (every attempt)" or ""), function()
        reset()
        local spec, call = at(step, "error=" .. errno)
        if every then spec = spec .. "+" end
        local report, calls = run(spec)
        counts.errors = counts.errors + 1
        local hit = injected(calls)
        assert(hit and hit.name == call.name and hit.nth == call.nth,
          "strace did not tamper with the intended call " .. call.line)
        if step == "tmp_open" then assert.truthy(hit.line:find(".tmp-", 1, true)) end
        assert(report, "the child died instead of returning nil, err")
        assert.is_false(report.ok)
        assert.equal("io", report.code)
        assert.equal(path, report.path)
        local msg = report.message
        assert(msg:find(path, 1, true), "the message does not name the path: " .. msg)
        assert(msg:find(ERRNO_TEXT[errno], 1, true),
          "the message does not say " .. ERRNO_TEXT[errno] .. ": " .. msg)
        local named = false
        for _, w in ipairs(words) do named = named or msg:find(w, 1, true) ~= nil end
        assert(named, ("the message does not name the failing step (%s: one of %s): %s")
          :format(step, table.concat(words, ", "), msg))
        for _, s in ipairs(SECRETS) do
          assert(not report.text:find(s, 1, true), "secret in the error: " .. report.text)
        end
        assert.equal(old_text, slurp(path))
        assert.equal(tonumber("600", 8), mode(path))
        assert.same({}, temps())
      end)
    end

    it("the directory cannot be created: nil, err naming it; nothing created", function()
      local sub = dir .. "/sub"
      local target = sub .. "/c.json"
      reset()
      local _, calls = run(nil, target)               -- where the mkdir of sub is
      local n = 0
      for _, c in ipairs(calls) do
        if c.name == "mkdir" then n = n + 1 end
      end
      assert.truthy(calls[#calls] and n > 0)
      reset()
      local report, calls2 = run(("mkdir:error=ENOSPC:when=%d"):format(n), target)
      counts.errors = counts.errors + 1
      local hit = injected(calls2)
      assert(hit and hit.line:find('"' .. sub .. '"', 1, true), "not the mkdir of " .. sub)
      assert.is_false(report.ok)
      assert.equal("io", report.code)
      assert.truthy(report.message:find(sub, 1, true))
      assert.truthy(report.message:find("cannot create directory", 1, true))
      assert.truthy(report.message:find(ERRNO_TEXT.ENOSPC, 1, true))
      assert.is_nil(core.file_mode(sub))
      assert.equal(old_text, slurp(path))
    end)
  end)

  describe("(a) faults the save absorbs: the complete new file, no temporary file", function()
    it("a name collision for the temporary file (EEXIST once) is retried under a new name", function()
      reset()
      local report, calls = run((at("tmp_open", "error=EEXIST")))
      counts.absorbed = counts.absorbed + 1
      assert(report and report.ok, report and report.message)
      local names = {}
      for _, c in ipairs(calls) do
        local n = c.name == "openat" and c.line:match('"([^"]*%.tmp%-[^"]*)"')
        if n then names[#names + 1] = n end
      end
      assert.equal(2, #names)
      assert.are_not.equal(names[1], names[2])
      assert.is_true(is_new(slurp(path)))
      assert.same({}, temps())
    end)

    it("EINTR on write is retried", function()
      reset()
      local report, calls = run((at("write", "error=EINTR")))
      counts.absorbed = counts.absorbed + 1
      assert.truthy(injected(calls))
      assert(report and report.ok, report and report.message)
      assert.is_true(is_new(slurp(path)))
      assert.equal(tonumber("600", 8), mode(path))
      assert.same({}, temps())
    end)

    -- The rename has happened when the directory is fsync'd for durability;
    -- write_private ignores a failure there (documented: "not all
    -- filesystems allow it"), so save reports success with the new file in place.
    for _, case in ipairs { { "dir_fsync", "EIO" }, { "dir_fsync", "EINVAL" } } do
      it(case[1] .. " fails with " .. case[2] .. " after the rename: true, the new file", function()
        reset()
        local report, calls = run((at(case[1], "error=" .. case[2])))
        counts.absorbed = counts.absorbed + 1
        assert.truthy(injected(calls))
        assert(report and report.ok, report and report.message)
        assert.is_true(is_new(slurp(path)))
        assert.same({}, temps())
      end)
    end
  end)

  describe("(b) SIGKILL at every system call of the save", function()
    it("leaves the complete old file up to the rename, the complete new one after it", function()
      local last = plan.dir_close + 1
      assert.truthy(plan.calls[last], "nothing after the directory close")
      local seen_steps = {}
      for k = plan.first, last do
        reset()
        local spec, call = at(k, "signal=SIGKILL")
        local report, calls, killed = run(spec)
        counts.kills = counts.kills + 1
        local label = ("SIGKILL at #%d %s"):format(k, call.line)
        assert(killed and report == nil, label .. ": the child was not killed")
        local died = calls[#calls]
        assert(died and died.name == call.name and died.nth == call.nth and died.line:find("= ?", 1, true),
          label .. ": killed elsewhere: " .. tostring(died and died.line))
        seen_steps[call.name] = true
        local text = slurp(path)
        if k <= plan.rename then
          assert(text == old_text, label .. ": the file is not the complete old one")
        else
          assert(is_new(text), label .. ": the file is not the complete new one")
        end
        assert.equal(tonumber("600", 8), mode(path), label)
        local left = temps()
        if k > plan.tmp_open and k <= plan.rename then
          assert(#left == 1 and left[1]:match("^c%.json%.tmp%-%x+$"), label .. ": one temporary file expected")
          counts.leftovers = counts.leftovers + 1
          local tmp = dir .. "/" .. left[1]
          assert(mode(tmp) == tonumber("600", 8), label .. ": temporary file mode " .. ("%o"):format(mode(tmp)))
          local t = slurp(tmp)
          assert(t == "" or is_new(t), label .. ": temporary file is neither empty nor complete")
        else
          assert(#left == 0, label .. ": unexpected files " .. table.concat(left, " "))
        end
      end
      for _, name in ipairs { "mkdir", "openat", "fchmod", "write", "fsync", "close" } do
        assert.truthy(seen_steps[name], "no kill at " .. name)
      end
      assert.truthy(seen_steps[plan.calls[plan.rename].name])
    end)
  end)
end)
