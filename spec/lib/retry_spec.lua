-- The one retry policy (smugoauth.retry), and that every request path uses
-- it: api:request and get_many make the same decisions (which failures are
-- tried again, how often, with which waits and jitter, `unsafe`, Retry-After,
-- max_time) for every method and failure. The session's C HTTP client and
-- signer are stubs that answer what each case scripts; nothing is sent.
local smugoauth = require "smugoauth"
local retry = require "smugoauth.retry"
local errors = require "smugoauth.errors"

local ORIGIN = "http://127.0.0.1:9"

-- A raw C result: a status (with headers), or a transport failure.
local function answer(what)
  if type(what) == "number" then
    local headers = { { "Content-Type", "application/json" } }
    if what == 429 then headers[2] = { "Retry-After", "0" } end
    return { status = what, headers = headers, body = "{}", time = 0, new_connections = 1 }
  elseif type(what) == "table" then
    return what
  end
  return nil, "scripted " .. what, what          -- "network", "timeout", "tls"
end

-- A session whose C client answers script[path][n] to the n-th try of path
-- (the last one repeats). Returns it and the log: sends by path.
local function scripted(script)
  local c = smugoauth.new { key = "k", secret = "s", api_origin = ORIGIN, oauth_origin = ORIGIN,
                            upload_origin = ORIGIN }
  local api = c:session("t", "ts")
  api.http:close()
  local sent = {}
  local function next_answer(creq)
    local path = creq.url:match("^https?://[^/]+([^?]*)")
    sent[path] = (sent[path] or 0) + 1
    local list = script[path]
    return answer(list[math.min(sent[path], #list)])
  end
  api.http = {
    request = function(_, creq) return next_answer(creq) end,
    many = function(_, creqs)
      local out = {}
      for i, creq in ipairs(creqs) do
        local raw, msg, code = next_answer(creq)
        out[i] = raw or { error = msg, code = code }
      end
      return out
    end,
    close = function() end,
  }
  -- get_many's requests run as tasks of the session's loop: stub its transfer too
  api:_loop().transfer = function(_, http, creq) return http:request(creq) end
  return api, sent
end

-- Run one request of `method` to /p failing with `failure` every time,
-- through api:request and through get_many, under the policy `policy`
-- (with its sleep recorded). Returns for each: attempts, sends, waits.
local function both(method, failure, policy)
  local out = {}
  for _, how in ipairs { "request", "get_many" } do
    local api, sent = scripted { ["/p"] = { failure } }
    local waits = {}
    local p = { sleep = function(s) waits[#waits + 1] = s end }
    for k, v in pairs(policy) do p[k] = v end
    local o = { method = method, path = "/p", retry = p }
    local err
    if how == "request" then
      local res
      res, err = api:request(o)
      assert.is_nil(res)
    else
      o.retry = nil
      err = api:get_many({ o }, { retry = p })[1]
    end
    assert(errors.is(err), how .. ": an error expected")
    out[how] = { attempts = err.attempts, sent = sent["/p"], waits = waits }
  end
  return out
end

describe("the retry policy", function()
  it("has the documented defaults; false is one attempt", function()
    local p = retry.new()
    assert.equal(3, p.attempts)
    assert.equal(60, p.max_time)
    assert.equal(0.5, p.base)
    assert.is_false(p.unsafe)
    assert.equal("smugoauth.Retry", getmetatable(p).__name)
    assert.equal(1, retry.new(false).attempts)
    assert.equal(5, retry.new({ attempts = 5 }).attempts)
  end)

  it("misuse raises instead of dropping the option", function()
    for _, case in ipairs {
      { { attemps = 3 }, "unknown option 'attemps'" },
      { { attempts = "3" }, "option 'attempts' must be number" },
      { { attempts = 0 }, "attempts must be a positive integer" },
      { { attempts = 1.5 }, "attempts must be a positive integer" },
      { { base = -1 }, "max_time and base must not be negative" },
      { { unsafe = 1 }, "option 'unsafe' must be boolean" },
      { { jitter = false }, "unknown option 'jitter'" },
    } do
      local ok, err = pcall(retry.new, case[1], "request")
      assert.is_false(ok)
      assert.matches("request: retry: " .. case[2], err, 1, true)
    end
    local api = scripted { ["/p"] = { 200 } }
    assert.has_error(function() api:get("/p", nil, { retry = { attemps = 5 } }) end)
    assert.has_error(function() api:get_many({ "/p" }, { retry = { attemps = 5 } }) end)
    assert.has_error(function() smugoauth.new { key = "k", secret = "s", retry = 3 } end)
  end)

  it("decides what is tried again by method, failure and unsafe", function()
    local net, timeout = { code = "network" }, { code = "timeout" }
    local function http(n) return { code = "http", status = n } end
    local safe, unsafe = retry.new(), retry.new { unsafe = true }
    for _, case in ipairs {
      { safe, "GET", net, true }, { safe, "GET", timeout, false }, { safe, "GET", http(429), true },
      { safe, "GET", http(503), true }, { safe, "GET", http(500), false }, { safe, "PUT", net, true },
      { safe, "DELETE", http(503), true }, { safe, "POST", http(503), false }, { safe, "POST", net, false },
      { safe, "PATCH", http(429), false }, { unsafe, "POST", http(503), true },
      { unsafe, "PATCH", http(429), true }, { unsafe, "POST", net, false }, { unsafe, "POST", timeout, false },
      { safe, "GET", { code = "tls" }, false }, { safe, "GET", { code = "oauth", status = 401 }, false },
    } do
      assert.equal(case[4], case[1]:again(case[2], case[3], 1),
        ("%s %s %s"):format(case[2], case[3].code, tostring(case[3].status)))
      assert.is_false(case[1]:again(case[2], case[3], 3), "past the attempts")
    end
  end)

  it("chooses fresh connections for non-idempotent requests unless unsafe; fresh wins", function()
    local safe, unsafe = retry.new(), retry.new { unsafe = true }
    for _, m in ipairs { "GET", "HEAD", "PUT", "DELETE", "OPTIONS" } do
      assert.is_false(safe:fresh(m))
      assert.is_true(safe:fresh(m, true))
    end
    for _, m in ipairs { "POST", "PATCH", "LOCK" } do
      assert.is_true(safe:fresh(m))
      assert.is_false(unsafe:fresh(m))
      assert.is_false(safe:fresh(m, false))
    end
  end)

  it("waits Retry-After, else the backoff with jitter in its upper half", function()
    local p = retry.new { base = 1 }
    local ra = { code = "http", status = 429, response = { headers = { ["retry-after"] = "7" } } }
    assert.equal(7, p:delay(ra, 1))
    local date = { code = "http", status = 503,
                   response = { headers = { ["retry-after"] = "Wed, 21 Oct 2015 07:28:00 GMT" } } }
    local distinct = {}
    for attempt = 1, 3 do
      for _ = 1, 50 do
        local d = p:delay(attempt == 1 and date or { code = "network" }, attempt)
        local full = 2 ^ (attempt - 1)
        assert(d >= full / 2 and d < full, ("delay %.3f for attempt %d"):format(d, attempt))
        distinct[d] = true
      end
    end
    local n = 0
    for _ in pairs(distinct) do n = n + 1 end
    assert.is_true(n > 100)
  end)
end)

describe("api:request and get_many use the one policy", function()
  -- attempts expected for each method and failure, without and with unsafe.
  local CASES = {
    { "GET", "network", 3, 3 }, { "GET", "timeout", 1, 1 }, { "GET", "tls", 1, 1 },
    { "GET", 503, 3, 3 }, { "GET", 429, 3, 3 }, { "GET", 500, 1, 1 },
    { "PUT", "network", 3, 3 }, { "DELETE", 503, 3, 3 },
    { "POST", "network", 1, 1 }, { "POST", "timeout", 1, 1 }, { "POST", 503, 1, 3 },
    { "POST", 429, 1, 3 }, { "PATCH", 503, 1, 3 }, { "POST", 500, 1, 1 },
  }
  for _, case in ipairs(CASES) do
    local method, failure = case[1], case[2]
    for i, unsafe in ipairs { false, true } do
      it(("%s failing with %s%s: %d attempts both ways"):format(method, failure,
        unsafe and " (unsafe)" or "", case[2 + i]), function()
        local got = both(method, failure, { unsafe = unsafe, base = 1 })
        for _, how in ipairs { "request", "get_many" } do
          assert.equal(case[2 + i], got[how].attempts, how .. " attempts")
          assert.equal(case[2 + i], got[how].sent, how .. " sends")
          assert.equal(case[2 + i] - 1, #got[how].waits, how .. " waits")
          for n, w in ipairs(got[how].waits) do
            if failure == 429 then
              assert.equal(0, w, how .. " waits Retry-After")
            else
              local full = 2 ^ (n - 1)
              assert(w >= full / 2 and w < full, ("%s wait %d: %.3f s, not jittered backoff"):format(how, n, w))
            end
          end
        end
      end)
    end
  end

  it("no retry starts past max_time", function()
    local got = both("GET", { status = 503, headers = { { "Retry-After", "100" } }, body = "", time = 0,
                              new_connections = 1 }, { max_time = 60 })
    assert.equal(1, got.request.attempts)
    assert.equal(1, got.get_many.attempts)
  end)

  it("get_many: an item's own retry wins; each item waits its own delay, as api:request would", function()
    local api, sent = scripted { ["/a"] = { "network" }, ["/b"] = { "network" }, ["/c"] = { 503, 200 },
                                 ["/d"] = { { status = 429, headers = { { "Retry-After", "2" } }, body = "",
                                              time = 0, new_connections = 1 }, 200 } }
    local waits = {}
    local r = api:get_many({ { path = "/a", retry = false }, "/b", "/c", "/d" },
      { retry = { attempts = 3, base = 0.01, sleep = function(s) waits[#waits + 1] = s end } })
    assert.equal(1, r[1].attempts)
    assert.equal(1, sent["/a"])
    assert.equal(3, r[2].attempts)
    assert.equal(3, sent["/b"])
    assert.equal(200, r[3].status)
    assert.equal(200, r[4].status)
    table.sort(waits)
    assert.equal(4, #waits)                      -- /b twice, /c once, /d once
    assert(waits[1] >= 0.005 and waits[1] <= 0.01)  -- first backoffs of /b and /c (jittered)
    assert(waits[2] >= 0.005 and waits[2] <= 0.01)
    assert(waits[3] >= 0.01 and waits[3] <= 0.02)   -- /b's second backoff
    assert.equal(2, waits[4])                    -- /d's Retry-After, for /d alone
  end)

  it("retry = false on the client turns retries off for both", function()
    local api = scripted { ["/p"] = { "network" } }
    api.retry = false
    local _, err = api:get("/p")
    assert.equal(1, err.attempts)
    assert.equal(1, api:get_many({ "/p" })[1].attempts)
  end)
end)
