-- http_codec_fuzz_spec.lua -- properties of smugoauth.http.codec over random
-- and mutated input (deterministic seeds, no socket): the parser never raises
-- and answers only what it documents; a request fed in any split of its bytes
-- gets the same answer as fed whole; a serialised request parses back to what
-- was serialised; the response writer never raises. Chunked bodies
-- (smugoauth.http.chunked): a random chunked encoding of random data, behind
-- its head, decodes to that data however it is split; a mutated one gets the
-- same answer (data, a documented refusal, or 'incomplete') whole and split.
-- SMUGOAUTH_FUZZ_ROUNDS=N runs N rounds of each property (default 3000).
local codec = require "smugoauth.http.codec"

local ROUNDS = tonumber(os.getenv("SMUGOAUTH_FUZZ_ROUNDS")) or 3000
local rnd = math.random
local char, concat = string.char, table.concat

local STATUSES = {[400] = true, [414] = true, [417] = true, [431] = true, [501] = true, [505] = true}

-- Limits small enough for random input to reach them (or the defaults).
local function random_limits()
  if rnd(2) == 1 then return nil end
  return {max_request_line = rnd(16, 120), max_header_bytes = rnd(0, 200), max_headers = rnd(0, 8)}
end

-- The answer to input fed in pieces (ends: the cut positions, increasing):
-- {status}, {head, clen, tail (the bytes after the head)} or {incomplete}.
local function feed(limits, input, ends)
  local p = codec.new_parser(limits)
  local buf, from = "", 1
  for i = 1, #ends + 1 do
    local to = ends[i] or #input
    buf = buf .. input:sub(from, to)
    local head, a, b = p:parse(buf)
    if head then return {head = head, clen = b, tail = buf:sub(a) .. input:sub(to + 1)} end
    if a then return {status = a} end
    buf, from = b, to + 1
  end
  return {incomplete = true}
end

