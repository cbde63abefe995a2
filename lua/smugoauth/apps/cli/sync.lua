--- smugoauth.apps.cli.sync: the `sync` command, `api:sync` (smugoauth.sync)
-- from the shell: a folder to an album, or with --tree a tree of folders to
-- albums under a SmugMug folder. Progress on a terminal, plain lines in a
-- pipe, a JSON summary with --json, the failures listed at the end.
-- @module smugoauth.apps.cli.sync
local context = require "smugoauth.apps.cli.context"
local output = require "smugoauth.apps.cli.output"
local progress = require "smugoauth.apps.cli.progress"
local clibackup = require "smugoauth.apps.cli.backup"

local usage = context.usage
local safe, human, one_line = output.safe, output.human, output.one_line

local PRIVACY = { public = "Public", unlisted = "Unlisted", private = "Private" }

-- The summary in one line (on stderr), as backup's.
local function summary_line(s)
  if s.dry_run then
    local c = s.created
    return ("sync --dry-run: %d to upload (%s), %d already there%s; nothing was uploaded or created")
      :format(s.to_upload, human(s.to_upload_bytes), s.present + s.known + s.adopted,
              c.folders + c.albums > 0 and (", %d folder(s) and %d album(s) to create"):format(c.folders, c.albums)
              or "")
  end
  local parts = { ("%d uploaded"):format(s.uploaded), ("%d already there"):format(s.present + s.known + s.adopted) }
  if s.duplicates > 0 then parts[#parts + 1] = ("%d duplicate(s)"):format(s.duplicates) end
  local c = s.created
  if c.folders + c.albums > 0 then
    parts[#parts + 1] = ("%d folder(s) and %d album(s) created"):format(c.folders, c.albums)
  end
  parts[#parts + 1] = ("%d failed"):format(s.failed)
  local line = ("sync: %s; %s uploaded in %.1f s"):format(table.concat(parts, ", "), human(s.uploaded_bytes),
                                                         s.seconds)
  if s.seconds > 0 and s.uploaded_bytes > 0 then
    line = line .. (" (%s/s)"):format(human(s.uploaded_bytes / s.seconds))
  end
  return line
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
       smugoauth sync --tree DIR FOLDER [--privacy P] [--jobs N] [--dry-run]
                                        [--json]

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

On a terminal a progress display is shown on stderr; in a pipe each upload is a
line on stdout ("uploaded PATH (SIZE)"). A summary line ends on stderr, after
the failures, each with its reason; the next run tries them again. Exit status:
0 when every file is in its album; 5 when the token was refused, 4 when every
failure was the network's, else 1 (also when DIR is being synced by another
run).

Options:
  --tree               DIR's subfolders to albums under the SmugMug FOLDER
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
    local tty_out = ctx.isatty(1)
    local p
    if ctx.isatty(2) then
      local stderr = ctx.stderr
      p = progress.new { write = function(x) stderr:write(x) if stderr.flush then stderr:flush() end end,
                         columns = ctx:columns(), label = "sync" }
      ctx.block = p
    end
    -- a line per file on stdout: in a pipe, or for a dry run (that is its output)
    local per_file = not opts.json and (not tty_out or o.dry_run)
    local function out_line(x)
      if p and tty_out then p:clear() end          -- (the same terminal: the line goes above the block)
      ctx:out(x, "\n")
      if ctx.stdout.flush then ctx.stdout:flush() end
      if p and tty_out then p:draw(true) end
    end
    o.on_event = function(ev)
      local t = ev.type
      if t == "create" then
        if per_file then out_line((o.dry_run and "would create " or "created ") .. ev.kind .. " " .. safe(ev.path)) end
      elseif t == "plan" then
        if ev.action == "upload" then
          if p then p:add(1, ev.size) end
          if per_file and o.dry_run then
            out_line(("would upload %s (%s) to %s"):format(safe(ev.path), human(ev.size),
              safe(ev.album_path or ev.album_name or ev.album or "?")))
          end
        end
      elseif t == "plan_done" then
        if p then p:listed() p:draw(true) end
      elseif t == "start" then
        if p then p:start(ev.path, ev.size) p:draw() end
      elseif t == "progress" then
        if p then p:update(ev.path, ev.sent, ev.total) p:draw() end
      elseif t == "done" then
        if p then p:finish(ev.path, ev.size) p:draw() end
        if per_file then out_line(("uploaded %s (%s)"):format(safe(ev.path), human(ev.size))) end
      elseif t == "failed" then
        if p then p:finish(ev.path, 0, true) p:draw() end
        if per_file then out_line("failed " .. safe(ev.path) .. ": " .. one_line(ev.message or ev.code)) end
      end
    end
    local s, err = api:sync(o)
    if p then p:clear() end
    ctx.block = nil
    if not s then
      if err.code == "missing" then usage("sync", "no folder " .. dir) end
      ctx:fail_err(err, "sync", true)
    end
    if opts.json then ctx:summary_out(s) end
    for _, w in ipairs(s.warnings) do ctx:note("smugoauth: sync: ", safe(w), "\n") end
    for _, f in ipairs(s.listing_errors) do
      ctx:note("smugoauth: sync: not synced: ", safe(f.what), " (", f.files, " files): ", f.code, ": ",
               one_line(f.message or ""), "\n")
    end
    for _, f in ipairs(s.failures) do
      ctx:note("smugoauth: sync: failed: ", safe(f.path), ": ", f.code, ": ", one_line(f.message or ""), "\n")
    end
    if s.stopped then
      ctx:note("smugoauth: sync: stopped: ", one_line(s.stopped.message or s.stopped.code),
               s.stopped.code == "oauth" and "; run `smugoauth login`" or "", "\n")
    end
    ctx:note(summary_line(s), "\n")
    return clibackup.exit_status(s)
  end,
}

return {
  sync = sync,
}
