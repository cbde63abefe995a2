--- smugoauth.apps.cli.backup: the `backup` command (`api:backup` of
-- smugoauth.backup.run): a progress display on a terminal
-- (smugoauth.apps.cli.progress), a line per file in a pipe, a JSON summary
-- with --json, what would happen with --dry-run, the failures at the end
-- and an exit status that says whether everything was saved.
-- @module smugoauth.apps.cli.backup
local context = require "smugoauth.apps.cli.context"
local output = require "smugoauth.apps.cli.output"
local progress = require "smugoauth.apps.cli.progress"

local status, usage = context.status, context.usage
local safe, human = output.safe, output.human

-- The exit status of a failure's code (the rest: status.ERROR).
local EXIT = { network = status.NETWORK, tls = status.NETWORK, timeout = status.NETWORK, oauth = status.OAUTH,
               config = status.AUTH }

local function exit_of(f)
  if f.code == "http" and f.status == 401 then return status.OAUTH end
  return EXIT[f.code] or status.ERROR
end

--- The exit status of a run's summary: 0 when everything was listed and
-- saved; the status of what stopped it (5 for an OAuth refusal); 4 when
-- every failure was the network's; else 1.
local function exit_status(s)
  if s.ok then return status.OK end
  if s.stopped then return exit_of(s.stopped) end
  local any, network = false, true
  for _, list in ipairs { s.failures, s.listing_errors } do
    for _, f in ipairs(list) do
      any = true
      if exit_of(f) ~= status.NETWORK then network = false end
    end
  end
  return (any and network) and status.NETWORK or status.ERROR
end

-- "a -> b" or "b".
local function from_to(ev)
  return ev.from and (safe(ev.from) .. " -> " .. safe(ev.path)) or safe(ev.path)
end

