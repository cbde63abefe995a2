--- smugoauth.apps.sandbox (also smugoauth.sandbox): a local stand-in for
-- SmugMug's OAuth 1.0a and API v2 endpoints, on our
-- HTTP loop, so the whole flow runs with no account and no internet.
-- It verifies every signature and answers failures SmugMug's way: 401 with
-- `oauth_problem=signature_invalid&debug_sbs=...`, `nonce_used`,
-- `timestamp_refused`, `token_rejected`, `parameter_absent`,
-- `consumer_key_unknown`, `signature_method_rejected`, `verifier_invalid`.
--
-- Endpoints:
--   GET|POST /services/oauth/1.0a/getRequestToken   (oauth_callback: oob or URL)
--   GET      /services/oauth/1.0a/authorize?oauth_token=  approve page
--   POST     /services/oauth/1.0a/authorize            approve: code page (oob) or 302
--   GET|POST /services/oauth/1.0a/getAccessToken      (oauth_verifier)
--   GET      /api/v2!authuser, /api/v2/user/<nick>, /api/v2/user/<nick>!albums
--   GET      /api/v2/album/<key>, /api/v2/album/<key>!images  (paginated: start, count)
--   POST     /api/v2/user/<nick>!albums   (JSON body: create an album)
--   PATCH    /api/v2/album/<key>          (JSON body: change Name/Title)
--   DELETE   /api/v2/album/<key>
--   POST     /  (upload origin: raw body, X-Smug-* headers, Content-MD5 checked)
--   GET      /_sandbox/approve?oauth_token=  test shortcut: approve, return the
--            verifier (oob) or the callback URL it redirects to, as text
--   ANY      /api/v2!echo   what was received (method, query, content type, body)
--   POST     /_sandbox/mode  fail429=N&retry_after=S | fail503=N | no_confirm=1 |
--                            latency=S (any of them; what is not given is cleared)
--   GET      /_sandbox/stats JSON counters
-- Latency (option `latency`, or `latency=S` through /_sandbox/mode): every
-- answer but those under /_sandbox/ comes after S seconds, waited with
-- `smugoauth.sleep` in the connection's task, so concurrent requests overlap
-- (as they would on a slow provider). A client that goes away meanwhile
-- cancels the wait (smugoauth.http.server): it is counted in the stats as
-- `cancelled` (and `delayed` counts the requests that were delayed).
-- Made of apps/sandbox/oauth.lua (the provider side of OAuth) and
-- apps/sandbox/api.lua (the API and upload origins); this file serves them.
-- @module smugoauth.apps.sandbox
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local loop = require "smugoauth.loop"
local server = require "smugoauth.http.server"
local html = require "smugoauth.http.html"
local oauth = require "smugoauth.apps.sandbox.oauth"
local api = require "smugoauth.apps.sandbox.api"

local E = html.escape
local form_body, problem, json, api_error, hex = oauth.form_body, oauth.problem, api.json, api.api_error, api.hex

