--- smugoauth.webapp: SmugMug's web example (web.py) as a module, safe by
-- construction. Routes, as in the original:
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
--    local webapp = require "smugoauth.webapp"
--    local app = assert(webapp.new{ client = assert(smugoauth.from_config()) })
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
--  * Cookies are sealed with `core.cookie_seal` (AES-256-GCM + HMAC-SHA256,
--    bound to the cookie name and an expiry): the browser never sees a token
--    secret, and a tampered, truncated, expired or foreign cookie is simply no
--    cookie. They are `HttpOnly; SameSite=Lax; Path=/`, and `Secure` (with the
--    `__Host-` name prefix) when served over https.
--  * `/callback` accepts only the `oauth_token` stored for this browser, once;
--    anything else is a 4xx page that changes nothing (no provider call, no cookie).
--  * `/test` sends only paths under `/api/v2` (see `webapp.check_path`),
--    refused before any request is made otherwise. It accepts at most
--    `max_api_body` bytes from the API (more: a 502 page, the download cut
--    short) and shows at most `max_render` bytes of text (then says it was cut).
--  * `/test` and `/authorize` are refused (403) when the browser says the
--    request comes from another site (`Sec-Fetch-Site` other than
--    `same-origin` or `none`), and the provider calls of `/authorize` are
--    rate-limited app-wide (a token bucket: `authorize_rate` a minute, bursts
--    of `authorize_burst`; over it a 429 page with Retry-After).
--  * Everything reflected into HTML is escaped; every response carries
--    `X-Content-Type-Options: nosniff`, a restrictive Content-Security-Policy and
--    `Cache-Control: no-store`; provider and API failures are shown as an
--    escaped message (502), never a 500 or a traceback.
-- @module smugoauth.webapp
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local errors = require "smugoauth.errors"
local httpd = require "smugoauth.httpd"

local E = httpd.escape_html
local byte, find, format, lower, match, sub, gsub =
  string.byte, string.find, string.format, string.lower, string.match, string.sub, string.gsub
local ceil, floor, tointeger = math.ceil, math.floor, math.tointeger
local concat, sort = table.concat, table.sort

local M = {}

M.DEFAULT_PATH = "/api/v2!authuser"
M.RT_COOKIE = "smugoauth_rt"          -- the request token of a flow in progress
M.AT_COOKIE = "smugoauth_at"          -- the access token
M.REQUEST_TTL = 600                   -- seconds a started authorization stays valid
M.SESSION_TTL = 7 * 86400             -- seconds the access-token cookie lives
M.MAX_PATH = 2048                     -- longest API path (with its query) accepted
M.MAX_PARAM = 512                     -- longest oauth_token / oauth_verifier accepted
M.MAX_API_BODY = 2 * 1024 * 1024      -- bytes /test accepts from the API
M.MAX_RENDER = 1024 * 1024            -- bytes of text /test shows (before HTML escaping)
M.AUTHORIZE_RATE = 10                 -- provider calls a minute from /authorize (app-wide)
M.AUTHORIZE_BURST = 5                 -- and at most this many at once

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

-- ------------------------------------------------------------ bounded rendering

-- s cut to at most n bytes, not inside a UTF-8 sequence.
local function cut_utf8(s, n)
  if #s <= n then return s end
  local i = n + 1                            -- the first byte left out
  local k = 0
  while k < 3 and i > 1 do                   -- back off over continuation bytes
    local b = byte(s, i)
    if b < 0x80 or b >= 0xC0 then break end
    i, k = i - 1, k + 1
  end
  return sub(s, 1, i - 1)
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do if t[i] == nil then return false end end
  return true, n
end

local function quote(v)
  return (gsub(cjson.encode(v), "\\/", "/"))
end

