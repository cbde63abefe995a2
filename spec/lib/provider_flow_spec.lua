-- Our client (libcurl + the Lua session) against a provider whose signature
-- checks are not ours: python3-oauthlib (spec/support/oauth_provider.py),
-- over HTTP and over HTTPS with a test CA, and refused when the certificate
-- is not trusted.
local smugoauth = require "smugoauth"
local provider = require "support.provider"

local function client_for(p, extra)
  local o = { key = p.key, secret = p.secret, oauth_origin = p.origin, api_origin = p.origin,
              upload_origin = p.origin, ca_file = p.ca_file, timeout = 10 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return smugoauth.new(o)
end

local function flow(p, method)
  -- PLAINTEXT sends the secrets in clear: over http only with the explicit opt-in
  local c = client_for(p, { signature_method = method,
                            insecure_http = method == "PLAINTEXT" and p.origin:sub(1, 5) == "http:" or nil })
  local rt, rts = c:request_token("oob")
  assert(rt, rts)
  local verifier = assert(p:approve(rt, { Access = "Full", Permissions = "Modify" }))
  local at, ats = c:access_token(rt, rts, verifier)
  assert(at, ats)
  return c:session(at, ats), c
end

for _, tls in ipairs { false, true } do
  describe("against python3-oauthlib over " .. (tls and "HTTPS" or "HTTP"), function()
    local p
    setup(function()
      p = provider.start { tls = tls, secret = "s&cr=t %2F", token_secret_suffix = "&=+ %/~!*" }
    end)
    teardown(function() if p then p:stop() end end)

    for _, method in ipairs { "HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512", "PLAINTEXT" } do
      it("runs the three-legged flow and !authuser with " .. method, function()
        local api = flow(p, method)
        local res = assert(api:get("/api/v2!authuser"))
        assert.equal("tester", res:json().Response.User.NickName)
        local again = assert(api:get("/api/v2!authuser"))
        assert.equal(0, again.new_connections)    -- the connection (and TLS session) is reused
      end)
    end

    it("signs query parameters, form bodies; leaves JSON bodies unsigned", function()
      local api = flow(p)
      local res = assert(api:get("/api/v2/user/tester!albums",
        { start = 11, count = 5, _expand = "HighlightImage", _filter = "Name,Uri" }))
      local body = res:json()
      assert.equal(5, #body.Response.Album)
      assert.equal(11, math.tointeger(body.Response.Pages.Start))
      local e = assert(api:post("/api/v2/echo", { form = { ["a b"] = "c&d", ["é"] = "ü" } })):json()
      assert.equal("application/x-www-form-urlencoded", e.content_type)
      assert.matches("a%2520b%3Dc%2526d", e.base_string, 1, true)
      local j = assert(api:patch("/api/v2/echo", { json = { Name = "x y" } })):json()
      assert.equal("application/json", j.content_type)
      assert.is_nil(j.base_string:find("Name", 1, true))
    end)

    it("retries a 429 with Retry-After, re-signed with a new nonce", function()
      local api = flow(p)
      p:reset()
      p:mode { fail429 = 1, retry_after = 0 }
      local res = assert(api:get("/api/v2!authuser", nil, { retry = { sleep = function() end } }))
      assert.equal(200, res.status)
      local stats = p:stats()
      assert.equal(2, #stats.log)
      assert.are_not.equal(stats.log[1].nonce, stats.log[2].nonce)
      assert.equal(1, math.tointeger(stats.signatures_verified))
    end)

    it("a wrong secret gets signature_invalid with the provider's base string", function()
      local c = client_for(p, { secret = "not it" })
      local rt, err = c:request_token("oob")
      assert.is_nil(rt)
      assert.equal("oauth", err.code)
      assert.equal("signature_invalid", err.problem)
      assert.equal(err.base_string, err.debug_sbs)  -- same base string: the key differs
    end)
  end)
end

describe("TLS verification is always on", function()
  local pki
  setup(function() pki = provider.mkcerts() end)
  teardown(function() if pki then provider.remove_dir(pki) end end)

  for _, name in ipairs { "untrusted", "wronghost", "expired" } do
    it("refuses a " .. name .. " certificate", function()
      local p = provider.start { tls = true, pki = pki, cert_name = name }
      local ok, err = pcall(function()
        local c = client_for(p)
        local rt, e = c:request_token("oob")
        assert.is_nil(rt)
        assert.equal("tls", e.code)
      end)
      p:stop()
      assert(ok, err)
    end)
  end

  it("refuses the test CA's server without ca_file (system bundle)", function()
    local p = provider.start { tls = true, pki = pki }
    local c = client_for(p, { ca_file = nil })
    c.ca_file = nil
    local c2 = smugoauth.new { key = p.key, secret = p.secret, oauth_origin = p.origin }
    local rt, e = c2:request_token("oob")
    p:stop()
    assert.is_nil(rt)
    assert.equal("tls", e.code)
    assert.truthy(c)
  end)
end)
