--- smugoauth.apps.web (also smugoauth.webapp): SmugMug's web example (web.py)
-- as an app on smugoauth.http.server, safe by construction. Routes, as in
-- the original:
--
--   GET /            an "Authorize" link, or once authorized a form for an API path
--   GET /authorize   gets a request token (callback http://127.0.0.1:<port>/callback),
--                    remembers it for this browser in a sealed cookie, and
--                    redirects (302) to the provider's authorize page
--                    (Access=Full&Permissions=Modify)
--   GET /callback    trades oauth_verifier for an access token (kept in a sealed
--                    cookie) and redirects to /
--   GET /test?path=  makes the signed GET and shows the JSON, pretty-printed
--
--    local web = require "smugoauth.apps.web"
--    local app = assert(web.new{ client = assert(smugoauth.from_config()) })
--    local srv = assert(app:serve{})          -- 127.0.0.1:8090
--    srv:run()
--
-- What it guarantees:
--  * The app is advertised under the literal address it listens on
--    (`http://127.0.0.1:<port>`, `http://[::1]:<port>`), never as `localhost`
--    (RFC 8252 8.3): a browser resolving `localhost` may try `::1` first, where
--    another local user could be listening on the same port. The origin, the
--    callback URL and every redirect use that address. A request whose Host
--    header names another host than the app's own or its aliases (`hosts`), or
--    another port than the served one, or is malformed, is refused (421:
--    DNS-rebinding defence); one naming an alias (`localhost:<port>`) is
--    redirected to the same target on the app's origin, where its cookies are.
--  * Cookies are sealed (smugoauth.apps.callback, smugoauth.http.cookie): the
--    browser never sees a token secret, and a tampered, truncated, expired or
--    foreign cookie is simply no cookie. They are `HttpOnly; SameSite=Lax;
--    Path=/`, and `Secure` (with the `__Host-` name prefix) over https.
--  * `/callback` accepts only the `oauth_token` stored for this browser, once
--    (smugoauth.apps.callback); anything else is a 4xx page that changes
--    nothing (no provider call, no cookie).
--  * `/test` sends only paths under `/api/v2` (see `web.check_path`),
--    refused before any request is made otherwise. It accepts at most
--    `max_api_body` bytes from the API (more: a 502 page, the download cut
--    short) and shows at most `max_render` bytes of text (then says it was cut).
--  * `/test` and `/authorize` are refused (403) when the browser says the
--    request comes from another site (`Sec-Fetch-Site` other than
--    `same-origin` or `none`), and the provider calls of `/authorize` are
--    rate-limited app-wide (a token bucket: `authorize_rate` a minute, bursts
--    of `authorize_burst`; over it a 429 page with Retry-After).
--  * Everything reflected into HTML is escaped; every response carries the
--    security headers of smugoauth.http.html; provider and API failures are
--    shown as an escaped message (502), never a 500 or a traceback.
--  * One slow provider call stalls nobody: the server runs on the event loop
--    (smugoauth.loop), each request in its connection's task, and the
--    provider calls of `/authorize`, `/callback` and `/test` yield until
--    they are done (other requests are served meanwhile). Each call keeps
--    the client's `timeout`; a browser that goes away cancels it.
-- @module smugoauth.apps.web
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local server = require "smugoauth.http.server"
local html = require "smugoauth.http.html"
local callback = require "smugoauth.apps.callback"
local routes = require "smugoauth.apps.web.routes"

local byte, find, format, lower, match = string.byte, string.find, string.format, string.lower, string.match
local ceil, floor, tointeger = math.ceil, math.floor, math.tointeger

local RT_COOKIE = "smugoauth_rt"          -- the request token of a flow in progress
local REQUEST_TTL = 600                   -- seconds a started authorization stays valid
local SESSION_TTL = 7 * 86400             -- seconds the access-token cookie lives
local MAX_API_BODY = 2 * 1024 * 1024      -- bytes /test accepts from the API
local MAX_RENDER = 1024 * 1024            -- bytes of text /test shows (before HTML escaping)
local AUTHORIZE_RATE = 10                 -- provider calls a minute from /authorize (app-wide)
local AUTHORIZE_BURST = 5                 -- and at most this many at once

-- ------------------------------------------------------------ addresses

-- An IP address as the host of a URL: IPv6 in brackets; the unspecified
-- addresses (0.0.0.0, ::) as the loopback of their family, which is where a
-- browser on this machine reaches them. nil when addr is not an IP literal.
local function url_host(addr)
  addr = lower(addr)
  local v6 = match(addr, "^%[([%x:.]+)%]$") or match(addr, "^([%x:.]*:[%x:.]*)$")
  if v6 then
    if not find(v6, ":.*:") then return nil end
    if v6 == "::" or v6 == "0:0:0:0:0:0:0:0" then return "[::1]" end
    return "[" .. v6 .. "]"
  end
  local a, b, c, d = match(addr, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  for _, x in ipairs { a, b, c, d } do
    if #x > 3 or tonumber(x) > 255 then return nil end
  end
  if addr == "0.0.0.0" then return "127.0.0.1" end
  return addr
end

-- A Host header value split: the host (lower-case) and the port (the
-- scheme's default when absent); nil for anything malformed.
local function split_host(h, default_port)
  if type(h) ~= "string" then return nil end
  h = lower(h)
  local name, rest
  if byte(h) == 91 then name, rest = match(h, "^(%[[%x:.]+%])(.*)$")
  else name, rest = match(h, "^([^:]+)(.*)$") end
  if not name then return nil end
  if rest == "" then return name, default_port end
  local digits = match(rest, "^:([1-9]%d?%d?%d?%d?)$")
  local port = digits and tointeger(tonumber(digits))
  if not port or port > 65535 then return nil end
  return name, port
end

-- ------------------------------------------------------------ the app

local methods = {}
local mt = { __name = "smugoauth.WebApp", __index = methods }

local OPTIONS = {
  client = "table", host = "string", port = "number", key = "string", key_file = "string",
  secure = "boolean", callback = "string", session_ttl = "number", request_ttl = "number",
  hosts = "table", now = "function", log = "function", max_api_body = "number",
  max_render = "number", authorize_rate = "number", authorize_burst = "number",
}

local function default_log(msg)
  io.stderr:write("smugoauth.webapp: ", msg, "\n")
end

-- The cookie key from the options (key, key_file, or a fresh one): key, or
-- nil, err (code "io").
local function cookie_key(opts)
  if opts.key_file then
    local key, created = core.cookie_key_file(opts.key_file)     -- key, created | nil, message
    if not key then return nil, errors.new("io", created, { path = opts.key_file }) end
    return key, created
  end
  return opts.key or assert(core.random_bytes(32)), false
end

--- Create the web application (it does not listen: see `app:serve`, or
-- give `app:handler()` to `smugoauth.http.server.new`).
--
-- Options (defaults in brackets):
--
--  - `client` (required): a smugoauth client (`smugoauth.new` / `from_config`).
--  - `host` ["127.0.0.1"]: the IP address the app is reached at (a literal:
--    `"127.0.0.1"`, `"::1"` or `"[::1]"`; a name raises), in its origin and
--    callback URL; `app:serve` listens there and then uses the address it bound.
--  - `port` [8090]: the port in the callback URL; 0 takes the one `app:serve` binds.
--  - `key` [nil]: the 32-byte cookie master key.
--  - `key_file` [nil]: a file holding it (64 hex digits), which must be private
--    (0600, ours, not a symlink); created with a fresh key (atomically, 0600)
--    when absent. Without `key` or `key_file` a fresh random key is used: cookies
--    then last as long as the process.
--  - `secure` [false]: the app is reached over https (Secure cookies, https
--    callback); also implied per request by `req.scheme == "https"`.
--  - `callback` [http(s)://<host>:<port>/callback]: the OAuth callback URL.
--  - `request_ttl` [600], `session_ttl` [7 days]: cookie lifetimes, seconds.
--  - `hosts` [{"localhost", "127.0.0.1", "[::1]"}]: other names of this host
--    accepted in the Host header (with the served port), answered with a
--    redirect to the app's origin; any other Host gets 421 (DNS-rebinding
--    defence).
--  - `max_api_body` [2 MiB]: bytes `/test` accepts from the API (or the
--    client's `max_body` when smaller); a longer answer is a 502 page (code
--    `too_large`), the download stopped at the cap.
--  - `max_render` [1 MiB]: bytes of text `/test` shows (the JSON
--    pretty-printed, before HTML escaping); beyond it the text is cut, and the
--    page says so.
--  - `authorize_rate` [10], `authorize_burst` [5]: provider calls a minute
--    that `/authorize` may make (for the whole app), and how many at once;
--    beyond them `/authorize` answers 429 with Retry-After, calling nothing.
--  - `now` [os.time]: the clock (tests); the rate limit uses it too (else a
--    monotonic clock).
--  - `log` [stderr]: `function(message)` for provider failures and internal errors.
--
-- Misuse raises; a key file that cannot be used returns nil, err (code "io").
-- @tparam table opts
-- @return app | nil, err
local function new(opts)
  if type(opts) ~= "table" then error("webapp.new: options table expected", 2) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then error("webapp.new: unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= want then error(format("webapp.new: option '%s' must be a %s", k, want), 2) end
  end
  local client = opts.client
  if not client or type(client.request_token) ~= "function" then
    error("webapp.new: option 'client' (a smugoauth client) is required", 2)
  end
  local port = opts.port or 8090
  if not tointeger(port) or port < 0 or port > 65535 then
    error("webapp.new: option 'port' must be an integer from 0 to 65535", 2)
  end
  if opts.key and opts.key_file then error("webapp.new: give 'key' or 'key_file', not both", 2) end
  if opts.key and #opts.key ~= 32 then error("webapp.new: option 'key' must be 32 bytes", 2) end
  for _, k in ipairs { "request_ttl", "session_ttl" } do
    local v = opts[k]
    if v and (v ~= v or v < 1) then error("webapp.new: option '" .. k .. "' must be >= 1", 2) end
  end
  for _, k in ipairs { "max_api_body", "max_render", "authorize_burst" } do
    local v = opts[k]
    if v and (not tointeger(v) or v < 1) then
      error("webapp.new: option '" .. k .. "' must be a positive integer", 2)
    end
  end
  local rate = opts.authorize_rate or AUTHORIZE_RATE
  if rate ~= rate or rate <= 0 then error("webapp.new: option 'authorize_rate' must be > 0", 2) end
  local host = url_host(opts.host or "127.0.0.1")
  if not host then error("webapp.new: option 'host' must be an IP address (not a name)", 2) end
  local key, created = cookie_key(opts)
  if not key then return nil, created end
  local hosts = {}
  for _, h in ipairs(opts.hosts or { "localhost", "127.0.0.1", "[::1]" }) do hosts[lower(h)] = true end
  local burst = tointeger(opts.authorize_burst or AUTHORIZE_BURST)
  local clock = opts.now or os.time
  local self = setmetatable({
    client = client, host = host, port = tointeger(port), secure = opts.secure or false,
    callback_opt = opts.callback, key_created = created,
    session_ttl = floor(opts.session_ttl or SESSION_TTL),
    max_api_body = tointeger(opts.max_api_body or MAX_API_BODY),
    max_render = tointeger(opts.max_render or MAX_RENDER),
    hosts = hosts, clock = clock, log = opts.log or default_log,
    flow = callback.new { key = key, cookie = RT_COOKIE, ttl = opts.request_ttl or REQUEST_TTL,
                          now = clock, back = "/" },
    -- the /authorize token bucket: refill a second, capacity, tokens, when
    bucket = { rate = rate / 60, burst = burst, tokens = burst, at = nil,
               clock = opts.now or core.monotime },
  }, mt)
  self._key = setmetatable({ key }, { __tostring = function() return "REDACTED" end })
  self:_set_origin(self.secure and "https" or "http")
  return self
end

-- Where the app is reached and where the provider sends the user back.
function methods:_set_origin(scheme)
  self.scheme = scheme
  self.origin = scheme .. "://" .. self.host .. ":" .. self.port
  self.callback = self.callback_opt or (self.origin .. "/callback")
end

--- The clock, whole seconds.
function methods:now()
  return floor(self.clock())
end

--- The request handler for `smugoauth.http.server.new{handler = ...}`.
function methods:handler()
  return function(req) return self:handle(req) end
end

--- Listen and return the server (not yet running: call `srv:run()`).
-- opts: host [the app's host], port [the app's port], tls (luasec server
-- parameters: https), log, loop [smugoauth.loop's default loop]. The
-- address and port bound become the app's origin and callback URL (as an IP
-- literal, whatever name `host` gave; a port 0 becomes the one picked).
-- Each request is handled in its connection's task of the loop: the
-- provider calls of `/authorize`, `/callback` and `/test` yield, and the
-- other requests are served meanwhile; a browser that goes away cancels
-- its provider call.
-- @return server | nil, message
function methods:serve(opts)
  opts = opts or {}
  local srv, err = server.new {
    host = opts.host or match(self.host, "^%[(.*)%]$") or self.host,
    port = opts.port or self.port, tls = opts.tls,
    handler = self:handler(), log = opts.log or self.log, loop = opts.loop,
  }
  if not srv then return nil, err end
  local addr = srv.host
  if srv.listener and srv.listener.getsockname then addr = srv.listener:getsockname() end
  local host = url_host(addr)
  if not host then
    srv:close()
    return nil, "serve: bound an address that cannot be written in a URL: " .. tostring(addr)
  end
  self.host, self.port = host, srv.port
  self:_set_origin((self.secure or srv.scheme == "https") and "https" or "http")
  return srv
end

-- Take one token from the /authorize bucket: true, or false and the seconds
-- until the next one.
function methods:_take_token()
  local b = self.bucket
  local now = b.clock()
  if b.at then
    local dt = now - b.at
    if dt > 0 then b.tokens = math.min(b.burst, b.tokens + dt * b.rate) end
  end
  b.at = now
  if b.tokens >= 1 then
    b.tokens = b.tokens - 1
    return true
  end
  return false, math.max(1, ceil((1 - b.tokens) / b.rate))
end

--- Handle one request (see the module comment for the routes).
function methods:handle(req)
  local ok, status, headers, body = xpcall(self._route, debug.traceback, self, req)
  if ok then return status, headers, body end
  self.log("internal error: " .. tostring(status))
  return html.problem(500, "Internal error", "Something went wrong; the details are in the server log.", nil, "/")
end

function methods:_route(req)
  local secure = self.secure or req.scheme == "https"
  local name, port = split_host(req.headers.host, secure and 443 or 80)
  if not name or port ~= self.port or (name ~= self.host and not self.hosts[name]) then
    return html.problem(421, "Misdirected request", "This server only answers for " .. self.origin .. ".",
      nil, "/")
  end
  local route = routes.routes[req.path]
  if not route then return html.problem(404, "Not found", "There is no page here.", nil, "/") end
  if req.method ~= "GET" and not (req.method == "HEAD" and req.path == "/") then
    return html.problem(405, "Method not allowed", "Only GET is used here.",
      { Allow = req.path == "/" and "GET, HEAD" or "GET" }, "/")
  end
  -- another name of this host (localhost): the same page on the app's origin,
  -- where the cookies are set and where the provider sends the user back
  if name ~= self.host then
    local q = req.query ~= "" and ("?" .. req.query) or ""
    return html.redirect(self.origin .. req.path .. q)
  end
  return route(self, req, secure)
end

return {
  new = new,
  App = methods,
  methods = methods,
  mt = mt,
  check_path = routes.check_path,
  CSP = html.CSP,
  DEFAULT_PATH = routes.DEFAULT_PATH,
  RT_COOKIE = RT_COOKIE,
  AT_COOKIE = routes.AT_COOKIE,
  REQUEST_TTL = REQUEST_TTL,
  SESSION_TTL = SESSION_TTL,
  MAX_PATH = routes.MAX_PATH,
  MAX_PARAM = callback.MAX_PARAM,
  MAX_API_BODY = MAX_API_BODY,
  MAX_RENDER = MAX_RENDER,
  AUTHORIZE_RATE = AUTHORIZE_RATE,
  AUTHORIZE_BURST = AUTHORIZE_BURST,
}
