#!/usr/bin/env lua5.4
-- The console OAuth 1.0a flow, as SmugMug's console.py does it:
--   1. get a request token with the "oob" callback,
--   2. print the authorize URL (Access=Full&Permissions=Modify) for a browser,
--   3. read the six-digit code the user is shown,
--   4. trade it for an access token, print token and secret,
--   5. GET /api/v2!authuser with Accept: application/json and print the JSON.
-- Keys come from SMUGOAUTH_CONFIG, else ./config.json, else the config
-- `smugoauth login --key` stores ($XDG_CONFIG_HOME/smugoauth/config.json or
-- ~/.config/smugoauth/config.json): {"key": ..., "secret": ...}.
-- usage: lua5.4 examples/console.lua     (make console)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SMUGOAUTH_BUILD") or "build") .. "/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local json = require "smugoauth.json"

local console = {}

-- Run the flow. read_code(url) returns the code the user typed (or nil);
-- out(s) prints. Returns 0 on success, 1 with a one-line reason otherwise.
function console.run(opts)
  opts = opts or {}
  local out = opts.out or function(s) io.stdout:write(s) io.stdout:flush() end
  local fail = opts.fail or function(s) io.stderr:write("console: ", s, "\n") end
  local read_code = opts.read_code or function()
    out("Enter the six-digit code: ")
    return io.stdin:read("l")
  end

  local client, err = smugoauth.from_config(opts.config)
  if not client then fail(err.message) return 1 end

  local rt, rts = client:request_token("oob")
  if not rt then fail("could not get a request token: " .. tostring(rts)) return 1 end

  local url = client:authorize_url(rt, { Access = "Full", Permissions = "Modify" })
  out("Go to " .. url .. " in a web browser.\n")
  local code = read_code(url)
  if code == nil or code:match("^%s*$") then fail("no code entered") return 1 end

  local at, ats = client:access_token(rt, rts, code)
  if not at then fail("the code was refused: " .. tostring(ats)) return 1 end
  out("Access token: " .. at .. "\nAccess token secret: " .. ats .. "\n")

  local api = client:session(at, ats)
  local res, rerr = api:get("/api/v2!authuser")
  if not res then fail("GET /api/v2!authuser failed: " .. tostring(rerr)) return 1 end
  local body, jerr = res:json()
  if not body then fail(tostring(jerr)) return 1 end
  out(json.pretty(body) .. "\n")
  return 0
end

-- Run as a script (not when loaded by examples/demo.lua or the specs).
if arg and arg[0] and arg[0]:match("console%.lua$") then
  local ok, code = pcall(console.run)
  if not ok then
    io.stderr:write("console: internal error: ", tostring(code):gsub("\n.*", ""), "\n")
    os.exit(1)
  end
  os.exit(code)
end

return console
