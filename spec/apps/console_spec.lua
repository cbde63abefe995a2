-- examples/console.lua driven as a user would: through stdin, against the
-- sandbox; and every way it can fail, each a one-line reason and exit 1.
local sandbox = require "support.sandbox"
local json = require "smugoauth.json"

local files = require "support.files"
local proc = require "support.proc"
local write_file, read_file, wait_for = files.write_file, files.read_file, files.wait_for

-- Start the console with stdin from a FIFO (h.stdin); h.out is its stdout file.
local function start_console(config)
  return proc.spawn("lua5.4 examples/console.lua", { env = { SMUGOAUTH_CONFIG = config }, stdin = true })
end

-- Close its stdin and wait (15 s at most): exit status, stdout, stderr.
local function finish(h)
  return h:finish(15)
end

describe("examples/console.lua", function()
  local sb, config
  setup(function()
    sb = sandbox.start { key = "console-key", secret = "console secret&" }
    config = os.tmpname()
    write_file(config, json.compact { key = sb.key, secret = sb.secret, oauth_origin = sb.origin,
                                      api_origin = sb.origin, upload_origin = sb.origin })
  end)
  teardown(function()
    if sb then sb:stop() end
    if config then os.remove(config) end
  end)

  it("runs the original flow through stdin", function()
    local h = start_console(config)
    local url = wait_for(function() return read_file(h.out):match("Go to (%S+) in a web browser%.\n") end)
    assert.is_string(url)
    assert.matches("&Access=Full&Permissions=Modify$", url)
    local token = url:match("oauth_token=(%x+)")
    h.stdin:write(sb:approve(token), "\n")
    local rc, out, err = finish(h)
    assert.equal(0, rc)
    assert.equal("", err)
    assert.matches("Enter the six%-digit code: ", out)
    assert.matches("Access token: %x+\nAccess token secret: %x+\n", out)
    assert.matches('"NickName": "tester"', out, 1, true)
  end)

  local function one_line_failure(rc, err, pattern)
    assert.equal(1, rc)
    assert.matches("^console: [^\n]*\n$", err)
    assert.matches(pattern, err)
    assert.is_nil(err:find("traceback", 1, true))
  end

  it("an empty code ends with a reason", function()
    local h = start_console(config)
    wait_for(function() return read_file(h.out):match("Go to") end)
    h.stdin:write("\n")
    local rc, _, err = finish(h)
    one_line_failure(rc, err, "no code entered")
  end)

  it("end of input ends with a reason", function()
    local h = start_console(config)
    local rc, _, err = finish(h)
    one_line_failure(rc, err, "no code entered")
  end)

  it("a wrong code is refused", function()
    local h = start_console(config)
    wait_for(function() return read_file(h.out):match("Go to") end)
    h.stdin:write("123456\n")
    local rc, _, err = finish(h)
    one_line_failure(rc, err, "the code was refused: .*verifier_invalid")
  end)

  it("a refused request token (wrong secret) ends with a reason", function()
    local bad = os.tmpname()
    write_file(bad, json.compact { key = sb.key, secret = "wrong", oauth_origin = sb.origin,
                                   api_origin = sb.origin })
    local rc, _, err = finish(start_console(bad))
    os.remove(bad)
    assert.equal(1, rc)
    assert.matches("^console: could not get a request token: .*signature_invalid", err)
    assert.is_nil(err:find("traceback", 1, true))
  end)

  it("a network failure ends with a reason", function()
    local bad = os.tmpname()
    write_file(bad, json.compact { key = "k", secret = "s", oauth_origin = "http://127.0.0.1:9",
                                   api_origin = "http://127.0.0.1:9" })
    local rc, _, err = finish(start_console(bad))
    os.remove(bad)
    one_line_failure(rc, err, "could not get a request token: smugoauth: network")
  end)

  describe("configuration problems name the file and the problem", function()
    local cases = {
      { "missing file", nil, "file not found" },
      { "empty file", "", "file is empty" },
      { "bad JSON", "{\"key\": ", "not valid JSON" },
      { "not an object", "[1, 2]", "must hold a JSON object" },
      { "missing key", '{"secret": "s"}', 'missing "key"' },
      { "missing secret", '{"key": "k"}', 'missing "secret"' },
      { "key not a string", '{"key": 5, "secret": "s"}', '"key" must be a string' },
      { "secret not a string", '{"key": "k", "secret": ["s"]}', '"secret" must be a string' },
      { "empty key", '{"key": "", "secret": "s"}', '"key" is empty' },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local path = os.tmpname()
        if case[2] then write_file(path, case[2]) else os.remove(path) end
        local rc, _, err = finish(start_console(path))
        os.remove(path)
        one_line_failure(rc, err, case[3])
        assert.matches(path, err, 1, true)
        assert.matches("examples/config.example.json", err, 1, true)
      end)
    end
  end)
end)

