--- smugoauth.apps.sandbox.nodes: the sandbox user's node tree: a root
-- folder node, folders and albums nested under it (and pages, which hold
-- nothing), each folder's children in order; the albums by key. Rendered as
-- SmugMug's Node, Folder and Album objects, and served:
--
--   GET  /api/v2/node/ID              Response.Node
--   GET  /api/v2/node/ID!children     (paged) Response.Node = [ ... ]
--   POST /api/v2/node/ID!children     {Type = "Folder"|"Album", Name, UrlName} -> 201 Node
--   GET  /api/v2/folder/user/NICK[/PATH]            Response.Folder
--   GET  /api/v2/folder/user/NICK[/PATH]!folders    (paged) Response.Folder = [ ... ]
--   GET  /api/v2/folder/user/NICK[/PATH]!albums     (paged) Response.Album = [ ... ]
--   POST /api/v2/folder/user/NICK[/PATH]!folders    {Name, UrlName} -> 201 Folder
--   POST /api/v2/folder/user/NICK[/PATH]!albums     {Name, UrlName} -> 201 Album
--   GET|POST /api/v2/user/NICK!albums               every album (paged) | create under the root
--   GET|PATCH|DELETE /api/v2/album/KEY              (PATCH: Name, Title, Description)
--
-- PATH is the UrlNames from the root, `/Travel/Europe`. A UrlName is
-- letters, digits and '-' (at most 60; 400 otherwise); when none is given it
-- is made from the Name (and made unique among its siblings); a given one
-- that a sibling has already: 409. Bodies are JSON (or a form).
-- @module smugoauth.apps.sandbox.nodes
local cjson = require "cjson.safe"
local reply = require "smugoauth.apps.sandbox.reply"

local ok, page, api_error, json, iso = reply.ok, reply.page, reply.api_error, reply.json, reply.iso

local M = {}

-- ------------------------------------------------------------ the model

--- Set up an empty tree (the root folder node) in the sandbox.
-- @param self the sandbox
function M.init(self)
  self.nodes, self.albums, self.album_list = {}, {}, {}
  self.seq = self.seq or { node = 0, album = 0, image = 0 }
  self.root = M.add(self, nil, "Folder", { Name = "", UrlName = "" })
end

-- A fresh, deterministic id: prefix and a counter.
local function next_id(self, kind, prefix, taken)
  repeat
    self.seq[kind] = self.seq[kind] + 1
  until not taken[("%s%05d"):format(prefix, self.seq[kind])]
  return ("%s%05d"):format(prefix, self.seq[kind])
end
M.next_id = next_id

-- A UrlName made from a name: runs of other characters become '-'.
local function url_name_of(name)
  local u = tostring(name):gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", ""):sub(1, 40)
  if u == "" then u = "Untitled" end
  return (u:gsub("^%l", string.upper))
end

local function sibling(parent, url_name)
  for _, c in ipairs(parent.children) do
    if c.url_name:lower() == url_name:lower() then return c end
  end
end

