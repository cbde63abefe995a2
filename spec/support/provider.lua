--- support.provider: run the independent OAuth 1.0a test provider
-- (spec/support/oauth_provider.py, oauthlib on the provider side) from specs.
--
--     local provider = require "support.provider"
--     local p = provider.start{ secret = "s&cr=t %2F" }
--     -- p.port, p.origin, p.key, p.secret, p.ca_file (tls only)
--     local verifier = p:approve(request_token)
--     p:mode{ fail429 = 2, retry_after = 1 }
--     local stats = p:stats()
--     p:stop()   -- always, in teardown
--
-- Transport for the helper itself is the curl command (works for HTTPS too);
-- `p:request{...}` exposes it so specs can send raw requests.
-- Run from the project root (paths are relative to it).
local cjson = require "cjson.safe"

local M = {
  PYTHON = "/usr/bin/python3",
  SCRIPT = "spec/support/oauth_provider.py",
  MKCERTS = "spec/support/mkcerts.sh",
  DEFAULT_KEY = "smugoauth-test-key",
  DEFAULT_SECRET = "smugoauth-test-secret",
}

local methods = {}
local mt = { __name = "support.Provider", __index = methods }

-- ------------------------------------------------------------ helpers

local proc = require "support.proc"
local q = proc.q
M.shell_quote = q

