--- smugoauth.apps.cli.config: the `config` command (which config file is
-- used, its API key and where the token goes; never the secret), and storing
-- the config `login --key K [--secret S] [--force]` gives.
--
-- The config file is found by smugoauth.config (`default_path`):
-- --config or SMUGOAUTH_CONFIG, else ./config.json when there is one, else
-- $XDG_CONFIG_HOME/smugoauth/config.json (~/.config/smugoauth/config.json),
-- where `login --key` stores it: mode 0600, written atomically by
-- core.write_private in a folder made by core.mkdir_private (0700).
-- @module smugoauth.apps.cli.config
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local json = require "smugoauth.json"
local config = require "smugoauth.config"
local credentials = require "smugoauth.credentials"
local context = require "smugoauth.apps.cli.context"
local output = require "smugoauth.apps.cli.output"

local status, fail, usage = context.status, context.fail, context.usage
local safe = output.safe

--- Where the config and the credentials are (the man page's FILES section,
-- and the help of `smugoauth config`).
local FILES_HELP = [[
The config file holds {"key": "...", "secret": "..."} (your SmugMug API key and
secret) and optionally "oauth_origin", "api_origin", "upload_origin" and
"ca_file". The first of these is used:

  --config PATH        the file given on the command line
  $SMUGOAUTH_CONFIG    the file the environment names
  ./config.json        a config.json in the current directory
  $XDG_CONFIG_HOME/smugoauth/config.json
                       else this one (~/.config/smugoauth/config.json when
                       XDG_CONFIG_HOME is not set), where
                       `smugoauth login --key` stores the config

The stored credentials (the access token, mode 0600) are used only with the
API key and the origins they were issued for, whichever config file asks: a
config.json in the current directory that names other origins is refused.
They are in the first of:

  --credentials PATH   the file given on the command line
  $SMUGOAUTH_CREDENTIALS
                       the file the environment names
  $XDG_CONFIG_HOME/smugoauth/credentials.json
                       else this one (~/.config/smugoauth/credentials.json when
                       XDG_CONFIG_HOME is not set)
]]

--- The environment variables smugoauth reads (the man page's ENVIRONMENT
-- section, and the help of `smugoauth config`).
local ENV_HELP = [[
Environment:
  SMUGOAUTH_CONFIG         the config file
  SMUGOAUTH_CREDENTIALS    the credentials file
  XDG_CONFIG_HOME          the folder of smugoauth/config.json and
                           smugoauth/credentials.json (an absolute path; else
                           $HOME/.config)
  HOME                     your home folder
  SMUGOAUTH_OAUTH_ORIGIN   replaces the config's oauth_origin
  SMUGOAUTH_API_ORIGIN     replaces the config's api_origin
  SMUGOAUTH_UPLOAD_ORIGIN  replaces the config's upload_origin
  SMUGOAUTH_CA_FILE        replaces the config's ca_file
  SMUGOAUTH_DEBUG          1: trace requests and responses on stderr, secrets
                           redacted (as --debug)
]]

local CONFIG_HELP = [[
usage: smugoauth config

Print which config file is used (and why), its API key (never its secret),
the origins the token is sent to when they are not SmugMug's, and the
credentials file. A config that cannot be read or is not valid exits 3 and
says why; when there is none, the message names every path looked at.
]]

-- ------------------------------------------------------------ login --key

-- The API secret from stdin (not echoed when stdin is a terminal).
local function read_secret(ctx, key)
  local tty = ctx.stdin == io.stdin and ctx.isatty(0)
  ctx:note("API secret for ", safe(key), ": ")
  if tty then os.execute("stty -echo 2>/dev/null") end
  local ok, line = pcall(ctx.stdin.read, ctx.stdin, "l")
  if tty then
    os.execute("stty echo 2>/dev/null")
    ctx:note("\n")
  end
  if not ok then error(line, 0) end
  if line == nil then fail(status.AUTH, "login: no API secret entered") end
  return (line:match("^%s*(.-)%s*$"))
end

-- The file `login --key` writes: --config, SMUGOAUTH_CONFIG, else the
-- config folder's config.json; and whether it was named.
local function store_path(ctx)
  local named = ctx.opts.config or config.env("SMUGOAUTH_CONFIG", ctx.getenv)
  if named then return named, true end
  local dir = config.dir(ctx.getenv)
  if not dir then
    fail(status.AUTH, "login: nowhere to store the config: set HOME (or XDG_CONFIG_HOME), or give --config PATH")
  end
  return dir .. "/config.json", false
end