--- Add a node under parent (nil: the root itself) of type "Folder",
-- "Album" or "Page"; fields: Name, UrlName (optional), Description,
-- AlbumKey (albums, optional), Title (albums). Returns the node (an
-- album's node has `album`), or nil, status, message.
-- @param self the sandbox
-- @param parent a folder node, or nil
-- @tparam string ntype
-- @tparam table f
function M.add(self, parent, ntype, f)
  if parent and parent.type ~= "Folder" then return nil, 400, "only a folder has children" end
  if ntype ~= "Folder" and ntype ~= "Album" and ntype ~= "Page" then
    return nil, 400, "Type must be Folder, Album or Page"
  end
  if type(f.Name) ~= "string" or (parent and f.Name == "") then return nil, 400, "Name is required" end
  local un = f.UrlName
  if parent then
    if un ~= nil then
      if type(un) ~= "string" or not un:match("^[%w%-]+$") or #un > 60 then
        return nil, 400, "UrlName must be letters, digits and '-' (at most 60)"
      end
      if sibling(parent, un) then return nil, 409, "a node with this UrlName exists here already" end
    else
      local base, n = url_name_of(f.Name), 1
      un = base
      while sibling(parent, un) do n = n + 1 un = base .. "-" .. n end
    end
  end
  local key = f.AlbumKey
  if ntype == "Album" then
    if key ~= nil and (type(key) ~= "string" or not key:match("^%w+$") or self.albums[key]) then
      return nil, 400, "AlbumKey must be letters and digits, not taken"
    end
    key = key or next_id(self, "album", "A", self.albums)
  end
  local t = self.clock or os.time()
  local node = { id = next_id(self, "node", "N", self.nodes), type = ntype, name = f.Name, url_name = un or "",
                 description = type(f.Description) == "string" and f.Description or "", parent = parent,
                 children = {}, added = t }
  self.nodes[node.id] = node
  if parent then parent.children[#parent.children + 1] = node end
  if ntype == "Album" then
    local a = { key = key, node = node, title = type(f.Title) == "string" and f.Title or f.Name,
                images = {}, updated = t }
    node.album = a
    self.albums[key] = a
    self.album_list[#self.album_list + 1] = a
  end
  return node
end

--- The album of a key, or nil.
function M.find_album(self, key) return self.albums[key] end

--- Remove an album (its node, its images).
function M.delete_album(self, a)
  local node = a.node
  for i, c in ipairs(node.parent.children) do
    if c == node then table.remove(node.parent.children, i) break end
  end
  for i, x in ipairs(self.album_list) do
    if x == a then table.remove(self.album_list, i) break end
  end
  for _, img in ipairs(a.images) do self.images[img.key] = nil end
  self.nodes[node.id], self.albums[a.key] = nil, nil
end

--- The node's UrlPath: "/Travel/Europe" ("" for the root).
function M.url_path(node)
  local parts = {}
  while node and node.parent do
    table.insert(parts, 1, node.url_name)
    node = node.parent
  end
  return #parts > 0 and "/" .. table.concat(parts, "/") or ""
end

-- ------------------------------------------------------------ rendering

local function folder_uri(self, node) return "/api/v2/folder/user/" .. self.user .. M.url_path(node) end

--- The Node object of a node.
function M.render_node(self, node)
  local uri = "/api/v2/node/" .. node.id
  local uris = { User = { Uri = "/api/v2/user/" .. self.user } }
  if node.type == "Folder" then
    uris.ChildNodes = { Uri = uri .. "!children" }
    uris.Folder = { Uri = folder_uri(self, node) }
  end
  if node.parent then uris.ParentNode = { Uri = "/api/v2/node/" .. node.parent.id } end
  if node.album then uris.Album = { Uri = "/api/v2/album/" .. node.album.key } end
  return { NodeID = node.id, Type = node.type, Name = node.name, UrlName = node.url_name,
           UrlPath = M.url_path(node), Description = node.description, IsRoot = node.parent == nil,
           HasChildren = #node.children > 0, DateAdded = iso(node.added), Uri = uri,
           WebUri = self.origin .. M.url_path(node), Uris = uris }
end

--- The Album object of an album.
function M.render_album(self, a)
  local uri = "/api/v2/album/" .. a.key
  local node, updated = a.node, a.updated
  for _, img in ipairs(a.images) do if img.updated > updated then updated = img.updated end end
  return { AlbumKey = a.key, Name = node.name, UrlName = node.url_name, NiceName = node.url_name,
           Title = a.title, Description = node.description, UrlPath = M.url_path(node),
           ImageCount = #a.images, NodeID = node.id, LastUpdated = iso(a.updated),
           ImagesLastUpdated = iso(updated), Uri = uri, WebUri = self.origin .. M.url_path(node),
           Uris = { AlbumImages = { Uri = uri .. "!images" }, Node = { Uri = "/api/v2/node/" .. node.id },
                    Folder = { Uri = folder_uri(self, node.parent) },
                    User = { Uri = "/api/v2/user/" .. self.user } } }
end

--- The Folder object of a folder node.
function M.render_folder(self, node)
  local uri = folder_uri(self, node)
  local uris = { Folders = { Uri = uri .. "!folders" }, FolderAlbums = { Uri = uri .. "!albums" },
                 Node = { Uri = "/api/v2/node/" .. node.id }, User = { Uri = "/api/v2/user/" .. self.user } }
  if node.parent then uris.ParentFolder = { Uri = folder_uri(self, node.parent) } end
  return { Name = node.name, UrlName = node.url_name, UrlPath = M.url_path(node), NodeID = node.id,
           Description = node.description, DateAdded = iso(node.added), Uri = uri, Uris = uris }
end

-- ------------------------------------------------------------ routes

-- The fields of a request body: JSON, else a form.
local function fields(req)
  local t = reply.body_json(req)
  if t then return t end
  local f = req:form()
  return next(f) and f or nil
end

local function created(path, node, self)
  if node.album then return ok(path, "Album", M.render_album(self, node.album), nil, nil, 201) end
  return ok(path, "Node", M.render_node(self, node), nil, nil, 201)
end

local function children_of(node, want)
  local out = {}
  for _, c in ipairs(node.children) do if c.type == want then out[#out + 1] = c end end
  return out
end

local function folder_routes(self, req, nick, rest)
  if nick ~= self.user then return api_error(404, "Not Found") end
  local segs, suffix = rest:match("^([^!]*)(.*)$")
  local node = self.root
  for seg in segs:gmatch("[^/]+") do
    node = sibling(node, seg)
    if not node or node.type ~= "Folder" then return api_error(404, "Not Found") end
  end
  local m, path = req.method, req.path
  if suffix == "" and m == "GET" then return ok(path, "Folder", M.render_folder(self, node)) end
  local want = suffix == "!folders" and "Folder" or suffix == "!albums" and "Album"
  if not want then return api_error(404, "Not Found") end
  if m == "GET" then
    local list = {}
    for i, c in ipairs(children_of(node, want)) do
      list[i] = want == "Folder" and M.render_folder(self, c) or M.render_album(self, c.album)
    end
    return page(list, req, path, want)
  elseif m == "POST" then
    local f = fields(req)
    if not f then return api_error(400, "a JSON body {Name, UrlName} expected") end
    local c, status, msg = M.add(self, node, want, f)
    if not c then return api_error(status, msg) end
    if want == "Folder" then return ok(path, "Folder", M.render_folder(self, c), nil, nil, 201) end
    return created(path, c, self)
  end
  return api_error(405, "Method Not Allowed")
end

local function node_routes(self, req, id, suffix)
  local node = self.nodes[id]
  if not node then return api_error(404, "Not Found") end
  local m, path = req.method, req.path
  if suffix == "" and m == "GET" then return ok(path, "Node", M.render_node(self, node)) end
  if suffix ~= "!children" then return api_error(404, "Not Found") end
  if m == "GET" then
    local list = {}
    for i, c in ipairs(node.children) do list[i] = M.render_node(self, c) end
    return page(list, req, path, "Node")
  elseif m == "POST" then
    local f = fields(req)
    if not f then return api_error(400, "a JSON body {Type, Name, UrlName} expected") end
    if f.Type == "Page" then return api_error(400, "Type must be Folder or Album") end
    local c, status, msg = M.add(self, node, f.Type, f)
    if not c then return api_error(status, msg) end
    return ok(path, "Node", M.render_node(self, c), nil, nil, 201)
  end
  return api_error(405, "Method Not Allowed")
end

local function album_routes(self, req, a)
  local m, path = req.method, req.path
  if m == "GET" then return ok(path, "Album", M.render_album(self, a)) end
  if m == "PATCH" then
    local body = reply.body_json(req)
    if not body then return api_error(400, "JSON body expected") end
    if type(body.Name) == "string" and body.Name ~= "" then a.node.name = body.Name end
    if type(body.Title) == "string" then a.title = body.Title end
    if type(body.Description) == "string" then a.node.description = body.Description end
    a.updated = math.max(os.time(), a.updated + 1)
    return ok(path, "Album", M.render_album(self, a))
  end
  if m == "DELETE" then
    M.delete_album(self, a)
    return json(200, { Code = 200, Message = "Ok" })
  end
  return api_error(405, "Method Not Allowed")
end

--- Answer a request of the tree's routes (see the module comment), or
-- return nothing when the path is none of them.
-- @param self the sandbox
-- @param req
function M.route(self, req)
  local path, m = req.path, req.method
  local nick, rest = path:match("^/api/v2/folder/user/([%w%-_]+)(.*)$")
  if nick then return folder_routes(self, req, nick, rest) end
  local id, suffix = path:match("^/api/v2/node/(%w+)(.*)$")
  if id then return node_routes(self, req, id, suffix) end
  nick = path:match("^/api/v2/user/([%w%-_]+)!albums$")
  if nick then
    if nick ~= self.user then return api_error(404, "Not Found") end
    if m == "GET" then
      local list = {}
      for i, a in ipairs(self.album_list) do list[i] = M.render_album(self, a) end
      return page(list, req, path, "Album")
    elseif m == "POST" then
      local f = fields(req)
      if not f or type(f.Name) ~= "string" then return api_error(400, "Name is required (JSON body)") end
      local c, status, msg = M.add(self, self.root, "Album", f)
      if not c then return api_error(status, msg) end
      return created(path, c, self)
    end
    return api_error(405, "Method Not Allowed")
  end
  local key = path:match("^/api/v2/album/(%w+)$")
  if key then
    local a = self.albums[key]
    if not a then return api_error(404, "Not Found") end
    return album_routes(self, req, a)
  end
end

--- The whole tree as plain data (`GET /_sandbox/tree`): nodes with their
-- children; albums with their image keys.
function M.dump(self)
  local function walk(node)
    local t = { NodeID = node.id, Type = node.type, Name = node.name, UrlName = node.url_name }
    if node.album then
      t.AlbumKey = node.album.key
      t.Images = {}
      for i, img in ipairs(node.album.images) do t.Images[i] = img.key end
      setmetatable(t.Images, cjson.array_mt)
    end
    if node.type == "Folder" then
      t.Children = setmetatable({}, cjson.array_mt)
      for i, c in ipairs(node.children) do t.Children[i] = walk(c) end
    end
    return t
  end
  return walk(self.root)
end

return M
