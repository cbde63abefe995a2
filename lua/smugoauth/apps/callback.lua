--- smugoauth.apps.callback: the OAuth 1.0a callback of a local app, bound to
-- the browser that started the flow. The one implementation behind the web
-- app's `/authorize` + `/callback` and `smugoauth login --web`'s `/start` +
-- `/callback`:
--
--  * `flow:start(...)` answers the browser that starts an authorization with
--    a 302 to the provider's authorize page and a cookie holding the request
--    token and its secret, sealed with `core.cookie_seal` (AES-256-GCM +
--    HMAC-SHA256, bound to the cookie name and an expiry): the browser never
--    sees the secret, and a tampered, truncated, expired or foreign cookie is
--    no cookie;
--  * `flow:check(req)` accepts a callback only from that browser, only for
--    its request token (compared in constant time), only once, and only
--    within `ttl`; anything else is refused, changing nothing;
--  * `flow:refuse(why)` is the page for a refusal.
--
-- What to do with a checked callback (trade the verifier now, or later) and
-- any other policy (who may start a flow, how often) stays with the app.
--
--    local flow = callback.new { key = core.random_bytes(32) }
--    -- start:    return flow:start(secure, rt, rts, client:authorize_url(rt))
--    -- callback: local rec, why = flow:check(req, secure)
--    --           if not rec then return flow:refuse(why) end
--    --           client:access_token(rec.token, rec.secret, rec.verifier)
-- @module smugoauth.apps.callback
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local cookie = require "smugoauth.http.cookie"
local html = require "smugoauth.http.html"

local type, pairs, tostring, setmetatable, error, floor =
  type, pairs, tostring, setmetatable, error, math.floor

--- The longest oauth_token or oauth_verifier a callback may carry.
local MAX_PARAM = 512

-- What a callback is refused with: why -> status, title, message.
local REFUSALS = {
  malformed = {400, "Bad callback", "The callback needs oauth_token and oauth_verifier."},
  no_flow = {403, "Bad callback",
             "No authorization was started in this browser, or it has expired. Start again."},
  other_flow = {403, "Bad callback", "This callback is for another authorization."},
  used = {403, "Bad callback", "This authorization has already been completed."},
  denied = {400, "Not authorized", "The authorization was not granted."},
}

-- keys are kept out of tostring() and error messages
local SECRET_MT = {__tostring = function() return "REDACTED" end}

--- A Set-Cookie value holding a token and its secret, sealed with key (32
-- bytes) for the cookie `name` until now + ttl; nil when they do not fit in
-- a cookie.
-- @tparam string key
-- @tparam string name
-- @tparam boolean secure https: `__Host-` name and `Secure`
-- @tparam string token
-- @tparam string secret
-- @tparam integer ttl seconds
-- @tparam integer now seconds since the epoch
-- @treturn string|nil
local function seal_tokens(key, name, secure, token, secret, ttl, now)
  local payload = cjson.encode { t = token, s = secret }
  return payload and cookie.seal(key, name, secure, payload, ttl, now)
end

--- The `{t = token, s = secret}` record of the sealed cookie `name` among a
-- request's cookies, or nil (absent, invalid, expired, or not such a record).
-- @tparam string key
-- @tparam table cookies
-- @tparam string name
-- @tparam boolean secure
-- @tparam integer now
-- @treturn table|nil
local function open_tokens(key, cookies, name, secure, now)
  local payload = cookie.open(key, cookies, name, secure, now)
  local t = payload and cjson.decode(payload)
  if type(t) ~= "table" or type(t.t) ~= "string" or t.t == "" or type(t.s) ~= "string" then return nil end
  return t
end

local methods = {}
local mt = {__name = "smugoauth.Callback", __index = methods}

