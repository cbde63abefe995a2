-- Quick scripting features against the sandbox: stored credentials, pages,
-- uploads, retries, parallel calls, tracing.
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"
local credentials = require "smugoauth.credentials"
local sandbox = require "support.sandbox"
local socket = require "socket"

local q = require("support.proc").q

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(core.mkdir_private(d))
  return d
end

describe("stored credentials", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("round-trips through a 0600 file, creating its directory 0700", function()
    local path = dir .. "/a/b/credentials.json"
    local c = smugoauth.new { key = "k", secret = "s" }
    assert(c:save_credentials("tok", "sec&ret", path))
    assert.equal(tonumber("600", 8), (core.file_mode(path)))
    assert.equal(tonumber("700", 8), (core.file_mode(dir .. "/a/b")))
    local t, s, rec = smugoauth.load_credentials(path)
    assert.equal("tok", t)
    assert.equal("sec&ret", s)
    assert.equal("k", rec.key)
    assert(c:save_credentials("tok2", "sec2", path))
    assert.equal("tok2", (smugoauth.load_credentials(path)))
  end)

  it("uses SMUGOAUTH_CREDENTIALS, XDG_CONFIG_HOME, then HOME", function()
    local env = { SMUGOAUTH_CREDENTIALS = "/x/c.json", XDG_CONFIG_HOME = "/xdg", HOME = "/home/u" }
    local get = function(k) return env[k] end
    assert.equal("/x/c.json", credentials.default_path(get))
    env.SMUGOAUTH_CREDENTIALS = nil
    assert.equal("/xdg/smugoauth/credentials.json", credentials.default_path(get))
    env.XDG_CONFIG_HOME = nil
    assert.equal("/home/u/.config/smugoauth/credentials.json", credentials.default_path(get))
  end)

  it("refuses a file others can read, and a missing or malformed one", function()
    local path = dir .. "/c.json"
    assert(credentials.save({ token = "t", secret = "s" }, path))
    os.execute("chmod 644 " .. q(path))
    local t, err = smugoauth.load_credentials(path)
    assert.is_nil(t)
    assert.equal("config", err.code)
    assert.matches("mode 644 lets others read it", err.message, 1, true)
    os.execute("chmod 600 " .. q(path))
    assert(smugoauth.load_credentials(path))
    local f = assert(io.open(path, "w")) f:write("{nope") f:close()
    os.execute("chmod 600 " .. q(path))
    assert.is_nil((smugoauth.load_credentials(path)))
    local _, e2 = smugoauth.load_credentials(dir .. "/none.json")
    assert.matches("no stored credentials", e2.message, 1, true)
  end)

  it("a failed write leaves the old file intact", function()
    local path = dir .. "/c.json"
    assert(credentials.save({ token = "old", secret = "s" }, path))
    os.execute("chmod 500 " .. q(dir))      -- no new file can be created here
    local ok, err = credentials.save({ token = "new", secret = "s" }, path)
    os.execute("chmod 700 " .. q(dir))
    if core.getuid() ~= 0 then             -- root ignores directory modes
      assert.is_nil(ok)
      assert.equal("io", err.code)
    end
    local t = smugoauth.load_credentials(path)
    assert.is_truthy(t == "old" or t == "new")
  end)

  it("a process killed mid-save leaves the old file or the new one, never a mix", function()
    local path = dir .. "/c.json"
    local big = string.rep("x", 2 * 1024 * 1024)
    assert(credentials.save({ token = "gen0", secret = big }, path))
    local script = dir .. "/saver.lua"
    local f = assert(io.open(script, "w"))
    f:write(([[
package.path = "lua/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local credentials = require "smugoauth.credentials"
local big = string.rep("x", 2 * 1024 * 1024)
for i = 1, 1000000 do assert(credentials.save({ token = "gen" .. i, secret = big }, %q)) end
]]):format(path))
    f:close()
    local kills = 0
    for round = 1, 15 do
      local p = assert(io.popen("lua5.4 " .. q(script) .. " >/dev/null 2>&1 & echo $!"))
      local pid = p:read("l")
      p:close()
      socket.sleep(0.05 + (round % 5) * 0.013)
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      socket.sleep(0.05)
      kills = kills + 1
      local t, s = smugoauth.load_credentials(path)
      assert.is_string(t, "unreadable after kill " .. round)
      assert.matches("^gen%d+$", t)
      assert.equal(#big, #s)
    end
    assert.equal(15, kills)
  end)
end)

describe("scripting the API", function()
  local sb, api, c
  setup(function()
    sb = sandbox.start { key = "script-key", secret = "script&secret" }
    local at, ats
    at, ats, c = sb:authorize()
    api = c:session(at, ats)
  end)
  teardown(function() if sb then sb:stop() end end)

  it("each() follows NextPage through more than two pages", function()
    local names, pages = {}, 0
    for page in api:pages("/api/v2/user/tester!albums", { count = 100 }) do
      pages = pages + 1
      assert.is_table(page.Response.Album)
    end
    for item, err in api:each("/api/v2/user/tester!albums", { count = 60 }) do
      assert(item, err)
      names[#names + 1] = item.Name
    end
    assert.equal(3, pages)
    assert.equal(250, #names)
    assert.equal("Album 1", names[1])
    assert.equal("Album 250", names[250])
  end)

  it("each() hands an error to the caller and stops", function()
    local got = {}
    for item, err in api:each("/api/v2/user/nobody!albums") do got[#got + 1] = { item, err } end
    assert.equal(1, #got)
    assert.is_false(got[1][1])
    assert.equal(404, got[1][2].status)
  end)

  it("uploads a 10 MB file, streamed, checked by MD5 on the server, with progress", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    local chunk = core.random_bytes(1024 * 1024)
    for _ = 1, 10 do f:write(chunk) end
    f:close()
    local calls, last, monotonic = 0, 0, true
    local res, err = api:upload { album = "/api/v2/album/K0002", file = path, title = "Ten",
      caption = "ten megabytes", keywords = { "a", "b" },
      on_progress = function(sent, total)
        calls = calls + 1
        if sent < last then monotonic = false end
        last = sent
        assert.equal(10 * 1024 * 1024, total)
      end }
    local md5 = core.b64encode((core.digest_file("md5", path)))
    os.remove(path)
    assert(res, err)
    assert.is_true(calls > 1)
    assert.is_true(monotonic)
    assert.equal(10 * 1024 * 1024, last)
    assert.matches("^/api/v2/image/", res:json().Image.ImageUri)
    local up = sb:stats().last_upload
    assert.equal(10 * 1024 * 1024, math.tointeger(up.size))
    assert.equal(md5, up.md5)
    assert.equal(md5, up.headers["content-md5"])
    assert.equal("Ten", up.headers["x-smug-title"])
    assert.equal("a; b", up.headers["x-smug-keywords"])
    assert.equal("JSON", up.headers["x-smug-responsetype"])
    assert.equal("v2", up.headers["x-smug-version"])
    assert.equal("application/octet-stream", up.content_type)
    assert.matches("^OAuth ", up.headers["authorization"])
    local listed = assert(api:get("/api/v2/album/K0002!images")):json().Response.AlbumImage
    assert.equal(core.b64decode(md5), (listed[#listed].ArchivedMD5:gsub("%x%x", function(h)   -- hex, as SmugMug's
      return string.char(tonumber(h, 16))
    end)))
    assert.equal(10 * 1024 * 1024, listed[#listed].ArchivedSize)
  end)

  it("uploads with a known MD5 (no hashing pass); a wrong one is refused by the server", function()
    local data = core.random_bytes(50000)
    local md5 = core.digest("md5", data)
    local hex = md5:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end)
    assert(api:upload { album = "/api/v2/album/K0004", data = data, md5 = hex })
    assert(api:upload { album = "/api/v2/album/K0004", data = data, md5 = core.b64encode(md5) })
    local res, err = api:upload { album = "/api/v2/album/K0004", data = data, md5 = string.rep("0", 32) }
    assert.is_nil(res)
    assert.equal("api", err.code)
    assert.matches("Content%-MD5 mismatch", err.message)
    assert.has_error(function() api:upload { album = "/api/v2/album/K0004", data = data, md5 = "xyz" } end)
  end)

  it("upload failures: stat fail, missing file, misuse", function()
    local res, err = api:upload { album = "/api/v2/album/NOPE", data = "x", filename = "a.jpg" }
    assert.is_nil(res)
    assert.equal("api", err.code)
    assert.equal("image/jpeg", sb:stats().last_upload and "image/jpeg")
    local r2, e2 = api:upload { album = "/api/v2/album/K0001", file = "/nonexistent/file.jpg" }
    assert.is_nil(r2)
    assert.equal("io", e2.code)
    assert.has_error(function() api:upload { album = "K1", data = "x" } end)
    assert.has_error(function() api:upload { album = "/api/v2/album/K1" } end)
    assert.has_error(function() api:upload { album = "/api/v2/album/K1", data = "x", title = "a\nb" } end)
  end)

  it("get_many returns results in input order, responses and errors", function()
    local list = {}
    for i = 1, 20 do
      list[i] = (i % 5 == 0) and "/api/v2/nothing/" .. i or { path = "/api/v2/album/" .. ("K%04d"):format(i) }
    end
    local results = api:get_many(list, { concurrency = 8 })
    assert.equal(20, #results)
    for i, r in ipairs(results) do
      if i % 5 == 0 then
        assert.equal("http", r.code)
        assert.equal(404, r.status)
      else
        assert.equal(("K%04d"):format(i), r:json().Response.Album.AlbumKey)
      end
    end
  end)

  it("get_many retries 429s", function()
    sb:mode { fail429 = 2, retry_after = 0 }
    local results = api:get_many({ "/api/v2!authuser", "/api/v2!authuser", "/api/v2!authuser" },
      { concurrency = 3, retry = { sleep = function() end } })
    for _, r in ipairs(results) do assert.equal(200, r.status) end
  end)

  it("SMUGOAUTH_DEBUG-style tracing never shows a secret", function()
    local lines = {}
    local tc = sb:client { debug = function(l) lines[#lines + 1] = l end }
    local rt, rts = assert(tc:request_token("oob"))
    local at, ats = assert(tc:access_token(rt, rts, sb:approve(rt)))
    local s = tc:session(at, ats)
    assert(s:get("/api/v2!authuser"))
    assert(s:post("/api/v2!echo", { form = { x = "y" } }))
    assert(s:upload { album = "/api/v2/album/K0003", data = "abc", filename = "t.png" })
    local text = table.concat(lines, "\n")
    assert.is_true(#lines > 20)
    for _, secret in ipairs { sb.secret, core.percent_encode(sb.secret), rts, ats } do
      assert.is_nil(text:find(secret, 1, true), "leaked: " .. secret)
    end
    for sig in text:gmatch('oauth_signature="([^"]*)"') do assert.equal("REDACTED", sig) end
  end)
end)

describe("SMUGOAUTH_DEBUG=1 in a real process", function()
  it("traces to stderr with secrets redacted", function()
    local sb = sandbox.start { key = "dbg", secret = "dbg-consumer-secret" }
    local ok, err = pcall(function()
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(([[
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local smugoauth = require "smugoauth"
local c = smugoauth.new { key = "dbg", secret = "dbg-consumer-secret", oauth_origin = %q, api_origin = %q }
local rt, rts = assert(c:request_token("oob"))
io.stdout:write(rt, " ", rts, "\n")
]]):format(sb.origin, sb.origin))
      f:close()
      local p = assert(io.popen("SMUGOAUTH_DEBUG=1 lua5.4 " .. q(script) .. " 2>" .. q(script .. ".err")))
      local out = p:read("a")
      p:close()
      local e = assert(io.open(script .. ".err")):read("a")
      os.remove(script)
      os.remove(script .. ".err")
      local rts = out:match("%S+ (%S+)")
      assert.is_string(rts)
      assert.matches("smugoauth: > GET ", e, 1, true)
      assert.is_nil(e:find("dbg-consumer-secret", 1, true))
      assert.is_nil(e:find(rts, 1, true))
    end)
    sb:stop()
    assert(ok, err)
  end)
end)
