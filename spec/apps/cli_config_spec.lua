-- Where `smugoauth` finds its config (--config, SMUGOAUTH_CONFIG,
-- ./config.json, $XDG_CONFIG_HOME/smugoauth/config.json, ~/.config/...), with
-- a fake HOME and XDG_CONFIG_HOME, through `smugoauth config` run as a
-- process; `login --key K [--secret S] [--force]` storing the config there
-- (0600, in a 0700 folder, never printing the secret, refusing another key
-- without --force) and logging in with it against the sandbox; and stored
-- credentials still refused to a config of the current directory that asks
-- for other origins or another key. Every wait is bounded; servers stopped.
local sandbox = require "support.sandbox"
local cli = require "smugoauth.apps.cli"
local core = require "smugoauth.core"
local json = require "smugoauth.json"
local cjson = require "cjson.safe"
local files = require "support.files"
local proc = require "support.proc"

local q = proc.q
local write_file, read_file, tmpdir, wait_for = files.write_file, files.read_file, files.tmpdir, files.wait_for

local KEY, SECRET = "xdg-key", "xdg consumer secret&!"

-- s as a Lua pattern that matches it literally.
local function pat(s)
  return (s:gsub("%p", "%%%0"))
end

local function pwd()
  local p = assert(io.popen("pwd"))
  local s = p:read("l")
  p:close()
  return s
end
local BIN = pwd() .. "/bin/smugoauth"

-- Every variable the command reads, unset unless given (false: unset).
local function clean_env(vars)
  local env = { SMUGOAUTH_CONFIG = false, SMUGOAUTH_CREDENTIALS = false, SMUGOAUTH_DEBUG = false,
                SMUGOAUTH_API_ORIGIN = false, SMUGOAUTH_OAUTH_ORIGIN = false, SMUGOAUTH_UPLOAD_ORIGIN = false,
                SMUGOAUTH_CA_FILE = false, XDG_CONFIG_HOME = false, HOME = false, DISPLAY = false,
                WAYLAND_DISPLAY = false }
  for k, v in pairs(vars or {}) do env[k] = v end
  return env
end

-- bin/smugoauth args in cwd with vars (and stdin): status, stdout, stderr.
local function run(args, cwd, vars, stdin)
  return proc.run("timeout 30 " .. q(BIN) .. " " .. proc.words(args),
                  { cwd = cwd, env = clean_env(vars), stdin = stdin, timeout = 40 })
end

local function mode_of(path)
  local mode = core.file_mode(path)
  return mode and (mode & 0x1ff)
end

local function one_line_error(err)
  assert.matches("^smugoauth: [^\n]*\n$", err)
end

-- cli.main in-process with captured output; vars is the whole environment.
local sink = require("support.capture").sink

local function call(argv, vars)
  local out, err = sink(), sink()
  local rc = cli.main(argv, { stdout = out, stderr = err, isatty = function() return false end,
    stdin = { read = function() return nil end },
    getenv = function(k) return vars[k] end, open_url = function() end })
  return rc, out.text(), err.text()
end

