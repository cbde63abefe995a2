-- The OAuth flow and the API session against the sandbox (our HTTP loop,
-- signatures checked with the C core) — see provider_flow_spec.lua for the
-- same against python3-oauthlib.
local smugoauth = require "smugoauth"
local sandbox = require "support.sandbox"
local cjson = require "cjson"

describe("smugoauth client against the sandbox", function()
  local sb
  setup(function() sb = sandbox.start { key = "ck-1", secret = "cs&1 %/" } end)
  teardown(function() if sb then sb:stop() end end)

  describe("three-legged flow", function()
    it("request token, authorize URL, access token, !authuser", function()
      local c = sb:client()
      local rt, rts = c:request_token("oob")
      assert.is_string(rt)
      assert.is_string(rts)
      local url = c:authorize_url(rt, { Access = "Full", Permissions = "Modify" })
      assert.equal(sb.origin .. "/services/oauth/1.0a/authorize?oauth_token=" .. rt ..
        "&Access=Full&Permissions=Modify", url)
      local at, ats = c:access_token(rt, rts, sb:approve(rt))
      assert.is_string(at)
      assert.is_string(ats)
      local api = c:session(at, ats)
      local res = assert(api:get("/api/v2!authuser"))
      assert.equal(200, res.status)
      assert.equal("application/json", res.headers["content-type"])
      assert.equal("tester", res:json().Response.User.NickName)
    end)

    it("a callback URL is confirmed and the approval redirects to it", function()
      local c = sb:client()
      local rt = assert(c:request_token("http://localhost:8090/callback"))
      local redirect = sb:approve(rt)
      assert.matches("^http://localhost:8090/callback%?oauth_token=" .. rt .. "&oauth_verifier=%d+$", redirect)
    end)

    it("refuses an unconfirmed callback", function()
      sb:mode { no_confirm = 1 }
      local rt, err = sb:client():request_token("oob")
      sb:mode {}
      assert.is_nil(rt)
      assert.equal("oauth", err.code)
      assert.matches("oauth_callback_confirmed", tostring(err))
    end)

    it("a wrong verifier is an oauth error", function()
      local c = sb:client()
      local rt, rts = assert(c:request_token("oob"))
      sb:approve(rt)
      local at, err = c:access_token(rt, rts, "000000x")
      assert.is_nil(at)
      assert.equal("oauth", err.code)
      assert.equal(401, err.status)
      assert.equal("verifier_invalid", err.problem)
    end)

    it("an empty verifier is refused before any request", function()
      local c = sb:client()
      local at, err = c:access_token("t", "s", "  ")
      assert.is_nil(at)
      assert.equal("oauth", err.code)
    end)

    it("a request token is usable once", function()
      local c = sb:client()
      local rt, rts = assert(c:request_token("oob"))
      local v = sb:approve(rt)
      assert(c:access_token(rt, rts, v))
      local at, err = c:access_token(rt, rts, v)
      assert.is_nil(at)
      assert.equal("token_rejected", err.problem)
    end)

    it("a wrong consumer secret shows where the base strings differ", function()
      local c = sb:client { secret = "wrong" }
      local rt, err = c:request_token("oob")
      assert.is_nil(rt)
      assert.equal("oauth", err.code)
      assert.equal("signature_invalid", err.problem)
      assert.is_string(err.debug_sbs)
      assert.matches("base string equals ours: the keys differ", tostring(err), 1, true)
    end)

    it("a base string mismatch names the differing parameter", function()
      local at, ats, c = sb:authorize()
      local api = c:session(at, ats)
      -- sign one URL, send another: the provider sees a different query
      local signer = smugoauth.signer { consumer_key = sb.key, consumer_secret = sb.secret,
                                        token = at, token_secret = ats }
      local auth = signer:authorization("GET", sb.origin .. "/api/v2!authuser?x=1")
      local res = assert(api.http:request { method = "GET", url = sb.origin .. "/api/v2!authuser?x=2",
                                            headers = { "Authorization: " .. auth } })
      assert.equal(401, res.status)
      local response = require "smugoauth.response"
      local resp = setmetatable({ status = res.status, body = res.body,
        headers = { ["content-type"] = "application/x-www-form-urlencoded" } }, smugoauth.Response)
      local err = response.http_error(resp, "GET", sb.origin .. "/api/v2!authuser?x=2",
        signer:sign("GET", sb.origin .. "/api/v2!authuser?x=1").base_string)
      local msg = tostring(err)
      assert.matches("only in ours:   x=1", msg, 1, true)
      assert.matches("only in theirs: x=2", msg, 1, true)
    end)
  end)

  describe("session", function()
    local api, c
    setup(function()
      local at, ats
      at, ats, c = sb:authorize()
      api = c:session(at, ats)
    end)

    it("signs query parameters and pages", function()
      local res = assert(api:get("/api/v2/user/tester!albums", { start = 101, count = 50 }))
      local body = res:json()
      assert.equal(50, #body.Response.Album)
      assert.equal("Album 101", body.Response.Album[1].Name)
      assert.equal(250, body.Response.Pages.Total)
    end)

    it("signs form bodies and sends them form-encoded", function()
      local res = assert(api:post("/api/v2!echo", { form = { a = "1 2", ["b&c"] = "d=e" } }))
      local e = res:json()
      assert.equal("POST", e.method)
      assert.equal("application/x-www-form-urlencoded", e.content_type)
      assert.equal("a=1%202&b%26c=d%3De", e.body)
    end)

    it("signs extra oauth_* form fields and sends them in the Authorization header only", function()
      local form = { a = "1", oauth_body_hash = "2jmj7l5rSw0yVb/vlWAYkK/YBwk=" }
      local res = assert(api:post("/api/v2!echo", { form = form }))
      local e = res:json()                                     -- 200: the sandbox verified the signature
      assert.equal("a=1", e.body)
      assert.truthy(table.concat(e.oauth, " "):find("oauth_body_hash", 1, true))
    end)

    it("sends JSON unsigned as application/json, never form-encoded", function()
      local res = assert(api:patch("/api/v2!echo", { json = { Title = "x&y" } }))
      local e = res:json()
      assert.equal("PATCH", e.method)
      assert.equal("application/json", e.content_type)
      assert.same({ Title = "x&y" }, cjson.decode(e.body))
    end)

    it("sends Accept: application/json by default", function()
      assert.equal("application/json", assert(api:get("/api/v2!echo")):json().accept)
    end)

    it("creates, changes and deletes an album", function()
      local res = assert(api:post("/api/v2/user/tester!albums", { json = { Name = "Trip" } }))
      assert.equal(201, res.status)
      local uri = res:json().Response.Album.Uri
      assert(api:patch(uri, { json = { Title = "Trip 2" } }))
      assert.equal("Trip 2", assert(api:get(uri)):json().Response.Album.Title)
      assert(api:delete(uri))
      local gone, err = api:get(uri)
      assert.is_nil(gone)
      assert.equal("http", err.code)
      assert.equal(404, err.status)
      assert.matches("answered 404: Not Found", tostring(err), 1, true)
    end)

    it("a non-JSON body gives a json error", function()
      local res = assert(api:request { method = "GET", path = "/api/v2!echo" })
      res.body = "<html>"
      res._json = nil
      local v, err = res:json()
      assert.is_nil(v)
      assert.equal("json", err.code)
    end)

    it("retries 429 with Retry-After, re-signing each attempt", function()
      sb:mode { fail429 = 2, retry_after = 0 }
      local before = #sb:stats().nonces
      local slept = {}
      local res = assert(api:get("/api/v2!authuser", nil,
        { retry = { attempts = 3, sleep = function(s) slept[#slept + 1] = s end } }))
      assert.equal(200, res.status)
      assert.same({ 0, 0 }, slept)
      local nonces = sb:stats().nonces
      assert.equal(before + 1, #nonces)   -- 429s are answered before verification
    end)

    it("gives up after the attempts with the last error", function()
      sb:mode { fail503 = 5 }
      local res, err = api:get("/api/v2!authuser", nil,
        { retry = { attempts = 2, base = 0.001, sleep = function() end } })
      sb:mode {}
      assert.is_nil(res)
      assert.equal(503, err.status)
      assert.equal(2, err.attempts)
    end)

    it("does not retry a POST unless asked", function()
      sb:mode { fail503 = 1 }
      local res, err = api:post("/api/v2!echo", { form = { a = 1 }, retry = { sleep = function() end } })
      assert.is_nil(res)
      assert.equal(1, err.attempts)
      sb:mode { fail503 = 1 }
      assert(api:post("/api/v2!echo", { form = { a = 1 }, retry = { unsafe = true, sleep = function() end } }))
    end)

    it("a replayed nonce is refused by the provider", function()
      local signer = api.signer
      local r = signer:sign("GET", sb.origin .. "/api/v2!authuser")
      local req = { method = "GET", url = sb.origin .. "/api/v2!authuser",
                    headers = { "Authorization: " .. r.authorization } }
      assert.equal(200, api.http:request(req).status)
      local again = api.http:request(req)
      assert.equal(401, again.status)
      assert.matches("oauth_problem=nonce_used", again.body, 1, true)
    end)

    it("a token the provider does not know is token_rejected", function()
      local other = c:session("not-a-token", "x")
      local res, err = other:get("/api/v2!authuser")
      assert.is_nil(res)
      assert.equal("oauth", err.code)
      assert.equal("token_rejected", err.problem)
    end)

    it("traces requests with every secret redacted", function()
      local lines = {}
      local at, ats = sb:authorize()
      local tc = sb:client { debug = function(l) lines[#lines + 1] = l end }
      local rt, rts = assert(tc:request_token("oob"))
      local _, ats2 = assert(tc:access_token(rt, rts, sb:approve(rt)))
      local s = tc:session(at, ats)
      assert(s:get("/api/v2!authuser", { a = "b" }))
      local text = table.concat(lines, "\n")
      assert.matches("> GET " .. sb.origin .. "/api/v2!authuser?a=b", text, 1, true)
      assert.matches("base string: GET&", text, 1, true)
      assert.matches('oauth_signature="REDACTED"', text, 1, true)
      for _, secret in ipairs { sb.secret, smugoauth.percent_encode(sb.secret), ats, ats2, rts } do
        assert.is_nil(text:find(secret, 1, true), "secret leaked: " .. secret)
      end
      assert.is_nil(text:find('oauth_signature="[^R]'), "signature leaked")
    end)
  end)

  describe("plain http", function()
    local ORIGIN_OPTS = { "oauth_origin", "api_origin", "upload_origin" }

    it("refuses an http origin for a host that is not loopback, unless insecure_http", function()
      for _, name in ipairs(ORIGIN_OPTS) do
        for _, origin in ipairs { "http://api.smugmug.com", "http://example.com:8080", "http://10.0.0.1",
                                  "http://127.0.0.1.nip.io", "http://0127.0.0.1", "http://127.1",
                                  "http://localhost.example.com", "http://[::2]", "http://[::ffff:127.0.0.1]" } do
          local ok, err = pcall(smugoauth.new, { key = "k", secret = "s", [name] = origin })
          assert.is_false(ok, name .. " = " .. origin .. " was accepted")
          assert.matches("smugoauth.new: " .. name .. " " .. origin .. " is plain http", err, 1, true)
          assert.matches("insecure_http = true", err, 1, true)
          local c = smugoauth.new { key = "k", secret = "s", [name] = origin, insecure_http = true }
          assert.equal(origin, c[name])
        end
      end
      assert.has_error(function() smugoauth.new { key = "k", secret = "s", insecure_http = "yes" } end)
    end)

    it("accepts http to loopback: localhost, 127.0.0.0/8, [::1]", function()
      for _, origin in ipairs { "http://localhost:8090", "http://LOCALHOST", "http://127.0.0.1:1",
                                "http://127.255.0.9", "http://[::1]:8080", "http://[::1]" } do
        local c = smugoauth.new { key = "k", secret = "s", oauth_origin = origin, api_origin = origin,
                                  upload_origin = origin }
        assert.equal(origin, c.api_origin)
      end
    end)

    it("refuses PLAINTEXT unless every origin is https, loopback included", function()
      local https = { key = "k", secret = "s", signature_method = "PLAINTEXT" }
      assert(smugoauth.new(https))
      for _, name in ipairs(ORIGIN_OPTS) do
        local o = { key = "k", secret = "s", signature_method = "PLAINTEXT", [name] = sb.origin }
        local ok, err = pcall(smugoauth.new, o)
        assert.is_false(ok)
        assert.matches("PLAINTEXT sends the consumer secret and the token secret", err, 1, true)
        assert.matches(sb.origin, err, 1, true)
        o.insecure_http = true
        assert(smugoauth.new(o))
      end
    end)

    it("refuses request URLs and origins that would drop TLS, before sending anything", function()
      local at, ats = sb:authorize()
      local api = sb:client():session(at, ats)
      local function sent() return sb:stats().requests end   -- counts its own request too
      local before = sent()
      for _, o in ipairs {
        { url = "http://api.smugmug.com/api/v2!authuser" },
        { origin = "http://example.com", path = "/api/v2!authuser" },
        { url = "http://127.0.0.1.nip.io/x" },
        { url = sb.origin:gsub("127%.0%.0%.1", "127.1") .. "/api/v2!authuser" },  -- not spelled as loopback
      } do
        local ok, err = pcall(api.request, api, o)
        assert.is_false(ok)
        assert.matches("is plain http to a host that is not loopback", err, 1, true)
        ok = pcall(api.get_many, api, { o })
        assert.is_false(ok)
      end
      assert.equal(before + 1, sent())
      -- loopback URLs are fine, and so is everything with insecure_http
      assert(api:request { url = sb.origin .. "/api/v2!authuser" })
      local loose = sb:client { insecure_http = true }:session(at, ats)
      local _, lerr = loose:request { url = sb.origin:gsub("127%.0%.0%.1", "127.1") .. "/api/v2!authuser" }
      assert.equal(401, lerr.status)          -- sent (signed for the host 127.1, which the sandbox is not)
      -- PLAINTEXT on https origins: an http request URL is refused, loopback or not
      local pt = smugoauth.new { key = sb.key, secret = sb.secret, signature_method = "PLAINTEXT" }
      local ptapi = pt:session(at, ats)
      local ok2, err2 = pcall(ptapi.request, ptapi, { url = sb.origin .. "/api/v2!authuser" })
      assert.is_false(ok2)
      assert.matches("PLAINTEXT", err2, 1, true)
      assert.equal(before + 4, sent())                     -- stats, two requests, stats
    end)

    it("leaves sign{} and signer{} pure: http URLs and PLAINTEXT sign as before", function()
      local r = smugoauth.sign { url = "http://example.com/a", consumer_key = "k", consumer_secret = "s&",
                                 token = "t", token_secret = "ts", signature_method = "PLAINTEXT",
                                 nonce = "n", timestamp = 1 }
      assert.equal("s%26&ts", r.signature)
      local signer = smugoauth.signer { consumer_key = "k", consumer_secret = "s", signature_method = "PLAINTEXT" }
      assert.matches('oauth_signature="s%26"', signer:authorization("GET", "http://example.com/"), 1, true)
    end)
  end)

  describe("failures", function()
    it("a closed port is a network error", function()
      local c = smugoauth.new { key = "k", secret = "s", oauth_origin = "http://127.0.0.1:9",
                                api_origin = "http://127.0.0.1:9", timeout = 5 }
      local rt, err = c:request_token("oob")
      assert.is_nil(rt)
      assert.equal("network", err.code)
      assert.matches("^smugoauth: network: ", tostring(err))
    end)

    it("misuse raises", function()
      assert.has_error(function() smugoauth.new {} end)
      assert.has_error(function() smugoauth.new { key = "k" } end)
      assert.has_error(function() smugoauth.new { key = "k", secret = "s", bogus = 1 } end)
      assert.has_error(function() smugoauth.new { key = "k", secret = "s", api_origin = "ftp://x" } end)
      assert.has_error(function() smugoauth.new { key = "k", secret = "s", api_origin = "http://x/path" } end)
      local c = sb:client()
      assert.has_error(function() c:authorize_url(nil) end)
      assert.has_error(function() c:session(nil, "x") end)
      local api = c:session("t", "s")
      assert.has_error(function() api:get("no-slash") end)
      assert.has_error(function() api:request { path = "/x", json = {}, form = {} } end)
      assert.has_error(function() api:request { path = "/x", nope = 1 } end)
      assert.has_error(function() api:request { path = "/x", headers = { ["X-A"] = "a\r\nB: c" } } end)
    end)
  end)
end)
