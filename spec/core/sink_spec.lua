-- Response sinks of the C client: the request fields out, out_offset,
-- out_file, on_data, digest and sync, and the results written, size and
-- md5; core.commit, core.set_mtime, core.file_size. Every case runs twice:
-- through c:request (blocking) and through core.reactor (a loop's
-- transfer), which must behave the same. Server: spec/support/archive_server.py
-- on 127.0.0.1 (its /_files/ route: no signature needed), with its faults.
local core = require "smugoauth.core"
local archive = require "support.archive"
local files = require "support.files"
local proc = require "support.proc"

local hex = archive.hex
local slurp, write_file = files.slurp, files.write_file
local now = core.monotime

local function md5(s) return hex(core.digest("md5", s)) end

-- Deterministic bytes (n of them, varying with seed).
local function bytes(n, seed)
  local parts, x = {}, seed or 7
  local block = {}
  for i = 1, 4096 do
    x = (x * 1103515245 + 12345) % 2147483648
    block[i] = string.char(x % 256)
  end
  block = table.concat(block)
  local have = 0
  while have < n do
    local take = math.min(#block, n - have)
    parts[#parts + 1] = block:sub(1, take)
    have = have + take
    block = block:sub(2) .. block:sub(1, 1)
  end
  return table.concat(parts)
end

-- The descriptors of this process open on files under dir or on /dev/full
-- (sockets come and go with kept-alive connections: not counted).
local function nfds(dir)
  local p = assert(io.popen("ls -l /proc/" .. proc.my_pid() .. "/fd"))
  local n = 0
  for line in p:lines() do
    local target = line:match("%-> (.*)$")
    if target and (target == "/dev/full" or target:sub(1, #dir + 1) == dir .. "/") then n = n + 1 end
  end
  p:close()
  return n
end

-- c:request, as the blocking driver.
local function blocking(c, req)
  return c:request(req)
end

-- A reactor's transfer, waited for here: the same values as c:request
-- (raising what a callback raised, as smugoauth.loop's transfer does).
local function reactor(c, req)
  local r = assert(core.reactor())
  local id, msg, code = r:start(c, req)
  if not id then r:close() return nil, msg, code end
  local ids, res, deadline = {}, {}, now() + 60
  while true do
    local _, nd = assert(r:wait(0.5, nil, nil, ids, res))
    if nd > 0 then break end
    assert(now() < deadline, "the transfer did not finish in 60 s")
  end
  r:close()
  local x = res[1]
  assert.equal(id, ids[1])
  if x.raised ~= nil then error(x.raised, 0) end
  if x.error then return nil, x.error, x.code, x.written end
  return x
end

describe("core http client: response sinks", function()
  local a, dir, c
  local SIZE = 300000
  local data, data_md5

  setup(function()
    a = archive.start()
    data = bytes(SIZE)
    data_md5 = a:put("f.bin", data)
    a:put("empty.bin", "")
    dir = files.tmpdir()
    c = core.http_new { timeout = 10 }
  end)

  teardown(function()
    if c then c:close() end
    if a then a:stop() end
    if dir then os.execute("rm -rf " .. proc.q(dir)) end
  end)

  before_each(function() a:reset() end)

  for _, driver in ipairs { { "c:request", blocking }, { "a reactor's transfer", reactor } } do
    local name, run = driver[1], driver[2]
    describe("through " .. name, function()
      local n = 0
      local function path()
        n = n + 1
        return ("%s/%s-%d"):format(dir, name:gsub("%W", ""), n)
      end

      it("out: a 2xx body goes to the file, not into memory; written, size, md5", function()
        local p = path()
        local r = assert(run(c, { url = a:url("f.bin", "files"), out = p, digest = "md5" }))
        assert.equal(200, r.status)
        assert.equal("", r.body)
        assert.equal(SIZE, r.written)
        assert.equal(SIZE, r.size)
        assert.equal(data_md5, hex(r.md5))
        assert.equal(data, slurp(p))
        -- no digest asked: no md5
        r = assert(run(c, { url = a:url("f.bin", "files"), out = p }))
        assert.is_nil(r.md5)
        assert.equal(SIZE, r.size)
      end)

      it("an empty 2xx body makes an empty file (the old content dropped)", function()
        local p = path()
        write_file(p, "old content")
        local r = assert(run(c, { url = a:url("empty.bin", "files"), out = p, digest = "md5" }))
        assert.equal(0, r.written)
        assert.equal(0, r.size)
        assert.equal(md5(""), hex(r.md5))
        assert.equal("", slurp(p))
      end)

      it("another status's body is buffered as before and the file is left as it was", function()
        local p = path()
        write_file(p, "kept for a resume")
        local r = assert(run(c, { url = a:url("nope.bin", "files"), out = p, digest = "md5",
                                  out_offset = 4, headers = { "Range: bytes=4-" } }))
        assert.equal(404, r.status)
        assert.matches("Not Found", r.body)
        assert.equal(0, r.written)
        assert.is_nil(r.size)
        assert.is_nil(r.md5)
        assert.equal("kept for a resume", slurp(p))
        a:mode { status = 503, retry_after = 2 }
        r = assert(run(c, { url = a:url("f.bin", "files"), out = p }))
        assert.equal(503, r.status)
        assert.equal("fault 503", r.body)
        assert.equal("kept for a resume", slurp(p))
      end)

      it("out_offset: a 206 from there keeps those bytes (hashed first) and appends", function()
        local p = path()
        local N = 123457
        write_file(p, data:sub(1, N) .. "garbage past the offset")
        local seen = {}
        local r = assert(run(c, { url = a:url("f.bin", "files"), out = p, out_offset = N, digest = "md5",
                                  headers = { ("Range: bytes=%d-"):format(N) },
                                  on_progress = function(got, total) seen[#seen + 1] = { got, total } end }))
        assert.equal(206, r.status)
        assert.equal(SIZE - N, r.written)
        assert.equal(SIZE, r.size)
        assert.equal(data_md5, hex(r.md5))
        assert.equal(data, slurp(p))
        assert.equal(("bytes=%d-"):format(N), a:file_requests()[1].range)
        assert.equal(SIZE - N, a:file_requests()[1].sent)
        -- progress counts the file: from above the kept bytes up to its size
        assert(#seen >= 1)
        assert(seen[1][1] > N, "the first report counts the kept bytes")
        assert.same({ SIZE, SIZE }, seen[#seen])
        for i = 2, #seen do assert(seen[i][1] > seen[i - 1][1]) end
      end)

      it("out_offset: a 200 (Range ignored) starts the file over", function()
        local p = path()
        write_file(p, ("x"):rep(5000))
        a:mode { ignore_range = true }
        local r = assert(run(c, { url = a:url("f.bin", "files"), out = p, out_offset = 5000, digest = "md5",
                                  headers = { "Range: bytes=5000-" } }))
        assert.equal(200, r.status)
        assert.equal(SIZE, r.written)
        assert.equal(SIZE, r.size)
        assert.equal(data_md5, hex(r.md5))
        assert.equal(data, slurp(p))
      end)

      it("out_offset: a 206 that starts elsewhere fails with code range; the file is untouched", function()
        local p = path()
        write_file(p, data:sub(1, 1000))
        a:mode { bad_range = true }
        local r, msg, code = run(c, { url = a:url("f.bin", "files"), out = p, out_offset = 1000,
                                      headers = { "Range: bytes=1000-" } })
        assert.is_nil(r)
        assert.equal("range", code)
        assert.matches("does not continue at out_offset 1000 %(Content%-Range: bytes 0%-", msg)
        assert.equal(data:sub(1, 1000), slurp(p))
      end)

      it("a body that stops early: code network, the bytes received kept, in order", function()
        local p = path()
        a:mode { drop_after = 100000 }
        local r, msg, code, written = run(c, { url = a:url("f.bin", "files"), out = p, digest = "md5" })
        assert.is_nil(r)
        assert.equal("network", code)
        assert.matches("GET http://127.0.0.1:%d+/_files/f.bin", msg)
        assert.equal(100000, written)
        assert.equal(data:sub(1, 100000), slurp(p))
        -- and that is what a resume continues from
        r = assert(run(c, { url = a:url("f.bin", "files"), out = p, digest = "md5", out_offset = 100000,
                            headers = { "Range: bytes=100000-" } }))
        assert.equal(data_md5, hex(r.md5))
        assert.equal(data, slurp(p))
      end)

      it("a body without Content-Length ends with the connection", function()
        local p = path()
        a:mode { no_length = true }
        local r = assert(run(c, { url = a:url("f.bin", "files"), out = p, digest = "md5" }))
        assert.equal(SIZE, r.size)
        assert.equal(data_md5, hex(r.md5))
      end)

      it("on_data: the body in chunks, hashed; nothing in memory", function()
        local got, calls = {}, 0
        local r = assert(run(c, { url = a:url("f.bin", "files"), digest = "md5",
                                  on_data = function(chunk) calls = calls + 1 got[#got + 1] = chunk end }))
        assert.equal("", r.body)
        assert.equal(data, table.concat(got))
        assert(calls > 1)
        assert.equal(SIZE, r.written)
        assert.equal(SIZE, r.size)
        assert.equal(data_md5, hex(r.md5))
        -- another status: on_data is not called, the body is buffered
        calls = 0
        r = assert(run(c, { url = a:url("nope.bin", "files"), on_data = function() calls = calls + 1 end }))
        assert.equal(404, r.status)
        assert.equal(0, calls)
      end)

      it("on_data: an error it raises is raised by the request, which stops", function()
        local calls = 0
        assert.has_error(function()
          run(c, { url = a:url("f.bin", "files"),
                   on_data = function() calls = calls + 1 error("stop here", 0) end })
        end, "stop here")
        assert.equal(1, calls)
        local e = { code = "mine" }
        local ok, err = pcall(run, c, { url = a:url("f.bin", "files"), on_data = function() error(e) end })
        assert.is_false(ok)
        assert.equal(e, err)                             -- the very value
        -- the client still works
        assert.equal(200, assert(run(c, { url = a:url("f.bin", "files") })).status)
      end)

      it("on_data: it may not yield", function()
        local co = coroutine.wrap(function()
          return pcall(run, c, { url = a:url("f.bin", "files"), on_data = function() coroutine.yield("y") end })
        end)
        local ok, err = co()
        assert.is_false(ok)
        assert.matches("yield across a C%-call boundary", tostring(err))
      end)

      it("out_file: after what the handle holds; the handle stays usable", function()
        local p = path()
        local f = assert(io.open(p, "wb"))
        f:write("HEAD:")                                -- buffered in the handle: flushed first
        local r = assert(run(c, { url = a:url("f.bin", "files"), out_file = f, digest = "md5", sync = true }))
        f:write(":TAIL")
        f:close()
        assert.equal(SIZE, r.written)
        assert.equal(data_md5, hex(r.md5))
        assert.equal("HEAD:" .. data .. ":TAIL", slurp(p))
      end)

      it("out_file: a failed write is code io, the file closed", function()
        local f = assert(io.open("/dev/full", "wb"))
        local before = nfds(dir)
        local r, msg, code = run(c, { url = a:url("f.bin", "files"), out_file = f })
        assert.is_nil(r)
        assert.equal("io", code)
        assert.matches("out_file: write failed: No space left on device", msg)
        assert.equal(before, nfds(dir))
        f:close()
      end)

      it("out: what cannot be opened fails with code io before anything is sent", function()
        local fifo = path()
        assert(os.execute("mkfifo " .. proc.q(fifo)))
        local link = path()
        assert(os.execute("ln -s " .. proc.q(path()) .. " " .. proc.q(link)))
        local short = path()
        write_file(short, "abc")
        for _, case in ipairs {
          { dir .. "/no/such/dir/x", "cannot open: No such file or directory" },
          { dir, "cannot open: Is a directory" },
          { link, "cannot open: Too many levels of symbolic links" },   -- O_NOFOLLOW
          { fifo, "cannot open: No such device or address" },           -- no reader: it did not block
          { "/dev/null", "/dev/null: not a regular file" },
          { short, "holds 3 bytes, fewer than the 10 to keep", 10 },
        } do
          local r, msg, code = run(c, { url = a:url("f.bin", "files"), out = case[1], out_offset = case[3] })
          assert.is_nil(r, case[1])
          assert.equal("io", code)
          assert.matches(case[2], msg, 1, true)
        end
        assert.same({}, a:file_requests())
        assert.equal("abc", slurp(short))
      end)

      it("no descriptor is left open on any path", function()
        local p = path()
        local before = nfds(dir)
        a:mode { drop_after = 1000 }
        run(c, { url = a:url("f.bin", "files"), out = p, digest = "md5" })
        a:mode { bad_range = true }
        run(c, { url = a:url("f.bin", "files"), out = p, out_offset = 1000, headers = { "Range: bytes=1000-" } })
        a:mode { clear = true }
        run(c, { url = a:url("nope.bin", "files"), out = p })
        pcall(run, c, { url = a:url("f.bin", "files"), out = p, on_progress = function() error("x") end })
        run(c, { url = a:url("f.bin", "files"), out = p, sync = true, digest = "md5" })
        run(c, { url = "http://127.0.0.1:" .. proc.closed_port() .. "/x", out = p })
        assert.equal(before, nfds(dir))
      end)

      it("without timeout a download is not cut at the client's timeout, but a stall is", function()
        local slow = core.http_new { timeout = 1 }
        local p = path()
        a:mode { rate = 150000 }                        -- 300 kB at 150 kB/s: 2 s
        local t0 = now()
        local r = assert(run(slow, { url = a:url("f.bin", "files"), out = p, digest = "md5" }))
        assert(now() - t0 > 1.5, "it took longer than the client's timeout")
        assert.equal(data_md5, hex(r.md5))
        a:mode { rate = 10 }                            -- 1 kB, then nothing for 100 s
        t0 = now()
        local _, msg, code = run(slow, { url = a:url("f.bin", "files"), out = p })
        assert.equal("timeout", code, msg)
        assert(now() - t0 < 15, "a stall ends within a few seconds")
        -- an explicit timeout bounds the whole transfer
        a:mode { rate = 150000 }
        _, msg, code = run(c, { url = a:url("f.bin", "files"), out = p, timeout = 0.5 })
        assert.equal("timeout", code, msg)
        slow:close()
      end)
    end)
  end

  describe("misuse raises", function()
    it("names the option", function()
      local f = assert(io.open(dir .. "/m", "wb"))
      local closed = assert(io.open(dir .. "/m2", "wb"))
      closed:close()
      local url = a:url("f.bin", "files")
      for _, case in ipairs {
        { { url = url, out = dir .. "/x", on_data = print },
          "options 'out', 'out_file' and 'on_data' to 'request' exclude each other" },
        { { url = url, out_file = f, on_data = print }, "exclude each other" },
        { { url = url, out_offset = 3 }, "option 'out_offset' to 'request' needs 'out'" },
        { { url = url, out = dir .. "/x", out_offset = -1 },
          "bad option 'out_offset' to 'request' (an integer, 0 or more, expected)" },
        { { url = url, out = dir .. "/x", out_offset = 1.5 }, "an integer, 0 or more, expected" },
        { { url = url, digest = "md5" }, "option 'digest' to 'request' needs 'out', 'out_file' or 'on_data'" },
        { { url = url, out = dir .. "/x", digest = "sha1" }, "bad option 'digest' to 'request' (\"md5\" expected)" },
        { { url = url, on_data = print, sync = true }, "option 'sync' to 'request' needs 'out' or 'out_file'" },
        { { url = url, out_file = io.stdout.close },
          "bad option 'out_file' to 'request' (userdata expected, got function)" },
        { { url = url, out_file = c }, "bad option 'out_file' to 'request' (a file handle expected)" },
        { { url = url, out_file = closed }, "bad option 'out_file' to 'request' (the file is closed)" },
        { { url = url, out = dir .. "/x\0y" }, "bad option 'out' to 'request' (contains NUL)" },
        { { url = url, on_data = "f" }, "bad option 'on_data' to 'request' (function expected, got string)" },
      } do
        assert.has_error(function() c:request(case[1]) end, nil, case[2])
        local ok, err = pcall(c.request, c, case[1])
        assert.is_false(ok)
        assert.matches(case[2], err, 1, true)
        local r = assert(core.reactor())
        ok, err = pcall(r.start, r, c, case[1])
        r:close()
        assert.is_false(ok)
        assert.matches((case[2]:gsub("'request'", "'start'")), err, 1, true)
      end
      f:close()
    end)
  end)

  describe("reactor", function()
    it("refuses to start a transfer from a callback inside its wait (it would miss its Lua state)", function()
      local r = assert(core.reactor())
      local ok, err
      assert(r:start(c, { url = a:url("f.bin", "files"), on_data = function()
        if ok == nil then ok, err = pcall(r.start, r, c, { url = a:url("f.bin", "files"), on_data = print }) end
      end }))
      local ids, res, deadline = {}, {}, now() + 30
      repeat
        local _, nd = assert(r:wait(0.5, nil, nil, ids, res))
        assert(now() < deadline)
      until nd > 0
      assert.equal(200, res[1].status)
      assert.is_false(ok)
      assert.matches("reactor:start: not from inside reactor:wait", err, 1, true)
      assert.equal(0, r:active())
      r:close()
    end)
  end)

  describe("several at once on a reactor", function()
    it("streams each 2xx body to its own out", function()
      local r <close> = assert(core.reactor())
      local reqs = { { url = a:url("f.bin", "files"), out = dir .. "/m1", digest = "md5" },
                     { url = a:url("empty.bin", "files"), out = dir .. "/m2", digest = "md5" },
                     { url = a:url("nope.bin", "files"), out = dir .. "/m3" } }
      local index, res, left = {}, {}, #reqs
      for i, q in ipairs(reqs) do index[assert(r:start(c, q))] = i end
      local fds, evs, ids, out = {}, {}, {}, {}
      local deadline = now() + 10
      while left > 0 and now() < deadline do
        local _, nd = assert(r:wait(0.1, fds, evs, ids, out))
        for k = 1, nd do
          res[index[ids[k]]] = out[k]
          left = left - 1
        end
      end
      assert.equal(0, left)
      assert.equal(data_md5, hex(res[1].md5))
      assert.equal(data, slurp(dir .. "/m1"))
      assert.equal(0, res[2].size)
      assert.equal(404, res[3].status)
      assert.equal(0, res[3].written)
    end)
  end)

  describe("commit, set_mtime, file_size", function()
    it("commit renames the part over the final name, durably", function()
      local part, final = dir .. "/c.part", dir .. "/c"
      write_file(part, "done")
      write_file(final, "an older copy")
      assert.is_true(core.commit(part, final))
      assert.equal("done", slurp(final))
      assert.is_nil(slurp(part))
      write_file(part, "again")
      assert.is_true(core.commit(part, final, true))     -- synced already: no fsync of it
      assert.equal("again", slurp(final))
    end)

    it("commit names the step that failed", function()
      local ok, msg, code = core.commit(dir .. "/missing.part", dir .. "/m")
      assert.is_nil(ok)
      assert.equal("io", code)
      assert.matches("missing.part: cannot open to fsync: No such file or directory", msg, 1, true)
      ok, msg, code = core.commit(dir .. "/missing.part", dir .. "/m", true)
      assert.is_nil(ok)
      assert.equal("io", code)
      assert.matches("cannot rename " .. dir .. "/missing.part to " .. dir .. "/m: No such file", msg, 1, true)
      write_file(dir .. "/p.part", "x")
      ok, msg = core.commit(dir .. "/p.part", dir .. "/no/such/dir/p", true)
      assert.is_nil(ok)
      assert.equal("x", slurp(dir .. "/p.part"))
      assert.matches("cannot rename", msg, 1, true)
      assert.has_error(function() core.commit(dir .. "/a\0b", "x") end)
    end)

    it("set_mtime sets the modification time, fractions kept", function()
      local p = dir .. "/t"
      write_file(p, "x")
      assert.is_true(core.set_mtime(p, 1234567890.25))
      local out = assert(io.popen("stat -c %.Y " .. proc.q(p))):read("a")
      assert.matches("^1234567890%.25", out)
      assert.is_true(core.set_mtime(p, -86400.5))
      out = assert(io.popen("stat -c %Y " .. proc.q(p))):read("a")
      assert.equal("-86401", out:match("%S+"))
      local ok, msg, code = core.set_mtime(dir .. "/none", 1)
      assert.is_nil(ok)
      assert.equal("io", code)
      assert.matches("none: cannot set its modification time: No such file", msg, 1, true)
      assert.has_error(function() core.set_mtime(p, 0 / 0) end)
      assert.has_error(function() core.set_mtime(p, "soon") end)
    end)

    it("file_size: the size of a regular file; missing; not a regular file", function()
      write_file(dir .. "/s", "12345")
      assert.equal(5, core.file_size(dir .. "/s"))
      local n, msg, code = core.file_size(dir .. "/nothing")
      assert.is_nil(n)
      assert.equal("missing", code)
      assert.matches("nothing: cannot stat", msg, 1, true)
      n, msg, code = core.file_size(dir)
      assert.is_nil(n)
      assert.equal("io", code)
      assert.matches("not a regular file", msg, 1, true)
      assert(os.execute("ln -sf " .. proc.q(dir .. "/s") .. " " .. proc.q(dir .. "/sl")))
      assert.equal("io", select(3, core.file_size(dir .. "/sl")))
    end)
  end)
end)
