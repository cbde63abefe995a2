--- smugoauth.sqlite: a small SQLite store over LuaSQL's SQLite3 driver
-- (Debian `lua-sql-sqlite3`, LuaRocks `luasql-sqlite3`), for the manifests
-- of `api:backup` and `api:sync`: WAL journal, one write lock held for the
-- whole life of the handle (a second writer of the same file is refused at
-- once), statements with `?` placeholders whose values are quoted here
-- (LuaSQL has no bound parameters), and transactions.
--
--     local sqlite = require "smugoauth.sqlite"
--     local db = assert(sqlite.open("dir/manifest.sqlite"))
--     db:exec("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, n INTEGER)")
--     db:transaction(function() db:exec("INSERT INTO t VALUES (?, ?)", "a", 1) end)
--     for row in db:rows("SELECT k, n FROM t WHERE n > ?", 0) do print(row.k, row.n) end
--     db:close()
--
-- The driver is loaded on first use: without it, `open` fails with code
-- "config" and nothing else of smugoauth is affected.
-- @module smugoauth.sqlite
local errors = require "smugoauth.errors"

local format, concat, type, tostring = string.format, table.concat, type, tostring

local methods = {}
local mt = { __name = "smugoauth.Sqlite", __index = methods }

local env                                         -- the driver's environment (one per process)

--- A value as an SQL literal: strings quoted ('' doubled; with a NUL byte:
-- a blob X'..'), integers and floats as numbers, booleans 1/0, nil NULL.
local function quote(v)
  local t = type(v)
  if t == "string" then
    if v:find("%z") then return "X'" .. v:gsub(".", function(c) return format("%02X", c:byte()) end) .. "'" end
    return "'" .. v:gsub("'", "''") .. "'"
  elseif t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v or v == math.huge or v == -math.huge then error("sqlite: a number that SQL cannot hold", 3) end
    return format("%.17g", v)
  elseif t == "boolean" then
    return v and "1" or "0"
  elseif v == nil then
    return "NULL"
  end
  error("sqlite: cannot store a " .. t, 3)
end

