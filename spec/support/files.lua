--- support.files: small helpers the specs share (files, temp dirs, bounded waits).
local socket = require "socket"

local M = {}

--- Quote s for /bin/sh (support.proc.q; required here when first used, as
-- support.proc requires this module).
function M.q(s)
  return require("support.proc").q(s)
end

function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- The file's contents, or "" when it cannot be read.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

--- The file's contents, or nil when it cannot be read.
function M.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- A new private (0700) temporary directory.
function M.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. M.q(dir)))
  return dir
end

--- Poll pred every 20 ms until it returns a true value (returned) or
-- seconds (default 10) pass (nil).
function M.wait_for(pred, seconds)
  local deadline = socket.gettime() + (seconds or 10)
  while socket.gettime() < deadline do
    local v = pred()
    if v then return v end
    socket.sleep(0.02)
  end
  return nil
end

return M
