-- api:backup when the server misbehaves: a 429 storm pauses every job until
-- Retry-After (nothing reaches the sandbox meanwhile), connections dropped
-- mid-file are resumed with Range (no byte fetched twice), a refused token
-- stops the run at once, a failing download is reported and retried by the
-- next run.
local core = require "smugoauth.core"
local loop = require "smugoauth.loop"
local sandbox = require "support.sandbox"
local files = require "support.files"
local proc = require "support.proc"
local bk = require "support.backup"

local SLOW = tonumber(os.getenv("SMUGOAUTH_SLOW") or "") or 1
local now = core.monotime

describe("api:backup under faults", function()
  local sb, api, root, dest, truth

  setup(function()
    sb = sandbox.start { fixture = "bench", images = 60, image_size = 40000 }
    api = sb:session()
    truth = bk.truth(api, sb)
  end)

  teardown(function()
    if api then api:close() end
    if sb then sb:stop() end
  end)

  before_each(function()
    root = files.tmpdir()
    dest = root .. "/dest"
    sb:mode {}
    sb:reset_stats()
    api.client._paused_until = nil
  end)

  after_each(function()
    os.execute("rm -rf " .. proc.q(root))
  end)

  local total = function()
    local n = 0
    for _, t in pairs(truth) do n = n + t.size end
    return n
  end

  it("a 429 storm: every job pauses until Retry-After, not only the one told; then all is saved", function()
    -- each download takes a while (rate); one of the four jobs gets the 429
    sb:mode { rate = 400000, fail429 = 1, retry_after = 2, scope = "archive" }
    local stats_calls, quiet, s = 0, nil, nil
    local function sent()
      stats_calls = stats_calls + 1
      local st = sb:stats()
      return st.requests - stats_calls, st.throttled
    end
    local t0 = now()
    loop.run(function()
      local run = loop.spawn(function() return api:backup { dest = dest, jobs = 4 } end)
      -- wait for the storm's first 429, then count what arrives during the pause
      local throttled = 0
      while throttled == 0 and now() - t0 < 10 * SLOW do
        loop.sleep(0.01)
        throttled = select(2, sent())
      end
      assert(throttled > 0, "the storm came")
      loop.sleep(0.3)                          -- (the other jobs end the downloads they are in)
      local before = sent()
      loop.sleep(1.2)
      quiet = sent() - before
      local ok
      ok, s = run:join()
      assert(ok, tostring(s))
    end)
    assert.equal(0, quiet, ("%d requests reached the sandbox during the pause"):format(quiet))
    assert.is_true(s.ok)
    assert.equal(60, s.saved)
    assert.equal(1, sb:stats().throttled)
    bk.verify(dest, truth, true)
    assert(now() - t0 >= 2, "the pause was waited")
  end)

  it("connections dropped mid-file: resumed with Range, no byte fetched twice", function()
    sb:mode { drop_after = 15000, drop_count = 3 }
    local s = assert(api:backup { dest = dest })
    assert.is_true(s.ok)
    local st = sb:stats()
    assert.equal(3, st.downloads_dropped)
    assert.equal(3, st.downloads_ranged)
    assert.equal(total(), st.archive_bytes)
    assert.equal(total(), s.bytes)
    bk.verify(dest, truth, true)
  end)

  it("a download that keeps failing is reported, its bytes kept, and finished by the next run", function()
    local flaky = sb:session { retry = false }
    sb:mode { drop_after = 10000, drop_count = 1 }
    local s = assert(flaky:backup { dest = dest, jobs = 1 })
    flaky:close()
    assert.is_false(s.ok)
    assert.equal(59, s.saved)
    assert.equal(1, #s.failures)
    assert.equal("network", s.failures[1].code)
    sb:reset_stats()
    s = assert(api:backup { dest = dest })
    assert.is_true(s.ok)
    assert.equal(1, s.saved)
    assert.equal(40000 - 10000, sb:stats().archive_bytes)
    bk.verify(dest, truth, true)
  end)

  it("a refused token stops the run at once: nothing saved, the reason kept", function()
    local bad = sb:client():session("not-a-token", "nor-a-secret")
    local s = assert(bad:backup { dest = dest })
    bad:close()
    assert.is_false(s.ok)
    assert.is_false(s.complete)
    assert.equal(0, s.saved)
    assert.equal("oauth", s.stopped.code)
    assert.equal(0, sb:stats().archive_requests)
  end)
end)
