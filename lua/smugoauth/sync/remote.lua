--- The SmugMug side of a sync: an album and what it holds (the MD5 and file
-- name of each image, from its paged `!images`), and for `tree` the folders
-- and albums under a folder of the user's node tree, found by name and
-- created when missing (the node API: `POST /api/v2/node/ID!children`).
-- @module smugoauth.sync.remote
local errors = require "smugoauth.errors"

local methods = {}
local mt = { __name = "smugoauth.SyncRemote", __index = methods }

--- The key of an album given as a URI (`/api/v2/album/KEY`) or a key, or nil.
local function album_key(s)
  if type(s) ~= "string" then return nil end
  return s:match("^/api/v2/album/([%w%-_]+)$") or s:match("^([%w%-_]+)$")
end

-- The decoded Response of a response, or nil, err (code "json").
local function response_of(res, what)
  local body, jerr = res:json()
  if type(body) ~= "table" then return nil, jerr end
  if type(body.Response) ~= "table" then
    return nil, errors.new("json", what .. ": the answer has no Response object", { status = res.status })
  end
  return body.Response
end

--- The remote side of one sync: `remote.new(session, opts)`.
--   retry     the retry policy of listing and creating (smugoauth.retry
--             options); creating also retries after 429/503 (the server did
--             not act), on a new connection, never after a reset
--   create    true: create missing folders and albums; false (a dry run):
--             they are made up, empty, and nothing is sent
--   privacy   "Public", "Unlisted" or "Private": of the albums and folders
--             it creates
--   on_event  function(event) told of each creation: {type = "create",
--             kind = "folder" | "album", name, path, dry_run}
local function new(session, opts)
  local r = opts.retry or {}
  local post_retry = { unsafe = true }
  for k, v in pairs(r) do post_retry[k] = v end
  return setmetatable({ api = session, retry = r, post_retry = post_retry, create = opts.create,
    privacy = opts.privacy, on_event = opts.on_event or function() end,
    children_of = {} }, mt)
end

--- The album of a key: `r:album(key)` -> {key, name, uri, images_uri} |
-- nil, err (a missing album: code "http", status 404).
function methods:album(key)
  local res, err = self.api:get("/api/v2/album/" .. key, nil, { retry = self.retry })
  if not res then return nil, err end
  local resp, jerr = response_of(res, "album " .. key)
  if not resp then return nil, jerr end
  local a = resp.Album
  if type(a) ~= "table" then return nil, errors.new("json", "album " .. key .. ": no Album in the answer") end
  local uris = type(a.Uris) == "table" and a.Uris or {}
  local imgs = type(uris.AlbumImages) == "table" and uris.AlbumImages.Uri
  return { key = a.AlbumKey or key, name = a.Name, uri = "/api/v2/album/" .. (a.AlbumKey or key),
           images_uri = type(imgs) == "string" and imgs or ("/api/v2/album/" .. key .. "!images") }
end

