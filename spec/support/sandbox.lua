--- support.sandbox: run the SmugMug sandbox (examples/sandbox.lua) in a child
-- process for specs.
--
--     local sandbox = require "support.sandbox"
--     local sb = sandbox.start{ key = "k", secret = "s" }   -- sb.origin, sb.port
--     local verifier = sb:approve(request_token)
--     sb:mode{ fail429 = 2, retry_after = 0 }
--     sb:stop()    -- always, in teardown
local core = require "smugoauth.core"
local cjson = require "cjson.safe"

local M = {}
local methods = {}
local mt = { __index = methods }

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end
M.q = q

--- Start a sandbox; options key, secret, albums.
function M.start(opts)
  opts = opts or {}
  local key = opts.key or "sandbox-key"
  local secret = opts.secret or "sandbox-secret"
  local cmd = "exec sh -c " .. q("echo $$; exec lua5.4 examples/sandbox.lua --port 0 --key " ..
    q(key) .. " --secret " .. q(secret) .. (opts.albums and (" --albums " .. opts.albums) or "") ..
    " 2>/dev/null")
  local proc = assert(io.popen(cmd, "r"))
  local pid = proc:read("l")
  local port = (proc:read("l") or ""):match("^PORT (%d+)")
  if not port then
    os.execute("kill " .. tostring(pid) .. " 2>/dev/null")
    proc:close()
    error("sandbox did not start")
  end
  local self = setmetatable({ proc = proc, pid = pid, port = tonumber(port), key = key, secret = secret,
    origin = "http://127.0.0.1:" .. port, http = core.http_new { timeout = 10 } }, mt)
  return self
end

function methods:get(path)
  local res, msg = self.http:request { method = "GET", url = self.origin .. path }
  assert(res, msg)
  return res.body, res.status
end

function methods:approve(token)
  local body, status = self:get("/_sandbox/approve?oauth_token=" .. core.percent_encode(token))
  assert(status == 200, "approve failed: " .. body)
  return body
end

function methods:mode(m)
  local parts = {}
  for k, v in pairs(m) do parts[#parts + 1] = k .. "=" .. core.percent_encode(tostring(v)) end
  local res = assert(self.http:request { method = "POST", url = self.origin .. "/_sandbox/mode",
    headers = { "Content-Type: application/x-www-form-urlencoded" }, body = table.concat(parts, "&") })
  assert(res.status == 200)
end

function methods:stats()
  return cjson.decode((self:get("/_sandbox/stats")))
end

--- A client for this sandbox (extra options merged in).
function methods:client(extra)
  local smugoauth = require "smugoauth"
  local o = { key = self.key, secret = self.secret, oauth_origin = self.origin,
              api_origin = self.origin, upload_origin = self.origin }
  for k, v in pairs(extra or {}) do o[k] = v end
  return smugoauth.new(o)
end

--- Run the whole flow; returns the access token, secret and the client.
function methods:authorize(extra)
  local c = self:client(extra)
  local rt, rts = assert(c:request_token("oob"))
  local at, ats = assert(c:access_token(rt, rts, self:approve(rt)))
  return at, ats, c
end

function methods:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
    self.proc:close()
    self.http:close()
  end
end

return M
