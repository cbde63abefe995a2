--- smugoauth.apps.cli.sync: the `sync` command, `api:sync` (smugoauth.sync)
-- from the shell: a folder to an album, or with --tree a tree of folders to
-- albums under a SmugMug folder. Progress on a terminal, plain lines in a
-- pipe, a JSON summary with --json, the failures listed at the end.
-- @module smugoauth.apps.cli.sync
local errors = require "smugoauth.errors"
local context = require "smugoauth.apps.cli.context"
local output = require "smugoauth.apps.cli.output"
local progress = require "smugoauth.apps.cli.progress"

local status, usage = context.status, context.usage
local safe, human = output.safe, progress.human

local PRIVACY = { public = "Public", unlisted = "Unlisted", private = "Private" }

-- The events of api:sync as lines on stdout (a pipe, or a terminal
-- without --json): what was uploaded, created, or would be in a dry run.
local function line_printer(ctx, dry)
  return function(ev)
    local t = ev.type
    if t == "create" then
      ctx:out(dry and "would create " or "created ", ev.kind, " ", safe(ev.path), "\n")
    elseif t == "plan" and dry and ev.action == "upload" then
      ctx:out("would upload ", safe(ev.path), " (", human(ev.size), ") to ",
              safe(ev.album_path or ev.album_name or ev.album or "?"), "\n")
    elseif t == "done" then
      ctx:out("uploaded ", safe(ev.path), " (", human(ev.size), ")\n")
    end
  end
end

-- The events of api:sync drawn by the progress display.
local function shower(show)
  local files, hashed = 0, 0
  return function(ev)
    local t = ev.type
    if t == "scan" then
      files = ev.files
      show:phase(("scanning: %d files"):format(files))
    elseif t == "hash" then
      hashed = hashed + 1
      show:phase(("reading %d/%d files (MD5)"):format(hashed, files))
    elseif t == "plan_done" then
      show:phase(nil)
      show:total(ev.upload, ev.bytes)
    elseif t == "start" then
      show:start(ev.path, ev.path, ev.size)
    elseif t == "progress" then
      show:update(ev.path, ev.sent, ev.total)
    elseif t == "done" then
      show:done(ev.path, true, ev.size)
    elseif t == "fail" and not ev.files then
      show:done(ev.path, false)
    end
  end
end

