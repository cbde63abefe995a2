-- httpd_clients.lua -- many misbehaving clients at once, for the httpd spec
-- and the benchmark:
--   lua5.4 spec/support/httpd_clients.lua port=N [count=1100] [mode=idle|slow]
--          [interval=0.5] [lifetime=60]
-- idle: open count connections and send nothing.
-- slow: open count connections and trickle a never-ending request head, one
--       byte per connection every interval seconds, reconnecting whenever the
--       server gives up on one.
-- Prints "READY <n>" once n connections are open, then holds them until the
-- lifetime ends or it is killed. Run it under `ulimit -n` large enough.
local socket = require "socket"

local o = {count = 1100, mode = "idle", interval = 0.5, lifetime = 60}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  assert(k, "bad argument: " .. a)
  o[k] = tonumber(v) or v
end
assert(o.port, "port=N is required")

local HEAD = "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

local function open()
  local s = socket.tcp()
  s:settimeout(5)
  local ok, err = s:connect("127.0.0.1", o.port)
  if not ok then s:close() return nil, err end
  if o.mode == "slow" then s:send(HEAD) end
  return s
end

local conns = {}
for i = 1, o.count do
  local s, err = open()
  if not s then
    io.stderr:write("httpd_clients: connection ", i, ": ", tostring(err), "\n")
    break
  end
  conns[#conns + 1] = s
end
io.stdout:write("READY ", #conns, "\n")
io.stdout:flush()

local stop = socket.gettime() + o.lifetime
while socket.gettime() < stop do
  if o.mode == "slow" then
    for i = 1, #conns do
      local s = conns[i]
      s:settimeout(0)
      local ok = s:send("a")
      if not ok then
        s:close()
        conns[i] = open() or s
      end
    end
  end
  socket.sleep(o.interval)
end
for _, s in ipairs(conns) do s:close() end
