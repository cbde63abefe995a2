-- smugoauth.apps.sandbox.launch: the sandbox in a child process, as `make
-- demo` and the specs (support.sandbox) start it: the handle's origin, port
-- and pid, the control shortcuts (approve, mode, stats), a client and the
-- whole flow through it, every way a start can fail, and stop (idempotent,
-- `<close>`, collection) ending the child.
local launch = require "smugoauth.apps.sandbox.launch"
local proc = require "support.proc"
local files = require "support.files"
local socket = require "socket"

describe("smugoauth.apps.sandbox.launch", function()
  local sb
  setup(function() sb = assert(launch.start { key = "launch-key", secret = "launch s3cr&t", albums = 3 }) end)
  teardown(function() if sb then sb:stop() end end)

  it("starts the sandbox: origin, port and pid of a running child", function()
    assert.equal("smugoauth.SandboxProcess", getmetatable(sb).__name)
    assert.matches("^http://127%.0%.0%.1:%d+$", sb.origin)
    assert.equal(sb.origin, "http://127.0.0.1:" .. sb.port)
    assert.is_true(proc.alive(sb.pid))
    assert.equal("launch-key", sb.key)
    assert.equal("launch s3cr&t", sb.secret)
  end)

  it("runs the whole flow with its key and secret; the API answers with the albums asked for", function()
    local at, ats, c = sb:authorize()
    assert.is_string(at)
    assert.is_string(ats)
    local api = c:session(at, ats)
    assert.equal("tester", assert(api:get("/api/v2!authuser")):json().Response.User.NickName)
    local albums = assert(api:get("/api/v2/user/tester!albums")):json()
    assert.equal(3, albums.Response.Pages.Total)
  end)

  it("approve answers a verifier, a redirect, or nil and the reason for an unknown token", function()
    local c = sb:client()
    local rt = assert(c:request_token("oob"))
    assert.matches("^%d+$", sb:approve(rt))
    rt = assert(c:request_token("http://127.0.0.1:9/cb"))
    assert.matches("^http://127%.0%.0%.1:9/cb%?oauth_token=", sb:approve(rt))
    local v, why = sb:approve("no-such-token")
    assert.is_nil(v)
    assert.matches("unknown request token", why)
  end)

  it("mode sets faults for the next API calls and {} clears them; stats counts", function()
    local at, ats, c = sb:authorize()
    local api = c:session(at, ats)
    local before = sb:stats().requests
    assert.is_number(before)
    assert.is_true(sb:mode { fail503 = 1 })
    local res, err = sb:client({ retry = false }):session(at, ats):get("/api/v2!authuser")
    assert.is_nil(res)
    assert.equal(503, err.status)
    sb:mode { fail503 = 5 }
    sb:mode {}
    assert(api:get("/api/v2!authuser"))
    assert.is_true(sb:stats().requests > before)
  end)

  it("latency (start option, mode): answers wait, overlapping; /_sandbox/ does not; mode {} clears it", function()
    local loop = require "smugoauth.loop"
    local at, ats, c = sb:authorize()
    local api = c:session(at, ats)
    sb:mode { latency = 0.4 }
    local t0 = socket.gettime()
    local before = sb:stats()                      -- (not delayed)
    assert(socket.gettime() - t0 < 0.3)
    -- three GETs at once, as tasks: they overlap (one after another: 1.2 s)
    t0 = socket.gettime()
    local results = loop.map({ 1, 2, 3 }, function() return assert(api:get("/api/v2!authuser")).status end,
                             { concurrency = 3 })
    local took = socket.gettime() - t0
    assert.same({ 200, 200, 200 }, results)
    assert(took >= 0.4 and took < 1.0, ("three GETs took %.2f s"):format(took))
    assert.equal(before.delayed + 3, sb:stats().delayed)
    sb:mode {}
    t0 = socket.gettime()
    assert(api:get("/api/v2!authuser"))
    assert(socket.gettime() - t0 < 0.3)
    api:close()
    -- --latency at start (the launcher's option)
    local slow <close> = assert(launch.start { latency = 0.3 })
    local c2 = slow:client()
    t0 = socket.gettime()
    assert(c2:request_token("oob"))
    assert(socket.gettime() - t0 >= 0.3)
    c2:close()
  end)

  it("client merges extra options", function()
    local c = sb:client { timeout = 7 }
    assert.equal(sb.origin, c.api_origin)
  end)

  it("raises on misuse", function()
    assert.has_error(function() launch.start { bogus = 1 } end, "sandbox launch: unknown option 'bogus'")
    assert.has_error(function() launch.start { key = 5 } end, "sandbox launch: option 'key' must be a string")
    assert.has_error(function() launch.start { albums = 1.5 } end)
    assert.has_error(function() launch.start { latency = "1" } end)
  end)
end)

describe("smugoauth.apps.sandbox.launch failures and stop", function()
  it("a sandbox that does not start: nil and an io error with its stderr", function()
    local sb, err = launch.start { args = { "--bogus" } }
    assert.is_nil(sb)
    assert.equal("io", err.code)
    assert.matches("the sandbox did not start: usage: sandbox.lua", err.message, 1, true)
  end)

  it("a child that never prints its port is stopped after the timeout", function()
    local dir = files.tmpdir()
    local script = dir .. "/silent.lua"
    files.write_file(script, 'io.stderr:write("silent pid\\n") require("socket").sleep(60)\n')
    local t0 = socket.gettime()
    local sb, err = launch.start { script = script, timeout = 0.5 }
    assert.is_nil(sb)
    assert.is_true(socket.gettime() - t0 < 10)
    assert.matches("did not start: silent pid", err.message, 1, true)
    os.execute("rm -rf " .. proc.q(dir))
  end)

  it("stop ends the child and is idempotent; the handle then refuses control calls", function()
    local sb = assert(launch.start {})
    local pid = sb.pid
    sb:stop()
    assert.is_false(proc.alive(pid))
    assert.is_nil(sb.pid)
    sb:stop()
    assert.has_error(function() sb:stats() end, "sandbox launch: the sandbox is stopped")
  end)

  it("<close> and collection stop the child", function()
    local pid1, pid2
    do
      local sb <close> = assert(launch.start {})
      pid1 = sb.pid
      assert.is_true(proc.alive(pid1))
    end
    assert.is_false(proc.alive(pid1))
    do
      local sb = assert(launch.start {})
      pid2 = sb.pid
    end
    collectgarbage()
    collectgarbage()
    assert.is_false(proc.alive(pid2))
  end)
end)