describe("smugoauth.config", function()
  local config = require "smugoauth.config"
  it("environment overrides the optional keys", function()
    local path = os.tmpname()
    write_file(path, '{"key": "k", "secret": "s", "api_origin": "https://a.example"}')
    local env = { SMUGOAUTH_API_ORIGIN = "http://127.0.0.1:1", SMUGOAUTH_CA_FILE = "/tmp/ca.pem" }
    local conf = assert(config.load(path, function(k) return env[k] end))
    os.remove(path)
    assert.equal("http://127.0.0.1:1", conf.api_origin)
    assert.equal("/tmp/ca.pem", conf.ca_file)
    assert.equal("k", conf.key)
  end)
  it("SMUGOAUTH_CONFIG names the file, and then nothing else is looked at", function()
    local path, tried = config.default_path(function(k)
      return ({ SMUGOAUTH_CONFIG = "/x/y.json", HOME = "/home/u" })[k] end, function() return true end)
    assert.equal("/x/y.json", path)
    assert.is_nil(tried)
  end)

  it("looks for ./config.json, then $XDG_CONFIG_HOME/smugoauth, then ~/.config/smugoauth", function()
    local env = { XDG_CONFIG_HOME = "/xdg", HOME = "/home/u" }
    local function getenv(k) return env[k] end
    local here = false
    local function exists(p)
      assert.equal("./config.json", p)          -- the only file looked at: the last one is the default
      return here
    end
    local path, tried = config.default_path(getenv, exists)
    assert.equal("/xdg/smugoauth/config.json", path)
    assert.same({ "./config.json", "/xdg/smugoauth/config.json" }, tried)
    env.XDG_CONFIG_HOME = nil
    path, tried = config.default_path(getenv, exists)
    assert.equal("/home/u/.config/smugoauth/config.json", path)
    assert.same({ "./config.json", path }, tried)
    env.XDG_CONFIG_HOME = "relative/dir"         -- not absolute: ignored (XDG Base Directory)
    assert.equal("/home/u/.config/smugoauth", config.dir(getenv))
    assert.equal("/home/u/.config/smugoauth/config.json", (config.default_path(getenv, exists)))
    here = true
    path, tried = config.default_path(getenv, exists)
    assert.equal("./config.json", path)
    assert.same({ "./config.json" }, tried)
    env.HOME, env.XDG_CONFIG_HOME, here = nil, nil, false
    assert.is_nil(config.dir(getenv))
    path, tried = config.default_path(getenv, exists)
    assert.equal("./config.json", path)
    assert.same({ "./config.json" }, tried)
  end)

  it("the credentials file is in the same folder as the config", function()
    local credentials = require "smugoauth.credentials"
    for _, env in ipairs {
      { XDG_CONFIG_HOME = "/xdg", HOME = "/home/u" }, { HOME = "/home/u" },
      { XDG_CONFIG_HOME = "rel", HOME = "/home/u" },
    } do
      local getenv = function(k) return env[k] end
      assert.equal(config.dir(getenv) .. "/credentials.json", credentials.default_path(getenv))
    end
    assert.equal("/home/u/.config/smugoauth/credentials.json",
      credentials.default_path(function(k) return ({ XDG_CONFIG_HOME = "rel", HOME = "/home/u" })[k] end))
  end)
end)
