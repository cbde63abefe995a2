--- `smugoauth backup` against the sandbox's `backup` fixture, through
-- bin/smugoauth as a real process: the whole account (every file, plain
-- lines in a pipe, the summary last), --json (one document), --dry-run
-- (nothing written, no archive request), --album / --user, --jobs and the
-- usage errors, failures (listed at the end, retried by the next run, the
-- exit status), a refused token, the progress display on a real terminal
-- (a pseudo-terminal through script(1)), no secret in any output, and the
-- files' times from the photo's date.
local sandbox = require "support.sandbox"
local json = require "smugoauth.json"
local cjson = require "cjson.safe"
local util = require "smugoauth.util"
local core = require "smugoauth.core"
local files = require "support.files"
local proc = require "support.proc"
local bk = require "support.backup"

local q = proc.q
local write_file = files.write_file

local ENV = "env -u SMUGOAUTH_DEBUG -u SMUGOAUTH_CONFIG -u SMUGOAUTH_CREDENTIALS -u SMUGOAUTH_API_ORIGIN " ..
            "-u SMUGOAUTH_OAUTH_ORIGIN -u SMUGOAUTH_UPLOAD_ORIGIN -u DISPLAY -u WAYLAND_DISPLAY -u COLUMNS "

local function lines_of(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function sorted(t)
  table.sort(t)
  return t
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- The modification time of a file (seconds).
local function mtime(path)
  local h = assert(io.popen("stat -c %Y " .. q(path)))
  local v = tonumber(h:read("l"))
  h:close()
  return v
end

-- True when nothing is at path, or an empty directory.
local function empty(path)
  if not io.open(path) then return true end
  local h = assert(io.popen("find " .. q(path) .. " -mindepth 1 | head -1"))
  local s = h:read("a")
  h:close()
  return s == ""
end

describe("smugoauth backup", function()
  local sb, tmp, config, creds, api, token_secret, truth

  setup(function()
    sb = sandbox.start { fixture = "backup" }
    tmp = files.tmpdir()
    config = tmp .. "/config.json"
    creds = tmp .. "/credentials.json"
    write_file(config, json.compact { key = sb.key, secret = sb.secret, oauth_origin = sb.origin,
                                      api_origin = sb.origin, upload_origin = sb.origin })
    local at, ats, c = sb:authorize()
    token_secret = ats
    assert(c:save_credentials(at, ats, creds))
    api = c:session(at, ats)
    assert(sb:finish("VidProc"))          -- the whole account can be saved (a case puts it back to processing)
    truth = bk.truth(api, sb)
  end)

  teardown(function()
    if api then api:close() end
    if sb then sb:stop() end
    if tmp then os.execute("rm -rf " .. q(tmp)) end
  end)

  before_each(function()
    sb:mode {}
    sb:reset_stats()
  end)

  local function command(args, credentials)
    local full = { "--config", config, "--credentials", credentials or creds }
    for _, a in ipairs(args) do full[#full + 1] = a end
    return "bin/smugoauth " .. proc.words(full)
  end

  local function smug(args, credentials)
    return proc.run(ENV .. "timeout 120 " .. command(args, credentials), { timeout = 130 })
  end

  -- No secret in what a run printed.
  local function no_secret(...)
    for i = 1, select("#", ...) do
      local s = select(i, ...)
      assert.is_nil(s:find(token_secret, 1, true), "the token secret was printed")
      assert.is_nil(s:find(sb.secret, 1, true), "the consumer secret was printed")
    end
  end

  it("the whole account: exit 0, every file, a plain line per file in a pipe, the summary last", function()
    local dest = tmp .. "/whole"
    local rc, out, err = smug { "backup", dest }
    assert.equal(0, rc, err)
    local n = count(truth)
    assert.equal(n, bk.verify(dest, truth, true))
    -- plain lines: no escape sequence, no carriage return, on either stream
    for _, s in ipairs { out, err } do
      assert.is_nil(s:find("\27", 1, true))
      assert.is_nil(s:find("\r", 1, true))
    end
    -- a line per file saved, naming it as it is under DEST
    local saved = {}
    for _, l in ipairs(lines_of(out)) do
      saved[#saved + 1] = assert(l:match("^saved (.+)$"), l)
    end
    assert.same(bk.files(dest), sorted(saved))
    -- stderr: the summary line and nothing else
    assert.matches(("^backup: %d saved; [%%d.]+ [KM]iB downloaded in [%%d.]+ s[^\n]*\n$"):format(n), err)
    local st = sb:stats()
    assert.equal(n, st.downloads_completed)
    assert.equal(0, st.archive_refused)
    no_secret(out, err)
    -- again: nothing to do, nothing printed per file, still 0
    sb:reset_stats()
    rc, out, err = smug { "backup", dest }
    assert.equal(0, rc, err)
    assert.equal("", out)
    assert.matches(("^backup: 0 saved, %d skipped; 0 B downloaded in [%%d.]+ s\n$"):format(n), err)
    assert.equal(0, sb:stats().archive_requests)
  end)

  it("--json: one JSON document on stdout, the summary with its counts and failure lists", function()
    local dest = tmp .. "/json"
    local rc, out, err = smug { "backup", "--json", dest, "--album", "AlbParis", "--album", "AlbDupes" }
    assert.equal(0, rc, err)
    assert.matches("^{[^\n]*}\n$", out)              -- one line, one document
    local s = assert(cjson.decode(out))
    assert.is_true(s.ok)
    assert.is_true(s.complete)
    assert.is_false(s.dry_run)
    assert.equal(8, s.saved)
    assert.equal(0, s.failed)
    assert.equal(0, s.skipped)
    assert.equal(2, s.albums)
    assert.equal(8, s.images)
    assert.equal(dest, s.dest)
    assert.equal(3 * 1000 + 4 * 2000 + 3000, s.bytes)
    -- the lists are JSON arrays, also when empty
    assert.matches('"failures":%[%]', out)
    assert.matches('"listing_errors":%[%]', out)
    assert.equal(8, #bk.files(dest))
    assert.matches("^backup: 8 saved; ", err)          -- the summary line stays on stderr
    -- with --pretty: the same document, indented
    rc, out = smug { "--pretty", "backup", "--json", dest, "--album", "AlbParis" }
    assert.equal(0, rc)
    s = assert(cjson.decode(out))
    assert.equal(3, s.skipped)
    assert.matches('\n  "failures": %[%],?\n', out)
  end)

  it("--dry-run lists what would be downloaded, writes nothing and sends no archive request", function()
    local dest = tmp .. "/dry"
    local rc, out, err = smug { "backup", "--dry-run", dest }
    assert.equal(0, rc, err)
    local lines = lines_of(out)
    assert.equal(count(truth), #lines)
    for _, l in ipairs(lines) do assert.matches("^download [^\n]+ %([%d.]+ [KM]?i?B%)$", l) end
    assert.matches("\ndownload Family/2023/Summer/beach%.jpg %(146%.5 KiB%)\n", "\n" .. out)
    assert.matches(("^backup %%-%%-dry%%-run: %d to do, 0 unchanged; nothing was downloaded or changed\n$")
                   :format(count(truth)), err)
    assert.is_true(empty(dest))
    local st = sb:stats()
    assert.equal(0, st.archive_requests)
    assert.equal(0, st.api_routes["GET image!largestvideo"] or 0)
    -- --json too: the counts, no line per file
    rc, out = smug { "backup", "-n", "--json", dest, "--album", "AlbParis" }
    assert.equal(0, rc)
    local s = assert(cjson.decode(out))
    assert.is_true(s.dry_run)
    assert.equal(3, s.planned)
    assert.equal(0, s.saved)
    assert.is_true(empty(dest))
    assert.equal(0, sb:stats().archive_requests)
  end)

  it("--album KEY (repeatable, a key or its URI), --user NICK, --jobs N", function()
    local dest = tmp .. "/albums"
    local rc, out, err = smug { "backup", dest, "--album", "AlbParis", "--album", "/api/v2/album/AlbVideos",
                                "--jobs", "1" }
    assert.equal(0, rc, err)
    assert.same({ "Paris/eiffel.jpg", "Paris/louvre.jpg", "Paris/seine.jpg", "Videos/clip.mp4",
                  "Videos/processing.mov", "Videos/still.jpg" }, bk.files(dest))
    assert.equal(6, #lines_of(out))
    assert.equal(6, bk.verify(dest, truth))
    -- --user: that user's tree (the sandbox's user is "tester": all of it)
    dest = tmp .. "/user"
    rc, out, err = smug { "backup", dest, "--user", "tester", "-j", "64" }
    assert.equal(0, rc, err)
    assert.equal(count(truth), bk.verify(dest, truth, true))
    assert.equal(count(truth), #lines_of(out))
    -- a user or an album that is not there: not listed, said so, exit 1
    dest = tmp .. "/nobody"
    rc, out, err = smug { "backup", dest, "--user", "nobody" }
    assert.equal(1, rc, err)
    assert.equal("", out)
    assert.matches("smugoauth: backup: not listed: user nobody: [^\n]*404[^\n]*\n", err)
    assert.matches("\nbackup: 0 saved; [^\n]*\n$", err)
    assert.equal(0, #bk.files(dest))
    rc, out, err = smug { "backup", tmp .. "/some", "--album", "NoSuchAlbum", "--album", "AlbParis" }
    assert.equal(1, rc, err)
    assert.equal(3, #lines_of(out))
    assert.matches("smugoauth: backup: not listed: album NoSuchAlbum: [^\n]*404", err)
  end)

  it("usage errors: a message on stderr, exit 2, nothing written and no request", function()
    local dest = tmp .. "/usage"
    for _, args in ipairs {
      { "backup" }, { "backup", dest, "--jobs", "0" }, { "backup", dest, "--jobs", "x" },
      { "backup", dest, "--jobs", "65" }, { "backup", dest, "--jobs", "1.5" }, { "backup", dest, "--jobs" },
      { "backup", dest, "--bogus" }, { "backup", dest, "extra" }, { "backup", "" },
      { "backup", dest, "--album", "a/b" }, { "backup", dest, "--album", "AlbParis", "--user", "tester" },
      { "backup", dest, "--user", "no body" },
    } do
      local rc, out, err = smug(args)
      local what = table.concat(args, " ")
      assert.equal(2, rc, what .. ": " .. err)
      assert.equal("", out, what)
      assert.matches("^smugoauth: backup: [^\n]+ %(see `smugoauth backup %-%-help`%)\n$", err)
    end
    assert.is_nil(io.open(dest))
    local st = sb:stats()
    assert.equal(0, st.api_calls)
    assert.equal(0, st.archive_requests)
    -- the messages say what is wrong
    local _, _, err = smug { "backup", dest, "--jobs", "0" }
    assert.matches("%-%-jobs must be 1 to 64", err)
    _, _, err = smug { "backup" }
    assert.matches("missing DEST", err)
    _, _, err = smug { "backup", dest, "--bogus" }
    assert.matches("unknown option %-%-bogus", err)
  end)

  it("failures: listed at the end with their reason, exit 1; the next run saves them, exit 0", function()
    local dest = tmp .. "/fails"
    sb:mode { lie_md5 = "ImgBeach" }                -- the listing reports a wrong MD5 for beach.jpg
    local rc, out, err = smug { "backup", dest, "--album", "AlbSummer" }
    assert.equal(1, rc, err)
    assert.matches("\nfailed Summer/beach%.jpg: [^\n]*MD5[^\n]*\n", "\n" .. out)
    local errs = lines_of(err)
    assert.equal(2, #errs, err)
    assert.matches("^smugoauth: backup: failed: Summer/beach%.jpg: checksum: [^\n]*MD5", errs[1])
    assert.matches("^backup: 4 saved, 1 failed; ", errs[2])
    assert.is_nil(core.file_size(dest .. "/Summer/beach.jpg"))
    assert.is_nil(core.file_size(dest .. "/Summer/beach.jpg.part"))
    -- --json while it still fails: the failure with its code
    rc, out = smug { "backup", "--json", dest, "--album", "AlbSummer" }
    assert.equal(1, rc)
    local s = assert(cjson.decode(out))
    assert.is_false(s.ok)
    assert.equal(1, s.failed)
    assert.equal(1, #s.failures)
    assert.equal("Summer/beach.jpg", s.failures[1].path)
    assert.equal("ImgBeach", s.failures[1].key)
    assert.equal("checksum", s.failures[1].code)
    -- the switch cleared: the next run saves it and only it
    sb:mode {}
    sb:reset_stats()
    rc, out, err = smug { "backup", dest, "--album", "AlbSummer" }
    assert.equal(0, rc, err)
    assert.equal("saved Summer/beach.jpg\n", out)
    assert.matches("^backup: 1 saved, 4 skipped; ", err)
    assert.equal(truth.ImgBeach.md5, bk.md5(dest .. "/Summer/beach.jpg"))
    assert.equal(1, sb:stats().downloads_completed)
    -- a video still being processed: reported as such, saved once it is ready
    assert(sb:change("process", "VidProc"))
    rc, out, err = smug { "backup", dest, "--album", "AlbVideos" }
    assert.equal(1, rc, err)
    assert.same({ "failed Videos/processing.mov: the video VidProc is still being processed by SmugMug: " ..
                  "nothing to download yet", "saved Videos/clip.mp4", "saved Videos/still.jpg" }, sorted(lines_of(out)))
    assert.matches("smugoauth: backup: failed: Videos/processing%.mov: still being processed by SmugMug " ..
                   "%(tried again by the next run%)\n", err)
    assert.is_nil(core.file_size(dest .. "/Videos/processing.mov"))
    assert(sb:finish("VidProc"))
    rc, out, err = smug { "backup", dest, "--album", "AlbVideos" }
    assert.equal(0, rc, err)
    assert.equal("saved Videos/processing.mov\n", out)
    no_secret(out, err)
  end)

  it("a token the provider refuses: the OAuth exit status, the hint, no secret, nothing saved", function()
    local bad = tmp .. "/bad-credentials.json"
    assert(sb:client():save_credentials("not-a-token", "not-a-token-secret", bad))
    local dest = tmp .. "/refused"
    local rc, out, err = smug({ "backup", dest }, bad)
    assert.equal(5, rc, err)
    assert.equal("", out)
    -- --debug too (every request's head on stderr)
    local drc, dout, derr = smug({ "--debug", "backup", dest }, bad)
    assert.equal(5, drc, derr)
    assert.matches("Authorization: OAuth ", derr)
    assert.is_nil(derr:find("not-a-token-secret", 1, true))
    no_secret(dout, derr)
    assert.matches("smugoauth: backup: stopped: [^\n]*401[^\n]*; run `smugoauth login`\n", err)
    local _, said = err:gsub("401", "")
    assert.equal(2, said, err)                    -- as it happens, and as the stop; not a third time
    assert.is_nil(err:find("not-a-token-secret", 1, true))
    no_secret(out, err)
    assert.equal(0, #bk.files(dest))
    assert.equal(0, sb:stats().archive_requests)
  end)

  it("on a terminal: a redrawn block (files, bytes, rate, ETA, files in flight), then the summary", function()
    local dest = tmp .. "/tty"
    sb:mode { rate = 200000 }                       -- 288 KiB at 195 KiB/s each: well over a second
    local cmd = ENV .. "timeout 120 " .. command { "backup", dest, "--album", "AlbSummer", "--jobs", "1" }
    local rc, out, err = proc.run("script -qec " .. q(cmd) .. " /dev/null", { timeout = 130 })
    assert.equal(0, rc, out .. err)
    assert.equal(5, bk.verify(dest, truth, false))
    -- the block is drawn, and redrawn in place (the cursor goes back up to its first line)
    assert.matches("backup: %d/%d files  [%d.]+ [KM]?i?B/[%d.]+ [KM]?i?B  ", out)
    assert.matches("backup: %d/5 files  [%d.]+ KiB/281%.8 KiB  ", out)   -- the totals once listed
    assert.matches("\27%[%dA", out)
    assert.matches("[%d.]+ [KM]?i?B/s", out)
    assert.matches("ETA %d+:%d%d", out)
    assert.matches("\r  +%d+%%  Summer/beach%.jpg\27%[K", out)
    -- it is erased at the end, and the summary is the last line
    assert.matches("\27%[Jbackup: 5 saved; 281%.8 KiB downloaded in [%d.]+ s[^\n]*\r?\n$", out)
    -- on a terminal, no line per file (the block shows them)
    assert.is_nil(out:find("saved Summer", 1, true))
    no_secret(out, err)
    -- stdout to a file, stderr the terminal: the lines go to the file, plain
    dest = tmp .. "/tty2"
    local file = tmp .. "/tty2.out"
    rc, out = proc.run("script -qec " .. q(ENV .. "timeout 120 " .. command { "backup", dest, "--album", "AlbParis" } ..
                                           " >" .. q(file)) .. " /dev/null", { timeout = 130 })
    assert.equal(0, rc, out)
    assert.matches("backup: %d/3 files", out)
    assert.same({ "saved Paris/eiffel.jpg", "saved Paris/louvre.jpg", "saved Paris/seine.jpg" },
                sorted(lines_of(files.read_file(file))))
    assert.is_nil(files.read_file(file):find("[\27\r]"))
    no_secret(out, files.read_file(file))
    -- a dry run on a terminal: its lines, and no progress block (nothing is downloaded: a block
    -- would only ever say "0/0 files")
    dest = tmp .. "/tty3"
    rc, out = proc.run("script -qec " .. q(ENV .. "timeout 120 " .. command { "backup", "--dry-run", dest, "--album",
                                           "AlbParis" }) .. " /dev/null", { timeout = 130 })
    assert.equal(0, rc, out)
    assert.same({ "download Paris/eiffel.jpg (1000 B)", "download Paris/louvre.jpg (1000 B)",
                  "download Paris/seine.jpg (1000 B)",
                  "backup --dry-run: 3 to do, 0 unchanged; nothing was downloaded or changed" },
                lines_of((out:gsub("\r\n", "\n"))))
    assert.is_true(empty(dest))
  end)

  it("sets each file's time from the photo's date (DateTimeOriginal, else DateTimeUploaded)", function()
    local dest = tmp .. "/times"
    local rc, _, err = smug { "backup", dest, "--album", "AlbSummer" }
    assert.equal(0, rc, err)
    local beach = sb:image("ImgBeach").Image
    assert.is_string(beach.DateTimeOriginal)
    assert.equal(util.iso8601(beach.DateTimeOriginal), mtime(dest .. "/Summer/beach.jpg"))
    local sunset = sb:image("ImgSunset").Image
    assert.are_not.equal(beach.DateTimeOriginal, sunset.DateTimeOriginal)
    assert.equal(util.iso8601(sunset.DateTimeOriginal), mtime(dest .. "/Summer/sunset.jpg"))
    local nodate = sb:image("ImgNoDate").Image
    assert.is_nil(nodate.DateTimeOriginal)
    assert.equal(util.iso8601(nodate.DateTimeUploaded), mtime(dest .. "/Summer/nodate.jpg"))
  end)
end)
