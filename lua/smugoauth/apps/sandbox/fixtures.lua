--- smugoauth.apps.sandbox.fixtures: what the sandbox's user has when it
-- starts: built-in fixtures by name, and trees described in JSON (or a Lua
-- table of the same shape).
--
-- Built-ins (option `fixture`, names separated by commas; each adds its
-- nodes under the root):
--
--  - `albums` (the default when no fixture is named): `albums` albums
--    (option, 250) K0001, K0002, ... named "Album 1", ... under the root,
--    no images.
--  - `backup`: a tree for backups. Folder Family (UrlName Family) > Folder
--    "2023" (Y2023) > Album Summer (AlbSummer: beach.jpg 150000 bytes,
--    sunset.jpg 70000 with Title and Caption, tiny.png 1 byte,
--    exactly64k.jpg 65536, nodate.jpg 3000 with no DateTimeOriginal); Family
--    > Album Duplicates (AlbDupes: IMG_0001.JPG three times (ImgDup1..3,
--    other bytes each), img_0001.jpg, IMG_0002.JPG); Folder Travel > Folder
--    Europe > Folder France > Album Paris (AlbParis: three photos); Album
--    Videos (AlbVideos: clip.mp4 a video ready (VidReady, original 40000
--    bytes, largest rendition 90000), processing.mov a video still
--    processing (VidProc), still.jpg); Album Empty (AlbEmpty, no images);
--    Album "Hostile names" (AlbHostile: one image of 1000 bytes for each of
--    `HOSTILE` below); albums and folders with hostile names (Name
--    "../../outside" (AlbEscape), "CON" (AlbCon), "a/b\\c" (AlbSlash),
--    "trail. " (AlbTrail), a folder ".." holding an album "."
--    (AlbDot)), a Page "About" (no album), Album Many (AlbMany: 250 photos
--    of 1000 bytes, more than two pages of !images).
--  - `tree`: for sync --tree: Folder Sync (UrlName Sync) > Album Existing
--    (AlbExisting: existing.jpg) and an empty Folder Sync > Old.
--  - `bench`: Album Bench (AlbBench) with `images` (2000) photos
--    IMG_00001.JPG, ... of `image_size` (262144) bytes each.
--  - `video`: Album "Big video" (AlbBigVideo) with one video big.mp4
--    (VidBig): original 1 MiB, largest rendition `video_size` (2 GiB) bytes.
--
-- A description (option `fixture` as a table, `fixture_file` a JSON file):
-- `{ children = { NODE, ... } }`, a NODE `{ Type = "Folder"|"Album"|"Page",
-- Name, UrlName, Description, AlbumKey, Title, children = { NODE, ... }
-- (folders), images = { IMAGE, ... } (albums) }`, an IMAGE `{ FileName,
-- ImageKey, Title, Caption, Keywords, Format, Size, IsVideo, Processing,
-- VideoSize, DateTimeOriginal (ISO 8601 UTC "2023-07-14T10:11:12", seconds,
-- or false: unknown), repeat = N (N images: FileName then a format for
-- string.format with the number, 1..N) }`. Keys left out are made
-- deterministically (N00001, A00001, I00001, ...).
-- @module smugoauth.apps.sandbox.fixtures
local cjson = require "cjson.safe"
local nodes = require "smugoauth.apps.sandbox.nodes"
local images = require "smugoauth.apps.sandbox.images"

local M = {}

--- The hostile file names of the `backup` fixture's album AlbHostile.
M.HOSTILE = {
  "..", ".", "../../escape.jpg", "/etc/passwd", "/absolute.jpg", "\\windows\\system32.jpg",
  "C:\\evil.jpg", "nul\0byte.jpg", "ctrl\1\27[31mred.jpg", "new\nline.jpg", "tab\tname.jpg",
  ("a"):rep(296) .. ".jpg", ("\u{00e9}"):rep(150) .. ".jpg", "Case.jpg", "case.JPG", "CASE.jpg",
  "trailing.jpg.", "trailing space.jpg ", "dots...", "CON", "con.jpg", "NUL.txt", "COM1.jpg", "LPT9",
  "AUX.jpg", "PRN", "", "   ", "UTF-8 \u{00e9} \u{65e5}\u{672c}.jpg", "a/../../b.jpg",
  "~/.ssh/authorized_keys", "$(touch pwned).jpg", "-rf.jpg", "name.jpg.part", ".hidden.jpg",
}

