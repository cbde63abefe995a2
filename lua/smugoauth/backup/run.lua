--- smugoauth.backup.run: `api:backup{...}`, a SmugMug account (or some of
-- it) mirrored under a folder, incrementally. On the loop: one walker task
-- lists the folder tree (smugoauth.backup.walk), a few listing tasks list
-- albums (their pages fetched together) and decide what each image needs
-- (smugoauth.backup.plan), feeding a bounded queue that `jobs` download
-- tasks take from (smugoauth.backup.apply): memory stays bounded whatever
-- the size of the account or of its files. Every request shares the
-- session's connections and the client's rate-limit pause. What was saved
-- is in the manifest (smugoauth.backup.manifest), so a run that stops, or
-- is killed, is taken up by the next one; images that failed are retried.
-- @module smugoauth.backup.run
local util = require "smugoauth.util"
local loop = require "smugoauth.loop"
local errors = require "smugoauth.errors"
local manifest = require "smugoauth.backup.manifest"
local walk = require "smugoauth.backup.walk"
local plan = require "smugoauth.backup.plan"
local apply = require "smugoauth.backup.apply"

--- The options of `api:backup`, declared once: name, type, what it does.
local OPTIONS = {
  { "dest", "string", doc = "the destination folder (created when missing); required" },
  { "albums", "table", doc = "album keys to back up (each under DEST/<album name>) instead of the account" },
  { "user", "string", doc = "a NickName: that user's folders and albums instead of the authorized user's" },
  { "jobs", "number", doc = "downloads at once (1..64; default 4)" },
  { "delete", "boolean", doc = "remove the files of images that are gone (only after a listing " ..
    "that completed without errors)" },
  { "dry_run", "boolean", doc = "say what would be done (`plan` events); nothing is downloaded, " ..
    "written or removed" },
  { "on_event", "function", doc = "function(event) for each step (see `backup`); it must not yield" },
  { "progress", "boolean", doc = "also `progress` events while files download" },
  { "page_size", "number", doc = "items per listing page (default 100)" },
  { "listing", "number", doc = "albums listed at once (default 2)" },
}
local TYPES = util.option_types(OPTIONS)

-- The counters of a summary.
local COUNTS = { "saved", "moved", "copied", "adopted", "skipped", "deleted", "failed", "planned" }

-- Check the options (misuse raises at level).
local function check(opts, level)
  level = level + 1
  if type(opts) ~= "table" then error("backup: options table expected", level) end
  util.check_options("backup", opts, TYPES, level)
  if type(opts.dest) ~= "string" or opts.dest == "" or opts.dest:find("%z") then
    error("backup: dest must be a non-empty path without NUL", level)
  end
  if opts.albums and opts.user then error("backup: give albums or user, not both", level) end
  for _, k in ipairs(opts.albums or {}) do
    if type(k) ~= "string" or not k:match("^[%w%-_]+$") then error("backup: albums must be album keys", level) end
  end
  if opts.albums and #opts.albums == 0 then error("backup: albums is empty", level) end
  if opts.user and not opts.user:match("^[%w%-_]+$") then error("backup: user must be a NickName", level) end
  for _, k in ipairs { "jobs", "page_size", "listing" } do
    local v = opts[k]
    if v ~= nil and (not math.tointeger(v) or v < 1 or v > (k == "page_size" and 1000 or 64)) then
      error("backup: " .. k .. " out of range", level)
    end
  end
end

-- The run's state, shared by its tasks (and what plan and apply read).
local function new_ctx(session, opts, m)
  local ctx = {
    session = session, m = m, dest = opts.dest:gsub("(.)/+$", "%1"), dry_run = opts.dry_run == true,
    progress = opts.progress == true, listed = {}, seen = {}, final = false, complete = false,
    deferred = {}, dirs = {}, failures = {}, listing_errors = {}, stop = nil, taken = {},
    stats = { albums = 0, images = 0, bytes = 0 },
  }
  for _, k in ipairs(COUNTS) do ctx.stats[k] = 0 end
  local on_event = opts.on_event
  ctx.emit = on_event and function(ev) on_event(ev) end or function() end
  local scope
  if opts.albums then
    scope = {}
    for _, k in ipairs(opts.albums) do scope[k] = true end
  end
  ctx.in_scope = function(album_key) return scope == nil or scope[album_key] == true end
  return ctx
end

