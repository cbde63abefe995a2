-- The libcurl client of the C core: core.http_new, c:request, c:close, and the
-- same transfers run concurrently on the loop's reactor (core.reactor, r:start).
-- Talks only to spec/support/echo_server.py instances started here on
-- 127.0.0.1 (plain and TLS with a throw-away PKI) and killed in teardown.
local core = require "smugoauth.core"
local cjson = require "cjson"
local socket = require "socket"

local PYTHON = "/usr/bin/python3"
local SERVER = "spec/support/echo_server.py"

local files = require "support.files"
local proc = require "support.proc"
local q, slurp, files_write = proc.q, files.slurp, files.write_file

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function md5(s) return hex(core.digest("md5", s)) end

-- Run the request tables reqs with client c's settings on reactor r (the
-- loop's C half: one multi handle, its connections shared), all at once:
-- their results in input order (a result as c:request gives, or {error =,
-- code =}).
local function on_reactor(r, c, reqs)
  local index, results, left = {}, {}, #reqs
  for i, req in ipairs(reqs) do index[assert(r:start(c, req))] = i end
  local fds, evs, ids, res = {}, {}, {}, {}
  for _ = 1, 1000 do
    if left == 0 then break end
    local _, ndone = assert(r:wait(0.1, fds, evs, ids, res))
    for k = 1, ndone do
      results[index[ids[k]]] = res[k]
      left = left - 1
    end
  end
  assert(left == 0, "the reactor's transfers ended")
  return results
end

-- Start echo_server.py, or the Python script at path script (args: extra
-- command line); wait at most 10 s for its "PORT n" line.
-- Returns { port = n, out = its stdout file, stop = function }.
local function start_server(args, script)
  local h = proc.spawn(PYTHON .. " " .. q(script or SERVER) .. " " .. (args or ""),
                       { expect = "^PORT %d+$", timeout = 10 })
  return { pid = h.pid, port = h.port, out = h.out, stop = function() h:close() end }
end

-- A keep-alive server that answers the first request on each connection
-- ("ok", with Content-Length) and closes the connection, unanswered, when a
-- second request arrives on it: every reuse of a connection then dies and
-- libcurl retries the request on a fresh one.
local DROPPER = [[
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
print("PORT %d" % s.getsockname()[1], flush=True)
def serve(c):
    f = c.makefile("rb")
    n = 0
    while f.readline():
        while f.readline() not in (b"\r\n", b"\n", b""):
            pass
        n += 1
        if n > 1:
            break
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c.close()
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
]]

-- A keep-alive server that answers GETs and, for any other method, reads the
-- whole request and closes the connection without a byte of answer. It
-- prints "SEEN <METHOD>" for every request it read.
local POSTDROP = [[
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
print("PORT %d" % s.getsockname()[1], flush=True)
lock = threading.Lock()
def serve(c):
    f = c.makefile("rb")
    while True:
        line = f.readline()
        if not line:
            break
        method, length = line.split(b" ")[0].decode(), 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        f.read(length)
        with lock:
            print("SEEN %s" % method, flush=True)
        if method != "GET":
            break
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    f.close()
    c.close()
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
]]

local closed_port = proc.closed_port    -- a port nothing listens on

local function header(res, name)
  for _, h in ipairs(res.headers) do
    if h[1]:lower() == name:lower() then return h[2] end
  end
end

-- The echo document's request headers as name (lower-cased) -> value.
local function echoed(res)
  local doc = cjson.decode(res.body)
  local hs = {}
  for _, h in ipairs(doc.headers) do hs[h[1]:lower()] = h[2] end
  doc.h = hs
  return doc
end

-- A file of n KiB of varied bytes; returns its path and contents' md5.
local function make_file(kib)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  local parts = {}
  for i = 1, 1016 do parts[i] = string.char((i * 7) % 256) end
  local block = table.concat(parts)
  for i = 1, kib do f:write(("%08d"):format(i), block) end
  f:close()
  return path, md5(slurp(path))
end

