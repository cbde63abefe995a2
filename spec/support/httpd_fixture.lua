-- httpd_fixture.lua -- the server the httpd spec (and the benchmark) talks to.
--   lua5.4 spec/support/httpd_fixture.lua [name=value ...]
-- Options are smugoauth.http.server options given as name=value (numbers converted),
-- plus lifetime=<seconds> (default 120; the process always exits by then) and
-- tls_dir=<dir> (serve https with DIR/server.pem and DIR/server.key).
-- body=<declaration> sets the option `body`: "none", "all" (true), or a
-- comma-separated list of path[:max bytes] (no max: max_body); the default,
-- "/echo,/small:16,/body", lets /echo and /body take bodies up to max_body and
-- /small 16 bytes.
-- Prints "PORT <n>" on stdout once listening, then serves until /stop,
-- the lifetime ends, or it is killed.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local html = require "smugoauth.http.html"
local core = require "smugoauth.core"
local fixture = require "support.fixture_server"

-- the option `body` from its command-line form
local function body_decl(v)
  if v == "none" then return nil end
  if v == "all" then return true end
  local t = {}
  for item in v:gmatch("[^,]+") do
    local path, limit = item:match("^([^:]+):?(%d*)$")
    assert(path, "bad body declaration: " .. item)
    t[path] = tonumber(limit) or true
  end
  return t
end

local opts, lifetime = fixture.args(arg, {body = body_decl("/echo,/small:16,/body")}, function(k, v, o)
  if k == "body" then o.body = body_decl(v)
  elseif k == "tls_dir" then
    o.tls = {mode = "server", protocol = "any", key = v .. "/server.key",
             certificate = v .. "/server.pem", options = {"all"}}
  else return false end
  return true
end)

local srv
local big = string.rep("x", 100000)
local routes = {
  ["/"] = function() return 200, {["Content-Type"] = "text/plain"}, "hello" end,
  ["/echo"] = function(req)
    local t = {}
    t[#t + 1] = "method=" .. req.method
    t[#t + 1] = "target=" .. req.target
    t[#t + 1] = "path=" .. req.path
    t[#t + 1] = "query=" .. req.query
    t[#t + 1] = "version=" .. req.version
    t[#t + 1] = "scheme=" .. req.scheme
    t[#t + 1] = "peer=" .. req.peer
    t[#t + 1] = "body=" .. req.body
    local names = {}
    for k in pairs(req.params) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do t[#t + 1] = "param." .. k .. "=" .. req.params[k] end
    for i, p in ipairs(req.params_list) do t[#t + 1] = "pair." .. i .. "=" .. p[1] .. "=" .. p[2] end
    names = {}
    for k in pairs(req.cookies) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do t[#t + 1] = "cookie." .. k .. "=" .. req.cookies[k] end
    local form = req:form()
    names = {}
    for k in pairs(form) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do t[#t + 1] = "form." .. k .. "=" .. form[k] end
    names = {}
    for k in pairs(req.headers) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do t[#t + 1] = "header." .. k .. "=" .. req.headers[k] end
    return 200, {["Content-Type"] = "text/plain"}, table.concat(t, "\n") .. "\n"
  end,
  ["/cookies"] = function()
    return 200, {{"Set-Cookie", "a=1; Path=/"}, {"Set-Cookie", "b=2; Path=/"},
                 {"Content-Type", "text/plain"}}, "two cookies"
  end,
  ["/multi"] = function()
    return 201, {["Set-Cookie"] = {"c=3", "d=4"}, ["X-Num"] = 42}, {"a", "b", "c"}
  end,
  ["/empty"] = function() return 204, {}, "" end,
  ["/big"] = function() return 200, nil, big end,
  ["/error"] = function() error("boom from handler") end,
  ["/inject"] = function() return 200, {["X-Bad"] = "a\r\nSet-Cookie: evil=1"}, "no" end,
  ["/inject-name"] = function() return 200, {{"X-Bad\r\nEvil", "1"}}, "no" end,
  ["/nul"] = function() return 200, {["X-Bad"] = "a\0b"}, "no" end,
  ["/badstatus"] = function() return "200", {}, "no" end,
  ["/close"] = function() return 200, {Connection = "close"}, "bye" end,
  ["/html"] = function(req)
    return 200, {["Content-Type"] = "text/html"}, "<p>" .. html.escape(req.query) .. "</p>"
  end,
  ["/stop"] = function() srv:stop() return 200, {}, "stopping" end,
  -- answers with the status ?code= (its status line shows the reason phrase)
  ["/status"] = function(req) return tonumber(req.params.code), {}, "status" end,
  ["/conns"] = function() return 200, {}, tostring(srv:connections()) end,
  -- the Lua heap in kB after a full collection
  ["/mem"] = function()
    collectgarbage("collect")
    collectgarbage("collect")
    return 200, {}, string.format("%.0f", collectgarbage("count"))
  end,
  -- the request body as it is (any bytes)
  ["/body"] = function(req) return 200, {["Content-Type"] = "application/octet-stream"}, req.body end,
  -- /small takes a body of 16 bytes at most (see body=)
  ["/small"] = function(req) return 200, {}, "small " .. #req.body end,
  -- a handler that runs for ?wait= seconds (busy, like a slow computation),
  -- then answers ?size= bytes
  ["/slowbig"] = function(req)
    local stop = core.monotime() + (tonumber(req.params.wait) or 0.5)
    while core.monotime() < stop do end
    return 200, {["Content-Type"] = "application/octet-stream"},
      string.rep("s", tonumber(req.params.size) or 15000000)
  end,
}

opts.handler = function(req)
  if req.path:sub(1, 5) == "/raw/" then return 200, {}, req.path .. "|" .. req.query end
  local route = routes[req.path]
  if not route then return 404, {["Content-Type"] = "text/plain"}, "not found\n" end
  return route(req)
end
srv = fixture.listen(opts, "fixture")
fixture.serve(srv, lifetime)
