--- Small helpers shared by the Lua modules: option checking, query strings,
-- header maps, redaction.
-- @module smugoauth.util
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"

local enc = core.percent_encode

--- Check an options table against a spec `{name = "string" | "number" | ...}`;
-- unknown keys and wrong types raise, naming the field.
local function check_options(fname, opts, spec, level)
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

--- The `{name = type}` map check_options takes, from declared option rows
-- (`{name, type, ...}`: the first two fields of each row).
local function option_types(rows)
  local types = {}
  for _, row in ipairs(rows) do types[row[1]] = row[2] end
  return types
end

--- Pairs of a query/form table in a stable order: an array of {name, value}
-- pairs as given, or a map (values may be arrays) sorted by name.
local function param_list(t)
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
local function encode_pairs(list)
  local parts = {}
  for i, p in ipairs(list) do parts[i] = enc(p[1]) .. "=" .. enc(p[2]) end
  return table.concat(parts, "&")
end

--- Raw header pairs -> map with lower-case names (repeats joined by ", ").
local function header_map(list)
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
local function url_host(url)
  local authority = tostring(url):match("^%a[%w+.-]*://([^/?#]*)")
  if not authority then return nil end
  local host = authority:match("^%[([^%]]*)%]:?%d*$") or authority:gsub(":%d*$", "")
  return host:lower()
end

local DEFAULT_PORT = { http = "80", https = "443" }

--- The origin of an absolute http(s) URL, as `scheme://host[:port]` with
-- the scheme and host in lower case and a default port left out (so that
-- two spellings of one origin compare equal); nil for anything else (no
-- host, a userinfo part, another scheme).
local function origin_of(url)
  local scheme, authority = tostring(url):match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil end
  scheme = scheme:lower()
  if not DEFAULT_PORT[scheme] or authority:find("@", 1, true) then return nil end
  local host, port = authority:match("^(%[[^%]]*%]):?(%d*)$")
  if not host then host, port = authority:match("^([^:%[%]]*):?(%d*)$") end
  if not host or host == "" then return nil end
  if port == DEFAULT_PORT[scheme] then port = "" end
  return scheme .. "://" .. host:lower() .. (port ~= "" and ":" .. port or "")
end

-- A dotted-quad octet without leading zeros (which some parsers read as octal).
local function octet(s)
  return (s == "0" or s:match("^[1-9]%d?%d?$")) and tonumber(s) <= 255
end

--- Is the URL's host a loopback address: localhost, 127.0.0.0/8 (as a plain
-- dotted quad) or [::1]? Anything else, including other spellings of these
-- addresses, is not.
local function is_loopback(url)
  local host = url_host(url)
  if host == "localhost" or host == "::1" then return true end
  local a, b, c, d = (host or ""):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a == "127" and octet(b) and octet(c) and octet(d) and true or false
end

-- ---------------------------------------------------------------- plain http

-- Why plain http is refused, and how to opt in.
local CLEAR = "would cross the network unencrypted (OAuth parameters, tokens, data); " ..
              "use https, or insecure_http = true (dangerous)"

--- Raise (at `level`, as error does) unless `url` may be used: https, plain
-- http to a loopback host, or anything when `insecure` (insecure_http).
-- The message: "<fname>: <label> is plain http to a host that is not
-- loopback: <subject> would cross the network unencrypted ...".
local function check_clear(fname, label, subject, url, insecure, level)
  if not insecure and url:sub(1, 5) == "http:" and not is_loopback(url) then
    error(("%s: %s is plain http to a host that is not loopback: %s %s")
      :format(fname, label, subject, CLEAR), level + 1)
  end
end

--- Raise (at `level`) when a PLAINTEXT signature, which puts
-- CONSUMER-SECRET&TOKEN-SECRET in every request, would go over plain http
-- (loopback included) without `insecure` (insecure_http).
local function check_plaintext(fname, signature_method, url, insecure, level)
  if signature_method == "PLAINTEXT" and not insecure and url:sub(1, 5) == "http:" then
    error(("%s: signature_method PLAINTEXT sends the consumer secret and the token secret " ..
      "in every request; over plain http (%s) they %s"):format(fname, errors.safe_url(url), CLEAR),
      level + 1)
  end
