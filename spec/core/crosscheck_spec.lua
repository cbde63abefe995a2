--- Cross-check smugoauth.sign against oauthlib (Python) on generated requests.
--
-- The spec generates COUNT requests with a seeded RNG, signs each with
-- smugoauth.sign, writes them as JSON lines, runs
-- `/usr/bin/python3 spec/support/oauthlib_sign.py < in > out` once for the
-- whole batch and compares, request by request:
--   * the signature base string from oauthlib.oauth1.rfc5849.signature
--     (collect_parameters, normalize_parameters, base_string_uri,
--     signature_base_string), byte for byte;
--   * the signature from the signature module's sign_*_with_client functions;
--   * the signature from oauthlib.oauth1.Client(...).sign(...) with the same
--     nonce and timestamp (read from its Authorization header);
--   * our Authorization header and query string as oauthlib parses them.
-- RSA-SHA1 is PKCS#1 v1.5, deterministic: oauthlib's signature must be ours.
--
-- What the generator avoids, because oauthlib refuses or rewrites it (none of
-- these is a smugoauth bug):
--   * invalid UTF-8 anywhere: JSON and Python strings cannot carry it, and
--     oauthlib decodes %XX escapes as UTF-8 (invalid sequences become U+FFFD);
--   * raw characters in the query other than A-Z a-z 0-9 _.- and
--     =&;:%+~,*@!()/?'$ -- oauthlib.common.urldecode raises ValueError;
--   * "%" not followed by two hex digits in the query (urldecode raises);
--   * user parameter names starting with "oauth_" (but oauth_body_hash, whose
--     base64 values hold no '%'): collect_parameters percent-decodes the
--     values of every oauth_* parameter a second time;
--   * non-canonical IPv6 hosts ([0:0::1]) and non-ASCII upper-case hosts:
--     oauthlib rewrites them (ipaddress, str.lower); smugoauth keeps them;
--   * a last path segment whose first ';' ends it ("/a;"): urlparse splits it
--     off as empty ";params" and urlunparse drops it, so oauthlib signs "/a";
--   * spaces and control characters in the URL: smugoauth raises, Python's
--     urlsplit strips some of them silently;
--   * '"' and '\' in the realm on the Client path: oauthlib's Client writes
--     the realm unescaped into its header and cannot parse it back (the realm
--     is not signed, so it is left out there); '%' in the realm: oauthlib
--     percent-decodes every header value, the realm included;
--   * oauth_version other than "1.0", or omitted, on the Client path: the
--     Client always sends oauth_version="1.0" (the signature-module path
--     still covers those requests).
local smugoauth = require "smugoauth"
local cjson = require "cjson"

local PYTHON = "/usr/bin/python3"
local COUNT = 1250
local SEED = 5849

local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)spec/[^/]*/[^/]*$") or "")
local SCRIPT = ROOT .. "spec/support/oauthlib_sign.py"
local WIKI_KEY = ROOT .. "spec/support/vectors/oauth_wiki_rsa.pem"

local SIG_METHODS = { "HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512", "PLAINTEXT", "RSA-SHA1" }

-- ------------------------------------------------------------ helpers

local files = require "support.files"
local function readfile(path) return assert(files.slurp(path), "cannot read " .. path) end
local writefile = files.write_file



local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true
end

local random = math.random

