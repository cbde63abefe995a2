--- bench/support/harness.lua -- what the HTTP benchmarks share: the fast
-- local server (bench/support/fastserver.c, built on demand), CPU pinning
-- (client on CPU 0, server on CPU 1; BENCH_PLACEMENT=same|free to change),
-- wall-clock and CPU time, how busy the rest of the machine was, temp dirs,
-- child commands and the printed verdicts. Everything started is stopped by
-- H.cleanup(), which H.main() runs on success and on failure.
--
--     local H = require "support.harness"
--     H.main(function()
--       local srv = H.server{ delay_ms = 50 }     -- srv.origin, srv:stats()
--       ...
--     end)
local core = require "smugoauth.core"

local H = {}

H.now = core.monotime
H.SERVER = "build/bench/fastserver"
H.SERVER_SRC = "bench/support/fastserver.c"
H.PYTHON = "/usr/bin/python3"

local cleanups = {}

--- Quote for /bin/sh.
function H.q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

--- Run a command; returns its stdout, or raises with its output when it fails.
function H.run(cmd)
  local f = assert(io.popen(cmd .. " 2>&1"))
  local out = f:read("a")
  local ok, _, code = f:close()
  if not ok then error("failed (" .. tostring(code) .. "): " .. cmd .. "\n" .. out, 2) end
  return out
end

--- Our process id (the Lua interpreter's).
function H.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

--- A field of /proc/self/status in kB (VmHWM, VmRSS, ...).
function H.status_kb(name)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(name .. ":%s*(%d+) kB"))
end

local CLK_TCK = tonumber((H.run("getconf CLK_TCK"):match("%d+"))) or 100

