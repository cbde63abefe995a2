-- abuse_fixture.lua -- the server spec/http/abuse_spec.lua attacks.
--   lua5.4 spec/support/abuse_fixture.lua [name=value ...]
-- Options are smugoauth.http.server options given as name=value (numbers converted),
-- plus lifetime=<seconds> (default 120; the process always exits by then).
-- /echo takes a body up to max_body (option body = {["/echo"] = true}); no
-- other path takes one.
-- Prints "PORT <n>" on stdout once listening, then serves until /stop, the
-- lifetime ends, or it is killed. Routes:
--   /            "hello"
--   /echo        "<method> <body length> <body>" (the framing the loop saw)
--   /smuggled*   counts a hit (the abuse payloads hide such requests where a
--                correct parser never finds one) and answers "SMUGGLED"
--   /stats       "conns=N lua_kb=K smuggled=S requests=R"
--   /gc          a full collection first, then the same as /stats
--   /stop        stops the server
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local fixture = require "support.fixture_server"

local opts, lifetime = fixture.args(arg, {body = {["/echo"] = true}})

local srv
local smuggled, requests = 0, 0
local TEXT = {["Content-Type"] = "text/plain"}

local function stats()
  return 200, TEXT, ("conns=%d lua_kb=%.0f smuggled=%d requests=%d"):format(
    srv:connections(), collectgarbage("count"), smuggled, requests)
end

opts.handler = function(req)
  requests = requests + 1
  local path = req.path
  if path == "/" then return 200, TEXT, "hello" end
  if path == "/echo" then return 200, TEXT, req.method .. " " .. #req.body .. " " .. req.body end
  if path:sub(1, 9) == "/smuggled" then
    smuggled = smuggled + 1
    return 200, TEXT, "SMUGGLED"
  end
  if path == "/stats" then return stats() end
  if path == "/gc" then
    collectgarbage("collect")
    collectgarbage("collect")
    return stats()
  end
  if path == "/stop" then
    srv:stop()
    return 200, TEXT, "stopping"
  end
  return 404, TEXT, "not found\n"
end

srv = fixture.listen(opts, "abuse_fixture")
fixture.serve(srv, lifetime)
