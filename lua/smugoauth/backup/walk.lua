--- smugoauth.backup.walk: what a backup lists. The whole account from
-- `!authuser` down the node tree (folders, then albums; pages are skipped),
-- a user's tree (`user = NICK`), or given albums (`albums = {KEY, ...}`);
-- each album's images, its pages after the first fetched together. The
-- folder and album names become the relative folder of each album under the
-- destination (smugoauth.backup.names: safe, distinct in their folder).
-- Inside a task every request yields, like every request does.
-- @module smugoauth.backup.walk
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local loop = require "smugoauth.loop"
local names = require "smugoauth.backup.names"

--- Folders deeper than this are not followed (SmugMug has at most 5 levels).
local MAX_DEPTH = 32

--- Pages of one album fetched at once after its first.
local PAGES_AHEAD = 4

-- The fields of an AlbumImage a backup keeps (the rest is dropped at once).
local IMAGE_FIELDS = { "ImageKey", "FileName", "Title", "Format", "IsVideo", "Processing", "ArchivedUri",
                       "ArchivedMD5", "ArchivedSize", "LastUpdated", "DateTimeOriginal", "DateTimeUploaded" }

-- Response[kind] of GET uri (the first of kinds found; with no kinds, the
-- Response itself), the whole Response, or nil, err.
local function get_object(session, uri, query, kinds)
  local res, err = session:get(uri, query)
  if not res then return nil, err end
  local body, jerr = res:json()
  if type(body) ~= "table" then return nil, jerr or errors.new("json", "GET " .. uri .. ": not a JSON object") end
  local resp = body.Response
  if type(resp) ~= "table" then return nil, errors.new("api", "GET " .. errors.safe_url(uri) .. ": no Response") end
  if not kinds then return resp, resp end
  for _, kind in ipairs(kinds) do
    if resp[kind] ~= nil then return resp[kind], resp end
  end
  return nil, errors.new("api", ("GET %s: no %s in the answer"):format(errors.safe_url(uri),
    table.concat(kinds, " or ")))
end

-- A list of items from a Response field (an object alone becomes a list of one;
-- absent: none, as SmugMug answers for an empty album).
local function list_of(v)
  if type(v) ~= "table" then return {} end
  if v[1] == nil and next(v) ~= nil then return { v } end
  return v
end

-- uris.Name.Uri when it is a string.
local function uri_of(obj, name)
  local u = type(obj) == "table" and type(obj.Uris) == "table" and obj.Uris[name]
  u = type(u) == "table" and u.Uri or u
  return type(u) == "string" and u or nil
end

-- The fields a backup keeps of an AlbumImage (a new, small table).
local function compact(img)
  local t = {}
  for _, f in ipairs(IMAGE_FIELDS) do
    local v = img[f]
    if type(v) == "string" or type(v) == "number" or type(v) == "boolean" then t[f] = v end
  end
  local lv = uri_of(img, "LargestVideo")
  if lv then t.Uris = { LargestVideo = { Uri = lv } } end
  return t
end

