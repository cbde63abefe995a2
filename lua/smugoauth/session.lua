--- Session: signed API requests for one access token, made by
-- `client:session(token, token_secret)`. The request methods are here; the
-- pipeline they share is smugoauth.request, and the bodies of pages/each,
-- upload, download, get_many and sync live in smugoauth.pages,
-- smugoauth.upload, smugoauth.download, smugoauth.many and smugoauth.sync.
-- @module smugoauth.session
local request = require "smugoauth.request"
local pages = require "smugoauth.pages"
local upload = require "smugoauth.upload"
local download = require "smugoauth.download"
local many = require "smugoauth.many"
local sync = require "smugoauth.sync"
local backup = require "smugoauth.backup.run"

local methods = {}
local mt = { __name = "smugoauth.Session", __index = methods }

--- A session: `session.new(client, token, token_secret)` (what
-- `client:session` calls; it checks its arguments).
--   client         the smugoauth client (consumer credentials, origins,
--                  timeouts, retry policy, tracer)
--   token          the access token
--   token_secret   its secret: kept inside the C signer, and redacted from
--                  every trace line and error message of the session
-- Fields: client, token, signer (the C signer), http (its own C HTTP client:
-- connections are not shared with the client or other sessions), trace,
-- retry (the client's policy option). Close with `api:close()` or `<close>`.
local function new(client, token, token_secret)
  return setmetatable({
    client = client, token = token,
    signer = client:_signer(token, token_secret),
    http = client:_http(),
    trace = client.trace:with(token_secret),
    retry = client.retry,
  }, mt)
end

function mt.__tostring(s)
  return ("smugoauth.Session (%s)"):format(s.client.api_origin)
end

--- Make a signed request: `api:request(o)`, with the options that
-- smugoauth.request declares (OPTIONS: method, path, origin, url, query,
-- form, json, body, body_file, content_type, headers, on_progress, timeout,
-- max_body, fresh, retry, and the response sinks out, out_offset, out_file,
-- on_data, digest, sync; each with its type, default and whether it is
-- signed). Failures are retried by the policy of smugoauth.retry.
-- Returns a response {status, headers, body, json()} or nil, err.
-- @function request
methods.request = request.request

--- GET path with an optional query table: `api:get(path [, query [, opts]])`.
function methods:get(path, query, opts)
  local o = { method = "GET", path = path, query = query }
  for k, v in pairs(opts or {}) do o[k] = v end
  return self:request(o)
end

-- A method sending `method` to a path: `api:post(path [, opts])`.
local function verb(method)
  return function(self, path, opts)
    local o = { method = method, path = path }
    for k, v in pairs(opts or {}) do o[k] = v end
    return self:request(o)
  end
end

--- POST to path: `api:post(path [, opts])`, opts as for request.
methods.post = verb("POST")
--- PATCH path: `api:patch(path [, opts])`.
methods.patch = verb("PATCH")
--- PUT to path: `api:put(path [, opts])`.
methods.put = verb("PUT")
--- DELETE path: `api:delete(path [, opts])`.
methods.delete = verb("DELETE")

--- Whole pages: `for page, res in api:pages(path [, query [, opts]]) do` (smugoauth.pages).
methods.pages = pages.pages
--- Items of every page: `for item, err in api:each(path [, query [, opts]]) do` (smugoauth.pages).
methods.each = pages.each
--- Upload a photo or video: `api:upload(opts)` (smugoauth.upload).
methods.upload = upload.upload
--- Download a photo's original or a video, streamed, resumed, verified:
-- `api:download(image_or_uri, path [, opts])` (smugoauth.download).
methods.download = download.download
--- Concurrent requests: `api:get_many(list [, opts])` (smugoauth.many).
methods.get_many = many.get_many
--- Back up the account (or some albums) to a folder, incrementally:
-- `api:backup{dest = DIR, ...}` -> summary (smugoauth.backup.run).
methods.backup = backup.backup
--- Upload what a local folder has and an album lacks, by MD5 (a manifest
-- remembers the files SmugMug converts); with `folder`, a tree of
-- subfolders to albums: `api:sync{dir = ..., album = ... | folder = ...}`
-- (smugoauth.sync).
methods.sync = sync.sync

-- The session's own loop, for get_many called outside any task (made on
-- first use; its connections are kept between calls).
function methods:_loop()
  local lp = self.loop
  if not lp then
    lp = assert(require("smugoauth.loop").new())
    self.loop = lp
  end
  return lp
end

--- Close the session's connections and wipe its signer's keys.
function methods:close()
  if self.loop then self.loop:close() self.loop = nil end
  if self.http then self.http:close() end
  if self.signer then self.signer:close() end
end
mt.__close = methods.close

return {
  new = new,
  methods = methods,
  mt = mt,
}
