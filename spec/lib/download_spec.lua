-- api:download (smugoauth.download) against spec/support/archive_server.py:
-- an archive host on 127.0.0.1 that checks the OAuth signature (oauthlib),
-- honours Range, and drops connections, ignores Range or lies about the MD5
-- on demand. Streaming in constant memory, resume after a drop and after a
-- kill -9, start over when the server cannot resume, checksum failures,
-- origins, signatures, file handles and callbacks, and the same behaviour
-- inside a loop task as outside one.
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"
local loop = require "smugoauth.loop"
local errors = require "smugoauth.errors"
local archive = require "support.archive"
local files = require "support.files"
local proc = require "support.proc"

local hex = archive.hex
local slurp, write_file = files.slurp, files.write_file
local SLOW = tonumber(os.getenv("SMUGOAUTH_SLOW") or "") or 1

-- n random bytes in the archive's file name (made by the system: big
-- files are not built in Lua); returns the file's MD5 (hex).
local function random_file(a, name, n)
  local p = a.dir .. "/" .. name
  assert(os.execute(("head -c %d /dev/urandom > %s"):format(n, proc.q(p))))
  return hex((core.digest_file("md5", p))), slurp(p)
end

describe("api:download", function()
  local a, api, dir
  local SIZE = 3 * 1024 * 1024 + 17
  local data, data_md5

  setup(function()
    a = archive.start()
    data_md5, data = random_file(a, "f.bin", SIZE)
    api = a:session()
  end)

  teardown(function()
    if api then api:close() end
    if a then a:stop() end
  end)

  before_each(function()
    a:reset()
    dir = files.tmpdir()
  end)

  after_each(function()
    os.execute("rm -rf " .. proc.q(dir))
  end)

  -- The image table the API would give for a file of the archive.
  local function image(name)
    local r = assert(api:get("/api/v2/image/" .. name .. "-0"))
    return r:json().Response.Image
  end

  describe("streams", function()
    it("an image's original to path: .part, verified, renamed; signed for the archive", function()
      local img = image("f.bin")
      a:reset()
      local p = dir .. "/photo.jpg"
      local r = assert(api:download(img, p))
      assert.equal(p, r.path)
      assert.equal(SIZE, r.size)
      assert.equal(data_md5, r.md5)
      assert.equal(SIZE, r.written)
      assert.equal(0, r.resumed)
      assert.equal(1, r.attempts)
      assert.equal(200, r.status)
      assert.equal(data, slurp(p))
      assert.is_nil(slurp(p .. ".part"))
      local reqs = a:file_requests()
      assert.equal(1, #reqs)
      assert.is_true(reqs[1].signed)
      assert.equal("/_archive/f.bin", reqs[1].path)
    end)

    it("an API URI of an image, and an absolute URL with the expected MD5 and size given", function()
      local r = assert(api:download("/api/v2/image/f.bin-0", dir .. "/a"))
      assert.equal(data_md5, r.md5)
      r = assert(api:download(a:url("f.bin"), dir .. "/b", { md5 = data_md5:upper(), size = SIZE }))
      assert.equal(data_md5, r.md5)
      assert.equal(data, slurp(dir .. "/b"))
      -- a URL and nothing to check it against: still saved, its MD5 reported
      r = assert(api:download(a:url("f.bin"), dir .. "/c"))
      assert.equal(data_md5, r.md5)
    end)

    it("50 MB in constant memory: the peak grows far less than the file (and would by all of it in memory)", function()
      local n = 50 * 1024 * 1024
      local md5 = random_file(a, "big.bin", n)
      local function child(what, mode)
        local h = proc.spawn({ "lua5.4", "spec/support/download_child.lua", a.origin, what, dir .. "/big", mode },
                             { lines = 1, timeout = 20 })
        local code = h:wait(120 * SLOW)
        local out = h:stdout()
        h:close()
        assert.equal(0, code, out)
        local before, after = out:match("HWM (%d+)\nHWM (%d+)")
        return tonumber(before), tonumber(after), out
      end
      local before, after, out = child("/api/v2/image/big.bin-0")
      assert.matches("DONE " .. n .. " " .. md5 .. " " .. n, out, 1, true)
      local growth = (after - before) * 1024
      assert(growth < 8 * 1024 * 1024, ("the peak grew by %d bytes for a %d-byte download"):format(growth, n))
      assert.equal(n, core.file_size(dir .. "/big"))
      -- the control: read into memory, the same file takes at least its size
      before, after = child(a:url("big.bin"), "memory")
      assert((after - before) * 1024 >= n, "an in-memory read shows up in the peak")
    end)

    it("reports progress: received bytes of the file, and its size", function()
      local seen = {}
      assert(api:download(image("f.bin"), dir .. "/p", {
        on_progress = function(got, total) seen[#seen + 1] = { got, total } end }))
      assert(#seen >= 2)
      assert.same({ SIZE, SIZE }, seen[#seen])
      for i = 2, #seen do assert(seen[i][1] > seen[i - 1][1]) end
      -- no size known and none sent: total is nil
      a:mode { no_length = true }
      seen = {}
      assert(api:download(a:url("f.bin"), dir .. "/q", {
        on_progress = function(got, total) seen[#seen + 1] = { got, total } end }))
      assert.same({ SIZE }, seen[#seen])
    end)

    it("sets the modification time when asked", function()
      local p = dir .. "/m"
      assert(api:download(image("f.bin"), p, { mtime = 1500000000 }))
      local out = assert(io.popen("stat -c %Y " .. proc.q(p))):read("a")
      assert.equal("1500000000", out:match("%S+"))
    end)
  end)

  describe("resumes", function()
    it("after a drop mid-body: the retry asks for the rest with Range and gets a 206", function()
      local N = 1000000
      a:mode { drop_after = N }
      local p = dir .. "/r"
      local r = assert(api:download(image("f.bin"), p))
      assert.equal(data_md5, r.md5)
      assert.equal(data, slurp(p))
      assert.equal(2, r.attempts)
      assert.equal(N, r.resumed)
      assert.equal(SIZE, r.written)                    -- N, then SIZE - N
      local reqs = a:file_requests()
      assert.equal(2, #reqs)
      assert.is_nil(reqs[1].range)
      assert.equal(N, reqs[1].sent)
      assert.is_true(reqs[1].dropped)
      assert.equal("bytes=" .. N .. "-", reqs[2].range)
      assert.equal(206, reqs[2].status)
      assert.equal(SIZE - N, reqs[2].sent)
      assert.is_true(reqs[2].signed)
    end)

    it("again and again while each try makes progress, beyond the policy's attempts", function()
      a:mode { drop_after = 700000, drop_count = 4 }
      local r = assert(api:download(image("f.bin"), dir .. "/x", { retry = { attempts = 2, base = 0.01 } }))
      assert.equal(5, r.attempts)
      assert.equal(data_md5, r.md5)
      local reqs = a:file_requests()
      assert.equal(5, #reqs)
      for i = 2, 5 do assert.equal("bytes=" .. (700000 * (i - 1)) .. "-", reqs[i].range) end
    end)

    it("gives up when tries make no progress: the .part stays for the next call", function()
      local p = dir .. "/g"
      write_file(p .. ".part", data:sub(1, 5000))
      a:mode { status = 503, status_count = 3 }
      local r, err = api:download(image("f.bin"), p, { retry = { attempts = 3, base = 0.01 } })
      assert.is_nil(r)
      assert.equal("http", err.code)
      assert.equal(503, err.status)
      assert.equal(3, err.attempts)
      assert.equal(data:sub(1, 5000), slurp(p .. ".part"))
      assert.is_nil(slurp(p))
      r = assert(api:download(image("f.bin"), p))
      assert.equal(5000, r.resumed)
      assert.equal(data, slurp(p))
    end)

    it("after kill -9 of a process mid-download: the next download continues and verifies", function()
      a:mode { rate = 1000000 }                         -- about 3 s for the file
      local p = dir .. "/k"
      local h = proc.spawn({ "lua5.4", "spec/support/download_child.lua", a.origin, "/api/v2/image/f.bin-0", p },
                           { lines = 1, timeout = 20 })
      local have = files.wait_for(function()
        local n = core.file_size(p .. ".part")
        return n and n >= 300000 and n
      end, 20 * SLOW)
      assert(have, "the child saved part of the file")
      h:signal("KILL")
      assert.equal(128 + 9, h:wait(10))
      h:close()
      local kept = core.file_size(p .. ".part")
      assert(kept >= have and kept < SIZE, "a partial .part: " .. tostring(kept))
      assert.equal(data:sub(1, kept), slurp(p .. ".part"))      -- only right bytes, in order
      assert.is_nil(slurp(p))                                   -- nothing under the final name
      a:reset()
      local r = assert(api:download(image("f.bin"), p))
      assert.equal(kept, r.resumed)
      assert.equal(SIZE - kept, r.written)
      assert.equal(data_md5, r.md5)
      assert.equal(data, slurp(p))
      local reqs = a:file_requests()
      assert.equal(1, #reqs)
      assert.equal("bytes=" .. kept .. "-", reqs[1].range)
    end)

    it("a .part that is whole already (stopped before the rename) is verified and renamed, nothing sent", function()
      local p = dir .. "/w"
      write_file(p .. ".part", data)
      local r = assert(api:download(image("f.bin"), p))
      assert.equal(0, r.written)
      assert.equal(SIZE, r.resumed)
      assert.same({}, a:file_requests())
      assert.equal(data, slurp(p))
      assert.is_nil(slurp(p .. ".part"))
    end)

    it("a server that ignores Range: starts over with its 200, and the file is still right", function()
      local p = dir .. "/i"
      write_file(p .. ".part", data:sub(1, 100000))
      a:mode { ignore_range = true }
      local r = assert(api:download(image("f.bin"), p))
      assert.equal(0, r.resumed)
      assert.equal(SIZE, r.written)
      assert.equal(data, slurp(p))
      local reqs = a:file_requests()
      assert.equal(1, #reqs)
      assert.equal("bytes=100000-", reqs[1].range)
      assert.equal(200, reqs[1].status)
      assert.equal(SIZE, reqs[1].sent)
    end)

    it("a 206 from the wrong offset, or a 416: start over at once", function()
      local p = dir .. "/b"
      write_file(p .. ".part", data:sub(1, 4096))
      a:mode { bad_range = true }
      local r = assert(api:download(image("f.bin"), p, { retry = false }))
      assert.equal(data, slurp(p))
      local reqs = a:file_requests()
      assert.equal(2, #reqs)
      assert.equal("bytes=4096-", reqs[1].range)
      assert.is_nil(reqs[2].range)
      assert.equal(2, r.attempts)
      -- a .part longer than the file (the size not known): 416, then the whole file
      a:reset()
      write_file(p .. ".part", data .. "more")
      r = assert(api:download(a:url("f.bin"), p, { md5 = data_md5, retry = false }))
      assert.equal(2, r.attempts)
      assert.equal(data, slurp(p))
      reqs = a:file_requests()
      assert.equal(416, reqs[1].status)
      assert.equal(200, reqs[2].status)
    end)

    it("a .part whose bytes are wrong fails the MD5: started over once from nothing, then right", function()
      local p = dir .. "/c"
      write_file(p .. ".part", ("\0"):rep(200000))
      local r = assert(api:download(image("f.bin"), p))
      assert.equal(data, slurp(p))
      assert.equal(0, r.resumed)
      local reqs = a:file_requests()
      assert.equal(2, #reqs)
      assert.equal("bytes=200000-", reqs[1].range)
      assert.is_nil(reqs[2].range)
    end)
  end)

  describe("refuses", function()
    it("an MD5 mismatch: code checksum, no .part, no file", function()
      a:mode { lie_md5 = true }
      local p = dir .. "/l"
      local r, err = api:download(image("f.bin"), p)
      assert.is_nil(r)
      assert.equal("checksum", err.code)
      assert.matches("got MD5 " .. data_md5 .. ", not the ", err.message, 1, true)
      assert.equal(data_md5, err.md5)
      assert.is_nil(slurp(p .. ".part"))
      assert.is_nil(slurp(p))
      assert.is_true(errors.is(err))
      -- and a size mismatch
      a:mode { clear = true, lie_size = true }
      r, err = api:download(image("f.bin"), p)
      assert.is_nil(r)
      assert.equal("checksum", err.code)
      assert.matches(SIZE .. " bytes, not the " .. (SIZE + 1) .. " reported", err.message, 1, true)
      assert.is_nil(slurp(p .. ".part"))
      assert.is_nil(slurp(p))
    end)

    it("an origin that is not a download origin: code config, nothing sent", function()
      local other = "http://localhost:" .. a.port .. "/_archive/f.bin"   -- the same server, another origin
      local r, err = api:download(other, dir .. "/o")
      assert.is_nil(r)
      assert.equal("config", err.code)
      assert.matches("is not under one of the client's download_origins", err.message, 1, true)
      r, err = api:download({ ArchivedUri = "https://evil.example/x.jpg", ArchivedMD5 = data_md5,
                              ArchivedSize = SIZE }, dir .. "/o")
      assert.is_nil(r)
      assert.equal("config", err.code)
      assert.same({}, a:file_requests())
      assert.is_nil(slurp(dir .. "/o.part"))
      -- listed: then it is signed for and sent to
      local api2 = a:session { download_origins = { "http://localhost:" .. a.port } }
      assert(api2:download(other, dir .. "/o"))
      assert.is_true(a:file_requests()[1].signed)
      -- and the archive's own origin is no longer one
      r, err = api2:download(a:url("f.bin"), dir .. "/o2")
      assert.is_nil(r)
      assert.equal("config", err.code)
      api2:close()
    end)

    it("download_origins: origins only; plain http beyond loopback needs insecure_http", function()
      local function new(o, insecure)
        return smugoauth.new { key = "k", secret = "s", download_origins = o, insecure_http = insecure }
      end
      assert.has_error(function() new { "https://a.example/path" } end,
        'smugoauth.new: download_origins[1] must be an http(s) origin without a path (got "https://a.example/path")')
      assert.has_error(function() new { "ftp://a.example" } end)
      assert.has_error(function() new {} end, "smugoauth.new: download_origins must be a non-empty array of origins")
      assert.has_error(function() new { x = "https://a.example" } end)
      local ok, err = pcall(new, { "http://photos.example" })
      assert.is_false(ok)
      assert.matches("plain http to a host that is not loopback", err)
      assert.same({ "http://photos.example" }, new({ "http://photos.example" }, true).download_origins)
      assert.same({ "https://photos.smugmug.com", "https://api.smugmug.com" },
        smugoauth.new({ key = "k", secret = "s" }).download_origins)
    end)

    it("an unsigned request gets 401 from the archive; a download signed with the wrong secret too", function()
      local c = core.http_new()
      local raw = assert(c:request { url = a:url("f.bin") })
      assert.equal(401, raw.status)
      c:close()
      local bad = a:session(nil, "not-the-token-secret")
      local p = dir .. "/u"
      local r, err = bad:download(a:url("f.bin"), p)
      assert.is_nil(r)
      assert.equal(401, err.status)
      assert.equal("oauth", err.code)
      assert.is_nil(slurp(p .. ".part"))
      assert.is_nil(slurp(p))
      assert.not_matches("not%-the%-token%-secret", tostring(err))
      bad:close()
      for _, req in ipairs(a:file_requests()) do
        assert.is_false(req.signed)
        assert.equal(0, req.sent)
      end
    end)

    it("a video still processing: code processing; a video's largest rendition otherwise", function()
      a:mode { video = true, processing = "f.bin" }
      local img = image("f.bin")
      assert.is_true(img.IsVideo)
      assert.is_true(img.Processing)
      local r, err = api:download(img, dir .. "/v")      -- nothing asked: the image says so
      assert.is_nil(r)
      assert.equal("processing", err.code)
      img.Processing = false                              -- a stale listing: !largestvideo says 404
      r, err = api:download(img, dir .. "/v")
      assert.is_nil(r)
      assert.equal("processing", err.code)
      a:mode { processing = "none" }
      img = image("f.bin")
      r = assert(api:download(img, dir .. "/v"))
      assert.equal(data_md5, r.md5)
      assert.equal(data, slurp(dir .. "/v"))
      local paths = {}
      for _, req in ipairs(a:stats().requests) do paths[#paths + 1] = ("%s %d"):format(req.path, req.status) end
      assert.same({ "/api/v2/image/f.bin-0 200", "/api/v2/image/f.bin-0!largestvideo 404",
                    "/api/v2/image/f.bin-0 200", "/api/v2/image/f.bin-0!largestvideo 200",
                    "/_archive/f.bin 200" }, paths)
    end)

    it("misuse raises", function()
      local img = { ArchivedUri = a:url("f.bin") }
      for _, case in ipairs {
        { function() api:download(nil, "x") end, "download: an image table, an API URI or an http(s) URL expected" },
        { function() api:download("ftp://x", "x") end, "an image table, an API URI or an http(s) URL expected" },
        { function() api:download(img) end, "download: give exactly one of path, opts.to and opts.on_data" },
        { function() api:download(img, "x", { on_data = print }) end, "give exactly one of" },
        { function() api:download(img, "x", { nope = 1 }) end, "download: unknown option 'nope'" },
        { function() api:download(img, "x", { md5 = "abc" }) end, "download: md5 must be 32 hex digits" },
        { function() api:download(img, "x", { size = -1 }) end, "download: size must be an integer, 0 or more" },
        { function() api:download(img, { to = io.stdout, mtime = 1 }) end, "mtime must be seconds, and needs a path" },
        { function() api:download(img, "") end, "download: path must be a non-empty string without NUL" },
        { function() api:download(img, { to = "f" }) end, "download: option 'to' must be userdata (got string)" },
      } do
        local ok, err = pcall(case[1])
        assert.is_false(ok)
        assert.matches(case[2], err, 1, true)
      end
      assert.same({}, a:file_requests())
    end)
  end)

  describe("to a file handle or a callback", function()
    it("to = a file handle: after what it holds, verified; no .part", function()
      local p = dir .. "/h"
      local f = assert(io.open(p, "wb"))
      f:write("<<")
      local r = assert(api:download(image("f.bin"), { to = f }))
      f:write(">>")
      f:close()
      assert.equal(SIZE, r.size)
      assert.equal(data_md5, r.md5)
      assert.is_nil(r.path)
      assert.equal("<<" .. data .. ">>", slurp(p))
      assert.is_nil(slurp(p .. ".part"))
    end)

    it("on_data: the body in chunks, verified", function()
      local got = {}
      local r = assert(api:download(image("f.bin"), { on_data = function(s) got[#got + 1] = s end }))
      assert.equal(data, table.concat(got))
      assert.equal(data_md5, r.md5)
      a:mode { lie_md5 = true }
      local r2, err = api:download(image("f.bin"), { on_data = function() end })
      assert.is_nil(r2)
      assert.equal("checksum", err.code)
      assert.matches("the bytes were delivered already", err.message, 1, true)
    end)

    it("bytes a handle or a callback got are never sent again: no retry after them", function()
      a:mode { drop_after = 100000 }
      local got = 0
      local r, err = api:download(image("f.bin"), { on_data = function(s) got = got + #s end })
      assert.is_nil(r)
      assert.equal("network", err.code)
      assert.equal(100000, err.written)
      assert.equal(100000, got)
      assert.equal(1, #a:file_requests())
      -- before any byte, a retry is fine
      a:mode { status = 503 }
      got = 0
      r = assert(api:download(image("f.bin"), { on_data = function(s) got = got + #s end }))
      assert.equal(SIZE, got)
      assert.equal(2, r.attempts)
    end)
  end)

  describe("in a loop task and blocking", function()
    it("the same results, requests and resume; other tasks run meanwhile", function()
      local function scenario(rate)
        a:reset()
        a:mode { drop_after = 1500000, rate = rate }
        local p = dir .. "/s" .. tostring(loop.current() ~= nil)
        local r = assert(api:download(image("f.bin"), p))
        local reqs = a:file_requests()
        return { size = r.size, md5 = r.md5, written = r.written, resumed = r.resumed, attempts = r.attempts,
                 status = r.status, ranges = { reqs[1].range or "none", reqs[2].range },
                 same = slurp(p) == data }
      end
      local outside = scenario()
      local ticks = 0
      local inside = smugoauth.run(function()
        local stop = false
        local ticker = loop.spawn(function()
          while not stop do loop.sleep(0.005) ticks = ticks + 1 end
        end)
        local res = scenario(4000000)                   -- long enough for the ticker to tick
        stop = true
        ticker:join()
        return res
      end)
      assert.same(outside, inside)
      assert.is_true(inside.same)
      assert.same({ "none", "bytes=1500000-" }, inside.ranges)
      assert(ticks > 5, "another task ran while the download yielded: " .. ticks)
    end)

    it("several at once in tasks, each verified", function()
      for i = 1, 4 do a:put("s" .. i .. ".bin", data:sub(i, 200000 * i)) end
      local results = smugoauth.run(function()
        local out = {}
        local tasks = {}
        for i = 1, 4 do
          tasks[i] = loop.spawn(function()
            out[i] = assert(api:download(image("s" .. i .. ".bin"), dir .. "/s" .. i))
          end)
        end
        for i = 1, 4 do assert(tasks[i]:join()) end
        return out
      end)
      for i = 1, 4 do
        assert.equal(data:sub(i, 200000 * i), slurp(dir .. "/s" .. i))
        assert.equal(hex(core.digest("md5", data:sub(i, 200000 * i))), results[i].md5)
      end
    end)
  end)
end)
