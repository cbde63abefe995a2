-- bench/sync.lua -- `api:sync` of a folder of FILES photos (random bytes, KB
-- kilobytes each, made in a temp dir, removed after) to one album of the
-- local sandbox (a child process, smugoauth.apps.sandbox.launch), twice:
--   run 1  everything is uploaded (--jobs 4)
--   run 2  nothing is: every file is in the album by MD5 (target: 0 uploads,
--          counted by the sandbox), the MD5s come from the manifest's cache
--   run 3  the same as run 2 with rehash = true (every file read again)
-- Times are wall clock; the sandbox's request counters say what each run
-- asked for (the listing pages, the uploads).
-- Exits 0 even when a target is missed (MISSED), 1 when it could not run.
-- usage: lua5.4 bench/sync.lua [files [kilobytes]]
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local H = require "support.harness"
local launch = require "smugoauth.apps.sandbox.launch"
local record = require("record").record

local FILES = math.tointeger(tonumber(arg[1]) or 500)
local KB = math.tointeger(tonumber(arg[2]) or 100)

H.main(function()
  local sb = assert(launch.start { albums = 1 })
  H.on_cleanup(function() sb:stop() end)
  local dir = H.tmpdir()
  H.run(("cd %s && for i in $(seq -w 1 %d); do head -c %d /dev/urandom > IMG_$i.jpg; done")
    :format(H.q(dir), FILES, KB * 1024))
  local at, ats, client = sb:authorize()
  local api = client:session(at, ats)
  H.on_cleanup(function() api:close() end)

  local function run(name, opts)
    local s0 = sb:stats()
    local t0 = H.now()
    local o = { dir = dir, album = "K0001", jobs = 4 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local s, err = api:sync(o)
    local t = H.now() - t0
    if not s then error(name .. ": " .. tostring(err)) end
    if not s.ok then error(name .. ": " .. tostring(s.failures[1].message)) end
    local s1 = sb:stats()
    return { name = name, time = t, uploads = s1.uploads - s0.uploads, requests = s1.requests - s0.requests,
             summary = s }
  end

  local r1 = run("run 1 (uploads everything)")
  local r2 = run("run 2 (nothing to upload)")
  local r3 = run("run 3 (nothing; rehash)", { rehash = true })
  print(("sync of %d files of %d KB to one album of the local sandbox (child process), --jobs 4")
    :format(FILES, KB))
  print(("%-30s %9s %9s %9s %9s"):format("", "seconds", "uploads", "requests", "MD5 read"))
  for _, r in ipairs { r1, r2, r3 } do
    print(("%-30s %9.3f %9d %9d %9d"):format(r.name, r.time, r.uploads, r.requests, r.summary.hashed))
  end
  local ok1 = r1.uploads == FILES and r1.summary.uploaded == FILES
  local ok2 = r2.uploads == 0 and r3.uploads == 0 and r2.summary.present == FILES
  print(("run 1 uploads every file: %d of %d  %s"):format(r1.uploads, FILES, H.verdict(ok1)))
  print(("run 2 uploads nothing: %d uploads (target 0)  %s"):format(r2.uploads, H.verdict(ok2)))
  print(H.machine_note())
  record { bench = "sync", what = ("sync of %d files of %d KB, first run: s"):format(FILES, KB), ours = r1.time,
           target = ("%d uploads"):format(FILES), ok = ok1 }
  record { bench = "sync", what = "the same sync again: s (uploads)", ours = r2.time, alt = r2.uploads,
           alt_name = "uploads", ratio = r1.time / r2.time, ratio_desc = "first/second (time)",
           target = "0 uploads", ok = ok2 }
  record { bench = "sync", what = "again, every file read (rehash): s", ours = r3.time, target = "0 uploads",
           ok = r3.uploads == 0 }
end)
