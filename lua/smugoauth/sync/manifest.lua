--- The manifest of a synced folder: a SQLite database under DIR
-- (`.smugoauth-sync.db`, through luasql.sqlite3) that records, per album,
-- the MD5 of every local file uploaded and the key of the image SmugMug made
-- of it. A file SmugMug transforms (HEIC to JPEG, a re-encoded video) never
-- has the same MD5 on SmugMug again: the manifest is how sync knows it is
-- there. It also caches the MD5 of local files by path, size, modification
-- time and inode, so an unchanged file is not read again.
--
-- Durability: the database is a smugoauth.sqlite store (WAL journal, one
-- write lock for the life of the handle), written one transaction per
-- upload, before the upload starts (state "pending", with the file name
-- sent) and when it is done (state "done", the image key): a run killed at
-- any point (kill -9) leaves a manifest that is consistent, and a pending
-- row tells the next run which upload may have reached SmugMug. A second
-- sync of the same folder at the same time is refused (the lock; err code
-- "io", "in use by another process") instead of uploading the same files
-- twice; the lock goes with the process.
-- @module smugoauth.sync.manifest
local errors = require "smugoauth.errors"
local core = require "smugoauth.core"
local sqlite = require "smugoauth.sqlite"

--- The file name of the manifest under DIR (with its -wal and -shm
-- companions, never synced).
local NAME = ".smugoauth-sync.db"

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)]],
  -- a local file's MD5 -> the image made of it in an album
  [[CREATE TABLE IF NOT EXISTS uploads (
      md5 TEXT NOT NULL,          -- hex, of the local file
      album TEXT NOT NULL,        -- album key
      image_key TEXT,             -- null while pending
      state TEXT NOT NULL,        -- 'pending' (sent, no answer yet) | 'done'
      path TEXT NOT NULL,         -- relative to DIR, when uploaded
      filename TEXT NOT NULL,     -- the FileName sent
      size INTEGER NOT NULL,
      at INTEGER NOT NULL,        -- seconds since the epoch
      PRIMARY KEY (md5, album))]],
  -- the MD5 of a local file while it keeps its size, mtime and inode
  [[CREATE TABLE IF NOT EXISTS hashes (
      path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
      ino INTEGER NOT NULL, md5 TEXT NOT NULL)]],
  [[CREATE TABLE IF NOT EXISTS runs (
      id INTEGER PRIMARY KEY, started INTEGER NOT NULL, finished INTEGER,
      target TEXT, uploaded INTEGER, failed INTEGER)]],
}
local VERSION = "1"

local methods = {}
local mt = { __name = "smugoauth.SyncManifest", __index = methods }

