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
  if attempt >= self.attempts or err.paused then return false end   -- paused: not sent, too long a pause
  local idempotent = IDEMPOTENT[method]
  if not idempotent and not self.unsafe then return false end
  if err.code == "http" then return err.status == 429 or err.status == 503 end
  return err.code == "network" and idempotent or false
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9,
                 Oct = 10, Nov = 11, Dec = 12 }

-- Seconds since the epoch of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
-- GMT", the form RFC 9110 says senders use), or nil.
local function http_date(v)
  local d, mon, y, h, mi, sec = v:match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  local m = MONTHS[mon]
  if not m then return nil end
  return util.epoch(tonumber(y), m, tonumber(d), tonumber(h), tonumber(mi), tonumber(sec))
end

--- The seconds a failed response's Retry-After header asks to wait (a
-- number of seconds, or an HTTP date in the future: its distance from now),
-- or nil when it has none, or one that cannot be read or is a date already
-- past (then the backoff applies).
local function retry_after(err)
  local res = err.response
  local v = res and res.headers and res.headers["retry-after"]
  if type(v) ~= "string" then return nil end
  local n = tonumber(v)
  if n then return n == n and math.max(0, n) or nil end
  local t = http_date(v)
  return t and t > os.time() and t - os.time() or nil
end

--- The seconds every request of the client should wait after `err`: its
-- Retry-After when it is a 429 or 503 answer that has one, else nil. (The
-- client-wide rate-limit pause of smugoauth.request: every task waits, not
-- only the one that was told.)
local function pause_of(err)
  if err.code ~= "http" or (err.status ~= 429 and err.status ~= 503) then return nil end
  local d = retry_after(err)
  return d and d > 0 and d or nil
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

--- Wait `seconds` (with the policy's sleep): false when the wait was
-- cancelled (the task's), else true.
function methods:wait(seconds)
  return self.sleep(seconds) ~= false
end

return {
  new = new,
  clock = clock,
  retry_after = retry_after,
  pause_of = pause_of,
  IDEMPOTENT = IDEMPOTENT,
  OPTIONS = OPTIONS,
  methods = methods,
  mt = mt,
}
