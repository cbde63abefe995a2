--- support.proc: child processes and ports for specs -- the one place that
-- spawns, waits for and kills the processes the specs start.
--
--     local proc = require "support.proc"
--     local h = proc.spawn({ "lua5.4", "spec/support/httpd_fixture.lua", "lifetime=120" },
--                          { expect = "^PORT %d+$" })
--     -- h.pid, h.port (from a first line "PORT n"), h.line, h.lines,
--     -- h.out, h.err (the files its stdout and stderr go to)
--     h:kill()                 -- TERM, then KILL after 3 s: the exit status
--     h:close()                -- kill it and remove its files (idempotent; __gc, __close)
--
--     local code, out, err = proc.run({ "bin/smugoauth", "--version" })
--     local h = proc.spawn("lua5.4 examples/console.lua", { stdin = true })
--     h.stdin:write("123456\n")
--     local code, out, err = h:finish(15)     -- close stdin, wait, read, remove
--
--     proc.q("it's")           -- 'it'\''s', for /bin/sh
--     proc.free_port()         -- a port to listen on
--     proc.closed_port()       -- a port nothing listens on ("connection refused")
--
-- A child is a direct child of this process (the shell that starts it execs
-- it: h.pid is the command's own pid, never reused while the handle is open)
-- with its stdout and stderr in files of a private temp directory: reading its
-- first lines never blocks past a deadline, and a child that writes much never
-- stalls on a full pipe. Exit statuses are as the shell's `$?`: the exit code,
-- or 128 + N for a child killed by signal N.
-- Run from the project root (relative paths are relative to it).
local socket = require "socket"
local files = require "support.files"

local M = {}

-- ------------------------------------------------------------ the shell

--- Quote s (any value, through tostring) as one word for /bin/sh.
function M.q(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end
local q = M.q

--- The words of list, each quoted, joined by spaces: a command line.
function M.words(list)
  local w = {}
  for i, a in ipairs(list) do w[i] = q(a) end
  return table.concat(w, " ")
end

-- true when the shell command exited 0
local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  return ok == true and how == "exit" and code == 0
end

local slurp = files.slurp

-- ------------------------------------------------------- pids and ports

--- True while process pid runs (an exited, not yet reaped zombie is gone).
function M.alive(pid)
  local s = pid and slurp("/proc/" .. math.tointeger(tonumber(pid)) .. "/stat")
  local state = s and s:match("%) (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

--- The pid of this process.
function M.my_pid()
  return tonumber((slurp("/proc/self/stat") or ""):match("^(%d+)"))
end

--- A field of /proc/PID/status in kB (pid a number or "self"), e.g.
-- status_kb(pid, "VmRSS"); nil when the process or the field is not there.
function M.status_kb(pid, field)
  return tonumber((slurp("/proc/" .. pid .. "/status") or ""):match(field .. ":%s*(%d+) kB"))
end

--- A port on 127.0.0.1 that was free a moment ago (bound to port 0, then
-- closed): for a server to listen on.
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

--- A port on 127.0.0.1 nothing listens on: connecting to it is refused.
-- (The same bound-then-closed port as free_port, named for what it is for.)
M.closed_port = M.free_port

-- ------------------------------------------------------------ children

local methods = {}
local mt = { __name = "support.Process", __index = methods }

local SPAWN_OPTS = { lines = "number", expect = "string", timeout = "number", env = "table",
                     nofile = "number", stdin = true, stderr = "string", cwd = "string" }

-- Close every descriptor above 2, then become argv[1:].
local CLOSE_FDS = "import os, sys; os.closerange(3, 1 << 20); os.execv(sys.argv[1], sys.argv[1:])"

--- Start a child in the background and return its handle.
-- cmd: a shell command line (a simple command, run with `exec`; it may begin
-- with `env NAME=value ...` or `timeout N`) or an array of words (quoted here).
-- opts (all optional):
--   lines (0; 1 with expect)  wait for this many lines of its stdout (h.lines,
--                             h.line the first; h.port when it is "PORT n")
--   expect (nil)              a pattern the first line must match: otherwise
--                             the child is stopped and spawn raises with the
--                             line and its stderr
--   timeout (20)              seconds to wait for those lines
--   env (nil)                 name -> value set for it (false: unset)
--   nofile (nil)              its `ulimit -n`, when the hard limit allows; it
--                             then inherits no descriptor but 0, 1 and 2
--   stdin (nil: /dev/null)    a string (its whole stdin), or true: a FIFO
--                             whose writing end is h.stdin
--   stderr (nil)              a file for its stderr (default h.err, a temp file)
--   cwd (nil)                 the directory it runs in
function M.spawn(cmd, opts)
  opts = opts or {}
  for k, v in pairs(opts) do
    local want = SPAWN_OPTS[k]
    if not want then error("proc.spawn: unknown option '" .. tostring(k) .. "'", 2) end
    if want ~= true and type(v) ~= want then
      error("proc.spawn: option '" .. k .. "' must be a " .. want, 2)
    end
  end
  if type(cmd) == "table" then cmd = M.words(cmd) end
  if type(cmd) ~= "string" or cmd == "" then error("proc.spawn: a command expected", 2) end
  local dir = files.tmpdir()
  local self = { dir = dir, out = dir .. "/out", err = opts.stderr or dir .. "/err", cmd = cmd }
  local setup = {}
  if opts.cwd then setup[#setup + 1] = "cd " .. q(opts.cwd) .. " || exit 127; " end
  local names = {}
  for k in pairs(opts.env or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = opts.env[k]
    setup[#setup + 1] = v == false and ("unset " .. k .. "; ") or ("export " .. k .. "=" .. q(v) .. "; ")
  end
  local run = "exec " .. cmd
  if opts.nofile then
    setup[#setup + 1] = "ulimit -n " .. math.tointeger(opts.nofile) .. " 2>/dev/null; "
    -- A child with a descriptor limit starts with none but 0-2: it would
    -- inherit this process's sockets (LuaSocket's and libcurl's are not
    -- close-on-exec: servers and kept connections of earlier specs), which
    -- take the low numbers its limit counts.
    run = "exec /usr/bin/python3 -c " .. q(CLOSE_FDS) .. " /bin/sh -c " .. q(run)
  end
  local stdin = "/dev/null"
  if opts.stdin == true then
    stdin = dir .. "/in"
    assert(sh("mkfifo -m 600 " .. q(stdin)), "proc.spawn: cannot make a FIFO")
  elseif type(opts.stdin) == "string" then
    stdin = dir .. "/in"
    local f = assert(io.open(stdin, "wb"))
    f:write(opts.stdin)
    f:close()
  elseif opts.stdin ~= nil then
    error("proc.spawn: option 'stdin' must be a string or true", 2)
  end
  -- popen's shell prints its pid and becomes the command: the pipe only
  -- carries that line, and closing it reaps the child (its exit status).
  self.pipe = assert(io.popen("echo $$; exec <" .. q(stdin) .. " >" .. q(self.out) .. " 2>" .. q(self.err) ..
                              "; " .. table.concat(setup) .. run, "r"))
  self.pid = tonumber(self.pipe:read("l"))
  -- the handle is marked for finalization after the pipe: on collection it is
  -- closed first (killing the child), so the pipe's own finalizer never waits
  setmetatable(self, mt)
  if not self.pid then
    self:close()
    error("proc.spawn: no pid from the shell for: " .. cmd, 2)
  end
  if opts.stdin == true then self.stdin = assert(io.open(stdin, "w")) end   -- as the child opens it
  local want = opts.lines or (opts.expect and 1 or 0)
  if want > 0 then
    local deadline = socket.gettime() + (opts.timeout or 20)
    repeat
      local gone = self:status() ~= nil
      local lines = {}
      for l in (slurp(self.out) or ""):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
      self.lines = lines
      if #lines >= want or gone or socket.gettime() > deadline then break end
      socket.sleep(0.02)
    until false
    self.line = self.lines[1]
    self.port = tonumber((self.line or ""):match("^PORT (%d+)$"))
    if opts.expect and not (self.line or ""):match(opts.expect) then
      self:kill()
      local why = ("proc.spawn: %s: first line %q, stderr: %s"):format(cmd, tostring(self.line),
                                                                       self:stderr())
      self:close()
      error(why, 2)
    end
  end
  return self
end

--- The exit status when the child has exited, else nil (does not wait).
function methods:status()
  if self.code == nil and self.pipe and not M.alive(self.pid) then
    -- exited (a zombie until reaped here): closing the pipe reaps it
    local _, how, n = self.pipe:close()
    self.pipe = nil
    self.code = how == "signal" and 128 + n or n
  end
  return self.code
end

--- Wait at most timeout seconds (default 10) for the child to exit: its exit
-- status, or nil when it still runs.
function methods:wait(timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while self:status() == nil and socket.gettime() < deadline do socket.sleep(0.02) end
  return self:status()
end

--- Send a signal (a name such as "TERM", "KILL", "STOP"; default "TERM") to a
-- child that runs; true when it was sent.
function methods:signal(sig)
  if self:status() ~= nil then return false end
  return sh("kill -" .. (sig or "TERM") .. " " .. math.tointeger(self.pid) .. " 2>/dev/null")
end

--- Stop the child: SIGTERM, then SIGKILL when it has not exited after grace
-- seconds (default 3). Returns its exit status (nil only when even SIGKILL
-- did not end it within 5 s). Idempotent.
function methods:kill(grace)
  if self:status() == nil and self:signal("TERM") and not self:wait(grace or 3) then
    self:signal("KILL")
    self:wait(5)
  end
  return self:status()
end

--- All the child wrote to stdout so far.
function methods:stdout()
  return slurp(self.out) or ""
end

--- All the child wrote to stderr so far.
function methods:stderr()
  return slurp(self.err) or ""
end

--- For a child reading its stdin: close h.stdin, wait at most timeout seconds
-- (default 30; then kill it), and return its exit status, stdout and stderr.
-- Removes its files.
function methods:finish(timeout)
  if self.stdin then self.stdin:close() self.stdin = nil end
  local code = self:wait(timeout or 30) or self:kill()
  local out, err = self:stdout(), self:stderr()
  self:close()
  return code, out, err
end

--- Kill the child (see kill) and remove its files. Idempotent.
function methods:close()
  if self.stdin then self.stdin:close() self.stdin = nil end
  if self.pipe then self:kill() end
  if self.dir then
    sh("rm -rf " .. q(self.dir))
    self.dir = nil
  end
end
mt.__gc = methods.close
mt.__close = methods.close

--- Run a command to its end: its exit status, stdout and stderr. opts: as
-- spawn's (lines and expect do not apply), and timeout (default 30 s: then
-- the child is killed and the status is that of the kill).
function M.run(cmd, opts)
  local o, timeout = {}, 30
  for k, v in pairs(opts or {}) do
    if k == "timeout" then timeout = v else o[k] = v end
  end
  local h = M.spawn(cmd, o)
  return h:finish(timeout)
end

return M
