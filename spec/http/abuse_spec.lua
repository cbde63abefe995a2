-- abuse_spec.lua -- smugoauth.http.server (smugoauth.httpd) under abuse (issue 6, point 4).
--
-- A child server (spec/support/abuse_fixture.lua: request_timeout=2,
-- idle_timeout=3) gets two rounds of a few thousand abusive requests from
-- spec/support/abuse_client.lua, 200 connections at once: request-smuggling
-- shapes (CL+TE, TE+CL, duplicate Content-Length, obs-folded, misspelt,
-- duplicated, listed and control-byte Transfer-Encoding, Transfer-Encoding in
-- HTTP/1.0: 400; other codings before chunked: 501), chunked bodies (taken:
-- a request in their data stays data, one after them is the next; refused:
-- every malformed chunk line, CRLF, extension and trailer of
-- support.http_cases, each with a request after it that must never be
-- read), bare LF/CR, NUL bytes, absolute-form targets, huge header
-- counts, 100 KB request lines, pipelined junk, requests split byte by byte,
-- half-closed and dropped connections, slowloris heads and bodies, and random
-- mutations of valid requests. A normal GET / is timed every 20 ms meanwhile.
-- Then: every malformed request got the documented 4xx (or a close), no
-- response carried a second (smuggled) one and the server never served a
-- request hidden where a correct parser does not look, normal requests are
-- still quick, memory stayed bounded (VmRSS after a full collection, cold and
-- in steady state; the Lua heap) and no descriptor leaked (/proc/PID/fd once
-- every abusive connection is gone). The figures are printed.
local socket = require "socket"
local abuse = require "support.abuse_client"

local MB = 1024

-- ------------------------------------------------------------ helpers

local proc = require "support.proc"

-- Start the fixture (ulimit -n 4096); returns its handle (pid, port).
local function start_server(args)
  return proc.spawn("lua5.4 spec/support/abuse_fixture.lua " .. args, { expect = "^PORT %d+$", nofile = 4096 })
end

local function kill(child)
  if child then child:close() end
end

local status_kb = proc.status_kb    -- a field of /proc/PID/status, in kB

-- Open descriptors of a process.
local function fd_count(pid)
  local p = assert(io.popen("ls -1 /proc/" .. pid .. "/fd 2>/dev/null | wc -l"))
  local n = tonumber(p:read("a"):match("%d+"))
  p:close()
  return n
end

-- GET path on its own connection (Connection: close); the body, or nil, err.
local function fetch(port, path)
  local s = assert(socket.connect("127.0.0.1", port))
  s:settimeout(5)
  s:send(abuse.get(path, "Connection: close\r\n"))
  local raw = s:receive("*a")
  s:close()
  if not raw then return nil, "no answer" end
  return raw:match("\r\n\r\n(.*)$")
end

-- The fixture's /stats (or /gc) as a table of numbers.
local function stats(port, path)
  local body = assert(fetch(port, path or "/stats"))
  local t = {}
  for k, v in body:gmatch("([%w_]+)=(%d+)") do t[k] = tonumber(v) end
  return t
end

-- Wait until the server holds no connection but the one asking (10 s at
-- most), collect its garbage, and read its memory and descriptors once they
-- no longer move. Returns {rss, hwm, lua_kb, fds, conns}.
local function settle(child)
  local deadline = socket.gettime() + 10
  local st = stats(child.port)
  while st.conns > 1 and socket.gettime() < deadline do
    socket.sleep(0.05)
    st = stats(child.port)
  end
  st = stats(child.port, "/gc")
  local fds, prev = fd_count(child.pid), -1
  while fds ~= prev and socket.gettime() < deadline do
    socket.sleep(0.1)
    prev, fds = fds, fd_count(child.pid)
  end
  return {rss = status_kb(child.pid, "VmRSS"), hwm = status_kb(child.pid, "VmHWM"),
          lua_kb = st.lua_kb, fds = fds, conns = st.conns, smuggled = st.smuggled}
end

local function pct(sorted, p)
  if #sorted == 0 then return 0 / 0 end
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

-- ------------------------------------------------------------ the run

