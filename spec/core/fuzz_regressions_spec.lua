-- fuzz_regressions_spec.lua -- what the libFuzzer targets in fuzz/ found, and
-- the trickiest inputs they produced, replayed through the Lua API.
--
-- fuzz/run.sh builds fuzz/fuzz_*.c against the plain-C core and checks
-- properties, not only the absence of crashes. Each block below takes one
-- target's properties and runs them on inputs taken from its corpus after a
-- 60-second run (the fuzzers' separator-split inputs turned into arguments).
--
-- The first block is a bug the fuzzers found: on a core whose scratch buffers
-- were never used, empty strings reach so_pct_encode / so_pct_reencode /
-- so_params_sort / dup_field with a NULL buffer, doing NULL + 0 pointer
-- arithmetic and passing NULL to memcpy / memchr / memcmp (undefined
-- behaviour in C even with length 0). The results are right on an ordinary
-- build; the block fails under `make asan` (UndefinedBehaviorSanitizer) and
-- under a clang -fsanitize=undefined build of the core.
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"

-- A new instance of the C core, with its own never-used scratch state (the
-- module's shared state has long been warmed up by other specs).
local function fresh_core()
  local path = assert(package.searchpath("smugoauth.core", package.cpath))
  return assert(package.loadlib(path, "luaopen_smugoauth_core"))()
end

-- ------------------------------------------------------------ references
-- Written independently of the C core, as in fuzz/fuzz_common.h.

local function ref_encode(s)
  return (s:gsub("[^A-Za-z0-9%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function ref_decode(s, plus)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    local hex = c == "%" and s:sub(i + 1, i + 2):match("^%x%x$")
    if hex then
      out[#out + 1] = string.char(tonumber(hex, 16))
      i = i + 3
    else
      out[#out + 1] = (plus and c == "+") and " " or c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- Split on '&', skip empty components, the name ends at the first '='.
local function ref_form(s)
  local pairs_ = {}
  for comp in (s .. "&"):gmatch("([^&]*)&") do
    if comp ~= "" then
      local n, v = comp:match("^([^=]*)=(.*)$")
      if not n then n, v = comp, "" end
      pairs_[#pairs_ + 1] = { ref_decode(n, true), ref_decode(v, true) }
    end
  end
  return pairs_
end

local function canonical(e)
  return ref_encode(ref_decode(e)) == e
end

-- Byte-wise (name, value) order without strcoll.
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function pair_less(a, b)
  if a[1] ~= b[1] then return bytes_less(a[1], b[1]) end
  return bytes_less(a[2], b[2])
end

------------------------------------------------------------------ the bug

describe("fuzz regression: empty strings on a fresh core (NULL buffers)", function()
  it("base_string with an empty name and value in the query", function()
    assert.equal("GET&http%3A%2F%2Fh%2F&%3D", fresh_core().base_string("GET", "http://h/?="))
  end)

  it("base_string with two empty pairs (sorting an empty arena)", function()
    assert.equal("GET&http%3A%2F%2Fh%2F&%3D%26%3D", fresh_core().base_string("GET", "http://h/?=&="))
  end)

  it("base_string with an empty pair in the params table", function()
    assert.equal("GET&http%3A%2F%2Fh%2F&%3D", fresh_core().base_string("GET", "http://h/", { { "", "" } }))
  end)

  it("sign with an empty consumer secret as the first call", function()
    local opts = { url = "http://h/", consumer_key = "k", consumer_secret = "", nonce = "n", timestamp = "1" }
    local want = core.sign(opts).signature
    assert.equal(want, fresh_core().sign(opts).signature)
  end)

  it("signer with an empty consumer key as the first call", function()
    local s = fresh_core().signer { consumer_key = "" }
    assert.matches('oauth_consumer_key=""', s:authorization("GET", "http://h/"), 1, true)
    s:close()
  end)
end)

------------------------------------------------ fuzz_pct: percent-encoding

describe("fuzz regression: percent-encoding properties", function()
  local inputs = {
    "", "%", "%%", "\24%", "%ee", "%fa", "%G\0", "%QB", "%g\255", "%:\0",
    "\0\1\127\128\255%2", "\0\248~\128\255\255%2%2", "%%90%11%e4%44%",
    "\226%%%%%42%%%\20%=\255", "a.%eds %%eds %edm", "+%6%6%2%2B+%6%6%7E%4/",
    "%42 ~-%%2;%2B+-7e%4E%", "%41%4g%%2%2B+%7e%7E%",
  }
  for _, x in ipairs(inputs) do
    it(("holds for %q"):format(x), function()
      local e = smugoauth.percent_encode(x)
      assert.equal(ref_encode(x), e)
      assert.falsy(e:find("[^A-Za-z0-9%-%._~%%]"))
      assert.truthy(canonical(e))
      assert.equal(x, smugoauth.percent_decode(e))
      assert.equal(x, smugoauth.percent_decode(e, false))
      -- encoding an encoded string escapes only '%', and decodes back to it
      local ee = smugoauth.percent_encode(e)
      assert.equal((e:gsub("%%", "%%25")), ee)
      assert.equal(e, smugoauth.percent_decode(ee))
      -- decoding arbitrary bytes: never longer, same as the reference
      for _, plus in ipairs { true, false } do
        local d = smugoauth.percent_decode(x, plus)
        assert.truthy(#d <= #x)
        assert.equal(ref_decode(x, plus), d)
      end
    end)
  end
end)

---------------------------------------------- fuzz_form: the form parser

describe("fuzz regression: parse_form properties", function()
  local inputs = {
    "&", "&k", "o&t", "%\0%", "%B%", "%%?", "%2+", "+%2:", "B%2\209B+",
    "2oaud&&&=\243=", "=1\23\0%Fg=&&=&", "a=1&&b&\235\216\0\255\255\255\255a^\0",
    "oaub&atO%zza=\198\217&==o", "a==c&%\255\255\255&f=%zz&=&&",
    "=0%FF==1&n%%F0%FF=\128\0\255&b$&=b",
  }
  for _, s in ipairs(inputs) do
    it(("holds for %q"):format(s), function()
      local got = smugoauth.parse_form(s)
      assert.same(ref_form(s), got)
      local ser = {}
      for i, p in ipairs(got) do
        ser[i] = smugoauth.percent_encode(p[1]) .. "=" .. smugoauth.percent_encode(p[2])
      end
      assert.same(got, smugoauth.parse_form(table.concat(ser, "&")))
    end)
  end
end)

------------------------------------- fuzz_base: URL, normalization, base string

describe("fuzz regression: base string properties", function()
  -- Check base_string(method, url, params) against the properties fuzz_base checks.
  local function check(method, url, params)
    local b = smugoauth.base_string(method, url, params)
    local m, u, p = b:match("^([^&]*)&([^&]*)&([^&]*)$")
    assert.truthy(m, "not METHOD&URI&PARAMS: " .. b)
    assert.equal(method:upper(), m)
    assert.truthy(canonical(u))
    local uri = ref_decode(u)
    local scheme, auth = uri:match("^([^:/?#]+)://([^/]*)/")
    assert.truthy(scheme, "base string URI: " .. uri)
    assert.equal(scheme:lower(), scheme)
    assert.equal(auth:lower(), auth)
    assert.falsy(uri:find("[?#]"))
    if scheme == "http" then assert.falsy(auth:find(":80$")) end
    if scheme == "https" then assert.falsy(auth:find(":443$")) end
    -- the parameters: the query's (when its '?' comes before any '#') and the table's
    local want = {}
    local query = url:match("^[^#?]*%?([^#]*)")
    local function add(n, v)
      n, v = ref_encode(n), ref_encode(v)
      if n ~= "oauth_signature" then want[#want + 1] = { n, v } end
    end
    for _, q in ipairs(query and ref_form(query) or {}) do add(q[1], q[2]) end
    for _, q in ipairs(params or {}) do add(q[1], q[2]) end
    table.sort(want, pair_less)
    assert.truthy(canonical(p))
    local got = {}
    local norm = ref_decode(p)
    if norm ~= "" then
      for item in (norm .. "&"):gmatch("([^&]*)&") do
        local n, v = item:match("^([^=]*)=([^=]*)$")
        assert.truthy(n, "normalized item: " .. item)
        assert.truthy(canonical(n) and canonical(v))
        got[#got + 1] = { n, v }
      end
    end
    for i = 2, #got do assert.falsy(pair_less(got[i], got[i - 1])) end
    assert.same(want, got)
  end

  local cases = {
    -- :80 kept: only http drops it (and the scheme is lower-cased)
    { "POST", "HTUP://Example.com:80/r5=", { { "a3", "2 q" } } },
    { "P", "HTQP://Example=com:80/reque" },
    -- a fragment before the '?': there is no query
    { "PUT", "http://[::1]:8080/a/b#frag?x=y", { { "z", "" } } },
    { "PUT", "http://[::1]:8000/a/X#frag?xy=" },
    -- a default port with leading zeros; '==', '+' and lower-case %2b in the query
    { "DELETE", "https://h:0443/?a&a===a&&+=%2b", { { "a", "\195\191" } } },
    { "DELETE", "https://h:0443/?a&a=&=a=&%+2&b", { { "2%", "" } } },
    -- oauth_signature is left out wherever it comes from
    { "get", "HTTPS://tion.jpg", { { "oauth_signature", "tR3%a&\224%40=&" } } },
    { "get", "http://h/?oauth_signature=x&oauth_signaturex=y" },
    -- a numeric host and a run of empty components
    { "POST", "HTTP://81/requ3Dx?b2&&&&&&&&&" },
    -- an empty port after the colon
    { "h", "s://h:/", { { "/Gh:", "" } } },
    { "GET", "http://[::1]:808/a/0b" },
    -- duplicate names sort by value
    { "GET", "http://h/?a=2&a=10&a=1", { { "a", "" }, { "a", "1" } } },
  }
  for _, c in ipairs(cases) do
    it(("holds for %s %q"):format(c[1], c[2]), function()
      check(c[1], c[2], c[3])
    end)
  end

  it("refuses the urls the fuzzer found invalid, with an error", function()
    for _, url in ipairs { "http://user@h/", "http://[::1/", "http://h:0/", "http://h:65536/",
                           "http://h:8a/", "http://[]/", "http://h/a b", "http://h\\x/", "h" } do
      assert.has_error(function() smugoauth.base_string("GET", url) end)
    end
  end)
end)

--------------------------------------- fuzz_header: the Authorization header

describe("fuzz regression: Authorization header properties", function()
  -- Strict parse of `OAuth realm="...", name="value", ...`.
  local function parse(h)
    assert.equal("OAuth ", h:sub(1, 6))
    local i, realm, items = 7, nil, {}
    if h:sub(i, i + 6) == 'realm="' then
      i = i + 7
      local out = {}
      while true do
        local c = h:sub(i, i)
        assert.truthy(c ~= "", "unterminated realm")
        assert.truthy(c:byte() >= 0x20 and c:byte() ~= 0x7f, "control character in the realm")
        if c == '"' then break end
        if c == "\\" then
          c = h:sub(i + 1, i + 1)
          assert.truthy(c == '"' or c == "\\", "needless escape")
          i = i + 1
        end
        out[#out + 1] = c
        i = i + 1
      end
      realm = table.concat(out)
      i = i + 1
      if i <= #h then assert.equal(", ", h:sub(i, i + 1)); i = i + 2 end
    end
    while i <= #h do
      local n, v, j = h:match('^([%w%-%._~%%]+)="([%w%-%._~%%]*)"()', i)
      assert.truthy(n, "bad parameter at " .. i .. " in " .. h)
      items[#items + 1] = { n, v }
      i = j
      if i <= #h then assert.equal(", ", h:sub(i, i + 1)); i = i + 2 end
    end
    return realm, items
  end

  local realms = { "", "\\", '"c', 'r"', "\\\\", 'r\229"', '"|\211', "\\\\a\\", '"""\\', '\161ad"',
                   'd"l}', 're"al\\m \226\152\131' }
  for _, realm in ipairs(realms) do
    it(("parses back with realm %q"):format(realm), function()
      local r = smugoauth.sign { url = "http://h/?a=b", consumer_key = 'k "1"', consumer_secret = "s",
                                 token = "t\\", realm = realm, nonce = "n o", timestamp = "1" }
      local got_realm, items = parse(r.authorization)
      assert.equal(realm, got_realm)
      local want = {}
      for i, p in ipairs(r.oauth) do want[i] = { p[1], smugoauth.percent_encode(p[2]) } end
      assert.same(want, items)
    end)
  end

  it("parses back without a realm", function()
    local r = smugoauth.sign { url = "http://h/", consumer_key = "k", nonce = "n", timestamp = "1" }
    local realm, items = parse(r.authorization)
    assert.is_nil(realm)
    assert.equal(#r.oauth, #items)
  end)

  it("refuses a realm with a control character", function()
    for _, realm in ipairs { "\1", "a\tb", "bad\127realm", "x\n", "\0" } do
      assert.has_error(function()
        smugoauth.sign { url = "http://h/", consumer_key = "k", realm = realm }
      end, "bad option 'realm' (control characters are not allowed)")
    end
  end)
end)

------------------------------------------------- fuzz_cookie: sealed cookies

describe("fuzz regression: sealed cookie properties", function()
  local key = ("\7"):rep(32)
  local max = math.maxinteger

  local function b64u(s) return core.b64encode(s, true) end

  -- A failure of cookie_open as {nil, code}: it is nil, message, code (the
  -- one failure shape of the core), with a message that names the reason.
  local function shape(v, msg, code)
    assert.is_string(msg)
    assert.matches("^cookie_open: ", msg)
    return { v, code }
  end

  -- The documented MAC over name and text, so a value gets past the MAC check.
  local function with_mac(k, name, text)
    local mac_key = core.hmac("sha256", k, "smugoauth cookie v1 mac key")
    local msg = "smugoauth cookie v1 mac" .. string.pack(">I4", #name) .. name .. text
    return text .. "." .. b64u(core.hmac("sha256", mac_key, msg))
  end

  local cases = {
    -- name, payload, expires_at, now
    { "c", "", 1, 0 },
    { "c", "\0\1\255", max, max - 1 },
    { ("n"):rep(256), ("x"):rep(87), max, 9223372032559809025 },
    { "smugoauth_at", ("\251"):rep(core.cookie_max_payload), 2000000000, 1999999999 },
    { "a!#$%&'*+-.^_`|~", '{"t":"a","s":"b"}', 2, 1 },
  }
  for _, c in ipairs(cases) do
    it(("round-trips and refuses the rest (name of %d bytes, payload of %d, expiry %d)")
       :format(#c[1], #c[2], c[3]), function()
      local name, payload, exp, now = c[1], c[2], c[3], c[4]
      local v = core.cookie_seal(key, name, payload, exp)
      assert.equal(payload, core.cookie_open(key, name, v, now))
      assert.equal(payload, core.cookie_open(key, name, v, exp - 1))
      assert.same({ nil, "expired" }, shape(core.cookie_open(key, name, v, exp)))
      if exp < max then assert.same({ nil, "expired" }, shape(core.cookie_open(key, name, v, exp + 1))) end
      assert.same({ nil, "expired" }, shape(core.cookie_open(key, name, v, -1)))
      if #name < 256 then assert.same({ nil, "bad_mac" }, shape(core.cookie_open(key, name .. "x", v, now))) end
      if #name > 1 then assert.same({ nil, "bad_mac" }, shape(core.cookie_open(key, name:sub(2), v, now))) end
      local other = string.char(key:byte(1) ~ 1) .. key:sub(2)
      assert.same({ nil, "bad_mac" }, shape(core.cookie_open(other, name, v, now)))
      -- the last character of each piece carries the padding bits: any other one is refused
      local ends = {}
      for dot in v:gmatch("()%.") do ends[#ends + 1] = dot - 1 end
      ends[#ends + 1] = #v
      for _, at in ipairs(ends) do
        for ch in ("AaBbQw-_0"):gmatch(".") do
          if ch ~= v:sub(at, at) then
            assert.is_nil((core.cookie_open(key, name, v:sub(1, at - 1) .. ch .. v:sub(at + 1), now)))
          end
        end
      end
      assert.is_nil((core.cookie_open(key, name, v:sub(1, -2), now)))
      assert.is_nil((core.cookie_open(key, name, v .. "A", now)))
    end)
  end

  it("refuses a payload one byte over the maximum", function()
    assert.has_error(function()
      core.cookie_seal(key, "c", ("x"):rep(core.cookie_max_payload + 1), 2)
    end)
  end)

  it("refuses forged values that get past the MAC", function()
    local forged = {
      { "AQAAAAB_____.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", "bad_mac" },     -- GCM tag
      { "AQAAAAB_____.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAA", "bad_mac" },    -- 1-byte payload
      { "AgAAAAB_____.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", "bad_version" },
      { "_QAAAAB_____.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", "bad_version" },
      { "AQAAAAAAAAAA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", "expired" },     -- expiry 0
      { "AQAAAAAAAAA.AAAAAAAAAAA.AAAAAAAA", "malformed" },                       -- short header
      { "AQ___B_.AAJAAgAAAAAAAAAAAA.A", "malformed" },
      { "AQAAAAB_____.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAt", "malformed" },  -- padding bits
      { "AQAAAAB_____.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAA", "malformed" },      -- shorter than a tag
      { "AgAAAAB_____AAAAAAAAAAAAAAAAAAA.AAAAAAAAAA-AAAAA.AAAAAAAAAAAAAAAAAA", "malformed" },
    }
    for _, f in ipairs(forged) do
      assert.same({ nil, f[2] }, shape(core.cookie_open(key, "c", with_mac(key, "c", f[1]), 1700000000)))
      -- and without the MAC (or with the MAC for another name) nothing else is looked at
      assert.same({ nil, "bad_mac" }, shape(core.cookie_open(key, "d", with_mac(key, "c", f[1]), 1700000000)))
    end
  end)

  it("refuses forged values without raising", function()
    for _, v in ipairs { "", ".", "...", "a..b.c.d=", "a.b.c.d.e", "a.b.c.d",
                         "AQAAAABlU_EA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA." .. ("A"):rep(43),
                         ("A"):rep(4097), "\0.\0.\0.\0" } do
      local p, msg, code = core.cookie_open(key, "c", v, 1700000000)
      assert.is_nil(p)
      assert.is_string(msg)
      assert.is_string(code)
    end
  end)
end)