describe("core http client", function()
  local plain, pki
  local tls = {}
  local servers = {}

  local function url(path) return "http://127.0.0.1:" .. plain.port .. path end
  local function surl(name, path) return "https://127.0.0.1:" .. tls[name].port .. (path or "/echo") end

  setup(function()
    plain = start_server()
    servers[#servers + 1] = plain
    local p = assert(io.popen("sh spec/support/mkcerts.sh"))
    pki = p:read("l")
    p:close()
    assert(pki and slurp(pki .. "/ca.pem"), "mkcerts.sh failed")
    for _, name in ipairs { "server", "wronghost", "expired", "untrusted" } do
      tls[name] = start_server(("--cert %s --key %s"):format(
        q(pki .. "/" .. name .. ".pem"), q(pki .. "/" .. name .. ".key")))
      servers[#servers + 1] = tls[name]
    end
  end)

  teardown(function()
    for _, s in ipairs(servers) do s.stop() end
    if pki and pki:match("smugoauth%-pki") then os.execute("rm -rf " .. q(pki)) end
  end)

  it("keeps its connections close-on-exec: a program started meanwhile inherits none", function()
    -- the socket inodes a process holds: "socket:[N]" links under /proc/PID/fd
    local function sockets(pid)
      local p = assert(io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null"))
      local set = {}
      for inode in p:read("a"):gmatch("socket:%[(%d+)%]") do set[inode] = true end
      p:close()
      return set
    end
    local me = proc.my_pid()
    local before = sockets(me)
    local c = core.http_new()
    assert.equal(200, assert(c:request { url = url("/echo") }).status)
    -- the TCP connection kept for the next request (libcurl's own wakeup
    -- socketpair of a multi handle is not reachable through its API)
    local tcp = slurp("/proc/net/tcp") .. (slurp("/proc/net/tcp6") or "")
    local kept = {}
    for inode in pairs(sockets(me)) do
      if not before[inode] and tcp:find(" " .. inode .. " ", 1, true) then kept[#kept + 1] = inode end
    end
    assert(#kept > 0, "the connection is kept for the next request")
    local p = assert(io.popen("sh -c 'ls -l /proc/$$/fd'"))  -- the child lists its own
    local child = p:read("a")
    p:close()
    c:close()
    assert.matches("0 %->", child)
    for _, inode in ipairs(kept) do
      assert.is_nil(child:find("socket:[" .. inode .. "]", 1, true), "the child holds our connection")
    end
  end)

  describe("http_new", function()
    it("makes a client with defaults and with every option", function()
      local c = core.http_new()
      assert.matches("^smugoauth%.Http %(", tostring(c))
      c:close()
      c = core.http_new { ca_file = "/dev/null", timeout = 1.5, connect_timeout = 0.5,
                          max_body = 10, user_agent = "x/1" }
      c:close()
    end)

    it("rejects unknown options and wrong types, naming the field", function()
      assert.has_error(function() core.http_new { bogus = 1 } end,
        "unknown option 'bogus' to 'http_new'")
      assert.has_error(function() core.http_new { verify = false } end,
        "unknown option 'verify' to 'http_new'")
      assert.has_error(function() core.http_new { timeout = "x" } end,
        "bad option 'timeout' to 'http_new' (number expected, got string)")
      assert.has_error(function() core.http_new { ca_file = 1 } end,
        "bad option 'ca_file' to 'http_new' (string expected, got number)")
      assert.has_error(function() core.http_new { user_agent = false } end,
        "bad option 'user_agent' to 'http_new' (string expected, got boolean)")
      assert.has_error(function() core.http_new { max_body = -1 } end,
        "bad option 'max_body' to 'http_new' (positive integer expected)")
      assert.has_error(function() core.http_new { connect_timeout = 0 } end)
      assert.has_error(function() core.http_new "x" end)
    end)
  end)

  describe("request", function()
    local c
    before_each(function() c = core.http_new() end)
    after_each(function() c:close() end)

    it("returns status, headers and body", function()
      local res = assert(c:request { url = url("/echo?a=1&b=2") })
      assert.equal(200, res.status)
      assert.equal("application/json", header(res, "Content-Type"))
      assert.equal("1.1", res.http_version)
      assert.is_number(res.time)
      assert.is_true(res.time >= 0)
      local doc = echoed(res)
      assert.equal("GET", doc.method)
      assert.equal("/echo", doc.path)
      assert.equal("a=1&b=2", doc.query)
      assert.equal("smugoauth/" .. core.version, doc.h["user-agent"])
      assert.equal(tonumber(header(res, "Content-Length")), #res.body)
    end)

    it("keeps raw header names in order and trims values", function()
      local res = assert(c:request { url = url("/headers") })
      local names, cookies = {}, {}
      for _, h in ipairs(res.headers) do
        names[#names + 1] = h[1]
        if h[1] == "Set-Cookie" then cookies[#cookies + 1] = h[2] end
      end
      assert.same({ "a=1", "b=2" }, cookies)
      assert.equal("Yes", header(res, "X-Mixed-Case"))
      assert.equal("padded", header(res, "X-Spaces"))
      assert.truthy(table.concat(names, ","):find("X-Mixed-Case,Set-Cookie,Set-Cookie,X-Spaces", 1, true))
    end)

    it("returns only the final response's headers after a 1xx", function()
      local res = assert(c:request { url = url("/interim") })
      assert.equal(200, res.status)
      assert.equal("final", res.body)
      assert.equal("1", header(res, "X-Final"))
      assert.is_nil(header(res, "Link"))
    end)

    it("reuses the connection of a keep-alive server", function()
      local r1 = assert(c:request { url = url("/echo") })
      local r2 = assert(c:request { url = url("/echo") })
      local r3 = assert(c:request { url = url("/echo"), method = "POST", body = "x", fresh = false })
      local r4 = assert(c:request { url = url("/echo"), method = "PUT", body = "x" })
      assert.equal(1, r1.new_connections)
      assert.equal(0, r2.new_connections)
      assert.equal(0, r3.new_connections)
      assert.equal(0, r4.new_connections)
    end)

    it("sends non-idempotent methods on a new connection unless fresh = false", function()
      assert(c:request { url = url("/echo") })
      for _, m in ipairs { "POST", "PATCH", "LOCK" } do
        assert.equal(1, assert(c:request { url = url("/echo"), method = m, body = "x" }).new_connections, m)
      end
      for _, m in ipairs { "GET", "HEAD", "PUT", "DELETE", "OPTIONS" } do
        assert.equal(0, assert(c:request { url = url("/echo"), method = m }).new_connections, m)
      end
      assert.equal(1, assert(c:request { url = url("/echo"), fresh = true }).new_connections)
      assert.equal(0, assert(c:request { url = url("/echo"), method = "POST", fresh = false }).new_connections)
      -- the same on the reactor, one transfer after another
      local r <close> = assert(core.reactor())
      local function one(req) return on_reactor(r, c, { req })[1] end
      one { url = url("/echo") }
      assert.equal(0, one({ url = url("/echo") }).new_connections)
      assert.equal(1, one({ url = url("/echo"), method = "POST", body = "x" }).new_connections)
      assert.equal(0, one({ url = url("/echo"), method = "POST", body = "x", fresh = false }).new_connections)
    end)

    -- libcurl re-sends a request unchanged when a reused connection dies before
    -- any answer byte, even when the server read it whole. For a POST that is
    -- a second album, or a nonce_used refusal for a change that was made.
    it("never re-sends a POST or PATCH the server read on a dead kept-alive connection", function()
      local script = os.tmpname()
      files_write(script, POSTDROP)
      local srv = start_server(nil, script)
      servers[#servers + 1] = srv
      os.remove(script)
      local target = "http://127.0.0.1:" .. srv.port .. "/x"
      local function seen(method)
        local n = 0
        for m in (slurp(srv.out) or ""):gmatch("SEEN (%u+)") do if m == method then n = n + 1 end end
        return n
      end
      local c1 <close> = core.http_new { timeout = 5 }
      for _, m in ipairs { "POST", "PATCH" } do
        assert.equal("ok", assert(c1:request { url = target }).body)    -- kept alive
        local res, msg, code = c1:request { url = target, method = m, body = "once" }
        assert.is_nil(res)
        assert.equal("network", code, msg)
        assert.equal(1, seen(m), m .. " was sent " .. seen(m) .. " times")
      end
      local r <close> = assert(core.reactor())                           -- its own connections
      assert.equal("ok", on_reactor(r, c1, { { url = target } })[1].body)
      assert.equal("network", on_reactor(r, c1, { { url = target, method = "POST", body = "once" } })[1].code)
      assert.equal(2, seen("POST"))
      -- fresh = false: the caller accepts libcurl's re-send (retry.unsafe)
      assert.equal("ok", assert(c1:request { url = target }).body)
      local res, _, code = c1:request { url = target, method = "POST", body = "twice", fresh = false }
      assert.is_nil(res)
      assert.equal("network", code)
      assert.equal(4, seen("POST"))
    end)

    it("uses the user_agent option", function()
      local c2 <close> = core.http_new { user_agent = "tester/9" }
      assert.equal("tester/9", echoed(assert(c2:request { url = url("/echo") })).h["user-agent"])
    end)

    it("does not follow redirects", function()
      local res = assert(c:request { url = url("/redirect") })
      assert.equal(302, res.status)
      assert.equal("/echo", header(res, "Location"))
      assert.equal("moved", res.body)
    end)

    it("returns HTTP error statuses as results", function()
      local res = assert(c:request { url = url("/status/404") })
      assert.equal(404, res.status)
      assert.equal("status 404", res.body)
    end)

    it("sends no form content type or Expect when the caller gave none", function()
      local doc = echoed(assert(c:request { url = url("/echo"), method = "POST", body = "a=1&b=2" }))
      assert.equal("POST", doc.method)
      assert.is_nil(doc.h["content-type"])
      assert.is_nil(doc.h["expect"])
      assert.equal(7, doc.body_len)
      assert.equal(md5("a=1&b=2"), doc.body_md5)
      -- libcurl adds Expect: 100-continue to large bodies unless told not to
      local big = ("0123456789abcdef"):rep(128 * 1024)
      doc = echoed(assert(c:request { url = url("/echo"), method = "POST", body = big }))
      assert.is_nil(doc.h["content-type"])
      assert.is_nil(doc.h["expect"])
      assert.equal(md5(big), doc.body_md5)
      doc = echoed(assert(c:request { url = url("/echo"), method = "POST" }))
      assert.is_nil(doc.h["content-type"])
      assert.equal("0", doc.h["content-length"])
    end)

    it("keeps the content type the caller set", function()
      local body = '{"a":[1,2]}'
      local doc = echoed(assert(c:request {
        url = url("/echo"), method = "POST", body = body,
        headers = { "Content-Type: application/json", "X-Extra: 1" },
      }))
      assert.equal("application/json", doc.h["content-type"])
      assert.equal("1", doc.h["x-extra"])
      assert.equal(md5(body), doc.body_md5)
    end)

    it("sends other methods with and without a body", function()
      local doc = echoed(assert(c:request { url = url("/echo"), method = "PATCH", body = "p" }))
      assert.equal("PATCH", doc.method)
      assert.equal(md5("p"), doc.body_md5)
      assert.is_nil(doc.h["content-type"])
      doc = echoed(assert(c:request { url = url("/echo"), method = "DELETE" }))
      assert.equal("DELETE", doc.method)
      assert.equal(0, doc.body_len)
      doc = echoed(assert(c:request { url = url("/echo"), method = "PUT", body = "put" }))
      assert.equal("PUT", doc.method)
      assert.equal(md5("put"), doc.body_md5)
      assert.is_nil(doc.h["content-type"])
      local res = assert(c:request { url = url("/echo"), method = "HEAD" })
      assert.equal(200, res.status)
      assert.equal("", res.body)
      -- the handle is reset between requests: a GET after HEAD has a body
      assert.equal("GET", echoed(assert(c:request { url = url("/echo") })).method)
    end)

    describe("body_file", function()
      local path, sum
      local size = 5 * 1024 * 1024
      setup(function() path, sum = make_file(5 * 1024) end)
      teardown(function() if path then os.remove(path) end end)

      it("streams a POST body with upload progress", function()
        local seen, totals = {}, {}
        local res = assert(c:request {
          url = url("/echo"), method = "POST", body_file = path,
          headers = { "Content-Type: application/octet-stream" },
          on_progress = function(sent, total)
            seen[#seen + 1] = sent
            totals[total] = true
          end,
        })
        local doc = echoed(res)
        assert.equal("POST", doc.method)
        assert.equal(size, doc.body_len)
        assert.equal(sum, doc.body_md5)
        assert.equal("application/octet-stream", doc.h["content-type"])
        assert.is_nil(doc.h["expect"])
        assert.is_true(#seen >= 2)
        for i = 2, #seen do assert.is_true(seen[i] > seen[i - 1]) end
        assert.equal(size, seen[#seen])
        assert.is_true(totals[size])
      end)

      it("streams a PUT body", function()
        local doc = echoed(assert(c:request { url = url("/echo"), method = "PUT", body_file = path }))
        assert.equal("PUT", doc.method)
        assert.equal(size, doc.body_len)
        assert.equal(sum, doc.body_md5)
        assert.is_nil(doc.h["content-type"])
      end)

      it("fails with code io when the file cannot be read", function()
        local res, msg, code = c:request { url = url("/echo"), method = "POST",
                                           body_file = "/nonexistent/file" }
        assert.is_nil(res)
        assert.equal("io", code)
        assert.matches("^request: POST http://127%.0%.0%.1:%d+/echo: cannot read body_file", msg)
        res, msg, code = c:request { url = url("/echo"), method = "POST", body_file = "/" }
        assert.is_nil(res)
        assert.equal("io", code)
        assert.matches("not a regular file", msg)
        assert.equal(200, assert(c:request { url = url("/echo") }).status)
      end)

      it("propagates an error raised in on_progress, then still works", function()
        local boom = { "boom" }
        local ok, err = pcall(c.request, c, {
          url = url("/echo"), method = "POST", body_file = path,
          on_progress = function() error(boom) end,
        })
        assert.is_false(ok)
        assert.equal(boom, err)
        assert.has_error(function()
          c:request { url = url("/echo"), method = "PUT", body_file = path,
                      on_progress = function(sent) if sent > 0 then error("stop here", 0) end end }
        end, "stop here")
        local doc = echoed(assert(c:request { url = url("/echo"), method = "PUT", body_file = path }))
        assert.equal(sum, doc.body_md5)
      end)

      it("refuses to be used or closed from its own on_progress", function()
        assert.has_error(function()
          c:request { url = url("/echo"), method = "POST", body_file = path,
                      on_progress = function() c:request { url = url("/echo") } end }
        end, "smugoauth.Http is busy (used from its own on_progress)")
        assert.has_error(function()
          c:request { url = url("/echo"), method = "POST", body_file = path,
                      on_progress = function() c:close() end }
        end, "cannot close a busy smugoauth.Http (from its own on_progress)")
        assert.equal(200, assert(c:request { url = url("/echo") }).status)
      end)
    end)

    -- c:request reuses one easy handle: nothing a request sets may leak into
    -- the next one (method, body, sizes, upload, headers, timeout, progress).
    describe("one handle, one request after another", function()
      local path, sum
      setup(function() path, sum = make_file(64) end)
      teardown(function() if path then os.remove(path) end end)

      -- a GET of /echo that sent no body, no body headers and no extra header
      local function plain_get(doc)
        assert.equal("GET", doc.method)
        assert.equal(0, doc.body_len)
        assert.is_nil(doc.h["content-length"])
        assert.is_nil(doc.h["transfer-encoding"])
        assert.is_nil(doc.h["content-type"])
        assert.is_nil(doc.h["x-extra"])
      end

      it("a GET after a POST with a body sends no body or Content-Length", function()
        local doc = echoed(assert(c:request { url = url("/echo"), method = "POST", body = "abc",
                                              headers = { "X-Extra: 1" } }))
        assert.equal("POST", doc.method)
        assert.equal("1", doc.h["x-extra"])
        plain_get(echoed(assert(c:request { url = url("/echo") })))
        doc = echoed(assert(c:request { url = url("/echo"), method = "POST" }))
        assert.equal("POST", doc.method)
        assert.equal("0", doc.h["content-length"])
        plain_get(echoed(assert(c:request { url = url("/echo") })))
      end)

      it("a GET after a HEAD has a body", function()
        local res = assert(c:request { url = url("/echo"), method = "HEAD" })
        assert.equal("", res.body)
        res = assert(c:request { url = url("/echo") })
        assert.equal(tonumber(header(res, "Content-Length")), #res.body)
        plain_get(echoed(res))
      end)

      it("requests after a body_file upload send no file", function()
        local doc = echoed(assert(c:request { url = url("/echo"), method = "PUT", body_file = path }))
        assert.equal("PUT", doc.method)
        assert.equal(sum, doc.body_md5)
        plain_get(echoed(assert(c:request { url = url("/echo") })))
        doc = echoed(assert(c:request { url = url("/echo"), method = "PUT", body_file = path }))
        assert.equal(sum, doc.body_md5)
        doc = echoed(assert(c:request { url = url("/echo"), method = "POST", body = "after" }))
        assert.equal("POST", doc.method)
        assert.equal(md5("after"), doc.body_md5)
        doc = echoed(assert(c:request { url = url("/echo"), method = "POST", body_file = path }))
        assert.equal("POST", doc.method)
        assert.equal(sum, doc.body_md5)
        doc = echoed(assert(c:request { url = url("/echo"), method = "DELETE" }))
        assert.equal("DELETE", doc.method)
        assert.equal(0, doc.body_len)
        assert.is_nil(doc.h["content-length"])
        local res = assert(c:request { url = url("/echo"), method = "HEAD" })
        assert.equal(200, res.status)
        assert.equal("", res.body)
        plain_get(echoed(assert(c:request { url = url("/echo") })))
      end)

      it("a GET after another method is a GET", function()
        local doc = echoed(assert(c:request { url = url("/echo"), method = "PATCH", body = "p" }))
        assert.equal("PATCH", doc.method)
        plain_get(echoed(assert(c:request { url = url("/echo") })))
        doc = echoed(assert(c:request { url = url("/echo"), method = "OPTIONS" }))
        assert.equal("OPTIONS", doc.method)
        plain_get(echoed(assert(c:request { url = url("/echo") })))
      end)

      it("a per-request timeout holds for that request only", function()
        local res, _, code = c:request { url = url("/echo?delay=700"), timeout = 0.2 }
        assert.is_nil(res)
        assert.equal("timeout", code)
        plain_get(echoed(assert(c:request { url = url("/echo?delay=700") })))
      end)

      it("on_progress is called for its own request only", function()
        local calls = 0
        assert(c:request { url = url("/echo"), method = "PUT", body_file = path,
                           on_progress = function() calls = calls + 1 end })
        local seen = calls
        assert.is_true(seen > 0)
        assert.equal(sum, echoed(assert(c:request { url = url("/echo"), method = "PUT",
                                                    body_file = path })).body_md5)
        plain_get(echoed(assert(c:request { url = url("/echo") })))
        assert.equal(seen, calls)
      end)

      it("the reactor reuses its transfers the same way", function()
        local r <close> = assert(core.reactor())
        local results = {}
        for i, req in ipairs {
          { url = url("/echo"), method = "POST", body = "abc", headers = { "X-Extra: 1" } },
          { url = url("/echo") },
          { url = url("/echo"), method = "HEAD" },
          { url = url("/echo") },
          { url = url("/echo"), method = "PUT", body_file = path },
          { url = url("/echo") },
          { url = url("/echo"), method = "PATCH", body = "p" },
          { url = url("/echo") },
        } do
          results[i] = on_reactor(r, c, { req })[1]             -- one after another: one slot reused
        end
        assert.equal("POST", echoed(results[1]).method)
        plain_get(echoed(results[2]))
        assert.equal("", results[3].body)
        plain_get(echoed(results[4]))
        assert.equal(sum, echoed(results[5]).body_md5)
        plain_get(echoed(results[6]))
        assert.equal("PATCH", echoed(results[7]).method)
        plain_get(echoed(results[8]))
      end)

      it("retries a dead reused connection on every request, not 5 times per handle", function()
        local script = os.tmpname()
        local f = assert(io.open(script, "w"))
        f:write(DROPPER)
        f:close()
        local ok, err = pcall(function()
          local srv = start_server(nil, script)
          servers[#servers + 1] = srv
          local target = "http://127.0.0.1:" .. srv.port .. "/x"
          local c1 <close> = core.http_new()
          for i = 1, 8 do
            local res, msg = c1:request { url = target }
            assert(res, ("request %d: %s"):format(i, msg))
            assert.equal("ok", res.body)
            assert.equal(1, res.new_connections)
          end
        end)
        os.remove(script)
        assert(ok, err)
      end)
    end)

    describe("failures", function()
      it("connection refused is network, and the message has no query string", function()
        local port = closed_port()
        local res, msg, code = c:request {
          url = ("http://127.0.0.1:%d/path/x?oauth_signature=SECRET&b=2"):format(port) }
        assert.is_nil(res)
        assert.equal("network", code)
        assert.matches(("^request: GET http://127%%.0%%.0%%.1:%d/path/x: "):format(port), msg)
        assert.is_nil(msg:find("SECRET", 1, true))
        assert.is_nil(msg:find("oauth_signature", 1, true))
      end)

      it("a body cut short or an empty reply is network", function()
        local res, msg, code = c:request { url = url("/close-mid-body") }
        assert.is_nil(res)
        assert.equal("network", code)
        assert.matches("close%-mid%-body: .+", msg)
        res, msg, code = c:request { url = url("/empty") }
        assert.is_nil(res)
        assert.equal("network", code)
        assert.matches("/empty: .+", msg)
      end)

      it("times out within the timeout", function()
        local c1 <close> = core.http_new { timeout = 1 }
        local t0 = socket.gettime()
        local res, msg, code = c1:request { url = url("/slow?ms=5000") }
        local took = socket.gettime() - t0
        assert.is_nil(res)
        assert.equal("timeout", code)
        assert.matches("^request: GET http://127%.0%.0%.1:%d+/slow: ", msg)
        assert.is_true(took >= 0.9 and took < 2, "took " .. took)
        -- the per-request timeout overrides the client's
        t0 = socket.gettime()
        local _
        res, _, code = c:request { url = url("/drip?n=50&ms=100"), timeout = 0.5 }
        took = socket.gettime() - t0
        assert.is_nil(res)
        assert.equal("timeout", code)
        assert.is_true(took < 1.5, "took " .. took)
        assert.equal("slow", assert(c1:request { url = url("/slow?ms=10") }).body)
      end)

      it("caps the response size", function()
        local c1 <close> = core.http_new { max_body = 1000 }
        local res, msg, code = c1:request { url = url("/big?bytes=5000") }
        assert.is_nil(res)
        assert.equal("too_large", code)
        assert.matches("max_body", msg)
        local _
        res, _, code = c1:request { url = url("/big?bytes=200000&chunked=1") }
        assert.is_nil(res)
        assert.equal("too_large", code)
        assert.equal(1000, #assert(c1:request { url = url("/big?bytes=1000") }).body)
        assert.equal(1000, #assert(c1:request { url = url("/big?bytes=1000&chunked=1") }).body)
      end)
    end)

    describe("https", function()
      it("trusts a server whose CA is ca_file, reusing the connection", function()
        local c1 <close> = core.http_new { ca_file = pki .. "/ca.pem" }
        local r1 = assert(c1:request { url = surl("server") })
        local r2 = assert(c1:request { url = surl("server"), method = "POST", body = "s", fresh = false })
        assert.equal(200, r1.status)
        assert.equal("GET", echoed(r1).method)
        assert.equal(1, r1.new_connections)
        assert.equal(0, r2.new_connections)
        assert.equal(md5("s"), echoed(r2).body_md5)
      end)

      it("refuses the test CA with the system bundle", function()
        local res, msg, code = c:request { url = surl("server", "/echo?oauth_token=T") }
        assert.is_nil(res)
        assert.equal("tls", code)
        assert.matches("^request: GET https://127%.0%.0%.1:%d+/echo: ", msg)
        assert.is_nil(msg:find("oauth_token", 1, true))
      end)

      it("fails with code tls when ca_file cannot be loaded", function()
        local c1 <close> = core.http_new { ca_file = pki .. "/missing.pem" }
        local res, _, code = c1:request { url = surl("server") }
        assert.is_nil(res)
        assert.equal("tls", code)
      end)

      for _, name in ipairs { "untrusted", "wronghost", "expired" } do
        it("refuses a " .. name .. " certificate (code tls)", function()
          local c1 <close> = core.http_new { ca_file = pki .. "/ca.pem" }
          local res, msg, code = c1:request { url = surl(name) }
          assert.is_nil(res)
          assert.equal("tls", code)
          assert.matches("^request: GET https://", msg)
        end)
      end
    end)

    describe("misuse", function()
      it("raises for bad request tables", function()
        assert.has_error(function() c:request() end)
        assert.has_error(function() c:request "http://x/" end)
        assert.has_error(function() c:request {} end, "missing option 'url' to 'request'")
        assert.has_error(function() c:request { url = url("/"), bogus = 1 } end,
          "unknown option 'bogus' to 'request'")
        assert.has_error(function() c:request { url = 5 } end,
          "bad option 'url' to 'request' (string expected, got number)")
        assert.has_error(function() c:request { url = "ftp://127.0.0.1/x" } end,
          "bad option 'url' to 'request' (http or https expected)")
        assert.has_error(function() c:request { url = "not a url" } end)
        assert.has_error(function() c:request { url = url("/"), method = "GE T" } end,
          "bad option 'method' to 'request' (an HTTP method token expected)")
        assert.has_error(function() c:request { url = url("/"), headers = "X: 1" } end,
          "bad option 'headers' to 'request' (table expected, got string)")
        assert.has_error(function() c:request { url = url("/"), body = {} } end,
          "bad option 'body' to 'request' (string expected, got table)")
        assert.has_error(function() c:request { url = url("/"), on_progress = 1 } end,
          "bad option 'on_progress' to 'request' (function expected, got number)")
        assert.has_error(function() c:request { url = url("/"), timeout = -1 } end)
        assert.has_error(function() c:request { url = url("/"), body = "a", body_file = "/etc/hosts" } end,
          "options 'body' and 'body_file' to 'request' exclude each other")
        assert.has_error(function() c:request { url = url("/"), method = "HEAD", body = "a" } end,
          "a HEAD request to 'request' cannot have a body")
      end)

      it("raises for headers with CR, LF or NUL, or not 'Name: value'", function()
        for _, bad in ipairs { "X-A: 1\r\nX-B: 2", "X-A: 1\n", "X-A: \0x", "X-A: 1\r" } do
          assert.has_error(function() c:request { url = url("/"), headers = { "Ok: 1", bad } } end,
            "bad header #2 to 'request' (CR, LF or NUL in it)")
        end
        for _, bad in ipairs { "NoColon", ": empty name", "Bad Name: x" } do
          assert.has_error(function() c:request { url = url("/"), headers = { bad } } end,
            "bad header #1 to 'request' ('Name: value' expected)")
        end
        assert.has_error(function() c:request { url = url("/"), headers = { 1 } } end,
          "bad header #1 to 'request' (string expected, got number)")
        assert.equal(200, assert(c:request { url = url("/echo") }).status)
      end)

      it("raises on a closed client; close is idempotent", function()
        local c1 = core.http_new()
        assert.equal(200, assert(c1:request { url = url("/echo") }).status)
        c1:close()
        c1:close()
        assert.equal("smugoauth.Http (closed)", tostring(c1))
        assert.has_error(function() c1:request { url = url("/echo") } end,
          "attempt to use a closed smugoauth.Http")
        local r <close> = assert(core.reactor())
        assert.has_error(function() r:start(c1, { url = url("/echo") }) end, "attempt to use a closed smugoauth.Http")
        assert.has_error(function() c.request(io.stdout, { url = url("/") }) end)
      end)

      it("closes a to-be-closed variable", function()
        local outer
        do
          local c1 <close> = core.http_new()
          outer = c1
          assert.equal(200, assert(c1:request { url = url("/echo") }).status)
        end
        assert.equal("smugoauth.Http (closed)", tostring(outer))
      end)
    end)
  end)

  describe("on the reactor", function()
    local c, r
    before_each(function()
      c = core.http_new()
      r = assert(core.reactor())
    end)
    after_each(function()
      r:close()
      c:close()
    end)

    it("runs transfers concurrently, each result for its own id", function()
      local reqs = {}
      for i = 1, 6 do reqs[i] = { url = url("/echo?delay=400&i=" .. i) } end
      local t0 = socket.gettime()
      local results = on_reactor(r, c, reqs)
      local took = socket.gettime() - t0
      assert.equal(6, #results)
      for i, res in ipairs(results) do
        assert.is_nil(res.error)
        assert.equal(200, res.status)
        assert.equal("delay=400&i=" .. i, echoed(res).query)
      end
      -- 6 x 0.4 s one at a time would take 2.4 s; all at once about 0.4 s
      assert.is_true(took < 1.9, "took " .. took)
      -- the connections stay open for the next transfers
      results = on_reactor(r, c, { { url = url("/echo") } })
      assert.equal(0, results[1].new_connections)
    end)

    it("mixes successes and failures", function()
      local c1 <close> = core.http_new { max_body = 1000, ca_file = pki .. "/ca.pem" }
      local results = on_reactor(r, c1, {
        { url = url("/echo?x=1"), method = "POST", body = "hello",
          headers = { "Content-Type: text/plain" } },
        { url = ("http://127.0.0.1:%d/down?oauth_signature=S"):format(closed_port()) },
        { url = url("/status/500") },
        { url = url("/big?bytes=5000") },
        { url = surl("untrusted") },
        { url = surl("server") },
        { url = url("/slow?ms=3000"), timeout = 0.3 },
      })
      assert.equal(7, #results)
      local doc = echoed(results[1])
      assert.equal("POST", doc.method)
      assert.equal(md5("hello"), doc.body_md5)
      assert.equal("text/plain", doc.h["content-type"])
      assert.equal("network", results[2].code)
      assert.matches("GET http://127%.0%.0%.1:%d+/down: ", results[2].error)
      assert.is_nil(results[2].error:find("oauth_signature", 1, true))
      assert.equal(500, results[3].status)
      assert.equal("too_large", results[4].code)
      assert.equal("tls", results[5].code)
      assert.equal(200, results[6].status)
      assert.equal("timeout", results[7].code)
      -- a body file that cannot be read: nil, message, io before anything is sent
      local id, msg, code = r:start(c1, { url = url("/echo"), method = "PUT", body_file = "/nonexistent/file" })
      assert.is_nil(id)
      assert.equal("io", code, msg)
    end)

    it("raises for misuse before running anything", function()
      assert.has_error(function() r:start(c) end)
      assert.has_error(function() r:start(c, "x") end)
      assert.has_error(function() r:start({}, { url = url("/") }) end)
      assert.has_error(function() r:start(c, { url = url("/"), headers = { "A: 1\n" } }) end)
      assert.equal(200, on_reactor(r, c, { { url = url("/echo") } })[1].status)
    end)
  end)
end)
