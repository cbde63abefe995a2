-- bench/support/web_loop_server.lua -- for bench/loop.lua: the web example's
-- app (smugoauth.apps.web) served by smugoauth.http.server, its client's API
-- (and OAuth) origin the benchmark's provider, so `/test` makes a real
-- signed GET there.
--   lua5.4 bench/support/web_loop_server.lua API_ORIGIN yield|block [lifetime-seconds]
-- yield: the client as shipped (requests yield inside loop tasks); block:
-- the client option `yield = false` (requests block even inside tasks, as
-- before the loop existed). Prints "PORT <n>" once listening (127.0.0.1, a
-- free port), then "COOKIE <name=value>": an authorized browser's
-- access-token cookie, sealed with the app's (random) key as /callback
-- would set it. Serves until killed or the lifetime (default 900 s) ends.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local webapp = require "smugoauth.apps.web"
local callback = require "smugoauth.apps.callback"
local core = require "smugoauth.core"

local origin, mode, lifetime = arg[1], arg[2], tonumber(arg[3]) or 900
if not origin or (mode ~= "yield" and mode ~= "block") then
  io.stderr:write("usage: web_loop_server.lua API_ORIGIN yield|block [lifetime-seconds]\n")
  os.exit(2)
end
collectgarbage("incremental", 150, 0)     -- as examples/web.lua does
local client = smugoauth.new { key = "ck-bench-consumer-key", secret = "cs-bench-consumer-secret",
                               oauth_origin = origin, api_origin = origin, yield = mode == "yield",
                               timeout = 120 }
local key = assert(core.random_bytes(32))
local app = assert(webapp.new { client = client, port = 0, key = key })
local srv = assert(app:serve { host = "127.0.0.1", port = 0 })
local set = assert(callback.seal_tokens(key, webapp.AT_COOKIE, false, "tk-bench-access-token",
                                        "ts-bench-access-token-secret", 3600, os.time()))
io.stdout:write("PORT ", srv.port, "\n", "COOKIE ", set:match("^[^;]+"), "\n")
io.stdout:flush()
local deadline = core.monotime() + lifetime
while core.monotime() < deadline do
  assert(srv:step(0.25))
end
srv:close()