--- Create the callback component of one app.
--
-- Options (defaults in brackets):
--
--  - `key` (required): the 32-byte key the cookie is sealed with.
--  - `cookie` ["smugoauth_rt"]: the cookie's name (`__Host-` is prepended
--    over https).
--  - `ttl` [600]: seconds a started authorization stays valid.
--  - `now` [os.time]: the clock, seconds since the epoch.
--  - `back` [nil]: where the "Back to the start" link of a refusal page
--    points (no link without it).
--  - `headers` [nil]: extra headers for every answer (e.g.
--    `{Connection = "close"}`).
-- @tparam table opts
-- @return the component
local function new(opts)
  if type(opts) ~= "table" then error("callback.new: options table expected", 2) end
  for k in pairs(opts) do
    if k ~= "key" and k ~= "cookie" and k ~= "ttl" and k ~= "now" and k ~= "back" and k ~= "headers" then
      error("callback.new: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  if type(opts.key) ~= "string" or #opts.key ~= 32 then error("callback.new: option 'key' must be 32 bytes", 2) end
  local ttl = opts.ttl or 600
  if type(ttl) ~= "number" or ttl ~= ttl or ttl < 1 then error("callback.new: option 'ttl' must be >= 1", 2) end
  return setmetatable({
    _key = setmetatable({ opts.key }, SECRET_MT),
    cookie = opts.cookie or "smugoauth_rt", ttl = floor(ttl), clock = opts.now or os.time,
    back = opts.back, extra = opts.headers, used = {}, used_n = 0,
  }, mt)
end

-- The clock, whole seconds.
function methods:_now()
  return floor(self.clock())
end

-- Forget used request tokens whose cookies have expired.
function methods:_prune(now)
  if self.used_n == 0 then return end
  for t, exp in pairs(self.used) do
    if exp <= now then
      self.used[t] = nil
      self.used_n = self.used_n - 1
    end
  end
end

-- The answer's headers: the app's extra headers, then these.
function methods:_headers(h)
  if not self.extra then return h end
  local out = {}
  for k, v in pairs(self.extra) do out[k] = v end
  for k, v in pairs(h or {}) do out[k] = v end
  return out
end

--- Start an authorization in this browser: a 302 to location (the
-- provider's authorize page for token) that sets the sealed cookie; a 502
-- page when the token cannot fit in a cookie.
-- @tparam boolean secure the app is served over https
-- @tparam string token the request token
-- @tparam string secret its secret
-- @tparam string location
-- @return status, headers, body
function methods:start(secure, token, secret, location)
  local c = seal_tokens(self._key[1], self.cookie, secure, token, secret, self.ttl, self:_now())
  if not c then
    return html.problem(502, "Authorization failed", "The provider's request token is too long.",
      self:_headers(), self.back)
  end
  return html.redirect(location, self:_headers { ["Set-Cookie"] = c })
end

--- Check a callback request (`req.params`, `req.cookies`): the request token
-- it names must be the one sealed in this browser's cookie (not expired),
-- not used before, and it must carry a verifier. Returns `{token, secret,
-- verifier}` (and marks the token used: a second callback is refused), or
-- nil and why: "malformed" (no oauth_token, or a parameter over MAX_PARAM
-- bytes), "no_flow" (no
-- valid cookie), "other_flow" (another token), "used", or "denied" (no
-- oauth_verifier: the owner did not grant access). A refusal changes nothing.
-- @tparam table req
-- @tparam boolean secure
-- @return table | nil, string
function methods:check(req, secure)
  local p = req.params
  local token, verifier = p.oauth_token, p.oauth_verifier
  if type(token) ~= "string" or token == "" or #token > MAX_PARAM or
     (verifier ~= nil and (type(verifier) ~= "string" or #verifier > MAX_PARAM)) then
    return nil, "malformed"
  end
  local now = self:_now()
  local rec = open_tokens(self._key[1], req.cookies, self.cookie, secure, now)
  if not rec then return nil, "no_flow" end
  if not core.equal(rec.t, token) then return nil, "other_flow" end
  self:_prune(now)
  if self.used[rec.t] then return nil, "used" end
  if verifier == nil or verifier == "" then return nil, "denied" end
  self.used[rec.t] = now + self.ttl
  self.used_n = self.used_n + 1
  return { token = rec.t, secret = rec.s, verifier = verifier }
end

--- The page for a refusal from `check` (an escaped message, no secret).
-- @tparam string why
-- @return status, headers, body
function methods:refuse(why)
  local r = REFUSALS[why] or REFUSALS.malformed
  return html.problem(r[1], r[2], r[3], self:_headers(), self.back)
end

--- The Set-Cookie value that removes the flow's cookie (once it is done).
-- @tparam boolean secure
-- @treturn string
function methods:clear_cookie(secure)
  return cookie.clear(self.cookie, secure)
end

return {
  new = new,
  methods = methods,
  mt = mt,
  MAX_PARAM = MAX_PARAM,
  seal_tokens = seal_tokens,
  open_tokens = open_tokens,
}
