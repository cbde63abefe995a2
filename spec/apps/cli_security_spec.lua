-- The `smugoauth` command against attacks from the same machine and from the
-- API: the browser login bound to the browser that started it (127.0.0.1
-- advertised, a one-shot start URL, a cookie on the callback, no token in any
-- argv, no request from another local user), stored credentials bound to the
-- origins they were issued for (a planted config.json cannot redirect them),
-- and no terminal escape from API strings. bin/smugoauth runs as a process
-- where the flow needs a browser; cli.main in-process elsewhere. Every wait is
-- bounded; every server is stopped.
local sandbox = require "support.sandbox"
local files = require "support.files"
local cli = require "smugoauth.apps.cli"
local core = require "smugoauth.core"
local json = require "smugoauth.json"
local cjson = require "cjson.safe"
local smugoauth = require "smugoauth"
local credentials = require "smugoauth.credentials"
local client_mod = require "smugoauth.client"

local socket = require "socket"

local proc = require "support.proc"
local q = proc.q
local socket_sleep = socket.sleep
local write_file, read_file, tmpdir, wait_for = files.write_file, files.read_file, files.tmpdir, files.wait_for

local KEY, SECRET = "sec-key", "sec-consumer-secret"

local function pwd()
  local p = assert(io.popen("pwd"))
  local s = p:read("l")
  p:close()
  return s
end
local ROOT = pwd()

-- a clean environment for the child: none of ours leaks in, no browser
local ENV = "env -u SMUGOAUTH_DEBUG -u SMUGOAUTH_CONFIG -u SMUGOAUTH_CREDENTIALS -u SMUGOAUTH_API_ORIGIN " ..
            "-u SMUGOAUTH_OAUTH_ORIGIN -u SMUGOAUTH_UPLOAD_ORIGIN -u DISPLAY -u WAYLAND_DISPLAY "

local words = proc.words

-- Run bin/smugoauth to the end (at most 30 s): status, stdout, stderr.
-- o.cd: working directory; o.env: "NAME=value ..." added to the environment.
local function run(args, o)
  o = o or {}
  return proc.run(ENV .. (o.env or "") .. " timeout 30 " .. q(ROOT .. "/bin/smugoauth") .. " " .. words(args),
                  { cwd = o.cd, timeout = 40 })
end

-- Start bin/smugoauth in the background; finish(h) waits for its status.
local function start(args, o)
  o = o or {}
  return proc.spawn(ENV .. (o.env or "") .. " timeout 60 " .. q(ROOT .. "/bin/smugoauth") .. " " .. words(args))
end

local function running(h)
  return h:status() == nil
end

local function finish(h)
  return h:finish(30)
end

-- cli.main in-process with captured output.
local sink = require("support.capture").sink

local function call(argv, o)
  o = o or {}
  local out, err = sink(), sink()
  o.err_text = err.text
  local rc = cli.main(argv, {
    stdout = out, stderr = err,
    stdin = o.stdin or { read = function() return nil end },
    isatty = o.isatty or function() return false end,
    getenv = function(k) return (o.vars or {})[k] end,
    open_url = o.open_url or function() end,
  })
  return rc, out.text(), err.text()
end

local function header(res, name)
  for _, hd in ipairs(res.headers) do if hd[1]:lower() == name then return hd[2] end end
end

local function pattern(s)
  return (s:gsub("%p", "%%%0"))
end

-- the bytes a terminal would act on: C0 but newline and tab, DEL, C1 (as UTF-8 or a
-- lone byte), bidi overrides and isolates, invalid UTF-8
local function assert_clean(text, what)
  local bad = text:find("[%z\1-\8\11-\31\127]")
  assert(not bad, what .. ": control byte " .. (bad and text:byte(bad) or 0) .. " in " .. ("%q"):format(text))
  assert.is_nil(text:find("\194[\128-\159]"), what .. ": a C1 control")
  assert.is_nil(text:find("\226\128[\170-\174]"), what .. ": a bidi override")
  assert.is_nil(text:find("\226\129[\166-\169]"), what .. ": a bidi isolate")
  assert.is_truthy(utf8.len(text), what .. ": invalid UTF-8")
