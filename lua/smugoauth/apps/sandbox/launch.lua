--- Start the local SmugMug sandbox in a child process and drive it: the one
-- launcher shared by `make demo` (examples/demo.lua) and the specs
-- (spec/support/sandbox.lua).
--
--     local launch = require "smugoauth.apps.sandbox.launch"
--     local sb = assert(launch.start{ key = "k", secret = "s" })   -- sb.origin, sb.port, sb.pid
--     local at, ats, client = sb:authorize()       -- the whole OAuth flow, approved here
--     sb:mode{ fail429 = 2, retry_after = 0 }      -- faults for the next API calls
--     print(sb:stats().requests)
--     sb:stop()                                    -- also on collection and `<close>`
--
--     local b = assert(launch.start{ fixture = "backup", archive_origin = true })
--     local api = b:session()                      -- authorized; download_origins set
--     b:rename("ImgBeach", "shore.jpg")            -- changes between runs
--
-- The child is `lua5.4 examples/sandbox.lua --port 0 ...` run from the project
-- root (it prints `PORT <n>`, and `ARCHIVE <n>` with a second origin, and
-- serves until killed), so the launcher keeps working whatever the sandbox
-- module is called. It talks to the child on 127.0.0.1 only: the test
-- shortcuts under `/_sandbox/` and, through `client()`, the sandbox's OAuth
-- and API endpoints.
-- @module smugoauth.apps.sandbox.launch
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local socket = require "socket"
local errors = require "smugoauth.errors"

local methods = {}
local mt = { __name = "smugoauth.SandboxProcess", __index = methods }

