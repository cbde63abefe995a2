--- smugoauth.apps.web.routes: the pages of the web app (smugoauth.apps.web,
-- which checks the Host, the method and the origin before it calls them):
-- `/`, `/authorize`, `/callback` and `/test`, and the check of the API path
-- `/test` may send.
-- @module smugoauth.apps.web.routes
local errors = require "smugoauth.errors"
local html = require "smugoauth.http.html"
local callback = require "smugoauth.apps.callback"
local render = require "smugoauth.apps.web.render"

local E = html.escape
local find, format, lower, sub, gsub = string.find, string.format, string.lower, string.sub, string.gsub
local tointeger = math.tointeger

local DEFAULT_PATH = "/api/v2!authuser"
local AT_COOKIE = "smugoauth_at"          -- the access token
local MAX_PATH = 2048                     -- longest API path (with its query) accepted

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
local function check_path(p)
  if type(p) ~= "string" or p == "" then return nil, "empty path" end
  if #p > MAX_PATH then return nil, "path too long" end
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


-- The message of an error value (a smugoauth error or anything else).
local function err_text(err)
  if errors.is(err) then return tostring(err) end
  return tostring(err or "unknown error")
end

-- Log a failed provider call, unless it was cancelled: the browser went
-- away (smugoauth.http.server cancels the call), nobody waits for the page.
local function log_failure(app, what, err)
  if type(err) == "table" and err.code == "cancelled" then return end
  app.log(what .. ": " .. err_text(err))
end

local function problem(status, title, message, extra)
  return html.problem(status, title, message, extra, "/")
end

local function path_form(path)
  return "<form action=\"/test\" method=\"get\">\n" ..
    "<label for=\"path\">API path</label>\n" ..
    "<input type=\"text\" id=\"path\" name=\"path\" size=\"60\" value=\"" .. E(path) .. "\">\n" ..
    "<button type=\"submit\" id=\"send\">GET</button>\n</form>"
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

-- This browser's access token record, or nil.
local function session(app, req, secure)
  return callback.open_tokens(app._key[1], req.cookies, AT_COOKIE, secure, app:now())
end

local routes = {}

routes["/"] = function(self, req, secure)
  if not session(self, req, secure) then
    return html.render(200, "SmugMug OAuth example",
      "<p>This application is not authorized yet.</p>\n" ..
      "<p><a id=\"authorize\" href=\"/authorize\">Authorize</a></p>")
  end
  return html.render(200, "SmugMug OAuth example",
    "<p>Authorized. Try an API request:</p>\n" .. path_form(DEFAULT_PATH) ..
    "\n<p><a href=\"/authorize\">Authorize again</a></p>")
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
    log_failure(self, "request token", rts)
    return problem(502, "Authorization failed", "Could not get a request token: " .. err_text(rts))
  end
  return self.flow:start(secure, rt, rts,
    self.client:authorize_url(rt, { Access = "Full", Permissions = "Modify" }))
end

routes["/callback"] = function(self, req, secure)
  local rec, why = self.flow:check(req, secure)
  if not rec then return self.flow:refuse(why) end
  local clear = self.flow:clear_cookie(secure)
  local at, ats = self.client:access_token(rec.token, rec.secret, rec.verifier)
  if not at then
    log_failure(self, "access token", ats)
    return problem(502, "Authorization failed", "Could not get an access token: " .. err_text(ats),
      { ["Set-Cookie"] = clear })
  end
  local cookie = callback.seal_tokens(self._key[1], AT_COOKIE, secure, at, ats, self.session_ttl, self:now())
  if not cookie then
    return problem(502, "Authorization failed", "The provider's access token is too long.",
      { ["Set-Cookie"] = clear })
  end
  return html.redirect(self.origin .. "/", { ["Set-Cookie"] = { cookie, clear } })
end

routes["/test"] = function(self, req, secure)
  if other_site(req) then return refuse_other_site() end
  local rec = session(self, req, secure)
  if not rec then
    return html.render(401, "Not authorized",
      "<p>This browser has no authorization (or it has expired).</p>\n" ..
      "<p><a id=\"authorize\" href=\"/authorize\">Authorize</a></p>")
  end
  local path = req.params.path
  if path == nil then path = DEFAULT_PATH end
  local ok, why = check_path(path)
  if not ok then
    return html.render(400, "Refused path",
      "<p id=\"error\">Refused " .. E((gsub(format("%q", path), "\\\n", "\\n"))) .. ": " .. E(why) ..
      ".</p>\n" ..
      "<p>Only paths on the API under /api/v2 are sent.</p>\n" .. path_form(DEFAULT_PATH))
  end
  -- the app's cap, or the client's own when that is smaller
  local cap = self.max_api_body
  local client_cap = tointeger(self.client.max_body)
  if client_cap and client_cap < cap then cap = client_cap end
  local api = self.client:session(rec.t, rec.s)
  local res, err = api:get(path, nil, { max_body = cap })
  api:close()
  if not res then
    log_failure(self, "GET " .. path, err)
    local detail = ""
    if type(err) == "table" and err.code == "too_large" then
      detail = format("\n<p id=\"too_large\">The answer is larger than this application accepts " ..
        "(%d bytes); it was not read.</p>", cap)
    end
    local body = type(err) == "table" and err.body
    if type(body) == "string" and body ~= "" then
      detail = detail .. "\n" .. render.pre("body", body, self.max_render)
    end
    return html.render(502, "GET " .. path,
      "<p id=\"error\">" .. E(err_text(err)) .. "</p>" .. detail .. "\n" .. path_form(path))
  end
  return html.render(200, "GET " .. path,
    render.pre("result", res.body, self.max_render) .. "\n" .. path_form(path) ..
    "\n<p><a href=\"/\">Back to the start</a></p>")
end

return {
  routes = routes,
  check_path = check_path,
  DEFAULT_PATH = DEFAULT_PATH,
  AT_COOKIE = AT_COOKIE,
  MAX_PATH = MAX_PATH,
}