--- CPU seconds of a process ("self" or a pid): own (user + system) and
-- that of its reaped children (user + system).
function H.cpu_times(pid)
  local f = io.open("/proc/" .. tostring(pid or "self") .. "/stat")
  if not f then return 0, 0 end
  local s = f:read("a")
  f:close()
  local t = {}
  for w in s:match("%) (.*)$"):gmatch("%S+") do t[#t + 1] = w end   -- keep "S": indexes hold
  -- after "(comm) ": state is t[1], so utime t[12], stime t[13], cutime t[14], cstime t[15]
  local n = tonumber
  return (n(t[12]) + n(t[13])) / CLK_TCK, (n(t[14]) + n(t[15])) / CLK_TCK
end

local function cpu_stat()
  local f = assert(io.open("/proc/stat"))
  local line = f:read("l")
  f:close()
  local v = {}
  for n in line:gmatch("%d+") do v[#v + 1] = tonumber(n) end
  -- user nice system idle iowait irq softirq steal
  return { busy = v[1] + v[2] + v[3] + v[6] + v[7], steal = v[8],
           total = v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7] + v[8] }
end

-- CPU seconds used so far by us, our reaped children and the given server.
local function own_cpu(srv)
  local own, kids = H.cpu_times()
  return own + kids + (srv and srv.pid and H.cpu_times(srv.pid) or 0)
end

--- Start watching how busy the machine is apart from the benchmark.
function H.watch_machine(srv)
  H._machine = { stat = cpu_stat(), own = own_cpu(srv), srv = srv }
end

--- How busy other processes kept the CPUs since watch_machine (a line).
function H.machine_note()
  local m = H._machine
  if not m then return "" end
  local s = cpu_stat()
  local total = s.total - m.stat.total
  if total <= 0 then return "" end
  local others = (s.busy - m.stat.busy) - (own_cpu(m.srv) - m.own) * CLK_TCK
  return ("machine: other processes kept the %d CPUs %.0f%% busy during the run, steal %.0f%%%s")
    :format(H.ncpu, math.max(0, others) / total * 100, (s.steal - m.stat.steal) / total * 100,
      others / total > 0.1 and " -- figures are noisy; rerun on a quiet machine" or "")
end

-- Placement (BENCH_PLACEMENT): "split" (default; with two or more CPUs the
-- clients -- this process and its children -- run on CPU 0 and the server on
-- CPU 1), "same" (all on CPU 0) or "free" (no pinning).
local ncpu = tonumber((H.run("nproc"):match("%d+"))) or 1
H.ncpu = ncpu
H.placement = os.getenv("BENCH_PLACEMENT") or "split"
if H.placement ~= "split" and H.placement ~= "same" and H.placement ~= "free" then
  error("BENCH_PLACEMENT must be split, same or free")
end
if os.execute("command -v taskset >/dev/null 2>&1") ~= true or (H.placement == "split" and ncpu < 2) then
  H.placement = "free"
end
H.pinned = H.placement ~= "free"
H.CLIENT_CPU, H.SERVER_CPU = 0, H.placement == "same" and 0 or 1

--- Pin this process (all threads) and so every child started after it to the client CPU.
function H.pin_self()
  if H.pinned then H.run("taskset -a -pc " .. H.CLIENT_CPU .. " " .. H.pid() .. " >/dev/null") end
end

function H.layout()
  if H.pinned then
    return ("client on CPU %d, server on CPU %d, loopback"):format(H.CLIENT_CPU, H.SERVER_CPU)
  end
  return ("%d CPU(s), not pinned, loopback"):format(ncpu)
end

--- Build the server when it is missing or older than its source.
function H.build_server()
  local stale = os.execute(("test -x %s && ! test %s -nt %s"):format(H.SERVER, H.SERVER_SRC, H.SERVER)) ~= true
  if stale then
    H.run(("mkdir -p build/bench && ${CC:-cc} -std=c99 -D_GNU_SOURCE -O2 %s -o %s")
      :format(H.SERVER_SRC, H.SERVER))
  end
end

--- Register fn to run at cleanup (last registered runs first).
function H.on_cleanup(fn) cleanups[#cleanups + 1] = fn end

function H.cleanup()
  for i = #cleanups, 1, -1 do
    local fn = cleanups[i]
    cleanups[i] = nil
    pcall(fn)
  end
end

local Server = {}
Server.__index = Server

--- Start the fast server; opts: delay_ms, body, max_seconds, nofile (raise
-- its open-file limit to that many, for thousands of connections). Returns
-- {pid, port, origin}.
function H.server(opts)
  opts = opts or {}
  H.build_server()
  local args = { H.SERVER, "--max-seconds", tostring(opts.max_seconds or 900) }
  if opts.delay_ms then args[#args + 1] = "--delay-ms"; args[#args + 1] = tostring(opts.delay_ms) end
  if opts.body then args[#args + 1] = "--body"; args[#args + 1] = H.q(opts.body) end
  local cmd = table.concat(args, " ")
  if H.pinned then cmd = "taskset -c " .. H.SERVER_CPU .. " " .. cmd end
  local ulimit = opts.nofile and ("ulimit -n %d 2>/dev/null; "):format(opts.nofile) or ""
  -- exec all the way down: the server is our direct child (its PR_SET_PDEATHSIG
  -- then fires if we die) and the pid printed is the server's
  local proc = assert(io.popen("exec sh -c " .. H.q("echo $$; " .. ulimit .. "exec " .. cmd), "r"))
  local pid = tonumber(proc:read("l"))
  local port = tonumber(((proc:read("l") or ""):match("^PORT (%d+)")))
  local self = setmetatable({ proc = proc, pid = pid, port = port }, Server)
  H.on_cleanup(function() self:stop() end)
  if not pid or not port then error("the benchmark server did not start: " .. cmd) end
  self.origin = "http://127.0.0.1:" .. port
  self.http = core.http_new { timeout = 10 }
  return self
end

--- The server's counters: requests, connections, body_bytes.
function Server:stats()
  local res = assert(self.http:request { method = "GET", url = self.origin .. "/_stats" })
  local t = {}
  for k, v in res.body:gmatch('"([%w_]+)":(%d+)') do t[k] = tonumber(v) end
  return t
end

function Server:stop()
  if self.pid then
    os.execute("kill " .. math.tointeger(self.pid) .. " 2>/dev/null")
    self.pid = nil
    self.proc:close()
    if self.http then self.http:close() end
  end
end

--- A fresh temporary directory, removed at cleanup.
function H.tmpdir()
  local dir = H.run("mktemp -d /tmp/smugoauth-bench.XXXXXX"):match("^(%S+)")
  H.on_cleanup(function() os.execute("rm -rf " .. H.q(dir)) end)
  return dir
end

--- "ok" or "MISSED".
function H.verdict(ok) return ok and "ok" or "MISSED" end

--- x rounded to two decimals (ratios are judged as printed).
function H.round2(x) return math.floor(x * 100 + 0.5) / 100 end

--- Median of an array of numbers.
function H.median(t)
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

--- Run main() with cleanup; a failure prints why and exits 1 (could not run).
function H.main(main)
  local ok, err = xpcall(main, debug.traceback)
  H.cleanup()
  if not ok then
    io.stderr:write("benchmark could not run: ", tostring(err), "\n")
    os.exit(1)
  end
  os.exit(0)
end

return H
