-- Fault injection through the public API: the token calls (client:request_token,
-- client:access_token) and the API session (api:get, api:post, api:get_many,
-- api:upload, api:each) against spec/support/fault_server.py, a server that
-- misbehaves in the way each request path names (resets, truncation, floods,
-- stalls, garbage), over HTTP and HTTPS with the test PKI, and against a
-- closed port and a server that went away and came back.
--
-- Every case checks: `nil, err` with the expected err.code (no raise), the
-- time it took (nothing hangs past the timeout), that neither the consumer
-- secret, the token secret nor the query string shows anywhere in the error,
-- and that the next request on the same client or session still works.
-- The servers run on 127.0.0.1, port 0, and are killed in teardown.
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local cjson = require "cjson.safe"
local socket = require "socket"

local PYTHON = "/usr/bin/python3"
local SERVER = "spec/support/fault_server.py"
-- Under valgrind (make valgrind sets SMUGOAUTH_SLOW) everything in this
-- process runs many times slower: scale the timeouts and allowances.
local SLOW = tonumber(os.getenv("SMUGOAUTH_SLOW") or "") or 1
local TIMEOUT = 1 * SLOW                        -- seconds, whole request
local MAX_BODY = 64 * 1024
local KEY = "fault-key"
local CONSUMER_SECRET = "consumer-S3CRET&c=%2F"
local TOKEN_SECRET = "token-S3CRET/t+1"
local QUERY_MARK = "qmark-7Hq2"                 -- sent in query strings, never in messages
local FORBIDDEN = {
  CONSUMER_SECRET, core.percent_encode(CONSUMER_SECRET),
  TOKEN_SECRET, core.percent_encode(TOKEN_SECRET),
  QUERY_MARK, "q=qmark", "LEAKED-S3CRET",
}

local files = require "support.files"
local proc = require "support.proc"
local q, slurp = proc.q, files.slurp

-- ------------------------------------------------------------- servers

local servers = {}

