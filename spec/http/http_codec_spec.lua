-- http_codec_spec.lua -- smugoauth.http.codec alone: no socket, no child
-- process. Every refusal and limit the server loop applies to a request head,
-- the Host grammar, body framing, response (and request) serialising.
local codec = require "smugoauth.http.codec"
local http_cases = require "support.http_cases"

-- A fresh parser's answer for buf (whole): {status = n} or {head, nxt, clen}
-- or {incomplete = rest}.
local function parse(buf, limits)
  local head, a, b = codec.new_parser(limits):parse(buf)
  if head then return {head = head, nxt = a, clen = b} end
  if a then return {status = a} end
  return {incomplete = b}
end

-- The status a whole head is refused with (nil when it is accepted).
local function status_of(buf, limits)
  local r = parse(buf, limits)
  assert.is_nil(r.incomplete, "incomplete: " .. ("%q"):format(buf))
  return r.status
end

-- Feed buf one byte at a time; the answer as parse() gives it, nxt made
-- relative to the end of the input (so that it compares with a whole parse).
local function trickle(buf, limits)
  local p = codec.new_parser(limits)
  local pending = ""
  for i = 1, #buf do
    local head, a, b = p:parse(pending .. buf:sub(i, i))
    if head then return {head = head, tail = (pending .. buf:sub(i, i)):sub(a) .. buf:sub(i + 1), clen = b} end
    if a then return {status = a} end
    pending = b
  end
  return {incomplete = pending}
end

local get = http_cases.get

