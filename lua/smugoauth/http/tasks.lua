--- smugoauth.http.tasks: how smugoauth.http.server runs its connections on
-- its loop (smugoauth.loop). Each connection is served by a task
-- (smugoauth.http.connection's `serve`); a task whose connection has ended
-- waits in the server's pool to serve the next one accepted (a task and its
-- coroutine made for every connection, then thrown away, cost more than all
-- the rest the loop does for a short connection). While a handler runs, its
-- connection is watched (a client gone cancels the task). The deadlines of
-- the connections are swept (a timer per wait costs more: see the server),
-- and a connection's end, however it comes, drops it (an internal error is
-- logged with its traceback).
-- @module smugoauth.http.tasks
local core = require "smugoauth.core"
local connection = require "smugoauth.http.connection"

local monotime = core.monotime
local pairs, tostring, pcall = pairs, tostring, pcall
local remove = table.remove
local serve, CHUNK = connection.serve, connection.CHUNK

local POOL = 32              -- tasks kept for the next connections
local POOL_IDLE = 10         -- seconds a kept task waits for its next connection

-- Log through the server's function; a failing logger must not kill the loop.
local function log(srv, msg)
  pcall(srv.log, msg)
end

--- Forget connection c of srv and close its socket (once: the server's
-- close and the connection's end may both come here).
local function drop(srv, c)
  if c.dropped then return end
  c.dropped = true
  if srv.conns[c.fd] == c then
    srv.conns[c.fd] = nil
    srv.nconn = srv.nconn - 1
  end
  local lp = srv.loop
  if not lp.closed then lp:forget_fd(c.fd) end
  c:close()
end

--- The end of connection c of srv (the connection's __close, however serve
-- ended): drop it; an internal error (a bug: a handler's error is a 500) is
-- logged with its traceback, and goes no further (the task is detached).
local function ended(srv, c, err)
  if err ~= nil then
    local t = c.task
    log(srv, "internal error: " .. tostring(t and t.trace or err))
  end
  drop(srv, c)
end

-- After worker w's connection has ended: keep w in the server's pool and
-- wait for the next connection `start` hands it (true), or leave (false)
-- when none came within the server's _pool_idle seconds, the pool is full,
-- the server closes, or the client went away (`w.gone`: the task was
-- cancelled then, and stays so).
local function park(w)
  local srv = w.srv
  local n = srv.nidle
  if w.gone or srv.closed or n >= POOL then return false end
  n = n + 1
  srv.idle[n], srv.nidle = w, n
  srv.loop:sleep(srv._pool_idle)                 -- until start interrupts it, w.conn set
  if w.conn then return true end
  local idle = srv.idle                          -- none came (or the server closes)
  for i = srv.nidle, 1, -1 do
    if idle[i] == w then
      remove(idle, i)
      srv.nidle = srv.nidle - 1
      break
    end
  end
  return false
end

-- The task of worker w: serve its connection (w.conn), then the next ones
-- it is handed while in the pool (see park). (A connection's end is a
-- to-be-closed variable, not a pcall, and this frame is small: the stack of
-- a connection waiting for its request then fits in Lua's first stack size,
-- 1.3 kB less per idle connection. The frame keeps no connection while the
-- worker waits in the pool.)
local function worker(w)
  repeat
    do
      local c = w.conn
      w.conn = nil
      local _ <close> = c                        -- c's end: ended
      serve(c)
      w.gone = c.gone
    end
  until not park(w)
end

--- Serve connection c of srv: by a task of the pool, or a new one (which
-- sets `c.task`).
local function start(srv, c)
  local lp = srv.loop
  local n = srv.nidle
  while n > 0 do
    local w = srv.idle[n]
    srv.idle[n], srv.nidle = nil, n - 1
    w.conn = c
    if lp:interrupt(w.task) then                 -- it waited in the pool: c is its now
      c.task = w.task
      return
    end
    w.conn = nil                                 -- (not waiting for one: it ends)
    n = n - 1
  end
  local w = { srv = srv, conn = c, task = false, gone = false }
  local t = lp:spawn(worker, w)
  t.detached_ok = true                           -- its failure is logged by ended, not the loop's
  w.task, c.task = t, t
end

--- Wake the connections of srv whose deadline has passed while they wait
-- on their socket (they answer 408 or close); not one whose handler runs.
local function sweep(srv)
  local now = monotime()
  srv.now = now
  local lp = srv.loop
  for _, c in pairs(srv.conns) do
    if c.io and c.deadline < now then lp:interrupt(c.task, false, "timeout") end
  end
end

--- The watcher of srv's connections while their handler runs (the
-- handler may yield): `watcher(srv)` -> function(fd) for loop:watch_fd.
-- When a connection's socket is readable, it keeps what comes for the next
-- request (up to CHUNK bytes: past that the watch stops, the rest is read
-- with that request), or, when the client has gone (EOF, reset), cancels
-- the connection's task (what its handler waits for returns at once).
local function watcher(srv)
  local conns = srv.conns
  return function(fd)
    local c = conns[fd]
    if not c or c.gone then return end
    local data, err, partial = c.sock:receive(CHUNK)
    data = data or partial
    if data and data ~= "" then c.buf = c.buf .. data end
    if err == "timeout" or err == "wantread" then
      if #c.buf >= CHUNK then c.lp:unwatch_fd(fd) end
    elseif err then                              -- "closed", a reset; "wantwrite": give up watching
      c.lp:unwatch_fd(fd)
      if err ~= "wantwrite" then
        c.gone = true
        c.task:cancel()
      end
    end
  end
end

--- Drop every connection of srv and cancel its task (a handler that waits
-- returns at once); end the tasks of the pool.
local function close(srv)
  for _, c in pairs(srv.conns) do
    drop(srv, c)
    c.task:cancel()
  end
  local idle = srv.idle
  for i = srv.nidle, 1, -1 do
    local w = idle[i]
    idle[i] = nil
    w.task:cancel()
  end
  srv.nidle = 0
end

return {
  start = start,
  watcher = watcher,
  ended = ended,
  sweep = sweep,
  close = close,
  POOL = POOL,
  POOL_IDLE = POOL_IDLE,
}
