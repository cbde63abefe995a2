-- bench/http.lua -- signed GETs per second against a local keep-alive server
-- (bench/support/fastserver.c, one thread, on the other CPU), side by side in
-- one run:
--   (a) our session: api:get("/api/v2!authuser") + res:json() in a loop
--   (b) python3-requests + requests-oauthlib (one Session, OAuth1 auth), the same
--   (c) the curl command line fetching the same URL N times in one process
--       (a config file of N urls: connection reuse, no signing) -- the floor
--   (d) wrk -c1, when installed: a bare C client, no signing -- what the
--       placement (loopback between the two CPUs) allows at all; no target
-- The contenders take turns in ROUNDS rounds so that load from elsewhere on
-- the machine falls on all of them alike; rates are totals over the rounds.
-- Columns: client CPU per GET (user + system as the kernel accounts it:
-- our process; python's own loop; curl/wrk as reaped children -- network
-- work done in softirq context is in none of them) and how busy the server
-- was (it must stay far from 100%).
-- Targets: (a) >= 5x (b); (c)/(a) <= 1.3. Exits 0 even when a target is
-- missed (MISSED), 1 when it could not run.
-- BENCH_PLACEMENT=same puts the server on the client's CPU (see harness.lua).
-- usage: lua5.4 bench/http.lua [seconds-per-contender [rounds]]
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local H = require "support.harness"
local record = require("record").record

local SECONDS = tonumber(arg[1]) or 3
local ROUNDS = math.tointeger(tonumber(arg[2]) or 3)
local SLICE = SECONDS / ROUNDS
local PATH = "/api/v2!authuser"

