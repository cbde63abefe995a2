-- http_chunked_spec.lua -- chunked request bodies without a socket: the
-- decoder smugoauth.http.chunked (RFC 9112 7.1: chunk-size, extensions,
-- CRLFs, last chunk, trailer section, limits, the same answer however the
-- bytes are split, linear work), grammar.transfer_coding (which
-- Transfer-Encoding values frame a body as chunked) and how the codec's head
-- parser frames a chunked request. The property checks over random and
-- mutated bodies are in http_codec_fuzz_spec.lua; the same bodies through a
-- socket in httpd_spec.lua.
local codec = require "smugoauth.http.codec"
local chunked = require "smugoauth.http.chunked"
local grammar = require "smugoauth.http.grammar"
local http_cases = require "support.http_cases"

-- A new decoder's answer for input fed in pieces (ends: the cut positions,
-- increasing): {body, rest} (rest: the bytes after the body, fed or not),
-- {status} or {incomplete = true}.
local function decode(input, ends, opts)
  local d = chunked.new(opts)
  local from = 1
  for k = 1, #ends + 1 do
    local to = ends[k] or #input
    local body, rest = d:feed(input:sub(from, to))
    if body then return {body = body, rest = rest .. input:sub(to + 1)} end
    if rest then return {status = rest} end
    from = to + 1
  end
  return {incomplete = true}
end

local function every_byte(n)
  local ends = {}
  for i = 1, n - 1 do ends[i] = i end
  return ends
end

-- What a case wants, as decode() answers it.
local function wanted(case, tail)
  if type(case[3]) == "string" then return {body = case[3], rest = tail} end
  return {status = case[3]}
end

local function limits(case)
  return case.small and {max_body = 16} or nil
end