-- sql with each ? replaced by the quoted next value (? inside quotes of
-- sql itself are not placeholders).
local function bind(sql, ...)
  local n = select("#", ...)
  if n == 0 then return sql end
  local args, i, out = { ... }, 0, {}
  local pos, len = 1, #sql
  while pos <= len do
    local q = sql:find("[?']", pos)
    if not q then out[#out + 1] = sql:sub(pos) break end
    if sql:sub(q, q) == "'" then
      local e = sql:find("'", q + 1, true)
      if not e then error("sqlite: unterminated quote in SQL", 3) end
      out[#out + 1] = sql:sub(pos, e)
      pos = e + 1
    else
      i = i + 1
      if i > n then error("sqlite: more ? than values", 3) end
      out[#out + 1] = sql:sub(pos, q - 1)
      out[#out + 1] = quote(args[i])
      pos = q + 1
    end
  end
  if i ~= n then error("sqlite: more values than ?", 3) end
  return concat(out)
end

-- Run a PRAGMA (or any statement) on a raw connection: its first value
-- (true when it returns no rows), or nil, message.
local function pragma(conn, sql)
  local cur, msg = conn:execute(sql)
  if cur == nil then return nil, msg end
  if type(cur) ~= "userdata" then return true end
  local row = cur:fetch({}, "n")
  cur:close()
  if row == nil then return true end
  return row[1]
end

--- Open (or create) a database: `sqlite.open(path [, opts])`.
--   opts.readonly  true: no lock taken, no write expected (a dry run)
--   opts.busy      seconds a statement waits for another connection's lock
--                  (default 5); the write lock itself is not waited for
-- Returns the handle, or nil, err: code "config" (no SQLite driver), "io"
-- (cannot open; the message says so when another process holds the lock).
local function open(path, opts)
  if type(path) ~= "string" or path == "" or path:find("%z") then
    error("sqlite.open: path must be a non-empty string without NUL", 2)
  end
  opts = opts or {}
  if not env then
    local ok, driver = pcall(require, "luasql.sqlite3")
    if not ok then
      return nil, errors.new("config", "SQLite is not available: install LuaSQL's SQLite3 driver " ..
        "(Debian: lua-sql-sqlite3; LuaRocks: luasql-sqlite3)")
    end
    env = driver.sqlite3()
  end
  local conn, msg = env:connect(path)
  if not conn then return nil, errors.new("io", ("cannot open %s: %s"):format(path, tostring(msg)), { path = path }) end
  local self = setmetatable({ conn = conn, path = path, depth = 0 }, mt)
  local function fail(m)
    conn:close()
    return nil, errors.new("io", ("%s: %s"):format(path, m), { path = path })
  end
  if not opts.readonly then
    -- the write lock first, not waited for: a second writer is refused at
    -- once (exclusive locking mode: once written, the file stays locked
    -- until close; the WAL index then lives in memory, no -shm file)
    pragma(conn, "PRAGMA locking_mode = EXCLUSIVE")
    local mode, err = pragma(conn, "PRAGMA journal_mode = WAL")
    if mode == nil then
      return fail(tostring(err):find("locked", 1, true) and "in use by another process (it is locked)" or tostring(err))
    end
    if tostring(mode):lower() ~= "wal" then return fail("cannot use a WAL journal") end
    local ok
    ok, err = conn:execute("BEGIN EXCLUSIVE")    -- the lock is ours from now on
    if ok then ok, err = conn:execute("COMMIT") end
    if not ok then
      return fail(tostring(err):find("locked", 1, true) and "in use by another process (it is locked)" or tostring(err))
    end
    -- a commit reaches the WAL file before it returns (kill -9 keeps it);
    -- it is synced at checkpoints (a power cut may lose the last ones, never
    -- corrupt the database)
    pragma(conn, "PRAGMA synchronous = NORMAL")
  end
  pragma(conn, ("PRAGMA busy_timeout = %d"):format(math.floor((opts.busy or 5) * 1000)))
  return self
end

--- Run a statement with `?` placeholders: `db:exec(sql, ...)` -> the
-- number of rows changed (or true), or nil, err (code "io"). Misuse (values
-- that do not fit the placeholders) raises.
function methods:exec(sql, ...)
  local r, msg = self.conn:execute(bind(sql, ...))
  if r == nil then return nil, errors.new("io", ("%s: %s"):format(self.path, tostring(msg)), { path = self.path }) end
  if type(r) == "userdata" then r:close() return true end
  return r
end

--- The rows of a query: `for row in db:rows(sql, ...) do` (each a table by
-- column name). A failing query raises (an error object, code "io").
function methods:rows(sql, ...)
  local cur, msg = self.conn:execute(bind(sql, ...))
  if cur == nil then error(errors.new("io", ("%s: %s"):format(self.path, tostring(msg)), { path = self.path }), 2) end
  if type(cur) ~= "userdata" then return function() return nil end end
  return function()
    local row = cur:fetch({}, "a")
    if not row then cur:close() end
    return row
  end
end

--- The first row of a query (a table by column name), or nil; nil, err
-- when the query fails.
function methods:one(sql, ...)
  local cur, msg = self.conn:execute(bind(sql, ...))
  if cur == nil then return nil, errors.new("io", ("%s: %s"):format(self.path, tostring(msg)), { path = self.path }) end
  if type(cur) ~= "userdata" then return nil end
  local row = cur:fetch({}, "a")
  cur:close()
  return row
end

--- Run fn() in one transaction: committed when fn returns, rolled back
-- when it raises (the error is raised again) or returns nil, err (returned).
-- Nested calls join the outer transaction. Returns what fn returned, or
-- nil, err (code "io") when the commit failed.
function methods:transaction(fn, ...)
  if self.depth > 0 then return fn(...) end
  local ok, err = self:exec("BEGIN IMMEDIATE")
  if not ok then return nil, err end
  self.depth = 1
  local r = table.pack(pcall(fn, ...))
  self.depth = 0
  if not r[1] then
    self.conn:execute("ROLLBACK")
    error(r[2], 0)
  end
  if r[2] == nil and r.n >= 3 then
    self.conn:execute("ROLLBACK")
    return table.unpack(r, 2, r.n)
  end
  ok, err = self:exec("COMMIT")
  if not ok then
    self.conn:execute("ROLLBACK")
    return nil, err
  end
  return table.unpack(r, 2, r.n)
end

--- Close the database (idempotent).
function methods:close()
  if self.conn then
    self.conn:close()
    self.conn = nil
  end
end
mt.__close = methods.close

return {
  open = open,
  quote = quote,
  bind = bind,
  methods = methods,
  mt = mt,
}
