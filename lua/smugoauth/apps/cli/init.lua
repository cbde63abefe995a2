--- smugoauth.apps.cli (also smugoauth.cli): the `smugoauth` command, `gh
-- api` for SmugMug.
--
--     local cli = require "smugoauth.cli"
--     os.exit(cli.main(arg))
--
-- `cli.main(argv [, env])` runs one command line and returns the exit status;
-- it never raises (an unexpected error becomes one line on stderr and status 1)
-- and never calls os.exit (bin/smugoauth does). `env` (every field optional)
-- lets tests and embedders replace the outside world:
--
--   stdin, stdout, stderr   file-like objects (`read("l")`, `write`, `flush`);
--                           default io.stdin, io.stdout, io.stderr
--   isatty(fd)              is fd 0, 1 or 2 a terminal; default core.isatty
--   getenv(name)            default os.getenv (SMUGOAUTH_CONFIG,
--                           SMUGOAUTH_CREDENTIALS, XDG_CONFIG_HOME, HOME,
--                           SMUGOAUTH_DEBUG, DISPLAY, WAYLAND_DISPLAY)
--   open_url(url)           open a browser for `login --web` (url is the
--                           one-shot start URL, never the authorize URL);
--                           default runs xdg-open when DISPLAY or
--                           WAYLAND_DISPLAY is set, with no URL in any shell
--                           command line
--
-- Everything printed from the API is made safe for a terminal
-- (smugoauth.apps.cli.output). Stored credentials are used only with the API
-- key and the oauth, api and upload origins they were issued for
-- (smugoauth.credentials.check), before any request: a config.json elsewhere
-- cannot send the token to another server. The origin overrides of the
-- config (SMUGOAUTH_API_ORIGIN, ...) are read by smugoauth.config from the
-- process environment.
--
-- The commands live one group a file: cli/login.lua (login, logout),
-- cli/api.lua (whoami, get, post, patch, delete), cli/upload.lua; this file
-- parses the command line, dispatches, and owns the help and exit statuses.
-- @module smugoauth.apps.cli
local smugoauth = require "smugoauth"
local context = require "smugoauth.apps.cli.context"
local output = require "smugoauth.apps.cli.output"
local login = require "smugoauth.apps.cli.login"
local api = require "smugoauth.apps.cli.api"
local upload = require "smugoauth.apps.cli.upload"

local status, usage = context.status, context.usage
local one_line = output.one_line

-- Global options, accepted before or after the command.
local GLOBAL = {
  ["--config"] = { "config", arg = true }, ["--credentials"] = { "credentials", arg = true },
  ["--debug"] = { "debug" }, ["--pretty"] = { "pretty" }, ["--compact"] = { "compact" },
  ["--help"] = { "help" }, ["-h"] = { "help" }, ["--version"] = { "version" },
}

local GLOBAL_HELP = [[
Global options (before or after the command):
  --config PATH        config file (default: $SMUGOAUTH_CONFIG or ./config.json)
  --credentials PATH   credentials file (default: $SMUGOAUTH_CREDENTIALS, else
                       $XDG_CONFIG_HOME/smugoauth/credentials.json or
                       ~/.config/smugoauth/credentials.json)
  --debug              trace requests and responses on stderr, secrets redacted
                       (also SMUGOAUTH_DEBUG=1)
  --pretty, --compact  JSON output style (default: pretty on a terminal, compact otherwise)
]]

local EXIT_HELP = [[
Exit status:
  0  success
  1  the API answered an error (non-2xx status, "stat": "fail") or another failure
  2  usage error
  3  not logged in, or a configuration problem
  4  network, TLS or timeout
  5  OAuth refused (e.g. token_rejected: run `smugoauth login`)
]]

-- The commands by name, and in the order the help lists them. A command is
-- {name, summary, options (as GLOBAL), min, max, args, help, run(ctx, opts, pos)}.
local COMMANDS, ORDER = {}, {}

local help                                  -- the top-level help text (below)

local help_command = {
  name = "help", summary = "show the help of a command", max = 1, args = "[COMMAND]",
  help = "usage: smugoauth help [COMMAND]\n\nShow the help of smugoauth or of one of its commands.\n",
  run = function(ctx, _, pos)
    if pos[1] then
      local cmd = COMMANDS[pos[1]]
      if not cmd then usage(nil, "unknown command '" .. pos[1] .. "'") end
      ctx:out(cmd.help, "\n", GLOBAL_HELP)
    else
      ctx:out(help())
    end
    return status.OK
  end,
}