end

-- ---------------------------------------------------------------- redaction

-- The parameters whose values are secret wherever they appear by name.
local SECRET_NAMES = { "oauth_signature", "oauth_token_secret", "oauth_verifier" }

-- Hex digits h in either case, as a pattern.
local function any_case(h)
  return (h:gsub("%a", function(c) return "[" .. c:lower() .. c:upper() .. "]" end))
end

-- A Lua pattern matching s literally, with the hex digits of %XX escapes
-- (%2F, %252F: nested ones too) and of \uXXXX escapes in either case, as
-- encoders differ.
local function literal(s)
  local out, i = {}, 1
  while i <= #s do
    local c = s:sub(i, i)
    if c == "%" and s:match("^%x%x", i + 1) then
      out[#out + 1] = "%%"
      i = i + 1
      repeat                                  -- %25 escapes the % of the next level
        local h = s:sub(i, i + 1)
        out[#out + 1] = any_case(h)
        i = i + 2
      until h ~= "25" or not s:match("^%x%x", i)
    elseif c == "\\" and s:match("^u%x%x%x%x", i + 1) then
      out[#out + 1] = "%\\u" .. any_case(s:sub(i + 2, i + 5))
      i = i + 6
    else
      out[#out + 1] = c:match("%w") and c or "%" .. c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- s percent-encoded n times (RFC 5849).
local function enc_n(s, n)
  for _ = 1, n do s = enc(s) end
  return s
end

-- Where the value starting at i ends: the first match of any of stops, or
-- the end of s (one past it).
local function value_end(s, i, stops)
  local e = #s + 1
  for _, p in ipairs(stops) do
    local c = s:find(p, i)
    if c and c < e then e = c end
  end
  return e
end

-- The end of a JSON string value starting at i (its closing quote).
local function json_end(s, i)
  while i <= #s do
    local c = s:sub(i, i)
    if c == "\\" then i = i + 2
    elseif c == '"' then return i
    else i = i + 1 end
  end
  return #s + 1
end

-- Replace the value after every match of lead (up to finish(s, i)) with
-- REDACTED; skip(s, i) can leave one alone.
local function cut(s, lead, finish, skip)
  local out, pos, from = {}, 1, 1
  while true do
    local _, b = s:find(lead, from)
    if not b then break end
    if not (skip and skip(s, b + 1)) then
      out[#out + 1] = s:sub(pos, b) .. "REDACTED"
      pos = finish(s, b + 1)
    end
    from = b + 1
  end
  if pos == 1 then return s end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

-- For each secret name: {lead pattern, finish function, skip function}, for
-- the name in a header (name="v"), JSON ("name": "v"), and as a form or
-- query parameter raw and percent-encoded once, twice and three times
-- (name=v, name%3Dv, name%253Dv...: base strings, and base strings inside
-- form bodies or URLs).
local NAME_RULES = {}
for _, name in ipairs(SECRET_NAMES) do
  NAME_RULES[#NAME_RULES + 1] = { name .. '="', function(s, i) return value_end(s, i, { '"' }) end }
  NAME_RULES[#NAME_RULES + 1] = { '"' .. name .. '"%s*:%s*"', json_end }
  for level = 0, 3 do
    local stops = { "[&%s\"]" }
    for k = 1, level do stops[#stops + 1] = literal(enc_n("&", k)) end
    local skip = level == 0 and function(s, i) return s:sub(i, i) == '"' end or nil
    NAME_RULES[#NAME_RULES + 1] = { name .. literal(enc_n("=", level)),
                                    function(s, i) return value_end(s, i, stops) end, skip }
  end
end

local JSON_ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                   ["\r"] = "\\r", ["\t"] = "\\t" }

-- v as the inside of a JSON string, the way encoders differ: "/" escaped or
-- not, non-ASCII as UTF-8 or as \uXXXX escapes (nil for invalid UTF-8).
local function json_forms(v)
  local function esc(slash, ascii)
    local out = {}
    local ok = pcall(function()
      for _, cp in utf8.codes(v) do
        local c = utf8.char(cp)
        if JSON_ESC[c] then out[#out + 1] = JSON_ESC[c]
        elseif cp < 0x20 then out[#out + 1] = ("\\u%04x"):format(cp)
        elseif c == "/" and slash then out[#out + 1] = "\\/"
        elseif cp >= 0x80 and ascii then
          if cp >= 0x10000 then
            cp = cp - 0x10000
            out[#out + 1] = ("\\u%04x\\u%04x"):format(0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF))
          else
            out[#out + 1] = ("\\u%04x"):format(cp)
          end
        else out[#out + 1] = c end
      end
    end)
    return ok and table.concat(out) or nil
  end
  return { esc(false, false), esc(true, false), esc(false, true), esc(true, true) }
end

--- Secrets shorter than this are not redacted by value (they would match
-- all over a trace); only the name-based rules cover them.
local SECRET_MIN = 4

--- Lua patterns matching each secret value in every encoding it may take in
-- a trace, a message or a body: raw, percent-encoded once, twice and three
-- times, form-encoded (space as +), and escaped in JSON (with or without
-- "\/" and \uXXXX escapes; the hex of escapes in either case). Longest first.
-- `values`: an array of strings (non-strings and short ones are skipped).
local function secret_patterns(values)
  local seen, list = {}, {}
  local function add(v)
    if type(v) == "string" and #v >= SECRET_MIN and not seen[v] then
      seen[v] = true
      list[#list + 1] = v
    end
  end
  for _, v in ipairs(values) do
    if type(v) == "string" then
      add(v)
      for n = 1, 3 do add(enc_n(v, n)) end
      local form = enc(v):gsub("%%20", "+")
      add(form)
      add(enc(form))
      for _, j in pairs(json_forms(v)) do add(j) end
    end
  end
  table.sort(list, function(a, b) return #a > #b end)
  for i, v in ipairs(list) do list[i] = literal(v) end
  return list
end

--- Only the value part of redact: every match of patterns replaced.
local function redact_values(s, patterns)
  s = tostring(s)
  for _, p in ipairs(patterns or {}) do
    s = s:gsub(p, "REDACTED")
  end
  return s
end

--- Redact secrets in text meant for a log or a message: the values of
-- oauth_signature, oauth_token_secret and oauth_verifier wherever they
-- appear by name (header, JSON, form or query, percent-encoded up to three
-- times), and every value matched by `patterns` (from secret_patterns).
local function redact(s, patterns)
  s = redact_values(s, patterns)
  for _, r in ipairs(NAME_RULES) do
    s = cut(s, r[1], r[2], r[3])
  end
  return s
end

-- ------------------------------------------------------------ time

--- Seconds since the epoch of a UTC calendar time (proleptic Gregorian; no
-- time zone or locale involved, unlike os.time).
local function epoch(y, m, d, h, mi, sec)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return (era * 146097 + doe - 719468) * 86400 + (h or 0) * 3600 + (mi or 0) * 60 + (sec or 0)
end

--- Seconds since the epoch of an ISO 8601 date-time as SmugMug writes them
-- ("2024-05-01T12:34:56+02:00", "...Z", fractions allowed; no offset: UTC),
-- or nil when s is not one.
local function iso8601(s)
  if type(s) ~= "string" then return nil end
  local y, m, d, h, mi, sec, frac, zone =
    s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then return nil end
  y, m, d, h, mi, sec = tonumber(y), tonumber(m), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if m < 1 or m > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  local t = epoch(y, m, d, h, mi, sec)
  if frac ~= "" then t = t + (tonumber("0" .. frac) or 0) end
  if zone ~= "" and zone ~= "Z" then
    local sign, zh, zm = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    local off = tonumber(zh) * 3600 + tonumber(zm) * 60
    t = sign == "+" and t - off or t + off
  end
  return t
end

return {
  epoch = epoch,
  iso8601 = iso8601,
  check_options = check_options,
  option_types = option_types,
  param_list = param_list,
  encode_pairs = encode_pairs,
  header_map = header_map,
  url_host = url_host,
  origin_of = origin_of,
  is_loopback = is_loopback,
  check_clear = check_clear,
  check_plaintext = check_plaintext,
  SECRET_MIN = SECRET_MIN,
  secret_patterns = secret_patterns,
  redact = redact,
  redact_values = redact_values,
}
