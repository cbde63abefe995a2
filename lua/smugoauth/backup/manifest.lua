--- smugoauth.backup.manifest: what a backup has saved under its destination,
-- kept in `DEST/.smugoauth/backup.sqlite` (smugoauth.sqlite: SQLite, WAL,
-- one transaction per finished file, so that a `kill -9` at any point loses
-- at most the file being finished, which the next run verifies by MD5 and
-- adopts). The file is locked while a backup runs: a second backup into the
-- same destination is refused.
--
-- Tables:
--   images    one row per (album, key) saved: path (relative to DEST, "/"
--             separators), fold (the path as a case-insensitive file system
--             sees it: unique), md5 (hex) and size of the file, src (what
--             the API said of the original when it was saved: its
--             ArchivedMD5, else its LastUpdated), last_updated, saved_at, run
--   failures  the images the last runs could not save, with why (code,
--             message): retried by the next run
--   parts     the downloads begun (their .part files), until they finish
--   runs      one row per run: when, and its counts
-- @module smugoauth.backup.manifest
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local sqlite = require "smugoauth.sqlite"
local names = require "smugoauth.backup.names"

local fold = names.fold

local methods = {}
local mt = { __name = "smugoauth.BackupManifest", __index = methods }

-- Run fn in one transaction of db: what it returns, or nil, err (code "io")
-- when a statement in it failed (fn asserts each: an error object is raised).
local function tx(db, fn)
  local ok, r, e = pcall(db.transaction, db, fn)
  if ok then return r, e end
  if errors.is(r) then return nil, r end
  error(r, 0)
end

--- The manifest's file, relative to the destination.
local FILE = names.OWN .. "/backup.sqlite"

--- The schema's version (meta.schema).
local SCHEMA = 1

local TABLES = {
  "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)",
  "CREATE TABLE IF NOT EXISTS images (album TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL, " ..
    "fold TEXT NOT NULL, md5 TEXT, size INTEGER, src TEXT, last_updated TEXT, saved_at INTEGER, " ..
    "run INTEGER, PRIMARY KEY (album, key))",
  "CREATE UNIQUE INDEX IF NOT EXISTS images_fold ON images (fold)",
  "CREATE INDEX IF NOT EXISTS images_key ON images (key)",
  "CREATE TABLE IF NOT EXISTS failures (album TEXT NOT NULL, key TEXT NOT NULL, path TEXT, code TEXT, " ..
    "message TEXT, run INTEGER, at INTEGER, PRIMARY KEY (album, key))",
  "CREATE TABLE IF NOT EXISTS parts (path TEXT PRIMARY KEY, run INTEGER)",
  "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started INTEGER, finished INTEGER, " ..
    "status TEXT, saved INTEGER, moved INTEGER, adopted INTEGER, skipped INTEGER, deleted INTEGER, " ..
    "failed INTEGER, bytes INTEGER, complete INTEGER)",
}

--- Open the manifest of destination `dest`: `manifest.open(dest [, opts])`.
--   opts.dry_run  true: read what is there (an empty manifest when there
--                 is none), create and lock nothing
-- Returns the manifest, or nil, err (code "config": no SQLite driver; "io":
-- cannot create or open it, or another backup holds it).
local function open(dest, opts)
  opts = opts or {}
  local path = dest .. "/" .. FILE
  local db, err
  if opts.dry_run then
    db, err = sqlite.open(core.file_size(path) and path or ":memory:", { readonly = true })
  else
    local ok, merr = core.mkdir_private(dest .. "/" .. names.OWN)
    if not ok then return nil, errors.new("io", tostring(merr), { path = dest }) end
    db, err = sqlite.open(path)
  end
  if not db then return nil, err end
  local self = setmetatable({ db = db, dest = dest, dry_run = opts.dry_run, run = 0 }, mt)
  if not opts.dry_run or path ~= db.path then
    for _, sql in ipairs(TABLES) do
      local ok, terr = db:exec(sql)
      if not ok then db:close() return nil, terr end
    end
    local v = db:one("SELECT v FROM meta WHERE k = 'schema'")
    if v and tonumber(v.v) ~= SCHEMA then
      db:close()
      return nil, errors.new("io", ("%s was written by another version of smugoauth " ..
        "(schema %s, this one reads %d)"):format(path, v.v, SCHEMA), { path = path })
    end
    if not v and not opts.dry_run then db:exec("INSERT INTO meta VALUES ('schema', ?)", tostring(SCHEMA)) end
  end
  return self
end

--- Start a run: its id (runs.id), kept in `m.run`.
function methods:begin_run()
  if self.dry_run then self.run = 0 return 0 end
  assert(self.db:exec("INSERT INTO runs (started) VALUES (?)", os.time()))
  self.run = assert(self.db:one("SELECT max(id) AS id FROM runs")).id
  return self.run
end