describe("http.chunked decoding", function()
  for _, case in ipairs(http_cases.chunked) do
    it(case[1] .. " -> " .. (type(case[3]) == "string" and "decoded" or case[3]), function()
      local input = case[2] .. "GET /next HTTP/1.1\r\n"
      local want = wanted(case, "GET /next HTTP/1.1\r\n")
      assert.same(want, decode(input, {}, limits(case)))
      assert.same(want, decode(input, every_byte(#input), limits(case)))
      assert.same(want, decode(input, {1, 2, 3, #case[2] - 1, #case[2]}, limits(case)))
    end)
  end

  it("says 'need more' until the final CRLF, whatever the prefix", function()
    local body = "5;a=1\r\nhello\r\n1\r\n!\r\n0;x\r\nX-T: 1\r\nX-U: 2\r\n\r\n"
    for i = 0, #body - 1 do
      assert.same({incomplete = true}, decode(body:sub(1, i), {}), body:sub(1, i))
      assert.same({incomplete = true}, decode(body:sub(1, i), every_byte(i)), body:sub(1, i))
    end
    assert.same({body = "hello!", rest = ""}, decode(body, {}))
  end)

  it("takes the bytes from an index on, and only the new ones afterwards", function()
    local d = chunked.new()
    assert.is_nil(d:feed("HEAD\r\n\r\n5\r\nhe", 9))
    assert.equal(5, d.total)
    assert.is_nil(d:feed("llo\r\n"))
    assert.same({"hello", "NEXT"}, {d:feed("0\r\n\r\nNEXT")})
  end)

  it("answers a refusal again on every later call, and raises when fed after the body", function()
    local d = chunked.new()
    assert.same({nil, 400}, {d:feed("zz")})
    assert.same({nil, 400}, {d:feed("5\r\nhello\r\n0\r\n\r\n")})
    d = chunked.new()
    assert.same({"", ""}, {d:feed("0\r\n\r\n")})
    assert.has_error(function() d:feed("x") end, "smugoauth.ChunkedDecoder: the body is already complete")
  end)

  it("refuses a bad byte, a non-hex start or a line past its room at once, not at its end", function()
    for _, case in ipairs{
      {"z", 400}, {" ", 400}, {"5;a=\1", 400}, {"5\n", 400}, {"5\r\r", 400}, {"5\r\nhelloX", 400},
      {"5\r\nhello\rX", 400}, {("0"):rep(64 + 4096 + 1), 400}, {"5;" .. ("a"):rep(4100), 400},
      {"0\r\nX-T: \0", 400}, {"0\r\n\n", 400}, {"0\r\nX-T: " .. ("t"):rep(16400), 431},
      {"11\r\n", 413, {max_body = 16}}, {("f"):rep(40) .. "\r\n", 413},
    } do
      assert.same({status = case[2]}, decode(case[1], {}, case[3]), case[1]:sub(1, 20))
      assert.same({status = case[2]}, decode(case[1], every_byte(#case[1]), case[3]), case[1]:sub(1, 20))
    end
  end)

  it("answers the first of two faults in the byte stream, however the line is split", function()
    -- a control byte within the room of a trailer line: 400; past it: the line is too long first
    local early = "0\r\nX-T: \1" .. ("t"):rep(20000) .. "\r\n\r\n"
    local late = "0\r\nX-T: " .. ("t"):rep(20000) .. "\1\r\n\r\n"
    for _, ends in ipairs{{}, {5}, {9, 10}, every_byte(200)} do
      assert.same({status = 400}, decode(early, ends))
      assert.same({status = 431}, decode(late, ends))
    end
  end)

  describe("limits", function()
    it("takes max_body decoded bytes, and refuses one more on the chunk-size, before its data", function()
      assert.same({body = "", rest = ""}, decode("0\r\n\r\n", {}, {max_body = 0}))
      assert.same({status = 413}, decode("1\r\n", {}, {max_body = 0}))
      local d = chunked.new{max_body = 10}
      assert.is_nil(d:feed("6\r\nabcdef\r\n"))
      assert.same({nil, 413}, {d:feed("5\r\n")})            -- 11: refused without its data
      assert.same({body = ("x"):rep(10), rest = ""},
        decode("6\r\nxxxxxx\r\n4\r\nxxxx\r\n0\r\n\r\n", {}, {max_body = 10}))
    end)

    it("takes max_chunk_ext bytes of extensions over the body, not one more", function()
      local function body(n1, n2)
        return "1;a=" .. ("x"):rep(n1 - 3) .. "\r\nz\r\n1;b=" .. ("y"):rep(n2 - 3) .. "\r\nz\r\n0\r\n\r\n"
      end
      local o = {max_chunk_ext = 100}
      assert.same({body = "zz", rest = ""}, decode(body(60, 40), {}, o))
      assert.same({body = "zz", rest = ""}, decode(body(60, 40), every_byte(#body(60, 40)), o))
      assert.same({status = 400}, decode(body(60, 41), {}, o))
      assert.same({status = 400}, decode(body(60, 41), every_byte(#body(60, 41)), o))
      assert.same({status = 400}, decode("1;a\r\nz\r\n0\r\n\r\n", {}, {max_chunk_ext = 1}))
      assert.same({body = "z", rest = ""}, decode("1;a\r\nz\r\n0;\tb\r\n\r\n", {}, {max_chunk_ext = 6}))
    end)

    it("takes a trailer section of max_trailer bytes (each field with its CRLF), not one more", function()
      local fields = "X-A: 1\r\nX-B: " .. ("b"):rep(100 - 8 - 5 - 2) .. "\r\n"
      assert.equal(100, #fields)
      local o = {max_trailer = 100}
      for _, ends in ipairs{{}, every_byte(200)} do
        assert.same({body = "", rest = "N"}, decode("0\r\n" .. fields .. "\r\nN", ends, o))
        assert.same({status = 431}, decode("0\r\nX" .. fields .. "\r\n", ends, o))
      end
      assert.same({body = "", rest = ""}, decode("0\r\n\r\n", {}, {max_trailer = 0}))
      assert.same({status = 431}, decode("0\r\na:\r\n\r\n", {}, {max_trailer = 3}))
    end)

    it("has defaults, and raises on bad options", function()
      local d = chunked.new()
      assert.equal(1048576, d.max_body)
      assert.equal(4096, d.ext_left)
      assert.equal(16384, d.trailer_left)
      assert.is_function(codec.new_chunked)
      for _, bad in ipairs{{max_body = -1}, {max_body = 1.5}, {max_body = "1"}, {max_body = 2 ^ 60},
                           {max_chunk_ext = -1}, {max_trailer = true}} do
        assert.has_error(function() chunked.new(bad) end)
      end
      assert.has_error(function() chunked.new("all") end)
    end)
  end)

  -- Decoding work must grow with the input, not with its square: the CPU time
  -- (os.clock: this process only) for 1 MiB in one-byte chunks against 8
  -- rounds of 128 KiB (the same bytes in all). Linear: a ratio near 1; a
  -- quadratic decoder (re-scanning or re-joining what it holds) would be 8x.
  describe("work", function()
    local function pieces(s, size)
      local t = {}
      for i = 1, #s, size do t[#t + 1] = s:sub(i, i + size - 1) end
      return t
    end
    -- the best of three timings of `rounds` decodings of the pieces
    local function cpu(input_pieces, rounds, n)
      local best = math.huge
      for _ = 1, 3 do
        local t0 = os.clock()
        for _ = 1, rounds do
          local d = chunked.new{max_body = 1 << 21, max_chunk_ext = 1 << 20}
          local body, status
          for _, p in ipairs(input_pieces) do body, status = d:feed(p) end
          assert.equal(n, body and #body, status)
        end
        best = math.min(best, os.clock() - t0)
      end
      return best
    end

    it("decodes 1 MiB in one-byte chunks in linear time", function()
      local small = pieces(("1\r\nx\r\n"):rep(1 << 17) .. "0\r\n\r\n", 65536)
      local big = pieces(("1\r\nx\r\n"):rep(1 << 20) .. "0\r\n\r\n", 65536)
      local ts = cpu(small, 8, 1 << 17)
      local tb = cpu(big, 1, 1 << 20)
      print(("\n1 MiB in one-byte chunks (64 KiB reads): %.2f s; 8 x 128 KiB: %.2f s (ratio %.2f)")
        :format(tb, ts, tb / ts))
      assert.is_true(tb < 60, "1 MiB took " .. tb .. " s")
      assert.is_true(tb / ts < 3, ("1 MiB: %.2f s, 8 x 128 KiB: %.2f s"):format(tb, ts))
    end)

    it("takes its input one byte at a time in linear time", function()
      local function input(n) return pieces(("1\r\nx\r\n3;e=1\r\nabc\r\n"):rep(n) .. "0\r\nT: 1\r\n\r\n", 1) end
      local ts = cpu(input(1 << 11), 8, 4 << 11)
      local tb = cpu(input(1 << 14), 1, 4 << 14)
      print(("\n64 KiB fed byte by byte: %.2f s; 8 x 8 KiB: %.2f s (ratio %.2f)"):format(tb, ts, tb / ts))
      assert.is_true(tb / ts < 3, ("64 KiB: %.2f s, 8 x 8 KiB: %.2f s"):format(tb, ts))
    end)

    it("takes one big chunk in many reads in linear time", function()
      local function input(n) return pieces(("%x\r\n"):format(n) .. ("y"):rep(n) .. "\r\n0\r\n\r\n", 16) end
      local ts = cpu(input(1 << 17), 8, 1 << 17)
      local tb = cpu(input(1 << 20), 1, 1 << 20)
      assert.is_true(tb / ts < 3, ("1 MiB: %.3f s, 8 x 128 KiB: %.3f s"):format(tb, ts))
    end)
  end)
end)

describe("http.codec chunked heads", function()
  local function post(te, version)
    return "POST /up HTTP/" .. (version or "1.1") .. "\r\nHost: x\r\nTransfer-Encoding:" .. te .. "\r\n\r\n5\r\n"
  end

  it("frames chunked (any case, OWS around it) on HTTP/1.1 as 'chunked', the field kept", function()
    for _, te in ipairs{"chunked", " chunked", "CHUNKED", " Chunked \t", "\tcHuNkEd"} do
      local raw = post(te)
      local head, nxt, len = codec.new_parser():parse(raw)
      assert.is_table(head, te)
      assert.equal("chunked", len)
      assert.equal("5\r\n", raw:sub(nxt))
      assert.equal(te:match("^[ \t]*(.-)[ \t]*$"), head.headers["transfer-encoding"])
      assert.is_nil(head.headers["content-length"])
    end
  end)

  it("gives the same answer for a chunked head split anywhere", function()
    local raw = post(" chunked") .. "hello\r\n0\r\n\r\n"
    local p, pending = codec.new_parser(), ""
    for i = 1, #raw do
      local head, a, b = p:parse(pending .. raw:sub(i, i))
      if head then
        assert.equal("chunked", b)
        assert.equal("", (pending .. raw:sub(i, i)):sub(a))
        return
      end
      assert.is_nil(a)
      pending = b
    end
    error("no head")
  end)

  it("reads Transfer-Encoding values as lists of codings (RFC 9110 5.6.1, RFC 9112 6.3)", function()
    for _, case in ipairs{
      {"chunked", "chunked"}, {"CHUNKED", "chunked"},
      {"gzip, chunked", 501}, {"gzip,chunked", 501}, {"gzip \t,\t chunked", 501}, {"x;a=1;b=\"q,\\\"\", chunked", 501},
      {"chunked, gzip", 400}, {"chunked, x", 400}, {"identity", 400}, {"xchunked", 400}, {"chunkedx", 400},
      {"chunked, chunked", 400}, {"chunked, gzip, chunked", 400}, {"chunked;q=1", 400}, {", chunked", 400},
      {"chunked,", 400}, {"gzip,, chunked", 400}, {"", 400}, {"\"chunked\"", 400}, {"chunked x", 400},
      {"gzip;a, chunked", 400}, {"gzip;a=\"x, chunked", 400}, {"gzip;=1, chunked", 400}, {"chu nked", 400},
    } do
      local te, status = grammar.transfer_coding(case[1])
      if type(case[2]) == "string" then
        assert.equal(case[2], te, case[1])
      else
        assert.is_nil(te, case[1])
        assert.equal(case[2], status, case[1])
      end
    end
  end)
end)
