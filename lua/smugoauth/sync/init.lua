--- Keep a local folder uploaded to SmugMug: `api:sync{...}` of a session.
-- Files are matched by MD5, never by name: the album's images are listed
-- (their ArchivedMD5), the local files hashed (streamed), and only what the
-- album does not have is uploaded, concurrently on the loop. A file SmugMug
-- transforms (HEIC to JPEG, a re-encoded video) never has its MD5 there
-- again: the manifest under the folder (smugoauth.sync.manifest: SQLite)
-- records each upload as local MD5 -> image key, so it is never uploaded
-- twice. With `folder`, each subfolder is an album under that SmugMug
-- folder (the tree), and folders and albums missing there are created.
--
-- The parts, one concern a file: smugoauth.sync.scan (which local files
-- count), smugoauth.sync.hash (their MD5, cached), smugoauth.sync.remote
-- (albums, listings, the tree), smugoauth.sync.plan (what to do with each
-- file), smugoauth.sync.run (the uploads), smugoauth.sync.manifest.
-- @module smugoauth.sync
local util = require "smugoauth.util"
local loop = require "smugoauth.loop"
local errors = require "smugoauth.errors"
local core = require "smugoauth.core"
local scan = require "smugoauth.sync.scan"
local hash = require "smugoauth.sync.hash"
local manifest = require "smugoauth.sync.manifest"
local remote = require "smugoauth.sync.remote"
local plan = require "smugoauth.sync.plan"
local run = require "smugoauth.sync.run"

--- The options of `api:sync{...}`, declared once: name, type, default.
local OPTIONS = {
  { "dir", "string", nil, doc = "the local folder (required)" },
  { "album", "string", nil, doc = "the album its files go to: /api/v2/album/KEY or KEY" },
  { "folder", "string", nil, doc = 'instead of album, the tree: a SmugMug folder, as a path of ' ..
    'names under the user\'s root ("" is the root, "Travel/2024" a folder in a folder); each ' ..
    'subfolder of dir that holds files is an album of its name under the folder of its path' },
  { "jobs", "number", 4, doc = "uploads at once (1..32)" },
  { "dry_run", "boolean", false, doc = "list and plan, upload and create nothing, write no manifest" },
  { "privacy", "string", "Private", doc = 'of the folders and albums it creates: "Public", ' ..
    '"Unlisted" or "Private"' },
  { "timeout", "number", 3600, doc = "seconds an upload may take" },
  { "retry", "table", nil, doc = "the retry policy (smugoauth.retry) of every request; default " ..
    "{attempts = 10, max_time = 600}; uploads and creations are tried again only after 429/503" },
  { "rehash", "boolean", false, doc = "read every file again (not the manifest's cached MD5s)" },
  { "on_event", "function", nil, doc = "function(event) for each step (see `sync`); it must not yield" },
}
local TYPES = util.option_types(OPTIONS)
local PRIVACY = { Public = true, Unlisted = true, Private = true }
local DEFAULT_RETRY = { attempts = 10, max_time = 600 }

-- A failure after which nothing else is tried (the token, the config, TLS).
local function stops(err)
  return run.STOP[err.code] or (err.code == "http" and err.status == 401)
end

