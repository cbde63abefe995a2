--- smugoauth.loop.scheduler: the Loop type, tasks and the rounds that run
-- them over the C reactor (`core.reactor`). See smugoauth.loop for the whole
-- story; the waits a task can make are in smugoauth.loop.waits, the Task
-- methods in smugoauth.loop.task.
-- @module smugoauth.loop.scheduler
local core = require "smugoauth.core"
local timers = require "smugoauth.loop.timers"

local create, resume, running, cstatus =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.status
local monotime = core.monotime
local traceback = debug.traceback
local pack, unpack = table.pack, table.unpack
local setmetatable, type, error, tostring, getmetatable =
  setmetatable, type, error, tostring, getmetatable
local heap_push, heap_pop, heap_remove = timers.push, timers.pop, timers.remove

local task_of = setmetatable({}, { __mode = "k" })   -- coroutine -> its task

local methods = {}
local mt = { __name = "smugoauth.Loop", __index = methods }
local task_methods = {}
local task_mt = { __name = "smugoauth.Task", __index = task_methods }

-- What a wait answers when its task was cancelled (see Task:cancel).
local CANCELLED = setmetatable({}, { __name = "smugoauth.cancelled" })

-- Take a timer entry out of its loop's heap.
local function drop_timer(lp, e)
  if e then
    e.task, e.fn = nil, nil
    heap_remove(lp.timers, e)
  end
end

--- A new loop: `loop.new([opts])`.
--   max_host_connections  0: no limit; else libcurl's per-host connection cap
--   max_connections       0: no limit; else libcurl's total connection cap
--   maxevents             256: readiness events taken per round
-- Returns the loop, or nil, message, code when the system refuses (no epoll).
local function new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("loop.new: options table expected", 2) end
  local reactor, msg, code = core.reactor {
    maxevents = opts.maxevents, max_host_connections = opts.max_host_connections,
    max_connections = opts.max_connections,
  }
  if not reactor then return nil, msg, code end
  return setmetatable({
    reactor = reactor,
    ready = {}, rhead = 1, rtail = 0,    -- tasks to resume, in order
    timers = { n = 0 }, seq = 0,
    fdw = {}, fdint = {},                -- fd -> waiting task; fd -> interest armed
    xfers = {},                          -- transfer id -> waiting task
    ntasks = 0, stopped = false, failed = nil,
    fds = {}, evs = {}, ids = {}, res = {}, woken = {},
  }, mt)
end

--- The loop and task running the current code, or nil outside any task.
local function current()
  local co, main = running()
  if main then return nil end
  local t = task_of[co]
  if t then return t.loop, t end
  return nil
end

-- Queue t to be resumed with the values a, b (at most two).
local function make_ready(self, t, a, b)
  t.waiting, t.wa, t.wb = "ready", a, b
  local n = self.rtail + 1
  self.rtail, self.ready[n] = n, t
end

-- A task ended (its coroutine is dead; its body kept how in t.ok, t.results
-- or t.err): wake who joins it, or keep its error for step/run.
local function finish(self, t)
  t.done = true
  self.ntasks = self.ntasks - 1
  local joiners = t.joiners
  if joiners then
    for i = 1, #joiners do make_ready(self, joiners[i], t) end
    t.joiners = nil
  elseif not t.ok and not t.detached_ok then
    self.failed = self.failed or t
  end
end

-- Act on how a resume of t stopped (ok, err: what resume answered).
local function after(self, t, ok, err)
  if cstatus(t.co) == "dead" then
    if not ok then t.ok, t.err = false, err end  -- cannot happen (the body is under xpcall)
    finish(self, t)
  elseif not t.waiting then                     -- a bare coroutine.yield(): run again later
    make_ready(self, t)
  end
end

-- Resume t with its wake values (at most two: no table made per resume).
local function run_task(self, t, a, b)
  t.waiting = nil
  return after(self, t, resume(t.co, a, b))
end

-- The message handler of every task's xpcall: keep the traceback in the
-- task (no closure per task).
local function handler(e)
  local t = task_of[running()]
  if t then t.trace = traceback(tostring(e), 2) end
  return e
