--- Uploads to SmugMug's upload origin (`api:upload` of a session), and the
-- MIME types it picks by file name.
-- @module smugoauth.upload
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local util = require "smugoauth.util"

-- Content types by file extension (lower case).
local MIME = {
  jpg = "image/jpeg", jpeg = "image/jpeg", png = "image/png", gif = "image/gif",
  heic = "image/heic", heif = "image/heif", tif = "image/tiff", tiff = "image/tiff",
  webp = "image/webp", bmp = "image/bmp", dng = "image/x-adobe-dng",
  mp4 = "video/mp4", mov = "video/quicktime", m4v = "video/x-m4v", avi = "video/x-msvideo",
  mts = "video/mp2t", ["3gp"] = "video/3gpp",
}

--- The content type for a file name (by extension), default application/octet-stream.
local function content_type_for(name)
  local ext = tostring(name):match("%.([%w]+)$")
  return ext and MIME[ext:lower()] or "application/octet-stream"
end

--- The options of `api:upload(o)`, declared once: name, type, and where it
-- goes, a header of the upload (`header`) or an option of the request that
-- carries it (`request`, see smugoauth.request), with its default.
local OPTIONS = {
  { "album", "string", header = "X-Smug-AlbumUri", doc = '"/api/v2/album/KEY" (required)' },
  { "file", "string", request = "body_file", doc = "a path: streamed, never read whole" },
  { "data", "string", request = "body", doc = "the bytes (exactly one of file and data)" },
  { "filename", "string", header = "X-Smug-FileName", doc = 'default: the file\'s name, else "upload"' },
  { "title", "string", header = "X-Smug-Title" },
  { "caption", "string", header = "X-Smug-Caption" },
  { "keywords", "table string", header = "X-Smug-Keywords", doc = 'an array (joined by "; ") or a string' },
  { "replace", "string", header = "X-Smug-ImageUri", doc = "the URI of an image to replace" },
  { "hidden", "boolean", header = "X-Smug-Hidden" },
  { "md5", "string", header = "Content-MD5",
    doc = "the data's MD5 (32 hex digits or base64) when known: skips the hashing pass" },
  { "content_type", "string", request = "content_type", doc = "default: by the extension of filename" },
  { "on_progress", "function", request = "on_progress", doc = "function(sent, total)" },
  { "timeout", "number", request = "timeout", doc = "default: the client's" },
  { "retry", "table boolean", request = "retry", doc = "default false: an upload is not retried" },
  { "fresh", "boolean", request = "fresh",
    doc = "true: a new connection even when retry.unsafe would let it reuse one (smugoauth.retry)" },
}
local TYPES = util.option_types(OPTIONS)

-- A caller-supplied MD5 (32 hex digits or base64) as raw bytes, or raise.
local function raw_md5(v)
  if #v == 32 and v:match("^%x+$") then
    return (v:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
  end
  local raw = core.b64decode(v)
  if raw and #raw == 16 then return raw end
  error("upload: md5 must be 32 hex digits or the base64 of 16 bytes", 4)
end

-- The MD5 and the size of what is uploaded, or nil, err (code "io").
local function digest(o)
  if o.md5 then                 -- known already (e.g. from a sync): no hashing pass
    local md5 = raw_md5(o.md5)
    if not o.file then return md5, #o.data end
    local mode, _, size = core.file_mode(o.file)
    if not mode then return nil, errors.new("io", tostring(size or "cannot stat"), { path = o.file }) end
    return md5, size
  elseif o.file then
    local md5, size, code = core.digest_file("md5", o.file)
    if not md5 then return nil, errors.new(code or "io", tostring(size), { path = o.file }) end
    return md5, size
  end
  local md5, msg, code = core.digest("md5", o.data)
  if not md5 then return nil, errors.new(code or "crypto", tostring(msg)) end
  return md5, #o.data
end

--- Upload a photo or video to an album on the upload origin:
-- `api:upload(o)` with the options of OPTIONS above.
-- Returns the response (its JSON holds Image.ImageUri...) or nil, err.
-- A non-2xx status and a 200 with "stat": "fail" (code "api") are both errors.
local function upload(session, o)
  util.check_options("upload", o, TYPES, 2)
  if type(o) ~= "table" or not o.album or not o.album:match("^/api/v2/album/[%w%-_]+$") then
    error("upload: album must be an album URI like /api/v2/album/KEY", 2)
  end
  if (o.file == nil) == (o.data == nil) then error("upload: give exactly one of file or data", 2) end
  local md5, size = digest(o)
  if not md5 then return nil, size end
  -- each option's value as it goes out
  local v = {}
  for k, x in pairs(o) do v[k] = x end
  v.filename = o.filename or (o.file and o.file:match("([^/]+)$")) or "upload"
  v.md5 = core.b64encode(md5)
  if type(o.keywords) == "table" then v.keywords = table.concat(o.keywords, "; ") end
  if o.hidden ~= nil then v.hidden = o.hidden and "true" or "false" end
  v.content_type = o.content_type or content_type_for(v.filename)
  if o.retry == nil then v.retry = false end
  local headers = { ["X-Smug-ResponseType"] = "JSON", ["X-Smug-Version"] = "v2",
                    ["Accept"] = "application/json" }
  -- a POST: on a new connection unless retry.unsafe (smugoauth.retry)
  local req = { method = "POST", origin = session.client.upload_origin, path = "/", headers = headers }
  for _, row in ipairs(OPTIONS) do
    local x = v[row[1]]
    if x ~= nil and row.header then
      x = tostring(x)
      if x:find("[%z\r\n]") then error("upload: " .. row[1] .. " must not contain CR, LF or NUL", 2) end
      headers[row.header] = x
    elseif x ~= nil then
      req[row.request] = x
    end
  end
  local res, err = session:request(req)
  if not res then return nil, err end
  local body, jerr = res:json()
  if not body then return nil, jerr end
  if body.stat ~= "ok" then
    return nil, errors.new("api", session.trace:redact(("upload of %s refused: %s"):format(v.filename,
      tostring(body.message or body.Message or "stat is not ok"))),
      { status = res.status, body = res.body, api_code = body.code, response = res })
  end
  res.size = size
  return res
end

return {
  upload = upload,
  content_type_for = content_type_for,
  OPTIONS = OPTIONS,
  MIME = MIME,
}
