--- A local stand-in for SmugMug's OAuth 1.0a and API v2 endpoints, on our
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
--   POST     /_sandbox/mode  fail429=N&retry_after=S | fail503=N | no_confirm=1
--   GET      /_sandbox/stats JSON counters
-- @module smugoauth.sandbox
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local httpd = require "smugoauth.httpd"

local M = {}
local enc, dec = core.percent_encode, core.percent_decode

local HMAC = { ["HMAC-SHA1"] = "sha1", ["HMAC-SHA256"] = "sha256", ["HMAC-SHA512"] = "sha512" }

local function hex(n)
  return (core.random_bytes(n):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function form_body(t)
  local parts = {}
  for _, kv in ipairs(t) do parts[#parts + 1] = enc(kv[1]) .. "=" .. enc(kv[2]) end
  return table.concat(parts, "&")
end

local FORM = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local JSONH = { ["Content-Type"] = "application/json" }
local HTML = { ["Content-Type"] = "text/html; charset=utf-8",
               ["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
               ["X-Content-Type-Options"] = "nosniff", ["Cache-Control"] = "no-store" }

local function problem(status, name, extra)
  local t = { { "oauth_problem", name } }
  for _, kv in ipairs(extra or {}) do t[#t + 1] = kv end
  return status, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["WWW-Authenticate"] = 'OAuth realm="sandbox", oauth_problem="' .. name .. '"',
  }, form_body(t)
end

-- a problem answer packed in a table (verify returns false, answer)
local function P(...) return { problem(...) } end

local function json(status, value)
  return status, JSONH, cjson.encode(value)
end

local function api_error(status, msg)
  return json(status, { Code = status, Message = msg })
end

-- The oauth_* parameters of a request: Authorization header, else query/form.
local function oauth_params(req)
  local t, list = {}, {}
  local h = req.headers["authorization"]
  if h and h:match("^OAuth%s") then
    for k, v in h:gmatch('([%w_]+)%s*=%s*"([^"]*)"') do
      t[k] = dec(v, false)
      if k ~= "realm" then list[#list + 1] = { k, t[k] } end
    end
    return t, list, true
  end
  for _, kv in ipairs(req.params_list) do
    if kv[1]:match("^oauth_") then t[kv[1]] = kv[2] end
  end
  return t, list, false
end

local Sandbox = {}
Sandbox.__index = Sandbox

--- Create a sandbox (not yet serving). Options (defaults):
--   key, secret     the consumer credentials it accepts ("sandbox-key", "sandbox-secret")
--   host, port      "127.0.0.1", 0
--   albums          250 albums for the user "tester"
--   tls             luasec server parameters to serve https
--   window          300 s timestamp window
--   max_body        256 MiB (uploads)
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    key = opts.key or "sandbox-key", secret = opts.secret or "sandbox-secret",
    window = opts.window or 300,
    request_tokens = {}, access_tokens = {}, nonces = {},
    albums = {}, images = {}, mode = {}, stats = { requests = 0, verified = 0, refused = 0,
                                                  uploads = 0, nonces = {} },
    log = opts.log,
  }, Sandbox)
  for i = 1, opts.albums or 250 do
    local k = ("K%04d"):format(i)
    self.albums[#self.albums + 1] = { AlbumKey = k, Name = "Album " .. i, UrlName = "Album-" .. i,
      Uri = "/api/v2/album/" .. k, NiceName = "Album-" .. i, Title = "Album " .. i }
  end
  local srv, err = httpd.new {
    host = opts.host or "127.0.0.1", port = opts.port or 0, tls = opts.tls,
    max_body = opts.max_body or 256 * 1024 * 1024, request_timeout = 60,
    -- request bodies: POST and PATCH (forms, JSON, uploads) up to max_body
    body = function(req) return req.method == "POST" or req.method == "PATCH" end,
    handler = function(req) return self:handle(req) end,
    log = opts.log,
  }
  if not srv then return nil, err end
  self.server, self.port = srv, srv.port
  self.origin = srv.scheme .. "://127.0.0.1:" .. srv.port
  return self
end

function Sandbox:run() return self.server:run() end
function Sandbox:step(t) return self.server:step(t) end
function Sandbox:close() return self.server:close() end

-- Verify the request's OAuth signature. token_kind: nil (consumer only),
-- "request" or "access". Returns the oauth table and the token record, or
-- false plus a response (status, headers, body).
function Sandbox:verify(req, token_kind)
  local o, list, in_header = oauth_params(req)
  local need = { "oauth_consumer_key", "oauth_signature_method", "oauth_signature",
                 "oauth_timestamp", "oauth_nonce" }
  if token_kind then need[#need + 1] = "oauth_token" end
  local absent = {}
  for _, k in ipairs(need) do if not o[k] or o[k] == "" then absent[#absent + 1] = k end end
  if #absent > 0 then
    return false, P(400, "parameter_absent", { { "oauth_parameters_absent", table.concat(absent, "&") } })
  end
  if o.oauth_version and o.oauth_version ~= "1.0" then return false, P(400, "version_rejected") end
  if o.oauth_consumer_key ~= self.key then return false, P(401, "consumer_key_unknown") end
  local method = o.oauth_signature_method
  if not HMAC[method] and method ~= "PLAINTEXT" then
    return false, P(400, "signature_method_rejected")
  end
  local ts = tonumber(o.oauth_timestamp)
  if not ts or math.abs(os.time() - ts) > self.window then
    return false, P(401, "timestamp_refused", {
      { "oauth_acceptable_timestamps", (os.time() - self.window) .. "-" .. (os.time() + self.window) } })
  end
  local record, token_secret = nil, ""
  if token_kind then
    local store = token_kind == "request" and self.request_tokens or self.access_tokens
    record = store[o.oauth_token]
    if not record or record.used then return false, P(401, "token_rejected") end
    token_secret = record.secret
  end
  -- the base string as this server sees the request
  local params = {}
  for _, kv in ipairs(req.params_list) do params[#params + 1] = kv end
  local ctype = req.headers["content-type"] or ""
  if ctype:lower():match("^application/x%-www%-form%-urlencoded") then
    local _, flist = req:form()
    for _, kv in ipairs(flist) do params[#params + 1] = kv end
  end
  if in_header then
    for _, kv in ipairs(list) do if kv[1] ~= "oauth_signature" then params[#params + 1] = kv end end
  end
  local host = req.headers["host"] or ("127.0.0.1:" .. self.port)
  local sbs = core.base_string(req.method, req.scheme .. "://" .. host .. req.path, params)
  local key = enc(self.secret) .. "&" .. enc(token_secret)
  local expect
  if method == "PLAINTEXT" then expect = key
  else expect = core.b64encode(core.hmac(HMAC[method], key, sbs)) end
  if not core.equal(expect, o.oauth_signature) then
    self.stats.refused = self.stats.refused + 1
    return false, P(401, "signature_invalid", { { "debug_sbs", sbs } })
  end
  local nk = table.concat({ o.oauth_consumer_key, o.oauth_token or "", o.oauth_timestamp, o.oauth_nonce }, "\0")
  if self.nonces[nk] then return false, P(401, "nonce_used") end
  self.nonces[nk] = ts
  self.stats.nonces[#self.stats.nonces + 1] = o.oauth_nonce
  self.stats.verified = self.stats.verified + 1
  return o, record
end

local function page(title, body)
  return "<!doctype html><html><head><meta charset=\"utf-8\"><title>" .. title ..
    "</title></head><body><h1>" .. title .. "</h1>" .. body .. "</body></html>"
end

local E = httpd.escape_html

-- Approve a request token: make the verifier; the answer for oob or callback.
function Sandbox:approve(token)
  local rec = self.request_tokens[token]
  if not rec or rec.used then return nil end
  rec.verifier = rec.verifier or ("%06d"):format(math.random(0, 999999))
  rec.approved = true
  if rec.callback == "oob" then return rec.verifier, nil end
  local sep = rec.callback:find("?", 1, true) and "&" or "?"
  return rec.verifier, rec.callback .. sep .. "oauth_token=" .. enc(token) ..
    "&oauth_verifier=" .. enc(rec.verifier)
end

local function pages_of(items, req, base)
  local start = math.max(1, math.tointeger(tonumber(req.params.start or 1) or 1) or 1)
  local count = math.max(1, math.min(1000, math.tointeger(tonumber(req.params.count or 100) or 100) or 100))
  local slice = {}
  for i = start, math.min(#items, start + count - 1) do slice[#slice + 1] = items[i] end
  local pg = { Total = #items, Start = start, Count = #slice, RequestedCount = count,
               FirstPage = ("%s?start=1&count=%d"):format(base, count) }
  if start + count <= #items then
    pg.NextPage = ("%s?start=%d&count=%d"):format(base, start + count, count)
  end
  if start > 1 then pg.PrevPage = ("%s?start=%d&count=%d"):format(base, math.max(1, start - count), count) end
  local last = #items > 0 and (#items - 1) // count * count + 1 or 1
  pg.LastPage = ("%s?start=%d&count=%d"):format(base, last, count)
  return slice, pg
end

local function ok(uri, locator, value, pages, ltype)
  local resp = { Uri = uri, Locator = locator, LocatorType = ltype or "Object" }
  resp[locator] = value
  if pages then resp.Pages = pages end
  return json(200, { Request = { Version = "v2", Uri = uri }, Response = resp, Code = 200, Message = "Ok" })
end

function Sandbox:find_album(key)
  for i, a in ipairs(self.albums) do if a.AlbumKey == key then return a, i end end
end

function Sandbox:api(req, user)
  local path, m = req.path, req.method
  if path == "/api/v2!authuser" and m == "GET" then
    return ok("/api/v2!authuser", "User", user)
  end
  local nick = path:match("^/api/v2/user/([%w%-_]+)$")
  if nick and m == "GET" then
    if nick ~= user.NickName then return api_error(404, "Not Found") end
    return ok(path, "User", user)
  end
  nick = path:match("^/api/v2/user/([%w%-_]+)!albums$")
  if nick then
    if nick ~= user.NickName then return api_error(404, "Not Found") end
    if m == "GET" then
      local slice, pg = pages_of(self.albums, req, path)
      return ok(path, "Album", slice, pg, "Objects")
    elseif m == "POST" then
      local body = cjson.decode(req.body)
      if type(body) ~= "table" or type(body.Name) ~= "string" then
        return api_error(400, "Name is required (JSON body)")
      end
      local k = "N" .. hex(4)
      local a = { AlbumKey = k, Name = body.Name, UrlName = body.UrlName or body.Name,
                  Uri = "/api/v2/album/" .. k, Title = body.Title or body.Name }
      self.albums[#self.albums + 1] = a
      return json(201, { Response = { Uri = a.Uri, Locator = "Album", Album = a }, Code = 201, Message = "Created" })
    end
    return api_error(405, "Method Not Allowed")
  end
  local key, rest = path:match("^/api/v2/album/([%w]+)(.*)$")
  if key then
    local a, idx = self:find_album(key)
    if not a then return api_error(404, "Not Found") end
    if rest == "" and m == "GET" then return ok(path, "Album", a) end
    if rest == "" and m == "PATCH" then
      local body = cjson.decode(req.body)
      if type(body) ~= "table" then return api_error(400, "JSON body expected") end
      for _, f in ipairs { "Name", "Title", "Description" } do
        if type(body[f]) == "string" then a[f] = body[f] end
      end
      return ok(path, "Album", a)
    end
    if rest == "" and m == "DELETE" then
      table.remove(self.albums, idx)
      return json(200, { Code = 200, Message = "Ok" })
    end
    if rest == "!images" and m == "GET" then
      local slice, pg = pages_of(self.images[key] or {}, req, path)
      return ok(path, "AlbumImage", slice, pg, "Objects")
    end
  end
  return api_error(404, "Not Found")
end

-- The upload origin: POST / with the raw file as body.
function Sandbox:upload(req)
  local h = req.headers
  local function fail(code, msg) return json(200, { stat = "fail", code = code, message = msg }) end
  if not h["x-smug-albumuri"] then return fail(5, "missing X-Smug-AlbumUri") end
  local key = h["x-smug-albumuri"]:match("^/api/v2/album/([%w]+)$")
  if not key or not self:find_album(key) then return fail(5, "album not found") end
  if h["content-md5"] then
    local want = core.b64encode(core.digest("md5", req.body))
    if want ~= h["content-md5"] then return fail(5, "Content-MD5 mismatch") end
  end
  if h["content-length"] and tonumber(h["content-length"]) ~= #req.body then
    return fail(5, "size mismatch")
  end
  local id = hex(4)
  local img = { ImageKey = id, FileName = h["x-smug-filename"] or "upload",
                Title = h["x-smug-title"], Caption = h["x-smug-caption"],
                Keywords = h["x-smug-keywords"], Size = #req.body,
                MD5 = core.b64encode(core.digest("md5", req.body)),
                ContentType = h["content-type"], Uri = "/api/v2/image/" .. id .. "-0" }
  self.images[key] = self.images[key] or {}
  table.insert(self.images[key], img)
  self.stats.uploads = self.stats.uploads + 1
  self.stats.last_upload = { size = #req.body, md5 = img.MD5, content_type = img.ContentType,
                             filename = img.FileName, headers = h }
  return json(200, { stat = "ok", method = "smugmug.images.upload",
    Image = { ImageUri = img.Uri, AlbumImageUri = "/api/v2/album/" .. key .. "/image/" .. id .. "-0",
              StatusImageReplaceUri = "", URL = self.origin .. "/" .. id } })
end

local TOKEN = "/services/oauth/1.0a/"

function Sandbox:handle(req)
  local path, m = req.path, req.method
  self.stats.requests = self.stats.requests + 1
  if path == TOKEN .. "getRequestToken" and (m == "GET" or m == "POST") then
    local o, resp = self:verify(req, nil)
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
      return 400, HTML, page("Unknown request token", "<p>This authorization link is not valid.</p>")
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
    return 200, headers, page("Authorize application",
      "<p>An application asks for <b>" .. E(access) .. "</b> access with <b>" .. E(perm) ..
      "</b> permissions to the sandbox account <b>tester</b>.</p>" ..
      "<form method=\"post\" action=\"" .. TOKEN .. "authorize\">" ..
      "<input type=\"hidden\" name=\"oauth_token\" value=\"" .. E(t) .. "\">" ..
      "<button id=\"approve\" type=\"submit\">Approve</button></form>")
  elseif path == TOKEN .. "authorize" and m == "POST" then
    local f = req:form()
    local verifier, redirect = self:approve(f.oauth_token or "")
    if not verifier then return 400, HTML, page("Unknown request token", "<p>Not valid.</p>") end
    if redirect then return 302, { Location = redirect }, "" end
    return 200, HTML, page("Authorized",
      "<p>Enter this six-digit code in the application:</p><p id=\"code\" style=\"font-size:2em\">" ..
      E(verifier) .. "</p>")
  elseif path == TOKEN .. "getAccessToken" and (m == "GET" or m == "POST") then
    local o, rec = self:verify(req, "request")
    if not o then return table.unpack(rec) end
    if not rec.approved or not o.oauth_verifier or not core.equal(o.oauth_verifier, rec.verifier) then
      return problem(401, "verifier_invalid")
    end
    rec.used = true
    local t, s = hex(16), hex(16)
    self.access_tokens[t] = { secret = s, user = "tester" }
    return 200, FORM, form_body { { "oauth_token", t }, { "oauth_token_secret", s } }
  elseif path == "/_sandbox/approve" then
    local verifier, redirect = self:approve(req.params.oauth_token or "")
    if not verifier then return 404, { ["Content-Type"] = "text/plain" }, "unknown request token\n" end
    return 200, { ["Content-Type"] = "text/plain" }, redirect or verifier
  elseif path == "/_sandbox/mode" and m == "POST" then
    local f = req:form()
    self.mode = { fail429 = tonumber(f.fail429), fail503 = tonumber(f.fail503),
                  retry_after = f.retry_after, no_confirm = f.no_confirm == "1" }
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
  local o, rec = self:verify(req, "access")
  if not o then return table.unpack(rec) end
  local user = { NickName = rec.user, Name = "Sandbox Tester", Uri = "/api/v2/user/" .. rec.user,
                 WebUri = self.origin .. "/" .. rec.user, AccountStatus = "Active" }
  if path == "/" and m == "POST" then return self:upload(req) end
  if path == "/api/v2!echo" then
    return json(200, { method = m, query = req.query, content_type = req.headers["content-type"],
                       body = req.body, accept = req.headers["accept"] })
  end
  if path:match("^/api/v2") then return self:api(req, user) end
  return api_error(404, "Not Found")
end

M.Sandbox = Sandbox
return M