end

-- Keep in t how its function ended: its results, or its error.
local function store(t, ok, ...)
  if ok then
    t.results, t.ok = pack(...), true
  else
    t.ok, t.err = false, (...)
  end
end

-- The body of every task t: fn(...) under xpcall, how it ended kept in t.
local function body(t, fn, ...)
  return store(t, xpcall(fn, handler, ...))
end

--- Start a task: `loop:spawn(fn, ...)` -> task. It runs at the next round
-- (from inside a task: when the current one yields).
function methods:spawn(fn, ...)
  if type(fn) ~= "function" then error("spawn: a function expected", 2) end
  -- (the fields a task gets are listed, nil for now: the table is made with
  -- room for them, not grown as they come)
  local t = setmetatable({ loop = self, done = false, co = create(body), args = nil, waiting = nil,
    wa = nil, wb = nil, fd = nil, timer = nil, ok = nil, results = nil }, task_mt)
  task_of[t.co] = t
  self.ntasks = self.ntasks + 1
  local args = pack(t, fn, ...)
  t.args = args
  make_ready(self, t)
  return t
end

-- Resume every task that is ready now (not those made ready meanwhile:
-- they run in the next round, so nothing starves the poll).
local function run_ready(self)
  local last = self.rtail
  local ready = self.ready
  while self.rhead <= last do
    local i = self.rhead
    local t = ready[i]
    ready[i], self.rhead = nil, i + 1
    if t.waiting == "ready" then
      local args = t.args
      if args then                               -- its first run: body(t, fn, ...)
        t.args = nil
        t.waiting = nil
        after(self, t, resume(t.co, unpack(args, 1, args.n)))
      else
        run_task(self, t, t.wa, t.wb)
      end
    end
  end
  if self.rhead > self.rtail then self.rhead, self.rtail = 1, 0 end
end

-- Arm fd for what ("r", "w", "rw" or "": nothing but a hang-up).
local function arm(self, fd, what)
  local cur = self.fdint[fd]
  if cur == what then return true end
  local ok, msg, code
  if cur == nil then ok, msg, code = self.reactor:add(fd, what)
  else ok, msg, code = self.reactor:mod(fd, what) end
  if ok then self.fdint[fd] = what end
  return ok, msg, code
end

-- Fire the timers that are due.
local function fire_timers(self, now)
  local h = self.timers
  while h.n > 0 and h[1].at <= now do
    local e = heap_pop(h)
    if e.fn then
      e.fn(e)
    elseif e.task then
      local t = e.task
      t.timer = nil
      if t.waiting == "fd" then                 -- a wait that timed out
        if self.fdw[t.fd] == t then self.fdw[t.fd] = nil end
        run_task(self, t, false, "timeout")
      elseif t.waiting == "sleep" then
        run_task(self, t, true)
      end
    end
  end
end

-- Seconds until the next timer, or nil.
local function next_timer(self, now)
  local h = self.timers
  if h.n == 0 then return nil end
  local d = h[1].at - now
  return d > 0 and d or 0
end

