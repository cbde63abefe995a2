--- `smugoauth sync` against the sandbox: bin/smugoauth as a real process
-- (lines in a pipe, the summary, --json, --dry-run, --tree, exit statuses,
-- failures listed at the end) and cli.main in-process for the progress
-- display on a "terminal" (smugoauth.apps.cli.progress, backup's).
local sandbox = require "support.sandbox"
local cli = require "smugoauth.apps.cli"
local json = require "smugoauth.json"
local cjson = require "cjson.safe"
local files = require "support.files"
local proc = require "support.proc"

local q = proc.q
local write_file = files.write_file

local ENV = "env -u SMUGOAUTH_DEBUG -u SMUGOAUTH_CONFIG -u SMUGOAUTH_CREDENTIALS -u SMUGOAUTH_API_ORIGIN " ..
            "-u SMUGOAUTH_OAUTH_ORIGIN -u SMUGOAUTH_UPLOAD_ORIGIN -u DISPLAY -u WAYLAND_DISPLAY "

local sink = require("support.capture").sink

local function lines_of(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("smugoauth sync", function()
  local sb, tmp, config, creds, api
  setup(function()
    sb = sandbox.start { albums = 6, fixture = "tree" }
    tmp = files.tmpdir()
    config = tmp .. "/config.json"
    creds = tmp .. "/credentials.json"
    write_file(config, json.compact { key = sb.key, secret = sb.secret, oauth_origin = sb.origin,
                                      api_origin = sb.origin, upload_origin = sb.origin })
    local at, ats, c = sb:authorize()
    assert(c:save_credentials(at, ats, creds))
    api = c:session(at, ats)
  end)
  teardown(function()
    if api then api:close() end
    if sb then sb:stop() end
    if tmp then os.execute("rm -rf " .. q(tmp)) end
  end)

  local function smug(args)
    local full = { "--config", config, "--credentials", creds }
    for _, a in ipairs(args) do full[#full + 1] = a end
    return proc.run(ENV .. "timeout 60 bin/smugoauth " .. proc.words(full), { timeout = 70 })
  end

  local function folder(name, n, seed)
    local d = tmp .. "/" .. name
    assert(os.execute("mkdir -p " .. q(d)))
    for i = 1, n do   -- 41 bytes each, different for each (i, name, seed)
      write_file(("%s/p%02d.jpg"):format(d, i), ("%-40s\n"):format(("photo %d of %s %d"):format(i, name, seed)))
    end
    return d
  end

  it("uploads, one line per upload on stdout, the summary on stderr; again: nothing", function()
    local d = folder("plain", 3, 1)
    local up = sb:stats().uploads
    local rc, out, err = smug { "sync", d, "K0001" }
    assert.equal(0, rc, err)
    assert.same({ "uploaded p01.jpg (41 B)", "uploaded p02.jpg (41 B)", "uploaded p03.jpg (41 B)" },
                (function() local t = lines_of(out) table.sort(t) return t end)())
    assert.matches("^sync: 3 uploaded, 0 already there, 0 failed; 123 B uploaded in [%d.]+ s[^\n]*\n$", err)
    assert.equal(up + 3, sb:stats().uploads)
    rc, out, err = smug { "sync", d, "/api/v2/album/K0001" }
    assert.equal(0, rc)
    assert.equal("", out)
    assert.matches("^sync: 0 uploaded, 3 already there, 0 failed; 0 B uploaded", err)
    assert.equal(up + 3, sb:stats().uploads)
  end)

  it("--json prints the summary as JSON and no upload lines", function()
    local d = folder("json", 2, 2)
    local rc, out = smug { "sync", "--json", d, "K0002", "--jobs", "2" }
    assert.equal(0, rc)
    local s = assert(cjson.decode(out))
    assert.is_true(s.ok)
    assert.equal(2, s.uploaded)
    assert.equal("album K0002", s.target)
    assert.same({}, s.failures)
    assert.matches("^{[^\n]*}\n$", out)              -- one line, one document
    assert.matches('"failures":%[%]', out)            -- lists are JSON arrays, also when empty
    assert.matches('"listing_errors":%[%]', out)
  end)

  it("--dry-run lists what would be uploaded and uploads nothing", function()
    local d = folder("dry", 2, 3)
    local up = sb:stats().uploads
    local rc, out, err = smug { "sync", "-n", d, "K0003" }
    assert.equal(0, rc)
    assert.same({ "would upload p01.jpg (41 B) to Album 3", "would upload p02.jpg (41 B) to Album 3" }, lines_of(out))
    assert.matches("^sync %-%-dry%-run: 2 to upload %(82 B%), 0 already there; nothing was uploaded", err)
    assert.equal(up, sb:stats().uploads)
  end)

  it("--tree: creates the folders and albums once, reuses them after", function()
    local d = tmp .. "/tree"
    folder("tree/2024/Italy", 2, 4)
    folder("tree/2024/Spain", 1, 5)
    folder("tree/Existing", 1, 6)
    local rc, out, err = smug { "sync", "--tree", d, "Sync/Trips" }
    assert.equal(0, rc, err)
    local created = {}
    for _, l in ipairs(lines_of(out)) do
      if l:match("^created ") then created[#created + 1] = l end
    end
    assert.same({ "created folder Sync/Trips", "created folder Sync/Trips/2024", "created album Sync/Trips/2024/Italy",
                  "created album Sync/Trips/2024/Spain", "created album Sync/Trips/Existing" }, created)
    assert.matches("2 folder%(s%) and 3 album%(s%) created", err)
    rc, out, err = smug { "sync", "--tree", d, "Sync/Trips" }
    assert.equal(0, rc)
    assert.equal("", out)
    assert.is_nil(err:find("created", 1, true))
    -- an album that was there already is used: Sync > Existing (the fixture's AlbExisting)
    rc, out, err = smug { "sync", "--tree", tmp .. "/tree", "Sync/" }
    assert.equal(0, rc, err)
    assert.matches("created folder Sync/2024\n", out)
    assert.is_nil(out:find("created album Sync/Existing", 1, true))
    local names = {}
    for img in api:each("/api/v2/album/AlbExisting!images") do names[#names + 1] = img.FileName end
    table.sort(names)
    assert.same({ "existing.jpg", "p01.jpg" }, names)
  end)

  it("usage errors exit 2 and upload nothing", function()
    local d = folder("usage", 1, 7)
    local up = sb:stats().uploads
    for _, args in ipairs {
      { "sync", d }, { "sync", d, "Some/Folder" }, { "sync", d, "K0001", "--jobs", "0" },
      { "sync", d, "K0001", "--jobs", "x" }, { "sync", d, "K0001", "--privacy", "public" },
      { "sync", "--tree", d, "F", "--privacy", "secret" }, { "sync", tmp .. "/nothing", "K0001" },
      { "sync", d, "K0001", "--timeout", "-1" },
    } do
      local rc, out, err = smug(args)
      assert.equal(2, rc, table.concat(args, " ") .. ": " .. err)
      assert.equal("", out)
      assert.matches("^smugoauth: sync: [^\n]*\n$", err)
    end
    assert.equal(up, sb:stats().uploads)
  end)

  it("a token the provider refuses: exit 5 before any upload, with the hint", function()
    local d = folder("refused", 1, 11)
    local bad = tmp .. "/bad-credentials.json"
    assert(sb:client():save_credentials("not-a-token", "not-a-secret", bad))
    local up = sb:stats().uploads
    local rc, out, err = proc.run(ENV .. "timeout 60 bin/smugoauth " .. proc.words { "--config", config,
      "--credentials", bad, "sync", d, "K0001" }, { timeout = 70 })
    assert.equal(5, rc, err)
    assert.equal("", out)
    assert.matches("^smugoauth: sync: [^\n]*; run `smugoauth login`\n$", err)
    assert.equal(up, sb:stats().uploads)
  end)

  it("an album that is not there: exit 1, one line", function()
    local d = folder("noalbum", 1, 8)
    local rc, out, err = smug { "sync", d, "NOSUCH" }
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("^smugoauth: sync: [^\n]*404[^\n]*\n$", err)
  end)

  it("failures are listed at the end with their reason; exit 1", function()
    local d = folder("fails", 4, 9)
    -- the album goes away while the uploads run (each answer takes 0.3 s)
    local res = assert(api:post("/api/v2/folder/user/tester!albums", { json = { Name = "Doomed" } }))
    local key = res:json().Response.Album.AlbumKey
    sb:mode { latency = 0.3 }
    local h = proc.spawn(ENV .. "timeout 60 bin/smugoauth " .. proc.words { "--config", config, "--credentials",
      creds, "sync", d, key, "--jobs", "1" })
    local up = sb:stats().uploads
    assert(files.wait_for(function() return sb:stats().uploads > up end, 30))
    sb:mode {}
    assert(api:delete("/api/v2/album/" .. key))
    local rc = h:wait(30)
    local out, err = h:stdout(), h:stderr()
    h:close()
    assert.equal(1, rc, err)
    local fails = {}
    for l in err:gmatch("smugoauth: sync: failed: (p%d%d%.jpg): api: [^\n]*album not found[^\n]*\n") do
      fails[#fails + 1] = l
    end
    assert.same({ "p02.jpg", "p03.jpg", "p04.jpg" }, fails)
    assert.matches("sync: 1 uploaded, 0 already there, 3 failed; 41 B uploaded", err)
    assert.same({ "uploaded p01.jpg (41 B)", "failed p02.jpg: upload of p02.jpg refused: album not found",
                  "failed p03.jpg: upload of p03.jpg refused: album not found",
                  "failed p04.jpg: upload of p04.jpg refused: album not found" }, lines_of(out))
  end)

  it("on a terminal: a progress block on stderr, erased at the end", function()
    local d = folder("tty", 3, 10)
    local out, err = sink(), sink()
    local rc = cli.main({ "--config", config, "--credentials", creds, "sync", d, "K0004" }, {
      stdout = out, stderr = err, isatty = function(fd) return fd == 2 end,
      getenv = function() return nil end })
    assert.equal(0, rc, err.text())
    local e = err.text()
    assert.matches("sync: %d/3 files", e)
    assert.matches("\27%[J", e)                    -- erased at the end
    assert.matches("\27%[Jsync: 3 uploaded", e)
    assert.matches("uploaded p01%.jpg", out.text())  -- stdout is a pipe: a line per upload
  end)
end)