describe("smugoauth config lookup", function()
  local root, home, xdg, work
  setup(function()
    root = tmpdir()
    home, xdg, work = root .. "/home", root .. "/xdg", root .. "/work"
    assert(os.execute("mkdir -p " .. q(home .. "/.config/smugoauth") .. " " .. q(xdg .. "/smugoauth") .. " " ..
                      q(work) .. " " .. q(root .. "/empty")))
    write_file(home .. "/.config/smugoauth/config.json", json.compact { key = "home-key", secret = "home secret" })
    write_file(xdg .. "/smugoauth/config.json", json.compact { key = "xdg-key", secret = "xdg secret" })
    write_file(root .. "/named.json", json.compact { key = "named-key", secret = "named secret" })
  end)
  teardown(function() if root then os.execute("rm -rf " .. q(root)) end end)

  local function config_of(cwd, vars, args)
    local rc, out, err = run(args or { "config" }, cwd, vars)
    for _, s in ipairs { "home secret", "xdg secret", "named secret", "cwd secret" } do
      assert.is_nil((out .. err):find(s, 1, true), "the secret was printed")
    end
    return rc, out, err
  end

  it("~/.config/smugoauth/config.json when XDG_CONFIG_HOME is not set", function()
    local rc, out, err = config_of(work, { HOME = home })
    assert.equal(0, rc, err)
    assert.equal("config: " .. home .. "/.config/smugoauth/config.json\nkey: home-key\n" ..
                 "credentials: " .. home .. "/.config/smugoauth/credentials.json (none: run `smugoauth login`)\n", out)
  end)

  it("$XDG_CONFIG_HOME/smugoauth/config.json before ~/.config", function()
    local rc, out = config_of(work, { HOME = home, XDG_CONFIG_HOME = xdg })
    assert.equal(0, rc)
    assert.matches("^config: " .. pat(xdg) .. "/smugoauth/config.json\nkey: xdg%-key\n", out)
    assert.matches("credentials: " .. xdg .. "/smugoauth/credentials.json", out, 1, true)
  end)

  it("an XDG_CONFIG_HOME that is not absolute is ignored", function()
    local rc, out = config_of(work, { HOME = home, XDG_CONFIG_HOME = "xdg" })
    assert.equal(0, rc)
    assert.matches("key: home-key\n", out, 1, true)
  end)

  it("./config.json before the XDG folder, and says it is used before it", function()
    local cwd = root .. "/withconf"
    os.execute("mkdir -p " .. q(cwd))
    write_file(cwd .. "/config.json", json.compact { key = "cwd-key", secret = "cwd secret" })
    local rc, out = config_of(cwd, { HOME = home, XDG_CONFIG_HOME = xdg })
    assert.equal(0, rc)
    assert.matches("^config: ./config.json %(in the current directory; used before " ..
                   pat(xdg) .. "/smugoauth/config.json%)\nkey: cwd%-key\n", out)
    rc, out = config_of(cwd, { HOME = root .. "/empty" })
    assert.equal(0, rc)
    assert.matches("^config: ./config.json %(in the current directory%)\nkey: cwd%-key\n", out)
  end)

  it("SMUGOAUTH_CONFIG and --config before everything", function()
    local cwd = root .. "/withconf"
    local rc, out = config_of(cwd, { HOME = home, XDG_CONFIG_HOME = xdg, SMUGOAUTH_CONFIG = root .. "/named.json" })
    assert.equal(0, rc)
    assert.matches("^config: " .. pat(root) .. "/named.json %(SMUGOAUTH_CONFIG%)\nkey: named%-key\n", out)
    rc, out = config_of(cwd, { HOME = home, SMUGOAUTH_CONFIG = xdg .. "/smugoauth/config.json" },
                        { "--config", root .. "/named.json", "config" })
    assert.equal(0, rc)
    assert.matches("^config: " .. pat(root) .. "/named.json %(%-%-config%)\nkey: named%-key\n", out)
  end)

  it("the whole lookup serves every command (whoami reads the XDG config)", function()
    -- no credentials yet: whoami gets as far as the credentials, with the XDG config
    local rc, out, err = config_of(work, { HOME = home, XDG_CONFIG_HOME = xdg }, { "whoami" })
    assert.equal(3, rc)
    assert.equal("", out)
    one_line_error(err)
    assert.matches(xdg .. "/smugoauth/credentials.json: no stored credentials", err, 1, true)
  end)

  it("no config anywhere: exit 3 and a message naming every path tried", function()
    local rc, out, err = config_of(work, { HOME = root .. "/empty" })
    assert.equal(3, rc)
    assert.equal("", out)
    one_line_error(err)
    local tried = root .. "/empty/.config/smugoauth/config.json"
    assert.matches("no config file (tried ./config.json, " .. tried .. "): run `smugoauth login --key KEY " ..
                   "--secret SECRET` to store one in " .. tried, err, 1, true)
    rc, out, err = config_of(work, {})                           -- no HOME either
    assert.equal(3, rc)
    assert.equal("", out)
    assert.matches("no config file (tried ./config.json): set HOME (or XDG_CONFIG_HOME)", err, 1, true)
    rc, out, err = config_of(work, { SMUGOAUTH_CONFIG = root .. "/none.json", HOME = home })
    assert.equal("", out)
    assert.equal(3, rc)
    assert.matches(root .. "/none.json: file not found", err, 1, true)
  end)

  it("a config that is not valid exits 3 and names it", function()
    local bad = root .. "/bad.json"
    write_file(bad, '{"key": "k"')
    local rc, out, err = config_of(work, { HOME = home }, { "--config", bad, "config" })
    assert.equal(3, rc)
    assert.equal("", out)
    assert.matches(bad .. ": not valid JSON", err, 1, true)
  end)
end)

