--- smugoauth.sync.scan (which local files a sync counts) and the C helper it
-- stands on, core.list_dir (lstat entries: symlinks never followed).
local core = require "smugoauth.core"
local files = require "support.files"
local scan = require "smugoauth.sync.scan"

local q = files.q

local function sh(cmd) assert(os.execute(cmd), cmd) end

local function names(list, field)
  local t = {}
  for i, x in ipairs(list) do t[i] = x[field or "name"] end
  table.sort(t)
  return t
end

describe("core.list_dir", function()
  local dir
  before_each(function()
    dir = files.tmpdir()
    files.write_file(dir .. "/a.jpg", "12345")
    sh("mkdir " .. q(dir .. "/sub") .. " && ln -s a.jpg " .. q(dir .. "/link") .. " && ln -s sub " ..
       q(dir .. "/dlink") .. " && mkfifo " .. q(dir .. "/fifo"))
  end)
  after_each(function() sh("rm -rf " .. q(dir)) end)

  it("lists every entry but . and .. with its lstat type, size, mtime and inode", function()
    local t = assert(core.list_dir(dir))
    assert.same({ "a.jpg", "dlink", "fifo", "link", "sub" }, names(t))
    local by = {}
    for _, e in ipairs(t) do by[e.name] = e end
    assert.equal("file", by["a.jpg"].type)
    assert.equal(5, by["a.jpg"].size)
    assert.equal("link", by.link.type)             -- not followed to the file
    assert.equal("link", by.dlink.type)            -- nor to the folder
    assert.equal("dir", by.sub.type)
    assert.equal("other", by.fifo.type)
    assert.is_true(math.type(by["a.jpg"].mtime_ns) == "integer" and math.type(by["a.jpg"].ino) == "integer")
    assert.is_true(math.abs(by["a.jpg"].mtime - by["a.jpg"].mtime_ns / 1e9) < 1e-3)
    assert.is_true(math.abs(by["a.jpg"].mtime - os.time()) < 120)
  end)

  it("sees a change of mtime to the nanosecond", function()
    local before = assert(core.list_dir(dir))
    local e0
    for _, e in ipairs(before) do if e.name == "a.jpg" then e0 = e end end
    assert(core.set_mtime(dir .. "/a.jpg", 1700000000.123456789))
    local e1
    for _, e in ipairs(assert(core.list_dir(dir))) do if e.name == "a.jpg" then e1 = e end end
    assert.are_not.equal(e0.mtime_ns, e1.mtime_ns)
    assert.is_true(math.abs(e1.mtime_ns - 1700000000123456789) < 1000)
  end)

  it("nofollow refuses a symlink to a folder; without it the link is followed", function()
    local _, msg, code = core.list_dir(dir .. "/dlink", true)
    assert.equal("io", code)
    assert.matches("symbolic link", msg)
    assert.same({}, assert(core.list_dir(dir .. "/dlink")))
  end)

  it("fails as nil, message, code: missing, not a folder", function()
    local v, msg, code = core.list_dir(dir .. "/nothing")
    assert.is_nil(v)
    assert.equal("missing", code)
    assert.matches("nothing", msg)
    v, msg, code = core.list_dir(dir .. "/a.jpg")
    assert.is_nil(v)
    assert.equal("io", code)
    assert.matches("a.jpg", msg)
  end)

  it("raises on misuse (no path, an empty path, a NUL byte)", function()
    assert.has_error(function() core.list_dir() end)
    assert.has_error(function() core.list_dir("") end)
    assert.has_error(function() core.list_dir(dir .. "\0x") end)
  end)

  it("closes what it opens (1,000 listings leave no descriptor behind)", function()
    local function fds()                        -- (sockets earlier specs dropped closed first)
      collectgarbage()
      collectgarbage()
      local t = assert(core.list_dir("/proc/self/fd"))
      return #t
    end
    local n0 = fds()
    for _ = 1, 1000 do assert(core.list_dir(dir)) end
    for _ = 1, 100 do core.list_dir(dir .. "/a.jpg") end
    assert.equal(n0, fds())
  end)
end)

