--- smugoauth.apps.sandbox (also smugoauth.sandbox): a local stand-in for
-- SmugMug's OAuth 1.0a, API v2, upload and archive endpoints, on our HTTP
-- loop, so the whole flow, backups and syncs run with no account and no
-- internet. It verifies every signature and answers failures SmugMug's way:
-- 401 with `oauth_problem=signature_invalid&debug_sbs=...`, `nonce_used`,
-- `timestamp_refused`, `token_rejected`, `parameter_absent`,
-- `consumer_key_unknown`, `signature_method_rejected`, `verifier_invalid`.
--
-- OAuth (smugoauth.apps.sandbox.oauth):
--   GET|POST /services/oauth/1.0a/getRequestToken   (oauth_callback: oob or URL)
--   GET      /services/oauth/1.0a/authorize?oauth_token=  approve page
--   POST     /services/oauth/1.0a/authorize            approve: code page (oob) or 302
--   GET|POST /services/oauth/1.0a/getAccessToken      (oauth_verifier)
-- The API, for the one user "tester" (signed with the access token):
--   GET      /api/v2!authuser, /api/v2/user/tester     Response.User {NickName, Name,
--            Uris = {Node (the root node), UserAlbums, Folder}}
--   ANY      /api/v2!echo   what was received (method, query, content type, body)
--   the node tree (smugoauth.apps.sandbox.nodes):
--   GET      /api/v2/node/ID, /api/v2/node/ID!children (paged)    Node objects
--   POST     /api/v2/node/ID!children  {Type = Folder|Album, Name, UrlName}
--   GET      /api/v2/folder/user/tester[/PATH][!folders|!albums] (paged)
--   POST     /api/v2/folder/user/tester[/PATH]!folders | !albums  {Name, UrlName}
--   GET|POST /api/v2/user/tester!albums   every album (paged) | create under the root
--   GET|PATCH|DELETE /api/v2/album/KEY
--   the images (smugoauth.apps.sandbox.images):
--   GET      /api/v2/album/KEY!images (paged; an empty album: no AlbumImage key),
--            /api/v2/album/KEY/image/IMG-0, /api/v2/image/IMG[-0]
--   GET      /api/v2/image/IMG-0!largestvideo   {Url, Size, MD5}; 404 while processing
--   POST     /  (upload origin: raw body, X-Smug-* headers, Content-MD5 checked;
--            the image joins the album; .heic/.heif and videos are "converted")
-- Paged collections take `start` (1-based) and `count` (100; at most 1000)
-- and answer Response.Pages {Total, Start, Count, NextPage, ...}; an empty
-- one has no Response[Locator] key at all, as SmugMug answers.
-- Archive downloads (smugoauth.apps.sandbox.archive), signed like API calls
-- (401 otherwise), honouring `Range: bytes=N-` (206, Content-Range; 416),
-- streamed in 64 KiB pieces whatever the size; on this origin, or with the
-- option `archive_origin` on a second listener only (`sb.archive_origin`):
--   GET|HEAD /_archive/IMG, /_archive/IMG/largest   (ArchivedUri, LargestVideo.Url)
-- Test shortcuts (smugoauth.apps.sandbox.control; never signed, delayed or faulted):
--   GET      /_sandbox/approve?oauth_token=  approve, return the verifier (oob)
--            or the callback URL it redirects to, as text
--   POST     /_sandbox/mode    the switches (a POST replaces them all; see
--            smugoauth.apps.sandbox.faults): latency=S | fail429=N&retry_after=S |
--            fail503=N | scope=api|archive|all | drop_after=K&drop_count=N |
--            rate=B | ignore_range=1 | bad_range=1 | lie_md5=1|KEYS |
--            lie_size=1|KEYS | no_confirm=1 | convert=0
--   GET      /_sandbox/stats   the counters (JSON): requests, api_calls,
--            api_listing, api_other, api_routes, archive_requests,
--            archive_bytes, downloads_started/_completed/_dropped/_ranged,
--            archive_refused, throttled, unavailable, uploads, last_upload, ...
--   POST     /_sandbox/stats/reset   zero them
--   GET      /_sandbox/tree    the node tree with album and image keys
--   GET      /_sandbox/image?key=IMG   an image, its seed and version
--   POST     /_sandbox/image   op=rename|move|delete|change|finish|process|add
--            (a change between runs: smugoauth.apps.sandbox.control)
-- What the user has: the fixtures (option `fixture`: "backup", "tree",
-- "bench", "video", "albums", or a description; `fixture_file` a JSON one:
-- smugoauth.apps.sandbox.fixtures). Image bytes are generated from a seed
-- (smugoauth.apps.sandbox.content), so tests know them and their MD5.
-- Latency (option `latency`, or `latency=S` through /_sandbox/mode): every
-- answer but those under /_sandbox/ comes after S seconds, waited with
-- `smugoauth.sleep` in the connection's task, so concurrent requests overlap
-- (as they would on a slow provider). A client that goes away meanwhile
-- cancels the wait (smugoauth.http.server): it is counted in the stats as
-- `cancelled` (and `delayed` counts the requests that were delayed).
-- This file creates the sandbox and routes each request.
-- @module smugoauth.apps.sandbox
local core = require "smugoauth.core"
local loop = require "smugoauth.loop"
local server = require "smugoauth.http.server"
local html = require "smugoauth.http.html"
local oauth = require "smugoauth.apps.sandbox.oauth"
local api = require "smugoauth.apps.sandbox.api"
local reply = require "smugoauth.apps.sandbox.reply"
local nodes = require "smugoauth.apps.sandbox.nodes"
local images = require "smugoauth.apps.sandbox.images"
local fixtures = require "smugoauth.apps.sandbox.fixtures"
local faults = require "smugoauth.apps.sandbox.faults"
local archive = require "smugoauth.apps.sandbox.archive"
local control = require "smugoauth.apps.sandbox.control"

