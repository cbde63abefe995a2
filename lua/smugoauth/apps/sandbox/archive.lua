--- smugoauth.apps.sandbox.archive: the sandbox's archive downloads, as
-- SmugMug's archive hosts serve originals (spec/support/archive_server.py
-- behaves the same way):
--
--   GET|HEAD /_archive/IMG           the original (ArchivedUri)
--   GET|HEAD /_archive/IMG/largest   a video's largest rendition (LargestVideo.Url;
--                                    404 while it is processing)
--
-- Served on the sandbox's own origin, or, with the option `archive_origin`,
-- only on a second listener of the same loop (standing in for
-- photos.smugmug.com). Each request must be signed like an API call (OAuth
-- 1.0a with the access token, for this very URL): 401 otherwise. `Range:
-- bytes=N-` and `bytes=N-M` are honoured (206 with Content-Range; 416 with
-- `Content-Range: bytes */SIZE` from past the end); any other Range is
-- ignored (200). The body is streamed in 64 KiB pieces with its
-- Content-Length, whatever its size. The switches of smugoauth.apps.sandbox.faults
-- apply: the storms (scope archive or all), drop_after/drop_count, rate,
-- ignore_range, bad_range; and the counters (archive_*, downloads_*).
-- @module smugoauth.apps.sandbox.archive
local core = require "smugoauth.core"
local loop = require "smugoauth.loop"
local oauth = require "smugoauth.apps.sandbox.oauth"
local faults = require "smugoauth.apps.sandbox.faults"
local images = require "smugoauth.apps.sandbox.images"
local reply = require "smugoauth.apps.sandbox.reply"

local M = {}

-- The body: the pieces of open(first, last), counted, cut after `drop`
-- bytes (then the connection closes), paced at `rate` bytes a second.
local function source(self, open, first, last, status, drop, rate)
  local stats = self.stats
  local iter, rest, sent, t0
  return function()
    if not iter then
      iter, sent, t0 = open(first, last), 0, core.monotime()
      stats.downloads_started = stats.downloads_started + 1
      if status == 206 then stats.downloads_ranged = stats.downloads_ranged + 1 end
    end
    if drop and sent >= drop then
      stats.downloads_dropped = stats.downloads_dropped + 1
      return nil
    end
    local p = rest or iter()
    rest = nil
    if not p then
      stats.downloads_completed = stats.downloads_completed + 1
      return nil
    end
    local most = drop and drop - sent or #p
    if rate then most = math.min(most, math.max(1024, math.floor(rate / 20))) end
    if #p > most then p, rest = p:sub(1, most), p:sub(most + 1) end
    if rate then
      local ahead = (sent + #p) / rate - (core.monotime() - t0)
      if ahead > 0 and not loop.sleep(ahead) then return nil end   -- the client has gone
    end
    sent = sent + #p
    stats.archive_bytes = stats.archive_bytes + #p
    return p
  end
end

--- Answer a request under /_archive/ (see the module comment).
-- @param self the sandbox
-- @param req
function M.serve(self, req)
  local stats, mode = self.stats, self.mode
  stats.archive_requests = stats.archive_requests + 1
  local key, which = req.path:match("^/_archive/(%w+)/?(%w*)$")
  if not key then return reply.api_error(404, "Not Found") end
  if req.method ~= "GET" and req.method ~= "HEAD" then return reply.api_error(405, "Method Not Allowed") end
  local st, h, b = faults.storm(self, "archive")
  if st then return st, h, b end
  local o, refused = oauth.verify(self, req, "access")
  if not o then
    stats.archive_refused = stats.archive_refused + 1
    local _, hdrs, body = table.unpack(refused)
    return 401, hdrs, body
  end
  local size, open = images.file(self, key, which ~= "" and which or nil)
  if not size then return reply.api_error(404, "Not Found") end
  local first, last, status = 0, size - 1, 200
  local a, z = (req.headers.range or ""):match("^%s*bytes%s*=%s*(%d+)%s*%-%s*(%d*)%s*$")
  a, z = math.tointeger(tonumber(a)), math.tointeger(tonumber(z))
  if a and not mode.ignore_range and not (z and z < a) then
    if a >= size then
      return 416, { ["Content-Range"] = "bytes */" .. size, ["Content-Type"] = "text/plain" }, ""
    end
    first, last, status = a, z and math.min(z, size - 1) or size - 1, 206
    if mode.bad_range then first = 0 end
  end
  local headers = { ["Content-Type"] = "application/octet-stream", ["Accept-Ranges"] = "bytes",
                    ["Content-Length"] = math.max(0, last - first + 1) }
  if status == 206 then headers["Content-Range"] = ("bytes %d-%d/%d"):format(first, last, size) end
  local drop = req.method == "GET" and faults.take_drop(self) or nil
  return status, headers, source(self, open, first, last, status, drop, mode.rate)
end

return M