-- Start fault_server.py with extra arguments; wait at most 10 s for "PORT n".
local function start_server(args)
  local h = proc.spawn(("%s %s --parent-pid %d --max-life 600 %s"):format(PYTHON, SERVER, proc.my_pid() or 0,
                       args or ""), { expect = "^PORT %d+$", timeout = 10 })
  local srv = { pid = h.pid, port = h.port, origin = "http://127.0.0.1:" .. h.port,
                tls_origin = "https://127.0.0.1:" .. h.port, stop = function() h:close() end }
  servers[#servers + 1] = srv
  return srv
end

local closed_port = proc.closed_port    -- a port nothing listens on

-- The control connection: a client of its own, never the one under test.
local ctl = core.http_new { timeout = 5 }

-- (A TLS server is controlled over TLS: srv.ctl and srv.ctl_origin.)
local function control(srv, query)
  local res, msg = (srv.ctl or ctl):request { url = (srv.ctl_origin or srv.origin) .. "/_control?" .. query }
  assert(res and res.status == 200, "control " .. query .. ": " .. tostring(res and res.body or msg))
end

-- The next `count` requests to a path naming no fault (token endpoints, "/") get `name`.
-- Two by default: libcurl silently re-sends a request once when a reused
-- connection dies before any answer byte (see "sent once" below), and each
-- case wants the fault, not that second chance. Cleared after each case.
local function queue(srv, name, count)
  control(srv, "reset=1&fault=" .. name .. "&count=" .. (count or 2))
end

local function clear(srv)
  control(srv, "reset=1")
end

local function stats(srv)
  local res = assert((srv.ctl or ctl):request { url = (srv.ctl_origin or srv.origin) .. "/_stats" })
  return assert(cjson.decode(res.body))
end

-- ------------------------------------------------------------- checks

local counts = { total = 0 }

local function count(group)
  counts.total = counts.total + 1
  counts[group] = (counts[group] or 0) + 1
end

-- No forbidden string anywhere in v (strings of tables, recursively).
local function no_secrets(v, label, seen)
  seen = seen or {}
  if type(v) == "string" then
    for _, s in ipairs(FORBIDDEN) do
      assert(not v:find(s, 1, true), label .. ": leaked " .. s .. " in " .. v)
    end
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      no_secrets(k, label, seen)
      no_secrets(x, label, seen)
    end
  end
end

-- Check the time a failure took: a timeout close to TIMEOUT, anything else well under it.
local function check_time(label, code, took, limit)
  if SLOW > 1 then limit = (limit or TIMEOUT) + SLOW end
  if code == "timeout" then
    assert(took >= TIMEOUT - 0.05 and took < (limit or TIMEOUT + 1),
      ("%s: timed out after %.2f s (timeout %d s)"):format(label, took, TIMEOUT))
  else
    assert(took < (limit or TIMEOUT), ("%s: took %.2f s"):format(label, took))
  end
end

-- Check an error object: its code (and status/problem when given), no secrets.
local function check_err(label, err, want)
  assert(errors.is(err), label .. ": an error object expected, got " .. tostring(err))
  assert(err.code == want.code, ("%s: code %s expected, got %s"):format(label, want.code, tostring(err)))
  if want.status then assert.equal(want.status, err.status, label) end
  if want.problem then assert.equal(want.problem, err.problem, label) end
  assert.is_string(err.message)
  assert(not tostring(err):find("oauth_signature", 1, true), label .. ": signature in message")
  if err.url then assert(not err.url:find("?", 1, true), label .. ": query string in err.url") end
  no_secrets(err.message, label)
  no_secrets(tostring(err), label)
  no_secrets(err, label)
end

-- Run fn() (which should fail) timed and under pcall; check nil, err.
-- want: code, status, problem, json (the call succeeds and res:json() fails), limit.
local function expect_failure(group, label, want, fn)
  local t0 = socket.gettime()
  local ok, res, err = pcall(fn)
  local took = socket.gettime() - t0
  count(group)
  assert(ok, label .. ": raised instead of returning nil, err: " .. tostring(res))
  if want.json then
    assert(res, label .. ": the request itself should succeed: " .. tostring(err))
    local v, jerr = res:json()
    assert.is_nil(v, label)
    res, err = nil, jerr
  end
  assert(res == nil, label .. ": nil, err expected, got " .. tostring(res))
  check_time(label, want.code, took, want.limit)
  check_err(label, err, want)
  return err, took
end

-- ------------------------------------------------------------- the faults

-- Faults of the HTTP exchange, by path, and what the API session should make of them.
local HTTP_FAULTS = {
  { "reset-headers", { code = "network" } },
  { "reset-body", { code = "network" } },
  { "reset-at-once", { code = "network" } },
  { "empty-reply", { code = "network" } },
  { "truncated-chunked", { code = "network" } },
  { "bad-chunk", { code = "network" } },
  { "bad-status", { code = "network" } },
  { "http09", { code = "network" } },
  { "bad-content-length", { code = "network" } },
  { "huge", { code = "too_large" } },
  { "huge-chunked", { code = "too_large" } },
  { "huge-headers", { code = "too_large" } },
  { "never", { code = "timeout" } },
  { "slow-headers", { code = "timeout" } },
  { "trickle", { code = "timeout" } },
  { "interim-flood", { code = "timeout" } },
  { "html-error", { code = "http", status = 502 } },
  { "rate-limited", { code = "http", status = 429 } },
  { "oauth-problem", { code = "oauth", status = 401, problem = "token_rejected" } },
}

-- A header line longer than libcurl accepts (100 KiB). Kept apart: libcurl
-- 7.x reports it as CURLE_OUT_OF_MEMORY, which the C core turns into a raise.
local LONG_HEADER = { "long-header-line", { code = "too_large" } }

-- 200 answers whose body is not the JSON an API call wants.
local JSON_FAULTS = {
  { "not-json", { code = "json", json = true } },
  { "truncated-json", { code = "json", json = true } },
}

-- What the token endpoints should make of a fault (only the body differs from the above).
local TOKEN_FAULTS = {}
for _, f in ipairs(HTTP_FAULTS) do TOKEN_FAULTS[#TOKEN_FAULTS + 1] = f end
for _, f in ipairs {
  { "garbage-token", { code = "oauth" } },
  { "missing-fields", { code = "oauth" } },
  { "secret-without-token", { code = "oauth" } },
  { "not-json", { code = "oauth" } },
  { "truncated-json", { code = "oauth" } },
} do TOKEN_FAULTS[#TOKEN_FAULTS + 1] = f end

-- What an upload should make of a fault (POST to "/" of the upload origin).
local UPLOAD_FAULTS = {}
for _, f in ipairs(HTTP_FAULTS) do UPLOAD_FAULTS[#UPLOAD_FAULTS + 1] = f end
for _, f in ipairs {
  { "not-json", { code = "json" } },
  { "truncated-json", { code = "json" } },
  { "api-fail", { code = "api" } },
  { "reset-during-upload", { code = "network" } },
} do UPLOAD_FAULTS[#UPLOAD_FAULTS + 1] = f end

-- ------------------------------------------------------------------ spec

local NORETRY = { retry = false }     -- per request: each fault hit once (see the retry cases)

describe("fault injection", function()
  local srv, pki, t_start, ctl_tls, big_file
  local trace_lines = {}

  local function new_client(origin, extra)
    local o = { key = KEY, secret = CONSUMER_SECRET, oauth_origin = origin, api_origin = origin,
                upload_origin = origin, timeout = TIMEOUT, connect_timeout = TIMEOUT,
                max_body = MAX_BODY, retry = false,
                debug = function(line) trace_lines[#trace_lines + 1] = line end }
    for k, v in pairs(extra or {}) do o[k] = v end
    return smugoauth.new(o)
  end

  -- The next request works: a JSON answer from /ok on the same session
  -- (at `origin` when given, else the session's api_origin).
  local function assert_recovers(api, label, origin)
    local res, err
    if origin then res, err = api:request { url = origin .. "/ok?q=" .. QUERY_MARK }
    else res, err = api:get("/ok", { q = QUERY_MARK }) end
    assert(res, label .. ": the next request failed: " .. tostring(err))
    assert.equal(200, res.status)
    assert.is_true(assert(res:json()).Response.ok)
  end

  local function upload_recovers(api, label)
    local res, err = api:upload { album = "/api/v2/album/K1", data = "abc", filename = "a.jpg" }
    assert(res, label .. ": the next upload failed: " .. tostring(err))
    assert.equal("/api/v2/image/ok-0", res:json().Image.ImageUri)
  end

  local function upload_small(api)
    return api:upload { album = "/api/v2/album/K1", data = "abc", filename = "a.jpg" }
  end

  setup(function()
    t_start = socket.gettime()
    srv = start_server()
    big_file = os.tmpname()
    local f = assert(io.open(big_file, "wb"))
    local block = core.random_bytes(64 * 1024)
    for _ = 1, 64 do f:write(block) end        -- 4 MiB
    f:close()
  end)

  teardown(function()
    for _, s in ipairs(servers) do s.stop() end
    if pki and pki:match("smugoauth%-pki") then os.execute("rm -rf " .. q(pki)) end
    if big_file then os.remove(big_file) end
    ctl:close()
    if ctl_tls then ctl_tls:close() end
    local parts = {}
    for k, v in pairs(counts) do if k ~= "total" then parts[#parts + 1] = k .. " " .. v end end
    table.sort(parts)
    print(("\nfaults_spec: %d fault cases (%s) in %.1f s"):format(counts.total,
      table.concat(parts, ", "), socket.gettime() - t_start))
  end)

  describe("API session, plain HTTP", function()
    local api
    setup(function()
      -- secrets in every header; PLAINTEXT over http needs the explicit opt-in
      local c = new_client(srv.origin, { signature_method = "PLAINTEXT", insecure_http = true })
      api = c:session("fault-token", TOKEN_SECRET)
    end)

    for _, f in ipairs(HTTP_FAULTS) do
      local name, want = f[1], f[2]
      it("api:get " .. name .. " -> " .. want.code .. ", then the next request works", function()
        expect_failure("get", "get /" .. name, want, function()
          return api:get("/" .. name, { q = QUERY_MARK }, NORETRY)
        end)
        assert_recovers(api, name)
      end)
    end

    for _, f in ipairs(HTTP_FAULTS) do
      local name, want = f[1], f[2]
      it("api:post " .. name .. " -> " .. want.code .. ", then the next request works", function()
        expect_failure("post", "post /" .. name, want, function()
          return api:post("/" .. name, { form = { a = "b c" }, query = { q = QUERY_MARK } })
        end)
        assert_recovers(api, name)
      end)
    end

    for _, f in ipairs(JSON_FAULTS) do
      local name, want = f[1], f[2]
      it("api:get " .. name .. " -> a response whose json() is nil, err json", function()
        expect_failure("get", "get /" .. name, want, function()
          return api:get("/" .. name, { q = QUERY_MARK }, NORETRY)
        end)
        assert_recovers(api, name)
      end)
    end

    -- FAILS (production bug): libcurl 7.x reports a header line over its
    -- 100 KiB limit as CURLE_OUT_OF_MEMORY, and csrc/http.c xfer_push raises
    -- "not enough memory" for that code instead of returning nil, err.
    it("api:get and get_many long-header-line -> too_large, not a raise; the session survives", function()
      local ok, err = pcall(expect_failure, "get", "get /long-header-line", LONG_HEADER[2], function()
        return api:get("/long-header-line", { q = QUERY_MARK }, NORETRY)
      end)
      assert_recovers(api, "long-header-line")        -- the handle survives even the raise
      local ok2, err2 = pcall(expect_failure, "get_many", "get_many /long-header-line", LONG_HEADER[2],
        function()
          local r = api:get_many({ { path = "/long-header-line", query = { q = QUERY_MARK } } }, NORETRY)[1]
          if errors.is(r) then return nil, r end
          return r
        end)
      assert_recovers(api, "long-header-line")
      assert(ok, err)
      assert(ok2, err2)
    end)

    -- libcurl 7.88 (Debian 12) gives up on a header section over 300 KiB with
    -- CURLE_RECV_ERROR, the code of a reset connection: it was "network".
    -- With the default max_body (64 MiB), so that the client's own body cap
    -- is not what trips.
    it("a header section over libcurl's 300 KiB limit -> too_large (get, get_many, request_token)", function()
      local c2 = new_client(srv.origin, { max_body = 64 * 1024 * 1024, insecure_http = true,
                                          signature_method = "PLAINTEXT" })
      local api2 = c2:session("fault-token", TOKEN_SECRET)
      local err = expect_failure("get", "get /big-headers", { code = "too_large" }, function()
        return api2:get("/big-headers", { q = QUERY_MARK }, NORETRY)
      end)
      assert.matches("response headers larger than 256 KiB", err.message, 1, true)
      local r = api2:get_many({ { path = "/big-headers", query = { q = QUERY_MARK } } }, NORETRY)[1]
      count("get_many")
      check_err("get_many /big-headers", r, { code = "too_large" })
      queue(srv, "big-headers")
      expect_failure("token", "request_token big-headers", { code = "too_large" }, function()
        return c2:request_token("oob")
      end)
      clear(srv)
      -- a large header section under the cap is fine, and the session goes on
      local ok = assert(api2:get("/big-headers", { kib = 200 }, NORETRY))
      assert.equal(200, ok.status)
      assert.is_true(assert(ok:json()).Response.ok)
      assert_recovers(api2, "big-headers")
    end)

    -- A non-idempotent request on a kept-alive connection that the server
    -- closes after reading it: libcurl re-sends it unchanged on a new one
    -- (the same nonce: a duplicate change, or nonce_used for a change that
    -- was made), even with retry = false. It must reach the server once and
    -- fail with network. (Uploads: see "an upload is sent once" below.)
    local SENT_ONCE = {
      { "api:post (form, retry = false)", function(a)
        return a:post("/api/v2/user/x!albums", { form = { Name = "trip" }, query = { q = QUERY_MARK },
                                                 retry = false })
      end },
      { "api:post (the session's policy)", function(a)
        return a:post("/api/v2/user/x!albums", { json = { Name = "trip" } })
      end },
      { "api:patch (json)", function(a)
        return a:patch("/api/v2/album/K1", { json = { Title = "t" }, retry = { attempts = 3 } })
      end },
      { "api:request with another method", function(a)
        return a:request { method = "LOCK", path = "/api/v2/album/K1", body = "x" }
      end },
      { "api:get_many with a POST", function(a)
        local r = a:get_many({ { method = "POST", path = "/api/v2/user/x!albums", form = { a = "b" } } },
                             { retry = { attempts = 3, sleep = function() end } })[1]
        if errors.is(r) then return nil, r end
        return r
      end, function(a)                                 -- get_many keeps its own connections
        assert.equal(200, a:get_many({ "/ok" })[1].status)
      end },
    }
    for _, case in ipairs(SENT_ONCE) do
      for _, name in ipairs { "empty-reply", "reset-at-once" } do
        it(case[1] .. " is sent once when its kept-alive connection dies unanswered (" .. name .. ")", function()
          if case[3] then case[3](api) else assert_recovers(api, "warm-up") end  -- a connection to reuse
          queue(srv, name, 1)
          local res, err = case[2](api)
          local st = stats(srv)
          clear(srv)
          count("post")
          local seen = {}
          for i, e in ipairs(st.log) do seen[i] = e[1] .. " nonce " .. e[2] end
          assert(st.total == 1 and res == nil, ("%s reached the server %d times (%s) and returned %s " ..
            "instead of nil, err network"):format(case[1], st.total, table.concat(seen, ", "),
            tostring(res or err)))
          check_err(case[1] .. " once " .. name, err, { code = "network" })
          assert.equal(1, err.attempts)
          assert_recovers(api, case[1])
        end)
      end
    end

    it("a POST with retry.unsafe (or fresh = false) may reuse the kept-alive connection", function()
      assert_recovers(api, "warm-up")
      local res = assert(api:post("/api/v2/user/x!albums", { form = { a = "b" }, retry = { unsafe = true } }))
      assert.equal(0, res.new_connections)
      res = assert(api:post("/api/v2/user/x!albums", { form = { a = "b" }, fresh = false }))
      assert.equal(0, res.new_connections)
      res = assert(api:post("/api/v2/user/x!albums", { form = { a = "b" } }))
      assert.equal(1, res.new_connections)
      res = assert(api:get("/ok"))                     -- the POST's connection is kept for the next
      assert.equal(0, res.new_connections)
    end)

    it("api:get_many: every fault at once, in input order, within one timeout", function()
      local list, want = {}, {}
      for _, f in ipairs(HTTP_FAULTS) do
        list[#list + 1] = { path = "/" .. f[1], query = { q = QUERY_MARK } }
        want[#want + 1] = f
        list[#list + 1] = "/ok"
        want[#want + 1] = false
      end
      local t0 = socket.gettime()
      local ok, results = pcall(api.get_many, api, list, { concurrency = 32, retry = false })
      local took = socket.gettime() - t0
      assert(ok, "get_many raised: " .. tostring(results))
      assert.equal(#list, #results)
      assert(took < TIMEOUT + 1, ("get_many took %.2f s"):format(took))
      for i, r in ipairs(results) do
        if want[i] then
          count("get_many")
          check_err("get_many /" .. want[i][1], r, want[i][2])
        else
          assert.equal(200, r.status)
          assert.is_true(r:json().Response.ok)
        end
      end
      -- the next batch on the same session works
      local again = api:get_many({ "/ok", "/ok", "/ok" }, { concurrency = 3 })
      for _, r in ipairs(again) do assert.equal(200, r.status) end
      assert_recovers(api, "get_many")
    end)

    it("api:get_many: JSON faults give responses whose json() fails", function()
      local results = api:get_many({ "/not-json", "/truncated-json", "/ok" })
      for i = 1, 2 do
        count("get_many")
        assert.equal(200, results[i].status)
        local v, jerr = results[i]:json()
        assert.is_nil(v)
        check_err("get_many json " .. i, jerr, { code = "json" })
      end
      assert.is_true(results[3]:json().Response.ok)
    end)

    it("api:each and api:pages hand a fault on page 2 to the loop, once, then stop", function()
      for _, case in ipairs {
        { "reset-body", "network" }, { "not-json", "json" }, { "html-error", "http" },
        { "huge-chunked", "too_large" }, { "never", "timeout" },
      } do
        local items, errs = {}, {}
        local t0 = socket.gettime()
        for item, err in api:each("/paged", { next = case[1], q = QUERY_MARK }, NORETRY) do
          if item then items[#items + 1] = item.Name else errs[#errs + 1] = err end
        end
        local took = socket.gettime() - t0
        count("each")
        assert.same({ "first" }, items)
        assert.equal(1, #errs)
        check_err("each -> " .. case[1], errs[1], { code = case[2] })
        check_time("each -> " .. case[1], case[2], took)
        local pages, perr = 0, nil
        for page, res in api:pages("/paged", { next = case[1], q = QUERY_MARK }, NORETRY) do
          if page then pages = pages + 1 else perr = res end
        end
        count("each")
        assert.equal(1, pages)
        check_err("pages -> " .. case[1], perr, { code = case[2] })
      end
      assert_recovers(api, "each")
    end)

    for _, f in ipairs(UPLOAD_FAULTS) do
      local name, want = f[1], f[2]
      it("api:upload " .. name .. " -> " .. want.code .. ", then the next upload works", function()
        queue(srv, name)
        expect_failure("upload", "upload " .. name, want, function() return upload_small(api) end)
        clear(srv)
        upload_recovers(api, name)
        assert_recovers(api, name)
      end)
    end

    for _, name in ipairs { "reset-during-upload", "reset-mid-upload", "html-error", "never" } do
      it("api:upload of a 4 MiB file, streamed, " .. name, function()
        local want = name == "html-error" and { code = "http", status = 502 }
          or name == "never" and { code = "timeout" } or { code = "network" }
        queue(srv, name)
        local progress = 0
        expect_failure("upload", "upload file " .. name, want, function()
          return api:upload { album = "/api/v2/album/K1", file = big_file,
                              on_progress = function(sent) progress = sent end }
        end)
        clear(srv)
        assert.is_true(progress <= 4 * 1024 * 1024)
        upload_recovers(api, name)
      end)
    end

    -- FAILS (production bug): README says "Uploads and other POSTs are not
    -- retried unless unsafe = true", but libcurl re-sends any request once,
    -- with the same headers (the same oauth_nonce), when a *reused*
    -- connection dies before the first answer byte. The server here read the
    -- whole upload before dropping the connection, so it got it twice.
    for _, name in ipairs { "reset-at-once", "empty-reply" } do
      it("an upload is sent once when its kept-alive connection dies unanswered (" .. name .. ")", function()
        upload_recovers(api, "warm-up")                 -- a kept-alive connection to reuse
        queue(srv, name, 1)
        local res, err = upload_small(api)
        local st = stats(srv)
        clear(srv)
        count("upload")
        local nonces = {}
        for i, e in ipairs(st.log) do nonces[i] = e[1] .. " nonce " .. e[2] end
        assert(st.total == 1 and res == nil, ("one api:upload reached the server %d times (%s) and " ..
          "returned %s instead of nil, err network"):format(st.total, table.concat(nonces, ", "),
          tostring(res or err)))
        check_err("upload once " .. name, err, { code = "network" })
      end)
    end

    it("retries: idempotent network faults 3 times, timeouts and POSTs once", function()
      local nosleep = { attempts = 3, sleep = function() end }
      clear(srv)
      local err = expect_failure("retry", "retried get /reset-body", { code = "network" }, function()
        return api:get("/reset-body", { q = QUERY_MARK }, { retry = nosleep })
      end)
      assert.equal(3, err.attempts)
      assert.equal(3, stats(srv).paths["/reset-body"])
      err = expect_failure("retry", "retried get /rate-limited", { code = "http", status = 429 }, function()
        return api:get("/rate-limited", nil, { retry = nosleep })
      end)
      assert.equal(3, err.attempts)
      -- a timeout is not retried: one timeout, not three
      err = expect_failure("retry", "retried get /never", { code = "timeout" }, function()
        return api:get("/never", nil, { retry = nosleep })
      end)
      assert.equal(1, err.attempts)
      err = expect_failure("retry", "retried post /reset-body", { code = "network" }, function()
        return api:post("/reset-body", { form = { a = "b" }, retry = nosleep })
      end)
      assert.equal(1, err.attempts)
      clear(srv)
      local results = api:get_many({ "/reset-body", "/ok" }, { retry = nosleep })
      count("retry")
      check_err("get_many retried", results[1], { code = "network" })
      assert.equal(3, results[1].attempts)
      assert.equal(200, results[2].status)
      assert.equal(3, stats(srv).paths["/reset-body"])
      assert_recovers(api, "retry")
    end)

    -- FAILS (production bug): Session:request and get_many pick the policy with
    -- `o.retry == nil and self.retry or o.retry`, which turns the client's
    -- `false` into nil, i.e. the default policy (3 attempts, with backoff).
    it("retry = false on smugoauth.new turns retries off", function()
      local api2 = new_client(srv.origin, { retry = false }):session("fault-token", TOKEN_SECRET)
      clear(srv)
      local err = expect_failure("retry", "client retry=false get /reset-body", { code = "network",
        limit = 3 * TIMEOUT }, function() return api2:get("/reset-body") end)
      local r = api2:get_many({ "/reset-body" })[1]
      local sent = stats(srv).paths["/reset-body"]
      assert.equal(1, err.attempts, "api:get made " .. tostring(err.attempts) .. " attempts")
      assert.equal(1, r.attempts, "get_many made " .. tostring(r.attempts) .. " attempts")
      assert.equal(2, sent)
    end)

    it("connection refused (a closed port) -> network, quickly; the session still works", function()
      local port = closed_port()
      local c2 = new_client("http://127.0.0.1:" .. port)
      local api2 = c2:session("fault-token", TOKEN_SECRET)
      expect_failure("refused", "refused get", { code = "network" }, function()
        return api2:get("/ok", { q = QUERY_MARK }, NORETRY)
      end)
      expect_failure("refused", "refused post", { code = "network" }, function()
        return api2:post("/ok", { json = { a = 1 }, query = { q = QUERY_MARK } })
      end)
      expect_failure("refused", "refused upload", { code = "network" }, function()
        return upload_small(api2)
      end)
      local r = api2:get_many({ "/ok", { path = "/ok", query = { q = QUERY_MARK } } }, NORETRY)
      count("refused")
      check_err("refused get_many", r[1], { code = "network" })
      check_err("refused get_many", r[2], { code = "network" })
      expect_failure("refused", "refused request_token", { code = "network" }, function()
        return c2:request_token("oob")
      end)
      expect_failure("refused", "refused access_token", { code = "network" }, function()
        return c2:access_token("req-token", TOKEN_SECRET, "123456")
      end)
      assert_recovers(api2, "refused", srv.origin)
    end)
  end)

  describe("token calls, plain HTTP", function()
    local c_req, c_acc
    setup(function()
      c_req = new_client(srv.origin)                                  -- HMAC-SHA1
      c_acc = new_client(srv.origin, { signature_method = "PLAINTEXT", insecure_http = true })
    end)

    for _, f in ipairs(TOKEN_FAULTS) do
      local name, want = f[1], f[2]
      it("request_token " .. name .. " -> " .. want.code .. ", then the next one works", function()
        queue(srv, name)
        expect_failure("token", "request_token " .. name, want, function()
          return c_req:request_token("oob")
        end)
        clear(srv)
        local rt, rts = c_req:request_token("oob")
        assert(rt, "the next request_token failed: " .. tostring(rts))
        assert.equal("tok-secret", rts)
      end)

      it("access_token " .. name .. " -> " .. want.code .. ", then the next one works", function()
        queue(srv, name)
        expect_failure("token", "access_token " .. name, want, function()
          return c_acc:access_token("req-token", TOKEN_SECRET, "123456")
        end)
        clear(srv)
        local at, ats = c_acc:access_token("req-token", TOKEN_SECRET, "123456")
        assert(at, "the next access_token failed: " .. tostring(ats))
      end)
    end

    it("request_token callback-unconfirmed -> oauth [callback_unconfirmed]", function()
      queue(srv, "callback-unconfirmed")
      expect_failure("token", "request_token callback-unconfirmed",
        { code = "oauth", problem = "callback_unconfirmed" }, function()
          return c_req:request_token("https://example.com/cb?x=" .. QUERY_MARK)
        end)
      clear(srv)
      assert(c_req:request_token("oob"))
    end)

    -- FAILS (production bug): as for api:get above.
    it("request_token long-header-line -> too_large, not a raise", function()
      queue(srv, "long-header-line")
      local ok, err = pcall(expect_failure, "token", "request_token long-header-line", LONG_HEADER[2],
        function() return c_req:request_token("oob") end)
      clear(srv)
      assert(c_req:request_token("oob"))
      assert(ok, err)
    end)

    it("a server that went away and came back: refused, then the same client and session work", function()
      local s2 = start_server()
      local c2 = new_client(s2.origin)
      local api2 = c2:session("fault-token", TOKEN_SECRET)
      assert(c2:request_token("oob"))
      assert_recovers(api2, "before")                  -- a kept-alive connection now in the pool
      local port = s2.port
      s2.stop()
      expect_failure("restart", "gone request_token", { code = "network" }, function()
        return c2:request_token("oob")
      end)
      expect_failure("restart", "gone get", { code = "network" }, function()
        return api2:get("/ok", { q = QUERY_MARK }, NORETRY)
      end)
      expect_failure("restart", "gone upload", { code = "network" }, function()
        return upload_small(api2)
      end)
      start_server("--port " .. port)
      assert(c2:request_token("oob"))
      assert_recovers(api2, "after")
      upload_recovers(api2, "after")
    end)
  end)

  describe("TLS, session and API path", function()
    local tls, silent
    setup(function()
      local p = assert(io.popen("sh spec/support/mkcerts.sh"))
      pki = p:read("l")
      p:close()
      assert(pki and slurp(pki .. "/ca.pem"), "mkcerts.sh failed")
      ctl_tls = core.http_new { timeout = 5, ca_file = pki .. "/ca.pem" }
      tls = {}
      for _, name in ipairs { "server", "untrusted", "wronghost", "expired" } do
        tls[name] = start_server(("--cert %s --key %s"):format(
          q(pki .. "/" .. name .. ".pem"), q(pki .. "/" .. name .. ".key")))
      end
      tls.server.ctl, tls.server.ctl_origin = ctl_tls, tls.server.tls_origin
      silent = start_server("--silent")
    end)

    local function tls_session(origin, extra)
      local o = { ca_file = pki .. "/ca.pem", signature_method = "PLAINTEXT" }
      for k, v in pairs(extra or {}) do o[k] = v end
      local c = new_client(origin, o)
      return c:session("fault-token", TOKEN_SECRET), c
    end

    for _, name in ipairs { "untrusted", "wronghost", "expired" } do
      it("a " .. name .. " certificate: get, post, get_many, upload -> tls; the session still works", function()
        local api = tls_session(tls[name].tls_origin)
        expect_failure("tls", name .. " get", { code = "tls" }, function()
          return api:get("/ok", { q = QUERY_MARK })
        end)
        assert_recovers(api, name, tls.server.tls_origin)
        expect_failure("tls", name .. " post", { code = "tls" }, function()
          return api:post("/ok", { form = { a = "b" }, query = { q = QUERY_MARK } })
        end)
        local r = api:get_many({ { path = "/ok", query = { q = QUERY_MARK } }, "/reset-body" })
        count("tls")
        check_err(name .. " get_many", r[1], { code = "tls" })
        check_err(name .. " get_many", r[2], { code = "tls" })
        expect_failure("tls", name .. " upload", { code = "tls" }, function()
          return api:upload { album = "/api/v2/album/K1", file = big_file }
        end)
        assert_recovers(api, name, tls.server.tls_origin)
      end)
    end

    it("the test CA's server without ca_file (system bundle) -> tls", function()
      local api = new_client(tls.server.tls_origin):session("fault-token", TOKEN_SECRET)
      expect_failure("tls", "no ca_file get", { code = "tls" }, function()
        return api:get("/ok", { q = QUERY_MARK })
      end)
      assert_recovers(api, "no ca_file", srv.origin)
    end)

    it("https to a plain-HTTP port -> tls; http to a TLS port -> network", function()
      local api = tls_session(srv.tls_origin)
      expect_failure("tls", "https to http", { code = "tls" }, function()
        return api:get("/ok", { q = QUERY_MARK })
      end)
      assert_recovers(api, "https to http", tls.server.tls_origin)
      local api2 = tls_session(tls.server.origin, { insecure_http = true })   -- PLAINTEXT over http
      expect_failure("tls", "http to https", { code = "network" }, function()
        return api2:get("/ok", { q = QUERY_MARK }, NORETRY)
      end)
      assert_recovers(api2, "http to https", tls.server.tls_origin)
    end)

    it("a TLS handshake that never completes -> timeout (get, get_many, request_token)", function()
      local api, c = tls_session(silent.tls_origin)
      expect_failure("tls", "handshake stall get", { code = "timeout" }, function()
        return api:get("/ok", { q = QUERY_MARK })
      end)
      local t0 = socket.gettime()
      local r = api:get_many({ "/ok", "/ok?q=" .. QUERY_MARK })
      count("tls")
      check_time("handshake stall get_many", "timeout", socket.gettime() - t0)
      check_err("handshake stall get_many", r[1], { code = "timeout" })
      check_err("handshake stall get_many", r[2], { code = "timeout" })
      expect_failure("tls", "handshake stall request_token", { code = "timeout" }, function()
        return c:request_token("oob")
      end)
      assert_recovers(api, "handshake stall", tls.server.tls_origin)
    end)

    for _, f in ipairs {
      { "reset-headers", { code = "network" } }, { "reset-body", { code = "network" } },
      { "truncated-chunked", { code = "network" } }, { "empty-reply", { code = "network" } },
      { "huge-chunked", { code = "too_large" } }, { "trickle", { code = "timeout" } },
      { "html-error", { code = "http", status = 502 } },
    } do
      local name, want = f[1], f[2]
      it("over TLS, " .. name .. " -> " .. want.code .. " (not tls), then the session works", function()
        local api = tls_session(tls.server.tls_origin)
        assert_recovers(api, "warm-up")
        expect_failure("tls", "tls get " .. name, want, function()
          return api:get("/" .. name, { q = QUERY_MARK }, NORETRY)
        end)
        assert_recovers(api, name)
      end)
    end

    for _, name in ipairs { "reset-during-upload", "reset-mid-upload" } do
      it("over TLS, a streamed 4 MiB upload cut by " .. name .. " -> network (three times)", function()
        local api = tls_session(tls.server.tls_origin)
        for _ = 1, 3 do
          queue(tls.server, name)
          expect_failure("tls", "tls upload " .. name, { code = "network" }, function()
            return api:upload { album = "/api/v2/album/K1", file = big_file }
          end)
        end
        clear(tls.server)
        upload_recovers(api, name)
      end)
    end
  end)

  it("the debug trace of all of the above shows no secret", function()
    assert.is_true(#trace_lines > 100)
    local text = table.concat(trace_lines, "\n")
    for _, s in ipairs { CONSUMER_SECRET, core.percent_encode(CONSUMER_SECRET),
                         TOKEN_SECRET, core.percent_encode(TOKEN_SECRET), "LEAKED-S3CRET" } do
      assert(not text:find(s, 1, true), "trace leaked " .. s)
    end
  end)
end)
