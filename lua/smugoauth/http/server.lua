--- smugoauth.http.server: a minimal HTTP/1.1 server for local use (OAuth
-- callbacks, small consoles), on LuaSocket non-blocking sockets, on the one
-- event loop (smugoauth.loop): its listener and every connection are
-- registered with a loop, and each connection is a task of that loop
-- (smugoauth.http.connection), so one slow or idle client never stalls the
-- others, and a handler may call the API (the request yields; the other
-- connections are served meanwhile). Every byte it parses or writes goes
-- through smugoauth.http.codec, which also lists what is refused.
--
--    local server = require "smugoauth.http.server"
--    local srv = assert(server.new{
--      port = 0,
--      handler = function(req)
--        return 200, {["Content-Type"] = "text/plain"}, "hello " .. req.path
--      end,
--    })
--    print(srv.port)
--    srv:run()
--
-- Beyond the codec's refusals: a body its request is not declared to take
-- (option `body`: none by default) or over what is declared or over max_body
-- (413, before any body byte is read), a body that would take the bodies in
-- flight over max_body_total (503 with Retry-After), a request not complete
-- within request_timeout (408).
-- @module smugoauth.http.server
local socket = require "socket"
local core = require "smugoauth.core"
local loop = require "smugoauth.loop"
local codec = require "smugoauth.http.codec"
local connection = require "smugoauth.http.connection"
local tasks = require "smugoauth.http.tasks"
local html = require "smugoauth.http.html"
local request = require "smugoauth.http.request"
local cookie = require "smugoauth.http.cookie"

local find, format, gsub = string.find, string.format, string.gsub
local monotime, cloexec = core.monotime, core.cloexec
local pairs, ipairs, type, tostring, tonumber, setmetatable, getmetatable, error =
  pairs, ipairs, type, tostring, tonumber, setmetatable, getmetatable, error
local tointeger = math.tointeger

local ACCEPT_BURST = 256     -- connections accepted per readiness event

local methods = {}
local mt = {__name = "smugoauth.HttpServer", __index = methods}

local function default_log(msg)
  io.stderr:write("smugoauth.http.server: ", msg, "\n")
end

-- option name -> {lua type(s) ("a|b"), default}
local OPTIONS = {
  host = {"string", "127.0.0.1"},
  port = {"number", 0},
  handler = {"function", nil},
  backlog = {"number", 1024},
  max_request_line = {"number", 8192},
  max_header_bytes = {"number", 16384},
  max_headers = {"number", 100},
  max_body = {"number", 1024 * 1024},
  body = {"function|table|boolean", nil},
  max_body_total = {"number", nil},               -- nil: see new
  request_timeout = {"number", 10},
  idle_timeout = {"number", 30},
  send_timeout = {"number", 10},
  max_connections = {"number", 10000},
  tls = {"table", nil},
  log = {"function", default_log},
  loop = {"table", nil},                          -- nil: smugoauth.loop's default loop
}

-- Check the options (misuse raises, at the caller of new) and fill in the
-- defaults: the server's table.
local function options(opts)
  if type(opts) ~= "table" then error("server.new: options table expected", 3) end
  local self = {}
  for k, v in pairs(opts) do
    local spec = OPTIONS[k]
    if not spec then error("server.new: unknown option '" .. tostring(k) .. "'", 3) end
    if not find("|" .. spec[1] .. "|", "|" .. type(v) .. "|", 1, true) then
      error(format("server.new: option '%s' must be a %s", k, gsub(spec[1], "|", " or ")), 3)
    end
  end
  for k, spec in pairs(OPTIONS) do
    local v = opts[k]
    if v == nil then v = spec[2] end
    self[k] = v
  end
  if not self.handler then error("server.new: option 'handler' is required", 3) end
  if self.loop == nil then
    self.loop = loop.default()
  elseif getmetatable(self.loop) ~= loop.mt or self.loop.closed then
    error("server.new: option 'loop' must be an open smugoauth.Loop", 3)
  end
  if self.max_body_total == nil then
    self.max_body_total = math.max(16 * 1024 * 1024, tointeger(self.max_body) or 0)
  end
  for _, k in ipairs{"port", "backlog", "max_request_line", "max_header_bytes",
                     "max_headers", "max_body", "max_body_total", "max_connections"} do
    if not tointeger(self[k]) or self[k] < 0 then
      error(format("server.new: option '%s' must be a non-negative integer", k), 3)
    end
  end
  for _, k in ipairs{"request_timeout", "idle_timeout", "send_timeout"} do
    local v = self[k]
    if v ~= v or v <= 0 then error(format("server.new: option '%s' must be positive", k), 3) end
  end
  if type(self.body) == "table" then
    for path, limit in pairs(self.body) do
      if type(path) ~= "string" or path:byte() ~= 47 then
        error("server.new: option 'body': keys must be paths starting with '/'", 3)
      end
      if limit ~= true and not (type(limit) == "number" and tointeger(limit) and limit >= 0) then
        error(format("server.new: option 'body': the limit for '%s' must be a non-negative " ..
                     "integer or true", path), 3)
      end
    end
  end
  return self
