-- The library layer as ARCHITECTURE.md draws it: what its modules may
-- require, their size, one object idiom for every type, and a front that
-- re-exports the public API and no internals.
local smugoauth = require "smugoauth"
local files = require "support.files"

-- The library: the front and lua/smugoauth/<name>.lua for each name.
local LIBRARY = { "client", "session", "request", "retry", "response", "pages", "upload", "download", "many",
                  "config", "credentials", "errors", "json", "trace", "util",
                  "loop", "loop.scheduler", "loop.waits", "loop.task", "loop.limit", "loop.timers",
                  "loop.queue",
                  "sqlite",
                  "backup.walk", "backup.names", "backup.manifest", "backup.plan", "backup.apply", "backup.run",
                  "sync", "sync.scan", "sync.hash", "sync.manifest", "sync.remote", "sync.plan", "sync.run" }

-- What a library module may require besides other library modules (the
-- manifests of sync and backup: SQLite through luasql).
local ALLOWED = { ["smugoauth.core"] = true, ["cjson"] = true, ["cjson.safe"] = true, ["socket"] = true,
                  ["luasql.sqlite3"] = true }

local function path_of(name)
  if name == "smugoauth" then return "lua/smugoauth.lua" end
  if name == "loop" or name == "sync" then return "lua/smugoauth/" .. name .. "/init.lua" end
  return "lua/smugoauth/" .. name:gsub("%.", "/") .. ".lua"
end

describe("the library layer", function()
  it("requires only core, cjson, socket and other library modules (never http/ or apps/)", function()
    local lib = {}
    for _, n in ipairs(LIBRARY) do lib["smugoauth." .. n] = true end
    for _, n in ipairs { "smugoauth", table.unpack(LIBRARY) } do
      local text = assert(files.slurp(path_of(n)), path_of(n))
      local count = 0
      text = text:gsub("%-%-[^\n]*", "")                 -- comments (doc examples) are not code
      for dep in text:gmatch("require%s*%(?%s*[\"']([^\"']+)[\"']") do
        count = count + 1
        assert(ALLOWED[dep] or lib[dep], path_of(n) .. " requires " .. dep)
      end
      assert(count > 0 or n == "errors" or n == "loop.timers" or n == "sync.plan" or n == "backup.names",
        path_of(n) .. ": no require found")
    end
  end)

  it("keeps every file at or under 400 lines", function()
    for _, n in ipairs { "smugoauth", table.unpack(LIBRARY) } do
      local _, lines = assert(files.slurp(path_of(n))):gsub("\n", "")
      assert(lines <= 400, ("%s has %d lines"):format(path_of(n), lines))
    end
  end)

  it("gives every type a metatable named smugoauth.<Type> over a methods table", function()
    local c = smugoauth.new { key = "k", secret = "s" }
    local api = c:session("t", "ts")
    local err = smugoauth.errors.new("http", "x")
    for _, case in ipairs {
      { c, "smugoauth.Client", "client" }, { api, "smugoauth.Session", "session" },
      { c.trace, "smugoauth.Tracer", "trace" }, { err, "smugoauth.Error", "errors" },
      { require("smugoauth.retry").new(), "smugoauth.Retry", "retry" },
      { require("smugoauth.response").new { status = 200, headers = {}, body = "" }, "smugoauth.Response",
        "response" },
    } do
      local obj, name, mod = case[1], case[2], require("smugoauth." .. case[3])
      local mt = getmetatable(obj)
      assert.equal(name, mt.__name)
      assert.equal(mod.mt, mt, name .. ": the module's mt")
      assert.equal(mod.methods, mt.__index, name .. ": __index is the module's methods")
    end
    api:close()
    c:close()
  end)

  it("re-exports the public API from the front, and no internal", function()
    for _, name in ipairs { "new", "from_config", "load_credentials", "sign", "signer", "base_string",
                            "percent_encode", "percent_decode", "parse_form", "content_type_for" } do
      assert.is_function(smugoauth[name], name)
    end
    assert.is_table(smugoauth.errors)
    assert.is_table(smugoauth.config)
    assert.equal(require("smugoauth.response").mt, smugoauth.Response)
    assert.equal(smugoauth.Response, require("smugoauth.client").Response)
    assert.equal("image/jpeg", smugoauth.content_type_for("a.JPG"))
    for k in pairs(smugoauth) do
      assert(k == "_VERSION" or not k:match("^_"), "internal " .. k .. " exported")
      for _, n in ipairs { "request", "retry", "session", "pages", "upload", "many", "util", "trace",
                           "response", "client", "credentials", "json" } do
        assert(k ~= n, "internal module " .. n .. " exported from the front")
      end
    end
  end)
end)
