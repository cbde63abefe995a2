--- Configuration: the original example's config.json, plus environment overrides.
-- File: `SMUGOAUTH_CONFIG` or `./config.json`, holding
-- `{"key": "...", "secret": "..."}` and optionally `oauth_origin`, `api_origin`,
-- `upload_origin`, `ca_file`. Each optional key can be overridden by the
-- environment: SMUGOAUTH_OAUTH_ORIGIN, SMUGOAUTH_API_ORIGIN,
-- SMUGOAUTH_UPLOAD_ORIGIN, SMUGOAUTH_CA_FILE.
-- @module smugoauth.config
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

--- The path used when none is given.
local function default_path(getenv)
  return env("SMUGOAUTH_CONFIG", getenv) or "config.json"
end

--- Load and check a config file. Returns a table with key, secret and the
-- optional origins, or nil, err (code "config").
-- @param path optional; default `default_path()`
-- @param getenv optional os.getenv replacement (tests)
local function load(path, getenv)
  getenv = getenv or os.getenv
  path = path or default_path(getenv)
  local f, oerr = io.open(path, "rb")
  if not f then
    if oerr and oerr:find("No such file", 1, true) then
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
  EXAMPLE = EXAMPLE,
  OPTIONAL = OPTIONAL,
  ORIGINS = ORIGINS,
}
