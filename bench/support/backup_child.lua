-- bench/support/backup_child.lua -- one `api:backup` in a process of its
-- own, so that its peak memory (VmHWM) is the backup's alone: bench/backup.lua
-- runs it for the 2 GB video. The sandbox's key, secret and origins come as
-- arguments, the access token and its secret in the environment
-- (BENCH_TOKEN, BENCH_TOKEN_SECRET: not on the command line).
-- usage: lua5.4 bench/support/backup_child.lua ORIGIN ARCHIVE_ORIGIN KEY SECRET DEST [JOBS [ALBUM]]
-- prints "RESULT ok=1 saved=N bytes=N failed=N seconds=S vmhwm_kb=N vmrss_kb=N" (and the
-- first failure's reason on a line "FAILED ..." when there is one)
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local H = require "support.harness"

local origin, archive, key, secret, dest = arg[1], arg[2], arg[3], arg[4], arg[5]
local jobs = math.tointeger(tonumber(arg[6] or 4))
local album = arg[7]
if not dest then
  io.stderr:write("usage: lua5.4 bench/support/backup_child.lua ORIGIN ARCHIVE_ORIGIN KEY SECRET DEST [JOBS [ALBUM]]\n")
  os.exit(2)
end

local client = smugoauth.new { key = key, secret = secret, oauth_origin = origin, api_origin = origin,
                               upload_origin = origin, download_origins = { origin, archive } }
local api = client:session(assert(os.getenv("BENCH_TOKEN")), assert(os.getenv("BENCH_TOKEN_SECRET")))
local t0 = H.now()
local s = assert(api:backup { dest = dest, jobs = jobs, albums = album and { album } or nil })
local seconds = H.now() - t0
api:close()
collectgarbage()
if s.failures[1] then print("FAILED " .. tostring(s.failures[1].code) .. ": " .. tostring(s.failures[1].message)) end
print(("RESULT ok=%d saved=%d bytes=%d failed=%d seconds=%.6f vmhwm_kb=%d vmrss_kb=%d")
  :format(s.ok and 1 or 0, s.saved, s.bytes, s.failed, seconds, H.status_kb("VmHWM"), H.status_kb("VmRSS")))
