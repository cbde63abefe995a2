--- smugoauth.http.writer: HTTP/1.1 messages serialised (the writing half of
-- smugoauth.http.codec, which exports these functions too): responses to a
-- parsed request head, request heads, the server's own short refusals and
-- the Date field. Pure functions on strings: the caller gives the date.
-- @module smugoauth.http.writer
local grammar = require "smugoauth.http.grammar"

local byte, find, format = string.byte, string.find, string.format
local concat = table.concat
local pairs, type, tostring, error = pairs, type, tostring, error
local tointeger = math.tointeger
local REASONS, status_lines, lname, has_token, NOT_TCHAR =
  grammar.REASONS, grammar.status_lines, grammar.lname, grammar.has_token, grammar.NOT_TCHAR

-- ------------------------------------------------------------ serialising

-- Names already checked, each with its lower-case form, and short values
-- already checked (both bounded), so that the scans run once per name and
-- value, not once per message: an app's headers are mostly the same strings.
local good_names, good_count = {}, 0
local good_values, values_count = {}, 0
local MAX_CACHED_VALUE = 256

-- Append one header field to out (at n): n, or nil and what is wrong. st
-- collects what the framing needs (close: Connection names close; date:
-- a Date is given). Content-Length, Transfer-Encoding and Connection are the
-- codec's own: dropped from what is given.
local function add_header(out, n, st, name, value)
  local key = good_names[name]
  if not key then
    if type(name) ~= "string" or name == "" or find(name, NOT_TCHAR) then
      return nil, "invalid header name"
    end
    key = lname(name)
    if good_count < 1000 then
      good_names[name] = key
      good_count = good_count + 1
    end
  end
  local tv = type(value)
  if tv == "number" then value = tostring(value)
  elseif tv ~= "string" then return nil, "header value is not a string" end
  if not good_values[value] then
    -- three plain searches: much cheaper than one character-class pattern
    if find(value, "\r", 1, true) or find(value, "\n", 1, true) or find(value, "\0", 1, true) then
      return nil, "header value contains CR, LF or NUL"
    end
    if values_count < 1000 and #value <= MAX_CACHED_VALUE then
      good_values[value] = true
      values_count = values_count + 1
    end
  end
  if key == "content-length" then
    st.length = value                            -- kept for a streamed body only
    return n
  end
  if key == "transfer-encoding" then return n end
  if key == "connection" then
    if has_token(value, "close") then st.close = true end
    return n
  end
  if key == "date" then st.date = true end
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = name, ": ", value, "\r\n"
  return n + 4
end

-- Append the header fields of hdrs (nil; a map of name to string, number or
-- array of them; or an array of {name, value} pairs): n, or nil and why not.
local function add_headers(out, n, st, hdrs)
  if hdrs == nil then return n end
  if type(hdrs) ~= "table" then return nil, "headers is not a table" end
  local err
  if hdrs[1] ~= nil then                         -- array of {name, value}
    for i = 1, #hdrs do
      local p = hdrs[i]
      if type(p) ~= "table" then return nil, "header pair is not a table" end
      n, err = add_header(out, n, st, p[1], p[2])
      if not n then return nil, err end
    end
  else                                           -- map (values may be arrays)
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
  return n
end

-- A body given as a string, an array of strings or nil: the string, or nil
-- and why not.
local function body_string(body)
  if body == nil then return "" end
  local tb = type(body)
  if tb == "string" then return body end
  if tb ~= "table" then return nil, "body is not a string" end
  for i = 1, #body do
    if type(body[i]) ~= "string" then return nil, "body table holds a non-string" end
  end
  return concat(body)
end

-- scratch space of the serialisers (they never yield, so one is enough)
local out, st = {}, {}