describe("http.codec request heads", function()
  it("parses the request line, the target and the header fields", function()
    local r = parse("GET /a/b%20c?x=1&y=%41 HTTP/1.1\r\nHost: h:8080\r\nX-A:  v1 \t\r\nx-a: v2\r\n" ..
                    "Cookie: a=1\r\nCOOKIE: b=2\r\nEmpty:\r\n\r\nnext")
    local h = r.head
    assert.equal("GET", h.method)
    assert.equal("/a/b%20c?x=1&y=%41", h.target)
    assert.equal("/a/b%20c", h.path)
    assert.equal("x=1&y=%41", h.query)
    assert.equal("1.1", h.version)
    assert.same({host = "h:8080", ["x-a"] = "v1, v2", cookie = "a=1; b=2", empty = ""}, h.headers)
    assert.equal(0, r.clen)
    assert.equal("next", ("GET /a/b%20c?x=1&y=%41 HTTP/1.1\r\nHost: h:8080\r\nX-A:  v1 \t\r\nx-a: v2\r\n" ..
                          "Cookie: a=1\r\nCOOKIE: b=2\r\nEmpty:\r\n\r\nnext"):sub(r.nxt))
    local r10 = parse("HEAD / HTTP/1.0\r\n\r\n")
    assert.equal("1.0", r10.head.version)
    assert.equal("", r10.head.query)
    assert.same({}, r10.head.headers)
    assert.equal(12, parse("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n").clen)
  end)

  it("skips empty lines before the request line, however many", function()
    local raw = ("\r\n"):rep(5000) .. get("/") .. "next"
    local r = parse(raw)
    assert.equal("/", r.head.path)
    assert.equal("next", raw:sub(r.nxt))                -- an index in the buffer given
    assert.equal("next", trickle(raw).tail)
    assert.same({incomplete = ""}, parse(("\r\n"):rep(3)))
    assert.same({status = 400}, parse(("\r\n"):rep(30) .. "\n"))
  end)

  it("says incomplete (with the head so far) until the empty line", function()
    for _, prefix in ipairs{"", "G", "GET / HT", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\nHo",
                            "GET / HTTP/1.1\r\nHost: x\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r"} do
      assert.same({incomplete = prefix}, parse(prefix), prefix)
    end
    assert.same({incomplete = "GET"}, parse("\r\n\r\nGET"))
  end)

  it("continues a head given in pieces, and starts afresh after one", function()
    local p = codec.new_parser()
    local _, _, rest = p:parse("GET /one HTTP/1.1\r\nHo")
    assert.equal("GET /one HTTP/1.1\r\nHo", rest)
    local h1, nxt = p:parse(rest .. "st: x\r\n\r\nGET /two HTTP/1.1\r\nHost: y\r\n\r\n")
    assert.equal("/one", h1.path)
    local h2 = p:parse(("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: y\r\n\r\n"):sub(nxt))
    assert.equal("/two", h2.path)
    assert.equal(400, select(2, p:parse("BAD\r\n\r\n")))
    assert.equal("/three", p:parse(get("/three")).path)
  end)

  describe("refusals", function()
    -- the refusals httpd_spec sends through a socket, here parsed alone
    for _, case in ipairs(http_cases.refusals) do
      if not case.server then
        it(case[1] .. " -> " .. case[3], function()
          assert.equal(case[3], status_of(case[2]))
          assert.equal(case[3], trickle(case[2]).status)
        end)
      end
    end

    it("refuses a bare CR or LF at once, without waiting for the end of the head", function()
      for _, prefix in ipairs{"GET / HTTP/1.1\nHost: x\n", "GET / HTTP/1.1\rHost", "\n",
                              "GET / HTTP/1.1\r\nHost: x\n", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\n",
                              "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\r"} do
        assert.same({status = 400}, parse(prefix), prefix)
      end
    end)

    it("answers 400 for a bare CR or LF before any other refusal of the same head", function()
      for _, raw in ipairs{
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX: a\nb\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: x\r\nX: a\rb\r\n\r\n",
        get("/", ("X-H: 1\r\n"):rep(101) .. "X-B: 1\n2\r\n"),
        get("/", "X-A: 1\n2\r\nX-Big: " .. ("b"):rep(17000) .. "\r\n"),
        "GET /a\n" .. ("a"):rep(9000) .. " HTTP/1.1\r\nHost: x\r\n\r\n",
      } do
        assert.equal(400, status_of(raw), raw:sub(1, 60))
        assert.equal(400, trickle(raw).status, raw:sub(1, 60))
      end
      -- but one beyond a limit does not turn its 414 or 431 into a 400
      assert.equal(414, status_of("GET /" .. ("a"):rep(9000) .. "\nx HTTP/1.1\r\nHost: x\r\n\r\n"))
      assert.equal(431, status_of(get("/", "X-Big: " .. ("b"):rep(17000) .. "\n\r\n")))
    end)
  end)

  describe("limits", function()
    local L = {max_request_line = 64, max_header_bytes = 100, max_headers = 3}

    it("takes a request line of exactly max_request_line bytes, whole or in pieces", function()
      local line = "GET /" .. ("a"):rep(64 - #"GET / HTTP/1.1") .. " HTTP/1.1"
      assert.equal(64, #line)
      local raw = line .. "\r\nHost: x\r\n\r\n"
      assert.is_table(parse(raw, L).head)
      assert.is_table(trickle(raw, L).head)
      local long = line:gsub("^GET /", "GET /b") .. "\r\nHost: x\r\n\r\n"
      assert.equal(414, status_of(long, L))
      assert.equal(414, trickle(long, L).status)
      -- without a CRLF yet: refused once it cannot fit any more
      assert.same({incomplete = line .. "\r"}, parse(line .. "\r", L))
      assert.same({status = 414}, parse(line .. "aa", L))
    end)

    it("takes a header section of exactly max_header_bytes, whole or in pieces", function()
      local field = "X-Fill: " .. ("f"):rep(100 - 8 - 2) .. "\r\n"
      assert.equal(100, #field)
      local raw = "GET / HTTP/1.0\r\n" .. field .. "\r\n"
      assert.is_table(parse(raw, L).head)
      assert.is_table(trickle(raw, L).head)
      local over = "GET / HTTP/1.0\r\nX" .. field .. "\r\n"
      assert.equal(431, status_of(over, L))
      assert.equal(431, trickle(over, L).status)
    end)

    it("counts header fields against max_headers", function()
      assert.is_table(parse("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", L).head)
      assert.equal(431, status_of("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", L))
    end)

    it("has the server's defaults", function()
      local p = codec.new_parser()
      assert.equal(8192, p.max_request_line)
      assert.equal(16384, p.max_header_bytes)
      assert.equal(100, p.max_headers)
    end)
  end)

  describe("Host (RFC 9112 3.2: uri-host [\":\" port])", function()
    it("accepts reg-names, IPv4, IPv6 and IPvFuture literals, with or without a port", function()
      for _, host in ipairs(http_cases.valid_hosts) do
        assert.is_true(codec.valid_host(host), host)
        assert.equal(host, parse("GET / HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n").head.headers.host)
      end
    end)

    it("refuses anything else", function()
      for _, host in ipairs{"localhost:junk", "localhost:80:80", "user@localhost", "local host",
                            "localhost/x", "a%zz", "a%2", "[::1", "[::1]x", "[1::2::3]:80", "[12345::1]",
                            "[1:2:3:4:5:6:7:8:9]", "[::ffff:1.2.3.256]", "[1:2:3:4:5:6:7]", "[:::1]",
                            "[::01.2.3.4]", "[v.x]", "a\"b", "<x>"} do
        assert.is_false(codec.valid_host(host), host)
        assert.equal(400, status_of("GET / HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"), host)
      end
    end)
  end)
end)

describe("http.codec framing", function()
  local function head(version, connection, expect)
    return {version = version, method = "GET", headers = {connection = connection, expect = expect}}
  end

  it("keeps HTTP/1.1 connections unless close, HTTP/1.0 ones only with keep-alive", function()
    assert.is_true(codec.keep_alive(head("1.1")))
    assert.is_true(codec.keep_alive(head("1.1", "keep-alive, Upgrade")))
    assert.is_false(codec.keep_alive(head("1.1", "Upgrade, CLOSE")))
    assert.is_false(codec.keep_alive(head("1.0")))
    assert.is_true(codec.keep_alive(head("1.0", "Keep-Alive")))
    assert.is_false(codec.keep_alive(head("1.0", "keep-alive-ish")))
  end)

  it("asks for the body with 100 Continue only for HTTP/1.1 and Expect", function()
    assert.is_true(codec.expects_continue(head("1.1", nil, "100-continue")))
    assert.is_false(codec.expects_continue(head("1.0", nil, "100-continue")))
    assert.is_false(codec.expects_continue(head("1.1")))
    assert.equal("HTTP/1.1 100 Continue\r\n\r\n", codec.CONTINUE)
  end)

  it("splits a Content-Length body from what follows it", function()
    local buf = "HEADbodyNEXT"
    assert.same({"body", "NEXT"}, {codec.split_body(buf, 5, 4)})
    assert.same({"body", ""}, {codec.split_body("HEADbody", 5, 4)})
    assert.same({nil, 3}, {codec.split_body("HEADb", 5, 4)})
    assert.same({"", "x"}, {codec.split_body("HEADx", 5, 0)})
  end)
end)

describe("http.codec serialising", function()
  local GET11 = {method = "GET", version = "1.1"}
  local DATE = "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"

  it("writes the status line, the fields, Date, Content-Length and the body", function()
    local s, keep = codec.serialize_response(GET11, true, 200, {{"X-A", "1"}, {"X-A", 2}}, {"he", "llo"}, DATE)
    assert.equal("HTTP/1.1 200 OK\r\nX-A: 1\r\nX-A: 2\r\n" .. DATE .. "Content-Length: 5\r\n\r\nhello", s)
    assert.is_true(keep)
    s = codec.serialize_response(GET11, true, 201, {["Set-Cookie"] = {"a=1", "b=2"}}, nil, DATE)
    assert.equal("HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" .. DATE ..
                 "Content-Length: 0\r\n\r\n", s)
  end)

  it("gives every registered status its reason phrase, others an empty one", function()
    assert.matches("^HTTP/1%.1 421 Misdirected Request\r\n", (codec.serialize_response(GET11, true, 421)))
    assert.matches("^HTTP/1%.1 599 \r\n", (codec.serialize_response(GET11, true, 599)))
    for code, reason in pairs(codec.REASONS) do
      if code >= 200 then
        assert.equal("HTTP/1.1 " .. code .. " " .. reason .. "\r\n",
          (codec.serialize_response(GET11, true, code)):match("^[^\n]*\n"))
      end
    end
  end)

  it("keeps the handler's Date, drops its Content-Length and Transfer-Encoding", function()
    local s = codec.serialize_response(GET11, true, 200, {Date = "mine", ["content-length"] = "99",
      ["Transfer-Encoding"] = "chunked"}, "x", DATE)
    assert.equal("HTTP/1.1 200 OK\r\nDate: mine\r\nContent-Length: 1\r\n\r\nx", s)
  end)

  it("closes on Connection: close from the handler or when not kept; 1.0 says keep-alive", function()
    local s, keep = codec.serialize_response(GET11, true, 200, {Connection = "Close"}, "x")
    assert.is_false(keep)
    assert.equal("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx", s)
    s, keep = codec.serialize_response({method = "GET", version = "1.0"}, true, 200, nil, "x")
    assert.is_true(keep)
    assert.matches("\r\nConnection: keep%-alive\r\n\r\nx$", s)
    s, keep = codec.serialize_response(GET11, false, 200, nil, "x")
    assert.is_false(keep)
    assert.matches("\r\nConnection: close\r\n\r\nx$", s)
  end)

  it("sends no body for HEAD, 204 and 304 (and no Content-Length for 204, 304)", function()
    local s = codec.serialize_response({method = "HEAD", version = "1.1"}, true, 200, nil, "body")
    assert.equal("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", s)
    assert.equal("HTTP/1.1 204 No Content\r\n\r\n", (codec.serialize_response(GET11, true, 204, nil, "x")))
    assert.equal("HTTP/1.1 304 Not Modified\r\n\r\n", (codec.serialize_response(GET11, true, 304, nil, "x")))
  end)

  it("a streamed body (a function): the head only, framed by its Content-Length, else chunked or close", function()
    local function src() return nil end
    local s, keep, framing, length = codec.serialize_response(GET11, true, 206,
      {["Content-Length"] = "12", ["Transfer-Encoding"] = "gzip"}, src, DATE)
    assert.equal("HTTP/1.1 206 Partial Content\r\n" .. DATE .. "Content-Length: 12\r\n\r\n", s)
    assert.same({true, "length", 12}, {keep, framing, length})
    s, keep, framing, length = codec.serialize_response(GET11, true, 200, {["content-length"] = 0}, src)
    assert.equal("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", s)
    assert.same({true, "length", 0}, {keep, framing, length})
    s, keep, framing, length = codec.serialize_response(GET11, true, 200, nil, src, DATE)
    assert.equal("HTTP/1.1 200 OK\r\n" .. DATE .. "Transfer-Encoding: chunked\r\n\r\n", s)
    assert.same({true, "chunked"}, {keep, framing, length})
    s, keep, framing = codec.serialize_response({method = "GET", version = "1.0"}, true, 200, nil, src)
    assert.equal("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", s)
    assert.same({false, "close"}, {keep, framing})
    s, keep, framing = codec.serialize_response({method = "HEAD", version = "1.1"}, true, 200,
      {["Content-Length"] = "5"}, src)
    assert.equal("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", s)
    assert.same({true, "none"}, {keep, framing})
    s, keep, framing = codec.serialize_response(GET11, true, 304, {["Content-Length"] = "5"}, src)
    assert.equal("HTTP/1.1 304 Not Modified\r\n\r\n", s)
    assert.same({true, "none"}, {keep, framing})
    for _, bad in ipairs { "-1", "1.5", "0x10", " 7", "", "9999999999999999999999" } do
      assert.same({nil, "invalid Content-Length for a streamed body"},
        {codec.serialize_response(GET11, true, 200, {["Content-Length"] = bad}, src)})
    end
  end)

  it("refuses invalid answers: status, header names and values, bodies", function()
    for _, case in ipairs{
      {"200", nil, nil, "invalid status"}, {199, nil, nil, "invalid status"}, {600, nil, nil, "invalid status"},
      {200.5, nil, nil, "invalid status"}, {200, "x", nil, "headers is not a table"},
      {200, {"x"}, nil, "header pair is not a table"}, {200, {{"X-Bad\r\nEvil", "1"}}, nil, "invalid header name"},
      {200, {["X A"] = "1"}, nil, "invalid header name"}, {200, {[""] = "1"}, nil, "invalid header name"},
      {200, {["X-A"] = "a\r\nSet-Cookie: evil=1"}, nil, "CR, LF or NUL"},
      {200, {["X-A"] = "a\0b"}, nil, "CR, LF or NUL"}, {200, {["X-A"] = true}, nil, "not a string"},
      {200, {["X-A"] = {"ok", "b\nad"}}, nil, "CR, LF or NUL"},
      {200, nil, 42, "body is not a string"}, {200, nil, {"a", 1}, "body table holds a non-string"},
    } do
      local s, err = codec.serialize_response(GET11, true, case[1], case[2], case[3])
      assert.is_nil(s)
      assert.matches(case[4], err, 1, true)
    end
  end)

  it("writes request heads, and raises on a bad method, target or version", function()
    assert.equal("PUT /x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab",
      codec.serialize_request("PUT", "/x?y", {{"Host", "h"}}, "ab"))
    assert.equal("GET / HTTP/1.0\r\n\r\n", codec.serialize_request("GET", "/", nil, nil, "1.0"))
    assert.same({nil, "invalid header name"}, {codec.serialize_request("GET", "/", {{"a b", "1"}})})
    assert.has_error(function() codec.serialize_request("G T", "/") end)
    assert.has_error(function() codec.serialize_request("GET", "http://x/") end)
    assert.has_error(function() codec.serialize_request("GET", "/#f") end)
    assert.has_error(function() codec.serialize_request("GET", "/", nil, nil, "2") end)
  end)

  it("writes the loop's own refusals, with Retry-After when given, and Date lines", function()
    assert.equal("HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n" ..
      "Content-Length: 20\r\nConnection: close\r\n\r\n408 Request Timeout\n", codec.error_response(408))
    assert.matches("\r\nRetry%-After: 1\r\n", codec.error_response(503, 1))
    assert.is_nil(codec.error_response(503):find("Retry-After", 1, true))
    assert.equal("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", codec.date_line(784111777))
  end)
end)
