-- Private files (csrc/lib/privfile.c) and their readers: core.read_private,
-- credentials.load (smugoauth.load_credentials) and core.cookie_key_file
-- refuse anything another local user could have planted or could read: a
-- symlink, a FIFO, a directory, a file of another owner, group or other
-- permission bits, a directory that others own or may write; a path with a
-- NUL byte raises (it would name another, shorter path).
--
-- A file swapped in between the check and the open is not tested: it cannot
-- happen by construction. Every check is made with fstat on the descriptor
-- that is then read from, the file is opened relative to the descriptor of
-- its (checked) directory with O_NOFOLLOW, and no one but us or root can add
-- or rename entries in that directory (see the top of csrc/lib/privfile.c).
local core = require "smugoauth.core"
local credentials = require "smugoauth.credentials"
local smugoauth = require "smugoauth"
local files = require "support.files"

local q = files.q
local ROOT = core.getuid() == 0
local RECORD = '{"token":"tok","secret":"sec"}\n'
local KEY = ("0123456789abcdef"):rep(4) .. "\n"

-- Run a shell command; true when it exited 0.
local function sh(cmd)
  return os.execute(cmd) == true
end

-- Write text to path with mode (octal string), bypassing the checks.
local function put(path, text, mode)
  files.write_file(path, text)
  assert(sh("chmod " .. mode .. " " .. q(path)))
end

-- Run a Lua chunk in a child lua5.4 (10 s at most: a reader that blocks on a
-- FIFO is killed, not waited for). Returns its stdout.
local function child(chunk)
  local script = os.tmpname()
  files.write_file(script, 'package.path = "lua/?.lua;" .. package.path\n' ..
    'package.cpath = "build/?.so;" .. package.cpath\n' .. chunk)
  local p = assert(io.popen("timeout 10 lua5.4 " .. q(script) .. " 2>&1; echo \"exit $?\""))
  local out = p:read("a")
  p:close()
  os.remove(script)
  return out
end

