#!/usr/bin/env lua5.4
-- smugoauth's event loop driven by libuv (Debian's lua-luv): a uv poll
-- handle watches `loop:pollfd()`, a uv timer follows `loop:timeout()`, and
-- both call `loop:step(0)`; meanwhile a uv timer of the program's own ticks
-- every 10 ms and our tasks make signed requests to the local sandbox
-- (started here, the OAuth flow approved on your behalf). The cqueues
-- version, with the same tasks: examples/embed_cqueues.lua.
--
-- usage: lua5.4 examples/embed_luv.lua
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SMUGOAUTH_BUILD") or "build") .. "/?.so;" .. package.cpath
local uv = require "luv"
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"

local sb, err = require("smugoauth.apps.sandbox.launch").start {}
if not sb then io.stderr:write("embed_luv: ", tostring(err), "\n") os.exit(1) end
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

-- libuv drives our loop: its descriptor, and a timer for its next deadline
local poll, wake, ticker = uv.new_poll(loop:pollfd()), uv.new_timer(), uv.new_timer()
local function step()
  assert(loop:step(0))                          -- our round: never blocks
  if loop:tasks() == 0 then
    say("our loop: all tasks done")
    poll:stop() wake:stop() ticker:stop()
    return
  end
  local t = loop:timeout()                      -- nil: only the descriptor can wake it
  wake:stop()
  if t then wake:start(math.ceil(t * 1000), 0, step) end
end
uv.update_time()                                -- (its clock was last read when luv loaded)
poll:start("r", step)
wake:start(0, 0, step)

-- the program's own work: a timer ticking every 10 ms
local ticks, ticks_meanwhile = 0, 0
ticker:start(10, 10, function()
  ticks = ticks + 1
  if requests > 0 and requests < 12 then ticks_meanwhile = ticks_meanwhile + 1 end
  if ticks % 5 == 0 then say("luv timer: tick %d", ticks) end
end)

uv.run()
for _, h in ipairs { poll, wake, ticker } do h:close() end
uv.run()                                        -- lets the closes complete
loop:close()
api:close()
sb:stop()
local both = requests == 12 and ticks_meanwhile > 0
print(("%d signed requests by our tasks; %d luv ticks, %d of them while our requests were under way: %s")
  :format(requests, ticks, ticks_meanwhile, both and "both made progress" or "FAILED"))
os.exit(both and 0 or 1)