-- A part of the listing failed: recorded, announced; OAuth stops the run.
local function listing_error(ctx, what, err)
  ctx.listing_errors[#ctx.listing_errors + 1] = { what = what, code = err.code, message = err.message,
                                                  status = err.status }
  ctx.emit { type = "listing_error", what = what, code = err.code, message = err.message }
  if (err.code == "oauth" or (err.code == "http" and err.status == 401)) and not ctx.stop then ctx.stop = err end
end

-- List one album and queue what its images need (skips are done here).
local function list_album(ctx, q, album, page_size)
  local imgs, consistent = walk.images(ctx.session, album, page_size)
  if not imgs then
    ctx.listed[album.key] = "failed"
    return listing_error(ctx, "album " .. album.dir, consistent)
  end
  ctx.listed[album.key] = consistent and "ok" or "partial"
  if not consistent then
    listing_error(ctx, "album " .. album.dir, errors.new("api", "the album changed while it was listed " ..
      "(its pages do not add up): listed again by the next run"))
  end
  plan.targets(album, imgs)
  if not ctx.dry_run then
    local ok, err = apply.make_dir(ctx, album.dir)      -- (an empty album is an empty folder)
    if not ok then
      ctx.listed[album.key] = "failed"
      return listing_error(ctx, "album " .. album.dir, err)
    end
  end
  for _, img in ipairs(imgs) do ctx.seen[plan.seen_key(album.key, img.ImageKey)] = true end
  ctx.stats.albums, ctx.stats.images = ctx.stats.albums + 1, ctx.stats.images + #imgs
  ctx.emit { type = "album", path = album.dir, key = album.key, images = #imgs }
  for _, img in ipairs(imgs) do
    if ctx.stop then return end
    local kind, row = plan.decide(ctx, album, img)
    if kind == "skip" or ctx.dry_run then
      apply.image(ctx, album, img)
    elseif kind == "defer" then
      ctx.deferred[#ctx.deferred + 1] = { album = album, img = img }
    else
      ctx.emit { type = "queued", path = img.path, action = kind,
                 size = kind == "fetch" and math.tointeger(img.ArchivedSize) or (row and row.size) or nil }
      if not q:put { album = album, img = img, fetch = kind == "fetch" } then return end
    end
  end
end

-- The deletions of a finished run (with opts.delete).
local function deletions(ctx)
  if not ctx.complete or ctx.stop then
    ctx.emit { type = "note", message = "--delete skipped: the listing did not complete" }
    ctx.delete_skipped = true
    return
  end
  for _, row in ipairs(plan.deletions(ctx)) do
    if ctx.dry_run then
      ctx.stats.planned = ctx.stats.planned + 1
      ctx.emit { type = "plan", action = "delete", path = row.path, size = row.size, key = row.key }
    else
      local ok, err = apply.delete(ctx, row)
      if ok then
        ctx.stats.deleted = ctx.stats.deleted + 1
        ctx.emit { type = "done", action = "deleted", path = row.path, size = row.size, key = row.key }
      else
        ctx.failures[#ctx.failures + 1] = { album = row.album, key = row.key, path = row.path, code = err.code,
                                            message = err.message }
        ctx.stats.failed = ctx.stats.failed + 1
        ctx.emit { type = "failed", path = row.path, key = row.key, code = err.code, message = err.message }
      end
    end
  end
end

-- Tidy up after a complete run: .part files of downloads nobody will take
-- up again, failures of images that are gone.
local function tidy(ctx)
  if ctx.dry_run or not ctx.complete or ctx.stop then return end
  local stale = ctx.m:stale_parts()
  for _, p in ipairs(stale) do os.remove(ctx.dest .. "/" .. p .. ".part") end
  ctx.m:drop_parts(stale)
  ctx.m:prune_failures(function(album, key) return ctx.seen[plan.seen_key(album, key)] == true end)
end

-- The summary of a run.
local function summary(ctx, seconds)
  local s = { dest = ctx.dest, dry_run = ctx.dry_run, complete = ctx.complete, seconds = seconds,
              failures = ctx.failures, listing_errors = ctx.listing_errors, delete_skipped = ctx.delete_skipped }
  for k, v in pairs(ctx.stats) do s[k] = v end
  if ctx.stop then s.stopped = { code = ctx.stop.code, message = ctx.stop.message, status = ctx.stop.status } end
  s.ok = ctx.complete and not ctx.stop and #ctx.failures == 0
  return s
end

-- The run, inside a task.
local function main(session, opts)
  local m, merr = manifest.open(opts.dest:gsub("(.)/+$", "%1"), { dry_run = opts.dry_run })
  if not m then return nil, merr end
  local ctx = new_ctx(session, opts, m)
  local t0 = require("smugoauth.core").monotime()
  local ok, err = pcall(function()
    m:begin_run()
    local jobs = opts.jobs or 4
    local q = loop.queue(jobs * 2)
    local workers = {}
    for w = 1, jobs do
      workers[w] = loop.spawn(function()
        for item in q:items() do
          if not ctx.stop then
            -- a fault of ours fails this image, not the whole run
            local aok, aerr = xpcall(apply.image, debug.traceback, ctx, item.album, item.img, item.fetch)
            if not aok then
              ctx.stats.failed = ctx.stats.failed + 1
              ctx.failures[#ctx.failures + 1] = { album = item.album.key, key = item.img.ImageKey,
                path = item.img.path, code = "internal", message = tostring(aerr) }
              ctx.emit { type = "failed", path = item.img.path, key = item.img.ImageKey, code = "internal",
                         message = tostring(aerr) }
            end
          end
        end
      end)
    end
    local lim, listers = loop.limit(opts.listing or 2), {}
    local walked = walk.albums(session, { albums = opts.albums, user = opts.user, page_size = opts.page_size,
                                          stopped = function() return ctx.stop ~= nil end },
      function(album)
        lim:acquire()
        listers[#listers + 1] = loop.spawn(function()
          local lok, lerr = pcall(list_album, ctx, q, album, opts.page_size)
          lim:release()
          if not lok then error(lerr, 0) end
        end)
      end,
      function(what, e) listing_error(ctx, what, e) end)
    for _, t in ipairs(listers) do
      local jok, jerr = t:join()
      if not jok then q:close() error(jerr, 0) end
    end
    ctx.final = true
    ctx.complete = walked and not ctx.stop
    for _, st in pairs(ctx.listed) do
      if st ~= "ok" then ctx.complete = false end
    end
    ctx.emit { type = "listed", complete = ctx.complete, albums = ctx.stats.albums, images = ctx.stats.images }
    local deferred = ctx.deferred
    ctx.deferred = {}
    for _, d in ipairs(deferred) do
      if ctx.dry_run then apply.image(ctx, d.album, d.img) elseif not q:put(d) then break end
    end
    q:close()
    for _, w in ipairs(workers) do
      local wok, werr = w:join()
      if not wok then error(werr, 0) end
    end
    if opts.delete then deletions(ctx) end
    tidy(ctx)
  end)
  local s = summary(ctx, require("smugoauth.core").monotime() - t0)
  if ok then m:end_run(s, s.ok and "ok" or (ctx.stop and "stopped" or "failed")) end
  m:close()
  if not ok then error(err, 0) end
  ctx.emit { type = "end", summary = s }
  return s
end

--- Back up images to a folder: `api:backup(opts)` (see OPTIONS).
-- Mirrors the authorized user's folders and albums (or `user`'s, or the
-- given `albums`) under `dest`: originals (ArchivedUri, verified by MD5 and
-- size), videos through !largestvideo (one still processing is reported
-- and tried again by the next run), file names made safe and distinct
-- (smugoauth.backup.names), modification times from DateTimeOriginal (else
-- DateTimeUploaded). Incremental: what is saved and unchanged is skipped,
-- renamed or moved images are moved, changed ones downloaded again, files
-- left by a killed run verified and adopted or resumed.
--
-- Events (opts.on_event): { type = "album", path, key, images } when an
-- album is listed; "queued" (path, action: "fetch", "move" or "copy",
-- size); "listed" (complete, albums, images) when the listing is over; "start" (path, size) and
-- "progress" (path, got, total) of a download; "done" (action: "saved",
-- "moved", "copied", "adopted", "skipped", "deleted"; path, size, bytes,
-- from); "failed" (path, code, message); "listing_error" (what, code,
-- message); "plan" (a dry run: action "download", "verify", "move",
-- "copy", "delete"; path, from, size); "note" (message); "end" (summary).
--
-- Returns the summary: { ok (everything listed and saved), complete (the
-- listing), saved, moved, copied, adopted, skipped, deleted, failed,
-- planned, albums, images, bytes (downloaded by this run), seconds,
-- failures = { {album, key, path, code, message} }, listing_errors = {
-- {what, code, message} }, stopped (the error that stopped the run: an
-- OAuth refusal), delete_skipped, dry_run, dest }; or nil, err when it
-- could not start (the manifest: code "io" or "config"). Yields inside a
-- task; outside one it runs on the session's loop until done.
local function backup(session, opts)
  check(opts, 2)
  if loop.current() then return main(session, opts) end
  return session:_loop():call(main, session, opts)
end

return {
  backup = backup,
  OPTIONS = OPTIONS,
}
