--- api:sync against the sandbox (a child process): files matched by MD5,
-- converted uploads remembered by the manifest, --tree, dry runs, a 429
-- storm, kill -9 then a re-run. The sandbox counts the uploads it gets and
-- lists the albums: no duplicates is checked there, not on our side.
local core = require "smugoauth.core"
local files = require "support.files"
local proc = require "support.proc"
local sandbox = require "support.sandbox"
local hash = require "smugoauth.sync.hash"
local manifest = require "smugoauth.sync.manifest"

local q = files.q

local function sh(cmd) assert(os.execute(cmd), cmd) end

-- n bytes, different for each seed
local function bytes(seed, n)
  local t, x = {}, seed * 2654435761 % 4294967296
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x % 251)
  end
  return table.concat(t)
end

local function md5_of(path) return hash.hex(assert(core.digest_file("md5", path))) end

-- the images of an album, as the API lists them
local function album_images(api, key)
  local t = {}
  for img, err in api:each("/api/v2/album/" .. key .. "!images", { count = 100 }) do
    assert(img, tostring(err))
    t[#t + 1] = img
  end
  return t
end

local function file_names(imgs)
  local t = {}
  for i, img in ipairs(imgs) do t[i] = img.FileName end
  table.sort(t)
  return t
end

describe("api:sync", function()
  local sb, api, dir
  setup(function()
    sb = sandbox.start { albums = 4 }
    local at, ats, c = sb:authorize()
    api = c:session(at, ats)
  end)
  teardown(function()
    if api then api:close() end
    if sb then sb:stop() end
  end)
  before_each(function()
    dir = files.tmpdir()
    sb:mode {}
  end)
  after_each(function() sh("rm -rf " .. q(dir)) end)

  local function put(name, seed, n)
    local path = dir .. "/" .. name
    sh("mkdir -p " .. q(path:match("^(.*)/[^/]*$")))
    files.write_file(path, bytes(seed, n or 2000))
    return path
  end

  it("a first sync uploads every file, a second uploads nothing", function()
    for i = 1, 6 do put(("IMG_%04d.jpg"):format(i), i) end
    put("scan.png", 7)
    put("notes.txt", 8)                             -- not a photo
    put(".hidden.jpg", 9)                           -- hidden
    sh("ln -s IMG_0001.jpg " .. q(dir .. "/link.jpg"))  -- not followed
    local up0 = sb:stats().uploads
    local s = assert(api:sync { dir = dir, album = "K0001" })
    assert.is_true(s.ok)
    assert.equal(7, s.files)
    assert.equal(7, s.uploaded)
    assert.equal(14000, s.uploaded_bytes)
    assert.equal(up0 + 7, sb:stats().uploads)
    assert.equal(1, s.ignored.symlinks)
    assert.same({ "IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg", "IMG_0004.jpg", "IMG_0005.jpg",
                  "IMG_0006.jpg", "scan.png" }, file_names(album_images(api, "K0001")))
    -- again: nothing to do
    s = assert(api:sync { dir = dir, album = "/api/v2/album/K0001" })
    assert.is_true(s.ok)
    assert.equal(0, s.uploaded)
    assert.equal(7, s.present)
    assert.equal(0, s.hashed)                      -- the MD5s came from the manifest's cache
    assert.equal(up0 + 7, sb:stats().uploads)
    assert.equal(7, #album_images(api, "K0001"))
  end)

  it("a file renamed locally is not uploaded again (matched by MD5, not by name)", function()
    put("a.jpg", 11)
    put("b.jpg", 12)
    assert(api:sync { dir = dir, album = "K0002" })
    local up = sb:stats().uploads
    sh("mv " .. q(dir .. "/a.jpg") .. " " .. q(dir .. "/renamed.jpg"))
    sh("mkdir " .. q(dir .. "/x") .. " && cp " .. q(dir .. "/b.jpg") .. " " .. q(dir .. "/copy-of-b.jpg"))
    local s = assert(api:sync { dir = dir, album = "K0002" })
    assert.equal(0, s.uploaded)
    assert.equal(2, s.present)
    assert.equal(1, s.duplicates)                  -- copy-of-b.jpg: the same bytes as b.jpg
    assert.equal(up, sb:stats().uploads)
    -- a changed file is another file: uploaded
    put("b.jpg", 13)
    s = assert(api:sync { dir = dir, album = "K0002" })
    assert.equal(1, s.uploaded)
    assert.equal(1, s.hashed)
    assert.equal(up + 1, sb:stats().uploads)
  end)

  it("files SmugMug converts (HEIC, video) are not uploaded again, thanks to the manifest", function()
    local heic = put("IMG_1.HEIC", 21)
    local mov = put("clip.mov", 22)
    put("plain.jpg", 23)
    local up = sb:stats().uploads
    local s = assert(api:sync { dir = dir, album = "K0003" })
    assert.equal(3, s.uploaded)
    -- SmugMug has other bytes for them: their MD5 there is not the local one
    local by_name = {}
    for _, img in ipairs(album_images(api, "K0003")) do by_name[img.FileName] = img end
    assert.are_not.equal(md5_of(heic), by_name["IMG_1.HEIC"].ArchivedMD5)
    assert.are_not.equal(md5_of(mov), by_name["clip.mov"].ArchivedMD5)
    s = assert(api:sync { dir = dir, album = "K0003" })
    assert.equal(0, s.uploaded)
    assert.equal(2, s.known)
    assert.equal(1, s.present)
    assert.equal(up + 3, sb:stats().uploads)
    -- the manifest is what knows them: without it they would go again
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(dir .. "/" .. manifest.NAME .. suffix) end
    s = assert(api:sync { dir = dir, dry_run = true, album = "K0003" })
    assert.equal(2, s.to_upload)
    assert.equal(up + 3, sb:stats().uploads)
  end)

  it("an upload killed before it was recorded is adopted by its file name, not sent again", function()
    local heic = put("IMG_9.heic", 31)
    local md5 = md5_of(heic)
    -- as a run killed between SmugMug's answer and the manifest's commit leaves it
    local m = assert(manifest.open(dir))
    assert(m:pending(md5, "K0004", "IMG_9.heic", "IMG_9.heic", 2000))
    m:close()
    assert(api:upload { album = "/api/v2/album/K0004", file = heic })
    local up = sb:stats().uploads
    local s = assert(api:sync { dir = dir, album = "K0004" })
    assert.equal(0, s.uploaded)
    assert.equal(1, s.adopted)
    assert.equal(up, sb:stats().uploads)
    assert.equal(1, #album_images(api, "K0004"))
    s = assert(api:sync { dir = dir, album = "K0004" })   -- and it is known from now on
    assert.equal(1, s.known)
  end)

  it("an image deleted on SmugMug is uploaded again", function()
    put("gone.heic", 41)
    assert(api:sync { dir = dir, album = "K0004" })
    local img
    for _, i in ipairs(album_images(api, "K0004")) do if i.FileName == "gone.heic" then img = i end end
    sb:delete(img.ImageKey)
    local s = assert(api:sync { dir = dir, album = "K0004" })
    assert.equal(1, s.uploaded)
  end)

  it("a file name with a newline or other controls is uploaded under a clean FileName", function()
    put("new\nline\27.jpg", 91)
    local s = assert(api:sync { dir = dir, album = "K0003" })
    assert.equal(1, s.uploaded)
    local found = false
    for _, img in ipairs(album_images(api, "K0003")) do found = found or img.FileName == "new_line_.jpg" end
    assert.is_true(found)
    s = assert(api:sync { dir = dir, album = "K0003" })
    assert.equal(0, s.uploaded)
  end)

  it("with folder (the tree): albums by subfolder, created once; odd folders are reported, not synced", function()
    put("Trip/2024/Italy/a.jpg", 101)
    put("Trip/2024/Italy/b.jpg", 102)
    put("Trip/2024/Spain/c.jpg", 103)
    put("Trip/2024/loose.jpg", 104)                 -- beside subfolders with files: no album for it
    put("Trip/top.jpg", 105)                        -- directly in dir: no album either
    put("Trip/\255\254/d.jpg", 106)                -- not UTF-8: no album of that name
    local tdir = dir .. "/Trip"
    -- a dry run creates nothing
    local events = {}
    local s = assert(api:sync { dir = tdir, folder = "Lib/Tree", dry_run = true, on_event = function(ev)
      if ev.type == "create" then events[#events + 1] = ev.kind .. " " .. ev.path end
    end })
    assert.same({ "folder Lib", "folder Lib/Tree", "folder Lib/Tree/2024", "album Lib/Tree/2024/Italy",
                  "album Lib/Tree/2024/Spain" }, events)
    assert.equal(3, s.to_upload)
    local function tree_names()
      local names = {}
      local function walk(n, path)
        for _, c in ipairs(n.Children or {}) do
          local p = path .. "/" .. tostring(c.Name)
          names[#names + 1] = c.Type .. " " .. p
          walk(c, p)
        end
      end
      walk(sb:tree(), "")
      table.sort(names)
      return names
    end
    local before = tree_names()
    assert.is_nil(table.concat(before, "\n"):find("/Lib", 1, true))
    -- the real run
    s = assert(api:sync { dir = tdir, folder = "Lib/Tree", privacy = "Unlisted" })
    assert.is_true(s.ok)
    assert.equal(3, s.uploaded)
    assert.same({ folders = 3, albums = 2 }, s.created)
    assert.equal(3, s.ignored.unmapped)
    assert.equal(3, #s.warnings)
    local after = tree_names()
    for _, want in ipairs { "Folder /Lib", "Folder /Lib/Tree", "Folder /Lib/Tree/2024", "Album /Lib/Tree/2024/Italy",
                            "Album /Lib/Tree/2024/Spain" } do
      local n = 0
      for _, x in ipairs(after) do if x == want then n = n + 1 end end
      assert.equal(1, n, want)
    end
    -- again: found by name, nothing created, nothing uploaded
    s = assert(api:sync { dir = tdir, folder = "/Lib/Tree/" })
    assert.same({ folders = 0, albums = 0 }, s.created)
    assert.equal(0, s.uploaded)
    assert.equal(3, s.present)
    assert.same(after, tree_names())
  end)

  it("--dry-run lists what it would upload and uploads, creates and writes nothing", function()
    put("a.jpg", 51)
    put("b.heic", 52)
    local up, planned = sb:stats().uploads, {}
    local s = assert(api:sync { dir = dir, album = "K0001", dry_run = true, on_event = function(ev)
      if ev.type == "plan" then planned[#planned + 1] = ev.path .. " " .. ev.action end
    end })
    assert.is_true(s.dry_run)
    assert.equal(2, s.to_upload)
    assert.equal(0, s.uploaded)
    assert.same({ "a.jpg upload", "b.heic upload" }, planned)
    assert.equal(up, sb:stats().uploads)
    assert.is_nil(io.open(dir .. "/" .. manifest.NAME))
  end)

  it("a 429 storm: listing and uploads wait (Retry-After) and go on; every file once", function()
    for i = 1, 8 do put(("storm%d.jpg"):format(i), 60 + i) end
    local before = #album_images(api, "K0002")
    local st0 = sb:stats()
    sb:mode { fail429 = 2, retry_after = 1 }         -- the listing meets two
    local s = assert(api:sync { dir = dir, album = "K0002", jobs = 4, on_event = function(ev)
      -- and the uploads, once they are planned, six more
      if ev.type == "plan_done" then sb:mode { fail429 = 6, retry_after = 1 } end
    end })
    local st1 = sb:stats()
    assert.is_true(s.ok, s.failures[1] and s.failures[1].message)
    assert.equal(8, s.uploaded)
    assert.equal(8, st1.throttled - st0.throttled)   -- every 429 was answered...
    assert.equal(8, st1.uploads - st0.uploads)       -- ...and every file went once
    assert.equal(before + 8, #album_images(api, "K0002"))
  end)

  it("one sync of a folder at a time: another is refused", function()
    put("a.jpg", 71)
    local m = assert(manifest.open(dir))
    local s, err = api:sync { dir = dir, album = "K0001" }
    m:close()
    assert.is_nil(s)
    assert.equal("io", err.code)
    assert.matches("in use by another process", err.message)
  end)

  it("fails as nil, err before any upload: no folder, no album", function()
    local s, err = api:sync { dir = dir .. "/nothing", album = "K0001" }
    assert.is_nil(s)
    assert.equal("missing", err.code)
    put("a.jpg", 81)
    local up = sb:stats().uploads
    s, err = api:sync { dir = dir, album = "NOSUCH" }
    assert.is_nil(s)
    assert.equal("http", err.code)
    assert.equal(404, err.status)
    assert.equal(up, sb:stats().uploads)
  end)

  it("raises on misuse", function()
    assert.has_error(function() api:sync() end)
    assert.has_error(function() api:sync { dir = dir } end, "sync: give album or folder (the tree), not both")
    assert.has_error(function() api:sync { dir = dir, album = "K1", folder = "F" } end)
    assert.has_error(function() api:sync { dir = dir, album = "a/b" } end)
    assert.has_error(function() api:sync { dir = dir, album = "K1", jobs = 0 } end)
    assert.has_error(function() api:sync { dir = dir, album = "K1", jobs = 33 } end)
    assert.has_error(function() api:sync { dir = dir, album = "K1", privacy = "secret" } end)
    assert.has_error(function() api:sync { dir = dir, album = "K1", bogus = 1 } end)
  end)
end)

describe("api:sync, killed with kill -9 and run again", function()
  local sb, dir
  setup(function() sb = sandbox.start { albums = 2 } end)
  teardown(function() if sb then sb:stop() end end)
  after_each(function() if dir then sh("rm -rf " .. q(dir)) end end)

  it("uploads only what is missing: every file once in the album", function()
    local at, ats, c = sb:authorize()
    dir = files.tmpdir()
    local n = 40
    for i = 1, n do
      files.write_file(("%s/f%03d.%s"):format(dir, i, i % 5 == 0 and "heic" or "jpg"), bytes(100 + i, 3000))
    end
    local script = dir .. "/.run.lua"
    files.write_file(script, ([[
      package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      package.cpath = "build/?.so;" .. package.cpath
      local smugoauth = require "smugoauth"
      local c = smugoauth.new { key = %q, secret = %q, oauth_origin = %q, api_origin = %q, upload_origin = %q }
      local api = c:session(%q, %q)
      local s = assert(api:sync { dir = %q, album = "K0001", jobs = 4 })
      print(s.uploaded)
    ]]):format(sb.key, sb.secret, sb.origin, sb.origin, sb.origin, at, ats, dir))
    sb:mode { latency = 0.15 }
    local up0 = sb:stats().uploads
    local h = proc.spawn({ "lua5.4", script })
    -- kill it once some uploads are through
    assert(files.wait_for(function() return sb:stats().uploads >= up0 + 10 end, 60), "uploads did not start")
    assert(h:signal("KILL"))
    h:wait(5)
    h:close()
    local mid = sb:stats().uploads - up0
    assert.is_true(mid < n, "the first run finished before the kill")
    sb:mode {}
    local api = c:session(at, ats)
    local s = assert(api:sync { dir = dir, album = "K0001" })
    assert.is_true(s.ok)
    local imgs = album_images(api, "K0001")
    assert.equal(n, #imgs)                         -- no duplicates, nothing missing
    local seen = {}
    for _, img in ipairs(imgs) do
      assert.is_nil(seen[img.FileName], "twice: " .. img.FileName)
      seen[img.FileName] = true
    end
    assert.equal(n, mid + s.uploaded)             -- every upload the sandbox took is one image
    assert.equal(up0 + n, sb:stats().uploads)
    s = assert(api:sync { dir = dir, album = "K0001" })
    assert.equal(0, s.uploaded)
    api:close()
  end)
end)