local function album(name, url, key, imgs, extra)
  local n = { Type = "Album", Name = name, UrlName = url, AlbumKey = key, images = imgs }
  for k, v in pairs(extra or {}) do n[k] = v end
  return n
end

local function folder(name, url, children)
  return { Type = "Folder", Name = name, UrlName = url, children = children }
end

local function photos(list)
  local out = {}
  for i, p in ipairs(list) do
    out[i] = type(p) == "string" and { FileName = p, Size = 1000 } or p
  end
  return out
end

--- The built-in fixtures: name -> function(opts) -> description.
M.builtin = {
  albums = function(opts)
    local out = {}
    for i = 1, opts.albums or 250 do
      out[i] = album("Album " .. i, "Album-" .. i, ("K%04d"):format(i), {}, { Title = "Album " .. i })
    end
    return { children = out }
  end,
  backup = function()
    local hostile = {}
    for i, name in ipairs(M.HOSTILE) do
      hostile[i] = { FileName = name, Size = 1000, ImageKey = ("Hostile%02d"):format(i) }
    end
    return { children = {
      folder("Family", "Family", {
        folder("2023", "Y2023", {
          album("Summer", "Summer", "AlbSummer", photos {
            { FileName = "beach.jpg", Size = 150000, ImageKey = "ImgBeach" },
            { FileName = "sunset.jpg", Size = 70000, Title = "Sunset", Caption = "At the beach",
              ImageKey = "ImgSunset" },
            { FileName = "tiny.png", Size = 1, ImageKey = "ImgTiny" },
            { FileName = "exactly64k.jpg", Size = 65536, ImageKey = "Img64k" },
            { FileName = "nodate.jpg", Size = 3000, DateTimeOriginal = false, ImageKey = "ImgNoDate" },
          }),
        }),
        album("Duplicates", "Duplicates", "AlbDupes", photos {
          { FileName = "IMG_0001.JPG", Size = 2000, ImageKey = "ImgDup1" },
          { FileName = "IMG_0001.JPG", Size = 2000, ImageKey = "ImgDup2" },
          { FileName = "IMG_0001.JPG", Size = 3000, ImageKey = "ImgDup3" },
          { FileName = "img_0001.jpg", Size = 2000, ImageKey = "ImgDupCase" },
          { FileName = "IMG_0002.JPG", Size = 2000, ImageKey = "ImgDupOther" },
        }),
      }),
      folder("Travel", "Travel", { folder("Europe", "Europe", { folder("France", "France", {
        album("Paris", "Paris", "AlbParis", photos { "eiffel.jpg", "louvre.jpg", "seine.jpg" }),
      }) }) }),
      album("Videos", "Videos", "AlbVideos", {
        { FileName = "clip.mp4", Size = 40000, VideoSize = 90000, IsVideo = true, ImageKey = "VidReady" },
        { FileName = "processing.mov", Size = 30000, VideoSize = 60000, IsVideo = true, Processing = true,
          ImageKey = "VidProc" },
        { FileName = "still.jpg", Size = 5000, ImageKey = "ImgStill" },
      }),
      album("Empty", "Empty", "AlbEmpty", {}),
      album("Hostile names", "Hostile-names", "AlbHostile", hostile),
      album("../../outside", "Escape", "AlbEscape", photos { "escaped.jpg" }),
      album("CON", "Con", "AlbCon", photos { "con-album.jpg" }),
      album("a/b\\c", "Slashes", "AlbSlash", photos { "slashes.jpg" }),
      album("trail. ", "Trail", "AlbTrail", photos { "trail.jpg" }),
      folder("..", "Dots", { album(".", "Dot", "AlbDot", photos { "dot.jpg" }) }),
      { Type = "Page", Name = "About", UrlName = "About" },
      album("Many", "Many", "AlbMany", { { FileName = "many_%03d.jpg", Size = 1000, ["repeat"] = 250 } }),
    } }
  end,
  tree = function()
    return { children = {
      folder("Sync", "Sync", {
        album("Existing", "Existing", "AlbExisting", photos { { FileName = "existing.jpg", Size = 4000 } }),
        folder("Old", "Old", {}),
      }),
    } }
  end,
  bench = function(opts)
    return { children = {
      album("Bench", "Bench", "AlbBench", { { FileName = "IMG_%05d.JPG", Size = opts.image_size or 262144,
                                             ["repeat"] = opts.images or 2000 } }),
    } }
  end,
  video = function(opts)
    return { children = {
      album("Big video", "Big-video", "AlbBigVideo", { { FileName = "big.mp4", IsVideo = true, Size = 1024 * 1024,
        VideoSize = opts.video_size or 2 * 1024 * 1024 * 1024, ImageKey = "VidBig" } }),
    } }
  end,
}

-- Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS" (UTC; a zone suffix is ignored).
local function parse_iso(s)
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)")
  if not y then return nil end
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end                 -- days from civil (H. Hinnant)
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + tonumber(d) - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return (era * 146097 + doe - 719468) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(se)
end

local function add_images(self, a, list, where)
  if list == nil then return true end
  if type(list) ~= "table" then return nil, where .. ": images must be a list" end
  for i, im in ipairs(list) do
    local at = ("%s: image %d"):format(where, i)
    if type(im) ~= "table" then return nil, at .. " is not an object" end
    local f = {}
    for k, v in pairs(im) do if v ~= cjson.null then f[k] = v end end
    if type(f.DateTimeOriginal) == "string" then
      f.DateTimeOriginal = parse_iso(f.DateTimeOriginal)
      if not f.DateTimeOriginal then return nil, at .. ": DateTimeOriginal is not ISO 8601" end
    end
    local n = f["repeat"]
    f["repeat"] = nil
    if n ~= nil and (not math.tointeger(n) or n < 0) then return nil, at .. ": repeat must be a count" end
    if n and f.ImageKey then return nil, at .. ": repeat and ImageKey together" end
    local pattern = f.FileName
    for j = 1, n or 1 do
      if n then
        local ok, name = pcall(string.format, pattern, j)
        if not ok then return nil, at .. ": FileName is not a format for the number" end
        f.FileName = name
      end
      local img, _, msg = images.add(self, a, f)
      if not img then return nil, at .. ": " .. msg end
    end
  end
  return true
end

local function add_nodes(self, parent, list, where)
  if list == nil then return true end
  if type(list) ~= "table" then return nil, where .. ": children must be a list" end
  for i, d in ipairs(list) do
    local at = ("%s > %d"):format(where, i)
    if type(d) ~= "table" then return nil, at .. " is not an object" end
    local f = {}
    for k, v in pairs(d) do if v ~= cjson.null then f[k] = v end end
    local node, _, msg = nodes.add(self, parent, f.Type, f)
    if not node then return nil, at .. " (" .. tostring(f.Name) .. "): " .. msg end
    local ok, err
    if node.album then
      ok, err = add_images(self, node.album, f.images, at)
    elseif f.images ~= nil then
      ok, err = nil, at .. ": only an album has images"
    else
      ok, err = add_nodes(self, node, f.children, at)
    end
    if not ok then return nil, err end
  end
  return true
end

--- Add a description's nodes and images under the root: true, or nil and
-- what is wrong with it.
-- @param self the sandbox
-- @tparam table desc
function M.load(self, desc)
  if type(desc) ~= "table" then return nil, "fixture: a description is a JSON object" end
  return add_nodes(self, self.root, desc.children, "fixture")
end

--- Build the sandbox's fixtures from its options (`fixture`, `fixture_file`,
-- `albums`, `images`, `image_size`, `video_size`): true, or nil and why not.
-- @param self the sandbox
-- @tparam table opts
function M.build(self, opts)
  local names = opts.fixture
  if type(names) ~= "string" then
    names = (opts.fixture == nil and opts.fixture_file == nil or opts.albums) and "albums" or ""
  elseif opts.albums then
    names = "albums," .. names
  end
  for name in names:gmatch("[^,%s]+") do
    local make = M.builtin[name]
    if not make then return nil, "fixture: no built-in fixture named '" .. name .. "'" end
    local ok, err = M.load(self, make(opts))
    if not ok then return nil, err end
  end
  if type(opts.fixture) == "table" then
    local ok, err = M.load(self, opts.fixture)
    if not ok then return nil, err end
  end
  if opts.fixture_file then
    local f, ferr = io.open(opts.fixture_file, "rb")
    if not f then return nil, "fixture: " .. tostring(ferr) end
    local text = f:read("a")
    f:close()
    local desc, jerr = cjson.decode(text)
    if type(desc) ~= "table" then return nil, "fixture: " .. opts.fixture_file .. ": " .. tostring(jerr) end
    local ok, err = M.load(self, desc)
    if not ok then return nil, err end
  end
  return true
end

return M
