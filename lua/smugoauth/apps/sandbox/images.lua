--- smugoauth.apps.sandbox.images: the sandbox's images: each in one album,
-- its bytes generated from a seed (smugoauth.apps.sandbox.content: any
-- size, never stored) or, for an upload, the bytes sent; rendered as
-- SmugMug's AlbumImage / Image objects and served:
--
--   GET /api/v2/album/KEY!images          (paged) Response.AlbumImage = [ ... ];
--                                         an empty album has no AlbumImage key
--   GET /api/v2/album/KEY/image/IMG-0     Response.AlbumImage
--   GET /api/v2/image/IMG, /api/v2/image/IMG-0      Response.Image
--   GET /api/v2/image/IMG-0!largestvideo  Response.LargestVideo {Url, Size, MD5};
--                                         404 for a photo and while the video
--                                         is processing (Processing = true)
--   POST / (the upload origin)            see `upload`
--
-- An image: ImageKey, FileName, Title, Caption, Keywords, Format, IsVideo,
-- Processing, Hidden, ArchivedUri (the archive origin's `/_archive/IMG`),
-- ArchivedMD5 (hex), ArchivedSize, OriginalSize, LastUpdated,
-- DateTimeOriginal (absent when unknown), DateTimeUploaded, Uri, Uris =
-- {Image, ImageAlbum, LargestVideo (videos only)}. A video's largest
-- rendition is other bytes than its original: `/_archive/IMG/largest`,
-- seeded `SEED/video`. The seed of an image is `IMG/vN`, N its version (1,
-- and one more each time its bytes change).
-- @module smugoauth.apps.sandbox.images
local core = require "smugoauth.core"
local content = require "smugoauth.apps.sandbox.content"
local nodes = require "smugoauth.apps.sandbox.nodes"
local faults = require "smugoauth.apps.sandbox.faults"
local reply = require "smugoauth.apps.sandbox.reply"

local ok, api_error, json, iso = reply.ok, reply.api_error, reply.json, reply.iso

local M = {}

local VIDEO_EXT = { mov = true, mp4 = true, m4v = true, avi = true, mts = true, ["3gp"] = true, mkv = true }
local CONVERTED_EXT = { heic = true, heif = true }
local BASE_TIME = 1704067200          -- 2024-01-01T00:00:00Z: the fixtures' dates count from here

local function tohex(raw) return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

local function ext_of(name) return (tostring(name):match("%.([%w]+)$") or ""):lower() end

--- Set up the images (none yet) of the sandbox.
function M.init(self)
  self.images = {}
  self.clock = self.clock or BASE_TIME
end

--- A time later than every one given so far (LastUpdated of a change).
function M.tick(self)
  self.clock = math.max(os.time(), self.clock + 1)
  return self.clock
end

--- The seed of an image's original bytes, and of its video rendition.
function M.seed(img) return img.key .. "/v" .. img.version end
function M.video_seed(img) return M.seed(img) .. "/video" end

--- Add an image to album `a`; f: FileName (required), ImageKey, Title,
-- Caption, Keywords, Format, Size (bytes, default 4096), IsVideo (default:
-- by the file name's extension), Processing, VideoSize (the largest
-- rendition's bytes, default Size), DateTimeOriginal (seconds, or false:
-- unknown; default: a date from the image's number), data (the bytes
-- themselves, instead of generated ones). Returns the image, or nil,
-- status, message.
function M.add(self, a, f)
  if type(f.FileName) ~= "string" then return nil, 400, "FileName is required" end
  local key = f.ImageKey
  if key ~= nil and (type(key) ~= "string" or not key:match("^%w+$") or self.images[key]) then
    return nil, 400, "ImageKey must be letters and digits, not taken"
  end
  key = key or nodes.next_id(self, "image", "I", self.images)
  self.seq.added = (self.seq.added or 0) + 1
  local n = self.seq.added
  local size = f.data and #f.data or math.tointeger(f.Size or 4096)
  if not size or size < 0 then return nil, 400, "Size must be a byte count" end
  local is_video = f.IsVideo
  if is_video == nil then is_video = VIDEO_EXT[ext_of(f.FileName)] == true end
  local vsize = math.tointeger(f.VideoSize or size)
  if not vsize or vsize < 0 then return nil, 400, "VideoSize must be a byte count" end
  local ext = ext_of(f.FileName)
  local t = self.clock
  local original = f.DateTimeOriginal
  if original == nil then original = BASE_TIME - 86400 * 365 + n * 3600 end
  local img = {
    key = key, album = a, file_name = f.FileName, title = f.Title or "", caption = f.Caption or "",
    keywords = f.Keywords or "", format = f.Format or (ext ~= "" and ext:upper() or "JPG"),
    is_video = is_video == true, processing = f.Processing == true, size = size, video_size = vsize,
    version = 1, data = f.data, original = original or nil, uploaded = t, updated = t,
  }
  self.images[key] = img
  a.images[#a.images + 1] = img
  return img
end

--- The MD5 (hex) and size of an image's original (`video`: of its largest
-- rendition), as the listings report them (the lie_* switches applied).
function M.sum(self, img, video)
  local md5, size
  if img.data then
    img.md5 = img.md5 or tohex(assert(core.digest("md5", img.data)))
    md5, size = img.md5, #img.data
  elseif video then
    md5, size = content.md5(M.video_seed(img), img.video_size), img.video_size
  else
    md5, size = content.md5(M.seed(img), img.size), img.size
  end
  if faults.lies(self, "lie_md5", img.key) then md5 = tohex(assert(core.digest("md5", "not " .. md5))) end
  if faults.lies(self, "lie_size", img.key) then size = size + 1 end
  return md5, size
end

--- The image as SmugMug's AlbumImage / Image object.
function M.render(self, img)
  local uri = "/api/v2/image/" .. img.key .. "-0"
  local md5, size = M.sum(self, img)
  local uris = { Image = { Uri = uri }, ImageAlbum = { Uri = "/api/v2/album/" .. img.album.key } }
  if img.is_video then uris.LargestVideo = { Uri = uri .. "!largestvideo" } end
  return {
    ImageKey = img.key, FileName = img.file_name, Title = img.title, Caption = img.caption,
    Keywords = img.keywords, Format = img.format, IsVideo = img.is_video, Processing = img.processing,
    Hidden = false, ArchivedUri = self.archive_origin .. "/_archive/" .. img.key, ArchivedMD5 = md5,
    ArchivedSize = size, OriginalSize = size, LastUpdated = iso(img.updated),
    DateTimeOriginal = img.original and iso(img.original) or nil, DateTimeUploaded = iso(img.uploaded),
    Uri = uri, WebUri = self.origin .. "/i-" .. img.key, Uris = uris,
  }
end

--- The LargestVideo object of a video (nil for a photo or while it is processing).
function M.largest(self, img)
  if not img.is_video or img.processing then return nil end
  local md5, size = M.sum(self, img, true)
  return { Url = self.archive_origin .. "/_archive/" .. img.key .. "/largest", Size = size, MD5 = md5,
           Uri = "/api/v2/image/" .. img.key .. "-0!largestvideo" }
end

--- What the archive serves at `/_archive/KEY[/largest]`: size and a
-- function(from, last) -> iterator of pieces; or nil (no such file).
function M.file(self, key, which)
  local img = self.images[key]
  if not img or (which ~= nil and which ~= "largest") then return nil end
  if which == "largest" and (not img.is_video or img.processing) then return nil end
  if img.data then
    local data = img.data
    return #data, function(from, last)
      local pos = from
      return function()
        if pos > last then return nil end
        local n = math.min(content.CHUNK, last - pos + 1)
        local p = data:sub(pos + 1, pos + n)
        pos = pos + n
        return p
      end
    end
  end
  local seed, size = M.seed(img), img.size
  if which == "largest" then seed, size = M.video_seed(img), img.video_size end
  return size, function(from, last) return content.pieces(seed, size, from, last) end
end

-- ------------------------------------------------------------ changes

--- Change an image (the control endpoint `POST /_sandbox/image`): op
-- "rename" (name), "move" (album), "delete", "change" (size: new bytes, a
-- new version), "finish" (processing done), "process" (processing again).
-- Returns the image, or nil, status, message.
function M.change(self, op, img, f)
  if op == "rename" then
    if type(f.name) ~= "string" or f.name == "" then return nil, 400, "name= expected" end
    img.file_name = f.name
  elseif op == "move" then
    local to = self.albums[f.album or ""]
    if not to then return nil, 404, "no such album" end
    local from = img.album
    for i, x in ipairs(from.images) do
      if x == img then table.remove(from.images, i) break end
    end
    to.images[#to.images + 1] = img
    img.album = to
  elseif op == "delete" then
    for i, x in ipairs(img.album.images) do
      if x == img then table.remove(img.album.images, i) break end
    end
    self.images[img.key] = nil
    img.album.updated = M.tick(self)
    return img
  elseif op == "change" then
    local size = f.size and math.tointeger(tonumber(f.size))
    if f.size and (not size or size < 0) then return nil, 400, "size= must be a byte count" end
    img.size = size or (img.data and #img.data) or img.size
    img.video_size = size or img.video_size
    img.data, img.md5 = nil, nil
    img.version = img.version + 1
  elseif op == "finish" or op == "process" then
    if not img.is_video then return nil, 400, "not a video" end
    img.processing = op == "process"
  else
    return nil, 400, "unknown op"
  end
  img.updated = M.tick(self)
  return img
end

-- ------------------------------------------------------------ uploads

--- The upload origin: `POST /` with the file as the body and X-Smug-*
-- headers (X-Smug-AlbumUri required; Content-MD5, base64, checked when
-- sent; X-Smug-FileName, -Title, -Caption, -Keywords). The image is added
-- to the album with the bytes sent, as SmugMug keeps them: a file it
-- converts (.heic, .heif: to a JPEG; a video, .mov .mp4 .m4v .avi .mts .3gp
-- .mkv: re-encoded) is kept as other bytes (`"converted:" .. body`), so its
-- ArchivedMD5 is not the MD5 of the file sent (mode convert=0: kept as sent).
function M.upload(self, req)
  local h = req.headers
  local function fail(code, msg) return json(200, { stat = "fail", code = code, message = msg }) end
  if not h["x-smug-albumuri"] then return fail(5, "missing X-Smug-AlbumUri") end
  local akey = h["x-smug-albumuri"]:match("^/api/v2/album/([%w]+)$")
  local a = akey and self.albums[akey]
  if not a then return fail(5, "album not found") end
  local body = req.body
  local md5b64 = core.b64encode(assert(core.digest("md5", body)))
  if h["content-md5"] and md5b64 ~= h["content-md5"] then return fail(5, "Content-MD5 mismatch") end
  if h["content-length"] and tonumber(h["content-length"]) ~= #body then return fail(5, "size mismatch") end
  local name = h["x-smug-filename"] or "upload"
  local ext = ext_of(name)
  local data, format = body, nil
  if not self.mode.no_convert and (CONVERTED_EXT[ext] or VIDEO_EXT[ext]) then
    data = "converted:" .. body
    if CONVERTED_EXT[ext] then format = "JPG" end
  end
  M.tick(self)
  local key
  repeat key = reply.hex(4) until not self.images[key]      -- as before: 8 random hex digits
  local img = assert(M.add(self, a, { ImageKey = key, FileName = name, Title = h["x-smug-title"],
                                      Caption = h["x-smug-caption"], Keywords = h["x-smug-keywords"],
                                      Format = format, data = data, DateTimeOriginal = false }))
  a.updated = self.clock
  self.stats.uploads = self.stats.uploads + 1
  self.stats.last_upload = { size = #body, md5 = md5b64, content_type = h["content-type"],
                             filename = name, headers = h, key = img.key }
  return json(200, { stat = "ok", method = "smugmug.images.upload",
    Image = { ImageUri = "/api/v2/image/" .. img.key .. "-0",
              AlbumImageUri = "/api/v2/album/" .. a.key .. "/image/" .. img.key .. "-0",
              StatusImageReplaceUri = "", URL = self.origin .. "/i-" .. img.key } })
end

-- ------------------------------------------------------------ routes

--- Answer a request of the images' routes, or return nothing when the path
-- is none of them.
function M.route(self, req)
  local path = req.path
  if req.method ~= "GET" then
    if path:match("^/api/v2/image/") or path:match("^/api/v2/album/%w+!images$") then
      return api_error(405, "Method Not Allowed")
    end
    return nil
  end
  local akey = path:match("^/api/v2/album/(%w+)!images$")
  if akey then
    local a = self.albums[akey]
    if not a then return api_error(404, "Not Found") end
    local slice, pg = reply.pages_of(a.images, req, path)
    for i, img in ipairs(slice) do slice[i] = M.render(self, img) end
    return ok(path, "AlbumImage", slice, pg, "Objects")
  end
  local ikey
  akey, ikey = path:match("^/api/v2/album/(%w+)/image/(%w+)%-0$")
  if akey then
    local img = self.images[ikey]
    if not img or img.album.key ~= akey then return api_error(404, "Not Found") end
    return ok(path, "AlbumImage", M.render(self, img))
  end
  local suffix
  ikey, suffix = path:match("^/api/v2/image/(%w+)(.*)$")
  if ikey then
    local img = self.images[ikey]
    if not img then return api_error(404, "Not Found") end
    if suffix == "" or suffix == "-0" then return ok(path, "Image", M.render(self, img)) end
    if suffix == "-0!largestvideo" then
      local v = M.largest(self, img)
      if not v then return api_error(404, img.is_video and "the video is still processing" or "Not Found") end
      return ok(path, "LargestVideo", v)
    end
    return api_error(404, "Not Found")
  end
end

return M