describe("private files", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function()
    if dir and dir:match("^/tmp/") then
      os.execute("chmod -R u+rwx " .. q(dir) .. " 2>/dev/null; rm -rf " .. q(dir))
    end
  end)

  -- path is refused by all three readers, with `words` in the message; the
  -- key file reader creates nothing in its place.
  local function refused_everywhere(path, words)
    local rec, err = credentials.load(path)
    assert.is_nil(rec, "credentials.load accepted " .. path)
    assert.equal("config", err.code)
    assert.is_nil(err.missing)
    assert.matches(words, err.message, 1, true)
    local t = smugoauth.load_credentials(path)
    assert.is_nil(t)
    local key, kmsg, kcode = core.cookie_key_file(path)
    assert.is_nil(key, "cookie_key_file accepted " .. path)
    assert.equal("io", kcode)
    assert.matches(words, kmsg, 1, true)
    local data, msg, code = core.read_private(path)
    assert.is_nil(data)
    assert.equal("refused", code)
    assert.matches(words, msg, 1, true)
    assert.matches(path, msg, 1, true)
  end

  describe("are read", function()
    it("whole, from a 0600 file of ours in a 0700 directory", function()
      local path = dir .. "/c.json"
      put(path, RECORD, "600")
      assert.equal(RECORD, core.read_private(path))
      local rec = assert(credentials.load(path))
      assert.equal("tok", rec.token)
      local bin = "a\0b\255" .. ("x"):rep(70000)
      put(path, bin, "400")
      assert.equal(bin, core.read_private(path, 70004))
      put(path, "", "600")
      assert.equal("", core.read_private(path))
      put(dir .. "/key", KEY, "600")
      local key, created = core.cookie_key_file(dir .. "/key")
      assert.equal(32, #key)
      assert.is_false(created)
    end)

    it("within max: a larger file is too_large", function()
      local path = dir .. "/c.json"
      put(path, ("x"):rep(100), "600")
      local data, msg, code = core.read_private(path, 99)
      assert.is_nil(data)
      assert.equal("too_large", code)
      assert.matches(path, msg, 1, true)
      assert.equal(100, #core.read_private(path, 100))
      put(path, ("x"):rep(64 * 1024 + 1), "600")
      assert.equal("too_large", select(3, core.read_private(path)))     -- 64 KiB by default
    end)

    it("a missing file or directory is code missing (credentials: err.missing)", function()
      for _, path in ipairs { dir .. "/none.json", dir .. "/no/such/dir/c.json" } do
        local data, msg, code = core.read_private(path)
        assert.is_nil(data)
        assert.equal("missing", code)
        assert.matches(path, msg, 1, true)
        local rec, err = credentials.load(path)
        assert.is_nil(rec)
        assert.is_true(err.missing)
        assert.matches("no stored credentials", err.message, 1, true)
      end
    end)
  end)

  describe("are refused", function()
    it("through a symlink, even to a private file of ours", function()
      put(dir .. "/real.json", RECORD, "600")
      assert(sh("ln -s real.json " .. q(dir .. "/c.json")))
      refused_everywhere(dir .. "/c.json", "symbolic link")
      put(dir .. "/realkey", KEY, "600")
      assert(sh("ln -s realkey " .. q(dir .. "/key")))
      refused_everywhere(dir .. "/key", "symbolic link")
    end)

    it("with any group or other permission bit", function()
      for _, mode in ipairs { "640", "604", "620", "602", "610", "601", "644", "666" } do
        put(dir .. "/c.json", RECORD, mode)
        refused_everywhere(dir .. "/c.json", "mode " .. mode .. " lets others read it")
        put(dir .. "/key", KEY, mode)
        refused_everywhere(dir .. "/key", "group or others")
      end
    end)

    it("when the file belongs to another user", function()
      if not ROOT then
        pending("needs root to give a file to another user (chown nobody)")
        return
      end
      put(dir .. "/c.json", RECORD, "600")
      assert(sh("chown nobody " .. q(dir .. "/c.json")))
      refused_everywhere(dir .. "/c.json", "belongs to another user")
    end)

    it("in a directory others may write (sticky or not), or another user owns", function()
      local path = dir .. "/c.json"
      put(path, RECORD, "600")
      put(dir .. "/key", KEY, "600")
      for _, mode in ipairs { "777", "770", "730", "703", "1777" } do
        assert(sh("chmod " .. mode .. " " .. q(dir)))
        refused_everywhere(path, "writable by group or others")
        refused_everywhere(dir .. "/key", "writable by group or others")
      end
      assert(sh("chmod 755 " .. q(dir)))               -- others may read and enter: fine
      assert.equal(RECORD, core.read_private(path))
      if ROOT then
        assert(sh("chmod 700 " .. q(dir) .. " && chown nobody " .. q(dir)))
        refused_everywhere(path, "belongs to another user")
      end
    end)

    it("when the path names a directory", function()
      assert(sh("mkdir -m 700 " .. q(dir .. "/sub")))
      refused_everywhere(dir .. "/sub", "not a regular file")
      refused_everywhere(dir .. "/sub/", "not a regular file")
      refused_everywhere(dir .. "/sub/.", "not a regular file")
    end)

    it("when the path names a FIFO, without blocking on it", function()
      assert(sh("mkfifo -m 600 " .. q(dir .. "/c.json")))
      local out = child(([[
local core = require "smugoauth.core"
local credentials = require "smugoauth.credentials"
local _, err = credentials.load(%q)
print("load", err and err.code, err and err.message)
local _, kmsg = core.cookie_key_file(%q)
print("cookie_key_file", kmsg)
local _, msg, code = core.read_private(%q)
print("read_private", code, msg)
]]):format(dir .. "/c.json", dir .. "/c.json", dir .. "/c.json"))
      assert.matches("read_private\trefused\t[^\n]*not a regular file", out)
      assert.matches("load\tconfig\t[^\n]*not a regular file", out)
      assert.matches("cookie_key_file\t[^\n]*not a regular file", out)
      assert.matches("exit 0\n$", out)
    end)

    it("a key file is not created in a directory others may write", function()
      assert(sh("chmod 777 " .. q(dir)))
      local key, msg, code = core.cookie_key_file(dir .. "/key")
      assert.is_nil(key)
      assert.equal("io", code)
      assert.matches("writable by group or others", msg, 1, true)
      assert.is_nil(core.file_mode(dir .. "/key"))
    end)
  end)

  describe("paths with a NUL byte", function()
    it("raise in every file function instead of naming a shorter path", function()
      put(dir .. "/c.json", RECORD, "600")
      local bad = dir .. "/c.json\0.other"
      assert.has_error(function() core.read_private(bad) end)
      assert.has_error(function() credentials.load(bad) end)
      assert.has_error(function() smugoauth.load_credentials(bad) end)
      assert.has_error(function() core.cookie_key_file(bad) end)
      assert.has_error(function() core.write_private(bad, "x") end)
      assert.has_error(function() core.file_mode(bad) end)
      assert.has_error(function() core.digest_file("md5", bad) end)
      assert.has_error(function() core.mkdir_private(dir .. "/d\0x") end)
      assert.equal(RECORD, files.slurp(dir .. "/c.json"))          -- untouched
      assert.is_nil(core.file_mode(dir .. "/d"))
      assert.has_error(function() core.read_private("") end)
      assert.has_error(function() core.read_private(dir .. "/c.json", 0) end)
    end)
  end)

  describe("are written", function()
    it("0600, atomically, replacing a symlink rather than writing through it", function()
      put(dir .. "/target", "target", "600")
      assert(sh("ln -s target " .. q(dir .. "/c.json")))
      assert(core.write_private(dir .. "/c.json", RECORD))
      assert.equal("target", files.slurp(dir .. "/target"))
      assert.equal(RECORD, core.read_private(dir .. "/c.json"))
      assert.equal(tonumber("600", 8), core.file_mode(dir .. "/c.json") & tonumber("7777", 8))
    end)

    it("never into a directory others may write", function()
      assert(sh("chmod 777 " .. q(dir)))
      local ok, msg, code = core.write_private(dir .. "/c.json", RECORD)
      assert.is_nil(ok)
      assert.equal("io", code)
      assert.matches("writable by group or others", msg, 1, true)
      assert.is_nil(core.file_mode(dir .. "/c.json"))
      local saved, err = credentials.save({ token = "t", secret = "s" }, dir .. "/c.json")
      assert.is_nil(saved)
      assert.equal("io", err.code)
    end)
  end)
end)
