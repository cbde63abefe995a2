--- The manifest of a synced folder: a SQLite database under DIR
-- (`.smugoauth-sync.db`, through luasql.sqlite3) that records, per album,
-- the MD5 of every local file uploaded and the key of the image SmugMug made
-- of it. A file SmugMug transforms (HEIC to JPEG, a re-encoded video) never
-- has the same MD5 on SmugMug again: the manifest is how sync knows it is
-- there. It also caches the MD5 of local files by path, size, modification
-- time and inode, so an unchanged file is not read again.
--
-- Durability: WAL journal, `synchronous = FULL`, one transaction per
-- upload, written before the upload starts (state "pending", with the file
-- name sent) and when it is done (state "done", the image key): a run
-- killed at any point (kill -9) leaves a manifest that is consistent, and
-- a pending row tells the next run which upload may have reached SmugMug.
-- The database is opened in exclusive locking mode: a second sync of the
-- same folder at the same time is refused (err code "busy") instead of
-- uploading the same files twice; the lock goes with the process.
-- @module smugoauth.sync.manifest
local errors = require "smugoauth.errors"
local core = require "smugoauth.core"

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

local driver                                    -- luasql.sqlite3, loaded on first use

-- An error of the manifest at path.
local function db_error(path, msg)
  msg = tostring(msg):gsub("^LuaSQL: ", "")
  local code = msg:find("locked", 1, true) and "busy" or "io"
  if code == "busy" then msg = "in use by another sync of this folder (" .. msg .. ")" end
  return errors.new(code, ("manifest %s: %s"):format(path, msg), { path = path })
end

-- A string as an SQL literal.
local function lit(con, v)
  if v == nil then return "NULL" end
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "number" then return ("%d"):format(v) end
  return "'" .. con:escape(tostring(v)) .. "'"
end

