#!/usr/bin/env lua5.4
-- The web OAuth flow, as SmugMug's web.py does it (see smugoauth.apps.web):
--   /            an Authorize link, or once authorized a form for an API path
--   /authorize   request token (callback http://127.0.0.1:<port>/callback) -> SmugMug
--   /callback    access token -> /
--   /test?path=  the signed GET, its JSON pretty-printed
-- Keys come from SMUGOAUTH_CONFIG or ./config.json ({"key": ..., "secret": ...}).
--
-- usage: lua5.4 examples/web.lua [--host ADDR] [--port N] [--key-file PATH] [--config PATH]
--                                [--cert PEM --cert-key PEM]
--                                [--authorize-rate N] [--authorize-burst N]   (make web)
--   --host ADDR     listen on this address (default 127.0.0.1; ::1 for IPv6);
--                   the app is advertised under the address bound, never as
--                   "localhost" (a browser may try ::1 first, where another
--                   local user could listen on the same port)
--   --port N        listen on port N (default: SMUGOAUTH_WEB_PORT or 8090;
--                   0 picks a free port); the callback URL follows the port
--   --key-file P    keep the cookie key in P (created 0600 if absent; a file
--                   readable by group or others is refused). Without it the key
--                   is random at each start, so a restart forgets the browsers.
--   --config P      the config file (default: SMUGOAUTH_CONFIG or ./config.json)
--   --cert, --cert-key  serve https with this certificate (cookies get Secure)
--   --authorize-rate N, --authorize-burst N  provider calls /authorize may make
--                   a minute (default 10) and at once (default 5), for the app
-- Prints "Listening on http://127.0.0.1:<port>/" once ready, then serves
-- until interrupted. Exits 1 with a one-line reason when it cannot start.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local webapp = require "smugoauth.apps.web"

local function fail(msg, code)
  io.stderr:write("web: ", msg, "\n")
  os.exit(code or 1)
end

local USAGE = "usage: web.lua [--host ADDR] [--port N] [--key-file PATH] [--config PATH] " ..
  "[--cert PEM --cert-key PEM] [--authorize-rate N] [--authorize-burst N]"

local opts = {}
local i = 1
while arg[i] do
  local a, v = arg[i], arg[i + 1]
  local flag = ({ ["--host"] = "host", ["--port"] = "port", ["--key-file"] = "key_file",
                  ["--config"] = "config", ["--cert"] = "cert", ["--cert-key"] = "cert_key",
                  ["--authorize-rate"] = "authorize_rate",
                  ["--authorize-burst"] = "authorize_burst" })[a]
  if not flag or v == nil then fail(USAGE, 2) end
  opts[flag] = v
  i = i + 2
end

local port_s = opts.port or os.getenv("SMUGOAUTH_WEB_PORT")
if port_s == nil or port_s == "" then port_s = "8090" end
local port = math.tointeger(tonumber(port_s))
if not port or port < 0 or port > 65535 or not port_s:match("^%d+$") then
  fail("bad port " .. string.format("%q", port_s) .. " (an integer from 0 to 65535)", 2)
end
if (opts.cert == nil) ~= (opts.cert_key == nil) then fail("--cert and --cert-key go together", 2) end
local rate, burst
if opts.authorize_rate then
  rate = tonumber(opts.authorize_rate)
  if not rate or rate ~= rate or rate <= 0 or rate == math.huge then
    fail("bad --authorize-rate " .. string.format("%q", opts.authorize_rate) .. " (a positive number)", 2)
  end
end
if opts.authorize_burst then
  burst = math.tointeger(tonumber(opts.authorize_burst))
  if not burst or burst < 1 or not opts.authorize_burst:match("^%d+$") then
    fail("bad --authorize-burst " .. string.format("%q", opts.authorize_burst) .. " (a positive integer)", 2)
  end
end

-- A server holding many idle connections: collect a little more eagerly than
-- Lua's default (pause 200 lets the heap double between cycles). This is the
-- application's choice; the library leaves the collector alone.
collectgarbage("incremental", 150, 0)

local client, err = smugoauth.from_config(opts.config)
if not client then fail(err.message) end

local app, aerr = webapp.new { client = client, port = port, key_file = opts.key_file,
                               secure = opts.cert ~= nil, authorize_rate = rate,
                               authorize_burst = burst }
if not app then fail(aerr.message) end

local tls
if opts.cert then
  tls = { mode = "server", protocol = "any", certificate = opts.cert, key = opts.cert_key,
          options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" } }
end
local srv, serr = app:serve { host = opts.host or "127.0.0.1", tls = tls }
if not srv then fail(tostring(serr)) end

io.stdout:write("Listening on ", app.origin, "/ (open it in a web browser; Ctrl-C stops)\n")
io.stdout:flush()
local ok, rerr = pcall(srv.run, srv)
srv:close()
if not ok and not tostring(rerr):find("interrupted", 1, true) then
  fail("internal error: " .. tostring(rerr):gsub("\n.*", ""))
end