--- The bytes of a whole response to the request `head` (its `method` and
-- `version` are used), or nil and why the answer is invalid.
--
-- status is an integer 200-599; hdrs as for `add_headers` above (names are
-- tokens; values hold no CR, LF or NUL); body a string, an array of strings,
-- nil, or a function (a streamed body, see below). Content-Length is set here
-- (a given Content-Length or Transfer-Encoding is dropped); `Connection:
-- close` from hdrs (or keep false) closes; `date` ("Date: ...\r\n", see
-- `date_line`) is added unless hdrs has a Date. HEAD, 204 and 304 responses
-- carry no body. Returns the bytes and whether the connection stays open.
--
-- A streamed body (body a function, which the server calls for the pieces):
-- only the head is returned, then how the body is framed and its length:
-- `head, keep, framing, length`. framing is "length" when hdrs gives a
-- Content-Length (a decimal integer: it is kept, and the pieces must add up
-- to it), else "chunked" (HTTP/1.1: Transfer-Encoding: chunked) or "close"
-- (HTTP/1.0: the body ends with the connection, so keep is false); "none"
-- for HEAD, 204 and 304 (no body is sent).
-- @tparam table head
-- @tparam boolean keep
-- @param status
-- @param hdrs
-- @param body
-- @tparam[opt] string date
-- @return string, boolean[, framing, length] | nil, message
local function serialize_response(head, keep, status, hdrs, body, date)
  local code = type(status) == "number" and tointeger(status)
  if not code or code < 200 or code > 599 then return nil, "invalid status" end
  local err
  local streamed = type(body) == "function"
  if not streamed then
    body, err = body_string(body)
    if not body then return nil, err end
  end
  st.close, st.date, st.length = false, false, nil
  out[1] = status_lines[code]
  local n
  n, err = add_headers(out, 1, st, hdrs)
  if not n then return nil, err end
  if not st.date and date then
    n = n + 1
    out[n] = date
  end
  local bodyless = code == 204 or code == 304
  local framing, length
  if streamed then
    if st.length then
      length = find(st.length, "^%d+$") and tointeger(tonumber(st.length))
      if not length then return nil, "invalid Content-Length for a streamed body" end
    end
    if bodyless then
      framing = "none"
    else
      if length then
        framing = "length"
        n = n + 1
        out[n] = "Content-Length: " .. length .. "\r\n"
      elseif head.version == "1.0" then
        framing, keep = "close", false
      else
        framing = "chunked"
        n = n + 1
        out[n] = "Transfer-Encoding: chunked\r\n"
      end
      if head.method == "HEAD" then framing = "none" end
    end
  elseif not bodyless then
    n = n + 1
    out[n] = "Content-Length: " .. #body .. "\r\n"
  end
  if st.close then keep = false end
  n = n + 1
  if not keep then
    out[n] = "Connection: close\r\n\r\n"
  elseif head.version == "1.0" then
    out[n] = "Connection: keep-alive\r\n\r\n"
  else
    out[n] = "\r\n"
  end
  if not streamed and head.method ~= "HEAD" and not bodyless and body ~= "" then
    n = n + 1
    out[n] = body
  end
  local s = concat(out, "", 1, n)
  out[n] = nil                                   -- do not pin the body
  if streamed then return s, keep, framing, length end
  return s, keep
end

--- The bytes of a request head and body (for clients and tests): method a
-- token, target in origin-form (printable ASCII, no `#`), hdrs and body as
-- for `serialize_response` (a Content-Length is added when the body is not
-- empty; a Connection field is dropped). Raises on an invalid method or
-- target; returns nil and a message for invalid headers or body.
-- @tparam string method
-- @tparam string target
-- @param hdrs
-- @param body
-- @tparam[opt="1.1"] string version
-- @return string | nil, message
local function serialize_request(method, target, hdrs, body, version)
  if type(method) ~= "string" or method == "" or find(method, NOT_TCHAR) then
    error("serialize_request: the method must be a token", 2)
  end
  if type(target) ~= "string" or byte(target) ~= 47 or find(target, "[^\33-\126]") or
     find(target, "#", 1, true) then
    error("serialize_request: the target must be in origin-form (printable ASCII, no '#')", 2)
  end
  version = version or "1.1"
  if version ~= "1.1" and version ~= "1.0" then
    error("serialize_request: version must be \"1.0\" or \"1.1\"", 2)
  end
  local err
  body, err = body_string(body)
  if not body then return nil, err end
  st.close, st.date, st.length = false, false, nil
  out[1] = method .. " " .. target .. " HTTP/" .. version .. "\r\n"
  local n
  n, err = add_headers(out, 1, st, hdrs)
  if not n then return nil, err end
  if body ~= "" then
    n = n + 1
    out[n] = "Content-Length: " .. #body .. "\r\n"
  end
  n = n + 1
  out[n] = "\r\n"
  n = n + 1
  out[n] = body
  local s = concat(out, "", 1, n)
  out[n] = nil
  return s
end

-- the loop's own short answers, built once per status (and Retry-After)
local error_responses = {}

--- A short plain-text response made by the server itself (a refusal or a
-- failure), always closing: `"<code> <reason>\n"` as the body, with
-- `Retry-After: <retry_after>` when given.
-- @tparam integer code
-- @tparam[opt] integer retry_after seconds
-- @treturn string
local function error_response(code, retry_after)
  local k = retry_after and code .. "/" .. retry_after or code
  local r = error_responses[k]
  if r then return r end
  local body = format("%d %s\n", code, REASONS[code] or "")
  r = status_lines[code] .. "Content-Type: text/plain; charset=utf-8\r\n" ..
    (retry_after and "Retry-After: " .. retry_after .. "\r\n" or "") ..
    "Content-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body
  error_responses[k] = r
  return r
end

--- The Date field for the time t (seconds since the epoch, UTC),
-- `"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"` (RFC 9110 5.6.7 IMF-fixdate).
-- @tparam integer t
-- @treturn string
local function date_line(t)
  return os.date("!Date: %a, %d %b %Y %H:%M:%S GMT\r\n", t)
end

return {
  serialize_response = serialize_response,
  serialize_request = serialize_request,
  error_response = error_response,
  date_line = date_line,
}
