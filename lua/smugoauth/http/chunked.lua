--- smugoauth.http.chunked: the chunked transfer coding of request bodies
-- (RFC 9112 7.1), decoded incrementally from strings: no socket, no clock.
-- Fed the bytes that follow a head as they arrive, in pieces of any size, a
-- decoder answers the decoded body and the bytes after it (the next
-- pipelined request), or that it needs more, or the status to refuse the
-- request with. The answer is the same however the bytes are split between
-- calls, and the work is linear in the bytes fed (spec/http/http_chunked_spec.lua).
--
--    local chunked = require "smugoauth.http.chunked"
--    local d = chunked.new{ max_body = 1024 }
--    local body, rest = d:feed(bytes)  -- body, rest | nil, status | nil (more)
--
-- What a body is refused with (the server answers the status, then closes):
-- a chunk-size that is not 1*HEXDIG (no sign, space, `0x`; leading zeros are
-- fine, 64 digits at most), a chunk extension that is not `*( BWS ";" BWS
-- token [ BWS "=" BWS ( token / quoted-string ) ] )`, chunk extensions longer
-- than `max_chunk_ext` bytes over the whole body, chunk data not followed by
-- exactly CRLF, a bare CR or LF anywhere, a control byte in a chunk line or
-- in a trailer field, a malformed or obs-folded trailer field (400); decoded
-- data over `max_body` (413, as soon as the chunk-size that would pass it is
-- read, before its data); a trailer section over `max_trailer` bytes (431).
-- Trailer fields are checked and discarded: they are never merged into the
-- head's fields.
-- @module smugoauth.http.chunked
local grammar = require "smugoauth.http.grammar"

local byte, find, match, sub = string.byte, string.find, string.match, string.sub
local concat = table.concat
local setmetatable, tonumber, type, error = setmetatable, tonumber, type, error
local tointeger = math.tointeger
local NOT_TCHAR, parameters = grammar.NOT_TCHAR, grammar.parameters

local MAX_DIGITS = 64          -- hex digits of a chunk-size, leading zeros included
local MAX_SIGNIFICANT = 15     -- beyond that a size is over any max_body (2^53)
local LINE_BAD = "[%z\1-\8\11\12\14-\31\127]"   -- CTLs but HTAB, CR, LF

-- what the decoder is reading
local SIZE, DATA, DATA_CR, DATA_LF, TRAILER, DONE = 1, 2, 3, 4, 5, 6

local methods = {}
local mt = {__name = "smugoauth.ChunkedDecoder", __index = methods}

--- A decoder for one chunked body.
--
-- Options (defaults in brackets):
--
--  - `max_body` [1048576]: decoded bytes, else 413 (an integer, at most 2^53).
--  - `max_chunk_ext` [4096]: bytes of chunk extensions (from the end of a
--    chunk-size to its CRLF), summed over the body, else 400.
--  - `max_trailer` [16384]: bytes of the trailer section (each field line
--    with its CRLF), else 431.
-- @tparam[opt] table opts
-- @return the decoder
local function new(opts)
  if opts ~= nil and type(opts) ~= "table" then error("chunked.new: options table expected", 2) end
  opts = opts or {}
  local function limit(name, default, max)
    local v = opts[name]
    if v == nil then return default end
    v = type(v) == "number" and tointeger(v)
    if not v or v < 0 or v > max then
      error("chunked.new: option '" .. name .. "' must be an integer from 0 to " .. max, 3)
    end
    return v
  end
  return setmetatable({
    max_body = limit("max_body", 1 << 20, 1 << 53),
    ext_left = limit("max_chunk_ext", 4096, 1 << 30),
    trailer_left = limit("max_trailer", 16384, 1 << 30),
    state = SIZE, need = 0, total = 0, status = nil,
    line = {}, line_n = 0, line_len = 0, cr = false,   -- a line not ended yet
    digits = 0,                                        -- its leading hex digits
    parts = {}, nparts = 0,                            -- decoded pieces
  }, mt)
