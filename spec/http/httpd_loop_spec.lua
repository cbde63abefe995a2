-- httpd_loop_spec.lua -- smugoauth.http.server on the one event loop
-- (smugoauth.loop), in this process: servers and their clients are tasks of
-- one loop (so the C paths run under ASan and valgrind too).
--
-- A handler runs inside its connection's task and may yield (a sleep, a
-- request of the library): the other connections are served meanwhile; a
-- client that goes away cancels what the handler waits for (its upstream
-- request returns nil, err code "cancelled", and the upstream sees its
-- connection dropped at once); a hung upstream fails with the client's
-- timeout while everything else is served; handler errors are still 500.
--
-- Most tests put the server on the default loop (no `loop` option) and
-- drive it with srv:step, stepping the loop as well when the server is not
-- on it (`drive`): the same test then runs against a server that is not on
-- the loop, and shows what this fixed.
local socket = require "socket"
local core = require "smugoauth.core"
local loop = require "smugoauth.loop"
local smugoauth = require "smugoauth"
local httpd = require "smugoauth.http.server"
local lc = require "support.loop_client"

-- Under valgrind (make valgrind sets SMUGOAUTH_SLOW) time bounds scale by it.
local SLOW = tonumber(os.getenv("SMUGOAUTH_SLOW") or "") or 1
local now = core.monotime

local function url(srv, path) return "http://127.0.0.1:" .. srv.port .. path end

-- Run fn as a task of the default loop while serving srv, until fn is done
-- (at most `limit` seconds): fn's results; its error is raised.
local function drive(srv, limit, fn)
  local L = loop.default()
  local t = L:spawn(fn)
  local deadline = now() + limit
  while not t.done do
    assert(now() < deadline, "not done within " .. limit .. " s")
    local ok, err, failed = srv:step(0.01)
    if not ok then error(type(failed) == "table" and failed.trace or err, 0) end
    if srv.loop ~= L then assert(L:step(0)) end     -- (a server not on the loop: drive both)
  end
  if not t.ok then error(t.trace or t.err, 0) end
  return table.unpack(t.results, 1, t.results.n)
end

-- Close srv and let the default loop finish what it cancelled.
local function close(srv)
  srv:close()
  local L = loop.default()
  for _ = 1, 20 do
    if L:tasks() == 0 then break end
    L:step(0)
  end
end

-- A listener that accepts nothing and answers nothing (a hung upstream:
-- the kernel completes the connection, the request waits forever).
local function hung_upstream()
  local l = assert(socket.bind("127.0.0.1", 0))
  local _, port = l:getsockname()
  return l, tonumber(port)
end

-- A session of a client whose API is at origin.
local function session_for(origin, extra)
  local o = { key = "k", secret = "s", oauth_origin = origin, api_origin = origin, upload_origin = origin }
  for k, v in pairs(extra or {}) do o[k] = v end
  local c = smugoauth.new(o)
  return c:session("t", "ts"), c
end

