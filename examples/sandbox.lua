#!/usr/bin/env lua5.4
-- Run the local SmugMug sandbox:
--   lua5.4 examples/sandbox.lua [--port N] [--key K --secret S] [--albums N] [--latency S]
-- Prints "PORT <n>" first, then serves until killed. Point config.json's
-- oauth_origin, api_origin and upload_origin at http://127.0.0.1:<n>.
-- --latency S: every answer (but /_sandbox/'s) comes after S seconds, as from
-- a slow provider; concurrent requests overlap (see smugoauth.apps.sandbox).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SMUGOAUTH_BUILD") or "build") .. "/?.so;" .. package.cpath
local sandbox = require "smugoauth.apps.sandbox"

local opts = {}
local i = 1
while arg[i] do
  local a, v = arg[i], arg[i + 1]
  if a == "--port" then opts.port = tonumber(v)
  elseif a == "--key" then opts.key = v
  elseif a == "--secret" then opts.secret = v
  elseif a == "--albums" then opts.albums = tonumber(v)
  elseif a == "--latency" and tonumber(v) and tonumber(v) >= 0 and tonumber(v) <= 3600 then
    opts.latency = tonumber(v)
  else
    io.stderr:write("usage: sandbox.lua [--port N] [--key K] [--secret S] [--albums N] [--latency S]\n")
    os.exit(2)
  end
  i = i + 2
end
local sb, err = sandbox.new(opts)
if not sb then io.stderr:write(tostring(err), "\n") os.exit(1) end
io.stdout:write("PORT ", sb.port, "\n")
io.stdout:flush()
sb:run()