--- What an album holds: `r:list(album)` -> {by_md5 (hex MD5 -> image
-- key), keys (image key -> the AlbumImage), by_name (FileName -> array of
-- image keys), count} | nil, err. Every page is read: a listing that fails
-- part way is an error, never a partial answer (a sync must not upload what
-- it merely failed to see). An album made up by a dry run is empty.
function methods:list(album)
  local l = { by_md5 = {}, keys = {}, by_name = {}, count = 0 }
  if album.virtual then return l end
  for img, err in self.api:each(album.images_uri, { count = 100 }, { retry = self.retry }) do
    if not img then return nil, err end
    if type(img) == "table" and type(img.ImageKey) == "string" then
      l.count = l.count + 1
      l.keys[img.ImageKey] = img
      local md5 = img.ArchivedMD5
      if type(md5) == "string" and md5:match("^%x+$") and #md5 == 32 then l.by_md5[md5:lower()] = img.ImageKey end
      local name = img.FileName
      if type(name) == "string" then
        local t = l.by_name[name]
        if not t then t = {} l.by_name[name] = t end
        t[#t + 1] = img.ImageKey
      end
    end
  end
  return l
end

-- ------------------------------------------------------------ the tree

--- The user's root node: `r:root()` -> node {id, path = ""} | nil, err.
function methods:root()
  if self._root then return self._root end
  local res, err = self.api:get("/api/v2!authuser", nil, { retry = self.retry })
  if not res then return nil, err end
  local resp, jerr = response_of(res, "authuser")
  if not resp then return nil, jerr end
  local user = type(resp.User) == "table" and resp.User or {}
  local uris = type(user.Uris) == "table" and user.Uris or {}
  local uri = type(uris.Node) == "table" and uris.Node.Uri
  local id = type(uri) == "string" and uri:match("^/api/v2/node/([%w%-_]+)$")
  if not id then return nil, errors.new("api", "authuser: the user has no root node (Uris.Node)") end
  self._root = { id = id, path = "", type = "Folder" }
  return self._root
end

-- A node of the API as this module keeps it.
local function node_of(n)
  local uris = type(n.Uris) == "table" and n.Uris or {}
  local auri = type(uris.Album) == "table" and uris.Album.Uri
  return { id = tostring(n.NodeID), type = n.Type, name = n.Name, url_name = n.UrlName,
           album_key = type(auri) == "string" and album_key(auri) or nil }
end

-- The children of a node, listed once: an array of {id, type, name,
-- url_name, album_key}.
function methods:_children(node)
  if node.virtual then                           -- made up by a dry run: what was made up under it
    node.kids = node.kids or {}
    return node.kids
  end
  local kids = self.children_of[node.id]
  if kids then return kids end
  kids = {}
  for n, err in self.api:each("/api/v2/node/" .. node.id .. "!children", { count = 100 }, { retry = self.retry }) do
    if not n then return nil, err end
    if type(n) == "table" and n.NodeID then kids[#kids + 1] = node_of(n) end
  end
  self.children_of[node.id] = kids
  return kids
end

--- A UrlName SmugMug accepts for a name (letters, digits and hyphens,
-- starting with a capital letter or a digit, at most 60 characters), not
-- taken by a sibling (any case): "Summer 2024!" -> "Summer-2024".
local function url_name(name, taken)
  local u = name:gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", ""):sub(1, 60):gsub("%-+$", "")
  if u == "" then u = "Untitled" end
  u = u:sub(1, 1):upper() .. u:sub(2)
  local base, i = u, 1
  while taken[u:lower()] do
    i = i + 1
    u = base:sub(1, 60 - #tostring(i) - 1) .. "-" .. i
  end
  return u
end

-- The child of node called name, of type kind ("Folder" | "Album"): found
-- by Name (else by UrlName), or created (or made up in a dry run). Returns
-- the node, and whether it was created; nil, err.
function methods:_child(node, kind, name)
  local kids, err = self:_children(node)
  if not kids then return nil, err end
  local path = node.path == "" and name or (node.path .. "/" .. name)
  local found, other
  for _, k in ipairs(kids) do
    if k.name == name then
      if k.type == kind then found = k break end
      other = other or k
    end
  end
  if not found and not other then
    for _, k in ipairs(kids) do
      if type(k.url_name) == "string" and k.url_name == name and k.type == kind then found = k break end
    end
  end
  if found then
    found.path = path
    return found, false
  end
  if other then
    return nil, errors.new("api", ("%s: a %s of that name is there, where a %s should be"):format(path,
      tostring(other.type):lower(), kind:lower()))
  end
  self.on_event { type = "create", kind = kind:lower(), name = name, path = path, dry_run = not self.create }
  if not self.create then
    local v = { virtual = true, type = kind, name = name, path = path }
    kids[#kids + 1] = v
    return v, true
  end
  local taken = {}
  for _, k in ipairs(kids) do if type(k.url_name) == "string" then taken[k.url_name:lower()] = true end end
  local body = { Type = kind, Name = name, UrlName = url_name(name, taken), Privacy = self.privacy }
  local res
  res, err = self.api:post("/api/v2/node/" .. node.id .. "!children",
    { json = body, retry = self.post_retry, fresh = true })
  if not res then return nil, err end
  local resp, jerr = response_of(res, "creating " .. path)
  if not resp then return nil, jerr end
  local made = type(resp.Node) == "table" and resp.Node.NodeID and node_of(resp.Node)
  if not made or (kind == "Album" and not made.album_key) then
    self.children_of[node.id] = nil                -- not in the answer: list again
    kids, err = self:_children(node)
    if not kids then return nil, err end
    for _, k in ipairs(kids) do if k.name == name and k.type == kind then made = k end end
    if not made or (kind == "Album" and not made.album_key) then
      return nil, errors.new("api", "creating " .. path .. ": the answer does not say what was made")
    end
  else
    kids[#kids + 1] = made
  end
  made.path = path
  return made, true
end

--- The folder at a path of names under the root (an array: {} is the root
-- itself), created where missing: `r:folder(names)` -> node | nil, err.
function methods:folder(names)
  local node, err = self:root()
  if not node then return nil, err end
  for _, name in ipairs(names) do
    node, err = self:_child(node, "Folder", name)
    if not node then return nil, err end
  end
  return node
end

--- The album called name in a folder node, created when missing:
-- `r:album_in(folder, name)` -> album (as r:album gives; `created` true
-- when it was made, `virtual` in a dry run) | nil, err.
function methods:album_in(folder, name)
  local n, created = self:_child(folder, "Album", name)
  if not n then return nil, created end
  if n.virtual then return { virtual = true, name = name, path = n.path, created = true } end
  return { key = n.album_key, name = n.name, path = n.path, created = created,
           uri = "/api/v2/album/" .. n.album_key, images_uri = "/api/v2/album/" .. n.album_key .. "!images" }
end

return {
  new = new,
  album_key = album_key,
  url_name = url_name,
  methods = methods,
  mt = mt,
}