-- Run statements (each {sql, values...}) in one transaction: true | nil, err.
function methods:_tx(stmts)
  return self.db:transaction(function()
    for _, st in ipairs(stmts) do
      local ok, err = self.db:exec(table.unpack(st, 1, st.n or #st))
      if not ok then return nil, err end
    end
    return true
  end)
end

--- Open (and create) the manifest of dir: `manifest.open(dir [, opts])`.
--   opts.read_only  false: true opens an existing manifest without writing
--                   to it (a dry run); a folder without one gets an empty
--                   manifest that holds nothing (and no file is made)
--   opts.target     a string recorded with this run (what is synced to)
-- Returns the manifest or nil, err: code "io" when it cannot be opened, is
-- in use by another sync, or is not a manifest of this version; "config"
-- without LuaSQL's SQLite driver.
local function open(dir, opts)
  opts = opts or {}
  local path = dir .. "/" .. NAME
  local self = setmetatable({ path = path, dir = dir, read_only = opts.read_only, pending_hashes = {} }, mt)
  if opts.read_only and core.file_size(path) == nil then
    self.empty = true
    return self
  end
  local db, err = sqlite.open(path, { readonly = opts.read_only })
  if not db then return nil, err end
  self.db = db
  local ok
  if opts.read_only then
    ok, err = db:exec("PRAGMA query_only = ON")
  else
    local stmts = {}
    for i, sql in ipairs(SCHEMA) do stmts[i] = { sql } end
    stmts[#stmts + 1] = { "INSERT OR IGNORE INTO meta (k, v) VALUES ('version', ?)", VERSION }
    stmts[#stmts + 1] = { "INSERT INTO runs (started, target) VALUES (?, ?)", os.time(), opts.target or "",
                          n = 3 }
    ok, err = self:_tx(stmts)
    if ok then
      local row = db:one("SELECT max(id) AS id FROM runs")
      self.run_id = row and row.id
    end
  end
  if ok then
    local row
    row, err = db:one("SELECT v FROM meta WHERE k = 'version'")
    if row and row.v ~= VERSION then
      err = errors.new("io", ("manifest %s: version %s, this smugoauth reads %s"):format(path, tostring(row.v),
        VERSION), { path = path })
    elseif not err then
      return self
    end
  end
  self:close()
  return nil, err
end

--- What the manifest knows of an album: `m:album(key)` -> a map of local
-- MD5 (hex) to its row {md5, album, image_key, state, path, filename, size,
-- at}, or nil, err.
function methods:album(key)
  if self.empty then return {} end
  local ok, by = pcall(function()
    local t = {}
    for r in self.db:rows("SELECT * FROM uploads WHERE album = ?", key) do t[r.md5] = r end
    return t
  end)
  if not ok then
    if errors.is(by) then return nil, by end
    error(by, 0)
  end
  return by
end

--- Record that a file is being uploaded (before the request): `m:pending(
-- md5, album, path, filename, size)` -> true | nil, err. One transaction.
function methods:pending(md5, album, path, filename, size)
  if self.read_only then return true end
  return self:_tx { { [[INSERT INTO uploads (md5, album, image_key, state, path, filename, size, at)
    VALUES (?, ?, NULL, 'pending', ?, ?, ?, ?)
    ON CONFLICT (md5, album) DO UPDATE SET state = 'pending', image_key = NULL, path = excluded.path,
      filename = excluded.filename, size = excluded.size, at = excluded.at]],
    md5, album, path, filename, size, os.time() } }
end

--- Record that a file is in the album as image `image_key` (uploaded, or
-- found there): `m:done(md5, album, image_key, path, filename, size)` ->
-- true | nil, err. One transaction.
function methods:done(md5, album, image_key, path, filename, size)
  if self.read_only then return true end
  return self:_tx { { [[INSERT INTO uploads (md5, album, image_key, state, path, filename, size, at)
    VALUES (?, ?, ?, 'done', ?, ?, ?, ?)
    ON CONFLICT (md5, album) DO UPDATE SET state = 'done', image_key = excluded.image_key,
      path = excluded.path, filename = excluded.filename, size = excluded.size, at = excluded.at]],
    md5, album, image_key, path, filename, size, os.time() } }
end

--- Forget what the manifest says of a file in an album (its image is gone
-- from SmugMug): `m:forget(md5, album)` -> true | nil, err.
function methods:forget(md5, album)
  if self.read_only then return true end
  return self:_tx { { "DELETE FROM uploads WHERE md5 = ? AND album = ?", md5, album } }
end

--- The cached MD5 (hex) of a local file, if it still has the size, mtime
-- and inode it had when hashed: `m:cached_md5(rel, size, mtime_ns, ino)`.
function methods:cached_md5(rel, size, mtime_ns, ino)
  if self.empty then return nil end
  if not self.hashes then
    self.hashes = {}
    pcall(function()                                -- a cache: unreadable is empty
      for r in self.db:rows("SELECT * FROM hashes") do self.hashes[r.path] = r end
    end)
  end
  local r = self.hashes[rel]
  if r and r.size == size and r.mtime_ns == mtime_ns and r.ino == ino then return r.md5 end
  return nil
end

--- Remember the MD5 of a local file (written by `m:flush_hashes()`, in one
-- transaction: the cache is only an optimisation).
function methods:remember_md5(rel, size, mtime_ns, ino, md5)
  if self.read_only then return end
  local p = self.pending_hashes
  p[#p + 1] = { "INSERT OR REPLACE INTO hashes (path, size, mtime_ns, ino, md5) VALUES (?, ?, ?, ?, ?)",
                rel, size, mtime_ns, ino, md5 }
end

--- Write the remembered MD5s: true | nil, err.
function methods:flush_hashes()
  if self.read_only or #self.pending_hashes == 0 then return true end
  local p = self.pending_hashes
  self.pending_hashes = {}
  return self:_tx(p)
end

--- Record the end of this run: `m:finish(uploaded, failed)`.
function methods:finish(uploaded, failed)
  if self.read_only or not self.run_id then return true end
  return self:_tx { { "UPDATE runs SET finished = ?, uploaded = ?, failed = ? WHERE id = ?",
    os.time(), uploaded, failed, self.run_id } }
end

--- Close the database (and release the folder for another sync). Idempotent.
function methods:close()
  if self.db then self.db:close() self.db = nil end
end
mt.__close = methods.close
mt.__gc = methods.close

--- Whether a name (of a file directly under DIR) is the manifest's.
local function is_manifest_file(name)
  return name == NAME or name == NAME .. "-wal" or name == NAME .. "-shm" or name == NAME .. "-journal"
end

return {
  open = open,
  NAME = NAME,
  is_manifest_file = is_manifest_file,
  methods = methods,
  mt = mt,
}