local FORM = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local JSONH = { ["Content-Type"] = "application/json" }
-- the provider's pages: inline style allowed (the code page)
local HTML = html.headers { ["Content-Security-Policy"] =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'" }

local methods = {}
local mt = { __name = "smugoauth.Sandbox", __index = methods }

--- Create a sandbox, listening (call `sb:run()` or `sb:step()` to serve).
--
-- Options (defaults in brackets):
--
--  - `key`, `secret` ["sandbox-key", "sandbox-secret"]: the consumer
--    credentials it accepts.
--  - `host`, `port` ["127.0.0.1", 0]: where it listens (`sb.port`, `sb.origin`).
--  - `albums` [250]: albums of the user "tester".
--  - `tls` [nil]: luasec server parameters, to serve https.
--  - `window` [300]: seconds a timestamp may be off.
--  - `max_body` [256 MiB]: the largest request body (uploads).
--  - `latency` [0]: seconds every answer but /_sandbox/'s waits (see above).
--  - `loop` [smugoauth.loop's default loop]: the loop it serves on.
--  - `log` [stderr]: `function(message)` for the server's faults.
-- @tparam[opt] table opts
-- @return sandbox | nil, message
local function new(opts)
  opts = opts or {}
  local latency = opts.latency
  if latency ~= nil and (type(latency) ~= "number" or latency ~= latency or latency < 0) then
    error("sandbox.new: option 'latency' must be a number of seconds >= 0", 2)
  end
  local self = setmetatable({
    key = opts.key or "sandbox-key", secret = opts.secret or "sandbox-secret",
    window = opts.window or 300,
    request_tokens = {}, access_tokens = {}, nonces = {},
    albums = {}, images = {}, mode = { latency = latency }, stats = { requests = 0, verified = 0,
      refused = 0, uploads = 0, delayed = 0, cancelled = 0, nonces = {} },
    log = opts.log,
  }, mt)
  for i = 1, opts.albums or 250 do
    local k = ("K%04d"):format(i)
    self.albums[#self.albums + 1] = { AlbumKey = k, Name = "Album " .. i, UrlName = "Album-" .. i,
      Uri = "/api/v2/album/" .. k, NiceName = "Album-" .. i, Title = "Album " .. i }
  end
  local srv, err = server.new {
    host = opts.host or "127.0.0.1", port = opts.port or 0, tls = opts.tls,
    max_body = opts.max_body or 256 * 1024 * 1024, request_timeout = 60,
    -- request bodies: POST and PATCH (forms, JSON, uploads) up to max_body
    body = function(req) return req.method == "POST" or req.method == "PATCH" end,
    handler = function(req) return self:handle(req) end,
    log = opts.log, loop = opts.loop,
  }
  if not srv then return nil, err end
  self.server, self.port = srv, srv.port
  self.origin = srv.scheme .. "://127.0.0.1:" .. srv.port
  return self
end

--- Serve until the server is stopped (`sb.server:stop()`).
function methods:run() return self.server:run() end
--- One poll round (see smugoauth.http.server).
function methods:step(t) return self.server:step(t) end
--- Close the server.
function methods:close() return self.server:close() end

-- Approve a request token (see smugoauth.apps.sandbox.oauth.approve).
function methods:approve(token) return oauth.approve(self, token) end

local TOKEN = "/services/oauth/1.0a/"

local CONTROL = "/_sandbox/"

--- Answer one request (the server's handler; a script may wrap it), after
-- the latency of the mode (yielding inside a task: see the module comment).
function methods:handle(req)
  local path = req.path
  local latency = self.mode.latency
  if latency and latency > 0 and path:sub(1, #CONTROL) ~= CONTROL then
    self.stats.delayed = self.stats.delayed + 1
    if not loop.sleep(latency) then                -- cancelled: the client has gone
      self.stats.cancelled = self.stats.cancelled + 1
      return 503, { ["Content-Type"] = "text/plain" }, "cancelled\n"
    end
  end
  return self:_answer(req)
end

-- The answer itself (no latency).
function methods:_answer(req)
  local path, m = req.path, req.method
  self.stats.requests = self.stats.requests + 1
  if path == TOKEN .. "getRequestToken" and (m == "GET" or m == "POST") then
    local o, resp = oauth.verify(self, req, nil)
    if not o then return table.unpack(resp) end
    local cb = o.oauth_callback
    if not cb or cb == "" then
      return problem(400, "parameter_absent", { { "oauth_parameters_absent", "oauth_callback" } })
    end
    if cb ~= "oob" and not cb:match("^https?://") then return problem(400, "parameter_rejected") end
    local t, s = hex(16), hex(16)
    self.request_tokens[t] = { secret = s, callback = cb }
    return 200, FORM, form_body { { "oauth_token", t }, { "oauth_token_secret", s },
                                  { "oauth_callback_confirmed", self.mode.no_confirm and "false" or "true" } }
  elseif path == TOKEN .. "authorize" and m == "GET" then
    local t = req.params.oauth_token
    local rec = t and self.request_tokens[t]
    if not rec or rec.used then
      return 400, HTML, html.page("Unknown request token", "<p>This authorization link is not valid.</p>")
    end
    local access = req.params.Access or "Public"
    local perm = req.params.Permissions or "Read"
    -- form-action also governs where the form's redirect may go: allow the callback's origin
    -- (a CSP source cannot name an IPv6 literal such as [::1]: its scheme, then)
    local headers = HTML
    local cb_origin = rec.callback:match("^(https?://[^/?#]+)")
    if cb_origin then
      if cb_origin:find("://[", 1, true) then cb_origin = cb_origin:match("^https?:") end
      headers = {}
      for k, v in pairs(HTML) do headers[k] = v end
      headers["Content-Security-Policy"] = HTML["Content-Security-Policy"] .. " " .. cb_origin
    end
    return 200, headers, html.page("Authorize application",
      "<p>An application asks for <b>" .. E(access) .. "</b> access with <b>" .. E(perm) ..
      "</b> permissions to the sandbox account <b>tester</b>.</p>" ..
      "<form method=\"post\" action=\"" .. TOKEN .. "authorize\">" ..
      "<input type=\"hidden\" name=\"oauth_token\" value=\"" .. E(t) .. "\">" ..
      "<button id=\"approve\" type=\"submit\">Approve</button></form>")
  elseif path == TOKEN .. "authorize" and m == "POST" then
    local f = req:form()
    local verifier, redirect = oauth.approve(self, f.oauth_token or "")
    if not verifier then return 400, HTML, html.page("Unknown request token", "<p>Not valid.</p>") end
    if redirect then return 302, { Location = redirect }, "" end
    return 200, HTML, html.page("Authorized",
      "<p>Enter this six-digit code in the application:</p><p id=\"code\" style=\"font-size:2em\">" ..
      E(verifier) .. "</p>")
  elseif path == TOKEN .. "getAccessToken" and (m == "GET" or m == "POST") then
    local o, rec = oauth.verify(self, req, "request")
    if not o then return table.unpack(rec) end
    if not rec.approved or not o.oauth_verifier or not core.equal(o.oauth_verifier, rec.verifier) then
      return problem(401, "verifier_invalid")
    end
    rec.used = true
    local t, s = hex(16), hex(16)
    self.access_tokens[t] = { secret = s, user = "tester" }
    return 200, FORM, form_body { { "oauth_token", t }, { "oauth_token_secret", s } }
  elseif path == "/_sandbox/approve" then
    local verifier, redirect = oauth.approve(self, req.params.oauth_token or "")
    if not verifier then return 404, { ["Content-Type"] = "text/plain" }, "unknown request token\n" end
    return 200, { ["Content-Type"] = "text/plain" }, redirect or verifier
  elseif path == "/_sandbox/mode" and m == "POST" then
    local f = req:form()
    local latency = tonumber(f.latency)
    if latency and (latency ~= latency or latency < 0 or latency > 3600) then latency = nil end
    self.mode = { fail429 = tonumber(f.fail429), fail503 = tonumber(f.fail503),
                  retry_after = f.retry_after, no_confirm = f.no_confirm == "1", latency = latency }
    return 200, { ["Content-Type"] = "text/plain" }, "ok\n"
  elseif path == "/_sandbox/stats" then
    return json(200, self.stats)
  end
  -- protected resources
  local mode = self.mode
  if (mode.fail429 or 0) > 0 then
    mode.fail429 = mode.fail429 - 1
    return 429, { ["Content-Type"] = "application/json", ["Retry-After"] = mode.retry_after or "1" },
      cjson.encode { Code = 429, Message = "Too Many Requests" }
  end
  if (mode.fail503 or 0) > 0 then
    mode.fail503 = mode.fail503 - 1
    return 503, JSONH, cjson.encode { Code = 503, Message = "Service Unavailable" }
  end
  local o, rec = oauth.verify(self, req, "access")
  if not o then return table.unpack(rec) end
  local user = { NickName = rec.user, Name = "Sandbox Tester", Uri = "/api/v2/user/" .. rec.user,
                 WebUri = self.origin .. "/" .. rec.user, AccountStatus = "Active" }
  if path == "/" and m == "POST" then return api.upload(self, req) end
  if path == "/api/v2!echo" then
    local names = {}                 -- the oauth_* parameter names of the Authorization header
    for name in (req.headers.authorization or ""):gmatch("(oauth_[%w_]+)=") do names[#names + 1] = name end
    table.sort(names)
    return json(200, { method = m, query = req.query, content_type = req.headers["content-type"],
                       body = req.body, accept = req.headers["accept"], oauth = names })
  end
  if path:match("^/api/v2") then return api.api(self, req, user) end
  return api_error(404, "Not Found")
end


return {
  new = new,
  methods = methods,
  mt = mt,
  Sandbox = methods,
}
