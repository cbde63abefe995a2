--- smugoauth.http.grammar: the pieces of the HTTP/1.1 grammar (RFC 9110,
-- RFC 9112, RFC 3986) that the parser and the serialisers of
-- smugoauth.http.codec share: reason phrases and status lines, token and
-- field-value characters, line endings, the Host field. Pure functions on
-- strings; bounded caches only.
-- @module smugoauth.http.grammar
local byte, find, format, lower, match, sub, gsub, gmatch =
  string.byte, string.find, string.format, string.lower, string.match,
  string.sub, string.gsub, string.gmatch
local setmetatable, rawset, tonumber = setmetatable, rawset, tonumber

-- ------------------------------------------------------------ tables

-- The reason phrases of RFC 9110 section 15 and the other statuses in IANA's
-- registry (a status not here gets an empty phrase, which RFC 9112 allows).
local REASONS = {
  [100] = "Continue",
  [200] = "OK", [201] = "Created", [202] = "Accepted",
  [203] = "Non-Authoritative Information", [204] = "No Content",
  [205] = "Reset Content", [206] = "Partial Content", [207] = "Multi-Status",
  [208] = "Already Reported", [226] = "IM Used",
  [300] = "Multiple Choices", [301] = "Moved Permanently", [302] = "Found",
  [303] = "See Other", [304] = "Not Modified", [305] = "Use Proxy",
  [307] = "Temporary Redirect", [308] = "Permanent Redirect",
  [400] = "Bad Request", [401] = "Unauthorized", [402] = "Payment Required",
  [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [406] = "Not Acceptable", [407] = "Proxy Authentication Required",
  [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
  [411] = "Length Required", [412] = "Precondition Failed",
  [413] = "Content Too Large", [414] = "URI Too Long",
  [415] = "Unsupported Media Type", [416] = "Range Not Satisfiable",
  [417] = "Expectation Failed", [421] = "Misdirected Request",
  [422] = "Unprocessable Content", [423] = "Locked", [424] = "Failed Dependency",
  [425] = "Too Early", [426] = "Upgrade Required", [428] = "Precondition Required",
  [429] = "Too Many Requests", [431] = "Request Header Fields Too Large",
  [451] = "Unavailable For Legal Reasons",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
  [505] = "HTTP Version Not Supported", [506] = "Variant Also Negotiates",
  [507] = "Insufficient Storage", [508] = "Loop Detected",
  [511] = "Network Authentication Required",
}

-- "HTTP/1.1 200 OK\r\n", built once per status
local status_lines = setmetatable({}, {__index = function(t, code)
  local line = format("HTTP/1.1 %d %s\r\n", code, REASONS[code] or "")
  rawset(t, code, line)
  return line
end})

-- lower-cased header names, cached (bounded) to spare a string per field
local lower_cache, lower_count = {}, 0
local function lname(name)
  local l = lower_cache[name]
  if l then return l end
  l = lower(name)
  if lower_count < 1000 then
    lower_cache[name] = l
    lower_count = lower_count + 1
  end
  return l
end

local NOT_TCHAR = "[^%w!#$%%&'*+%-.^_`|~]"      -- RFC 9110 token characters
local BAD_VALUE = "[\0-\8\10-\31\127]"        -- CTLs other than HTAB

-- s without trailing spaces and tabs (no pattern: "(.-)[ \t]*$" backtracks
-- quadratically on long runs of blanks)
local function rtrim(s)
  local n = #s
  local b = byte(s, n)
  if b ~= 32 and b ~= 9 then return s end
  repeat
    n = n - 1
    b = byte(s, n)
  until b ~= 32 and b ~= 9
  return sub(s, 1, n)
end

-- ------------------------------------------------------------ line endings

-- Is a bare LF, or a CR followed by anything but LF, seen in buf by the time
-- its first j bytes have arrived, looking from i on? (A LF at p is seen with
-- byte p, a CR's follower with byte p + 1.) Such a head never shows the CRLF
-- a parser waits for: it is refused at once, not at the request deadline.
local function bad_eol(buf, i, j)
  while true do
    local p = find(buf, "[\r\n]", i)
    if not p or p > j then return false end
    if byte(buf, p) == 10 then
      if p == 1 or byte(buf, p - 1) ~= 13 then return true end
    elseif p < j then
      local nb = byte(buf, p + 1)
      if nb and nb ~= 10 then return true end
    end
    i = p + 1
  end
end

-- ------------------------------------------------------------ Host (RFC 3986)

-- dec-octet: 0 to 255, no leading zero
local function dec_octet(o)
  return not (#o > 1 and byte(o) == 48) and tonumber(o) <= 255
end

-- IPv4address: dec-octet "." dec-octet "." dec-octet "." dec-octet
local function valid_ipv4(s)
  local a, b, c, d = match(s, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  return a ~= nil and dec_octet(a) and dec_octet(b) and dec_octet(c) and dec_octet(d)
end

-- How many h16 groups "a:b:c" holds ("" holds none), or nil when one is not
-- 1 to 4 hex digits.
local function h16_count(s)
  if s == "" then return 0 end
  local n = 0
  for g in gmatch(s .. ":", "([^:]*):") do
    if not find(g, "^%x%x?%x?%x?$") then return nil end
    n = n + 1
  end
  return n
end

-- IPv6address (eight h16, the last two may be an IPv4 address, one "::" may
-- stand for one or more zero groups)
local function valid_ipv6(s)
  local last = match(s, ":([^:]*)$")
  if not last then return false end
  if find(last, ".", 1, true) then
    if not valid_ipv4(last) then return false end
    s = sub(s, 1, #s - #last) .. "0:0"
  end
  local a, b = find(s, "::", 1, true)
  if not a then return h16_count(s) == 8 end
  if find(s, "::", b, true) then return false end       -- two of them, or ":::"
  local left, right = h16_count(sub(s, 1, a - 1)), h16_count(sub(s, b + 1))
  return left ~= nil and right ~= nil and left + right <= 7
end

local REG_NAME_BAD = "[^%w%-._~!$&'()*+,;=%%]"   -- unreserved, sub-delims, "%"

--- Is v a valid Host field value (RFC 9112 3.2: `uri-host [":" port]`, RFC
-- 3986 host = IP-literal / IPv4address / reg-name, port = *DIGIT)? An empty
-- value is valid (a target URI without authority).
-- @tparam string v
-- @treturn boolean
local function valid_host(v)
  local host, port
  if byte(v) == 91 then                          -- "[" IP-literal "]"
    local e = find(v, "]", 2, true)
    if not e then return false end
    host, port = sub(v, 2, e - 1), sub(v, e + 1)
    if not (valid_ipv6(host) or find(host, "^[vV]%x+%.[%w%-._~!$&'()*+,;=:]+$")) then
      return false
    end
  else                                           -- reg-name (IPv4 is one too)
    local colon = find(v, ":", 1, true)
    host = colon and sub(v, 1, colon - 1) or v
    port = colon and sub(v, colon) or ""
    if find(host, REG_NAME_BAD) then return false end
    if find(host, "%", 1, true) and find(gsub(host, "%%%x%x", ""), "%", 1, true) then
      return false                               -- "%" not starting a pct-encoded octet
    end
  end
  return port == "" or find(port, "^:%d*$") ~= nil
end

-- ------------------------------------------------------------ parameters

local TOKEN = "^[%w!#$%%&'*+%-.^_`|~]+()"        -- a token at the given index

-- The index after the quoted-string that starts at i of s (RFC 9110 5.6.4:
-- qdtext or quoted-pair between DQUOTEs; s holds no CR, LF or other CTL but
-- HTAB), or nil when s has none there.
local function quoted_end(s, i)
  if byte(s, i) ~= 34 then return nil end
  i = i + 1
  while true do
    local q = find(s, '["\\]', i)
    if not q then return nil end
    if byte(s, q) == 34 then return q + 1 end
    if q == #s then return nil end              -- a backslash quoting nothing
    i = q + 2
  end
end

--- Where the parameters that start at index i of s end: the index after
-- `*( OWS ";" OWS token [ BWS "=" BWS ( token / quoted-string ) ] )` (the
-- transfer-parameters of RFC 9110 10.1.4 when a value is required, the
-- chunk extensions of RFC 9112 7.1.1 when it is optional), or nil when one is
-- malformed. Also whether there was any.
-- @tparam string s (no CR, LF or CTL but HTAB)
-- @tparam integer i
-- @tparam boolean optional may a parameter have no value?
-- @treturn integer|nil
-- @treturn boolean
local function parameters(s, i, optional)
  local any = false
  while true do
    local p = match(s, "^[ \t]*;[ \t]*()", i)
    if not p then return i, any end
    any = true
    p = match(s, TOKEN, p)
    if not p then return nil end
    local v = match(s, "^[ \t]*=[ \t]*()", p)
    if v then
      p = match(s, TOKEN, v) or quoted_end(s, v)
      if not p then return nil end
    elseif not optional then
      return nil
    end
    i = p
  end
end

-- ------------------------------------------------------------ Transfer-Encoding

--- The framing a Transfer-Encoding field value (without the OWS around it)
-- asks of a request: `"chunked"` when chunked (any case) is its one and only
-- transfer coding, else nil and the status to refuse the request with (RFC
-- 9112 6.1, 6.3, 7):
--
--  - 400 when the value is not a list of transfer-codings (RFC 9110 5.6.1
--    and 10.1.4; empty list elements are refused too, as a smuggling shape),
--    when chunked is not the final coding (`xchunked`, `identity`,
--    `chunked, gzip`, `chunked;q=1`: RFC 9112 6.3 says the length cannot be
--    determined, MUST 400) or when it is applied twice (`chunked, chunked`);
--  - 501 when other codings come before a final chunked (`gzip, chunked`:
--    codings this server does not implement, RFC 9112 6.1).
-- @tparam string value
-- @treturn string|nil
-- @treturn integer|nil status
local function transfer_coding(value)
  local i, n, count, last, twice = 1, #value, 0, nil, false
  local plain
  while true do
    local e = match(value, TOKEN, i)
    if not e then return nil, 400 end           -- also an empty element
    if last == "chunked" then twice = true end  -- one before this one
    count, last = count + 1, lower(sub(value, i, e - 1))
    local any
    i, any = parameters(value, e, false)
    if not i then return nil, 400 end
    plain = not any
    i = match(value, "^[ \t]*()", i)
    if i > n then break end
    if byte(value, i) ~= 44 then return nil, 400 end
    i = match(value, "^[ \t]*()", i + 1)
  end
  if last ~= "chunked" or not plain or twice then return nil, 400 end
  if count > 1 then return nil, 501 end
  return "chunked"
end

--- Does a Connection field value name this token (case-insensitive)?
-- @tparam string value
-- @tparam string token lower-case
-- @treturn boolean
local function has_token(value, token)
  for t in gmatch(lower(value), "[^,%s]+") do
    if t == token then return true end
  end
  return false
end

return {
  REASONS = REASONS,
  status_lines = status_lines,
  NOT_TCHAR = NOT_TCHAR,
  BAD_VALUE = BAD_VALUE,
  lname = lname,
  rtrim = rtrim,
  bad_eol = bad_eol,
  valid_host = valid_host,
  has_token = has_token,
  parameters = parameters,
  transfer_coding = transfer_coding,
}