H.main(function()
  H.pin_self()
  local srv = H.server()
  local url = srv.origin .. PATH
  local dir = H.tmpdir()
  local has_wrk = os.execute("command -v wrk >/dev/null 2>&1") == true

  local client = smugoauth.new { key = "ck-bench-consumer-key", secret = "cs-bench-consumer-secret",
                                 api_origin = srv.origin, retry = false }
  local api = client:session("tk-bench-access-token", "ts-bench-access-token-secret")
  H.on_cleanup(function() api:close() end)
  for _ = 1, 200 do assert(assert(api:get(PATH)):json().Response) end     -- connect, warm up

  -- each contender: function() -> requests done, wall seconds, client CPU seconds
  local contenders = {}

  contenders[1] = { name = "(a) smugoauth session api:get + json()", run = function()
    local n, c0, t0 = 0, H.cpu_times(), H.now()
    local t1
    repeat
      for _ = 1, 50 do
        local res, err = api:get(PATH)
        if not res then error(tostring(err)) end
        res:json()
      end
      n = n + 50
      t1 = H.now()
    until t1 - t0 >= SLICE
    return n, t1 - t0, H.cpu_times() - c0
  end }

  contenders[2] = { name = "(b) python3-requests-oauthlib Session.get", run = function()
    local out = H.run(("%s bench/support/requests_oauth.py %s %s"):format(H.PYTHON, H.q(url), SLICE))
    local n, secs, status, cpu = out:match("(%d+)%s+([%d.]+)%s+(%d+)%s+([%d.]+)")
    if not n or status ~= "200" then error("requests-oauthlib run failed:\n" .. out) end
    return tonumber(n), tonumber(secs), tonumber(cpu)
  end }

  -- curl: N urls sized from the previous round's rate (first: a probe) to last ~SLICE
  local curl_rate
  local function curl_run(count)
    local cfg = dir .. "/curl.cfg"
    local f = assert(io.open(cfg, "w"))
    f:write('header = "Accept: application/json"\n')
    local line = ('url = "%s"\n'):format(url)
    for _ = 1, count do f:write(line) end
    f:close()
    local _, k0 = H.cpu_times()
    local t0 = H.now()
    H.run("curl -s -K " .. H.q(cfg) .. " >/dev/null")
    local secs = H.now() - t0
    local _, k1 = H.cpu_times()
    return count, secs, k1 - k0
  end
  contenders[3] = { name = "(c) curl CLI, one process, no signing", run = function()
    if not curl_rate then
      local n, secs = curl_run(500)
      curl_rate = n / secs
    end
    local n, secs, cpu = curl_run(math.max(500, math.min(1000000, math.floor(curl_rate * SLICE))))
    curl_rate = n / secs
    return n, secs, cpu
  end }

  if has_wrk then
    contenders[4] = { name = "(d) wrk -t1 -c1, bare C client (placement floor)", info = true, run = function()
      local _, k0 = H.cpu_times()
      local out = H.run(("wrk -t1 -c1 -d%.0fs %s"):format(math.max(1, SLICE), H.q(url)))
      local _, k1 = H.cpu_times()
      local n, secs = out:match("(%d+) requests in ([%d.]+)s")
      if not n then error("wrk run failed:\n" .. out) end
      return tonumber(n), tonumber(secs), k1 - k0
    end }
  end

  H.watch_machine(srv)
  for _, c in ipairs(contenders) do c.n, c.secs, c.cpu, c.srv, c.conns, c.rates = 0, 0, 0, 0, 0, {} end
  for _ = 1, ROUNDS do
    for _, c in ipairs(contenders) do
      local s0, srv0 = srv:stats(), H.cpu_times(srv.pid)
      local n, secs, cpu = c.run()
      local s1, srv1 = srv:stats(), H.cpu_times(srv.pid)
      if s1.requests - s0.requests < n then error(c.name .. ": the server did not see every request") end
      c.n, c.secs, c.cpu = c.n + n, c.secs + secs, c.cpu + cpu
      c.srv, c.conns = c.srv + (srv1 - srv0), c.conns + (s1.connections - s0.connections)
      c.rates[#c.rates + 1] = n / secs
    end
  end

  print(("signed GET %s, %s, %g s per contender in %d rounds"):format(PATH, H.layout(), SECONDS, ROUNDS))
  print(("%-50s %8s %8s %13s %9s %7s %6s"):format("contender", "GET/s", "us/GET", "rounds min-max",
    "cpu us/GET", "server", "conns"))
  for _, c in ipairs(contenders) do
    local lo, hi = math.huge, 0
    for _, r in ipairs(c.rates) do lo, hi = math.min(lo, r), math.max(hi, r) end
    c.rate = c.n / c.secs
    print(("%-50s %8.0f %8.1f %6.0f-%-6.0f %9.1f %6.0f%% %6d"):format(c.name, c.rate, 1e6 / c.rate, lo, hi,
      c.cpu / c.n * 1e6, c.srv / c.secs * 100, c.conns))
  end
  local a, b, c = contenders[1].rate, contenders[2].rate, contenders[3].rate
  local r1, r2 = H.round2(a / b), H.round2(c / a)       -- judged as printed
  print(("ratio (a)/(b): %5.2fx  (target >= 5x)    %s"):format(r1, H.verdict(r1 >= 5)))
  print(("ratio (c)/(a): %5.2fx  (target <= 1.3x)  %s"):format(r2, H.verdict(r2 <= 1.3)))
  local where = H.placement == "same" and "one CPU"
    or (H.placement == "split" and "client/server on 2 CPUs" or "free")
  record { bench = "http", what = "signed GETs/s (keep-alive, loopback, " .. where .. ")", ours = a, alt = b,
           alt_name = "python3-requests-oauthlib", floor = c, floor_name = "curl CLI, no signing",
           ratio = r1, ratio_desc = "ours/requests-oauthlib", target = ">= 5", ok = r1 >= 5 }
  record { bench = "http", what = "curl CLI/ours (GETs/s, " .. where .. ")", ours = a, floor = c,
           floor_name = "curl CLI, no signing",
           ratio = r2, ratio_desc = "curl/ours", target = "<= 1.3", ok = r2 <= 1.3 }
  print(H.machine_note())
end)
