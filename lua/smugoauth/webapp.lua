--- smugoauth.webapp: SmugMug's web example (web.py) as a module, safe by
-- construction. Routes, as in the original:
--
--   GET /            an "Authorize" link, or once authorized a form for an API path
--   GET /authorize   gets a request token (callback http://localhost:<port>/callback),
--                    remembers it for this browser in a sealed cookie, and
--                    redirects (302) to the provider's authorize page
--                    (Access=Full&Permissions=Modify)
--   GET /callback    trades oauth_verifier for an access token (kept in a sealed
--                    cookie) and redirects to /
--   GET /test?path=  makes the signed GET and shows the JSON, pretty-printed
--
--    local webapp = require "smugoauth.webapp"
--    local app = assert(webapp.new{ client = assert(smugoauth.from_config()) })
--    local srv = assert(app:serve{})          -- 127.0.0.1:8090
--    srv:run()
--
-- What it guarantees:
--  * Cookies are sealed with `core.cookie_seal` (AES-256-GCM + HMAC-SHA256,
--    bound to the cookie name and an expiry): the browser never sees a token
--    secret, and a tampered, truncated, expired or foreign cookie is simply no
--    cookie. They are `HttpOnly; SameSite=Lax; Path=/`, and `Secure` (with the
--    `__Host-` name prefix) when served over https.
--  * `/callback` accepts only the `oauth_token` stored for this browser, once;
--    anything else is a 4xx page that changes nothing (no provider call, no cookie).
--  * `/test` sends only paths under `/api/v2` (see `webapp.check_path`),
--    refused before any request is made otherwise.
--  * Everything reflected into HTML is escaped; every response carries
--    `X-Content-Type-Options: nosniff`, a restrictive Content-Security-Policy and
--    `Cache-Control: no-store`; provider and API failures are shown as an
--    escaped message (502), never a 500 or a traceback.
-- @module smugoauth.webapp
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local errors = require "smugoauth.errors"
local httpd = require "smugoauth.httpd"
local json = require "smugoauth.json"

local E = httpd.escape_html
local byte, find, format, lower, match, sub, gsub =
  string.byte, string.find, string.format, string.lower, string.match, string.sub, string.gsub
local floor, tointeger = math.floor, math.tointeger

local M = {}

M.DEFAULT_PATH = "/api/v2!authuser"
M.RT_COOKIE = "smugoauth_rt"          -- the request token of a flow in progress
M.AT_COOKIE = "smugoauth_at"          -- the access token
M.REQUEST_TTL = 600                   -- seconds a started authorization stays valid
M.SESSION_TTL = 7 * 86400             -- seconds the access-token cookie lives
M.MAX_PATH = 2048                     -- longest API path (with its query) accepted
M.MAX_PARAM = 512                     -- longest oauth_token / oauth_verifier accepted

M.CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

-- Headers every response carries.
local BASE_HEADERS = {
  ["Content-Security-Policy"] = M.CSP,
  ["X-Content-Type-Options"] = "nosniff",
  ["Cache-Control"] = "no-store",
  ["Referrer-Policy"] = "no-referrer",
  ["X-Frame-Options"] = "DENY",
  ["Cross-Origin-Opener-Policy"] = "same-origin",
  ["Cross-Origin-Resource-Policy"] = "same-origin",
}

-- ------------------------------------------------------------ API paths

-- Characters allowed in the raw path parameter: RFC 3986 path and query
-- characters less '@', '#', '[', ']' (no space, no control, no backslash,
-- nothing beyond ASCII).
local BAD_RAW = "[^%w%-%._~!$&'()*+,;=:/?%%]"

-- Decode %XX escapes (all of them, '+' kept); nil when a '%' is not followed
-- by two hex digits.
local function pct_decode(s)
  if find(s, "%%%X") or find(s, "%%%x%X") or find(s, "%%%x?$") then return nil end
  return (gsub(s, "%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- Check an API path given by the user (`/test?path=`): it must stay on the
-- API origin, under `/api/v2`. Refused: anything not starting with `/api/v2`
-- followed by the end, `/`, `!` or `?` (so `/api/v2.evil.com`, `/api/v2@evil`,
-- `/api/v2:80@evil` are out); absolute URLs; `@`, `\`, `#`, whitespace,
-- control and non-ASCII characters; `//` and `..`; any `%` in the path part;
-- and in the query, percent-escapes that decode (once or more) to any of these.
-- @tparam string p
-- @return p | nil, reason
function M.check_path(p)
  if type(p) ~= "string" or p == "" then return nil, "empty path" end
  if #p > M.MAX_PATH then return nil, "path too long" end
  if find(p, BAD_RAW) then
    return nil, "path has a character that is not allowed (space, control, '@', '\\', '#', ...)"
  end
  if sub(p, 1, 7) ~= "/api/v2" then return nil, "path must start with /api/v2" end
  local nxt = sub(p, 8, 8)
  if nxt ~= "" and nxt ~= "/" and nxt ~= "!" and nxt ~= "?" then
    return nil, "path must continue /api/v2 with '/', '!' or '?'"
  end
  local q = find(p, "?", 1, true)
  local path = q and sub(p, 1, q - 1) or p
  if find(path, "%", 1, true) then return nil, "percent-escapes are not allowed in the path" end
  if find(path, ":", 1, true) then return nil, "':' is not allowed in the path" end
  -- the raw form, then the query decoded until it no longer changes
  local s = p
  for _ = 1, 4 do
    if find(s, "//", 1, true) then return nil, "'//' is not allowed" end
    if find(s, "..", 1, true) then return nil, "'..' is not allowed" end
    if find(s, "[@\\#%z\1-\32\127]") then
      return nil, "path decodes to a character that is not allowed"
    end
    local d = pct_decode(s)
    if not d then return nil, "malformed percent-escape" end
    if d == s then return p end
    s = d
  end
  return nil, "path is percent-encoded too many times"
end

-- ------------------------------------------------------------ pages

local function page(title, body)
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" ..
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" ..
    "<title>" .. E(title) .. " - smugoauth</title></head>\n<body>\n<h1>" .. E(title) ..
    "</h1>\n" .. body .. "\n</body></html>\n"
end

local function path_form(path)
  return "<form action=\"/test\" method=\"get\">\n" ..
    "<label for=\"path\">API path</label>\n" ..
    "<input type=\"text\" id=\"path\" name=\"path\" size=\"60\" value=\"" .. E(path) .. "\">\n" ..
    "<button type=\"submit\" id=\"send\">GET</button>\n</form>"
end

-- The message of an error value (a smugoauth error or anything else).
local function err_text(err)
  if errors.is(err) then return tostring(err) end
  return tostring(err or "unknown error")
end

-- ------------------------------------------------------------ the app

local App = {}
local app_mt = { __name = "smugoauth.WebApp", __index = App }

local OPTIONS = {
  client = "table", port = "number", key = "string", key_file = "string",
  secure = "boolean", callback = "string", session_ttl = "number", request_ttl = "number",
  hosts = "table", now = "function", log = "function",
}

local function default_log(msg)
  io.stderr:write("smugoauth.webapp: ", msg, "\n")
end

--- Create the web application (it does not listen: see `app:serve`, or
-- give `app:handler()` to `httpd.new`).
--
-- Options (defaults in brackets):
--
--  - `client` (required): a smugoauth client (`smugoauth.new` / `from_config`).
--  - `port` [8090]: the port in the callback URL; 0 takes the one `app:serve` binds.
--  - `key` [nil]: the 32-byte cookie master key.
--  - `key_file` [nil]: a file holding it (64 hex digits), which must be private
--    (0600, ours, not a symlink); created with a fresh key (atomically, 0600)
--    when absent. Without `key` or `key_file` a fresh random key is used: cookies
--    then last as long as the process.
--  - `secure` [false]: the app is reached over https (Secure cookies, https
--    callback); also implied per request by `req.scheme == "https"`.
--  - `callback` [http(s)://localhost:<port>/callback]: the OAuth callback URL.
--  - `request_ttl` [600], `session_ttl` [7 days]: cookie lifetimes, seconds.
--  - `hosts` [{"localhost", "127.0.0.1", "[::1]"}]: host names accepted in the
--    Host header (others get 421: DNS-rebinding defence).
--  - `now` [os.time]: the clock (tests).
--  - `log` [stderr]: `function(message)` for provider failures and internal errors.
--
-- Misuse raises; a key file that cannot be used returns nil, err (code "io").
-- @tparam table opts
-- @return app | nil, err
function M.new(opts)
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
  local key, created = opts.key, false
  if opts.key_file then
    key, created = core.cookie_key_file(opts.key_file)     -- key, created | nil, message
    if not key then return nil, errors.new("io", created, { path = opts.key_file }) end
  elseif not key then
    key = core.random_bytes(32)
  end
  local hosts = {}
  for _, h in ipairs(opts.hosts or { "localhost", "127.0.0.1", "[::1]" }) do hosts[lower(h)] = true end
  local self = setmetatable({
    client = client, port = tointeger(port), secure = opts.secure or false,
    callback_opt = opts.callback, key_created = created,
    request_ttl = floor(opts.request_ttl or M.REQUEST_TTL),
    session_ttl = floor(opts.session_ttl or M.SESSION_TTL),
    hosts = hosts, clock = opts.now or os.time, log = opts.log or default_log,
    used = {}, used_n = 0,
  }, app_mt)
  self._key = setmetatable({ key }, { __tostring = function() return "REDACTED" end })
  self:_set_origin(self.secure and "https" or "http")
  return self
end

-- Where the app is reached and where the provider sends the user back.
function App:_set_origin(scheme)
  self.scheme = scheme
  self.origin = scheme .. "://localhost:" .. self.port
  self.callback = self.callback_opt or (self.origin .. "/callback")
end

function App:now()
  return floor(self.clock())
end

--- The request handler for `httpd.new{handler = ...}`.
function App:handler()
  return function(req) return self:handle(req) end
end

--- Listen and return the httpd server (not yet running: call `srv:run()`).
-- opts: host ["127.0.0.1"], port [the app's port], tls (luasec server
-- parameters: https), log. When the port was 0 the bound port becomes the
-- app's (callback URL included).
-- @return server | nil, message
function App:serve(opts)
  opts = opts or {}
  local srv, err = httpd.new {
    host = opts.host or "127.0.0.1", port = opts.port or self.port, tls = opts.tls,
    handler = self:handler(), log = opts.log or self.log,
  }
  if not srv then return nil, err end
  self.port = srv.port
  self:_set_origin((self.secure or srv.scheme == "https") and "https" or "http")
  return srv
end

-- ------------------------------------------------------------ cookies

-- The cookie name as it is sent (with __Host- when Secure).
local function cookie_name(secure, name)
  return secure and "__Host-" .. name or name
end

local function set_cookie(secure, name, value, max_age)
  return cookie_name(secure, name) .. "=" .. value .. "; Path=/; Max-Age=" .. max_age ..
    "; HttpOnly; SameSite=Lax" .. (secure and "; Secure" or "")
end

local function clear_cookie(secure, name)
  return set_cookie(secure, name, "", 0)
end

-- Seal {t = token, s = secret} for the named cookie: the Set-Cookie value,
-- or nil when it cannot fit in a cookie.
function App:_seal(secure, name, token, secret, ttl)
  local payload = cjson.encode { t = token, s = secret }
  if not payload or #payload > core.cookie_max_payload then return nil end
  local full = cookie_name(secure, name)
  return set_cookie(secure, name, core.cookie_seal(self._key[1], full, payload, self:now() + ttl), ttl)
end

-- The {t, s} record of the named cookie, or nil, reason ("absent",
-- "malformed", "bad_mac", "expired", ...): a bad cookie is no cookie.
function App:_open(req, secure, name)
  local full = cookie_name(secure, name)
  local raw = req.cookies[full]
  if raw == nil or raw == "" then return nil, "absent" end
  local payload, why = core.cookie_open(self._key[1], full, raw, self:now())
  if not payload then return nil, why end
  local t = cjson.decode(payload)
  if type(t) ~= "table" or type(t.t) ~= "string" or t.t == "" or type(t.s) ~= "string" then
    return nil, "malformed"
  end
  return t
end

-- Forget used request tokens whose cookies have expired.
function App:_prune(now)
  if self.used_n == 0 then return end
  for t, exp in pairs(self.used) do
    if exp <= now then
      self.used[t] = nil
      self.used_n = self.used_n - 1
    end
  end
end

-- ------------------------------------------------------------ responses

local function respond(status, extra, body)
  local h = { ["Content-Type"] = "text/html; charset=utf-8" }
  for k, v in pairs(BASE_HEADERS) do h[k] = v end
  for k, v in pairs(extra or {}) do h[k] = v end
  return status, h, body or ""
end

local function html(status, title, body, extra)
  return respond(status, extra, page(title, body))
end

local function redirect(location, extra)
  extra = extra or {}
  extra.Location = location
  return respond(302, extra, "")
end

-- A page for a refusal or a failure; the message is escaped.
local function problem(status, title, message, extra)
  return html(status, title, "<p id=\"error\">" .. E(message) .. "</p>\n" ..
    "<p><a href=\"/\">Back to the start</a></p>", extra)
end

-- ------------------------------------------------------------ routes

local routes = {}

routes["/"] = function(self, req, secure)
  local rec = self:_open(req, secure, M.AT_COOKIE)
  if not rec then
    return html(200, "SmugMug OAuth example",
      "<p>This application is not authorized yet.</p>\n" ..
      "<p><a id=\"authorize\" href=\"/authorize\">Authorize</a></p>")
  end
  return html(200, "SmugMug OAuth example",
    "<p>Authorized. Try an API request:</p>\n" .. path_form(M.DEFAULT_PATH) ..
    "\n<p><a href=\"/authorize\">Authorize again</a></p>")
end

routes["/authorize"] = function(self, _, secure)
  local rt, rts = self.client:request_token(self.callback)
  if not rt then
    self.log("request token: " .. err_text(rts))
    return problem(502, "Authorization failed", "Could not get a request token: " .. err_text(rts))
  end
  local cookie = self:_seal(secure, M.RT_COOKIE, rt, rts, self.request_ttl)
  if not cookie then
    return problem(502, "Authorization failed", "The provider's request token is too long.")
  end
  return redirect(self.client:authorize_url(rt, { Access = "Full", Permissions = "Modify" }),
    { ["Set-Cookie"] = cookie })
end

routes["/callback"] = function(self, req, secure)
  local p = req.params
  local token, verifier = p.oauth_token, p.oauth_verifier
  if type(token) ~= "string" or token == "" or #token > M.MAX_PARAM or
     type(verifier) ~= "string" or verifier == "" or #verifier > M.MAX_PARAM then
    return problem(400, "Bad callback", "The callback needs oauth_token and oauth_verifier.")
  end
  local rec = self:_open(req, secure, M.RT_COOKIE)
  if not rec then
    return problem(403, "Bad callback",
      "No authorization was started in this browser, or it has expired. Start again.")
  end
  if not core.equal(rec.t, token) then
    return problem(403, "Bad callback", "This callback is for another authorization.")
  end
  local now = self:now()
  self:_prune(now)
  if self.used[rec.t] then
    return problem(403, "Bad callback", "This authorization has already been completed.")
  end
  self.used[rec.t] = now + self.request_ttl
  self.used_n = self.used_n + 1
  local clear = clear_cookie(secure, M.RT_COOKIE)
  local at, ats = self.client:access_token(rec.t, rec.s, verifier)
  if not at then
    self.log("access token: " .. err_text(ats))
    return problem(502, "Authorization failed", "Could not get an access token: " .. err_text(ats),
      { ["Set-Cookie"] = clear })
  end
  local cookie = self:_seal(secure, M.AT_COOKIE, at, ats, self.session_ttl)
  if not cookie then
    return problem(502, "Authorization failed", "The provider's access token is too long.",
      { ["Set-Cookie"] = clear })
  end
  return redirect("/", { ["Set-Cookie"] = { cookie, clear } })
end

-- Sec-Fetch-Site values from which /test may be used (absent: not a browser
-- that tells, allowed).
local FETCH_SITE_OK = { ["same-origin"] = true, none = true }

routes["/test"] = function(self, req, secure)
  local site = req.headers["sec-fetch-site"]
  if site and not FETCH_SITE_OK[lower(site)] then
    return problem(403, "Refused", "API requests can only be made from this application's own pages.")
  end
  local rec = self:_open(req, secure, M.AT_COOKIE)
  if not rec then
    return html(401, "Not authorized",
      "<p>This browser has no authorization (or it has expired).</p>\n" ..
      "<p><a id=\"authorize\" href=\"/authorize\">Authorize</a></p>")
  end
  local path = req.params.path
  if path == nil then path = M.DEFAULT_PATH end
  local ok, why = M.check_path(path)
  if not ok then
    return html(400, "Refused path",
      "<p id=\"error\">Refused " .. E((gsub(format("%q", path), "\\\n", "\\n"))) .. ": " .. E(why) ..
      ".</p>\n" ..
      "<p>Only paths on the API under /api/v2 are sent.</p>\n" .. path_form(M.DEFAULT_PATH))
  end
  local api = self.client:session(rec.t, rec.s)
  local res, err = api:get(path)
  api:close()
  if not res then
    self.log("GET " .. path .. ": " .. err_text(err))
    local detail = ""
    local body = type(err) == "table" and err.body
    if type(body) == "string" and body ~= "" then
      local v = cjson.decode(body)
      detail = "\n<pre id=\"body\">" .. E(v ~= nil and json.pretty(v) or body) .. "</pre>"
    end
    return html(502, "GET " .. path,
      "<p id=\"error\">" .. E(err_text(err)) .. "</p>" .. detail .. "\n" .. path_form(path))
  end
  local v = cjson.decode(res.body)
  local shown = v ~= nil and json.pretty(v) or res.body
  return html(200, "GET " .. path,
    "<pre id=\"result\">" .. E(shown) .. "</pre>\n" .. path_form(path) ..
    "\n<p><a href=\"/\">Back to the start</a></p>")
end

-- Routes that set up the browser's cookies: they run on the canonical host
-- (the callback's), so the cookies are there when the provider sends the user back.
local CANONICAL = { ["/"] = true, ["/authorize"] = true }

-- The host name of a Host header value (lower-case, port dropped).
local function host_name(h)
  if type(h) ~= "string" then return nil end
  h = lower(h)
  if byte(h) == 91 then return match(h, "^(%[[%x:.]+%])") end
  return match(h, "^([^:]+)")
end

--- Handle one request (see the module comment for the routes).
function App:handle(req)
  local ok, status, headers, body = xpcall(self._route, debug.traceback, self, req)
  if ok then return status, headers, body end
  self.log("internal error: " .. tostring(status))
  return problem(500, "Internal error", "Something went wrong; the details are in the server log.")
end

function App:_route(req)
  local name = host_name(req.headers.host)
  if not name or not self.hosts[name] then
    return problem(421, "Misdirected request", "This server only answers for localhost.")
  end
  local route = routes[req.path]
  if not route then return problem(404, "Not found", "There is no page here.") end
  if req.method ~= "GET" and not (req.method == "HEAD" and req.path == "/") then
    return problem(405, "Method not allowed", "Only GET is used here.",
      { Allow = req.path == "/" and "GET, HEAD" or "GET" })
  end
  local secure = self.secure or req.scheme == "https"
  if CANONICAL[req.path] and lower(req.headers.host) ~= sub(self.origin, #self.scheme + 4) then
    return redirect(self.origin .. req.path)
  end
  return route(self, req, secure)
end

M.App = App
return M