end

-- ------------------------------------------------------------ lines

-- The status for the line the decoder reads now, once this is known from
-- its bytes data[i..j] (which follow the bytes of it already seen and hold
-- no CR or LF), else nil. A chunk-size line: 400 for a first byte that is not
-- a hex digit, more than MAX_DIGITS digits, more extension bytes than are
-- left, a control byte (every refusal of a line that has not ended is 400,
-- as the whole line would get: the answer never depends on where the line
-- was split). A trailer line: 400 for a control byte, 431 when it grows past
-- the room left (it costs its bytes and its CRLF; the empty line that ends
-- the section costs nothing), whichever comes first in the byte stream.
local function line_check(d, data, i, j)
  if i > j then return nil end
  local len = j - i + 1
  local room, status
  if d.state == SIZE then
    local digits = d.digits
    if digits == d.line_len then                  -- still in the chunk-size
      local e = match(data, "^%x*()", i)
      if e == i and digits == 0 then return 400 end
      digits = digits + (e - i)
      if digits > MAX_DIGITS then return 400 end
      d.digits = digits
    end
    if d.line_len + len - digits > d.ext_left then return 400 end
    room, status = MAX_DIGITS + d.ext_left - d.line_len, 400
  else
    room, status = d.trailer_left - 2 - d.line_len, 431
  end
  local stop = len > room and i + room - 1 or j
  if stop >= i and find(sub(data, i, stop), LINE_BAD) then return 400 end
  if len > room then return status end
  return nil
end

-- A whole chunk-size line (no CRLF): the chunk's size and the bytes of its
-- extensions, or nil, status.
local function size_line(d, line)
  local e = match(line, "^%x+()")
  if not e then return nil, 400 end
  if e - 1 > MAX_DIGITS then return nil, 400 end
  local ext = #line - e + 1
  if ext > 0 then
    if ext > d.ext_left then return nil, 400 end
    local p = parameters(line, e, true)
    if p ~= #line + 1 then return nil, 400 end
  end
  local sig = match(sub(line, 1, e - 1), "^0*(.*)$")
  if #sig > MAX_SIGNIFICANT then return nil, 413 end
  return sig == "" and 0 or tonumber(sig, 16), ext
end

-- A whole trailer field line (no CRLF, not empty): nil, or the status (400).
local function trailer_line(line)
  local name, value = match(line, "^([^:]*):[ \t]*(.*)$")
  if not name or name == "" or find(name, NOT_TCHAR) or find(value, LINE_BAD) then
    return 400
  end
  return nil
end

-- The decoder's line (its pieces so far, then data[i..j]) as one string.
local function take_line(d, data, i, j)
  local line
  if d.line_n == 0 then
    line = sub(data, i, j)
  else
    local t, n = d.line, d.line_n + 1
    t[n] = sub(data, i, j)
    line = concat(t, "", 1, n)
    for k = 1, n do t[k] = nil end
  end
  d.line_n, d.line_len, d.cr, d.digits = 0, 0, false, 0
  return line
end

-- ------------------------------------------------------------ feeding

-- Refuse with status: this and every later call.
local function fail(d, status)
  d.status, d.parts, d.line = status, nil, nil
  return nil, status
end

-- A chunk of `size` bytes announced (ext: bytes of its extensions): its data
-- comes next, or the trailer section after the last chunk. Nil, or a status.
local function announce(d, size, ext)
  if size > d.max_body - d.total then return 413 end
  d.ext_left = d.ext_left - ext
  d.total = d.total + size
  if size == 0 then
    d.state = TRAILER
  else
    d.state, d.need = DATA, size
  end
  return nil
end

-- A line of the decoder's state has ended with CRLF: act on it.
local function end_line(d, line)
  if d.state == SIZE then
    local size, ext = size_line(d, line)
    if not size then return ext end
    return announce(d, size, ext)
  end
  if line == "" then
    d.state = DONE
    return nil
  end
  local status = trailer_line(line)
  if status then return status end
  d.trailer_left = d.trailer_left - #line - 2
  return nil
