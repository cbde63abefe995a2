-- smugoauth.sqlite and smugoauth.backup.manifest: the backup's record of
-- what it saved. Values quoted safely (no bound parameters in LuaSQL), WAL,
-- one write lock for the whole run (a second backup into the same folder is
-- refused at once), transactions that are all or nothing, and a commit that
-- survives a kill -9 of the writer.
local sqlite = require "smugoauth.sqlite"
local manifest = require "smugoauth.backup.manifest"
local core = require "smugoauth.core"
local files = require "support.files"
local proc = require "support.proc"

local function pwd()
  local p = assert(io.popen("pwd"))
  local s = p:read("l")
  p:close()
  return s
end
local ROOT = pwd()

-- A Lua child in the project's tree: lua5.4 -e CODE, started; its handle.
local function child(code)
  return proc.spawn({ "lua5.4", "-e", "package.path = '" .. ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;' .. " ..
    "package.path; package.cpath = '" .. ROOT .. "/build/?.so;' .. package.cpath; " .. code },
    { lines = 1, timeout = 20 })
end

describe("smugoauth.sqlite", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. proc.q(dir)) end)

  it("quotes every value: quotes, question marks, NUL bytes, numbers, booleans, nil", function()
    local db = assert(sqlite.open(dir .. "/t.sqlite"))
    assert(db:exec("CREATE TABLE t (k TEXT PRIMARY KEY, n, b)"))
    local nasty = { "it's", "a?b", "x'); DROP TABLE t; --", "nul\0byte", "\xff\xfe", "" }
    for i, k in ipairs(nasty) do assert(db:exec("INSERT INTO t VALUES (?, ?, ?)", k, i, i % 2 == 0)) end
    for i, k in ipairs(nasty) do
      local row = assert(db:one("SELECT k, n, b FROM t WHERE k = ?", k))
      assert.equal(k, row.k)
      assert.equal(i, row.n)
      assert.equal(i % 2 == 0 and 1 or 0, row.b)
    end
    assert.equal(1.5, db:one("SELECT ? AS v", 1.5).v)
    assert.equal(math.tointeger(2 ^ 53) + 1, db:one("SELECT ? AS v", math.tointeger(2 ^ 53) + 1).v)
    assert.is_nil(db:one("SELECT ? AS v", nil).v)
    -- a '?' inside the SQL's own quotes is not a placeholder
    assert.equal("?", db:one("SELECT '?' AS v").v)
    assert.equal("a", db:one("SELECT '?' || ? AS v", "a").v:sub(2))
    local n = 0
    for _ in db:rows("SELECT * FROM t") do n = n + 1 end
    assert.equal(#nasty, n)
    db:close()
  end)

  it("raises on values that do not fit the placeholders, and on what SQL cannot hold", function()
    local db = assert(sqlite.open(dir .. "/t.sqlite"))
    assert.has_error(function() db:exec("SELECT ?, ?", 1) end, "sqlite: more ? than values")
    assert.has_error(function() db:exec("SELECT ?", 1, 2) end, "sqlite: more values than ?")
    assert.has_error(function() db:exec("SELECT ?", {}) end, "sqlite: cannot store a table")
    assert.has_error(function() db:exec("SELECT ?", 0 / 0) end, "sqlite: a number that SQL cannot hold")
    assert.has_error(function() sqlite.open("") end)
    db:close()
  end)

  it("fails with nil, err (code io) on a bad statement; a transaction is all or nothing", function()
    local db = assert(sqlite.open(dir .. "/t.sqlite"))
    assert(db:exec("CREATE TABLE t (k TEXT PRIMARY KEY)"))
    local ok, err = db:exec("INSERT INTO nope VALUES (1)")
    assert.is_nil(ok)
    assert.equal("io", err.code)
    -- fn raises: rolled back, raised again
    assert.has_error(function()
      db:transaction(function() assert(db:exec("INSERT INTO t VALUES ('a')")) error("boom") end)
    end)
    assert.is_nil(db:one("SELECT k FROM t WHERE k = 'a'"))
    -- fn returns nil, err: rolled back, returned
    local r, e = db:transaction(function() db:exec("INSERT INTO t VALUES ('b')") return nil, "no" end)
    assert.is_nil(r)
    assert.equal("no", e)
    assert.is_nil(db:one("SELECT k FROM t WHERE k = 'b'"))
    assert.equal(7, db:transaction(function() db:exec("INSERT INTO t VALUES ('c')") return 7 end))
    assert.equal("c", db:one("SELECT k FROM t").k)
    db:close()
  end)

  it("uses a WAL journal and refuses a second writer at once", function()
    local path = dir .. "/t.sqlite"
    local h = child(("local s = require 'smugoauth.sqlite'; local db = assert(s.open(%q)); " ..
      "print(db:one('PRAGMA journal_mode').journal_mode); io.stdout:flush(); os.execute('sleep 30')"):format(path))
    assert.equal("wal", h.line)
    local t0 = core.monotime()
    local db, err = sqlite.open(path)
    assert.is_nil(db)
    assert.equal("io", err.code)
    assert.matches("in use by another process", err.message)
    assert(core.monotime() - t0 < 2, "refused at once")
    h:signal("KILL")
    h:wait()
    h:close()
    -- once the holder is gone (even killed), the lock is free
    db = assert(sqlite.open(path))
    db:close()
  end)

  it("without the driver, open fails with code config (nothing else breaks)", function()
    local h = child("package.preload['luasql.sqlite3'] = function() error('no driver') end; " ..
      "local s = require 'smugoauth.sqlite'; local db, err = s.open('/tmp/x.sqlite'); print(err.code, err.message)")
    local line = h.line
    h:close()
    assert.matches("^config\tSQLite is not available: install LuaSQL's SQLite3 driver", line)
  end)
end)