describe("abuse client", function()
  -- judge(case, bytes, closed, timed_out, parse(bytes)...) -> ok, outcome, why
  local function judge(c, bytes, closed)
    local res, rest, perr = abuse.parse(bytes)
    return abuse.judge(c, bytes, closed, false, res, rest, perr)
  end
  local R400 = "HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\nConnection: close\r\n\r\n400\n"
  local R200 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

  it("accepts the expected refusal followed by a close", function()
    assert.is_true((judge({expect = {{400}}}, R400, true)))
    assert.is_true((judge({expect = {{400}}, or_close = true}, "", true)))
  end)

  it("catches a second (smuggled) response, garbage, a missing close and a wrong status", function()
    assert.is_false((judge({expect = {{400}}}, R400 .. R200, true)))
    assert.is_false((judge({expect = {{200}}, keep = true}, R200 .. R200, false)))
    assert.is_false((judge({expect = {{200}}, keep = true},
      "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED", false)))
    assert.is_false((judge({expect = {{400}}}, R400 .. "x", true)))
    assert.is_false((judge({expect = {{400}}}, R400, false)))
    assert.is_false((judge({expect = {{501}}}, R400, true)))
    assert.is_false((judge({expect = {{400}}}, "", true)))
    assert.is_false((judge({expect = {{400}}},
      "HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\n400\n", true)))
    assert.is_false((judge({expect = {}, loose = true}, "garbage\r\n\r\n", true)))
  end)
end)

