--- The C core's contract (smugoauth.core): misuse raises; every runtime
-- failure is `nil, message, code` (code a stable string; only a transfer
-- that failed after its response sink got bytes adds a fourth value, how
-- many: spec/core/sink_spec.lua); the module is the union of its openers,
-- and nothing else.
local core = require "smugoauth.core"
local files = require "support.files"

-- A runtime failure: nil, a message that is a string, and the code.
local function failure(code, v, msg, c, extra)
  assert.is_nil(v)
  assert.is_string(msg)
  assert.are.equal(code, c)
  assert.is_nil(extra)
  return msg
end

describe("smugoauth.core", function()
  it("has exactly the functions its openers register", function()
    local names = {}
    for k in pairs(core) do names[#names + 1] = k end
    table.sort(names)
    assert.are.same({
      "b64decode", "b64encode", "base_string", "cloexec", "commit", "cookie_key_file", "cookie_max_payload",
      "cookie_open", "cookie_seal", "digest", "digest_file", "digest_new", "equal", "file_mode", "file_size",
      "getuid", "hmac", "http_new", "isatty", "list_dir", "mkdir_private", "monotime", "nonce", "parse_form",
      "percent_decode",
      "percent_encode", "random_bytes", "reactor", "read_private", "set_mtime", "sign", "signer", "term_columns",
      "version", "write_private",
    }, names)
  end)

  it("cloexec(fd): true for an open descriptor, nil, message, io for a closed one; misuse raises", function()
    local s = assert(require("socket").bind("127.0.0.1", 0))
    assert.is_true(core.cloexec(s:getfd()))
    s:close()
    local ok, msg, code = core.cloexec(1000000)
    assert.is_nil(ok)
    assert.matches("cloexec: Bad file descriptor", msg)
    assert.equal("io", code)
    assert.has_error(function() core.cloexec(-1) end)
    assert.has_error(function() core.cloexec("x") end)
  end)

  it("term_columns(fd): a terminal's width; nil for anything else", function()
    local s = assert(require("socket").bind("127.0.0.1", 0))
    assert.is_nil(core.term_columns(s:getfd()))
    s:close()
    assert.has_error(function() core.term_columns(-1) end)
    -- a child whose stdout is a pseudo-terminal 57 columns wide
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
import fcntl, os, pty, struct, subprocess, sys, termios
m, s = pty.openpty()
fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 57, 0, 0))
subprocess.run(sys.argv[1:], stdout=s, check=True)
os.close(s)
sys.stdout.write(os.read(m, 100).decode())
]])
    f:close()
    local p = assert(io.popen("/usr/bin/python3 " .. script .. " lua5.4 -e " ..
      "'package.cpath = \"" .. (os.getenv("SMUGOAUTH_BUILD") or "build") .. "/?.so;\" .. package.cpath " ..
      "io.write(tostring(require(\"smugoauth.core\").term_columns(1)))'"))
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.equal("57", out)
  end)

  it("no longer has seal and open (the cookie format is the one AES-GCM user)", function()
    assert.is_nil(rawget(core, "seal"))
    assert.is_nil(rawget(core, "open"))
  end)

  it("names its classes smugoauth.<Type>, methods in __index, one idempotent close", function()
    local s = core.signer { consumer_key = "k" }
    local h = core.http_new()
    local r = assert(core.reactor())
    local d = assert(core.digest_new("md5"))
    for _, o in ipairs { s, h, r, d } do
      local mt = getmetatable(o)
      assert.matches("^smugoauth%.%u%a+$", mt.__name)
      assert.is_function(mt.__index.close)
      assert.is_function(mt.__gc)
      assert.is_function(mt.__close)
      o:close()
      o:close()
      assert.matches("%(closed%)$", tostring(o))
    end
    assert.has_error(function() s:authorization("GET", "http://h/") end, "attempt to use a closed smugoauth.Signer")
    assert.has_error(function() h:request { url = "http://127.0.0.1/" } end, "attempt to use a closed smugoauth.Http")
    assert.has_error(function() r:wait(0) end, "attempt to use a closed smugoauth.Reactor")
    assert.has_error(function() d:update("x") end, "attempt to use a closed smugoauth.Digest")
  end)

  it("digest_new: a digest fed piece by piece is the digest of the whole; final closes it", function()
    local whole = {}
    for i = 1, 300 do whole[i] = ("%d:"):format(i):rep(i % 7 + 1) end
    for _, name in ipairs { "md5", "sha1", "sha256", "sha512" } do
      local d = assert(core.digest_new(name))
      assert.matches("^smugoauth%.Digest %(", tostring(d))
      for i = 1, #whole do assert.are.equal(d, d:update(whole[i])) end
      d:update("")
      assert.are.equal(core.digest(name, table.concat(whole)), d:final())
      assert.are.equal("smugoauth.Digest (closed)", tostring(d))
      assert.has_error(function() d:final() end, "attempt to use a closed smugoauth.Digest")
    end
    assert.are.equal(core.digest("md5", ""), assert(core.digest_new("md5")):final())
    assert.has_error(function() core.digest_new("md4") end)
    assert.has_error(function() core.digest_new("md5"):update({}) end)
  end)
end)

