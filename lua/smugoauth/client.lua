--- Client: a consumer's credentials and the OAuth 1.0a flow against SmugMug
-- (or any provider speaking its endpoints): request_token, authorize_url,
-- access_token; then `client:session(token, secret)` for signed API
-- requests (smugoauth.session) and `client:save_credentials`.
-- @module smugoauth.client
local core = require "smugoauth.core"
local config = require "smugoauth.config"
local credentials = require "smugoauth.credentials"
local errors = require "smugoauth.errors"
local request = require "smugoauth.request"
local response = require "smugoauth.response"
local session = require "smugoauth.session"
local trace = require "smugoauth.trace"
local upload = require "smugoauth.upload"
local util = require "smugoauth.util"

local enc = core.percent_encode

local REQUEST_TOKEN_PATH = "/services/oauth/1.0a/getRequestToken"
local AUTHORIZE_PATH = "/services/oauth/1.0a/authorize"
local ACCESS_TOKEN_PATH = "/services/oauth/1.0a/getAccessToken"

local methods = {}
local mt = { __name = "smugoauth.Client", __index = methods }

-- An origin option: http(s), no path; plain http only to loopback unless
-- insecure. Called by new: raises at level 3, new's caller (`level`: one
-- more for each call in between).
local function check_origin(name, v, insecure, level)
  level = level or 3
  if not v:match("^https?://[^/?#]+$") then
    error(("smugoauth.new: %s must be an http(s) origin without a path (got %q)"):format(name, v), level)
  end
  util.check_clear("smugoauth.new", name .. " " .. v, "requests", v, insecure, level)
end

--- SmugMug's archive host: where ArchivedUri and LargestVideo URLs point.
local ARCHIVE_ORIGIN = "https://photos.smugmug.com"

-- download_origins: a non-empty array of origins, each as check_origin
-- wants it (nil: the default, made by new). Raises at level 3, new's caller.
local function check_origins(name, v, insecure)
  if v == nil then return end
  if #v == 0 then error(("smugoauth.new: %s must be a non-empty array of origins"):format(name), 3) end
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v or type(v[k]) ~= "string" then
      error(("smugoauth.new: %s must be an array of origin strings"):format(name), 3)
    end
  end
  for i, o in ipairs(v) do
    check_origin(("%s[%d]"):format(name, i), o, insecure, 4)
    if not util.origin_of(o) then
      error(("smugoauth.new: %s[%d] is not an origin (got %q)"):format(name, i, o), 3)
    end
  end
end

-- A value that goes into a header line as is: no CR, LF or NUL.
local function check_header_value(name, v)
  if v and v:find("[%z\r\n]") then
    error(("smugoauth.new: %s must not contain CR, LF or NUL"):format(name), 3)
  end
end