describe("httpd under abuse", function()
  local child
  local rounds = {}          -- per round: {cases, report, after}
  local before, after_normal, after_failures, kinds, order

  setup(function()
    child = start_server("lifetime=300 request_timeout=2 idle_timeout=3")
  end)

  teardown(function()
    kill(child)
  end)

  it("takes thousands of malformed, oversized, slow and half-closed requests", function()
    for _ = 1, 20 do assert(fetch(child.port, "/")) end          -- warm up
    before = settle(child)
    kinds, order = {}, {}
    for round, seed in ipairs{1, 2} do
      local cases = abuse.cases{seed = seed, timeout = 6}
      local report = abuse.run(cases, {port = child.port, concurrency = 200, probe_every = 0.02, timeout = 6})
      for i, c in ipairs(cases) do
        local r = report.results[i]
        local k = kinds[c.kind]
        if not k then
          k = {n = 0, bad = 0, outcomes = {}, examples = {}}
          kinds[c.kind] = k
          order[#order + 1] = c.kind
        end
        k.n = k.n + 1
        k.outcomes[r.outcome] = (k.outcomes[r.outcome] or 0) + 1
        if not r.ok then
          k.bad = k.bad + 1
          if #k.examples < 3 then
            k.examples[#k.examples + 1] = ("%q -> %s: %s"):format(c.data:sub(1, 120), r.outcome, tostring(r.why))
          end
        end
      end
      table.sort(report.probes)
      rounds[round] = {cases = cases, report = report, after = settle(child)}
    end
    after_normal, after_failures = abuse.latencies(child.port, 200)

    -- the figures
    table.sort(order)
    local total = 0
    print()
    print(("%-22s %8s %6s  %s"):format("kind", "requests", "wrong",
      "outcomes (statuses in order, close = server closed)"))
    for _, name in ipairs(order) do
      local k = kinds[name]
      total = total + k.n
      local outs = {}
      for o, n in pairs(k.outcomes) do outs[#outs + 1] = o .. " x" .. n end
      table.sort(outs)
      print(("%-22s %8d %6d  %s"):format(name, k.n, k.bad, table.concat(outs, ", ")))
      for _, e in ipairs(k.examples) do print("    wrong: " .. e) end
    end
    print(("%-22s %8d"):format("total", total))
    for i, r in ipairs(rounds) do
      local p = r.report.probes
      print(("round %d: %d requests in %.1f s; normal GET / meanwhile: %d, p50 %.2f ms, p99 %.2f ms, " ..
             "max %.2f ms, %d failed"):format(i, #r.cases, r.report.seconds, #p, pct(p, 0.5) * 1e3,
             pct(p, 0.99) * 1e3, pct(p, 1) * 1e3, r.report.probe_failures))
    end
    print(("after: 200 normal GET / one by one: p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d failed"):format(
      pct(after_normal, 0.5) * 1e3, pct(after_normal, 0.99) * 1e3, pct(after_normal, 1) * 1e3, after_failures))
    print(("memory (after a full GC): VmRSS %.1f MB before, %.1f MB after round 1 (%+.1f), %.1f MB after round 2 " ..
           "(%+.1f over round 1); VmHWM %.1f MB; Lua heap %d kB -> %d kB -> %d kB"):format(
      before.rss / MB, rounds[1].after.rss / MB, (rounds[1].after.rss - before.rss) / MB, rounds[2].after.rss / MB,
      (rounds[2].after.rss - rounds[1].after.rss) / MB, rounds[2].after.hwm / MB, before.lua_kb,
      rounds[1].after.lua_kb, rounds[2].after.lua_kb))
    print(("descriptors: %d before, %d after round 1, %d after round 2 (server connections then: %d, " ..
           "the one asking)"):format(before.fds, rounds[1].after.fds, rounds[2].after.fds, rounds[2].after.conns))
    assert.is_true(total >= 3000, "only " .. total .. " abusive requests")
  end)

  it("answers each malformed request with the documented 4xx (or a close), one response only", function()
    local wrong = {}
    for _, name in ipairs(order) do
      if kinds[name].bad > 0 then wrong[#wrong + 1] = name .. ": " .. kinds[name].examples[1] end
    end
    assert.same({}, wrong)
  end)

  it("never serves a request hidden where a correct parser does not look", function()
    assert.equal(0, rounds[2].after.smuggled)
  end)

  it("keeps answering normal requests quickly", function()
    for i, r in ipairs(rounds) do
      local p = r.report.probes
      assert.equal(0, r.report.probe_failures, "round " .. i)
      assert.is_true(#p >= 20, "round " .. i .. ": only " .. #p .. " probes")
      assert.is_true(pct(p, 0.5) < 0.02, ("round %d: median %.1f ms"):format(i, pct(p, 0.5) * 1e3))
      assert.is_true(pct(p, 1) < 0.5, ("round %d: slowest %.1f ms"):format(i, pct(p, 1) * 1e3))
    end
    assert.equal(0, after_failures)
    assert.is_true(pct(after_normal, 0.99) < 0.02, ("after: p99 %.1f ms"):format(pct(after_normal, 0.99) * 1e3))
  end)

  it("keeps memory bounded", function()
    local r1, r2 = rounds[1].after, rounds[2].after
    -- the Lua heap after a full collection: what the loop keeps is bounded
    -- (status lines, the 1000-name header cache)
    assert.is_true(r2.lua_kb - before.lua_kb < 512, "Lua heap grew by " .. (r2.lua_kb - before.lua_kb) .. " kB")
    -- RSS: the first round leaves glibc's freed-but-kept heap (a few MB that
    -- malloc_trim gives back); a second round must not add to it
    assert.is_true(r1.rss - before.rss < 16 * MB, "RSS grew by " .. (r1.rss - before.rss) .. " kB")
    assert.is_true(r2.rss - r1.rss < 6 * MB, "RSS grew by " .. (r2.rss - r1.rss) .. " kB in round 2")
    assert.is_true(r2.hwm < 64 * MB, "VmHWM " .. r2.hwm .. " kB")
  end)

  it("leaks no descriptor", function()
    assert.equal(1, rounds[2].after.conns)
    assert.equal(before.fds, rounds[1].after.fds)
    assert.equal(before.fds, rounds[2].after.fds)
  end)
end)

-- ------------------------------------------------------------ bare LF

-- The loop documents "bare CR/LF ... (400)". A request whose lines all end in
-- a bare LF (or a head ending "\n\n") never shows the CRLF the loop waits
-- for: before bad_eol() it was held until request_timeout and answered 408
-- (or 414 once 8 KB had come). It must be refused at once.
describe("httpd bare-LF requests", function()
  local child
  setup(function() child = start_server("lifetime=60 request_timeout=2") end)
  teardown(function() kill(child) end)

  for _, raw in ipairs{"GET / HTTP/1.1\nHost: x\n\n", "GET / HTTP/1.1\r\nHost: x\n\n",
                       "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\n\r\n", "GET / HTTP/1.1\rHost: x\r\r"} do
    it(("refuses %q at once with 400"):format(raw), function()
      local s = assert(socket.connect("127.0.0.1", child.port))
      s:settimeout(1)
      local t0 = socket.gettime()
      assert(s:send(raw))
      local line, err = s:receive("*l")
      s:close()
      assert.equal("HTTP/1.1 400 Bad Request", line,
        ("got %s after %.1f s"):format(line and ("%q"):format(line) or tostring(err), socket.gettime() - t0))
    end)
  end
end)
