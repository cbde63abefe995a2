--- smugoauth.sync.manifest: the SQLite manifest of a synced folder (local
-- MD5 -> image key per album; the MD5 cache), one sync at a time, durable
-- across kill -9.
local files = require "support.files"
local proc = require "support.proc"
local manifest = require "smugoauth.sync.manifest"

local q = files.q
local A, B = ("a"):rep(32), ("b"):rep(32)

describe("sync manifest", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("records pending then done uploads per album, and forgets", function()
    local m = assert(manifest.open(dir, { target = "album K1" }))
    assert(m:pending(A, "K1", "sub/x.heic", "x.heic", 10))
    local rows = assert(m:album("K1"))
    assert.equal("pending", rows[A].state)
    assert.equal("x.heic", rows[A].filename)
    assert.is_nil(rows[A].image_key)
    assert(m:done(A, "K1", "IMG1", "sub/x.heic", "x.heic", 10))
    assert(m:done(B, "K2", "IMG2", "y.jpg", "y.jpg", 20))
    rows = assert(m:album("K1"))
    assert.equal("done", rows[A].state)
    assert.equal("IMG1", rows[A].image_key)
    assert.equal(10, rows[A].size)
    assert.is_nil(rows[B])                          -- another album's
    assert(m:forget(A, "K1"))
    assert.same({}, assert(m:album("K1")))
    assert(m:finish(1, 0))
    m:close()
    m:close()                                       -- idempotent
    -- kept on disk, in WAL mode
    m = assert(manifest.open(dir))
    assert.equal("IMG2", assert(m:album("K2"))[B].image_key)
    assert.equal("wal", assert(m.db:one("PRAGMA journal_mode")).journal_mode)
    local runs = {}
    for r in m.db:rows("SELECT * FROM runs ORDER BY id") do runs[#runs + 1] = r end
    assert.equal(2, #runs)
    assert.equal("album K1", runs[1].target)
    assert.equal(1, runs[1].uploaded)
    m:close()
  end)

  it("quotes what it stores (names with quotes, newlines, UTF-8)", function()
    local m = assert(manifest.open(dir))
    local name = "it's a \"name\"\n; DROP TABLE uploads; --é.jpg"
    assert(m:done(A, "K'1", "IMG", name, name, 1))
    local rows = assert(m:album("K'1"))
    assert.equal(name, rows[A].path)
    m:close()
  end)

  it("caches MD5s by path, size, mtime and inode", function()
    local m = assert(manifest.open(dir))
    assert.is_nil(m:cached_md5("a.jpg", 5, 100, 7))
    m:remember_md5("a.jpg", 5, 100, 7, A)
    assert(m:flush_hashes())
    m:close()
    m = assert(manifest.open(dir))
    assert.equal(A, m:cached_md5("a.jpg", 5, 100, 7))
    assert.is_nil(m:cached_md5("a.jpg", 6, 100, 7))  -- size changed
    assert.is_nil(m:cached_md5("a.jpg", 5, 101, 7))  -- mtime changed
    assert.is_nil(m:cached_md5("a.jpg", 5, 100, 8))  -- another file (inode)
    assert.is_nil(m:cached_md5("b.jpg", 5, 100, 7))
    m:close()
  end)

  it("one sync at a time: a second open is refused until the first closes", function()
    local m1 = assert(manifest.open(dir))
    local m2, err = manifest.open(dir)
    assert.is_nil(m2)
    assert.equal("io", err.code)
    assert.matches("in use by another process", err.message)
    m1:close()
    m2 = assert(manifest.open(dir))
    m2:close()
  end)

  it("read-only: a folder without a manifest gets an empty one and no file is made", function()
    local m = assert(manifest.open(dir, { read_only = true }))
    assert.same({}, assert(m:album("K1")))
    assert.is_nil(m:cached_md5("a.jpg", 1, 1, 1))
    assert(m:pending(A, "K1", "a", "a", 1))         -- accepted, not written
    m:close()
    assert.is_nil(io.open(dir .. "/" .. manifest.NAME))
  end)

  it("refuses a file that is not a manifest, and a manifest of another version", function()
    files.write_file(dir .. "/" .. manifest.NAME, ("not a database\n"):rep(100))
    local m, err = manifest.open(dir)
    assert.is_nil(m)
    assert.equal("io", err.code)
    os.remove(dir .. "/" .. manifest.NAME)
    m = assert(manifest.open(dir))
    assert(m.db:exec("UPDATE meta SET v = '99' WHERE k = 'version'"))
    m:close()
    m, err = manifest.open(dir)
    assert.is_nil(m)
    assert.matches("version 99", err.message)
  end)

  it("survives kill -9: every row committed is there, whole; the lock goes with the process", function()
    local script = dir .. "/writer.lua"
    files.write_file(script, ([[
      package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      package.cpath = "build/?.so;" .. package.cpath
      local m = assert(require("smugoauth.sync.manifest").open(%q))
      local i = 0
      while true do
        i = i + 1
        local md5 = ("%%032x"):format(i)
        assert(m:pending(md5, "K1", "f" .. i .. ".jpg", "f" .. i .. ".jpg", i))
        assert(m:done(md5, "K1", "IMG" .. i, "f" .. i .. ".jpg", "f" .. i .. ".jpg", i))
        if i == 20 then io.stdout:write("20\n") io.stdout:flush() end
      end
    ]]):format(dir))
    local h = proc.spawn({ "lua5.4", script }, { lines = 1 })
    assert.equal("20", h.line)
    assert(h:signal("KILL"))
    h:wait(5)
    h:close()
    local m = assert(manifest.open(dir))            -- not busy: the lock went with the process
    local rows = assert(m:album("K1"))
    local n, pending = 0, 0
    for md5, r in pairs(rows) do
      n = n + 1
      local i = tonumber(md5, 16)
      assert.equal(i, r.size)
      if r.state == "done" then
        assert.equal("IMG" .. i, r.image_key)
      else
        pending = pending + 1
        assert.is_nil(r.image_key)
      end
    end
    assert.is_true(n >= 20)
    assert.is_true(pending <= 1)                    -- at most the one under way
    m:close()
  end)
end)
