-- bench/support/web_server.lua -- the web example's app (smugoauth.apps.web)
-- served by smugoauth.http.server for bench/web.lua, with a client whose provider
-- is nowhere (127.0.0.1:9): only `/` (the "Authorize" page, no cookie) is
-- benchmarked, and it makes no provider call.
--   lua5.4 bench/support/web_server.lua [lifetime-seconds [gc]]
-- gc (for profiling; the benchmark uses Lua's defaults): "generational", or
-- "pause=N" (the incremental collector's pause, percent; Lua's default is 200).
-- Prints "PORT <n>" once listening (127.0.0.1, a free port; the app's origin
-- is http://127.0.0.1:<n>, so requests must say Host: 127.0.0.1:<n>), then
-- serves until killed or the lifetime (default 900 s) ends.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local webapp = require "smugoauth.apps.web"
local core = require "smugoauth.core"

local lifetime = tonumber(arg[1]) or 900
local gc = arg[2]
if gc == "generational" then collectgarbage("generational")
elseif gc and gc:match("^pause=%d+$") then collectgarbage("incremental", tonumber(gc:match("%d+")), 0)
elseif gc then error("bad gc option: " .. gc)
else collectgarbage("incremental", 150, 0) end   -- as examples/web.lua does
local client = smugoauth.new { key = "k", secret = "s", oauth_origin = "http://127.0.0.1:9",
                               api_origin = "http://127.0.0.1:9" }
local app = assert(webapp.new { client = client, port = 0, key = string.rep("k", 32) })
local srv = assert(app:serve { host = "127.0.0.1", port = 0 })
io.stdout:write("PORT ", srv.port, "\n")
io.stdout:flush()
local deadline = core.monotime() + lifetime
while core.monotime() < deadline do
  assert(srv:step(0.25))
end
srv:close()