end

describe("smugoauth command security", function()
  local sb, dir, config, creds, http

  setup(function()
    sb = sandbox.start { key = KEY, secret = SECRET }
    http = core.http_new { timeout = 10 }
    dir = tmpdir()
    config = dir .. "/config.json"
    creds = dir .. "/cred/credentials.json"
    write_file(config, json.compact { key = KEY, secret = SECRET, oauth_origin = sb.origin,
                                      api_origin = sb.origin, upload_origin = sb.origin })
    local at, ats, c = sb:authorize()
    assert(c:save_credentials(at, ats, creds))
  end)

  teardown(function()
    if sb then sb:stop() end
    if http then http:close() end
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)

  describe("login --web", function()
    -- The start URL (and the callback) printed by a running `login --web`.
    local function urls(h)
      local start_url = wait_for(function()
        return read_file(h.err):match("Go to (%S+) in a web browser%.\n")
      end)
      local callback = read_file(h.err):match("for the authorization at (%S+) ")
      return start_url, callback
    end

    -- A first visit to the start URL: the 302 to the authorize page and the cookie.
    local function visit_start(start_url)
      local res = assert(http:request { method = "GET", url = start_url })
      assert.equal(302, res.status)
      local cookie = header(res, "set-cookie")
      return header(res, "location"), cookie, res
    end

    it("advertises the bound literal address 127.0.0.1 as the callback", function()
      local h = start { "--config", config, "--credentials", dir .. "/adv.json", "login", "--web",
                        "--no-browser", "--timeout", "20" }
      local start_url, callback = urls(h)
      assert.is_string(start_url)
      assert.matches("^http://127%.0%.0%.1:%d+/callback$", callback)
      -- and the provider got that callback with the request token
      local location = visit_start(start_url)
      local redirect = sb:approve(location:match("oauth_token=(%x+)"))
      assert.matches("^" .. pattern(callback) .. "%?oauth_token=%x+&oauth_verifier=%d+$", redirect)
      assert.matches("^http://127%.0%.0%.1:", start_url)
      http:request { method = "GET", url = start_url }     -- a second visit ends the login
      local rc = finish(h)
      assert.equal(1, rc)
    end)

    it("accepts the verifier only from the browser that opened the start URL", function()
      local path = dir .. "/web/credentials.json"
      local h = start { "--config", config, "--credentials", path, "login", "--web", "--no-browser",
                        "--timeout", "30" }
      local start_url, callback = urls(h)
      assert.matches("^http://127%.0%.0%.1:%d+/start%?s=%x+$", start_url)
      assert.equal(32, #start_url:match("s=(%x+)$"))                 -- 128 bits
      assert.is_nil(read_file(h.err):find("oauth_token", 1, true))   -- the request token is not printed
      -- the browser: the start URL sets the cookie and redirects to the provider
      local location, cookie = visit_start(start_url)
      assert.matches("^" .. pattern(sb.origin) .. "/services/oauth/1%.0a/authorize%?oauth_token=%x+", location)
      assert.matches("&Access=Full&Permissions=Modify", location)
      assert.matches("; HttpOnly", cookie, 1, true)
      assert.matches("; SameSite=Lax", cookie, 1, true)
      assert.matches("; Path=/", cookie, 1, true)
      local pair = cookie:match("^([^;]+)")
      -- the request token, sealed (smugoauth.apps.callback): four base64url pieces
      local value = pair:match("^smugoauth_login=([%w%-_]+%.[%w%-_]+%.[%w%-_]+%.[%w%-_]+)$")
      assert.is_string(value, pair)
      assert.is_nil(value:find(location:match("oauth_token=(%x+)"), 1, true))   -- not in the clear
      -- someone who knows the request token approves and delivers a verifier first:
      -- without the cookie (or with a wrong one) it is refused and the CLI keeps waiting
      local redirect = sb:approve(location:match("oauth_token=(%x+)"))
      assert.equal(callback, redirect:match("^([^?]+)"))
      local res = assert(http:request { method = "GET", url = redirect })
      assert.equal(403, res.status)
      res = assert(http:request { method = "GET", url = redirect,
        headers = { "Cookie: smugoauth_login=" .. value:gsub("[^.]", "A") } })
      assert.equal(403, res.status)
      socket_sleep(0.3)
      assert.is_true(running(h))
      -- the browser that started the login completes it
      res = assert(http:request { method = "GET", url = redirect, headers = { "Cookie: " .. pair } })
      assert.equal(200, res.status)
      assert.matches("You can close this window", res.body, 1, true)
      local rc, out, err = finish(h)
      assert.equal(0, rc, err)
      assert.equal("Logged in as tester (Sandbox Tester); credentials stored in " .. path .. "\n", out)
      assert.is_nil(err:find(value, 1, true))                        -- the cookie is never printed
    end)

    it("a second visit to the start URL aborts the login and stores nothing", function()
      local path = dir .. "/twice/credentials.json"
      local h = start { "--config", config, "--credentials", path, "login", "--web", "--no-browser",
                        "--timeout", "30" }
      local start_url = urls(h)
      local location, cookie = visit_start(start_url)        -- someone else got there first
      local res = assert(http:request { method = "GET", url = start_url })
      assert.equal(409, res.status)
      assert.matches("aborted", res.body, 1, true)
      assert.is_nil(header(res, "set-cookie"))
      assert.is_nil(header(res, "location"))
      -- even a complete callback from the first visitor does not log in now
      local redirect = sb:approve(location:match("oauth_token=(%x+)"))
      http:request { method = "GET", url = redirect, headers = { "Cookie: " .. cookie:match("^([^;]+)") } }
      local rc, out, err = finish(h)
      assert.equal(1, rc)
      assert.equal("", out)
      assert.matches("smugoauth: login: aborted: the start URL was opened twice %(someone else may have " ..
        "opened it%); nothing was stored", err)
      assert.is_nil(core.file_mode(path))
    end)

    it("a wrong start secret is refused without ending the login", function()
      local h = start { "--config", config, "--credentials", dir .. "/wrong.json", "login", "--web",
                        "--no-browser", "--timeout", "30" }
      local start_url = urls(h)
      local res = assert(http:request { method = "GET", url = start_url:gsub("s=%x+", "s=" .. ("0"):rep(32)) })
      assert.equal(404, res.status)
      res = assert(http:request { method = "GET", url = start_url:gsub("%?.*", "") })
      assert.equal(404, res.status)
      socket_sleep(0.3)
      assert.is_true(running(h))
      visit_start(start_url)
      http:request { method = "GET", url = start_url }
      assert.equal(1, (finish(h)))
    end)

    it("opens the browser with the start URL only: the opener's argv holds no token", function()
      -- a fake xdg-open records its argv and plays the browser
      local bin = dir .. "/fakebin"
      os.execute("mkdir -p " .. q(bin))
      local argv_file = dir .. "/opener-argv"
      write_file(bin .. "/xdg-open", "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " ..
        q(argv_file) .. "\n")
      os.execute("chmod 755 " .. q(bin .. "/xdg-open"))
      local path = dir .. "/opened/credentials.json"
      local h = start({ "--config", config, "--credentials", path, "login", "--web", "--timeout", "30" },
        { env = "PATH=" .. q(bin) .. ":\"$PATH\" DISPLAY=:99" })
      local printed = urls(h)
      local argv = wait_for(function() local s = read_file(argv_file) return s ~= "" and s end)
      assert.equal(printed .. "\n", argv)                       -- one argument: the start URL
      assert.matches("^http://127%.0%.0%.1:%d+/start%?s=%x+\n$", argv)
      local location, cookie = visit_start(printed)
      local token = location:match("oauth_token=(%x+)")
      assert.is_nil(argv:find(token, 1, true))
      local redirect = sb:approve(token)
      local res = assert(http:request { method = "GET", url = redirect,
        headers = { "Cookie: " .. cookie:match("^([^;]+)") } })
      assert.equal(200, res.status)
      local rc, out = finish(h)
      assert.equal(0, rc)
      assert.matches("^Logged in as tester", out)
      -- the file that carried the URL to the opener is gone
      local left = io.popen("grep -l -F -- " .. q(printed) .. " /tmp/lua_* 2>/dev/null")
      assert.equal("", left:read("a"))
      left:close()
    end)

    it("the open_url hook gets the start URL, never the authorize URL", function()
      local seen = {}
      local rc, _, err = call({ "--config", config, "--credentials", dir .. "/hook.json", "login", "--web",
                                "--timeout", "1" }, { open_url = function(u) seen[#seen + 1] = u end })
      assert.equal(4, rc)
      assert.equal(1, #seen)
      assert.matches("^http://127%.0%.0%.1:%d+/start%?s=%x+$", seen[1])
      assert.matches("Go to " .. pattern(seen[1]) .. " in a web browser", err)
      assert.is_nil(err:find("oauth_token", 1, true))
    end)

    it("refuses requests from another local user", function()
      -- needs root to act as another user; this suite runs as root in CI
      assert.equal(0, core.getuid(), "this test must run as root")
      local h = start { "--config", config, "--credentials", dir .. "/other.json", "login", "--web",
                        "--no-browser", "--timeout", "30" }
      local start_url = urls(h)
      local p = assert(io.popen("setpriv --reuid=65534 --regid=65534 --clear-groups curl -s -o /dev/null " ..
        "-w '%{http_code}' --max-time 10 " .. q(start_url)))
      local code = p:read("a")
      p:close()
      assert.equal("403", code)
      socket_sleep(0.3)
      assert.is_true(running(h))
      assert.matches("refused a request from another local user %(uid 65534%)", read_file(h.err))
      visit_start(start_url)                                 -- the real user's browser still can
      http:request { method = "GET", url = start_url }
      assert.equal(1, (finish(h)))
    end)
  end)

  describe("stored credentials and the config", function()
    local evil
    setup(function() evil = sandbox.start { key = KEY, secret = SECRET } end)
    teardown(function() if evil then evil:stop() end end)

    local function requests_on(s)
      return s:stats().requests      -- counts this stats request too
    end

    it("a config.json planted in the current directory cannot send the token elsewhere", function()
      local photos = dir .. "/photos"
      os.execute("mkdir -p " .. q(photos))
      write_file(photos .. "/photo.jpg", "jpeg bytes")
      write_file(photos .. "/config.json", json.compact { key = KEY, secret = SECRET, oauth_origin = sb.origin,
        api_origin = evil.origin, upload_origin = evil.origin })
      local before = requests_on(evil)
      local env = "SMUGOAUTH_CREDENTIALS=" .. q(creds)
      local rc, out, err = run({ "upload", "K0001", "photo.jpg" }, { cd = photos, env = env })
      assert.equal(3, rc)
      assert.equal("", out)
      assert.matches("^smugoauth: [^\n]*\n$", err)
      assert.matches("config.json asks for api_origin " .. pattern(evil.origin), err)
      assert.matches("issued for " .. pattern(sb.origin), err)
      assert.matches(pattern(creds), err)
      rc, out, err = run({ "whoami" }, { cd = photos, env = env })
      assert.equal(3, rc)
      assert.equal("", out)
      assert.matches("asks for api_origin", err)
      rc = run({ "get", "/api/v2!authuser" }, { cd = photos, env = env })
      assert.equal(3, rc)
      assert.equal(before + 1, requests_on(evil))          -- nothing reached the other server
    end)

    it("another upload_origin or oauth_origin alone is refused too", function()
      for _, field in ipairs { "upload_origin", "oauth_origin" } do
        local conf = { key = KEY, secret = SECRET, oauth_origin = sb.origin, api_origin = sb.origin,
                       upload_origin = sb.origin }
        conf[field] = evil.origin
        local path = dir .. "/" .. field .. ".json"
        write_file(path, json.compact(conf))
        local before = requests_on(evil)
        local file = dir .. "/x.jpg"
        write_file(file, "x")
        local rc, out, err = run { "--config", path, "--credentials", creds, "upload", "K0001", file }
        assert.equal(3, rc, field)
        assert.equal("", out)
        assert.matches(pattern(path) .. " asks for " .. field .. " " .. pattern(evil.origin), err)
        assert.matches("issued for " .. pattern(sb.origin), err)
        assert.equal(before + 1, requests_on(evil))
      end
    end)

    it("an environment override is named as the one asking", function()
      local rc, _, err = run({ "--config", config, "--credentials", creds, "whoami" },
        { env = "SMUGOAUTH_UPLOAD_ORIGIN=" .. q(evil.origin) })
      assert.equal(3, rc)
      assert.matches("SMUGOAUTH_UPLOAD_ORIGIN asks for upload_origin " .. pattern(evil.origin), err)
    end)

    it("login records every origin with the key", function()
      local stored = cjson.decode(read_file(creds))
      assert.equal(KEY, stored.key)
      assert.equal(sb.origin, stored.oauth_origin)
      assert.equal(sb.origin, stored.api_origin)
      assert.equal(sb.origin, stored.upload_origin)
    end)

    it("old credentials files (key and api_origin only) keep working by the stated rule", function()
      local stored = cjson.decode(read_file(creds))
      local old = dir .. "/old.json"
      core.write_private(old, json.compact { token = stored.token, secret = stored.secret, key = KEY,
                                             api_origin = sb.origin })
      local rc, out = call { "--config", config, "--credentials", old, "whoami" }
      assert.equal(0, rc)
      assert.equal("tester (Sandbox Tester)\n", out)
      -- with the upload origin elsewhere: refused, log in again
      local moved = dir .. "/moved.json"
      write_file(moved, json.compact { key = KEY, secret = SECRET, oauth_origin = sb.origin,
                                       api_origin = sb.origin, upload_origin = evil.origin })
      local before = requests_on(evil)
      local err
      rc, out, err = call { "--config", moved, "--credentials", old, "whoami" }
      assert.equal(3, rc)
      assert.equal("", out)
      assert.matches("asks for upload_origin " .. pattern(evil.origin), err)
      assert.matches("run `smugoauth login`", err, 1, true)
      assert.equal(before + 1, requests_on(evil))
    end)

    it("credentials.check: the rule, for new and old records", function()
      local def = smugoauth.new { key = "k", secret = "s" }
      local sandboxed = smugoauth.new { key = "k", secret = "s", oauth_origin = "http://127.0.0.1:1",
        api_origin = "http://127.0.0.1:1", upload_origin = "http://127.0.0.1:1" }
      local ok, err
      -- full records: every origin and the key must match
      local full = { token = "t", secret = "x", key = "k", oauth_origin = client_mod.OAUTH_ORIGIN,
                     api_origin = client_mod.API_ORIGIN, upload_origin = client_mod.UPLOAD_ORIGIN }
      assert.is_true(credentials.check(full, def))
      ok, err = credentials.check(full, sandboxed)
      assert.is_nil(ok)
      assert.equal("config", err.code)
      assert.equal("api_origin", err.field)
      assert.equal("http://127.0.0.1:1", err.wanted)
      assert.equal(client_mod.API_ORIGIN, err.issued)
      ok, err = credentials.check(full, smugoauth.new { key = "k", secret = "s", oauth_origin = "https://o.example" })
      assert.is_nil(ok)
      assert.equal("oauth_origin", err.field)
      assert.matches("the config asks for oauth_origin https://o.example, but the stored credentials were " ..
        "issued for " .. pattern(client_mod.OAUTH_ORIGIN), err.message)
      ok, err = credentials.check({ token = "t", secret = "x", key = "other", api_origin = def.api_origin,
        oauth_origin = def.oauth_origin, upload_origin = def.upload_origin }, def)
      assert.is_nil(ok)
      assert.equal("key", err.field)
      assert.matches("another API key", err.message)
      -- old records: the other origins are SmugMug's for SmugMug's API, else the API origin itself
      assert.is_true(credentials.check({ token = "t", secret = "x", key = "k",
                                         api_origin = client_mod.API_ORIGIN }, def))
      assert.is_true(credentials.check({ token = "t", secret = "x", key = "k",
                                         api_origin = "http://127.0.0.1:1" }, sandboxed))
      local half = smugoauth.new { key = "k", secret = "s", upload_origin = "https://upload.example" }
      ok, err = credentials.check({ token = "t", secret = "x", key = "k", api_origin = client_mod.API_ORIGIN }, half)
      assert.is_nil(ok)
      assert.equal("upload_origin", err.field)
      assert.matches("log in again", err.message)
      -- a record with no origin at all (hand-written) is taken as SmugMug's
      assert.is_true(credentials.check({ token = "t", secret = "x" }, def))
      assert.is_nil((credentials.check({ token = "t", secret = "x" }, sandboxed)))
      -- misuse raises
      assert.has_error(function() credentials.check(nil, def) end)
      assert.has_error(function() credentials.check(full, "client") end)
    end)

    it("smugoauth.load_credentials(path, client) checks for scripts", function()
      local good = smugoauth.new { key = KEY, secret = SECRET, oauth_origin = sb.origin,
                                   api_origin = sb.origin, upload_origin = sb.origin }
      local t, s = smugoauth.load_credentials(creds, good)
      assert.is_string(t)
      assert.is_string(s)
      local bad = smugoauth.new { key = KEY, secret = SECRET, oauth_origin = sb.origin,
                                  api_origin = evil.origin, upload_origin = sb.origin }
      local none, err = smugoauth.load_credentials(creds, bad)
      assert.is_nil(none)
      assert.equal("config", err.code)
      assert.matches("api_origin " .. pattern(evil.origin), err.message)
      assert.matches(pattern(creds), err.message)
      assert.is_nil(tostring(err):find(s, 1, true))
      -- without a client: as before, no check
      assert.equal(t, (smugoauth.load_credentials(creds)))
      assert.has_error(function() smugoauth.load_credentials(creds, "client") end,
        "load_credentials: the second argument must be a client")
    end)
  end)

  describe("API strings on a terminal", function()
    -- A sandbox whose user, image URIs, error messages and one text body are hostile.
    local SERVER = [=[
package.path = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. package.path
package.cpath = ROOT .. "/build/?.so;" .. package.cpath
local sandbox = require "smugoauth.sandbox"
local cjson = require "cjson"
local EVIL = "\27[2K\r\27]0;owned\7\27[31mEvil\155[1m \194\155 2J\226\128\174kcab\226\129\166 \127x\255\254\9"
local J = cjson.encode(EVIL)
local sb = assert(sandbox.new { key = KEY, secret = SECRET })
local orig = sb.handle
local function sub(body, from, to)
  return (body:gsub(from, function() return to end))
end
function sb:handle(req)
  if req.path == "/api/v2!raw" then
    return 200, { ["Content-Type"] = "text/plain" }, "line one\n" .. EVIL .. "\n"
  end
  local status, headers, body = orig(self, req)
  if type(body) == "string" then
    body = sub(body, '"Sandbox Tester"', J)
    body = sub(body, '"NickName":"tester"', '"NickName":' .. J)
    body = sub(body, '"ImageUri":"', '"ImageUri":"\\u001b[2K\\u009b' .. J:sub(2, -2))
    body = sub(body, '"Message":"Not Found"', '"Message":' .. J)
    body = sub(body, '"message":"album not found"', '"message":' .. J)
  end
  return status, headers, body
end
io.stdout:write("PORT ", sb.port, "\n")
io.stdout:flush()
sb:run()
]=]
    local hostile, origin, hconfig, hcreds

    setup(function()
      local script = dir .. "/hostile.lua"
      write_file(script, ("local ROOT, KEY, SECRET = %q, %q, %q\n"):format(ROOT, KEY, SECRET) .. SERVER)
      hostile = proc.spawn({ "lua5.4", script }, { expect = "^PORT %d+$" })
      origin = "http://127.0.0.1:" .. hostile.port
      hconfig = dir .. "/hostile-config.json"
      hcreds = dir .. "/hostile-cred/credentials.json"
      write_file(hconfig, json.compact { key = KEY, secret = SECRET, oauth_origin = origin, api_origin = origin,
                                         upload_origin = origin })
    end)

    teardown(function()
      if hostile then hostile:close() end
    end)

    local tty = function() return true end

    local function main(args, o)
      local full = { "--config", hconfig, "--credentials", hcreds }
      for _, a in ipairs(args) do full[#full + 1] = a end
      o = o or {}
      o.isatty = o.isatty or tty
      return call(full, o)
    end

    it("login and whoami print the account name without its escapes", function()
      local o = {}
      o.stdin = { read = function()
        local url = o.err_text():match("Go to (%S+) in a web browser")
        local res = assert(http:request { method = "GET",
          url = origin .. "/_sandbox/approve?oauth_token=" .. url:match("oauth_token=(%x+)") })
        return res.body
      end }
      local rc, out, err = main({ "login" }, o)
      assert.equal(0, rc, err)
      assert.matches("^Logged in as [^\n]*Evil[^\n]*; credentials stored in ", out)
      assert_clean(out, "login")
      assert_clean(err, "login stderr")
      rc, out, err = main { "whoami" }
      assert.equal(0, rc)
      assert.equal("", err)
      assert.matches("^[^\n]*Evil[^\n]*\n$", out)
      assert_clean(out, "whoami")
      -- piped, the one-line outputs are just as clean
      rc, out = main({ "whoami" }, { isatty = function() return false end })
      assert.equal(0, rc)
      assert_clean(out, "whoami piped")
    end)

    it("JSON output escapes DEL, C1 controls and bidi controls, and stays the same JSON", function()
      for _, style in ipairs { "--pretty", "--compact" } do
        local rc, out = main { "whoami", "--json", style }
        assert.equal(0, rc)
        assert_clean(out, "whoami --json " .. style)
        local user = cjson.decode(out)
        assert.matches("Evil", user.Name, 1, true)
        assert.matches("\27[2K\r\27]0;owned\7\27[31mEvil", user.Name, 1, true)   -- the data is kept
        assert.matches(" \194\155 2J\226\128\174kcab\226\129\166 \127x", user.Name, 1, true)
      end
    end)

    it("upload prints the ImageUri without its escapes", function()
      local file = dir .. "/pic.jpg"
      write_file(file, "picture")
      local rc, out = main({ "upload", "K0003", file }, { isatty = function(fd) return fd == 1 end })
      assert.equal(0, rc)
      assert.matches("/api/v2/image/%x+%-0\n$", out)
      assert_clean(out, "upload")
    end)

    it("error messages from the API and --debug traces are clean", function()
      local rc, out, err = main { "get", "/api/v2/album/NOPE" }
      assert.equal(1, rc)
      assert.matches("HTTP 404", err)
      assert.matches("Evil", err, 1, true)
      assert_clean(err, "error message")
      assert_clean(out, "error body")
      local file = dir .. "/pic2.jpg"
      write_file(file, "picture")
      rc, out, err = main({ "upload", "NOSUCH", file }, { isatty = function(fd) return fd == 1 end })
      assert.equal(1, rc)
      assert.equal("", out)
      assert.matches("Evil", err, 1, true)
      assert_clean(err, "upload error")
      rc, out, err = main { "--debug", "get", "/api/v2!authuser" }
      assert.equal(0, rc)
      assert.matches("smugoauth: < 200", err, 1, true)
      assert_clean(out, "debug stdout")
      assert_clean(err:gsub("\n", " "), "debug trace")
    end)

    it("a non-JSON body is cleaned on a terminal and passed as it came to a pipe", function()
      local rc, out = main { "get", "/api/v2!raw" }
      assert.equal(0, rc)
      assert.matches("^line one\n[^\n]*Evil[^\n]*\n$", out)
      assert_clean(out, "raw body")
      rc, out = main({ "get", "/api/v2!raw" }, { isatty = function() return false end })
      assert.equal(0, rc)
      assert.matches("\27[2K", out, 1, true)
    end)
  end)
end)
