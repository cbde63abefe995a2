--- support.fixture_server: the main of a server fixture that a spec runs as
-- a child process (httpd_fixture.lua, abuse_fixture.lua): smugoauth.http.server
-- options from name=value arguments, "PORT <n>" on stdout once listening,
-- then serving until the server is stopped (a /stop route) or its lifetime
-- ends (the process always exits by then).
--
--     local fixture = require "support.fixture_server"
--     local opts, lifetime = fixture.args(arg, {body = true})   -- lifetime=S (120)
--     opts.handler = function(req) ... end
--     local srv = fixture.listen(opts, "my_fixture")
--     fixture.serve(srv, lifetime)
local server = require "smugoauth.http.server"
local core = require "smugoauth.core"

local M = {}

--- Options from name=value arguments (numbers converted) over defaults;
-- lifetime=S sets the lifetime (120 s). extra(k, v, opts), when given, may
-- take an argument itself (it returns true then).
function M.args(argv, defaults, extra)
  local opts, lifetime = defaults or {}, 120
  for _, a in ipairs(argv) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    assert(k, "bad argument: " .. a)
    if k == "lifetime" then lifetime = tonumber(v)
    elseif not (extra and extra(k, v, opts)) then opts[k] = tonumber(v) or v end
  end
  return opts, lifetime
end

--- Listen with opts and say "PORT <n>"; exits 1 (the message on stderr,
-- prefixed with name) when it cannot.
function M.listen(opts, name)
  local srv, err = server.new(opts)
  if not srv then
    io.stderr:write(name, ": ", tostring(err), "\n")
    os.exit(1)
  end
  io.stdout:write("PORT ", srv.port, "\n")
  io.stdout:flush()
  return srv
end

--- Serve until srv is stopped or lifetime seconds have passed, then close it.
function M.serve(srv, lifetime)
  local deadline = core.monotime() + lifetime
  while not srv.stopped and core.monotime() < deadline do
    assert(srv:step(0.25))
  end
  srv:close()
end

return M
