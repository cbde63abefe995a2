-- Options declared once: the request options (smugoauth.request OPTIONS) and
-- the client options (smugoauth.client OPTIONS) are walked row by row, and
-- each is shown to reach what it declares: the C request table (through a
-- stub of the session's C HTTP client, for api:request and get_many alike),
-- the signature base string when it is marked signed (and only then), and
-- core.http_new for the client options marked http. Then the wire itself:
-- `smugoauth.new{ user_agent = "x/1" }` sends `User-Agent: x/1` on every
-- request path (spec/support/headers_server.py on 127.0.0.1).
local smugoauth = require "smugoauth"
local core = require "smugoauth.core"
local files = require "support.files"
local request = require "smugoauth.request"
local client_mod = require "smugoauth.client"

local ORIGIN = "http://127.0.0.1:9"        -- never contacted: the C client is stubbed
local CLOSED = io.tmpfile()
CLOSED:close()

local function on_progress() end
local function on_data() end

-- For each request option: the options of a request without it and with
-- it. A row of OPTIONS without a sample here fails the walk.
local SAMPLES = {
  method = { { path = "/x" }, { path = "/x", method = "patch" } },
  path = { { path = "/x" }, { path = "/y" } },
  origin = { { path = "/x" }, { path = "/x", origin = "http://127.0.0.2:8" } },
  url = { { path = "/x" }, { url = "http://127.0.0.1:9/abs?a=1" } },
  query = { { path = "/x" }, { path = "/x", query = { z = "1 2" } } },
  form = { { path = "/x", method = "POST" }, { path = "/x", method = "POST", form = { f = "v" } } },
  json = { { path = "/x", method = "POST" }, { path = "/x", method = "POST", json = { j = 1 } } },
  body = { { path = "/x", method = "POST" }, { path = "/x", method = "POST", body = "raw" } },
  body_file = { { path = "/x", method = "POST" }, { path = "/x", method = "POST", body_file = "/tmp/f" } },
  content_type = { { path = "/x", method = "POST", body = "b" },
                   { path = "/x", method = "POST", body = "b", content_type = "text/x" } },
  headers = { { path = "/x" }, { path = "/x", headers = { ["X-Thing"] = "1" } } },
  on_progress = { { path = "/x" }, { path = "/x", on_progress = on_progress } },
  timeout = { { path = "/x" }, { path = "/x", timeout = 7 } },
  max_body = { { path = "/x" }, { path = "/x", max_body = 1234 } },
  fresh = { { path = "/x" }, { path = "/x", fresh = true } },
  retry = { { path = "/x" }, { path = "/x", retry = { attempts = 2 } } },
  out = { { path = "/x" }, { path = "/x", out = "/tmp/o" } },
  out_offset = { { path = "/x", out = "/tmp/o" }, { path = "/x", out = "/tmp/o", out_offset = 5 } },
  out_file = { { path = "/x" }, { path = "/x", out_file = io.stdout } },
  on_data = { { path = "/x" }, { path = "/x", on_data = on_data } },
  digest = { { path = "/x", out = "/tmp/o" }, { path = "/x", out = "/tmp/o", digest = "md5" } },
  sync = { { path = "/x", out = "/tmp/o" }, { path = "/x", out = "/tmp/o", sync = true } },
}

-- A session whose C HTTP client and signer are stubs: every C request and
-- every base string is recorded.
local function stub_session()
  local c = smugoauth.new { key = "k", secret = "s", api_origin = ORIGIN, oauth_origin = ORIGIN,
                            upload_origin = ORIGIN, retry = false }
  local api = c:session("t", "ts")
  api.http:close()
  api.signer:close()
  local seen = { creqs = {}, bases = {} }
  local function raw()
    return { status = 200, headers = { { "Content-Type", "application/json" } }, body = '{"stat":"ok"}',
             time = 0, new_connections = 1 }
  end
  api.http = {
    request = function(_, creq) seen.creqs[#seen.creqs + 1] = creq return raw() end,
    many = function(_, creqs)
      local out = {}
      for i, creq in ipairs(creqs) do seen.creqs[#seen.creqs + 1] = creq out[i] = raw() end
      return out
    end,
    close = function() end,
  }
  -- get_many runs its requests as tasks of the session's loop: there they
  -- reach the C client through the loop's transfer, stubbed the same way
  api:_loop().transfer = function(_, http, creq) return http:request(creq) end
  api.signer = {
    authorization = function(_, method, url, params)
      -- (a method the C core does not sign yet, e.g. M-SEARCH: a stand-in)
      local ok, bs = pcall(smugoauth.base_string, method, url, params)
      if not ok then bs = method .. "&" .. url end
      seen.bases[#seen.bases + 1] = bs
      return "OAuth stub", bs
    end,
    close = function() end,
  }
  return api, seen
end

-- The C request and the base string of one api:request(o).
local function via_request(o)
  local api, seen = stub_session()
  assert(api:request(o))
  assert.equal(1, #seen.creqs)
  return seen.creqs[1], seen.bases[1]
end

-- The same through get_many.
local function via_many(o)
  local api, seen = stub_session()
  local r = api:get_many({ o })[1]
  assert.equal(200, r.status)
  return seen.creqs[1], seen.bases[1]
end

describe("request options, declared once", function()
  it("every option reaches the C request field it declares", function()
    local fields = {}
    for _, f in ipairs(request.C_FIELDS) do fields[f] = true end
    local n = 0
    for _, row in ipairs(request.OPTIONS) do
      local name = row[1]
      local sample = SAMPLES[name]
      assert(sample, "no sample for the request option " .. name .. ": add one to SAMPLES")
      if row.to then
        assert(fields[row.to], name .. " reaches " .. tostring(row.to) .. ", which the C client does not take")
        local without = via_request(sample[1])
        local with = via_request(sample[2])
        assert.are_not.same(without[row.to], with[row.to], name .. " did not change C field " .. row.to)
        n = n + 1
      else
        assert.is_false(row.to, name)
      end
    end
    assert.is_true(n >= 15)
  end)

  it("the values arrive as given", function()
    local creq = via_request { path = "/x", method = "patch", query = { z = "1 2" }, timeout = 7,
                               max_body = 1234, fresh = true, on_progress = on_progress,
                               headers = { ["X-Thing"] = "1" }, body = "raw", content_type = "text/x" }
    assert.equal("PATCH", creq.method)
    assert.equal(ORIGIN .. "/x?z=1%202", creq.url)
    assert.equal(7, creq.timeout)
    assert.equal(1234, creq.max_body)
    assert.is_true(creq.fresh)
    assert.equal(on_progress, creq.on_progress)
    assert.equal("raw", creq.body)
    assert.same({ "Authorization: OAuth stub", "X-Thing: 1", "Accept: application/json",
                  "Content-Type: text/x" }, creq.headers)
    assert.equal("M-SEARCH", via_request({ path = "/x", method = "m-search" }).method)
    creq = via_request { path = "/x", method = "POST", body_file = "/tmp/f" }
    assert.equal("/tmp/f", creq.body_file)
    assert.is_true(creq.fresh)                     -- a POST: a new connection (smugoauth.retry)
    creq = via_request { path = "/x", method = "POST", form = { f = "v" }, retry = { unsafe = true } }
    assert.equal("f=v", creq.body)
    assert.is_false(creq.fresh)
    for k in pairs(creq) do
      local known = false
      for _, f in ipairs(request.C_FIELDS) do known = known or f == k end
      assert(known, "the C request has a field the C client does not take: " .. k)
    end
  end)

  it("an option marked signed changes the base string, no other does", function()
    for _, row in ipairs(request.OPTIONS) do
      local sample = assert(SAMPLES[row[1]])
      local _, without = via_request(sample[1])
      local _, with = via_request(sample[2])
      if row.signed then
        assert.are_not.equal(without, with, row[1] .. " is marked signed but is not in the base string")
      else
        assert.equal(without, with, row[1] .. " is not marked signed but changes the base string")
      end
    end
  end)

  it("get_many builds the same C request from the same options", function()
    for _, row in ipairs(request.OPTIONS) do
      if row[1] ~= "on_progress" then
        for _, o in ipairs(SAMPLES[row[1]]) do
          local one, base1 = via_request(o)
          local many, base2 = via_many(o)
          assert.same(one, many, row[1])
          assert.equal(base1, base2, row[1])
        end
      end
    end
    local api = stub_session()
    assert.has_error(function() api:get_many({ SAMPLES.on_progress[2] }) end,
      "get_many: on_progress is not supported here")
  end)

  it("misuse raises, naming the option", function()
    local api = stub_session()
    for _, case in ipairs {
      { { path = "/x", nope = 1 }, "request: unknown option 'nope'" },
      { { path = "/x", method = "GET /y" }, "request: bad method GET /y (an HTTP token expected)" },
      { { path = "/x", method = "" }, "request: bad method  (an HTTP token expected)" },
      { { path = "/x", timeout = "7" }, "request: option 'timeout' must be number (got string)" },
      { { path = "/x", max_body = 0 }, "request: max_body must be a positive integer (bytes)" },
      { { path = "/x", json = {}, form = {} }, "request: give only one of json, form, body, body_file" },
      { { url = ORIGIN .. "/a", path = "/x" }, "request: give url, or path (and origin), not both" },
      { { url = ORIGIN .. "/a", origin = ORIGIN }, "request: give url, or path (and origin), not both" },
      { { path = "/x", retry = { attemps = 3 } }, "request: retry: unknown option 'attemps'" },
      { { path = "/x", retry = { attempts = 0 } }, "request: retry: attempts must be a positive integer" },
      { { path = "/x", out = "/tmp/o", out_offset = -1 }, "request: out_offset must be an integer, 0 or more" },
      { { path = "/x", out_file = io.stdout.close }, "request: option 'out_file' must be userdata (got function)" },
      { { path = "/x", out_file = CLOSED }, "request: out_file must be an open io file handle" },
      { { path = "/x", out = "/tmp/o", digest = "sha1" }, 'request: digest must be "md5"' },
    } do
      local ok, err = pcall(api.request, api, case[1])
      assert.is_false(ok)
      assert.matches(case[2], err, 1, true)
      ok, err = pcall(api.get_many, api, { case[1] })
      assert.is_false(ok)
      assert.matches((case[2]:gsub("^request:", "get_many:")), err, 1, true)
    end
  end)
end)

describe("client options, declared once", function()
  -- A value for each option marked http (what core.http_new takes).
  local HTTP_SAMPLES = { ca_file = "/nonexistent/ca.pem", timeout = 7, connect_timeout = 3,
                         max_body = 12345, user_agent = "x/1" }

  -- Run fn with core.http_new recording its options (and returning a stub).
  local function recording(fn)
    local real, seen = core.http_new, {}
    core.http_new = function(o)
      seen[#seen + 1] = o
      return { close = function() end }
    end
    local ok, err = pcall(fn)
    core.http_new = real
    assert(ok, err)
    return seen
  end

  it("every option marked http reaches core.http_new, for the client and each session", function()
    local o = { key = "k", secret = "s" }
    local n = 0
    for _, row in ipairs(client_mod.OPTIONS) do
      if row.http then
        assert(HTTP_SAMPLES[row[1]] ~= nil, "no sample for the client option " .. row[1])
        o[row[1]] = HTTP_SAMPLES[row[1]]
        n = n + 1
      end
    end
    assert.equal(5, n)
    local seen = recording(function() smugoauth.new(o):session("t", "ts") end)
    assert.equal(2, #seen)
    for _, got in ipairs(seen) do
      for name, v in pairs(HTTP_SAMPLES) do assert.equal(v, got[name], name) end
    end
    -- and their defaults, when not given
    seen = recording(function() smugoauth.new { key = "k", secret = "s" } end)
    assert.equal("smugoauth/" .. core.version, seen[1].user_agent)
    assert.equal(30, seen[1].timeout)
    assert.equal(10, seen[1].connect_timeout)
    assert.equal(64 * 1024 * 1024, seen[1].max_body)
    assert.is_nil(seen[1].ca_file)
  end)

  it("every other option is kept on the client, but its secrets", function()
    local given = { key = "k", secret = "s3cret", oauth_origin = "https://a.example",
                    api_origin = "https://b.example", upload_origin = "https://c.example",
                    signature_method = "HMAC-SHA256", retry = { attempts = 2 }, insecure_http = true,
                    debug = false }
    local c = smugoauth.new(given)
    for _, row in ipairs(client_mod.OPTIONS) do
      if row.keep == false then
        assert.is_nil(rawget(c, row[1]), row[1] .. " is kept in the client table")
      elseif row[1] == "download_origins" then     -- a copy; the default made from api_origin
        assert.same({ client_mod.ARCHIVE_ORIGIN, "https://b.example" }, c.download_origins)
      elseif given[row[1]] ~= nil then
        assert.equal(given[row[1]], c[row[1]], row[1])
      else
        assert.equal(row[3], c[row[1]], row[1] .. " default")
      end
    end
    assert.equal("REDACTED", tostring(c._secret_box))
    given.download_origins = { "https://D.example:443", "http://e.example:8080" }
    c = smugoauth.new(given)
    assert.same({ "https://d.example", "http://e.example:8080" }, c.download_origins)
  end)
end)

describe("user_agent on the wire", function()
  local srv

  setup(function()
    local out = os.tmpname()
    local p = assert(io.popen(("/usr/bin/python3 spec/support/headers_server.py > %s 2>/dev/null & echo $!")
      :format(files.q(out))))
    srv = { pid = tonumber(p:read("l")), out = out }
    p:close()
    srv.port = files.wait_for(function()
      return tonumber((files.slurp(out) or ""):match("^PORT (%d+)"))
    end, 10)
    assert(srv.port, "headers_server.py did not start")
    srv.origin = "http://127.0.0.1:" .. srv.port
  end)

  teardown(function()
    if srv then
      if srv.pid then os.execute("kill " .. srv.pid .. " 2>/dev/null") end
      os.remove(srv.out)
    end
  end)

  local function client(extra)
    local o = { key = "k", secret = "s", oauth_origin = srv.origin, api_origin = srv.origin,
                upload_origin = srv.origin, timeout = 10, retry = false }
    for k, v in pairs(extra or {}) do o[k] = v end
    return smugoauth.new(o)
  end

  -- The User-Agent header a response of headers_server.py saw.
  local function agent(res)
    return assert(res:json()).headers["user-agent"]
  end

  it("smugoauth.new{ user_agent = \"x/1\" } sends User-Agent: x/1 on every request path", function()
    local c = client { user_agent = "x/1" }
    local api = c:session("t", "ts")
    assert.equal("x/1", agent(assert(api:request { path = "/r" })))
    assert.equal("x/1", agent(assert(api:get("/g", { a = "b" }))))
    assert.equal("x/1", agent(assert(api:post("/p", { form = { a = "b" } }))))
    local results = api:get_many({ "/m1", { path = "/m2" }, { method = "PUT", path = "/m3", json = {} } })
    for i = 1, 3 do assert.equal("x/1", agent(results[i]), "get_many item " .. i) end
    local up = assert(api:upload { album = "/api/v2/album/K1", data = "abc", filename = "a.jpg" })
    assert.equal("x/1", agent(up))
    assert.equal("/", up:json().path)
    assert.equal("POST", up:json().method)
    -- the token calls: the answer is no token, and its body (in the error, redacted: not
    -- JSON any more) shows the header
    local rt, err = c:request_token("oob")
    assert.is_nil(rt)
    assert.equal("oauth", err.code)
    assert.equal("x/1", err.body:match('"user%-agent": "([^"]*)"'))
    api:close()
    c:close()
  end)

  it("without user_agent, User-Agent is smugoauth/<version>", function()
    local api = client():session("t", "ts")
    assert.equal("smugoauth/" .. core.version, agent(assert(api:get("/g"))))
    assert.equal("smugoauth/" .. core.version, agent(api:get_many({ "/m" })[1]))
    api:close()
  end)

  it("a user_agent with CR or LF is refused", function()
    assert.has_error(function() client { user_agent = "x/1\r\nX-Injected: 1" } end)
    assert.has_error(function() client { user_agent = 1 } end)
  end)
end)
