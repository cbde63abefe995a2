-- bench/sign.lua -- signatures per second for a typical SmugMug API call, through
-- the public Lua API, side by side with the HMAC floor (bench/hmac_floor.c) and
-- python3-oauthlib's Client.sign, in one run. Prints the rates and the ratios.
-- usage: lua5.4 bench/sign.lua [seconds-per-contender]
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
package.path = "bench/?.lua;" .. package.path
local smugoauth = require "smugoauth"
local record = require("record").record

local SECONDS = tonumber(arg[1]) or 2
local URL = "https://api.smugmug.com/api/v2/user/cmac!albums?start=1&count=100&_expand=HighlightImage"
local creds = {
  consumer_key = "ck-bench-consumer-key", consumer_secret = "cs-bench-consumer-secret",
  token = "tk-bench-access-token", token_secret = "ts-bench-access-token-secret",
}

local function clock() return os.clock() end

-- Run fn in batches until SECONDS of CPU time have passed; returns calls/s.
local function rate(fn)
  local n, t0 = 0, clock()
  local t1
  repeat
    for _ = 1, 1000 do fn() end
    n = n + 1000
    t1 = clock()
  until t1 - t0 >= SECONDS
  return n / (t1 - t0)
end

local function run(cmd)
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  local ok = f:close()
  if not ok then error("failed: " .. cmd .. "\n" .. out) end
  local n, secs = out:match("(%d+)%s+([%d.]+)")
  return tonumber(n) / tonumber(secs)
end

local signer = smugoauth.core.signer(creds)
local opts = { method = "GET", url = URL }
for k, v in pairs(creds) do opts[k] = v end

local r_signer = rate(function() signer:authorization("GET", URL) end)
local r_sign = rate(function() smugoauth.sign(opts) end)

local base = smugoauth.sign(opts).base_string
local key = smugoauth.percent_encode(creds.consumer_secret) .. "&" ..
            smugoauth.percent_encode(creds.token_secret)
local floor = run(string.format("build/bench/hmac_floor '%s' '%s' %s", key, base, SECONDS))
local oauthlib = run(string.format("/usr/bin/python3 bench/oauthlib_sign.py '%s' %s", URL, SECONDS))

local function rss_kb()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4
end
collectgarbage("collect")
local kb0, rss0 = collectgarbage("count"), rss_kb()
local million = tonumber(os.getenv("SIGN_MILLION")) or 1000000
for _ = 1, million do signer:authorization("GET", URL) end
collectgarbage("collect")
local kb1, rss1 = collectgarbage("count"), rss_kb()

local function us(r) return 1e6 / r end
print(string.format("%-44s %12s %10s", "signing (GET " .. "user/cmac!albums, 3 params)", "sig/s", "us/sig"))
print(string.format("%-44s %12.0f %10.2f", "smugoauth Signer:authorization (session)", r_signer, us(r_signer)))
print(string.format("%-44s %12.0f %10.2f", "smugoauth.sign{} (full result table)", r_sign, us(r_sign)))
print(string.format("%-44s %12.0f %10.2f", "floor: C HMAC-SHA1+base64, keyed ctx reused", floor, us(floor)))
print(string.format("%-44s %12.0f %10.2f", "python3-oauthlib Client.sign", oauthlib, us(oauthlib)))
print(string.format("ratio smugoauth/oauthlib: %.0fx (target >= 100x); sign{}: %.0fx",
  r_signer / oauthlib, r_sign / oauthlib))
print(string.format("ratio floor/smugoauth: %.2fx (target <= 5x); sign{}: %.2fx",
  floor / r_signer, floor / r_sign))
print(string.format("memory over %d signatures: Lua heap %.0f KB -> %.0f KB, RSS %d KB -> %d KB",
  million, kb0, kb1, rss0, rss1))

record { bench = "sign", what = "signatures/s (Signer:authorization)", ours = r_signer, alt = oauthlib,
         alt_name = "python3-oauthlib", floor = floor, floor_name = "C HMAC-SHA1+base64",
         ratio = r_signer / oauthlib, ratio_desc = "ours/oauthlib", target = ">= 100",
         ok = r_signer / oauthlib >= 100 }
record { bench = "sign", what = "floor/ours", ours = r_signer, floor = floor,
         floor_name = "C HMAC-SHA1+base64", ratio = floor / r_signer, ratio_desc = "floor/ours",
         target = "<= 5", ok = floor / r_signer <= 5 }
record { bench = "sign", what = "signatures/s (sign{} full table)", ours = r_sign, alt = oauthlib,
         alt_name = "python3-oauthlib", ratio = r_sign / oauthlib, ratio_desc = "ours/oauthlib" }
record { bench = "sign", what = "Lua heap KB after 1e6 signatures", ours = kb1, alt = kb0,
         alt_name = "before", ratio = kb1 / kb0, ratio_desc = "after/before", target = "flat",
         ok = kb1 <= kb0 * 1.1 + 64 }
