--- Small helpers shared by the Lua modules: option checking, query strings,
-- header maps, redaction.
-- @module smugoauth.util
local core = require "smugoauth.core"

local M = {}
local enc = core.percent_encode

--- Check an options table against a spec `{name = "string" | "number" | ...}`;
-- unknown keys and wrong types raise, naming the field.
function M.check_options(fname, opts, spec, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string.format("%s: options must be a table (got %s)", fname, type(opts)), (level or 2) + 1)
  end
  for k, v in pairs(opts) do
    local want = spec[k]
    if want == nil then
      error(string.format("%s: unknown option '%s'", fname, tostring(k)), (level or 2) + 1)
    end
    local t = type(v)
    if want ~= "any" and not want:find(t, 1, true) then
      error(string.format("%s: option '%s' must be %s (got %s)", fname, k, want, t), (level or 2) + 1)
    end
  end
  return opts
end

--- Pairs of a query/form table in a stable order: an array of {name, value}
-- pairs as given, or a map (values may be arrays) sorted by name.
function M.param_list(t)
  local out = {}
  if t == nil then return out end
  if t[1] ~= nil then
    for i, p in ipairs(t) do
      if type(p) ~= "table" then error("parameter " .. i .. " must be a {name, value} pair", 3) end
      out[#out + 1] = { tostring(p[1]), tostring(p[2]) }
    end
    return out
  end
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(names) do
    local v = t[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do out[#out + 1] = { tostring(k), tostring(x) } end
    elseif type(v) == "boolean" then
      out[#out + 1] = { tostring(k), v and "true" or "false" }
    else
      out[#out + 1] = { tostring(k), tostring(v) }
    end
  end
  return out
end

--- Encode pairs as `a=b&c=d` with RFC 5849 encoding.
function M.encode_pairs(list)
  local parts = {}
  for i, p in ipairs(list) do parts[i] = enc(p[1]) .. "=" .. enc(p[2]) end
  return table.concat(parts, "&")
end

--- Raw header pairs -> map with lower-case names (repeats joined by ", ").
function M.header_map(list)
  local map = {}
  for _, h in ipairs(list or {}) do
    local k = h[1]:lower()
    map[k] = map[k] and (map[k] .. ", " .. h[2]) or h[2]
  end
  return map
end

--- The host of an absolute URL (lower-case; an IPv6 literal without its
-- brackets), or nil. A userinfo part stays in it (such URLs are refused by
-- the C core; here it only makes the host match nothing).
function M.url_host(url)
  local authority = tostring(url):match("^%a[%w+.-]*://([^/?#]*)")
  if not authority then return nil end
  local host = authority:match("^%[([^%]]*)%]:?%d*$") or authority:gsub(":%d*$", "")
  return host:lower()
end

-- A dotted-quad octet without leading zeros (which some parsers read as octal).
local function octet(s)
  return (s == "0" or s:match("^[1-9]%d?%d?$")) and tonumber(s) <= 255
end

--- Is the URL's host a loopback address: localhost, 127.0.0.0/8 (as a plain
-- dotted quad) or [::1]? Anything else, including other spellings of these
-- addresses, is not.
function M.is_loopback(url)
  local host = M.url_host(url)
  if host == "localhost" or host == "::1" then return true end
  local a, b, c, d = (host or ""):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a == "127" and octet(b) and octet(c) and octet(d) and true or false
end

--- Redact secrets in text meant for a log: OAuth signatures, token secrets,
-- verifiers and cookie values.
function M.redact(s)
  s = tostring(s)
  for _, name in ipairs { "oauth_signature", "oauth_token_secret", "oauth_verifier" } do
    s = s:gsub("(" .. name .. '=")[^"]*"', '%1REDACTED"')          -- header form
    s = s:gsub("(" .. name .. '=)[^"&%s][^&%s]*', "%1REDACTED")   -- form/query form
    s = s:gsub('("' .. name .. '"%s*:%s*")[^"]*"', '%1REDACTED"')  -- JSON
  end
  return s
end

return M