--- One round: run what is ready, wait up to `timeout` seconds (default:
-- until something happens) for sockets, transfers and timers, and run what
-- they woke. Returns true, or nil, err, task when a task failed and nobody
-- was joining it, or nil, message, code when the reactor failed.
function methods:step(timeout)
  if self.closed then error("attempt to use a closed smugoauth.Loop", 2) end
  run_ready(self)
  local now = monotime()
  local t = timeout
  if t ~= nil and (type(t) ~= "number" or t ~= t) then error("step: timeout must be a number", 2) end
  if self.rhead <= self.rtail or self.failed or (self.ntasks == 0 and self.timers.n == 0) then
    t = 0                                        -- (nothing left to wait for: do not block)
  else
    local nt = next_timer(self, now)
    if nt and (t == nil or t < 0 or nt < t) then t = nt end
  end
  local fds, evs, ids, res = self.fds, self.evs, self.ids, self.res
  local nfds, ndone = self.reactor:wait(t, fds, evs, ids, res)
  if not nfds then return nil, ndone, res end
  -- every finished transfer is taken out before any task runs (those woken
  -- by their descriptor run first, below): a task may start another
  -- transfer, which may reuse the id of one that ended in this round
  local xfers, woken = self.xfers, self.woken
  for i = 1, ndone do
    local id = ids[i]
    woken[i] = xfers[id] or false
    xfers[id] = nil
  end
  local fdw = self.fdw
  for i = 1, nfds do
    local fd = fds[i]
    local task = fdw[fd]
    if type(task) == "function" then             -- a watcher (loop:watch_fd): stays
      task(fd, evs[i])
    elseif task then
      fdw[fd] = nil
      if task.timer then drop_timer(self, task.timer) task.timer = nil end
      run_task(self, task, true, evs[i])
    else
      arm(self, fd, "")                          -- nobody waits: disarm
    end
  end
  for i = 1, ndone do
    local task = woken[i]
    woken[i] = nil
    -- (not a task cancelled meanwhile: it is on its way with "cancelled")
    if task and task.waiting == "xfer" and task.xid == ids[i] then run_task(self, task, res[i]) end
  end
  fire_timers(self, monotime())
  run_ready(self)
  local f = self.failed
  if f then
    self.failed = nil
    return nil, f.err, f
  end
  return true
end

--- Run until every task has finished or `loop:stop()` is called. Raises
-- the error of a task that failed with nobody joining it (its traceback in
-- the message when the error is a string).
function methods:run()
  self.stopped = false
  while not self.stopped and (self.ntasks > 0 or self.timers.n > 0) do
    local ok, err, t = self:step()
    if not ok then
      if type(t) == "table" and getmetatable(t) == task_mt then
        if type(err) == "string" and t.trace then error(t.trace, 0) end
        error(err, 0)
      end
      error("smugoauth.loop: " .. tostring(err), 0)
    end
  end
  return true
end

--- Run fn(...) as a task of this loop from outside any task, until that
-- task is done (other tasks run meanwhile; they may outlive it):
-- `loop:call(fn, ...)` -> fn's results, or raise its error.
function methods:call(fn, ...)
  if current() then error("call: not from inside a task (call fn directly)", 2) end
  local t = self:spawn(fn, ...)
  t.joiners = {}                                 -- its error is ours, not step's
  while not t.done do
    local ok, err, other = self:step()
    if not ok then
      if type(other) == "table" and other.trace and type(err) == "string" then error(other.trace, 0) end
      error(err, 0)
    end
  end
  if t.ok then return unpack(t.results, 1, t.results.n) end
  if type(t.err) == "string" and t.trace then error(t.trace, 0) end
  error(t.err, 0)
end

--- Make `run()` return after the current round.
function methods:stop()
  self.stopped = true
end

--- The descriptor that becomes readable when the loop has work (epoll).
function methods:pollfd()
  return self.reactor:pollfd()
end

--- For cqueues.poll: the loop waits for its pollfd to be readable.
function methods.events()
  return "r"
end

--- Seconds until the loop needs a step (0: now), or nil when only its
-- descriptor can wake it.
function methods:timeout()
  if self.rhead <= self.rtail or self.failed then return 0 end
  local t = next_timer(self, monotime())
  local c = self.reactor:timeout()
  if c and (not t or c < t) then t = c end
  return t
end

--- Number of tasks not yet finished.
function methods:tasks()
  return self.ntasks
end

--- Close the reactor (its transfers are dropped); idempotent.
function methods:close()
  if self.closed then return end
  self.closed = true
  self.reactor:close()
end
mt.__close = methods.close

-- The running task of this loop, or raise naming fname.
local function own_task(self, fname)
  local lp, t = current()
  if lp ~= self then error(fname .. ": only from inside a task of this loop", 3) end
  return t
end

return {
  new = new,
  current = current,
  methods = methods,
  mt = mt,
  task_methods = task_methods,
  task_mt = task_mt,
  CANCELLED = CANCELLED,
  -- for the sibling modules (waits, task, limit): not exported by smugoauth.loop
  make_ready = make_ready,
  arm = arm,
  own_task = own_task,
  drop_timer = drop_timer,
  heap_push = heap_push,
}
