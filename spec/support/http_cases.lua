--- support.http_cases: requests the HTTP loop refuses (and Host values it
-- accepts), shared by the codec's unit spec (parsed alone) and httpd_spec
-- (sent through a socket).
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
  {"Transfer-Encoding: chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" ..
    "5\r\nhello\r\n0\r\n\r\n", 501},
  {"Transfer-Encoding: identity", get("/", "Transfer-Encoding: identity\r\n"), 501},
  {"Transfer-Encoding with Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n" ..
    "Transfer-Encoding: chunked\r\n\r\nabc", 501},
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

--- Host field values the loop accepts (RFC 9112 3.2: uri-host [":" port]).
M.valid_hosts = {"localhost", "localhost:8080", "127.0.0.1:1", "LOCALHOST", "a-b.example.",
                 "xn--bcher-kva.example", "a%20b", "!$&'()*+,;=._~", "[::1]", "[::1]:80",
                 "[::]", "[::ffff:127.0.0.1]:8080", "[2001:db8:0:0:1:0:0:1]",
                 "[1:2:3:4:5:6:7::]", "[1:2:3:4:5:6:1.2.3.4]", "[v1.fe80::a+en1]",
                 "localhost:", "", "[1:2:3:4:5:6:7:8]", "[::1.2.3.4]"}

return M
