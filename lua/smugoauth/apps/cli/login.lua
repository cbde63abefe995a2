--- smugoauth.apps.cli.login: the `login` and `logout` commands.
--
-- `login --web` is a one-shot callback server on 127.0.0.1, advertised as
-- http://127.0.0.1:PORT (the address it is bound to: RFC 8252 7.3, 8.3). The
-- login is bound to the browser that starts it: the start URL
-- /start?s=<128-bit secret> answers with smugoauth.apps.callback's redirect
-- to the provider, which sets a sealed cookie holding the request token;
-- /callback needs that cookie and that token (smugoauth.apps.callback's
-- check). A second visit to the start URL aborts the login. On Linux,
-- requests from another local user (the owner of the client socket) are
-- refused outright. The server runs on smugoauth.loop's default loop, which
-- the wait below steps (`srv:step`).
-- @module smugoauth.apps.cli.login
local core = require "smugoauth.core"
local credentials = require "smugoauth.credentials"
local server = require "smugoauth.http.server"
local html = require "smugoauth.http.html"
local callback = require "smugoauth.apps.callback"
local context = require "smugoauth.apps.cli.context"
local output = require "smugoauth.apps.cli.output"
local cliconfig = require "smugoauth.apps.cli.config"

local status, fail, usage = context.status, context.fail, context.usage
local safe, one_line = output.safe, output.one_line

local WEB_TIMEOUT = 300         -- seconds to wait for the browser callback
local COOKIE = "smugoauth_login"
local CLOSE = { Connection = "close" }   -- every answer of the one-shot server closes

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
  return status.OK
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

