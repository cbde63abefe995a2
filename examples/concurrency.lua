#!/usr/bin/env lua5.4
-- The README's "Concurrency" example: list a user's albums, then fetch each
-- album's images, at most 8 albums at a time, as tasks of smugoauth's event
-- loop (smugoauth.run, smugoauth.limit). Every request yields its task while
-- it waits, so the others go on; the same calls outside a task would block.
--
-- usage: lua5.4 examples/concurrency.lua [--sandbox]
--   With a config (SMUGOAUTH_CONFIG or ./config.json) and credentials stored
--   by `smugoauth login`: against SmugMug, for the authorized user.
--   Without one (or with --sandbox): against the local sandbox, started here
--   (lua/smugoauth/apps/sandbox/launch.lua, as `make demo` does), the OAuth
--   flow approved on your behalf and a few images uploaded first.
-- Prints each album with its image count, then what it did and the time.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SMUGOAUTH_BUILD") or "build") .. "/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"

local function fail(msg)
  io.stderr:write("concurrency: ", tostring(msg), "\n")
  os.exit(1)
end

-- ------------------------------------------------------------ a session

local config = os.getenv("SMUGOAUTH_CONFIG")
if config == "" then config = nil end
local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end
local use_sandbox = arg[1] == "--sandbox" or (not config and not exists("config.json"))
local api, sandbox

if use_sandbox then
  local err
  sandbox, err = require("smugoauth.apps.sandbox.launch").start { albums = 20 }
  if not sandbox then fail(err) end
  local at, ats, client = sandbox:authorize()
  api = client:session(at, ats)
  -- a few images in some albums, so that there is something to count
  local photo = os.tmpname()
  local f = assert(io.open(photo, "wb"))
  f:write("\255\216\255\224 not really a JPEG \255\217")
  f:close()
  for a = 1, 20, 3 do
    for i = 1, a % 4 + 1 do
      assert(api:upload { album = ("/api/v2/album/K%04d"):format(a), file = photo,
                          filename = ("IMG_%04d.jpg"):format(a * 10 + i) })
    end
  end
  os.remove(photo)
  print(("sandbox SmugMug on %s: 20 albums, some images uploaded"):format(sandbox.origin))
else
  local client, err = smugoauth.from_config(config)
  if not client then fail(err) end
  local at, ats = smugoauth.load_credentials(nil, client)
  if not at then fail(tostring(ats) .. " (run `smugoauth login` first)") end
  api = client:session(at, ats)
end

-- ------------------------------------------------------------ the example

local t0 = core.monotime()
local running, most = 0, 0
local albums = smugoauth.run(function()
  local user = assert(api:get("/api/v2!authuser")):json().Response.User
  local lim = smugoauth.limit(8)                 -- at most 8 albums at a time
  local tasks = {}
  for album, err in api:each(user.Uri .. "!albums") do   -- pages are fetched as needed
    if not album then error(tostring(err)) end
    tasks[#tasks + 1] = lim:spawn(function()     -- starts now; waits for a slot
      running = running + 1
      most = math.max(most, running)
      local n = 0
      for image, ierr in api:each(album.Uri .. "!images") do
        if not image then error(tostring(ierr)) end
        n = n + 1
      end
      running = running - 1
      return album.Name, n
    end)
  end
  local done = {}
  for i, t in ipairs(tasks) do
    local ok, name, n = t:join()                 -- in order; false, err if it raised
    if not ok then error(name, 0) end
    done[i] = { name = name, n = n }
  end
  return done
end)
local secs = core.monotime() - t0

local images = 0
for _, a in ipairs(albums) do
  print(("%-32s %5d images"):format(a.name, a.n))
  images = images + a.n
end
print(("%d albums, %d images: listed the albums, then each album's images, at most %d at a time " ..
       "(at most %d ran at once), in %.0f ms"):format(#albums, images, 8, most, secs * 1000))
api:close()
if sandbox then sandbox:stop() end
