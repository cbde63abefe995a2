-- The debug trace and the error messages of a whole OAuth flow hold no secret
-- in any encoding. The flow runs against spec/support/leaky_provider.py, a
-- careless provider that echoes every secret it knows back in headers,
-- cookies, JSON messages and debug_sbs strings: request token, two rejected
-- verifiers (signature_invalid with a malformed and a well-formed debug_sbs),
-- the access token with the right verifier, signed GETs (one with a cookie),
-- JSON and base-string errors, get_many; once with HMAC-SHA1 and once with
-- PLAINTEXT (whose signature is the secrets themselves).
--
-- Every trace line (debug = function(line)) and every error (tostring, the
-- message, the problem, the base strings kept for debugging) is searched for
-- every secret of the flow — consumer secret, both token secrets, the three
-- verifiers, both cookie values and every signature the provider received —
-- raw, percent-encoded once, twice and three times, form-encoded, with
-- lower-case hex, and JSON-escaped.
local smugoauth = require "smugoauth"
local errors = require "smugoauth.errors"
local cjson = require "cjson"
local files = require "support.files"

local proc = require "support.proc"
local slurp = files.slurp
local enc = smugoauth.percent_encode

local CS = "cs&1 %/\u{e9}+\"~*=secret"
local RTS = "rts/&= +%\u{e9}-secret"
local ATS = "ats%2F&x=\u{e9} +secret"
local VERIFIER = "v/&= 1%\u{e9}+7"            -- typed by the user: anything
local BAD1, BAD2 = "bad1&/ %\u{e9}=v", "bad2+%2F \u{e9}"
local COOKIE = "ck-5ecret-cookie-value"       -- set by the provider
local MY_COOKIE = "my-own-5ecret-cookie"      -- sent by the caller

