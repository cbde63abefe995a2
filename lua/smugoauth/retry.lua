--- The one retry policy of every request path (api:request and the methods
-- built on it, upload, get_many): which failures are tried again, how many
-- times, after how long, and which requests go out on a fresh connection.
--
-- Tried again: a 429 or 503 answer, and a transport failure with code
-- "network" (reset, refused, truncated) of an idempotent request; never a
-- timeout, a TLS failure or another status. A non-idempotent request (any
-- method but GET, HEAD, PUT, DELETE, OPTIONS) is tried again only with
-- `unsafe = true`, and then only after a 429 or 503 (a reset may come after
-- the server acted on it). The wait is the server's Retry-After (seconds),
-- else `base * 2^(n-1)` for the n-th retry with jitter (a random point in
-- its upper half); no retry starts later than `max_time` after the first try.
-- @module smugoauth.retry
local loop = require "smugoauth.loop"
local util = require "smugoauth.util"

--- The methods a request may be sent twice with (the effect is that of once).
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }

--- The clock `within` measures with (seconds).
local clock = require("smugoauth.core").monotime

local methods = {}
local mt = { __name = "smugoauth.Retry", __index = methods }

-- The options of a policy, declared once: name, type, default (what each
-- does: see `new`).
local OPTIONS = {
  { "attempts", "number", 3 },
  { "max_time", "number", 60 },
  { "base", "number", 0.5 },
  { "unsafe", "boolean", false },
  { "sleep", "function", loop.sleep },
}
local TYPES = util.option_types(OPTIONS)

local DEFAULT, OFF                   -- the policies of nil and false, made once

--- A policy: `retry.new(opts [, fname [, level]])`.
--   opts   nil: every default; false: one attempt, no retry; or a table of
--          any of the options (defaults):
--            attempts  3      tries in all, the first one included
--            max_time  60     seconds after the first try past which no retry starts
--            base      0.5    seconds: the first backoff, doubled for each next one
--            unsafe    false  retry non-idempotent requests too, after 429/503,
--                             and let them reuse kept-alive connections
--            sleep     loop.sleep  function(seconds) that waits (smugoauth.loop's:
--                                yields inside a task, blocks outside one)
--   fname, level: who raises on misuse (unknown option, wrong type), and at
--          which level (as error's), for the message.
local function new(opts, fname, level)
  if opts == nil and DEFAULT then return DEFAULT end
  if opts == false and OFF then return OFF end
  level = (level or 1) + 1
  fname = (fname or "retry") .. ": retry"
  if opts == false then opts = { attempts = 1 } end
  util.check_options(fname, opts, TYPES, level)
  local self = {}
  for _, row in ipairs(OPTIONS) do
    local v = (opts or {})[row[1]]
    if v == nil then v = row[3] end
    self[row[1]] = v
  end
  local n = math.tointeger(self.attempts)
  if not n or n < 1 then error(fname .. ": attempts must be a positive integer", level) end
  if self.max_time < 0 or self.base < 0 then
    error(fname .. ": max_time and base must not be negative", level)
  end
  self.attempts = n
  return setmetatable(self, mt)
end
DEFAULT, OFF = new(nil), new(false)

--- Whether a `method` request goes out on a new connection. libcurl re-sends
-- a request unchanged (the same nonce) when a reused connection dies before
-- the answer, though the server may have acted on it: a non-idempotent
-- request gets a new connection unless the policy is `unsafe`. `explicit`
-- (the request's `fresh` option), when not nil, wins.
function methods:fresh(method, explicit)
  if explicit ~= nil then return explicit end
  return not IDEMPOTENT[method] and not self.unsafe
end

--- Whether a `method` request that failed with `err` on its `attempt`-th
-- try may be tried again (the time limit aside: see `within`).
function methods:again(method, err, attempt)
  if attempt >= self.attempts then return false end
  local idempotent = IDEMPOTENT[method]
  if not idempotent and not self.unsafe then return false end
  if err.code == "http" then return err.status == 429 or err.status == 503 end
  return err.code == "network" and idempotent or false
end

-- The seconds of a numeric Retry-After header of the failed response, or
-- nil (none, or an HTTP date: then the backoff applies).
local function retry_after(err)
  local res = err.response
  local v = res and res.headers and res.headers["retry-after"]
  local n = v and tonumber(v)
  return n and math.max(0, n)
end

--- The seconds to wait before trying again after `err` on the
-- `attempt`-th try: the server's Retry-After, else the backoff, jittered.
function methods:delay(err, attempt)
  local d = retry_after(err)
  if d then return d end
  d = self.base * 2 ^ (attempt - 1)
  return d / 2 + math.random() * d / 2
end

--- Whether a retry that starts `delay` seconds from now is within max_time
-- of `t0` (the clock() of the first try).
function methods:within(t0, delay)
  return clock() - t0 + delay <= self.max_time
end

--- Wait `seconds` (with the policy's sleep).
function methods:wait(seconds)
  self.sleep(seconds)
end

return {
  new = new,
  clock = clock,
  IDEMPOTENT = IDEMPOTENT,
  OPTIONS = OPTIONS,
  methods = methods,
  mt = mt,
}
