--- support.web_fixture: run examples/web.lua as a child process for specs,
-- and a small cookie-keeping HTTP client to play the browser.
--
--     local web = require "support.web_fixture"
--     local cfg = web.write_config(sandbox)          -- a temp config.json for a provider
--     local w = web.start{ config = cfg, key_file = "/tmp/.../key" }
--     -- w.port, w.origin ("http://127.0.0.1:<port>", as web.lua printed it), w.pid
--     local b = web.browser()                         -- a cookie jar
--     local res = b:get(w.origin .. "/")              -- res.status, res.headers, res.cookies, res.body
--     w:stop()                                        -- always, in teardown
--
-- Run from the project root (paths are relative to it).
local socket = require "socket"

local M = {}

local files = require "support.files"
local proc = require "support.proc"
local q, read_file = proc.q, files.slurp
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
M.free_port = proc.free_port

local methods = {}
local mt = { __index = methods, __name = "support.WebApp" }

--- Start examples/web.lua. opts: config (path), key_file, host, port (default 0),
-- env (map of extra environment variables), args (extra arguments), cert,
-- cert_key, lifetime (seconds before `timeout` kills it; 300).
-- Returns the handle; raises with the child's stderr when it does not start.
function M.start(opts)
  opts = opts or {}
  local env = {}
  if opts.config then env[#env + 1] = "SMUGOAUTH_CONFIG=" .. q(opts.config) end
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. q(v) end
  local args = {}
  if opts.host then args[#args + 1] = "--host " .. q(opts.host) end
  if opts.port ~= false then args[#args + 1] = "--port " .. q(opts.port or 0) end
  if opts.key_file then args[#args + 1] = "--key-file " .. q(opts.key_file) end
  if opts.cert then args[#args + 1] = "--cert " .. q(opts.cert) .. " --cert-key " .. q(opts.cert_key) end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = q(a) end
  local child = proc.spawn("env " .. table.concat(env, " ") .. " timeout " .. (opts.lifetime or 300) ..
    " lua5.4 examples/web.lua " .. table.concat(args, " "), { lines = 1 })
  local line = child.line or ""
  local self = setmetatable({ child = child, pid = child.pid, errfile = child.err }, mt)
  self.line = line
  local origin = line:match("^Listening on (https?://[^/]+)/")
  local port = origin and origin:match(":(%d+)$")
  if not port then
    local err = child:stderr()
    self:stop()
    error("web.lua did not start: " .. line .. err, 2)
  end
  self.port = tonumber(port)
  self.origin = origin
  return self
end

--- What the child wrote to stderr so far.
function methods:stderr()
  return read_file(self.errfile) or ""
end

--- Stop the child (idempotent).
function methods:stop()
  if self.child then
    self.child:close()
    self.child, self.pid, self.errfile = nil, nil, nil
  end
  if self.script then os.remove(self.script) self.script = nil end
  if self.logfile then os.remove(self.logfile) self.logfile = nil end
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

-- ------------------------------------------------------------ helper servers

-- A Lua script run as a child (lua5.4 with the project's paths), its first
-- output line read: the handle {pid, line, stop}. lifetime: seconds (120).
local function spawn(source, args, lifetime)
  local script = os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(source)
  f:close()
  local child = proc.spawn("timeout " .. (lifetime or 120) .. " lua5.4 " .. q(script) .. " " .. proc.words(args),
                           { lines = 1 })
  local self = setmetatable({ child = child, pid = child.pid, script = script }, mt)
  self.line = child.line or ""
  return self
end

-- The "other local user": listens on host:port, writes the request line of
-- every request it gets to a log file and answers a page of its own.
local SPY = [[
local socket = require "socket"
local host, port, log = arg[1], tonumber(arg[2]), arg[3]
local l, err = socket.bind(host, port)
if not l then io.stdout:write("FAILED ", tostring(err), "\n") os.exit(1) end
io.stdout:write("READY\n")
io.stdout:flush()
l:settimeout(0.2)
while true do
  local c = l:accept()
  if c then
    c:settimeout(5)
    local line = c:receive("*l")
    local f = io.open(log, "a")
    f:write(line or "(no request line)", "\n")
    f:close()
    repeat local h = c:receive("*l") until not h or h == ""
    c:send("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 21\r\n" ..
           "Connection: close\r\n\r\n<p>another user!</p>\n")
    c:close()
  end
end
]]

--- Listen on host:port as another local user would (a child process) and
-- log what arrives. Returns the handle (h:log() -> array of request lines,
-- h:clear(), h:stop()), or nil, reason when the address cannot be bound.
function M.spy(host, port)
  local log = os.tmpname()
  local h = spawn(SPY, { host, tostring(port), log })
  if h.line ~= "READY" then
    local why = h.line
    h:stop()
    os.remove(log)
    return nil, why ~= "" and why or "did not start"
  end
  h.logfile = log
  function h.log()
    local lines = {}
    for l in (read_file(log) or ""):gmatch("[^\n]+") do lines[#lines + 1] = l end
    return lines
  end
  function h.clear() io.open(log, "wb"):close() end
  return h
end

-- An API that answers any GET with a body of the size asked in the query:
--   bytes=N   the size (about, for json/deep)
--   kind=     json ({"Response": {"Items": [strings]}}), deep (a list nested
--             900 deep: small, but its pretty-printed text is huge), text
--   length=0  no Content-Length (the body ends when the connection closes)
local API = [[
local socket = require "socket"
local l = assert(socket.bind("127.0.0.1", 0))
io.stdout:write("PORT ", select(2, l:getsockname()), "\n")
io.stdout:flush()
while true do
  local c = l:accept()
  c:settimeout(30)
  local line = c:receive("*l") or ""
  repeat local h = c:receive("*l") until not h or h == ""
  local q = line:match("^%S+ %S-%?(%S*)") or ""
  local p = {}
  for k, v in q:gmatch("([^&=]+)=([^&]*)") do p[k] = v end
  local n = tonumber(p.bytes) or 100
  local body
  if p.kind == "text" then
    body = string.rep("x", n)
  elseif p.kind == "deep" then
    body = string.rep("[", 900) .. string.rep("0", math.max(1, n // 2), ",") .. string.rep("]", 900)
  else
    local item = '"' .. string.rep("x", 60) .. '"'
    body = '{"Response":{"Items":[' .. string.rep(item, math.max(1, n // 63), ",") .. ']}}'
  end
  local head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
  if p.length ~= "0" then head = head .. "Content-Length: " .. #body .. "\r\n" end
  if c:send(head .. "\r\n") then
    local i = 1
    while i <= #body do
      if not c:send(body, i, math.min(#body, i + 65535)) then break end
      i = i + 65536
    end
  end
  c:close()
  body = nil
  collectgarbage()
end
]]

--- Start the sized-answer API above (a child): the handle has origin, port.
function M.sized_api()
  local h = spawn(API, {})
  local port = h.line:match("^PORT (%d+)$")
  if not port then
    h:stop()
    error("the sized API did not start: " .. h.line, 2)
  end
  h.port = tonumber(port)
  h.origin = "http://127.0.0.1:" .. port
  return h
end

-- ------------------------------------------------------------ HTTP

-- host, port, target of an http URL ("[::1]" keeps its brackets).
local function split_url(url)
  local host, port, target = url:match("^http://(%[[%x:.]+%]):(%d+)(/.*)$")
  if not host then host, port, target = url:match("^http://([^/:]+):(%d+)(/.*)$") end
  assert(host, "request: an http://host:port/... URL expected, got " .. url)
  return host, tonumber(port), target
end

--- The addresses a browser tries for a URL host, in order: "localhost" is
-- ::1 first, then 127.0.0.1 (as browsers do where it resolves to both).
function M.addresses(host)
  if host == "localhost" then return { "::1", "127.0.0.1" } end
  return { host:match("^%[(.*)%]$") or host }
end

-- A connected socket to host:port the way a browser would reach it.
local function connect(host, port, o)
  local err
  for _, addr in ipairs(o.connect and { o.connect } or M.addresses(host)) do
    local s = socket.tcp()
    s:settimeout(15)
    local ok, cerr = s:connect(addr, port)
    if ok then return s end
    s:close()
    err = cerr
  end
  return nil, err
end

--- One HTTP/1.1 request over LuaSocket (plain http only).
-- url: "http://host:port/target"; o: method ("GET"), headers (array of
-- {name, value}; Host is added unless given), body, connect (address to
-- connect to; default: the URL's host, "localhost" as ::1 then 127.0.0.1).
-- Returns {status, headers (lower-case name -> value, repeated joined with
-- "\n"), list ({name, value} in order), set_cookies (array), body} or nil, err.
function M.request(url, o)
  o = o or {}
  local host, port, target = split_url(url)
  local s, cerr = connect(host, port, o)
  if not s then return nil, cerr end
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

--- A cookie jar for one site: cookies are sent back to the host that set
-- them (any port, as browsers do), never to another host name.
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

function Browser:store(res, host)
  if #res.set_cookies > 0 then self.host = host end
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
  local host = split_url(url)
  if c ~= "" and host == self.host then headers[#headers + 1] = { "Cookie", c } end
  local res, err = M.request(url, { method = o.method, headers = headers, body = o.body })
  if res then self:store(res, host) end
  return res, err
end

return M
