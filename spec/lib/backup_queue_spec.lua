-- smugoauth.loop.queue: the bounded queue between the backup's listing tasks
-- (producers) and its download tasks (consumers). A producer never holds
-- more than the capacity; close drains; cancellation ends a wait.
local smugoauth = require "smugoauth"
local loop = require "smugoauth.loop"

describe("loop.queue", function()
  it("hands every item to exactly one consumer, never holding more than its capacity", function()
    local got, maxlen = {}, 0
    loop.run(function()
      local q = smugoauth.queue(3)
      local producer = loop.spawn(function()
        for i = 1, 500 do
          assert.is_true(q:put(i))
          maxlen = math.max(maxlen, q:length())
        end
        q:close()
      end)
      local consumers = {}
      for w = 1, 4 do
        consumers[w] = loop.spawn(function()
          for x in q:items() do
            got[#got + 1] = x
            if x % 7 == 0 then loop.sleep(0.001) end
          end
        end)
      end
      for _, c in ipairs(consumers) do assert(c:join()) end
      assert(producer:join())
    end)
    assert(maxlen <= 3, "held " .. maxlen)
    table.sort(got)
    assert.equal(500, #got)
    for i = 1, 500 do assert.equal(i, got[i]) end
  end)

  it("a producer waits while the queue is full; a consumer while it is empty", function()
    local log = {}
    loop.run(function()
      local q = loop.queue(1)
      local p = loop.spawn(function()
        q:put("a") log[#log + 1] = "put a"
        q:put("b") log[#log + 1] = "put b"
      end)
      loop.sleep(0.05)
      assert.same({ "put a" }, log)             -- b waits for room
      assert.equal("a", q:get())
      loop.sleep(0.01)
      assert.same({ "put a", "put b" }, log)
      assert.equal("b", q:get())
      assert(p:join())
      local c = loop.spawn(function() return q:get() end)
      loop.sleep(0.02)
      assert.equal("running", c:status())        -- waits for an item
      q:put("c")
      assert.same({ true, "c" }, { c:join() })
    end)
  end)

  it("close: waiting consumers get nil after the rest is drained, producers false", function()
    loop.run(function()
      local q = loop.queue(1)
      assert.is_true(q:put(1))
      local p = loop.spawn(function() return q:put(2) end)
      loop.sleep(0.01)
      q:close()
      assert.same({ true, false }, { p:join() })
      assert.equal(1, q:get())
      assert.is_nil(q:get())
      assert.is_false(q:put(3))
      local q2 = loop.queue(2)
      local waiting = loop.spawn(function() return q2:get() end)
      loop.sleep(0.01)
      q2:close()
      assert.same({ true, nil }, { waiting:join() })
    end)
  end)

  it("a cancelled wait ends at once", function()
    loop.run(function()
      local q = loop.queue(1)
      local g = loop.spawn(function() return q:get() end)
      loop.sleep(0.01)
      g:cancel()
      assert.same({ true, nil }, { g:join() })
      -- the cancelled getter does not swallow the next item
      assert.is_true(q:put("x"))
      assert.equal("x", q:get())
      assert.is_true(q:put("y"))
      local p = loop.spawn(function() return q:put("z") end)
      loop.sleep(0.01)
      p:cancel()
      assert.same({ true, false }, { p:join() })
      assert.equal("y", q:get())
      assert.equal(0, q:length())
    end)
  end)

  it("misuse raises; outside a task a wait that could never end raises", function()
    assert.has_error(function() loop.queue(0) end, "queue: a positive integer capacity expected")
    local q = loop.queue(1)
    assert.has_error(function() q:put(nil) end, "queue:put: an item expected")
    assert.is_true(q:put(1))
    assert.has_error(function() q:put(2) end, "queue:put: it would wait forever outside a task")
    assert.equal(1, q:get())
    assert.has_error(function() q:get() end, "queue:get: it would wait forever outside a task")
  end)
end)
