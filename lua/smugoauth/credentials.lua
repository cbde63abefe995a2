--- Stored access tokens: a small JSON file, mode 0600, written atomically
-- (temporary file, fsync, rename), so a crash or a full disk mid-write
-- leaves the old file intact. A file that others can read is refused.
-- A record holds token, secret, and (from client:save_credentials) the key
-- and origins it was issued for, which `check` compares with a client.
-- Default path: SMUGOAUTH_CREDENTIALS, else $XDG_CONFIG_HOME/smugoauth/credentials.json,
-- else ~/.config/smugoauth/credentials.json.
-- @module smugoauth.credentials
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local errors = require "smugoauth.errors"
local config = require "smugoauth.config"

--- The credentials file used when none is given: SMUGOAUTH_CREDENTIALS,
-- else `credentials.json` in smugoauth.config's folder (`config.dir`).
local function default_path(getenv)
  local p = config.env("SMUGOAUTH_CREDENTIALS", getenv)
  if p then return p end
  local dir = config.dir(getenv)
  return dir and (dir .. "/credentials.json")
end

local function no_path()
  return nil, errors.new("config", "no credentials path: set SMUGOAUTH_CREDENTIALS or HOME")
end

--- Save `{token=, secret=, ...}` to path (default `default_path()`).
-- Returns true or nil, err (code "io").
local function save(data, path)
  if type(data) ~= "table" or type(data.token) ~= "string" or type(data.secret) ~= "string" then
    error("credentials.save: a table with token and secret strings expected", 2)
  end
  path = path or default_path()
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
local MAX_SIZE = 4 * 1024 * 1024

--- Load credentials. Returns the table, or nil, err: code "config" when the
-- file is missing (err.missing), refused, unreadable or malformed. The file
-- is read by core.read_private: opened without following a symlink, checked
-- on that descriptor (a regular file, ours, no group or other permission
-- bits, in a directory only we or root own and write) and read from it.
-- A path with a NUL byte raises.
local function load(path)
  path = path or default_path()
  if not path then return no_path() end
  local text, msg, code = core.read_private(path, MAX_SIZE)
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

-- The origins a record is checked for, in the order they are checked.
local ORIGINS = { "api_origin", "upload_origin", "oauth_origin" }

-- What a record says it was issued for: its own fields, and for those that
-- files written by older versions (or by hand) leave out, what those meant.
local function issued_for(record, defaults)
  local t = { api_origin = record.api_origin, upload_origin = record.upload_origin,
              oauth_origin = record.oauth_origin }
  local old = false
  if type(t.api_origin) ~= "string" then t.api_origin, old = defaults.api_origin, true end
  for _, k in ipairs { "upload_origin", "oauth_origin" } do
    if type(t[k]) ~= "string" then
      t[k] = t.api_origin == defaults.api_origin and defaults[k] or t.api_origin
      old = true
    end
  end
  return t, old
end

--- Check that stored credentials belong to a client's consumer and origins,
-- before any request sends them anywhere:
-- `credentials.check(record, client [, opts])` -> true, or nil, err with code
-- "config", `err.field` ("key" or the origin that differs), `err.wanted` (the
-- client's value) and `err.issued` (the record's). Misuse raises.
--
-- `client:save_credentials` records key, oauth_origin, api_origin and
-- upload_origin; each must equal the client's. Files written before (key and
-- api_origin only) or by hand keep working by this rule:
--   * no api_origin: SmugMug's (https://api.smugmug.com) is meant;
--   * no oauth_origin / upload_origin: SmugMug's when the api_origin is
--     SmugMug's, else the api_origin itself (one server, as the sandbox);
--   * no key: the key is not checked (a provider binds a token to its key).
-- Any other origin is refused: log in again for that config.
--
-- opts (both optional, for the message): `config`, the name of what set the
-- client's origins (a config file's path), or a function(field) -> that name;
-- `credentials`, the credentials file's path.
local function check(record, client, opts)
  if type(record) ~= "table" then error("credentials.check: a credentials table expected", 2) end
  if type(client) ~= "table" or type(client.api_origin) ~= "string" or type(client.key) ~= "string" then
    error("credentials.check: a client expected", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then error("credentials.check: options must be a table", 2) end
  opts = opts or {}
  local where = opts.credentials and (" in " .. opts.credentials) or ""
  local function source(field)
    if type(opts.config) == "function" then return opts.config(field) end
    return opts.config or "the config"
  end
  if type(record.key) == "string" and record.key ~= client.key then
    return nil, errors.new("config", ("the stored credentials%s belong to another API key than the one " ..
      "%s gives; run `smugoauth login`"):format(where, source("key")),
      { field = "key", path = opts.credentials })
  end
  local issued, old = issued_for(record, config.ORIGINS)
  for _, k in ipairs(ORIGINS) do
    if client[k] ~= issued[k] then
      local msg = ("%s asks for %s %s, but the stored credentials%s were issued for %s; " ..
        "refusing to send them there"):format(source(k), k, tostring(client[k]), where, issued[k])
      if old then
        msg = msg .. " (an old credentials file, taken as issued for " .. issued[k] ..
          "): log in again for this config: run `smugoauth login`"
      else
        msg = msg .. ": to use this config, log in again: run `smugoauth login`"
      end
      return nil, errors.new("config", msg, { field = k, wanted = client[k], issued = issued[k],
                                             path = opts.credentials })
    end
  end
  return true
end

--- Remove stored credentials; true, or nil, err.
local function remove(path)
  path = path or default_path()
  if not path then return no_path() end
  local ok, msg = os.remove(path)
  if not ok and core.file_mode(path) then return nil, errors.new("io", msg, { path = path }) end
  return true
end

return {
  default_path = default_path,
  save = save,
  load = load,
  check = check,
  remove = remove,
  MAX_SIZE = MAX_SIZE,
}