for _, def in ipairs { login.login, api.whoami, api.get, api.post, api.patch, api.delete, upload.upload,
                       login.logout, help_command } do
  COMMANDS[def.name] = def
  ORDER[#ORDER + 1] = def.name
end

--- The top-level help text.
-- @treturn string
function help()
  local lines = {
    "usage: smugoauth [global options] COMMAND [arguments]",
    "",
    "Call the SmugMug API v2 from the shell, signed with OAuth 1.0a.",
    "",
    "Commands:",
  }
  for _, name in ipairs(ORDER) do
    lines[#lines + 1] = ("  %-8s %s"):format(name, COMMANDS[name].summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Run `smugoauth COMMAND --help` for the options of a command."
  lines[#lines + 1] = ""
  return table.concat(lines, "\n") .. "\n" .. GLOBAL_HELP ..
    "  -h, --help           this help\n  --version            print the version\n\n" .. EXIT_HELP ..
    "\nConfig: config.json holds {\"key\": \"...\", \"secret\": \"...\"} (your SmugMug API key).\n"
end

local function merged(a, b)
  local t = {}
  for k, v in pairs(a) do t[k] = v end
  for k, v in pairs(b or {}) do t[k] = v end
  return t
end

-- Split argv into the command, its options and positional arguments.
local function parse(argv)
  local opts, pos = {}, {}
  local cmd, spec = nil, GLOBAL
  local only_pos = false
  local i, n = 1, #argv
  while i <= n do
    local a = argv[i]
    if type(a) ~= "string" then usage(nil, "arguments must be strings") end
    if only_pos or a == "-" or a:sub(1, 1) ~= "-" then
      if cmd then
        pos[#pos + 1] = a
      else
        cmd = COMMANDS[a]
        if not cmd then usage(nil, "unknown command '" .. a .. "'") end
        spec = merged(GLOBAL, cmd.options)
      end
    elseif a == "--" then
      only_pos = true
    else
      local name, val = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local o = spec[name]
      if not o and name:match("^%-%w.") and spec[name:sub(1, 2)] and spec[name:sub(1, 2)].arg then
        o, val = spec[name:sub(1, 2)], name:sub(3)     -- -qNAME=VALUE
      end
      local where = cmd and cmd.name
      if not o then usage(where, "unknown option " .. name) end
      if o.arg then
        if val == nil then
          i = i + 1
          val = argv[i]
          if type(val) ~= "string" then usage(where, name .. " needs a value") end
        end
      elseif val ~= nil then
        usage(where, name .. " takes no value")
      end
      if o.many then
        opts[o[1]] = opts[o[1]] or {}
        table.insert(opts[o[1]], val)
      else
        opts[o[1]] = o.arg and val or true
      end
    end
    i = i + 1
  end
  return cmd, opts, pos
end

-- Run the command line in ctx: its exit status (failures raise).
local function run(ctx, argv)
  local cmd, opts, pos = parse(argv)
  ctx.opts = opts
  if opts.version then
    ctx:out(smugoauth._VERSION, "\n")
    return status.OK
  end
  if opts.help then
    if cmd then ctx:out(cmd.help, "\n", GLOBAL_HELP) else ctx:out(help()) end
    return status.OK
  end
  if not cmd then
    ctx:note(help())
    return status.USAGE
  end
  if opts.pretty and opts.compact then usage(cmd.name, "give --pretty or --compact, not both") end
  if opts.pretty then ctx.pretty = true
  elseif opts.compact then ctx.pretty = false
  else ctx.pretty = ctx.isatty(1) and true or false end
  local env_debug = ctx.getenv("SMUGOAUTH_DEBUG")
  ctx.debug = opts.debug or (env_debug ~= nil and env_debug ~= "" and env_debug ~= "0")
  if cmd.min and #pos < cmd.min then usage(cmd.name, "missing " .. cmd.args) end
  if cmd.max and #pos > cmd.max then usage(cmd.name, "unexpected argument '" .. pos[cmd.max + 1] .. "'") end
  return cmd.run(ctx, opts, pos)
end

--- Run one command line: `cli.main(argv [, env])` -> exit status.
-- argv holds the arguments after the program name (as `arg` does); env is
-- described in the module comment.
-- @tparam table argv
-- @tparam[opt] table env
-- @treturn integer
local function main(argv, env)
  local ctx = context.new(env or {})
  local ok, code = xpcall(run, function(e)
    if context.is_failure(e) then return e end
    return { internal = tostring(e), traceback = debug.traceback(nil, 2) }
  end, ctx, argv or {})
  if ok then
    code = math.tointeger(code) or status.OK
  elseif context.is_failure(code) then
    ctx:note("smugoauth: ", code.message, "\n")
    if ctx.debug_rest then ctx:note(ctx.debug_rest, "\n") end
    code = code.status
  elseif code.internal:find("interrupted!", 1, true) then
    ctx:note("\nsmugoauth: interrupted\n")
    code = 130
  else
    ctx:note("smugoauth: internal error: ", one_line(code.internal), "\n")
    if ctx.debug then ctx:note(code.traceback, "\n") end
    code = status.ERROR
  end
  if ctx.stdout.flush then ctx.stdout:flush() end
  return code
end

return {
  main = main,
  help = help,
  COMMANDS = COMMANDS,
  -- exit statuses
  OK = status.OK,
  ERROR = status.ERROR,
  USAGE = status.USAGE,
  AUTH = status.AUTH,
  NETWORK = status.NETWORK,
  OAUTH = status.OAUTH,
}