local function pick(t) return t[random(#t)] end

local function chance(p) return random() < p end

-- ---------------------------------------------------------- generator

local ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
local RESERVED = " !\"#$%&'()*+,/:;<=>?@[\\]^`{|}"
local CONTROLS = { "\0", "\t", "\n", "\r", "\27", "\127" }
local UNICODE = {
  "\u{80}", "\u{E9}", "\u{C4}", "\u{DF}", "\u{7FF}", "\u{800}", "\u{3001}", "\u{4E2D}",
  "\u{20AC}", "\u{FEFF}", "\u{FFFD}", "\u{FFFF}", "\u{10000}", "\u{1F600}", "\u{10FFFF}",
}

local function alnum()
  local i = random(#ALNUM)
  return ALNUM:sub(i, i)
end

-- One character (valid UTF-8) of a parameter name, value, secret, key...
local function any_char()
  local r = random(100)
  if r <= 45 then return alnum()
  elseif r <= 50 then return pick { "-", ".", "_", "~" }
  elseif r <= 75 then
    local i = random(#RESERVED)
    return RESERVED:sub(i, i)
  elseif r <= 80 then return pick(CONTROLS)
  else return pick(UNICODE) end
end

local function text(maxlen, minlen)
  local t = {}
  for i = 1, random(minlen or 0, maxlen) do t[i] = any_char() end
  return table.concat(t)
end

-- A parameter name that oauthlib does not decode twice (see the header).
local function param_name()
  local n = text(8)
  if n:sub(1, 6) == "oauth_" then n = "x" .. n end
  return n
end

local function hex(byte, lower)
  local s = string.format("%%%02X", byte)
  return lower and s:lower() or s
end

-- Characters oauthlib.common.urldecode accepts raw in a query (besides
-- A-Z a-z 0-9 _.- and the escapes): = & ; : % + ~ , * @ ! ( ) / ? ' $
local RAW_IN_QUERY = {
  [":"] = true, [";"] = true, [","] = true, ["*"] = true, ["@"] = true, ["!"] = true,
  ["("] = true, [")"] = true, ["/"] = true, ["?"] = true, ["'"] = true, ["$"] = true,
  ["~"] = true,
}

-- Form-encode s for a query string in one of the many ways clients do:
-- '+' or %20 for spaces, upper- or lower-case hex, needless escapes of
-- unreserved characters, raw sub-delimiters where a form parser allows them.
local function form_encode(s, is_value)
  local out = {}
  for _, cp in utf8.codes(s) do
    local ch, r = utf8.char(cp), random(10)
    if ch == " " and r <= 5 then
      out[#out + 1] = "+"
    elseif ch:match("^[%w%-%._]$") and r <= 8 then
      out[#out + 1] = ch
    elseif (RAW_IN_QUERY[ch] or (is_value and ch == "=")) and r <= 6 then
      out[#out + 1] = ch
    else
      local lower = chance(0.3)
      for i = 1, #ch do out[#out + 1] = hex(ch:byte(i), lower) end
    end
  end
  return table.concat(out)
end

local HOSTS = {
  "example.com", "photos.example.net", "api.smugmug.com", "a-b.c0.example", "localhost",
  "127.0.0.1", "[::1]", "[2001:db8::1]", "xn--bcher-kva.example", "b\u{FC}cher.example",
}

-- Upper-case some ASCII letters (never the non-ASCII ones: see the header).
local function random_case(s)
  if chance(0.5) then return s end
  return (s:gsub("%a", function(c) return chance(0.5) and c:upper() or c end))
end

local PATH_CHARS = "-._~!$&'()*+,;=:@"

local function path_segment()
  local t = {}
  for i = 1, random(0, 8) do
    local r = random(100)
    if r <= 55 then t[i] = alnum()
    elseif r <= 75 then
      local k = random(#PATH_CHARS)
      t[i] = PATH_CHARS:sub(k, k)
    elseif r <= 85 then t[i] = pick(UNICODE)
    else t[i] = hex(random(0, 255), chance(0.3)) end
  end
  return table.concat(t)
end

-- scheme://host[:port]/path[?query][#fragment], with its features noted.
local function random_url(feat)
  local https = chance(0.5)
  local scheme = https and "https" or "http"
  local url = random_case(scheme) .. "://"
  local host = pick(HOSTS)
  local cased = random_case(host)
  if cased ~= host then feat.upper_host = true end
  url = url .. cased
  local r = random(100)
  if r <= 20 then
    url = url .. ":" .. (https and "443" or "80")
    feat.default_port = true
  elseif r <= 25 then
    url = url .. ":" .. (https and "0443" or "080")
    feat.default_port = true
  elseif r <= 45 then
    url = url .. ":" .. pick { "8080", "1", "65535", "8443", https and "80" or "443" }
    feat.other_port = true
  end
  r = random(100)
  if r <= 10 then
    feat.empty_path = true
  elseif r <= 20 then
    url = url .. "/"
  else
    local seg
    for _ = 1, random(1, 4) do
      seg = path_segment()
      url = url .. "/" .. seg
    end
    -- urllib drops an empty ";params" from the last segment ("/a;" -> "/a")
    if seg:find(";") == #seg then url = url .. "x" end
  end
  if chance(0.6) then
    local q, used = {}, {}
    for i = 1, random(0, 10) do
      local name = (#used > 0 and chance(0.25)) and pick(used) or param_name()
      if used[name] then feat.duplicate_query_names = true end
      used[#used + 1], used[name] = name, true
      local value = text(12)
      if value == "" and chance(0.3) then
        q[i] = form_encode(name)             -- a name without '='
      else
        q[i] = form_encode(name) .. "=" .. form_encode(value, true)
      end
    end
    if chance(0.3) then
      q[#q + 1] = "list=first%2Csecond"        -- a pre-encoded value
      feat.preencoded = true
    end
    if chance(0.1) then q[#q + 1] = "" end     -- an empty component: "a=1&&b"
    url = url .. "?" .. table.concat(q, "&")
    feat.query = true
  end
  if chance(0.15) then
    url = url .. "#" .. pick { "", "frag", "a?b=c&d=e", "top%20x" }
    feat.fragment = true
  end
  return url
end

-- Methods are RFC 9110 tokens: the base string has them upper-cased and
-- percent-encoded (RFC 5849 3.4.1.1), as oauthlib's signature_base_string.
local HTTP_METHODS = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "post", "Get",
                       "M-SEARCH", "VERSION-CONTROL", "m-search", "X.Y_Z~1", "X!#$%&'*+^`|" }
local REALMS = { "Example", "Photos", "http://sp.example.com/", "r\u{E9}alm, with spaces & more",
                 'say "hi" \\o/' }

-- A map as a string, keys sorted (cjson.encode follows hash order).
local function canon(map)
  local keys, out = {}, {}
  for k in pairs(map) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do out[i] = cjson.encode(k) .. ":" .. cjson.encode(map[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end

local function maybe(p, f)
  if chance(p) then return f() end
  return nil
end

local function random_request(i, keys)
  local feat = {}
  local method = pick(HTTP_METHODS)
  if method:find("[^%a]") then feat.token_method = true end
  local req = {
    id = i,
    method = method,
    url = random_url(feat),
    signature_method = SIG_METHODS[(i - 1) % #SIG_METHODS + 1],
    consumer_key = text(16),
    consumer_secret = maybe(0.9, function() return text(16) end),
    token = maybe(0.7, function() return chance(0.1) and "" or text(16, 1) end),
    token_secret = maybe(0.7, function() return text(16) end),
    callback = maybe(0.2, function()
      return pick { "oob", "http://printer.example.com/ready?x=1&y=%20", text(20, 1) }
    end),
    verifier = maybe(0.2, function() return text(12, 1) end),
    realm = maybe(0.3, function() return pick(REALMS) end),
    nonce = chance(0.8) and text(32, 1) or tostring(random(0, 99999)),
    version = maybe(0.2, function() return false end),
  }
  if chance(0.5) then
    req.timestamp = random(0, 0x7fffffff)
  else
    req.timestamp = pick { "", "0", "000" } .. tostring(random(0, 0x7fffffff))
  end
  if req.signature_method == "RSA-SHA1" then req.rsa_key_file = pick(keys) end
  local form = {}
  local upper = method:upper()
  if upper ~= "GET" and upper ~= "HEAD" and chance(0.7) then
    local used = {}
    for k = 1, random(0, 20) do
      local name = (#used > 0 and chance(0.3)) and pick(used) or param_name()
      if used[name] then feat.duplicate_form_names = true end
      used[#used + 1], used[name] = name, true
      form[k] = { name, (chance(0.1) and k > 1) and form[k - 1][2] or text(16) }
    end
    if chance(0.05) then form[#form + 1] = { "realm", "not-the-realm" } end
    -- an oauth_* parameter of ours in params is refused (sign_spec); another
    -- one is signed once and sent with the protocol parameters (RFC 5849 3.5)
    if chance(0.1) then
      local raw = {}
      for k = 1, 20 do raw[k] = string.char(random(0, 255)) end
      table.insert(form, random(1, #form + 1), { "oauth_body_hash", smugoauth.core.b64encode(table.concat(raw)) })
      feat.oauth_extra = true
    end
  end
  req.form = form
  feat.form = #form > 0 or nil
  feat.token = (req.token or "") ~= "" or nil
  feat.callback = req.callback and true
  feat.verifier = req.verifier and true
  feat.realm = req.realm and true
  feat.no_version = req.version == false or nil
  return req, feat
end

-- The options for smugoauth.sign; params sometimes as a map of name ->
-- string | array of strings.
local function sign_options(req, pems, feat)
  local opts = {
    method = req.method, url = req.url, consumer_key = req.consumer_key,
    consumer_secret = req.consumer_secret, token = req.token,
    token_secret = req.token_secret, signature_method = req.signature_method,
    callback = req.callback, verifier = req.verifier, realm = req.realm,
    nonce = req.nonce, timestamp = req.timestamp,
  }
  if req.version == false then opts.version = false end
  if req.rsa_key_file then opts.rsa_key = pems[req.rsa_key_file] end
  if #req.form > 0 then
    if chance(0.25) then
      local map = {}
      for _, p in ipairs(req.form) do
        local old = map[p[1]]
        if old == nil then map[p[1]] = p[2]
        elseif type(old) == "table" then old[#old + 1] = p[2]
        else map[p[1]] = { old, p[2] } end
      end
      opts.params = map
      feat.params_as_map = true
    else
      opts.params = req.form
    end
  end
  return opts
end

-- ------------------------------------------------------------- the spec

describe("smugoauth.sign against oauthlib", function()
  local tmp, requests, results, ours = nil, {}, {}, {}
  local counts = { total = 0 }
  local features = {}

  lazy_setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(sh("mkdir -p '" .. tmp .. "'"))
    -- Three RSA keys: the oauth.net wiki test key (PKCS#8, 1024 bits), a new
    -- 2048-bit PKCS#8 key and a new 1024-bit traditional ("RSA PRIVATE KEY") key.
    local keys = { WIKI_KEY, tmp .. "/rsa2048.pem", tmp .. "/rsa1024.pem" }
    assert(sh("openssl genrsa -out '" .. keys[2] .. "' 2048 2>/dev/null"), "openssl genrsa")
    assert(sh("openssl genrsa -traditional -out '" .. keys[3] .. "' 1024 2>/dev/null"),
           "openssl genrsa -traditional")
    local pems = {}
    for _, k in ipairs(keys) do pems[k] = readfile(k) end

    math.randomseed(SEED)
    local lines = {}
    for i = 1, COUNT do
      local req, feat = random_request(i, keys)
      local ok, r = pcall(smugoauth.sign, sign_options(req, pems, feat))
      requests[i], ours[i] = req, ok and r or { error = r }
      for k in pairs(feat) do features[k] = (features[k] or 0) + 1 end
      if #req.form > 16 then features.over_16_form_params = (features.over_16_form_params or 0) + 1 end
      if ok then
        local rec = {}
        for k, v in pairs(req) do rec[k] = v end
        rec.ours_authorization, rec.ours_query = r.authorization, r.query
        rec.timestamp = tostring(req.timestamp)
        lines[#lines + 1] = cjson.encode(rec)
      end
    end
    writefile(tmp .. "/in.jsonl", table.concat(lines, "\n") .. "\n")
    local cmd = string.format("%s '%s' < '%s/in.jsonl' > '%s/out.jsonl' 2> '%s/err.txt'",
                              PYTHON, SCRIPT, tmp, tmp, tmp)
    assert(sh(cmd), "oauthlib_sign.py failed: " .. readfile(tmp .. "/err.txt"))
    for line in io.lines(tmp .. "/out.jsonl") do
      local res = cjson.decode(line)
      results[res.id] = res
    end
  end)

  lazy_teardown(function()
    -- SMUGOAUTH_KEEP=1 keeps the batch (in.jsonl, out.jsonl) for debugging.
    if tmp and os.getenv("SMUGOAUTH_KEEP") then
      print("\ncrosscheck: batch kept in " .. tmp)
    elseif tmp then
      sh("rm -rf '" .. tmp .. "'")
    end
    local by = {}
    for _, m in ipairs(SIG_METHODS) do by[#by + 1] = m .. " " .. (counts[m] or 0) end
    local feats = {}
    for k, v in pairs(features) do feats[#feats + 1] = k .. " " .. v end
    table.sort(feats)
    print(string.format("\ncrosscheck: %d requests compared with oauthlib (%s)",
                        counts.total, table.concat(by, ", ")))
    print(string.format("crosscheck: oauthlib Client compared on %d (the rest omit oauth_version)",
                        counts.client or 0))
    print("crosscheck: features: " .. table.concat(feats, ", "))
  end)

  -- A reproduction of request i, for failure messages.
  local function repro(i, what, expected, got)
    local req = requests[i]
    local rec = {}
    for k, v in pairs(req) do rec[k] = v end
    rec.rsa_key_file = nil
    return string.format("request %d %s\n  request:  %s\n  oauthlib: %s\n  ours:     %s",
                         i, what, cjson.encode(rec), tostring(expected), tostring(got))
  end

  local function check(what, f)
    local bad = {}
    for i = 1, COUNT do
      local e, g = f(i)
      if e ~= g then
        bad[#bad + 1] = repro(i, what, e, g)
        if #bad >= 5 then break end
      end
    end
    assert(#bad == 0, table.concat(bad, "\n"))
  end

  it("signs every generated request and oauthlib answers for each", function()
    for i = 1, COUNT do
      assert(ours[i].signature, repro(i, "smugoauth raised", "", ours[i].error))
      assert(results[i], repro(i, "no answer from oauthlib", "", ""))
      assert(results[i].error == nil, repro(i, "oauthlib raised", results[i].error, ""))
      counts.total = counts.total + 1
      local m = requests[i].signature_method
      counts[m] = (counts[m] or 0) + 1
    end
    assert.are.equal(COUNT, counts.total)
  end)

  it("gives the same signature base string, byte for byte", function()
    check("base string differs", function(i) return results[i].base_string, ours[i].base_string end)
  end)

  it("gives the same signature as oauthlib's signature module", function()
    check("signature differs", function(i) return results[i].signature, ours[i].signature end)
  end)

  it("gives the same signature as oauthlib.oauth1.Client", function()
    local n = 0
    check("Client signature differs", function(i)
      local cs = results[i].client_signature
      if cs == cjson.null then return true, true end
      n = n + 1
      return cs, ours[i].signature
    end)
    counts.client = n
    assert(n > COUNT / 2, "too few requests compared with oauthlib.oauth1.Client: " .. n)
  end)

  it("writes an Authorization header that oauthlib parses back to our parameters", function()
    check("Authorization header differs", function(i)
      local want = {}
      for _, p in ipairs(ours[i].oauth) do want[p[1]] = p[2] end
      want.realm = requests[i].realm
      local got = {}
      for _, p in ipairs(results[i].ours_header) do got[p[1]] = p[2] end
      return canon(want), canon(got)
    end)
  end)

  it("writes a query string that oauthlib parses back to r.oauth, in order", function()
    check("query string differs", function(i)
      return cjson.encode(ours[i].oauth), cjson.encode(results[i].ours_query)
    end)
  end)
end)
