--- Stored access tokens: a small JSON file, mode 0600, written atomically
-- (temporary file, fsync, rename), so a crash or a full disk mid-write
-- leaves the old file intact. A file that others can read is refused.
-- Default path: SMUGOAUTH_CREDENTIALS, else $XDG_CONFIG_HOME/smugoauth/credentials.json,
-- else ~/.config/smugoauth/credentials.json.
-- @module smugoauth.credentials
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local errors = require "smugoauth.errors"

local M = {}

--- The credentials file used when none is given.
function M.default_path(getenv)
  getenv = getenv or os.getenv
  local p = getenv("SMUGOAUTH_CREDENTIALS")
  if p and p ~= "" then return p end
  local base = getenv("XDG_CONFIG_HOME")
  if not base or base == "" then
    local home = getenv("HOME")
    if not home or home == "" then return nil end
    base = home .. "/.config"
  end
  return base .. "/smugoauth/credentials.json"
end

local function no_path()
  return nil, errors.new("config", "no credentials path: set SMUGOAUTH_CREDENTIALS or HOME")
end

--- Save `{token=, secret=, ...}` to path (default `default_path()`).
-- Returns true or nil, err (code "io").
function M.save(data, path)
  if type(data) ~= "table" or type(data.token) ~= "string" or type(data.secret) ~= "string" then
    error("credentials.save: a table with token and secret strings expected", 2)
  end
  path = path or M.default_path()
  if not path then return no_path() end
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then
    local ok, msg = core.mkdir_private(dir)
    if not ok then return nil, errors.new("io", msg, { path = path }) end
  end
  local text = assert(cjson.encode(data))
  local ok, msg = core.write_private(path, text .. "\n")
  if not ok then return nil, errors.new("io", msg, { path = path }) end
  return true
end

--- The largest credentials file load reads (bytes).
M.MAX_SIZE = 4 * 1024 * 1024

--- Load credentials. Returns the table, or nil, err: code "config" when the
-- file is missing (err.missing), refused, unreadable or malformed. The file
-- is read by core.read_private: opened without following a symlink, checked
-- on that descriptor (a regular file, ours, no group or other permission
-- bits, in a directory only we or root own and write) and read from it.
-- A path with a NUL byte raises.
function M.load(path)
  path = path or M.default_path()
  if not path then return no_path() end
  local text, msg, code = core.read_private(path, M.MAX_SIZE)
  if not text then
    if code == "missing" then
      return nil, errors.new("config", path .. ": no stored credentials (run `smugoauth login`)",
        { path = path, missing = true })
    end
    return nil, errors.new("config", msg, { path = path })
  end
  local data = cjson.decode(text)
  if type(data) ~= "table" or type(data.token) ~= "string" or type(data.secret) ~= "string" then
    return nil, errors.new("config", path .. ": not a credentials file (token and secret expected)",
      { path = path })
  end
  return data
end

--- Remove stored credentials; true, or nil, err.
function M.remove(path)
  path = path or M.default_path()
  if not path then return no_path() end
  local ok, msg = os.remove(path)
  if not ok and core.file_mode(path) then return nil, errors.new("io", msg, { path = path }) end
  return true
end

return M
