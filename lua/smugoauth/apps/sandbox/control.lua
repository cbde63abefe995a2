--- smugoauth.apps.sandbox.control: the test shortcuts under /_sandbox/
-- (never signed, never delayed, never faulted):
--
--   GET  /_sandbox/approve?oauth_token=T   approve: the verifier (oob) or the
--                                          callback URL, as text; 404 unknown
--   POST /_sandbox/mode                    the switches (smugoauth.apps.sandbox.faults)
--   GET  /_sandbox/stats                   the counters (ditto), JSON
--   POST /_sandbox/stats/reset             zero them (answers the old ones)
--   GET  /_sandbox/tree                    the node tree: NodeID, Type, Name,
--                                          UrlName, Children, AlbumKey, Images (keys)
--   GET  /_sandbox/image?key=IMG           an image: {Image (as the API shows
--                                          it), Seed, VideoSeed, Version, AlbumKey}
--   POST /_sandbox/image  op=...&key=IMG   change it between runs, answering the same:
--        op=rename&name=NEW                a new FileName
--        op=move&album=KEY                 to the end of another album
--        op=delete                         gone (from its album and the API)
--        op=change[&size=N]                new bytes (next version; LastUpdated
--                                          and ArchivedMD5 change)
--        op=finish | op=process            a video's processing done | again
--        op=add&album=KEY&name=F[&size=N][&video=1][&video_size=N][&processing=1]
--                                          a new image (201)
-- Every change sets the image's LastUpdated to a time later than any before.
-- @module smugoauth.apps.sandbox.control
local nodes = require "smugoauth.apps.sandbox.nodes"
local images = require "smugoauth.apps.sandbox.images"
local faults = require "smugoauth.apps.sandbox.faults"
local oauth = require "smugoauth.apps.sandbox.oauth"
local reply = require "smugoauth.apps.sandbox.reply"

local json = reply.json
local TEXT = { ["Content-Type"] = "text/plain" }

local function image_doc(self, img)
  return { Image = images.render(self, img), Seed = images.seed(img), VideoSeed = images.video_seed(img),
           Version = img.version, AlbumKey = img.album.key }
end

local function image_op(self, req)
  local f = req:form()
  local op = f.op
  if op == "add" then
    local a = self.albums[f.album or ""]
    if not a then return json(404, { Message = "no such album" }) end
    local size = f.size and math.tointeger(tonumber(f.size))
    local vsize = f.video_size and math.tointeger(tonumber(f.video_size))
    if (f.size and not size) or (f.video_size and not vsize) then
      return json(400, { Message = "size and video_size are byte counts" })
    end
    images.tick(self)
    local img, status, msg = images.add(self, a, { FileName = f.name or "added.jpg", Size = size,
      VideoSize = vsize, IsVideo = f.video == "1" or nil, Processing = f.processing == "1",
      ImageKey = f.key })
    if not img then return json(status, { Message = msg }) end
    a.updated = self.clock
    return json(201, image_doc(self, img))
  end
  local img = self.images[f.key or ""]
  if not img then return json(404, { Message = "no such image" }) end
  local changed, status, msg = images.change(self, op, img, f)
  if not changed then return json(status, { Message = msg }) end
  if op == "delete" then return json(200, { Deleted = img.key }) end
  return json(200, image_doc(self, img))
end

--- Answer a request under /_sandbox/, or nothing for a path that is none of them.
-- @param self the sandbox
-- @param req
local function route(self, req)
  local path, m = req.path, req.method
  if path == "/_sandbox/approve" then
    local verifier, redirect = oauth.approve(self, req.params.oauth_token or "")
    if not verifier then return 404, TEXT, "unknown request token\n" end
    return 200, TEXT, redirect or verifier
  elseif path == "/_sandbox/mode" and m == "POST" then
    self.mode = faults.parse(req:form())
    return 200, TEXT, "ok\n"
  elseif path == "/_sandbox/stats" and m == "GET" then
    return json(200, self.stats)
  elseif path == "/_sandbox/stats/reset" and m == "POST" then
    local old = self.stats
    self.stats = faults.new_stats()
    return json(200, old)
  elseif path == "/_sandbox/tree" and m == "GET" then
    return json(200, nodes.dump(self))
  elseif path == "/_sandbox/image" and m == "GET" then
    local img = self.images[req.params.key or ""]
    if not img then return json(404, { Message = "no such image" }) end
    return json(200, image_doc(self, img))
  elseif path == "/_sandbox/image" and m == "POST" then
    return image_op(self, req)
  end
end

return {
  route = route,
}
