-- The one event loop (smugoauth.loop over core.reactor): tasks, timers,
-- joins, errors, cancellation, limits; requests that yield inside tasks and
-- give the same results, retries, errors and trace lines as blocking ones;
-- embedding in cqueues through pollfd/timeout/step; what idle tasks and
-- in-flight transfers cost. Servers: spec/support/headers_server.py
-- (threaded, delay=S), the sandbox (OAuth-checking, fault modes).
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"
local loop = require "smugoauth.loop"
local errors = require "smugoauth.errors"
local proc = require "support.proc"
local files = require "support.files"
local sandbox = require "support.sandbox"
local cjson = require "cjson"

local SLOW = tonumber(os.getenv("SMUGOAUTH_SLOW") or "") or 1   -- valgrind: slower
local now = core.monotime

-- The Lua heap in bytes, after a full collection.
local function heap()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count") * 1024
end

describe("smugoauth.loop", function()
  describe("tasks", function()
    it("runs tasks concurrently: sleeps overlap, results come back through join", function()
      local order = {}
      local t0 = now()
      local a, b = loop.run(function()
        local ta = loop.spawn(function() loop.sleep(0.2) order[#order + 1] = "a" return "A", 1 end)
        local tb = loop.spawn(function() loop.sleep(0.1) order[#order + 1] = "b" return "B" end)
        local oka, ra, n = ta:join()
        local okb, rb = tb:join()
        assert.is_true(oka and okb)
        assert.equal(1, n)
        return ra, rb
      end)
      local took = now() - t0
      assert.equal("A", a)
      assert.equal("B", b)
      assert.same({ "b", "a" }, order)
      assert(took >= 0.19 and took < 0.19 + 0.5 * SLOW, ("took %.3f s"):format(took))
    end)

    it("joins from outside a task by running the loop; status says how a task ended", function()
      local lp = assert(smugoauth.loop())
      local t = lp:spawn(function(x) loop.sleep(0.01) return x * 2 end, 21)
      assert.equal("running", t:status())
      assert.same({ true, 42 }, { t:join() })
      assert.equal("ok", t:status())
      lp:close()
    end)

    it("a bare coroutine.yield() in a task lets the others run and resumes it", function()
      local seen = {}
      loop.run(function()
        local t = loop.spawn(function() seen[#seen + 1] = "other" end)
        coroutine.yield()
        seen[#seen + 1] = "main"
        t:join()
      end)
      assert.same({ "other", "main" }, seen)
    end)

    it("smugoauth.run inside a task just calls the function", function()
      local inner
      loop.run(function() inner = loop.run(function() return "inline" end) end)
      assert.equal("inline", inner)
    end)

    it("misuse raises", function()
      local lp = assert(loop.new())
      assert.has_error(function() lp:spawn("nope") end, "spawn: a function expected")
      assert.has_error(function() lp:sleep(1) end, "sleep: only from inside a task of this loop")
      assert.has_error(function() loop.run(42) end, "run: a function expected")
      assert.has_error(function() loop.limit(0) end, "limit: a positive integer expected")
      assert.has_error(function() lp:step("x") end, "step: timeout must be a number")
      lp:close()
      assert.has_error(function() lp:step(0) end, "attempt to use a closed smugoauth.Loop")
    end)
  end)

  describe("errors in tasks are never lost", function()
    it("run raises the error of a task nobody joins, with its traceback", function()
      local lp = assert(loop.new())
      lp:spawn(function() loop.sleep(0.01) error("boom in a task") end)
      lp:spawn(function() loop.sleep(0.05) end)
      local ok, err = pcall(lp.run, lp)
      assert.is_false(ok)
      assert.matches("boom in a task", err)
      assert.matches("stack traceback", err)
      lp:close()
    end)

    it("step returns nil, err, task for such an error", function()
      local lp = assert(loop.new())
      local t = lp:spawn(function() error({ code = "mine" }) end)
      local ok, err, task = lp:step(0)
      assert.is_nil(ok)
      assert.equal("mine", err.code)              -- error objects arrive as they are
      assert.equal(t, task)
      lp:close()
    end)

    it("a joined task's error goes to its joiner, not to run", function()
      local got
      loop.run(function()
        local t = loop.spawn(function() loop.sleep(0.01) error(errors.new("io", "disk")) end)
        local ok, err = t:join()
        got = { ok, err.code }
      end)
      assert.same({ false, "io" }, got)
    end)

    it("smugoauth.run re-raises the function's own error", function()
      local ok, err = pcall(loop.run, function() loop.sleep(0.01) error("mine") end)
      assert.is_false(ok)
      assert.matches("mine", err)
    end)
  end)

  describe("cancellation and limits", function()
    it("cancel ends the task's wait at once and every later one", function()
      local seen = {}
      loop.run(function()
        local t = loop.spawn(function()
          seen[1] = loop.sleep(10)                   -- false: cancelled
          seen[2] = loop.sleep(10)                   -- false at once
        end)
        loop.sleep(0.02)
        local t0 = now()
        assert.is_true(t:cancel())
        t:join()
        seen[3] = now() - t0
        assert.is_false(t:cancel())                  -- it had finished
      end)
      assert.is_false(seen[1])
      assert.is_false(seen[2])
      assert(seen[3] < 1, "cancel took " .. seen[3])
    end)

    it("a limit lets at most n run; thousands may wait; release returns the slot", function()
      local lim = loop.limit(3)
      local running, peak, done = 0, 0, 0
      loop.run(function()
        for _ = 1, 2000 do
          lim:spawn(function()
            running = running + 1
            if running > peak then peak = running end
            loop.sleep(0)
            running = running - 1
            done = done + 1
          end)
        end
      end)
      assert.equal(3, peak)
      assert.equal(2000, done)
      assert.equal(3, lim.free)
      assert.has_error(function() lim:release() end, "limit: released more than acquired")
    end)

    it("a limit outside any task with no free slot raises instead of waiting forever", function()
      local lim = loop.limit(1)
      assert.is_true(lim:acquire())
      assert.has_error(function() lim:acquire() end)
      lim:release()
    end)

    it("map calls fn for every item, in order of the results, at most `concurrency` at a time", function()
      local running, peak = 0, 0
      local results, errs = smugoauth.map({ 1, 2, 3, 4, 5, 6 }, function(x)
        running = running + 1
        peak = math.max(peak, running)
        loop.sleep(0.01)
        running = running - 1
        if x == 4 then error("four") end
        return x * 10
      end, { concurrency = 2 })
      assert.equal(2, peak)
      assert.same({ 10, 20, 30, nil, 50, 60 }, { results[1], results[2], results[3], results[4], results[5],
                                                 results[6] })
      assert.matches("four", errs[4])
      assert.is_nil(errs[1])
    end)
  end)

  describe("requests in tasks", function()
    local srv, origin, c, api
    setup(function()
      srv = proc.spawn({ "/usr/bin/python3", "spec/support/headers_server.py", "--max-life", "600" },
                       { expect = "^PORT %d+$", timeout = 10 })
      origin = "http://127.0.0.1:" .. srv.port
      c = smugoauth.new { key = "k", secret = "s", api_origin = origin, oauth_origin = origin,
                          upload_origin = origin, timeout = 5 * SLOW }
      api = c:session("t", "ts")
    end)
    teardown(function()
      api:close()
      srv:close()
    end)

    local function stats()
      local h = core.http_new {}
      local res = assert(h:request { url = origin .. "/_stats" })
      h:close()
      return cjson.decode(res.body)
    end

    it("overlap: 10 GETs answered after 0.3 s take about 0.3 s, not 3 s", function()
      local t0 = now()
      local codes = {}
      loop.run(function()
        local ts = {}
        for i = 1, 10 do
          ts[i] = loop.spawn(function() return assert(api:get("/slow", { delay = 0.3 })).status end)
        end
        for i = 1, 10 do codes[i] = select(2, ts[i]:join()) end
      end)
      local took = now() - t0
      for i = 1, 10 do assert.equal(200, codes[i]) end
      assert(took < 0.3 + 1.2 * SLOW, ("10 overlapping GETs took %.2f s"):format(took))
    end)

    it("a task waiting on a request does not stop the others: a sleeper wakes on time", function()
      local late
      loop.run(function()
        loop.spawn(function() assert(api:get("/slow", { delay = 0.5 })) end)
        local t0 = now()
        loop.sleep(0.05)
        late = now() - t0 - 0.05
      end)
      assert(late < 0.2 * SLOW, ("the sleeper woke %.3f s late"):format(late))
    end)

    it("keeps connections across tasks: 40 GETs in tasks, 4 at a time, use few connections", function()
      local before = stats().connections
      local new = 0
      loop.run(function()
        local lim = loop.limit(4)
        for _ = 1, 40 do
          lim:spawn(function() new = new + assert(api:get("/reuse")).new_connections end)
        end
      end)
      local opened = stats().connections - before - 1   -- (less the second _stats call's own)
      assert(opened <= 4, "40 GETs, 4 at a time, opened " .. opened .. " connections")
      assert.equal(opened, new)
    end)

    it("get_many inside a task yields: another task runs meanwhile", function()
      local ticks, results = 0, nil
      loop.run(function()
        local ticker = loop.spawn(function()
          for _ = 1, 5 do loop.sleep(0.05) ticks = ticks + 1 end
        end)
        results = api:get_many({ { path = "/a", query = { delay = 0.3 } }, { path = "/b", query = { delay = 0.3 } } })
        ticker:join()
      end)
      assert.equal(200, results[1].status)
      assert.equal("/b", results[2]:json().path)
      assert(ticks >= 5)
    end)

    it("cancelling a task cancels its request: nil, err code cancelled, at once", function()
      local err, took
      loop.run(function()
        local t = loop.spawn(function() return api:get("/hang", { delay = 5 }) end)
        loop.sleep(0.1)
        local t0 = now()
        t:cancel()
        local _, res, e = t:join()
        took = now() - t0
        assert.is_nil(res)
        err = e
      end)
      assert.equal("cancelled", err.code)
      assert(took < 0.5 * SLOW, ("cancel took %.2f s"):format(took))
    end)

    it("a request's own timeout still holds inside a task", function()
      local short = smugoauth.new { key = "k", secret = "s", api_origin = origin, oauth_origin = origin,
                                    upload_origin = origin, timeout = 0.3, retry = false }
      local s2 = short:session("t", "ts")
      local err, took
      loop.run(function()
        local t0 = now()
        local res
        res, err = s2:get("/hang", { delay = 3 })
        took = now() - t0
        assert.is_nil(res)
      end)
      s2:close()
      assert.equal("timeout", err.code)
      assert(took < 0.3 + 0.7 * SLOW, ("timed out after %.2f s"):format(took))
    end)

    it("on_progress runs for uploads in tasks; an error it raises is raised in the task", function()
      local dir = files.tmpdir()
      local path = dir .. "/p.jpg"
      files.write_file(path, string.rep("x", 300000))
      local calls = 0
      loop.run(function()
        assert(api:upload { album = "/api/v2/album/K", file = path,
                            on_progress = function() calls = calls + 1 end })
        local ok, err = pcall(api.upload, api, { album = "/api/v2/album/K", file = path,
                                                 on_progress = function() error("stop it") end })
        assert.is_false(ok)
        assert.matches("stop it", err)
      end)
      os.remove(path)
      os.remove(dir)
      assert(calls > 0)
    end)

    it("client option yield = false makes requests block inside tasks (as before the loop)", function()
      local blocking = smugoauth.new { key = "k", secret = "s", api_origin = origin, oauth_origin = origin,
                                       upload_origin = origin, yield = false }
      local s2 = blocking:session("t", "ts")
      local late
      loop.run(function()
        loop.spawn(function() assert(s2:get("/slow", { delay = 0.4 })) end)
        local t0 = now()
        loop.sleep(0.01)
        late = now() - t0
      end)
      s2:close()
      assert(late >= 0.35, ("the sleeper was not held up (%.3f s)"):format(late))
    end)
  end)

  describe("yielding and blocking give the same results", function()
    local sb
    setup(function() sb = sandbox.start { key = "ck-loop", secret = "cs&loop" } end)
    teardown(function() sb:stop() end)

    -- One scripted sequence of calls; returns what each gave and the trace
    -- lines without what changes between runs (times, nonces, signatures).
    local function script(api)
      local out = {}
      local res, err = api:get("/api/v2!authuser")
      out[#out + 1] = res and res:json().Response.User.NickName or tostring(err)
      sb:mode { fail429 = 2, retry_after = 0 }
      res, err = api:get("/api/v2/album/K0001")
      out[#out + 1] = res and ("200 after retries") or (err.code .. " " .. tostring(err.attempts))
      sb:mode {}
      res, err = api:get("/api/v2/album/NOPE")
      out[#out + 1] = res and "200" or (err.code .. " " .. tostring(err.status) .. " " .. err.attempts)
      sb:mode { fail503 = 5 }
      res, err = api:post("/api/v2!echo", { form = { a = "b" } })
      out[#out + 1] = res and "200" or (err.code .. " " .. tostring(err.status) .. " " .. err.attempts)
      sb:mode {}
      local many = api:get_many({ "/api/v2/album/K0002", "/api/v2/album/NOPE" })
      out[#out + 1] = many[1].status .. " " .. many[2].code .. " " .. many[2].status
      return out
    end

    local function normalize(lines)
      local out = {}
      for _, l in ipairs(lines) do
        l = l:gsub("%(%d+%.%d ms", "(T ms"):gsub("oauth_nonce%%3D%x+", "oauth_nonce%%3DN")
             :gsub('oauth_nonce="%x+"', 'oauth_nonce="N"'):gsub("oauth_timestamp%%3D%d+", "oauth_timestamp%%3DT")
             :gsub('oauth_timestamp="%d+"', 'oauth_timestamp="T"'):gsub("Date: [^\n]*", "Date: D")
             :gsub(", reused connection", ""):gsub("retrying in [%d.]+ s", "retrying in S s")
             :gsub('oauth_token="%x+"', 'oauth_token="K"'):gsub("oauth_token%%3D%x+", "oauth_token%%3DK")
        out[#out + 1] = l
      end
      table.sort(out)                              -- get_many's lines interleave differently
      return out
    end

    it("same answers, retries, errors and trace lines, in a task and outside", function()
      local runs = {}
      for _, mode in ipairs { "blocking", "task" } do
        local lines = {}
        local c = sb:client { debug = function(l) lines[#lines + 1] = l end,
                              retry = { base = 0.01, sleep = nil } }
        local at, ats = assert(sb:authorize())
        local api = c:session(at, ats)
        lines = {}                                   -- (the flow's own lines differ: its tokens)
        local out
        if mode == "blocking" then out = script(api) else out = loop.run(script, api) end
        api:close()
        runs[mode] = { out = out, lines = normalize(lines) }
      end
      assert.same(runs.blocking.out, runs.task.out)
      assert.equal("200 after retries", runs.task.out[2])
      assert.equal("http 404 1", runs.task.out[3])
      assert.equal("http 503 1", runs.task.out[4])   -- a POST is not retried (unsafe is false)
      assert.same(runs.blocking.lines, runs.task.lines)
    end)
  end)

  describe("embedding", function()
    it("cqueues drives our loop through pollfd/events/timeout and step(0)", function()
      local cqueues = require "cqueues"
      local lp = assert(loop.new())
      local ours, theirs = 0, 0
      lp:spawn(function()
        for _ = 1, 5 do lp:sleep(0.02) ours = ours + 1 end
      end)
      local cq = cqueues.new()
      cq:wrap(function()
        while lp:tasks() > 0 do
          cqueues.poll(lp, 0.5)                      -- our loop is a pollable object
          assert(lp:step(0))
        end
      end)
      cq:wrap(function()
        for _ = 1, 5 do cqueues.sleep(0.02) theirs = theirs + 1 end
      end)
      local t0 = now()
      assert(cq:loop(5))
      assert.equal(5, ours)
      assert.equal(5, theirs)
      assert(now() - t0 < 2 * SLOW)
      lp:close()
    end)

    it("timeout() says when the next timer is due; pollfd is readable when a transfer finishes", function()
      local lp = assert(loop.new())
      assert.is_nil(lp:timeout())
      lp:spawn(function() lp:sleep(0.5) end)
      assert.equal(0, lp:timeout())                  -- a task is ready to run
      assert(lp:step(0))
      local t = lp:timeout()
      assert(t > 0.3 and t <= 0.5, "timeout " .. tostring(t))
      assert.is_number(lp:pollfd())
      lp:close()
    end)
  end)

  describe("costs", function()
    it("10,000 idle tasks cost little memory each", function()
      local lp = assert(loop.new())
      local before = heap()
      for _ = 1, 10000 do lp:spawn(function() lp:sleep(3600) end) end
      assert(lp:step(0))
      local per = (heap() - before) / 10000
      print(("\nloop_spec: an idle task (a sleeping coroutine and its timer) costs %.0f bytes of Lua heap"):format(per))
      assert(per < 4096, ("%.0f bytes per idle task"):format(per))
      lp:close()
    end)
  end)
end)