describe("sync scan", function()
  local dir
  before_each(function()
    dir = files.tmpdir()
    for _, f in ipairs { "b.JPG", "a.jpg", "clip.mov", "photo.heic", "notes.txt", "raw", ".hidden.jpg",
                         ".smugoauth-sync.db", ".smugoauth-sync.db-wal" } do
      files.write_file(dir .. "/" .. f, f)
    end
    sh("ln -s a.jpg " .. q(dir .. "/link.jpg"))
    sh("mkdir -p " .. q(dir .. "/2024/Italy") .. " " .. q(dir .. "/2024/Spain") .. " " .. q(dir .. "/.git") ..
       " " .. q(dir .. "/empty"))
    files.write_file(dir .. "/2024/Italy/r.jpg", "r")
    files.write_file(dir .. "/2024/Spain/s.png", "s")
    files.write_file(dir .. "/2024/top.jpg", "t")
    files.write_file(dir .. "/.git/x.jpg", "x")
    sh("ln -s 2024/Italy " .. q(dir .. "/linked-folder"))
  end)
  after_each(function() sh("rm -rf " .. q(dir)) end)

  it("counts regular photo and video files directly in the folder, sorted, any case of extension", function()
    local r = assert(scan.scan(dir))
    assert.equal(1, #r.groups)
    assert.equal("", r.groups[1].rel)
    local got = {}
    for i, f in ipairs(r.groups[1].files) do got[i] = f.rel end
    assert.same({ "a.jpg", "b.JPG", "clip.mov", "photo.heic" }, got)
    local f = r.groups[1].files[1]
    assert.equal(dir .. "/a.jpg", f.path)
    assert.equal(5, f.size)
    -- hidden files (and the manifest) are left out; so are symlinks, other files, subfolders
    assert.equal(2, r.ignored.hidden)             -- .hidden.jpg and .git
    assert.equal(2, r.ignored.symlinks)
    assert.same({ "link.jpg", "linked-folder" }, r.ignored.symlink_paths)
    assert.equal(2, r.ignored.other)               -- notes.txt, raw
    assert.equal(2, r.ignored.subfolders)          -- 2024, empty (.git is hidden)
  end)

  it("with tree: every folder with files is a group; a folder with both is marked", function()
    local r = assert(scan.scan(dir .. "/", { tree = true }))
    local rels = {}
    for i, g in ipairs(r.groups) do rels[i] = g.rel .. (g.parent_of_media and " (parent)" or "") end
    assert.same({ " (parent)", "2024 (parent)", "2024/Italy", "2024/Spain" }, rels)
    assert.equal(dir .. "/2024/Italy/r.jpg", r.groups[3].files[1].path)
    assert.equal("2024/Italy/r.jpg", r.groups[3].files[1].rel)
    assert.equal(2, r.ignored.hidden)              -- .hidden.jpg and .git (not entered)
  end)

  it("a folder that cannot be read: an error for the top, a warning below it", function()
    local v, err = scan.scan(dir .. "/nothing")
    assert.is_nil(v)
    assert.equal("missing", err.code)
    sh("chmod 000 " .. q(dir .. "/2024/Spain"))
    local r = assert(scan.scan(dir, { tree = true }))
    sh("chmod 755 " .. q(dir .. "/2024/Spain"))
    if core.getuid() ~= 0 then                     -- root reads it anyway
      assert.equal(1, #r.warnings)
      assert.matches("Spain", r.warnings[1])
    end
  end)

  it("is_media: by extension, as smugoauth.upload's MIME table", function()
    assert.is_true(scan.is_media("x.JPEG"))
    assert.is_true(scan.is_media("x.mp4"))
    assert.is_false(scan.is_media("x.txt"))
    assert.is_false(scan.is_media("jpg"))
    assert.is_false(scan.is_media("x.jpg.part"))
  end)
end)
