--- smugoauth.loop.task: the methods of a task (smugoauth.Task), as
-- `loop:spawn` returns it: join, status, cancel.
-- @module smugoauth.loop.task
local scheduler = require "smugoauth.loop.scheduler"

local yield = coroutine.yield
local unpack = table.unpack
local type, error = type, error
local task_methods, CANCELLED = scheduler.task_methods, scheduler.CANCELLED
local current, make_ready, drop_timer = scheduler.current, scheduler.make_ready, scheduler.drop_timer

--- Wait for the task to finish: `task:join()` -> true, results... | false,
-- err. From another task of its loop it yields; from outside any task it
-- runs the loop until the task is done.
function task_methods:join()
  local lp, me = current()
  if not self.done then
    if lp == self.loop then
      if me == self then error("join: a task cannot join itself", 2) end
      local j = self.joiners
      if not j then j = {} self.joiners = j end
      j[#j + 1] = me
      me.waiting = "join"
      yield()
    else
      self.joined_outside = true
      local j = self.joiners or {}
      self.joiners = j
      while not self.done do
        local ok, err, t = self.loop:step()
        if not ok and t ~= self then
          if type(t) == "table" and t.trace and type(err) == "string" then error(t.trace, 0) end
          error(err, 0)
        end
      end
    end
  end
  if self.ok then return true, unpack(self.results, 1, self.results.n) end
  return false, self.err
end

--- Whether the task has finished, and how: "running" | "ok" | "failed".
function task_methods:status()
  if not self.done then return "running" end
  return self.ok and "ok" or "failed"
end

--- Cancel the task's waits: the one it is in returns at once (a request:
-- nil, err code "cancelled"; a sleep: false; a socket wait: false,
-- "cancelled"), and every later wait does too. The task's own code decides
-- how to end. `task:cancel()` -> true, or false when it had finished.
function task_methods:cancel()
  if self.done then return false end
  self.cancelled = true
  local lp = self.loop
  local w = self.waiting
  if w == "xfer" then
    if lp.xfers[self.xid] == self then           -- (not one that ended in this round: its id is free)
      lp.reactor:cancel(self.xid)
      lp.xfers[self.xid] = nil
    end
    make_ready(lp, self, CANCELLED)
  elseif w == "fd" then
    if lp.fdw[self.fd] == self then lp.fdw[self.fd] = nil end
    drop_timer(lp, self.timer)
    self.timer = nil
    make_ready(lp, self, false, "cancelled")
  elseif w == "sleep" then
    drop_timer(lp, self.timer)
    self.timer = nil
    make_ready(lp, self, false)
  elseif w == "sem" then
    self.sem_cancelled = true
    make_ready(lp, self, false)
  end
  return true
end

return task_methods