-- Run one statement: rows (an array of maps) for a query, true otherwise,
-- or nil, err.
function methods:_exec(sql)
  local r, msg = self.con:execute(sql)
  if not r then return nil, db_error(self.path, msg) end
  if type(r) ~= "userdata" then return true end
  local rows = {}
  while true do
    local row = r:fetch({}, "a")
    if not row then break end
    rows[#rows + 1] = row
  end
  r:close()
  return rows
end

-- sql with each `?` replaced by the next value of ... as a literal.
function methods:_sql(sql, ...)
  local args, i = table.pack(...), 0
  return (sql:gsub("%?", function()
    i = i + 1
    return lit(self.con, args[i])
  end))
end

-- Run statements in one transaction; nil, err (rolled back) on a failure.
function methods:_tx(stmts)
  local ok, err = self:_exec("BEGIN IMMEDIATE")
  if not ok then return nil, err end
  for _, s in ipairs(stmts) do
    ok, err = self:_exec(s)
    if not ok then
      self:_exec("ROLLBACK")
      return nil, err
    end
  end
  return self:_exec("COMMIT")
end

--- Open (and create) the manifest of dir: `manifest.open(dir [, opts])`.
--   opts.read_only  false: true opens an existing manifest without writing
--                   to it (a dry run); a folder without one gets an empty
--                   manifest that holds nothing
--   opts.target     a string recorded with this run (what is synced to)
-- Returns the manifest or nil, err: code "busy" when another sync holds
-- it, "io" when it cannot be opened or is not a manifest.
local function open(dir, opts)
  opts = opts or {}
  local path = dir .. "/" .. NAME
  local self = setmetatable({ path = path, dir = dir, read_only = opts.read_only, pending_hashes = {} }, mt)
  if opts.read_only and core.file_size(path) == nil then
    self.empty = true
    return self
  end
  if not driver then
    local ok, d = pcall(require, "luasql.sqlite3")
    if not ok then
      return nil, errors.new("config", "the manifest needs luasql.sqlite3 (Debian lua-sql-sqlite3, " ..
        "LuaRocks luasql-sqlite3): " .. tostring(d):match("^[^\n]*"))
    end
    driver = d
  end
  local env = driver.sqlite3()
  local con, msg = env:connect(path)
  if not con then
    env:close()
    return nil, db_error(path, msg)
  end
  self.env, self.con = env, con
  local setup = opts.read_only and { "PRAGMA query_only = ON" } or {
    "PRAGMA locking_mode = EXCLUSIVE",          -- before WAL: no shared memory, one sync at a time
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
  }
  for _, s in ipairs(setup) do
    local ok, err = self:_exec(s)
    if not ok then
      self:close()
      return nil, err
    end
  end
  if not opts.read_only then
    local stmts = {}
    for i, s in ipairs(SCHEMA) do stmts[i] = s end
    stmts[#stmts + 1] = self:_sql("INSERT OR IGNORE INTO meta (k, v) VALUES ('version', ?)", VERSION)
    stmts[#stmts + 1] = self:_sql("INSERT INTO runs (started, target) VALUES (?, ?)", os.time(), opts.target)
    local ok, err = self:_tx(stmts)           -- also takes the exclusive lock
    if not ok then
      self:close()
      return nil, err
    end
    local rows = self:_exec("SELECT max(id) AS id FROM runs")
    self.run_id = rows and rows[1] and rows[1].id
  end
  local rows, err = self:_exec("SELECT v FROM meta WHERE k = 'version'")
  if not rows then
    self:close()
    return nil, err
  end
  if rows[1] and rows[1].v ~= VERSION then
    self:close()
    return nil, errors.new("io", ("manifest %s: version %s, this smugoauth reads %s"):format(path,
      tostring(rows[1].v), VERSION), { path = path })
  end
  return self
end

--- What the manifest knows of an album: `m:album(key)` -> a map of local
-- MD5 (hex) to its row {md5, album, image_key, state, path, filename, size,
-- at}, or nil, err.
function methods:album(key)
  if self.empty then return {} end
  local rows, err = self:_exec(self:_sql("SELECT * FROM uploads WHERE album = ?", key))
  if not rows then return nil, err end
  local by = {}
  for _, r in ipairs(rows) do by[r.md5] = r end
  return by
end

--- Record that a file is being uploaded (before the request): `m:pending(
-- md5, album, path, filename, size)` -> true | nil, err. One transaction.
function methods:pending(md5, album, path, filename, size)
  if self.read_only then return true end
  return self:_tx { self:_sql([[INSERT INTO uploads (md5, album, image_key, state, path, filename, size, at)
    VALUES (?, ?, NULL, 'pending', ?, ?, ?, ?)
    ON CONFLICT (md5, album) DO UPDATE SET state = 'pending', image_key = NULL, path = excluded.path,
      filename = excluded.filename, size = excluded.size, at = excluded.at]],
    md5, album, path, filename, size, os.time()) }
end

--- Record that a file is in the album as image `image_key` (uploaded, or
-- found there): `m:done(md5, album, image_key, path, filename, size)` ->
-- true | nil, err. One transaction.
function methods:done(md5, album, image_key, path, filename, size)
  if self.read_only then return true end
  return self:_tx { self:_sql([[INSERT INTO uploads (md5, album, image_key, state, path, filename, size, at)
    VALUES (?, ?, ?, 'done', ?, ?, ?, ?)
    ON CONFLICT (md5, album) DO UPDATE SET state = 'done', image_key = excluded.image_key,
      path = excluded.path, filename = excluded.filename, size = excluded.size, at = excluded.at]],
    md5, album, image_key, path, filename, size, os.time()) }
end

--- Forget what the manifest says of a file in an album (its image is gone
-- from SmugMug): `m:forget(md5, album)` -> true | nil, err.
function methods:forget(md5, album)
  if self.read_only then return true end
  return self:_tx { self:_sql("DELETE FROM uploads WHERE md5 = ? AND album = ?", md5, album) }
end

--- The cached MD5 (hex) of a local file, if it still has the size, mtime
-- and inode it had when hashed: `m:cached_md5(rel, size, mtime_ns, ino)`.
function methods:cached_md5(rel, size, mtime_ns, ino)
  if self.empty then return nil end
  if not self.hashes then
    local rows = self:_exec("SELECT * FROM hashes")
    self.hashes = {}
    for _, r in ipairs(rows or {}) do self.hashes[r.path] = r end
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
  p[#p + 1] = self:_sql("INSERT OR REPLACE INTO hashes (path, size, mtime_ns, ino, md5) VALUES (?, ?, ?, ?, ?)",
    rel, size, mtime_ns, ino, md5)
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
  return self:_tx { self:_sql("UPDATE runs SET finished = ?, uploaded = ?, failed = ? WHERE id = ?",
    os.time(), uploaded, failed, self.run_id) }
end

--- Close the database (and release the folder for another sync). Idempotent.
function methods:close()
  if self.con then self.con:close() self.con = nil end
  if self.env then self.env:close() self.env = nil end
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
