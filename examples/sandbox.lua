#!/usr/bin/env lua5.4
-- Run the local SmugMug sandbox:
--   lua5.4 examples/sandbox.lua [--port N] [--key K --secret S] [--albums N] [--latency S]
--       [--fixture NAMES] [--fixture-file PATH] [--images N] [--image-size B]
--       [--video-size B] [--archive-origin]
-- Prints "PORT <n>" first (then "ARCHIVE <n>" with --archive-origin), then
-- serves until killed. Point config.json's oauth_origin, api_origin and
-- upload_origin at http://127.0.0.1:<n> (and download_origins at both).
-- --latency S: every answer (but /_sandbox/'s) comes after S seconds, as from
-- a slow provider; concurrent requests overlap (see smugoauth.apps.sandbox).
-- --fixture NAMES: what the user has: backup, tree, bench, video, albums
-- (comma-separated; see smugoauth.apps.sandbox.fixtures); --fixture-file a
-- JSON description; --images and --image-size size the bench fixture,
-- --video-size the video fixture's largest rendition.
-- --archive-origin: archive downloads on a second port (as photos.smugmug.com).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SMUGOAUTH_BUILD") or "build") .. "/?.so;" .. package.cpath
local sandbox = require "smugoauth.apps.sandbox"

local USAGE = "usage: sandbox.lua [--port N] [--key K] [--secret S] [--albums N] [--latency S]\n" ..
  "  [--fixture NAMES] [--fixture-file PATH] [--images N] [--image-size B] [--video-size B] [--archive-origin]\n"

-- flags that take a count: option name
local COUNTS = { ["--port"] = "port", ["--albums"] = "albums", ["--images"] = "images",
                 ["--image-size"] = "image_size", ["--video-size"] = "video_size" }

local function usage()
  io.stderr:write(USAGE)
  os.exit(2)
end

local opts = {}
local i = 1
while arg[i] do
  local a, v = arg[i], arg[i + 1]
  local n = math.tointeger(tonumber(v))
  if a == "--archive-origin" then
    opts.archive_origin = true
    i = i - 1
  elseif COUNTS[a] then
    if not n or n < 0 then usage() end
    opts[COUNTS[a]] = n
  elseif a == "--key" and v then opts.key = v
  elseif a == "--secret" and v then opts.secret = v
  elseif a == "--fixture" and v then opts.fixture = v
  elseif a == "--fixture-file" and v then opts.fixture_file = v
  elseif a == "--latency" and tonumber(v) and tonumber(v) >= 0 and tonumber(v) <= 3600 then
    opts.latency = tonumber(v)
  else
    usage()
  end
  i = i + 2
end
local sb, err = sandbox.new(opts)
if not sb then io.stderr:write(tostring(err), "\n") os.exit(1) end
io.stdout:write("PORT ", sb.port, "\n")
if sb.archive_port then io.stdout:write("ARCHIVE ", sb.archive_port, "\n") end
io.stdout:flush()
sb:run()
