--- smugoauth.cli: the `smugoauth` command, `gh api` for SmugMug.
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
-- Everything printed from the API is made safe for a terminal: one-line
-- outputs (whoami, "Logged in as", ImageUris) and messages always, with
-- controls, DEL, C1, bidi controls and invalid UTF-8 shown as escapes (\x1b,
-- \u009b, \u202e, \xff); JSON output with those as \u escapes (the same
-- JSON value; invalid UTF-8 becomes U+FFFD); other bodies on a terminal only
-- (a pipe gets them as they came).
--
-- Stored credentials are used only with the API key and the oauth, api and
-- upload origins they were issued for (smugoauth.credentials.check), before
-- any request: a config.json elsewhere cannot send the token to another server.
--
-- The origin overrides of the config (SMUGOAUTH_API_ORIGIN, ...) are read by
-- smugoauth.config from the process environment.
-- @module smugoauth.cli
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local json = require "smugoauth.json"
local config = require "smugoauth.config"
local credentials = require "smugoauth.credentials"

local M = {}
local find, sub, concat, char_of = string.find, string.sub, table.concat, string.char

--- Exit statuses.
M.OK = 0        -- success
M.ERROR = 1     -- the API answered an error (non-2xx, "stat": "fail") or another failure
M.USAGE = 2     -- bad command line
M.AUTH = 3      -- not logged in, or a configuration problem
M.NETWORK = 4   -- network, TLS or timeout
M.OAUTH = 5     -- the provider refused the OAuth credentials

local EXIT_FOR_CODE = {
  http = M.ERROR, api = M.ERROR, json = M.ERROR, too_large = M.ERROR, io = M.ERROR,
  config = M.AUTH, network = M.NETWORK, tls = M.NETWORK, timeout = M.NETWORK, oauth = M.OAUTH,
}

local UPLOAD_TIMEOUT = 3600     -- seconds per file
local WEB_TIMEOUT = 300         -- seconds to wait for the browser callback

------------------------------------------------------------------ failures

-- A failure raised inside a command; main turns it into one line and a status.
local Failure = {}
Failure.__index = Failure

------------------------------------------------------------------ terminal safety

-- Bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069): they reorder
-- what follows them on the line.
local function is_bidi(cp)
  return (cp >= 0x202A and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069)
end

-- s with every byte a terminal could act on replaced: C0 controls (but those
-- in `keep`, a set of byte values), DEL, C1 controls (U+0080-U+009F, as UTF-8),
-- bidi controls and bytes that are not valid UTF-8. `byte(b)` gives the
-- replacement of a control or invalid byte, `char(cp)` that of a C1 or bidi
-- code point. Valid UTF-8 text and printable ASCII pass as they are.
local function scrub(s, keep, byte, char)
  if not find(s, "[^\32-\126]") then return s end
  local out, n, i, len = {}, 0, 1, #s
  while i <= len do
    local j = find(s, "[^\32-\126]", i)
    if not j then
      n = n + 1
      out[n] = sub(s, i)
      break
    end
    if j > i then
      n = n + 1
      out[n] = sub(s, i, j - 1)
    end
    local b = s:byte(j)
    local rep, size
    if b < 0x80 then
      rep, size = keep and keep[b] and char_of(b) or byte(b), 1
    else
      -- a run of non-ASCII bytes that is valid UTF-8 with no C1 or bidi
      -- control passes whole (the common case: text in other scripts)
      local k = find(s, "[^\128-\255]", j) or len + 1
      local run = sub(s, j, k - 1)
      if utf8.len(run) and not find(run, "\194[\128-\159]") and not find(run, "\226\128[\170-\174]")
          and not find(run, "\226\129[\166-\169]") then
        rep, size = run, #run
      else
        size = b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC2 and 2 or 1
        local ch = sub(s, j, j + size - 1)
        local cp = size > 1 and b <= 0xF4 and #ch == size and utf8.len(ch) == 1 and utf8.codepoint(ch)
        if not cp then
          rep, size = byte(b), 1
        elseif cp <= 0x9F or is_bidi(cp) then
          rep = char(cp)
        else
          rep = ch
        end
      end
    end
    n = n + 1
    out[n] = rep
    i = j + size
  end
  return concat(out)
end

local function esc_byte(b) return ("\\x%02x"):format(b) end
local function esc_char(cp) return ("\\u%04x"):format(cp) end
local KEEP_LINES = { [9] = true, [10] = true }

