-- download_child.lua -- one download in a process of its own, for the
-- download specs (peak memory; kill -9 in the middle):
--   lua5.4 spec/support/download_child.lua ORIGIN WHAT PATH [memory]
-- WHAT: an URL or an API URI for api:download (signed with support.archive's
-- credentials for ORIGIN). With "memory", the file is read into memory by
-- api:request instead (the way a download went before response sinks), for
-- comparison. Prints "HWM <kB>" (the peak resident size so far) before and
-- after, then "DONE <size> <md5 hex> <written>" or "ERR <code> <message>".
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local archive = require "support.archive"

local origin, what, path, mode = arg[1], arg[2], arg[3], arg[4]

local function hwm()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+) kB"))
end

local c = smugoauth.new { key = archive.KEY, secret = archive.SECRET, api_origin = origin,
                          oauth_origin = origin, upload_origin = origin, max_body = 256 * 1024 * 1024 }
local api = c:session(archive.TOKEN, archive.TOKEN_SECRET)
collectgarbage()
io.stdout:write("HWM ", hwm(), "\n")
io.stdout:flush()
local size, md5, written, err
if mode == "memory" then
  local res, rerr = api:request { url = what, headers = { Accept = "*/*" } }
  if res then
    size, md5, written = #res.body, archive.hex(smugoauth.core.digest("md5", res.body)), #res.body
  end
  err = rerr
else
  local r, derr = api:download(what, path)
  if r then size, md5, written = r.size, r.md5, r.written end
  err = derr
end
io.stdout:write("HWM ", hwm(), "\n")
if size then
  io.stdout:write(("DONE %d %s %d\n"):format(size, md5, written))
else
  io.stdout:write(("ERR %s %s\n"):format(err.code, tostring(err)))
end
io.stdout:flush()