--- RFC 3986 percent-encoding (unreserved characters kept).
local function enc(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end
M.encode = enc

--- Decode an application/x-www-form-urlencoded string into a name -> value map.
local function decode_form(s)
  local t = {}
  for pair in (s or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    local function dec(x)
      return (x:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end
    t[dec(k)] = dec(v)
  end
  return t
end
M.decode_form = decode_form

local files = require "support.files"
local read_file, write_file = files.slurp, files.write_file



-- Run a shell command; true when it exited 0.
local function run(cmd)
  local ok, how, code = os.execute(cmd)
  return ok == true and how == "exit" and code == 0
end

--- Make a throw-away test PKI (spec/support/mkcerts.sh); returns its directory.
function M.mkcerts(dir)
  local p = assert(io.popen("sh " .. q(M.MKCERTS) .. (dir and " " .. q(dir) or "") .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "mkcerts.sh failed: " .. out)
  return (out:gsub("%s+$", ""))
end

--- Remove a directory made by mkcerts (or any temp dir).
function M.remove_dir(dir)
  if dir and dir:match("^/tmp/") then run("rm -rf " .. q(dir)) end
end

-- --------------------------------------------------------------- curl

--- One HTTP request through the curl command.
-- req: url (or path, relative to origin when called as a method), method ("GET"),
-- headers (map name -> value, or array of {name, value}), body (string),
-- ca_file (for https), timeout (10 s), extra (array of extra curl arguments).
-- Returns { status = n, body = s, headers = { [lower-case name] = value } }
-- or nil, err when curl itself fails (connection refused, TLS error, ...).
function M.request(req)
  local args = { "curl", "-sS", "-g", "--max-time", tostring(req.timeout or 10) }
  local bodyfile, hdrfile, errfile, reqfile = os.tmpname(), os.tmpname(), os.tmpname(), nil
  local method = (req.method or "GET"):upper()
  if method == "HEAD" then args[#args + 1] = "--head" else
    args[#args + 1] = "-X"; args[#args + 1] = method
  end
  local headers = req.headers or {}
  local hlist = {}
  if headers[1] then
    for _, h in ipairs(headers) do hlist[#hlist + 1] = h end
  else
    for k, v in pairs(headers) do hlist[#hlist + 1] = { k, v } end
    table.sort(hlist, function(a, b) return a[1] < b[1] end)
  end
  for _, h in ipairs(hlist) do
    args[#args + 1] = "-H"
    args[#args + 1] = h[2] == "" and (h[1] .. ";") or (h[1] .. ": " .. h[2])
  end
  if req.body then
    reqfile = os.tmpname()
    write_file(reqfile, req.body)
    args[#args + 1] = "--data-binary"
    args[#args + 1] = "@" .. reqfile
  end
  if req.ca_file then args[#args + 1] = "--cacert"; args[#args + 1] = req.ca_file end
  for _, a in ipairs(req.extra or {}) do args[#args + 1] = a end
  for _, a in ipairs{ "-o", bodyfile, "-D", hdrfile, "-w", "%{http_code}", req.url } do
    args[#args + 1] = a
  end
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = q(a) end
  local p = assert(io.popen(table.concat(quoted, " ") .. " 2>" .. q(errfile)))
  local code = p:read("a")
  local ok = p:close()
  local body, head, err = read_file(bodyfile), read_file(hdrfile), read_file(errfile)
  for _, f in ipairs{ bodyfile, hdrfile, errfile, reqfile } do os.remove(f) end
  if not ok then return nil, "curl: " .. (err or ""):gsub("%s+$", "") end
  -- the last header block is the final response (skip 100 Continue)
  local blocks = {}
  for block in (head or ""):gsub("\r\n", "\n"):gmatch("(HTTP/[^\n]*\n.-)\n\n") do
    blocks[#blocks + 1] = block
  end
  local res = { status = tonumber(code), body = body or "", headers = {} }
  local last = blocks[#blocks] or ""
  for name, value in last:gmatch("\n([^:\n]+):[ \t]*([^\n]*)") do
    local k = name:lower()
    res.headers[k] = res.headers[k] and (res.headers[k] .. ", " .. value) or value
  end
  return res
end

-- ----------------------------------------------------------- provider

local START_OPTS = {
  tls = true, key = true, secret = true, pki = true, cert_name = true,
  rsa_public_key = true, timestamp_window = true, albums = true,
  token_secret_suffix = true, verbose = true, timeout = true,
}

--- Start a provider. Options (all optional):
--   tls (false)              serve HTTPS; a fresh PKI is made unless `pki` is given
--   pki (nil)                directory from provider.mkcerts() to use (kept on stop)
--   cert_name ("server")     which <name>.pem/.key of the PKI to serve
--                            ("server", "wronghost", "expired", "untrusted")
--   key, secret              consumer key and secret (DEFAULT_KEY, DEFAULT_SECRET)
--   rsa_public_key (nil)     PEM file: enables RSA-SHA1/256/512 for the consumer
--   timestamp_window (300)   accepted clock skew, seconds
--   albums (250)             albums of user "tester"
--   token_secret_suffix ("") appended to every issued token secret
--   verbose (false)          provider logs to its stderr file (p.stderr_file)
--   timeout (10)             seconds to wait for the PORT line
-- Returns the provider object; raises when it does not come up.
function M.start(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not START_OPTS[k] then error("provider.start: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local self = setmetatable({
    key = opts.key or M.DEFAULT_KEY,
    secret = opts.secret or M.DEFAULT_SECRET,
    tls = opts.tls and true or false,
  }, mt)
  local args = { M.PYTHON, M.SCRIPT, "--port", "0",
                 "--consumer-key", self.key, "--consumer-secret", self.secret }
  local parent = proc.my_pid()
  if parent then args[#args + 1] = "--parent-pid"; args[#args + 1] = tostring(parent) end
  if self.tls then
    if opts.pki then self.pki_dir = opts.pki else
      self.pki_dir = M.mkcerts()
      self.owns_pki = true
    end
    local name = opts.cert_name or "server"
    self.ca_file = self.pki_dir .. "/ca.pem"
    self.cert_file = self.pki_dir .. "/" .. name .. ".pem"
    args[#args + 1] = "--cert"; args[#args + 1] = self.cert_file
    args[#args + 1] = "--key"; args[#args + 1] = self.pki_dir .. "/" .. name .. ".key"
  end
  for opt, flag in pairs{ rsa_public_key = "--rsa-public-key", timestamp_window = "--timestamp-window",
                          albums = "--albums", token_secret_suffix = "--token-secret-suffix" } do
    if opts[opt] ~= nil then args[#args + 1] = flag .. "=" .. tostring(opts[opt]) end
  end
  if opts.verbose then args[#args + 1] = "--verbose" end
  local ok, child = pcall(proc.spawn, args, { lines = 1, timeout = opts.timeout or 10 })
  if not ok then self:stop() error("provider.start: " .. tostring(child), 2) end
  self.child, self.pid = child, child.pid
  self.stdout_file, self.stderr_file = child.out, child.err
  self.port = child.port
  if not self.port then
    local err = child:stderr()
    self:stop()
    error("provider.start: the provider did not come up: " .. err, 2)
  end
  self.origin = (self.tls and "https" or "http") .. "://127.0.0.1:" .. self.port
  return self
end

--- The absolute URL of a path on this provider.
function methods:url(path)
  return self.origin .. path
end

--- M.request with url defaulting to origin .. req.path and the provider's CA.
function methods:request(req)
  local r = {}
  for k, v in pairs(req) do r[k] = v end
  r.url = r.url or self:url(assert(r.path, "request: url or path expected"))
  r.path = nil
  if self.tls and r.ca_file == nil then r.ca_file = self.ca_file end
  return M.request(r)
end

local function control(self, method, path, body)
  local res, err = self:request{ method = method, path = path, body = body,
    headers = body and { ["Content-Type"] = "application/x-www-form-urlencoded" } or nil }
  if not res then error("provider " .. path .. ": " .. err, 3) end
  return res
end

--- Authorize a request token as the user would: returns the verifier and, for a
-- callback token, the redirect URL. opts: Access, Permissions (SmugMug's).
-- Returns nil, message for an unknown or used token.
function methods:approve(token, opts)
  local path = "/_test/approve?oauth_token=" .. enc(token)
  for _, k in ipairs{ "Access", "Permissions" } do
    if opts and opts[k] then path = path .. "&" .. k .. "=" .. enc(opts[k]) end
  end
  local res = control(self, "GET", path)
  if res.status ~= 200 then return nil, res.body end
  local verifier, redirect = res.body:match("^([^\n]*)\n([^\n]*)")
  return verifier, redirect ~= "" and redirect or nil
end

--- A fresh access token (no OAuth dance): returns token, secret.
-- opts: Access, Permissions recorded with it.
function methods:access_token(opts)
  local parts = {}
  for _, k in ipairs{ "Access", "Permissions" } do
    if opts and opts[k] then parts[#parts + 1] = k .. "=" .. enc(opts[k]) end
  end
  local res = control(self, "POST", "/_test/access_token", table.concat(parts, "&"))
  local t = decode_form(res.body)
  return t.oauth_token, t.oauth_token_secret
end

--- Revoke an access token (later use answers token_revoked); true if it existed.
function methods:revoke(token)
  return control(self, "POST", "/_test/revoke", "oauth_token=" .. enc(token)).status == 200
end

--- Set fault modes, e.g. { fail429 = 2, retry_after = 1 }, { fail503 = 1 },
-- { delay = 2, delay_count = 1 }, { scope = "api" | "oauth" | "all" }, { clear = 1 }.
-- Returns the mode now in force (a table).
function methods:mode(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = enc(k) .. "=" .. enc(v) end
  table.sort(parts)   -- faults queue in name order (fail429 before fail503)
  local res = control(self, "POST", "/_test/mode", table.concat(parts, "&"))
  if res.status ~= 200 then error("provider mode: " .. res.body, 2) end
  return cjson.decode(res.body)
end

--- Counters and the request log, decoded from /_test/stats:
-- total, requests (path -> n), signatures_verified, signatures_failed,
-- problems (oauth_problem -> n), faults_served (status -> n), nonces (nonce -> n),
-- nonces_seen, log (array of {method, path, query, nonce, timestamp,
-- signature_method, token, status, fault, time}), mode.
function methods:stats()
  local res = control(self, "GET", "/_test/stats")
  return assert(cjson.decode(res.body))
end

--- Clear the counters, the log and the fault modes (tokens are kept).
function methods:reset()
  control(self, "POST", "/_test/reset", "")
end

--- Stop the provider (SIGTERM, then SIGKILL after 3 s) and remove its files.
-- Idempotent.
function methods:stop()
  if self.child then
    self.child:close()
    self.child, self.pid, self.stdout_file, self.stderr_file = nil, nil, nil, nil
  end
  if self.owns_pki then M.remove_dir(self.pki_dir); self.owns_pki = nil end
end

mt.__gc = methods.stop
mt.__close = methods.stop

M.decode_json = cjson.decode

return M
