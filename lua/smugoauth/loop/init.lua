--- smugoauth.loop: one event loop for the whole program. Tasks are
-- coroutines; a task that makes a request, sleeps, or waits for a socket
-- yields to the loop until that is done, while the others run. The same
-- calls made outside a task block, as they always did. The C reactor under
-- it (`core.reactor`) waits on one epoll descriptor for both our servers'
-- sockets and libcurl's (the multi *socket* interface), so one slow
-- transfer never stalls anything else, and every transfer of the loop shares
-- one connection pool.
--
--    local smugoauth = require "smugoauth"
--    smugoauth.run(function()
--      local lim = smugoauth.limit(8)          -- at most 8 at a time
--      for album in api:each("/api/v2/user/NICK!albums") do
--        lim:spawn(function() print(#assert(api:get(album.Uris.AlbumImages.Uri)).body) end)
--      end
--    end)
--
-- Errors: a task's error goes to whoever joins it (`task:join()` returns
-- false, err); an error in a task nobody is joining at that moment is not
-- lost: `loop:step()` returns nil, err, task and `loop:run()` (so
-- `smugoauth.run`) raises it, with the task's traceback.
--
-- Embedding in another event loop (cqueues, luv, copas): `loop:pollfd()` is
-- one descriptor that becomes readable when the loop has work,
-- `loop:timeout()` the seconds until its next timer (0: work is ready), and
-- `loop:step(0)` does that work without blocking (the cqueues convention:
-- a Loop can be given to `cqueues.poll` as is).
-- @module smugoauth.loop
local socket = require "socket"
local scheduler = require "smugoauth.loop.scheduler"
require "smugoauth.loop.waits"            -- the Loop's wait methods
require "smugoauth.loop.task"             -- the Task methods
local limits = require "smugoauth.loop.limit"
local queues = require "smugoauth.loop.queue"

local unpack = table.unpack
local type, error = type, error
local new, current = scheduler.new, scheduler.current
local limit = limits.new

local default

--- The default loop (made on first use).
local function default_loop()
  if not default or default.closed then default = assert(new()) end
  return default
end

--- Run fn(...) as a task of the default loop until every task of that loop
-- has finished: `smugoauth.run(fn, ...)` -> fn's results, or raise its
-- error. Inside a task it just calls fn (the loop is already running).
local function run(fn, ...)
  if type(fn) ~= "function" then error("run: a function expected", 2) end
  if current() then return fn(...) end
  local lp = default_loop()
  local t = lp:spawn(fn, ...)
  t.joiners = {}                                 -- its error is ours, not step's
  lp:run()
  if not t.done then                             -- stopped early
    return nil, "the loop was stopped", "cancelled"
  end
  if t.ok then return unpack(t.results, 1, t.results.n) end
  if type(t.err) == "string" and t.trace then error(t.trace, 0) end
  error(t.err, 0)
end

--- Sleep `seconds`: yields inside a task, blocks outside one.
local function sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds then error("sleep: seconds expected", 2) end
  local lp = current()
  if lp then return lp:sleep(seconds) end
  if seconds > 0 then socket.sleep(seconds) end
  return true
end

--- Spawn on the running task's loop, or on the default loop.
local function spawn(fn, ...)
  local lp = current() or default_loop()
  return lp:spawn(fn, ...)
end

--- Call fn(item, i) for every item of list, at most `concurrency` (8) at a
-- time, as tasks: `loop.map(list, fn [, {concurrency = 8}])` -> results,
-- errors (arrays by index: results[i] is fn's first result, errors[i] the
-- error it raised). Yields inside a task; outside one it runs them on the
-- default loop until all are done.
local function map(list, fn, opts)
  if type(list) ~= "table" or type(fn) ~= "function" then error("map: a list and a function expected", 2) end
  local conc = opts and opts.concurrency or 8
  if not math.tointeger(conc) or conc < 1 then error("map: concurrency must be a positive integer", 2) end
  local results, errs = {}, {}
  local function all()
    local lp = current()
    local n, next_i, workers = #list, 1, {}
    local function worker()
      while next_i <= n do
        local i = next_i
        next_i = i + 1
        local ok, v = pcall(fn, list[i], i)
        if ok then results[i] = v else errs[i] = v end
      end
    end
    for w = 1, math.min(conc, n) do workers[w] = lp:spawn(worker) end
    for w = 1, #workers do workers[w]:join() end
  end
  run(all)
  return results, errs
end

return {
  new = new,
  current = current,
  default = default_loop,
  run = run,
  sleep = sleep,
  spawn = spawn,
  limit = limit,
  queue = queues.new,
  map = map,
  CANCELLED = scheduler.CANCELLED,
  methods = scheduler.methods,
  mt = scheduler.mt,
  task_methods = scheduler.task_methods,
  task_mt = scheduler.task_mt,
}