-- Text for a terminal: `safe(s [, lines])`. Controls, C1, bidi controls and
-- invalid UTF-8 become visible escapes (`\x1b`, `\u009b`, `\u202e`, `\xff`);
-- with `lines`, newlines and tabs are kept.
local function safe(s, lines)
  return scrub(tostring(s), lines and KEEP_LINES or nil, esc_byte, esc_char)
end

-- JSON text (as lua-cjson writes it) with DEL, C1 and bidi controls as \u
-- escapes and invalid UTF-8 as U+FFFD: the same JSON value for valid input,
-- nothing a terminal acts on. Newlines (the pretty printer's) are kept.
local function json_byte(b)
  if b < 0x80 then return ("\\u%04x"):format(b) end
  return "\\ufffd"
end
local KEEP_NL = { [10] = true }
local function safe_json(s)
  return scrub(s, KEEP_NL, json_byte, esc_char)
end

-- One line of text for a message: the first line, made safe.
local function one_line(s)
  return safe(tostring(s):match("^[^\n]*"))
end

local function fail(status, msg)
  error(setmetatable({ status = status, message = one_line(msg) }, Failure), 0)
end

local function usage(cmd, msg)
  local see = cmd and ("smugoauth " .. cmd .. " --help") or "smugoauth --help"
  fail(M.USAGE, (cmd and (cmd .. ": ") or "") .. msg .. " (see `" .. see .. "`)")
end

-- The exit status and the one-line message for a library error.
-- login_hint: add "run `smugoauth login`" when the token was refused.
local function describe(err, what, login_hint)
  local status = EXIT_FOR_CODE[err.code] or M.ERROR
  if err.code == "http" and err.status == 401 then status = M.OAUTH end
  local text = tostring(err):gsub("^smugoauth: ", "")
  local first, rest = text:match("^([^\n]*)\n?(.*)$")
  local msg = (what and (what .. ": ") or "") .. first
  if status == M.OAUTH and login_hint then msg = msg .. "; run `smugoauth login`" end
  return status, one_line(msg), rest
end

------------------------------------------------------------------ context

local Ctx = {}
Ctx.__index = Ctx

local function new_ctx(env)
  local self = setmetatable({
    stdin = env.stdin or io.stdin, stdout = env.stdout or io.stdout,
    stderr = env.stderr or io.stderr,
    isatty = env.isatty or function(fd) return core.isatty(fd) end,
    getenv = env.getenv or os.getenv, open_url = env.open_url,
    opts = {},
  }, Ctx)
  return self
end

function Ctx:out(...)
  self.stdout:write(...)
end

function Ctx:note(...)
  self.stderr:write(...)
  if self.stderr.flush then self.stderr:flush() end
end

-- Print a failure without ending the command (e.g. one file of many).
function Ctx:report(err, what, login_hint)
  local status, msg, rest = describe(err, what, login_hint)
  self:note("smugoauth: ", msg, "\n")
  if self.debug and rest ~= "" then self:note(safe(rest, true), "\n") end
  return status
end

function Ctx:fail_err(err, what, login_hint)
  local status, msg, rest = describe(err, what, login_hint)
  if self.debug and rest ~= "" then self.debug_rest = safe(rest, true) end
  fail(status, msg)
end

function Ctx:json_out(v)
  local s = self.pretty and json.pretty(v) or json.compact(v)
  self:out(safe_json(s), "\n")
end

-- Print a response body: JSON formatted, anything else as it came (made
-- safe on a terminal).
function Ctx:body_out(body)
  if body == nil or body == "" then return end
  local v = cjson.decode(body)
  if v == nil then
    if self.isatty(1) then body = safe(body, true) end
    self:out(body, body:sub(-1) == "\n" and "" or "\n")
  else
    self:json_out(v)
  end
end

function Ctx:config_path()
  return self.opts.config or config.default_path(self.getenv)
end

function Ctx:credentials_path()
  local p = self.opts.credentials or credentials.default_path(self.getenv)
  if not p then fail(M.AUTH, "no credentials path: set SMUGOAUTH_CREDENTIALS or HOME, or give --credentials") end
  return p
end

-- The client for the configured consumer; a config problem ends with status 3.
function Ctx:client()
  if self._client then return self._client end
  local debug = false
  if self.debug then
    local stderr = self.stderr
    debug = function(line) stderr:write(safe(line), "\n") end
  end
  local ok, client, err = pcall(smugoauth.from_config, self:config_path(), { debug = debug })
  if not ok then fail(M.AUTH, "config: " .. tostring(client):gsub("^[^:]*:%d+: ", "")) end
  if not client then fail(M.AUTH, "config: " .. tostring(err.message or err)) end
  self._client = client
  return client
end

-- A session with the stored credentials; not logged in ends with status 3.
function Ctx:session()
  local client = self:client()
  local path = self:credentials_path()
  local token, secret, record = smugoauth.load_credentials(path)
  if not token then fail(M.AUTH, tostring(secret.message or secret)) end
  -- before any request: the token goes only where it was issued
  local ok, err = credentials.check(record, client, { credentials = path, config = function(field)
    local env = "SMUGOAUTH_" .. field:upper()
    local v = os.getenv(env)
    if field ~= "key" and v and v ~= "" then return env end
    return self:config_path()
  end })
  if not ok then fail(M.AUTH, err.message) end
  return client:session(token, secret)
end

------------------------------------------------------------------ arguments

-- Global options, accepted before or after the command.
local GLOBAL = {
  ["--config"] = { "config", arg = true }, ["--credentials"] = { "credentials", arg = true },
  ["--debug"] = { "debug" }, ["--pretty"] = { "pretty" }, ["--compact"] = { "compact" },
  ["--help"] = { "help" }, ["-h"] = { "help" }, ["--version"] = { "version" },
}

local QUERY = { "query", arg = true, many = true }

local function merged(a, b)
  local t = {}
  for k, v in pairs(a) do t[k] = v end
  for k, v in pairs(b or {}) do t[k] = v end
  return t
end

-- NAME=VALUE strings into {name, value} pairs.
local function pairs_of(cmd, opt, list)
  local out = {}
  for _, s in ipairs(list or {}) do
    local k, v = s:match("^([^=]+)=(.*)$")
    if not k then usage(cmd, opt .. " expects NAME=VALUE (got '" .. s .. "')") end
    out[#out + 1] = { k, v }
  end
  return out
end

-- An API path from PATH or a URL on the API origin.
local function check_path(cmd, p)
  if p:sub(1, 1) ~= "/" and not p:match("^https?://") then
    usage(cmd, "PATH must start with / (e.g. /api/v2!authuser), got '" .. p .. "'")
  end
end

local function api_path(ctx, cmd, p)
  if p:sub(1, 1) == "/" then return p end
  local origin = ctx:client().api_origin
  if p:sub(1, #origin + 1) == origin .. "/" then return p:sub(#origin + 1) end
  usage(cmd, "URL " .. p:gsub("[?#].*", "") .. " is not on the API origin " .. origin)
end

------------------------------------------------------------------ commands

local COMMANDS, ORDER = {}, {}

local function command(def)
  COMMANDS[def.name] = def
  ORDER[#ORDER + 1] = def.name
end

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

------------------------------------------------------------ login

local ACCESS = { Public = true, Full = true }
local PERMISSIONS = { Read = true, Add = true, Modify = true }

-- After a successful trade: store the token, tell who is logged in.
local function finish_login(ctx, client, at, ats)
  local path = ctx:credentials_path()
  local ok, err = client:save_credentials(at, ats, path)
  if not ok then ctx:fail_err(err, "login: could not store the credentials") end
  local api = client:session(at, ats)
  local res, rerr = api:get("/api/v2!authuser")
  if not res then ctx:fail_err(rerr, "login: stored the credentials, but GET /api/v2!authuser failed") end
  local body = res:json()
  local user = type(body) == "table" and type(body.Response) == "table" and body.Response.User or {}
  local name = type(user.NickName) == "string" and user.NickName or "?"
  if type(user.Name) == "string" and user.Name ~= "" then name = name .. " (" .. user.Name .. ")" end
  ctx:out("Logged in as ", safe(name), "; credentials stored in ", path, "\n")
  return M.OK
end

-- Open url in a browser with xdg-open when a display is present. No shell
-- command line holds the URL: it goes to the shell in a new 0600 file
-- (mkstemp) that the shell reads and removes before it execs the opener, so
-- only the opener's own argv (and the browser's) holds it. For `login --web`
-- that is the one-shot start URL, never the request token.
local function default_open_url(ctx, url)
  local d, w = ctx.getenv("DISPLAY"), ctx.getenv("WAYLAND_DISPLAY")
  if (not d or d == "") and (not w or w == "") then return false end
  local ok, tmp = pcall(os.tmpname)
  if not ok then return false end
  local f = io.open(tmp, "wb")
  if not f or not f:write(url) or not f:close() then
    if f then f:close() end
    os.remove(tmp)
    return false
  end
  local qt = "'" .. tmp:gsub("'", [['\'']]) .. "'"
  os.execute("(u=$(cat " .. qt .. "); rm -f " .. qt .. "; exec xdg-open \"$u\") >/dev/null 2>&1 </dev/null &")
  return true
end

local function html_page(title, text)
  return "<!doctype html><html><head><meta charset=\"utf-8\"><title>smugoauth: " .. title ..
    "</title></head><body><h1>" .. title .. "</h1><p>" .. text .. "</p></body></html>\n"
end

local HTML = { ["Content-Type"] = "text/html; charset=utf-8", ["Cache-Control"] = "no-store",
               ["Content-Security-Policy"] = "default-src 'none'",
               ["X-Content-Type-Options"] = "nosniff", ["Referrer-Policy"] = "no-referrer",
               ["Connection"] = "close" }

local function hex(n)
  return (core.random_bytes(n):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local LOOPBACK_HEX = { ["0100007F"] = true, ["7F000001"] = true }   -- 127.0.0.1, either byte order

-- The uid that owns the client end of a loopback TCP connection to our port,
-- from /proc/net/tcp and tcp6 (Linux), or nil when it cannot be told (no /proc,
-- not listed). peer is "ip:port" as httpd gives it.
local function peer_uid(peer, port)
  local pport = tonumber(tostring(peer):match(":(%d+)$"))
  if not pport then return nil end
  local lp, rp = (":%04X"):format(pport), (":%04X"):format(port)
  for _, table_path in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    local f = io.open(table_path, "rb")
    if f then
      for line in f:lines() do
        local la, ra, uid = line:match("^%s*%d+:%s+(%x+:%x+)%s+(%x+:%x+)%s+%x+%s+%x+:%x+%s+%x+:%x+%s+%x+%s+(%d+)")
        if la and la:sub(-5) == lp and ra:sub(-5) == rp and LOOPBACK_HEX[ra:sub(-13, -6)] then
          f:close()
          return tonumber(uid)
        end
      end
      f:close()
    end
  end
  return nil
end

local COOKIE = "smugoauth_login"

-- The browser flow: a one-shot callback server on 127.0.0.1, advertised as
-- http://127.0.0.1:PORT (the address it is bound to: RFC 8252 7.3, 8.3).
-- The login is bound to the browser that starts it: the start URL
-- /start?s=<128-bit secret> sets a random cookie and redirects to the
-- provider; /callback needs that cookie as well as the request token. A second
-- visit to the start URL aborts the login. On Linux, requests from another
-- local user (the owner of the client socket) are refused outright.
local function login_web(ctx, client, opts, extra, port, timeout)
  local httpd = require "smugoauth.httpd"
  local secret, cookie = hex(16), hex(32)
  local me = core.getuid()
  local got, warned = {}, {}
  local rt, authorize, bound
  local srv <close>, serr = httpd.new {
    host = "127.0.0.1", port = port, max_body = 4096,
    log = function(msg) ctx:note("smugoauth: login: callback server: ", one_line(msg), "\n") end,
    handler = function(req)
      local uid = peer_uid(req.peer, bound)
      if uid and uid ~= me then
        if not warned[uid] then
          warned[uid] = true
          ctx:note(("smugoauth: login: refused a request from another local user (uid %d)\n"):format(uid))
        end
        return 403, HTML, html_page("Refused", "This login belongs to another user of this computer.")
      end
      if req.path == "/start" then
        local s = req.params.s
        if req.method ~= "GET" or type(s) ~= "string" or not core.equal(s, secret) then
          return 404, HTML, html_page("Not found", "This link is not for the login in progress.")
        end
        if got.started then
          got.aborted = true
          return 409, HTML, html_page("Login aborted", "This login link was opened twice, so someone " ..
            "else may have it: the login was aborted and nothing was stored. Run smugoauth login again.")
        end
        got.started = true
        return 302, { Location = authorize, ["Cache-Control"] = "no-store", ["Referrer-Policy"] = "no-referrer",
          ["Set-Cookie"] = ("%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax")
            :format(COOKIE, cookie, math.ceil(timeout) + 60),
          Connection = "close" }, ""
      end
      if req.path ~= "/callback" then
        return 404, { ["Content-Type"] = "text/plain", Connection = "close" }, "not found\n"
      end
      local c = req.cookies[COOKIE]
      if not got.started or type(c) ~= "string" or not core.equal(c, cookie) then
        return 403, HTML, html_page("Wrong browser", "This browser did not start the login in progress. " ..
          "Open the link smugoauth printed in this browser.")
      end
      local p = req.params
      if type(p.oauth_token) ~= "string" or not core.equal(p.oauth_token, rt) then
        return 400, HTML, html_page("Wrong login", "This link is not for the login in progress. " ..
          "Use the link smugoauth printed last.")
      end
      if type(p.oauth_verifier) ~= "string" or p.oauth_verifier == "" then
        got.denied = true
        return 400, HTML, html_page("Not authorized", "The authorization was not granted.")
      end
      got.verifier = p.oauth_verifier
      return 200, HTML, html_page("Authorized", "You can close this window and return to the terminal.")
    end,
  }
  if not srv then fail(M.ERROR, "login: cannot listen on 127.0.0.1:" .. port .. ": " .. tostring(serr)) end
  bound = srv.port
  local base = ("http://127.0.0.1:%d"):format(bound)
  local callback = base .. "/callback"
  local rts
  rt, rts = client:request_token(callback)
  if not rt then ctx:fail_err(rts, "login: could not get a request token") end
  authorize = client:authorize_url(rt, extra)
  local start_url = base .. "/start?s=" .. secret
  ctx:note("Go to ", start_url, " in a web browser.\n")
  if not opts["no-browser"] then
    (ctx.open_url or function(u) return default_open_url(ctx, u) end)(start_url)
  end
  ctx:note(("Waiting up to %d s for the authorization at %s ...\n"):format(math.floor(timeout), callback))
  local deadline = core.monotime() + timeout
  while not got.verifier and not got.denied and not got.aborted do
    local left = deadline - core.monotime()
    if left <= 0 then
      fail(M.NETWORK, ("login: no authorization arrived within %d s (timeout)"):format(math.floor(timeout)))
    end
    local ok, perr = srv:step(math.min(left, 0.25))
    if not ok then fail(M.ERROR, "login: callback server failed: " .. tostring(perr)) end
  end
  -- let the browser read its page before the server goes away
  local until_t = core.monotime() + 2
  while srv:connections() > 0 and core.monotime() < until_t do srv:step(0.05) end
  srv:close()
  if got.aborted then
    fail(M.ERROR, "login: aborted: the start URL was opened twice (someone else may have opened it); " ..
      "nothing was stored. Run `smugoauth login --web` again")
  end
  if got.denied then fail(M.OAUTH, "login: the authorization was not granted") end
  local at, ats = client:access_token(rt, rts, got.verifier)
  if not at then ctx:fail_err(ats, "login: the authorization was refused") end
  return finish_login(ctx, client, at, ats)
end

command {
  name = "login", summary = "log in (six-digit code, or --web for a browser callback) and store the token",
  options = {
    ["--web"] = { "web" }, ["--port"] = { "port", arg = true }, ["--timeout"] = { "timeout", arg = true },
    ["--no-browser"] = { "no-browser" }, ["--access"] = { "access", arg = true },
    ["--permissions"] = { "permissions", arg = true },
  },
  max = 0,
  help = [[
usage: smugoauth login [--access A] [--permissions P]
       smugoauth login --web [--port N] [--timeout S] [--no-browser] [--access A] [--permissions P]

Log in to SmugMug and store the access token in the credentials file (mode 0600,
written atomically). The token secret is never printed.

Without --web: prints the authorization URL on stderr; open it in a browser,
approve, and type the six-digit code you are shown at the prompt (stdin).

With --web: listens on 127.0.0.1 (a one-shot server) for the redirect to
http://127.0.0.1:PORT/callback, and prints a one-time start URL on stderr
(http://127.0.0.1:PORT/start?s=...), which it also opens in a browser when a
display is present. The start URL sends that browser to SmugMug and marks it
with a cookie: only that browser can complete the login. If the start URL is
opened a second time, the login is aborted and nothing is stored.

Options:
  --web              use the browser callback instead of the code
  --port N           callback port for --web (default: any free port)
  --timeout S        seconds --web waits for the callback (default 300)
  --no-browser       with --web, only print the start URL
  --access A         Public or Full (default Full)
  --permissions P    Read, Add or Modify (default Modify)
]],
  run = function(ctx, opts)
    local extra = { Access = opts.access or "Full", Permissions = opts.permissions or "Modify" }
    if not ACCESS[extra.Access] then usage("login", "--access must be Public or Full") end
    if not PERMISSIONS[extra.Permissions] then usage("login", "--permissions must be Read, Add or Modify") end
    if not opts.web and (opts.port or opts.timeout or opts["no-browser"]) then
      usage("login", "--port, --timeout and --no-browser go with --web")
    end
    local port = math.tointeger(tonumber(opts.port or 0))
    if not port or port < 0 or port > 65535 then usage("login", "--port must be 0..65535") end
    local timeout = tonumber(opts.timeout or WEB_TIMEOUT)
    if not timeout or timeout < 1 or timeout > 86400 then usage("login", "--timeout must be 1..86400 seconds") end
    local client = ctx:client()
    ctx:credentials_path()
    if opts.web then return login_web(ctx, client, opts, extra, port, timeout) end
    local rt, rts = client:request_token("oob")
    if not rt then ctx:fail_err(rts, "login: could not get a request token") end
    ctx:note("Go to ", client:authorize_url(rt, extra), " in a web browser.\n")
    ctx:note("Enter the six-digit code: ")
    local code = ctx.stdin:read("l")
    if code == nil or code:match("^%s*$") then fail(M.AUTH, "login: no code entered") end
    local at, ats = client:access_token(rt, rts, code)
    if not at then ctx:fail_err(ats, "login: the code was refused") end
    return finish_login(ctx, client, at, ats)
  end,
}

------------------------------------------------------------ whoami

command {
  name = "whoami", summary = "show whom the stored credentials log in as",
  options = { ["--json"] = { "json" } }, max = 0,
  help = [[
usage: smugoauth whoami [--json]

GET /api/v2!authuser with the stored credentials and print "NickName (Name)".

Options:
  --json    print the whole User object as JSON
]],
  run = function(ctx, opts)
    local api = ctx:session()
    local res, err = api:get("/api/v2!authuser")
    if not res then ctx:fail_err(err, "whoami", true) end
    local body = res:json()
    local user = type(body) == "table" and type(body.Response) == "table" and body.Response.User
    if type(user) ~= "table" then fail(M.ERROR, "whoami: no Response.User in the answer to GET /api/v2!authuser") end
    if opts.json then
      ctx:json_out(user)
    else
      local s = tostring(user.NickName)
      if type(user.Name) == "string" and user.Name ~= "" then s = s .. " (" .. user.Name .. ")" end
      ctx:out(safe(s), "\n")
    end
    return M.OK
  end,
}

------------------------------------------------------------ get, post, patch, delete

-- Print the answer of an API call and turn a failure into its status.
local function finish_call(ctx, name, res, err)
  if not res then
    if err.code == "http" and err.body and err.body ~= "" then ctx:body_out(err.body) end
    ctx:fail_err(err, name, true)
  end
  ctx:body_out(res.body)
  local body = cjson.decode(res.body or "")
  if type(body) == "table" and body.stat == "fail" then
    fail(M.ERROR, ("%s: the API answered \"stat\": \"fail\": %s"):format(name,
      tostring(body.message or body.Message or "no message")))
  end
  return M.OK
end

command {
  name = "get", summary = "GET an API path and print the JSON",
  options = { ["-q"] = QUERY, ["--query"] = QUERY, ["--paginate"] = { "paginate" } },
  min = 1, max = 1, args = "PATH",
  help = [[
usage: smugoauth get PATH [-q NAME=VALUE]... [--paginate]

GET an API v2 path (e.g. /api/v2!authuser, /api/v2/user/NICK!albums) with the
stored credentials and print the JSON answer. PATH may also be a full URL on
the API origin.

Options:
  -q, --query NAME=VALUE   add a query parameter (repeatable): -q count=50 -q _expand=User
  --paginate               follow Response.Pages.NextPage to the end and print the
                           items of every page as one JSON array
]],
  run = function(ctx, opts, pos)
    check_path("get", pos[1])
    local query = pairs_of("get", "-q", opts.query)
    local path = api_path(ctx, "get", pos[1])
    local api = ctx:session()
    if not opts.paginate then
      local res, err = api:get(path, query)
      return finish_call(ctx, "get", res, err)
    end
    local items = {}
    for item, err in api:each(path, query) do
      if not item then ctx:fail_err(err, "get", true) end
      items[#items + 1] = item
    end
    if #items == 0 then ctx:out("[]\n") else ctx:json_out(items) end
    return M.OK
  end,
}

local function read_json_arg(ctx, cmd, v)
  if v:sub(1, 1) == "@" then
    local name = v:sub(2)
    local text
    if name == "-" then
      text = ctx.stdin:read("a")
    else
      local f, oerr = io.open(name, "rb")
      if not f then usage(cmd, "--json " .. v .. ": " .. tostring(oerr)) end
      text = f:read("a")
      f:close()
    end
    if not text then usage(cmd, "--json " .. v .. ": cannot be read") end
    v = text
  end
  local ok, jerr = cjson.decode(v)
  if ok == nil then usage(cmd, "--json: not valid JSON (" .. tostring(jerr) .. ")") end
  return v
end

local function verb_command(name, method, what)
  local FIELD = { "field", arg = true, many = true }
  command {
    name = name, summary = what,
    options = { ["-q"] = QUERY, ["--query"] = QUERY, ["-f"] = FIELD, ["--field"] = FIELD,
                ["--json"] = { "json", arg = true } },
    min = 1, max = 1, args = "PATH",
    help = ([[
usage: smugoauth %s PATH [--json JSON | -f NAME=VALUE...] [-q NAME=VALUE]...

Send a signed %s to an API v2 path with the stored credentials and print the
JSON answer. PATH may also be a full URL on the API origin.

Options:
  --json JSON              the request body, sent as application/json (not part of
                           the signature); @FILE reads it from a file, @- from stdin
  -f, --field NAME=VALUE   a form field (repeatable), sent as
                           application/x-www-form-urlencoded and signed
  -q, --query NAME=VALUE   a query parameter (repeatable)
]]):format(name, method),
    run = function(ctx, opts, pos)
      check_path(name, pos[1])
      if opts.json and opts.field then usage(name, "give --json or -f, not both") end
      local query = pairs_of(name, "-q", opts.query)
      local form = opts.field and pairs_of(name, "-f", opts.field) or nil
      local body = opts.json and read_json_arg(ctx, name, opts.json) or nil
      local path = api_path(ctx, name, pos[1])
      local api = ctx:session()
      local res, err = api:request { method = method, path = path, query = query, form = form,
        body = body, content_type = body and "application/json" or nil }
      return finish_call(ctx, name, res, err)
    end,
  }
end
verb_command("post", "POST", "POST to an API path (--json or -f fields)")
verb_command("patch", "PATCH", "PATCH an API path (--json or -f fields)")
verb_command("delete", "DELETE", "DELETE an API path")

------------------------------------------------------------ upload

local function human(n)
  if n < 1024 then return ("%d B"):format(n) end
  local units = { "KiB", "MiB", "GiB", "TiB" }
  local i = 0
  repeat n, i = n / 1024, i + 1 until n < 1024 or i == #units
  return ("%.1f %s"):format(n, units[i])
end

-- A progress bar on stderr for one file.
local function progress_bar(ctx, name)
  name = safe(name)                                  -- valid UTF-8 from here on
  if utf8.len(name) > 24 then name = name:sub(1, utf8.offset(name, 22) - 1) .. "..." end
  local shown, last = false, -1
  local bar = {}
  function bar.update(sent, total)
    if total <= 0 then return end
    local pct = math.floor(sent * 100 / total)
    if pct == last then return end
    last, shown = pct, true
    local width = 30
    local fill = math.floor(width * sent / total)
    ctx:note(("\r%-24s [%s%s] %3d%% %s / %s\27[K"):format(name, ("#"):rep(fill), ("-"):rep(width - fill),
      pct, human(sent), human(total)))
  end
  function bar.finish()
    if shown then ctx:note("\n") end
  end
  return bar
end

local STOP_UPLOADS = { network = true, tls = true, timeout = true, oauth = true, config = true }

command {
  name = "upload", summary = "upload files to an album",
  options = { ["--title"] = { "title", arg = true }, ["--caption"] = { "caption", arg = true },
              ["--keywords"] = { "keywords", arg = true }, ["--replace"] = { "replace", arg = true },
              ["--timeout"] = { "timeout", arg = true } },
  min = 2, args = "ALBUM FILE...",
  help = [[
usage: smugoauth upload ALBUM FILE... [--title T] [--caption C] [--keywords K1,K2]
                                      [--replace IMAGEURI] [--timeout S]

Upload each FILE to ALBUM (an album URI /api/v2/album/KEY, or just KEY) and
print the ImageUri of each, one a line. A progress bar is shown on stderr when
stderr is a terminal. Files are streamed, never read whole. A FILE that cannot
be read is a usage error (2) and nothing is uploaded; when one upload fails the
others are still tried (not after a network or OAuth failure) and the status is
that of the first failure.

Options:
  --title T            title of each image
  --caption C          caption of each image
  --keywords K1,K2     comma-separated keywords
  --replace IMAGEURI   replace that image (one FILE only)
  --timeout S          seconds allowed per file (default 3600)
]],
  run = function(ctx, opts, pos)
    local album = pos[1]
    if album:match("^[%w%-_]+$") then album = "/api/v2/album/" .. album end
    if not album:match("^/api/v2/album/[%w%-_]+$") then
      usage("upload", "ALBUM must be an album URI /api/v2/album/KEY or a KEY, got '" .. pos[1] .. "'")
    end
    local files = table.move(pos, 2, #pos, 1, {})
    if opts.replace and #files > 1 then usage("upload", "--replace takes one FILE") end
    local timeout = tonumber(opts.timeout or UPLOAD_TIMEOUT)
    if not timeout or timeout <= 0 then usage("upload", "--timeout must be a positive number of seconds") end
    for _, file in ipairs(files) do
      local f, oerr = io.open(file, "rb")
      if f then
        local _, rerr = f:read(0)     -- nil, message for a directory
        f:close()
        oerr = rerr
      end
      if oerr then usage("upload", "cannot read " .. file .. " (" .. tostring(oerr):gsub("^.*: ", "") .. ")") end
    end
    local keywords
    if opts.keywords then
      keywords = {}
      for k in opts.keywords:gmatch("[^,]+") do
        k = k:match("^%s*(.-)%s*$")
        if k ~= "" then keywords[#keywords + 1] = k end
      end
    end
    local api = ctx:session()
    local status = M.OK
    for _, file in ipairs(files) do
      local bar = ctx.isatty(2) and progress_bar(ctx, file:match("([^/]+)$") or file) or nil
      local res, err = api:upload { album = album, file = file, title = opts.title, caption = opts.caption,
        keywords = keywords, replace = opts.replace, timeout = timeout, on_progress = bar and bar.update }
      if bar then bar.finish() end
      if res then
        local body = res:json()
        local uri = type(body) == "table" and type(body.Image) == "table" and body.Image.ImageUri
        ctx:out(safe(uri or "?"), "\n")
        if ctx.stdout.flush then ctx.stdout:flush() end
      else
        local st = ctx:report(err, "upload: " .. file, true)
        if status == M.OK then status = st end
        if STOP_UPLOADS[err.code] then break end
      end
    end
    return status
  end,
}

------------------------------------------------------------ logout

command {
  name = "logout", summary = "remove the stored credentials", max = 0,
  help = [[
usage: smugoauth logout

Remove the stored credentials file. (To revoke the application's access
itself, use your SmugMug account settings.)
]],
  run = function(ctx)
    local path = ctx:credentials_path()
    if not core.file_mode(path) then
      ctx:out("Not logged in (no ", path, ")\n")
      return M.OK
    end
    local ok, err = credentials.remove(path)
    if not ok then ctx:fail_err(err, "logout") end
    ctx:out("Logged out: removed ", path, "\n")
    return M.OK
  end,
}

------------------------------------------------------------ help

command {
  name = "help", summary = "show the help of a command", max = 1, args = "[COMMAND]",
  help = "usage: smugoauth help [COMMAND]\n\nShow the help of smugoauth or of one of its commands.\n",
  run = function(ctx, _, pos)
    if pos[1] then
      local cmd = COMMANDS[pos[1]]
      if not cmd then usage(nil, "unknown command '" .. pos[1] .. "'") end
      ctx:out(cmd.help, "\n", GLOBAL_HELP)
    else
      ctx:out(M.help())
    end
    return M.OK
  end,
}

--- The top-level help text.
function M.help()
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

------------------------------------------------------------------ main

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

local function run(ctx, argv)
  local cmd, opts, pos = parse(argv)
  ctx.opts = opts
  if opts.version then
    ctx:out(smugoauth._VERSION, "\n")
    return M.OK
  end
  if opts.help then
    if cmd then ctx:out(cmd.help, "\n", GLOBAL_HELP) else ctx:out(M.help()) end
    return M.OK
  end
  if not cmd then
    ctx:note(M.help())
    return M.USAGE
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
-- argv holds the arguments after the program name (as `arg` does).
function M.main(argv, env)
  local ctx = new_ctx(env or {})
  local ok, status = xpcall(run, function(e)
    if getmetatable(e) == Failure then return e end
    return { internal = tostring(e), traceback = debug.traceback(nil, 2) }
  end, ctx, argv or {})
  if ok then
    status = math.tointeger(status) or M.OK
  elseif getmetatable(status) == Failure then
    ctx:note("smugoauth: ", status.message, "\n")
    if ctx.debug_rest then ctx:note(ctx.debug_rest, "\n") end
    status = status.status
  elseif status.internal:find("interrupted!", 1, true) then
    ctx:note("\nsmugoauth: interrupted\n")
    status = 130
  else
    ctx:note("smugoauth: internal error: ", one_line(status.internal), "\n")
    if ctx.debug then ctx:note(status.traceback, "\n") end
    status = M.ERROR
  end
  if ctx.stdout.flush then ctx.stdout:flush() end
  return status
end

M.COMMANDS = COMMANDS
return M
