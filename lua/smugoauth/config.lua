--- Configuration: the original example's config.json, plus environment overrides.
-- File: `SMUGOAUTH_CONFIG` when set; else `./config.json` when the current
-- directory has one; else `$XDG_CONFIG_HOME/smugoauth/config.json` (else
-- `~/.config/smugoauth/config.json`), where `smugoauth login --key` stores it.
-- It holds `{"key": "...", "secret": "..."}` and optionally `oauth_origin`, `api_origin`,
-- `upload_origin`, `ca_file`. Each optional key can be overridden by the
-- environment: SMUGOAUTH_OAUTH_ORIGIN, SMUGOAUTH_API_ORIGIN,
-- SMUGOAUTH_UPLOAD_ORIGIN, SMUGOAUTH_CA_FILE.
-- @module smugoauth.config
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local errors = require "smugoauth.errors"

-- Where the format is shown.
local EXAMPLE = "examples/config.example.json"

-- The optional keys of a config file (each overridable by SMUGOAUTH_<KEY>).
local OPTIONAL = { "oauth_origin", "api_origin", "upload_origin", "ca_file" }

--- SmugMug's origins: what a client talks to unless a config or its options
-- say otherwise (and what old credential files were issued for).
local ORIGINS = {
  oauth_origin = "https://secure.smugmug.com",
  api_origin = "https://api.smugmug.com",
  upload_origin = "https://upload.smugmug.com",
}

local function fail(path, what)
  return nil, errors.new("config", string.format(
    "%s: %s (see %s for the format: {\"key\": \"...\", \"secret\": \"...\"})",
    path, what, EXAMPLE), { path = path })
end

--- An environment variable's value when it is set and not empty, else nil
-- (`getenv`: an os.getenv replacement, for tests).
local function env(name, getenv)
  local v = (getenv or os.getenv)(name)
  if v ~= nil and v ~= "" then return v end
  return nil
end

--- smugoauth's folder in the XDG config home: `$XDG_CONFIG_HOME/smugoauth`,
-- else `$HOME/.config/smugoauth` (an XDG_CONFIG_HOME that is not an absolute
-- path is ignored, as the XDG Base Directory specification says); nil when
-- neither is set. The config and the stored credentials live there.
-- @param getenv optional os.getenv replacement (tests)
local function dir(getenv)
  local base = env("XDG_CONFIG_HOME", getenv)
  if base and base:sub(1, 1) ~= "/" then base = nil end
  if not base then
    local home = env("HOME", getenv)
    if not home then return nil end
    base = home .. "/.config"
  end
  return base .. "/smugoauth"
end

-- Is there a file system entry at path (readable or not: one that cannot be
-- read is still the one meant, and load says why it fails)?
local function exists(path)
  return core.file_mode(path) ~= nil
end

--- The config file used when none is given: `default_path([getenv [, is_there]])`
-- -> path, tried. In this order: SMUGOAUTH_CONFIG when set (tried is nil:
-- nothing else is looked at); else `./config.json` when there is one; else
-- `dir() .. "/config.json"`, whether it exists or not (where `smugoauth login
-- --key` stores a config). `tried` lists the paths looked at, in order.
-- @param getenv optional os.getenv replacement (tests)
-- @param is_there optional function(path) -> boolean replacing the file system check (tests)
local function default_path(getenv, is_there)
  local named = env("SMUGOAUTH_CONFIG", getenv)
  if named then return named end
  local here = "./config.json"
  local tried = { here }
  local home = dir(getenv)
  if (is_there or exists)(here) or not home then return here, tried end
  tried[2] = home .. "/config.json"
  return tried[2], tried
end

--- Load and check a config file. Returns a table with key, secret, the
-- optional origins and `path` (the file read), or nil, err (code "config";
-- when no path was given and there is no file where `default_path` looks,
-- `err.tried` lists the paths looked at and the message names them).
-- @param path optional; default `default_path()`
-- @param getenv optional os.getenv replacement (tests)
local function load(path, getenv)
  getenv = getenv or os.getenv
  local tried
  if not path then path, tried = default_path(getenv) end
  local f, oerr = io.open(path, "rb")
  if not f then
    if oerr and oerr:find("No such file", 1, true) then
      if tried then
        local where = #tried > 1 and ("run `smugoauth login --key KEY --secret SECRET` to store one in " ..
          tried[#tried] .. ", or copy " .. EXAMPLE .. " to one of them") or
          ("set HOME (or XDG_CONFIG_HOME) for ~/.config/smugoauth/config.json, or copy " .. EXAMPLE .. " there")
        return nil, errors.new("config", ("no config file (tried %s): %s and fill in your API key")
          :format(table.concat(tried, ", "), where), { path = path, tried = tried })
      end
      return fail(path, "file not found; copy " .. EXAMPLE .. " there and fill in your API key")
    end
    return fail(path, "cannot be read (" .. tostring(oerr) .. ")")
  end
  local text = f:read("a")
  f:close()
  if not text or text:match("^%s*$") then return fail(path, "file is empty") end
  local data, jerr = cjson.decode(text)
  if data == nil then return fail(path, "not valid JSON (" .. tostring(jerr) .. ")") end
  if type(data) ~= "table" or data[1] ~= nil then
    return fail(path, "must hold a JSON object")
  end
  local conf = {}
  for _, k in ipairs { "key", "secret" } do
    local v = data[k]
    if v == nil or v == cjson.null then return fail(path, "missing \"" .. k .. "\"") end
    if type(v) ~= "string" then return fail(path, "\"" .. k .. "\" must be a string") end
    if v == "" then return fail(path, "\"" .. k .. "\" is empty") end
    conf[k] = v
  end
  for _, k in ipairs(OPTIONAL) do
    local v = data[k]
    if v ~= nil and v ~= cjson.null then
      if type(v) ~= "string" then return fail(path, "\"" .. k .. "\" must be a string") end
      conf[k] = v
    end
    conf[k] = env("SMUGOAUTH_" .. k:upper(), getenv) or conf[k]
  end
  conf.path = path
  return conf
end

return {
  load = load,
  env = env,
  default_path = default_path,
  dir = dir,
  EXAMPLE = EXAMPLE,
  OPTIONAL = OPTIONAL,
  ORIGINS = ORIGINS,
}