describe("smugoauth login --key", function()
  local sb, evil, root, home, work, conf_path, cred_path, origins
  setup(function()
    sb = sandbox.start { key = KEY, secret = SECRET }
    evil = sandbox.start { key = KEY, secret = SECRET }
    root = tmpdir()
    home, work = root .. "/home", root .. "/work"
    assert(os.execute("mkdir -p " .. q(home) .. " " .. q(work)))
    conf_path = home .. "/.config/smugoauth/config.json"
    cred_path = home .. "/.config/smugoauth/credentials.json"
    origins = { SMUGOAUTH_OAUTH_ORIGIN = sb.origin, SMUGOAUTH_API_ORIGIN = sb.origin,
                SMUGOAUTH_UPLOAD_ORIGIN = sb.origin }
  end)
  teardown(function()
    if sb then sb:stop() end
    if evil then evil:stop() end
    if root then os.execute("rm -rf " .. q(root)) end
  end)

  local function vars(extra)
    local t = { HOME = home }
    for k, v in pairs(origins) do t[k] = v end
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  it("stores the config 0600 in ~/.config/smugoauth (made 0700), then logs in with it", function()
    local h = proc.spawn("timeout 60 " .. q(BIN) .. " login --key " .. q(KEY) .. " --secret " .. q(SECRET),
                         { cwd = work, env = clean_env(vars()), stdin = true })
    local url = wait_for(function() return read_file(h.err):match("Go to (%S+) in a web browser%.\n") end, 20)
    assert.is_string(url, read_file(h.err))
    h.stdin:write(sb:approve(url:match("oauth_token=(%x+)")), "\n")
    local rc, out, err = h:finish(30)
    assert.equal(0, rc, err)
    assert.equal("Logged in as tester (Sandbox Tester); credentials stored in " .. cred_path .. "\n", out)
    assert.matches("^Stored the API key " .. pat(KEY) .. " in " .. pat(conf_path) .. "\n", err)
    assert.is_nil((out .. err):find(SECRET, 1, true), "the secret was printed")
    assert.is_nil((out .. err):find(core.percent_encode(SECRET), 1, true))
    assert.equal(tonumber("600", 8), mode_of(conf_path))
    assert.equal(tonumber("700", 8), mode_of(home .. "/.config/smugoauth"))
    assert.equal(tonumber("700", 8), mode_of(home .. "/.config"))
    assert.same({ key = KEY, secret = SECRET }, cjson.decode(read_file(conf_path)))
    local p = assert(io.popen("ls -A " .. q(home .. "/.config/smugoauth")))
    assert.equal("config.json\ncredentials.json\n", p:read("a"))      -- no temporary file left
    p:close()
    assert.equal(KEY, cjson.decode(read_file(cred_path)).key)
    -- the next command finds both by itself
    rc, out, err = run({ "whoami" }, work, vars())
    assert.equal(0, rc, err)
    assert.equal("tester (Sandbox Tester)\n", out)
  end)

  it("refuses to replace another API key without --force, and stores nothing", function()
    local before, stats = read_file(conf_path), sb:stats().requests
    local _
    local rc, out, err = call({ "login", "--key", "other-key", "--secret", "other secret" }, vars())
    assert.equal(3, rc)
    assert.equal("", out)
    one_line_error(err)
    assert.matches("login: " .. conf_path .. " already holds another API key (" .. KEY .. "); give --force " ..
                   "to replace it", err, 1, true)
    assert.is_nil(err:find("other secret", 1, true))
    assert.equal(before, read_file(conf_path))
    assert.equal(stats + 1, sb:stats().requests)                   -- nothing was sent (but this stats call)
    -- nor a file that is not a config, or cannot be read
    local odd = root .. "/odd.json"
    write_file(odd, "[1, 2]")
    rc, _, err = call({ "--config", odd, "login", "--key", "k2", "--secret", "s2" }, vars())
    assert.equal(3, rc)
    assert.matches("already holds something that is not a config; give --force", err, 1, true)
    assert.equal("[1, 2]", read_file(odd))
  end)

  it("--force replaces it (the login then goes on with the new config)", function()
    local path = root .. "/forced/config.json"
    os.execute("mkdir -p " .. q(root .. "/forced"))
    write_file(path, json.compact { key = "old-key", secret = "old secret", api_origin = evil.origin })
    local rc, out, err = call({ "--config", path, "login", "--key", KEY, "--secret", SECRET, "--force" }, vars())
    assert.equal(3, rc)                                            -- no code on stdin
    assert.equal("", out)
    assert.matches("login: no code entered\n$", err)
    assert.same({ key = KEY, secret = SECRET }, cjson.decode(read_file(path)))   -- the old settings are gone
    assert.equal(tonumber("600", 8), mode_of(path))
    assert.is_nil(err:find(SECRET, 1, true))
  end)

  it("the same key keeps the other settings; the secret can come from stdin", function()
    local path = root .. "/same/config.json"
    os.execute("mkdir -p " .. q(root .. "/same"))
    -- the origins come from the file alone (no environment override)
    write_file(path, json.compact { key = KEY, secret = "stale", oauth_origin = sb.origin, api_origin = sb.origin,
                                    upload_origin = sb.origin })
    local out, errs = sink(), sink()
    local lines = { SECRET }
    local stdin = { read = function()
      if #lines > 0 then return table.remove(lines, 1) end
      local url = errs.text():match("Go to (%S+) in a web browser")
      return url and sb:approve(url:match("oauth_token=(%x+)"))
    end }
    local creds = root .. "/same/credentials.json"
    local rc = cli.main({ "--config", path, "--credentials", creds, "login", "--key", KEY },
      { stdout = out, stderr = errs, stdin = stdin, isatty = function() return false end,
        getenv = function(k) return k == "HOME" and home or nil end })
    local err
    out, err = out.text(), errs.text()
    assert.equal(0, rc, err)
    assert.matches("^API secret for " .. pat(KEY) .. ": Stored the API key", err)
    assert.matches("^Logged in as tester", out)
    assert.is_nil((out .. err):find(SECRET, 1, true))
    assert.same({ key = KEY, secret = SECRET, oauth_origin = sb.origin, api_origin = sb.origin,
                  upload_origin = sb.origin }, cjson.decode(read_file(path)))
  end)

  it("misuse is a usage error and writes nothing", function()
    local before = read_file(conf_path)
    for _, case in ipairs {
      { { "login", "--secret", "s" }, "%-%-secret and %-%-force go with %-%-key" },
      { { "login", "--force" }, "go with %-%-key" },
      { { "login", "--key", "a key", "--secret", "s" }, "%-%-key must be an API key" },
      { { "login", "--key", KEY, "--secret", "" }, "must not be empty" },
      { { "login", "--key", KEY, "--secret", "a\nb" }, "control characters" },
      { { "login", "--key", KEY, "--secret", "s", "--access", "x" }, "%-%-access must be" },
      { { "login", "--key" }, "%-%-key needs a value" },
    } do
      local rc, out, err = call(case[1], vars())
      assert.equal(2, rc, table.concat(case[1], " "))
      assert.equal("", out)
      assert.matches(case[2], err)
    end
    local rc, _, err = call({ "login", "--key", KEY }, vars())     -- stdin at its end
    assert.equal(3, rc)
    assert.matches("no API secret entered", err)
    assert.equal(before, read_file(conf_path))
    rc, _, err = call({ "login", "--key", KEY, "--secret", "s" }, { SMUGOAUTH_API_ORIGIN = sb.origin })
    assert.equal(3, rc)
    assert.matches("nowhere to store the config: set HOME", err, 1, true)
  end)

  it("notes that a ./config.json here is used before the stored config", function()
    local here = root .. "/here"
    os.execute("mkdir -p " .. q(here))
    write_file(here .. "/config.json", json.compact { key = KEY, secret = SECRET })
    local rc, _, err = run({ "login", "--key", KEY, "--secret", SECRET }, here, vars())
    assert.equal(3, rc)                                            -- no code on stdin
    assert.matches("note: the ./config.json of this directory is used before " .. conf_path, err, 1, true)
    assert.matches("login: no code entered", err, 1, true)
  end)

  describe("stored credentials and a config in the current directory", function()
    it("a config.json here asking for other origins cannot take the token", function()
      local photos = root .. "/photos"
      os.execute("mkdir -p " .. q(photos))
      write_file(photos .. "/config.json", json.compact { key = KEY, secret = SECRET, oauth_origin = evil.origin,
                                                          api_origin = evil.origin, upload_origin = evil.origin })
      local before = evil:stats().requests
      local rc, out, err = run({ "whoami" }, photos, { HOME = home })
      assert.equal(3, rc)
      assert.equal("", out)
      one_line_error(err)
      assert.matches("./config.json asks for api_origin " .. evil.origin .. ", but the stored credentials in " ..
                     cred_path .. " were issued for " .. sb.origin, err, 1, true)
      rc, out = run({ "get", "/api/v2!authuser" }, photos, { HOME = home })
      assert.equal(3, rc)
      assert.equal("", out)
      assert.equal(before + 1, evil:stats().requests)              -- nothing reached it
    end)

    it("a config.json here with another API key cannot use the token", function()
      local other = root .. "/other"
      os.execute("mkdir -p " .. q(other))
      write_file(other .. "/config.json", json.compact { key = "planted-key", secret = "x" })
      local rc, out, err = run({ "whoami" }, other, vars())
      assert.equal(3, rc)
      assert.equal("", out)
      assert.matches("belong to another API key than the one ./config.json gives", err, 1, true)
    end)

    it("config says the stored credentials do not fit that config", function()
      local rc, out = run({ "config" }, root .. "/photos", { HOME = home })
      assert.equal(0, rc)
      assert.matches("^config: ./config.json %(in the current directory; used before " ..
                     pat(conf_path) .. "%)\n", out)
      assert.matches("api_origin: " .. evil.origin .. "\n", out, 1, true)
      assert.matches("credentials: " .. cred_path .. " (issued for another API key or origins: run " ..
                     "`smugoauth login`)\n", out, 1, true)
      rc, out = run({ "config" }, work, vars())
      assert.equal(0, rc)
      assert.matches("api_origin: " .. sb.origin .. " (SMUGOAUTH_API_ORIGIN)\n", out, 1, true)
      assert.matches("credentials: " .. cred_path .. "\n$", out)
    end)
  end)
end)
