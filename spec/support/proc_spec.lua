-- support.proc, the process helper every spec spawns its children with:
-- quoting, the first lines, pids, exit statuses, TERM then KILL within a
-- bounded wait, stdin (text or a FIFO), the environment, the working
-- directory, collection, and the free and closed ports.
local proc = require "support.proc"
local socket = require "socket"

-- A Lua server on 127.0.0.1 port 0 that prints "PORT n" and serves "hi".
local SERVER = [[lua5.4 -e '
local socket = require "socket"
local l = assert(socket.bind("127.0.0.1", 0))
io.stdout:write("PORT ", select(2, l:getsockname()), "\n") io.stdout:flush()
while true do local c = l:accept() c:send("hi\n") c:close() end']]

describe("support.proc", function()
  describe("q and words", function()
    it("quote any string as one shell word", function()
      for _, s in ipairs { "", "plain", "it's", "'", "''", "a b\tc\nd", "$HOME `id` $(id) \\ \"x\"", "*", "-n" } do
        local code, out = proc.run("printf %s " .. proc.q(s))
        assert.equal(0, code)
        assert.equal(s, out)
      end
      local code, out = proc.run("printf '[%s]' " .. proc.words { "a b", "it's", "" })
      assert.equal(0, code)
      assert.equal("[a b][it's][]", out)
    end)
  end)

  describe("spawn", function()
    it("waits for the first line, knows the pid and the port, and kills with TERM", function()
      local h = proc.spawn(SERVER, { expect = "^PORT %d+$" })
      assert.is_true(proc.alive(h.pid))
      assert.matches("^PORT %d+$", h.line)
      local c = assert(socket.connect("127.0.0.1", h.port))
      c:settimeout(5)
      assert.equal("hi", c:receive("*l"))
      c:close()
      assert.is_nil(h:status())
      assert.equal(128 + 15, h:kill())
      assert.is_false(proc.alive(h.pid))
      assert.equal(128 + 15, h:kill())            -- idempotent
      local dir = h.dir
      h:close()
      h:close()
      assert.is_nil(io.open(dir .. "/out"))        -- its files are gone
    end)

    it("reads several first lines; an array is quoted word by word", function()
      local h = proc.spawn({ "sh", "-c", "echo one; echo 'two words'; exec sleep 30" }, { lines = 2 })
      assert.same({ "one", "two words" }, h.lines)
      assert.is_nil(h.port)
      h:close()
    end)

    it("kills a child that ignores TERM with KILL after the grace", function()
      local h = proc.spawn("sh -c 'trap \"\" TERM; echo READY; while :; do sleep 1; done'", { expect = "^READY$" })
      local t0 = socket.gettime()
      assert.equal(128 + 9, h:kill(0.3))
      assert.is_true(socket.gettime() - t0 < 5)
      h:close()
    end)

    it("bounds the wait for a first line that never comes", function()
      local t0 = socket.gettime()
      local h = proc.spawn("sleep 30", { lines = 1, timeout = 0.5 })
      assert.is_true(socket.gettime() - t0 < 5)
      assert.is_nil(h.line)
      assert.is_nil(h:status())
      h:close()
    end)

    it("raises with the line and stderr when the first line is not the expected one", function()
      local ok, err = pcall(proc.spawn, "sh -c 'echo nope; echo why-not >&2; exit 3'", { expect = "^PORT %d+$" })
      assert.is_false(ok)
      assert.matches('first line "nope"', err, 1, true)
      assert.matches("why-not", err, 1, true)
    end)

    it("knows the exit status of a child that ends by itself", function()
      local h = proc.spawn("sh -c 'exit 7'")
      assert.equal(7, h:wait(10))
      assert.equal(7, h:status())
      h:close()
    end)

    it("feeds stdin through a FIFO and finishes", function()
      local h = proc.spawn("sh -c 'read a; echo got:$a; echo oops >&2; exit 4'", { stdin = true })
      h.stdin:write("hello\n")
      local code, out, err = h:finish(10)
      assert.equal(4, code)
      assert.equal("got:hello\n", out)
      assert.equal("oops\n", err)
    end)

    it("a child writing much does not stall", function()
      local code, out = proc.run("head -c 1000000 /dev/zero", { timeout = 20 })
      assert.equal(0, code)
      assert.equal(1000000, #out)
    end)

    it("sets and unsets the environment, the directory, stdin text, ulimit -n", function()
      local code, out = proc.run("sh -c 'echo \"$A|${HOME-unset}|$(pwd)|$(cat)|$(ulimit -n)\"'",
        { env = { A = "x y'z", HOME = false }, cwd = "/tmp", stdin = "in put", nofile = 77 })
      assert.equal(0, code)
      assert.equal("x y'z|unset|/tmp|in put|77\n", out)
      assert.equal(127, (proc.run("true", { cwd = "/nonexistent/dir" })))
    end)

    it("kills a child on timeout in run", function()
      local t0 = socket.gettime()
      local code = proc.run("sleep 30", { timeout = 0.3 })
      assert.equal(128 + 15, code)
      assert.is_true(socket.gettime() - t0 < 10)
    end)

    it("kills the child of a handle that is collected", function()
      local pid
      do
        local h = proc.spawn("sleep 30")
        pid = h.pid
        assert.is_true(proc.alive(pid))
      end
      collectgarbage()
      collectgarbage()
      assert.is_false(proc.alive(pid))
    end)

    it("raises on misuse", function()
      assert.has_error(function() proc.spawn("true", { bogus = 1 }) end, "proc.spawn: unknown option 'bogus'")
      assert.has_error(function() proc.spawn("true", { lines = "1" }) end,
                       "proc.spawn: option 'lines' must be a number")
      assert.has_error(function() proc.spawn("") end, "proc.spawn: a command expected")
      assert.has_error(function() proc.spawn("true", { stdin = 5 }) end,
                       "proc.spawn: option 'stdin' must be a string or true")
    end)
  end)

  describe("ports and /proc", function()
    it("free_port can be listened on; closed_port refuses connections", function()
      local port = proc.free_port()
      assert.is_number(port)
      local l = assert(socket.bind("127.0.0.1", port))
      l:close()
      local c, err = socket.connect("127.0.0.1", proc.closed_port())
      assert.is_nil(c)
      assert.matches("refused", err)
    end)

    it("status_kb reads /proc/PID/status", function()
      assert.is_true(proc.status_kb("self", "VmRSS") > 0)
      local h = proc.spawn("sleep 30")
      assert.is_true(proc.status_kb(h.pid, "VmRSS") > 0)
      h:close()
      assert.is_nil(proc.status_kb(h.pid, "VmRSS"))
      assert.is_nil(proc.status_kb("self", "NoSuchField"))
    end)

    it("my_pid is this process", function()
      local f = assert(io.open("/proc/self/stat"))
      local pid = tonumber(f:read("a"):match("^(%d+)"))
      f:close()
      assert.equal(pid, proc.my_pid())
    end)
  end)
end)
