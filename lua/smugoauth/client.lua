--- The OAuth 1.0a flow against SmugMug (or any provider speaking its
-- endpoints) and the signed API session.
-- @module smugoauth.client
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local errors = require "smugoauth.errors"
local util = require "smugoauth.util"
local trace = require "smugoauth.trace"

local M = {}
local enc = core.percent_encode

M.OAUTH_ORIGIN = "https://secure.smugmug.com"
M.API_ORIGIN = "https://api.smugmug.com"
M.UPLOAD_ORIGIN = "https://upload.smugmug.com"
M.REQUEST_TOKEN_PATH = "/services/oauth/1.0a/getRequestToken"
M.AUTHORIZE_PATH = "/services/oauth/1.0a/authorize"
M.ACCESS_TOKEN_PATH = "/services/oauth/1.0a/getAccessToken"

local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }

-- Whether a prepared request goes on a new connection: a non-idempotent one
-- does unless the policy allows unsafe retries, because libcurl re-sends a
-- request unchanged when a reused connection dies before the answer (the
-- server may have acted on it). An explicit `fresh` option wins.
local function fresh_for(p, policy)
  if p.fresh ~= nil then return p.fresh end
  return not IDEMPOTENT[p.method] and not policy.unsafe
end

------------------------------------------------------------------ Response

local Response = {}
Response.__name = "smugoauth.Response"
Response.__index = Response

--- The body decoded as JSON (cached), or nil, err (code "json").
function Response:json()
  if self._json ~= nil then return self._json end
  local v, jerr = cjson.decode(self.body)
  if v == nil then
    return nil, errors.new("json", "response body is not JSON (" .. tostring(jerr) .. ")",
      { status = self.status, body = self.body })
  end
  self._json = v
  return v
end

local function new_response(raw)
  return setmetatable({
    status = raw.status, headers = util.header_map(raw.headers), header_list = raw.headers,
    body = raw.body, time = raw.time, new_connections = raw.new_connections,
  }, Response)
end
M.Response = Response

------------------------------------------------------------------ errors

-- Errors are built with the tracer of their request (trace.lua), which knows
-- its secrets: every message goes through tr:redact, traced or not.

local function transport_error(msg, code, method, url, tr)
  return errors.new(code or "network", (tr or trace.off):redact(msg),
    { url = errors.safe_url(url), method = method })
end