describe("httpd on the event loop", function()
  local srv, logged

  before_each(function() logged = {} end)
  after_each(function()
    if srv then close(srv) end
    srv = nil
  end)

  local function log(m) logged[#logged + 1] = m end

  it("serves other connections while a handler waits (a sleep yields); errors after a yield are 500", function()
    local fast_sock, sent_at
    srv = assert(httpd.new { log = log, handler = function(req)
      if req.path == "/slow" then
        -- another client's request is on its way before this handler waits
        assert(fast_sock:send("GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
        sent_at = now()
        assert(smugoauth.sleep(0.5))
        return 200, nil, ("slept %.2f"):format(now() - sent_at)
      end
      if req.path == "/boom" then
        smugoauth.sleep(0.05)
        error("boom after a yield")
      end
      return 200, nil, "fast"
    end })
    fast_sock = lc.raw(srv.port, "")
    local slow, fast, fast_took, boom = drive(srv, 10 * SLOW, function()
      local L = loop.current()
      local ts = loop.spawn(function() return lc.get(L, url(srv, "/slow")) end)
      local tb = loop.spawn(function() return lc.get(L, url(srv, "/boom")) end)
      while not sent_at do smugoauth.sleep(0.01) end
      local raw = lc.read_all(L, fast_sock, 5 * SLOW)
      local took = now() - sent_at
      local _, s = ts:join()
      local _, b = tb:join()
      return s, raw, took, b
    end)
    fast_sock:close()
    assert.matches("^HTTP/1%.1 200 OK\r\n.*\r\n\r\nfast$", fast)
    assert(fast_took < 0.2 * SLOW, ("GET /fast took %.3f s while /slow's handler slept"):format(fast_took))
    assert.equal(200, slow.status)
    assert.matches("^slept 0%.[5-9]", slow.body)
    assert.equal(500, boom.status)
    assert.matches("handler error: .*boom after a yield", logged[1])
  end)

  it("cancels a waiting handler when its client goes away; the next one is served", function()
    local woke
    srv = assert(httpd.new { log = log, handler = function(req)
      if req.path == "/hang" then
        local t0 = now()
        local ok = smugoauth.sleep(5)
        woke = { ok = ok, after = now() - t0 }
      end
      return 200, nil, "done"
    end })
    drive(srv, 10 * SLOW, function()
      local s = lc.raw(srv.port, "GET /hang HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      smugoauth.sleep(0.2)                         -- the handler is asleep
      s:close()                                    -- the browser leaves
      local deadline = now() + 3 * SLOW
      while not woke and now() < deadline do smugoauth.sleep(0.02) end
    end)
    assert.is_table(woke, "the handler was not woken")
    assert.is_false(woke.ok)                       -- its sleep was cancelled
    assert(woke.after < 1 * SLOW, ("the handler woke after %.2f s"):format(woke.after))
    local res = drive(srv, 5 * SLOW, function() return lc.get(loop.current(), url(srv, "/")) end)
    assert.equal("done", res.body)
    assert.same({}, logged)
  end)

  it("cancels the upstream request of a client that goes away: nil, err code cancelled, dropped upstream", function()
    local l, up = hung_upstream()
    finally(function() l:close() end)
    local api, client = session_for("http://127.0.0.1:" .. up, { timeout = 20, retry = false })
    finally(function() api:close() client:close() end)
    local got
    srv = assert(httpd.new { log = log, handler = function()
      local t0 = now()
      local res, err = api:get("/api/v2!authuser")
      got = { res = res, err = err, after = now() - t0 }
      return 502, nil, "upstream failed"
    end })
    drive(srv, 10 * SLOW, function()
      local s = lc.raw(srv.port, "GET /up HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      smugoauth.sleep(0.3)                         -- the upstream request is in flight
      s:close()
      local deadline = now() + 5 * SLOW
      while not got and now() < deadline do smugoauth.sleep(0.02) end
    end)
    assert.is_table(got, "the handler's request did not return")
    assert.is_nil(got.res)
    assert.equal("cancelled", got.err.code)
    assert(got.after < 1.5 * SLOW, ("the request returned after %.2f s"):format(got.after))
    -- the upstream side: the connection came, and it is closed already
    l:settimeout(1)
    local c = assert(l:accept())
    c:settimeout(2)
    local head, err = c:receive("*a")
    c:close()
    assert.matches("^GET /api/v2!authuser HTTP/1%.1\r\n", head or "", nil, false, tostring(err))
  end)

  it("keeps the bytes of a next pipelined request that arrive while a handler waits", function()
    srv = assert(httpd.new { log = log, handler = function(req)
      if req.path == "/slow" then smugoauth.sleep(0.3) end
      return 200, { ["Content-Type"] = "text/plain" }, "answer " .. req.path
    end })
    local got = drive(srv, 10 * SLOW, function()
      local s = lc.raw(srv.port, "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      smugoauth.sleep(0.1)                         -- in /slow's handler: the next request comes
      assert(s:send("GET /second HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
      local raw = lc.read_all(loop.current(), s, 5 * SLOW)
      s:close()
      return raw
    end)
    local first = got:find("answer /slow", 1, true)
    local second = got:find("answer /second", 1, true)
    assert.truthy(first, got)
    assert.truthy(second, got)
    assert.truthy(first < second)
    assert.equal(2, select(2, got:gsub("HTTP/1%.1 200 OK", "")))
  end)

  it("fails a hung upstream with the client's timeout while GET / is served meanwhile", function()
    local l, up = hung_upstream()
    finally(function() l:close() end)
    local api, client = session_for("http://127.0.0.1:" .. up, { timeout = 1 })
    finally(function() api:close() client:close() end)
    srv = assert(httpd.new { log = log, handler = function(req)
      if req.path == "/up" then
        local res, err = api:get("/api/v2!authuser")
        if res then return 200, nil, "?" end
        return 502, nil, err.code
      end
      return 200, nil, "home"
    end })
    local up_res, homes = drive(srv, 15 * SLOW, function()
      local tu = loop.spawn(function() return lc.get(loop.current(), url(srv, "/up")) end)
      local list = {}
      while tu:status() == "running" do
        local r = assert(lc.get(loop.current(), url(srv, "/")))
        list[#list + 1] = r
        smugoauth.sleep(0.05)
      end
      local _, r = tu:join()
      return r, list
    end)
    assert.equal(502, up_res.status)
    assert.equal("timeout", up_res.body)
    assert(up_res.took >= 0.9 and up_res.took < 1 + 1 * SLOW, ("/up took %.2f s"):format(up_res.took))
    assert(#homes >= 5, "GET / answered " .. #homes .. " times meanwhile")
    for _, r in ipairs(homes) do
      assert.equal("home", r.body)
      assert(r.took < 0.1 * SLOW, ("GET / took %.3f s"):format(r.took))
    end
  end)
end)

describe("httpd on a loop of its own (option loop)", function()
  it("registers with the loop given; several servers and client tasks share it", function()
    local L = assert(loop.new())
    local a = assert(httpd.new { loop = L, handler = function() smugoauth.sleep(0.2) return 200, nil, "a" end })
    local b = assert(httpd.new { loop = L, handler = function() return 200, nil, "b" end })
    assert.equal(L, a.loop)
    local ra, rb = lc.call(L, 10 * SLOW, function()
      local ta = L:spawn(function() return lc.get(L, url(a, "/")) end)
      local r2 = assert(lc.get(L, url(b, "/")))
      local _, r1 = ta:join()
      return r1, r2
    end)
    assert.equal("a", ra.body)
    assert.equal("b", rb.body)
    assert(rb.took < 0.15 * SLOW, ("b answered in %.3f s while a's handler slept"):format(rb.took))
    -- srv:run() drives the whole loop: b serves while a runs, until a handler stops a
    b.handler = function() a:stop() return 200, nil, "stopping a" end
    local t = L:spawn(function() return lc.get(L, url(b, "/")) end)
    assert.is_true(a:run())
    assert.equal("stopping a", select(2, t:join()).body)
    a:close()
    b:close()
    for _ = 1, 50 do                               -- closed: their tasks end (those in the pool too)
      if L:tasks() == 0 then break end
      assert(L:step(0.01))
    end
    assert.equal(0, L:tasks())
    L:close()
  end)

  it("serves new connections with the tasks of ended ones (a pool), which end when unused", function()
    local L = assert(loop.new())
    local tasks = {}
    local srv = assert(httpd.new { loop = L, handler = function(req)
      local _, t = loop.current()
      tasks[#tasks + 1] = t
      return 200, nil, req.path
    end })
    srv._pool_idle = 0.3
    lc.call(L, 10 * SLOW, function()
      for i = 1, 3 do                              -- one after another, each on its own connection
        local s = lc.raw(srv.port, "GET /" .. i .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert.matches("\r\n\r\n/" .. i .. "$", lc.read_all(L, s, 3 * SLOW))
        s:close()
        while srv:connections() > 0 do smugoauth.sleep(0.01) end
      end
    end)
    assert.equal(3, #tasks)
    assert.equal(tasks[1], tasks[2])               -- the first connection's task served the others
    assert.equal(tasks[1], tasks[3])
    local deadline = now() + 3 * SLOW              -- unused for _pool_idle: it ends
    while L:tasks() > 0 and now() < deadline do assert(L:step(0.05)) end
    assert.equal(0, L:tasks())
    srv:close()
    L:close()
  end)

  it("cancels the waiting handlers when it is closed", function()
    local L = assert(loop.new())
    local woke
    local srv = assert(httpd.new { loop = L, handler = function()
      woke = smugoauth.sleep(5)
      return 200, nil, "late"
    end })
    local s = lc.raw(srv.port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    local deadline = now() + 5 * SLOW
    while srv:connections() == 0 and now() < deadline do assert(L:step(0.01)) end
    for _ = 1, 5 do assert(L:step(0.01)) end     -- its handler is asleep
    srv:close()
    while woke == nil and now() < deadline do assert(L:step(0.01)) end
    assert.is_false(woke)
    assert.equal(0, L:tasks())
    s:settimeout(2)
    assert.equal("closed", select(2, s:receive("*a")))
    s:close()
    L:close()
  end)

  it("logs an internal error with its traceback, drops that connection and goes on serving", function()
    local L = assert(loop.new())
    local logged = {}
    local srv = assert(httpd.new { loop = L, log = function(m) logged[#logged + 1] = m end,
                                   handler = function() return 200, nil, "ok" end })
    local date = srv._date
    srv._date = function() error("internal boom") end   -- a bug in the server itself
    local raw = lc.call(L, 5 * SLOW, function()
      local s = lc.raw(srv.port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      local got = lc.read_all(L, s, 3 * SLOW)
      s:close()
      return got
    end)
    assert.equal("", raw)                          -- closed, no answer
    assert.matches("^internal error: .*internal boom.*stack traceback", logged[1])
    assert.equal(0, srv:connections())
    srv._date = date
    local res = lc.call(L, 5 * SLOW, function() return lc.get(L, url(srv, "/")) end)
    assert.equal("ok", res.body)
    srv:close()
    L:close()
  end)

  it("raises on misuse: a loop that is not one, or closed; run or step from inside a task", function()
    local h = function() return 200 end
    assert.has_error(function() httpd.new { handler = h, loop = {} } end)
    local L = assert(loop.new())
    local srv = assert(httpd.new { handler = h, loop = L })
    assert.has_error(function()
      L:call(function() srv:step(0) end)
    end, nil)
    local ok, err = pcall(L.call, L, function() return srv:run() end)
    assert.is_false(ok)
    assert.matches("not from inside a task", err)
    srv:close()
    L:close()
    assert.has_error(function() httpd.new { handler = h, loop = L } end)
  end)
end)

describe("httpd streamed bodies (the handler's body is a function)", function()
  -- pieces of a body that is never whole in memory: i-th piece of `n` bytes
  local function piece(i, n) return (("%07d "):format(i)):rep(n // 8 + 1):sub(1, n) end
  local function whole(count, n)
    local t = {}
    for i = 1, count do t[i] = piece(i, n) end
    return table.concat(t)
  end
  -- a source of `count` pieces of n bytes, sleeping `pause` between them
  -- (0: no yield), ending after `stop_at` pieces when given
  local function source(count, n, pause, stop_at)
    local i = 0
    return function()
      i = i + 1
      if i > count or (stop_at and i > stop_at) then return nil end
      if pause > 0 then smugoauth.sleep(pause) end
      return piece(i, n)
    end
  end

  local L, srv, logged
  before_each(function()
    logged = {}
    L = assert(loop.new())
  end)
  after_each(function()
    if srv then srv:close() end
    srv = nil
    for _ = 1, 50 do
      if L:tasks() == 0 then break end
      L:step(0.01)
    end
    L:close()
  end)
  local function serve(handler)
    srv = assert(httpd.new { loop = L, log = function(m) logged[#logged + 1] = m end, handler = handler })
  end

  it("sends the pieces with their Content-Length, yielding between them; others are served meanwhile", function()
    serve(function(req)
      if req.path == "/quick" then return 200, nil, "quick" end
      return 200, { ["Content-Length"] = 40 * 1000 }, source(40, 1000, 0.01)
    end)
    local slow, quick = lc.call(L, 10 * SLOW, function()
      local t = L:spawn(function() return lc.get(L, url(srv, "/stream")) end)
      smugoauth.sleep(0.05)                        -- the stream is under way
      local q = assert(lc.get(L, url(srv, "/quick")))
      local _, s = t:join()
      return s, q
    end)
    assert.equal(200, slow.status)
    assert.equal("40000", lc.header(slow, "content-length"))
    assert.is_nil(lc.header(slow, "transfer-encoding"))
    assert.equal(whole(40, 1000), slow.body)
    assert.equal("quick", quick.body)
    assert(quick.took < 0.2 * SLOW, ("GET /quick took %.3f s during a stream"):format(quick.took))
    assert.same({}, logged)
  end)

  it("without a Content-Length: chunked (1.1), then the next request on the same connection", function()
    serve(function(req)
      if req.path == "/next" then return 200, nil, "next" end
      return 200, { ["Content-Type"] = "application/octet-stream" }, source(5, 3000, 0)
    end)
    local raw = lc.call(L, 10 * SLOW, function()
      local s = lc.raw(srv.port, "GET /a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" ..
                                 "GET /next HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
      local got = lc.read_all(L, s, 5 * SLOW)
      s:close()
      return got
    end)
    local head, rest = raw:match("^(.-\r\n\r\n)(.*)$")
    assert.matches("\r\nTransfer%-Encoding: chunked\r\n", head)
    assert.not_matches("Content%-Length", head)
    local body, pos = {}, 1
    while true do
      local size, after = rest:match("^(%x+)\r\n()", pos)
      size = tonumber(size, 16)
      if size == 0 then pos = after + 2 break end
      body[#body + 1] = rest:sub(after, after + size - 1)
      assert.equal("\r\n", rest:sub(after + size, after + size + 1))
      pos = after + size + 2
    end
    assert.equal(whole(5, 3000), table.concat(body))
    assert.matches("^HTTP/1%.1 200 OK\r\n.*\r\n\r\nnext$", rest:sub(pos))
    -- and curl reads it the same
    local res = lc.call(L, 5 * SLOW, function() return lc.get(L, url(srv, "/b")) end)
    assert.equal(whole(5, 3000), res.body)
  end)

  it("HTTP/1.0 without a Content-Length: the body ends with the connection", function()
    serve(function() return 200, nil, source(3, 100, 0) end)
    local raw = lc.call(L, 5 * SLOW, function()
      local s = lc.raw(srv.port, "GET / HTTP/1.0\r\n\r\n")
      local got = lc.read_all(L, s, 3 * SLOW)
      s:close()
      return got
    end)
    assert.matches("^HTTP/1%.1 200 OK\r\n.*Connection: close\r\n\r\n", raw)
    assert.equal(whole(3, 100), raw:match("\r\n\r\n(.*)$"))
  end)

  it("a body that ends short of its Content-Length: what was sent, then the connection closes", function()
    local calls = 0
    serve(function(req)
      calls = calls + 1
      if req.path == "/after" then return 200, nil, "after" end
      return 200, { ["Content-Length"] = 10 * 500 }, source(10, 500, 0, 4)
    end)
    local raw = lc.call(L, 5 * SLOW, function()
      -- a pipelined request after it is never answered: the connection is gone
      local s = lc.raw(srv.port, "GET /short HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" ..
                                 "GET /after HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      local got = lc.read_all(L, s, 3 * SLOW)
      s:close()
      return got
    end)
    assert.matches("^HTTP/1%.1 200 OK\r\n.*Content%-Length: 5000\r\n\r\n", raw)
    assert.equal(whole(4, 500), raw:match("\r\n\r\n(.*)$"))
    assert.equal(1, calls)
    local res, msg = lc.call(L, 5 * SLOW, function() return lc.get(L, url(srv, "/short")) end)
    assert.is_nil(res)                             -- curl: the transfer was cut short
    assert.is_string(msg)
    assert.same({}, logged)
  end)

  it("a source that raises or returns a non-string: logged, the connection closed", function()
    serve(function(req)
      local n = 0
      return 200, nil, function()
        n = n + 1
        if n == 1 then return "first " end
        if req.path == "/raise" then error("source boom") end
        return 42
      end
    end)
    for _, path in ipairs { "/raise", "/number" } do
      local raw = lc.call(L, 5 * SLOW, function()
        local s = lc.raw(srv.port, "GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        local got = lc.read_all(L, s, 3 * SLOW)
        s:close()
        return got
      end)
      assert.matches("\r\n\r\n6\r\nfirst \r\n$", raw)     -- one chunk, no last chunk: truncated
    end
    assert.matches("^streamed body error: .*source boom", logged[1])
    assert.equal("streamed body: a piece is not a string", logged[2])
  end)

  it("a longer body than its Content-Length is cut at the piece that overflows", function()
    serve(function() return 200, { ["Content-Length"] = 150 }, source(3, 100, 0) end)
    local raw = lc.call(L, 5 * SLOW, function()
      local s = lc.raw(srv.port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      local got = lc.read_all(L, s, 3 * SLOW)
      s:close()
      return got
    end)
    assert.equal(piece(1, 100), raw:match("\r\n\r\n(.*)$"))
    assert.equal("streamed body: longer than its Content-Length", logged[1])
  end)

  it("a client that leaves mid-body stops the source (its sleep is cancelled)", function()
    local calls, woke = 0, nil
    serve(function()
      return 200, { ["Content-Length"] = 1000 * 1000 }, function()
        calls = calls + 1
        if calls > 1 then woke = smugoauth.sleep(0.05) end
        return piece(calls, 1000)
      end
    end)
    lc.call(L, 10 * SLOW, function()
      local s = lc.raw(srv.port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      smugoauth.sleep(0.3)
      s:close()
      local deadline = now() + 3 * SLOW
      while srv:connections() > 0 and now() < deadline do smugoauth.sleep(0.02) end
    end)
    assert.equal(0, srv:connections())
    assert(calls < 100, ("the source was called %d times"):format(calls))
    local settled = calls
    lc.call(L, 5 * SLOW, function() smugoauth.sleep(0.2) end)
    assert.equal(settled, calls)                   -- nothing more after the client left
    assert.is_not_nil(woke)
  end)

  it("HEAD and 304: the function is not called", function()
    local called = false
    serve(function(req)
      return req.path == "/304" and 304 or 200, { ["Content-Length"] = 7 },
        function() called = true return "1234567" end
    end)
    local raw = lc.call(L, 5 * SLOW, function()
      local s = lc.raw(srv.port, "HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" ..
                                 "GET /304 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
      local got = lc.read_all(L, s, 3 * SLOW)
      s:close()
      return got
    end)
    assert.matches("^HTTP/1%.1 200 OK\r\n.-Content%-Length: 7\r\n\r\nHTTP/1%.1 304 Not Modified\r\n", raw)
    assert.is_false(called)
  end)
end)

-- Under the server: tasks woken by their socket (a connection's task) run
-- in the loop's round before the transfers that ended in that round are
-- handed out, and may start transfers of their own (their handler calls
-- the API), which may reuse the id of one that just ended.
describe("the loop under the server: a round where a transfer ends and a task woken by its socket starts one",
function()
  -- A transfer by task A that the test answers by hand, and a task B that
  -- waits on a socket: both become ready in one round (L:step).
  local function setup_round(L, b_body)
    local http = core.http_new { timeout = 5 }
    local l = assert(socket.bind("127.0.0.1", 0))
    local _, port = l:getsockname()
    local st = { http = http, l = l }
    st.ta = L:spawn(function()
      local res, _, code = L:transfer(http, { method = "GET", url = "http://127.0.0.1:" .. port .. "/a" })
      st.a = res and res.body or code
    end)
    local ls = assert(socket.bind("127.0.0.1", 0))
    local _, p2 = ls:getsockname()
    st.x = assert(socket.connect("127.0.0.1", p2))
    st.y = assert(ls:accept())
    ls:close()
    st.y:settimeout(0)
    st.tb = L:spawn(function()
      assert(L:wait_fd(st.y:getfd(), "r"))
      b_body(st)
    end)
    for _ = 1, 10 do assert(L:step(0.01)) end    -- A's request is out, B waits
    l:settimeout(2 * SLOW)
    local c = assert(l:accept())
    c:settimeout(2 * SLOW)
    assert(c:receive("*l"))
    repeat local h = c:receive("*l") until h == "" or h == nil
    assert(c:send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"))   -- A's answer, and
    assert(st.x:send("!"))                       -- B's socket, ready for the same round
    socket.sleep(0.1)
    st.c = c
    return st
  end

  local function cleanup(L, st)
    L:forget_fd(st.y:getfd())
    st.c:close()
    st.x:close()
    st.y:close()
    st.l:close()
    st.http:close()
    L:close()
  end

  it("hands the ended transfer's answer to its own task, not to the one that took its id", function()
    local L = assert(loop.new())
    local st = setup_round(L, function(s)
      local res, _, code = L:transfer(s.http, { method = "GET", url = "http://127.0.0.1:9/b", timeout = 3 })
      s.b = res and res.body or code
    end)
    assert(L:step(0))
    assert.equal("A", st.a)                      -- (before: nil, and B got "A")
    assert.is_nil(st.b)                          -- B's own transfer is still running
    cleanup(L, st)
  end)

  for _, how in ipairs { "cancel", "interrupt" } do
  it(how .. "s a task whose transfer ended in that round, not the transfer that took its id", function()
    local L = assert(loop.new())
    -- B takes A's id for its own transfer; then C, woken in the same round, cancels A
    local ls = assert(socket.bind("127.0.0.1", 0))
    local _, p3 = ls:getsockname()
    local zx = assert(socket.connect("127.0.0.1", p3))
    local z = assert(ls:accept())
    ls:close()
    z:settimeout(0)
    local st
    local tc = L:spawn(function()
      assert(L:wait_fd(z:getfd(), "r"))
      if how == "cancel" then st.ta:cancel() else L:interrupt(st.ta) end
    end)
    st = setup_round(L, function(s)
      local res, err, code = L:transfer(s.http, { method = "GET", url = "http://127.0.0.1:9/b", timeout = 3 })
      s.b = res and res.body or code or err
    end)
    assert(zx:send("!"))                         -- C's socket, after B's, in the same round
    socket.sleep(0.05)
    local deadline = now() + 5 * SLOW
    while not (st.ta.done and st.tb.done) and now() < deadline do assert(L:step(0.05)) end
    assert.is_true(tc.done)
    assert.equal("cancelled", st.a)
    assert.is_true(st.tb.done, "B's transfer was cancelled in A's place: B never woke")
    assert.equal("network", st.b)                -- its own answer: port 9 refuses
    L:forget_fd(z:getfd())
    zx:close()
    z:close()
    cleanup(L, st)
  end)
  end
end)
