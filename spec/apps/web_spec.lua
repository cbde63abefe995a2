-- web_spec.lua -- the cookie sealer (core.cookie_*), smugoauth.apps.web and
-- examples/web.lua: the web OAuth flow and every refusal it must make.
--
-- Request-level tests run examples/web.lua as a child process (port 0, a
-- private key file) against the sandbox (examples/sandbox.lua, also a child)
-- and against the independent python3-oauthlib provider, with a LuaSocket
-- client keeping cookies as the browser. A few tests call the app's handler
-- in this process with a fake client (API failures; useful under valgrind).
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local errors = require "smugoauth.errors"
local webapp = require "smugoauth.apps.web"
local sandbox = require "support.sandbox"
local web = require "support.web_fixture"

local RT, AT = webapp.RT_COOKIE, webapp.AT_COOKIE
-- Under valgrind (make valgrind sets SMUGOAUTH_SLOW) time bounds scale by it.
local SLOW = tonumber(os.getenv("SMUGOAUTH_SLOW") or "") or 1

-- The process's resident set (VmRSS) and its peak (VmHWM), KiB.
local function memory()
  local s = web.read_file("/proc/self/status") or ""
  return tonumber(s:match("VmRSS:%s*(%d+)")), tonumber(s:match("VmHWM:%s*(%d+)"))
end

-- Reset the peak (VmHWM) to the current RSS; false when the kernel refuses.
local function reset_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if not f then return false end
  local ok = f:write("5")
  return (f:close() and ok) and true or false
end

-- How much the peak RSS grew (KiB) while fn ran; and fn's results.
local function peak_growth(fn)
  collectgarbage()
  collectgarbage()
  local rss0, hwm0 = memory()
  local base = reset_peak() and select(2, memory()) or rss0
  local r = table.pack(fn())
  local _, hwm1 = memory()
  -- without a reset the peak may predate fn: count from the RSS before it
  -- (this can only overstate the growth)
  if hwm1 < base then hwm1 = math.max(hwm1, hwm0) end
  return hwm1 - base, table.unpack(r, 1, r.n)
end

-- Is the IPv6 loopback usable here? true, or false and why.
local function have_ipv6_loopback()
  local socket = require "socket"
  local l, err = socket.bind("::1", 0)
  if not l then return false, tostring(err) end
  l:close()
  return true
end

