--- Concurrent requests through one libcurl multi handle: `api:get_many` of
-- a session. Each request goes through the pipeline of smugoauth.request
-- (prepare, sign, classify) and the retry policy of smugoauth.retry, as
-- api:request does; only the send step differs (a batch at a time).
-- @module smugoauth.many
local util = require "smugoauth.util"
local request = require "smugoauth.request"

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
-- object (test with `smugoauth.errors.is(v)` or `v.code`). Failed requests
-- are retried together, after the longest wait any of them asks for.
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
  return request.run(session, preps, function(pending)
    local creqs, sent, bases, trs, outs = {}, {}, {}, {}, {}
    for j, i in ipairs(pending) do
      local creq, base, tr = request.sign(session, preps[i])
      if creq then
        creqs[#creqs + 1], sent[#creqs + 1], bases[j], trs[j] = creq, j, base, tr
      else
        outs[j] = base                                  -- signing failed (crypto)
      end
    end
    local raws = request.send_many(session, creqs, conc)
    for k, raw in ipairs(raws) do
      local j = sent[k]
      local i = pending[j]
      if raw.error then
        outs[j] = request.classify(preps[i], nil, raw.error, raw.code, bases[j], trs[j])
      else
        outs[j] = request.classify(preps[i], raw, nil, nil, bases[j], trs[j])
      end
    end
    return outs
  end)
end

return {
  get_many = get_many,
  OPTIONS = OPTIONS,
}
