-- callback_spec.lua -- smugoauth.apps.callback (the one OAuth callback check
-- of the web app and `smugoauth login --web`) and smugoauth.http.html (the
-- one HTML kit), in process: no server, no provider.
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local cookie = require "smugoauth.http.cookie"
local html = require "smugoauth.http.html"
local callback = require "smugoauth.apps.callback"

local KEY = string.rep("k", 32)

-- A request as the server gives it to a handler: params and cookies.
local function req(query, cookies)
  local params = {}
  for k, v in (query or ""):gmatch("([^&=]+)=([^&]*)") do params[k] = core.percent_decode(v) end
  return { params = params, cookies = cookies or {}, headers = {} }
end

-- The cookie set by a start answer: name, value.
local function started(flow, secure, token, secret)
  local status, h = flow:start(secure or false, token or "RT", secret or "RTS", "https://p.example/auth?x=1")
  assert.equal(302, status)
  return h["Set-Cookie"]:match("^([^=]+)=([^;]+)")
end

describe("apps.callback", function()
  local now
  local function flow(opts)
    local o = { key = KEY, now = function() return now end, back = "/" }
    for k, v in pairs(opts or {}) do o[k] = v end
    return callback.new(o)
  end
  before_each(function() now = 1700000000 end)

  it("starts a flow: 302 to the provider, the request token sealed in this browser's cookie", function()
    local f = flow()
    local token, secret = "request-token-0123456789", "request-secret-0123456789"
    local status, h, body = f:start(false, token, secret, "https://p.example/auth?oauth_token=" .. token)
    assert.equal(302, status)
    assert.equal("", body)
    assert.equal("https://p.example/auth?oauth_token=" .. token, h.Location)
    assert.equal(html.CSP, h["Content-Security-Policy"])
    assert.equal("no-referrer", h["Referrer-Policy"])
    local name, value, attrs = h["Set-Cookie"]:match("^([^=]+)=([^;]+)(.*)$")
    assert.equal("smugoauth_rt", name)
    assert.equal("; Path=/; Max-Age=600; HttpOnly; SameSite=Lax", attrs)
    assert.is_nil(value:find(secret, 1, true))
    assert.is_nil(value:find(token, 1, true))
    assert.same({ t = token, s = secret }, cjson.decode((core.cookie_open(KEY, "smugoauth_rt", value, now))))
    -- over https: __Host- and Secure; the app's name and lifetime; its extra headers
    local f2 = flow { cookie = "smugoauth_login", ttl = 90, headers = { Connection = "close" } }
    status, h = f2:start(true, "RT", "S", "https://p.example/")
    assert.equal(302, status)
    assert.matches("^__Host%-smugoauth_login=[^;]+; Path=/; Max%-Age=90; HttpOnly; SameSite=Lax; Secure$",
      h["Set-Cookie"])
    assert.equal("close", h.Connection)
  end)

  it("answers 502 when the request token does not fit in a cookie", function()
    local status, h, body = flow():start(false, ("t"):rep(5000), "s", "https://p.example/")
    assert.equal(502, status)
    assert.is_nil(h["Set-Cookie"])
    assert.matches("too long", body, 1, true)
  end)

  it("accepts the callback of this browser's flow once, with its verifier", function()
    local f = flow()
    local name, value = started(f, false, "RT", "RTS")
    local rec = f:check(req("oauth_token=RT&oauth_verifier=123456", { [name] = value }), false)
    assert.same({ token = "RT", secret = "RTS", verifier = "123456" }, rec)
    local again, why = f:check(req("oauth_token=RT&oauth_verifier=123456", { [name] = value }), false)
    assert.is_nil(again)
    assert.equal("used", why)
  end)

  it("refuses, changing nothing: no or bad parameters, no cookie, another flow's token, an expired flow", function()
    local f = flow()
    local name, value = started(f, false, "RT", "RTS")
    local jar = { [name] = value }
    for _, case in ipairs {
      { "oauth_verifier=1", jar, "malformed" },
      { "oauth_token=&oauth_verifier=1", jar, "malformed" },
      { "oauth_token=" .. ("a"):rep(600) .. "&oauth_verifier=1", jar, "malformed" },
      { "oauth_token=RT&oauth_verifier=" .. ("1"):rep(600), jar, "malformed" },
      { "oauth_token=RT&oauth_verifier=1", {}, "no_flow" },
      { "oauth_token=RT&oauth_verifier=1", { [name] = value:sub(1, -3) }, "no_flow" },
      { "oauth_token=RT&oauth_verifier=1", { [name] = core.cookie_seal(core.random_bytes(32), name,
          '{"t":"RT","s":"RTS"}', now + 60) }, "no_flow" },
      { "oauth_token=RT&oauth_verifier=1", { ["__Host-" .. name] = value }, "no_flow" },
      { "oauth_token=OTHER&oauth_verifier=1", jar, "other_flow" },
      { "oauth_token=RT", jar, "denied" },
      { "oauth_token=RT&oauth_verifier=", jar, "denied" },
    } do
      local rec, why = f:check(req(case[1], case[2]), false)
      assert.is_nil(rec, case[1])
      assert.equal(case[3], why, case[1])
    end
    -- none of them used the flow up
    assert.is_table((f:check(req("oauth_token=RT&oauth_verifier=9", jar), false)))
    -- a flow is valid for ttl seconds only
    local f2 = flow()
    name, value = started(f2)
    now = now + 600
    assert.same({ nil, "no_flow" }, { f2:check(req("oauth_token=RT&oauth_verifier=1", { [name] = value }), false) })
  end)

  it("answers every refusal with an escaped page, and a link back only when the app has one", function()
    local cases = { malformed = 400, no_flow = 403, other_flow = 403, used = 403, denied = 400 }
    for why, code in pairs(cases) do
      local status, h, body = flow():refuse(why)
      assert.equal(code, status, why)
      assert.equal("nosniff", h["X-Content-Type-Options"])
      assert.matches('<p id="error">', body, 1, true)
      assert.matches('href="/"', body, 1, true)
      status, h, body = flow { back = false, headers = { Connection = "close" } }:refuse(why)
      assert.equal(code, status)
      assert.equal("close", h.Connection)
      assert.is_nil(body:find("href=", 1, true))
    end
  end)

  it("clears its cookie, keeps its key out of messages and refuses misuse", function()
    local f = flow()
    assert.equal("smugoauth_rt=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax", f:clear_cookie(false))
    assert.equal("__Host-smugoauth_rt=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure", f:clear_cookie(true))
    assert.equal("REDACTED", tostring(f._key))
    assert.has_error(function() callback.new() end)
    assert.has_error(function() callback.new { key = "short" } end)
    assert.has_error(function() callback.new { key = KEY, ttl = 0 } end)
    assert.has_error(function() callback.new { key = KEY, nope = 1 } end)
  end)

  it("seals and opens token pairs for other cookies (the web app's session)", function()
    local c = callback.seal_tokens(KEY, "smugoauth_at", false, "AT", "ATS", 60, now)
    local value = c:match("^smugoauth_at=([^;]+)")
    assert.same({ t = "AT", s = "ATS" }, callback.open_tokens(KEY, { smugoauth_at = value }, "smugoauth_at",
      false, now))
    assert.is_nil(callback.open_tokens(KEY, { smugoauth_at = value }, "smugoauth_at", false, now + 60))
    assert.is_nil(callback.open_tokens(KEY, { smugoauth_rt = value }, "smugoauth_rt", false, now))
    local bad = core.cookie_seal(KEY, "smugoauth_at", '{"t": 1}', now + 60)
    assert.is_nil(callback.open_tokens(KEY, { smugoauth_at = bad }, "smugoauth_at", false, now))
  end)
end)