local function q(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

local function slurp(path)
  local f = path and io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- true while process pid runs (an exited child not yet reaped is gone)
local function alive(pid)
  local state = (slurp("/proc/" .. pid .. "/stat") or ""):match("%) (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- wait at most seconds for pid to end; true when it did
local function gone_within(pid, seconds)
  local deadline = socket.gettime() + seconds
  while alive(pid) do
    if socket.gettime() > deadline then return false end
    socket.sleep(0.02)
  end
  return true
end

local START_OPTS = { key = "string", secret = "string", albums = "number", latency = "number",
                     args = "table", lua = "string", script = "string", timeout = "number",
                     fixture = "string|table", fixture_file = "string", images = "number",
                     image_size = "number", video_size = "number", archive_origin = "boolean" }
-- the options given to the script as --name N (integers)
local COUNT_FLAGS = { { "albums", "--albums" }, { "images", "--images" }, { "image_size", "--image-size" },
                      { "video_size", "--video-size" } }

--- Start a sandbox in a child process.
-- Options (all optional):
--
--   key ("sandbox-key"), secret ("sandbox-secret")  the consumer it accepts
--   albums (250 without a fixture)  albums of its user "tester" (--albums)
--   fixture (none: "albums")       built-in fixtures by name ("backup", "tree",
--                                  "bench", "video", comma-separated: --fixture),
--                                  or a description table (written to a JSON file
--                                  for --fixture-file): smugoauth.apps.sandbox.fixtures
--   fixture_file                   a JSON description (--fixture-file)
--   images, image_size (2000, 262144)  the "bench" fixture's photos (--images, --image-size)
--   video_size (2 GiB)             the "video" fixture's largest rendition (--video-size)
--   archive_origin (false)         archive downloads on a second origin (--archive-origin):
--                                  the handle's `archive_origin`, `archive_port`
--   latency (0)                    seconds every answer waits (--latency; `mode` changes it)
--   args ({})                      more arguments for the script
--   lua ("lua5.4")                 the interpreter
--   script ("examples/sandbox.lua") the script, relative to the working directory
--   timeout (10)                   seconds to wait for its `PORT <n>` line
--
-- Returns the handle (origin, port, pid, key, secret), or nil, err (code "io",
-- with what the child wrote to stderr) when it does not come up. Misuse (an
-- unknown option, a wrong type) raises.
-- @tparam[opt] table opts
-- @return a sandbox handle, or nil, err
local function start(opts)
  opts = opts or {}
  for k, v in pairs(opts) do
    if not START_OPTS[k] then error("sandbox launch: unknown option '" .. tostring(k) .. "'", 2) end
    if not ("|" .. START_OPTS[k] .. "|"):find("|" .. type(v) .. "|", 1, true) then
      error("sandbox launch: option '" .. k .. "' must be a " .. START_OPTS[k]:gsub("|", " or "), 2)
    end
  end
  for _, f in ipairs(COUNT_FLAGS) do
    local v = opts[f[1]]
    if v ~= nil and (not math.tointeger(v) or v < 0) then
      error("sandbox launch: option '" .. f[1] .. "' must be an integer >= 0", 2)
    end
  end
  local self = { key = opts.key or "sandbox-key", secret = opts.secret or "sandbox-secret",
                 out = os.tmpname(), err = os.tmpname() }
  local argv = { opts.lua or "lua5.4", opts.script or "examples/sandbox.lua", "--port", "0",
                 "--key", self.key, "--secret", self.secret }
  for _, f in ipairs(COUNT_FLAGS) do
    if opts[f[1]] then argv[#argv + 1] = f[2]; argv[#argv + 1] = ("%d"):format(opts[f[1]]) end
  end
  if opts.latency then argv[#argv + 1] = "--latency"; argv[#argv + 1] = ("%.17g"):format(opts.latency) end
  if type(opts.fixture) == "string" then argv[#argv + 1] = "--fixture"; argv[#argv + 1] = opts.fixture end
  if type(opts.fixture) == "table" then
    local text, jerr = cjson.encode(opts.fixture)
    if not text then error("sandbox launch: option 'fixture': " .. tostring(jerr), 2) end
    self.desc = os.tmpname()
    local f = assert(io.open(self.desc, "wb"))
    f:write(text)
    f:close()
    argv[#argv + 1] = "--fixture-file"; argv[#argv + 1] = self.desc
  end
  if opts.fixture_file then argv[#argv + 1] = "--fixture-file"; argv[#argv + 1] = opts.fixture_file end
  if opts.archive_origin then argv[#argv + 1] = "--archive-origin" end
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = tostring(a) end
  for i, a in ipairs(argv) do argv[i] = q(a) end
  -- popen's shell prints its pid and becomes the sandbox, which stays our
  -- child (its pid cannot be reused before stop reaps it by closing the pipe)
  self.pipe = assert(io.popen("echo $$; exec " .. table.concat(argv, " ") .. " >" .. q(self.out) .. " 2>" ..
                              q(self.err) .. " </dev/null", "r"))
  self.pid = tonumber(self.pipe:read("l"))
  -- marked for finalization after the pipe, so collected first: stop kills the
  -- child before the pipe's own finalizer would wait for it
  setmetatable(self, mt)
  local deadline = socket.gettime() + (opts.timeout or 10)
  while self.pid do
    local out = slurp(self.out) or ""
    local port = out:match("^PORT (%d+)\n")
    local aport = out:match("\nARCHIVE (%d+)\n")
    if port and (aport or not opts.archive_origin) then
      self.port = tonumber(port)
      self.origin = "http://127.0.0.1:" .. port
      if aport then
        self.archive_port = tonumber(aport)
        self.archive_origin = "http://127.0.0.1:" .. aport
      end
      self.http = core.http_new { timeout = 60 }
      return self
    end
    if not alive(self.pid) or socket.gettime() > deadline then break end
    socket.sleep(0.02)
  end
  local why = (slurp(self.err) or ""):gsub("%s+$", "")
  self:stop()
  return nil, errors.new("io", "the sandbox did not start" .. (why ~= "" and (": " .. why) or ""))
end

--- A running sandbox, as `start` returns it: fields `origin`, `port`, `pid`,
-- `key`, `secret`.
-- @type SandboxProcess

-- one control request; raises when the sandbox does not answer (the
-- harness is broken: a caller cannot go on meaningfully)
local function control(self, req)
  if not self.http then error("sandbox launch: the sandbox is stopped", 3) end
  req.url = self.origin .. req.url
  local res, msg = self.http:request(req)
  if not res then error("sandbox " .. errors.safe_url(req.url) .. ": " .. tostring(msg), 3) end
  return res
end

--- Approve a request token as the user would (the `/_sandbox/approve`
-- shortcut): returns the verifier (an out-of-band token) or the callback
-- URL with it, or nil, message for a token the sandbox does not know.
-- @string token the request token
function methods:approve(token)
  local res = control(self, { method = "GET", url = "/_sandbox/approve?oauth_token=" ..
                              core.percent_encode(tostring(token)) })
  if res.status ~= 200 then return nil, res.body end
  return res.body
end

--- Set the fault modes for the next API calls, e.g. `{ fail429 = 2,
-- retry_after = 0 }`, `{ fail503 = 1 }`, `{ no_confirm = 1 }`, `{ latency =
-- 0.5 }` (seconds every answer waits); `{}` clears them. Returns true.
-- @tab m the modes
function methods:mode(m)
  local names, parts = {}, {}
  for k in pairs(m) do names[#names + 1] = tostring(k) end
  table.sort(names)
  for i, k in ipairs(names) do
    parts[i] = core.percent_encode(k) .. "=" .. core.percent_encode(tostring(m[k]))
  end
  local res = control(self, { method = "POST", url = "/_sandbox/mode", body = table.concat(parts, "&"),
                              headers = { "Content-Type: application/x-www-form-urlencoded" } })
  if res.status ~= 200 then error("sandbox mode: HTTP " .. res.status, 2) end
  return true
end

-- A control request whose 200 answer is a JSON object: that object
-- (decoded), or raise at the caller's caller naming `what`.
local function control_json(self, method, path, what)
  local res = control(self, { method = method, url = path })
  local t = res.status == 200 and cjson.decode(res.body)
  if type(t) ~= "table" then error("sandbox " .. what .. ": HTTP " .. res.status, 3) end
  return t
end

--- The sandbox's counters, decoded from `/_sandbox/stats` (`requests`,
-- `verified`, `uploads`, `nonces`, `last_upload`, ...).
function methods:stats()
  return control_json(self, "GET", "/_sandbox/stats", "stats")
end

--- Zero the sandbox's counters (`POST /_sandbox/stats/reset`); returns
-- the counters as they were.
function methods:reset_stats()
  return control_json(self, "POST", "/_sandbox/stats/reset", "reset_stats")
end

--- The node tree (`GET /_sandbox/tree`): NodeID, Type, Name, UrlName,
-- Children; albums with AlbumKey and Images (their keys, in order).
function methods:tree()
  return control_json(self, "GET", "/_sandbox/tree", "tree")
end

-- the answer of /_sandbox/image, decoded, or nil and its message
local function image_answer(res)
  local t = cjson.decode(res.body)
  if res.status >= 300 or type(t) ~= "table" then
    return nil, type(t) == "table" and t.Message or ("HTTP " .. res.status)
  end
  return t
end

--- An image as the sandbox knows it (`GET /_sandbox/image`): `{ Image (as
-- the API shows it), Seed, VideoSeed, Version, AlbumKey }` (the bytes are
-- `smugoauth.apps.sandbox.content.bytes(Seed, Image.ArchivedSize)`), or
-- nil and a message.
-- @string key the image key
function methods:image(key)
  return image_answer(control(self, { method = "GET", url = "/_sandbox/image?key=" .. core.percent_encode(key) }))
end

--- Change an image between runs (`POST /_sandbox/image`): `op` one of
-- "rename" (fields.name), "move" (fields.album), "delete", "change"
-- (fields.size: new bytes), "finish", "process", "add" (fields.album,
-- name, size, video, video_size, processing). Returns what `image`
-- returns (for "delete": `{ Deleted = key }`), or nil and a message.
-- @string op
-- @tparam[opt] string key the image (not for "add")
-- @tparam[opt] table fields
function methods:change(op, key, fields)
  local parts = { "op=" .. core.percent_encode(op) }
  if key then parts[#parts + 1] = "key=" .. core.percent_encode(key) end
  local names = {}
  for k in pairs(fields or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = fields[k]
    if v == true then v = "1" end
    parts[#parts + 1] = core.percent_encode(k) .. "=" .. core.percent_encode(tostring(v))
  end
  return image_answer(control(self, { method = "POST", url = "/_sandbox/image", body = table.concat(parts, "&"),
                                      headers = { "Content-Type: application/x-www-form-urlencoded" } }))
end

--- Rename an image (a new FileName).
-- @string key
-- @string name
function methods:rename(key, name) return self:change("rename", key, { name = name }) end
--- Move an image to the end of another album.
-- @string key
-- @string album the album key
function methods:move(key, album) return self:change("move", key, { album = album }) end
--- Delete an image.
-- @string key
function methods:delete(key) return self:change("delete", key) end
--- Give an image new bytes (a new version: LastUpdated and MD5 change).
-- @string key
-- @int[opt] size new size in bytes (default: the same)
function methods:replace(key, size) return self:change("change", key, { size = size }) end
--- End a video's processing (its !largestvideo answers).
-- @string key
function methods:finish(key) return self:change("finish", key) end
--- Add an image to an album: opts `size`, `video`, `video_size`,
-- `processing`, `key`.
-- @string album the album key
-- @string name its FileName
-- @tab[opt] opts
function methods:add_image(album, name, opts)
  local f = { album = album, name = name }
  for k, v in pairs(opts or {}) do f[k] = v end
  return self:change("add", nil, f)
end

--- A client (`smugoauth.new`) for this sandbox: its key, secret and origins
-- (download_origins: the sandbox's, and its archive origin when it has
-- one), with the options in extra added.
-- @tparam[opt] table extra more client options
function methods:client(extra)
  local smugoauth = require "smugoauth"
  local o = { key = self.key, secret = self.secret, oauth_origin = self.origin,
              api_origin = self.origin, upload_origin = self.origin,
              download_origins = { self.origin, self.archive_origin } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return smugoauth.new(o)
end

--- Run the whole OAuth flow (request token, approval here, access token):
-- returns the access token, its secret and the client. Raises when a step fails.
-- @tparam[opt] table extra more client options
function methods:authorize(extra)
  local c = self:client(extra)
  local rt, rts = assert(c:request_token("oob"))
  local at, ats = assert(c:access_token(rt, rts, assert(self:approve(rt))))
  return at, ats, c
end

--- An authorized session of this sandbox (the whole flow, then
-- `client:session`): returns the session and its client.
-- @tparam[opt] table extra more client options
function methods:session(extra)
  local at, ats, c = self:authorize(extra)
  return c:session(at, ats), c
end

--- Stop the sandbox (SIGTERM; SIGKILL when it has not ended within 3 s) and
-- remove its files. Idempotent; also run on collection and by `<close>`.
function methods:stop()
  local pid = self.pid
  if pid and alive(pid) then
    os.execute("kill -TERM " .. math.tointeger(pid) .. " 2>/dev/null")
    if not gone_within(pid, 3) then
      os.execute("kill -KILL " .. math.tointeger(pid) .. " 2>/dev/null")
      gone_within(pid, 2)
    end
  end
  -- closing the pipe reaps the child (it waits: only once the child is gone)
  if self.pipe and not (pid and alive(pid)) then self.pipe:close() self.pipe = nil end
  self.pid = nil
  if self.http then self.http:close() self.http = nil end
  for _, f in ipairs { "out", "err", "desc" } do
    if self[f] then os.remove(self[f]) self[f] = nil end
  end
end
mt.__gc = methods.stop
mt.__close = methods.stop

--- @export
return {
  start = start,
}
