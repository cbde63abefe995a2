-- bench/support/loop_memory.lua -- for bench/loop.lua: what waiting costs
-- on smugoauth's loop, in a process of its own.
--   idle N           N tasks that have started and sleep (smugoauth.sleep):
--                    the Lua heap and RSS they add, then all cancelled
--   inflight ORIGIN N  N signed GETs in flight at once, each in its task,
--                    against a provider that holds every answer (the caller
--                    starts it with --delay-ms 2000): the RSS they add once
--                    the provider has seen all N, then all answered
-- Prints one line:
--   RESULT n=<N> heap_kb=<added> rss_kb=<added> secs=<wall> ok=<done> [seen=<requests the provider saw>]
-- usage: lua5.4 bench/support/loop_memory.lua idle N
--        lua5.4 bench/support/loop_memory.lua inflight ORIGIN N
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"

local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+) kB"))
end

local function heap_kb()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count")
end

local function usage()
  io.stderr:write("usage: loop_memory.lua idle N | inflight ORIGIN N\n")
  os.exit(2)
end

local mode = arg[1]
local loop = assert(smugoauth.loop())

if mode == "idle" then
  local n = math.tointeger(tonumber(arg[2])) or usage()
  local sleeper = function() smugoauth.sleep(3600) end
  -- a few first, so that what loading and first use allocate is not counted
  local warm = {}
  for i = 1, 10 do warm[i] = loop:spawn(sleeper) end
  assert(loop:step(0))
  for i = 1, 10 do warm[i]:cancel() end
  assert(loop:step(0))
  local h0, r0 = heap_kb(), rss_kb()
  local t0 = core.monotime()
  local tasks = {}
  for i = 1, n do tasks[i] = loop:spawn(sleeper) end
  assert(loop:step(0))                     -- every task runs up to its sleep
  local h1, r1 = heap_kb(), rss_kb()
  for i = 1, n do tasks[i]:cancel() end
  loop:run()
  local done = 0
  for i = 1, n do if tasks[i]:status() == "ok" then done = done + 1 end end
  io.stdout:write(("RESULT n=%d heap_kb=%.1f rss_kb=%d secs=%.3f ok=%d\n"):format(n, h1 - h0, r1 - r0,
    core.monotime() - t0, done))
elseif mode == "inflight" then
  local origin, n = arg[2], math.tointeger(tonumber(arg[3]))
  if not origin or not n then usage() end
  local client = smugoauth.new { key = "ck-bench-consumer-key", secret = "cs-bench-consumer-secret",
                                 api_origin = origin, timeout = 60 }
  local api = client:session("tk-bench-access-token", "ts-bench-access-token-secret")
  local stats = core.http_new { timeout = 10 }
  local function seen()
    local res = assert(stats:request { method = "GET", url = origin .. "/_stats" })
    return tonumber(res.body:match('"requests":(%d+)'))
  end
  -- one GET on this loop first: loads and warms what every transfer uses
  assert(loop:call(function() return api:get("/api/v2!authuser") end))
  local base = seen()
  local h0, r0 = heap_kb(), rss_kb()
  local t0 = core.monotime()
  local ok = 0
  for i = 1, n do
    loop:spawn(function()
      local res = api:get(("/api/v2/album/held%d!images"):format(i))
      if res and res.status == 200 then ok = ok + 1 end
    end)
  end
  -- step until the provider holds all n (or 20 s), then measure
  local deadline = core.monotime() + 20
  local held = 0
  while core.monotime() < deadline do
    assert(loop:step(0.05))
    held = seen() - base
    if held >= n then break end
  end
  local h1, r1 = heap_kb(), rss_kb()
  loop:run()
  io.stdout:write(("RESULT n=%d heap_kb=%.1f rss_kb=%d secs=%.3f ok=%d seen=%d\n"):format(n, h1 - h0, r1 - r0,
    core.monotime() - t0, ok, held))
  api:close()
  stats:close()
else
  usage()
end
loop:close()