-- The names of a folder path: "Travel/2024/" -> {"Travel", "2024"}.
local function names_of(path)
  local t = {}
  for n in path:gmatch("[^/]+") do t[#t + 1] = n end
  return t
end

-- A fresh summary (see sync).
local function new_summary(o)
  return { ok = false, dry_run = o.dry_run or false, dir = o.dir,
           target = o.folder and ("folder " .. (o.folder == "" and "/" or o.folder)) or ("album " .. o.album),
           files = 0, groups = 0, hashed = 0, hashed_bytes = 0,
           to_upload = 0, to_upload_bytes = 0, uploaded = 0, uploaded_bytes = 0,
           present = 0, known = 0, adopted = 0, duplicates = 0, failed = 0, not_tried = 0,
           created = { folders = 0, albums = 0 }, albums = {}, failures = {}, listing_errors = {}, warnings = {},
           ignored = {} }
end

-- Which album each group of files goes to: sets group.album and group.sa
-- (its entry in the summary's albums), or group.err, or group.skip. Returns
-- true, or nil, err for a failure that ends the sync (the album of a plain
-- sync, the base folder of a tree, the token refused).
local function resolve(rem, groups, o, s)
  if not o.folder then
    local album, err = rem:album(o.key)
    if not album then return nil, err end
    s.albums[1] = { key = album.key, name = album.name, dir = "", files = 0, upload = 0, created = false }
    for _, g in ipairs(groups) do g.album, g.sa = album, s.albums[1] end
    return true
  end
  local mapped = 0
  for _, g in ipairs(groups) do
    if g.rel == "" or g.parent_of_media then
      g.skip = true
      s.ignored.unmapped = (s.ignored.unmapped or 0) + #g.files
      s.warnings[#s.warnings + 1] = ("not synced: the %d file(s) directly in %s (with a tree, the files " ..
        "of a folder without subfolders go to the album of its name)"):format(#g.files,
        g.rel == "" and "the top folder" or g.rel)
    elseif not utf8.len(g.rel) then
      g.skip = true
      s.ignored.unmapped = (s.ignored.unmapped or 0) + #g.files
      s.warnings[#s.warnings + 1] = ("not synced: the %d file(s) of a folder whose name is not UTF-8 (%s): " ..
        "an album's name must be"):format(#g.files, g.rel)
    else
      mapped = mapped + 1
    end
  end
  if mapped == 0 then return true end             -- nothing to put anywhere: nothing is created
  local base, err = rem:folder(names_of(o.folder))
  if not base then return nil, err end
  for _, g in ipairs(groups) do
    if not g.skip then
      local names = names_of(g.rel)
      local album_name = table.remove(names)
      local parent, album, perr = base, nil, nil
      for _, n in ipairs(names) do
        parent, perr = rem:_child(parent, "Folder", n)
        if not parent then break end
      end
      if parent then album, perr = rem:album_in(parent, album_name) end
      if album then
        g.album = album
        g.sa = { key = album.key, name = album.name, path = album.path, dir = g.rel, files = 0, upload = 0,
                 created = album.created or false }
        s.albums[#s.albums + 1] = g.sa
      else
        g.err = perr
        if stops(perr) then return nil, perr end
      end
    end
  end
  return true
end

-- The remote side, as a task: the albums (created where missing), then
-- their listings, `jobs` at a time; listings[album] is the listing or the
-- error of listing it. The task returns true, or nil, err (see resolve).
local function remote_task(rem, groups, o, s, listings)
  return loop.spawn(function()
    local ok, err = resolve(rem, groups, o, s)
    if not ok then return nil, err end
    local lim, tasks = loop.limit(o.jobs), {}
    for _, g in ipairs(groups) do
      local album = g.album
      if album and listings[album] == nil then
        listings[album] = false
        tasks[#tasks + 1] = lim:spawn(function()
          local l, lerr = rem:list(album)
          listings[album] = l or lerr
        end)
      end
    end
    for _, t in ipairs(tasks) do
      local jok, jerr = t:join()
      if not jok then error(jerr, 0) end
    end
    return true
  end)
end

-- A file that failed, in the summary (and an event).
local function failure(s, emit, f, err)
  s.failed = s.failed + 1
  s.failures[#s.failures + 1] = { path = f.rel, code = err.code, message = tostring(err.message or err),
                                  status = err.status }
  emit { type = "failed", path = f.rel, size = f.size, code = err.code, message = err.message, err = err }
end

-- A folder whose album could not be found, made or listed: its files are
-- not synced (they count as failed).
local function listing_error(s, emit, g, err)
  local what = g.rel == "" and "." or g.rel
  s.failed = s.failed + #g.files
  s.listing_errors[#s.listing_errors + 1] = { what = what, files = #g.files, code = err.code,
                                              message = tostring(err.message or err), status = err.status }
  emit { type = "listing_error", what = what, files = #g.files, err = err }
end

-- What the plan's actions count as in the summary.
local COUNT = { present = "present", known = "known", adopt = "adopted", duplicate = "duplicates" }

-- Plan every group: the summary's counts, the manifest's rows of files the
-- album answers for, and the uploads to make (returned).
local function plan_all(groups, listings, m, s, emit)
  local items = {}
  for _, g in ipairs(groups) do
    local l = g.album and listings[g.album]
    local gerr = g.err or (errors.is(l) and l) or nil
    if gerr then
      listing_error(s, emit, g, gerr)
    elseif g.album then
      local album = g.album
      local rows, merr = m:album(album.key or "")
      if not rows then return nil, merr end
      for _, a in ipairs(plan.plan(g.files, l, rows)) do
        local f = a.file
        g.sa.files = g.sa.files + 1
        emit { type = "plan", path = f.rel, size = f.size, action = a.action, key = a.key,
               album = album.key, album_name = album.name, album_path = album.path }
        if a.action == "upload" then
          s.to_upload, s.to_upload_bytes = s.to_upload + 1, s.to_upload_bytes + f.size
          g.sa.upload = g.sa.upload + 1
          items[#items + 1] = { file = f, album = album, forget = a.forget }
        elseif a.action == "fail" then
          failure(s, emit, f, f.err)
        else
          s[COUNT[a.action]] = s[COUNT[a.action]] + 1
          -- an upload under way when a run stopped, that the album answers for: done now
          if a.action == "adopt" or (a.row and a.row.state == "pending" and a.key) then
            local ok, derr = m:done(f.md5, album.key, a.key, f.rel, a.row and a.row.filename or f.name, f.size)
            if not ok then return nil, derr end
          end
        end
      end
    end
  end
  return items
end

-- The whole sync, inside a task.
local function body(session, o)
  local t0 = core.monotime()
  local s = new_summary(o)
  local emit = o.on_event or function() end
  local sc, err = scan.scan(o.dir, { tree = o.folder ~= nil })
  if not sc then return nil, err end
  s.ignored = sc.ignored
  for _, w in ipairs(sc.warnings) do s.warnings[#s.warnings + 1] = w end
  local groups, all = sc.groups, {}
  for _, g in ipairs(groups) do
    for _, f in ipairs(g.files) do all[#all + 1] = f end
  end
  s.files, s.groups = #all, #groups
  emit { type = "scan", files = #all, groups = #groups }
  local m <close>, merr = manifest.open(o.dir, { read_only = o.dry_run, target = s.target })
  if not m then return nil, merr end
  if o.rehash then m.hashes = {} end
  local retry = o.retry or DEFAULT_RETRY
  local rem = remote.new(session, { retry = retry, create = not o.dry_run, privacy = o.privacy,
    on_event = function(ev)
      local k = ev.kind == "folder" and "folders" or "albums"
      s.created[k] = s.created[k] + 1
      emit(ev)
    end })
  -- the remote side runs while the files are hashed
  local listings = {}
  local rtask = remote_task(rem, groups, o, s, listings)
  local hashed, hbytes, herr = hash.files(all, m, function(f, cached)
    emit { type = "hash", path = f.rel, size = f.size, cached = cached }
  end)
  s.hashed, s.hashed_bytes = hashed, hbytes
  if herr then s.warnings[#s.warnings + 1] = "the MD5 cache was not written: " .. tostring(herr.message) end
  local jok, rok, rerr = rtask:join()
  if not jok then error(rok, 0) end
  if not rok then return nil, rerr end
  local items, perr = plan_all(groups, listings, m, s, emit)
  if not items then return nil, perr end
  emit { type = "plan_done", upload = s.to_upload, bytes = s.to_upload_bytes }
  if not o.dry_run and #items > 0 then
    local up_retry = { unsafe = true }
    for k, v in pairs(retry) do up_retry[k] = v end
    run.uploads(session, items, { manifest = m, jobs = o.jobs, timeout = o.timeout, retry = up_retry,
                                  emit = emit, summary = s })
  end
  m:finish(s.uploaded, s.failed)
  s.seconds = core.monotime() - t0
  s.ok = s.failed == 0 and not s.stopped
  return s
end

--- Sync a local folder to an album, or a tree of folders to a SmugMug
-- folder: `api:sync(o)` with the options of OPTIONS (dir, and album or
-- folder, required). Inside a task of a loop it yields; outside one it runs
-- on the session's own loop until done.
--
-- Events (o.on_event): { type = "scan", files, groups } once the folder is
-- read; "hash" (path, size, cached) per file; "create" (kind: "folder" or
-- "album", name, path, dry_run) per folder or album made (or that would
-- be); "plan" (path, size, action, key) per file; "plan_done" (upload,
-- bytes); "start" (path, size, album), "progress" (path, sent, total) and
-- "done" (path, size, key, album) of an upload; "failed" (path, size, code,
-- message, err) per file not synced; "listing_error" (what, files, err).
--
-- Returns a summary, or nil, err when the sync could not be made at all
-- (dir unreadable: code "missing"/"io"; the manifest in use by another
-- sync: "busy"; the album or folder not found or not listed; the token
-- refused, ...). The summary: `ok` (nothing failed), counts (`files`,
-- `to_upload` and `to_upload_bytes` (planned), `uploaded`,
-- `uploaded_bytes`, `present` (the album had their MD5), `known` (the
-- manifest knows them as uploaded: converted by SmugMug), `adopted`,
-- `duplicates`, `failed` (files not synced, those of listing_errors
-- included), `not_tried`, `hashed`), `created` = {folders, albums} (in a
-- dry run: what would be), `albums` (each {key, name, path, dir, files,
-- upload, created}), `failures` (a file each: {path, code, message,
-- status}), `listing_errors` (a folder each whose album could not be
-- found, made or listed: {what, files, code, message, status}), `stopped`
-- (the failure after which no upload was started: the token refused...),
-- `warnings`, `ignored` ({hidden, symlinks, other, subfolders, unmapped,
-- symlink_paths}), `seconds`.
local function sync(session, o)
  if type(o) ~= "table" then error("sync: options table expected", 2) end
  util.check_options("sync", o, TYPES, 2)
  local opts = {}
  for _, row in ipairs(OPTIONS) do
    local v = o[row[1]]
    if v == nil then v = row[3] end
    opts[row[1]] = v
  end
  if not opts.dir or opts.dir == "" then error("sync: dir is required", 2) end
  if (opts.album == nil) == (opts.folder == nil) then error("sync: give album or folder (the tree), not both", 2) end
  if opts.album then
    opts.key = remote.album_key(opts.album)
    if not opts.key then error("sync: album must be an album URI /api/v2/album/KEY or a KEY", 2) end
  end
  local jobs = math.tointeger(opts.jobs)
  if not jobs or jobs < 1 or jobs > 32 then error("sync: jobs must be an integer 1..32", 2) end
  opts.jobs = jobs
  if not PRIVACY[opts.privacy] then error('sync: privacy must be "Public", "Unlisted" or "Private"', 2) end
  if opts.timeout <= 0 then error("sync: timeout must be a positive number of seconds", 2) end
  if opts.retry then require("smugoauth.retry").new(opts.retry, "sync", 2) end
  if loop.current() then return body(session, opts) end
  return session:_loop():call(body, session, opts)
end

return {
  sync = sync,
  OPTIONS = OPTIONS,
}
