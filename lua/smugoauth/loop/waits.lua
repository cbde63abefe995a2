--- smugoauth.loop.waits: what a task can wait for — a socket, a transfer,
-- a time — added to the Loop's methods (smugoauth.loop.scheduler).
-- @module smugoauth.loop.waits
local core = require "smugoauth.core"
local scheduler = require "smugoauth.loop.scheduler"

local yield = coroutine.yield
local monotime = core.monotime
local error = error
local methods, CANCELLED = scheduler.methods, scheduler.CANCELLED
local arm, own_task, drop_timer, heap_push, make_ready =
  scheduler.arm, scheduler.own_task, scheduler.drop_timer, scheduler.heap_push, scheduler.make_ready

--- Wait until descriptor fd is ready for what ("r", "w" or "rw"), or until
-- the monotonic time `deadline` (core.monotime(); nil: no deadline):
-- `loop:wait_fd(fd, what [, deadline])` -> true, readiness | false, "timeout"
-- | false, "cancelled" | nil, message, code (the reactor refused the fd).
-- The fd stays registered until `loop:forget_fd(fd)` (call it before
-- closing the socket).
function methods:wait_fd(fd, what, deadline)
  local t = own_task(self, "wait_fd")
  if t.cancelled then return false, "cancelled" end
  local ok, msg, code = arm(self, fd, what)
  if not ok then return nil, msg, code end
  self.fdw[fd] = t
  t.fd = fd
  if deadline then
    self.seq = self.seq + 1
    local e = { at = deadline, seq = self.seq, task = t }
    t.timer = e
    heap_push(self.timers, e)
  end
  t.waiting = "fd"
  return yield()
end

--- Stop watching fd (before closing it): `loop:forget_fd(fd)`.
function methods:forget_fd(fd)
  if self.fdint[fd] ~= nil then
    self.reactor:del(fd)
    self.fdint[fd] = nil
  end
  self.fdw[fd] = nil
end


--- Sleep `seconds` inside a task: `loop:sleep(s)` -> true | false (cancelled).
function methods:sleep(seconds)
  local t = own_task(self, "sleep")
  if t.cancelled then return false end
  self.seq = self.seq + 1
  local e = { at = monotime() + seconds, seq = self.seq, task = t }
  t.timer = e
  heap_push(self.timers, e)
  t.waiting = "sleep"
  return yield()
end

--- Run a request table on the loop's reactor from inside a task, yielding
-- until it is done: `loop:transfer(http, creq)` -> the raw result (as
-- http:request gives) | nil, message, code [, written] (written: the bytes
-- a response sink got before the failure, as http:request says). An
-- on_progress or on_data of the request that raises raises here, in the task.
function methods:transfer(http, creq)
  local t = own_task(self, "transfer")
  if t.cancelled then return nil, "the request was cancelled", "cancelled" end
  local id, msg, code = self.reactor:start(http, creq)
  if not id then return nil, msg, code end
  self.xfers[id] = t
  t.xid = id
  t.waiting = "xfer"
  local r = yield()
  t.xid = nil
  if r == CANCELLED then return nil, "the request was cancelled", "cancelled" end
  if r.raised ~= nil then error(r.raised, 0) end
  if r.error then return nil, r.error, r.code, r.written end
  return r
end

--- Call fn(...) every `interval` seconds on this loop (outside any task:
-- fn must not yield): `loop:every(interval, fn)` -> a handle with cancel().
function methods:every(interval, fn)
  local loop = self
  local h = {}
  local function fire(e)
    if h.cancelled then return end
    fn()
    loop.seq = loop.seq + 1
    local nxt = { at = e.at + interval, seq = loop.seq, fn = fire }
    if nxt.at < monotime() then nxt.at = monotime() + interval end
    h.e = nxt
    heap_push(loop.timers, nxt)
  end
  self.seq = self.seq + 1
  h.e = { at = monotime() + interval, seq = self.seq, fn = fire }
  heap_push(self.timers, h.e)
  function h.cancel() h.cancelled = true drop_timer(loop, h.e) end
  return h
end

--- Call fn(fd, readiness) whenever fd is ready for what, until
-- `loop:unwatch_fd(fd)` (or a task waits on fd, which replaces the
-- watcher): `loop:watch_fd(fd, what, fn)` -> true | nil, message, code.
-- fn runs in the loop's round, outside any task: it must not yield.
function methods:watch_fd(fd, what, fn)
  local ok, msg, code = arm(self, fd, what)
  if not ok then return nil, msg, code end
  self.fdw[fd] = fn
  return true
end

--- Stop a watcher of fd (see watch_fd); the fd stays registered.
function methods:unwatch_fd(fd)
  if type(self.fdw[fd]) == "function" then self.fdw[fd] = nil end
end

--- Interrupt the wait task `t` is in and resume it with `a, b`: a socket
-- wait (default false, "interrupted"), a sleep (false), a transfer (which is
-- cancelled: the request returns nil, err code "cancelled"). Unlike
-- task:cancel, later waits of the task are not affected. Returns true, or
-- false when t is not in one of those waits.
function methods:interrupt(t, a, b)
  local w = t.waiting
  if w == "fd" then
    if self.fdw[t.fd] == t then self.fdw[t.fd] = nil end
    drop_timer(self, t.timer)
    t.timer = nil
    if a == nil then a, b = false, "interrupted" end
    make_ready(self, t, a, b)
  elseif w == "sleep" then
    drop_timer(self, t.timer)
    t.timer = nil
    make_ready(self, t, false)
  elseif w == "xfer" then
    if self.xfers[t.xid] == t then               -- (not one that ended in this round: its id is free)
      self.reactor:cancel(t.xid)
      self.xfers[t.xid] = nil
    end
    make_ready(self, t, CANCELLED)
  else
    return false
  end
  return true
end

return methods
