-- The client-wide rate-limit pause (smugoauth.request with smugoauth.retry):
-- a 429 or 503 answer with Retry-After pauses EVERY request of the client,
-- from every task and session, until that time -- not only the request that
-- got it. Against the sandbox (fail429 / fail503 with retry_after), counting
-- on the sandbox's side what arrives during the pause.
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"
local loop = require "smugoauth.loop"
local retry = require "smugoauth.retry"
local errors = require "smugoauth.errors"
local sandbox = require "support.sandbox"

local SLOW = tonumber(os.getenv("SMUGOAUTH_SLOW") or "") or 1
local now = core.monotime

describe("the rate-limit pause", function()
  local sb, client, api, at, ats

  setup(function()
    sb = sandbox.start()
    at, ats, client = sb:authorize()
    api = client:session(at, ats)
  end)

  teardown(function()
    if api then api:close() end
    if sb then sb:stop() end
  end)

  before_each(function()
    sb:mode {}
    client._paused_until = nil
  end)

  -- The API requests the sandbox has answered (its stats, less the stats calls).
  local stats_calls = 0
  local function answered()
    stats_calls = stats_calls + 1
    return sb:stats().requests - stats_calls
  end

  -- n tasks, each making GETs until `seconds` have passed since t0; the
  -- results of every request and how long the whole took.
  local function workers(n, seconds, on_start)
    local results, t0 = {}, now()
    loop.run(function()
      local tasks = {}
      for w = 1, n do
        tasks[w] = loop.spawn(function()
          while now() - t0 < seconds do
            local res, err = api:get("/api/v2!authuser")
            results[#results + 1] = { w = w, ok = res ~= nil, err = err, at = now() - t0 }
            if not res then return end
          end
        end)
      end
      if on_start then on_start(t0) end
      for _, t in ipairs(tasks) do assert(t:join()) end
    end)
    return results, now() - t0
  end

  it("a 429 with Retry-After stops every task's requests until then, then all go on", function()
    sb:mode { fail429 = 1, retry_after = 2 }
    local before, during
    local results, took = workers(4, 2.5, function(t0)
      -- the 429 is the first answer; whatever else was in flight then is
      -- answered within milliseconds: from 0.4 s to 1.6 s nothing may arrive
      loop.sleep(0.4 - (now() - t0))
      before = answered()
      loop.sleep(1.6 - (now() - t0))
      during = answered() - before
    end)
    assert.equal(0, during, ("%d requests reached the sandbox during the pause"):format(during))
    for _, r in ipairs(results) do assert(r.ok, tostring(r.err)) end
    -- every task but the one in flight at the time made its next request after the pause
    local late = {}
    for _, r in ipairs(results) do
      if r.at >= 1.9 then late[r.w] = true end
    end
    for w = 1, 4 do assert(late[w], "task " .. w .. " went on after the pause") end
    assert(took < 2.5 + 2 * SLOW)
  end)

  it("a 503 with Retry-After pauses too (and one without does not pause the others)", function()
    sb:mode { fail503 = 1 }                       -- the sandbox's 503 has no Retry-After
    local results = workers(2, 0.6)
    for _, r in ipairs(results) do assert(r.ok, tostring(r.err)) end
    assert.is_nil(client._paused_until)
    -- with Retry-After: a scripted answer through the same pipeline
    local err = errors.new("http", "503", { status = 503, response = { headers = { ["retry-after"] = "3" } } })
    assert.equal(3, retry.pause_of(err))
    err.status = 500
    assert.is_nil(retry.pause_of(err))
  end)

  it("a pause longer than the policy's max_time fails the other requests at once, unsent", function()
    sb:mode { fail429 = 1, retry_after = 30 }
    local r1, e1 = api:get("/api/v2!authuser", nil, { retry = { max_time = 5 } })
    assert.is_nil(r1)
    assert.equal(429, e1.status)
    local n = answered()
    local t0 = now()
    local r2, e2 = api:get("/api/v2!authuser", nil, { retry = { max_time = 5 } })
    assert.is_nil(r2)
    assert.equal("http", e2.code)
    assert.equal(429, e2.status)
    assert.matches("not sent", e2.message)
    assert(now() - t0 < 0.5 * SLOW)
    assert.equal(n, answered(), "nothing was sent")
  end)

  it("a task waiting out the pause can be cancelled", function()
    sb:mode { fail429 = 1, retry_after = 20 }
    loop.run(function()
      local first = loop.spawn(function() return api:get("/api/v2!authuser", nil, { retry = false }) end)
      first:join()
      local t = loop.spawn(function() return api:get("/api/v2!authuser", nil, { retry = { max_time = 60 } }) end)
      loop.sleep(0.2)
      local t0 = now()
      t:cancel()
      local ok, res, err = t:join()
      assert.is_true(ok)
      assert.is_nil(res)
      assert.equal("cancelled", err.code)
      assert(now() - t0 < 0.5 * SLOW)
    end)
  end)

  it("Retry-After as an HTTP date", function()
    local function after(v)
      return retry.retry_after { response = { headers = { ["retry-after"] = v } } }
    end
    assert.equal(7, after("7"))
    assert.equal(0, after("-3"))
    local d = after(os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 100))
    assert(d >= 98 and d <= 100, tostring(d))
    assert.is_nil(after("Sun, 06 Nov 1994 08:49:37 GMT"))   -- past: the backoff applies
    assert.is_nil(after("soon"))
    assert.is_nil(retry.retry_after { response = { headers = {} } })
  end)

  it("sessions of one client share the pause", function()
    sb:mode { fail429 = 1, retry_after = 1 }
    local other = client:session(at, ats)
    assert.is_nil(api:get("/api/v2!authuser", nil, { retry = false }))
    local t0 = now()
    -- the other session's request waits for the pause, then goes
    local res = assert(smugoauth.run(function() return other:get("/api/v2!authuser") end))
    assert.equal(200, res.status)
    assert(now() - t0 >= 0.8, ("waited %.2f s"):format(now() - t0))
    other:close()
  end)
end)
