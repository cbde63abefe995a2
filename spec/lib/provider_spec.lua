-- The independent OAuth 1.0a test provider (spec/support/oauth_provider.py,
-- oauthlib on the provider side) works: the whole SmugMug three-legged flow,
-- the API resources and the failure answers, driven with the curl command for
-- transport and our C core's signer for the Authorization header.
local smugoauth = require "smugoauth"
local provider = require "support.provider"
local socket = require "socket"

local RT = "/services/oauth/1.0a/getRequestToken"
local AUTHORIZE = "/services/oauth/1.0a/authorize"
local AT = "/services/oauth/1.0a/getAccessToken"
local SECRET = "s&cr=t %2F"           -- reserved characters in the consumer secret
local TOKEN_SUFFIX = "&=+ %/~!*"      -- and in every token secret, where asked

local enc, decode_form = provider.encode, provider.decode_form

-- Form-encode an array of {name, value} pairs.
local function form(pairs_)
  local out = {}
  for i, kv in ipairs(pairs_) do out[i] = enc(kv[1]) .. "=" .. enc(kv[2]) end
  return table.concat(out, "&")
end

-- Sign with our core and send with curl. o: method, path, params, body,
-- content_type, token, token_secret, callback, verifier, signature_method,
-- rsa_key, consumer_key, consumer_secret, nonce, timestamp, version,
-- tamper (function(authorization) -> authorization).
local function signed(p, o)
  local url = p:url(o.path)
  local s = smugoauth.sign{
    method = o.method or "GET", url = url, params = o.params,
    consumer_key = o.consumer_key or p.key, consumer_secret = o.consumer_secret or p.secret,
    token = o.token, token_secret = o.token_secret, callback = o.callback,
    verifier = o.verifier, signature_method = o.signature_method, rsa_key = o.rsa_key,
    nonce = o.nonce, timestamp = o.timestamp, version = o.version,
  }
  local auth = o.tamper and o.tamper(s.authorization) or s.authorization
  local headers = { Authorization = auth }
  if o.content_type then headers["Content-Type"] = o.content_type end
  local res = assert(p:request{ method = o.method or "GET", url = url, headers = headers, body = o.body })
  return res, s
end

-- The three legs; returns access token, secret and the request token table.
local function dance(p, o)
  o = o or {}
  local method = o.method or "POST"
  local res = signed(p, { method = method, path = RT, callback = o.callback or "oob",
                          signature_method = o.signature_method, rsa_key = o.rsa_key })
  assert.equal(200, res.status, res.body)
  assert.matches("application/x-www-form-urlencoded", res.headers["content-type"], 1, true)
  local rt = decode_form(res.body)
  assert.equal("true", rt.oauth_callback_confirmed)
  assert.truthy(rt.oauth_token and rt.oauth_token_secret)
  local verifier = assert(p:approve(rt.oauth_token, o.approve))
  assert.matches("^%d%d%d%d%d%d$", verifier)
  res = signed(p, { method = method, path = AT, token = rt.oauth_token,
                    token_secret = rt.oauth_token_secret, verifier = verifier,
                    signature_method = o.signature_method, rsa_key = o.rsa_key })
  assert.equal(200, res.status, res.body)
  local at = decode_form(res.body)
  assert.truthy(at.oauth_token and at.oauth_token_secret, res.body)
  assert.is_nil(at.oauth_authorized_realms)
  rt.verifier = verifier
  return at.oauth_token, at.oauth_token_secret, rt
end

-- Check a SmugMug-style OAuth failure; returns the decoded form body.
local function assert_problem(res, status, problem)
  assert.equal(status, res.status, res.body)
  assert.matches("^OAuth realm=\"", res.headers["www-authenticate"] or "")
  assert.matches("application/x-www-form-urlencoded", res.headers["content-type"], 1, true)
  local f = decode_form(res.body)
  assert.equal(problem, f.oauth_problem, res.body)
  return f
end

local function json(res)
  assert.matches("application/json", res.headers["content-type"], 1, true)
  return assert(provider.decode_json(res.body))
