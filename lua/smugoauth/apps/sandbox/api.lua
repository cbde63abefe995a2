--- smugoauth.apps.sandbox.api: the sandbox's API v2 for its one user,
-- "tester": the user (`!authuser`, `/api/v2/user/tester`: NickName, Name,
-- Uris.Node (the root node), Uris.UserAlbums, Uris.Folder), and dispatch to
-- the tree (smugoauth.apps.sandbox.nodes) and the images
-- (smugoauth.apps.sandbox.images); each call counted by kind. JSON answers
-- shaped as SmugMug's (smugoauth.apps.sandbox.reply).
-- @module smugoauth.apps.sandbox.api
local reply = require "smugoauth.apps.sandbox.reply"
local nodes = require "smugoauth.apps.sandbox.nodes"
local images = require "smugoauth.apps.sandbox.images"

local ok, api_error = reply.ok, reply.api_error

--- The route of an API path, for the counters: its name, and whether a GET
-- of it is a listing (what a walk of the tree reads).
-- @tparam string path
-- @return name, listing
local function route_of(path)
  if path == "/api/v2!authuser" then return "authuser", true end
  if path == "/api/v2!echo" then return "echo", false end
  local rest = path:match("^/api/v2/user/[^/!]+(.*)$")
  if rest then return "user" .. rest, rest == "" or rest == "!albums" end
  rest = path:match("^/api/v2/node/%w+(.*)$")
  if rest then return "node" .. rest, rest == "" or rest == "!children" end
  if path:match("^/api/v2/folder/user/") then
    rest = path:match("(![%w]+)$") or ""
    return "folder" .. rest, rest == "" or rest == "!folders" or rest == "!albums"
  end
  if path:match("^/api/v2/album/%w+/image/") then return "album/image", false end
  rest = path:match("^/api/v2/album/%w+(.*)$")
  if rest then return "album" .. rest, rest == "" or rest == "!images" end
  rest = path:match("^/api/v2/image/[%w]+%-?%d*(.*)$")
  if rest then return "image" .. rest, false end
  return "other", false
end

--- Count an API request (on arrival) in the sandbox's stats.
-- @param self the sandbox
-- @param req
local function count(self, req)
  local stats = self.stats
  local name, listing = route_of(req.path)
  listing = listing and req.method == "GET"
  stats.api_calls = stats.api_calls + 1
  if listing then stats.api_listing = stats.api_listing + 1 else stats.api_other = stats.api_other + 1 end
  name = req.method .. " " .. name
  stats.api_routes[name] = (stats.api_routes[name] or 0) + 1
end

--- The User object of the sandbox's user.
-- @param self the sandbox
local function user_of(self)
  local u = "/api/v2/user/" .. self.user
  return { NickName = self.user, Name = "Sandbox Tester", Uri = u, WebUri = self.origin .. "/" .. self.user,
           AccountStatus = "Active",
           Uris = { Node = { Uri = "/api/v2/node/" .. self.root.id }, UserAlbums = { Uri = u .. "!albums" },
                    Folder = { Uri = "/api/v2/folder/user/" .. self.user } } }
end

--- Answer a (verified) API request.
-- @param self the sandbox
-- @param req
local function api(self, req)
  local path, m = req.path, req.method
  if path == "/api/v2!authuser" and m == "GET" then return ok(path, "User", user_of(self)) end
  local nick = path:match("^/api/v2/user/([%w%-_]+)$")
  if nick and m == "GET" then
    if nick ~= self.user then return api_error(404, "Not Found") end
    return ok(path, "User", user_of(self))
  end
  local status, headers, body = images.route(self, req)
  if status then return status, headers, body end
  status, headers, body = nodes.route(self, req)
  if status then return status, headers, body end
  return api_error(404, "Not Found")
end

return {
  hex = reply.hex,
  json = reply.json,
  api_error = api_error,
  find_album = nodes.find_album,
  route_of = route_of,
  count = count,
  user_of = user_of,
  api = api,
  upload = images.upload,
}
