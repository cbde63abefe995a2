-- web_spec.lua -- the cookie sealer (core.cookie_*), smugoauth.webapp and
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
local webapp = require "smugoauth.webapp"
local sandbox = require "support.sandbox"
local web = require "support.web_fixture"

local RT, AT = webapp.RT_COOKIE, webapp.AT_COOKIE

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
    assert.same({ nil, "bad_mac" }, { core.cookie_open(key, "smugoauth_at", v) })
    assert.same({ nil, "bad_mac" }, { core.cookie_open(core.random_bytes(32), "smugoauth_rt", v) })
    assert.same({ nil, "expired" }, { core.cookie_open(key, "smugoauth_rt", v, later) })
    assert.same({ nil, "expired" }, { core.cookie_open(key, "smugoauth_rt", v, later + 100) })
    local old = core.cookie_seal(key, "smugoauth_rt", "x", os.time() - 1)
    assert.same({ nil, "expired" }, { core.cookie_open(key, "smugoauth_rt", old) })
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
    assert.same({ nil, "bad_mac" }, { core.cookie_open(key, "c", spliced) })
  end)

  it("answers nil, reason for garbage and overlong values", function()
    assert.same({ nil, "too_long" }, { core.cookie_open(key, "c", string.rep("A", 4097)) })
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
                headers = { host = "localhost:8090" }, cookies = cookies or {} }
    r.params = {}
    for k, v in (query or ""):gmatch("([^&=]+)=([^&]*)") do r.params[k] = core.percent_decode(v) end
    for k, v in pairs(extra or {}) do r[k] = v end
    return r
  end
  local logged
  local function fake(behaviour)
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
        return { get = function(_, p) calls.n = calls.n + 1 return behaviour.get(p) end, close = function() end }
      end,
    }
    local app = webapp.new { client = client, key = string.rep("k", 32), log = function(m) logged = m end }
    return app, client
  end

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

  it("asks for the callback http://localhost:<port>/callback and Access=Full&Permissions=Modify", function()
    local app, client = fake { request_token = function() return "RT", "RTS" end }
    local status, h = app:handle(req("/authorize"))
    assert.equal(302, status)
    assert.equal("http://localhost:8090/callback", client.calls.callback)
    assert.matches("Access=Full&Permissions=Modify", h.Location, 1, true)
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
    assert.equal("http://localhost:" .. port, w.origin)
    local res = assert(web.request(w.origin .. "/"))
    assert.equal(200, res.status)
  end)
end)

------------------------------------------------------------------ the flow, sandbox

describe("web flow against the sandbox", function()
  local sb, w, dir, key, cfg
  local KEY, SECRET = "web-key", "s3cr&t =%2F"

  setup(function()
    sb = sandbox.start { key = KEY, secret = SECRET }
    dir = web.tmpdir()
    cfg = web.write_config(dir, sb)
    w = web.start { config = cfg, key_file = dir .. "/cookie.key" }
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

  -- Approve in the sandbox as the user would (GET the page, press Approve):
  -- the callback URL it redirects to.
  local function approve(location)
    local page = assert(web.request(location))
    assert.equal(200, page.status)
    assert.matches('id="approve"', page.body, 1, true)
    local token = page.body:match('name="oauth_token" value="([^"]+)"')
    local res = assert(web.request(sb.origin .. "/services/oauth/1.0a/authorize", {
      method = "POST", body = "oauth_token=" .. core.percent_encode(token),
      headers = { { "Content-Type", "application/x-www-form-urlencoded" } } }))
    assert.equal(302, res.status)
    return res.headers.location
  end

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
    assert.equal("/", res.headers.location)
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
    assert.equal(after + 1, requests())
  end)

  it("sends / and /authorize on 127.0.0.1 to localhost, where the callback lands", function()
    local res = assert(web.request(w.origin .. "/authorize", { headers = { { "Host", "127.0.0.1:" .. w.port } } }))
    assert.equal(302, res.status)
    assert.equal(w.origin .. "/authorize", res.headers.location)
    assert.same({}, res.set_cookies)
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
    w = web.start { config = cfg, key_file = dir .. "/cookie.key" }
    local res = assert(b:get(w.origin .. "/test"))
    -- the port changed, the cookie jar is per host name (localhost), as in a browser
    assert.equal(200, res.status)
    local w2 = web.start { config = cfg }                      -- a fresh random key
    finally(function() w2:stop() end)
    res = assert(b:get(w2.origin .. "/test"))
    assert.equal(401, res.status)
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
    assert.matches("^https://localhost:%d+$", w.origin)
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
    assert.matches("^https://localhost:" .. w.port .. "/callback%?", page.body)
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