--- The images of an album: `walk.images(session, album [, page_size])`
-- (album: { key, images_uri }) -> a list of compact AlbumImage tables (one
-- per ImageKey), and whether the listing was consistent (every page gave
-- the same Total and the keys add up to it: nothing was added or removed
-- while it was listed); or nil, err.
local function images(session, album, page_size)
  page_size = page_size or 100
  local uri = album.images_uri
  -- (an empty album has no AlbumImage at all, as SmugMug answers)
  local resp, err = get_object(session, uri, { start = 1, count = page_size })
  if not resp then return nil, err end
  local pages, consistent = { list_of(resp.AlbumImage) }, true
  local pg = type(resp.Pages) == "table" and resp.Pages or {}
  local total = math.tointeger(pg.Total)
  if total and total > page_size then
    local n = (total - 1) // page_size + 1
    local lim, tasks, failed = loop.limit(PAGES_AHEAD), {}, nil
    for k = 2, n do
      tasks[#tasks + 1] = lim:spawn(function()
        if failed then return end
        local r, rerr = get_object(session, uri, { start = 1 + (k - 1) * page_size, count = page_size })
        if not r then failed = failed or rerr return end
        pages[k] = list_of(r.AlbumImage)
        local p = type(r.Pages) == "table" and r.Pages or {}
        if math.tointeger(p.Total) ~= total then consistent = false end
      end)
    end
    for _, t in ipairs(tasks) do
      local ok, jerr = t:join()
      if not ok then failed = failed or errors.new("api", tostring(jerr)) end
    end
    if failed then return nil, failed end
  elseif not total and type(pg.NextPage) == "string" then
    -- no Total: follow NextPage one page after the other
    local nextp = pg.NextPage
    while nextp do
      local path, qs = nextp:match("^([^?]*)%??(.*)$")
      local r, rerr = get_object(session, path, core.parse_form(qs))
      if not r then return nil, rerr end
      pages[#pages + 1] = list_of(r.AlbumImage)
      local p = type(r.Pages) == "table" and r.Pages or {}
      nextp = type(p.NextPage) == "string" and p.NextPage ~= "" and p.NextPage or nil
    end
  end
  local out, seen = {}, {}
  for k = 1, #pages do
    for _, img in ipairs(pages[k] or {}) do
      local key = type(img) == "table" and img.ImageKey
      if type(key) == "string" and key ~= "" and not seen[key] then
        seen[key] = true
        out[#out + 1] = compact(img)
      elseif type(key) ~= "string" or key == "" then
        consistent = false                        -- an item we cannot identify
      end
    end
  end
  if total and #out ~= total then consistent = false end
  return out, consistent
end

-- An album as the run wants it, from an Album object or a node of type
-- Album: { key, name, images_uri }, or nil.
local function album_of(obj)
  local auri = uri_of(obj, "Album")
  local key = type(obj.AlbumKey) == "string" and obj.AlbumKey or (auri and auri:match("/album/([^/!?]+)"))
  if type(key) ~= "string" or key == "" then return nil end
  return { key = key, title = obj.Name, url_name = obj.UrlName,
           images_uri = uri_of(obj, "AlbumImages") or ("/api/v2/album/" .. key .. "!images") }
end

-- Give the children of one folder (each: id, title, url_name) their folder
-- names (`name`: the Name made safe, else the UrlName, else the id).
local function name_children(children)
  local entries = {}
  for _, c in ipairs(children) do
    c.want = names.sanitize(c.title, "dir") or names.sanitize(c.url_name, "dir") or names.sanitize(c.id, "dir") or "_"
    entries[#entries + 1] = c
  end
  return names.assign(entries, "dir")
end

--- Walk the albums to back up: `walk.albums(session, opts, on_album,
-- on_error)`.
--   opts      albums (a list of album keys), user (a NickName), page_size,
--             stopped (a function: true when the walk should end early)
--   on_album  function(album) for each album: { key, title, dir (its folder
--             under the destination, relative, "/" separators),
--             images_uri }; it may yield
--   on_error  function(what, err) for each part of the tree that could not
--             be listed
-- Returns true when the whole tree was listed, false when a part failed.
local function albums(session, opts, on_album, on_error)
  local complete, stopped = true, opts.stopped or function() return false end
  local function failed(what, err) complete = false on_error(what, err) end

  if opts.albums then
    local list, seen = {}, {}
    for _, key in ipairs(opts.albums) do
      if not seen[key] then
        seen[key] = true
        local a, err = get_object(session, "/api/v2/album/" .. key, nil, { "Album" })
        local al = type(a) == "table" and album_of(a)
        if al then
          al.id = al.key
          list[#list + 1] = al
        else
          failed("album " .. key, err or errors.new("api", "album " .. key .. ": no AlbumKey"))
        end
      end
    end
    for _, al in ipairs(name_children(list)) do
      if stopped() then return false end
      al.dir = al.name
      on_album(al)
    end
    return complete
  end

  local user, uerr
  if opts.user then
    user, uerr = get_object(session, "/api/v2/user/" .. opts.user, nil, { "User" })
  else
    user, uerr = get_object(session, "/api/v2!authuser", nil, { "User" })
  end
  if type(user) ~= "table" then
    failed(opts.user and ("user " .. opts.user) or "the authorized user", uerr or errors.new("api", "no User"))
    return false
  end
  local root = uri_of(user, "Node")
  if not root then
    failed("the user's folders", errors.new("api", "the user has no Uris.Node"))
    return false
  end

  local visited = {}
  local function folder(node_uri, dir, depth)
    if visited[node_uri] or depth > MAX_DEPTH then return end
    visited[node_uri] = true
    local children, nextp, q = {}, node_uri .. "!children", { count = opts.page_size or 100 }
    while nextp do
      if stopped() then return end
      local r, rerr = get_object(session, nextp, q)
      if not r then failed("folder " .. (dir == "" and "/" or dir), rerr) return end
      for _, n in ipairs(list_of(r.Node)) do
        if type(n) == "table" and (n.Type == "Folder" or n.Type == "Album") then
          local id = type(n.NodeID) == "string" and n.NodeID or (type(n.Uri) == "string" and n.Uri) or nil
          if id then
            children[#children + 1] = { id = id, type = n.Type, title = n.Name, url_name = n.UrlName, node = n }
          end
        end
      end
      local p = type(r.Pages) == "table" and r.Pages or {}
      if type(p.NextPage) == "string" and p.NextPage ~= "" then
        local path, qs = p.NextPage:match("^([^?]*)%??(.*)$")
        nextp, q = path, core.parse_form(qs)
      else
        nextp = nil
      end
    end
    for _, c in ipairs(name_children(children)) do
      if stopped() then return end
      local sub = dir == "" and c.name or (dir .. "/" .. c.name)
      if c.type == "Folder" then
        local nuri = type(c.node.Uri) == "string" and c.node.Uri or ("/api/v2/node/" .. c.id)
        folder(nuri, sub, depth + 1)
      else
        local al = album_of(c.node)
        if al then
          al.dir = sub
          on_album(al)
        else
          failed("album " .. sub, errors.new("api", "the node has no Uris.Album"))
        end
      end
    end
  end
  folder(root, "", 1)
  return complete
end

return {
  albums = albums,
  images = images,
  compact = compact,
  MAX_DEPTH = MAX_DEPTH,
  PAGES_AHEAD = PAGES_AHEAD,
}
