-- The `smugoauth` command: bin/smugoauth run as a real process against the
-- sandbox for the important paths (login through stdin and through the
-- browser callback, whoami, get, post/patch/delete, upload, logout), and
-- cli.main called in-process for arguments, output styles, exit statuses and
-- secrets. Every wait is bounded; the sandbox is always stopped.
local sandbox = require "support.sandbox"
local cli = require "smugoauth.apps.cli"
local core = require "smugoauth.core"
local json = require "smugoauth.json"
local cjson = require "cjson.safe"

local files = require "support.files"
local proc = require "support.proc"
local q = proc.q
local write_file, read_file, tmpdir, wait_for = files.write_file, files.read_file, files.tmpdir, files.wait_for

local CONSUMER_SECRET = "cli-consumer-secret&x y"





local function pwd()
  local p = assert(io.popen("pwd"))
  local s = p:read("l")
  p:close()
  return s
end

local ROOT = pwd()
-- a clean environment for the child: none of ours leaks in, no browser
local ENV = "env -u SMUGOAUTH_DEBUG -u SMUGOAUTH_CONFIG -u SMUGOAUTH_CREDENTIALS -u SMUGOAUTH_API_ORIGIN " ..
            "-u SMUGOAUTH_OAUTH_ORIGIN -u SMUGOAUTH_UPLOAD_ORIGIN -u DISPLAY -u WAYLAND_DISPLAY "

-- Run bin/smugoauth (args: a list, quoted here) to the end, at most 30 s;
-- returns the exit status, stdout and stderr.
local function run(args, o)
  o = o or {}
  return proc.run(ENV .. (o.env or "") .. " timeout 30 " .. (o.bin or "bin/smugoauth") .. " " .. proc.words(args),
                  { cwd = o.cd, stdin = o.stdin, timeout = 40 })
end

-- Start bin/smugoauth in the background with stdin from a FIFO (h.stdin).
local function start(args)
  return proc.spawn(ENV .. "timeout 60 bin/smugoauth " .. proc.words(args), { stdin = true })
end

-- Close its stdin and wait (30 s at most): exit status, stdout, stderr.
local function finish(h)
  return h:finish(30)
end

-- cli.main in-process with captured output.
local sink = require("support.capture").sink

local function call(argv, o)
  o = o or {}
  local out, err = sink(), sink()
  local env = {
    stdout = out, stderr = err,
    stdin = o.stdin or { read = function() return nil end },
    isatty = o.isatty or function() return false end,
    getenv = function(k) return (o.vars or {})[k] end,
    open_url = o.open_url or function() end,
  }
  local rc = cli.main(argv, env)
  return rc, out.text(), err.text()
end

local function one_line_error(err)
  assert.matches("^smugoauth: [^\n]*\n$", err)
  assert.is_nil(err:find("traceback", 1, true))
end

local function mode_of(path)
  local mode = core.file_mode(path)
  return mode and (mode & 0x1ff)
end

-- No secret in a piece of output: the consumer secret, the token secret
-- (plain or percent-encoded) and no signature value.
local function assert_no_secret(text, token_secret)
  for _, s in ipairs { CONSUMER_SECRET, core.percent_encode(CONSUMER_SECRET), token_secret } do
    if s then assert.is_nil(text:find(s, 1, true), "a secret was printed") end
  end
  for v in text:gmatch('oauth_signature="([^"]*)"') do assert.equal("REDACTED", v) end
  for v in text:gmatch("oauth_signature=([^&\"%s]*)") do
    if v ~= "" and v:sub(1, 1) ~= '"' then assert.equal("REDACTED", v) end
  end
  for v in text:gmatch("oauth_signature%%3D([^%%&\"%s]*)") do assert.equal("", v) end
end

