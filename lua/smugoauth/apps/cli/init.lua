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
--   term_columns(fd)        the terminal's width or nil; default
--                           core.term_columns ($COLUMNS comes first)
--   getenv(name)            default os.getenv (SMUGOAUTH_CONFIG,
--                           SMUGOAUTH_CREDENTIALS, XDG_CONFIG_HOME, HOME,
--                           SMUGOAUTH_DEBUG, the SMUGOAUTH_*_ORIGIN and
--                           SMUGOAUTH_CA_FILE overrides, DISPLAY, WAYLAND_DISPLAY)
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
-- cannot send the token to another server. The config file and its origin
-- overrides (SMUGOAUTH_API_ORIGIN, ...) are found through env.getenv
-- (smugoauth.config).
--
-- The commands live one group a file: cli/login.lua (login, logout),
-- cli/api.lua (whoami, get, post, patch, delete), cli/upload.lua,
-- cli/backup.lua and cli/sync.lua (with cli/progress.lua, their progress display),
-- cli/config.lua (config, and storing the config of `login --key`),
-- cli/completion.lua (the bash and zsh scripts); this file parses the command
-- line, dispatches, and owns the help and exit statuses. The man page
-- (`help --man`, cli/doc.lua) and the completion scripts are generated from
-- the command tables and help texts here (`describe`), never written by hand.
-- @module smugoauth.apps.cli
local smugoauth = require "smugoauth"
local context = require "smugoauth.apps.cli.context"
local output = require "smugoauth.apps.cli.output"
local login = require "smugoauth.apps.cli.login"
local api = require "smugoauth.apps.cli.api"
local upload = require "smugoauth.apps.cli.upload"
local backup = require "smugoauth.apps.cli.backup"
local sync = require "smugoauth.apps.cli.sync"
local cliconfig = require "smugoauth.apps.cli.config"
local completion = require "smugoauth.apps.cli.completion"
local doc = require "smugoauth.apps.cli.doc"

local status, usage = context.status, context.usage
local one_line = output.one_line

-- Global options, accepted before or after the command. An option is
-- {key (what it sets in opts), arg (takes a value), many (repeatable: a list),
-- complete (what its value completes to: smugoauth.apps.cli.completion)};
-- each is documented in an "Options:" list of the help (GLOBAL_HELP here).
local GLOBAL = {
  ["--config"] = { "config", arg = true, complete = "file" },
  ["--credentials"] = { "credentials", arg = true, complete = "file" },
  ["--debug"] = { "debug" }, ["--pretty"] = { "pretty" }, ["--compact"] = { "compact" },
  ["--help"] = { "help" }, ["-h"] = { "help" }, ["--version"] = { "version" },
}

local GLOBAL_HELP = [[
Global options (before or after the command):
  --config PATH        config file (default, as `smugoauth config --help` says:
                       $SMUGOAUTH_CONFIG, else ./config.json if there is one,
                       else $XDG_CONFIG_HOME/smugoauth/config.json, by default
                       ~/.config/smugoauth/config.json)
  --credentials PATH   credentials file (default: $SMUGOAUTH_CREDENTIALS, else
                       $XDG_CONFIG_HOME/smugoauth/credentials.json or
                       ~/.config/smugoauth/credentials.json)
  --debug              trace requests and responses on stderr, secrets redacted
                       (also SMUGOAUTH_DEBUG=1)
  --pretty, --compact  JSON output style (default: pretty on a terminal, compact
                       otherwise)
  -h, --help           this help
  --version            print the version
]]

-- The one-line summary (the man page's NAME) and the introduction of the help.
local SUMMARY = "call the SmugMug API v2 from the shell, signed with OAuth 1.0a"
local INTRO = [[
Call the SmugMug API v2 from the shell, signed with OAuth 1.0a.

Run `smugoauth COMMAND --help` for the options of a command.

Config: `smugoauth login --key KEY` stores your SmugMug API key and secret, then
logs in; `smugoauth config` shows which config file is used.
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
-- {name, summary, options (as GLOBAL), min, max, args, help, run(ctx, opts, pos)}
-- and optionally complete (what each argument completes to:
-- smugoauth.apps.cli.completion) and man_help (smugoauth.apps.cli.doc).
local COMMANDS, ORDER = {}, {}

local help, describe                        -- the top-level help text, the CLI description (below)

local help_command = {
  name = "help", summary = "show the help of a command, or the man page", max = 1, args = "[COMMAND]",
  options = { ["--man"] = { "man" } }, complete = { "command" },
  help = [[
usage: smugoauth help [COMMAND]
       smugoauth help --man

Show the help of smugoauth or of one of its commands.

Options:
  --man    print the man page, smugoauth(1), made from the commands and their
           help (roff: read it with man -l, or install it as smugoauth.1)
]],
  run = function(ctx, opts, pos)
    if opts.man then
      if pos[1] then usage("help", "--man takes no COMMAND") end
      ctx:out(doc.man(describe()))
    elseif pos[1] then
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
                       backup.backup, sync.sync,
                       login.logout, cliconfig.config, completion.command(function() return describe() end),
                       help_command } do
  COMMANDS[def.name] = def
  ORDER[#ORDER + 1] = def.name
end

--- The top-level help text.
-- @treturn string
function help()
  local intro = INTRO:gsub("\n\n.*", "\n")          -- its first paragraph
  local lines = {
    "usage: smugoauth [global options] COMMAND [arguments]",
    "",
    intro,
    "Commands:",
  }
  local width = 0
  for _, name in ipairs(ORDER) do width = math.max(width, #name) end
  for _, name in ipairs(ORDER) do
    lines[#lines + 1] = ("  %-" .. width .. "s  %s"):format(name, COMMANDS[name].summary)
  end
  lines[#lines + 1] = "\n"
  return table.concat(lines, "\n") .. INTRO:match("\n\n(.*)$") .. "\n" .. GLOBAL_HELP .. "\n" .. EXIT_HELP
end

--- The description of the whole command that the man page and the
-- completion scripts are generated from (smugoauth.apps.cli.doc).
-- @treturn table
function describe()
  local commands = {}
  for i, name in ipairs(ORDER) do commands[i] = COMMANDS[name] end
  return {
    name = "smugoauth", version = smugoauth._VERSION, summary = SUMMARY, intro = INTRO,
    global = GLOBAL, global_help = GLOBAL_HELP, commands = commands,
    sections = { { "FILES", cliconfig.FILES_HELP }, { "ENVIRONMENT", cliconfig.ENV_HELP },
                 { "EXIT STATUS", EXIT_HELP } },
  }
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
  describe = describe,
  COMMANDS = COMMANDS,
  -- exit statuses
  OK = status.OK,
  ERROR = status.ERROR,
  USAGE = status.USAGE,
  AUTH = status.AUTH,
  NETWORK = status.NETWORK,
  OAUTH = status.OAUTH,
}