-- v as Python's json.dumps writes it inside quotes (ASCII only, \uXXXX).
local function json_ascii(v)
  local out = {}
  for _, cp in utf8.codes(v) do
    local c = utf8.char(cp)
    if c == '"' or c == "\\" then out[#out + 1] = "\\" .. c
    elseif cp >= 0x80 then out[#out + 1] = ("\\u%04x"):format(cp)
    else out[#out + 1] = c end
  end
  return table.concat(out)
end

-- Every encoding of v a trace, a header or a message might show.
local function encodings(v)
  local e1 = enc(v)
  local e2 = enc(e1)
  local lower = function(s) return (s:gsub("%%(%x%x)", function(h) return "%" .. h:lower() end)) end
  return {
    raw = v, enc = e1, ["enc(enc)"] = e2, ["enc(enc(enc))"] = enc(e2),
    form = (e1:gsub("%%20", "+")), ["enc(form)"] = enc((e1:gsub("%%20", "+"))),
    ["enc, lower-case hex"] = lower(e1), ["enc(enc), lower-case hex"] = lower(e2),
    json = cjson.encode(v):sub(2, -2), ["json (ASCII)"] = json_ascii(v),
  }
end

describe("secrets in traces and errors", function()
  local srv

  setup(function()
    srv = proc.spawn({ "/usr/bin/python3", "spec/support/leaky_provider.py", CS, RTS, ATS, VERIFIER, COOKIE },
                     { expect = "^PORT %d+$", timeout = 10 })
    srv.origin = "http://127.0.0.1:" .. srv.port
  end)

  teardown(function()
    if srv then srv:close() end
  end)

  -- The signatures the provider received, decoded (as the client computed them).
  local function signatures()
    local sigs = {}
    for line in (slurp(srv.out) or ""):gmatch("AUTH ([^\n]*)") do
      local sig = line:match('oauth_signature="([^"]*)"')
      if sig then sigs[#sigs + 1] = smugoauth.percent_decode(sig, false) end
    end
    return sigs
  end

  -- Run the whole flow with a signature method; returns the trace lines and
  -- the errors it met (each of them expected).
  local function flow(method)
    local lines, errs = {}, {}
    local function expect_err(label, res, err)
      assert(res == nil and errors.is(err), label .. ": an error expected, got " .. tostring(res))
      errs[#errs + 1] = err
      return err
    end
    local ctl <close> = smugoauth.core.http_new()
    assert.equal(200, assert(ctl:request { url = srv.origin .. "/_reset" }).status)
    local c = smugoauth.new { key = "leaky-key", secret = CS, oauth_origin = srv.origin,
                              api_origin = srv.origin, upload_origin = srv.origin, timeout = 10,
                              retry = false, signature_method = method,
                              insecure_http = method == "PLAINTEXT" or nil,
                              debug = function(line) lines[#lines + 1] = line end }
    local rt, rts = assert(c:request_token("oob"))
    assert.equal(RTS, rts)
    local e1 = expect_err("bad verifier 1", c:access_token(rt, rts, BAD1))
    local e2 = expect_err("bad verifier 2", c:access_token(rt, rts, BAD2))
    local at, ats = assert(c:access_token(rt, rts, "  " .. VERIFIER .. "\n"))
    assert.equal(ATS, ats)
    local api = c:session(at, ats)
    local res = assert(api:get("/api/v2!authuser", { q = "1" }))
    assert.equal("leaky", res:json().Response.User.NickName)
    assert(api:get("/api/v2!authuser", nil, { headers = { Cookie = "mine=" .. MY_COOKIE } }))
    expect_err("json error", api:get("/api/v2/json-error"))
    local e4 = expect_err("sbs error", api:get("/api/v2/sbs-error"))
    local many = api:get_many({ "/api/v2!authuser", "/api/v2/json-error", "/api/v2/sbs-error" })
    assert.equal(200, many[1].status)
    expect_err("get_many json error", nil, many[2])
    expect_err("get_many sbs error", nil, many[3])
    return lines, errs, { e1 = e1, e2 = e2, e4 = e4 }
  end

  -- Search every string for every encoding of every secret.
  local function assert_clean(label, texts, secrets)
    for _, text in ipairs(texts) do
      for name, value in pairs(secrets) do
        for how, form in pairs(encodings(value)) do
          local at = text:find(form, 1, true)
          assert(not at, ("%s: the %s (%s) shows in: %s"):format(label, name, how, text))
        end
      end
    end
  end

  for _, method in ipairs { "HMAC-SHA1", "PLAINTEXT" } do
    it("hold no secret of a whole flow in any encoding (" .. method .. ")", function()
      local lines, errs, named = flow(method)
      local secrets = { ["consumer secret"] = CS, ["request token secret"] = RTS,
                        ["access token secret"] = ATS, verifier = VERIFIER, ["rejected verifier 1"] = BAD1,
                        ["rejected verifier 2"] = BAD2, ["provider's cookie"] = COOKIE,
                        ["caller's cookie"] = MY_COOKIE }
      local sigs = signatures()
      assert.is_true(#sigs >= 10)
      for i, sig in ipairs(sigs) do secrets["signature " .. i] = sig end
      -- the trace is all there, with its redactions in place
      local text = table.concat(lines, "\n")
      assert.is_true(#lines > 80)
      assert.matches("  base string: GET&", text, 1, true)
      assert.matches("%26oauth_verifier%3DREDACTED%26", text, 1, true)
      assert.matches('oauth_signature="REDACTED"', text, 1, true)
      assert.matches("< X-Echo-Secrets: REDACTED REDACTED REDACTED", text, 1, true)
      assert.matches("< X-Issued: REDACTED\n", text, 1, true)     -- the answer's own token secret
      assert.matches("< Set-Cookie: REDACTED", text, 1, true)
      assert.matches("< X-Echo-Cookie: SMSESS=REDACTED", text, 1, true)
      assert.matches("> Cookie: REDACTED", text, 1, true)
      assert.matches("< X-Echo-Request-Cookie: mine=REDACTED", text, 1, true)
      -- the errors: both shapes of the base-string diff, the JSON message
      assert.matches("signature base strings differ:\n  ours:   GET&", tostring(named.e1), 1, true)
      assert.matches("only in theirs: echo_secret=REDACTED", tostring(named.e2), 1, true)
      assert.matches("only in ours:   oauth_verifier=REDACTED", tostring(named.e2), 1, true)
      assert.matches("only in theirs: oauth_token_secret=REDACTED", tostring(named.e4), 1, true)
      local texts = {}
      for _, l in ipairs(lines) do texts[#texts + 1] = l end
      for _, e in ipairs(errs) do
        for _, v in ipairs { tostring(e), e.message, e.problem, e.debug_sbs, e.base_string } do
          texts[#texts + 1] = v
        end
      end
      assert.is_true(#errs >= 6)
      assert_clean(method, texts, secrets)
    end)
  end
end)
