-- sandbox_spec.lua -- the sandbox's SmugMug shapes, through the library's
-- own calls (api:get, api:each, api:pages, api:download, api:upload)
-- against the sandbox in a child process: the contract the backup engine
-- and sync rely on (/work/briefs/backup-design.md, "SmugMug shapes"): the
-- user and its root node, the node tree (paged !children, folders nested,
-- pages), folders and albums created (folder and node APIs), albums and
-- their images (paged; an empty album has no AlbumImage key), images with
-- their archive fields, duplicates and hostile names, videos and
-- !largestvideo with a processing state, archive downloads (signed, 401
-- otherwise, Range, 206, 416, HEAD, streamed at any size, a second origin),
-- the switches (429 storms, 503, drops mid-body, rate, Range faults, lying
-- MD5) and the counters, changes between runs, uploads, fixtures.
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local socket = require "socket"
local launch = require "smugoauth.apps.sandbox.launch"
local content = require "smugoauth.apps.sandbox.content"
local fixtures = require "smugoauth.apps.sandbox.fixtures"
local files = require "support.files"
local proc = require "support.proc"

local function hex(raw) return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
local function md5_hex(s) return hex(core.digest("md5", s)) end

-- every item of a collection (api:each), asserting no error
local function all(api, path, query)
  local out = {}
  for item, err in api:each(path, query) do
    assert(item, err and err.message)
    out[#out + 1] = item
  end
  return out
end

local function by(list, field)
  local t = {}
  for _, x in ipairs(list) do t[x[field]] = x end
  return t
end

-- Response[kind] of GET path
local function get(api, path, kind)
  local res = assert(api:get(path))
  return res:json().Response[kind], res
end

-- an unsigned request with the plain C client: status, headers map, body
local plain = core.http_new { timeout = 10 }
local function unsigned(url, headers)
  local res = assert(plain:request { method = "GET", url = url, headers = headers })
  local h = {}
  for _, kv in ipairs(res.headers) do h[kv[1]:lower()] = kv[2] end
  return res.status, h, res.body
end

describe("sandbox: the SmugMug shapes", function()
  local sb, api, dir
  setup(function()
    sb = assert(launch.start { fixture = "backup,tree", archive_origin = true, timeout = 20 })
    api = sb:session()
  end)
  teardown(function()
    if api then api:close() end
    if sb then sb:stop() end
  end)
  before_each(function()
    dir = files.tmpdir()
    sb:mode {}
  end)
  after_each(function() os.execute("rm -rf " .. proc.q(dir)) end)

  -- the sandbox's view of an image: its API object, seed, version
  local function known(key) return assert(sb:image(key)) end

  describe("the user and the node tree", function()
    it("!authuser: NickName, Name, Uris.Node (the root node), UserAlbums, Folder", function()
      local u = get(api, "/api/v2!authuser", "User")
      assert.equal("tester", u.NickName)
      assert.is_string(u.Name)
      assert.matches("^/api/v2/node/%w+$", u.Uris.Node.Uri)
      assert.equal("/api/v2/user/tester!albums", u.Uris.UserAlbums.Uri)
      assert.equal("/api/v2/folder/user/tester", u.Uris.Folder.Uri)
      assert.same(u, (get(api, "/api/v2/user/tester", "User")))
      local root = get(api, u.Uris.Node.Uri, "Node")
      assert.equal("Folder", root.Type)
      assert.is_true(root.IsRoot)
      assert.is_true(root.HasChildren)
      assert.equal(u.Uris.Node.Uri .. "!children", root.Uris.ChildNodes.Uri)
      local _, err = api:get("/api/v2/user/nobody")
      assert.equal(404, err.status)
    end)

    it("!children is paged (start, count, Pages.NextPage) and each follows it", function()
      local root = get(api, "/api/v2!authuser", "User").Uris.Node.Uri
      local pages, names = 0, {}
      for page, res in api:pages(root .. "!children", { count = 3 }) do
        assert(page, res and res.message)
        pages = pages + 1
        local r = page.Response
        assert.equal("Node", r.Locator)
        assert(#r.Node <= 3)
        assert.equal(r.Pages.Total > r.Pages.Start + 2, r.Pages.NextPage ~= nil)
        for _, n in ipairs(r.Node) do names[#names + 1] = n.Name end
      end
      local listed = all(api, root .. "!children", { count = 3 })
      assert.equal(#names, #listed)
      assert.equal(math.ceil(#listed / 3), pages)
      assert.same({ "Family", "Travel", "Videos", "Empty", "Hostile names", "../../outside", "CON", "a/b\\c",
                    "trail. ", "..", "About", "Many", "Sync" }, names)
      local kinds = by(listed, "Name")
      assert.equal("Page", kinds.About.Type)
      assert.is_nil(kinds.About.Uris.Album)
      assert.equal("Album", kinds.Videos.Type)
      assert.equal("/api/v2/album/AlbVideos", kinds.Videos.Uris.Album.Uri)
      assert.equal("Folder", kinds.Travel.Type)
      assert.is_true(kinds.Travel.HasChildren)
      for _, n in ipairs(listed) do
        assert.matches("^%w+$", n.NodeID)
        assert.is_string(n.UrlName)
        assert.equal("/api/v2/node/" .. n.NodeID, n.Uri)
      end
    end)

    it("folders nest a few levels: a walk of the tree finds every album under its path", function()
      local found = {}
      local function walk(uri, path)
        for n in api:each(uri .. "!children", { count = 5 }) do
          local here = path .. "/" .. n.Name
          if n.Type == "Folder" then
            assert.equal(n.HasChildren, n.Uris.ChildNodes ~= nil and
              get(api, n.Uris.ChildNodes.Uri, "Node") ~= nil)
            walk("/api/v2/node/" .. n.NodeID, here)
          elseif n.Type == "Album" then
            local a = get(api, n.Uris.Album.Uri, "Album")
            found[here] = a.AlbumKey
          end
        end
      end
      walk(get(api, "/api/v2!authuser", "User").Uris.Node.Uri, "")
      assert.equal("AlbParis", found["/Travel/Europe/France/Paris"])
      assert.equal("AlbSummer", found["/Family/2023/Summer"])
      assert.equal("AlbDupes", found["/Family/Duplicates"])
      assert.equal("AlbDot", found["/../."])
      assert.equal("AlbExisting", found["/Sync/Existing"])
      assert.equal("AlbEmpty", found["/Empty"])
    end)

    it("albums: AlbumKey, Name, UrlName, ImageCount, Uris.AlbumImages and Node; user !albums lists them all", function()
      local a = get(api, "/api/v2/album/AlbSummer", "Album")
      assert.equal("AlbSummer", a.AlbumKey)
      assert.equal("Summer", a.Name)
      assert.equal("Summer", a.UrlName)
      assert.equal("/Family/Y2023/Summer", a.UrlPath)
      assert.equal(5, a.ImageCount)
      assert.equal("/api/v2/album/AlbSummer!images", a.Uris.AlbumImages.Uri)
      assert.equal("Album", get(api, a.Uris.Node.Uri, "Node").Type)
      local albums = by(all(api, "/api/v2/user/tester!albums"), "AlbumKey")
      for _, k in ipairs { "AlbSummer", "AlbDupes", "AlbParis", "AlbVideos", "AlbEmpty", "AlbHostile", "AlbMany",
                           "AlbExisting" } do
        assert.is_table(albums[k], k)
      end
      assert.is_nil(albums.K0001)                 -- a fixture replaces the default albums
      local _, err = api:get("/api/v2/album/NoSuchAlbum")
      assert.equal(404, err.status)
    end)
  end)

  describe("creating folders and albums (sync --tree)", function()
    it("POST folder !folders and !albums: 201, then listed; GET folder, !folders, !albums", function()
      local base = "/api/v2/folder/user/tester/Sync"
      local f = get(api, base, "Folder")
      assert.equal("Sync", f.UrlName)
      assert.equal(base .. "!albums", f.Uris.FolderAlbums.Uri)
      local res = assert(api:post(base .. "!folders", { json = { Name = "Trips 2024", UrlName = "Trips-2024" } }))
      assert.equal(201, res.status)
      local made = res:json().Response.Folder
      assert.equal("/Sync/Trips-2024", made.UrlPath)
      assert.equal(base .. "/Trips-2024", made.Uri)
      res = assert(api:post(made.Uri .. "!albums", { json = { Name = "Rome", UrlName = "Rome" } }))
      assert.equal(201, res.status)
      local album = res:json().Response.Album
      assert.matches("^%w+$", album.AlbumKey)
      assert.equal(0, album.ImageCount)
      assert.same({ "Rome" }, (function()
        local t = {}
        for _, x in ipairs(all(api, made.Uri .. "!albums")) do t[#t + 1] = x.Name end
        return t
      end)())
      local sub = by(all(api, base .. "!folders"), "UrlName")
      assert.is_table(sub["Trips-2024"])
      assert.is_table(sub.Old)
      -- the new album is in the tree and empty: no AlbumImage key
      local r = get(api, "/api/v2/album/" .. album.AlbumKey .. "!images", "AlbumImage")
      assert.is_nil(r)
      assert.is_table(by(all(api, "/api/v2/user/tester!albums"), "AlbumKey")[album.AlbumKey])
      -- no UrlName: made from the Name
      res = assert(api:post(base .. "!albums", { json = { Name = "ünïcode & spaces" } }))
      assert.matches("^[%w%-]+$", res:json().Response.Album.UrlName)
    end)

    it("refuses a taken UrlName (409), a bad one (400), an unknown folder (404)", function()
      local base = "/api/v2/folder/user/tester/Sync"
      local _, err = api:post(base .. "!albums", { json = { Name = "Again", UrlName = "Existing" } })
      assert.equal(409, err.status)
      _, err = api:post(base .. "!folders", { json = { Name = "x", UrlName = "a/b" } })
      assert.equal(400, err.status)
      _, err = api:post(base .. "!folders", { json = { UrlName = "NoName" } })
      assert.equal(400, err.status)
      _, err = api:post("/api/v2/folder/user/tester/Nowhere!albums", { json = { Name = "x" } })
      assert.equal(404, err.status)
      _, err = api:get("/api/v2/folder/user/someoneelse")
      assert.equal(404, err.status)
    end)

    it("the node API: POST node !children {Type, Name, UrlName}; an album has no children", function()
      local root = get(api, "/api/v2!authuser", "User").Uris.Node.Uri
      local res = assert(api:post(root .. "!children",
        { json = { Type = "Folder", Name = "ByNode", UrlName = "ByNode" } }))
      assert.equal(201, res.status)
      local folder = res:json().Response.Node
      assert.equal("Folder", folder.Type)
      res = assert(api:post(folder.Uri .. "!children",
        { json = { Type = "Album", Name = "Inside", UrlName = "Inside" } }))
      local album = res:json().Response.Node
      assert.equal("Album", album.Type)
      assert.matches("^/api/v2/album/%w+$", album.Uris.Album.Uri)
      assert.equal("Inside", all(api, folder.Uri .. "!children")[1].Name)
      assert.equal("/ByNode/Inside", get(api, album.Uris.Album.Uri, "Album").UrlPath)
      local _, err = api:post(album.Uri .. "!children", { json = { Type = "Folder", Name = "No" } })
      assert.equal(400, err.status)
      _, err = api:post(folder.Uri .. "!children", { json = { Type = "Page", Name = "No" } })
      assert.equal(400, err.status)
    end)
  end)

  describe("album images", function()
    it("are paged: 250 images in three pages of 100, in a stable order, each once", function()
      local pages, keys, seen = 0, {}, {}
      for page in api:pages("/api/v2/album/AlbMany!images", { count = 100 }) do
        pages = pages + 1
        for _, img in ipairs(page.Response.AlbumImage) do
          assert.is_nil(seen[img.ImageKey])
          seen[img.ImageKey] = true
          keys[#keys + 1] = img.ImageKey
        end
      end
      assert.equal(3, pages)
      assert.equal(250, #keys)
      local again = all(api, "/api/v2/album/AlbMany!images", { count = 37 })
      for i, img in ipairs(again) do assert.equal(keys[i], img.ImageKey) end
      assert.equal("many_001.jpg", again[1].FileName)
      assert.equal("many_250.jpg", again[250].FileName)
    end)

    it("an EMPTY album has no AlbumImage key at all (Pages.Total 0); each yields nothing", function()
      local _, res = get(api, "/api/v2/album/AlbEmpty!images", "AlbumImage")
      local r = res:json().Response
      assert.equal("AlbumImage", r.Locator)
      assert.is_nil(r.AlbumImage)
      assert.equal(0, r.Pages.Total)
      assert.is_nil(res.body:find("AlbumImage\":", 1, true))
      assert.same({}, all(api, "/api/v2/album/AlbEmpty!images"))
    end)

    it("an image has the fields the backup reads; its MD5 and size are its bytes'", function()
      local imgs = by(all(api, "/api/v2/album/AlbSummer!images"), "ImageKey")
      local img = imgs.ImgSunset
      assert.equal("sunset.jpg", img.FileName)
      assert.equal("Sunset", img.Title)
      assert.equal("At the beach", img.Caption)
      assert.equal("JPG", img.Format)
      assert.is_false(img.IsVideo)
      assert.is_false(img.Processing)
      assert.equal(70000, img.ArchivedSize)
      assert.equal(sb.archive_origin .. "/_archive/ImgSunset", img.ArchivedUri)
      for _, f in ipairs { "LastUpdated", "DateTimeOriginal", "DateTimeUploaded" } do
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%+00:00$", img[f], f)
      end
      assert.is_nil(img.Uris.LargestVideo)        -- a photo
      local k = known("ImgSunset")
      assert.equal("ImgSunset/v1", k.Seed)
      assert.equal(content.md5(k.Seed, 70000), img.ArchivedMD5)
      assert.equal(md5_hex(content.bytes(k.Seed, 70000)), img.ArchivedMD5)
      assert.is_nil(imgs.ImgNoDate.DateTimeOriginal)     -- unknown: absent
      assert.equal("PNG", imgs.ImgTiny.Format)
      -- the image endpoints answer the same object
      assert.same(img, (get(api, "/api/v2/image/ImgSunset-0", "Image")))
      assert.same(img, (get(api, "/api/v2/image/ImgSunset", "Image")))
      assert.same(img, (get(api, "/api/v2/album/AlbSummer/image/ImgSunset-0", "AlbumImage")))
      local _, err = api:get("/api/v2/album/AlbDupes/image/ImgSunset-0")
      assert.equal(404, err.status)
    end)

    it("duplicate file names in one album: distinct keys, bytes and MD5s", function()
      local list = all(api, "/api/v2/album/AlbDupes!images")
      local same, md5s = {}, {}
      for _, img in ipairs(list) do
        if img.FileName == "IMG_0001.JPG" then same[#same + 1] = img.ImageKey end
        assert.is_nil(md5s[img.ArchivedMD5])
        md5s[img.ArchivedMD5] = true
      end
      assert.same({ "ImgDup1", "ImgDup2", "ImgDup3" }, same)
      assert.equal("img_0001.jpg", list[4].FileName)
    end)

    it("hostile names come through the JSON byte for byte (NUL, control characters, 300 bytes, ...)", function()
      local list = all(api, "/api/v2/album/AlbHostile!images")
      assert.equal(#fixtures.HOSTILE, #list)
      for i, img in ipairs(list) do assert.equal(fixtures.HOSTILE[i], img.FileName) end
      local names = by(list, "FileName")
      assert.is_table(names["nul\0byte.jpg"])
      assert.is_table(names[("a"):rep(296) .. ".jpg"])
      assert.is_table(names["CON"])
      assert.is_table(names[""])
      -- hostile album and folder names
      local albums = by(all(api, "/api/v2/user/tester!albums"), "AlbumKey")
      assert.equal("../../outside", albums.AlbEscape.Name)
      assert.equal("a/b\\c", albums.AlbSlash.Name)
      assert.equal("trail. ", albums.AlbTrail.Name)
      assert.equal(".", albums.AlbDot.Name)
      -- and their bytes download by key like any other
      local r = assert(api:download(names["../../escape.jpg"], dir .. "/x"))
      assert.equal(1000, r.size)
    end)
  end)

  describe("videos and !largestvideo", function()
    it("a video: IsVideo, Uris.LargestVideo; !largestvideo {Url, Size, MD5}, other bytes than the original", function()
      local img = get(api, "/api/v2/image/VidReady-0", "Image")
      assert.is_true(img.IsVideo)
      assert.is_false(img.Processing)
      assert.equal("/api/v2/image/VidReady-0!largestvideo", img.Uris.LargestVideo.Uri)
      assert.equal(40000, img.ArchivedSize)
      local v = get(api, img.Uris.LargestVideo.Uri, "LargestVideo")
      assert.equal(sb.archive_origin .. "/_archive/VidReady/largest", v.Url)
      assert.equal(90000, v.Size)
      local k = known("VidReady")
      assert.equal(content.md5(k.VideoSeed, 90000), v.MD5)
      local r = assert(api:download(img, dir .. "/clip.mp4"))   -- the library takes the largest rendition
      assert.equal(90000, r.size)
      assert.equal(v.MD5, r.md5)
      assert.equal(content.bytes(k.VideoSeed, 90000), files.slurp(dir .. "/clip.mp4"))
    end)

    it("a video still processing: Processing = true, !largestvideo 404; finish flips it", function()
      local img = get(api, "/api/v2/image/VidProc-0", "Image")
      assert.is_true(img.Processing)
      local _, err = api:get(img.Uris.LargestVideo.Uri)
      assert.equal(404, err.status)
      local r, derr = api:download(img, dir .. "/p.mov")
      assert.is_nil(r)
      assert.equal("processing", derr.code)
      -- its rendition is not in the archive yet either (signed: 404)
      local _, aerr = api:request { url = sb.archive_origin .. "/_archive/VidProc/largest" }
      assert.equal(404, aerr.status)
      assert(sb:finish("VidProc"))
      local after = get(api, "/api/v2/image/VidProc-0", "Image")
      assert.is_false(after.Processing)
      assert(after.LastUpdated > img.LastUpdated)
      r = assert(api:download(after, dir .. "/p.mov"))
      assert.equal(60000, r.size)
      assert(sb:change("process", "VidProc"))
      assert.is_true(get(api, "/api/v2/image/VidProc-0", "Image").Processing)
      -- a photo has no largest video
      _, err = api:get("/api/v2/image/ImgStill-0!largestvideo")
      assert.equal(404, err.status)
    end)
  end)

  describe("archive downloads", function()
    it("are signed: unsigned or badly signed 401 (with WWW-Authenticate), nothing sent", function()
      local img = get(api, "/api/v2/image/ImgBeach-0", "Image")
      local before = sb:stats()
      local st, h, body = unsigned(img.ArchivedUri)
      assert.equal(401, st)
      assert.matches("^OAuth", h["www-authenticate"])
      assert.not_matches("\255", body)
      -- signed with a token the sandbox did not give out
      local other = sb:client():session("not-a-token", "not-a-secret")
      local r, err = other:download(img, dir .. "/b.jpg")
      other:close()
      assert.is_nil(r)
      assert.equal(401, err.status)
      assert.is_nil(files.slurp(dir .. "/b.jpg.part"))
      local after = sb:stats()
      assert.equal(before.archive_refused + 2, after.archive_refused)
      assert.equal(before.archive_bytes, after.archive_bytes)
      assert.equal(before.downloads_started, after.downloads_started)
    end)

    it("honour Range: 206 with Content-Range, bytes=N-M, 416 past the end; HEAD says the length", function()
      local img = get(api, "/api/v2/image/ImgBeach-0", "Image")
      local bytes = content.bytes(known("ImgBeach").Seed, 150000)
      local res = assert(api:request { url = img.ArchivedUri, headers = { Range = "bytes=100000-" } })
      assert.equal(206, res.status)
      assert.equal("bytes 100000-149999/150000", res.headers["content-range"])
      assert.equal(bytes:sub(100001), res.body)
      res = assert(api:request { url = img.ArchivedUri, headers = { Range = "bytes=10-19" } })
      assert.equal(206, res.status)
      assert.equal(bytes:sub(11, 20), res.body)
      res = assert(api:request { url = img.ArchivedUri })
      assert.equal(200, res.status)
      assert.equal("bytes", res.headers["accept-ranges"])
      assert.equal(bytes, res.body)
      local r, err = api:request { url = img.ArchivedUri, headers = { Range = "bytes=150000-" } }
      assert.is_nil(r)
      assert.equal(416, err.status)
      assert.equal("bytes */150000", err.headers["content-range"])
      res = assert(api:request { method = "HEAD", url = img.ArchivedUri })
      assert.equal("150000", res.headers["content-length"])
      assert.equal("", res.body)
      -- the library resumes a .part with Range
      files.write_file(dir .. "/beach.jpg.part", bytes:sub(1, 70000))
      local before = sb:stats()
      r = assert(api:download(img, dir .. "/beach.jpg"))
      assert.equal(70000, r.resumed)
      assert.equal(80000, r.written)
      assert.equal(bytes, files.slurp(dir .. "/beach.jpg"))
      local after = sb:stats()
      assert.equal(before.downloads_ranged + 1, after.downloads_ranged)
      assert.equal(before.archive_bytes + 80000, after.archive_bytes)
    end)

    it("are served on the second origin only: the API origin answers 404 for /_archive/", function()
      assert.not_equal(sb.origin, sb.archive_origin)
      local _, err = api:request { url = sb.origin .. "/_archive/ImgBeach" }
      assert.equal(404, err.status)
      -- a client that does not name the archive origin refuses before sending
      local c = sb:client { download_origins = { sb.origin } }
      local s = c:session(api.token, "unused")
      local r, derr = s:download(get(api, "/api/v2/image/ImgBeach-0", "Image"), dir .. "/b.jpg")
      s:close()
      assert.is_nil(r)
      assert.equal("config", derr.code)
    end)

    it("stream any size in bounded memory: 256 MiB through the child, its peak RSS stays small", function()
      local img = assert(sb:add_image("AlbVideos", "huge.mp4", { size = 4096, video = true,
                                                                  video_size = 256 * 1024 * 1024 }))
      local key = img.Image.ImageKey
      local v = get(api, "/api/v2/image/" .. key .. "-0!largestvideo", "LargestVideo")
      local got, d = 0, assert(core.digest_new("md5"))
      local r = assert(api:download(v, { on_data = function(chunk)
        got = got + #chunk
        d:update(chunk)
      end, timeout = 600 }))
      assert.equal(256 * 1024 * 1024, got)
      assert.equal(v.MD5, hex(d:final()))
      assert.equal(v.MD5, r.md5)
      local hwm = proc.status_kb(sb.pid, "VmHWM")     -- (about 23 MB measured)
      assert(hwm and hwm < 64 * 1024, ("the sandbox's peak RSS was %s kB"):format(tostring(hwm)))
      assert(sb:delete(key))
    end)
  end)

  describe("switches", function()
    it("a 429 storm on the archive: the next N downloads answer 429 with Retry-After; the API is spared", function()
      local img = get(api, "/api/v2/image/ImgTiny-0", "Image")
      local noretry = sb:session { retry = false }
      sb:mode { fail429 = 2, retry_after = 0, scope = "archive" }
      assert(noretry:get("/api/v2!authuser"))     -- the API is not in the storm
      local r, err = noretry:download(img, dir .. "/t.png")
      assert.is_nil(r)
      assert.equal(429, err.status)
      assert.equal("0", err.headers["retry-after"])
      local before = sb:stats()
      r = assert(api:download(img, dir .. "/t.png"))  -- the policy waits and tries again
      assert.equal(2, r.attempts)
      assert.equal(before.throttled + 1, sb:stats().throttled)
      noretry:close()
    end)

    it("a 429 storm on the API (scope api), and a 503", function()
      local noretry = sb:session { retry = false }
      sb:mode { fail429 = 1, retry_after = 3, scope = "api" }
      local img = get(api, "/api/v2/image/ImgTiny-0", "Image")    -- (this one took the storm: retried)
      sb:mode { fail429 = 1, retry_after = 3, scope = "api" }
      local r, err = noretry:get("/api/v2/album/AlbSummer")
      assert.is_nil(r)
      assert.equal(429, err.status)
      assert.equal("3", err.headers["retry-after"])
      sb:mode { fail429 = 1, scope = "api" }
      assert(noretry:download(img, dir .. "/t.png"))   -- the archive is not in it
      sb:mode { fail503 = 1 }
      r, err = noretry:get("/api/v2/album/AlbSummer")
      assert.is_nil(r)
      assert.equal(503, err.status)
      assert(noretry:get("/api/v2/album/AlbSummer"))
      noretry:close()
    end)

    it("drops connections mid-body: the next N downloads stop after K bytes; the library resumes", function()
      local img = get(api, "/api/v2/image/ImgBeach-0", "Image")
      local bytes = content.bytes(known("ImgBeach").Seed, 150000)
      -- raw: the head promises all the bytes, K of them come, then the connection ends
      sb:mode { drop_after = 5000, drop_count = 1 }
      local r, err = api:request { url = img.ArchivedUri, retry = false }
      assert.is_nil(r)
      assert.is_string(err.message)
      local before = sb:stats()
      sb:mode { drop_after = 50000, drop_count = 2 }
      r = assert(api:download(img, dir .. "/beach.jpg"))
      assert.equal(3, r.attempts)
      assert.equal(100000, r.resumed)             -- the last try continued from 100000
      assert.equal(150000, r.written)             -- 50000 a try: nothing twice
      assert.equal(bytes, files.slurp(dir .. "/beach.jpg"))
      local after = sb:stats()
      assert.equal(before.downloads_dropped + 2, after.downloads_dropped)
      assert.equal(before.downloads_started + 3, after.downloads_started)
      assert.equal(before.downloads_completed + 1, after.downloads_completed)
      assert.equal(before.downloads_ranged + 2, after.downloads_ranged)
      assert.equal(before.archive_bytes + 150000, after.archive_bytes)
    end)

    it("ignore_range and bad_range: the library starts over; lie_md5: a checksum error", function()
      local img = get(api, "/api/v2/image/ImgBeach-0", "Image")
      local bytes = content.bytes(known("ImgBeach").Seed, 150000)
      for _, m in ipairs { { ignore_range = 1 }, { bad_range = true } } do
        sb:mode(m)
        files.write_file(dir .. "/beach.jpg.part", bytes:sub(1, 1000))
        local r = assert(api:download(img, dir .. "/beach.jpg"))
        assert.equal(0, r.resumed)
        assert.equal(bytes, files.slurp(dir .. "/beach.jpg"))
      end
      sb:mode { lie_md5 = "ImgBeach" }
      local lying = get(api, "/api/v2/image/ImgBeach-0", "Image")
      assert.not_equal(img.ArchivedMD5, lying.ArchivedMD5)
      assert.equal(content.md5("ImgSunset/v1", 70000), get(api, "/api/v2/image/ImgSunset-0", "Image").ArchivedMD5)
      local r, err = api:download(lying, dir .. "/lie.jpg")
      assert.is_nil(r)
      assert.equal("checksum", err.code)
      sb:mode { lie_size = 1 }
      assert.equal(150001, get(api, "/api/v2/image/ImgBeach-0", "Image").ArchivedSize)
    end)

    it("rate: a download takes at least size / rate seconds", function()
      sb:mode { rate = 100000 }
      local img = get(api, "/api/v2/image/ImgSunset-0", "Image")
      local t0 = socket.gettime()
      assert(api:download(img, dir .. "/s.jpg"))
      assert(socket.gettime() - t0 >= 0.6, "70000 bytes at 100000 a second")
    end)

    it("latency applies to archive downloads too", function()
      sb:mode { latency = 0.3 }
      local img = get(api, "/api/v2/image/ImgTiny-0", "Image")
      local before = sb:stats().delayed
      assert(api:download(img, dir .. "/t.png"))
      assert.equal(before + 1, sb:stats().delayed)
    end)
  end)

  describe("counters", function()
    it("API calls by kind (listing vs other), archive bytes, downloads started and completed, uploads", function()
      sb:reset_stats()
      local root = get(api, "/api/v2!authuser", "User").Uris.Node.Uri
      all(api, root .. "!children", { count = 5 })      -- 3 pages
      get(api, "/api/v2/album/AlbSummer", "Album")
      local imgs = all(api, "/api/v2/album/AlbSummer!images")
      get(api, "/api/v2/folder/user/tester/Family!albums", "Album")
      local s = sb:stats()
      assert.equal(7, s.api_listing)
      assert.equal(0, s.api_other)
      assert.equal(7, s.api_calls)
      assert.equal(3, s.api_routes["GET node!children"])
      assert.equal(1, s.api_routes["GET authuser"])
      assert.equal(1, s.api_routes["GET album!images"])
      assert.equal(1, s.api_routes["GET folder!albums"])
      get(api, "/api/v2/image/ImgBeach-0", "Image")
      api:get("/api/v2/image/VidProc-0!largestvideo")
      local total = 0
      for i, img in ipairs(imgs) do
        assert(api:download(img, dir .. "/" .. i))
        total = total + img.ArchivedSize
      end
      assert(api:upload { album = "/api/v2/album/AlbEmpty", data = "up", filename = "up.jpg" })
      s = sb:stats()
      assert.equal(7, s.api_listing)
      assert.equal(2, s.api_other)
      assert.equal(#imgs, s.downloads_started)
      assert.equal(#imgs, s.downloads_completed)
      assert.equal(total, s.archive_bytes)
      assert.equal(1, s.uploads)
      local old = sb:reset_stats()
      assert.equal(total, old.archive_bytes)
      assert.equal(0, sb:stats().archive_bytes)
      assert(sb:delete(s.last_upload.key))
    end)
  end)

  describe("changes between runs", function()
    it("rename: a new FileName, LastUpdated later, the same bytes", function()
      local before = get(api, "/api/v2/image/ImgTiny-0", "Image")
      local k = assert(sb:rename("ImgTiny", "renamed.png"))
      assert.equal("renamed.png", k.Image.FileName)
      local after = get(api, "/api/v2/image/ImgTiny-0", "Image")
      assert.equal("renamed.png", after.FileName)
      assert(after.LastUpdated > before.LastUpdated)
      assert.equal(before.ArchivedMD5, after.ArchivedMD5)
      assert(sb:rename("ImgTiny", "tiny.png"))
    end)

    it("move: to the end of another album, gone from the first", function()
      assert(sb:move("ImgDupOther", "AlbParis"))
      assert.is_nil(by(all(api, "/api/v2/album/AlbDupes!images"), "ImageKey").ImgDupOther)
      local paris = all(api, "/api/v2/album/AlbParis!images")
      assert.equal("ImgDupOther", paris[#paris].ImageKey)
      assert.equal("/api/v2/album/AlbParis", paris[#paris].Uris.ImageAlbum.Uri)
      assert(sb:move("ImgDupOther", "AlbDupes"))
      local _, err = sb:move("ImgDupOther", "NoAlbum")
      assert.equal("no such album", err)
    end)

    it("change: new bytes (version 2), LastUpdated and ArchivedMD5 change; the archive serves them", function()
      local before = get(api, "/api/v2/image/Img64k-0", "Image")
      local k = assert(sb:replace("Img64k", 70001))
      assert.equal(2, k.Version)
      assert.equal("Img64k/v2", k.Seed)
      local after = get(api, "/api/v2/image/Img64k-0", "Image")
      assert(after.LastUpdated > before.LastUpdated)
      assert.not_equal(before.ArchivedMD5, after.ArchivedMD5)
      assert.equal(70001, after.ArchivedSize)
      -- a download from the old listing fails its check; from the new one it is the new bytes
      local r, err = api:download(before, dir .. "/old.jpg")
      assert.is_nil(r)
      assert.equal("checksum", err.code)
      r = assert(api:download(after, dir .. "/new.jpg"))
      assert.equal(after.ArchivedMD5, r.md5)
      assert.equal(content.bytes("Img64k/v2", 70001), files.slurp(dir .. "/new.jpg"))
    end)

    it("delete and add: gone from the listing, the API and the archive; a new image appears", function()
      local k = assert(sb:add_image("AlbParis", "new.jpg", { size = 1234 }))
      local key = k.Image.ImageKey
      local listed = all(api, "/api/v2/album/AlbParis!images")
      assert.equal(key, listed[#listed].ImageKey)
      assert.equal(1234, listed[#listed].ArchivedSize)
      assert(sb:delete(key))
      assert.is_nil(by(all(api, "/api/v2/album/AlbParis!images"), "ImageKey")[key])
      local _, err = api:get("/api/v2/image/" .. key .. "-0")
      assert.equal(404, err.status)
      _, err = api:request { url = k.Image.ArchivedUri }
      assert.equal(404, err.status)
      local _, e2 = sb:delete(key)
      assert.equal("no such image", e2)
    end)
  end)

  describe("uploads", function()
    it("add real images to the album, with the MD5 of their bytes; the archive serves the bytes", function()
      local data = ("upload bytes "):rep(1000)
      local res = assert(api:upload { album = "/api/v2/album/AlbExisting", data = data, filename = "u.jpg",
                                      title = "Up" })
      local uri = res:json().Image.ImageUri
      local img = get(api, uri, "Image")
      assert.equal("u.jpg", img.FileName)
      assert.equal("Up", img.Title)
      assert.equal(md5_hex(data), img.ArchivedMD5)
      assert.equal(#data, img.ArchivedSize)
      assert.is_nil(img.DateTimeOriginal)
      local listed = all(api, "/api/v2/album/AlbExisting!images")
      assert.equal(img.ImageKey, listed[#listed].ImageKey)
      assert(api:download(img, dir .. "/u.jpg"))
      assert.equal(data, files.slurp(dir .. "/u.jpg"))
    end)

    it("files SmugMug converts (HEIC, videos) are kept as other bytes: their MD5 is not the file's", function()
      local data = "pretend heic"
      local res = assert(api:upload { album = "/api/v2/album/AlbExisting", data = data, filename = "p.HEIC" })
      local img = get(api, res:json().Image.ImageUri, "Image")
      assert.not_equal(md5_hex(data), img.ArchivedMD5)
      assert.equal("JPG", img.Format)
      res = assert(api:upload { album = "/api/v2/album/AlbExisting", data = data, filename = "clip.MOV" })
      img = get(api, res:json().Image.ImageUri, "Image")
      assert.is_true(img.IsVideo)
      assert.not_equal(md5_hex(data), img.ArchivedMD5)
      sb:mode { convert = 0 }
      res = assert(api:upload { album = "/api/v2/album/AlbExisting", data = data, filename = "q.heic" })
      assert.equal(md5_hex(data), get(api, res:json().Image.ImageUri, "Image").ArchivedMD5)
    end)
  end)
end)

describe("sandbox: fixtures and origins", function()
  it("by default: the albums K0001..., archive downloads on the sandbox's own origin", function()
    local sb <close> = assert(launch.start { albums = 3 })
    local api = sb:session()
    local albums = all(api, "/api/v2/user/tester!albums")
    assert.equal(3, #albums)
    assert.equal("K0001", albums[1].AlbumKey)
    assert.equal("Album 1", albums[1].Name)
    local res = assert(api:upload { album = "/api/v2/album/K0002", data = "abc", filename = "a.jpg" })
    local img = get(api, res:json().Image.ImageUri, "Image")
    assert.equal(sb.origin .. "/_archive/" .. img.ImageKey, img.ArchivedUri)
    assert.is_nil(sb.archive_origin)
    local dir = files.tmpdir()
    assert(api:download(img, dir .. "/a.jpg"))       -- the default download_origins has the api origin
    assert.equal("abc", files.slurp(dir .. "/a.jpg"))
    os.execute("rm -rf " .. proc.q(dir))
    api:close()
  end)

  it("bench and video fixtures, sized by images, image_size, video_size", function()
    local sb <close> = assert(launch.start { fixture = "bench,video", images = 7, image_size = 3000,
                                             video_size = 5000 })
    local api = sb:session()
    local list = all(api, "/api/v2/album/AlbBench!images")
    assert.equal(7, #list)
    assert.equal("IMG_00001.JPG", list[1].FileName)
    for _, img in ipairs(list) do assert.equal(3000, img.ArchivedSize) end
    local v = get(api, "/api/v2/image/VidBig-0!largestvideo", "LargestVideo")
    assert.equal(5000, v.Size)
    api:close()
  end)

  it("a JSON description (a table, or fixture_file): nodes, repeat, keys, dates", function()
    local desc = { children = {
      { Type = "Folder", Name = "Top", UrlName = "Top", children = {
        { Type = "Album", Name = "A", AlbumKey = "MyAlbum", images = {
          { FileName = "one.jpg", ImageKey = "One", Size = 10, DateTimeOriginal = "2001-02-03T04:05:06" },
          { FileName = "r%02d.jpg", Size = 5, ["repeat"] = 3 },
          { FileName = "v.mp4", Size = 7, VideoSize = 9, Processing = true },
        } },
      } },
    } }
    local sb <close> = assert(launch.start { fixture = desc })
    local api = sb:session()
    local list = all(api, "/api/v2/album/MyAlbum!images")
    assert.same({ "one.jpg", "r01.jpg", "r02.jpg", "r03.jpg", "v.mp4" }, (function()
      local t = {}
      for i, x in ipairs(list) do t[i] = x.FileName end
      return t
    end)())
    assert.equal("One", list[1].ImageKey)
    assert.equal("2001-02-03T04:05:06+00:00", list[1].DateTimeOriginal)
    assert.is_true(list[5].IsVideo)
    assert.is_true(list[5].Processing)
    assert.equal("/Top/A", get(api, "/api/v2/album/MyAlbum", "Album").UrlPath)
    local tree = sb:tree()
    assert.equal("Top", tree.Children[1].Name)
    assert.equal("MyAlbum", tree.Children[1].Children[1].AlbumKey)
    assert.equal(5, #tree.Children[1].Children[1].Images)
    api:close()
    -- the same as a file, with the default albums asked for too
    local path = os.tmpname()
    files.write_file(path, assert(cjson.encode(desc)))
    local sb2 <close> = assert(launch.start { fixture_file = path, albums = 2 })
    os.remove(path)
    local api2 = sb2:session()
    assert.equal(3, #all(api2, "/api/v2/user/tester!albums"))
    assert.equal(5, #all(api2, "/api/v2/album/MyAlbum!images"))
    api2:close()
  end)

  it("a fixture that cannot be built: the sandbox does not start, and says why", function()
    local sb, err = launch.start { fixture = "nonesuch" }
    assert.is_nil(sb)
    assert.matches("no built%-in fixture named 'nonesuch'", err.message)
    sb, err = launch.start { fixture = { children = { { Type = "Album", Name = "A", images = { { Size = 1 } } } } } }
    assert.is_nil(sb)
    assert.matches("FileName is required", err.message)
    sb, err = launch.start { fixture = { children = { { Type = "Album", Name = "A", UrlName = "A" },
                                                      { Type = "Album", Name = "B", UrlName = "A" } } } }
    assert.is_nil(sb)
    assert.matches("UrlName exists", err.message)
    assert.has_error(function() launch.start { fixture = 3 } end)
    assert.has_error(function() launch.start { images = -1 } end)
    assert.has_error(function() launch.start { archive_origin = "yes" } end)
  end)
end)

describe("sandbox in process", function()
  local loop = require "smugoauth.loop"
  local sandbox = require "smugoauth.apps.sandbox"

  it("computes the generated images' MD5s in a task of its loop, which ends (at once when closed)", function()
    local L = assert(loop.new())
    local sb = assert(sandbox.new { fixture = "bench", images = 3, image_size = 1000, loop = L })
    assert.equal(1, L:tasks())                     -- the warm-up
    for _ = 1, 200 do
      if L:tasks() == 0 then break end
      assert(L:step(0.01))
    end
    assert.equal(0, L:tasks())
    sb:close()
    -- closed before it is done: it ends at its next image
    sb = assert(sandbox.new { fixture = "bench", images = 500, image_size = 1000, loop = L })
    assert.equal(1, L:tasks())
    assert(L:step(0))
    sb:close()
    for _ = 1, 5 do assert(L:step(0)) end
    assert.equal(0, L:tasks())
    -- nothing generated, or warm = false: no task
    sb = assert(sandbox.new { albums = 2, loop = L })
    assert.equal(0, L:tasks())
    sb:close()
    sb = assert(sandbox.new { fixture = "backup", warm = false, loop = L })
    assert.equal(0, L:tasks())
    sb:close()
    L:close()
  end)

  it("refuses misuse of its options; a fixture that cannot be built is nil, message", function()
    assert.has_error(function() sandbox.new { fixture = 1 } end)
    assert.has_error(function() sandbox.new { images = 1.5 } end)
    assert.has_error(function() sandbox.new { fixture_file = {} } end)
    local sb, err = sandbox.new { fixture_file = "/nonexistent/fixture.json" }
    assert.is_nil(sb)
    assert.matches("^fixture: ", err)
  end)
end)

describe("sandbox content", function()
  it("is deterministic, different per seed and per piece, cut anywhere, with its MD5", function()
    local a = content.bytes("K/v1", 200000)
    assert.equal(200000, #a)
    assert.equal(a, content.bytes("K/v1", 200000))
    assert.not_equal(a, content.bytes("K/v2", 200000))
    assert.not_equal(a:sub(1, 65536), a:sub(65537, 131072))
    assert.equal(a:sub(1, 1000), content.bytes("K/v1", 1000))
    for _, r in ipairs { { 0, 199999 }, { 65535, 65537 }, { 1, 1 }, { 131072, 199999 }, { 100, 70000 } } do
      local t = {}
      for p in content.pieces("K/v1", 200000, r[1], r[2]) do t[#t + 1] = p end
      assert.equal(a:sub(r[1] + 1, r[2] + 1), table.concat(t))
    end
    assert.equal(md5_hex(a), content.md5("K/v1", 200000))
    assert.equal(md5_hex(""), content.md5("K/v1", 0))
    assert.has_error(function() content.bytes("K", -1) end)
    assert.has_error(function() content.bytes(1, 1) end)
  end)
end)
