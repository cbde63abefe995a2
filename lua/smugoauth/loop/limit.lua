--- smugoauth.loop.limit: a limit of n concurrent holders (a semaphore)
-- for the tasks of a loop: "at most 8 at a time".
-- @module smugoauth.loop.limit
local scheduler = require "smugoauth.loop.scheduler"

local yield = coroutine.yield
local pack, unpack = table.pack, table.unpack
local setmetatable, error, pcall = setmetatable, error, pcall
local current, make_ready = scheduler.current, scheduler.make_ready

local lim_methods = {}
local lim_mt = { __name = "smugoauth.Limit", __index = lim_methods }

--- A limit of n concurrent holders (a semaphore): `loop.limit(n)`.
-- `lim:acquire()` (yields in a task while n others hold it) -> true | false
-- (cancelled), `lim:release()`, `lim:run(fn, ...)` (acquire, call, release,
-- results or the error re-raised), `lim:spawn(fn, ...)` (a task that runs
-- fn under the limit: thousands may wait, at most n run).
local function limit(n)
  if not math.tointeger(n) or n < 1 then error("limit: a positive integer expected", 2) end
  return setmetatable({ free = n, n = n, waiters = {}, whead = 1, wtail = 0 }, lim_mt)
end

function lim_methods:acquire()
  if self.free > 0 then
    self.free = self.free - 1
    return true
  end
  local lp, t = current()
  if not lp then error("limit: no free slot and not inside a task (it would wait forever)", 2) end
  if t.cancelled then return false end
  local n = self.wtail + 1
  self.wtail, self.waiters[n] = n, t
  t.waiting = "sem"
  return yield()
end

function lim_methods:release()
  local w = self.waiters
  while self.whead <= self.wtail do
    local i = self.whead
    local t = w[i]
    w[i], self.whead = nil, i + 1
    if not t.sem_cancelled and not t.done then
      make_ready(t.loop, t, true)                 -- the slot passes to it
      return
    end
  end
  self.whead, self.wtail = 1, 0
  self.free = self.free + 1
  if self.free > self.n then error("limit: released more than acquired", 2) end
end

function lim_methods:run(fn, ...)
  if not self:acquire() then return nil, "cancelled" end
  local r = pack(pcall(fn, ...))
  self:release()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

function lim_methods:spawn(fn, ...)
  local lp = current()
  if not lp then error("limit:spawn: only from inside a task (use smugoauth.run)", 2) end
  local lim = self
  return lp:spawn(function(...) return lim:run(fn, ...) end, ...)
end

return {
  new = limit,
  methods = lim_methods,
  mt = lim_mt,
}
