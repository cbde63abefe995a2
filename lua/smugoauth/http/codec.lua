--- smugoauth.http.codec: HTTP/1.1 (RFC 9112) for our own servers, on strings
-- only: request heads parsed under limits, body framing, responses (and
-- request heads) serialised. No socket, coroutine or clock: every answer is a
-- function of the arguments (and of the parser's own scan position), so the
-- whole grammar is unit-tested and fuzzed without a network
-- (spec/http/http_codec_spec.lua, spec/http/http_codec_fuzz_spec.lua).
--
--    local codec = require "smugoauth.http.codec"
--    local p = codec.new_parser{ max_request_line = 8192 }
--    local head, nxt, clen = p:parse(buf)   -- a head, or nil, status, or nil, nil, rest
--    local d = codec.new_chunked{ max_body = 1024 }   -- clen == "chunked"
--    local body, rest = d:feed(buf, nxt)    -- body, rest | nil, status | nil (more)
--
-- What a head is refused with (the server answers the status, then closes):
-- request line over max_request_line (414), header section over
-- max_header_bytes or more than max_headers fields (431), malformed request or
-- header lines, obs-fold, bare CR or LF, control bytes, duplicate
-- Content-Length or Host, invalid Content-Length, HTTP/1.1 without Host, a
-- Host that is not `uri-host [":" port]`, targets not in origin-form
-- (absolute-form, authority-form, `*`) or with a `#` (400). Transfer-Encoding
-- (RFC 9112 6.1): `chunked` (any case) as the one coding of an HTTP/1.1
-- request is accepted (its body is decoded by smugoauth.http.chunked, which
-- lists what a body is refused with); Transfer-Encoding with Content-Length,
-- in an HTTP/1.0 request, in two fields, a value that is not a list of
-- codings or whose final coding is not chunked (`identity`, `xchunked`,
-- `chunked, gzip`), chunked twice (400); other codings before a final chunked
-- (`gzip, chunked`: 501). An Expect other than 100-continue (417), versions
-- other than 1.0 and 1.1 (505). A bare CR or LF is refused as soon as it is
-- seen (a head that never shows the CRLF it needs is not waited for), and
-- before any other refusal of the same head: so the answer to a byte sequence
-- never depends on how it was split into reads.
-- @module smugoauth.http.codec
local grammar = require "smugoauth.http.grammar"
local chunked = require "smugoauth.http.chunked"
local writer = require "smugoauth.http.writer"

local byte, find, lower, match, sub =
  string.byte, string.find, string.lower, string.match, string.sub
local setmetatable, tonumber = setmetatable, tonumber
local NOT_TCHAR, BAD_VALUE = grammar.NOT_TCHAR, grammar.BAD_VALUE
local lname, rtrim, bad_eol, valid_host, has_token, transfer_coding =
  grammar.lname, grammar.rtrim, grammar.bad_eol, grammar.valid_host, grammar.has_token,
  grammar.transfer_coding

-- ------------------------------------------------------------ request heads

-- The head in buf, whose request line ends at le (its CR) and whose header
-- section ends at he (the LF of the empty line): head, he + 1, content length
-- | nil, status. A refusal other than 400 first makes sure no bare CR or LF
-- stands between `from` and he (that one is answered 400 whatever else is
-- wrong, as it is when the bytes come one by one).
local function refuse_head(buf, from, he, status)
  if bad_eol(buf, from, he) then return nil, 400 end
  return nil, status
end

local function parse_fields(buf, le, he, max_headers)
  local line = sub(buf, 1, le - 1)
  local method, target, major, minor = match(line, "^(%S+) (%S+) HTTP/(%d)%.(%d)$")
  if not method then
    if match(line, "^%S+ %S+ HTTP/%d+%.%d+$") then return refuse_head(buf, le, he, 505) end
    return nil, 400
  end
  if major ~= "1" or (minor ~= "1" and minor ~= "0") then return refuse_head(buf, le, he, 505) end
  if find(method, NOT_TCHAR) then return nil, 400 end
  -- origin-form only, printable ASCII, no fragment (never sent on the wire)
  if byte(target) ~= 47 or find(target, "[^\33-\126]") or find(target, "#", 1, true) then
    return nil, 400
  end

  local headers, count, pos, host, clen, te = {}, 0, le + 2, nil, nil, nil
  local hend = he - 1                    -- the last header's CRLF ends here
  while pos < hend do
    local name, value, nxt = match(buf, "^([^:\r\n]*):[ \t]*([^\r\n]*)\r\n()", pos)
    if not name or nxt > hend or name == "" or find(name, NOT_TCHAR) then
      return nil, 400                    -- also obs-fold and bare CR / LF
    end
    if find(value, BAD_VALUE) then return nil, 400 end
    value = rtrim(value)
    count = count + 1
    if count > max_headers then return refuse_head(buf, pos, he, 431) end
    local key = lname(name)
    if key == "content-length" then
      if clen or #value > 15 or not find(value, "^%d+$") then return nil, 400 end
      clen = tonumber(value)
    elseif key == "host" then
      if host or not valid_host(value) then return nil, 400 end
      host = value
    elseif key == "transfer-encoding" then
      if te then return nil, 400 end     -- two fields: a smuggling shape
      local status
      te, status = transfer_coding(value)
      if not te then
        if status == 400 then return nil, 400 end
        te = status                      -- 501, unless a later field is malformed
      end
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
  if te then
    -- RFC 9112 6.1: Transfer-Encoding with Content-Length, or in HTTP/1.0,
    -- is faulty framing (the request is refused and the connection closed)
    if clen or version == "1.0" then return nil, 400 end
    if te ~= "chunked" then return nil, te end
    clen = "chunked"
  end
  local expect = headers.expect
  if expect and lower(expect) ~= "100-continue" then return nil, 417 end

  local q = find(target, "?", 1, true)
  return {
    method = method, target = target, version = version,
    path = q and sub(target, 1, q - 1) or target,
    query = q and sub(target, q + 1) or "",
    headers = headers,
  }, he + 1, clen or 0
end

local parser_methods = {}
local parser_mt = {__name = "smugoauth.HttpParser", __index = parser_methods}

--- A request-head parser, kept by a connection across its requests (it
-- remembers how far it has looked into a head that is not complete yet, so
-- that bytes are scanned once however they trickle in).
--
-- Options (defaults in brackets):
--
--  - `max_request_line` [8192]: bytes in the request line, else 414.
--  - `max_header_bytes` [16384]: bytes in the header section, else 431.
--  - `max_headers` [100]: header fields, else 431.
-- @tparam[opt] table opts
-- @return the parser
local function new_parser(opts)
  opts = opts or {}
  return setmetatable({
    max_request_line = opts.max_request_line or 8192,
    max_header_bytes = opts.max_header_bytes or 16384,
    max_headers = opts.max_headers or 100,
    scan = 1, le = nil,
  }, parser_mt)
end

-- Forget a head (parsed or refused): the parser is ready for the next one.
local function done(p, a, b, c)
  p.scan, p.le = 1, nil
  return a, b, c
end

--- Parse the request head at the start of buf (empty lines before it are
-- skipped, RFC 9112 2.2). Returns one of:
--
--  - `head, nxt, length`: the head (`method`, `target`, `version`
--    "1.0" | "1.1", `path`, `query` ("" when none), `headers`: lower-case name
--    to value, repeated fields joined with ", ", cookies with "; "); nxt is
--    the index in buf of the first byte after the head; length is the
--    Content-Length (0 when the head has none), or the string `"chunked"`
--    when the body is chunked (`headers["transfer-encoding"]` is kept, no
--    Content-Length is made up: decode it with `new_chunked`).
--  - `nil, status`: refuse the request with this status (then close).
--  - `nil, nil, rest`: not complete yet. Call again with `rest .. more`
--    (rest is buf without the empty lines before the request line).
--
-- The answer is the same however the bytes of a request are split between
-- calls. A parser that answered a head or a refusal starts afresh.
-- @tparam string buf
function parser_methods:parse(buf)
  local le, skipped = self.le, 0
  if not le then
    if byte(buf, 1) == 13 and byte(buf, 2) == 10 then  -- empty lines first
      local s = 3
      while byte(buf, s) == 13 and byte(buf, s + 1) == 10 do s = s + 2 end
      buf, skipped = sub(buf, s), s - 1
      self.scan = 1
    end
    local max, scan = self.max_request_line, self.scan
    le = find(buf, "\r\n", scan, true)
    local seen = le and le + 1 or #buf      -- bytes looked at so far
    if seen > max + 2 then seen = max + 2 end
    if (not le or find(buf, "[\r\n]", scan) < le) and bad_eol(buf, scan, seen) then
      return done(self, nil, 400)
    end
    if not le then
      if #buf - 1 > max then return done(self, nil, 414) end
      self.scan = #buf > 0 and #buf or 1
      return nil, nil, buf
    end
    if le - 1 > max then return done(self, nil, 414) end
    self.le, self.scan = le, le
  end

  -- the header section ends at the first empty line
  local max = self.max_header_bytes
  local he
  if byte(buf, le + 2) == 13 and byte(buf, le + 3) == 10 then
    he = le + 3
  else
    local e = find(buf, "\r\n\r\n", self.scan, true)
    if not e then
      local seen = #buf
      if seen > le + max + 3 then seen = le + max + 3 end
      if bad_eol(buf, self.scan, seen) then return done(self, nil, 400) end
      if #buf - le - 2 > max then return done(self, nil, 431) end
      self.scan = #buf - 2 > le and #buf - 2 or le
      return nil, nil, buf
    end
    he = e + 3
    if he - le - 3 > max then
      return done(self, refuse_head(buf, le, le + max + 3, 431))
    end
  end
  local head, nxt, clen = parse_fields(buf, le, he, self.max_headers)
  if head then nxt = nxt + skipped end         -- an index in the caller's buf
  return done(self, head, nxt, clen)
end

-- ------------------------------------------------------------ framing

--- Does the request keep its connection open after the response (HTTP/1.1
-- unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`)?
-- @tparam table head
-- @treturn boolean
local function keep_alive(head)
  local c = head.headers.connection
  if head.version == "1.1" then return not (c and has_token(c, "close")) end
  return c ~= nil and has_token(c, "keep-alive")
end

--- The interim response that asks a client waiting on `Expect:
-- 100-continue` for the body.
local CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n"

--- Does the client wait for `100 Continue` before it sends the body (an
-- HTTP/1.1 request with `Expect: 100-continue`, the only expectation a
-- parsed head can carry)?
-- @tparam table head
-- @treturn boolean
local function expects_continue(head)
  return head.version == "1.1" and head.headers.expect ~= nil
end

--- The body of a request whose head ends before index `from` of buf and
-- whose Content-Length is clen: `body, rest` (the bytes after it: the next
-- pipelined request) when buf holds all of it, else `nil, missing` (how many
-- bytes are still to come).
-- @tparam string buf
-- @tparam integer from
-- @tparam integer clen
local function split_body(buf, from, clen)
  local have = #buf - from + 1
  if have < clen then return nil, clen - have end
  local stop = from + clen
  return sub(buf, from, stop - 1), have > clen and sub(buf, stop) or ""
end

return {
  REASONS = grammar.REASONS,
  CONTINUE = CONTINUE,
  new_parser = new_parser,
  parser_methods = parser_methods,
  valid_host = valid_host,
  has_token = has_token,
  keep_alive = keep_alive,
  expects_continue = expects_continue,
  split_body = split_body,
  new_chunked = chunked.new,
  serialize_response = writer.serialize_response,
  serialize_request = writer.serialize_request,
  error_response = writer.error_response,
  date_line = writer.date_line,
}
