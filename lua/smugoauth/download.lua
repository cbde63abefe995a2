--- Downloads: `api:download(image_or_uri, path [, opts])` of a session.
-- A photo's original, a video's largest rendition, or any URL under the
-- client's download origins, streamed to disk in constant memory whatever
-- its size: into `path .. ".part"`, resumed with `Range` when a .part is
-- already there, checked against the MD5 and size the API reported, then
-- made durable under `path` (fsync, rename, fsync of the directory). Or
-- streamed to a file handle or a callback instead.
--
-- The request is signed like every API call (private originals answer 401
-- otherwise), and only for the client's `download_origins`: a URL anywhere
-- else fails with code "config" before anything is sent. A connection that
-- drops mid-body is tried again by the retry policy (smugoauth.retry: a GET
-- is idempotent), continuing from the bytes already saved; inside a task of
-- a smugoauth.loop the download yields like every request.
-- @module smugoauth.download
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local request = require "smugoauth.request"
local retry = require "smugoauth.retry"
local util = require "smugoauth.util"

--- Tries in all, however much each makes progress (a try that saves bytes
-- does not count against the policy's attempts: see `download`).
local MAX_TRIES = 100

--- The options of `api:download`, declared once: name, type, what it does.
local OPTIONS = {
  { "to", "userdata", doc = "an io file handle written instead of path (no .part, no rename, " ..
    "no resume: a try that failed after a byte was written is not tried again)" },
  { "on_data", "function", doc = "function(chunk) called with the body instead of writing a " ..
    "file (as for `to`; it must not yield)" },
  { "md5", "string", doc = "the expected MD5, 32 hex digits, instead of the one the image says" },
  { "size", "number", doc = "the expected size in bytes, instead of the one the image says" },
  { "mtime", "number", doc = "seconds since the epoch: the saved file's modification time" },
  { "on_progress", "function", doc = "function(received, total): bytes of the file so far " ..
    "(resumed ones included) and its size (nil when unknown); it must not yield" },
  { "timeout", "number", doc = "seconds for each request; default none: the client's timeout " ..
    "then bounds a stall (no byte for that long), not the whole download" },
  { "retry", "table boolean", doc = "the retry policy (smugoauth.retry) instead of the session's" },
  { "sync_dir", "boolean", doc = "default true: fsync the folder after the rename, so that the new " ..
    "name survives a power cut; false saves that (for many files at once: after a power cut the " ..
    "file may be found whole under its .part name, which the next download of it verifies and renames)" },
}
local TYPES = util.option_types(OPTIONS)

-- Raw bytes as lower-case hex.
local function hex(raw)
  return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Is v 32 hex digits?
local function is_md5(v)
  return type(v) == "string" and #v == 32 and v:match("^%x+$") ~= nil
end

-- ------------------------------------------------------------ what to fetch

-- The error for a video that has no file to download yet.
local function processing(image)
  local key = type(image) == "table" and image.ImageKey
  return nil, errors.new("processing", ("the video %s is still being processed by SmugMug: " ..
    "nothing to download yet"):format(type(key) == "string" and key or "(no ImageKey)"))
end

-- Response[kind] of the JSON answer to GET uri (the first of kinds found).
local function api_object(session, uri, kinds)
  local res, err = session:get(uri)
  if not res then return nil, err end
  local body, jerr = res:json()
  if not body then return nil, jerr end
  local resp = type(body) == "table" and body.Response
  for _, kind in ipairs(kinds) do
    if type(resp) == "table" and type(resp[kind]) == "table" then return resp[kind] end
  end
  return nil, errors.new("api", ("GET %s: no %s in the answer"):format(errors.safe_url(uri),
    table.concat(kinds, " or ")), { status = res.status, body = res.body })
end

-- The largest rendition of a video image: { url, md5, size } or nil, err.
local function video_target(session, image)
  if image.Processing == true then return processing(image) end
  local uris = type(image.Uris) == "table" and image.Uris
  local lv = uris and type(uris.LargestVideo) == "table" and uris.LargestVideo.Uri
  if type(lv) ~= "string" then
    if type(image.ImageKey) ~= "string" then
      return nil, errors.new("api", "the video has neither Uris.LargestVideo nor an ImageKey")
    end
    lv = "/api/v2/image/" .. image.ImageKey .. "-0!largestvideo"
  end
  local v, err = api_object(session, lv, { "LargestVideo" })
  if not v then
    if err.status == 404 then return processing(image) end   -- not rendered yet
    return nil, err
  end
  if type(v.Url) ~= "string" then return processing(image) end
  return { url = v.Url, md5 = v.MD5, size = v.Size }
end

--- What `what` (as `download` takes it) points at: `download.target(session,
-- what)` -> { url, md5, size } (md5 and size as the API said them, maybe
-- nil), or nil, err (code "processing" for a video not ready yet). For a
-- video it fetches !largestvideo: a backup verifies a file it finds against
-- that MD5 before deciding to download.
local function target_of(session, what)
  if type(what) == "string" then
    if what:match("^https?://") then return { url = what } end
    local obj, err = api_object(session, what, { "Image", "AlbumImage", "LargestVideo" })
    if not obj then return nil, err end
    what = obj
  end
  if type(what.Url) == "string" then return { url = what.Url, md5 = what.MD5, size = what.Size } end
  if what.IsVideo == true then return video_target(session, what) end
  if type(what.ArchivedUri) == "string" then
    return { url = what.ArchivedUri, md5 = what.ArchivedMD5, size = what.ArchivedSize }
  end
  return nil, errors.new("api", "the image has no ArchivedUri (and is not a video)")
end

-- The expected MD5 (lower-case hex) and size, from opts or from the API's
-- values in t; or nil, nil, err when the API's are not an MD5 and a size.
local function expected(t, opts)
  local md5, size = opts.md5, opts.size
  if md5 then
    md5 = md5:lower()
  elseif t.md5 ~= nil then
    if not is_md5(t.md5) then return nil, nil, errors.new("api", "the MD5 the API reported is not 32 hex digits") end
    md5 = t.md5:lower()
  end
  if size == nil and t.size ~= nil then
    size = math.tointeger(tonumber(t.size))
    if not size or size < 0 then return nil, nil, errors.new("api", "the size the API reported is not a byte count") end
  end
  return md5, size
end

-- ------------------------------------------------------------ the file

-- The durable end of a download: part renamed to path (synced: part was
-- fsync'd already; then with sync_dir false a plain rename, the folder not
-- fsync'd), then its mtime set. true, or nil, err (code "io").
local function save(part, path, synced, mtime, sync_dir)
  local ok, msg
  if synced and sync_dir == false then
    ok, msg = os.rename(part, path)
  else
    ok, msg = core.commit(part, path, synced)
  end
  if not ok then return nil, errors.new("io", "download: " .. tostring(msg), { path = path }) end
  if mtime then
    ok, msg = core.set_mtime(path, mtime)
    if not ok then return nil, errors.new("io", "download: " .. tostring(msg), { path = path }) end
  end
  return true
end

-- Remove part when it is empty (a refused request leaves nothing to resume).
local function drop_empty(part)
  if part and core.file_size(part) == 0 then os.remove(part) end
end

-- The checksum error (the .part, if any, already removed).
local function mismatch(url, path, md5, size, got_md5, got_size)
  local what = (md5 and got_md5 ~= md5) and ("MD5 %s, not the %s reported"):format(got_md5, md5)
    or ("%d bytes, not the %d reported"):format(got_size or -1, size or -1)
  return nil, errors.new("checksum", ("download of %s: got %s (%s)"):format(errors.safe_url(url), what,
    path and "the .part was removed" or "the bytes were delivered already"),
    { url = errors.safe_url(url), path = path, expected_md5 = md5, md5 = got_md5,
      expected_size = size, size = got_size })
end

-- A .part that holds the whole file already (a run stopped between the
-- last byte and the rename): the result when its bytes are right, or nil
-- (it was removed: start over), or nil, err (the rename failed).
local function complete_part(part, path, md5, size, mtime)
  local raw, n = core.digest_file("md5", part)
  if raw and n == size and hex(raw) == md5 then
    local ok, err = save(part, path, false, mtime)
    if not ok then return nil, err end
    return { path = path, size = n, md5 = md5, written = 0, resumed = n, attempts = 0 }
  end
  os.remove(part)
  return nil
end

-- ------------------------------------------------------------ download

--- Download a file: `api:download(what, path [, opts])`, or
-- `api:download(what, {to = fh | on_data = fn, ...})`.
--   what   an image table from the API (an Image or AlbumImage: its
--          ArchivedUri, ArchivedMD5, ArchivedSize; for a video, IsVideo =
--          true, its !largestvideo is fetched and used), a LargestVideo
--          table (Url, MD5, Size), an API URI of an image ("/api/v2/image/
--          KEY-0": fetched first), or an absolute URL (nothing to check it
--          against unless opts.md5 / opts.size)
--   path   where the file goes (written as path .. ".part" first; an
--          existing path is replaced)
--   opts   see OPTIONS above
-- Returns { path, size, md5 (hex), written (bytes downloaded by this call),
-- resumed (bytes kept from an earlier .part), attempts (requests made),
-- status } or nil, err: code "checksum" (MD5 or size differ; the .part is
-- removed), "processing" (a video not ready yet), "config" (the URL is not
-- under the client's download_origins: nothing was sent), "io", and the
-- codes of any request. A .part that a failure leaves holds only bytes the
-- server sent, in order: the next call continues from there.
local function download(session, what, path, opts)
  if type(path) == "table" and opts == nil then path, opts = nil, path end
  opts = util.check_options("download", opts, TYPES, 2)
  if type(what) ~= "table" and (type(what) ~= "string" or not what:match("^https?://") and what:sub(1, 1) ~= "/") then
    error("download: an image table, an API URI or an http(s) URL expected", 2)
  end
  if (path ~= nil and 1 or 0) + (opts.to ~= nil and 1 or 0) + (opts.on_data ~= nil and 1 or 0) ~= 1 then
    error("download: give exactly one of path, opts.to and opts.on_data", 2)
  end
  if path ~= nil and (type(path) ~= "string" or path == "" or path:find("%z")) then
    error("download: path must be a non-empty string without NUL", 2)
  end
  if opts.to ~= nil and io.type(opts.to) ~= "file" then error("download: to must be an open io file handle", 2) end
  if opts.md5 ~= nil and not is_md5(opts.md5) then error("download: md5 must be 32 hex digits", 2) end
  if opts.size ~= nil and (not math.tointeger(opts.size) or opts.size < 0) then
    error("download: size must be an integer, 0 or more", 2)
  end
  if opts.mtime ~= nil and (not path or opts.mtime ~= opts.mtime or math.abs(opts.mtime) > 1e15) then
    error("download: mtime must be seconds, and needs a path", 2)
  end

  local t, err = target_of(session, what)
  if not t then return nil, err end
  if type(t.url) ~= "string" then return nil, errors.new("api", "the download URL is not a string") end
  local md5, size, eerr = expected(t, opts)
  if eerr then return nil, eerr end
  local origin, allowed = util.origin_of(t.url), false
  for _, o in ipairs(session.client.download_origins) do allowed = allowed or o == origin end
  if not allowed then
    return nil, errors.new("config", ("download: %s is not under one of the client's download_origins " ..
      "(%s): nothing was sent"):format(errors.safe_url(t.url), table.concat(session.client.download_origins, ", ")),
      { url = errors.safe_url(t.url) })
  end

  local o = { method = "GET", url = t.url, headers = { Accept = "*/*" }, digest = "md5",
              timeout = opts.timeout, retry = opts.retry }
  local part = path and path .. ".part"
  if part then o.out, o.sync = part, true
  elseif opts.to then o.out_file = opts.to
  else o.on_data = opts.on_data end
  if opts.on_progress then
    local fn = opts.on_progress
    o.on_progress = function(now, total) fn(now, size or (total > 0 and total or nil)) end
  end
  local p = request.prepare(session, o, "download", 2)
  local headers, policy = p.headers, p.policy

  local t0, attempt, tries, written, resumed = retry.clock(), 0, 0, 0, 0
  local restarts, fresh = 0, false                  -- fresh: ignore the .part (start over)
  while true do
    attempt, tries = attempt + 1, tries + 1
    local offset = 0
    if part and not fresh then
      local have = core.file_size(part)
      if have and size and md5 and have >= size then
        local done, cerr = complete_part(part, path, md5, size, opts.mtime)
        if done or cerr then return done, cerr end
      elseif have and (not size or have < size) then
        offset = have
      end
    end
    fresh = false
    p.creq.out_offset = offset > 0 and offset or nil
    if offset > 0 then
      p.headers = { ("Range: bytes=%d-"):format(offset) }
      for i = 1, #headers do p.headers[i + 1] = headers[i] end
    else
      p.headers = headers
    end
    local r = request.try(session, p)
    if not errors.is(r) then
      written = written + (r.written or 0)
      local resumed_now = r.status == 206 and offset or 0
      local got = r.md5 and hex(r.md5)
      if (md5 and got ~= md5) or (size and r.size ~= size) then
        if part then os.remove(part) end
        if resumed_now > 0 and restarts < 2 then     -- the kept bytes may be what is wrong
          restarts, fresh = restarts + 1, true
          goto continue
        end
        return mismatch(t.url, path, md5, size, got, r.size)
      end
      if resumed == 0 then resumed = resumed_now end
      if part then
        local ok, serr = save(part, path, true, opts.mtime, opts.sync_dir)
        if not ok then return nil, serr end
      end
      return { path = path, size = r.size, md5 = got, written = written, resumed = resumed,
               attempts = tries, status = r.status }
    end
    r.attempts = tries
    r.path = path
    written = written + (r.written or 0)
    if part and offset > 0 and (r.code == "range" or r.status == 416) and restarts < 2 then
      -- the server cannot continue where the .part ends: start over, at once
      os.remove(part)
      restarts, fresh = restarts + 1, true
      goto continue
    end
    if (r.written or 0) > 0 then
      if not part then return nil, r end           -- bytes a handle or callback got stay theirs
      attempt, t0 = 1, retry.clock()               -- progress: a new run of tries
    end
    if tries >= MAX_TRIES or not policy:again("GET", r, attempt) then
      drop_empty(part)
      return nil, r
    end
    do
      local d = policy:delay(r, attempt)
      if not policy:within(t0, d) then
        drop_empty(part)
        return nil, r
      end
      session.trace:note(("download: retrying in %.2f s (try %d)"):format(d, tries + 1))
      local pause = session.client._paused_until
      if not policy:wait(d) then                   -- cancelled meanwhile
        drop_empty(part)
        return nil, r
      end
      p.pause_waited = pause                       -- (a pause that was on is over for it)
    end
    ::continue::
  end
end

return {
  download = download,
  target = target_of,
  OPTIONS = OPTIONS,
  MAX_TRIES = MAX_TRIES,
}
