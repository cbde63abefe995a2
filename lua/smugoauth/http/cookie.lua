--- smugoauth.http.cookie: cookies for our own servers: the Cookie header
-- parsed, Set-Cookie values built (`__Host-` prefix and `Secure` over
-- https), and sealed cookies (`core.cookie_seal`: AES-256-GCM + HMAC-SHA256,
-- bound to the cookie name and an expiry) opened, where a tampered,
-- truncated, expired, renamed or foreign value is simply no cookie.
-- @module smugoauth.http.cookie
local core = require "smugoauth.core"
local grammar = require "smugoauth.http.grammar"

local gmatch, match = string.gmatch, string.match
local rtrim = grammar.rtrim

--- Parse a Cookie header (`a=1; b=2`) into a map of name to raw value (not
-- decoded; surrounding double quotes removed). The first of repeated names wins.
-- @tparam string|nil s
-- @treturn table
local function parse(s)
  local map = {}
  if s == nil then return map end
  for piece in gmatch(s, "[^;]+") do
    local name, value = match(piece, "^[ \t]*([^= \t]+)[ \t]*=[ \t]*(.*)")
    if name and map[name] == nil then
      value = rtrim(value)
      map[name] = match(value, '^"(.*)"$') or value
    end
  end
  return map
end

--- The name a cookie is sent under: `__Host-<name>` when secure (a cookie
-- only https, this host and Path=/ can set), else name.
-- @tparam string name
-- @tparam boolean secure
-- @treturn string
local function full_name(name, secure)
  return secure and "__Host-" .. name or name
end

--- A Set-Cookie value: `Path=/`, `Max-Age`, `HttpOnly`, `SameSite=Lax`, and
-- `Secure` (with the `__Host-` name) when secure.
-- @tparam string name
-- @tparam string value
-- @tparam integer max_age seconds (0 clears the cookie)
-- @tparam boolean secure
-- @treturn string
local function set(name, value, max_age, secure)
  return full_name(name, secure) .. "=" .. value .. "; Path=/; Max-Age=" .. max_age ..
    "; HttpOnly; SameSite=Lax" .. (secure and "; Secure" or "")
end

--- The Set-Cookie value that removes the cookie.
-- @tparam string name
-- @tparam boolean secure
-- @treturn string
local function clear(name, secure)
  return set(name, "", 0, secure)
end

--- A Set-Cookie value carrying payload sealed with the 32-byte key, bound to
-- the cookie's name and to the expiry `now + ttl`; nil when the payload is
-- too long for a cookie.
-- @tparam string key
-- @tparam string name
-- @tparam boolean secure
-- @tparam string payload
-- @tparam integer ttl seconds
-- @tparam integer now seconds since the epoch
-- @treturn string|nil
local function seal(key, name, secure, payload, ttl, now)
  if #payload > core.cookie_max_payload then return nil end
  local value = core.cookie_seal(key, full_name(name, secure), payload, now + ttl)
  if not value then return nil end                 -- the CSPRNG or OpenSSL failed
  return set(name, value, ttl, secure)
end

--- The payload of the sealed cookie `name` among cookies (a map from
-- `parse`), or nil when it is absent, tampered with, truncated, expired,
-- renamed or sealed with another key.
-- @tparam string key
-- @tparam table cookies
-- @tparam string name
-- @tparam boolean secure
-- @tparam integer now seconds since the epoch
-- @treturn string|nil
local function open(key, cookies, name, secure, now)
  local full = full_name(name, secure)
  local raw = cookies[full]
  if raw == nil or raw == "" then return nil end
  return (core.cookie_open(key, full, raw, now))
end

return {
  parse = parse,
  full_name = full_name,
  set = set,
  clear = clear,
  seal = seal,
  open = open,
}
