--- smugoauth.apps.sandbox.oauth: the sandbox's OAuth 1.0a provider side:
-- the oauth_* parameters of a request (Authorization header, else query or
-- form), every signature verified (HMAC-SHA1/256/512, PLAINTEXT) against the
-- base string as the sandbox sees the request, nonces remembered, request
-- tokens approved; failures answered SmugMug's way (401 with
-- `oauth_problem=...`, `debug_sbs` for a bad signature).
-- @module smugoauth.apps.sandbox.oauth
local core = require "smugoauth.core"

local enc, dec = core.percent_encode, core.percent_decode

local HMAC = { ["HMAC-SHA1"] = "sha1", ["HMAC-SHA256"] = "sha256", ["HMAC-SHA512"] = "sha512" }

--- `a=b&c=d` of {name, value} pairs, RFC 5849 encoded.
-- @tparam table t
-- @treturn string
local function form_body(t)
  local parts = {}
  for _, kv in ipairs(t) do parts[#parts + 1] = enc(kv[1]) .. "=" .. enc(kv[2]) end
  return table.concat(parts, "&")
end

--- An OAuth problem answer: status, headers, `oauth_problem=name` (and extra pairs).
-- @tparam integer status
-- @tparam string name
-- @tparam[opt] table extra {name, value} pairs
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

-- Verify the request's OAuth signature. token_kind: nil (consumer only),
-- "request" or "access". Returns the oauth table and the token record, or
-- false plus a response (status, headers, body).
local function verify(self, req, token_kind)
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
  else expect = core.b64encode(assert(core.hmac(HMAC[method], key, sbs))) end
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

-- Approve a request token: make the verifier; the answer for oob or callback.
local function approve(self, token)
  local rec = self.request_tokens[token]
  if not rec or rec.used then return nil end
  rec.verifier = rec.verifier or ("%06d"):format(math.random(0, 999999))
  rec.approved = true
  if rec.callback == "oob" then return rec.verifier, nil end
  local sep = rec.callback:find("?", 1, true) and "&" or "?"
  return rec.verifier, rec.callback .. sep .. "oauth_token=" .. enc(token) ..
    "&oauth_verifier=" .. enc(rec.verifier)
end

return {
  form_body = form_body,
  problem = problem,
  verify = verify,
  approve = approve,
}
