--- smugoauth.loop.queue: a bounded queue between the tasks of a loop
-- (producers put, consumers get; both yield while they cannot go on), so
-- that a producer faster than its consumers holds at most `capacity` items.
--
--    local q = loop.queue(8)
--    lp:spawn(function() for _, x in ipairs(work) do q:put(x) end q:close() end)
--    for _ = 1, 4 do lp:spawn(function() for x in q:items() do use(x) end end) end
-- @module smugoauth.loop.queue
local scheduler = require "smugoauth.loop.scheduler"

local yield = coroutine.yield
local setmetatable, error = setmetatable, error
local current, make_ready = scheduler.current, scheduler.make_ready

local methods = {}
local mt = { __name = "smugoauth.Queue", __index = methods }

--- A queue of at most `capacity` items: `loop.queue(capacity)`.
-- `q:put(item)` (yields in a task while full) -> true | false (cancelled or
-- closed), `q:get()` (yields while empty) -> item | nil (closed and
-- drained, or cancelled), `q:close()`, `q:items()` (an iterator of get),
-- `q:length()`. Items are any value but nil. Outside a task, a put on a full
-- queue or a get on an empty open one raises (it would wait forever).
local function new(capacity)
  if not math.tointeger(capacity) or capacity < 1 then error("queue: a positive integer capacity expected", 2) end
  return setmetatable({ cap = capacity, items_ = {}, head = 1, tail = 0, closed = false,
                        getters = {}, putters = {} }, mt)
end

-- The first waiter of list still waiting (not cancelled, not finished), taken out.
local function take_waiter(list)
  while #list > 0 do
    local t = table.remove(list, 1)
    if not t.sem_cancelled and not t.done and t.waiting == "sem" then return t end
  end
  return nil
end

-- Wait in list (a queue's getters or putters) until woken: "item", item
-- (put handed one over), "look" (look again: room, or closed), or false
-- (cancelled).
local function wait_in(list, fname)
  local lp, t = current()
  if not lp then error(fname .. ": it would wait forever outside a task", 3) end
  if t.cancelled then return false end
  list[#list + 1] = t
  t.waiting = "sem"                          -- task:cancel wakes it with false
  return yield()
end

--- Put item at the end: waits while the queue is full. Returns true, or
-- false when the queue is closed or the task was cancelled (item not put).
function methods:put(item)
  if item == nil then error("queue:put: an item expected", 2) end
  while true do
    if self.closed then return false end
    if self.tail - self.head + 1 < self.cap then break end
    if not wait_in(self.putters, "queue:put") then return false end   -- cancelled
  end
  local g = take_waiter(self.getters)
  if g then
    make_ready(g.loop, g, "item", item)      -- straight to a waiting consumer
    return true
  end
  self.tail = self.tail + 1
  self.items_[self.tail] = item
  return true
end

--- Take the first item: waits while the queue is empty and open. Returns
-- the item, or nil when the queue is closed and empty or the task was
-- cancelled.
function methods:get()
  while self.head > self.tail do
    if self.closed then return nil end
    local how, v = wait_in(self.getters, "queue:get")
    if not how then return nil end           -- cancelled
    if how == "item" then return v end       -- handed over by put
  end
  local i = self.head
  local v = self.items_[i]
  self.items_[i], self.head = nil, i + 1
  if self.head > self.tail then self.head, self.tail = 1, 0 end
  local p = take_waiter(self.putters)
  if p then make_ready(p.loop, p, "look") end  -- room for one more
  return v
end

--- No more puts: waiting producers get false, consumers drain what is left
-- and then get nil. Idempotent.
function methods:close()
  if self.closed then return end
  self.closed = true
  for _, list in ipairs { self.getters, self.putters } do
    local t = take_waiter(list)
    while t do
      make_ready(t.loop, t, "look")          -- they look again, and see closed
      t = take_waiter(list)
    end
  end
end

--- `for item in q:items() do`: get until the queue is closed and drained.
function methods:items()
  return function() return self:get() end
end

--- Items waiting in the queue.
function methods:length()
  return self.tail - self.head + 1
end

return {
  new = new,
  methods = methods,
  mt = mt,
}