end

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/smugoauth-spec.XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("oauth test provider", function()
  local p

  setup(function()
    p = provider.start{ secret = SECRET }
  end)

  teardown(function()
    if p then p:stop() end
  end)

  it("announces its port and origin", function()
    assert.is_number(p.port)
    assert.equal("http://127.0.0.1:" .. p.port, p.origin)
    assert.is_nil(p.ca_file)
    local res = assert(p:request{ path = "/nope" })
    assert.equal(404, res.status)
  end)

  describe("three-legged flow", function()
    it("issues a request token, a verifier and an access token (POST, oob)", function()
      local token, secret = dance(p)
      local res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret })
      assert.equal(200, res.status, res.body)
    end)

    it("works with GET for the token legs", function()
      local token, secret = dance(p, { method = "GET" })
      local res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret })
      assert.equal(200, res.status, res.body)
    end)

    it("shows a six-digit verifier on the oob authorize page", function()
      local res = signed(p, { method = "POST", path = RT, callback = "oob" })
      local rt = decode_form(res.body)
      res = assert(p:request{ path = AUTHORIZE .. "?oauth_token=" .. enc(rt.oauth_token)
                                .. "&Access=Full&Permissions=Modify" })
      assert.equal(200, res.status)
      assert.matches("text/html", res.headers["content-type"], 1, true)
      local verifier = res.body:match('id="verifier"[^>]*>(%d+)<')
      assert.matches("^%d%d%d%d%d%d$", verifier)
      assert.matches("Full", res.body, 1, true)
      res = signed(p, { method = "POST", path = AT, token = rt.oauth_token,
                        token_secret = rt.oauth_token_secret, verifier = verifier })
      assert.equal(200, res.status, res.body)
      local at = decode_form(res.body)
      res = signed(p, { path = "/api/v2/echo", token = at.oauth_token, token_secret = at.oauth_token_secret })
      local echo = json(res)
      assert.equal("Full", echo.token.access)
      assert.equal("Modify", echo.token.permissions)
    end)

    it("redirects to the callback with oauth_token and oauth_verifier", function()
      local callback = "http://127.0.0.1:9/cb?state=x%20y"
      local res = signed(p, { method = "POST", path = RT, callback = callback })
      assert.equal(200, res.status, res.body)
      local rt = decode_form(res.body)
      res = assert(p:request{ path = AUTHORIZE .. "?oauth_token=" .. enc(rt.oauth_token) })
      assert.equal(302, res.status)
      local loc = res.headers.location
      assert.matches("^http://127%.0%.0%.1:9/cb%?", loc)
      local q = decode_form(loc:match("%?(.*)$"))
      assert.equal("x y", q.state)
      assert.equal(rt.oauth_token, q.oauth_token)
      assert.matches("^%d%d%d%d%d%d$", q.oauth_verifier)
      -- the test shortcut answers the verifier and the redirect it would use
      local verifier, redirect = p:approve(rt.oauth_token)
      assert.matches("^%d%d%d%d%d%d$", verifier)
      assert.matches("oauth_verifier=" .. verifier, redirect, 1, true)
      res = signed(p, { method = "POST", path = AT, token = rt.oauth_token,
                        token_secret = rt.oauth_token_secret, verifier = verifier })
      assert.equal(200, res.status, res.body)
    end)

    it("uses a request token once", function()
      local _, _, rt = dance(p)
      local res = signed(p, { method = "POST", path = AT, token = rt.oauth_token,
                              token_secret = rt.oauth_token_secret, verifier = rt.verifier })
      assert_problem(res, 401, "token_used")
      assert.is_nil(p:approve(rt.oauth_token))
    end)

    it("accepts a consumer key with reserved and non-ASCII characters", function()
      local q = provider.start{ key = "k ey&=/+%\u{fc}", secret = SECRET }
      finally(function() q:stop() end)
      local token, secret = dance(q)
      local res = signed(q, { path = "/api/v2!authuser", token = token, token_secret = secret })
      assert.equal(200, res.status, res.body)
      assert.equal("k ey&=/+%\u{fc}", json(signed(q, { path = "/api/v2/echo", token = token,
        token_secret = secret })).oauth.oauth_consumer_key)
    end)

    it("hands out tokens with reserved characters in their secrets", function()
      local q = provider.start{ secret = SECRET, token_secret_suffix = TOKEN_SUFFIX }
      finally(function() q:stop() end)
      for _, m in ipairs{ "HMAC-SHA1", "PLAINTEXT" } do
        local token, secret, rt = dance(q, { signature_method = m })
        assert.equal(TOKEN_SUFFIX, rt.oauth_token_secret:sub(-#TOKEN_SUFFIX))
        assert.equal(TOKEN_SUFFIX, secret:sub(-#TOKEN_SUFFIX))
        local res = signed(q, { path = "/api/v2!authuser", token = token, token_secret = secret,
                                signature_method = m })
        assert.equal(200, res.status, res.body)
      end
    end)
  end)

  describe("API resources", function()
    local token, secret

    setup(function()
      token, secret = dance(p)
    end)

    it("answers !authuser like SmugMug", function()
      local res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret })
      assert.equal(200, res.status, res.body)
      local body = json(res)
      assert.equal(200, body.Code)
      assert.equal("Ok", body.Message)
      assert.equal("tester", body.Response.User.NickName)
      assert.equal("Test User", body.Response.User.Name)
      assert.equal("/api/v2/user/tester", body.Response.User.Uri)
    end)

    it("pages through 250 albums with SmugMug's Pages object", function()
      local path, seen, pages = "/api/v2/user/tester!albums?start=1&count=100", {}, 0
      while path do
        local res = signed(p, { path = path, token = token, token_secret = secret })
        assert.equal(200, res.status, res.body)
        local r = json(res).Response
        pages = pages + 1
        assert.equal(250, r.Pages.Total)
        assert.equal(100, r.Pages.RequestedCount)
        assert.equal(#r.Album, r.Pages.Count)
        assert.equal("/api/v2/user/tester!albums?start=1&count=100", r.Pages.FirstPage)
        assert.equal("/api/v2/user/tester!albums?start=201&count=100", r.Pages.LastPage)
        for _, a in ipairs(r.Album) do
          assert.matches("^/api/v2/album/K%d+$", a.Uri)
          assert.is_nil(seen[a.Uri])
          seen[a.Uri] = true
          assert.truthy(a.Name and a.UrlName)
        end
        path = r.Pages.NextPage
      end
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.equal(250, n)
      assert.equal(3, pages)
    end)

    it("defaults to start=1, count=10 and caps count at 100", function()
      local res = signed(p, { path = "/api/v2/user/tester!albums", token = token, token_secret = secret })
      local pg = json(res).Response.Pages
      assert.same({ 250, 1, 10, 10 }, { pg.Total, pg.Start, pg.Count, pg.RequestedCount })
      assert.equal("/api/v2/user/tester!albums?start=11&count=10", pg.NextPage)
      res = signed(p, { path = "/api/v2/user/tester!albums?start=241&count=500", token = token,
                        token_secret = secret })
      pg = json(res).Response.Pages
      assert.equal(10, pg.Count)
      assert.equal(500, pg.RequestedCount)
      assert.is_nil(pg.NextPage)
      assert.truthy(pg.PrevPage)
    end)

    it("signs form POST bodies (echo shows them signed)", function()
      local params = { { "Name", "My Album & Co" }, { "Keywords", "a=b;c" }, { "x", "" } }
      local res, s = signed(p, { method = "POST", path = "/api/v2/echo/form?q=1", params = params,
                                 body = form(params), token = token, token_secret = secret,
                                 content_type = "application/x-www-form-urlencoded" })
      assert.equal(200, res.status, res.body)
      local echo = json(res)
      assert.equal("POST", echo.method)
      assert.equal("/api/v2/echo/form", echo.path)
      assert.equal("q=1", echo.query)
      assert.same({ { "Name", "My Album & Co" }, { "Keywords", "a=b;c" }, { "x", "" } }, echo.form)
      assert.equal(s.base_string, echo.base_string)
      assert.matches('oauth_signature="REDACTED"', echo.authorization, 1, true)
      assert.matches('oauth_signature="REDACTED"', echo.headers.Authorization, 1, true)
      local signed_names = {}
      for _, kv in ipairs(echo.signed_params) do signed_names[kv[1]] = kv[2] end
      assert.equal("My Album & Co", signed_names.Name)
    end)

    it("refuses a form POST whose body was left out of the signature", function()
      local params = { { "Name", "unsigned" } }
      local res, s = signed(p, { method = "POST", path = "/api/v2/echo", body = form(params),
                                 token = token, token_secret = secret,
                                 content_type = "application/x-www-form-urlencoded" })
      local f = assert_problem(res, 401, "signature_invalid")
      local ours = smugoauth.sign{ method = "POST", url = p:url("/api/v2/echo"), params = params,
                                   consumer_key = p.key, consumer_secret = p.secret, token = token,
                                   token_secret = secret, nonce = s.nonce, timestamp = s.timestamp }
      assert.equal(ours.base_string, f.debug_sbs)
    end)

    it("does not sign JSON bodies (POST and PATCH)", function()
      for _, m in ipairs{ "POST", "PATCH" } do
        local body = '{"Name":"J & K","Keywords":["a","b"]}'
        local res, s = signed(p, { method = m, path = "/api/v2/echo/json", body = body,
                                   token = token, token_secret = secret,
                                   content_type = "application/json" })
        assert.equal(200, res.status, res.body)
        local echo = json(res)
        assert.equal(m, echo.method)
        assert.equal("application/json", echo.content_type)
        assert.equal(body, echo.body)
        assert.equal("J & K", echo.json.Name)
        assert.equal(s.base_string, echo.base_string)
        for _, kv in ipairs(echo.signed_params) do assert.matches("^oauth_", kv[1]) end
      end
    end)

    it("agrees on base strings for reserved characters in path and query", function()
      local path = "/api/v2/echo/a%20b!c?x=%21%2A%27%28%29&y=a+b&z=%E2%9C%93&empty=&dup=2&dup=1&_t=%7E"
      local res, s = signed(p, { path = path, token = token, token_secret = secret })
      assert.equal(200, res.status, res.body)
      local echo = json(res)
      assert.equal(s.base_string, echo.base_string)
      assert.equal("/api/v2/echo/a%20b!c", echo.path)
      res, s = signed(p, { method = "DELETE", path = "/api/v2/echo/album/K1?_method=x", token = token,
                           token_secret = secret })
      assert.equal(200, res.status, res.body)
      assert.equal("DELETE", json(res).method)
      assert.equal(s.base_string, json(res).base_string)
    end)

    it("agrees with oauthlib on edge-case queries, paths and form bodies", function()
      local F = "application/x-www-form-urlencoded"
      local cases = {
        { "GET", "/api/v2/echo?flag" }, { "GET", "/api/v2/echo?" },
        { "GET", "/api/v2/echo?z=%e2%9c%93" }, { "GET", "/api/v2/echo?a=b=c" },
        { "GET", "/api/v2/echo?=x" }, { "GET", "/api/v2/echo?a=1&&b=2" },
        { "GET", "/api/v2/echo?a=1;b=2" }, { "GET", "/api/v2/echo?a=*'()!" },
        { "GET", "/api/v2/echo?a=b:c@d,e/f?g" }, { "GET", "/api/v2/echo?a=%2B+%20" },
        { "GET", "/api/v2/echo?a%5B%5D=1" }, { "GET", "/api/v2/echo/%7Efoo" },
        { "GET", "/api/v2/echo/%e2%9c%93" }, { "GET", "/api/v2/echo/a%2Fb" },
        { "GET", "/api/v2/echo/a:b@c,d;e=f" },
        { "POST", "/api/v2/echo", { { "n", "\u{2713} \u{e9}" } }, "n=%E2%9C%93+%C3%A9" },
        { "POST", "/api/v2/echo", { { "a", "1;b=2" } }, "a=1;b=2" },
        { "POST", "/api/v2/echo", { { "a", "" } }, "a" },
        { "POST", "/api/v2/echo", { { "a", "b:c/d" }, { "b", "*'()!" } }, "a=b:c/d&b=*'()!" },
      }
      for _, c in ipairs(cases) do
        local res, s = signed(p, { method = c[1], path = c[2], params = c[3], body = c[4],
                                   content_type = c[4] and F, token = token, token_secret = secret })
        assert.equal(200, res.status, c[2] .. " " .. (c[4] or "") .. ": " .. res.body)
        assert.equal(s.base_string, json(res).base_string)
      end
    end)

    it("answers 404 in SmugMug's JSON for unknown API paths (after OAuth)", function()
      local res = signed(p, { path = "/api/v2/nothing", token = token, token_secret = secret })
      assert.equal(404, res.status)
      assert.equal(404, json(res).Code)
    end)

    it("counts requests, verified signatures and nonces", function()
      local before = p:stats()
      local _, s = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret })
      local after = p:stats()
      assert.equal(before.total + 1, after.total)
      assert.equal(before.signatures_verified + 1, after.signatures_verified)
      assert.equal(1, after.nonces[s.nonce])
      local last = after.log[#after.log]
      assert.same({ "GET", "/api/v2!authuser", s.nonce, 200 },
                  { last.method, last.path, last.nonce, last.status })
    end)
  end)

  describe("signature methods", function()
    for _, m in ipairs{ "HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512", "PLAINTEXT" } do
      it("verifies " .. m .. " on every leg and on the API", function()
        local token, secret = dance(p, { signature_method = m })
        local params = { { "k", "v w" } }
        local res = signed(p, { method = "POST", path = "/api/v2/echo", params = params, body = form(params),
                                content_type = "application/x-www-form-urlencoded",
                                token = token, token_secret = secret, signature_method = m })
        assert.equal(200, res.status, res.body)
        assert.equal(m, json(res).oauth.oauth_signature_method)
        res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret,
                          signature_method = m, consumer_secret = "wrong" })
        assert_problem(res, 401, "signature_invalid")
      end)
    end

    it("verifies RSA-SHA1 against the registered public key", function()
      local dir, q = tmpdir(), nil
      finally(function()   -- busted keeps one finally per test
        if q then q:stop() end
        provider.remove_dir(dir)
      end)
      assert.is_true(os.execute("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "
        .. dir .. "/key.pem 2>/dev/null && openssl pkey -in " .. dir .. "/key.pem -pubout -out "
        .. dir .. "/pub.pem 2>/dev/null"))
      local rsa_key = slurp(dir .. "/key.pem")
      q = provider.start{ secret = SECRET, rsa_public_key = dir .. "/pub.pem" }
      local token, secret = dance(q, { signature_method = "RSA-SHA1", rsa_key = rsa_key })
      local res = signed(q, { path = "/api/v2!authuser?x=1", token = token, token_secret = secret,
                              signature_method = "RSA-SHA1", rsa_key = rsa_key })
      assert.equal(200, res.status, res.body)
      -- a different key's signature is refused
      assert.is_true(os.execute("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "
        .. dir .. "/other.pem 2>/dev/null"))
      local s
      res, s = signed(q, { path = "/api/v2!authuser", token = token, token_secret = secret,
                           signature_method = "RSA-SHA1", rsa_key = slurp(dir .. "/other.pem") })
      assert.equal(s.base_string, assert_problem(res, 401, "signature_invalid").debug_sbs)
      -- and a provider without a registered key does not offer RSA-SHA1
      res = signed(p, { method = "POST", path = RT, callback = "oob", signature_method = "RSA-SHA1",
                        rsa_key = rsa_key })
      assert_problem(res, 400, "signature_method_rejected")
    end)
  end)

  describe("failures, answered SmugMug's way", function()
    local token, secret

    setup(function()
      token, secret = dance(p)
    end)

    it("tampered signature -> 401 signature_invalid with our base string as debug_sbs", function()
      local res, s = signed(p, { path = "/api/v2!authuser?_verbosity=1", token = token, token_secret = secret,
        tamper = function(a) return (a:gsub('oauth_signature="[^"]*"', 'oauth_signature="AAAA"')) end })
      local f = assert_problem(res, 401, "signature_invalid")
      assert.equal(s.base_string, f.debug_sbs)
      -- also on the token legs
      res, s = signed(p, { method = "POST", path = RT, callback = "http://127.0.0.1:9/cb",
                           consumer_secret = "wrong" })
      assert.equal(s.base_string, assert_problem(res, 401, "signature_invalid").debug_sbs)
    end)

    it("replayed nonce -> 401 nonce_used", function()
      local res, s = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret })
      assert.equal(200, res.status, res.body)
      res = assert(p:request{ path = "/api/v2!authuser", headers = { Authorization = s.authorization } })
      assert_problem(res, 401, "nonce_used")
      -- same nonce, new timestamp: a different request, accepted
      res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret, nonce = s.nonce,
                        timestamp = tonumber(s.timestamp) - 1 })
      assert.equal(200, res.status, res.body)
    end)

    it("old timestamp -> 401 timestamp_refused", function()
      local res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret,
                              timestamp = os.time() - 3600 })
      local f = assert_problem(res, 401, "timestamp_refused")
      assert.matches("^%d+%-%d+$", f.oauth_acceptable_timestamps)
      res = signed(p, { method = "POST", path = RT, callback = "oob", timestamp = os.time() + 3600 })
      assert_problem(res, 401, "timestamp_refused")
    end)

    it("unknown or revoked token -> 401 token_rejected / token_revoked", function()
      local res = signed(p, { path = "/api/v2!authuser", token = "nosuchtoken", token_secret = "x" })
      assert_problem(res, 401, "token_rejected")
      res = signed(p, { method = "POST", path = AT, token = "nosuchtoken", token_secret = "x",
                        verifier = "123456" })
      assert_problem(res, 401, "token_rejected")
      local t, ts = p:access_token()
      assert.equal(200, signed(p, { path = "/api/v2!authuser", token = t, token_secret = ts }).status)
      assert.is_true(p:revoke(t))
      assert_problem(signed(p, { path = "/api/v2!authuser", token = t, token_secret = ts }), 401,
                     "token_revoked")
    end)

    it("missing oauth_consumer_key -> 400 parameter_absent", function()
      local res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret,
        tamper = function(a) return (a:gsub('oauth_consumer_key="[^"]*", ', "")) end })
      local f = assert_problem(res, 400, "parameter_absent")
      assert.equal("oauth_consumer_key", f.oauth_parameters_absent)
      -- no OAuth at all
      res = assert(p:request{ path = "/api/v2!authuser" })
      f = assert_problem(res, 400, "parameter_absent")
      assert.matches("oauth_nonce", f.oauth_parameters_absent, 1, true)
      -- no token on an API request, no callback on getRequestToken
      f = assert_problem(signed(p, { path = "/api/v2!authuser" }), 400, "parameter_absent")
      assert.equal("oauth_token", f.oauth_parameters_absent)
      f = assert_problem(signed(p, { method = "POST", path = RT }), 400, "parameter_absent")
      assert.equal("oauth_callback", f.oauth_parameters_absent)
    end)

    it("unknown consumer key -> 401 consumer_key_unknown", function()
      local res = signed(p, { method = "POST", path = RT, callback = "oob", consumer_key = "someone-else" })
      assert_problem(res, 401, "consumer_key_unknown")
      res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret,
                        consumer_key = "someone-else" })
      assert_problem(res, 401, "consumer_key_unknown")
    end)

    it("verifier problems -> permission_unknown / verifier_invalid", function()
      local rt = decode_form(signed(p, { method = "POST", path = RT, callback = "oob" }).body)
      local leg = { method = "POST", path = AT, token = rt.oauth_token, token_secret = rt.oauth_token_secret,
                    verifier = "000000" }
      assert_problem(signed(p, leg), 401, "permission_unknown")
      local verifier = p:approve(rt.oauth_token)
      leg.verifier = verifier == "000000" and "111111" or "000000"
      assert_problem(signed(p, leg), 401, "verifier_invalid")
      leg.verifier = verifier
      assert.equal(200, signed(p, leg).status)
    end)

    it("bad method, version or callback -> 400", function()
      local res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret,
        tamper = function(a) return (a:gsub("HMAC%-SHA1", "HMAC-MD5")) end })
      assert_problem(res, 400, "signature_method_rejected")
      -- (sign{} signs only version "1.0": the header is changed after signing)
      res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret,
        tamper = function(a) return (a:gsub('oauth_version="1%.0"', 'oauth_version="2.0"')) end })
      assert.equal("1.0-1.0", assert_problem(res, 400, "version_rejected").oauth_acceptable_versions)
      res = signed(p, { method = "POST", path = RT, callback = "not a url" })
      assert.equal("oauth_callback", assert_problem(res, 400, "parameter_rejected").oauth_parameters_rejected)
    end)
  end)

  describe("fault modes", function()
    local token, secret

    setup(function()
      token, secret = dance(p)
    end)

    after_each(function()
      p:mode{ clear = 1 }
    end)

    it("fail429 answers 429 with Retry-After, then serves; each retry re-signed", function()
      local mode = p:mode{ fail429 = 2, retry_after = 1 }
      assert.equal(429, mode.faults[1][1])
      local before = #p:stats().log
      local statuses, nonces = {}, {}
      for i = 1, 3 do
        local res, s = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret })
        statuses[i], nonces[i] = res.status, s.nonce
        if i < 3 then
          assert.equal("1", res.headers["retry-after"])
          assert.equal(429, json(res).Code)
        end
      end
      assert.same({ 429, 429, 200 }, statuses)
      local st = p:stats()
      assert.equal(2, st.faults_served["429"])
      local log = { table.unpack(st.log, before + 1) }
      assert.equal(3, #log)
      local distinct = {}
      for i, e in ipairs(log) do
        assert.equal(nonces[i], e.nonce)
        assert.equal(statuses[i], e.status)
        distinct[e.nonce] = true
      end
      local n = 0
      for _ in pairs(distinct) do n = n + 1 end
      assert.equal(3, n)
    end)

    it("fail503 answers 503; OAuth endpoints are untouched in the default scope", function()
      p:mode{ fail503 = 1 }
      local res = signed(p, { method = "POST", path = RT, callback = "oob" })
      assert.equal(200, res.status)
      res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret })
      assert.equal(503, res.status)
      assert.is_nil(res.headers["retry-after"])
      res = signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret })
      assert.equal(200, res.status)
    end)

    it("scope=oauth faults the token endpoints", function()
      p:mode{ fail503 = 1, scope = "oauth" }
      assert.equal(200, signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret }).status)
      assert.equal(503, signed(p, { method = "POST", path = RT, callback = "oob" }).status)
      assert.equal(200, signed(p, { method = "POST", path = RT, callback = "oob" }).status)
    end)

    it("delay holds the next API answers", function()
      p:mode{ delay = 0.3, delay_count = 1 }
      local t0 = socket.gettime()
      assert.equal(200, signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret }).status)
      assert.is_true(socket.gettime() - t0 >= 0.3)
      t0 = socket.gettime()
      assert.equal(200, signed(p, { path = "/api/v2!authuser", token = token, token_secret = secret }).status)
      assert.is_true(socket.gettime() - t0 < 0.3)
    end)

    it("rejects unknown mode parameters", function()
      assert.has_error(function() p:mode{ nonsense = 1 } end)
    end)
  end)