describe("http.html", function()
  it("escapes text and attribute values", function()
    assert.equal("&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;", html.escape([[<a href="x">&'</a>]]))
    assert.equal("42", html.escape(42))
    assert.has_error(function() html.escape(nil) end)
  end)

  it("puts the security headers on every answer; extra headers override them", function()
    for _, answer in ipairs {
      { html.render(200, "T", "<p>x</p>") }, { html.problem(404, "T", "m") }, { html.redirect("/x") },
      { html.respond(204) },
    } do
      local h = answer[2]
      assert.equal("text/html; charset=utf-8", h["Content-Type"])
      for k, v in pairs(html.SECURITY_HEADERS) do assert.equal(v, h[k], k) end
    end
    local _, h = html.render(200, "T", "", { ["Content-Security-Policy"] = "default-src 'self'", X = "1" })
    assert.equal("default-src 'self'", h["Content-Security-Policy"])
    assert.equal("1", h.X)
    assert.equal(html.CSP, html.SECURITY_HEADERS["Content-Security-Policy"])   -- not changed
  end)

  it("escapes the title and a problem's message, not the body it is given", function()
    local _, _, body = html.render(200, "<T>", "<p>ok</p>")
    assert.matches("<title>&lt;T&gt; %- smugoauth</title>", body)
    assert.matches("<h1>&lt;T&gt;</h1>\n<p>ok</p>", body, 1, true)
    _, _, body = html.problem(400, "Bad", "<script>", nil, "/?a=\"b\"")
    assert.matches('<p id="error">&lt;script&gt;</p>', body, 1, true)
    assert.matches('<a href="/?a=&quot;b&quot;">Back to the start</a>', body, 1, true)
  end)
end)

describe("http.cookie", function()
  it("parses a Cookie header: raw values, quotes removed, the first of a name wins", function()
    assert.same({ a = "1", b = "two words", c = "q", d = "" },
      cookie.parse('a=1;  b = two words ;c="q"; d=; a=3; junk'))
    assert.same({}, cookie.parse(nil))
    assert.same({ a = "" }, cookie.parse("a=" .. (" "):rep(100000)))
  end)
end)
