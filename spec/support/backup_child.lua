-- A backup in a child process, for the kill -9 specs: reads a JSON file
-- { origin, archive_origin, key, secret, token, token_secret, dest, jobs }
-- (argv[1]), prints "STARTED" once its first file is saved, then runs
-- api:backup to the end and prints "DONE <saved> <failed>".
--   lua5.4 spec/support/backup_child.lua job.json
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SMUGOAUTH_BUILD") or "build") .. "/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local cjson = require "cjson"

local f = assert(io.open(arg[1], "rb"))
local job = cjson.decode(f:read("a"))
f:close()
local origins = { job.origin }
if job.archive_origin then origins[2] = job.archive_origin end
local client = smugoauth.new { key = job.key, secret = job.secret, oauth_origin = job.origin,
                               api_origin = job.origin, upload_origin = job.origin, download_origins = origins }
local api = client:session(job.token, job.token_secret)
local started = false
local s = assert(api:backup { dest = job.dest, jobs = job.jobs or 4, on_event = function(ev)
  if not started and ev.type == "done" then
    started = true
    io.stdout:write("STARTED\n")
    io.stdout:flush()
  end
end })
io.stdout:write(("DONE %d %d\n"):format(s.saved, s.failed))