-- Tell where our base string and the provider's differ: method, URI, and
-- then each parameter present on one side only (secrets redacted by tr).
local function sbs_diff(ours, theirs, tr)
  if not ours or not theirs then return "" end
  if ours == theirs then return "\n  the provider's base string equals ours: the keys differ" end
  local function split(sbs)
    local m, u, p = sbs:match("^([^&]*)&([^&]*)&(.*)$")
    if not m then return nil end
    local params = {}
    for _, kv in ipairs(core.parse_form(core.percent_decode(p, false))) do
      params[#params + 1] = kv[1] .. "=" .. kv[2]
    end
    return m, core.percent_decode(u, false), params
  end
  local om, ou, op = split(ours)
  local tm, tu, tp = split(theirs)
  local lines = {}
  if not om or not tm then
    lines[1] = "  ours:   " .. ours
    lines[2] = "  theirs: " .. theirs
  else
    if om ~= tm then lines[#lines + 1] = ("  method: ours %s, theirs %s"):format(om, tm) end
    if ou ~= tu then lines[#lines + 1] = ("  URI: ours %s, theirs %s"):format(ou, tu) end
    local oset, tset = {}, {}
    for _, x in ipairs(op) do oset[x] = true end
    for _, x in ipairs(tp) do tset[x] = true end
    for _, x in ipairs(op) do
      if not tset[x] then lines[#lines + 1] = "  only in ours:   " .. x end
    end
    for _, x in ipairs(tp) do
      if not oset[x] then lines[#lines + 1] = "  only in theirs: " .. x end
    end
    if #lines == 0 then lines[1] = "  same parameters, different order or encoding" end
  end
  for i, line in ipairs(lines) do lines[i] = tr:redact(line) end
  return "\n  signature base strings differ:\n" .. table.concat(lines, "\n")
end

-- An error for a non-2xx answer; OAuth problems get code "oauth". tr: the
-- request's tracer (its secrets are redacted from the message, the problem
-- and the base strings kept for debugging; body and headers stay as received).
local function http_error(res, method, url, base_string, tr)
  tr = tr or trace.off
  local problem, form = nil, nil
  local ctype = res.headers["content-type"] or ""
  if res.body:find("oauth_problem=", 1, true) and not ctype:find("json", 1, true) then
    form = {}
    for _, kv in ipairs(core.parse_form(res.body)) do form[kv[1]] = kv[2] end
    problem = form.oauth_problem
  end
  local wa = res.headers["www-authenticate"]
  if not problem and wa then problem = wa:match('oauth_problem="?([%w_]+)') end
  local what = ("%s %s answered %d"):format(method, errors.safe_url(url), res.status)
  local detail = ""
  if res.body ~= "" and ctype:find("json", 1, true) then
    local j = cjson.decode(res.body)
    if type(j) == "table" and type(j.Message) == "string" then detail = ": " .. j.Message end
  end
  if problem then problem = tr:redact(problem) end
  local fields = { status = res.status, body = res.body, headers = res.headers,
                   url = errors.safe_url(url), method = method, problem = problem, response = res }
  if problem then
    local msg = what .. ": oauth_problem=" .. problem
    if form and form.oauth_parameters_absent then
      msg = msg .. " (absent: " .. form.oauth_parameters_absent .. ")"
    end
    if problem == "signature_invalid" and form and form.debug_sbs then
      fields.debug_sbs = tr:redact(form.debug_sbs)
      fields.base_string = base_string and tr:redact(base_string)
      msg = msg .. sbs_diff(base_string, form.debug_sbs, tr)
    end
    return errors.new("oauth", tr:redact(msg), fields)
  end
  return errors.new("http", tr:redact(what .. detail), fields)
end
M._http_error = http_error

------------------------------------------------------------------ retries

local function retry_after(res)
  local v = res and res.headers and res.headers["retry-after"]
  if not v then return nil end
  local n = tonumber(v)
  if n then return math.max(0, n) end
  return nil     -- an HTTP date: fall back to backoff
end

-- Retry policy: attempts (3), max_time (60 s), base delay (0.5 s),
-- unsafe (false: POST/PATCH are not retried unless true).
local function retry_policy(p)
  if p == false then return { attempts = 1 } end
  p = p or {}
  return { attempts = p.attempts or 3, max_time = p.max_time or 60, base = p.base or 0.5,
           unsafe = p.unsafe or false, sleep = p.sleep }
end

local function sleep(s)
  require("socket").sleep(s)
end

------------------------------------------------------------------ Client

local Client = {}
Client.__name = "smugoauth.Client"
Client.__index = Client

local CLIENT_OPTS = {
  key = "string", secret = "string", oauth_origin = "string", api_origin = "string",
  upload_origin = "string", ca_file = "string", timeout = "number",
  connect_timeout = "number", signature_method = "string", rsa_key = "string",
  debug = "boolean function", retry = "table boolean", max_body = "number",
  user_agent = "string", insecure_http = "boolean",
}

local ORIGINS = { "oauth_origin", "api_origin", "upload_origin" }

-- Why plain http is refused, and how to opt in.
local CLEAR = "would cross the network unencrypted (OAuth parameters, tokens, data); " ..
              "use https, or insecure_http = true (dangerous)"

local function check_origin(name, v, insecure)
  if not v:match("^https?://[^/?#]+$") then
    error(("smugoauth.new: %s must be an http(s) origin without a path (got %q)"):format(name, v), 3)
  end
  if v:sub(1, 5) == "http:" and not insecure and not util.is_loopback(v) then
    error(("smugoauth.new: %s %s is plain http to a host that is not loopback: requests %s")
      :format(name, v, CLEAR), 3)
  end
  return v
end

-- PLAINTEXT puts CONSUMER-SECRET&TOKEN-SECRET in every request: over http
-- (loopback included) only with insecure_http. Raises at `level`.
local function check_plaintext(fname, method, url, insecure, level)
  if method == "PLAINTEXT" and not insecure and url:sub(1, 5) == "http:" then
    error(("%s: signature_method PLAINTEXT sends the consumer secret and the token secret " ..
      "in every request; over plain http (%s) they %s"):format(fname, errors.safe_url(url), CLEAR),
      level + 1)
  end
end

--- Create a client for a consumer (API key and secret).
-- Options (defaults):
--   key, secret          the API key and secret (required)
--   oauth_origin         "https://secure.smugmug.com"
--   api_origin           "https://api.smugmug.com"
--   upload_origin        "https://upload.smugmug.com"
--   ca_file              nil (the system CA bundle); TLS verification is always on
--   timeout              30 (seconds, whole request); connect_timeout 10
--   signature_method     "HMAC-SHA1"; rsa_key for "RSA-SHA1"
--   debug                false; true traces to stderr, or a function(line);
--                        also on when SMUGOAUTH_DEBUG=1. Secrets are redacted.
--   retry                {attempts = 3, max_time = 60, base = 0.5, unsafe = false}; false: off
--   max_body             64 MiB cap on response bodies
--   user_agent           "smugoauth/<version>"
--   insecure_http        false. DANGEROUS: true allows plain http:// origins and
--                        request URLs for hosts other than loopback (localhost,
--                        127.0.0.0/8, [::1]; those are always allowed), and
--                        PLAINTEXT signatures over http at all (loopback
--                        included): everything sent, the consumer and token
--                        secrets with PLAINTEXT, can then be read on the way.
--                        Without it such options and URLs raise.
function M.new(opts)
  util.check_options("smugoauth.new", opts, CLIENT_OPTS, 2)
  if type(opts) ~= "table" or type(opts.key) ~= "string" or opts.key == "" then
    error("smugoauth.new: option 'key' (the API key) is required", 2)
  end
  if type(opts.secret) ~= "string" then
    error("smugoauth.new: option 'secret' (the API secret) is required", 2)
  end
  local insecure = opts.insecure_http == true
  local self = setmetatable({
    key = opts.key,
    oauth_origin = check_origin("oauth_origin", opts.oauth_origin or M.OAUTH_ORIGIN, insecure),
    api_origin = check_origin("api_origin", opts.api_origin or M.API_ORIGIN, insecure),
    upload_origin = check_origin("upload_origin", opts.upload_origin or M.UPLOAD_ORIGIN, insecure),
    ca_file = opts.ca_file, timeout = opts.timeout or 30,
    connect_timeout = opts.connect_timeout or 10,
    signature_method = opts.signature_method or "HMAC-SHA1",
    retry = opts.retry, max_body = opts.max_body, insecure_http = insecure,
  }, Client)
  for _, name in ipairs(ORIGINS) do
    check_plaintext("smugoauth.new", self.signature_method, self[name], insecure, 2)
  end
  -- the secret lives only inside C objects, never in a Lua table
  self._signer_opts = { consumer_key = opts.key, signature_method = self.signature_method,
                        rsa_key = opts.rsa_key }
  self._secret_box = { opts.secret }   -- needed to key token signers; never printed
  setmetatable(self._secret_box, { __tostring = function() return "REDACTED" end,
                                   __name = "smugoauth.Secret" })
  self.trace = trace.new(opts.debug, opts.secret)       -- redacts the consumer secret
  self.http = core.http_new(self:_http_opts())
  return self
end

function Client:_http_opts()
  return { ca_file = self.ca_file, timeout = self.timeout, connect_timeout = self.connect_timeout,
           max_body = self.max_body }
end

function Client.__tostring(c)
  return ("smugoauth.Client (%s, key %s…)"):format(c.api_origin, c.key:sub(1, 6))
end

-- A signer for these consumer credentials and the given token.
function Client:_signer(token, token_secret)
  return core.signer { consumer_key = self.key, consumer_secret = self._secret_box[1],
                       token = token, token_secret = token_secret,
                       signature_method = self.signature_method,
                       rsa_key = self._signer_opts.rsa_key }
end

-- One token-endpoint call: sign with callback/verifier, send, parse the form.
function Client:_token_call(path, token, token_secret, extra)
  local url = self.oauth_origin .. path
  local opts = { method = "GET", url = url, consumer_key = self.key,
                 consumer_secret = self._secret_box[1], token = token, token_secret = token_secret,
                 signature_method = self.signature_method, rsa_key = self._signer_opts.rsa_key }
  for k, v in pairs(extra) do opts[k] = v end
  local r = core.sign(opts)
  local headers = { "Authorization: " .. r.authorization, "Accept: application/x-www-form-urlencoded" }
  -- the flow's secrets stay redacted from the client's later lines and errors
  self.trace:remember(token_secret, extra.verifier)
  local tr = self.trace:request("GET", url, headers, r.base_string)
  local raw, msg, code = self.http:request { method = "GET", url = url, headers = headers }
  if not raw then
    local err = transport_error(msg, code, "GET", url, tr)
    tr:failure(err)
    return nil, err
  end
  local res = new_response(raw)
  local form = {}
  if res.status >= 200 and res.status <= 299 then
    for _, kv in ipairs(core.parse_form(res.body)) do form[kv[1]] = kv[2] end
    self.trace:remember(form.oauth_token_secret)   -- before its response is traced
  end
  tr:response(res)
  if res.status < 200 or res.status > 299 then return nil, http_error(res, "GET", url, r.base_string, tr) end
  if not form.oauth_token or form.oauth_token == "" or not form.oauth_token_secret then
    return nil, errors.new("oauth", ("GET %s answered %d without oauth_token and oauth_token_secret")
      :format(url, res.status), { status = res.status, body = tr:redact(res.body) })
  end
  return form
end

--- Get a request token: `client:request_token(callback)` with "oob" or a URL.
-- Returns token, secret or nil, err. Checks oauth_callback_confirmed.
function Client:request_token(callback)
  if callback ~= nil and type(callback) ~= "string" then
    error("request_token: callback must be \"oob\" or a URL string", 2)
  end
  local form, err = self:_token_call(M.REQUEST_TOKEN_PATH, nil, nil, { callback = callback or "oob" })
  if not form then return nil, err end
  if form.oauth_callback_confirmed ~= "true" then
    return nil, errors.new("oauth", "the provider did not confirm the callback " ..
      "(oauth_callback_confirmed is not \"true\")", { problem = "callback_unconfirmed" })
  end
  return form.oauth_token, form.oauth_token_secret
end

--- The URL to send the user to: `client:authorize_url(token [, extra])`,
-- extra e.g. `{Access = "Full", Permissions = "Modify"}`.
function Client:authorize_url(token, extra)
  if type(token) ~= "string" or token == "" then error("authorize_url: token must be a string", 2) end
  local q = "oauth_token=" .. enc(token)
  local more = util.param_list(extra)
  if #more > 0 then q = q .. "&" .. util.encode_pairs(more) end
  return self.oauth_origin .. M.AUTHORIZE_PATH .. "?" .. q
end

--- Trade the request token and verifier for an access token.
-- Returns token, secret or nil, err.
function Client:access_token(token, token_secret, verifier)
  if type(token) ~= "string" or type(token_secret) ~= "string" then
    error("access_token: request token and secret must be strings", 2)
  end
  if type(verifier) ~= "string" then error("access_token: verifier must be a string", 2) end
  verifier = verifier:match("^%s*(.-)%s*$")
  if verifier == "" then
    return nil, errors.new("oauth", "the verifier is empty", { problem = "verifier_invalid" })
  end
  local form, err = self:_token_call(M.ACCESS_TOKEN_PATH, token, token_secret, { verifier = verifier })
  if not form then return nil, err end
  return form.oauth_token, form.oauth_token_secret
end

--- A signed API session for an access token: `client:session(token, secret)`.
function Client:session(token, token_secret)
  if type(token) ~= "string" or token == "" or type(token_secret) ~= "string" then
    error("session: access token and secret must be strings", 2)
  end
  return M.Session(self, token, token_secret)
end

--- Store an access token (mode 0600, atomically): `client:save_credentials(at, ats [, path])`.
-- The file records the API key and the oauth, api and upload origins the
-- token was issued for; `smugoauth.load_credentials(path, client)` and the
-- `smugoauth` command refuse to use it with others (credentials.check).
-- Returns true or nil, err. See smugoauth.credentials.
function Client:save_credentials(token, token_secret, path)
  if type(token) ~= "string" or type(token_secret) ~= "string" then
    error("save_credentials: token and secret must be strings", 2)
  end
  return require("smugoauth.credentials").save({ token = token, secret = token_secret, key = self.key,
    oauth_origin = self.oauth_origin, api_origin = self.api_origin, upload_origin = self.upload_origin,
    saved_at = os.time() }, path)
end

function Client:close()
  if self.http then self.http:close() end
end
Client.__close = Client.close

M.Client = Client

------------------------------------------------------------------ Session

local Session = {}
Session.__name = "smugoauth.Session"
Session.__index = Session

function M.Session(client, token, token_secret)
  return setmetatable({
    client = client, token = token,
    signer = client:_signer(token, token_secret),
    http = core.http_new(client:_http_opts()),
    trace = client.trace:with(token_secret),           -- redacts the token secret too
    retry = client.retry,
  }, Session)
end

function Session.__tostring(s)
  return ("smugoauth.Session (%s)"):format(s.client.api_origin)
end

local REQUEST_OPTS = {
  method = "string", path = "string", url = "string", query = "table", json = "any",
  form = "table", body = "string", headers = "table", content_type = "string",
  timeout = "number", retry = "table boolean", body_file = "string", on_progress = "function",
  origin = "string", fresh = "boolean", max_body = "number",
}

-- Build {method, url, headers, body, params} from request options (raises on misuse).
function Session:_prepare(o)
  local method = (o.method or "GET"):upper()
  if not method:match("^[A-Z]+$") then error("request: bad method " .. tostring(o.method), 3) end
  local url
  if o.url then
    if not o.url:match("^https?://[^/]") then error("request: url must be an absolute http(s) URL", 3) end
    url = o.url
  else
    local path = o.path
    if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
      error("request: path must be a string starting with '/' (got " .. tostring(path) .. ")", 3)
    end
    url = (o.origin or self.client.api_origin) .. path
  end
  if o.url or o.origin then          -- the client's own origins were checked by new
    local c = self.client
    if not c.insecure_http and url:sub(1, 5) == "http:" and not util.is_loopback(url) then
      error(("request: %s is plain http to a host that is not loopback: the request %s")
        :format(errors.safe_url(url), CLEAR), 3)
    end
    check_plaintext("request", c.signature_method, url, c.insecure_http, 3)
  end
  local q = util.param_list(o.query)
  if #q > 0 then url = url .. (url:find("?", 1, true) and "&" or "?") .. util.encode_pairs(q) end
  local headers, has = {}, {}
  for k, v in pairs(o.headers or {}) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      error("request: headers must map names to strings", 3)
    end
    headers[#headers + 1] = k .. ": " .. v
    has[k:lower()] = true
  end
  if not has["accept"] then headers[#headers + 1] = "Accept: application/json" end
  local body, params
  local nbody = (o.json ~= nil and 1 or 0) + (o.form and 1 or 0) + (o.body and 1 or 0) +
                (o.body_file and 1 or 0)
  if nbody > 1 then error("request: give only one of json, form, body, body_file", 3) end
  local ctype = o.content_type
  if o.json ~= nil then
    local s, jerr = cjson.encode(o.json)
    if not s then error("request: json cannot be encoded: " .. tostring(jerr), 3) end
    body, ctype = s, ctype or "application/json"
  elseif o.form then
    params = util.param_list(o.form)
    body, ctype = util.encode_pairs(params), "application/x-www-form-urlencoded"
  elseif o.body then
    body = o.body
  end
  if ctype and not has["content-type"] then headers[#headers + 1] = "Content-Type: " .. ctype end
  local mb = o.max_body
  if mb ~= nil and (not math.tointeger(mb) or mb < 1) then
    error("request: max_body must be a positive integer (bytes)", 3)
  end
  return { method = method, url = url, headers = headers, body = body, params = params,
           body_file = o.body_file, on_progress = o.on_progress, timeout = o.timeout, fresh = o.fresh,
           max_body = mb }
end

-- Sign a prepared request afresh (new nonce and timestamp) into the request
-- table the C client takes; fresh: on a new connection (see fresh_for).
function Session:_signed(p, fresh)
  local auth, base_string = self.signer:authorization(p.method, p.url, p.params, true)
  local headers = { "Authorization: " .. auth }
  for i = 1, #p.headers do headers[i + 1] = p.headers[i] end
  return { method = p.method, url = p.url, headers = headers, body = p.body,
           body_file = p.body_file, on_progress = p.on_progress, timeout = p.timeout, fresh = fresh,
           max_body = p.max_body },
         base_string
end

-- Turn a raw C result into a response or an error; tr: the request's
-- tracer (from Tracer:request).
function Session:_finish(p, raw, msg, code, base_string, tr)
  tr = tr or self.trace
  if not raw then
    local err = transport_error(msg, code, p.method, p.url, tr)
    tr:failure(err)
    return nil, err
  end
  local res = new_response(raw)
  tr:response(res)
  if res.status < 200 or res.status > 299 then
    return nil, http_error(res, p.method, p.url, base_string, tr)
  end
  return res
end

--- Make a signed request. Options: method ("GET"), path (under api_origin)
-- or url, query (map or {name, value} pairs; signed), json (a value: sent as
-- application/json, not signed) or form (signed) or body (+ content_type),
-- headers (map), timeout, retry (policy table or false), fresh (true: a new
-- connection, so libcurl never re-sends the request on a dead kept-alive
-- one; the default is true for every method but GET, HEAD, PUT, DELETE and
-- OPTIONS unless retry.unsafe is set, false for those), max_body (bytes: this
-- response's cap instead of the client's max_body; over it the request fails
-- with code "too_large").
-- Returns a response {status, headers, body, json()} or nil, err.
function Session:request(o)
  util.check_options("request", o, REQUEST_OPTS, 2)
  local p = self:_prepare(o)
  local rp = o.retry
  if rp == nil then rp = self.retry end
  local policy = retry_policy(rp)
  local fresh = fresh_for(p, policy)
  local t0 = os.time()
  local attempt = 0
  while true do
    attempt = attempt + 1
    local req, base_string = self:_signed(p, fresh)
    local tr = self.trace:request(p.method, p.url, req.headers, base_string)
    local raw, msg, code = self.http:request(req)
    local res, err = self:_finish(p, raw, msg, code, base_string, tr)
    if res then return res end
    local retryable = (err.code == "http" and (err.status == 429 or err.status == 503))
                      or (err.code == "network" and IDEMPOTENT[p.method])
    if not retryable or attempt >= policy.attempts or (not IDEMPOTENT[p.method] and not policy.unsafe) then
      err.attempts = attempt
      return nil, err
    end
    local delay = retry_after(err.response)
    if not delay then
      delay = policy.base * 2 ^ (attempt - 1)
      delay = delay / 2 + math.random() * delay / 2      -- jitter
    end
    if os.time() - t0 + delay > policy.max_time then
      err.attempts = attempt
      return nil, err
    end
    self.trace:note(("retrying in %.2f s (attempt %d of %d)"):format(delay, attempt + 1, policy.attempts))
    ;(policy.sleep or sleep)(delay)
  end
end

--- GET path with an optional query table.
function Session:get(path, query, opts)
  local o = { method = "GET", path = path, query = query }
  for k, v in pairs(opts or {}) do o[k] = v end
  return self:request(o)
end

local function verb(method)
  return function(self, path, opts)
    local o = { method = method, path = path }
    for k, v in pairs(opts or {}) do o[k] = v end
    return self:request(o)
  end
end
Session.post = verb("POST")
Session.patch = verb("PATCH")
Session.put = verb("PUT")
Session.delete = verb("DELETE")

------------------------------------------------------------------ pages

-- The query of a NextPage link merged over the original query (so options
-- like _expand survive even when a server leaves them out of the link).
local function next_query(next_page, query)
  local path, qs = next_page:match("^([^?]*)%??(.*)$")
  local merged, seen = {}, {}
  for _, kv in ipairs(core.parse_form(qs)) do
    merged[#merged + 1] = kv
    seen[kv[1]] = true
  end
  for _, kv in ipairs(util.param_list(query)) do
    if not seen[kv[1]] then merged[#merged + 1] = kv end
  end
  return path, merged
end

--- Iterate over whole pages: `for page, res in api:pages(path, query) do`.
-- `page` is the decoded JSON of each page, following Response.Pages.NextPage
-- to the end. On an error the loop gets `false, err` once and then stops
-- (false, not nil: a nil would end a generic for before its body saw err).
function Session:pages(path, query, opts)
  local nextp, q, done = path, query, false
  return function()
    if done or not nextp then return nil end
    local res, err = self:get(nextp, q, opts)
    if not res then done = true return false, err end
    local body, jerr = res:json()
    if type(body) ~= "table" then done = true return false, jerr end
    local pages = type(body.Response) == "table" and body.Response.Pages
    if type(pages) == "table" and type(pages.NextPage) == "string" and pages.NextPage ~= "" then
      nextp, q = next_query(pages.NextPage, query)
    else
      nextp = nil
    end
    return body, res
  end
end

--- Iterate over the items of every page: `for item, err in api:each(path, query) do`.
-- Items are the elements of Response[Response.Locator]. On an error the loop
-- gets `false, err` once and stops: test `if not item then ... end`.
function Session:each(path, query, opts)
  local pages = self:pages(path, query, opts)
  local items, i, done = nil, 0, false
  return function()
    while not done do
      if items and i < #items then
        i = i + 1
        return items[i]
      end
      local page, err = pages()
      if not page then
        done = true
        if page == false then return false, err end
        return nil
      end
      local r = page.Response or {}
      local v = r.Locator and r[r.Locator]
      if type(v) == "table" and v[1] == nil and next(v) ~= nil then v = { v } end
      items, i = type(v) == "table" and v or {}, 0
    end
    return nil
  end
end

------------------------------------------------------------------ uploads

local MIME = {
  jpg = "image/jpeg", jpeg = "image/jpeg", png = "image/png", gif = "image/gif",
  heic = "image/heic", heif = "image/heif", tif = "image/tiff", tiff = "image/tiff",
  webp = "image/webp", bmp = "image/bmp", dng = "image/x-adobe-dng",
  mp4 = "video/mp4", mov = "video/quicktime", m4v = "video/x-m4v", avi = "video/x-msvideo",
  mts = "video/mp2t", ["3gp"] = "video/3gpp",
}

--- The content type for a file name (by extension), default application/octet-stream.
function M.content_type_for(name)
  local ext = tostring(name):match("%.([%w]+)$")
  return ext and MIME[ext:lower()] or "application/octet-stream"
end

local UPLOAD_OPTS = {
  album = "string", file = "string", data = "string", filename = "string", title = "string",
  caption = "string", keywords = "table string", replace = "string", content_type = "string",
  on_progress = "function", hidden = "boolean", timeout = "number", retry = "table boolean",
  md5 = "string",
}

-- A caller-supplied MD5 (32 hex digits or base64) as raw bytes, or raise.
local function raw_md5(v)
  if #v == 32 and v:match("^%x+$") then
    return (v:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
  end
  local raw = core.b64decode(v)
  if raw and #raw == 16 then return raw end
  error("upload: md5 must be 32 hex digits or the base64 of 16 bytes", 4)
end

local function header_value(name, v)
  v = tostring(v)
  if v:find("[%z\r\n]") then error("upload: " .. name .. " must not contain CR, LF or NUL", 4) end
  return v
end

--- Upload a photo or video to an album on the upload origin.
-- Options: album ("/api/v2/album/KEY", required), file (path: streamed, never
-- read whole) or data (a string), filename (default: the file's name),
-- title, caption, keywords (array or string), replace (an image URI to
-- replace), content_type (default: from the extension), hidden,
-- md5 (the file's MD5, hex or base64, when already known: skips the hashing
-- pass), on_progress(sent, total), timeout, retry (off unless given).
-- Returns the response (its JSON holds Image.ImageUri...) or nil, err.
-- A non-2xx status and a 200 with "stat": "fail" are both errors.
function Session:upload(o)
  util.check_options("upload", o, UPLOAD_OPTS, 2)
  if type(o) ~= "table" or not o.album or not o.album:match("^/api/v2/album/[%w%-_]+$") then
    error("upload: album must be an album URI like /api/v2/album/KEY", 2)
  end
  if (o.file == nil) == (o.data == nil) then error("upload: give exactly one of file or data", 2) end
  local md5, size
  if o.md5 then                 -- known already (e.g. from a sync): no hashing pass
    md5 = raw_md5(o.md5)
    if o.file then
      local mode, _, fsize = core.file_mode(o.file)
      if not mode then return nil, errors.new("io", tostring(fsize or "cannot stat"), { path = o.file }) end
      size = fsize
    else
      size = #o.data
    end
  elseif o.file then
    md5, size = core.digest_file("md5", o.file)
    if not md5 then return nil, errors.new("io", tostring(size), { path = o.file }) end
  else
    md5, size = core.digest("md5", o.data), #o.data
  end
  local filename = o.filename or (o.file and o.file:match("([^/]+)$")) or "upload"
  local headers = {
    ["Content-MD5"] = core.b64encode(md5),
    ["X-Smug-AlbumUri"] = o.album,
    ["X-Smug-ResponseType"] = "JSON",
    ["X-Smug-Version"] = "v2",
    ["X-Smug-FileName"] = header_value("filename", filename),
    ["Accept"] = "application/json",
  }
  if o.title then headers["X-Smug-Title"] = header_value("title", o.title) end
  if o.caption then headers["X-Smug-Caption"] = header_value("caption", o.caption) end
  if o.keywords then
    local kw = type(o.keywords) == "table" and table.concat(o.keywords, "; ") or o.keywords
    headers["X-Smug-Keywords"] = header_value("keywords", kw)
  end
  if o.replace then headers["X-Smug-ImageUri"] = header_value("replace", o.replace) end
  if o.hidden ~= nil then headers["X-Smug-Hidden"] = o.hidden and "true" or "false" end
  local res, err = self:request {
    method = "POST", origin = self.client.upload_origin, path = "/", headers = headers,
    body = o.data, body_file = o.file, content_type = o.content_type or M.content_type_for(filename),
    on_progress = o.on_progress, timeout = o.timeout, retry = o.retry or false,
    -- a POST: on a new connection unless retry.unsafe (see fresh_for)
  }
  if not res then return nil, err end
  local body, jerr = res:json()
  if not body then return nil, jerr end
  if body.stat ~= "ok" then
    return nil, errors.new("api", self.trace:redact(("upload of %s refused: %s"):format(filename,
      tostring(body.message or body.Message or "stat is not ok"))),
      { status = res.status, body = res.body, api_code = body.code, response = res })
  end
  res.size = size
  return res
end

------------------------------------------------------------------ parallel

--- Run requests concurrently through one libcurl multi handle:
-- `api:get_many(list [, {concurrency = 8, retry = ...}])`, list items being
-- paths (GET) or request option tables as for `request`. Returns an array in
-- input order; each element is a response or an error object (test with
-- `smugoauth.errors.is(v)` or `v.code`).
function Session:get_many(list, opts)
  if type(list) ~= "table" then error("get_many: an array of paths or requests expected", 2) end
  opts = util.check_options("get_many", opts, { concurrency = "number", retry = "table boolean" }, 2)
  local conc = math.tointeger(opts.concurrency or 8)
  if not conc or conc < 1 or conc > 64 then error("get_many: concurrency must be 1..64", 2) end
  local preps = {}
  for i, item in ipairs(list) do
    local o = type(item) == "string" and { method = "GET", path = item } or item
    util.check_options("get_many", o, REQUEST_OPTS, 2)
    if o.on_progress then error("get_many: on_progress is not supported here", 2) end
    preps[i] = self:_prepare(o)
  end
  local rp = opts.retry
  if rp == nil then rp = self.retry end
  local policy = retry_policy(rp)
  local results, pending = {}, {}
  for i = 1, #preps do pending[i] = i end
  local attempt, t0 = 0, os.time()
  while #pending > 0 do
    attempt = attempt + 1
    local reqs, bases, trs = {}, {}, {}
    for j, i in ipairs(pending) do
      reqs[j], bases[j] = self:_signed(preps[i], fresh_for(preps[i], policy))
      trs[j] = self.trace:request(preps[i].method, preps[i].url, reqs[j].headers, bases[j])
    end
    local raws = self.http:many(reqs, conc)
    local again, delay = {}, 0
    for j, i in ipairs(pending) do
      local raw = raws[j]
      local res, err
      if raw.error then res, err = self:_finish(preps[i], nil, raw.error, raw.code, nil, trs[j])
      else res, err = self:_finish(preps[i], raw, nil, nil, bases[j], trs[j]) end
      results[i] = res or err
      if not res and attempt < policy.attempts and IDEMPOTENT[preps[i].method]
         and ((err.code == "http" and (err.status == 429 or err.status == 503)) or err.code == "network") then
        again[#again + 1] = i
        delay = math.max(delay, retry_after(err.response) or policy.base * 2 ^ (attempt - 1))
      elseif not res then
        err.attempts = attempt
      end
    end
    if #again == 0 or os.time() - t0 + delay > policy.max_time then
      for _, i in ipairs(again) do results[i].attempts = attempt end
      break
    end
    self.trace:note(("retrying %d requests in %.2f s"):format(#again, delay))
    ;(policy.sleep or sleep)(delay)
    pending = again
  end
  return results
end

function Session:close()
  if self.http then self.http:close() end
  if self.signer then self.signer:close() end
end
Session.__close = Session.close

M.SessionMT = Session
return M