local E = html.escape
local form_body, problem, json, api_error, hex = oauth.form_body, oauth.problem, reply.json, reply.api_error, reply.hex

local FORM = { ["Content-Type"] = "application/x-www-form-urlencoded" }
-- the provider's pages: inline style allowed (the code page)
local HTML = html.headers { ["Content-Security-Policy"] =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'" }

local methods = {}
local mt = { __name = "smugoauth.Sandbox", __index = methods }

local COUNTS = { albums = true, images = true, image_size = true, video_size = true, archive_port = true }

--- Create a sandbox, listening (call `sb:run()` or `sb:step()` to serve).
--
-- Options (defaults in brackets):
--
--  - `key`, `secret` ["sandbox-key", "sandbox-secret"]: the consumer
--    credentials it accepts.
--  - `host`, `port` ["127.0.0.1", 0]: where it listens (`sb.port`, `sb.origin`).
--  - `fixture` [nil]: what the user has: built-in fixtures by name ("backup",
--    "tree", "bench", "video", "albums"; several separated by commas), or a
--    description table (smugoauth.apps.sandbox.fixtures). None: "albums".
--  - `fixture_file` [nil]: a JSON description to load too.
--  - `albums` [250 when no fixture is given]: albums K0001... of the fixture "albums".
--  - `images`, `image_size` [2000, 262144]: the fixture "bench"'s photos and their size.
--  - `video_size` [2 GiB]: the fixture "video"'s largest rendition, in bytes.
--  - `warm` [true]: compute the MD5s of the generated images in a task of
--    the loop right away (else: when first listed).
--  - `archive_origin` [false]: serve the archive downloads on a second
--    listener (`sb.archive_port`, `sb.archive_origin`) instead of the
--    sandbox's own origin; `archive_port` [0] where.
--  - `tls` [nil]: luasec server parameters, to serve https.
--  - `window` [300]: seconds a timestamp may be off.
--  - `max_body` [256 MiB]: the largest request body (uploads).
--  - `latency` [0]: seconds every answer but /_sandbox/'s waits (see above).
--  - `loop` [smugoauth.loop's default loop]: the loop it serves on.
--  - `log` [stderr]: `function(message)` for the server's faults.
--
-- Misuse (a wrong type) raises; a fixture that cannot be built or a port
-- that cannot be had: nil, message.
-- @tparam[opt] table opts
-- @return sandbox | nil, message
local function new(opts)
  opts = opts or {}
  local latency = opts.latency
  if latency ~= nil and (type(latency) ~= "number" or latency ~= latency or latency < 0) then
    error("sandbox.new: option 'latency' must be a number of seconds >= 0", 2)
  end
  for k in pairs(COUNTS) do
    local v = opts[k]
    if v ~= nil and (not math.tointeger(v) or v < 0) then
      error("sandbox.new: option '" .. k .. "' must be an integer >= 0", 2)
    end
  end
  if opts.fixture ~= nil and type(opts.fixture) ~= "string" and type(opts.fixture) ~= "table" then
    error("sandbox.new: option 'fixture' must be a string or a table", 2)
  end
  if opts.fixture_file ~= nil and type(opts.fixture_file) ~= "string" then
    error("sandbox.new: option 'fixture_file' must be a string", 2)
  end
  local self = setmetatable({
    key = opts.key or "sandbox-key", secret = opts.secret or "sandbox-secret",
    window = opts.window or 300, user = "tester",
    request_tokens = {}, access_tokens = {}, nonces = {},
    mode = { latency = latency }, stats = faults.new_stats(),
    log = opts.log,
  }, mt)
  nodes.init(self)
  images.init(self)
  local built, ferr = fixtures.build(self, opts)
  if not built then return nil, ferr end
  local function server_for(port, archive_only)
    return server.new {
      host = opts.host or "127.0.0.1", port = port, tls = opts.tls,
      max_body = opts.max_body or 256 * 1024 * 1024, request_timeout = 60,
      -- request bodies: POST and PATCH (forms, JSON, uploads) up to max_body
      body = function(req) return not archive_only and (req.method == "POST" or req.method == "PATCH") end,
      handler = function(req) return self:handle(req, archive_only) end,
      log = opts.log, loop = opts.loop,
    }
  end
  local srv, err = server_for(opts.port or 0, false)
  if not srv then return nil, err end
  self.server, self.port = srv, srv.port
  self.origin = srv.scheme .. "://127.0.0.1:" .. srv.port
  self.archive_origin = self.origin
  if opts.archive_origin then
    local asrv, aerr = server_for(opts.archive_port or 0, true)
    if not asrv then
      srv:close()
      return nil, aerr
    end
    self.archive_server, self.archive_port = asrv, asrv.port
    self.archive_origin = asrv.scheme .. "://127.0.0.1:" .. asrv.port
  end
  if opts.warm ~= false then self:_warm(opts.loop) end
  return self
end

-- Compute the MD5 of every generated image (and video rendition) in a task
-- of the loop, one after another, yielding (smugoauth.apps.sandbox.content
-- keeps them): the first listings then need not wait for them. Ends early
-- when the sandbox is closed. Nothing to do: no task.
function methods:_warm(lp)
  local todo = {}
  for _, a in ipairs(self.album_list) do
    for _, img in ipairs(a.images) do
      if not img.data then todo[#todo + 1] = img end
    end
  end
  if #todo == 0 then return end
  lp = lp or loop.default()
  lp:spawn(function()
    for _, img in ipairs(todo) do
      if self.closed then return end
      if self.images[img.key] == img then
        images.sum(self, img)
        if img.is_video then images.sum(self, img, true) end
      end
      loop.sleep(0)
    end
  end)
end

--- Serve until the server is stopped (`sb.server:stop()`).
function methods:run() return self.server:run() end
--- One poll round (see smugoauth.http.server).
function methods:step(t) return self.server:step(t) end
--- Close the server (and the archive origin's).
function methods:close()
  self.closed = true
  if self.archive_server then self.archive_server:close() end
  return self.server:close()
end

-- Approve a request token (see smugoauth.apps.sandbox.oauth.approve).
function methods:approve(token) return oauth.approve(self, token) end

local TOKEN = "/services/oauth/1.0a/"

local CONTROL = "/_sandbox/"
local ARCHIVE = "/_archive/"

--- Answer one request (the server's handler; a script may wrap it), after
-- the latency of the mode (yielding inside a task: see the module comment).
-- archive_only: the request came to the archive origin.
function methods:handle(req, archive_only)
  local path = req.path
  local latency = self.mode.latency
  if latency and latency > 0 and path:sub(1, #CONTROL) ~= CONTROL then
    self.stats.delayed = self.stats.delayed + 1
    if not loop.sleep(latency) then                -- cancelled: the client has gone
      self.stats.cancelled = self.stats.cancelled + 1
      return 503, { ["Content-Type"] = "text/plain" }, "cancelled\n"
    end
  end
  return self:_answer(req, archive_only)
end

-- The answer itself (no latency).
function methods:_answer(req, archive_only)
  local path, m = req.path, req.method
  self.stats.requests = self.stats.requests + 1
  if archive_only or path:sub(1, #ARCHIVE) == ARCHIVE then
    if path:sub(1, #ARCHIVE) ~= ARCHIVE or (self.archive_server and not archive_only) then
      return api_error(404, "Not Found")
    end
    return archive.serve(self, req)
  end
  if path:sub(1, #CONTROL) == CONTROL then
    local status, headers, body = control.route(self, req)
    if status then return status, headers, body end
    return api_error(404, "Not Found")
  end
  if path == TOKEN .. "getRequestToken" and (m == "GET" or m == "POST") then
    local o, resp = oauth.verify(self, req, nil)
    if not o then return table.unpack(resp) end
    local cb = o.oauth_callback
    if not cb or cb == "" then
      return problem(400, "parameter_absent", { { "oauth_parameters_absent", "oauth_callback" } })
    end
    if cb ~= "oob" and not cb:match("^https?://") then return problem(400, "parameter_rejected") end
    local t, s = hex(16), hex(16)
    self.request_tokens[t] = { secret = s, callback = cb }
    return 200, FORM, form_body { { "oauth_token", t }, { "oauth_token_secret", s },
                                  { "oauth_callback_confirmed", self.mode.no_confirm and "false" or "true" } }
  elseif path == TOKEN .. "authorize" and m == "GET" then
    local t = req.params.oauth_token
    local rec = t and self.request_tokens[t]
    if not rec or rec.used then
      return 400, HTML, html.page("Unknown request token", "<p>This authorization link is not valid.</p>")
    end
    local access = req.params.Access or "Public"
    local perm = req.params.Permissions or "Read"
    -- form-action also governs where the form's redirect may go: allow the callback's origin
    -- (a CSP source cannot name an IPv6 literal such as [::1]: its scheme, then)
    local headers = HTML
    local cb_origin = rec.callback:match("^(https?://[^/?#]+)")
    if cb_origin then
      if cb_origin:find("://[", 1, true) then cb_origin = cb_origin:match("^https?:") end
      headers = {}
      for k, v in pairs(HTML) do headers[k] = v end
      headers["Content-Security-Policy"] = HTML["Content-Security-Policy"] .. " " .. cb_origin
    end
    return 200, headers, html.page("Authorize application",
      "<p>An application asks for <b>" .. E(access) .. "</b> access with <b>" .. E(perm) ..
      "</b> permissions to the sandbox account <b>tester</b>.</p>" ..
      "<form method=\"post\" action=\"" .. TOKEN .. "authorize\">" ..
      "<input type=\"hidden\" name=\"oauth_token\" value=\"" .. E(t) .. "\">" ..
      "<button id=\"approve\" type=\"submit\">Approve</button></form>")
  elseif path == TOKEN .. "authorize" and m == "POST" then
    local f = req:form()
    local verifier, redirect = oauth.approve(self, f.oauth_token or "")
    if not verifier then return 400, HTML, html.page("Unknown request token", "<p>Not valid.</p>") end
    if redirect then return 302, { Location = redirect }, "" end
    return 200, HTML, html.page("Authorized",
      "<p>Enter this six-digit code in the application:</p><p id=\"code\" style=\"font-size:2em\">" ..
      E(verifier) .. "</p>")
  elseif path == TOKEN .. "getAccessToken" and (m == "GET" or m == "POST") then
    local o, rec = oauth.verify(self, req, "request")
    if not o then return table.unpack(rec) end
    if not rec.approved or not o.oauth_verifier or not core.equal(o.oauth_verifier, rec.verifier) then
      return problem(401, "verifier_invalid")
    end
    rec.used = true
    local t, s = hex(16), hex(16)
    self.access_tokens[t] = { secret = s, user = "tester" }
    return 200, FORM, form_body { { "oauth_token", t }, { "oauth_token_secret", s } }
  end
  -- protected resources
  local is_api = path:match("^/api/v2") ~= nil
  if is_api then api.count(self, req) end
  local st, h, b = faults.storm(self, "api")
  if st then return st, h, b end
  local o, rec = oauth.verify(self, req, "access")
  if not o then return table.unpack(rec) end
  if path == "/" and m == "POST" then return api.upload(self, req) end
  if path == "/api/v2!echo" then
    local names = {}                 -- the oauth_* parameter names of the Authorization header
    for name in (req.headers.authorization or ""):gmatch("(oauth_[%w_]+)=") do names[#names + 1] = name end
    table.sort(names)
    return json(200, { method = m, query = req.query, content_type = req.headers["content-type"],
                       body = req.body, accept = req.headers["accept"], oauth = names })
  end
  if is_api then return api.api(self, req) end
  return api_error(404, "Not Found")
end


return {
  new = new,
  methods = methods,
  mt = mt,
  Sandbox = methods,
}
