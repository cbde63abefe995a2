-- bench/backup.lua -- `api:backup` (issue 12) against the local sandbox (a
-- child process, smugoauth.apps.sandbox.launch, archive downloads on a
-- second origin as SmugMug's are), in one run. Two parts (both by default;
-- name one to run it):
--
--   images  IMAGES (2,000) photos of 256 KB in one album, every request
--           (API calls and archive downloads) answered after 20 ms (the
--           sandbox's latency switch). The sandbox's MD5s are computed and a
--           listing made before any clock starts. Three contenders, the same
--           sandbox, the same images:
--             ours    api:backup{ dest = <fresh>, jobs = 4 } (listing included)
--             curl    curl --parallel --parallel-max 4 -K <config>: one `url`,
--                     `header = "Authorization: OAuth ..."` (signed by our
--                     signer for a GET of that URL with the token) and `output`
--                     per image. curl gets the URL list for free: its time
--                     has no listing in it; it is also shown with the time of
--                     a sequential listing of the album's pages added.
--             Python  a sequential backup script, python3-requests-oauthlib
--                     (bench/support/backup_oauthlib.py): !authuser -> nodes
--                     -> album -> pages of images -> each ArchivedUri signed,
--                     written, its MD5 checked. It runs on the first
--                     PY_IMAGES (500) images only (one request at a time, 20 ms
--                     each: the whole album would take a minute): compared by
--                     throughput (MB/s), not total time.
--           Then ours again with jobs = 8 (a fresh folder). The files are
--           checked: count, and the MD5 of a few against the API's. The client's
--           CPU time is shown for each (this process for ours, the child's).
--           Targets: ours (jobs 4) >= 0.8x curl's throughput; >= 5x Python's,
--           judged for jobs 4 and for jobs 8: with 4 requests in flight at
--           20 ms each against one at a time, no client gets much past 4x
--           (curl's own ratio to Python is printed and recorded beside it).
--           The re-run: api:backup again on the same folder: 0 archive bytes,
--           0 archive requests, only listing calls (the sandbox's counters).
--   video   one video of VIDEO_MB (2,048) MiB (the sandbox's "video"
--           fixture: its bytes generated from a seed, streamed), backed up by
--           a child process (bench/support/backup_child.lua; no latency): its
--           peak memory (VmHWM at the end) < 64 MB, and the sandbox's
--           reported apart. The backup verified the MD5 (s.ok); the file is
--           removed at once.
--
-- Exits 0 even when a target is missed (MISSED), 1 when it could not run.
-- usage: lua5.4 bench/backup.lua [images] [video]
--   BENCH_BACKUP_IMAGES=2000  BENCH_BACKUP_PY_IMAGES=500  BENCH_BACKUP_VIDEO_MB=2048
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local core = require "smugoauth.core"
local cjson = require "cjson"
local launch = require "smugoauth.apps.sandbox.launch"
local H = require "support.harness"
local record = require("record").record

local function env_int(name, default)
  local v = math.tointeger(tonumber(os.getenv(name) or default))
  if not v or v < 1 then error(name .. " must be a count >= 1", 0) end
  return v
end
local IMAGES = env_int("BENCH_BACKUP_IMAGES", 2000)
local PY_IMAGES = math.min(IMAGES, env_int("BENCH_BACKUP_PY_IMAGES", 500))
local VIDEO_MB = env_int("BENCH_BACKUP_VIDEO_MB", 2048)
local SIZE = 256 * 1024
local LATENCY = 0.020
local JOBS = 4
local MB = 1e6                         -- throughput in MB/s (10^6 bytes)

local parts = {}
for _, a in ipairs(arg) do
  if a ~= "images" and a ~= "video" then
    io.stderr:write("usage: lua5.4 bench/backup.lua [images] [video]\n")
    os.exit(1)
  end
  parts[a] = true
end
if not next(parts) then parts = { images = true, video = true } end

local function pr(...) print(string.format(...)) end

-- The fields of a child's "RESULT k=v ..." line (numbers where they are).
local function result_of(out, cmd)
  local line = out:match("RESULT ([^\n]+)")
  if not line then error("no RESULT from: " .. cmd .. "\n" .. out, 2) end
  local t = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do t[k] = tonumber(v) or v end
  return t
end

-- The MD5 of a file, hex (nil when it cannot be read).
local function md5_file(path)
  local raw = core.digest_file("md5", path)
  return raw and (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Files under dir (count, bytes), by find.
local function files_in(dir)
  local out = H.run("find " .. H.q(dir) .. " -type f -name '*.JPG' -printf '%s\\n'")
  local n, bytes = 0, 0
  for s in out:gmatch("%d+") do n, bytes = n + 1, bytes + tonumber(s) end
  return n, bytes
end

-- A field of /proc/PID/status in kB.
local function status_kb(pid, name)
  local f = io.open("/proc/" .. math.tointeger(pid) .. "/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match(name .. ":%s*(%d+) kB"))
end

-- The difference of two stats tables (numbers only).
local function delta(s0, s1)
  local d = {}
  for k, v in pairs(s1) do
    if type(v) == "number" and type(s0[k]) == "number" then d[k] = math.tointeger(v - s0[k]) or v - s0[k] end
  end
  return d
end

-- Put the sandbox on the server CPU and us (and every child started after)
-- on the client CPU, as the other benchmarks do (support.harness).
local function place(sb)
  if not H.pinned then return end
  H.run(("taskset -a -pc %d %d >/dev/null"):format(H.SERVER_CPU, math.tointeger(sb.pid)))
  H.pin_self()
end

-- ------------------------------------------------------------ images

local function images_part()
  local sb = assert(launch.start { fixture = "bench", images = IMAGES, image_size = SIZE, latency = LATENCY,
                                   archive_origin = true, timeout = 30 })
  H.on_cleanup(function() sb:stop() end)
  place(sb)
  local at, ats, client = sb:authorize()
  local api = client:session(at, ats)
  H.on_cleanup(function() api:close() end)
  local tmp = H.tmpdir()

  -- the album, listed once before any clock (the sandbox computes the MD5s
  -- of its images on the way): the URLs, MD5s and names
  local imgs = {}
  for start = 1, IMAGES, 1000 do
    local res = assert(api:get("/api/v2/album/AlbBench!images", { start = start, count = 1000 }))
    for _, im in ipairs(cjson.decode(res.body).Response.AlbumImage) do imgs[#imgs + 1] = im end
  end
  if #imgs ~= IMAGES then error(("the album lists %d images, not %d"):format(#imgs, IMAGES)) end
  local total_bytes = IMAGES * SIZE

  -- the listing as a plain client makes it: the pages of 100, one after another
  local tl = H.now()
  for start = 1, IMAGES, 100 do assert(api:get("/api/v2/album/AlbBench!images", { start = start, count = 100 })) end
  local listing_time = H.now() - tl

  H.watch_machine()
  local function timed(name, fn)
    local s0 = sb:stats()
    local own0, kids0 = H.cpu_times()
    local t0 = H.now()
    local extra = fn()
    local t = H.now() - t0
    local own1, kids1 = H.cpu_times()
    -- CPU seconds of the client: this process (ours) or the reaped children (curl, Python)
    local r = { name = name, time = t, d = delta(s0, sb:stats()), cpu = (own1 - own0) + (kids1 - kids0) }
    for k, v in pairs(extra or {}) do r[k] = v end
    return r
  end

  -- ours
  local dest = tmp .. "/ours"
  local ours = timed(("ours: api:backup, jobs = %d"):format(JOBS), function()
    local s, err = api:backup { dest = dest, jobs = JOBS }
    if not s then error("api:backup: " .. tostring(err)) end
    if not s.ok then error("api:backup: " .. tostring((s.failures[1] or {}).message or "not ok")) end
    return { summary = s, bytes = s.bytes, files = s.saved }
  end)

  -- curl: the config (not timed)
  local signer = core.signer { consumer_key = sb.key, consumer_secret = sb.secret, token = at, token_secret = ats }
  local cdir = tmp .. "/curl"
  assert(os.execute("mkdir -p " .. H.q(cdir)))
  local cfg_path = tmp .. "/curl.cfg"
  local cfg = assert(io.open(cfg_path, "w"))
  local function cq(s) return '"' .. s:gsub('[\\"]', "\\%0") .. '"' end
  for i, im in ipairs(imgs) do
    if i > 1 then cfg:write("next\n") end          -- each image its own header, not all of them
    local auth = assert(signer:authorization("GET", im.ArchivedUri))
    cfg:write("url = ", cq(im.ArchivedUri), "\nheader = ", cq("Authorization: " .. auth), "\noutput = ",
      cq(cdir .. "/" .. im.FileName), "\nfail\nsilent\nshow-error\n")
  end
  cfg:close()
  local curl_err = tmp .. "/curl.err"
  local curl = timed("curl --parallel --parallel-max 4", function()
    local ok = os.execute(("curl --parallel --parallel-max %d -K %s 2>%s"):format(JOBS, H.q(cfg_path),
      H.q(curl_err)))
    if not ok then error("curl failed: " .. H.run("head -5 " .. H.q(curl_err))) end
  end)
  curl.files, curl.bytes = files_in(cdir)

  -- Python, sequential, on the first PY_IMAGES images
  local pdir = tmp .. "/python"
  assert(os.execute("mkdir -p " .. H.q(pdir)))
  local pcmd = ("%s bench/support/backup_oauthlib.py %s %s %s %s %s %s %d"):format(H.PYTHON, H.q(sb.origin),
    H.q(sb.key), H.q(sb.secret), H.q(at), H.q(ats), H.q(pdir), PY_IMAGES)
  local py = timed(("python requests-oauthlib, sequential (%d images)"):format(PY_IMAGES), function()
    local res = result_of(H.run(pcmd), "backup_oauthlib.py")
    if res.bad_md5 ~= 0 then error("the Python script saw " .. res.bad_md5 .. " bad MD5s") end
    return { py = res, files = res.files, bytes = res.bytes }
  end)
  local pfiles = files_in(pdir)

  -- ours with jobs = 8 (a fresh folder)
  local dest8 = tmp .. "/ours8"
  local ours8 = timed("ours: api:backup, jobs = 8", function()
    local s, err = api:backup { dest = dest8, jobs = 8 }
    if not s or not s.ok then error("api:backup jobs 8: " .. tostring(err or (s.failures[1] or {}).message)) end
    return { summary = s, bytes = s.bytes, files = s.saved }
  end)
  -- (its files stay until the end: thousands of files deleted just before
  -- make every file created after them slower on ext4 without a journal)

  -- the re-run on the first folder
  local rerun = timed("ours again, same folder (re-run)", function()
    local s, err = api:backup { dest = dest, jobs = JOBS }
    if not s or not s.ok then error("api:backup re-run: " .. tostring(err or (s.failures[1] or {}).message)) end
    return { summary = s, bytes = s.bytes, files = s.saved }
  end)
  local machine = H.machine_note()

  -- the same files everywhere: count, and the MD5 of a few against the API's
  local ofiles = files_in(dest)
  local sample = { 1, PY_IMAGES // 2, PY_IMAGES, IMAGES }
  local same = ofiles == IMAGES and curl.files == IMAGES and pfiles == PY_IMAGES
  local checked = 0
  for _, i in ipairs(sample) do
    local im = imgs[i]
    local want = im.ArchivedMD5
    local paths = { dest .. "/Bench/" .. im.FileName, cdir .. "/" .. im.FileName }
    if i <= PY_IMAGES then paths[#paths + 1] = pdir .. "/Bench/" .. im.FileName end
    for _, p in ipairs(paths) do
      checked = checked + 1
      if md5_file(p) ~= want then
        same = false
        pr("MD5 of %s: %s, not %s", p, tostring(md5_file(p)), want)
      end
    end
  end

  for _, r in ipairs { ours, curl, py, ours8 } do r.mbs = r.bytes / MB / r.time end
  local curl_listed = total_bytes / MB / (curl.time + listing_time)
  local r_curl = H.round2(ours.mbs / curl.mbs)
  local r_curl_listed = H.round2(ours.mbs / curl_listed)
  local r_py = H.round2(ours.mbs / py.mbs)
  local r_py8 = H.round2(ours8.mbs / py.mbs)
  local r_curl_py = H.round2(curl.mbs / py.mbs)
  local ok_curl, ok_py, ok_py8 = r_curl >= 0.8, r_py >= 5, r_py8 >= 5
  -- one request at a time at (latency + t) each cannot be beaten by more
  -- than jobs x over (latency + t') each: the bound of jobs = 4 against Python
  local py_per = py.time / py.files
  local bound = JOBS * py_per / LATENCY

  pr("backup of %d images of %d KB (one album) from the local sandbox (child process; archive downloads on a " ..
     "second origin), %d ms added to every request (API and archive)", IMAGES, SIZE // 1024, LATENCY * 1000)
  pr("%s; MB = 10^6 bytes", H.layout())
  pr("%-50s %8s %8s %8s %6s %9s %8s %8s %8s", "", "seconds", "MB/s", "CPU s", "files", "requests", "listing",
     "archive", "delayed")
  for _, r in ipairs { ours, curl, py, ours8, rerun } do
    pr("%-50s %8.2f %8s %8.2f %6d %9d %8d %8d %8d", r.name, r.time, r.mbs and ("%.1f"):format(r.mbs) or "-",
       r.cpu, r.files or 0, r.d.api_calls + r.d.archive_requests, r.d.api_listing, r.d.archive_requests,
       r.d.delayed)
  end
  pr("(CPU s: the client's user + system time: this process for ours, the child for curl and Python)")
  pr("(curl gets the URL list for free: it is made and signed before its clock starts; a sequential " ..
     "listing of the album's %d pages takes %.2f s: curl with it %.1f MB/s)", (IMAGES + 99) // 100, listing_time,
     curl_listed)
  pr("(Python backs up the first %d images only, listing included, one request at a time: %.1f ms an image; " ..
     "compared by MB/s)", PY_IMAGES, py_per * 1000)
  pr("ours (jobs %d) / curl:                 %.2fx   (target >= 0.8)  %s", JOBS, r_curl, H.verdict(ok_curl))
  pr("ours (jobs %d) / curl with listing:    %.2fx", JOBS, r_curl_listed)
  pr("ours (jobs %d) / Python:               %.2fx   (target >= 5)    %s", JOBS, r_py, H.verdict(ok_py))
  pr("  (at most ~%.1fx with %d requests at once against one at a time: %d x %.1f ms per image / %d ms latency;" ..
     " curl --parallel-max %d / Python: %.2fx)", bound, JOBS, JOBS, py_per * 1000, LATENCY * 1000, JOBS, r_curl_py)
  pr("ours (jobs 8) / Python:               %.2fx   (target >= 5)    %s", r_py8, H.verdict(ok_py8))
  pr("the same files: ours %d, curl %d, Python %d (of %d); MD5 of %d sampled files as the API says  %s",
     ofiles, curl.files, pfiles, PY_IMAGES, checked, H.verdict(same))
  local d = rerun.d
  local ok_rerun = d.archive_bytes == 0 and d.archive_requests == 0 and d.api_other == 0 and rerun.bytes == 0
    and rerun.summary.skipped == IMAGES
  pr("re-run: %.2f s, %d archive bytes, %d archive requests, %d API calls: %d listing, %d other; " ..
     "%d skipped  %s", rerun.time, d.archive_bytes, d.archive_requests, d.api_calls, d.api_listing, d.api_other,
     rerun.summary.skipped, H.verdict(ok_rerun))
  -- (requests counts the /_sandbox/stats call too: it is never delayed)
  local function signed(r) return r.d.api_calls + r.d.archive_requests end
  local latency_ok = ours.d.delayed == signed(ours) and curl.d.delayed == signed(curl) and ours.d.archive_requests > 0
  pr("latency applied to every API call and archive download: ours %d of %d, curl %d of %d  %s", ours.d.delayed,
     signed(ours), curl.d.delayed, signed(curl), H.verdict(latency_ok))
  print(machine)

  local what = ("%d x 256 KB, 20 ms latency: MB/s"):format(IMAGES)
  record { bench = "backup", what = what .. " (jobs 4 vs curl, URL list free)", ours = ours.mbs,
           floor = curl.mbs, floor_name = "curl --parallel-max 4", ratio = r_curl, ratio_desc = "ours/curl",
           target = ">= 0.8", ok = ok_curl and same }
  record { bench = "backup", what = what .. " (jobs 4 vs curl + sequential listing)", ours = ours.mbs,
           floor = curl_listed, floor_name = "curl + listing", ratio = r_curl_listed,
           ratio_desc = "ours/(curl+listing)" }
  record { bench = "backup", what = what .. (" (jobs 4 vs Python on %d images)"):format(PY_IMAGES),
           ours = ours.mbs, alt = py.mbs, alt_name = "requests-oauthlib, sequential", ratio = r_py,
           ratio_desc = "ours/python", target = ">= 5", ok = ok_py and same }
  record { bench = "backup", what = what .. (" (curl, 4 at once, vs Python on %d images: the bound of 4 at once)")
             :format(PY_IMAGES), ours = curl.mbs, alt = py.mbs, alt_name = "requests-oauthlib, sequential",
           ratio = r_curl_py, ratio_desc = "curl/python" }
  record { bench = "backup", what = what .. (" (jobs 8 vs Python on %d images)"):format(PY_IMAGES),
           ours = ours8.mbs, alt = py.mbs, alt_name = "requests-oauthlib, sequential", ratio = r_py8,
           ratio_desc = "ours/python", target = ">= 5", ok = ok_py8 }
  record { bench = "backup", what = "re-run on the same folder: s (archive bytes)", ours = rerun.time,
           alt = d.archive_bytes, alt_name = "archive bytes", floor = d.api_listing,
           floor_name = "listing calls", target = "0 archive bytes, listing calls only", ok = ok_rerun }
  api:close()
  sb:stop()
end

-- ------------------------------------------------------------ video

local function video_part()
  local size = VIDEO_MB * 1024 * 1024
  local t0 = H.now()
  local sb = assert(launch.start { fixture = "video", video_size = size, archive_origin = true, timeout = 30 })
  H.on_cleanup(function() sb:stop() end)
  place(sb)
  local at, ats = sb:authorize()
  local dest = H.tmpdir()
  local cmd = ("BENCH_TOKEN=%s BENCH_TOKEN_SECRET=%s %s bench/support/backup_child.lua %s %s %s %s %s 1 AlbBigVideo")
    :format(H.q(at), H.q(ats), "lua5.4", H.q(sb.origin), H.q(sb.archive_origin), H.q(sb.key), H.q(sb.secret),
      H.q(dest))
  local out = H.run(cmd)
  local res = result_of(out, "backup_child.lua")
  local file = dest .. "/Big video/big.mp4"
  local on_disk = core.file_size(file)
  os.remove(file)
  local sb_kb = status_kb(sb.pid, "VmHWM")
  local total = H.now() - t0
  sb:stop()
  local peak_mb = res.vmhwm_kb / 1024
  local ok = res.ok == 1 and on_disk == size and peak_mb < 64
  pr("backup of one video of %d MiB (the sandbox's, generated and streamed; no latency) by a child process, " ..
     "jobs 1", VIDEO_MB)
  pr("  %s%.1f s, %.1f MB/s, saved %d, %d bytes downloaded, %s on disk, MD5 and size verified: %s",
     out:match("(FAILED[^\n]*\n)") or "", res.seconds, res.bytes / MB / res.seconds, res.saved, res.bytes,
     tostring(on_disk), res.ok == 1 and "yes" or "NO")
  pr("  peak memory (VmHWM): the backup process %.1f MB (target < 64)  %s; the sandbox process %.1f MB",
     peak_mb, H.verdict(ok), (sb_kb or 0) / 1024)
  pr("  (the whole part, the sandbox's MD5 of the video included: %.1f s; the file was removed)", total)
  record { bench = "backup", what = ("a %d MiB video: peak memory (VmHWM), MB"):format(VIDEO_MB), ours = peak_mb,
           alt = (sb_kb or 0) / 1024, alt_name = "the sandbox process", target = "< 64", ok = ok }
end

H.main(function()
  if parts.images then images_part() end
  if parts.video then video_part() end
end)