-- The summary in one line (on stderr).
local function summary_line(s)
  local parts = {}
  if s.dry_run then
    parts[#parts + 1] = ("%d to upload (%s)"):format(s.to_upload, human(s.to_upload_bytes))
  else
    parts[#parts + 1] = ("%d uploaded (%s)"):format(s.uploaded, human(s.uploaded_bytes))
  end
  parts[#parts + 1] = ("%d already there"):format(s.present + s.known + s.adopted)
  if s.duplicates > 0 then parts[#parts + 1] = ("%d duplicate(s)"):format(s.duplicates) end
  local c = s.created
  if c.folders + c.albums > 0 then
    parts[#parts + 1] = ("%s%d folder(s) and %d album(s)"):format(s.dry_run and "would create " or "created ",
      c.folders, c.albums)
  end
  parts[#parts + 1] = ("%d failed"):format(s.failed)
  local ig = s.ignored or {}
  if (ig.symlinks or 0) > 0 then parts[#parts + 1] = ("%d symlink(s) not followed"):format(ig.symlinks) end
  return ("sync: %s, in %.1f s\n"):format(table.concat(parts, ", "), s.elapsed or 0)
end

local sync = {
  name = "sync", summary = "upload what a folder has and an album lacks (by MD5)",
  options = { ["--tree"] = { "tree" }, ["--jobs"] = { "jobs", arg = true }, ["-j"] = { "jobs", arg = true },
              ["--dry-run"] = { "dry_run" }, ["-n"] = { "dry_run" }, ["--json"] = { "json" },
              ["--privacy"] = { "privacy", arg = true, complete = { "private", "unlisted", "public" } },
              ["--rehash"] = { "rehash" }, ["--timeout"] = { "timeout", arg = true } },
  min = 2, max = 2, args = "DIR ALBUM", complete = { "dir", false },
  help = [[
usage: smugoauth sync DIR ALBUM [--jobs N] [--dry-run] [--json]
       smugoauth sync --tree DIR FOLDER [--privacy P] [--jobs N] [--dry-run] [--json]

Upload the photos and videos of DIR that ALBUM (an album URI /api/v2/album/KEY,
or just KEY) does not have. Files are matched by MD5, not by name: a file
renamed locally is not uploaded again. Files SmugMug converts (HEIC to JPEG,
re-encoded videos) are recorded when uploaded, in a manifest in DIR
(.smugoauth-sync.db, SQLite), so they are not uploaded again either.

A file counts when it is a regular file with a photo or video extension (jpg,
heic, png, mp4, mov, ...); hidden files and folders are left out, and symbolic
links are not followed (to files or folders). Without --tree, only the files
directly in DIR count.

With --tree, FOLDER is a SmugMug folder given as a path of names under your
root ("Travel", "Travel/2024"; "/" for the root itself): each subfolder of DIR
that holds files becomes an album of its name, under the folders of its path
(DIR/2024/Italy -> FOLDER/2024/Italy). Folders and albums are found by name
and created when missing (private unless --privacy says otherwise). Files of a
folder that also has subfolders with files are not synced (they are counted).

On a terminal a progress display is shown on stderr; otherwise each upload is
a line on stdout ("uploaded PATH (SIZE)"). A summary line ends on stderr, after
the failures, each with its reason; the next run tries them again. Exit status
0 when every file is in its album, else that of the first failure (1 API or
another failure, e.g. DIR being synced by another run; 4 network; 5 OAuth).

Options:
  --tree               DIR's subfolders to albums under the SmugMug folder FOLDER
  -j, --jobs N         uploads at once (default 4, at most 32)
  -n, --dry-run        list what would be uploaded and created; change nothing
  --json               print the summary as JSON on stdout (no upload lines)
  --privacy P          of the folders and albums --tree creates: private
                       (default), unlisted or public
  --rehash             read every file again instead of the MD5s kept in the
                       manifest for files whose size and time have not changed
  --timeout S          seconds an upload may take (default 3600)
]],
  run = function(ctx, opts, pos)
    local dir, target = pos[1], pos[2]
    local o = { dir = dir, dry_run = opts.dry_run or false, rehash = opts.rehash or nil }
    if opts.tree then
      o.folder = target == "/" and "" or target
    else
      if not target:match("^/api/v2/album/[%w%-_]+$") and not target:match("^[%w%-_]+$") then
        usage("sync", "ALBUM must be an album URI /api/v2/album/KEY or a KEY, got '" .. target .. "'" ..
          " (a folder path needs --tree)")
      end
      o.album = target
      if opts.privacy then usage("sync", "--privacy is for the folders and albums of --tree") end
    end
    if opts.jobs then
      local n = math.tointeger(tonumber(opts.jobs))
      if not n or n < 1 or n > 32 then usage("sync", "--jobs must be a whole number from 1 to 32") end
      o.jobs = n
    end
    if opts.privacy then
      o.privacy = PRIVACY[opts.privacy:lower()]
      if not o.privacy then usage("sync", "--privacy must be private, unlisted or public") end
    end
    if opts.timeout then
      o.timeout = tonumber(opts.timeout)
      if not o.timeout or o.timeout <= 0 then usage("sync", "--timeout must be a positive number of seconds") end
    end
    local api = ctx:session()
    local show = ctx.isatty(2) and progress.new(function(...) ctx:note(...) end, { verb = "uploading" }) or nil
    local draw = show and shower(show)
    local lines = not opts.json and line_printer(ctx, o.dry_run) or nil
    o.on_event = function(ev)
      if lines then
        if show then show:clear() end
        lines(ev)
      end
      if draw then draw(ev) end
    end
    local s, err = api:sync(o)
    if show then show:finish() end
    if not s then
      if err.code == "missing" then usage("sync", "no folder " .. dir) end
      ctx:fail_err(err, "sync", true)
    end
    if opts.json then ctx:json_out(s) end
    local code = status.OK
    for _, w in ipairs(s.warnings) do ctx:note("smugoauth: sync: ", safe(w), "\n") end
    for _, f in ipairs(s.failures) do
      local what = "sync: " .. f.path .. (f.files and (" (" .. f.files .. " files)") or "")
      local st = ctx:report(errors.new(f.code or "io", f.message, { status = f.status }), what, true)
      if code == status.OK then code = st end
    end
    ctx:note(summary_line(s))
    return code
  end,
}

return {
  sync = sync,
}