--- Store the config of `login --key K [--secret S] [--force]` and make it
-- this command line's config (see the help of `login`): a file holding
-- another API key (or one that cannot be read as a config) is replaced only
-- with --force; one holding the same key keeps its other settings. Ends the
-- command on a usage error (2), a refusal (3) or a file error (1).
-- @param ctx the command line's context
-- @tparam table opts the options of the command line (key, secret, force)
local function store(ctx, opts)
  local key = opts.key
  if not key then usage("login", "--secret and --force go with --key") end
  if not key:match("^[%w%p]+$") then usage("login", "--key must be an API key (no spaces or control characters)") end
  local secret = opts.secret
  if secret == nil then secret = read_secret(ctx, key) end
  if secret == "" or secret:find("%c") then
    usage("login", "the API secret must not be empty or hold control characters")
  end
  local path, named = store_path(ctx)
  local data = { key = key, secret = secret }
  if core.file_mode(path) then
    local f, oerr = io.open(path, "rb")
    local old = f and cjson.decode(f:read("a") or "")
    if f then f:close() end
    if type(old) == "table" and old.key == key then
      for _, k in ipairs(config.OPTIONAL) do
        if type(old[k]) == "string" then data[k] = old[k] end
      end
    elseif not opts.force then
      local holds = type(old) == "table" and type(old.key) == "string" and
        ("another API key (" .. safe(old.key) .. ")") or
        (f and "something that is not a config" or ("a file that cannot be read (" .. tostring(oerr) .. ")"))
      fail(status.AUTH, ("login: %s already holds %s; give --force to replace it"):format(path, holds))
    end
  end
  local dir = path:match("^(.*)/[^/]*$")
  local ok, msg = true, nil
  if dir and dir ~= "" then ok, msg = core.mkdir_private(dir) end
  if ok then ok, msg = core.write_private(path, json.pretty(data) .. "\n") end
  if not ok then fail(status.ERROR, "login: cannot store the config: " .. tostring(msg)) end
  ctx:note("Stored the API key ", safe(key), " in ", path, "\n")
  if not named and core.file_mode("./config.json") then
    ctx:note("smugoauth: note: the ./config.json of this directory is used before ", path,
      " by commands run here without --config\n")
  end
  ctx.opts.config = path
end

-- ------------------------------------------------------------ smugoauth config

-- Why this config file: the words after its path.
local function why(ctx, path, tried)
  if ctx.opts.config then return " (--config)" end
  if not tried then return " (SMUGOAUTH_CONFIG)" end
  if path == tried[1] then
    local home = config.dir(ctx.getenv)
    local shadowed = home and (home .. "/config.json")
    if shadowed and core.file_mode(shadowed) then
      return " (in the current directory; used before " .. shadowed .. ")"
    end
    return " (in the current directory)"
  end
  return ""
end

-- The state of the stored credentials for client, in words.
local function credentials_state(client, path)
  local record, err = credentials.load(path)
  if not record then
    if err.missing then return " (none: run `smugoauth login`)" end
    return " (" .. err.message:gsub("^" .. path:gsub("%p", "%%%0") .. ": ", "") .. ")"
  end
  if not credentials.check(record, client) then
    return " (issued for another API key or origins: run `smugoauth login`)"
  end
  return ""
end

local config_command = {
  name = "config", summary = "show which config file is used and its API key", max = 0,
  help = CONFIG_HELP .. "\n" .. FILES_HELP .. "\n" .. ENV_HELP,
  man_help = CONFIG_HELP,
  run = function(ctx)
    local path, tried = ctx:config_path()
    local client = ctx:client()
    ctx:out("config: ", safe(client.config_path), safe(why(ctx, path, tried)), "\n")
    ctx:out("key: ", safe(client.key), "\n")
    for _, k in ipairs { "oauth_origin", "api_origin", "upload_origin", "ca_file" } do
      if client[k] ~= config.ORIGINS[k] then
        local env = "SMUGOAUTH_" .. k:upper()
        ctx:out(k, ": ", safe(client[k]), config.env(env, ctx.getenv) and (" (" .. env .. ")") or "", "\n")
      end
    end
    local cpath = ctx.opts.credentials or credentials.default_path(ctx.getenv)
    if cpath then
      ctx:out("credentials: ", safe(cpath), safe(credentials_state(client, cpath)), "\n")
    else
      ctx:out("credentials: none (set SMUGOAUTH_CREDENTIALS or HOME, or give --credentials)\n")
    end
    return status.OK
  end,
}

return {
  store = store,
  config = config_command,
  FILES_HELP = FILES_HELP,
  ENV_HELP = ENV_HELP,
}
