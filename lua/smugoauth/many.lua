--- Concurrent requests: `api:get_many` of a session, a thin helper over the
-- tasks of smugoauth.loop. Each request goes through the pipeline of
-- smugoauth.request (prepare, sign, send, classify) with the retry policy of
-- smugoauth.retry, exactly as api:request does, each in its own task.
-- @module smugoauth.many
local util = require "smugoauth.util"
local request = require "smugoauth.request"
local loop = require "smugoauth.loop"

-- The options of get_many itself: name, type, default (see get_many).
local OPTIONS = {
  { "concurrency", "number", 8 },
  { "retry", "table boolean", nil },
}
local TYPES = util.option_types(OPTIONS)

--- Run requests concurrently: `api:get_many(list [, opts])`.
--   list   an array of paths (GET) or request option tables as for
--          api:request (but on_progress); an item's own `retry` wins over
--          opts.retry
--   opts   concurrency  8      requests in flight at once (1..64)
--          retry        the session's   the retry policy of every item
--                       (smugoauth.retry), or false
-- Returns an array in input order; each element is a response or an error
-- object (test with `smugoauth.errors.is(v)` or `v.code`). Each request is
-- retried on its own, as api:request would. Inside a task of a loop the
-- requests run on that loop (and the calling task waits for them); outside
-- one they run on the session's own loop, which keeps its connections
-- between calls, and get_many blocks until all are done.
local function get_many(session, list, opts)
  if type(list) ~= "table" then error("get_many: an array of paths or requests expected", 2) end
  opts = util.check_options("get_many", opts, TYPES, 2)
  local conc = math.tointeger(opts.concurrency or OPTIONS[1][3])
  if not conc or conc < 1 or conc > 64 then error("get_many: concurrency must be 1..64", 2) end
  local preps = {}
  for i, item in ipairs(list) do
    local o = type(item) == "string" and { method = "GET", path = item } or item
    if type(o) == "table" and o.on_progress then error("get_many: on_progress is not supported here", 2) end
    preps[i] = request.prepare(session, o, "get_many", 2, opts.retry)
  end
  local results, n, next_i = {}, #preps, 1
  local function worker()
    while next_i <= n do
      local i = next_i
      next_i = i + 1
      results[i] = request.execute(session, preps[i])
    end
  end
  local function all()
    local lp = loop.current()
    local workers = {}
    for w = 1, math.min(conc, n) do workers[w] = lp:spawn(worker) end
    for w = 1, #workers do
      local ok, err = workers[w]:join()
      if not ok then error(err, 0) end
    end
  end
  if loop.current() then
    all()
  else
    session:_loop():call(all)
  end
  return results
end

return {
  get_many = get_many,
  OPTIONS = OPTIONS,
}