-- The key file's 32 bytes (64 hex digits).
local function read_key(path)
  local hex = assert(web.read_file(path)):match("^(%x+)\n?$")
  return (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

local function file_mode(path)
  local p = assert(io.popen("stat -c %a " .. web.q(path)))
  local m = p:read("l")
  p:close()
  return m
end

-- Every response must carry these.
local function assert_safe_headers(res)
  assert.equal("nosniff", res.headers["x-content-type-options"])
  local csp = res.headers["content-security-policy"] or ""
  assert.matches("default-src 'none'", csp, 1, true)
  assert.matches("form-action 'self'", csp, 1, true)
  assert.matches("frame-ancestors 'none'", csp, 1, true)
  assert.equal("no-store", res.headers["cache-control"])
end

-- The Set-Cookie of `name` in a response: value, attributes.
local function cookie_of(res, name)
  for _, sc in ipairs(res.set_cookies) do
    local n, v, attrs = web.parse_set_cookie(sc)
    if n == name then return v, attrs end
  end
end

------------------------------------------------------------------ the sealer

-- cookie_open's failure as {nil, code} (it answers nil, message, code).
local function reason(v, _, code) return { v, code } end

describe("core.cookie_seal / core.cookie_open", function()
  local key = core.random_bytes(32)
  local later = os.time() + 3600

  it("round-trips a payload in a cookie-safe value of four base64url pieces", function()
    local payload = '{"t":"token","s":"secret"}'
    local v = core.cookie_seal(key, "smugoauth_at", payload, later)
    assert.matches("^[%w%-_]+%.[%w%-_]+%.[%w%-_]+%.[%w%-_]+$", v)
    assert.truthy(#v <= 4096)
    assert.equal(payload, core.cookie_open(key, "smugoauth_at", v))
    assert.equal(payload, core.cookie_open(key, "smugoauth_at", v, later - 1))
  end)

  it("round-trips empty, binary and maximum-size payloads", function()
    for _, p in ipairs { "", "\0\1\2\255", string.rep("x", core.cookie_max_payload) } do
      local v = core.cookie_seal(key, "c", p, later)
      assert.truthy(#v <= 4096)
      assert.equal(p, core.cookie_open(key, "c", v))
    end
  end)

  it("uses a fresh IV: sealing twice gives different values; the payload is not visible", function()
    local p = "VERY-SECRET-TOKEN-SECRET"
    local a, b = core.cookie_seal(key, "c", p, later), core.cookie_seal(key, "c", p, later)
    assert.are_not.equal(a, b)
    for piece in a:gmatch("[^.]+") do
      assert.falsy(piece:find(p, 1, true))
      assert.falsy(core.b64decode(piece, true):find(p, 1, true))
    end
  end)

  it("refuses another cookie name, another key, an expired value", function()
    local v = core.cookie_seal(key, "smugoauth_rt", "x", later)
    assert.same({ nil, "bad_mac" }, reason(core.cookie_open(key, "smugoauth_at", v)))
    assert.same({ nil, "bad_mac" }, reason(core.cookie_open(core.random_bytes(32), "smugoauth_rt", v)))
    assert.same({ nil, "expired" }, reason(core.cookie_open(key, "smugoauth_rt", v, later)))
    assert.same({ nil, "expired" }, reason(core.cookie_open(key, "smugoauth_rt", v, later + 100)))
    local old = core.cookie_seal(key, "smugoauth_rt", "x", os.time() - 1)
    assert.same({ nil, "expired" }, reason(core.cookie_open(key, "smugoauth_rt", old)))
  end)

  it("refuses every truncation and every single-character change, without raising", function()
    local v = core.cookie_seal(key, "c", "payload", later)
    for i = 0, #v - 1 do
      local p, why = core.cookie_open(key, "c", v:sub(1, i))
      assert.is_nil(p)
      assert.is_string(why)
    end
    local alphabet = "Aa0-_.Z"
    for i = 1, #v do
      for j = 1, #alphabet do
        local c = alphabet:sub(j, j)
        if c ~= v:sub(i, i) then
          local w = v:sub(1, i - 1) .. c .. v:sub(i + 1)
          assert.is_nil((core.cookie_open(key, "c", w)), "accepted a change at " .. i)
        end
      end
    end
    assert.is_nil((core.cookie_open(key, "c", v .. "A")))
    assert.is_nil((core.cookie_open(key, "c", v .. ".AAAA")))
  end)

  it("moving the expiry into another value does not verify", function()
    local short = core.cookie_seal(key, "c", "p", os.time() + 10)
    local long = core.cookie_seal(key, "c", "p", later)
    local spliced = long:match("^[^.]+") .. short:match("^[^.]+(.*)$")
    assert.same({ nil, "bad_mac" }, reason(core.cookie_open(key, "c", spliced)))
  end)

  it("answers nil, reason for garbage and overlong values", function()
    assert.same({ nil, "too_long" }, reason(core.cookie_open(key, "c", string.rep("A", 4097))))
    for _, g in ipairs { "", ".", "....", "a.b.c.d", "a.b.c.d.e", "AAAA.AAAA.AAAA.AAAA",
                         "x\0y", "é.é.é.é", string.rep(".", 4096) } do
      local p, why = core.cookie_open(key, "c", g)
      assert.is_nil(p)
      assert.is_string(why)
    end
    for _ = 1, 200 do
      local g = core.random_bytes(math.random(0, 300))
      assert.is_nil((core.cookie_open(key, "c", g)))
      assert.is_nil((core.cookie_open(key, "c", core.b64encode(g, true))))
    end
  end)

  it("raises on misuse", function()
    assert.has_error(function() core.cookie_seal("short", "c", "p", later) end)
    assert.has_error(function() core.cookie_open("short", "c", "v") end)
    assert.has_error(function() core.cookie_seal(key, "", "p", later) end)
    assert.has_error(function() core.cookie_seal(key, "a b", "p", later) end)
    assert.has_error(function() core.cookie_seal(key, "a;b", "p", later) end)
    assert.has_error(function() core.cookie_seal(key, "c", "p", 0) end)
    assert.has_error(function() core.cookie_seal(key, "c", string.rep("x", core.cookie_max_payload + 1), later) end)
  end)
end)

describe("core.cookie_key_file", function()
  local dir
  before_each(function() dir = web.tmpdir() end)
  after_each(function() web.remove_dir(dir) end)

  it("creates a 0600 file with a fresh key, then reads the same key back", function()
    local path = dir .. "/key"
    local k1, created = core.cookie_key_file(path)
    assert.equal(32, #k1)
    assert.is_true(created)
    assert.equal("600", file_mode(path))
    assert.matches("^%x+\n$", web.read_file(path))
    local k2, created2 = core.cookie_key_file(path)
    assert.equal(k1, k2)
    assert.is_false(created2)
    assert.equal(k1, read_key(path))
  end)

  it("refuses a file readable by group or others, a symlink, bad contents", function()
    local path = dir .. "/key"
    assert(core.cookie_key_file(path))
    os.execute("chmod 640 " .. web.q(path))
    local k, msg, code = core.cookie_key_file(path)
    assert.is_nil(k)
    assert.equal("io", code)
    assert.matches("group or others", msg, 1, true)
    assert.matches(path, msg, 1, true)
    os.execute("chmod 604 " .. web.q(path))
    assert.is_nil((core.cookie_key_file(path)))
    os.execute("chmod 600 " .. web.q(path))
    os.execute("ln -s " .. web.q(path) .. " " .. web.q(dir .. "/link"))
    assert.is_nil((core.cookie_key_file(dir .. "/link")))
    local f = assert(io.open(dir .. "/bad", "w"))
    f:write("not a key\n")
    f:close()
    os.execute("chmod 600 " .. web.q(dir .. "/bad"))
    k, msg = core.cookie_key_file(dir .. "/bad")
    assert.is_nil(k)
    assert.matches("64 hex digits", msg, 1, true)
    assert.is_nil((core.cookie_key_file(dir .. "/no/such/dir/key")))
  end)
end)

------------------------------------------------------------------ paths

describe("webapp.check_path", function()
  it("accepts paths under /api/v2 with a query", function()
    for _, p in ipairs {
      "/api/v2", "/api/v2!authuser", "/api/v2/user/tester", "/api/v2/user/tester!albums",
      "/api/v2/user/tester!albums?start=1&count=5", "/api/v2/album/K0001!images?_filter=Uri,Name",
      "/api/v2?_verbosity=1", "/api/v2!authuser?_expand=UserProfile", "/api/v2/image/abc-0",
      "/api/v2/album/K1?_filteruri=a%2Cb",
    } do
      assert.equal(p, webapp.check_path(p), p)
    end
  end)

  it("refuses anything that could leave the API origin or its /api/v2 tree", function()
    for _, p in ipairs {
      "", "api/v2", "/", "/api", "/api/v1", "/api/v20", "/api/v2.evil.com", "/api/v2.evil.com/x",
      "/api/v2@evil.com", "/api/v2:80@evil.com", "/api/v2:443", "//evil.com/api/v2",
      "/api/v2//evil.com", "/api/v2/..", "/api/v2/../../services", "/api/v2/%2e%2e/x",
      "/api/v2%2e.evil.com", "/api/v2/%2F%2Fevil.com", "/api/v2%40evil.com", "/api/v2\\evil.com",
      "/api/v2/\\\\evil.com", "/api/v2/%5cevil", "/api/v2 /x", "/api/v2\t", "/api/v2\r\nHost: x",
      "/api/v2/\0", "/api/v2/x#frag", "http://evil.com/api/v2", "https://api.smugmug.com/api/v2",
      "/api/v2?x=@evil.com", "/api/v2?u=%40evil", "/api/v2?u=%2540evil", "/api/v2?u=%252e%252e",
      "/api/v2?u=//evil", "/api/v2?x=%0d%0aX:1", "/api/v2?x=%20", "/api/v2?x=%zz", "/api/v2?x=%4",
      "/api/v2/é", "/api/v2/<script>", "/api/v2/x%", "/api/v2?x=%25252525252540",
      "/api/v2" .. string.rep("a", 2100),
    } do
      local ok, why = webapp.check_path(p)
      assert.is_nil(ok, ("accepted %q"):format(p))
      assert.is_string(why)
    end
  end)
end)

------------------------------------------------------------------ in process

describe("webapp (in process, fake provider)", function()
  local function req(path, query, cookies, extra)
    local r = { method = "GET", path = path, query = query or "", scheme = "http",
                headers = { host = "127.0.0.1:8090" }, cookies = cookies or {} }
    r.params = {}
    for k, v in (query or ""):gmatch("([^&=]+)=([^&]*)") do r.params[k] = core.percent_decode(v) end
    for k, v in pairs(extra or {}) do r[k] = v end
    return r
  end
  local logged
  local function fake(behaviour, opts)
    local calls = { n = 0 }
    local client = {
      calls = calls,
      request_token = function(_, cb)
        calls.n = calls.n + 1
        calls.callback = cb
        return behaviour.request_token()
      end,
      authorize_url = function(_, rt, extra)
        return "https://provider.example/authorize?oauth_token=" .. rt .. "&Access=" .. extra.Access ..
          "&Permissions=" .. extra.Permissions
      end,
      access_token = function(_, ...) calls.n = calls.n + 1 return behaviour.access_token(...) end,
      session = function()
        return { get = function(_, p, _, o)
          calls.n = calls.n + 1
          calls.get_opts = o
          return behaviour.get(p)
        end, close = function() end }
      end,
    }
    local o = { client = client, key = string.rep("k", 32), log = function(m) logged = m end }
    for k, v in pairs(opts or {}) do o[k] = v end
    local app = webapp.new(o)
    return app, client
  end
  local function at_cookie()
    return core.cookie_seal(string.rep("k", 32), AT, cjson.encode { t = "AT", s = "ATS" }, os.time() + 60)
  end

  it("is still reachable under the old name smugoauth.webapp", function()
    assert.equal(webapp, require "smugoauth.webapp")
  end)

  it("needs a client and rejects unknown options and bad keys", function()
    assert.has_error(function() webapp.new {} end)
    assert.has_error(function() webapp.new { client = {} } end)
    local c = { request_token = function() end }
    assert.has_error(function() webapp.new { client = c, nope = 1 } end)
    assert.has_error(function() webapp.new { client = c, key = "short" } end)
    assert.has_error(function() webapp.new { client = c, port = 70000 } end)
    assert.has_error(function() webapp.new { client = c, key = string.rep("k", 32), key_file = "/tmp/x" } end)
    local app, err = webapp.new { client = c, key_file = "/nonexistent-dir/key" }
    assert.is_nil(app)
    assert.equal("io", err.code)
  end)

  it("asks for the callback http://127.0.0.1:<port>/callback and Access=Full&Permissions=Modify", function()
    local app, client = fake { request_token = function() return "RT", "RTS" end }
    assert.equal("http://127.0.0.1:8090", app.origin)
    local status, h = app:handle(req("/authorize"))
    assert.equal(302, status)
    assert.equal("http://127.0.0.1:8090/callback", client.calls.callback)
    assert.matches("Access=Full&Permissions=Modify", h.Location, 1, true)
  end)

  it("redirects every route on localhost:<port> to the same target on http://127.0.0.1:<port>", function()
    local app, client = fake { request_token = function() return "RT", "RTS" end }
    for _, c in ipairs {
      { "/", "" }, { "/authorize", "" }, { "/test", "path=%2Fapi%2Fv2%21authuser" },
      { "/callback", "oauth_token=RT&oauth_verifier=123" },
    } do
      local r = req(c[1], c[2], { [AT] = at_cookie() })
      r.headers.host = "localhost:8090"
      local status, h = app:handle(r)
      assert.equal(302, status, c[1])
      assert.equal("http://127.0.0.1:8090" .. c[1] .. (c[2] ~= "" and "?" .. c[2] or ""), h.Location)
      assert.is_nil(h["Set-Cookie"])
    end
    local r = req("/", "")
    r.method, r.headers.host = "HEAD", "LOCALHOST:8090"
    local status, h = app:handle(r)
    assert.equal(302, status)
    assert.equal("http://127.0.0.1:8090/", h.Location)
    assert.equal(0, client.calls.n)                          -- no provider call on the way
  end)

  it("sends the browser back to http://127.0.0.1:<port>/ after the callback", function()
    local app = fake { request_token = function() return "RT", "RTS" end,
                       access_token = function() return "AT", "ATS" end }
    local _, h = app:handle(req("/authorize"))
    local rt_cookie = h["Set-Cookie"]:match("^" .. RT .. "=([^;]+)")
    local status
    status, h = app:handle(req("/callback", "oauth_token=RT&oauth_verifier=123", { [RT] = rt_cookie }))
    assert.equal(302, status)
    assert.equal("http://127.0.0.1:8090/", h.Location)
  end)

  it("refuses (421) a Host with another port, a malformed port or another name, calling nothing", function()
    local app, client = fake { request_token = function() return "RT", "RTS" end }
    for _, host in ipairs {
      "127.0.0.1:8091", "localhost:8091", "localhost:80", "127.0.0.1", "localhost", "localhost:junk",
      "localhost:", "127.0.0.1:", "127.0.0.1:08090", "127.0.0.1:8090:8090", "127.0.0.1:+8090",
      "127.0.0.1:8090 ", "127.0.0.1:99999", "127.0.0.1:65536", "[::1]:junk", "[::1]8090", "[::1",
      "evil.example:8090", "127.0.0.2:8090", "localhost.:8090", ":8090", "",
    } do
      for _, path in ipairs { "/", "/authorize", "/test", "/callback" } do
        local r = req(path, "", { [AT] = at_cookie() })
        r.headers.host = host
        local status, h = app:handle(r)
        assert.equal(421, status, host .. " " .. path)
        assert.is_nil(h.Location)
        assert.is_nil(h["Set-Cookie"])
      end
    end
    local r = req("/")
    r.headers.host = nil
    assert.equal(421, (app:handle(r)))
    assert.equal(0, client.calls.n)
  end)

  it("takes the origin from the address it binds: [::1] in brackets; no names", function()
    local c = { request_token = function() end }
    assert.has_error(function() webapp.new { client = c, host = "localhost" } end)
    assert.has_error(function() webapp.new { client = c, host = "example.com" } end)
    assert.has_error(function() webapp.new { client = c, host = "300.0.0.1" } end)
    assert.equal("http://[::1]:8090", webapp.new { client = c, host = "::1" }.origin)
    assert.equal("http://[::1]:8090/callback", webapp.new { client = c, host = "[::1]" }.callback)
    local app = webapp.new { client = c, port = 0 }
    local srv = assert(app:serve { host = "localhost" })     -- a name: the address it resolved to
    finally(function() srv:close() end)
    assert.matches("^http://127%.0%.0%.1:%d+$", app.origin)
    assert.equal(app.origin .. "/callback", app.callback)
    local ok, why = have_ipv6_loopback()
    if not ok then
      print("\n  NOTE: ::1 is not available here (" .. why .. "): the [::1] origin was not served")
      return
    end
    local app6 = webapp.new { client = c, host = "::1", port = 0 }
    local srv6 = assert(app6:serve {})
    finally(function() srv6:close() end)
    assert.equal("http://[::1]:" .. srv6.port, app6.origin)
    assert.equal(app6.origin .. "/callback", app6.callback)
    local r = req("/")
    r.headers.host = "[::1]:" .. srv6.port
    assert.equal(200, (app6:handle(r)))
    r.headers.host = "localhost:" .. srv6.port
    local status, h = app6:handle(r)
    assert.equal(302, status)
    assert.equal(app6.origin .. "/", h.Location)
  end)

  it("refuses /authorize from another site (Sec-Fetch-Site) before any provider call", function()
    local app, client = fake { request_token = function() return "RT", "RTS" end }
    for _, site in ipairs { "cross-site", "same-site", "CROSS-SITE", "garbage" } do
      local r = req("/authorize")
      r.headers["sec-fetch-site"] = site
      local status, h = app:handle(r)
      assert.equal(403, status, site)
      assert.is_nil(h["Set-Cookie"])
      assert.is_nil(h.Location)
    end
    assert.equal(0, client.calls.n)
    for _, site in ipairs { "same-origin", "none", false } do
      local r = req("/authorize")
      r.headers["sec-fetch-site"] = site or nil
      assert.equal(302, (app:handle(r)), tostring(site))
    end
    assert.equal(3, client.calls.n)
  end)

  it("rate-limits the provider calls of /authorize: bursts of 5, then 10 a minute; 429 with Retry-After", function()
    local t = 1000
    local app, client = fake({ request_token = function() return "RT", "RTS" end },
                             { now = function() return t end })
    for i = 1, 5 do assert.equal(302, (app:handle(req("/authorize"))), i) end
    assert.equal(5, client.calls.n)
    local status, h, body = app:handle(req("/authorize"))
    assert.equal(429, status)
    assert.equal("6", h["Retry-After"])
    assert.matches("try again in 6 seconds", body, 1, true)
    assert.is_nil(h["Set-Cookie"])
    assert.equal(5, client.calls.n)                          -- no provider call
    t = t + 3
    status, h = app:handle(req("/authorize"))
    assert.equal(429, status)
    assert.equal("3", h["Retry-After"])
    t = t + 3
    assert.equal(302, (app:handle(req("/authorize"))))       -- one token every 6 s
    assert.equal(429, (app:handle(req("/authorize"))))
    t = t + 3600                                             -- a long pause: a burst again, no more
    for i = 1, 5 do assert.equal(302, (app:handle(req("/authorize"))), i) end
    assert.equal(429, (app:handle(req("/authorize"))))
    assert.equal(11, client.calls.n)
    -- refused requests spend no token; other routes are not limited
    local r = req("/authorize")
    r.headers["sec-fetch-site"] = "cross-site"
    assert.equal(403, (app:handle(r)))
    assert.equal(200, (app:handle(req("/"))))
    -- the rate and burst are options
    local app2, client2 = fake({ request_token = function() return "RT", "RTS" end },
                               { now = function() return t end, authorize_rate = 60, authorize_burst = 1 })
    assert.equal(302, (app2:handle(req("/authorize"))))
    status, h = app2:handle(req("/authorize"))
    assert.equal(429, status)
    assert.equal("1", h["Retry-After"])
    t = t + 1
    assert.equal(302, (app2:handle(req("/authorize"))))
    assert.equal(2, client2.calls.n)
    local c = { request_token = function() end }
    for _, o in ipairs { { authorize_rate = 0 }, { authorize_rate = -1 }, { authorize_rate = 0 / 0 },
                         { authorize_burst = 0 }, { authorize_burst = 1.5 }, { max_api_body = 0 },
                         { max_render = 0 }, { max_render = 2.5 } } do
      o.client = c
      assert.has_error(function() webapp.new(o) end)
    end
  end)

  it("shows a provider failure as an escaped message (502), never a 500", function()
    local app = fake { request_token = function()
      return nil, errors.new("network", "connect to <b>evil</b> & \"friends\" failed")
    end }
    local status, h, body = app:handle(req("/authorize"))
    assert.equal(502, status)
    assert.equal("nosniff", h["X-Content-Type-Options"])
    assert.matches("&lt;b&gt;evil&lt;/b&gt; &amp; &quot;friends&quot;", body, 1, true)
    assert.falsy(body:find("<b>", 1, true))
    assert.is_nil(h["Set-Cookie"])
    assert.matches("<b>evil</b>", logged, 1, true)
  end)

  it("shows an API error (nil, err) escaped, with its JSON body escaped too", function()
    local app = fake {
      request_token = function() return "RT", "RTS" end,
      get = function()
        return nil, errors.new("http", "GET /api/v2/x answered 404: <script>alert(1)</script>",
          { status = 404, body = '{"Message":"<img src=x onerror=alert(1)>"}' })
      end,
    }
    local at = core.cookie_seal(string.rep("k", 32), AT, cjson.encode { t = "AT", s = "ATS" }, os.time() + 60)
    local status, h, body = app:handle(req("/test", "path=%2Fapi%2Fv2%2Fx", { [AT] = at }))
    assert.equal(502, status)
    assert.equal("no-store", h["Cache-Control"])
    assert.falsy(body:find("<script>", 1, true))
    assert.falsy(body:find("<img", 1, true))
    assert.matches("&lt;script&gt;alert(1)&lt;/script&gt;", body, 1, true)
    assert.matches("&lt;img src=x onerror=alert(1)&gt;", body, 1, true)
  end)

  it("asks the API for at most max_api_body bytes (2 MiB by default)", function()
    local app, client = fake { get = function() return { status = 200, body = "{}" } end }
    assert.equal(200, (app:handle(req("/test", nil, { [AT] = at_cookie() }))))
    assert.same({ max_body = 2 * 1024 * 1024 }, client.calls.get_opts)
    app, client = fake({ get = function() return { status = 200, body = "{}" } end }, { max_api_body = 1234 })
    app:handle(req("/test", nil, { [AT] = at_cookie() }))
    assert.same({ max_body = 1234 }, client.calls.get_opts)
    client.max_body = 1000                                   -- the client's own cap, when smaller
    app:handle(req("/test", nil, { [AT] = at_cookie() }))
    assert.same({ max_body = 1000 }, client.calls.get_opts)
  end)

  it("cuts what it renders at max_render, however much pretty-printing multiplies the answer", function()
    -- 120 KB of JSON nested 900 deep: pretty-printed in full, each of its 60,000
    -- numbers would sit on a line of 1,800 spaces (over 100 MB)
    local deep = string.rep("[", 900) .. string.rep("0", 60000, ",") .. string.rep("]", 900)
    local app = fake { get = function() return { status = 200, body = deep } end }
    local t0 = os.clock()
    local growth, status, _, body = peak_growth(function()
      return app:handle(req("/test", nil, { [AT] = at_cookie() }))
    end)
    assert.equal(200, status)
    assert.truthy(#body < 8 * webapp.MAX_RENDER, "page of " .. #body .. " bytes")
    assert.matches('<p id="cut">The answer is cut: only the first ' .. webapp.MAX_RENDER .. ' bytes', body, 1, true)
    assert.truthy(growth < 32 * 1024, "peak RSS grew by " .. growth .. " KiB")
    assert.truthy(os.clock() - t0 < 30 * SLOW)
    -- a small cap: exactly that many bytes of the pretty text, then the note
    app = fake({ get = function() return { status = 200, body = '{"b":[1,2,3],"a":"xyz"}' } end },
               { max_render = 20 })
    status, _, body = app:handle(req("/test", nil, { [AT] = at_cookie() }))
    assert.equal(200, status)
    assert.matches('<pre id="result">{\n  &quot;a&quot;: &quot;xyz&quot;,\n  &quot;b</pre>', body, 1, true)
    assert.matches("only the first 20 bytes of its text are shown (the answer was 23 bytes)", body, 1, true)
    -- not JSON: the text itself, cut, never inside a UTF-8 character
    app = fake({ get = function() return { status = 200, body = string.rep("é", 20) } end }, { max_render = 9 })
    status, _, body = app:handle(req("/test", nil, { [AT] = at_cookie() }))
    assert.equal(200, status)
    assert.matches('<pre id="result">' .. string.rep("é", 4) .. "</pre>", body, 1, true)
    -- under the cap: whole, no note; an error's body is cut the same way
    app = fake({
      get = function(p)
        if p == "/api/v2/x" then
          return nil, errors.new("http", "GET /api/v2/x answered 404", { status = 404, body = string.rep("y", 50) })
        end
        return { status = 200, body = '{"a":1}' }
      end,
    }, { max_render = 20 })
    status, _, body = app:handle(req("/test", nil, { [AT] = at_cookie() }))
    assert.equal(200, status)
    assert.matches('<pre id="result">{\n  &quot;a&quot;: 1\n}</pre>', body, 1, true)
    assert.falsy(body:find('id="cut"', 1, true))
    status, _, body = app:handle(req("/test", "path=%2Fapi%2Fv2%2Fx", { [AT] = at_cookie() }))
    assert.equal(502, status)
    assert.matches('<pre id="body">' .. string.rep("y", 20) .. "</pre>", body, 1, true)
    assert.matches('id="cut"', body, 1, true)
  end)

  it("escapes what the API answers, JSON or not", function()
    local answer = '{"Response":{"Name":"</pre><script>alert(1)</script>"}}'
    local app = fake {
      get = function() return { status = 200, body = answer } end,
    }
    local at = core.cookie_seal(string.rep("k", 32), AT, cjson.encode { t = "AT", s = "ATS" }, os.time() + 60)
    local status, _, body = app:handle(req("/test", nil, { [AT] = at }))
    assert.equal(200, status)
    assert.falsy(body:find("<script>", 1, true))
    assert.matches("&lt;/pre&gt;&lt;script&gt;", body, 1, true)
    answer = "<html>not json</html>"
    status, _, body = app:handle(req("/test", nil, { [AT] = at }))
    assert.equal(200, status)
    assert.matches("&lt;html&gt;not json", body, 1, true)
  end)

  it("turns an unexpected error into a generic 500 page with the safety headers", function()
    local app = fake { request_token = function() error("boom <x>") end }
    local status, h, body = app:handle(req("/authorize"))
    assert.equal(500, status)
    assert.equal("nosniff", h["X-Content-Type-Options"])
    assert.falsy(body:find("boom", 1, true))
    assert.matches("boom <x>", logged, 1, true)
  end)
end)

------------------------------------------------------------------ web.lua

describe("examples/web.lua", function()
  local dir
  before_each(function() dir = web.tmpdir() end)
  after_each(function() web.remove_dir(dir) end)

  it("refuses to start without a config: one clear line naming the file, exit 1", function()
    local code, out, err = web.run { env = { SMUGOAUTH_CONFIG = dir .. "/missing.json" } }
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^web: [^\n]*missing%.json[^\n]*file not found[^\n]*\n$", err)
    local bad = dir .. "/bad.json"
    local f = assert(io.open(bad, "w"))
    f:write('{"key": "k"}')
    f:close()
    code, out, err = web.run { env = { SMUGOAUTH_CONFIG = bad } }
    assert.equal("", out)
    assert.equal(1, code)
    assert.matches("^web: [^\n]*bad%.json[^\n]*secret[^\n]*\n$", err)
  end)

  it("refuses a key file readable by others, with exit 1", function()
    local cfg = web.write_config(dir, { key = "k", secret = "s", origin = "http://127.0.0.1:9" })
    local kf = dir .. "/key"
    assert(core.cookie_key_file(kf))
    os.execute("chmod 644 " .. web.q(kf))
    local code, _, err = web.run { env = { SMUGOAUTH_CONFIG = cfg }, args = { "--port", "0", "--key-file", kf } }
    assert.equal(1, code)
    assert.matches("^web: [^\n]*key[^\n]*group or others[^\n]*\n$", err)
  end)

  it("listens on SMUGOAUTH_WEB_PORT, and the callback follows the port", function()
    local cfg = web.write_config(dir, { key = "k", secret = "s", origin = "http://127.0.0.1:9" })
    local port = web.free_port()
    local w = web.start { config = cfg, port = false, env = { SMUGOAUTH_WEB_PORT = tostring(port) } }
    finally(function() w:stop() end)
    assert.equal(port, w.port)
    assert.equal("http://127.0.0.1:" .. port, w.origin)
    local res = assert(web.request(w.origin .. "/"))
    assert.equal(200, res.status)
  end)

  it("prints the address it listens on, http://127.0.0.1:<port>/, never localhost", function()
    local cfg = web.write_config(dir, { key = "k", secret = "s", origin = "http://127.0.0.1:9" })
    local w = web.start { config = cfg }
    finally(function() w:stop() end)
    assert.matches("^Listening on http://127%.0%.0%.1:" .. w.port .. "/ ", w.line)
    local res = assert(web.request("http://localhost:" .. w.port .. "/", { connect = "127.0.0.1" }))
    assert.equal(302, res.status)
    assert.equal("http://127.0.0.1:" .. w.port .. "/", res.headers.location)
    local code, _, err = web.run { env = { SMUGOAUTH_CONFIG = cfg }, args = { "--authorize-rate", "0" } }
    assert.equal(2, code)
    assert.matches("authorize%-rate", err)
    code = web.run { env = { SMUGOAUTH_CONFIG = cfg }, args = { "--authorize-burst", "1.5" } }
    assert.equal(2, code)
  end)
end)

------------------------------------------------------------------ the flow, sandbox

-- web.lua arguments that lift the /authorize rate limit out of the way.
local NO_LIMIT = { "--authorize-rate", "60000", "--authorize-burst", "10000" }

-- Approve in the sandbox as the user would (GET the page, press Approve):
-- the callback URL it redirects to.
local function approve_in(sb, location)
  local page = assert(web.request(location))
  assert.equal(200, page.status)
  assert.matches('id="approve"', page.body, 1, true)
  local token = page.body:match('name="oauth_token" value="([^"]+)"')
  local res = assert(web.request(sb.origin .. "/services/oauth/1.0a/authorize", {
    method = "POST", body = "oauth_token=" .. core.percent_encode(token),
    headers = { { "Content-Type", "application/x-www-form-urlencoded" } } }))
  assert.equal(302, res.status)
  return res.headers.location, page
end

describe("web flow against the sandbox", function()
  local sb, w, dir, key, cfg
  local KEY, SECRET = "web-key", "s3cr&t =%2F"

  setup(function()
    sb = sandbox.start { key = KEY, secret = SECRET }
    dir = web.tmpdir()
    cfg = web.write_config(dir, sb)
    -- many flows in a row here: the /authorize rate limit is tested on its own
    w = web.start { config = cfg, key_file = dir .. "/cookie.key", args = NO_LIMIT }
    key = read_key(dir .. "/cookie.key")
  end)
  teardown(function()
    if w then w:stop() end
    if sb then sb:stop() end
    web.remove_dir(dir)
  end)

  local function requests() return sb:stats().requests end

  -- /authorize in browser b: the Location, the request token, the response.
  local function start_flow(b)
    local res = assert(b:get(w.origin .. "/authorize"))
    assert.equal(302, res.status, res.body)
    local token = res.headers.location:match("[?&]oauth_token=([^&]+)")
    return res.headers.location, core.percent_decode(token), res
  end

  local function approve(location) return (approve_in(sb, location)) end

  -- A whole flow: an authorized browser.
  local function authorized()
    local b = web.browser()
    local loc = start_flow(b)
    local res = assert(b:get(approve(loc)))
    assert.equal(302, res.status, res.body)
    assert.truthy(b.jar[AT])
    return b
  end

  it("runs the whole flow: Authorize, approve, callback, the form, the JSON", function()
    local b = web.browser()
    local res = assert(b:get(w.origin .. "/"))
    assert.equal(200, res.status)
    assert.matches('<a id="authorize" href="/authorize">Authorize</a>', res.body, 1, true)
    assert.same({}, res.set_cookies)

    local loc, token, ares = start_flow(b)
    assert.matches("^" .. sb.origin:gsub("%p", "%%%0") .. "/services/oauth/1%.0a/authorize%?", loc)
    assert.matches("Access=Full", loc, 1, true)
    assert.matches("Permissions=Modify", loc, 1, true)
    local rv, rattrs = cookie_of(ares, RT)
    assert.truthy(rv)
    assert.is_true(rattrs.httponly)
    assert.equal("Lax", rattrs.samesite)
    assert.equal("/", rattrs.path)
    assert.is_nil(rattrs.secure)

    local cb = approve(loc)
    assert.matches("^" .. w.origin:gsub("%p", "%%%0") .. "/callback%?", cb)
    assert.matches("oauth_token=" .. token, cb, 1, true)
    res = assert(b:get(cb))
    assert.equal(302, res.status, res.body)
    assert.equal(w.origin .. "/", res.headers.location)
    local av, aattrs = cookie_of(res, AT)
    assert.truthy(av)
    assert.is_true(aattrs.httponly)
    assert.equal("Lax", aattrs.samesite)
    assert.equal("/", aattrs.path)
    local cleared, cattrs = cookie_of(res, RT)
    assert.equal("", cleared)
    assert.equal("0", cattrs["max-age"])

    res = assert(b:get(w.origin .. "/"))
    assert.equal(200, res.status)
    assert.matches('<form action="/test" method="get">', res.body, 1, true)
    assert.matches('name="path" size="60" value="/api/v2!authuser"', res.body, 1, true)

    res = assert(b:get(w.origin .. "/test?path=%2Fapi%2Fv2%21authuser"))
    assert.equal(200, res.status, res.body)
    assert_safe_headers(res)
    assert.matches("&quot;NickName&quot;: &quot;tester&quot;", res.body, 1, true)
    assert.falsy(res.body:find('"NickName"', 1, true))          -- quotes escaped too
    -- the default path when none is given, and a query string
    res = assert(b:get(w.origin .. "/test"))
    assert.matches("&quot;NickName&quot;", res.body, 1, true)
    res = assert(b:get(w.origin .. "/test?path=" ..
      core.percent_encode("/api/v2/user/tester!albums?start=2&count=3")))
    assert.equal(200, res.status, res.body)
    assert.matches("&quot;Start&quot;: 2", res.body, 1, true)
  end)

  it("keeps token secrets out of the browser: the cookies are sealed", function()
    local b = authorized()
    local value = b.jar[AT]
    local rec = cjson.decode((assert(core.cookie_open(key, AT, value))))
    assert.is_string(rec.t)
    assert.is_string(rec.s)
    assert.truthy(#rec.s >= 16)
    assert.falsy(value:find(rec.s, 1, true))
    assert.falsy(value:find(rec.t, 1, true))
    for piece in value:gmatch("[^.]+") do
      local raw = core.b64decode(piece, true)
      assert.falsy(raw:find(rec.s, 1, true))
      assert.falsy(raw:find(rec.t, 1, true))
    end
  end)

  it("puts the safety headers on every response", function()
    local b = authorized()
    local cases = {
      { "/" }, { "/test" }, { "/test?path=%2Fapi%2Fv2.evil.com" }, { "/callback" },
      { "/callback?oauth_token=x&oauth_verifier=y" }, { "/nowhere" }, { "/", "POST" },
      { "/test", "POST" }, { "/test?path=%2Fapi%2Fv2%2Fnope" },
    }
    for _, c in ipairs(cases) do
      local res = assert(b:get(w.origin .. c[1], { method = c[2], body = c[2] and "" or nil }))
      assert_safe_headers(res)
      assert.matches("^text/html", res.headers["content-type"])
    end
    local _, _, ares = start_flow(web.browser())
    assert_safe_headers(ares)
    local res = assert(web.request(w.origin .. "/", { method = "HEAD" }))
    assert.equal(200, res.status)
    assert_safe_headers(res)
  end)

  it("refuses a callback without a cookie, and makes no provider call", function()
    local b = web.browser()
    local loc = start_flow(b)
    local cb = approve(loc)
    local before = requests()
    local res = assert(web.request(cb))                      -- another browser: no cookie
    assert.equal(403, res.status)
    assert.same({}, res.set_cookies)
    assert.equal(before + 1, requests())                     -- only our stats call
    -- the right browser still completes the flow afterwards
    res = assert(b:get(cb))
    assert.equal(302, res.status)
  end)

  it("refuses a callback for another token than this browser's, changing nothing", function()
    local a, other = web.browser(), web.browser()
    local loc_a = start_flow(a)
    local loc_o = start_flow(other)
    local cb_o = approve(loc_o)
    approve(loc_a)
    local before = requests()
    local res = assert(a:get(cb_o))                          -- a's cookie, other's token
    assert.equal(403, res.status)
    assert.matches("another authorization", res.body, 1, true)
    assert.same({}, res.set_cookies)
    assert.equal(before + 1, requests())
    assert.truthy(a.jar[RT])
  end)

  it("accepts a callback only once: a replay is refused", function()
    local b = web.browser()
    local cb = approve(start_flow(b))
    local cookie = b:cookie_header()
    local res = assert(b:get(cb))
    assert.equal(302, res.status)
    local before = requests()
    -- the same request again, with the same (old) cookie
    res = assert(web.request(cb, { headers = { { "Cookie", cookie } } }))
    assert.equal(403, res.status)
    assert.matches("already been completed", res.body, 1, true)
    assert.same({}, res.set_cookies)
    assert.equal(before + 1, requests())
  end)

  it("refuses a callback without oauth_token or oauth_verifier", function()
    local b = web.browser()
    local _, token = start_flow(b)
    local before = requests()
    for _, q in ipairs { "", "?oauth_token=" .. token, "?oauth_verifier=123456",
                         "?oauth_token=&oauth_verifier=1",
                         "?oauth_token=" .. string.rep("a", 600) .. "&oauth_verifier=1" } do
      local res = assert(b:get(w.origin .. "/callback" .. q))
      assert.equal(400, res.status, q)
      assert.same({}, res.set_cookies)
    end
    assert.equal(before + 1, requests())
  end)

  it("treats a tampered, truncated, expired, renamed or foreign cookie as no cookie", function()
    local b = authorized()
    local good = b.jar[AT]
    local rec = assert(core.cookie_open(key, AT, good))
    local flipped = good:sub(1, 20) .. (good:sub(21, 21) == "A" and "B" or "A") .. good:sub(22)
    local bad = {
      tampered = flipped,
      truncated = good:sub(1, #good - 5),
      no_mac = good:match("^(.*)%.[^.]+$"),
      expired = core.cookie_seal(key, AT, rec, os.time() - 1),
      foreign = core.cookie_seal(core.random_bytes(32), AT, rec, os.time() + 600),
      renamed = core.cookie_seal(key, RT, rec, os.time() + 600),
      empty = "",
      garbage = "%00<script>",
      long = string.rep("A", 5000),
      not_json = core.cookie_seal(key, AT, "<not json>", os.time() + 600),
      wrong_shape = core.cookie_seal(key, AT, '{"t": 1}', os.time() + 600),
    }
    local before = requests()
    for what, v in pairs(bad) do
      local c = { { "Cookie", AT .. "=" .. v } }
      local res = assert(web.request(w.origin .. "/", { headers = c }))
      assert.equal(200, res.status, what)
      assert.matches('id="authorize"', res.body, 1, true)
      res = assert(web.request(w.origin .. "/test?path=%2Fapi%2Fv2%21authuser", { headers = c }))
      assert.equal(401, res.status, what)
      assert_safe_headers(res)
    end
    -- the same for the request-token cookie at /callback
    local rt_rec = cjson.encode { t = "tok", s = "sec" }
    for what, v in pairs {
      expired = core.cookie_seal(key, RT, rt_rec, os.time() - 1),
      foreign = core.cookie_seal(core.random_bytes(32), RT, rt_rec, os.time() + 600),
      renamed = good, truncated = core.cookie_seal(key, RT, rt_rec, os.time() + 600):sub(1, -3),
    } do
      local res = assert(web.request(w.origin .. "/callback?oauth_token=tok&oauth_verifier=1",
        { headers = { { "Cookie", RT .. "=" .. v } } }))
      assert.equal(403, res.status, what)
    end
    assert.equal(before + 1, requests())
    -- the good one still works
    local res = assert(b:get(w.origin .. "/test"))
    assert.equal(200, res.status)
  end)

  it("refuses paths off the API before any request is made, escaping what it shows", function()
    local b = authorized()
    local before = requests()
    for _, p in ipairs {
      "/api/v2.evil.com", "/api/v2@evil.com", "/api/v2:80@evil.com", "//evil.com/api/v2",
      "/api/v2//evil.com", "/api/v2/../services/oauth/1.0a/getAccessToken", "/api/v2/%2e%2e/x",
      "/api/v2%2f%2fevil.com", "/api/v2\\evil.com", "/api/v2/\r\nX: y", "/api/v2/\0",
      "http://evil.com/api/v2", "/api/v2 x", "/api/v2?u=%40evil.com", "/services/oauth/1.0a/x",
      '/api/v2/"><script>alert(1)</script>', "/api/v2#x",
    } do
      local res = assert(b:get(w.origin .. "/test?path=" .. core.percent_encode(p)))
      assert.equal(400, res.status, p)
      assert_safe_headers(res)
      assert.falsy(res.body:find("<script>", 1, true), p)
    end
    assert.equal(before + 1, requests())
  end)

  it("shows an API error as an escaped message, never a 500", function()
    local b = authorized()
    local res = assert(b:get(w.origin .. "/test?path=%2Fapi%2Fv2%2Fuser%2Fnobody"))
    assert.equal(502, res.status)
    assert_safe_headers(res)
    assert.matches("404", res.body, 1, true)
    assert.matches("&quot;Message&quot;: &quot;Not Found&quot;", res.body, 1, true)
  end)

  it("refuses /test from another site, and unknown Host headers", function()
    local b = authorized()
    local before = requests()
    local res = assert(b:get(w.origin .. "/test", { headers = { { "Sec-Fetch-Site", "cross-site" } } }))
    assert.equal(403, res.status)
    res = assert(b:get(w.origin .. "/test", { headers = { { "Sec-Fetch-Site", "same-origin" } } }))
    assert.equal(200, res.status)
    local after = requests()
    assert.equal(before + 2, after)                          -- one stats call, one API call
    res = assert(b:get(w.origin .. "/", { headers = { { "Host", "evil.example:" .. w.port } } }))
    assert.equal(421, res.status)
    res = assert(b:get(w.origin .. "/authorize", { headers = { { "Host", "evil.example" } } }))
    assert.equal(421, res.status)
    for _, host in ipairs { "127.0.0.1:" .. (w.port + 1), "localhost:" .. (w.port + 1), "localhost:junk",
                            "127.0.0.1", "localhost", "127.0.0.1:0" .. w.port } do
      for _, path in ipairs { "/", "/authorize", "/test", "/callback?oauth_token=a&oauth_verifier=b" } do
        res = assert(b:get(w.origin .. path, { headers = { { "Host", host } } }))
        -- a malformed Host is refused by the HTTP loop itself (400, RFC 9112 3.2)
        assert.equal(host:find(":junk", 1, true) and 400 or 421, res.status, host .. " " .. path)
        assert.same({}, res.set_cookies)
      end
    end
    assert.equal(after + 1, requests())
  end)

  it("refuses /authorize from another site before calling the provider; same-origin and typed URLs work", function()
    local before = requests()
    for _, site in ipairs { "cross-site", "same-site" } do
      local res = assert(web.request(w.origin .. "/authorize", { headers = { { "Sec-Fetch-Site", site } } }))
      assert.equal(403, res.status, site)
      assert_safe_headers(res)
      assert.same({}, res.set_cookies)
    end
    assert.equal(before + 1, requests())                     -- only our stats call
    for _, site in ipairs { "same-origin", "none" } do
      local res = assert(web.request(w.origin .. "/authorize", { headers = { { "Sec-Fetch-Site", site } } }))
      assert.equal(302, res.status, site)
      assert.truthy(cookie_of(res, RT))
    end
  end)

  it("sends requests for localhost:<port> to http://127.0.0.1:<port>, where the cookies and callback are", function()
    local before = requests()
    for _, target in ipairs { "/", "/authorize", "/test?path=%2Fapi%2Fv2%21authuser",
                              "/callback?oauth_token=a&oauth_verifier=b" } do
      local res = assert(web.request("http://localhost:" .. w.port .. target, { connect = "127.0.0.1" }))
      assert.equal(302, res.status, target)
      assert.equal(w.origin .. target, res.headers.location)
      assert.same({}, res.set_cookies)
    end
    assert.equal(before + 1, requests())
  end)

  it("refuses other methods with 405", function()
    for _, path in ipairs { "/authorize", "/callback", "/test", "/" } do
      local res = assert(web.request(w.origin .. path, { method = "POST", body = "" }))
      assert.equal(405, res.status)
      assert.truthy(res.headers.allow)
    end
  end)

  it("keeps browsers authorized across a restart with the same key file, not with a new key", function()
    local b = authorized()
    w:stop()
    w = web.start { config = cfg, key_file = dir .. "/cookie.key", args = NO_LIMIT }
    local res = assert(b:get(w.origin .. "/test"))
    -- the port changed, the cookie jar is per host (127.0.0.1), as in a browser
    assert.equal(200, res.status)
    local w2 = web.start { config = cfg }                      -- a fresh random key
    finally(function() w2:stop() end)
    res = assert(b:get(w2.origin .. "/test"))
    assert.equal(401, res.status)
  end)
end)

------------------------------------------------------------------ large answers

describe("/test against a large API answer (in process, a real client)", function()
  local smugoauth = require "smugoauth"
  local api, client, app
  local KEY = string.rep("k", 32)
  local MiB = 1024 * 1024

  setup(function()
    api = web.sized_api()
    client = smugoauth.new { key = "k", secret = "s", oauth_origin = api.origin, api_origin = api.origin,
                             retry = false, timeout = 60 }
    app = webapp.new { client = client, key = KEY, port = 8090, log = function() end }
  end)
  teardown(function()
    if client then client:close() end
    if api then api:stop() end
  end)

  local function get_test(query)
    local at = core.cookie_seal(KEY, AT, cjson.encode { t = "AT", s = "ATS" }, os.time() + 60)
    local path = "/api/v2/big?" .. query
    return app:handle { method = "GET", path = "/test", query = "path=" .. core.percent_encode(path),
      scheme = "http", headers = { host = "127.0.0.1:8090" }, cookies = { [AT] = at },
      params = { path = path } }
  end

  it("refuses a 16 MiB answer (too_large, 502) quickly, without holding it in memory", function()
    for _, query in ipairs { "bytes=16777216&kind=json", "bytes=16777216&kind=json&length=0" } do
      local t0 = core.monotime()
      local growth, status, h, body = peak_growth(function() return get_test(query) end)
      local took = core.monotime() - t0
      assert.equal(502, status, query)
      assert.equal("nosniff", h["X-Content-Type-Options"])
      assert.matches("too_large", body, 1, true)
      assert.matches('<p id="too_large">The answer is larger than this application accepts (' ..
        (2 * MiB) .. " bytes)", body, 1, true)
      assert.truthy(#body < 16 * 1024)
      -- the 2 MiB cap, a few buffers: far below the 16 MiB answer (let alone its rendering)
      assert.truthy(growth < 16 * 1024, query .. ": peak RSS grew by " .. growth .. " KiB")
      assert.truthy(took < 30 * SLOW, query .. ": took " .. took .. " s")
    end
  end)

  it("shows a 1 MiB answer, its rendering cut at max_render", function()
    local growth, status, _, body = peak_growth(function() return get_test("bytes=1048576&kind=json") end)
    assert.equal(200, status, body:sub(1, 2000))
    assert.matches('<pre id="result">{\n  &quot;Response&quot;: {\n    &quot;Items&quot;: [\n' ..
      "      &quot;xxxx", body, 1, true)
    assert.matches('<p id="cut">The answer is cut: only the first ' .. webapp.MAX_RENDER ..
      " bytes of its text are shown", body, 1, true)
    assert.truthy(#body < 8 * webapp.MAX_RENDER)
    assert.truthy(growth < 48 * 1024, "peak RSS grew by " .. growth .. " KiB")
    -- a small answer: whole, not cut
    status, _, body = get_test("bytes=200&kind=json")
    assert.equal(200, status)
    assert.falsy(body:find('id="cut"', 1, true))
    assert.matches("]\n  }\n}</pre>", body, 1, true)
  end)
end)

describe("Session:request max_body (one response's cap)", function()
  local smugoauth = require "smugoauth"
  local api, client, s

  setup(function()
    api = web.sized_api()
    client = smugoauth.new { key = "k", secret = "s", api_origin = api.origin, oauth_origin = api.origin,
                             retry = false, max_body = 1000 }
    s = client:session("t", "ts")
  end)
  teardown(function()
    if s then s:close() end
    if client then client:close() end
    if api then api:stop() end
  end)

  it("overrides the client's max_body for that request, with or without Content-Length", function()
    for _, len in ipairs { "", "&length=0" } do
      local res, err = s:get("/api/v2/x?bytes=1500&kind=text" .. len)
      assert.is_nil(res)
      assert.equal("too_large", err.code)                     -- the client's 1000
      res = assert(s:get("/api/v2/x?bytes=1500&kind=text" .. len, nil, { max_body = 1500 }))
      assert.equal(1500, #res.body)
      res, err = s:get("/api/v2/x?bytes=1501&kind=text" .. len, nil, { max_body = 1500 })
      assert.is_nil(res)
      assert.equal("too_large", err.code)
      assert.matches("1500 bytes", err.message, 1, true)
      res, err = s:request { path = "/api/v2/x?bytes=600&kind=text" .. len, max_body = 500 }
      assert.is_nil(res)
      assert.equal("too_large", err.code)
      res = assert(s:get("/api/v2/x?bytes=600&kind=text" .. len))   -- the next request: the client's cap again
      assert.equal(600, #res.body)
    end
  end)

  it("raises on a max_body that is not a positive integer", function()
    for _, v in ipairs { 0, -1, 1.5, 0 / 0, math.huge } do
      assert.has_error(function() s:request { path = "/api/v2/x", max_body = v } end)
    end
    assert.has_error(function() s:request { path = "/api/v2/x", max_body = "10" } end)
    local http = core.http_new()
    finally(function() http:close() end)
    for _, v in ipairs { 0, -1, 1.5, "x", true } do
      assert.has_error(function() http:request { url = api.origin .. "/api/v2/x", max_body = v } end)
    end
    local res = assert(http:request { url = api.origin .. "/api/v2/x?bytes=300&kind=text", max_body = 300 })
    assert.equal(300, #res.body)
    local _, _, code = http:request { url = api.origin .. "/api/v2/x?bytes=301&kind=text", max_body = 300 }
    assert.equal("too_large", code)
  end)
end)

------------------------------------------------------------------ /authorize rate, ::1

describe("web.lua's /authorize rate limit (defaults: bursts of 5, 10 a minute)", function()
  local sb, w, dir

  setup(function()
    sb = sandbox.start { key = "k", secret = "s" }
    dir = web.tmpdir()
    w = web.start { config = web.write_config(dir, sb) }
  end)
  teardown(function()
    if w then w:stop() end
    if sb then sb:stop() end
    web.remove_dir(dir)
  end)

  it("answers 429 with Retry-After past the burst, calling nothing", function()
    for i = 1, 5 do
      local res = assert(web.request(w.origin .. "/authorize"))
      assert.equal(302, res.status, i)
    end
    local before = sb:stats().requests
    local res = assert(web.request(w.origin .. "/authorize"))
    assert.equal(429, res.status)
    local wait = tonumber(res.headers["retry-after"])
    assert.truthy(wait and wait >= 1 and wait <= 6, res.headers["retry-after"])
    assert.same({}, res.set_cookies)
    assert.matches("Too many", res.body, 1, true)
    res = assert(web.request(w.origin .. "/"))               -- the rest of the app is not limited
    assert.equal(200, res.status)
    assert.equal(before + 1, sb:stats().requests)            -- only our stats call
  end)
end)

describe("web flow with another local user listening on [::1] at the same port", function()
  local sb, w, dir, spy

  setup(function()
    sb = sandbox.start { key = "k", secret = "s" }
    dir = web.tmpdir()
    w = web.start { config = web.write_config(dir, sb) }
  end)
  teardown(function()
    if spy then spy:stop() end
    if w then w:stop() end
    if sb then sb:stop() end
    web.remove_dir(dir)
  end)

  it("sends it nothing: every URL of the flow names 127.0.0.1", function()
    local ok, why = have_ipv6_loopback()
    local spy_err
    if ok then spy, spy_err = web.spy("::1", w.port) end
    if not spy then
      print("\n  NOTE: [::1]:" .. w.port .. " cannot be listened on here (" .. tostring(why or spy_err) ..
        "): the other-user check is skipped; the rest of this test runs")
    else
      -- the spy is live: "localhost" goes to it first, as in a browser
      local res = assert(web.request("http://localhost:" .. w.port .. "/"))
      assert.matches("another user!", res.body, 1, true)
      assert.equal(1, #spy.log())
      spy.clear()
    end
    -- the whole flow as a browser that tries ::1 first for localhost
    local b = web.browser()
    local res = assert(b:get(w.origin .. "/"))
    assert.equal(200, res.status)
    res = assert(b:get(w.origin .. "/authorize"))
    assert.equal(302, res.status)
    local cb, page = approve_in(sb, res.headers.location)
    assert.matches("^http://127%.0%.0%.1:" .. w.port .. "/callback%?", cb)
    -- the sandbox's approve page lets its form redirect there
    assert.matches("form-action 'self' http://127.0.0.1:" .. w.port, page.headers["content-security-policy"], 1, true)
    res = assert(b:get(cb))
    assert.equal(302, res.status)
    assert.equal(w.origin .. "/", res.headers.location)
    res = assert(b:get(res.headers.location))
    assert.equal(200, res.status)
    res = assert(b:get(w.origin .. "/test"))
    assert.equal(200, res.status)
    assert.matches("&quot;NickName&quot;: &quot;tester&quot;", res.body, 1, true)
    if spy then assert.same({}, spy.log()) end
  end)

  it("serves on [::1] when asked (--host ::1), advertised as http://[::1]:<port>", function()
    local ok, why = have_ipv6_loopback()
    if not ok then
      print("\n  NOTE: ::1 is not available here (" .. why .. "): web.lua --host ::1 not tried")
      return
    end
    local w6 = web.start { config = web.write_config(dir, sb), host = "::1" }
    finally(function() w6:stop() end)
    assert.matches("^Listening on http://%[::1%]:" .. w6.port .. "/ ", w6.line)
    assert.equal("http://[::1]:" .. w6.port, w6.origin)
    local b = web.browser()
    local res = assert(b:get(w6.origin .. "/authorize"))
    assert.equal(302, res.status, res.body)
    local cb = approve_in(sb, res.headers.location)
    assert.matches("^http://%[::1%]:" .. w6.port .. "/callback%?", cb)
    res = assert(b:get(cb))
    assert.equal(302, res.status, res.body)
    assert.equal(w6.origin .. "/", res.headers.location)
    res = assert(b:get(w6.origin .. "/test"))
    assert.equal(200, res.status)
    res = assert(web.request("http://localhost:" .. w6.port .. "/test", { connect = "::1" }))
    assert.equal(302, res.status)
    assert.equal(w6.origin .. "/test", res.headers.location)
  end)
end)

------------------------------------------------------------------ over https

describe("web flow over https", function()
  local provider = require "support.provider"
  local sb, w, dir, pki

  setup(function()
    sb = sandbox.start { key = "k", secret = "s" }
    dir = web.tmpdir()
    pki = provider.mkcerts()
    w = web.start { config = web.write_config(dir, sb), cert = pki .. "/server.pem",
                    cert_key = pki .. "/server.key" }
  end)
  teardown(function()
    if w then w:stop() end
    if sb then sb:stop() end
    web.remove_dir(dir)
    provider.remove_dir(pki)
  end)

  it("sets Secure __Host- cookies and an https callback", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", w.origin)
    local res = assert(provider.request { url = w.origin .. "/authorize", ca_file = pki .. "/ca.pem" })
    assert.equal(302, res.status)
    local sc = res.headers["set-cookie"]
    assert.matches("^__Host%-" .. RT .. "=", sc)
    local _, _, attrs = web.parse_set_cookie(sc)
    assert.is_true(attrs.secure)
    assert.is_true(attrs.httponly)
    assert.equal("Lax", attrs.samesite)
    assert.equal("/", attrs.path)
    assert.is_nil(attrs.domain)
    assert_safe_headers(res)
    local token = res.headers.location:match("oauth_token=([^&]+)")
    local page = assert(web.request(sb.origin .. "/_sandbox/approve?oauth_token=" .. token))
    assert.matches("^https://127%.0%.0%.1:" .. w.port .. "/callback%?", page.body)
    -- a plain (non-__Host-) cookie is not looked at over https
    res = assert(provider.request { url = w.origin .. "/", ca_file = pki .. "/ca.pem",
                                    headers = { Cookie = RT .. "=x" } })
    assert.equal(200, res.status)
  end)
end)

------------------------------------------------------------------ python3-oauthlib provider

describe("web flow against the python3-oauthlib provider", function()
  local provider = require "support.provider"
  local p, w, dir

  setup(function()
    p = provider.start { secret = "s&cr=t %2F", token_secret_suffix = "&=+ %/~" }
    dir = web.tmpdir()
    w = web.start { config = web.write_config(dir, p), key_file = dir .. "/key" }
  end)
  teardown(function()
    if w then w:stop() end
    if p then p:stop() end
    web.remove_dir(dir)
  end)

  it("runs the whole flow and refuses a replayed callback", function()
    local b = web.browser()
    local res = assert(b:get(w.origin .. "/authorize"))
    assert.equal(302, res.status, res.body)
    assert.matches("^" .. p.origin:gsub("%p", "%%%0") .. "/services/oauth/1%.0a/authorize%?", res.headers.location)
    assert.matches("Access=Full&Permissions=Modify", res.headers.location, 1, true)
    -- the provider's authorize page approves and redirects to our callback
    local auth = assert(web.request(res.headers.location))
    assert.equal(302, auth.status, auth.body)
    local cb = auth.headers.location
    assert.matches("^" .. w.origin:gsub("%p", "%%%0") .. "/callback%?", cb)
    local cookie = b:cookie_header()
    res = assert(b:get(cb))
    assert.equal(302, res.status, res.body)
    res = assert(b:get(w.origin .. "/test?path=%2Fapi%2Fv2%21authuser"))
    assert.equal(200, res.status, res.body)
    assert.matches("&quot;NickName&quot;: &quot;tester&quot;", res.body, 1, true)
    res = assert(b:get(w.origin .. "/test?path=" ..
      core.percent_encode("/api/v2/user/tester!albums?start=3&count=2")))
    assert.equal(200, res.status, res.body)
    local before = p:stats().total
    res = assert(web.request(cb, { headers = { { "Cookie", cookie } } }))
    assert.equal(403, res.status)
    assert.equal(before, p:stats().total)                     -- (control calls are not counted)
  end)
end)
