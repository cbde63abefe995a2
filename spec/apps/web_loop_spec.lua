-- web_loop_spec.lua -- the web app (smugoauth.apps.web) no longer stalls: its
-- provider calls (/authorize, /callback, /test) yield on the event loop while
-- every other request is served; a hung provider fails with the client's
-- timeout; a browser that leaves cancels its provider call.
--
-- In process: the sandbox (smugoauth.apps.sandbox, with a latency: every
-- answer after S seconds, waited in its connection's task) and the web app
-- serve on the default loop, and the browsers are tasks of it (support.
-- loop_client). `drive` steps each server, and the loop when a server is
-- not on it: the same tests show how a server off the loop stalls. The last
-- describe runs examples/web.lua and examples/sandbox.lua --latency as child
-- processes, as a user would (the figures of issue 11).
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local loop = require "smugoauth.loop"
local smugoauth = require "smugoauth"
local webapp = require "smugoauth.apps.web"
local sandbox_app = require "smugoauth.apps.sandbox"
local lc = require "support.loop_client"
local sandbox = require "support.sandbox"
local web = require "support.web_fixture"

local SLOW = tonumber(os.getenv("SMUGOAUTH_SLOW") or "") or 1
local now = core.monotime
local KEY = string.rep("k", 32)
local AT = webapp.AT_COOKIE

-- Run fn as a task of the default loop while serving `servers`, until fn is
-- done (at most `limit` seconds): fn's results; its error is raised.
local function drive(servers, limit, fn)
  local L = loop.default()
  local t = L:spawn(fn)
  local deadline = now() + limit
  while not t.done do
    assert(now() < deadline, "not done within " .. limit .. " s")
    for _, srv in ipairs(servers) do
      local ok, err, failed = srv:step(0.005)
      if not ok then error(type(failed) == "table" and failed.trace or err, 0) end
      if srv.loop ~= L then assert(L:step(0)) end
    end
  end
  if not t.ok then error(t.trace or t.err, 0) end
  return table.unpack(t.results, 1, t.results.n)
end

-- The Cookie header of a browser the app has authorized (access token at, ats).
local function session_cookie(at, ats)
  return "Cookie: " .. AT .. "=" .. core.cookie_seal(KEY, AT, cjson.encode { t = at, s = ats }, os.time() + 600)
end

describe("the web app on the event loop (the sandbox in the same process)", function()
  local sb, app, srv, client, logged
  local COOKIE

  local function start(client_opts)
    logged = {}
    sb = assert(sandbox_app.new { key = "ck", secret = "cs", log = function() end })
    sb.access_tokens.AT1 = { secret = "ATS1", user = "tester" }     -- an authorized browser
    COOKIE = session_cookie("AT1", "ATS1")
    local o = { key = "ck", secret = "cs", oauth_origin = sb.origin, api_origin = sb.origin,
                upload_origin = sb.origin, timeout = 5 }
    for k, v in pairs(client_opts or {}) do o[k] = v end
    client = smugoauth.new(o)
    app = assert(webapp.new { client = client, key = KEY, port = 0, log = function(m) logged[#logged + 1] = m end,
                              authorize_burst = 10 })
    srv = assert(app:serve { host = "127.0.0.1" })
  end

  after_each(function()
    if srv then srv:close() end
    if sb then sb:close() end
    if client then client:close() end
    srv, sb, client = nil, nil, nil
    local L = loop.default()
    for _ = 1, 20 do                               -- what closing cancelled ends
      if L:tasks() == 0 then break end
      L:step(0)
    end
  end)

  local function page(path) return app.origin .. path end

  -- GET / every 50 ms until `busy()` is false: the responses.
  local function poll_home(busy)
    local L, list = loop.current(), {}
    repeat
      list[#list + 1] = assert(lc.get(L, page("/")))
      smugoauth.sleep(0.05)
    until not busy()
    return list
  end

  local function assert_quick(homes, n)
    assert(#homes >= n, "GET / answered only " .. #homes .. " times meanwhile")
    for _, r in ipairs(homes) do
      assert.equal(200, r.status)
      assert(r.took < 0.1 * SLOW, ("GET / took %.3f s"):format(r.took))
    end
  end

  it("answers ten browsers opening /test at once in about one call's latency (0.5 s); GET / stays quick", function()
    start()
    sb.mode.latency = 0.5
    local results, homes, took = drive({ srv, sb.server }, 30 * SLOW, function()
      local L, tasks, left = loop.current(), {}, 10
      local t0 = now()
      for i = 1, 10 do
        tasks[i] = L:spawn(function()
          local r = lc.get(L, page("/test?path=%2Fapi%2Fv2%21authuser"), { headers = { COOKIE } })
          left = left - 1
          return r
        end)
      end
      local h = poll_home(function() return left > 0 end)
      local rs = {}
      for i = 1, 10 do rs[i] = select(2, tasks[i]:join()) end
      return rs, h, now() - t0
    end)
    for _, r in ipairs(results) do
      assert.equal(200, r.status, r.body)
      assert.matches("&quot;NickName&quot;: &quot;tester&quot;", r.body, 1, true)
      assert(r.took >= 0.5, ("a /test took %.3f s"):format(r.took))
    end
    -- one after another they would take 5 s
    local slowest = 0
    for _, r in ipairs(homes) do slowest = math.max(slowest, r.took) end
    print(("web_loop_spec: ten /test at once (provider 0.5 s): %.2f s in all; GET / meanwhile: %d, " ..
      "slowest %.1f ms"):format(took, #homes, slowest * 1000))
    assert(took < 0.5 + 1 * SLOW, ("ten /test took %.2f s in all"):format(took))
    assert_quick(homes, 5)
    assert.equal(10, sb.stats.delayed)
    assert.same({}, logged)
  end)

  it("runs /authorize and /callback for five browsers at once in about one call's latency each", function()
    start()
    sb.mode.latency = 0.5
    local starts, dones, took_a, took_c, homes = drive({ srv, sb.server }, 30 * SLOW, function()
      local L, busy = loop.current(), true
      local function all(fn)
        local tasks, rs = {}, {}
        for i = 1, 5 do tasks[i] = L:spawn(fn, i) end
        for i = 1, 5 do rs[i] = select(2, tasks[i]:join()) end
        return rs
      end
      local th = L:spawn(function() return poll_home(function() return busy end) end)
      local t0 = now()
      local st = all(function() return lc.get(L, page("/authorize")) end)
      local ta = now() - t0
      t0 = now()
      local dn = all(function(i)
        local r = st[i]
        local token = core.percent_decode(lc.header(r, "location"):match("oauth_token=([^&]+)"))
        local _, cb = sb:approve(token)                    -- the user approves (in process)
        local cookie = lc.header(r, "set-cookie"):match("^([^;]+)")
        return lc.get(L, cb:gsub("^http://127%.0%.0%.1:%d+", app.origin), { headers = { "Cookie: " .. cookie } })
      end)
      local tc = now() - t0
      busy = false
      return st, dn, ta, tc, select(2, th:join())
    end)
    for i = 1, 5 do
      assert.equal(302, starts[i].status, starts[i].body)
      assert.matches("^" .. sb.origin:gsub("%p", "%%%0") .. "/services/oauth/1%.0a/authorize%?",
        lc.header(starts[i], "location"))
      assert.equal(302, dones[i].status, dones[i].body)
      assert.equal(app.origin .. "/", lc.header(dones[i], "location"))
      assert.matches(AT .. "=", lc.header(dones[i], "set-cookie"), 1, true)
    end
    assert(took_a < 0.5 + 1 * SLOW, ("five /authorize took %.2f s in all"):format(took_a))
    assert(took_c < 0.5 + 1 * SLOW, ("five /callback took %.2f s in all"):format(took_c))
    assert_quick(homes, 5)
    assert.same({}, logged)
  end)

  it("shows a hung provider's timeout on /test within the client's timeout (1 s); GET / keeps answering", function()
    start { timeout = 1 }
    sb.mode.latency = 30                           -- longer than any timeout here
    local r, homes = drive({ srv, sb.server }, 20 * SLOW, function()
      local L = loop.current()
      local t = L:spawn(function()
        return lc.get(L, page("/test?path=%2Fapi%2Fv2%21authuser"), { headers = { COOKIE } })
      end)
      local h = poll_home(function() return t:status() == "running" end)
      return select(2, t:join()), h
    end)
    assert.equal(502, r.status)
    assert.matches('<p id="error">smugoauth: timeout', r.body, 1, true)
    assert(r.took >= 0.9 and r.took < 1 + 1 * SLOW, ("/test answered after %.2f s"):format(r.took))
    assert_quick(homes, 10)
    assert.matches("^GET /api/v2!authuser: smugoauth: timeout", logged[1])
  end)

  it("cancels the provider call of a browser that leaves mid-/test: the provider sees it dropped", function()
    start()
    sb.mode.latency = 5
    local cancelled_after = drive({ srv, sb.server }, 20 * SLOW, function()
      local s = lc.raw(srv.port, "GET /test?path=%2Fapi%2Fv2%21authuser HTTP/1.1\r\nHost: 127.0.0.1:" ..
        srv.port .. "\r\n" .. COOKIE .. "\r\n\r\n")
      local deadline = now() + 5 * SLOW
      while sb.stats.delayed == 0 and now() < deadline do smugoauth.sleep(0.01) end
      assert.equal(1, sb.stats.delayed)            -- the provider is answering it
      local t0 = now()
      s:close()                                    -- the browser leaves
      while sb.stats.cancelled == 0 and now() < deadline do smugoauth.sleep(0.01) end
      local took = now() - t0
      while srv:connections() > 0 and now() < deadline do smugoauth.sleep(0.01) end
      return took
    end)
    print(("web_loop_spec: a browser left mid-/test: the provider saw its call dropped %.0f ms later")
      :format(cancelled_after * 1000))
    assert.equal(1, sb.stats.cancelled)            -- its connection was dropped before the answer
    assert(cancelled_after < 0.5 * SLOW, ("the provider saw it after %.2f s"):format(cancelled_after))
    assert.equal(0, srv:connections())
    assert.same({}, logged)                        -- a cancelled call is no failure to log
  end)
end)

describe("examples/web.lua with examples/sandbox.lua --latency 0.5 (child processes)", function()
  local sb, w, dir, cookie

  setup(function()
    sb = sandbox.start { key = "web-key", secret = "web-secret" }
    dir = web.tmpdir()
    w = web.start { config = web.write_config(dir, sb), key_file = dir .. "/cookie.key" }
    local hex = assert(web.read_file(dir .. "/cookie.key")):match("^(%x+)\n?$")
    local key = hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
    local at, ats = sb:authorize()
    cookie = "Cookie: " .. AT .. "=" .. core.cookie_seal(key, AT, cjson.encode { t = at, s = ats }, os.time() + 600)
    sb:mode { latency = 0.5 }
  end)
  teardown(function()
    if w then w:stop() end
    if sb then sb:stop() end
    web.remove_dir(dir)
  end)

  it("answers ten browsers opening /test at once in about one call's latency; GET / stays quick", function()
    local L = assert(loop.new())
    finally(function() L:close() end)
    local results, homes, took = lc.call(L, 30 * SLOW, function()
      local tasks, left = {}, 10
      local t0 = now()
      for i = 1, 10 do
        tasks[i] = L:spawn(function()
          local r = lc.get(L, w.origin .. "/test?path=%2Fapi%2Fv2%21authuser", { headers = { cookie } })
          left = left - 1
          return r
        end)
      end
      local h = {}
      repeat
        h[#h + 1] = assert(lc.get(L, w.origin .. "/"))
        L:sleep(0.05)
      until left == 0
      local rs = {}
      for i = 1, 10 do rs[i] = select(2, tasks[i]:join()) end
      return rs, h, now() - t0
    end)
    local slowest = 0
    for _, r in ipairs(homes) do
      assert.equal(200, r.status)
      slowest = math.max(slowest, r.took)
    end
    print(("web_loop_spec: examples/web.lua, ten /test at once (sandbox --latency 0.5): %.2f s in all; " ..
      "GET / meanwhile: %d, slowest %.1f ms"):format(took, #homes, slowest * 1000))
    for _, r in ipairs(results) do
      assert.equal(200, r.status, r.body)
      assert.matches("&quot;NickName&quot;: &quot;tester&quot;", r.body, 1, true)
    end
    assert(took < 0.5 + 1 * SLOW, ("ten /test took %.2f s in all"):format(took))
    assert(#homes >= 5, "GET / answered only " .. #homes .. " times meanwhile")
    assert(slowest < 0.1 * SLOW, ("GET / took up to %.3f s"):format(slowest))
    assert.equal(10, sb:stats().delayed)
  end)
end)
