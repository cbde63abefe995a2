--- smugoauth.httpd: a minimal HTTP/1.1 server for local use (OAuth callbacks,
-- small consoles), on LuaSocket non-blocking sockets with one coroutine per
-- connection over the epoll poller of the C core, so one slow or idle client
-- never stalls the others.
--
--    local httpd = require "smugoauth.httpd"
--    local srv = assert(httpd.new{
--      port = 0,
--      handler = function(req)
--        return 200, {["Content-Type"] = "text/plain"}, "hello " .. req.path
--      end,
--    })
--    print(srv.port)
--    srv:run()
--
-- What it refuses (answered with the status shown, then the connection is
-- closed): request line over max_request_line (414), header section over
-- max_header_bytes or more than max_headers fields (431), a body its request
-- is not declared to take (option `body`: none by default) or over what is
-- declared or over max_body (413, before any body byte is read), a body that
-- would take the bodies in flight over max_body_total (503 with Retry-After),
-- a request not complete within request_timeout (408), malformed request or
-- header lines, obs-fold, bare CR/LF, control bytes, duplicate Content-Length
-- or Host, invalid Content-Length, HTTP/1.1 without Host, a Host that is not
-- `uri-host [":" port]`, targets not in origin-form (absolute-form,
-- authority-form, `*`) or with a `#` (400), any Transfer-Encoding (501), an
-- Expect other than 100-continue (417), versions other than 1.0 and 1.1 (505).
-- @module smugoauth.httpd
local socket = require "socket"
local core = require "smugoauth.core"

local byte, find, format, lower, match, sub, gsub, gmatch =
  string.byte, string.find, string.format, string.lower, string.match,
  string.sub, string.gsub, string.gmatch
local concat = table.concat
local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
local monotime = core.monotime
local pairs, type, tostring, tonumber, setmetatable, rawset, xpcall =
  pairs, type, tostring, tonumber, setmetatable, rawset, xpcall
local traceback = debug.traceback
local tointeger = math.tointeger

local M = {}

local CHUNK = 65536          -- bytes asked of receive() at once
local LINGER = 2             -- seconds to drain a client after we close our side
local LINGER_BYTES = 1 << 20 -- and at most this much
local BURST = 32             -- pipelined requests served before letting others run
local ACCEPT_BURST = 256     -- connections accepted per readiness event
local DONE = {}              -- what a connection coroutine returns when finished
local RETRY_AFTER = 1        -- seconds, in the 503 sent when max_body_total is full

-- ------------------------------------------------------------ helpers

-- the reason phrases of RFC 9110 section 15 and the other statuses in IANA's
-- registry (a status not here gets an empty phrase, which RFC 9112 allows)
local REASONS = {
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

local HTML_ESC = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                  ['"'] = "&quot;", ["'"] = "&#39;"}

--- Escape `&<>"'` for HTML text and attribute values.
-- @tparam string s (numbers are converted)
-- @treturn string
function M.escape_html(s)
  local t = type(s)
  if t == "number" then s = tostring(s)
  elseif t ~= "string" then
    error("bad argument #1 to 'escape_html' (string expected, got " .. t .. ")", 2)
  end
  return (gsub(s, "[&<>\"']", HTML_ESC))
end

--- Decode an `application/x-www-form-urlencoded` string (a query or a form
-- body; `+` is a space).
-- @tparam string|nil s
-- @treturn table map of name to its first value
-- @treturn table array of `{name, value}` pairs, in order
function M.parse_query(s)
  if s == nil or s == "" then return {}, {} end
  local list = core.parse_form(s)
  local map = {}
  for i = 1, #list do
    local p = list[i]
    if map[p[1]] == nil then map[p[1]] = p[2] end
  end
  return map, list
end

--- Parse a Cookie header (`a=1; b=2`) into a map of name to raw value (not
-- decoded; surrounding double quotes removed). The first of repeated names wins.
-- @tparam string|nil s
-- @treturn table
function M.parse_cookies(s)
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

-- ------------------------------------------------------------ requests

-- Fields computed on first use: params, params_list, cookies, form.
local lazy = {}
function lazy.params(req)
  local map, list = M.parse_query(req.query)
  rawset(req, "params_list", list)
  return map
end
function lazy.params_list(req)
  local _ = req.params
  return req.params_list
end
function lazy.cookies(req)
  return M.parse_cookies(req.headers.cookie)
