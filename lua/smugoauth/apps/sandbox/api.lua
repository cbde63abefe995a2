--- smugoauth.apps.sandbox.api: the sandbox's API v2 and upload origins, for
-- the user "tester": the user, albums (paginated), album images, creating,
-- changing and deleting albums, and uploads (raw body, X-Smug-* headers,
-- Content-MD5 checked). JSON answers shaped as SmugMug's.
-- @module smugoauth.apps.sandbox.api
local core = require "smugoauth.core"
local cjson = require "cjson.safe"

local JSONH = { ["Content-Type"] = "application/json" }

--- A random hex string of n bytes.
-- @tparam integer n
-- @treturn string
local function hex(n)
  return (assert(core.random_bytes(n)):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- A JSON answer.
-- @tparam integer status
-- @param value
local function json(status, value)
  return status, JSONH, cjson.encode(value)
end

--- An API error answer `{Code, Message}`.
-- @tparam integer status
-- @tparam string msg
local function api_error(status, msg)
  return json(status, { Code = status, Message = msg })
end

local function pages_of(items, req, base)
  local start = math.max(1, math.tointeger(tonumber(req.params.start or 1) or 1) or 1)
  local count = math.max(1, math.min(1000, math.tointeger(tonumber(req.params.count or 100) or 100) or 100))
  local slice = {}
  for i = start, math.min(#items, start + count - 1) do slice[#slice + 1] = items[i] end
  local pg = { Total = #items, Start = start, Count = #slice, RequestedCount = count,
               FirstPage = ("%s?start=1&count=%d"):format(base, count) }
  if start + count <= #items then
    pg.NextPage = ("%s?start=%d&count=%d"):format(base, start + count, count)
  end
  if start > 1 then pg.PrevPage = ("%s?start=%d&count=%d"):format(base, math.max(1, start - count), count) end
  local last = #items > 0 and (#items - 1) // count * count + 1 or 1
  pg.LastPage = ("%s?start=%d&count=%d"):format(base, last, count)
  return slice, pg
end

local function ok(uri, locator, value, pages, ltype)
  local resp = { Uri = uri, Locator = locator, LocatorType = ltype or "Object" }
  resp[locator] = value
  if pages then resp.Pages = pages end
  return json(200, { Request = { Version = "v2", Uri = uri }, Response = resp, Code = 200, Message = "Ok" })
end

local function find_album(self, key)
  for i, a in ipairs(self.albums) do if a.AlbumKey == key then return a, i end end
end

local function api(self, req, user)
  local path, m = req.path, req.method
  if path == "/api/v2!authuser" and m == "GET" then
    return ok("/api/v2!authuser", "User", user)
  end
  local nick = path:match("^/api/v2/user/([%w%-_]+)$")
  if nick and m == "GET" then
    if nick ~= user.NickName then return api_error(404, "Not Found") end
    return ok(path, "User", user)
  end
  nick = path:match("^/api/v2/user/([%w%-_]+)!albums$")
  if nick then
    if nick ~= user.NickName then return api_error(404, "Not Found") end
    if m == "GET" then
      local slice, pg = pages_of(self.albums, req, path)
      return ok(path, "Album", slice, pg, "Objects")
    elseif m == "POST" then
      local body = cjson.decode(req.body)
      if type(body) ~= "table" or type(body.Name) ~= "string" then
        return api_error(400, "Name is required (JSON body)")
      end
      local k = "N" .. hex(4)
      local a = { AlbumKey = k, Name = body.Name, UrlName = body.UrlName or body.Name,
                  Uri = "/api/v2/album/" .. k, Title = body.Title or body.Name }
      self.albums[#self.albums + 1] = a
      return json(201, { Response = { Uri = a.Uri, Locator = "Album", Album = a }, Code = 201, Message = "Created" })
    end
    return api_error(405, "Method Not Allowed")
  end
  local key, rest = path:match("^/api/v2/album/([%w]+)(.*)$")
  if key then
    local a, idx = find_album(self, key)
    if not a then return api_error(404, "Not Found") end
    if rest == "" and m == "GET" then return ok(path, "Album", a) end
    if rest == "" and m == "PATCH" then
      local body = cjson.decode(req.body)
      if type(body) ~= "table" then return api_error(400, "JSON body expected") end
      for _, f in ipairs { "Name", "Title", "Description" } do
        if type(body[f]) == "string" then a[f] = body[f] end
      end
      return ok(path, "Album", a)
    end
    if rest == "" and m == "DELETE" then
      table.remove(self.albums, idx)
      return json(200, { Code = 200, Message = "Ok" })
    end
    if rest == "!images" and m == "GET" then
      local slice, pg = pages_of(self.images[key] or {}, req, path)
      return ok(path, "AlbumImage", slice, pg, "Objects")
    end
  end
  return api_error(404, "Not Found")
end

-- The upload origin: POST / with the raw file as body.
local function upload(self, req)
  local h = req.headers
  local function fail(code, msg) return json(200, { stat = "fail", code = code, message = msg }) end
  if not h["x-smug-albumuri"] then return fail(5, "missing X-Smug-AlbumUri") end
  local key = h["x-smug-albumuri"]:match("^/api/v2/album/([%w]+)$")
  if not key or not find_album(self, key) then return fail(5, "album not found") end
  if h["content-md5"] then
    local want = core.b64encode(assert(core.digest("md5", req.body)))
    if want ~= h["content-md5"] then return fail(5, "Content-MD5 mismatch") end
  end
  if h["content-length"] and tonumber(h["content-length"]) ~= #req.body then
    return fail(5, "size mismatch")
  end
  local id = hex(4)
  local img = { ImageKey = id, FileName = h["x-smug-filename"] or "upload",
                Title = h["x-smug-title"], Caption = h["x-smug-caption"],
                Keywords = h["x-smug-keywords"], Size = #req.body,
                MD5 = core.b64encode(assert(core.digest("md5", req.body))),
                ContentType = h["content-type"], Uri = "/api/v2/image/" .. id .. "-0" }
  self.images[key] = self.images[key] or {}
  table.insert(self.images[key], img)
  self.stats.uploads = self.stats.uploads + 1
  self.stats.last_upload = { size = #req.body, md5 = img.MD5, content_type = img.ContentType,
                             filename = img.FileName, headers = h }
  return json(200, { stat = "ok", method = "smugmug.images.upload",
    Image = { ImageUri = img.Uri, AlbumImageUri = "/api/v2/album/" .. key .. "/image/" .. id .. "-0",
              StatusImageReplaceUri = "", URL = self.origin .. "/" .. id } })
end

return {
  hex = hex,
  json = json,
  api_error = api_error,
  find_album = find_album,
  api = api,
  upload = upload,
}
