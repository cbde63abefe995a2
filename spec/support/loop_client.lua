--- support.loop_client: HTTP clients that run as tasks of a smugoauth.loop,
-- for specs that put servers (smugoauth.http.server, the web app, the
-- sandbox) and their clients on one loop in one process.
--
--     local lc = require "support.loop_client"
--     local L = loop.new()
--     local srv = assert(server.new { loop = L, handler = ... })
--     L:call(function()
--       local res = lc.get(L, "http://127.0.0.1:" .. srv.port .. "/x")   -- yields
--       -- res.status, res.body, lc.header(res, "content-type"), res.took (seconds)
--     end)
--
-- Requests go through the loop's reactor (libcurl), on 127.0.0.1 only, with
-- a bounded timeout; `raw` opens a plain socket for what curl cannot do
-- (leave in the middle of a request).
local core = require "smugoauth.core"
local socket = require "socket"

local M = {}

local http                               -- one client for every request (5 s timeout)

--- GET (or o.method) url from inside a task of lp, yielding: the response
-- ({status, headers = {{name, value}, ...}, body}) with `took` (seconds), or
-- nil, message, code. o: headers (array of "Name: value"), method, timeout.
function M.get(lp, url, o)
  o = o or {}
  assert(url:match("^http://127%.0%.0%.1:%d+/"), "loop_client: only http://127.0.0.1:<port>/ URLs")
  http = http or core.http_new { timeout = 10 }
  local t0 = core.monotime()
  local res, msg, code = lp:transfer(http, { method = o.method or "GET", url = url, headers = o.headers,
                                             timeout = o.timeout or 5 })
  if not res then return nil, msg, code end
  res.took = core.monotime() - t0
  return res
end

--- The value of header `name` (any case) in a response of `get`, or nil.
function M.header(res, name)
  name = name:lower()
  for _, h in ipairs(res.headers) do
    if h[1]:lower() == name then return h[2] end
  end
  return nil
end

--- A plain socket connected to 127.0.0.1:port that has sent `bytes`
-- (non-blocking afterwards); the caller closes it.
function M.raw(port, bytes)
  local s = assert(socket.connect("127.0.0.1", port))
  s:settimeout(5)
  assert(s:send(bytes))
  s:settimeout(0)
  return s
end

--- Everything a raw socket receives until the peer closes or `seconds`
-- pass, from inside a task of lp (waiting with lp:wait_fd).
function M.read_all(lp, s, seconds)
  local got, deadline = {}, core.monotime() + seconds
  while true do
    local data, err, partial = s:receive(65536)
    data = data or partial
    if data and data ~= "" then got[#got + 1] = data end
    if err == "closed" or core.monotime() > deadline then break end
    if err then lp:wait_fd(s:getfd(), "r", deadline) end
  end
  lp:forget_fd(s:getfd())
  return table.concat(got)
end

--- Run fn(...) as a task of lp and the loop until it is done, at most
-- `limit` seconds (the spec fails beyond): fn's results.
function M.call(lp, limit, fn, ...)
  local t = lp:spawn(fn, ...)
  local deadline = core.monotime() + limit
  while not t.done do
    assert(core.monotime() < deadline, "loop_client.call: not done within " .. limit .. " s")
    local ok, err, failed = lp:step(0.05)       -- a task that raised: its error, traceback
    if not ok then error(type(failed) == "table" and failed.trace or err, 0) end
  end
  if not t.ok then error(t.trace or t.err, 0) end
  return table.unpack(t.results, 1, t.results.n)
end

return M