local function random_cuts(n)
  local ends, at = {}, 0
  while true do
    at = at + rnd(1, math.max(1, n // rnd(1, 8)))
    if at >= n then return ends end
    ends[#ends + 1] = at
  end
end

local function every_byte(n)
  local ends = {}
  for i = 1, n - 1 do ends[i] = i end
  return ends
end

-- Pieces requests are made of: valid ones (picked most of the time) and not.
local METHODS = {{"GET", "POST", "HEAD", "PUT", "M-SEARCH"}, {"G(T", "", "get x"}}
local TARGETS = {{"/", "/a?b=c", "/%41", "/" .. ("a"):rep(60)}, {"*", "http://x/", "/#f", "/\127", "/\195\169"}}
local VERSIONS = {{"HTTP/1.1", "HTTP/1.0"}, {"HTTP/2.0", "http/1.1", "HTTP/1.12", ""}}
local FIELDS = {{"Host: x", "Host: [::1]:80", "Content-Length: 3", "Content-Length: 0", "Expect: 100-continue",
                 "Cookie: a=1", "X-A: 1", "X-A:", "X-Long: " .. ("v"):rep(70), "Connection: close",
                 "Transfer-Encoding: chunked", "transfer-encoding:\tCHUNKED "},
                {"Host: a b", "Content-Length: x", "Transfer-Encoding: gzip, chunked", "Expect: no", " folded",
                 "NoColon", ": empty", "X-Ctl: a\1b", "Transfer-Encoding: chunked, x", "Transfer-Encoding: xchunked",
                 "Transfer-Encoding: , chunked"}}
local EOLS = {{"\r\n"}, {"\n", "\r", "\r\r\n", ""}}
local NOISE = {"\0", "\r", "\n", "\r\n", " ", "\t", ":", "\127", "\255", "a", "/", "0", "%", "\r\n\r\n", "#"}

local function pick(t) return t[rnd(#t)] end

-- A valid piece 9 times in 10.
local function piece(t) return pick(rnd(10) == 1 and t[2] or t[1]) end

local function random_request()
  local parts = {}
  if rnd(4) == 1 then parts[#parts + 1] = ("\r\n"):rep(rnd(0, 3)) end
  parts[#parts + 1] = piece(METHODS) .. " " .. piece(TARGETS) .. " " .. piece(VERSIONS) .. piece(EOLS)
  if rnd(5) > 1 then parts[#parts + 1] = "Host: h" .. piece(EOLS) end
  for _ = 1, rnd(0, 6) do parts[#parts + 1] = piece(FIELDS) .. piece(EOLS) end
  parts[#parts + 1] = piece(EOLS)
  if rnd(2) == 1 then parts[#parts + 1] = "abc" end
  return concat(parts)
end

local function mutate(s)
  for _ = 1, rnd(1, 3) do
    local i = rnd(1, #s + 1)
    local op = rnd(3)
    if op == 1 then s = s:sub(1, i - 1) .. NOISE[rnd(#NOISE)] .. s:sub(i)
    elseif op == 2 then s = s:sub(1, i - 1) .. s:sub(i + 1)
    else s = s:sub(1, i - 1) .. char(rnd(0, 255)) .. s:sub(i + 1) end
  end
  return s
end

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = char(rnd(0, 255)) end
  return concat(t)
end

-- The answer is one the parser documents.
local function assert_documented(r, input)
  if r.status then
    assert(STATUSES[r.status], "undocumented status " .. tostring(r.status) .. " for " .. ("%q"):format(input))
  elseif r.head then
    local h = r.head
    assert(type(h.method) == "string" and h.target:sub(1, 1) == "/", ("%q"):format(input))
    assert(h.version == "1.0" or h.version == "1.1")
    if r.clen == "chunked" then                  -- HTTP/1.1, the field kept, no Content-Length
      assert(h.version == "1.1" and h.headers["transfer-encoding"] and not h.headers["content-length"],
             ("%q"):format(input))
    else
      assert(math.type(r.clen) == "integer" and r.clen >= 0)
    end
    for k, v in pairs(h.headers) do
      assert(k == k:lower() and not v:find("[\r\n%z]"), ("%q"):format(input))
    end
  end
end

-- ------------------------------------------------------------ chunked bodies

local CHUNKED_HEAD = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
local EXTS = {";a", ";a=b", ' ; q="x;\\"y"', ";n=1;m=2", '\t;z = ""', ";" .. ("e"):rep(40)}
local TRAILERS = {"X-T: 1\r\n", "Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n", "E:\r\n",
                  "X-Long: " .. ("t"):rep(50) .. "\r\n"}
local CHUNK_NOISE = {";", "=", '"', "\\", "F", "0", "0\r\n\r\n", "\r\n", "\n", "\r", " ", "\0", "x"}

-- A random chunked encoding of data: chunks of random sizes, hex digits in
-- either case, leading zeros, extensions, trailer fields.
local function random_chunked(data)
  local parts, i = {}, 1
  while i <= #data do
    local n = math.min(#data - i + 1, rnd(1, rnd(2) == 1 and 3 or 300))
    local hex = ("%x"):format(n)
    if rnd(2) == 1 then hex = hex:upper() end
    if rnd(5) == 1 then hex = ("0"):rep(rnd(1, 5)) .. hex end
    parts[#parts + 1] = hex .. (rnd(4) == 1 and pick(EXTS) or "") .. "\r\n" .. data:sub(i, i + n - 1) .. "\r\n"
    i = i + n
  end
  parts[#parts + 1] = ("0"):rep(rnd(1, 3)) .. (rnd(4) == 1 and pick(EXTS) or "") .. "\r\n"
  for _ = 1, rnd(0, 2) do parts[#parts + 1] = pick(TRAILERS) end
  parts[#parts + 1] = "\r\n"
  return concat(parts)
end

local function mutate_chunked(s)
  for _ = 1, rnd(1, 3) do
    local i = rnd(1, #s + 1)
    local op = rnd(3)
    if op == 1 then s = s:sub(1, i - 1) .. CHUNK_NOISE[rnd(#CHUNK_NOISE)] .. s:sub(i)
    elseif op == 2 then s = s:sub(1, i - 1) .. s:sub(i + 1)
    else s = s:sub(1, i - 1) .. char(rnd(0, 255)) .. s:sub(i + 1) end
  end
  return s
end

-- A request fed in pieces as the server reads it: its head to the parser,
-- then the rest to a chunked decoder (opts). {body, rest (the bytes after
-- the body)}, {status} or {incomplete = true}.
local function feed_request(input, ends, opts)
  local p, d, buf, from = codec.new_parser(), nil, "", 1
  for k = 1, #ends + 1 do
    local to = ends[k] or #input
    local bytes, body, rest = input:sub(from, to), nil, nil
    from = to + 1
    if d then
      body, rest = d:feed(bytes)
    else
      buf = buf .. bytes
      local head, a, b = p:parse(buf)
      if head then
        assert.equal("chunked", b)
        d = codec.new_chunked(opts)
        body, rest = d:feed(buf, a)
      elseif a then
        return {status = a}
      else
        buf = b
      end
    end
    if body then return {body = body, rest = rest .. input:sub(to + 1)} end
    if rest then return {status = rest} end
  end
  return {incomplete = true}
end

describe("http.codec properties", function()
  it("never raises, and answers a head, a documented refusal or 'incomplete'", function()
    math.randomseed(20261)
    for i = 1, ROUNDS do
      local input = i % 3 == 0 and random_bytes(rnd(0, 200)) or i % 3 == 1 and random_request()
                    or mutate(random_request())
      local ok, r = pcall(feed, random_limits(), input, {})
      assert(ok, r)
      assert_documented(r, input)
    end
  end)

  it("gives a request split anywhere the same answer as the request whole", function()
    math.randomseed(20262)
    for i = 1, ROUNDS do
      local input = i % 2 == 0 and random_request() or mutate(random_request())
      local limits = random_limits()
      local whole = feed(limits, input, {})
      local split = feed(limits, input, random_cuts(#input))
      assert.same(whole, split, ("%q"):format(input))
      if i % 10 == 0 then
        assert.same(whole, feed(limits, input, every_byte(#input)), ("%q"):format(input))
      end
    end
  end)

  it("parses a serialised request back to what was serialised", function()
    math.randomseed(20263)
    local tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    local function token(n)
      local t = {}
      for j = 1, n do
        local k = rnd(#tchars)
        t[j] = tchars:sub(k, k)
      end
      return concat(t)
    end
    local function printable(n, from)
      local t = {}
      for j = 1, n do t[j] = char(rnd(from, 126)) end
      return concat(t)
    end
    for _ = 1, ROUNDS do
      local method = token(rnd(1, 8))
      local target = "/" .. printable(rnd(0, 30), 33):gsub("#", "")
      local version = rnd(2) == 1 and "1.1" or "1.0"
      local fields, want = {{"Host", "h" .. rnd(1, 99)}}, {host = nil}
      want.host = fields[1][2]
      for _ = 1, rnd(0, 5) do
        local name = token(rnd(1, 10))
        local lower = name:lower()
        if lower ~= "host" and lower ~= "content-length" and lower ~= "transfer-encoding" and
           lower ~= "connection" and lower ~= "expect" then
          local value = printable(rnd(0, 20), 32):gsub("^ +", ""):gsub(" +$", "")
          fields[#fields + 1] = {name, value}
          local old = want[lower]
          want[lower] = old and old .. (lower == "cookie" and "; " or ", ") .. value or value
        end
      end
      local body = rnd(2) == 1 and printable(rnd(1, 40), 0) or ""
      local raw = assert(codec.serialize_request(method, target, fields, body, version))
      local r = feed(nil, raw .. "NEXT", random_cuts(#raw + 4))
      assert.is_table(r.head, ("%q"):format(raw))
      assert.equal(method, r.head.method)
      assert.equal(target, r.head.target)
      assert.equal(version, r.head.version)
      if body ~= "" then want["content-length"] = tostring(#body) end
      assert.same(want, r.head.headers)
      assert.equal(#body, r.clen)
      assert.equal(body .. "NEXT", r.tail)
    end
  end)

  it("writes responses without raising, and only valid ones", function()
    math.randomseed(20264)
    local values = {"ok", 42, "a\r\nb", "\0", true, {"x", "y"}, {"x", "\n"}, ""}
    local names = {"X-A", "Content-Length", "Connection", "Date", "bad name", "", 7, "Set-Cookie"}
    for _ = 1, ROUNDS do
      local hdrs
      if rnd(3) == 1 then
        hdrs = {}
        for j = 1, rnd(0, 4) do hdrs[j] = {pick(names), pick(values)} end
      else
        hdrs = {}
        for _ = 1, rnd(0, 4) do
          local n = pick(names)
          if type(n) == "string" then hdrs[n] = pick(values) end
        end
      end
      local status = pick{200, 204, 304, 404, 599, 199, 600, "200", 200.5}
      local body = pick{nil, "", "body", {"a", "b"}, {"a", 1}, 5}
      local head = {method = pick{"GET", "HEAD"}, version = pick{"1.0", "1.1"}}
      local ok, s, keep = pcall(codec.serialize_response, head, rnd(2) == 1, status, hdrs, body, "Date: d\r\n")
      assert(ok, s)
      if s and keep ~= nil and type(keep) == "boolean" then
        assert.matches("^HTTP/1%.1 %d%d%d [^\r\n]*\r\n", s)
        local head_part = s:match("^(.-\r\n\r\n)")
        assert.is_string(head_part)
        assert.is_nil(head_part:sub(1, -5):find("\r\n\r\n", 1, true))
        for line in head_part:gmatch("([^\r\n]*)\r\n") do
          assert.is_nil(line:find("[%z\r\n]"))
        end
      else
        assert.is_string(keep)                   -- the reason it is invalid
      end
    end
  end)
  it("decodes a random chunked encoding of random data to that data, however it is split", function()
    math.randomseed(20265)
    for i = 1, ROUNDS do
      local data = random_bytes(rnd(0, i % 50 == 0 and 5000 or 400))
      local input = CHUNKED_HEAD .. random_chunked(data) .. "NEXT"
      local want = {body = data, rest = "NEXT"}
      assert.same(want, feed_request(input, random_cuts(#input)), ("%q"):format(input))
      if i % 10 == 0 then assert.same(want, feed_request(input, every_byte(#input)), ("%q"):format(input)) end
    end
  end)

  it("gives a mutated chunked body the same answer whole and split, and only documented ones", function()
    math.randomseed(20266)
    local BODY_STATUSES = {[400] = true, [413] = true, [431] = true}
    local seen = {}
    for i = 1, ROUNDS do
      local input = CHUNKED_HEAD .. mutate_chunked(random_chunked(random_bytes(rnd(0, 200)))) .. "NEXT"
      local opts = rnd(2) == 1 and {max_body = rnd(0, 250), max_chunk_ext = rnd(0, 60), max_trailer = rnd(0, 80)}
                   or nil
      local ok, whole = pcall(feed_request, input, {}, opts)
      assert(ok, whole)
      if whole.status then
        assert(BODY_STATUSES[whole.status], "undocumented status " .. whole.status .. " for " .. ("%q"):format(input))
      elseif whole.body then
        assert.is_true(#whole.body <= (opts and opts.max_body or 1048576))
      end
      seen[whole.status or (whole.body and "body") or "incomplete"] = true
      assert.same(whole, feed_request(input, random_cuts(#input), opts), ("%q"):format(input))
      if i % 5 == 0 then assert.same(whole, feed_request(input, every_byte(#input), opts), ("%q"):format(input)) end
    end
    if ROUNDS >= 1000 then                       -- the mutations reach every kind of answer
      assert.same({body = true, incomplete = true, [400] = true, [413] = true, [431] = true}, seen)
    end
  end)
end)
