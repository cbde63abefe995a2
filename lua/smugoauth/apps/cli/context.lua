--- smugoauth.apps.cli.context: what every command of `smugoauth` works with:
-- the exit statuses, failures (raised inside a command, turned into one line
-- and a status by `main`), and the context of one command line (its output,
-- the config, the client, the session with the stored credentials).
-- @module smugoauth.apps.cli.context
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local json = require "smugoauth.json"
local config = require "smugoauth.config"
local credentials = require "smugoauth.credentials"
local output = require "smugoauth.apps.cli.output"

local safe, safe_json, one_line = output.safe, output.safe_json, output.one_line
local setmetatable, getmetatable, error, pcall, tostring = setmetatable, getmetatable, error, pcall, tostring

--- Exit statuses.
local status = {
  OK = 0,        -- success
  ERROR = 1,     -- the API answered an error (non-2xx, "stat": "fail") or another failure
  USAGE = 2,     -- bad command line
  AUTH = 3,      -- not logged in, or a configuration problem
  NETWORK = 4,   -- network, TLS or timeout
  OAUTH = 5,     -- the provider refused the OAuth credentials
}

-- the exit status of a library error, by err.code
local EXIT_FOR_CODE = {
  http = status.ERROR, api = status.ERROR, json = status.ERROR, too_large = status.ERROR, io = status.ERROR,
  config = status.AUTH, network = status.NETWORK, tls = status.NETWORK, timeout = status.NETWORK,
  oauth = status.OAUTH,
}

-- ------------------------------------------------------------ failures

-- the metatable of a failure raised inside a command
local Failure = { __name = "smugoauth.CliFailure" }

--- End the command with this exit status and a one-line message.
-- @tparam integer code
-- @param msg
local function fail(code, msg)
  error(setmetatable({ status = code, message = one_line(msg) }, Failure), 0)
end

--- Is e a failure raised by `fail`?
local function is_failure(e)
  return getmetatable(e) == Failure
end

--- End the command with a usage error (status 2) that points at the help of
-- cmd (or of the whole command).
-- @tparam string|nil cmd
-- @tparam string msg
local function usage(cmd, msg)
  local see = cmd and ("smugoauth " .. cmd .. " --help") or "smugoauth --help"
  fail(status.USAGE, (cmd and (cmd .. ": ") or "") .. msg .. " (see `" .. see .. "`)")
end

-- The exit status, the one-line message and the rest (details) for a library
-- error. login_hint: add "run `smugoauth login`" when the token was refused.
local function describe(err, what, login_hint)
  local code = EXIT_FOR_CODE[err.code] or status.ERROR
  if err.code == "http" and err.status == 401 then code = status.OAUTH end
  local text = tostring(err):gsub("^smugoauth: ", "")
  local first, rest = text:match("^([^\n]*)\n?(.*)$")
  local msg = (what and (what .. ": ") or "") .. first
  if code == status.OAUTH and login_hint then msg = msg .. "; run `smugoauth login`" end
  return code, one_line(msg), rest
end

-- ------------------------------------------------------------ the context

local methods = {}
local mt = { __name = "smugoauth.CliContext", __index = methods }

--- The context of one command line.
--
-- Options (every one optional; they replace the outside world in tests):
--
--  - `stdin`, `stdout`, `stderr` [io.stdin, io.stdout, io.stderr]: file-like
--    objects (`read("l")`, `write`, `flush`).
--  - `isatty` [core.isatty]: `function(fd)`: is fd 0, 1 or 2 a terminal.
--  - `term_columns` [core.term_columns]: `function(fd)`: the terminal's
--    width, or nil.
--  - `getenv` [os.getenv]: `function(name)`.
--  - `open_url` [nil: xdg-open when a display is present]: `function(url)`.
-- @tparam table env
-- @return the context
local function new(env)
  return setmetatable({
    stdin = env.stdin or io.stdin, stdout = env.stdout or io.stdout,
    stderr = env.stderr or io.stderr,
    isatty = env.isatty or function(fd) return core.isatty(fd) end,
    term_columns = env.term_columns or function(fd) return core.term_columns(fd) end,
    getenv = env.getenv or os.getenv, open_url = env.open_url,
    opts = {},
  }, mt)
end

