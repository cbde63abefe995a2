#!/usr/bin/env lua5.4
-- make demo: the console OAuth flow end to end against the local sandbox,
-- with no account, no internet and no input: the demo approves in the
-- sandbox on the user's behalf (loads the authorize page, presses Approve,
-- reads the six-digit code) and types the code for them. Each step is shown.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SMUGOAUTH_BUILD") or "build") .. "/?.so;" .. package.cpath
local core = require "smugoauth.core"

local function say(s) io.stdout:write("\27[1m[demo]\27[0m ", s, "\n") io.stdout:flush() end
if os.getenv("NO_COLOR") or not os.execute("test -t 1") then
  say = function(s) io.stdout:write("[demo] ", s, "\n") io.stdout:flush() end
end

-- 1. the sandbox, in its own process (the launcher the specs use too)
local key, secret = "demo-" .. assert(core.nonce()):sub(1, 12), "s3cr&t " .. assert(core.nonce()):sub(1, 8)
local sb, err = require("smugoauth.apps.sandbox.launch").start { key = key, secret = secret }
if not sb then io.stderr:write("demo: ", tostring(err), "\n") os.exit(1) end
local origin = sb.origin
say("sandbox SmugMug listening on " .. origin .. " (pid " .. sb.pid .. ")")

-- 2. a config.json for it, in a private temp file
local config = os.tmpname()
local f = assert(io.open(config, "w"))
f:write(require("smugoauth.json").compact { key = key, secret = secret, oauth_origin = origin,
                                            api_origin = origin, upload_origin = origin })
f:close()
say("wrote a config for it to " .. config .. " (key " .. key .. ")")

-- 3. the console flow, with the user's part played by the demo
local console = dofile("examples/console.lua")
local http = core.http_new {}
local code = console.run {
  config = config,
  read_code = function(url)
    say("opening the authorize page as the user's browser would: GET " .. url:gsub("%?.*", "?..."))
    local page = http:request { method = "GET", url = url }
    if not page or page.status ~= 200 then return nil end
    local token = page.body:match('name="oauth_token" value="([^"]+)"')
    say("pressing Approve (POST the form)")
    local done = http:request { method = "POST", url = origin .. "/services/oauth/1.0a/authorize",
      headers = { "Content-Type: application/x-www-form-urlencoded" },
      body = "oauth_token=" .. core.percent_encode(token or "") }
    local six = done and done.body:match('id="code"[^>]*>(%d%d%d%d%d%d)<')
    say("the sandbox shows the six-digit code " .. tostring(six) .. "; typing it in")
    io.stdout:write("Enter the six-digit code: ", tostring(six), "\n")
    return six
  end,
}
http:close()
os.remove(config)
sb:stop()
if code == 0 then say("done: request token -> authorize -> access token -> signed GET !authuser") end
os.exit(code)