end
-- req:form() (or req.form()) -> map, list of the urlencoded body; empty when
-- the Content-Type says the body is something else.
function lazy.form(req)
  local map, list
  return function()
    if not map then
      local ct = req.headers["content-type"]
      if ct == nil or find(lower(ct), "^application/x%-www%-form%-urlencoded") then
        map, list = M.parse_query(req.body)
      else
        map, list = {}, {}
      end
    end
    return map, list
  end
end

local req_mt = {__name = "smugoauth.httpd.Request", __index = function(req, k)
  local f = lazy[k]
  if f then
    local v = f(req)
    rawset(req, k, v)
    return v
  end
end}

-- ------------------------------------------------------------ connection I/O

-- The time now, also kept as srv.now. srv.now is set once per poll round, and
-- a handler (or many) may run for long within a round: every deadline is
-- computed, and every expiry judged, from a fresh reading.
local function clock(srv)
  local now = monotime()
  srv.now = now
  return now
end

-- Log through the user's function; a failing logger must not kill the loop.
local function log(srv, msg)
  pcall(srv.log, msg)
end

-- Give back the connection's share of max_body_total (once; also when the
-- connection is dropped half-way through a body).
local function release(srv, c)
  local r = c.reserved
  if r > 0 then
    srv.body_inflight = srv.body_inflight - r
    c.reserved = 0
  end
end

-- Wait until the connection's socket is ready for `what` ("r" | "w") or, with
-- "again", until the next round. False when the deadline passed or the server closes.
local function wait(what)
  return yield(what)
end

-- The next bytes from the client, or nil, "timeout" | "closed".
local function recv(srv, c)
  local sock = c.sock
  while true do
    local data, err, partial = sock:receive(CHUNK)
    if data then return data end
    if partial and partial ~= "" then return partial end
    if err == "timeout" or err == "wantread" then
      if clock(srv) > c.deadline or not wait("r") then return nil, "timeout" end
    elseif err == "wantwrite" then
      if clock(srv) > c.deadline or not wait("w") then return nil, "timeout" end
    else
      return nil, "closed"
    end
  end
end

-- Send all of data within send_timeout (nowait: only what goes at once);
-- true or nil.
local function send_all(srv, c, data, nowait)
  local sock, i, n = c.sock, 1, #data
  c.deadline = clock(srv) + srv.send_timeout
  while true do
    local last, err, partial = sock:send(data, i)
    if last then return true end
    if err == "timeout" or err == "wantwrite" or err == "wantread" then
      if partial and partial >= i then i = partial + 1 end
      if i > n then return true end
      if nowait or clock(srv) > c.deadline or not wait(err == "wantread" and "r" or "w") then
        return nil
      end
    else
      return nil
    end
  end
end

-- A short response generated by the loop itself (errors), always closing;
-- error_responses[code] is built once per status. The loop's only 503 says
-- that the bodies in flight fill max_body_total: try again in a moment.
local error_responses = setmetatable({}, {__index = function(t, code)
  local body = format("%d %s\n", code, REASONS[code] or "")
  local r = status_lines[code] .. "Content-Type: text/plain; charset=utf-8\r\n" ..
    (code == 503 and "Retry-After: " .. RETRY_AFTER .. "\r\n" or "") ..
    "Content-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body
  rawset(t, code, r)
  return r
end})

-- After a closing response: stop sending, then read and discard what the client
-- still sends (for a moment), so closing does not reset the connection before
-- the client has read the response.
local function linger(srv, c)
  local sock = c.sock
  if not sock.shutdown then return end          -- TLS: just close
  sock:shutdown("send")
  c.deadline = clock(srv) + LINGER
  local total = 0
  while total < LINGER_BYTES do
    local data = recv(srv, c)
    if not data then return end
    total = total + #data
  end
end

-- Answer with an error status, then close.
local function refuse(srv, c, code)
  if send_all(srv, c, error_responses[code]) then linger(srv, c) end
  return DONE
end

-- ------------------------------------------------------------ parsing

-- Is there a bare LF, or a CR followed by anything but LF, in buf from i on?
-- (Such a head never shows the CRLF we wait for: refuse it now, not at the
-- request deadline.)
local function bad_eol(buf, i)
  while true do
    local p = find(buf, "[\r\n]", i)
    if not p then return false end
    if byte(buf, p) == 10 then
      if p == 1 or byte(buf, p - 1) ~= 13 then return true end
    else
      local nb = byte(buf, p + 1)
      if nb and nb ~= 10 then return true end
    end
    i = p + 1
  end
end