describe("smugoauth command", function()
  local sb, dir, config, creds
  local login_rc, login_out, login_err, token_secret

  setup(function()
    sb = sandbox.start { key = "cli-key", secret = CONSUMER_SECRET }
    dir = tmpdir()
    config = dir .. "/config.json"
    creds = dir .. "/cred/credentials.json"
    write_file(config, json.compact { key = sb.key, secret = sb.secret, oauth_origin = sb.origin,
                                      api_origin = sb.origin, upload_origin = sb.origin })
    -- log in once, as a user would: the code typed on stdin
    local h = start { "--config", config, "--credentials", creds, "login" }
    local url = wait_for(function() return read_file(h.err):match("Go to (%S+) in a web browser%.\n") end)
    if url then h.stdin:write(sb:approve(url:match("oauth_token=(%x+)")), "\n") end
    login_rc, login_out, login_err = finish(h)
    local stored = cjson.decode(read_file(creds))
    token_secret = type(stored) == "table" and stored.secret or nil
  end)

  teardown(function()
    if sb then sb:stop() end
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)

  -- bin/smugoauth with the test's config and credentials
  local function smug(args, o)
    local full = { "--config", config, "--credentials", creds }
    for _, a in ipairs(args) do full[#full + 1] = a end
    return run(full, o)
  end

  -- cli.main with the test's config and credentials
  local function main(args, o)
    local full = { "--config", config, "--credentials", creds }
    for _, a in ipairs(args) do full[#full + 1] = a end
    return call(full, o)
  end

  describe("as a process", function()
    it("logs in through stdin and stores the credentials with mode 0600", function()
      assert.equal(0, login_rc)
      assert.matches("Enter the six%-digit code: ", login_err)
      assert.matches("&Access=Full&Permissions=Modify in a web browser", login_err)
      assert.equal("Logged in as tester (Sandbox Tester); credentials stored in " .. creds .. "\n", login_out)
      assert.equal(tonumber("600", 8), mode_of(creds))
      assert.is_string(token_secret)
      assert_no_secret(login_out .. login_err, token_secret)
    end)

    it("whoami prints NickName and Name, or the JSON", function()
      local rc, out, err = smug { "whoami" }
      assert.equal(0, rc)
      assert.equal("tester (Sandbox Tester)\n", out)
      assert.equal("", err)
      rc, out = smug { "whoami", "--json" }
      assert.equal(0, rc)
      assert.matches("^{[^\n]*}\n$", out)       -- piped: compact
      assert.equal("tester", cjson.decode(out).NickName)
    end)

    it("get passes -q parameters", function()
      local rc, out, err = smug { "get", "/api/v2/user/tester!albums", "-q", "count=5", "-q", "start=11" }
      assert.equal(0, rc)
      assert.equal("", err)
      local r = cjson.decode(out).Response
      assert.equal(5, #r.Album)
      assert.equal("Album 11", r.Album[1].Name)
      assert.equal(11, r.Pages.Start)
      assert.equal(250, r.Pages.Total)
    end)

    it("get --paginate prints the items of every page as one array", function()
      local rc, out, err = smug { "get", "/api/v2/user/tester!albums", "--paginate", "-q", "count=40" }
      assert.equal(0, rc)
      assert.equal("", err)
      local items = cjson.decode(out)
      assert.equal(250, #items)
      local seen = {}
      for i, a in ipairs(items) do
        assert.equal("Album " .. i, a.Name)
        assert.is_nil(seen[a.AlbumKey])
        seen[a.AlbumKey] = true
      end
    end)

    it("get --paginate stops at an error with its exit status", function()
      local rc, _, err = smug { "get", "/api/v2/user/nobody!albums", "--paginate" }
      assert.equal(1, rc)
      assert.matches("404", err)
    end)

    it("post, patch and delete an album with --json", function()
      local rc, out = smug { "post", "/api/v2/user/tester!albums", "--json", '{"Name": "CLI album"}' }
      assert.equal(0, rc)
      local album = cjson.decode(out).Response.Album
      assert.equal("CLI album", album.Name)
      local uri = album.Uri
      rc, out = smug { "patch", uri, "--json", '{"Title": "Renamed"}' }
      assert.equal(0, rc)
      assert.equal("Renamed", cjson.decode(out).Response.Album.Title)
      rc, out = smug { "get", uri }
      assert.equal(0, rc)
      assert.equal("Renamed", cjson.decode(out).Response.Album.Title)
      rc = smug { "delete", uri }
      assert.equal(0, rc)
      local err
      rc, out, err = smug { "get", uri }
      assert.equal(1, rc)
      assert.equal(404, cjson.decode(out).Code)       -- the error body on stdout
      one_line_error(err)
      assert.matches("404", err)
    end)

    it("post -f sends signed form fields, --json a JSON body", function()
      local rc, out = smug { "post", "/api/v2!echo", "-f", "a=1", "-f", "b=x y&z", "-q", "q=1" }
      assert.equal(0, rc)
      local e = cjson.decode(out)
      assert.equal("POST", e.method)
      assert.equal("application/x-www-form-urlencoded", e.content_type)
      assert.equal("a=1&b=x%20y%26z", e.body)
      assert.equal("q=1", e.query)
      rc, out = smug { "patch", "/api/v2!echo", "--json", '{"k": [1, 2]}' }
      assert.equal(0, rc)
      e = cjson.decode(out)
      assert.equal("PATCH", e.method)
      assert.equal("application/json", e.content_type)
      assert.equal('{"k": [1, 2]}', e.body)
    end)

    it("invalid --json is a usage error, nothing sent", function()
      local before = sb:stats().verified
      local rc, out, err = smug { "post", "/api/v2!echo", "--json", "{nope" }
      assert.equal(2, rc)
      assert.equal("", out)
      one_line_error(err)
      assert.matches("not valid JSON", err)
      assert.equal(before, sb:stats().verified)
    end)

    it("uploads files and the sandbox has them (size and MD5)", function()
      local file = dir .. "/photo one.jpg"
      local data = core.random_bytes(300000)
      write_file(file, data)
      local small = dir .. "/b.png"
      write_file(small, "png bytes")
      local rc, out, err = smug { "upload", "K0007", file, small, "--title", "T", "--keywords", "a, b" }
      assert.equal(0, rc)
      assert.equal("", err)                        -- stderr is no terminal: no progress bar
      local uris = {}
      for line in out:gmatch("[^\n]+") do uris[#uris + 1] = line end
      assert.equal(2, #uris)
      assert.matches("^/api/v2/image/%x+%-0$", uris[1])
      local images
      rc, out = smug { "get", "/api/v2/album/K0007!images" }
      assert.equal(0, rc)
      images = cjson.decode(out).Response.AlbumImage
      assert.equal(2, #images)
      assert.equal("photo one.jpg", images[1].FileName)
      assert.equal(#data, images[1].ArchivedSize)
      assert.equal(core.digest("md5", data), (images[1].ArchivedMD5:gsub("%x%x", function(h)   -- hex
        return string.char(tonumber(h, 16))
      end)))
      assert.equal("T", images[1].Title)
      assert.equal("a; b", images[1].Keywords)
      assert.equal(9, images[2].ArchivedSize)
      assert.equal("/api/v2/image/" .. images[1].ImageKey .. "-0", uris[1])
    end)

    it("an unreadable FILE is a usage error and nothing is uploaded", function()
      local before = sb:stats().uploads
      local rc, _, err = smug { "upload", "K0001", dir .. "/missing.jpg" }
      assert.equal(2, rc)
      one_line_error(err)
      assert.matches("cannot read .*missing%.jpg", err)
      assert.equal(before, sb:stats().uploads)
    end)

    it("an upload the API refuses exits 1", function()
      local file = dir .. "/x.jpg"
      write_file(file, "x")
      local rc, out, err = smug { "upload", "/api/v2/album/NOSUCH", file }
      assert.equal(1, rc)
      assert.equal("", out)
      one_line_error(err)
      assert.matches("album not found", err)
    end)

    it("logout removes the credentials; whoami then exits 3", function()
      local copy = dir .. "/copy.json"
      assert(os.execute("cp -p " .. q(creds) .. " " .. q(copy)))
      local rc, out = run { "--config", config, "--credentials", copy, "logout" }
      assert.equal(0, rc)
      assert.equal("Logged out: removed " .. copy .. "\n", out)
      assert.is_nil(core.file_mode(copy))
      local err
      rc, out, err = run { "--config", config, "--credentials", copy, "whoami" }
      assert.equal(3, rc)
      assert.equal("", out)
      one_line_error(err)
      assert.matches("no stored credentials %(run `smugoauth login`%)", err)
      rc, out = run { "--config", config, "--credentials", copy, "logout" }
      assert.equal(0, rc)
      assert.matches("^Not logged in", out)
    end)

    it("runs from other directories, and --help exits 0", function()
      local rc, out = run({ "--help" }, { cd = "/", bin = q(ROOT .. "/bin/smugoauth") })
      assert.equal(0, rc)
      for _, name in ipairs { "login", "whoami", "get", "post", "patch", "delete", "upload", "logout" } do
        assert.matches("\n  " .. name .. " ", out, 1, true)
      end
      assert.matches("Exit status:", out, 1, true)
      rc, out = run({ "--config", config, "--credentials", creds, "whoami" },
                    { cd = ROOT .. "/spec", bin = "../bin/smugoauth" })
      assert.equal(0, rc)
      assert.equal("tester (Sandbox Tester)\n", out)
    end)

    it("--debug traces on stderr with every secret redacted", function()
      local all = {}
      for _, args in ipairs {
        { "--debug", "whoami" },
        { "get", "/api/v2/user/tester!albums", "-q", "count=3", "--debug" },
        { "--debug", "post", "/api/v2!echo", "-f", "a=b" },
        { "--debug", "get", "/api/v2/album/none" },
      } do
        local rc, out, err = smug(args)
        assert.is_true(rc == 0 or rc == 1)
        assert.matches("smugoauth: > GET ", err:gsub("> POST", "> GET"), 1, true)
        all[#all + 1] = out .. err
      end
      local text = table.concat(all)
      assert.matches('oauth_signature="REDACTED"', text, 1, true)
      assert_no_secret(text, token_secret)
    end)

    it("a rejected token exits 5 and suggests login", function()
      local bad = dir .. "/bad.json"
      core.write_private(bad, json.compact { token = "0123456789abcdef", secret = "nope", key = "cli-key",
                                             api_origin = sb.origin })
      local rc, out, err = run { "--config", config, "--credentials", bad, "get", "/api/v2!authuser" }
      os.remove(bad)
      assert.equal(5, rc)
      assert.equal("", out)
      one_line_error(err)
      assert.matches("token_rejected", err)
      assert.matches("run `smugoauth login`", err, 1, true)
    end)
  end)

  describe("login --web", function()
    local http
    setup(function() http = core.http_new { timeout = 10 } end)
    teardown(function() if http then http:close() end end)

    local function header(res, name)
      for _, h in ipairs(res.headers) do if h[1]:lower() == name then return h[2] end end
    end

    it("follows the approval redirect to the local callback and stores the token", function()
      local path = dir .. "/web/credentials.json"
      local h = start { "--config", config, "--credentials", path, "login", "--web", "--timeout", "20" }
      local start_url = wait_for(function() return read_file(h.err):match("Go to (%S+) in a web browser%.\n") end)
      assert.is_string(start_url)
      local callback = read_file(h.err):match("at (http://127%.0%.0%.1:%d+/callback)")
      assert.is_string(callback)
      -- the start URL marks this browser and sends it to the authorize page
      local started = assert(http:request { method = "GET", url = start_url })
      assert.equal(302, started.status)
      local url = header(started, "location")
      local cookie = header(started, "set-cookie"):match("^([^;]+)")
      -- the authorize page, then its Approve form
      local page = assert(http:request { method = "GET", url = url })
      assert.equal(200, page.status)
      local token = page.body:match('name="oauth_token" value="(%x+)"')
      assert.equal(url:match("oauth_token=(%x+)"), token)
      local approved = assert(http:request { method = "POST", url = sb.origin .. "/services/oauth/1.0a/authorize",
        headers = { "Content-Type: application/x-www-form-urlencoded" }, body = "oauth_token=" .. token })
      assert.equal(302, approved.status)
      local location = header(approved, "location")
      assert.equal(callback, location:match("^([^?]+)"))
      -- a callback for another token is refused and the login keeps waiting (403, as
      -- the web app answers it: smugoauth.apps.callback)
      local wrong = assert(http:request { method = "GET", headers = { "Cookie: " .. cookie },
        url = location:gsub("oauth_token=%x+", "oauth_token=ffff") })
      assert.equal(403, wrong.status)
      assert.matches("another authorization", wrong.body, 1, true)
      local res = assert(http:request { method = "GET", url = location, headers = { "Cookie: " .. cookie } })
      assert.equal(200, res.status)
      assert.matches("You can close this window", res.body, 1, true)
      local rc, out, err = finish(h)
      assert.equal(0, rc)
      assert.equal("Logged in as tester (Sandbox Tester); credentials stored in " .. path .. "\n", out)
      assert.equal(tonumber("600", 8), mode_of(path))
      local secret = cjson.decode(read_file(path)).secret
      assert_no_secret(out .. err, secret)
      rc, out = run { "--config", config, "--credentials", path, "whoami" }
      assert.equal(0, rc)
      assert.equal("tester (Sandbox Tester)\n", out)
    end)

    it("gives up after --timeout with exit 4", function()
      local rc, out, err = run { "--config", config, "--credentials", dir .. "/never.json",
                                 "login", "--web", "--timeout", "1" }
      assert.equal(4, rc)
      assert.equal("", out)
      assert.matches("Go to ", err, 1, true)
      assert.matches("smugoauth: login: no authorization arrived within 1 s %(timeout%)\n$", err)
      assert.is_nil(core.file_mode(dir .. "/never.json"))
    end)
  end)

  describe("cli.main", function()
    it("is still reachable under the old name smugoauth.cli", function()
      assert.equal(cli, require "smugoauth.cli")
      assert.equal(cli.main, require("smugoauth.cli").main)
    end)

    it("--help works for every command and exits 0", function()
      local rc, out, err = call { "--help" }
      assert.equal(0, rc)
      assert.equal("", err)
      assert.equal(cli.help(), out)
      for name in pairs(cli.COMMANDS) do
        rc, out = call { name, "--help" }
        assert.equal(0, rc)
        assert.matches("^usage: smugoauth " .. name, out)
        local rc2, out2 = call { "help", name }
        assert.equal(0, rc2)
        assert.equal(out, out2)
      end
      rc, out = call { "--version" }
      assert.equal(0, rc)
      assert.matches("^smugoauth ", out)
    end)

    it("argument errors exit 2 with one line", function()
      local cases = {
        { {}, "usage: smugoauth" },
        { { "frobnicate" }, "unknown command 'frobnicate'" },
        { { "--frob", "whoami" }, "unknown option %-%-frob" },
        { { "whoami", "--paginate" }, "whoami: unknown option %-%-paginate" },
        { { "whoami", "extra" }, "unexpected argument 'extra'" },
        { { "get" }, "get: missing PATH" },
        { { "get", "api/v2" }, "PATH must start with /" },
        { { "get", "/a", "/b" }, "unexpected argument '/b'" },
        { { "get", "/a", "-q" }, "%-q needs a value" },
        { { "get", "/a", "-q", "novalue" }, "expects NAME=VALUE" },
        { { "get", "/a", "--paginate=yes" }, "takes no value" },
        { { "post", "/a", "--json", "{}", "-f", "a=b" }, "not both" },
        { { "post", "/a", "--json", "[1,", }, "not valid JSON" },
        { { "patch", "/a", "--json", "@/nonexistent/file" }, "%-%-json @/nonexistent/file" },
        { { "upload", "K1" }, "upload: missing ALBUM FILE" },
        { { "upload", "bad/album", "f" }, "ALBUM must be an album URI" },
        { { "upload", "K1", "a", "b", "--replace", "/api/v2/image/x-0" }, "%-%-replace takes one FILE" },
        { { "login", "--port", "80" }, "go with %-%-web" },
        { { "login", "--web", "--port", "99999" }, "%-%-port must be" },
        { { "login", "--access", "Some" }, "%-%-access must be" },
        { { "whoami", "--pretty", "--compact" }, "not both" },
        { { "help", "nope" }, "unknown command 'nope'" },
      }
      for _, case in ipairs(cases) do
        local rc, out, err = call(case[1], { vars = {} })
        assert.equal(2, rc, table.concat(case[1], " "))
        assert.equal("", out)
        assert.matches(case[2], err)
        if #case[1] > 0 then one_line_error(err) end
      end
    end)

    it("-qNAME=VALUE and --query=NAME=VALUE are accepted", function()
      local rc, out = main { "get", "/api/v2!echo", "-qa=1", "--query=b=2" }
      assert.equal(0, rc)
      assert.equal("a=1&b=2", cjson.decode(out).query)
    end)

    it("JSON is pretty on a terminal, compact when piped, --pretty/--compact force", function()
      local tty = function() return true end
      local rc, out = main({ "whoami", "--json" }, { isatty = tty })
      assert.equal(0, rc)
      assert.matches('^{\n  "AccountStatus": "Active",\n', out)
      rc, out = main { "whoami", "--json" }
      assert.equal(0, rc)
      assert.matches('^{[^\n]+}\n$', out)
      rc, out = main { "--pretty", "whoami", "--json" }
      assert.equal(0, rc)
      assert.matches('^{\n  "AccountStatus"', out)
      rc, out = main({ "whoami", "--json", "--compact" }, { isatty = tty })
      assert.equal(0, rc)
      assert.matches('^{[^\n]+}\n$', out)
    end)

    it("login reads the code from stdin; a wrong or missing code fails", function()
      local path = dir .. "/inproc/credentials.json"
      local err_sink
      local stdin = { read = function()
        local url = err_sink():match("Go to (%S+) in a web browser")
        return sb:approve(url:match("oauth_token=(%x+)"))
      end }
      local out, errs = sink(), sink()
      err_sink = errs.text
      local rc = cli.main({ "--config", config, "--credentials", path, "login", "--access", "Public",
                            "--permissions", "Read", "--debug" },
        { stdin = stdin, stdout = out, stderr = errs, getenv = function() end })
      assert.equal(0, rc)
      assert.matches("&Access=Public&Permissions=Read in a web browser", errs.text())
      assert.matches("^Logged in as tester", out.text())
      assert.equal(tonumber("600", 8), mode_of(path))
      assert.matches("smugoauth: > GET " .. sb.origin .. "/services/oauth/1.0a/getAccessToken", errs.text(), 1, true)
      assert_no_secret(out.text() .. errs.text(), cjson.decode(read_file(path)).secret)

      local rc2, _, err2 = call({ "--config", config, "--credentials", path, "login" },
        { stdin = { read = function() return "123456" end } })
      assert.equal(5, rc2)
      assert.matches("smugoauth: login: the code was refused: .*verifier_invalid", err2)
      one_line_error(err2:match("code: (smugoauth: .*)$") or err2)

      local rc3, _, err3 = call { "--config", config, "--credentials", path, "login" }
      assert.equal(3, rc3)
      assert.matches("smugoauth: login: no code entered\n$", err3)
    end)

    it("upload shows a progress bar on stderr only when it is a terminal", function()
      local file = dir .. "/progress.bin"
      write_file(file, core.random_bytes(200000))
      local rc, out, err = main({ "upload", "K0002", file }, { isatty = function(fd) return fd == 2 end })
      assert.equal(0, rc)
      assert.matches("^/api/v2/image/%x+%-0\n$", out)
      assert.matches("\rprogress.bin%s+%[#+%] 100%% 195.3 KiB / 195.3 KiB", err)
      rc, out, err = main { "upload", "/api/v2/album/K0002", file }
      assert.equal(0, rc)
      assert.matches("^/api/v2/image/%x+%-0\n$", out)
      assert.equal("", err)
    end)

    it("not logged in, a config problem, a refused file mode exit 3", function()
      local rc, out, err = call { "--config", config, "--credentials", dir .. "/none.json", "whoami" }
      local _
      assert.equal(3, rc)
      assert.equal("", out)
      one_line_error(err)
      rc, _, err = call { "--config", dir .. "/missing-config.json", "--credentials", creds, "whoami" }
      assert.equal(3, rc)
      assert.matches("missing%-config%.json: file not found", err)
      one_line_error(err)
      local loose = dir .. "/loose.json"
      write_file(loose, read_file(creds))
      rc, _, err = call { "--config", config, "--credentials", loose, "whoami" }
      assert.equal(3, rc)
      assert.matches("lets others read it", err)
      local bad = dir .. "/badorigin.json"
      write_file(bad, json.compact { key = "k", secret = "s", api_origin = "http://x/y" })
      rc, _, err = call { "--config", bad, "--credentials", creds, "whoami" }
      assert.equal(3, rc)
      one_line_error(err)
      rc, _, err = call({ "--config", config, "whoami" }, { vars = {} })
      assert.equal(3, rc)
      assert.matches("no credentials path", err)
    end)

    it("credentials of another API key are refused with exit 3", function()
      local other = dir .. "/other.json"
      local stored = cjson.decode(read_file(creds))
      stored.key = "another-key"
      core.write_private(other, json.compact(stored))
      local rc, _, err = call { "--config", config, "--credentials", other, "whoami" }
      assert.equal(3, rc)
      assert.matches("another API key", err)
    end)

    it("a network failure exits 4", function()
      local far = dir .. "/far.json"
      write_file(far, json.compact { key = "cli-key", secret = "s", oauth_origin = "http://127.0.0.1:9",
                                     api_origin = "http://127.0.0.1:9", upload_origin = "http://127.0.0.1:9" })
      -- credentials issued for that (unreachable) origin
      local far_creds = dir .. "/far-creds.json"
      core.write_private(far_creds, json.compact { token = "0123456789abcdef", secret = "x", key = "cli-key",
        oauth_origin = "http://127.0.0.1:9", api_origin = "http://127.0.0.1:9", upload_origin = "http://127.0.0.1:9" })
      local rc, out, err = call { "--config", far, "--credentials", far_creds, "get", "/api/v2!authuser" }
      local _
      assert.equal(4, rc)
      assert.equal("", out)
      one_line_error(err)
      assert.matches("network", err)
      rc, _, err = call({ "--config", far, "--credentials", dir .. "/x.json", "login" })
      assert.equal(4, rc)
      assert.matches("could not get a request token", err)
    end)

    it("an HTTP error exits 1 and prints its body on stdout", function()
      local rc, out, err = main { "delete", "/api/v2/album/NOPE" }
      assert.equal(1, rc)
      assert.equal(404, cjson.decode(out).Code)
      one_line_error(err)
      assert.matches("HTTP 404", err)
    end)

    it("a URL on the API origin is taken as its path; another origin is refused", function()
      local rc, out = main { "get", sb.origin .. "/api/v2!authuser" }
      local _, err
      assert.equal(0, rc)
      assert.equal("tester", cjson.decode(out).Response.User.NickName)
      rc, _, err = main { "get", "https://elsewhere.example/api/v2!authuser" }
      assert.equal(2, rc)
      assert.matches("not on the API origin", err)
    end)

    it("--json @FILE and @- read the body", function()
      local body = dir .. "/body.json"
      write_file(body, '{"from": "file"}')
      local rc, out = main { "post", "/api/v2!echo", "--json", "@" .. body }
      assert.equal(0, rc)
      assert.equal('{"from": "file"}', cjson.decode(out).body)
      rc, out = main({ "post", "/api/v2!echo", "--json", "@-" },
        { stdin = { read = function() return '["stdin"]' end } })
      assert.equal(0, rc)
      assert.equal('["stdin"]', cjson.decode(out).body)
    end)

    it("an unexpected error is one line, not a traceback", function()
      local out = { write = function() error("disk on fire\nsecond line") end, flush = function() end }
      local errs = sink()
      local rc = cli.main({ "--version" }, { stdout = out, stderr = errs })
      assert.equal(1, rc)
      assert.matches("^smugoauth: internal error: .*disk on fire\n$", errs.text())
    end)

    it("SMUGOAUTH_DEBUG=1 traces to the given stderr, redacted", function()
      local rc, _, err = main({ "whoami" }, { vars = { SMUGOAUTH_DEBUG = "1" } })
      assert.equal(0, rc)
      assert.matches("smugoauth: > GET " .. sb.origin .. "/api/v2!authuser", err, 1, true)
      assert_no_secret(err, token_secret)
    end)
  end)
end)

describe("the command's context", function()
  local context = require "smugoauth.apps.cli.context"

  it("progress displays are as wide as $COLUMNS says, else as the terminal is, else 80", function()
    local function ctx(env, cols)
      return context.new { getenv = function(k) return env[k] end, term_columns = function() return cols end }
    end
    assert.equal(33, ctx({ COLUMNS = "33" }, 61):columns())
    assert.equal(61, ctx({}, 61):columns())
    assert.equal(61, ctx({ COLUMNS = "wide" }, 61):columns())
    assert.equal(80, ctx({}, nil):columns())
  end)
end)

describe("--debug beside a progress display", function()
  local context = require "smugoauth.apps.cli.context"

  it("a trace line goes above the block: cleared first, drawn again after", function()
    local seen = {}
    local ctx = context.new { stderr = { write = function(_, ...) seen[#seen + 1] = table.concat { ... } end } }
    ctx:debug_line("GET http://127.0.0.1/x")
    assert.same({ "GET http://127.0.0.1/x\n" }, seen)
    seen = {}
    ctx.block = { clear = function() seen[#seen + 1] = "<clear>" end,
                  draw = function(_, force) seen[#seen + 1] = force and "<draw>" or "<draw?>" end }
    ctx:debug_line("GET http://127.0.0.1/y\27[2J")
    assert.equal("<clear>", seen[1])
    assert.matches("^GET http://127%.0%.0%.1/y[^\27]*\n$", seen[2])   -- (made safe too)
    assert.equal("<draw>", seen[3])
  end)
end)
