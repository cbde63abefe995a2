-- bench/upload.lua -- upload throughput of one MB-sized file (random bytes,
-- made in a temp dir, removed after) to a local sink on the upload origin
-- (bench/support/fastserver.c: reads the raw body with 1 MiB reads, answers
-- 200 {"stat":"ok","Image":{...}}), on the other CPU, in one run:
--   ours   api:upload{album =, file =}   (Content-MD5 pass, then body_file streamed)
--   curl   curl --data-binary @file -H 'Content-Type: image/jpeg' URL   (the target)
-- and, to tell where our time goes: the Content-MD5 pass alone
-- (core.digest_file), the body streamed without it (api:request POST
-- body_file), and api:upload with an on_progress callback.
-- Each takes turns ROUNDS times; figures are medians (best in brackets).
-- Memory: VmHWM of this process (peak RSS), read before the first upload and
-- at the end. Targets: ours within 1.2x of curl; peak under 32 MB.
-- Exits 0 even when a target is missed (MISSED), 1 when it could not run.
-- usage: lua5.4 bench/upload.lua [megabytes [rounds]]
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local H = require "support.harness"
local record = require("record").record

local MB = tonumber(arg[1]) or 100
local ROUNDS = math.tointeger(tonumber(arg[2]) or 5)
local SIZE = math.floor(MB * 1048576)
local ALBUM = "/api/v2/album/bench"
local ANSWER = '{"stat":"ok","method":"smugmug.images.upload","Image":{"ImageUri":"/api/v2/image/x-0",' ..
               '"AlbumImageUri":"/api/v2/album/bench/image/x-0","StatusImageReplaceUri":"","URL":""}}'