-- RFC 3986 dec-octet: 0 to 255, no leading zero
local function dec_octet(o)
  return not (#o > 1 and byte(o) == 48) and tonumber(o) <= 255
end

-- RFC 3986 IPv4address: dec-octet "." dec-octet "." dec-octet "." dec-octet
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

-- RFC 3986 IPv6address (eight h16, the last two may be an IPv4 address, one
-- "::" may stand for one or more zero groups)
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

-- Is v a valid Host field value (RFC 9112 3.2: uri-host [":" port], RFC 3986
-- host = IP-literal / IPv4address / reg-name, port = *DIGIT)? An empty value
-- is valid (a target URI without authority).
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

-- The most body bytes req may carry, from option `body` (capped by max_body),
-- or nil and a message when the app's declaration failed.
local function body_limit(srv, req)
  local decl, limit = srv.body, nil
  if decl == true then
    limit = true
  elseif type(decl) == "table" then
    limit = decl[req.path]
  elseif decl then
    local ok, v = xpcall(decl, traceback, req)
    if not ok then return nil, "body declaration error: " .. tostring(v) end
    limit = v
  end
  if limit == nil or limit == false then return 0 end
  if limit == true then return srv.max_body end
  limit = type(limit) == "number" and tointeger(limit)
  if not limit or limit < 0 then return nil, "invalid body limit from the body declaration" end
  return limit < srv.max_body and limit or srv.max_body
end

-- Read and parse the head and body of the next request. Returns the request,
-- or nil and a status to answer with (nil status: just close).
local function read_request(srv, c)
  local buf = c.buf
  if buf == "" then                      -- idle between requests
    c.deadline = clock(srv) + (c.served > 0 and srv.idle_timeout or srv.request_timeout)
    -- nothing buffered: let epoll say when the next request comes (saves a
    -- receive() that would find nothing, on every keep-alive request)
    -- (not with TLS: OpenSSL may hold bytes that epoll cannot see)
    if not srv.tls and not c.sock:dirty() and not wait("r") then return nil end
    local data = recv(srv, c)
    if not data then return nil end
    buf = data
  end
  if c.served > 0 then c.deadline = clock(srv) + srv.request_timeout end

  -- request line (skipping empty lines before it, RFC 9112 2.2)
  local le
  local scanned = 1
  while true do
    local start = 1
    while byte(buf, start) == 13 and byte(buf, start + 1) == 10 do start = start + 2 end
    if start > 1 then buf, scanned = sub(buf, start), 1 end
    le = find(buf, "\r\n", scanned, true)
    if le then break end
    if bad_eol(buf, scanned) then return nil, 400 end
    if #buf > srv.max_request_line then return nil, 414 end
    scanned = #buf > 0 and #buf or 1
    local data, err = recv(srv, c)
    if not data then return nil, err == "timeout" and 408 or nil end
    buf = buf .. data
  end
  if le - 1 > srv.max_request_line then return nil, 414 end

  -- header section: ends at the first empty line
  local he = (le + 2 <= #buf and byte(buf, le + 2) == 13 and byte(buf, le + 3) == 10) and le + 3
  if not he then
    scanned = le
    while true do
      local e = find(buf, "\r\n\r\n", scanned, true)
      if e then he = e + 3 break end
      if bad_eol(buf, scanned) then return nil, 400 end
      if #buf - le > srv.max_header_bytes then return nil, 431 end
      scanned = #buf - 2 > le and #buf - 2 or le
      local data, err = recv(srv, c)
      if not data then return nil, err == "timeout" and 408 or nil end
      buf = buf .. data
    end
    if he - le - 3 > srv.max_header_bytes then return nil, 431 end
  end

  local line = sub(buf, 1, le - 1)
  local method, target, major, minor = match(line, "^(%S+) (%S+) HTTP/(%d)%.(%d)$")
  if not method then
    if match(line, "^%S+ %S+ HTTP/%d+%.%d+$") then return nil, 505 end
    return nil, 400
  end
  if major ~= "1" or (minor ~= "1" and minor ~= "0") then return nil, 505 end
  if find(method, NOT_TCHAR) then return nil, 400 end
  -- origin-form only, printable ASCII, no fragment (never sent on the wire)
  if byte(target) ~= 47 or find(target, "[^\33-\126]") or find(target, "#", 1, true) then
    return nil, 400
  end

  local headers, count, pos, host, clen = {}, 0, le + 2, nil, nil
  local hend = he - 1                    -- the last header's CRLF ends here
  while pos < hend do
    local name, value, nxt = match(buf, "^([^:\r\n]*):[ \t]*([^\r\n]*)\r\n()", pos)
    if not name or nxt > hend or name == "" or find(name, NOT_TCHAR) then
      return nil, 400                    -- also obs-fold and bare CR / LF
    end
    if find(value, BAD_VALUE) then return nil, 400 end
    value = rtrim(value)
    count = count + 1
    if count > srv.max_headers then return nil, 431 end
    local key = lname(name)
    if key == "content-length" then
      if clen or #value > 15 or not find(value, "^%d+$") then return nil, 400 end
      clen = tonumber(value)
    elseif key == "host" then
      if host or not valid_host(value) then return nil, 400 end
      host = value
    elseif key == "transfer-encoding" then
      return nil, 501
    end
    local old = headers[key]
    if old then
      headers[key] = old .. (key == "cookie" and "; " or ", ") .. value
    else
      headers[key] = value
    end
    pos = nxt
  end
  local version = minor == "1" and "1.1" or "1.0"
  if not host and version == "1.1" then return nil, 400 end

  local expect = headers.expect
  if expect and lower(expect) ~= "100-continue" then return nil, 417 end

  local q = find(target, "?", 1, true)
  local req = setmetatable({
    method = method, target = target, version = version,
    path = q and sub(target, 1, q - 1) or target,
    query = q and sub(target, q + 1) or "",
    headers = headers, peer = c.peer, scheme = srv.scheme,
  }, req_mt)

  -- body: admitted (or refused) on the head alone, before any byte of it is read
  local have = #buf - he
  clen = clen or 0
  if clen == 0 then
    req.body = ""
    c.buf = have > 0 and sub(buf, he + 1) or ""
    return req
  end
  if clen > srv.max_body or clen > srv.max_body_total then return nil, 413 end
  local limit, lerr = body_limit(srv, req)
  if not limit then
    log(srv, lerr)
    return nil, 500
  end
  if clen > limit then return nil, 413 end
  if srv.body_inflight + clen > srv.max_body_total then return nil, 503 end
  srv.body_inflight, c.reserved = srv.body_inflight + clen, clen

  if have >= clen then
    req.body = sub(buf, he + 1, he + clen)
    c.buf = have > clen and sub(buf, he + clen + 1) or ""
    return req
  end
  if expect and version == "1.1" then
    local deadline = c.deadline
    if not send_all(srv, c, "HTTP/1.1 100 Continue\r\n\r\n") then return nil end
    c.deadline = deadline
  end
  c.buf = ""
  local parts, n, need = {sub(buf, he + 1)}, 1, clen - have
  while need > 0 do
    local data, err = recv(srv, c)
    if not data then return nil, err == "timeout" and 408 or nil end
    n = n + 1
    if #data > need then
      parts[n] = sub(data, 1, need)
      c.buf = sub(data, need + 1)
      need = 0
    else
      parts[n] = data
      need = need - #data
    end
  end
  req.body = concat(parts)
  return req
end

-- ------------------------------------------------------------ responses

-- Does a Connection header value name this token?
local function has_token(value, token)
  for t in gmatch(lower(value), "[^,%s]+") do
    if t == token then return true end
  end
  return false
end

-- Append one handler header to out (at n); returns n, or nil and what is wrong.
-- st carries what the loop needs to know (connection: close, date given).
-- header names a handler has used and that were valid (bounded), so the
-- character-class scan runs once per name, not once per response
local good_names, good_count = {}, 0

local function add_header(out, n, st, name, value)
  if not good_names[name] then
    if type(name) ~= "string" or name == "" or find(name, NOT_TCHAR) then
      return nil, "invalid header name"
    end
    if good_count < 1000 then
      good_names[name] = true
      good_count = good_count + 1
    end
  end
  local tv = type(value)
  if tv == "number" then value = tostring(value)
  elseif tv ~= "string" then return nil, "header value is not a string" end
  -- three plain searches: much cheaper than one character-class pattern
  if find(value, "\r", 1, true) or find(value, "\n", 1, true) or find(value, "\0", 1, true) then
    return nil, "header value contains CR, LF or NUL"
  end
  local key = lname(name)
  if key == "content-length" or key == "transfer-encoding" then return n end
  if key == "connection" then
    if has_token(value, "close") then st.close = true end
    return n
  end
  if key == "date" then st.date = true end
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = name, ": ", value, "\r\n"
  return n + 4
end

-- The whole response as one string, or nil and why the handler's answer is invalid.
local function build(srv, req, keep, status, hdrs, body)
  local code = type(status) == "number" and tointeger(status)
  if not code or code < 200 or code > 599 then return nil, "invalid status" end
  local tb = type(body)
  if body == nil then body = ""
  elseif tb == "table" then
    for i = 1, #body do
      if type(body[i]) ~= "string" then return nil, "body table holds a non-string" end
    end
    body = concat(body)
  elseif tb ~= "string" then return nil, "body is not a string" end

  local out, st, n = srv.out, srv.hstate, 1
  local err
  st.close, st.date = false, false
  out[1] = status_lines[code]
  if hdrs ~= nil then
    if type(hdrs) ~= "table" then return nil, "headers is not a table" end
    if hdrs[1] ~= nil then                       -- array of {name, value}
      for i = 1, #hdrs do
        local p = hdrs[i]
        if type(p) ~= "table" then return nil, "header pair is not a table" end
        n, err = add_header(out, n, st, p[1], p[2])
        if not n then return nil, err end
      end
    else                                         -- map (values may be arrays)
      for name, value in pairs(hdrs) do
        if type(value) == "table" then
          for i = 1, #value do
            n, err = add_header(out, n, st, name, value[i])
            if not n then return nil, err end
          end
        else
          n, err = add_header(out, n, st, name, value)
          if not n then return nil, err end
        end
      end
    end
  end
  if not st.date then
    n = n + 1
    out[n] = srv:_date()
  end
  if code ~= 204 and code ~= 304 then
    n = n + 1
    out[n] = "Content-Length: " .. #body .. "\r\n"
  end
  if st.close then keep = false end
  if not keep then
    n = n + 1
    out[n] = "Connection: close\r\n\r\n"
  elseif req.version == "1.0" then
    n = n + 1
    out[n] = "Connection: keep-alive\r\n\r\n"
  else
    n = n + 1
    out[n] = "\r\n"
  end
  if req.method ~= "HEAD" and code ~= 204 and code ~= 304 and body ~= "" then
    n = n + 1
    out[n] = body
  end
  local s = concat(out, "", 1, n)
  out[n] = nil                                   -- do not pin the body
  return s, keep
end

-- The connection's coroutine: serve requests until one side closes.
local function serve(srv, c)
  local sock = c.sock
  if srv.tls then
    c.deadline = clock(srv) + srv.request_timeout
    while true do
      local ok, err = sock:dohandshake()
      if ok then break end
      if err == "wantread" or err == "timeout" then
        if not wait("r") then return DONE end
      elseif err == "wantwrite" then
        if not wait("w") then return DONE end
      else
        return DONE
      end
    end
  end
  local burst = 0
  while true do
    local req, code = read_request(srv, c)
    if not req then
      if code == 408 then                        -- best effort, no waiting
        send_all(srv, c, error_responses[408], true)
        return DONE
      end
      if code then return refuse(srv, c, code) end
      return DONE
    end
    c.served = c.served + 1

    local h = req.headers
    local keep
    if req.version == "1.1" then
      keep = not (h.connection and has_token(h.connection, "close"))
    else
      keep = h.connection ~= nil and has_token(h.connection, "keep-alive")
    end

    local ok, status, hdrs, body = xpcall(srv.handler, traceback, req)
    clock(srv)                                   -- the handler may have taken long
    local resp, keep2
    if ok then
      resp, keep2 = build(srv, req, keep, status, hdrs, body)
      if not resp then
        log(srv, "bad handler response: " .. keep2)
        ok = false
      end
    else
      log(srv, "handler error: " .. tostring(status))
    end
    if not ok then
      resp, keep2 = error_responses[500], false
    end
    -- the request body is done with: do not pin it while the response goes
    -- out or the next request is awaited, and give back its budget
    req, status, hdrs, body = nil, nil, nil, nil  -- luacheck: ignore 311
    release(srv, c)
    if not send_all(srv, c, resp) then return DONE end
    if not keep2 then
      linger(srv, c)
      return DONE
    end
    burst = burst + 1
    if burst >= BURST and c.buf ~= "" then      -- let the others run
      burst = 0
      if not wait("again") then return DONE end
    elseif c.buf == "" then
      burst = 0
    end
  end
end

-- ------------------------------------------------------------ server

local Server = {}
local server_mt = {__name = "smugoauth.httpd.Server", __index = Server}

local function default_log(msg)
  io.stderr:write("smugoauth.httpd: ", msg, "\n")
end

-- option name -> {lua type(s) ("a|b"), default}
local OPTIONS = {
  host = {"string", "127.0.0.1"},
  port = {"number", 0},
  handler = {"function", nil},
  backlog = {"number", 1024},
  max_request_line = {"number", 8192},
  max_header_bytes = {"number", 16384},
  max_headers = {"number", 100},
  max_body = {"number", 1024 * 1024},
  body = {"function|table|boolean", nil},
  max_body_total = {"number", nil},               -- nil: see M.new
  request_timeout = {"number", 10},
  idle_timeout = {"number", 30},
  send_timeout = {"number", 10},
  max_connections = {"number", 10000},
  tls = {"table", nil},
  log = {"function", default_log},
}

--- Create a server listening on host:port.
--
-- Options (defaults in brackets):
--
--  - `handler` (required): `function(req) -> status, headers, body`.
--    `req` has `method`, `target` (raw), `path` (raw, undecoded), `query`
--    (raw, `""` if none), `version` (`"1.0"` / `"1.1"`), `headers` (map of
--    lower-case name to value; repeated fields joined with `", "`, cookies with
--    `"; "`), `body` (string), `peer` (`"ip:port"`), `scheme` (`"http"` /
--    `"https"`), and on first use `params` (map of decoded query names to their
--    first value), `params_list` (`{name, value}` pairs), `cookies` (map) and
--    `form()` (the decoded urlencoded body: map, list; empty when Content-Type
--    is something else; `req:form()` works too).
--    It returns an integer status (200-599); headers as a map of name to
--    string (or to an array of strings, sent as repeated fields) or as an
--    array of `{name, value}` pairs; and a body (string, array of strings, or
--    nil). Content-Length and Date are set by the loop (a handler's
--    Content-Length and Transfer-Encoding are dropped; its Date is kept);
--    `Connection: close` from the handler closes after the response. HEAD,
--    204 and 304 responses carry no body. A Lua error in the handler, or an
--    invalid answer (a header name or value with CR, LF or NUL, ...), becomes a
--    500 with a generic body, logged without request data. Handlers run inside
--    the connection's coroutine and must not yield or block for long.
--  - `host` ["127.0.0.1"]: address to listen on.
--  - `port` [0]: 0 picks a free port; `srv.port` tells which.
--  - `backlog` [1024]: listen() backlog.
--  - `max_request_line` [8192]: bytes in the request line, else 414.
--  - `max_header_bytes` [16384]: bytes in the header section, else 431.
--  - `max_headers` [100]: header fields, else 431.
--  - `body` [nil: no request takes a body]: which requests may carry a body,
--    and how many bytes. A request with a non-zero Content-Length that its
--    declaration does not allow is answered 413 and closed before a byte of
--    its body is read (and gets no `100 Continue`). One of:
--    - a function `function(req) -> max bytes`, called for each request with a
--      non-zero Content-Length once its head is parsed: `req` is the request
--      as the handler will see it (`method`, `path`, `headers`, `params`, ...)
--      but without `body`. It returns an integer >= 0 (nil or false: 0; true:
--      max_body). A Lua error in it, or another answer, becomes a 500, logged.
--    - a table mapping a raw `req.path` (exact match, any method) to its max
--      bytes (an integer >= 0, or true for max_body); other paths take none.
--    - true: every request may carry up to max_body (what the loop did before
--      bodies had to be declared).
--    Declared limits are capped by max_body. `srv.body` may be replaced
--    between requests.
--  - `max_body` [1 MiB]: the largest body any request may have, else 413.
--  - `max_body_total` [16 MiB, or max_body when larger]: bytes of request
--    bodies in flight at once, over all connections (reserved from a body's
--    Content-Length when it is admitted, given back once its handler has
--    returned). A body that does not fit now is refused with 503 and
--    `Retry-After: 1` (and a close), not buffered; one larger than the whole
--    budget with 413.
--  - `request_timeout` [10]: seconds to receive a whole request (from its first
--    byte, or from accept for the first one), else 408 and close.
--  - `idle_timeout` [30]: seconds a keep-alive connection may wait for its
--    next request before it is closed.
--  - `send_timeout` [10]: seconds to send one response, else close.
--  - `max_connections` [10000]: open client connections; beyond it new ones
--    are accepted and closed at once.
--  - `tls` [nil]: luasec server parameters (`mode = "server"`, `protocol`,
--    `key`, `certificate`, ...) to serve https.
--  - `log` [stderr]: `function(message)` for handler errors and internal faults.
--
-- Unknown options and wrong types raise. Returns the server, or nil, message
-- when the address cannot be bound (or the TLS context cannot be made).
-- The server has fields `host`, `port` (the bound port) and `scheme`
-- ("http" / "https"), and methods `run`, `step`, `stop`, `connections`, `close`
-- (also `__close`, so `local srv <close> = ...` works). `srv.handler` and
-- `srv.body` may be replaced between requests.
-- @tparam table opts
-- @return server | nil, message
function M.new(opts)
  if type(opts) ~= "table" then error("httpd.new: options table expected", 2) end
  local self = {}
  for k, v in pairs(opts) do
    local spec = OPTIONS[k]
    if not spec then error("httpd.new: unknown option '" .. tostring(k) .. "'", 2) end
    if not find("|" .. spec[1] .. "|", "|" .. type(v) .. "|", 1, true) then
      error(format("httpd.new: option '%s' must be a %s", k, gsub(spec[1], "|", " or ")), 2)
    end
  end
  for k, spec in pairs(OPTIONS) do
    local v = opts[k]
    if v == nil then v = spec[2] end
    self[k] = v
  end
  if not self.handler then error("httpd.new: option 'handler' is required", 2) end
  if self.max_body_total == nil then
    self.max_body_total = math.max(16 * 1024 * 1024, tointeger(self.max_body) or 0)
  end
  for _, k in ipairs{"port", "backlog", "max_request_line", "max_header_bytes",
                     "max_headers", "max_body", "max_body_total", "max_connections"} do
    if not tointeger(self[k]) or self[k] < 0 then
      error(format("httpd.new: option '%s' must be a non-negative integer", k), 2)
    end
  end
  for _, k in ipairs{"request_timeout", "idle_timeout", "send_timeout"} do
    local v = self[k]
    if v ~= v or v <= 0 then error(format("httpd.new: option '%s' must be positive", k), 2) end
  end
  if type(self.body) == "table" then
    for path, limit in pairs(self.body) do
      if type(path) ~= "string" or byte(path) ~= 47 then
        error("httpd.new: option 'body': keys must be paths starting with '/'", 2)
      end
      if limit ~= true and not (type(limit) == "number" and tointeger(limit) and limit >= 0) then
        error(format("httpd.new: option 'body': the limit for '%s' must be a non-negative " ..
                     "integer or true", path), 2)
      end
    end
  end

  if self.tls then
    local ssl = require "ssl"
    local ctx, err = ssl.newcontext(self.tls)
    if not ctx then return nil, "httpd.new: TLS context: " .. tostring(err) end
    self.ssl, self.tls = ssl, ctx
    self.scheme = "https"
  else
    self.scheme = "http"
  end

  local poller, perr = core.poller(256)
  if not poller then return nil, perr end
  local lst, err = socket.bind(self.host, self.port, self.backlog)
  if not lst then
    poller:close()
    return nil, format("httpd.new: cannot listen on %s:%d: %s", self.host, self.port, err)
  end
  lst:settimeout(0)
  local _, port = lst:getsockname()
  self.port = tonumber(port)
  self.listener, self.lfd, self.poller = lst, lst:getfd(), poller
  local ok, aerr = poller:add(self.lfd, "r")
  if not ok then
    lst:close()
    poller:close()
    return nil, aerr
  end
  self.conns, self.nconn = {}, 0
  self.fds, self.evs = {}, {}
  self.again, self.again_n = {}, 0
  self.out, self.hstate = {}, {}
  self.body_inflight = 0
  self.now = monotime()
  local shortest = math.min(self.request_timeout, self.idle_timeout, self.send_timeout)
  self.sweep_every = math.max(0.01, math.min(0.25, shortest / 4))
  self.next_sweep = self.now + self.sweep_every
  self.date_at, self.date_line = -1, nil
  self.stopped, self.closed = false, false
  return setmetatable(self, server_mt)
end

-- "Date: ...\r\n", refreshed at most once a second.
function Server:_date()
  if self.now >= self.date_at then
    self.date_line = os.date("!Date: %a, %d %b %Y %H:%M:%S GMT\r\n")
    self.date_at = self.now + 1
  end
  return self.date_line
end

-- Forget a connection and close its socket.
local function drop(self, c)
  release(self, c)
  if self.conns[c.fd] == c then
    self.conns[c.fd] = nil
    self.nconn = self.nconn - 1
    self.poller:del(c.fd)
  end
  c.sock:close()
end

-- Resume a connection's coroutine with v and act on what it waits for next.
local function run_conn(self, c, a, b)
  local ok, what = resume(c.co, a, b)
  if not ok then
    log(self, "internal error: " .. tostring(what))
    drop(self, c)
  elseif what == DONE then
    drop(self, c)
  elseif what == "again" then
    local n = self.again_n + 1
    self.again[n], self.again_n = c, n
  elseif what ~= c.want then
    if what ~= "r" and what ~= "w" then
      log(self, "internal error: a handler yielded")
      drop(self, c)
    else
      c.want = what
      self.poller:mod(c.fd, what)
    end
  end
end

-- Accept what the listener has queued.
local function accept(self)
  local lst = self.listener
  for _ = 1, ACCEPT_BURST do
    local s, err = lst:accept()
    if not s then
      if err ~= "timeout" then           -- EMFILE and the like: pause for a moment
        self.poller:del(self.lfd)
        self.accept_paused = self.now + 0.1
      end
      return
    end
    if self.nconn >= self.max_connections then
      s:close()
    else
      s:settimeout(0)
      s:setoption("tcp-nodelay", true)
      local ip, port = s:getpeername()
      local fd = s:getfd()
      if self.tls then
        local w = self.ssl.wrap(s, self.tls)
        if w then w:settimeout(0) else s:close() end
        s = w
      end
      if s then
        local c = {
          sock = s, fd = fd, want = "r", buf = "", served = 0, deadline = 0, reserved = 0,
          peer = ip and (find(ip, ":", 1, true) and "[" .. ip .. "]:" or ip .. ":") .. port or "?",
        }
        if self.poller:add(fd, "r") then
          self.conns[fd] = c
          self.nconn = self.nconn + 1
          c.co = create(serve)
          run_conn(self, c, self, c)
        else
          s:close()
        end
      end
    end
  end
end

-- Wake connections whose deadline has passed (they answer 408 or close).
local function sweep(self)
  local now = self.now
  for _, c in pairs(self.conns) do
    if c.deadline < now then run_conn(self, c, false) end
  end
  if self.accept_paused and now >= self.accept_paused then
    self.accept_paused = nil
    self.poller:add(self.lfd, "r")
  end
  self.next_sweep = now + self.sweep_every
end

--- One poll round: wait up to `timeout` seconds (default: until the next
-- timeout check, at most 0.25 s) for readiness, serve what is ready, expire
-- what timed out.
-- @tparam[opt] number timeout
-- @return true | nil, message, code (the poller failed)
function Server:step(timeout)
  if self.closed then error("attempt to use a closed smugoauth.httpd.Server", 2) end
  local now = monotime()
  local until_sweep = self.next_sweep - now
  if until_sweep < 0 then until_sweep = 0 end
  if timeout == nil or timeout > until_sweep then timeout = until_sweep end
  if self.again_n > 0 then timeout = 0 end
  local fds, evs, n = self.poller:wait(timeout, self.fds, self.evs)
  if not fds then return nil, evs, n end
  self.now = monotime()
  local conns, lfd = self.conns, self.lfd
  for i = 1, n do
    if self.closed then return true end          -- a handler closed the server
    local fd = fds[i]
    if fd == lfd then
      accept(self)
    else
      local c = conns[fd]
      if c then run_conn(self, c, true) end
    end
  end
  local again_n = self.again_n
  if again_n > 0 and not self.closed then
    local again = self.again
    self.again, self.again_n = self.spare or {}, 0
    for i = 1, again_n do
      local c = again[i]
      again[i] = nil
      if conns[c.fd] == c then run_conn(self, c, true) end
    end
    self.spare = again
  end
  if self.now >= self.next_sweep and not self.closed then sweep(self) end
  return true
end

--- Serve until `srv:stop()` is called (typically from a handler).
-- @return true | nil, message, code (the poller failed)
function Server:run()
  self.stopped = false
  while not self.stopped do
    local ok, err, code = self:step()
    if not ok then return nil, err, code end
  end
  return true
end

--- Make `run()` return after the current round.
function Server:stop()
  self.stopped = true
end

--- Number of open client connections.
function Server:connections()
  return self.nconn
end

--- Close every connection, the listener and the poller (idempotent).
function Server:close()
  if self.closed then return end
  self.closed, self.stopped = true, true
  for _, c in pairs(self.conns) do drop(self, c) end
  self.poller:del(self.lfd)
  self.listener:close()
  self.poller:close()
end
server_mt.__close = Server.close

return M
