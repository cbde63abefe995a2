--- support.abuse_client: thousands of malformed, oversized, slow and
-- half-closed requests against a local HTTP server, many connections at once,
-- for spec/http/abuse_spec.lua.
--
--     local abuse = require "support.abuse_client"
--     local cases = abuse.cases{ seed = 1 }           -- the list of abusive requests
--     local report = abuse.run(cases, { port = p, concurrency = 200, probe_every = 0.02 })
--     -- report.results[i] = { ok, outcome, why, statuses, closed } for cases[i]
--     -- report.probes = latencies (s) of normal GET / made while the abuse ran
--
-- A case is a table:
--   kind     what it is (counted by kind in the report)
--   data     the bytes sent
--   split    nil (one write), "bytes" (one byte per write) or "chunks"
--            (random pieces of 1..64 bytes); `gap` seconds between writes
--   after    "read" (default), "shutdown" (shut our sending side, then read),
--            "abort" (close at once, read nothing) or "trickle" (then send one
--            byte of `trickle` every `gap` seconds until the server gives up)
--   expect   the responses the server must send, in order: each an array of
--            allowed status codes ({} with or_close: none at all)
--   keep     true: the server may keep the connection open after them (we
--            close it); otherwise it must close
--   or_close true: no response and a close is also right
--   loose    true (fuzz): any well-formed responses followed by anything
-- Every response must parse (status line, headers, Content-Length body), and
-- nothing may follow the expected ones: a second response to one request
-- (a smuggled one) fails the case. Refusals (the loop's 4xx/5xx) must say Connection: close.
-- Connections are bounded in time (`timeout`, default 8 s) and all closed by run().
local socket = require "socket"

local M = {}

local gettime = socket.gettime
local create, resume, yield, status = coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local concat, rep, char, format = table.concat, string.rep, string.char, string.format

-- ------------------------------------------------------------ cases

-- A GET with a Host header and extra header lines.
local function get(path, extra)
  return "GET " .. path .. " HTTP/1.1\r\nHost: x\r\n" .. (extra or "") .. "\r\n"
end

local http_cases = require "support.http_cases"

-- A request hidden where a correct parser never looks for one.
local SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
local CHUNKED_BODY = "0\r\n\r\n" .. SMUGGLED
-- a chunked body whose data is a request: a correct decoder takes it as data
local HIDDEN_CHUNKED = ("%x"):format(#SMUGGLED) .. "\r\n" .. SMUGGLED .. "\r\n0\r\n\r\n"

M.get, M.SMUGGLED = get, SMUGGLED

--- The abusive requests, in a deterministic random order.
-- opts: seed [1], fuzz [600] (random mutations of valid requests),
-- slowloris [150] (trickling connections), timeout (of slow cases, seconds).
function M.cases(opts)
  opts = opts or {}
  math.randomseed(opts.seed or 1)
  local rnd = math.random
  local list = {}
  local function add(kind, data, expect, extra)
    local c = extra or {}
    c.kind, c.data, c.expect = kind, data, expect
    list[#list + 1] = c
    return c
  end
  -- the same request again, delivered byte by byte, in pieces, and half-closed
  local function deliveries(kind, data, expect, extra)
    local keep, echo = extra and extra.keep, extra and extra.echo
    add(kind, data, expect, {keep = keep, echo = echo})
    add("split-bytes", data, expect, {split = "bytes", gap = 0.0005, keep = keep, echo = echo})
    add("split-chunks", data, expect, {split = "chunks", gap = 0.0005, keep = keep, echo = echo})
    add("half-close", data, expect, {after = "shutdown", echo = echo})
  end

  local R400, R501 = {{400}}, {{501}}

  -- request smuggling: Content-Length and Transfer-Encoding together (RFC 9112 6.1: 400, then close)
  local te_names = {"Transfer-Encoding", "transfer-encoding", "TRANSFER-ENCODING", "Transfer-encoding"}
  local te_values = {"chunked", "CHUNKED", " chunked", "chunked ", "chunked, identity", "identity, chunked",
                     "gzip, chunked", "\tchunked", "chunked\t", "identity"}
  for _, name in ipairs(te_names) do
    for _, value in ipairs(te_values) do
      for _, cl in ipairs{#CHUNKED_BODY, 0, 3} do
        local te = name .. ":" .. value .. "\r\n"
        local clh = "Content-Length: " .. cl .. "\r\n"
        add("cl+te", "POST /echo HTTP/1.1\r\nHost: x\r\n" .. clh .. te .. "\r\n" .. CHUNKED_BODY, R400)
        add("te+cl", "POST /echo HTTP/1.1\r\nHost: x\r\n" .. te .. clh .. "\r\n" .. CHUNKED_BODY, R400)
      end
    end
  end
  -- duplicate Content-Length (different values, equal values, lists)
  for _, pair in ipairs{{3, #SMUGGLED + 3}, {#SMUGGLED + 3, 3}, {0, #SMUGGLED}, {3, 3}, {0, 0}} do
    for _, names in ipairs{{"Content-Length", "Content-Length"}, {"Content-Length", "content-length"},
                           {"CONTENT-LENGTH", "Content-length"}} do
      local data = "POST /echo HTTP/1.1\r\nHost: x\r\n" .. names[1] .. ": " .. pair[1] .. "\r\n" ..
        names[2] .. ": " .. pair[2] .. "\r\n\r\nabc" .. SMUGGLED
      deliveries("dup-cl", data, R400)
    end
  end
  for _, v in ipairs{"3, 40", "3,3", "3 3", "3;", "+3", "-3", "0x3", "3.0", "3e0", "", " ", "99999999999999999999",
                     "0000000000000003", "\0" .. "3", "3\0"} do
    add("bad-cl", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " .. v .. "\r\n\r\nabc" .. SMUGGLED, R400)
  end
  -- Transfer-Encoding hidden by obs-fold, odd spellings, xchunked
  local folds = {
    "Transfer-Encoding:\r\n chunked\r\n", "Transfer-Encoding:\r\n\tchunked\r\n",
    "X-A: b\r\n Transfer-Encoding: chunked\r\n", "X-A: b\r\n\tTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: identity\r\n chunked\r\n", " Transfer-Encoding: chunked\r\n",
    "\tTransfer-Encoding: chunked\r\n", "Content-Length: 3\r\n Transfer-Encoding: chunked\r\n",
  }
  for _, f in ipairs(folds) do
    deliveries("te-obs-fold", "POST /echo HTTP/1.1\r\nHost: x\r\n" .. f .. "\r\n" .. CHUNKED_BODY, R400)
  end
  for _, v in ipairs{"xchunked", "chunkedx", "x-chunked", "chunked-false", "chunk", "chunked\1",
                     '"chunked"', "chunked;q=1", ", chunked", "chunked,", "chunked , identity", "identity",
                     "chunked, gzip", "chunked, x", "chunked,chunked", "chunked;", "chu nked"} do
    for _, cl in ipairs{"", "Content-Length: 3\r\n"} do
      deliveries("te-xchunked", "POST /echo HTTP/1.1\r\nHost: x\r\n" .. cl .. "Transfer-Encoding: " .. v ..
        "\r\n\r\n" .. CHUNKED_BODY, R400)
    end
  end
  -- codings we do not implement before a final chunked: 501 (400 beside a Content-Length)
  for _, v in ipairs{"gzip, chunked", "deflate,chunked", "x;a=1, chunked", "identity, chunked"} do
    deliveries("te-list", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " .. v .. "\r\n\r\n" ..
      CHUNKED_BODY, R501)
    add("te-list", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: " .. v ..
      "\r\n\r\n" .. CHUNKED_BODY, R400)
  end
  -- two Transfer-Encoding fields (a front and a back end may each read another one)
  for _, pair in ipairs{{"chunked", "chunked"}, {"gzip", "chunked"}, {"chunked", "identity"}, {"identity", "chunked"},
                        {"chunked", ""}, {"chunked", "x"}} do
    deliveries("te-dup", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " .. pair[1] ..
      "\r\ntransfer-encoding: " .. pair[2] .. "\r\n\r\n" .. CHUNKED_BODY, R400)
  end
  -- Transfer-Encoding in HTTP/1.0 (RFC 9112 6.1: faulty framing)
  for _, extra in ipairs{"", "Connection: keep-alive\r\n", "Content-Length: 5\r\n"} do
    deliveries("te-http10", "POST /echo HTTP/1.0\r\n" .. extra .. "Transfer-Encoding: chunked\r\n\r\n" ..
      CHUNKED_BODY, R400)
  end
  -- control bytes in the value
  for _, v in ipairs{"chunked\0", "\0chunked", "chu\0nked", "chunked\127", "chunked\27", "chunked\r"} do
    deliveries("te-ctl", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " .. v .. "\r\n\r\n" ..
      CHUNKED_BODY, R400)
  end
  for _, h in ipairs{"Transfer-Encoding : chunked", "Transfer-Encoding\t: chunked", "Transfer-Encoding:\11chunked",
                     "Transfer-Encoding:\12chunked", "Transfer-Encoding\0: chunked", "Transfer Encoding: chunked"} do
    add("te-xchunked", "POST /echo HTTP/1.1\r\nHost: x\r\n" .. h .. "\r\n\r\n" .. CHUNKED_BODY, R400)
  end
  -- chunked bodies taken (any case, OWS): a request in the data stays data, the
  -- trailer's fields are dropped, a request after the body is the next one
  for _, v in ipairs{"chunked", "CHUNKED", "cHuNkEd", " chunked ", "\tchunked"} do
    deliveries("chunked-ok", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:" .. v .. "\r\n\r\n" ..
      HIDDEN_CHUNKED, {{200}}, {keep = true, echo = #SMUGGLED})
    add("chunked-ok", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:" .. v .. "\r\n\r\n" ..
      "5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n" .. get("/"),
      {{200}, {200}}, {keep = true})
  end
  -- chunked bodies refused (each with a request after it that must never be read)
  for _, case in ipairs(http_cases.chunked) do
    if type(case[3]) == "number" and not case.small then
      local data = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" .. case[2] .. SMUGGLED
      if #data < 2000 then
        deliveries("chunked-bad", data, {{case[3]}})
      else
        add("chunked-bad", data, {{case[3]}})
        add("chunked-bad", data, {{case[3]}}, {split = "chunks", gap = 0.0005})
      end
    end
  end
  add("chunked-bad", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n", {{413}})
  add("chunked-bad", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" ..
    rep("z", 0x100000) .. "\r\n1\r\n", {{413}})
  add("chunked-bad", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" .. CHUNKED_BODY, {{413}})
  -- bare LF and bare CR line endings (documented: 400), also in heads that
  -- never show a CRLF (refused at once, not at the request timeout)
  local lf_now = {
    "GET / HTTP/1.1\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\n\r\n\r\n", "GET / HTTP/1.1\rHost: x\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\n\r\n" .. SMUGGLED,
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\r\n" .. SMUGGLED,
  }
  for _, d in ipairs(lf_now) do deliveries("bare-lf/cr", d, R400) end
  local lf_wait = {"GET / HTTP/1.1\nHost: x\n\n", "GET / HTTP/1.1\r\nHost: x\n\n",
                   "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\n\r\n",
                   "POST / HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc", "GET / HTTP/1.1\r\nHost: x\n\r\n\n"}
  for _, d in ipairs(lf_wait) do
    for _ = 1, 10 do
      add("bare-lf-only", d, R400)
      add("bare-lf-only", d, R400, {after = "shutdown"})
    end
  end
  -- NUL bytes everywhere (in a body framed by Content-Length they are data)
  local nuls = {
    "\0GET / HTTP/1.1\r\nHost: x\r\n\r\n", "G\0T / HTTP/1.1\r\nHost: x\r\n\r\n", "GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /?a=\0 HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\0\r\nHost: x\r\n\r\n",
    "GET / HTTP/1.1\r\nHo\0st: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n\0", "\0\0\0\0\r\n\r\n",
  }
  for i, d in ipairs(nuls) do
    if i == 10 then                  -- a NUL after a request: the start of a request line
      add("nul", d, {{200}, {400, 408}}, {or_close = true, timeout = opts.timeout})
      add("nul", d, {{200}}, {after = "shutdown"})
    else
      deliveries("nul", d, R400)
    end
  end
  add("nul", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na\0b", {{200}}, {keep = true})
  -- targets not in origin-form
  for _, t in ipairs{"http://127.0.0.1/smuggled", "https://x/smuggled", "HTTP://x/", "127.0.0.1:80", "*", "?a=1",
                     "smuggled", "x/smuggled", "%2fsmuggled", "\\smuggled", "/\127", "/\255", "/a b"} do
    add("absolute-form", "GET " .. t .. " HTTP/1.1\r\nHost: x\r\n\r\n", {{400}})
    add("absolute-form", "CONNECT " .. t .. " HTTP/1.1\r\nHost: x\r\n\r\n", {{400}})
  end
  -- request lines and versions
  for _, l in ipairs{"GET / HTTP/1.1 ", " GET / HTTP/1.1", "GET  / HTTP/1.1", "GET\t/\tHTTP/1.1", "GET /",
                     "GET / HTTP/1", "GET / HTTP/1.", "GET / HTTP/1.1.1", "GET / http/1.1", "GET / HTTP/1.1x",
                     "G(T / HTTP/1.1", "GET / XTTP/1.1", "/ GET HTTP/1.1"} do
    add("bad-request-line", l .. "\r\nHost: x\r\n\r\n", {{400}})
  end
  for _, l in ipairs{"GET / HTTP/2.0", "GET / HTTP/0.9", "GET / HTTP/1.2", "GET / HTTP/9.9", "PRI * HTTP/2.0",
                     "GET / HTTP/11.1"} do
    add("bad-version", l .. "\r\nHost: x\r\n\r\n", {{400, 505}})
  end
  add("bad-version", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {{400, 505}})
  -- missing or duplicate Host, strange expectations
  add("host", "GET / HTTP/1.1\r\n\r\n", {{400}})
  add("host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {{400}})
  add("host", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", {{400}})
  add("expect", "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continuex\r\nContent-Length: 3\r\n\r\nabc", {{417}})
  add("expect", "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\nabc",
      {{408}}, {or_close = true, after = "shutdown"})
  -- huge header counts and sizes; a 100 KB request line
  for _, n in ipairs{101, 150, 1000, 10000} do
    add("many-headers", get("/", rep("X-A: 1\r\n", n)), {{431}})
    add("many-headers", get("/", rep("a:\r\n", n)), {{431}})
    add("many-headers", get("/", rep("Cookie: a=1\r\n", n)), {{431}})
  end
  add("many-headers", get("/", "X-Big: " .. rep("b", 100000) .. "\r\n"), {{431}})
  add("many-headers", get("/", "X-Big: " .. rep(" ", 16000) .. "\r\n" .. rep("Y: 1\r\n", 2000)), {{431}})
  for _ = 1, 20 do
    add("long-line", get("/" .. rep("a", 100 * 1024)), {{414}})
  end
  add("long-line", "GET /" .. rep("a", 100 * 1024), {{414}})
  add("long-line", rep("G", 100 * 1024) .. " / HTTP/1.1\r\nHost: x\r\n\r\n", {{414}})
  add("long-line", get("/" .. rep("a", 100 * 1024)), {{414}}, {split = "chunks", gap = 0})
  -- bodies: over max_body, shorter than announced, exactly max_body
  add("oversized-body", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n", {{413}})
  add("oversized-body", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n" .. rep("z", 70000),
      {{413}})
  add("oversized-body", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n" .. rep("z", 1048576),
      {{200}}, {keep = true})
  for _ = 1, 10 do
    add("oversized-body", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
        {}, {or_close = true, after = "shutdown"})
  end
  -- a request in a body framed by Content-Length: data, never a request
  for _ = 1, 20 do
    add("body-framing", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " .. #SMUGGLED .. "\r\n\r\n" .. SMUGGLED,
        {{200}}, {keep = true, echo = #SMUGGLED})
  end
  -- pipelined junk after a valid request; requests after a closing one
  -- (each with the status it gets: a chunked body to a route that takes none is 413 on its head)
  local junk = {{"\0\0\0\r\n\r\n", 400}, {"HELLO\r\n\r\n", 400},
                {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
                {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\n\r\n", 413},
                {"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nHost: x\r\n\r\n", 501},
                {"0\r\n\r\n" .. SMUGGLED, 400}, {" " .. SMUGGLED, 400}, {"\t\r\n" .. SMUGGLED, 400},
                {"\n" .. SMUGGLED, 400}, {rep("\255", 100) .. "\r\n\r\n", 400}}
  for _, j in ipairs(junk) do
    for _ = 1, 5 do
      add("pipelined-junk", get("/") .. j[1], {{200}, {j[2]}})
      add("pipelined-junk", get("/") .. get("/") .. j[1], {{200}, {200}, {j[2]}}, {split = "chunks", gap = 0.0005})
    end
  end
  for _ = 1, 5 do
    add("pipelined-after-close", get("/", "Connection: close\r\n") .. SMUGGLED, {{200}})
    add("pipelined-after-close", "GET / HTTP/1.0\r\n\r\n" .. SMUGGLED, {{200}})
    add("pipelined-after-close", get("/nowhere", "Connection: close\r\n") .. SMUGGLED, {{404}})
    add("pipelined-after-close", get("/", "X-A: 1\r\n X-B: 2\r\n") .. SMUGGLED, {{400}})
  end
  local flood = {}
  for i = 1, 1000 do flood[i] = get("/") end
  local want = {}
  for i = 1, 1000 do want[i] = {200} end
  want[1001] = {400}
  add("pipelined-junk", concat(flood) .. "junk\r\n\r\n", want, {timeout = 20})
  -- valid requests delivered oddly (must still be answered)
  for _ = 1, 10 do
    add("split-bytes", get("/", "X-A: 1\r\n"), {{200}}, {split = "bytes", gap = 0.0005, keep = true})
    add("split-chunks", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", {{200}},
        {split = "chunks", gap = 0.0005, keep = true, echo = 5})
    add("half-close", get("/"), {{200}}, {after = "shutdown"})
    add("half-close", get("/") .. get("/"), {{200}, {200}}, {after = "shutdown"})
  end
  -- CRLF floods before the request line, then a request or nothing
  add("crlf-flood", rep("\r\n", 200000) .. get("/"), {{200}}, {keep = true})
  add("crlf-flood", rep("\r\n", 200000), {}, {or_close = true, after = "shutdown"})
  add("crlf-flood", rep("\r\n", 3000) .. "\n", R400)
  -- connections dropped half-way: partial requests, then close
  local partials = {"G", "GET / HT", "GET / HTTP/1.1\r\nHo", "GET / HTTP/1.1\r\nHost: x\r\n",
                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", get("/"),
                    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhel"}
  for _ = 1, 25 do
    for _, p in ipairs(partials) do
      add("abort", p, {}, {after = "abort"})
      add("half-close", p:sub(1, -2), {}, {after = "shutdown", or_close = true})
    end
  end
  -- slowloris: a head (or a body) that never ends, one byte at a time
  for i = 1, opts.slowloris or 150 do
    if i % 6 == 0 then                 -- a chunked body that never ends, one chunk-size digit at a time
      add("slowloris", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", {{408}},
          {or_close = true, after = "trickle", trickle = "1\r\nz\r\n", gap = 0.1, timeout = opts.timeout})
    elseif i % 3 == 0 then
      add("slowloris", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", {{408}},
          {or_close = true, after = "trickle", trickle = "z", gap = 0.1, timeout = opts.timeout})
    else
      add("slowloris", "GET / HTTP/1.1\r\nHost: x\r\n", {{408}},
          {or_close = true, after = "trickle", trickle = "X-a: b\r\n", gap = 0.1, timeout = opts.timeout})
    end
  end
  -- fuzz: valid requests with random bytes inserted, removed or changed
  local bases = {get("/echo?a=1", "X-A: 1\r\nCookie: a=b\r\n"),
                 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                 "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                 "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n" ..
                   "1\r\n!\r\n0\r\nT: 1\r\n\r\n"}
  local pool = {"\0", "\r", "\n", "\r\n", " ", "\t", ":", "\127", "\255", "a", "/", "0", "9", ",", "\r\n ", "%",
                "Content-Length: 9\r\n", "Transfer-Encoding: chunked\r\n", "\r\n\r\n"}
  for _ = 1, opts.fuzz or 600 do
    local d = bases[rnd(#bases)]
    for _ = 1, rnd(3) do
      local at = rnd(#d)
      local op = rnd(3)
      if op == 1 then d = d:sub(1, at - 1) .. pool[rnd(#pool)] .. d:sub(at)
      elseif op == 2 then d = d:sub(1, at - 1) .. d:sub(at + 1)
      else d = d:sub(1, at - 1) .. char(rnd(0, 255)) .. d:sub(at + 1) end
    end
    add("fuzz", d, {}, {loose = true, after = "shutdown"})
  end

  -- shuffle, so that each kind meets the others on the server
  for i = #list, 2, -1 do
    local j = rnd(i)
    list[i], list[j] = list[j], list[i]
  end
  return list
end

-- ------------------------------------------------------------ responses

-- Parse the responses at the start of buf. Returns an array of {status,
-- headers (lower-case names), body}, the unparsed rest, and an error message
-- when the bytes cannot be a response (nil while they may still be one).
local function parse(buf)
  local out, pos = {}, 1
  while pos <= #buf do
    local he = buf:find("\r\n\r\n", pos, true)
    if not he then
        local head = buf:sub(pos, pos + 8)
      if ("HTTP/1.1 "):sub(1, #head) ~= head then
        return out, buf:sub(pos), "not a response: " .. format("%q", buf:sub(pos, pos + 40))
      end
      break
    end
    local code = tonumber(buf:match("^HTTP/1%.1 (%d%d%d) [^\r\n]*\r\n", pos))
    if not code then return out, buf:sub(pos), "bad status line: " .. format("%q", buf:sub(pos, pos + 40)) end
    local headers = {}
    local lpos = buf:find("\r\n", pos, true) + 2
    while lpos < he + 2 do
      local name, value, nxt = buf:match("^([%w%-]+): ([^\r\n]*)\r\n()", lpos)
      if not name then return out, buf:sub(pos), "bad header line" end
      headers[name:lower()] = value
      lpos = nxt
    end
    local len = tonumber(headers["content-length"] or "0")
    if code < 200 then len = 0 end
    if #buf < he + 3 + len then break end
    if code >= 200 then
      out[#out + 1] = {status = code, headers = headers, body = buf:sub(he + 4, he + 3 + len)}
    end
    pos = he + 4 + len
  end
  return out, buf:sub(pos), nil
end
M.parse = parse

-- ------------------------------------------------------------ the driver

-- Split data as the case says.
local function pieces(c)
  if not c.split then return {c.data} end
  local t, i, n = {}, 1, #c.data
  while i <= n do
    local len = c.split == "bytes" and 1 or math.random(64)
    t[#t + 1] = c.data:sub(i, i + len - 1)
    i = i + len
  end
  return t
end

-- Wait for the socket (or only the clock): true when ready, false at the deadline.
local function wait(want, sock, deadline)
  return yield(want, sock, deadline)
end

-- Send all of s (non-blocking); true, or nil, err.
local function send_all(sock, s, deadline)
  local i = 1
  while i <= #s do
    local last, err, partial = sock:send(s, i)
    if last then return true end
    if err ~= "timeout" then return nil, err end
    i = partial + 1
    if i <= #s and not wait("w", sock, deadline) then return nil, "timeout" end
  end
  return true
end

local function sleep(secs)
  wait("t", nil, gettime() + secs)
end

-- The statuses the loop itself answers with (then closes).
local REFUSALS = {[400] = true, [408] = true, [413] = true, [414] = true, [417] = true, [431] = true,
                  [500] = true, [501] = true, [503] = true, [505] = true}

-- Judge what a case received. Returns ok, outcome, why.
local function judge(c, got, closed, timed_out, res, rest, perr)
  local statuses, parts = {}, {}
  for k, r in ipairs(res) do statuses[k] = r.status end
  local i = 1
  while i <= #statuses do                        -- 200*1000+400, not 1001 codes
    local j = i
    while statuses[j + 1] == statuses[i] do j = j + 1 end
    parts[#parts + 1] = j > i and statuses[i] .. "*" .. (j - i + 1) or tostring(statuses[i])
    i = j + 1
  end
  local outcome = concat(parts, "+")
  if closed then outcome = outcome .. (outcome ~= "" and "+" or "") .. "close" end
  if timed_out then outcome = outcome .. (outcome ~= "" and "+" or "") .. "timeout" end
  for _, r in ipairs(res) do
    if r.body == "SMUGGLED" then return false, outcome, "a smuggled request was served" end
    if REFUSALS[r.status] and r.headers.connection ~= "close" then
      return false, outcome, "refusal " .. r.status .. " without Connection: close"
    end
  end
  if c.loose then
    if perr then return false, outcome, perr end
    if timed_out and not closed then return false, outcome, "no close after the responses" end
    return true, outcome
  end
  if perr then return false, outcome, perr end
  if #res == 0 and c.or_close and closed and rest == "" then return true, outcome end
  if #res ~= #c.expect then
    return false, outcome, format("%d responses, want %d (%d bytes: %q)", #res, #c.expect, #got, got:sub(1, 80))
  end
  for k, allowed in ipairs(c.expect) do
    local hit = false
    for _, code in ipairs(allowed) do if code == statuses[k] then hit = true end end
    if not hit then return false, outcome, "response " .. k .. " is " .. statuses[k] end
  end
  if rest ~= "" then return false, outcome, format("bytes after the responses: %q", rest:sub(1, 80)) end
  if not c.keep and not closed then return false, outcome, "connection not closed" end
  if c.echo and not res[#res].body:find("^POST " .. c.echo .. " ") then
    return false, outcome, "body framed wrong: " .. res[#res].body:sub(1, 40)
  end
  return true, outcome
end

M.judge = judge

-- One abusive connection (runs in a coroutine). Returns its result.
local function exchange(port, c, timeout)
  local sock = socket.tcp()
  sock:settimeout(2)
  local okc, cerr = sock:connect("127.0.0.1", port)
  if not okc then
    sock:close()
    return {ok = false, outcome = "connect", why = "connect: " .. tostring(cerr)}
  end
  sock:settimeout(0)
  sock:setoption("tcp-nodelay", true)
  local deadline = gettime() + (c.timeout or timeout)
  local sent_err
  for i, p in ipairs(pieces(c)) do
    if i > 1 and c.gap and c.gap > 0 then sleep(c.gap) end
    local ok, err = send_all(sock, p, deadline)
    if not ok then sent_err = err break end   -- the server may close early (a refusal)
  end
  if c.after == "abort" then
    sock:close()
    return {ok = true, outcome = "aborted"}
  end
  if c.after == "shutdown" and not sent_err then sock:shutdown("send") end

  local got, closed, timed_out = {}, false, false
  local trickle_i, next_trickle = 1, gettime() + (c.gap or 0)
  while true do
    local data, err, partial = sock:receive(65536)
    local chunk = data or partial
    if chunk and chunk ~= "" then got[#got + 1] = chunk end
    if err and err ~= "timeout" then closed = true break end
    if chunk and chunk ~= "" then
      local so_far, _, bad = parse(concat(got))
      if bad then break end
      if c.keep and #so_far >= #c.expect then break end
      if c.loose == nil and #so_far > #c.expect then break end
    end
    local now = gettime()
    if now >= deadline then timed_out = true break end
    if c.after == "trickle" and now >= next_trickle then
      local b = c.trickle:sub(trickle_i, trickle_i)
      trickle_i = trickle_i % #c.trickle + 1
      local ok = sock:send(b)
      next_trickle = now + c.gap
      if not ok then closed = true end -- and read what is left
    end
    wait("r", sock, c.after == "trickle" and math.min(next_trickle, deadline) or deadline)
  end
  sock:close()
  local all = concat(got)
  local res, rest, perr = parse(all)
  local ok, outcome, why = judge(c, all, closed, timed_out, res, rest, perr)
  return {ok = ok, outcome = outcome, why = why, closed = closed, responses = #res}
end

-- A normal GET / on a fresh connection; its latency in seconds, or nil, why.
local function probe(port)
  local t0 = gettime()
  local sock = socket.tcp()
  sock:settimeout(2)
  if not sock:connect("127.0.0.1", port) then sock:close() return nil, "connect" end
  sock:settimeout(0)
  local deadline = t0 + 5
  if not send_all(sock, get("/", "Connection: close\r\n"), deadline) then sock:close() return nil, "send" end
  local got = {}
  while true do
    local data, err, partial = sock:receive(65536)
    local chunk = data or partial
    if chunk and chunk ~= "" then got[#got + 1] = chunk end
    local res = parse(concat(got))
    if #res == 1 then
      sock:close()
      if res[1].body ~= "hello" then return nil, "wrong answer" end
      return gettime() - t0
    end
    if err and err ~= "timeout" then sock:close() return nil, "closed early" end
    if not wait("r", sock, deadline) then sock:close() return nil, "timeout" end
  end
end
--- n normal GET / requests one after the other (blocking), each on a fresh
-- connection; returns their latencies in seconds (sorted) and the failures.
function M.latencies(port, n)
  local t, failures = {}, 0
  for _ = 1, n do
    local co = create(probe)
    local ok, want, sock, deadline = resume(co, port)
    while ok and status(co) == "suspended" do
      if want == "r" then socket.select({sock}, nil, math.max(0, deadline - gettime()))
      elseif want == "w" then socket.select(nil, {sock}, math.max(0, deadline - gettime())) end
      ok, want, sock, deadline = resume(co, gettime() < deadline)
    end
    if ok and want then t[#t + 1] = want else failures = failures + 1 end
  end
  table.sort(t)
  return t, failures
end

--- Run the cases against 127.0.0.1:port, `concurrency` connections at once,
-- with a normal GET / every `probe_every` seconds while they run.
-- Returns {results = {...}, probes = {latencies}, probe_failures = n, seconds}.
function M.run(cases, o)
  local port, conc, timeout = o.port, o.concurrency or 200, o.timeout or 8
  local tasks, results, probes, probe_failures = {}, {}, {}, 0
  local nexti, t0 = 1, gettime()

  local function start(fn, ...)
    local co = create(fn)
    local t = {co = co}
    local ok, want, sock, deadline = resume(co, ...)
    t.ok, t.want, t.sock, t.deadline, t.value = ok, want, sock, deadline, want
    return t
  end
  local function step(t, ready)
    local ok, want, sock, deadline = resume(t.co, ready)
    t.ok, t.want, t.sock, t.deadline, t.value = ok, want, sock, deadline, want
  end

  local probe_task, next_probe = nil, gettime()
  local running = 0
  while nexti <= #cases or running > 0 do
    while running < conc and nexti <= #cases do
      local i = nexti
      nexti = nexti + 1
      local t = start(exchange, port, cases[i], timeout)
      t.index = i
      tasks[t] = true
      running = running + 1
    end
    local now = gettime()
    if o.probe_every and not probe_task and now >= next_probe then
      probe_task = start(probe, port)
      probe_task.probe = true
      tasks[probe_task] = true
    end
    -- finished tasks
    for t in pairs(tasks) do
      if not t.ok or status(t.co) == "dead" then
        tasks[t] = nil
        if t.probe then
          if t.ok and t.value then probes[#probes + 1] = t.value else probe_failures = probe_failures + 1 end
          probe_task, next_probe = nil, gettime() + o.probe_every
        else
          running = running - 1
          results[t.index] = t.ok and t.value or {ok = false, outcome = "error", why = tostring(t.want)}
        end
      end
    end
    local recvt, sendt, wake = {}, {}, math.huge
    for t in pairs(tasks) do
      if t.want == "r" then recvt[#recvt + 1] = t.sock
      elseif t.want == "w" then sendt[#sendt + 1] = t.sock end
      if t.deadline and t.deadline < wake then wake = t.deadline end
    end
    if next(tasks) == nil and nexti > #cases then break end
    local pause = math.max(0, math.min(wake - gettime(), 0.05))
    if o.probe_every and not probe_task then pause = math.min(pause, math.max(0, next_probe - gettime())) end
    local r, w = socket.select(recvt, sendt, pause)
    now = gettime()
    for t in pairs(tasks) do
      if status(t.co) == "suspended" then
        local ready = (t.want == "r" and r[t.sock]) or (t.want == "w" and w[t.sock])
        if ready then step(t, true)
        elseif t.deadline and now >= t.deadline then step(t, t.want == "t") end
      end
    end
  end
  return {results = results, probes = probes, probe_failures = probe_failures, seconds = gettime() - t0}
end

return M
