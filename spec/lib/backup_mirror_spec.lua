-- api:backup against the sandbox's `backup` fixture, a first run: the whole
-- account mirrored (folders, albums, originals verified by MD5, videos'
-- largest renditions, mtimes from the photo's date), duplicates and hostile
-- names (safe, distinct, never outside DEST), an empty album, a video still
-- processing (reported, tried again by the next run), --album and --user,
-- and a dry run that sends no archive request and writes nothing.
local core = require "smugoauth.core"
local util = require "smugoauth.util"
local sandbox = require "support.sandbox"
local files = require "support.files"
local proc = require "support.proc"
local bk = require "support.backup"

describe("api:backup, a first run", function()
  local sb, api, truth, root

  setup(function()
    sb = sandbox.start { fixture = "backup" }
    api = sb:session()
    truth = bk.truth(api, sb)
  end)

  teardown(function()
    if api then api:close() end
    if sb then sb:stop() end
  end)

  before_each(function()
    root = files.tmpdir()
    sb:reset_stats()
  end)

  after_each(function()
    os.execute("rm -rf " .. proc.q(root))
  end)

  local function count(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    return n
  end

  it("mirrors the account: every original whole, under its folder and album, with the photo's time", function()
    local dest = root .. "/dest"
    local events = {}
    local s = assert(api:backup { dest = dest, on_event = function(ev) events[#events + 1] = ev end })
    -- everything but the video still processing
    assert.equal(count(truth), s.saved)
    assert.equal(1, s.failed)
    assert.is_true(s.complete)
    assert.is_false(s.ok)
    assert.equal(bk.verify(dest, truth, true), s.saved)
    local set = bk.set(dest)
    for _, p in ipairs { "Family/2023/Summer/beach.jpg", "Family/2023/Summer/tiny.png",
                         "Family/Duplicates/IMG_0001.JPG", "Travel/Europe/France/Paris/eiffel.jpg",
                         "Videos/clip.mp4", "Videos/still.jpg", "Many/many_001.jpg", "Many/many_250.jpg" } do
      assert(set[p], p)
    end
    -- the video: its largest rendition, not the original upload
    assert.equal(truth.VidReady.size, core.file_size(dest .. "/Videos/clip.mp4"))
    assert.are_not.equal(sb:image("VidReady").Image.ArchivedSize, truth.VidReady.size)
    -- the archive sent each file once, signed
    local st = sb:stats()
    local total = 0
    for _, t in pairs(truth) do total = total + t.size end
    assert.equal(total, st.archive_bytes)
    assert.equal(s.saved, st.downloads_completed)
    assert.equal(0, st.archive_refused)
    assert.equal(total, s.bytes)
    -- modification times: DateTimeOriginal, else DateTimeUploaded
    local beach = sb:image("ImgBeach").Image
    local function mtime(p)
      local h = io.popen("stat -c %Y " .. proc.q(dest .. "/" .. p))
      local v = tonumber(h:read("l"))
      h:close()
      return v
    end
    assert.equal(util.iso8601(beach.DateTimeOriginal), mtime("Family/2023/Summer/beach.jpg"))
    local nodate = sb:image("ImgNoDate").Image
    assert.is_nil(nodate.DateTimeOriginal)
    assert.equal(util.iso8601(nodate.DateTimeUploaded), mtime("Family/2023/Summer/nodate.jpg"))
    -- the processing video: reported, nothing under its name, no .part
    local f = s.failures[1]
    assert.equal("processing", f.code)
    assert.equal("VidProc", f.key)
    assert.equal("Videos/processing.mov", f.path)
    assert.is_nil(core.file_size(dest .. "/Videos/processing.mov"))
    assert.is_nil(core.file_size(dest .. "/Videos/processing.mov.part"))
    -- an empty album is an empty folder
    assert.equal(0, #bk.files(dest .. "/Empty"))
    -- events: albums, saved files, the failure, the end
    local kinds = {}
    for _, ev in ipairs(events) do kinds[ev.type] = (kinds[ev.type] or 0) + 1 end
    assert.equal(s.albums, kinds.album)
    assert.equal(1, kinds.failed)
    assert.equal(1, kinds["end"])
    assert.equal(1, kinds.listed)
  end)

  it("the processing video is tried again by the next run, and saved once it is ready", function()
    local dest = root .. "/dest"
    assert(api:backup { dest = dest })
    assert(sb:finish("VidProc"))
    local s = assert(api:backup { dest = dest })
    assert.is_true(s.ok)
    assert.equal(1, s.saved)
    assert.equal(count(truth), s.skipped)
    local lv = assert(api:get("/api/v2/image/VidProc-0!largestvideo")):json().Response.LargestVideo
    assert.equal(lv.MD5, bk.md5(dest .. "/Videos/processing.mov"))
    assert(sb:change("process", "VidProc"))                 -- (as the fixture was, for the other cases)
  end)

  it("duplicate file names in one album: every image saved, under stable distinct names", function()
    local dest = root .. "/dest"
    assert(api:backup { dest = dest, albums = { "AlbDupes" } })
    assert.same({ "Duplicates/IMG_0001 (ImgDup2).JPG", "Duplicates/IMG_0001 (ImgDup3).JPG", "Duplicates/IMG_0001.JPG",
                  "Duplicates/IMG_0002.JPG", "Duplicates/img_0001 (ImgDupCase).jpg" }, bk.files(dest))
    local rows = {}
    for _, r in ipairs(bk.rows(dest)) do rows[r.key] = r.path end
    assert.equal("Duplicates/IMG_0001.JPG", rows.ImgDup1)           -- the smallest key keeps the name
    assert.equal(truth.ImgDup3.md5, bk.md5(dest .. "/" .. rows.ImgDup3))
    -- another listing order (pages of 2) gives the same names
    local dest2 = root .. "/dest2"
    assert(api:backup { dest = dest2, albums = { "AlbDupes" }, page_size = 2 })
    assert.same(bk.files(dest), bk.files(dest2))
  end)

  it("hostile names: every file safe, distinct, inside DEST; nothing written outside it", function()
    local dest = root .. "/dest"
    local s = assert(api:backup { dest = dest,
                                  albums = { "AlbHostile", "AlbEscape", "AlbCon", "AlbSlash", "AlbTrail" } })
    assert.is_true(s.ok)
    local n = #sb:tree().Children                          -- (to be sure the tree is there)
    assert(n > 0)
    local list = bk.files(dest)
    assert.equal(s.saved, #list)
    local seen = {}
    for _, p in ipairs(list) do
      local f = p:lower()
      assert.is_nil(seen[f], "two names differ only in case: " .. p)
      seen[f] = true
      for part in p:gmatch("[^/]+") do
        assert(part ~= "." and part ~= "..", p)
        assert(#part <= 250, p)
        assert.is_nil(part:find("[%z\1-\31\127\\<>:\"|?*]"), p)
        assert.is_nil(part:find("[ .]$"), p)
        assert(utf8.len(part), p)
        local dev = part:match("^([^.]*)"):upper()
        assert(not ({ CON = 1, NUL = 1, AUX = 1, PRN = 1, COM1 = 1, LPT9 = 1 })[dev], p)
      end
      -- the real path is inside DEST
      local h = io.popen("realpath -e " .. proc.q(dest .. "/" .. p))
      local real = h:read("l")
      h:close()
      assert.equal(dest, real:sub(1, #dest))
    end
    -- the album names that would escape or that Windows refuses
    for _, p in ipairs { ".._.._outside/escaped.jpg", "CON_/con-album.jpg", "a_b_c/slashes.jpg", "trail/trail.jpg" } do
      assert(seen[p:lower()], p)
    end
    -- every hostile image, each in its own file, with its bytes
    local hostile = 0
    for k in pairs(truth) do if k:match("^Hostile") then hostile = hostile + 1 end end
    assert.equal(hostile + 4, #list)
    bk.verify(dest, truth)
    -- nothing beside DEST
    local h = io.popen("ls -A " .. proc.q(root))
    assert.equal("dest", h:read("a"):gsub("%s+$", ""))
    h:close()
  end)

  it("--album: only those albums, each as DEST/<album name>; a folder named '..' holds nothing outside", function()
    local dest = root .. "/dest"
    local s = assert(api:backup { dest = dest, albums = { "AlbParis", "AlbDot", "AlbEmpty" } })
    assert.is_true(s.ok)
    assert.same({ "Dot/dot.jpg", "Paris/eiffel.jpg", "Paris/louvre.jpg", "Paris/seine.jpg" }, bk.files(dest))
    -- the whole tree: the album "." in the folder ".." is Dots/Dot (their UrlNames)
    local whole = root .. "/whole"
    assert(api:backup { dest = whole })
    assert(bk.set(whole)["Dots/Dot/dot.jpg"])
    -- an album that does not exist: a listing error, the others saved
    s = assert(api:backup { dest = root .. "/some", albums = { "AlbParis", "NoSuchAlbum" } })
    assert.is_false(s.complete)
    assert.equal(3, s.saved)
    assert.equal(1, #s.listing_errors)
    assert.matches("NoSuchAlbum", s.listing_errors[1].what)
  end)

  it("--user: that user's tree; an unknown user is a listing error and nothing is saved", function()
    local s = assert(api:backup { dest = root .. "/dest", user = "tester" })
    assert.equal(count(truth), s.saved)
    s = assert(api:backup { dest = root .. "/nobody", user = "nobody" })
    assert.is_false(s.complete)
    assert.equal(0, s.saved)
    assert.equal(1, #s.listing_errors)
    assert.equal(404, s.listing_errors[1].status)
  end)

  it("a dry run lists what it would do: no archive request, nothing written", function()
    local dest = root .. "/dest"
    local plans = {}
    local s = assert(api:backup { dest = dest, dry_run = true, delete = true,
      on_event = function(ev) if ev.type == "plan" then plans[#plans + 1] = ev end end })
    assert.is_true(s.dry_run)
    assert.equal(count(truth) + 1, s.planned)                -- the processing video too
    assert.equal(s.planned, #plans)
    for _, p in ipairs(plans) do assert.equal("download", p.action) end
    local st = sb:stats()
    assert.equal(0, st.archive_requests)
    assert.equal(0, st.api_routes["GET image!largestvideo"] or 0)
    assert.is_nil(core.file_size(dest))
    assert.is_nil(io.open(dest))
    -- and after a real run, a dry run plans nothing but what changed
    assert(api:backup { dest = dest })
    sb:reset_stats()
    assert(sb:rename("ImgBeach", "beach2.jpg"))
    plans = {}
    assert(api:backup { dest = dest, dry_run = true,
      on_event = function(ev) if ev.type == "plan" then plans[#plans + 1] = ev end end })
    assert.equal(0, sb:stats().archive_requests)
    local moves = {}
    for _, p in ipairs(plans) do if p.action == "move" then moves[#moves + 1] = p end end
    assert.equal(1, #moves)
    assert.equal("Family/2023/Summer/beach.jpg", moves[1].from)
    assert.equal("Family/2023/Summer/beach2.jpg", moves[1].path)
    assert(core.file_size(dest .. "/Family/2023/Summer/beach.jpg"), "nothing moved")
    assert(sb:rename("ImgBeach", "beach.jpg"))
  end)

  it("misuse raises", function()
    assert.has_error(function() api:backup {} end, "backup: dest must be a non-empty path without NUL")
    assert.has_error(function() api:backup { dest = "x", jobs = 0 } end, "backup: jobs out of range")
    assert.has_error(function() api:backup { dest = "x", albums = {} } end, "backup: albums is empty")
    assert.has_error(function() api:backup { dest = "x", albums = { "a/b" } } end, "backup: albums must be album keys")
    assert.has_error(function() api:backup { dest = "x", albums = { "A" }, user = "u" } end)
    assert.has_error(function() api:backup { dest = "x", bogus = 1 } end)
  end)
end)
