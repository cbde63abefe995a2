-- api:backup run again: only listing calls and no byte when nothing changed;
-- renamed and moved images moved (not downloaded), swapped names sorted
-- out, changed images downloaded again, deleted ones removed with --delete
-- (and only after a listing that completed), a lost manifest rebuilt by
-- verifying the files by MD5 (a wrong file is never adopted), a stale .part
-- resumed with Range, and the .part of an image that is gone removed.
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local sandbox = require "support.sandbox"
local files = require "support.files"
local proc = require "support.proc"
local bk = require "support.backup"

describe("api:backup, run again", function()
  local sb, api, root, dest

  local function fresh_sandbox()
    if api then api:close() end
    if sb then sb:stop() end
    sb = sandbox.start { fixture = "backup" }
    api = sb:session()
  end

  setup(fresh_sandbox)

  teardown(function()
    if api then api:close() end
    if sb then sb:stop() end
  end)

  before_each(function()
    root = files.tmpdir()
    dest = root .. "/dest"
  end)

  after_each(function()
    os.execute("rm -rf " .. proc.q(root))
  end)

  -- The listing calls of the stats (authuser, children, images, album).
  local function listing(st)
    local n = 0
    for route, c in pairs(st.api_routes) do
      if route:match("authuser") or route:match("children") or route:match("!images") or route:match("album$") then
        n = n + c
      end
    end
    return n
  end

  it("when nothing changed: no byte downloaded, and only the listing calls of the first run", function()
    assert(api:backup { dest = dest })
    local first = sb:stats()
    sb:reset_stats()
    local s = assert(api:backup { dest = dest })
    local st = sb:stats()
    assert.equal(0, s.saved)
    assert.equal(0, s.bytes)
    assert.equal(0, st.archive_requests)
    assert.equal(0, st.archive_bytes)
    assert.equal(listing(first), listing(st))
    assert.equal(st.api_calls, listing(st), "no call but listing calls")
    assert.equal(0, st.api_routes["GET image!largestvideo"] or 0)
    assert.equal(s.images - 1, s.skipped)                    -- all but the processing video
  end)

  it("renamed, moved, changed, deleted and added images; --delete; names swapped", function()
    fresh_sandbox()
    local truth0 = bk.truth(api, sb)
    assert(api:backup { dest = dest })
    bk.verify(dest, truth0)
    local old_64k = bk.md5(dest .. "/Family/2023/Summer/exactly64k.jpg")
    assert(sb:rename("ImgBeach", "beach-renamed.jpg"))
    assert(sb:move("ImgSunset", "AlbParis"))
    assert(sb:delete("ImgTiny"))
    assert(sb:replace("Img64k", 70000))
    local added = assert(sb:add_image("AlbParis", "new.jpg", { size = 4000 })).Image.ImageKey
    assert(sb:rename("ImgDup1", "IMG_0002.JPG"))            -- takes the other's name...
    assert(sb:rename("ImgDupOther", "IMG_0001.JPG"))        -- ...which takes its name
    sb:reset_stats()
    local truth = bk.truth(api, sb)
    -- without --delete: the deleted image's file stays
    local s = assert(api:backup { dest = dest })
    -- beach, sunset, and in Duplicates: ImgDup1 to IMG_0002.JPG, the smallest key of
    -- the IMG_0001.JPG names now (ImgDup2) to IMG_0001.JPG, ImgDupOther beside it
    assert.equal(5, s.moved)
    assert.equal(2, s.saved)                                 -- the changed one, the new one
    assert.equal(0, s.deleted)
    local st = sb:stats()
    assert.equal(truth.Img64k.size + truth[added].size, st.archive_bytes)
    assert.equal(2, st.archive_requests)
    local set = bk.set(dest)
    assert(set["Family/2023/Summer/beach-renamed.jpg"])
    assert.is_nil(set["Family/2023/Summer/beach.jpg"])
    assert(set["Travel/Europe/France/Paris/sunset.jpg"])
    assert.is_nil(set["Family/2023/Summer/sunset.jpg"])
    assert(set["Travel/Europe/France/Paris/new.jpg"])
    assert(set["Family/2023/Summer/tiny.png"], "kept without --delete")
    assert.are_not.equal(old_64k, bk.md5(dest .. "/Family/2023/Summer/exactly64k.jpg"))
    assert.equal(truth.Img64k.md5, bk.md5(dest .. "/Family/2023/Summer/exactly64k.jpg"))
    local rows = {}
    for _, r in ipairs(bk.rows(dest)) do rows[r.key] = r.path end
    assert.equal("Family/Duplicates/IMG_0002.JPG", rows.ImgDup1)
    assert.equal("Family/Duplicates/IMG_0001.JPG", rows.ImgDup2)
    assert.equal("Family/Duplicates/IMG_0001 (ImgDupOther).JPG", rows.ImgDupOther)
    assert.equal(truth.ImgDup1.md5, bk.md5(dest .. "/" .. rows.ImgDup1))
    assert.equal(truth.ImgDupOther.md5, bk.md5(dest .. "/" .. rows.ImgDupOther))
    -- with --delete: the file of the deleted image goes, nothing else
    sb:reset_stats()
    s = assert(api:backup { dest = dest, delete = true })
    assert.equal(1, s.deleted)
    assert.equal(0, s.saved + s.moved)
    assert.equal(0, sb:stats().archive_requests)
    assert.is_nil(bk.set(dest)["Family/2023/Summer/tiny.png"])
    truth.ImgTiny = nil
    bk.verify(dest, truth, true)
  end)

  it("a lost manifest: every file verified by MD5 and adopted, none downloaded; a wrong one is", function()
    fresh_sandbox()
    local truth = bk.truth(api, sb)
    assert(api:backup { dest = dest, albums = { "AlbSummer", "AlbParis" } })
    os.execute("rm -rf " .. proc.q(dest .. "/.smugoauth"))
    -- a file of the right size but other bytes, under its final name
    local p = dest .. "/Summer/sunset.jpg"
    files.write_file(p, ("x"):rep(truth.ImgSunset.size))
    sb:reset_stats()
    local s = assert(api:backup { dest = dest, albums = { "AlbSummer", "AlbParis" } })
    assert.equal(7, s.adopted)
    assert.equal(1, s.saved)
    assert.equal(truth.ImgSunset.size, sb:stats().archive_bytes)
    assert.equal(truth.ImgSunset.md5, bk.md5(p))
    bk.verify(dest, truth)
  end)

  it("a stale .part is resumed with Range; a recorded file cut short is downloaded again", function()
    local truth = bk.truth(api, sb)
    assert(api:backup { dest = dest, albums = { "AlbSummer" } })
    local beach = dest .. "/Summer/beach.jpg"
    local bytes = files.slurp(beach)
    os.execute("rm -rf " .. proc.q(dest .. "/.smugoauth"))
    os.remove(beach)
    files.write_file(beach .. ".part", bytes:sub(1, 50000))
    local sunset = dest .. "/Summer/sunset.jpg"
    sb:reset_stats()
    local s = assert(api:backup { dest = dest, albums = { "AlbSummer" } })
    assert.equal(1, s.saved)
    assert.equal(1, sb:stats().downloads_ranged)
    assert.equal(150000 - 50000, sb:stats().archive_bytes)
    assert.equal(truth.ImgBeach.md5, bk.md5(beach))
    -- recorded, then cut short behind our back: not trusted, downloaded again
    files.write_file(sunset, files.slurp(sunset):sub(1, 100))
    sb:reset_stats()
    s = assert(api:backup { dest = dest, albums = { "AlbSummer" } })
    assert.equal(1, s.saved)
    assert.equal(truth.ImgSunset.md5, bk.md5(sunset))
    bk.verify(dest, truth)
  end)

  it("the .part of an image that is gone is removed by the next complete run", function()
    fresh_sandbox()
    local flaky = sb:session { retry = false }
    sb:mode { drop_after = 1000, drop_count = 1 }
    local s = assert(flaky:backup { dest = dest, albums = { "AlbSummer" }, jobs = 1 })
    flaky:close()
    assert.equal(1, s.failed)
    assert.equal("network", s.failures[1].code)
    local part = dest .. "/" .. s.failures[1].path .. ".part"
    assert.equal(1000, core.file_size(part))
    assert(sb:delete(s.failures[1].key))
    s = assert(api:backup { dest = dest, albums = { "AlbSummer" } })
    assert.is_true(s.ok)
    assert.is_nil(core.file_size(part))
  end)

  it("--delete does nothing when a part of the listing failed", function()
    fresh_sandbox()
    assert(api:backup { dest = dest })
    assert(sb:delete("ImgTiny"))
    -- a session whose listing of one album fails
    local broken = setmetatable({}, { __index = api })
    function broken.get(self, uri, ...)
      if tostring(uri):find("AlbParis!images", 1, true) then
        return nil, errors.new("network", "injected: the listing of AlbParis fails")
      end
      return api.get(self, uri, ...)
    end
    local notes = {}
    local s = assert(broken:backup { dest = dest, delete = true,
      on_event = function(ev) if ev.type == "note" then notes[#notes + 1] = ev.message end end })
    assert.is_false(s.complete)
    assert.is_true(s.delete_skipped)
    assert.equal(0, s.deleted)
    assert.equal(1, #s.listing_errors)
    assert.matches("Paris", s.listing_errors[1].what)
    assert.matches("listing did not complete", notes[1])
    assert(bk.set(dest)["Family/2023/Summer/tiny.png"], "kept")
    assert(bk.set(dest)["Travel/Europe/France/Paris/eiffel.jpg"], "kept")
    -- once the listing completes, it goes
    s = assert(api:backup { dest = dest, delete = true })
    assert.equal(1, s.deleted)
    assert.is_nil(bk.set(dest)["Family/2023/Summer/tiny.png"])
  end)
end)