describe("backup manifest", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. proc.q(dir)) end)

  it("records saved files by (album, key); finds them by path in any case; forgets them", function()
    local m = assert(manifest.open(dir))
    assert.truthy(core.file_size(dir .. "/.smugoauth/backup.sqlite"))
    m:begin_run()
    assert(m:save { album = "A1", key = "K1", path = "Trip/IMG.JPG", md5 = ("a"):rep(32), size = 10, src = "s1" })
    assert(m:save { album = "A2", key = "K1", path = "Other/IMG.JPG", md5 = ("a"):rep(32), size = 10, src = "s1" })
    assert.equal("Trip/IMG.JPG", m:get("A1", "K1").path)
    assert.equal("A1", m:owner("trip/img.jpg").album)
    assert.equal(1, #m:others("A1", "K1"))
    assert.equal("A2", m:others("A1", "K1")[1].album)
    -- a move between albums: the old row is replaced in the same transaction
    assert(m:save({ album = "A3", key = "K1", path = "Third/IMG.JPG", md5 = ("a"):rep(32), size = 10, src = "s1" },
                  { album = "A2", key = "K1" }))
    assert.is_nil(m:get("A2", "K1"))
    assert(m:set_path("A1", "K1", ".smugoauth/displaced/A1-K1"))
    assert.is_nil(m:owner("Trip/IMG.JPG"))
    assert(m:fail("A4", "K4", "x.jpg", "processing", "not yet"))
    assert(m:remove("A1", "K1"))
    assert.is_nil(m:get("A1", "K1"))
    assert.equal(1, #m:all())
    m:close()
  end)

  it("one backup at a time per folder; a dry run opens it without a lock and writes nothing", function()
    local m = assert(manifest.open(dir))
    local m2, err = manifest.open(dir)
    assert.is_nil(m2)
    assert.matches("in use by another process", err.message)
    m:close()
    local empty = files.tmpdir()
    local d = assert(manifest.open(empty .. "/none", { dry_run = true }))
    d:begin_run()
    assert(d:save { album = "A", key = "K", path = "p", size = 1 })
    assert.is_nil(d:get("A", "K"))
    d:close()
    assert.is_nil(core.file_size(empty .. "/none/.smugoauth/backup.sqlite"))
    os.execute("rm -rf " .. proc.q(empty))
  end)

  it("a commit survives kill -9 of the writer right after it", function()
    local h = child(("local m = assert(require('smugoauth.backup.manifest').open(%q)); m:begin_run(); " ..
      "for i = 1, 50 do assert(m:save { album = 'A', key = 'K' .. i, path = 'a/' .. i, md5 = 'm', size = i, " ..
      "src = 's' }) end; print('SAVED'); io.stdout:flush(); os.execute('sleep 30')"):format(dir))
    assert.equal("SAVED", h.line)
    h:signal("KILL")
    assert.equal(137, h:wait())
    h:close()
    local m = assert(manifest.open(dir))
    assert.equal(50, #m:all())
    assert.equal(50, m:get("A", "K50").size)
    m:close()
  end)

  it("stale .part files: those of earlier runs that this one did not take up", function()
    local m = assert(manifest.open(dir))
    m:begin_run()
    m:part("a/one.jpg")
    m:part("a/two.jpg")
    m:close()
    m = assert(manifest.open(dir))
    m:begin_run()
    m:part("a/two.jpg")                       -- taken up again
    assert.same({ "a/one.jpg" }, m:stale_parts())
    m:drop_parts(m:stale_parts())
    assert.same({}, m:stale_parts())
    m:close()
  end)
end)