-- One summary line.
local function summary_line(s)
  local parts = {}
  for _, k in ipairs { "saved", "moved", "copied", "adopted", "deleted", "skipped", "failed" } do
    if (s[k] or 0) > 0 or k == "saved" then parts[#parts + 1] = ("%d %s"):format(s[k], k) end
  end
  local line = ("backup: %s; %s downloaded in %.1f s"):format(table.concat(parts, ", "), human(s.bytes), s.seconds)
  if s.seconds > 0 and s.bytes > 0 then line = line .. (" (%s/s)"):format(human(s.bytes / s.seconds)) end
  if s.dry_run then
    line = ("backup --dry-run: %d to do, %d unchanged; nothing was downloaded or changed"):format(s.planned, s.skipped)
  end
  return line
end

local backup = {
  name = "backup", summary = "back up your photos and videos to a folder, incrementally",
  options = { ["--album"] = { "album", arg = true, many = true }, ["--user"] = { "user", arg = true },
              ["--jobs"] = { "jobs", arg = true }, ["-j"] = { "jobs", arg = true }, ["--delete"] = { "delete" },
              ["--dry-run"] = { "dry_run" }, ["-n"] = { "dry_run" },
              ["--json"] = { "json" } },
  min = 1, max = 1, args = "DEST", complete = { "dir" },
  help = [[
usage: smugoauth backup DEST [--album KEY]... [--user NICK] [--jobs N] [--delete]
                             [--dry-run] [--json]

Back up the whole account to the folder DEST (created when missing): its
folders and albums become folders, each image its original file (the largest
rendition for a video), verified by MD5, with the photo's date as its time.
Run it again to bring DEST up to date: only new and changed images are
downloaded, renamed and moved ones are moved, and an interrupted run is taken
up where it stopped. DEST/.smugoauth/ holds what was saved (a SQLite file).

On a terminal a progress display shows on stderr; in a pipe each file saved,
moved or deleted is a line on stdout. Images that could not be saved (a
video still being processed, a network failure...) are listed at the end
and tried again by the next run; the exit status is 0 only when everything
was saved.

Options:
  --album KEY     back up this album only (an album key, or
                  /api/v2/album/KEY; repeat for more), as DEST/<album name>
  --user NICK     back up that user's folders and albums instead of yours
  -j, --jobs N    downloads at once (1 to 64, default 4)
  --delete        remove the files of images deleted on SmugMug (only after
                  a listing that completed without errors)
  -n, --dry-run   print what would be done (download, move, verify, delete);
                  nothing is downloaded or changed
  --json          print a JSON summary on stdout at the end (and no line
                  per file)
]],
  run = function(ctx, opts, pos)
    local dest = pos[1]
    if dest == "" then usage("backup", "DEST must not be empty") end
    local jobs = opts.jobs and math.tointeger(tonumber(opts.jobs))
    if opts.jobs and (not jobs or jobs < 1 or jobs > 64) then usage("backup", "--jobs must be 1 to 64") end
    local albums
    for _, a in ipairs(opts.album or {}) do
      local key = a:match("^/api/v2/album/([%w%-_]+)$") or a:match("^([%w%-_]+)$")
      if not key then usage("backup", "--album expects an album key or /api/v2/album/KEY, got '" .. a .. "'") end
      albums = albums or {}
      albums[#albums + 1] = key
    end
    if albums and opts.user then usage("backup", "give --album or --user, not both") end
    if opts.user and not opts.user:match("^[%w%-_]+$") then usage("backup", "--user expects a NickName") end

    local api = ctx:session()
    local tty_out = ctx.isatty(1)
    local p
    -- the progress block: on a terminal, when something is to be downloaded
    -- (a dry run downloads nothing: its lines are the whole output)
    if ctx.isatty(2) and not opts.dry_run then
      local stderr = ctx.stderr
      p = progress.new { write = function(s) stderr:write(s) if stderr.flush then stderr:flush() end end,
                         columns = ctx:columns() }
      ctx.block = p
    end
    -- a line per file on stdout: in a pipe, or for a dry run (that is its output)
    local per_file = not opts.json and (not tty_out or opts.dry_run)
    local function out_line(s)
      if p and tty_out then p:clear() end          -- (the same terminal: the line goes above the block)
      ctx:out(s, "\n")
      if ctx.stdout.flush then ctx.stdout:flush() end
      if p and tty_out then p:draw(true) end
    end
    local function note(s)
      if p then p:clear() end
      ctx:note(s, "\n")
      if p then p:draw(true) end
    end

    local function on_event(ev)
      local t = ev.type
      if t == "queued" then
        if p then p:add(1, ev.action == "fetch" and ev.size or 0) end
      elseif t == "start" then
        if p then p:start(ev.path, ev.size) p:draw() end
      elseif t == "progress" then
        if p then p:update(ev.path, ev.got, ev.total) p:draw() end
      elseif t == "done" then
        if ev.action ~= "skipped" then
          if p then p:finish(ev.path, ev.action == "saved" and ev.size or 0) p:draw() end
          if per_file then out_line(ev.action .. " " .. from_to(ev)) end
        end
      elseif t == "failed" then
        if p then p:finish(ev.path, 0, true) p:draw() end
        if per_file then out_line("failed " .. safe(ev.path) .. ": " .. safe(ev.message or ev.code)) end
      elseif t == "listing_error" then
        note("smugoauth: backup: cannot list " .. safe(ev.what) .. ": " .. safe(ev.message or ev.code))
      elseif t == "listed" then
        if p then p:listed() p:draw(true) end
      elseif t == "plan" then
        local size = ev.size and (" (" .. human(ev.size) .. ")") or ""
        if per_file then out_line(ev.action .. " " .. from_to(ev) .. size) end
      elseif t == "note" then
        note("smugoauth: backup: " .. safe(ev.message))
      end
    end

    local s, err = api:backup { dest = dest, albums = albums, user = opts.user, jobs = jobs,
      delete = opts.delete == true, dry_run = opts.dry_run == true, on_event = on_event, progress = p ~= nil }
    if p then p:clear() end
    ctx.block = nil
    if not s then ctx:fail_err(err, "backup", true) end
    if opts.json then ctx:summary_out(s) end
    for _, f in ipairs(s.listing_errors) do
      -- (the listing error that stopped the run is said once, as the stop)
      if not (s.stopped and f.code == s.stopped.code and f.message == s.stopped.message) then
        ctx:note("smugoauth: backup: not listed: ", safe(f.what), ": ", output.one_line(f.message or f.code), "\n")
      end
    end
    for _, f in ipairs(s.failures) do
      local why = f.code == "processing" and "still being processed by SmugMug (tried again by the next run)"
                  or (f.code .. ": " .. output.one_line(f.message or ""))
      ctx:note("smugoauth: backup: failed: ", safe(f.path or f.key), ": ", why, "\n")
    end
    if s.stopped then
      ctx:note("smugoauth: backup: stopped: ", output.one_line(s.stopped.message or s.stopped.code),
               s.stopped.code == "oauth" and "; run `smugoauth login`" or "", "\n")
    end
    ctx:note(summary_line(s), "\n")
    return exit_status(s)
  end,
}

return {
  backup = backup,
  exit_status = exit_status,
}