end)

describe("oauth test provider over HTTPS", function()
  local pki, p

  setup(function()
    pki = provider.mkcerts()
    p = provider.start{ tls = true, pki = pki, secret = SECRET }
  end)

  teardown(function()
    if p then p:stop() end
    provider.remove_dir(pki)
  end)

  it("serves the flow and the API over TLS (curl --cacert)", function()
    assert.equal("https://127.0.0.1:" .. p.port, p.origin)
    assert.equal(pki .. "/ca.pem", p.ca_file)
    local token, secret = dance(p)
    local res, s = signed(p, { path = "/api/v2/echo?x=1", token = token, token_secret = secret })
    assert.equal(200, res.status, res.body)
    assert.matches("^GET&https%%3A%%2F%%2F127%.0%.0%.1%%3A", s.base_string)
    assert.equal(s.base_string, json(res).base_string)
    res = signed(p, { path = "/api/v2/user/tester!albums?start=11&count=5", token = token,
                      token_secret = secret })
    local r = json(res).Response
    assert.equal("/api/v2/album/K11", r.Album[1].Uri)
    assert.equal(5, #r.Album)
  end)

  it("is refused without the test CA", function()
    local res, err = provider.request{ url = p:url("/_test/stats") }
    assert.is_nil(res)
    assert.matches("curl", err)
  end)
end)