-- json.pretty's text (2-space indentation, sorted keys, "/" unescaped) for a
-- decoded value, stopping once it would pass limit bytes: text, cut?. The work
-- and memory stay proportional to limit however much the indentation of a
-- deeply nested value would multiply the input.
local function render_json(v, limit)
  local out, n, len = {}, 0, 0
  local indents = { [0] = "" }
  local function emit(piece)
    local room = limit - len
    if #piece > room then
      n = n + 1
      out[n] = cut_utf8(piece, room)
      return false
    end
    n = n + 1
    out[n] = piece
    len = len + #piece
    return true
  end
  local function walk(x, depth)
    local ind = indents[depth]
    local ind2 = indents[depth + 1]
    if not ind2 then
      ind2 = ind .. "  "
      indents[depth + 1] = ind2
    end
    local t = type(x)
    if t == "table" and x ~= cjson.null then
      local arr, cnt = is_array(x)
      if arr and (cnt > 0 or getmetatable(x) == cjson.array_mt) then
        if not emit("[") then return false end
        for i = 1, cnt do
          if not emit((i > 1 and ",\n" or "\n") .. ind2) or not walk(x[i], depth + 1) then
            return false
          end
        end
        return emit((cnt > 0 and "\n" .. ind or "") .. "]")
      elseif arr then
        return emit("{}")
      end
      local keys = {}
      for k in pairs(x) do keys[#keys + 1] = tostring(k) end
      sort(keys)
      if not emit("{") then return false end
      for i, k in ipairs(keys) do
        local val = x[k]
        if val == nil then val = x[tonumber(k)] end
        if not emit((i > 1 and ",\n" or "\n") .. ind2 .. quote(k) .. ": ") or
           not walk(val, depth + 1) then
          return false
        end
      end
      return emit("\n" .. ind .. "}")
    elseif t == "string" then
      return emit(quote(x))
    elseif x == cjson.null or x == nil then
      return emit("null")
    end
    return emit(cjson.encode(x) or tostring(x))
  end
  local whole = walk(v, 0)
  return concat(out), not whole
end

-- What /test shows for an API body: the JSON pretty-printed, or the body as
-- it is, at most limit bytes: text, cut?.
local function render_body(body, limit)
  local v = cjson.decode(body)
  if v ~= nil then return render_json(v, limit) end
  if #body > limit then return cut_utf8(body, limit), true end
  return body, false
end

-- The HTML of a rendered body in <pre id=...>, with a note when it was cut.
local function pre(id, body, limit)
  local text, cut = render_body(body, limit)
  local note = ""
  if cut then
    note = format("<p id=\"cut\">The answer is cut: only the first %d bytes of its text are shown " ..
      "(the answer was %d bytes).</p>\n", #text, #body)
  end
  return note .. "<pre id=\"" .. id .. "\">" .. E(text) .. "</pre>"
end

-- ------------------------------------------------------------ the app

local App = {}
local app_mt = { __name = "smugoauth.WebApp", __index = App }

local OPTIONS = {
  client = "table", host = "string", port = "number", key = "string", key_file = "string",
  secure = "boolean", callback = "string", session_ttl = "number", request_ttl = "number",
  hosts = "table", now = "function", log = "function", max_api_body = "number",
  max_render = "number", authorize_rate = "number", authorize_burst = "number",
}

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

local function default_log(msg)
  io.stderr:write("smugoauth.webapp: ", msg, "\n")
end

--- Create the web application (it does not listen: see `app:serve`, or
-- give `app:handler()` to `httpd.new`).
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
  for _, k in ipairs { "max_api_body", "max_render", "authorize_burst" } do
    local v = opts[k]
    if v and (not tointeger(v) or v < 1) then
      error("webapp.new: option '" .. k .. "' must be a positive integer", 2)
    end
  end
  local rate = opts.authorize_rate or M.AUTHORIZE_RATE
  if rate ~= rate or rate <= 0 then error("webapp.new: option 'authorize_rate' must be > 0", 2) end
  local host = url_host(opts.host or "127.0.0.1")
  if not host then error("webapp.new: option 'host' must be an IP address (not a name)", 2) end
  local key, created = opts.key, false
  if opts.key_file then
    key, created = core.cookie_key_file(opts.key_file)     -- key, created | nil, message
    if not key then return nil, errors.new("io", created, { path = opts.key_file }) end
  elseif not key then
    key = core.random_bytes(32)
  end
  local hosts = {}
  for _, h in ipairs(opts.hosts or { "localhost", "127.0.0.1", "[::1]" }) do hosts[lower(h)] = true end
  local burst = tointeger(opts.authorize_burst or M.AUTHORIZE_BURST)
  local self = setmetatable({
    client = client, host = host, port = tointeger(port), secure = opts.secure or false,
    callback_opt = opts.callback, key_created = created,
    request_ttl = floor(opts.request_ttl or M.REQUEST_TTL),
    session_ttl = floor(opts.session_ttl or M.SESSION_TTL),
    max_api_body = tointeger(opts.max_api_body or M.MAX_API_BODY),
    max_render = tointeger(opts.max_render or M.MAX_RENDER),
    hosts = hosts, clock = opts.now or os.time, log = opts.log or default_log,
    used = {}, used_n = 0,
    -- the /authorize token bucket: refill a second, capacity, tokens, when
    bucket = { rate = rate / 60, burst = burst, tokens = burst, at = nil,
               clock = opts.now or core.monotime },
  }, app_mt)
  self._key = setmetatable({ key }, { __tostring = function() return "REDACTED" end })
  self:_set_origin(self.secure and "https" or "http")
  return self
end

-- Where the app is reached and where the provider sends the user back.
function App:_set_origin(scheme)
  self.scheme = scheme
  self.origin = scheme .. "://" .. self.host .. ":" .. self.port
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
-- opts: host [the app's host], port [the app's port], tls (luasec server
-- parameters: https), log. The address and port bound become the app's
-- origin and callback URL (as an IP literal, whatever name `host` gave; a
-- port 0 becomes the one picked).
-- @return server | nil, message
function App:serve(opts)
  opts = opts or {}
  local srv, err = httpd.new {
    host = opts.host or match(self.host, "^%[(.*)%]$") or self.host,
    port = opts.port or self.port, tls = opts.tls,
    handler = self:handler(), log = opts.log or self.log,
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

-- Sec-Fetch-Site values from which /authorize and /test may be used: the
-- app's own pages, or the user typing the URL or opening a bookmark (absent:
-- not a browser that tells, allowed).
local FETCH_SITE_OK = { ["same-origin"] = true, none = true }

-- Does the browser say the request comes from another site than this app's
-- own pages (or the user)?
local function other_site(req)
  local site = req.headers["sec-fetch-site"]
  return site ~= nil and not FETCH_SITE_OK[lower(site)]
end

local function refuse_other_site()
  return problem(403, "Refused", "This page can only be opened from this application's own pages.")
end

-- Take one token from the /authorize bucket: true, or false and the seconds
-- until the next one.
function App:_take_token()
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

routes["/authorize"] = function(self, req, secure)
  if other_site(req) then return refuse_other_site() end
  local ok, wait = self:_take_token()
  if not ok then
    return problem(429, "Too many requests",
      format("Too many authorizations were started; try again in %d seconds.", wait),
      { ["Retry-After"] = tostring(wait) })
  end
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
  return redirect(self.origin .. "/", { ["Set-Cookie"] = { cookie, clear } })
end

routes["/test"] = function(self, req, secure)
  if other_site(req) then return refuse_other_site() end
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
  -- the app's cap, or the client's own when that is smaller
  local cap = self.max_api_body
  local client_cap = tointeger(self.client.max_body)
  if client_cap and client_cap < cap then cap = client_cap end
  local api = self.client:session(rec.t, rec.s)
  local res, err = api:get(path, nil, { max_body = cap })
  api:close()
  if not res then
    self.log("GET " .. path .. ": " .. err_text(err))
    local detail = ""
    if type(err) == "table" and err.code == "too_large" then
      detail = format("\n<p id=\"too_large\">The answer is larger than this application accepts " ..
        "(%d bytes); it was not read.</p>", cap)
    end
    local body = type(err) == "table" and err.body
    if type(body) == "string" and body ~= "" then
      detail = detail .. "\n" .. pre("body", body, self.max_render)
    end
    return html(502, "GET " .. path,
      "<p id=\"error\">" .. E(err_text(err)) .. "</p>" .. detail .. "\n" .. path_form(path))
  end
  return html(200, "GET " .. path,
    pre("result", res.body, self.max_render) .. "\n" .. path_form(path) ..
    "\n<p><a href=\"/\">Back to the start</a></p>")
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

--- Handle one request (see the module comment for the routes).
function App:handle(req)
  local ok, status, headers, body = xpcall(self._route, debug.traceback, self, req)
  if ok then return status, headers, body end
  self.log("internal error: " .. tostring(status))
  return problem(500, "Internal error", "Something went wrong; the details are in the server log.")
end

function App:_route(req)
  local secure = self.secure or req.scheme == "https"
  local name, port = split_host(req.headers.host, secure and 443 or 80)
  if not name or port ~= self.port or (name ~= self.host and not self.hosts[name]) then
    return problem(421, "Misdirected request", "This server only answers for " .. self.origin .. ".")
  end
  local route = routes[req.path]
  if not route then return problem(404, "Not found", "There is no page here.") end
  if req.method ~= "GET" and not (req.method == "HEAD" and req.path == "/") then
    return problem(405, "Method not allowed", "Only GET is used here.",
      { Allow = req.path == "/" and "GET, HEAD" or "GET" })
  end
  -- another name of this host (localhost): the same page on the app's origin,
  -- where the cookies are set and where the provider sends the user back
  if name ~= self.host then
    local q = req.query ~= "" and ("?" .. req.query) or ""
    return redirect(self.origin .. req.path .. q)
  end
  return route(self, req, secure)
end

M.App = App
return M
