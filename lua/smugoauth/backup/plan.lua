--- smugoauth.backup.plan: what a backup does with each image, decided from
-- the manifest, the file system and what the listing said: skip it (saved
-- and unchanged), move it (saved under another name, or in an album it
-- left), copy it (the same image saved from another album it is still in),
-- fetch it (verify a file already under its name by MD5 and adopt it, else
-- download), wait (defer) until every album has been listed, or delete it
-- (its image is gone). The decisions read only: smugoauth.backup.run acts
-- on them, deciding again just before it acts.
-- @module smugoauth.backup.plan
local core = require "smugoauth.core"
local util = require "smugoauth.util"
local names = require "smugoauth.backup.names"

local file_size = core.file_size

--- The file names of an album's images: `plan.targets(album, images)` sets
-- `img.path` (album.dir .. "/" .. name) on each: the FileName made safe,
-- else the Title, else the ImageKey (with the extension of the Format),
-- distinct in the album (smugoauth.backup.names). Returns images.
local function targets(album, images)
  local entries = {}
  for i, img in ipairs(images) do
    local ext = type(img.Format) == "string" and img.Format:match("^%w+$") and ("." .. img.Format:lower()) or ""
    local want = names.sanitize(img.FileName, "file")
    local title = not want and names.sanitize(img.Title, "file")
    if title then want = names.sanitize(title .. ext, "file") end
    want = want or names.sanitize(img.ImageKey .. ext, "file") or "_"
    entries[i] = { id = img.ImageKey, want = want, img = img }
  end
  names.assign(entries, "file")
  for _, e in ipairs(entries) do e.img.path = album.dir .. "/" .. e.name end
  return images
end

--- What identifies the version of an image's original: its ArchivedMD5
-- (lower case), else its LastUpdated (a string; "" when neither is known).
local function fingerprint(img)
  if type(img.ArchivedMD5) == "string" and img.ArchivedMD5 ~= "" then return img.ArchivedMD5:lower() end
  return "updated:" .. tostring(img.LastUpdated or "")
end

--- The modification time a saved file gets: the photo's DateTimeOriginal,
-- else its DateTimeUploaded (seconds since the epoch), else nil.
local function mtime(img)
  return util.iso8601(img.DateTimeOriginal) or util.iso8601(img.DateTimeUploaded)
end

--- Is the file of a manifest row there, with the size it was saved with?
local function file_ok(dest, row)
  return row.size ~= nil and file_size(dest .. "/" .. row.path) == row.size
end

--- The key of (album, key) in a run's `seen` set.
local function seen_key(album, key)
  return album .. "\0" .. key
end

--- Decide what to do with image img of album (img.path set by `targets`):
-- `plan.decide(ctx, album, img)` -> kind, row.
--   ctx  { m (the manifest), dest, listed (album key -> "ok" | "partial" |
--        "failed": how its listing went), seen (set of seen_key of every
--        image listed so far), in_scope(album_key) (could the run list that
--        album?), final (every listing is over) }
-- kind: "skip" (row: its row), "move" (row: the row whose file moves to
-- img.path; of another album when the image left that one), "copy" (row:
-- the row of another album whose file is copied), "fetch" (row: its own
-- row when the image changed or its file is missing, else nil), "defer".
local function decide(ctx, album, img)
  local m, dest = ctx.m, ctx.dest
  local key, fp = img.ImageKey, fingerprint(img)
  local row = m:get(album.key, key)
  if row then
    if row.src ~= fp then return "fetch", row end       -- a new version
    if row.path == img.path then
      if file_ok(dest, row) then return "skip", row end
      return "fetch", row
    end
    if file_ok(dest, row) then return "move", row end   -- renamed
    return "fetch", row
  end
  -- not saved from this album: saved from another one?
  local pending, source = false, nil
  for _, o in ipairs(m:others(album.key, key)) do
    if o.src == fp and file_ok(dest, o) then
      local st = ctx.listed[o.album]
      local gone = (st == "ok" and not ctx.seen[seen_key(o.album, key)])
        or (ctx.final and st == nil and ctx.complete and ctx.in_scope(o.album))
      if gone then return "move", o end                 -- it left that album
      if st == nil and ctx.in_scope(o.album) and not ctx.final then
        pending = true                                  -- that album is still to be listed
      else
        source = source or o
      end
    end
  end
  if pending then return "defer" end
  if source then return "copy", source end
  return "fetch", nil
end

--- The rows whose images are gone: `plan.deletions(ctx)` -> a list of rows
-- (in no album listed now, within the run's scope; not one a dry run
-- plans to move, ctx.taken). Only meaningful when the listing was complete.
local function deletions(ctx)
  local out = {}
  for _, row in ipairs(ctx.m:all()) do
    local k = seen_key(row.album, row.key)
    if ctx.in_scope(row.album) and not ctx.seen[k] and not (ctx.taken and ctx.taken[k]) then
      out[#out + 1] = row
    end
  end
  return out
end

return {
  targets = targets,
  fingerprint = fingerprint,
  mtime = mtime,
  file_ok = file_ok,
  seen_key = seen_key,
  decide = decide,
  deletions = deletions,
}
