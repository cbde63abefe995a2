--- smugoauth.apps.cli.upload: the `upload` command (files streamed to an
-- album, a progress bar on a terminal, the first failure's status).
-- @module smugoauth.apps.cli.upload
local context = require "smugoauth.apps.cli.context"
local output = require "smugoauth.apps.cli.output"

local status, usage = context.status, context.usage
local safe = output.safe

local UPLOAD_TIMEOUT = 3600     -- seconds per file

-- failures after which the other files are not tried
local STOP_UPLOADS = { network = true, tls = true, timeout = true, oauth = true, config = true }

-- Every FILE must be a readable regular file before anything is uploaded.
local function check_files(files)
  for _, file in ipairs(files) do
    local f, oerr = io.open(file, "rb")
    if f then
      local _, rerr = f:read(0)     -- nil, message for a directory
      f:close()
      oerr = rerr
    end
    if oerr then usage("upload", "cannot read " .. file .. " (" .. tostring(oerr):gsub("^.*: ", "") .. ")") end
  end
end

local upload = {
  name = "upload", summary = "upload files to an album",
  options = { ["--title"] = { "title", arg = true }, ["--caption"] = { "caption", arg = true },
              ["--keywords"] = { "keywords", arg = true }, ["--replace"] = { "replace", arg = true },
              ["--timeout"] = { "timeout", arg = true } },
  min = 2, args = "ALBUM FILE...", complete = { false, "file" },
  help = [[
usage: smugoauth upload ALBUM FILE... [--title T] [--caption C] [--keywords K1,K2]
                                      [--replace IMAGEURI] [--timeout S]

Upload each FILE to ALBUM (an album URI /api/v2/album/KEY, or just KEY) and
print the ImageUri of each, one a line. A progress bar is shown on stderr when
stderr is a terminal. Files are streamed, never read whole. A FILE that cannot
be read is a usage error (2) and nothing is uploaded; when one upload fails the
others are still tried (not after a network or OAuth failure) and the status is
that of the first failure.

Options:
  --title T            title of each image
  --caption C          caption of each image
  --keywords K1,K2     comma-separated keywords
  --replace IMAGEURI   replace that image (one FILE only)
  --timeout S          seconds allowed per file (default 3600)
]],
  run = function(ctx, opts, pos)
    local album = pos[1]
    if album:match("^[%w%-_]+$") then album = "/api/v2/album/" .. album end
    if not album:match("^/api/v2/album/[%w%-_]+$") then
      usage("upload", "ALBUM must be an album URI /api/v2/album/KEY or a KEY, got '" .. pos[1] .. "'")
    end
    local files = table.move(pos, 2, #pos, 1, {})
    if opts.replace and #files > 1 then usage("upload", "--replace takes one FILE") end
    local timeout = tonumber(opts.timeout or UPLOAD_TIMEOUT)
    if not timeout or timeout <= 0 then usage("upload", "--timeout must be a positive number of seconds") end
    check_files(files)
    local keywords
    if opts.keywords then
      keywords = {}
      for k in opts.keywords:gmatch("[^,]+") do
        k = k:match("^%s*(.-)%s*$")
        if k ~= "" then keywords[#keywords + 1] = k end
      end
    end
    local api = ctx:session()
    local code = status.OK
    local note = function(s) ctx:note(s) end
    for _, file in ipairs(files) do
      local bar = ctx.isatty(2) and output.progress_bar(note, file:match("([^/]+)$") or file) or nil
      local res, err = api:upload { album = album, file = file, title = opts.title, caption = opts.caption,
        keywords = keywords, replace = opts.replace, timeout = timeout, on_progress = bar and bar.update }
      if bar then bar.finish() end
      if res then
        local body = res:json()
        local uri = type(body) == "table" and type(body.Image) == "table" and body.Image.ImageUri
        ctx:out(safe(uri or "?"), "\n")
        if ctx.stdout.flush then ctx.stdout:flush() end
      else
        local st = ctx:report(err, "upload: " .. file, true)
        if code == status.OK then code = st end
        if STOP_UPLOADS[err.code] then break end
      end
    end
    return code
  end,
}

return {
  upload = upload,
}
