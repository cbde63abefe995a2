-- bench/many.lua -- COUNT GETs to a local endpoint that answers each request
-- DELAY ms after reading it (bench/support/fastserver.c --delay-ms, epoll
-- timers, any number of connections waiting at once, on the other CPU):
-- sequential api:get x COUNT against api:get_many(paths, {concurrency = 8}),
-- in one run. The ideal for get_many is ceil(COUNT / 8) waves of DELAY.
-- Target: get_many at least 6x faster than the loop. Exits 0 even when the
-- target is missed (MISSED), 1 when it could not run.
-- usage: lua5.4 bench/many.lua [count [delay-ms]]
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local errors = require "smugoauth.errors"
local H = require "support.harness"
local record = require("record").record

local COUNT = math.tointeger(tonumber(arg[1]) or 100)
local DELAY = tonumber(arg[2]) or 50
local CONC = 8

H.main(function()
  H.pin_self()
  local srv = H.server { delay_ms = DELAY }
  local client = smugoauth.new { key = "ck-bench-consumer-key", secret = "cs-bench-consumer-secret",
                                 api_origin = srv.origin, retry = false }
  local api = client:session("tk-bench-access-token", "ts-bench-access-token-secret")
  H.on_cleanup(function() api:close() end)

  local paths = {}
  for i = 1, COUNT do paths[i] = ("/api/v2/album/bench%d!images"):format(i) end
  local function check(res, err)
    if not res or errors.is(res) or res.status ~= 200 then error(tostring(err or res)) end
  end
  -- connect both ways once, outside the clock (the loop's easy handle and the multi handle's pool)
  check(api:get(paths[1]))
  local warm = {}
  for i = 1, CONC do warm[i] = paths[i] end
  for _, r in ipairs(api:get_many(warm, { concurrency = CONC })) do check(r) end

  H.watch_machine(srv)
  local s0 = srv:stats()
  local t0 = H.now()
  for i = 1, COUNT do check(api:get(paths[i])) end
  local seq = H.now() - t0
  local s1 = srv:stats()

  t0 = H.now()
  local results = api:get_many(paths, { concurrency = CONC })
  local many = H.now() - t0
  local s2 = srv:stats()
  for i = 1, COUNT do check(results[i]) end
  if s1.requests - s0.requests ~= COUNT or s2.requests - s1.requests ~= COUNT then
    error("the server did not see every request")
  end

  local waves = (COUNT + CONC - 1) // CONC
  local ideal_ratio = (COUNT * DELAY) / (waves * DELAY)
  print(("%d GETs, each answered %g ms after it arrives, %s"):format(COUNT, DELAY, H.layout()))
  print(("%-44s %9s %10s %6s"):format("", "total ms", "ms/GET", "conns"))
  print(("%-44s %9.1f %10.2f %6d"):format("sequential api:get x" .. COUNT, seq * 1e3, seq * 1e3 / COUNT,
    s1.connections - s0.connections))
  print(("%-44s %9.1f %10.2f %6d"):format(("api:get_many(paths, {concurrency = %d})"):format(CONC),
    many * 1e3, many * 1e3 / COUNT, s2.connections - s1.connections))
  print(("%-44s %9.1f %10s"):format(("ideal: %d waves of %g ms"):format(waves, DELAY), waves * DELAY, ""))
  local r = H.round2(seq / many)                       -- judged as printed
  print(("ratio sequential/get_many: %.2fx (target >= 6x; ideal %.2fx)  %s"):format(r, ideal_ratio,
    H.verdict(r >= 6)))
  record { bench = "many", what = ("%d GETs answered after %g ms: ms"):format(COUNT, DELAY), ours = many * 1e3,
           alt = seq * 1e3, alt_name = "sequential api:get", floor = waves * DELAY,
           floor_name = ("%d waves of %g ms"):format(waves, DELAY), ratio = r,
           ratio_desc = "sequential/get_many", target = ">= 6", ok = r >= 6 }
  print(H.machine_note())
end)