--- End the run with its summary's counts (and status: "ok", "failed", "stopped").
function methods:end_run(s, status)
  if self.dry_run then return true end
  return self.db:exec("UPDATE runs SET finished = ?, status = ?, saved = ?, moved = ?, adopted = ?, " ..
    "skipped = ?, deleted = ?, failed = ?, bytes = ?, complete = ? WHERE id = ?", os.time(), status,
    s.saved, s.moved, s.adopted, s.skipped, s.deleted, s.failed, s.bytes, s.complete, self.run)
end

--- The row of (album, key), or nil.
function methods:get(album, key)
  return self.db:one("SELECT * FROM images WHERE album = ? AND key = ?", album, key)
end

--- The row whose path is `path` as a case-insensitive file system sees it, or nil.
function methods:owner(path)
  return self.db:one("SELECT * FROM images WHERE fold = ?", fold(path))
end

--- The rows of image `key` in albums other than `album` (an array).
function methods:others(album, key)
  local out = {}
  for row in self.db:rows("SELECT * FROM images WHERE key = ? AND album <> ?", key, album) do out[#out + 1] = row end
  return out
end

--- Every row (an array): for the deletions at the end of a run.
function methods:all()
  local out = {}
  for row in self.db:rows("SELECT album, key, path, size FROM images") do out[#out + 1] = row end
  return out
end

--- Record a saved file, in one transaction: the row of (r.album, r.key)
-- (path, md5, size, src, last_updated), replacing `replaces` (another row
-- {album, key} that this one takes over: a move between albums), and
-- forgetting the failure and the .part of it. true, or nil, err.
function methods:save(r, replaces)
  if self.dry_run then return true end
  return tx(self.db, function()
    local db = self.db
    if replaces then
      assert(db:exec("DELETE FROM images WHERE album = ? AND key = ?", replaces.album, replaces.key))
    end
    assert(db:exec("DELETE FROM images WHERE fold = ? AND NOT (album = ? AND key = ?)", fold(r.path), r.album, r.key))
    assert(db:exec("INSERT OR REPLACE INTO images (album, key, path, fold, md5, size, src, last_updated, " ..
      "saved_at, run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", r.album, r.key, r.path, fold(r.path), r.md5,
      r.size, r.src, r.last_updated, os.time(), self.run))
    assert(db:exec("DELETE FROM failures WHERE album = ? AND key = ?", r.album, r.key))
    assert(db:exec("DELETE FROM parts WHERE path = ?", r.path))
    return true
  end)
end

--- Change the path of a row (a move, or a file displaced to make room).
function methods:set_path(album, key, path)
  if self.dry_run then return true end
  return self.db:exec("UPDATE images SET path = ?, fold = ? WHERE album = ? AND key = ?", path, fold(path),
    album, key)
end

--- Forget a row (its file was deleted, or is gone).
function methods:remove(album, key)
  if self.dry_run then return true end
  return tx(self.db, function()
    assert(self.db:exec("DELETE FROM images WHERE album = ? AND key = ?", album, key))
    assert(self.db:exec("DELETE FROM failures WHERE album = ? AND key = ?", album, key))
    return true
  end)
end

--- Record why (album, key) could not be saved this run.
function methods:fail(album, key, path, code, message)
  if self.dry_run then return true end
  return self.db:exec("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)", album, key, path,
    tostring(code), tostring(message), self.run, os.time())
end

--- Forget the failures of images no longer listed (`keep(album, key)` says
-- which are).
function methods:prune_failures(keep)
  if self.dry_run then return true end
  local gone = {}
  for row in self.db:rows("SELECT album, key FROM failures") do
    if not keep(row.album, row.key) then gone[#gone + 1] = row end
  end
  return tx(self.db, function()
    for _, row in ipairs(gone) do
      assert(self.db:exec("DELETE FROM failures WHERE album = ? AND key = ?", row.album, row.key))
    end
    return true
  end)
end

--- Note a download begun into path .. ".part" (for `stale_parts`).
function methods:part(path)
  if self.dry_run then return true end
  return self.db:exec("INSERT OR REPLACE INTO parts VALUES (?, ?)", path, self.run)
end

--- The .part files of downloads begun by earlier runs and not touched by
-- this one (their images are gone or got other names): an array of paths;
-- `drop_parts(list)` forgets them.
function methods:stale_parts()
  local out = {}
  for row in self.db:rows("SELECT path FROM parts WHERE run < ?", self.run) do out[#out + 1] = row.path end
  return out
end

function methods:drop_parts(list)
  if self.dry_run then return true end
  return tx(self.db, function()
    for _, p in ipairs(list) do assert(self.db:exec("DELETE FROM parts WHERE path = ?", p)) end
    return true
  end)
end

--- Close the manifest (and release its lock).
function methods:close()
  self.db:close()
end
mt.__close = methods.close

return {
  open = open,
  FILE = FILE,
  SCHEMA = SCHEMA,
  methods = methods,
  mt = mt,
}