--- The width of the terminal on stderr, for progress displays: $COLUMNS
-- when it is a number, else what the terminal says, else 80.
function methods:columns()
  local n = math.tointeger(tonumber(self.getenv("COLUMNS") or ""))
  if n and n > 0 then return n end
  return self.term_columns(2) or 80
end

--- Write to stdout.
function methods:out(...)
  self.stdout:write(...)
end

--- Write to stderr, at once.
function methods:note(...)
  self.stderr:write(...)
  if self.stderr.flush then self.stderr:flush() end
end

--- Print a failure without ending the command (e.g. one file of many);
-- returns its exit status.
function methods:report(err, what, login_hint)
  local code, msg, rest = describe(err, what, login_hint)
  self:note("smugoauth: ", msg, "\n")
  if self.debug and rest ~= "" then self:note(safe(rest, true), "\n") end
  return code
end

--- End the command with the status and message of a library error.
function methods:fail_err(err, what, login_hint)
  local code, msg, rest = describe(err, what, login_hint)
  if self.debug and rest ~= "" then self.debug_rest = safe(rest, true) end
  fail(code, msg)
end

--- Print a value as JSON (pretty or compact as the command line asked).
function methods:json_out(v)
  local s = self.pretty and json.pretty(v) or json.compact(v)
  self:out(safe_json(s), "\n")
end

--- Print a summary of ours (backup, sync) as JSON: its empty tables are
-- lists, written `[]` in both styles (lua-cjson alone writes `{}`).
function methods:summary_out(v)
  local s = self.pretty and json.pretty(v) or json.line(v)
  self:out(safe_json(s), "\n")
end

--- Print a response body: JSON formatted, anything else as it came (made
-- safe on a terminal).
function methods:body_out(body)
  if body == nil or body == "" then return end
  local v = cjson.decode(body)
  if v == nil then
    if self.isatty(1) then body = safe(body, true) end
    self:out(body, body:sub(-1) == "\n" and "" or "\n")
  else
    self:json_out(v)
  end
end

--- The config file's path: --config, else the default (smugoauth.config's
-- `default_path`: SMUGOAUTH_CONFIG, ./config.json, the XDG config folder),
-- and then also the list of the paths looked at.
function methods:config_path()
  if self.opts.config then return self.opts.config end
  return config.default_path(self.getenv)
end

--- The credentials file's path (--credentials, else the default); ends the
-- command with status 3 when there is none.
function methods:credentials_path()
  local p = self.opts.credentials or credentials.default_path(self.getenv)
  if not p then
    fail(status.AUTH, "no credentials path: set SMUGOAUTH_CREDENTIALS or HOME, or give --credentials")
  end
  return p
end

--- Write a --debug trace line on stderr, above the progress display when
-- one is shown (`ctx.block`, an apps.cli.progress display: cleared, then
-- drawn again below the line).
function methods:debug_line(line)
  local block = self.block
  if block then block:clear() end
  self.stderr:write(safe(line), "\n")
  if block then block:draw(true) end
end

--- The client for the configured consumer; a config problem ends with status 3.
function methods:client()
  if self._client then return self._client end
  local debug = false
  if self.debug then debug = function(line) self:debug_line(line) end end
  local ok, client, err = pcall(smugoauth.from_config, self.opts.config, { debug = debug, getenv = self.getenv })
  if not ok then fail(status.AUTH, "config: " .. tostring(client):gsub("^[^:]*:%d+: ", "")) end
  if not client then fail(status.AUTH, "config: " .. tostring(err.message or err)) end
  self._client = client
  return client
end

--- A session with the stored credentials; not logged in ends with status 3.
-- Before any request: the token goes only where it was issued
-- (smugoauth.credentials.check).
function methods:session()
  local client = self:client()
  local path = self:credentials_path()
  local token, secret, record = smugoauth.load_credentials(path)
  if not token then fail(status.AUTH, tostring(secret.message or secret)) end
  local ok, err = credentials.check(record, client, { credentials = path, config = function(field)
    local env = "SMUGOAUTH_" .. field:upper()
    if field ~= "key" and config.env(env, self.getenv) then return env end
    return client.config_path
  end })
  if not ok then fail(status.AUTH, err.message) end
  return client:session(token, secret)
end

return {
  new = new,
  methods = methods,
  mt = mt,
  status = status,
  fail = fail,
  is_failure = is_failure,
  usage = usage,
}