end

--- Create a server listening on host:port.
--
-- Options (defaults in brackets):
--
--  - `handler` (required): `function(req) -> status, headers, body`.
--    `req` (smugoauth.http.request) has `method`, `target` (raw), `path`
--    (raw, undecoded), `query` (raw, `""` if none), `version` (`"1.0"` /
--    `"1.1"`), `headers` (map of lower-case name to value; repeated fields
--    joined with `", "`, cookies with `"; "`), `body` (string), `peer`
--    (`"ip:port"`), `scheme` (`"http"` / `"https"`), and on first use
--    `params` (map of decoded query names to their first value),
--    `params_list` (`{name, value}` pairs), `cookies` (map) and `form()` (the
--    decoded urlencoded body: map, list; empty when Content-Type is something
--    else; `req:form()` works too).
--    It returns an integer status (200-599); headers as a map of name to
--    string (or to an array of strings, sent as repeated fields) or as an
--    array of `{name, value}` pairs; and a body (string, array of strings,
--    nil, or a function: a streamed body, below). Content-Length and Date
--    are set by the loop (a handler's Content-Length and Transfer-Encoding
--    are dropped; its Date is kept);
--    `Connection: close` from the handler closes after the response. HEAD,
--    204 and 304 responses carry no body. A Lua error in the handler, or an
--    invalid answer (a header name or value with CR, LF or NUL, ...), becomes a
--    500 with a generic body, logged without request data. The handler runs
--    inside the connection's task (a task of the server's loop, which serves
--    that connection's requests in turn, and later connections once it has
--    ended) and may yield (a request of the library,
--    `smugoauth.sleep`): the other connections are served meanwhile. If the
--    client goes away before the handler returns (EOF or reset), the task
--    is cancelled (`task:cancel`): the request it waits for returns nil, err
--    code "cancelled", and so does every later one; its answer is then
--    sent only as far as it goes at once. Bytes of a next pipelined request
--    that arrive meanwhile are kept. A handler must not block for long
--    without yielding (nothing else runs meanwhile).
--    A streamed body: the body is a function, called in the connection's
--    task after the head has gone out, once per piece: it returns the next
--    piece (a string) or nil at the end, and may yield (a sleep paces it;
--    the pieces need never be in memory together). With a Content-Length
--    from the handler (a decimal integer) that is the length, and the
--    pieces must add up to it; without, the body is sent chunked (HTTP/1.0:
--    until the connection closes). A body that ends short of its
--    Content-Length, a function that raises or returns a non-string, a
--    client that leaves: the connection is closed there (what was sent
--    stays sent; the client sees a truncated body), nothing more is read
--    from it. HEAD, 204 and 304 do not call the function.
--  - `host` ["127.0.0.1"]: address to listen on.
--  - `port` [0]: 0 picks a free port; `srv.port` tells which.
--  - `backlog` [1024]: listen() backlog.
--  - `max_request_line` [8192]: bytes in the request line, else 414.
--  - `max_header_bytes` [16384]: bytes in the header section, else 431.
--  - `max_headers` [100]: header fields, else 431.
--  - `body` [nil: no request takes a body]: which requests may carry a body,
--    and how many bytes. A request with a non-zero Content-Length that its
--    declaration does not allow is answered 413 and closed before a byte of
--    its body is read (and gets no `100 Continue`). One of:
--    - a function `function(req) -> max bytes`, called for each request with a
--      non-zero Content-Length once its head is parsed: `req` is the request
--      as the handler will see it (`method`, `path`, `headers`, `params`, ...)
--      but without `body`. It returns an integer >= 0 (nil or false: 0; true:
--      max_body). A Lua error in it, or another answer, becomes a 500, logged.
--    - a table mapping a raw `req.path` (exact match, any method) to its max
--      bytes (an integer >= 0, or true for max_body); other paths take none.
--    - true: every request may carry up to max_body.
--    Declared limits are capped by max_body. `srv.body` may be replaced
--    between requests.
--  - `max_body` [1 MiB]: the largest body any request may have, else 413.
--  - `max_body_total` [16 MiB, or max_body when larger]: bytes of request
--    bodies in flight at once, over all connections (reserved from a body's
--    Content-Length when it is admitted, given back once its handler has
--    returned). A body that does not fit now is refused with 503 and
--    `Retry-After: 1` (and a close), not buffered; one larger than the whole
--    budget with 413.
--  - `request_timeout` [10]: seconds to receive a whole request (from its first
--    byte, or from accept for the first one), else 408 and close.
--  - `idle_timeout` [30]: seconds a keep-alive connection may wait for its
--    next request before it is closed.
--  - `send_timeout` [10]: seconds to send one response, else close.
--  - `max_connections` [10000]: open client connections; beyond it new ones
--    are accepted and closed at once.
--  - `tls` [nil]: luasec server parameters (`mode = "server"`, `protocol`,
--    `key`, `certificate`, ...) to serve https.
--  - `log` [stderr]: `function(message)` for handler errors and internal faults.
--  - `loop` [smugoauth.loop's default loop]: the smugoauth.Loop the server
--    registers its listener and connections with. Several servers and other
--    tasks may share one loop; `srv:run()` and `srv:step()` drive it (all of
--    it), and so does the loop's own `run`/`step`/`call`.
--
-- Unknown options and wrong types raise. Returns the server, or nil, message
-- when the address cannot be bound (or the TLS context cannot be made).
-- The server has fields `host`, `port` (the bound port), `scheme`
-- ("http" / "https") and `loop`, and methods `run`, `step`, `stop`,
-- `connections`, `close` (also `__close`, so `local srv <close> = ...`
-- works). `srv.handler` and `srv.body` may be replaced between requests.
-- The loop holds the server until it is closed: close it when done.
-- @tparam table opts
-- @return server | nil, message
local function new(opts)
  local self = options(opts)
  if self.tls then
    local ssl = require "ssl"
    local ctx, err = ssl.newcontext(self.tls)
    if not ctx then return nil, "server.new: TLS context: " .. tostring(err) end
    self.ssl, self.tls = ssl, ctx
    self.scheme = "https"
  else
    self.scheme = "http"
  end

  local lst, err = socket.bind(self.host, self.port, self.backlog)
  if not lst then
    return nil, format("server.new: cannot listen on %s:%d: %s", self.host, self.port, err)
  end
  lst:settimeout(0)
  local _, port = lst:getsockname()
  self.port = tonumber(port)
  self.listener, self.lfd = lst, lst:getfd()
  cloexec(self.lfd)                               -- not in a program a handler starts (a browser)
  self.conns, self.nconn = {}, 0
  self.idle, self.nidle = {}, 0                   -- the pool of tasks waiting for a connection
  self._pool_idle = tasks.POOL_IDLE
  self.body_inflight = 0
  self.now = monotime()
  self.date_at, self.date_line = -1, nil
  self.stopped, self.closed = false, false
  setmetatable(self, mt)
  self.on_accept = function() return self:_accept() end
  self.on_read = tasks.watcher(self)              -- a connection's socket, while its handler runs
  local ok, aerr = self.loop:watch_fd(self.lfd, "r", self.on_accept)
  if not ok then
    lst:close()
    return nil, "server.new: " .. tostring(aerr)
  end
  -- the deadlines: a sweep at most every 0.25 s (a timer per wait would cost
  -- more on every keep-alive request than this costs in all)
  local shortest = math.min(self.request_timeout, self.idle_timeout, self.send_timeout)
  self.sweep_every = math.max(0.01, math.min(0.25, shortest / 4))
  self.sweeper = self.loop:every(self.sweep_every, function() return self:_sweep() end)
  return self
end

-- "Date: ...\r\n", refreshed at most once a second (for the connections).
function methods:_date()
  if self.now >= self.date_at then
    self.date_line = codec.date_line(os.time())
    self.date_at = self.now + 1
  end
  return self.date_line
end

-- Accept what the listener has queued (the loop calls this when the
-- listener is readable; outside any task).
function methods:_accept()
  local lst, lp = self.listener, self.loop
  for _ = 1, ACCEPT_BURST do
    local s, err = lst:accept()
    if not s then
      if err ~= "timeout" then           -- EMFILE and the like: pause for a moment
        lp:forget_fd(self.lfd)
        self.accept_paused = monotime() + 0.1
      end
      return
    end
    if self.nconn >= self.max_connections then
      s:close()
    else
      s:settimeout(0)
      s:setoption("tcp-nodelay", true)
      local ip, port = s:getpeername()
      local fd = s:getfd()
      cloexec(fd)
      if self.tls then
        local w = self.ssl.wrap(s, self.tls)
        if w then w:settimeout(0) else s:close() end
        s = w
      end
      if s then
        local peer = ip and (find(ip, ":", 1, true) and "[" .. ip .. "]:" or ip .. ":") .. port or "?"
        local c = connection.new(self, s, fd, peer)
        self.conns[fd] = c
        self.nconn = self.nconn + 1
        tasks.start(self, c)
      end
    end
  end
end

-- The end of connection c (its __close): see smugoauth.http.tasks.
function methods:_ended(c, err)
  return tasks.ended(self, c, err)
end

-- The deadlines and the accept pause (every sweep_every seconds).
function methods:_sweep()
  tasks.sweep(self)
  if self.accept_paused and self.now >= self.accept_paused then
    self.accept_paused = nil
    self.loop:watch_fd(self.lfd, "r", self.on_accept)
  end
end

-- Raise unless called from outside every task (run/step drive the loop).
local function outside(fname)
  if loop.current() then error(fname .. ": not from inside a task (the loop is already running)", 3) end
end

--- One round of the server's loop: wait up to `timeout` seconds (default:
-- until the next timeout check, at most 0.25 s) for readiness, serve what is
-- ready, expire what timed out; other tasks of the loop run too. Not from
-- inside a task.
-- @tparam[opt] number timeout
-- @return true | nil, message, code (the loop's reactor failed) | nil, err,
-- task (a task of the loop failed and nobody joins it: see smugoauth.loop)
function methods:step(timeout)
  if self.closed then error("attempt to use a closed smugoauth.HttpServer", 2) end
  outside("step")
  return self.loop:step(timeout)
end

--- Serve until `srv:stop()` is called (typically from a handler), driving
-- the server's loop (its other tasks run too). Raises the error of a task
-- of the loop that failed with nobody joining it, as `loop:run()` does. Not
-- from inside a task.
-- @return true | nil, message, code (the loop's reactor failed)
function methods:run()
  if self.closed then error("attempt to use a closed smugoauth.HttpServer", 2) end
  outside("run")
  self.stopped = false
  local lp = self.loop
  while not self.stopped do
    local ok, err, x = lp:step()
    if not ok then
      if getmetatable(x) == loop.task_mt then
        if type(err) == "string" and x.trace then error(x.trace, 0) end
        error(err, 0)
      end
      return nil, err, x
    end
  end
  return true
end

--- Make `run()` return after the current round.
function methods:stop()
  self.stopped = true
end

--- Number of open client connections.
function methods:connections()
  return self.nconn
end

--- Close every connection (a handler still running is cancelled, see
-- `handler`) and the listener, and leave the loop (idempotent).
function methods:close()
  if self.closed then return end
  self.closed, self.stopped = true, true
  local lp = self.loop
  self.sweeper.cancel()
  if not lp.closed then lp:forget_fd(self.lfd) end
  self.listener:close()
  tasks.close(self)
end
mt.__close = methods.close

return {
  new = new,
  methods = methods,
  mt = mt,
  -- the helpers smugoauth.httpd exported, kept under their old names
  escape_html = html.escape,
  parse_query = request.parse_query,
  parse_cookies = cookie.parse,
}