H.main(function()
  H.pin_self()
  local srv = H.server { body = ANSWER }
  local dir = H.tmpdir()
  local file = dir .. "/bench-upload.jpg"
  local known_md5
  H.run(("head -c %d /dev/urandom > %s"):format(SIZE, H.q(file)))
  local client = smugoauth.new { key = "ck-bench-consumer-key", secret = "cs-bench-consumer-secret",
                                 api_origin = srv.origin, upload_origin = srv.origin, retry = false }
  local api = client:session("tk-bench-access-token", "ts-bench-access-token-secret")
  H.on_cleanup(function() api:close() end)
  -- connect once with a small upload (from memory), outside the clock and before the baseline
  assert(api:upload { album = ALBUM, data = ("x"):rep(1000), filename = "warm.jpg" })
  collectgarbage("collect")
  local hwm0, rss0 = H.status_kb("VmHWM"), H.status_kb("VmRSS")

  local has_time = os.execute("test -x /usr/bin/time") == true
  local curl_peak_kb = 0
  local function sent_whole(s0)
    local s1 = srv:stats()
    if s1.body_bytes - s0.body_bytes ~= SIZE then
      error(("the sink got %d bytes, not %d"):format(s1.body_bytes - s0.body_bytes, SIZE))
    end
  end
  local function check_upload(res, err)
    if not res then error(tostring(err)) end
    local j = res:json()
    if not (j and j.Image and j.Image.ImageUri) then error("no Image.ImageUri in the answer: " .. res.body) end
  end

  local contenders = {
    { key = "ours", name = "smugoauth api:upload{file =}", run = function()
      check_upload(api:upload { album = ALBUM, file = file })
    end },
    { key = "curl", name = "curl --data-binary @file (target)", run = function()
      local cmd = ("curl -s -o /dev/null -w '%%{http_code}' --data-binary @%s -H 'Content-Type: image/jpeg' %s")
        :format(H.q(file), H.q(srv.origin .. "/"))
      if has_time then cmd = "/usr/bin/time -f 'maxrss %M' " .. cmd end
      local out = H.run(cmd)
      if not out:find("^200") then error("curl upload failed: " .. out) end
      curl_peak_kb = math.max(curl_peak_kb, tonumber(out:match("maxrss (%d+)")) or 0)
    end },
    { key = "curlmd5", name = "openssl md5 + curl -H Content-MD5 (same upload)", run = function()
      local cmd = ("curl -s -o /dev/null -w '%%{http_code}' --data-binary @%s -H 'Content-Type: image/jpeg' " ..
        "-H \"Content-MD5: $(openssl dgst -md5 -binary %s | base64)\" %s"):format(H.q(file), H.q(file),
        H.q(srv.origin .. "/"))
      local out = H.run(cmd)
      if not out:find("^200") then error("curl upload failed: " .. out) end
    end },
    { key = "md5", name = "  of ours: Content-MD5 pass (digest_file)", nobody = true, run = function()
      assert(smugoauth.core.digest_file("md5", file))
    end },
    { key = "raw", name = "  of ours: body_file POST, no MD5 (request)", run = function()
      local res, err = api:request { method = "POST", origin = client.upload_origin, path = "/",
                                     body_file = file, content_type = "image/jpeg" }
      check_upload(res, err)
    end },
    { key = "known", name = "smugoauth api:upload{file =, md5 = known}", run = function()
      check_upload(api:upload { album = ALBUM, file = file, md5 = known_md5 })
    end },
    { key = "progress", name = "smugoauth api:upload{file =, on_progress =}", run = function()
      local calls, last = 0, 0
      check_upload(api:upload { album = ALBUM, file = file,
                                on_progress = function(sent) calls, last = calls + 1, sent end })
      if last ~= SIZE or calls < 2 then error("on_progress did not see the whole upload") end
    end },
  }
  known_md5 = smugoauth.core.b64encode((assert(smugoauth.core.digest_file("md5", file))))
  H.watch_machine(srv)
  for _, c in ipairs(contenders) do c.times = {} end
  for _ = 1, ROUNDS do
    for _, c in ipairs(contenders) do
      local s0 = srv:stats()
      local t0 = H.now()
      c.run()
      c.times[#c.times + 1] = H.now() - t0
      if not c.nobody then sent_whole(s0) end
    end
  end
  collectgarbage("collect")
  local hwm1, rss1 = H.status_kb("VmHWM"), H.status_kb("VmRSS")

  print(("upload of %g MB (%d bytes) to a local sink, %s, %d rounds"):format(MB, SIZE, H.layout(), ROUNDS))
  print(("%-46s %9s %9s %9s"):format("", "MB/s", "seconds", "(best)"))
  local med = {}
  for _, c in ipairs(contenders) do
    local m, best = H.median(c.times), math.min(table.unpack(c.times))
    med[c.key] = m
    print(("%-46s %9.0f %9.3f %9.3f"):format(c.name, MB / m, m, best))
  end
  local r = H.round2(med.ours / med.curl)              -- judged as printed
  print(("ratio ours/curl: %.2fx (target <= 1.2x)  %s"):format(r, H.verdict(r <= 1.2)))
  print(("memory (VmHWM, peak RSS of this process): %.1f MB before the first upload, %.1f MB at the end " ..
    "(+%.1f MB; VmRSS %.1f -> %.1f MB); target < 32 MB  %s"):format(hwm0 / 1024, hwm1 / 1024,
    (hwm1 - hwm0) / 1024, rss0 / 1024, rss1 / 1024, H.verdict(hwm1 < 32 * 1024)))
  if curl_peak_kb > 0 then
    print(("  (curl's own peak RSS: %.1f MB -- --data-binary @file reads the file into memory)")
      :format(curl_peak_kb / 1024))
  end
  print(H.machine_note())
  record { bench = "upload", what = ("%g MB upload: MB/s"):format(MB), ours = MB / med.ours, alt = MB / med.curl,
           alt_name = "curl --data-binary @file", ratio = r, ratio_desc = "ours/curl (time)", target = "<= 1.2",
           ok = r <= 1.2 }
  local rm = H.round2(med.ours / med.curlmd5)
  print(("ratio ours/(openssl md5 + curl, the same upload with Content-MD5): %.2fx (target <= 1.2x)  %s")
    :format(rm, H.verdict(rm <= 1.2)))
  record { bench = "upload", what = ("%g MB upload vs curl with Content-MD5: MB/s"):format(MB), ours = MB / med.ours,
           alt = MB / med.curlmd5, alt_name = "openssl md5 + curl", ratio = rm,
           ratio_desc = "ours/(md5+curl) (time)", target = "<= 1.2", ok = rm <= 1.2 }
  local rk = H.round2(med.known / med.curl)
  print(("ratio ours (md5 known, no hashing pass)/curl: %.2fx (target <= 1.2x)  %s"):format(rk, H.verdict(rk <= 1.2)))
  record { bench = "upload", what = ("%g MB upload, MD5 known: MB/s"):format(MB), ours = MB / med.known,
           alt = MB / med.curl, alt_name = "curl --data-binary @file", ratio = rk,
           ratio_desc = "ours/curl (time)", target = "<= 1.2", ok = rk <= 1.2 }
  record { bench = "upload", what = "peak RSS MB (VmHWM) during upload", ours = hwm1 / 1024, alt = hwm0 / 1024,
           alt_name = "before", target = "< 32", ok = hwm1 < 32 * 1024 }
end)