describe("runtime failures are nil, message, code", function()
  it("b64decode: invalid input is nil, message, \"malformed\" (it was a bare nil)", function()
    for _, s in ipairs { "!!!!", "Zm9v=x", "A", "Zm9=", "Zh==" } do
      local msg = failure("malformed", core.b64decode(s))
      assert.matches("^b64decode: not valid base64$", msg)
    end
    failure("malformed", core.b64decode("a+b/", true))
    assert.are.equal("foo", core.b64decode("Zm9v"))
    assert.are.equal("\251\255", core.b64decode("-_8", true))
    assert.has_error(function() core.b64decode() end)
  end)

  it("cookie_open: a value that does not open is nil, message, reason (it was nil, reason)", function()
    local key = ("k"):rep(32)
    local v = core.cookie_seal(key, "c", "payload", 2000000000)
    local msg = failure("expired", core.cookie_open(key, "c", v, 2000000000))
    assert.are.equal("cookie_open: the value has expired", msg)
    msg = failure("bad_mac", core.cookie_open(key, "d", v, 1))
    assert.are.equal("cookie_open: the value does not verify", msg)
    failure("malformed", core.cookie_open(key, "c", "a.b", 1))
    failure("too_long", core.cookie_open(key, "c", ("A"):rep(5000), 1))
    assert.not_matches("payload", msg)
    assert.are.equal("payload", core.cookie_open(key, "c", v, 1))
    assert.has_error(function() core.cookie_open("short", "c", v) end)
  end)

  it("digest_file: a file that cannot be read is nil, message, \"io\"", function()
    local msg = failure("io", core.digest_file("md5", "/nonexistent/x"))
    assert.matches("/nonexistent/x", msg, 1, true)
    local dir = files.tmpdir()
    failure("io", core.digest_file("sha1", dir))         -- a directory: fopen works, fread fails
    os.execute("rm -rf " .. files.q(dir))
  end)

  it("read_private, write_private, cookie_key_file, reactor: nil, message, code", function()
    failure("missing", core.read_private("/nonexistent/dir/file"))
    failure("io", core.write_private("/nonexistent/dir/file", "x"))
    failure("io", core.cookie_key_file("/nonexistent/dir/key"))
    local r = assert(core.reactor())
    local sock = assert(require("socket").bind("127.0.0.1", 0))
    local msg = failure("ENOENT", r:mod(sock:getfd(), "r"))      -- never added
    assert.matches("^reactor:mod: ", msg)
    sock:close()
    r:close()
  end)

  it("a request that cannot be sent is nil, message, code", function()
    local h = core.http_new { timeout = 5 }
    local msg = failure("io", h:request { url = "http://127.0.0.1:9/", body_file = "/nonexistent/file" })
    assert.matches("^request: GET http://127.0.0.1:9/: cannot read body_file", msg)
    msg = failure("io", h:request { url = "http://127.0.0.1:9/", out = "/nonexistent/dir/file" })
    assert.matches("^request: GET http://127.0.0.1:9/: /nonexistent/dir/file: cannot open", msg)
    h:close()
  end)

  it("commit, set_mtime, file_size: nil, message, code", function()
    failure("io", core.commit("/nonexistent/a.part", "/nonexistent/a"))
    failure("io", core.set_mtime("/nonexistent/a", 0))
    failure("missing", core.file_size("/nonexistent/a"))
  end)

  it("misuse still raises", function()
    assert.has_error(function() core.hmac("md4", "k", "m") end)
    assert.has_error(function() core.random_bytes(-1) end)
    assert.has_error(function() core.digest_file("md5", "a\0b") end)
    assert.has_error(function() core.cookie_seal(("k"):rep(32), "bad name", "p", 1) end)
    assert.has_error(function() core.reactor { maxevents = 0 } end)
  end)
end)

describe("options declared once", function()
  -- Every option an X-macro row declares is read, by name, with its type
  -- named in the error; a name that is not a row is refused.
  it("sign{} and signer{} know exactly the rows of sign_opts.h", function()
    local request = { "method", "url", "params", "callback", "verifier", "nonce", "timestamp" }
    local any = { "consumer_key", "consumer_secret", "token", "token_secret", "signature_method", "rsa_key",
                  "realm", "version" }
    for _, name in ipairs(request) do
      local good = name == "params" and {} or "1"               -- a value sign{} takes
      assert.has_error(function() core.signer { consumer_key = "k", [name] = good } end,
        "option '" .. name .. "' belongs to a request, not to a signer")
    end
    for _, name in ipairs(any) do
      assert.error_matches(function() core.sign { url = "http://h/", consumer_key = "k", [name] = {} } end,
        "bad option '" .. name .. "' (", 1, true)
      assert.error_matches(function() core.signer { consumer_key = "k", [name] = {} } end,
        "bad option '" .. name .. "' (", 1, true)
    end
    assert.has_error(function() core.sign { url = "http://h/", consumer_key = "k", oauth_nonce = "x" } end,
      "unknown option 'oauth_nonce'")
    assert.has_error(function() core.sign { url = "http://h/", consumer_key = "k", [1] = "x" } end,
      "bad option key (string expected, got number)")
  end)

  it("request tables and http_new know exactly the rows of http_opts.h", function()
    local h = core.http_new()
    for name, t in pairs { method = "string", url = "string", headers = "table", body = "string",
                           body_file = "string", on_progress = "function", timeout = "number",
                           fresh = "boolean", max_body = "number" } do
      local bad = t == "string" and 1 or "x"
      assert.has_error(function() h:request { url = "http://127.0.0.1/", [name] = bad } end,
        ("bad option '%s' to 'request' (%s expected, got %s)"):format(name, t, type(bad)))
    end
    assert.has_error(function() h:request { url = "http://127.0.0.1/", [true] = 1 } end,
      "bad option key to 'request' (string expected, got boolean)")
    for name, t in pairs { ca_file = "string", timeout = "number", connect_timeout = "number",
                           max_body = "number", user_agent = "string" } do
      local bad = t == "string" and 1 or "x"
      assert.has_error(function() core.http_new { [name] = bad } end,
        ("bad option '%s' to 'http_new' (%s expected, got %s)"):format(name, t, type(bad)))
    end
    h:close()
  end)
end)
