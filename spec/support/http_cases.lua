--- support.http_cases: requests the HTTP loop refuses (and Host values it
-- accepts, chunked bodies it decodes or refuses), shared by the codec's unit
-- specs (parsed alone) and httpd_spec (sent through a socket).
--
--     local cases = require "support.http_cases"
--     for _, c in ipairs(cases.refusals) do ... c[1] (what), c[2] (bytes), c[3] (status),
--       c.server (true: refused by the server loop, not by the codec: a body limit)
local M = {}

local function get(path, extra)
  return "GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\n" .. (extra or "") .. "\r\n"
end
M.get = get

--- The refusals, each {what, bytes, status}.
M.refusals = {
  {"request line too long", get("/" .. ("a"):rep(9000)), 414},
  {"request line too long, no CRLF yet", "GET /" .. ("a"):rep(9000), 414},
  {"header section too large", get("/", "X-Big: " .. ("b"):rep(17000) .. "\r\n"), 431},
  {"too many headers", get("/", ("X-H: 1\r\n"):rep(101)), 431},
  {"body over max_body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413,
   server = true},                            -- the loop's body limit, not the codec's
  {"garbage request line", "GARBAGE\r\n\r\n", 400},
  {"HTTP/0.9 request", "GET /\r\n\r\n", 400},
  {"double space", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n", 400},
  {"bad method token", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"header without colon", get("/", "NoColon\r\n"), 400},
  {"space before colon", get("/", "X-A : 1\r\n"), 400},
  {"empty header name", get("/", ": 1\r\n"), 400},
  {"obs-fold (space)", get("/", "X-A: 1\r\n continued\r\n"), 400},
  {"obs-fold (tab)", get("/", "X-A: 1\r\n\tcontinued\r\n"), 400},
  {"bare LF in a header", get("/", "X-A: 1\nX-B: 2\r\n"), 400},
  {"bare CR in a header", get("/", "X-A: 1\rX-B: 2\r\n"), 400},
  {"control byte in a value", get("/", "X-A: a\1b\r\n"), 400},
  {"NUL in a value", get("/", "X-A: a\0b\r\n"), 400},
  -- Transfer-Encoding (RFC 9112 6.1, 6.3): chunked alone on HTTP/1.1 is taken, the rest refused
  {"Transfer-Encoding: identity", get("/", "Transfer-Encoding: identity\r\n"), 400},
  {"Transfer-Encoding with Content-Length", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" ..
    "Content-Length: 3\r\n\r\nabc", 400},
  {"Content-Length with Transfer-Encoding", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n" ..
    "Transfer-Encoding: chunked\r\n\r\nabc", 400},
  {"Content-Length: 0 with Transfer-Encoding", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" ..
    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding in HTTP/1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding twice", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" ..
    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding gzip then chunked in two fields", "POST /echo HTTP/1.1\r\nHost: x\r\n" ..
    "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding: gzip, chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n" ..
    "\r\n0\r\n\r\n", 501},
  {"Transfer-Encoding: chunked, gzip", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n" ..
    "\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding: chunked, x", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, x\r\n" ..
    "\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding: chunked, chunked", "POST /echo HTTP/1.1\r\nHost: x\r\n" ..
    "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding: xchunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n" ..
    "\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding: chunked;q=1", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n" ..
    "\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding: \"chunked\"", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n" ..
    "\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding with an empty element", "POST /echo HTTP/1.1\r\nHost: x\r\n" ..
    "Transfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", 400},
  {"empty Transfer-Encoding", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding obs-folded", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n" ..
    "\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding with a NUL", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\0\r\n" ..
    "\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding with a vertical tab", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\11chunked\r\n" ..
    "\r\n0\r\n\r\n", 400},
  {"Transfer-Encoding with a space before the colon", "POST /echo HTTP/1.1\r\nHost: x\r\n" ..
    "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
  {"duplicate Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n" ..
    "Content-Length: 3\r\n\r\nabc", 400},
  {"Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
  {"negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
  {"signed Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400},
  {"hex Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc", 400},
  {"huge Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " ..
    ("9"):rep(30) .. "\r\n\r\n", 400},
  {"duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
  {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400},
  {"absolute-form target", "GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400},
  {"authority-form target", "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400},
  {"asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"non-ASCII target", "GET /\195\169 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"control byte in target", "GET /\127 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"fragment in target", "GET /echo#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"fragment after a query", "GET /echo?a=1#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"bare # target", "GET /# HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  {"Host with a port that is not digits", "GET / HTTP/1.1\r\nHost: localhost:junk\r\n\r\n", 400},
  {"Host with two ports", "GET / HTTP/1.1\r\nHost: localhost:80:80\r\n\r\n", 400},
  {"Host with userinfo", "GET / HTTP/1.1\r\nHost: user@localhost\r\n\r\n", 400},
  {"Host with a space", "GET / HTTP/1.1\r\nHost: local host\r\n\r\n", 400},
  {"Host with a path", "GET / HTTP/1.1\r\nHost: localhost/x\r\n\r\n", 400},
  {"Host with a bad percent-encoding", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
  {"Host with an unclosed IP literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
  {"Host with junk after an IP literal", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400},
  {"Host with a bad IPv6 address", "GET / HTTP/1.1\r\nHost: [1::2::3]:80\r\n\r\n", 400},
  {"Host with a bad IPv6 group", "GET / HTTP/1.1\r\nHost: [12345::1]\r\n\r\n", 400},
  {"Host with an IPv6 address too long", "GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7:8:9]\r\n\r\n", 400},
  {"Host with a bad embedded IPv4", "GET / HTTP/1.1\r\nHost: [::ffff:1.2.3.256]\r\n\r\n", 400},
  {"Host of HTTP/1.0 checked too", "GET / HTTP/1.0\r\nHost: localhost:junk\r\n\r\n", 400},
  {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
  {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
  {"HTTP/10.0", "GET / HTTP/10.0\r\nHost: x\r\n\r\n", 505},
  {"unknown expectation", "POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n" ..
    "Content-Length: 1\r\n\r\n", 417},
  {"DEL in a value", get("/", "X-A: a\127b\r\n"), 400},
  {"empty Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", 400},
  {"16-digit Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " .. ("1"):rep(16) .. "\r\n\r\n", 400},
}

-- A request hidden in chunk data: a correct decoder takes it as data.
local HIDDEN = "\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

--- Chunked request bodies (the bytes after a `Transfer-Encoding: chunked`
-- head), each {what, bytes, want}: want is the decoded body (a string) or the
-- status the body is refused with. `small = true`: decoded with a limit of 16
-- bytes (the fixture's /small); else with max_body (1 MiB). Decoders use
-- their defaults: max_chunk_ext 4096, max_trailer 16384.
M.chunked = {
  {"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
  {"chunks in upper- and lower-case hex", "5\r\nhello\r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
   "hello0123456789abcdefghij"},
  {"leading zeros", ("0"):rep(60) .. "5\r\nhello\r\n" .. ("0"):rep(64) .. "\r\n\r\n", "hello"},
  {"no chunk at all", "0\r\n\r\n", ""},
  {"one-byte chunks", "1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", "abc"},
  {"binary data", "3\r\na\0b\r\n2\r\n\r\n\r\n0\r\n\r\n", "a\0b\r\n"},
  {"extensions: tokens, quoted strings, no value, BWS",
   "5;a=b;c=\"x;y\\\"z\" ; d\t;e = f;g=\"\128\"\r\nhello\r\n0;last=\"1\"\r\n\r\n", "hello"},
  {"trailer fields (discarded)", "5\r\nhello\r\n0\r\nX-Trailer: 1\r\nContent-Length: 99\r\n" ..
   "Transfer-Encoding: chunked\r\nHost: evil\r\nEmpty:\r\n\r\n", "hello"},
  {"CRLF and a request inside the data", ("%x"):format(#HIDDEN) .. "\r\n" .. HIDDEN .. "\r\n0\r\n\r\n", HIDDEN},
  {"the route's limit exactly", "10\r\n" .. ("s"):rep(16) .. "\r\n0\r\n\r\n", ("s"):rep(16), small = true},
  {"the route's limit in pieces", "a\r\n" .. ("s"):rep(10) .. "\r\n6\r\n" .. ("t"):rep(6) .. "\r\n0\r\n\r\n",
   ("s"):rep(10) .. ("t"):rep(6), small = true},

  {"chunk-size not hex", "g\r\nhello\r\n0\r\n\r\n", 400},
  {"empty chunk-size", "\r\nhello\r\n0\r\n\r\n", 400},
  {"chunk-size with a plus sign", "+5\r\nhello\r\n0\r\n\r\n", 400},
  {"negative chunk-size", "-5\r\nhello\r\n0\r\n\r\n", 400},
  {"chunk-size with 0x", "0x5\r\nhello\r\n0\r\n\r\n", 400},
  {"space before the chunk-size", " 5\r\nhello\r\n0\r\n\r\n", 400},
  {"space after the chunk-size", "5 \r\nhello\r\n0\r\n\r\n", 400},
  {"tab after the chunk-size", "5\t\r\nhello\r\n0\r\n\r\n", 400},
  {"junk after the chunk-size", "5z\r\nhello\r\n0\r\n\r\n", 400},
  {"bare LF after the chunk-size", "5\nhello\r\n0\r\n\r\n", 400},
  {"bare CR after the chunk-size", "5\rhello\r\n0\r\n\r\n", 400},
  {"65 hex digits", ("0"):rep(64) .. "5\r\nhello\r\n0\r\n\r\n", 400},
  {"data longer than its size", "5\r\nhelloX\r\n0\r\n\r\n", 400},
  {"data shorter than its size", "6\r\nhello\r\n0\r\n\r\n", 400},
  {"bare LF after the data", "5\r\nhello\n0\r\n\r\n", 400},
  {"bare CR after the data", "5\r\nhello\r0\r\n\r\n", 400},
  {"no CRLF after the data", "5\r\nhello0\r\n\r\n", 400},
  {"a chunk-size over the limit", "11\r\n" .. ("x"):rep(17) .. "\r\n0\r\n\r\n", 413, small = true},
  {"chunks over the limit together", "a\r\n0123456789\r\n7\r\n0123456\r\n0\r\n\r\n", 413, small = true},
  {"a chunk-size of 2^64", "10000000000000000\r\nx\r\n0\r\n\r\n", 413},
  {"a chunk-size of 40 digits", ("f"):rep(40) .. "\r\nx\r\n0\r\n\r\n", 413},
  {"an extension without a name", "5;\r\nhello\r\n0\r\n\r\n", 400},
  {"an extension with an empty value", "5;a=\r\nhello\r\n0\r\n\r\n", 400},
  {"an extension with an unclosed quote", "5;a=\"x\r\nhello\r\n0\r\n\r\n", 400},
  {"an extension with a quote ending in a backslash", "5;a=\"\\\r\nhello\r\n0\r\n\r\n", 400},
  {"an extension with a space in it", "5;a b\r\nhello\r\n0\r\n\r\n", 400},
  {"an extension that is only a value", "5;=b\r\nhello\r\n0\r\n\r\n", 400},
  {"whitespace and no extension", "5 ;\r\nhello\r\n0\r\n\r\n", 400},
  {"a control byte in an extension", "5;a=\1\r\nhello\r\n0\r\n\r\n", 400},
  {"a bare LF in an extension", "5;a=b\nhello\r\n0\r\n\r\n", 400},
  {"an extension over max_chunk_ext", "5;a=" .. ("x"):rep(5000) .. "\r\nhello\r\n0\r\n\r\n", 400},
  {"extensions over max_chunk_ext together", ("1;a=" .. ("x"):rep(1000) .. "\r\nz\r\n"):rep(5) .. "0\r\n\r\n", 400},
  {"an obs-folded trailer field", "0\r\nX-T: 1\r\n folded\r\n\r\n", 400},
  {"a trailer field without a colon", "0\r\nNoColon\r\n\r\n", 400},
  {"a trailer field with a space before the colon", "0\r\nX-T : 1\r\n\r\n", 400},
  {"a trailer field with a bare LF", "0\r\nX-T: 1\n\r\n", 400},
  {"a trailer field with a NUL", "0\r\nX-T: a\0b\r\n\r\n", 400},
  {"a trailer section over max_trailer", "0\r\nX-T: " .. ("t"):rep(17000) .. "\r\n\r\n", 431},
  {"many trailer fields over max_trailer", "0\r\n" .. ("X-T: 1\r\n"):rep(3000) .. "\r\n", 431},
  {"a bare LF ending the trailer section", "0\r\n\n", 400},
  {"a bare LF after the last chunk", "0\n\r\n", 400},
}

--- Host field values the loop accepts (RFC 9112 3.2: uri-host [":" port]).
M.valid_hosts = {"localhost", "localhost:8080", "127.0.0.1:1", "LOCALHOST", "a-b.example.",
                 "xn--bcher-kva.example", "a%20b", "!$&'()*+,;=._~", "[::1]", "[::1]:80",
                 "[::]", "[::ffff:127.0.0.1]:8080", "[2001:db8:0:0:1:0:0:1]",
                 "[1:2:3:4:5:6:7::]", "[1:2:3:4:5:6:1.2.3.4]", "[v1.fe80::a+en1]",
                 "localhost:", "", "[1:2:3:4:5:6:7:8]", "[::1.2.3.4]"}

return M