--- The options of `smugoauth.new`, declared once: name, type, default, and
--   http    passed on to the C HTTP client (core.http_new) of the client and
--           of each of its sessions
--   keep    false: not kept as a field of the client (secrets, the tracer's switch)
--   check   function(name, value, insecure_http) raising on a bad value
--   doc     what it does
local OPTIONS = {
  { "key", "string", nil, doc = "the API key (required)" },
  { "secret", "string", nil, keep = false,
    doc = "the API secret (required): kept inside C signers and a private box, redacted everywhere" },
  { "oauth_origin", "string", config.ORIGINS.oauth_origin, check = check_origin,
    doc = "the origin of the token endpoints and of the authorize page" },
  { "api_origin", "string", config.ORIGINS.api_origin, check = check_origin,
    doc = "the origin API paths are under" },
  { "upload_origin", "string", config.ORIGINS.upload_origin, check = check_origin,
    doc = "the origin uploads go to" },
  { "download_origins", "table", nil, check = check_origins,
    doc = "the origins api:download signs requests for (an array); default: SmugMug's " ..
          "archive host " .. ARCHIVE_ORIGIN .. " and api_origin. A download URL elsewhere " ..
          "fails (code config) before anything is sent" },
  { "ca_file", "string", nil, http = true,
    doc = "a PEM CA bundle instead of the system's (TLS verification is always on)" },
  { "timeout", "number", 30, http = true, doc = "seconds for a whole request" },
  { "connect_timeout", "number", 10, http = true, doc = "seconds to connect" },
  { "max_body", "number", 64 * 1024 * 1024, http = true,
    doc = "bytes: the cap on a response body (over it: code too_large)" },
  { "user_agent", "string", "smugoauth/" .. core.version, http = true, check = check_header_value,
    doc = "the User-Agent header of every request" },
  { "signature_method", "string", "HMAC-SHA1",
    doc = '"HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512", "PLAINTEXT" (https only) or "RSA-SHA1"' },
  { "rsa_key", "string", nil, keep = false, doc = "a PEM private key, for RSA-SHA1" },
  { "debug", "boolean function", nil, keep = false,
    doc = "true: trace requests to stderr; a function(line); nil: on when SMUGOAUTH_DEBUG=1. " ..
          "Secrets are redacted (smugoauth.trace)" },
  { "retry", "table boolean", nil,
    doc = "the retry policy of every request (smugoauth.retry: attempts 3, max_time 60, " ..
          "base 0.5, unsafe false); false: no retries" },
  { "yield", "boolean", true,
    doc = "inside a task of a smugoauth.loop, requests yield until they are done (true); " ..
          "false: they block the whole loop, as before there was one (for comparisons)" },
  { "insecure_http", "boolean", false,
    doc = "DANGEROUS: true allows plain http:// origins and request URLs for hosts other " ..
          "than loopback (localhost, 127.0.0.0/8, [::1]: always allowed), and PLAINTEXT over " ..
          "http at all: everything sent (with PLAINTEXT, the secrets) can be read on the way. " ..
          "Without it such options and URLs raise" },
}
local TYPES = util.option_types(OPTIONS)

--- Create a client for a consumer: `smugoauth.new(opts)` with the options
-- of OPTIONS just above (name, type, default, what it does). Misuse raises.
local function new(opts)
  util.check_options("smugoauth.new", opts, TYPES, 2)
  if type(opts) ~= "table" or type(opts.key) ~= "string" or opts.key == "" then
    error("smugoauth.new: option 'key' (the API key) is required", 2)
  end
  if type(opts.secret) ~= "string" then
    error("smugoauth.new: option 'secret' (the API secret) is required", 2)
  end
  local insecure = opts.insecure_http == true
  local self = {}
  for _, row in ipairs(OPTIONS) do
    local name, v = row[1], opts[row[1]]
    if v == nil then v = row[3] end
    if row.check then row.check(name, v, insecure) end
    if row.keep ~= false then self[name] = v end
  end
  setmetatable(self, mt)
  for _, name in ipairs { "oauth_origin", "api_origin", "upload_origin" } do
    util.check_plaintext("smugoauth.new", self.signature_method, self[name], insecure, 2)
  end
  local dl = {}                         -- a copy, each origin in one spelling
  for i, o in ipairs(opts.download_origins or { ARCHIVE_ORIGIN, self.api_origin }) do
    util.check_plaintext("smugoauth.new", self.signature_method, o, insecure, 2)
    dl[i] = util.origin_of(o)
  end
  self.download_origins = dl
  -- the secrets live inside C objects, and here, never printed
  self._secret_box = setmetatable({ opts.secret, opts.rsa_key },
    { __tostring = function() return "REDACTED" end, __name = "smugoauth.Secret" })
  self.trace = trace.new(opts.debug, opts.secret)       -- redacts the consumer secret
  self.http = self:_http()
  return self
end

function mt.__tostring(c)
  return ("smugoauth.Client (%s, key %s…)"):format(c.api_origin, c.key:sub(1, 6))
end

-- A new C HTTP client with the options marked `http` (for the client's own
-- token calls, and one per session).
function methods:_http()
  local o = {}
  for _, row in ipairs(OPTIONS) do
    if row.http then o[row[1]] = self[row[1]] end
  end
  return core.http_new(o)
end

-- A C signer for these consumer credentials and the given token.
function methods:_signer(token, token_secret)
  return core.signer { consumer_key = self.key, consumer_secret = self._secret_box[1],
                       token = token, token_secret = token_secret,
                       signature_method = self.signature_method, rsa_key = self._secret_box[2] }
end

-- One token-endpoint call: sign with callback/verifier, send, parse the form.
function methods:_token_call(path, token, token_secret, extra)
  local url = self.oauth_origin .. path
  local opts = { method = "GET", url = url, consumer_key = self.key,
                 consumer_secret = self._secret_box[1], token = token, token_secret = token_secret,
                 signature_method = self.signature_method, rsa_key = self._secret_box[2] }
  for k, v in pairs(extra) do opts[k] = v end
  local r, smsg, scode = core.sign(opts)
  if not r then return nil, errors.new(scode or "crypto", "signing failed: " .. tostring(smsg)) end
  local headers = { "Authorization: " .. r.authorization, "Accept: application/x-www-form-urlencoded" }
  -- the flow's secrets stay redacted from the client's later lines and errors
  self.trace:remember(token_secret, extra.verifier)
  local tr = self.trace:request("GET", url, headers, r.base_string)
  local raw, msg, code = request.send(self, { method = "GET", url = url, headers = headers })
  local form = {}
  if raw and raw.status >= 200 and raw.status <= 299 then
    for _, kv in ipairs(core.parse_form(raw.body)) do form[kv[1]] = kv[2] end
    self.trace:remember(form.oauth_token_secret)   -- before its response is traced
  end
  local res, err = response.classify(raw, msg, code, "GET", url, r.base_string, tr)
  if not res then return nil, err end
  if not form.oauth_token or form.oauth_token == "" or not form.oauth_token_secret then
    return nil, errors.new("oauth", ("GET %s answered %d without oauth_token and oauth_token_secret")
      :format(url, res.status), { status = res.status, body = tr:redact(res.body) })
  end
  return form
end

--- Get a request token: `client:request_token(callback)` with "oob" (the
-- default) or a URL. Returns token, secret or nil, err. Checks
-- oauth_callback_confirmed.
function methods:request_token(callback)
  if callback ~= nil and type(callback) ~= "string" then
    error("request_token: callback must be \"oob\" or a URL string", 2)
  end
  local form, err = self:_token_call(REQUEST_TOKEN_PATH, nil, nil, { callback = callback or "oob" })
  if not form then return nil, err end
  if form.oauth_callback_confirmed ~= "true" then
    return nil, errors.new("oauth", "the provider did not confirm the callback " ..
      "(oauth_callback_confirmed is not \"true\")", { problem = "callback_unconfirmed" })
  end
  return form.oauth_token, form.oauth_token_secret
end

--- The URL to send the user to: `client:authorize_url(token [, extra])`,
-- extra e.g. `{Access = "Full", Permissions = "Modify"}`.
function methods:authorize_url(token, extra)
  if type(token) ~= "string" or token == "" then error("authorize_url: token must be a string", 2) end
  local q = "oauth_token=" .. enc(token)
  local more = util.param_list(extra)
  if #more > 0 then q = q .. "&" .. util.encode_pairs(more) end
  return self.oauth_origin .. AUTHORIZE_PATH .. "?" .. q
end

--- Trade the request token and verifier for an access token:
-- `client:access_token(token, token_secret, verifier)` (the verifier's
-- surrounding white space is ignored). Returns token, secret or nil, err.
function methods:access_token(token, token_secret, verifier)
  if type(token) ~= "string" or type(token_secret) ~= "string" then
    error("access_token: request token and secret must be strings", 2)
  end
  if type(verifier) ~= "string" then error("access_token: verifier must be a string", 2) end
  verifier = verifier:match("^%s*(.-)%s*$")
  if verifier == "" then
    return nil, errors.new("oauth", "the verifier is empty", { problem = "verifier_invalid" })
  end
  local form, err = self:_token_call(ACCESS_TOKEN_PATH, token, token_secret, { verifier = verifier })
  if not form then return nil, err end
  return form.oauth_token, form.oauth_token_secret
end

--- A signed API session for an access token: `client:session(token, secret)`
-- (smugoauth.session).
function methods:session(token, token_secret)
  if type(token) ~= "string" or token == "" or type(token_secret) ~= "string" then
    error("session: access token and secret must be strings", 2)
  end
  return session.new(self, token, token_secret)
end

--- Store an access token (mode 0600, atomically): `client:save_credentials(at, ats [, path])`.
-- The file records the API key and the oauth, api and upload origins the
-- token was issued for; `smugoauth.load_credentials(path, client)` and the
-- `smugoauth` command refuse to use it with others (credentials.check).
-- Returns true or nil, err. See smugoauth.credentials.
function methods:save_credentials(token, token_secret, path)
  if type(token) ~= "string" or type(token_secret) ~= "string" then
    error("save_credentials: token and secret must be strings", 2)
  end
  return credentials.save({ token = token, secret = token_secret, key = self.key,
    oauth_origin = self.oauth_origin, api_origin = self.api_origin, upload_origin = self.upload_origin,
    saved_at = os.time() }, path)
end

--- Close the client's own connections (sessions have theirs).
function methods:close()
  if self.http then self.http:close() end
end
mt.__close = methods.close

return {
  new = new,
  OPTIONS = OPTIONS,
  methods = methods,
  mt = mt,
  OAUTH_ORIGIN = config.ORIGINS.oauth_origin,
  API_ORIGIN = config.ORIGINS.api_origin,
  UPLOAD_ORIGIN = config.ORIGINS.upload_origin,
  ARCHIVE_ORIGIN = ARCHIVE_ORIGIN,
  REQUEST_TOKEN_PATH = REQUEST_TOKEN_PATH,
  AUTHORIZE_PATH = AUTHORIZE_PATH,
  ACCESS_TOKEN_PATH = ACCESS_TOKEN_PATH,
  -- the names this module had before the library was split, kept working
  Client = mt,
  Session = session.new,
  SessionMT = session.mt,
  Response = response.mt,
  content_type_for = upload.content_type_for,
}
