--- support.web_fixture: run examples/web.lua as a child process for specs,
-- and a small cookie-keeping HTTP client to play the browser.
--
--     local web = require "support.web_fixture"
--     local cfg = web.write_config(sandbox)          -- a temp config.json for a provider
--     local w = web.start{ config = cfg, key_file = "/tmp/.../key" }
--     -- w.port, w.origin ("http://localhost:<port>"), w.pid
--     local b = web.browser()                         -- a cookie jar
--     local res = b:get(w.origin .. "/")              -- res.status, res.headers, res.cookies, res.body
--     w:stop()                                        -- always, in teardown
--
-- Run from the project root (paths are relative to it).
local socket = require "socket"

local M = {}

local files = require "support.files"
local q, read_file = files.q, files.slurp
M.q, M.read_file = q, read_file

--- A fresh private temp directory (mode 0700); removed by M.remove_dir.
function M.tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/smugoauth-web.XXXXXX"))
  local dir = p:read("l")
  p:close()
  return assert(dir)
end

function M.remove_dir(dir)
  if dir and dir:match("^/tmp/smugoauth%-web%.") then os.execute("rm -rf " .. q(dir)) end
end

--- Write a config.json for a provider ({origin, key, secret}) into dir.
function M.write_config(dir, p)
  local json = require "smugoauth.json"
  local path = dir .. "/config.json"
  local f = assert(io.open(path, "wb"))
  f:write(json.compact { key = p.key, secret = p.secret, oauth_origin = p.origin,
                         api_origin = p.origin, upload_origin = p.origin, ca_file = p.ca_file })
  f:close()
  return path
end

--- A port that was free a moment ago.
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local methods = {}
local mt = { __index = methods, __name = "support.WebApp" }

