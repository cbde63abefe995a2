--- smugoauth.backup.apply: a backup acting on one image, on disk and in its
-- manifest, as smugoauth.backup.plan decides just before: a move (a rename),
-- a copy (from the file of another album), or a fetch (a file already under
-- its name verified by MD5 and adopted; else downloaded through
-- `api:download`: .part, Range resume, MD5 and size checked, fsync,
-- rename, mtime). Each finished file is one transaction of the manifest. A
-- file of another image that stands where this one goes is first moved
-- aside (into `.smugoauth/displaced/`), so that nothing saved is lost to a
-- rename or a swap of names, whatever order the jobs run in.
-- @module smugoauth.backup.apply
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local download = require "smugoauth.download"
local names = require "smugoauth.backup.names"
local plan = require "smugoauth.backup.plan"

local file_size = core.file_size

-- Raw bytes as lower-case hex.
local function hex(raw)
  return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- The folder part of a relative path ("" at the top).
local function parent(path)
  return path:match("^(.*)/[^/]*$") or ""
end

-- Make the folder dir (relative) under the destination (once per run).
local function make_dir(ctx, dir)
  if dir == "" or ctx.dirs[dir] then return true end
  local ok, msg = core.mkdir_private(ctx.dest .. "/" .. dir)
  if not ok then return nil, errors.new("io", tostring(msg), { path = dir }) end
  ctx.dirs[dir] = true
  return true
end

-- Make the folder of relative path p under the destination.
local function make_parent(ctx, p)
  return make_dir(ctx, parent(p))
end

-- Count and announce a finished image.
local function done(ctx, action, img, size, extra)
  ctx.stats[action] = ctx.stats[action] + 1
  local ev = { type = "done", action = action, path = img.path, size = size, key = img.ImageKey }
  for k, v in pairs(extra or {}) do ev[k] = v end
  ctx.emit(ev)
end