end

--- Decode the next bytes of the body: data from index `i` (default 1) on.
-- Returns one of:
--
--  - `body, rest`: the body is complete: body is the decoded data, rest the
--    bytes of data after the body's final CRLF (the next request).
--  - `nil, status`: refuse the request with this status (and close); every
--    later call answers the same.
--  - `nil`: not complete yet: call again with the next bytes (only the new
--    ones: the decoder keeps what it needs).
--
-- `d.total` is the number of decoded bytes announced so far. Feeding a
-- decoder whose body is complete raises.
-- @tparam string data
-- @tparam[opt] integer i
function methods:feed(data, i)
  local state = self.state
  if state == DONE then error("smugoauth.ChunkedDecoder: the body is already complete", 2) end
  if self.status then return nil, self.status end
  local pos, n = i or 1, #data
  local out, on = {}, 0
  while pos <= n do
    if state == DATA then
      local need, avail = self.need, n - pos + 1
      if avail <= need then
        on = on + 1
        out[on] = pos == 1 and data or sub(data, pos)
        self.need, pos = need - avail, n + 1
        if avail == need then state = DATA_CR end
      else
        on = on + 1
        out[on] = sub(data, pos, pos + need - 1)
        pos, state = pos + need, DATA_CR
      end
    elseif state == DATA_CR then
      if byte(data, pos) ~= 13 then return fail(self, 400) end
      if byte(data, pos + 1) == 10 then
        pos, state = pos + 2, SIZE
      else
        pos, state = pos + 1, DATA_LF
      end
    elseif state == DATA_LF then
      if byte(data, pos) ~= 10 then return fail(self, 400) end
      pos, state = pos + 1, SIZE
    else                                         -- a chunk-size or trailer line
      self.state = state
      local status
      local e, nxt
      if state == SIZE and self.line_n == 0 and not self.cr then
        e, nxt = match(data, "^%x+()\r\n()", pos)
      end
      if e and e - pos <= MAX_SIGNIFICANT then   -- the common case: "1a3\r\n"
        status = announce(self, tonumber(sub(data, pos, e - 1), 16), 0)
        pos = nxt
      elseif self.cr then                        -- the line ended with a CR: LF?
        if byte(data, pos) ~= 10 then return fail(self, 400) end
        status = end_line(self, take_line(self, data, pos, pos - 1))
        pos = pos + 1
      else
        local t = find(data, "[\r\n]", pos)
        local j = t and t - 1 or n
        status = line_check(self, data, pos, j)
        if status then return fail(self, status) end
        if not t then                            -- the line goes on
          local ln = self.line_n + 1
          self.line[ln], self.line_n = sub(data, pos, n), ln
          self.line_len = self.line_len + n - pos + 1
          pos = n + 1
        elseif byte(data, t) == 10 then          -- bare LF
          return fail(self, 400)
        elseif t == n then                       -- CR, its LF still to come
          local ln = self.line_n + 1
          self.line[ln], self.line_n = sub(data, pos, j), ln
          self.line_len, self.cr = self.line_len + j - pos + 1, true
          pos = n + 1
        elseif byte(data, t + 1) ~= 10 then      -- bare CR
          return fail(self, 400)
        else
          status = end_line(self, take_line(self, data, pos, j))
          pos = t + 2
        end
      end
      if status then return fail(self, status) end
      state = self.state
      if state == DONE then break end
    end
  end
  self.state = state
  if on > 0 then
    local np = self.nparts + 1
    self.parts[np], self.nparts = on == 1 and out[1] or concat(out, "", 1, on), np
  end
  if state ~= DONE then return nil end
  local body = concat(self.parts, "", 1, self.nparts)
  self.parts, self.line = nil, nil
  return body, pos <= n and sub(data, pos) or ""
end

return {
  new = new,
  methods = methods,
  mt = mt,
}
