-- bench/web.lua -- the web example's `/` page (the "Authorize" page of a
-- browser without a session cookie), side by side in one run:
--   ours:   smugoauth.webapp served by smugoauth.httpd (bench/support/web_server.lua)
--   bottle: SmugMug's web.py stack, Debian's python3-bottle with its default
--           server (wsgiref, one thread: bench/support/bottle_app.py), same
--           HTML bytes and the same headers (it adds Server, answers HTTP/1.0
--           and closes every connection: wsgiref has no keep-alive)
-- both on the server CPU, measured by wrk (-t1, 32 connections by default) on
-- the client CPU, loopback:
--   (1) keep-alive requests/s and p99 latency
--   (2) `Connection: close` requests/s (wrk -H 'Connection: close')
--   (3) requests/s (keep-alive) while 1000 slow clients hold connections
--       (spec/support/httpd_clients.lua mode=slow: a never-ending request
--       head, one byte per connection every 0.5 s), and the peak memory
--       (VmHWM, reset before the run) of our server meanwhile
-- (1) and (2) alternate between the two servers over ROUNDS rounds so that
-- load from elsewhere on the machine falls on both alike; figures are totals
-- over the rounds, with the spread of the per-round rates.
-- Targets: (1) ours >= 8x bottle, ours p99 < 10 ms; (3) ours >= 5,000 req/s
-- with no errors and VmHWM < 32 MB. bottle's figures under (3) are reported
-- as they come: its one thread is taken by the first slow client and its
-- accept queue (backlog 5) fills, so wrk cannot even connect ("blocked").
-- The last line says how busy other processes kept the machine meanwhile.
-- Exits 0 even when a target is missed (MISSED), 1 when it could not run.
-- usage: lua5.4 bench/web.lua [seconds-per-measure [rounds [connections]]]
--   BENCH_WEB_GC=generational|pause=N runs our server with that collector
--   setting (for profiling; the default is Lua's own).
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local socket = require "socket"
local H = require "support.harness"
local record = require("record").record

local SECONDS = tonumber(arg[1]) or 10
local ROUNDS = math.tointeger(tonumber(arg[2]) or 5)
local CONNS = math.tointeger(tonumber(arg[3]) or 32)
local SLOW = 1000
local SLICE = math.max(1, math.floor(SECONDS / ROUNDS + 0.5))

-- The wrk script: one machine-readable line at the end.
local WRK_SCRIPT = [[
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d status=%d timeout=%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
]]

-- Start a server command on the server CPU; returns {pid, port, proc}.
local function start(name, cmd)
  if H.pinned then cmd = "taskset -c " .. H.SERVER_CPU .. " " .. cmd end
  local proc = assert(io.popen("exec sh -c " .. H.q("echo $$; ulimit -n 8192 2>/dev/null; exec " .. cmd), "r"))
  local pid = math.tointeger(tonumber(proc:read("l")))
  local port = tonumber(((proc:read("l") or ""):match("^PORT (%d+)")))
  local self = {name = name, pid = pid, port = port, proc = proc}
  H.on_cleanup(function()
    if self.pid then os.execute("kill " .. self.pid .. " 2>/dev/null") end
    self.pid = nil
    proc:close()
  end)
  if not pid or not port then error(name .. " did not start: " .. cmd) end
  -- wait until it accepts (the bottle script prints its port before binding it)
  local deadline = H.now() + 10
  while true do
    local s = socket.connect("127.0.0.1", port)
    if s then s:close() break end
    if H.now() > deadline then error(name .. " does not accept on port " .. port) end
    socket.sleep(0.05)
  end
  self.host = "127.0.0.1:" .. port   -- the webapp answers only its own origin
  return self
end

-- GET / once: status, headers (array of "name: value"), body.
local function fetch(srv)
  local s = assert(socket.connect("127.0.0.1", srv.port))
  s:settimeout(5)
  assert(s:send("GET / HTTP/1.1\r\nHost: " .. srv.host .. "\r\nConnection: close\r\n\r\n"))
  local raw = assert(s:receive("*a"))
  s:close()
  local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
  local lines = {}
  for l in head:gmatch("[^\r\n]+") do lines[#lines + 1] = l end
  local status = tonumber(lines[1]:match("^HTTP/1%.%d (%d+)"))
  table.remove(lines, 1)
  return status, lines, body
end

-- CPU seconds (user + system) a process has used.
local CLK_TCK = tonumber((H.run("getconf CLK_TCK"):match("%d+"))) or 100
local function cpu_of(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  local t = {}
  for w in s:match("%) (.*)$"):gmatch("%S+") do t[#t + 1] = w end
  -- after "(comm) ": state is t[1], utime t[12], stime t[13]
  return (tonumber(t[12]) + tonumber(t[13])) / CLK_TCK
end

-- CPU seconds of this process and the children it has reaped (wrk, the slow
-- clients: everything it started and waited for).
local function own_cpu()
  local f = assert(io.open("/proc/self/stat"))
  local s = f:read("a")
  f:close()
  local t = {}
  for w in s:match("%) (.*)$"):gmatch("%S+") do t[#t + 1] = w end
  return (tonumber(t[12]) + tonumber(t[13]) + tonumber(t[14]) + tonumber(t[15])) / CLK_TCK
end

-- busy and total CPU seconds of the machine (/proc/stat).
local function machine()
  local f = assert(io.open("/proc/stat"))
  local line = f:read("l")
  f:close()
  local v = {}
  for n in line:gmatch("%d+") do v[#v + 1] = tonumber(n) end
  -- user nice system idle iowait irq softirq steal
  return (v[1] + v[2] + v[3] + v[6] + v[7]) / CLK_TCK,
         (v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7] + v[8]) / CLK_TCK, v[8] / CLK_TCK
end

-- wrk against srv for secs (killed 5 s later if it is still there: it
-- blocks in connect() when the server's accept queue is full); returns a
-- table of figures, with blocked = true (and no requests) when wrk could not
-- even connect.
local function wrk(srv, secs, conns, extra, script)
  local cmd = ("timeout -s KILL %d wrk -t1 -c%d -d%ds --timeout 2s -s %s -H %s %s http://127.0.0.1:%d/ 2>&1")
    :format(secs + 5, conns, secs, H.q(script), H.q("Host: " .. srv.host), extra or "", srv.port)
  local c0 = cpu_of(srv.pid)
  local t0 = H.now()
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  local c1 = cpu_of(srv.pid)
  local line = out:match("RESULT ([^\n]+)")
  if not line then
    if ok or (code ~= 137 and not out:find("unable to connect", 1, true)) then
      error("wrk run failed (" .. tostring(code) .. "): " .. cmd .. "\n" .. out)
    end
    return {blocked = true, requests = 0, secs = H.now() - t0, errors = 0, connect = 0, read = 0, write = 0,
            status = 0, timeout = 0, p50_us = 0, p99_us = 0, server_cpu = c1 - c0,
            why = out:match("unable to connect[^\n]*") or "wrk still waiting to connect after " .. (secs + 5) .. " s"}
  end
  local r = {}
  for k, v in line:gmatch("([%w_]+)=(%d+)") do r[k] = tonumber(v) end
  r.secs = r.duration_us / 1e6
  r.errors = r.connect + r.read + r.write + r.status + r.timeout
  r.server_cpu = c1 - c0
  return r
end

-- A field of /proc/PID/status, in kB (VmHWM, VmRSS).
local function status_kb(pid, field)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+) kB"))
end

-- Established connections the server at port holds.
local function held(port)
  local out = H.run(("ss -Htn state established '( sport = :%d )' | wc -l"):format(port))
  return tonumber(out:match("%d+"))
end

-- Start SLOW slow clients against srv (on the client CPU, like us); returns
-- the child and how many connections it opened.
local function slow_clients(srv)
  local cmd = ("ulimit -n 8192 2>/dev/null; exec lua5.4 spec/support/httpd_clients.lua port=%d count=%d " ..
               "mode=slow interval=0.5 lifetime=%d 2>/dev/null"):format(srv.port, SLOW, SECONDS + 60)
  local proc = assert(io.popen("exec sh -c " .. H.q("echo $$; " .. cmd), "r"))
  local child = {pid = math.tointeger(tonumber(proc:read("l"))), proc = proc}
  function child.stop()
    if child.pid then os.execute("kill " .. child.pid .. " 2>/dev/null") end
    child.pid = nil
    proc:close()
  end
  H.on_cleanup(child.stop)
  child.ready = tonumber(((proc:read("l") or ""):match("^READY (%d+)"))) or 0
  return child
end

local function fmt_rate(r) return ("%.0f"):format(r) end
local function ms(us) return ("%.2f"):format(us / 1000) end

H.main(function()
  if os.execute("command -v wrk >/dev/null 2>&1") ~= true then error("wrk is not installed") end
  if os.execute(H.PYTHON .. " -c 'import bottle' 2>/dev/null") ~= true then
    error("python3-bottle is not installed")
  end
  H.pin_self()
  local dir = H.tmpdir()
  local script = dir .. "/report.lua"
  local f = assert(io.open(script, "w"))
  f:write(WRK_SCRIPT)
  f:close()

  local gc = os.getenv("BENCH_WEB_GC")              -- profiling only: generational | pause=N
  local ours = start("ours", "lua5.4 bench/support/web_server.lua " .. (SECONDS * 4 + 300) ..
                     (gc and gc ~= "" and " " .. H.q(gc) or ""))
  local bottle = start("bottle", H.PYTHON .. " bench/support/bottle_app.py " .. (SECONDS * 4 + 300))

  -- the same page from both
  local s1, h1, b1 = fetch(ours)
  local s2, h2, b2 = fetch(bottle)
  if s1 ~= 200 or s2 ~= 200 then error(("GET / answered %s (ours) and %s (bottle)"):format(s1, s2)) end
  if b1 ~= b2 then error("the two pages differ:\n" .. b1 .. "\n---\n" .. b2) end
  local names1, names2 = {}, {}
  for _, l in ipairs(h1) do names1[#names1 + 1] = l:match("^[^:]+") end
  for _, l in ipairs(h2) do names2[#names2 + 1] = l:match("^[^:]+") end
  table.sort(names1)
  table.sort(names2)
  for _ = 1, 200 do fetch(ours) fetch(bottle) end                      -- warm up

  local busy0, total0, steal0 = machine()
  local mine0 = own_cpu() + cpu_of(ours.pid) + cpu_of(bottle.pid)
  local scen = {
    {key = "ka", name = "keep-alive", extra = ""},
    {key = "close", name = "Connection: close", extra = "-H 'Connection: close'"},
  }
  local res = {}
  for _, sc in ipairs(scen) do
    for _, srv in ipairs{ours, bottle} do
      res[sc.key .. srv.name] = {requests = 0, secs = 0, errors = 0, p99 = {}, p50 = {}, rates = {}, cpu = 0}
    end
  end
  for _ = 1, ROUNDS do
    for _, sc in ipairs(scen) do
      for _, srv in ipairs{ours, bottle} do
        local r = wrk(srv, SLICE, CONNS, sc.extra, script)
        local t = res[sc.key .. srv.name]
        t.requests, t.secs, t.errors = t.requests + r.requests, t.secs + r.secs, t.errors + r.errors
        t.cpu = t.cpu + r.server_cpu
        t.p99[#t.p99 + 1], t.p50[#t.p50 + 1] = r.p99_us, r.p50_us
        t.rates[#t.rates + 1] = r.requests / r.secs
      end
    end
  end
  for _, t in pairs(res) do
    t.rate = t.requests / t.secs
    t.p99m, t.p50m = H.median(t.p99), H.median(t.p50)
    t.lo, t.hi = math.huge, 0
    for _, x in ipairs(t.rates) do t.lo, t.hi = math.min(t.lo, x), math.max(t.hi, x) end
  end

  -- (3) slow clients: ours first (its peak memory from here on), then bottle
  local slow = {}
  for _, srv in ipairs{ours, bottle} do
    if srv == ours then
      local cf = io.open("/proc/" .. ours.pid .. "/clear_refs", "w")   -- reset VmHWM to VmRSS
      if cf then cf:write("5") cf:close() end
    end
    local rss0 = status_kb(srv.pid, "VmRSS")
    local clients = slow_clients(srv)
    socket.sleep(1)
    local holding = held(srv.port)
    local r = wrk(srv, SECONDS, CONNS, "", script)
    r.holding, r.opened = holding, clients.ready
    r.hwm, r.rss0 = status_kb(srv.pid, "VmHWM"), rss0
    clients.stop()
    r.rate = r.requests / r.secs
    slow[srv.name] = r
  end

  -- the table
  local function pr(...) print(string.format(...)) end
  pr("GET / of the web example (%d-byte page), %s; wrk -t1 -c%d, %d x %d s per figure",
     #b1, H.layout(), CONNS, ROUNDS, SLICE)
  pr("headers: ours %s", table.concat(names1, ", "))
  pr("         bottle %s (%s)", table.concat(names2, ", "), "HTTP/1.0, wsgiref")
  pr("")
  pr("%-34s %10s %15s %9s %9s %7s %8s", "figure", "req/s", "rounds min-max", "p50 ms", "p99 ms", "errors", "srv CPU")
  local rows = {
    {"(1) keep-alive, ours", res.kaours}, {"(1) keep-alive, bottle", res.kabottle},
    {"(2) Connection: close, ours", res.closeours}, {"(2) Connection: close, bottle", res.closebottle},
  }
  for _, row in ipairs(rows) do
    local t = row[2]
    pr("%-34s %10s %7.0f-%-7.0f %9s %9s %7d %7.0f%%", row[1], fmt_rate(t.rate), t.lo, t.hi, ms(t.p50m), ms(t.p99m),
       t.errors, t.cpu / t.secs * 100)
  end
  for _, name in ipairs{"ours", "bottle"} do
    local r = slow[name]
    pr("%-34s %10s %15s %9s %9s %7s %7.0f%%", "(3) " .. SLOW .. " slow clients, " .. name, fmt_rate(r.rate), "",
       r.requests > 0 and ms(r.p50_us) or "-", r.requests > 0 and ms(r.p99_us) or "-",
       r.blocked and "blocked" or tostring(r.errors), r.server_cpu / r.secs * 100)
  end
  for _, name in ipairs{"ours", "bottle"} do
    local r = slow[name]
    pr("    %s under (3): slow clients opened %d, server held %d connections; %s", name, r.opened, r.holding,
       r.blocked and "wrk served nothing: " .. r.why or ("wrk errors: connect %d, read %d, write %d, status %d, " ..
       "timeout %d"):format(r.connect, r.read, r.write, r.status, r.timeout))
  end
  pr("    ours under (3): VmHWM %.1f MB (VmRSS %.1f MB before the slow clients)", slow.ours.hwm / 1024,
     slow.ours.rss0 / 1024)
  pr("")

  local ka_ratio = H.round2(res.kaours.rate / res.kabottle.rate)
  local close_ratio = H.round2(res.closeours.rate / res.closebottle.rate)
  local p99 = res.kaours.p99m / 1000
  local so = slow.ours
  local checks = {
    {"keep-alive req/s, ours/bottle", ("%.2fx"):format(ka_ratio), ">= 8x", ka_ratio >= 8},
    {"keep-alive p99, ours (median of rounds)", ("%.2f ms"):format(p99), "< 10 ms", p99 < 10},
    {"Connection: close req/s, ours/bottle", ("%.2fx"):format(close_ratio), "(no target)", nil},
    {"req/s under 1000 slow clients, ours", fmt_rate(so.rate), ">= 5000", so.rate >= 5000},
    {"errors under 1000 slow clients, ours", so.blocked and "could not connect" or tostring(so.errors), "0",
     not so.blocked and so.errors == 0},
    {"slow clients held by ours", tostring(so.holding), ">= 1000", so.holding >= SLOW},
    {"VmHWM under 1000 slow clients, ours", ("%.1f MB"):format(so.hwm / 1024), "< 32 MB", so.hwm < 32 * 1024},
    {"req/s under 1000 slow clients, ours/bottle",
     slow.bottle.rate > 0 and ("%.1fx"):format(so.rate / slow.bottle.rate) or "bottle served none",
     "(no target)", nil},
  }
  pr("%-44s %20s %12s  %s", "check", "figure", "target", "")
  for _, c in ipairs(checks) do
    pr("%-44s %20s %12s  %s", c[1], c[2], c[3], c[4] == nil and "" or H.verdict(c[4]))
  end
  local busy1, total1, steal1 = machine()
  local others = (busy1 - busy0) - (own_cpu() + cpu_of(ours.pid) + cpu_of(bottle.pid) - mine0)
  local share = math.max(0, others) / (total1 - total0)
  pr("machine: other processes kept the %d CPUs %.0f%% busy during the run, steal %.0f%%%s", H.ncpu, share * 100,
     (steal1 - steal0) / (total1 - total0) * 100,
     share > 0.05 and " -- figures are noisy; rerun on a quiet machine" or "")

  record { bench = "web", what = "GET / req/s, keep-alive (wrk -c" .. CONNS .. ")", ours = res.kaours.rate,
           alt = res.kabottle.rate, alt_name = "python3-bottle (wsgiref)", ratio = ka_ratio,
           ratio_desc = "ours/bottle", target = ">= 8", ok = ka_ratio >= 8 }
  record { bench = "web", what = "GET / p99 ms, keep-alive (wrk -c" .. CONNS .. ")", ours = p99,
           alt = res.kabottle.p99m / 1000, alt_name = "python3-bottle (wsgiref)", target = "< 10", ok = p99 < 10 }
  record { bench = "web", what = "GET / req/s, Connection: close", ours = res.closeours.rate,
           alt = res.closebottle.rate, alt_name = "python3-bottle (wsgiref)", ratio = close_ratio,
           ratio_desc = "ours/bottle" }
  record { bench = "web", what = "GET / req/s under 1000 slow clients", ours = so.rate, alt = slow.bottle.rate,
           alt_name = "python3-bottle (wsgiref)", target = ">= 5000, 0 errors",
           ok = so.rate >= 5000 and so.errors == 0 }
  record { bench = "web", what = "server VmHWM MB under 1000 slow clients", ours = so.hwm / 1024,
           target = "< 32", ok = so.hwm < 32 * 1024 }
end)
