-- bench/support/loop_gets.lua -- for bench/loop.lua: COUNT signed GETs to
-- ORIGIN through tasks of smugoauth's loop, at most CONC at a time, in a
-- process of its own (so its peak memory is its own):
--   limit   smugoauth.run + smugoauth.limit(CONC):spawn per GET
--   map     smugoauth.map(paths, fn, {concurrency = CONC})
-- One GET first, outside the clock (loads everything, resolves the origin).
-- Prints one line:
--   RESULT secs=<wall> ok=<answers 200> errors=<others> hwm_kb=<VmHWM> cpu=<s>
--   [first_error=<text>]
-- usage: lua5.4 bench/support/loop_gets.lua ORIGIN COUNT CONC limit|map
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"

local origin, count, conc, mode = arg[1], math.tointeger(tonumber(arg[2])), math.tointeger(tonumber(arg[3])), arg[4]
if not origin or not count or not conc or (mode ~= "limit" and mode ~= "map") then
  io.stderr:write("usage: loop_gets.lua ORIGIN COUNT CONC limit|map\n")
  os.exit(2)
end

local function status_kb(name)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(name .. ":%s*(%d+) kB"))
end

-- the session a script would make: a real access token and secret, signed
-- per request (HMAC-SHA1), retries on (none happen here)
local client = smugoauth.new { key = "ck-bench-consumer-key", secret = "cs-bench-consumer-secret",
                               api_origin = origin }
local api = client:session("tk-bench-access-token", "ts-bench-access-token-secret")
local paths = {}
for i = 1, count do paths[i] = ("/api/v2/album/bench%d!images"):format(i) end
assert(smugoauth.run(function() return api:get(paths[1]) end))

local ok, errs, first = 0, 0, nil
local function tally(res, err)
  if res and res.status == 200 then ok = ok + 1
  else
    errs = errs + 1
    first = first or tostring(err or res)
  end
end

local c0 = os.clock()
local t0 = core.monotime()
if mode == "limit" then
  smugoauth.run(function()
    local lim = smugoauth.limit(conc)
    local tasks = {}
    for i = 1, count do
      tasks[i] = lim:spawn(function() tally(api:get(paths[i])) end)
    end
    for i = 1, count do tasks[i]:join() end
  end)
else
  smugoauth.run(function()
    local results = smugoauth.map(paths, function(p) return (api:get(p)) end, { concurrency = conc })
    for i = 1, count do tally(results[i]) end
  end)
end
local secs = core.monotime() - t0
local cpu = os.clock() - c0
io.stdout:write(("RESULT secs=%.6f ok=%d errors=%d hwm_kb=%d cpu=%.3f%s\n"):format(secs, ok, errs,
  status_kb("VmHWM"), cpu, first and (" first_error=" .. first:gsub("%s+", " ")) or ""))
api:close()