-- Record and announce an image that could not be saved; an OAuth refusal
-- stops the run (every other request would be refused too).
local function failed(ctx, album, img, err)
  ctx.stats.failed = ctx.stats.failed + 1
  local f = { album = album.key, key = img.ImageKey, path = img.path, code = err.code, message = err.message,
              status = err.status }
  ctx.failures[#ctx.failures + 1] = f
  ctx.m:fail(album.key, img.ImageKey, img.path, err.code, err.message)
  ctx.emit { type = "failed", path = img.path, key = img.ImageKey, code = err.code, message = err.message }
  if err.code == "oauth" and not ctx.stop then ctx.stop = err end
end

-- Move aside the file of another image that stands at path (its row then
-- says where it went), or forget that row when its file is not there.
local function make_room(ctx, path, album_key, key)
  local owner = ctx.m:owner(path)
  if not owner or (owner.album == album_key and owner.key == key) then return true end
  local from = ctx.dest .. "/" .. owner.path
  if not file_size(from) then return ctx.m:remove(owner.album, owner.key) end
  local aside = names.OWN .. "/displaced/" .. (names.sanitize(owner.album, "dir") or "_") .. "-" ..
                (names.sanitize(owner.key, "dir") or "_")
  local ok, err = make_parent(ctx, aside)
  if not ok then return nil, err end
  local rok, msg = os.rename(from, ctx.dest .. "/" .. aside)
  if not rok then return nil, errors.new("io", "cannot move " .. owner.path .. " aside: " .. tostring(msg)) end
  return ctx.m:set_path(owner.album, owner.key, aside)
end

-- After (album, key) was saved under img.path: remove the file its row
-- named before (an older version, elsewhere), which no other row names.
local function drop_old(ctx, before, img)
  if before and before.path ~= img.path and names.fold(before.path) ~= names.fold(img.path) then
    local o = ctx.m:owner(before.path)
    if not o then os.remove(ctx.dest .. "/" .. before.path) end
  end
end

-- The manifest row of a saved file.
local function row_of(album, img, md5, size)
  return { album = album.key, key = img.ImageKey, path = img.path, md5 = md5, size = size,
           src = plan.fingerprint(img), last_updated = img.LastUpdated }
end

-- Rename the file of row to img.path.
local function move(ctx, album, img, row)
  local ok, err = make_parent(ctx, img.path)
  if ok then
    local rok, msg = os.rename(ctx.dest .. "/" .. row.path, ctx.dest .. "/" .. img.path)
    if not rok then err = errors.new("io", "cannot move " .. row.path .. ": " .. tostring(msg)) end
    ok = rok
  end
  if ok then
    local r = row_of(album, img, row.md5, row.size)
    r.src = row.src
    ok, err = ctx.m:save(r, row.album ~= album.key and row or nil)
  end
  if not ok then return failed(ctx, album, img, err) end
  done(ctx, "moved", img, row.size, { from = row.path })
end

-- Copy the file of row (another album's) to img.path, checked by MD5.
local function copy(ctx, album, img, row)
  local ok, err = make_parent(ctx, img.path)
  if not ok then return failed(ctx, album, img, err) end
  local to = ctx.dest .. "/" .. img.path
  local part = to .. ".part"
  local src, dst = io.open(ctx.dest .. "/" .. row.path, "rb"), io.open(part, "wb")
  if src and dst then
    while true do
      local chunk = src:read(1 << 20)
      if not chunk then break end
      dst:write(chunk)
    end
  end
  if src then src:close() end
  if dst then dst:close() end
  local raw = src and dst and core.digest_file("md5", part)
  if not raw or hex(raw) ~= row.md5 then
    os.remove(part)
    return failed(ctx, album, img, errors.new("io", "cannot copy " .. row.path))
  end
  local cok, msg = core.commit(part, to)
  if cok and plan.mtime(img) then core.set_mtime(to, plan.mtime(img)) end
  if not cok then return failed(ctx, album, img, errors.new("io", tostring(msg))) end
  ok, err = ctx.m:save(row_of(album, img, row.md5, row.size))
  if not ok then return failed(ctx, album, img, err) end
  done(ctx, "copied", img, row.size, { from = row.path })
end

-- Verify a file already under img.path against md5 (and size): adopt it.
local function adopt(ctx, album, img, md5, size)
  local p = ctx.dest .. "/" .. img.path
  local have = file_size(p)
  if not have or not md5 or (size and have ~= size) then return false end
  local raw = core.digest_file("md5", p)
  if not raw or hex(raw) ~= md5 then return false end
  if plan.mtime(img) then core.set_mtime(p, plan.mtime(img)) end
  local before = ctx.m:get(album.key, img.ImageKey)
  local ok, err = ctx.m:save(row_of(album, img, md5, have))
  if not ok then failed(ctx, album, img, err) return true end
  drop_old(ctx, before, img)
  done(ctx, "adopted", img, have)
  return true
end

-- Download img to img.path (verifying and adopting a file already there).
local function fetch(ctx, album, img)
  local session = ctx.session
  local what, md5, size = img, nil, math.tointeger(img.ArchivedSize)
  if type(img.ArchivedMD5) == "string" then md5 = img.ArchivedMD5:lower() end
  if img.IsVideo == true then                  -- its largest rendition, not the original upload
    local t, err = download.target(session, img)
    if not t then return failed(ctx, album, img, err) end
    what = { Url = t.url, MD5 = t.md5, Size = t.size }
    md5 = type(t.md5) == "string" and t.md5:lower() or nil
    size = math.tointeger(tonumber(t.size))
  end
  if adopt(ctx, album, img, md5, size) then return end
  local ok, err = make_parent(ctx, img.path)
  if not ok then return failed(ctx, album, img, err) end
  ctx.m:part(img.path)
  ctx.emit { type = "start", path = img.path, size = size, key = img.ImageKey }
  local on_progress
  if ctx.progress then
    local path = img.path
    on_progress = function(got, total) ctx.emit { type = "progress", path = path, got = got, total = total } end
  end
  -- (the folder is not fsync'd after each rename: see download's sync_dir)
  local res, derr = session:download(what, ctx.dest .. "/" .. img.path, { mtime = plan.mtime(img),
    on_progress = on_progress, sync_dir = false })
  if not res then
    ctx.stats.bytes = ctx.stats.bytes + (derr.written or 0)
    return failed(ctx, album, img, derr)
  end
  ctx.stats.bytes = ctx.stats.bytes + res.written
  local before = ctx.m:get(album.key, img.ImageKey)     -- (as it is now: it may have been moved aside)
  ok, err = ctx.m:save(row_of(album, img, res.md5, res.size))
  if not ok then return failed(ctx, album, img, err) end
  drop_old(ctx, before, img)
  done(ctx, "saved", img, res.size, { bytes = res.written, resumed = res.resumed })
end

--- Act on image img of album (img.path set): `apply.image(ctx, album, img
-- [, fetch])`. ctx: the run's state (see smugoauth.backup.run): m, dest,
-- session, stats, failures, deferred, dirs, emit, progress, dry_run, and
-- what plan.decide reads. fetch: true when the listing decided "fetch"
-- (what it depends on changes only with the image's own row: it is not
-- decided again); otherwise plan.decide decides now.
local function image(ctx, album, img, fetch_it)
  local kind, row
  if fetch_it then kind = "fetch" else kind, row = plan.decide(ctx, album, img) end
  if kind == "skip" then return done(ctx, "skipped", img, row.size) end
  if kind == "defer" then
    ctx.deferred[#ctx.deferred + 1] = { album = album, img = img }
    return
  end
  if ctx.dry_run then
    -- fetch: "verify" a file found under the name that no row vouches for, else "download"
    local action = kind
    if kind == "fetch" then
      action = not row and file_size(ctx.dest .. "/" .. img.path) and "verify" or "download"
    elseif kind == "move" and row.album ~= album.key then
      ctx.taken[plan.seen_key(row.album, row.key)] = true      -- (not a deletion: it moves)
    end
    ctx.stats.planned = ctx.stats.planned + 1
    return ctx.emit { type = "plan", action = action, path = img.path,
                      from = row and row.path ~= img.path and row.path or nil,
                      size = math.tointeger(img.ArchivedSize), key = img.ImageKey }
  end
  local ok, err = make_room(ctx, img.path, album.key, img.ImageKey)
  if not ok then return failed(ctx, album, img, err) end
  if kind == "move" then return move(ctx, album, img, row) end
  if kind == "copy" then return copy(ctx, album, img, row) end
  return fetch(ctx, album, img)
end

--- Delete the file of a row whose image is gone, and the folders that
-- leaves empty (up to the destination). true, or nil, err.
local function delete(ctx, row)
  local p = ctx.dest .. "/" .. row.path
  if file_size(p) then
    local ok, msg = os.remove(p)
    if not ok then return nil, errors.new("io", "cannot delete " .. row.path .. ": " .. tostring(msg)) end
  end
  local ok, err = ctx.m:remove(row.album, row.key)
  if not ok then return nil, err end
  local dir = parent(row.path)
  while dir ~= "" and dir ~= names.OWN and os.remove(ctx.dest .. "/" .. dir) do   -- only empty ones go
    ctx.dirs[dir] = nil
    dir = parent(dir)
  end
  return true
end

return {
  image = image,
  delete = delete,
  parent = parent,
  make_dir = make_dir,
}