--- Start examples/web.lua. opts: config (path), key_file, port (default 0),
-- env (map of extra environment variables), args (extra arguments), cert,
-- cert_key, lifetime (seconds before `timeout` kills it; 300).
-- Returns the handle; raises with the child's stderr when it does not start.
function M.start(opts)
  opts = opts or {}
  local errfile = os.tmpname()
  local env = {}
  if opts.config then env[#env + 1] = "SMUGOAUTH_CONFIG=" .. q(opts.config) end
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. q(v) end
  local args = {}
  if opts.port ~= false then args[#args + 1] = "--port " .. q(opts.port or 0) end
  if opts.key_file then args[#args + 1] = "--key-file " .. q(opts.key_file) end
  if opts.cert then args[#args + 1] = "--cert " .. q(opts.cert) .. " --cert-key " .. q(opts.cert_key) end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = q(a) end
  local cmd = "echo PID $$; exec env " .. table.concat(env, " ") .. " timeout " ..
    (opts.lifetime or 300) .. " lua5.4 examples/web.lua " .. table.concat(args, " ") ..
    " 2>" .. q(errfile) .. " </dev/null"
  local pipe = assert(io.popen(cmd, "r"))
  local pid = tonumber((pipe:read("l") or ""):match("^PID (%d+)"))
  local line = pipe:read("l") or ""
  local self = setmetatable({ pid = pid, pipe = pipe, errfile = errfile }, mt)
  local port = line:match("^Listening on https?://localhost:(%d+)/")
  if not port then
    local err = read_file(errfile) or ""
    self:stop()
    error("web.lua did not start: " .. line .. err, 2)
  end
  self.port = tonumber(port)
  self.origin = line:match("^Listening on (https?://localhost:%d+)/")
  return self
end

--- What the child wrote to stderr so far.
function methods:stderr()
  return read_file(self.errfile) or ""
end

--- Stop the child (idempotent).
function methods:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
    self.pipe:close()
  end
  if self.errfile then os.remove(self.errfile) self.errfile = nil end
end
mt.__gc = methods.stop
mt.__close = methods.stop

--- Run examples/web.lua expecting it to exit: returns exit code, stdout, stderr.
function M.run(opts)
  opts = opts or {}
  local errfile = os.tmpname()
  local env = {}
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. q(v) end
  local args = {}
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = q(a) end
  local p = assert(io.popen("env " .. table.concat(env, " ") .. " timeout 20 lua5.4 examples/web.lua " ..
    table.concat(args, " ") .. " 2>" .. q(errfile) .. " </dev/null; echo \"EXIT $?\""))
  local out = p:read("a")
  p:close()
  local err = read_file(errfile) or ""
  os.remove(errfile)
  local code = tonumber(out:match("EXIT (%d+)\n$"))
  return code, (out:gsub("EXIT %d+\n$", "")), err
end

-- ------------------------------------------------------------ HTTP

--- One HTTP/1.1 request over LuaSocket (plain http only).
-- url: "http://host:port/target"; o: method ("GET"), headers (array of
-- {name, value}; Host is added unless given), body, connect (address to
-- connect to; default 127.0.0.1).
-- Returns {status, headers (lower-case name -> value, repeated joined with
-- "\n"), list ({name, value} in order), set_cookies (array), body} or nil, err.
function M.request(url, o)
  o = o or {}
  local host, port, target = url:match("^http://([^/:]+):(%d+)(/.*)$")
  assert(host, "request: an http://host:port/... URL expected, got " .. url)
  local s = socket.tcp()
  s:settimeout(15)
  local ok, cerr = s:connect(o.connect or "127.0.0.1", tonumber(port))
  if not ok then s:close() return nil, cerr end
  local lines = { (o.method or "GET") .. " " .. target .. " HTTP/1.1" }
  local has_host = false
  for _, h in ipairs(o.headers or {}) do
    if h[1]:lower() == "host" then has_host = true end
    lines[#lines + 1] = h[1] .. ": " .. h[2]
  end
  if not has_host then table.insert(lines, 2, "Host: " .. host .. ":" .. port) end
  if o.body then lines[#lines + 1] = "Content-Length: " .. #o.body end
  lines[#lines + 1] = "Connection: close"
  s:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (o.body or ""))
  local raw, err, partial = s:receive("*a")
  s:close()
  raw = raw or partial
  if not raw or raw == "" then return nil, err or "empty response" end
  local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
  if not head then return nil, "malformed response" end
  local res = { headers = {}, list = {}, set_cookies = {}, raw = raw }
  res.status = tonumber(head:match("^HTTP/1%.[01] (%d%d%d)"))
  for name, value in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do
    local k = name:lower()
    res.list[#res.list + 1] = { name, value }
    res.headers[k] = res.headers[k] and (res.headers[k] .. "\n" .. value) or value
    if k == "set-cookie" then res.set_cookies[#res.set_cookies + 1] = value end
  end
  local len = tonumber(res.headers["content-length"])
  res.body = len and body:sub(1, len) or body
  return res
end

--- Parse a Set-Cookie value: name, value, attributes (lower-case name ->
-- value or true).
function M.parse_set_cookie(sc)
  local name, value, rest = sc:match("^([^=;]+)=([^;]*)(.*)$")
  local attrs = {}
  for a in (rest or ""):gmatch(";%s*([^;]+)") do
    local k, v = a:match("^([^=]+)=(.*)$")
    if k then attrs[k:lower()] = v else attrs[a:lower()] = true end
  end
  return name, value, attrs
end

local Browser = {}
local browser_mt = { __index = Browser }

--- A cookie jar for one site (cookies are kept whatever the host).
function M.browser()
  return setmetatable({ jar = {} }, browser_mt)
end

function Browser:cookie_header()
  local names = {}
  for k in pairs(self.jar) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. self.jar[k] end
  return table.concat(parts, "; ")
end

function Browser:store(res)
  for _, sc in ipairs(res.set_cookies) do
    local name, value, attrs = M.parse_set_cookie(sc)
    if attrs["max-age"] == "0" or value == "" then self.jar[name] = nil else self.jar[name] = value end
  end
end

--- GET (or o.method) with the jar's cookies; stores the cookies it is given.
function Browser:get(url, o)
  o = o or {}
  local headers = {}
  for _, h in ipairs(o.headers or {}) do headers[#headers + 1] = h end
  local c = self:cookie_header()
  if c ~= "" and url:match("^http://localhost:") then headers[#headers + 1] = { "Cookie", c } end
  local res, err = M.request(url, { method = o.method, headers = headers, body = o.body })
  if res then self:store(res) end
  return res, err
end

return M