local function hex(n)
  return (assert(core.random_bytes(n)):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local LOOPBACK_HEX = { ["0100007F"] = true, ["7F000001"] = true }   -- 127.0.0.1, either byte order

-- The uid that owns the client end of a loopback TCP connection to our port,
-- from /proc/net/tcp and tcp6 (Linux), or nil when it cannot be told (no /proc,
-- not listed). peer is "ip:port" as the server gives it.
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

-- The browser flow (see the module comment).
local function login_web(ctx, client, opts, extra, port, timeout)
  local secret = hex(16)
  local flow = callback.new { key = assert(core.random_bytes(32)), cookie = COOKIE, ttl = math.ceil(timeout) + 60,
                              headers = CLOSE }
  local me = core.getuid()
  local got, warned = {}, {}
  local rt, rts, authorize, bound
  local srv <close>, serr = server.new {
    host = "127.0.0.1", port = port, max_body = 4096,
    log = function(msg) ctx:note("smugoauth: login: callback server: ", one_line(msg), "\n") end,
    handler = function(req)
      local uid = peer_uid(req.peer, bound)
      if uid and uid ~= me then
        if not warned[uid] then
          warned[uid] = true
          ctx:note(("smugoauth: login: refused a request from another local user (uid %d)\n"):format(uid))
        end
        return html.problem(403, "Refused", "This login belongs to another user of this computer.", CLOSE)
      end
      if req.path == "/start" then
        local s = req.params.s
        if req.method ~= "GET" or type(s) ~= "string" or not core.equal(s, secret) then
          return html.problem(404, "Not found", "This link is not for the login in progress.", CLOSE)
        end
        if got.started then
          got.aborted = true
          return html.problem(409, "Login aborted", "This login link was opened twice, so someone " ..
            "else may have it: the login was aborted and nothing was stored. Run smugoauth login again.", CLOSE)
        end
        got.started = true
        return flow:start(false, rt, rts, authorize)
      end
      if req.path ~= "/callback" then return html.problem(404, "Not found", "There is no page here.", CLOSE) end
      local rec, why = flow:check(req, false)
      if not rec then
        if why == "denied" then got.denied = true end
        return flow:refuse(why)
      end
      got.verifier = rec.verifier
      return html.render(200, "Authorized", "<p>You can close this window and return to the terminal.</p>", CLOSE)
    end,
  }
  if not srv then fail(status.ERROR, "login: cannot listen on 127.0.0.1:" .. port .. ": " .. tostring(serr)) end
  bound = srv.port
  local base = ("http://127.0.0.1:%d"):format(bound)
  local cb = base .. "/callback"
  rt, rts = client:request_token(cb)
  if not rt then ctx:fail_err(rts, "login: could not get a request token") end
  authorize = client:authorize_url(rt, extra)
  local start_url = base .. "/start?s=" .. secret
  ctx:note("Go to ", start_url, " in a web browser.\n")
  if not opts["no-browser"] then
    (ctx.open_url or function(u) return default_open_url(ctx, u) end)(start_url)
  end
  ctx:note(("Waiting up to %d s for the authorization at %s ...\n"):format(math.floor(timeout), cb))
  local deadline = core.monotime() + timeout
  while not got.verifier and not got.denied and not got.aborted do
    local left = deadline - core.monotime()
    if left <= 0 then
      fail(status.NETWORK, ("login: no authorization arrived within %d s (timeout)"):format(math.floor(timeout)))
    end
    local ok, perr = srv:step(math.min(left, 0.25))
    if not ok then fail(status.ERROR, "login: callback server failed: " .. tostring(perr)) end
  end
  -- let the browser read its page before the server goes away
  local until_t = core.monotime() + 2
  while srv:connections() > 0 and core.monotime() < until_t do srv:step(0.05) end
  srv:close()
  if got.aborted then
    fail(status.ERROR, "login: aborted: the start URL was opened twice (someone else may have opened it); " ..
      "nothing was stored. Run `smugoauth login --web` again")
  end
  if got.denied then fail(status.OAUTH, "login: the authorization was not granted") end
  local at, ats = client:access_token(rt, rts, got.verifier)
  if not at then ctx:fail_err(ats, "login: the authorization was refused") end
  return finish_login(ctx, client, at, ats)
end

local login = {
  name = "login", summary = "log in (six-digit code, or --web for a browser callback) and store the token",
  options = {
    ["--web"] = { "web" }, ["--port"] = { "port", arg = true }, ["--timeout"] = { "timeout", arg = true },
    ["--no-browser"] = { "no-browser" }, ["--access"] = { "access", arg = true, complete = { "Full", "Public" } },
    ["--permissions"] = { "permissions", arg = true, complete = { "Add", "Modify", "Read" } },
    ["--key"] = { "key", arg = true }, ["--secret"] = { "secret", arg = true }, ["--force"] = { "force" },
  },
  max = 0,
  help = [[
usage: smugoauth login [--access A] [--permissions P]
       smugoauth login --web [--port N] [--timeout S] [--no-browser] [--access A] [--permissions P]
       smugoauth login --key K [--secret S] [--force] [other options]

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

With --key: first stores the config {"key": K, "secret": S} (mode 0600, written
atomically) where --config or SMUGOAUTH_CONFIG says, else in
$XDG_CONFIG_HOME/smugoauth/config.json (~/.config/smugoauth/config.json), then
logs in with it (with the code, or --web). Without --secret the secret is read
from stdin, not echoed on a terminal: a secret on the command line can be seen
by the other users of this computer (ps) and stays in the shell's history. A
file holding another API key is only replaced with --force; one holding the
same key keeps its other settings (origins, ca_file). The secret is never
printed.

Options:
  --web              use the browser callback instead of the code
  --port N           callback port for --web (default: any free port)
  --timeout S        seconds --web waits for the callback (default 300)
  --no-browser       with --web, only print the start URL
  --access A         Public or Full (default Full)
  --permissions P    Read, Add or Modify (default Modify)
  --key K            store this API key (and secret) as the config, then log in
  --secret S         the API secret for --key (default: read from stdin)
  --force            with --key, replace a config that holds another API key
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
    if opts.key or opts.secret or opts.force then cliconfig.store(ctx, opts) end
    local client = ctx:client()
    ctx:credentials_path()
    if opts.web then return login_web(ctx, client, opts, extra, port, timeout) end
    local rt, rts = client:request_token("oob")
    if not rt then ctx:fail_err(rts, "login: could not get a request token") end
    ctx:note("Go to ", client:authorize_url(rt, extra), " in a web browser.\n")
    ctx:note("Enter the six-digit code: ")
    local code = ctx.stdin:read("l")
    if code == nil or code:match("^%s*$") then fail(status.AUTH, "login: no code entered") end
    local at, ats = client:access_token(rt, rts, code)
    if not at then ctx:fail_err(ats, "login: the code was refused") end
    return finish_login(ctx, client, at, ats)
  end,
}

local logout = {
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
      return status.OK
    end
    local ok, err = credentials.remove(path)
    if not ok then ctx:fail_err(err, "logout") end
    ctx:out("Logged out: removed ", path, "\n")
    return status.OK
  end,
}

return {
  login = login,
  logout = logout,
}
