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
-- The child is `lua5.4 examples/sandbox.lua --port 0 ...` run from the project
-- root (it prints `PORT <n>` and serves until killed), so the launcher keeps
-- working whatever the sandbox module is called. It talks to the child on
-- 127.0.0.1 only: the test shortcuts under `/_sandbox/` and, through
-- `client()`, the sandbox's OAuth and API endpoints.
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
                     args = "table", lua = "string", script = "string", timeout = "number" }

--- Start a sandbox in a child process.
-- Options (all optional):
--
--   key ("sandbox-key"), secret ("sandbox-secret")  the consumer it accepts
--   albums (250)                   albums of its user "tester"
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
    if type(v) ~= START_OPTS[k] then error("sandbox launch: option '" .. k .. "' must be a " .. START_OPTS[k], 2) end
  end
  local self = { key = opts.key or "sandbox-key", secret = opts.secret or "sandbox-secret",
                 out = os.tmpname(), err = os.tmpname() }
  local argv = { opts.lua or "lua5.4", opts.script or "examples/sandbox.lua", "--port", "0",
                 "--key", self.key, "--secret", self.secret }
  if opts.albums then argv[#argv + 1] = "--albums"; argv[#argv + 1] = ("%d"):format(opts.albums) end
  if opts.latency then argv[#argv + 1] = "--latency"; argv[#argv + 1] = ("%.17g"):format(opts.latency) end
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
    local port = (slurp(self.out) or ""):match("^PORT (%d+)\n")
    if port then
      self.port = tonumber(port)
      self.origin = "http://127.0.0.1:" .. port
      self.http = core.http_new { timeout = 10 }
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

--- The sandbox's counters, decoded from `/_sandbox/stats` (`requests`,
-- `verified`, `uploads`, `nonces`, `last_upload`, ...).
function methods:stats()
  local res = control(self, { method = "GET", url = "/_sandbox/stats" })
  local t = res.status == 200 and cjson.decode(res.body)
  if type(t) ~= "table" then error("sandbox stats: HTTP " .. res.status, 2) end
  return t
end

--- A client (`smugoauth.new`) for this sandbox: its key, secret and origins,
-- with the options in extra added.
-- @tparam[opt] table extra more client options
function methods:client(extra)
  local smugoauth = require "smugoauth"
  local o = { key = self.key, secret = self.secret, oauth_origin = self.origin,
              api_origin = self.origin, upload_origin = self.origin }
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
  for _, f in ipairs { "out", "err" } do
    if self[f] then os.remove(self[f]) self[f] = nil end
  end
end
mt.__gc = methods.stop
mt.__close = methods.stop

--- @export
return {
  start = start,
}
