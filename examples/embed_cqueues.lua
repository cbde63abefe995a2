#!/usr/bin/env lua5.4
-- smugoauth's event loop driven by another one: cqueues (Debian's
-- lua-cqueues). A smugoauth Loop has the three methods cqueues.poll looks for
-- (`pollfd`, `events`, `timeout`), so one cqueues coroutine can wait for it
-- like for a socket and call `loop:step(0)` when it is ready, while other
-- cqueues coroutines do their own work -- here a timer that ticks every
-- 10 ms -- and our tasks make signed requests to the local sandbox (started
-- here, as `make demo` does, the OAuth flow approved on your behalf).
-- Prints a timeline of both, then whether both made progress.
--
-- usage: lua5.4 examples/embed_cqueues.lua
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SMUGOAUTH_BUILD") or "build") .. "/?.so;" .. package.cpath
local cqueues = require "cqueues"
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"

local sb, err = require("smugoauth.apps.sandbox.launch").start {}
if not sb then io.stderr:write("embed_cqueues: ", tostring(err), "\n") os.exit(1) end
local at, ats, client = sb:authorize()
local api = client:session(at, ats)

local t0 = core.monotime()
local function say(fmt, ...)
  io.stdout:write(("[%4.0f ms] "):format((core.monotime() - t0) * 1000), fmt:format(...), "\n")
end

-- our loop and its tasks: 4 tasks, 3 signed GETs each, pausing 30 ms between
local loop = assert(smugoauth.loop())
local requests = 0
for t = 1, 4 do
  loop:spawn(function()
    for i = 1, 3 do
      local res = assert(api:get(("/api/v2/album/K%04d"):format(t * 10 + i)))   -- yields this task
      requests = requests + 1
      say("task %d: GET album K%04d -> %d %s", t, t * 10 + i, res.status, res:json().Response.Album.Name)
      smugoauth.sleep(0.03)                                                       -- yields too
    end
  end)
end

local cq = cqueues.new()
local ticks, ticks_meanwhile = 0, 0

-- cqueues coroutine 1: drive our loop from cqueues
cq:wrap(function()
  while loop:tasks() > 0 do
    cqueues.poll(loop)            -- until loop:pollfd() is readable or loop:timeout() passes
    assert(loop:step(0))          -- our round: never blocks
  end
  say("our loop: all tasks done")
end)

-- cqueues coroutine 2: its own work, a timer ticking every 10 ms
cq:wrap(function()
  while loop:tasks() > 0 do
    cqueues.sleep(0.01)
    ticks = ticks + 1
    if requests > 0 and requests < 12 then ticks_meanwhile = ticks_meanwhile + 1 end
    if ticks % 5 == 0 then say("cqueues timer: tick %d", ticks) end
  end
end)

assert(cq:loop())
loop:close()
api:close()
sb:stop()
local both = requests == 12 and ticks_meanwhile > 0
print(("%d signed requests by our tasks; %d cqueues ticks, %d of them while our requests were under way: %s")
  :format(requests, ticks, ticks_meanwhile, both and "both made progress" or "FAILED"))
os.exit(both and 0 or 1)
