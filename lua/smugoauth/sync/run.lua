--- The uploads of a sync as tasks of the loop: at most `jobs` at a time,
-- each recorded in the manifest before it is sent (pending) and when
-- SmugMug has it (done, with its image key), one transaction each.
-- @module smugoauth.sync.run
local errors = require "smugoauth.errors"
local loop = require "smugoauth.loop"

-- Failures after which no other upload is started: every one would fail
-- the same way (the token, the config, TLS).
local STOP = { oauth = true, config = true, tls = true }

--- The image key of an upload's answer (Image.ImageUri
-- "/api/v2/image/KEY-0"), or nil.
local function image_key(res)
  local body = res:json()
  local img = type(body) == "table" and type(body.Image) == "table" and body.Image or {}
  local uri = img.ImageUri
  if type(uri) ~= "string" then return nil end
  local key = uri:match("^/api/v2/image/([%w_]+)%-%d+$") or uri:match("^/api/v2/image/([%w_]+)$")
  if not key then
    local s = uri:match("/image/([%w%-_]+)$")
    key = s and (s:gsub("%-%d+$", ""))
  end
  return key
end

--- Run the uploads: `run.uploads(session, items, st)`.
--   items  an array of {file, album (its key and uri), row, forget}
--   st     the run's state: manifest, jobs, timeout, retry (the upload's
--          retry policy), emit (function(event)), summary (counts and the
--          failures array, updated here)
-- Call from a task of a loop (it yields). Returns when every upload has
-- ended; raises what a worker raised (a bug, or an on_event that raised).
local function uploads(session, items, st)
  local m, s, emit = st.manifest, st.summary, st.emit
  local stop                                   -- the error that stopped the run
  local function fail(f, err)
    s.failed = s.failed + 1
    s.failures[#s.failures + 1] = { path = f.rel, code = err.code, message = tostring(err.message or err),
                                    status = err.status }
    emit { type = "failed", path = f.rel, size = f.size, code = err.code, message = err.message, err = err }
  end
  local function one(it)
    local f, album = it.file, it.album
    if stop then
      s.not_tried = s.not_tried + 1
      fail(f, errors.new(stop.code, "not tried: " .. tostring(stop.message), { status = stop.status }))
      return
    end
    -- the FileName sent: no control character (a header cannot carry CR or
    -- LF; the file is matched by MD5 anyway, and adopted by this name)
    local name = f.name:gsub("%c", "_")
    local ok, err = true, nil
    if it.forget then ok, err = m:forget(f.md5, album.key) end
    if ok then ok, err = m:pending(f.md5, album.key, f.rel, name, f.size) end
    if not ok then
      stop = stop or err
      return fail(f, err)
    end
    emit { type = "start", path = f.rel, size = f.size, album = album.key }
    local res
    res, err = session:upload { album = album.uri, file = f.path, md5 = f.md5, filename = name,
      timeout = st.timeout, retry = st.retry, fresh = true,
      on_progress = function(sent, total) emit { type = "progress", path = f.rel, sent = sent, total = total } end }
    if not res then
      if STOP[err.code] or (err.code == "http" and err.status == 401) then stop = stop or err end
      return fail(f, err)
    end
    local key = image_key(res)
    if key then
      ok, err = m:done(f.md5, album.key, key, f.rel, name, res.size or f.size)
      if not ok then stop = stop or err end
    end
    s.uploaded = s.uploaded + 1
    s.uploaded_bytes = s.uploaded_bytes + (res.size or f.size)
    emit { type = "done", path = f.rel, size = res.size or f.size, key = key, album = album.key }
  end
  -- `jobs` workers take the next item: no task per file waiting its turn
  local next_i, n = 1, #items
  local function worker()
    while next_i <= n do
      local it = items[next_i]
      next_i = next_i + 1
      one(it)
    end
  end
  local lp, workers = loop.current(), {}
  for w = 1, math.min(st.jobs, n) do workers[w] = lp:spawn(worker) end
  for _, t in ipairs(workers) do
    local ok, err = t:join()
    if not ok then error(err, 0) end
  end
  if stop and not s.stopped then
    s.stopped = { code = stop.code, message = tostring(stop.message or stop), status = stop.status }
  end
end

return {
  uploads = uploads,
  image_key = image_key,
  STOP = STOP,
}
