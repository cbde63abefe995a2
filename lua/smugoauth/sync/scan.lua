--- The local side of a sync: which files of a folder count, grouped by the
-- folder they are in. A file counts when it is a regular file (a symlink is
-- never followed, to a file or to a folder: it is counted as ignored), its
-- name does not start with a dot (hidden files and folders, and so the
-- manifest, are left out) and its extension is one of the photo and video
-- types of smugoauth.upload (`.jpg`, `.heic`, `.mp4`, ...; any case).
-- Without `tree` only the files directly in the folder count; with it every
-- subfolder is scanned too.
-- @module smugoauth.sync.scan
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local upload = require "smugoauth.upload"
local manifest = require "smugoauth.sync.manifest"

--- Whether a file name is of a photo or a video smugoauth uploads (by
-- its extension, as smugoauth.upload's MIME table knows them).
local function is_media(name)
  local ext = name:match("%.([^./]+)$")
  return ext ~= nil and upload.MIME[ext:lower()] ~= nil
end

local function by_name(a, b) return a.name < b.name end

--- Scan a folder: `scan.scan(dir [, opts])` -> result | nil, err.
--   opts.tree   false: true scans the subfolders too
-- The result: `groups`, an array (sorted by path) of the folders that hold
-- files that count, each {rel (the folder's path under dir, "" for dir
-- itself), path, files, parent_of_media (true when some subfolder of it
-- holds files that count too)}, each file {name, rel (its path under dir),
-- path, size, mtime_ns, ino}; `ignored` = {hidden, symlinks, other (not a
-- photo or video), subfolders (not scanned without tree)} counts, with
-- `symlink_paths` (the first 100); `warnings`, an array of strings (a
-- subfolder that could not be read). err (code "missing" or "io") when dir
-- itself cannot be read.
local function scan(dir, opts)
  opts = opts or {}
  local ignored = { hidden = 0, symlinks = 0, other = 0, subfolders = 0 }
  local symlink_paths, warnings, groups = {}, {}, {}
  local nodes = {}                               -- rel -> {rel, files, parent}
  local root = dir:gsub("(.)/+$", "%1")
  local stack = { { rel = "", path = root } }
  while #stack > 0 do
    local d = table.remove(stack)
    local entries, msg, code = core.list_dir(d.path, d.rel ~= "")
    if not entries then
      if d.rel == "" then
        return nil, errors.new(code == "missing" and "missing" or "io", tostring(msg), { path = root })
      end
      warnings[#warnings + 1] = "not scanned: " .. tostring(msg)
    else
      table.sort(entries, by_name)
      local node = { rel = d.rel, path = d.path, files = {}, parent = d.parent }
      nodes[#nodes + 1] = node
      local subdirs = {}
      for _, e in ipairs(entries) do
        local rel = d.rel == "" and e.name or (d.rel .. "/" .. e.name)
        local path = d.path .. "/" .. e.name
        local own = d.rel == "" and manifest.is_manifest_file(e.name)   -- the manifest: not counted
        if own then
          goto next
        elseif e.name:sub(1, 1) == "." then
          ignored.hidden = ignored.hidden + 1
        elseif e.type == "link" then
          ignored.symlinks = ignored.symlinks + 1
          if #symlink_paths < 100 then symlink_paths[#symlink_paths + 1] = rel end
        elseif e.type == "dir" then
          if opts.tree then
            subdirs[#subdirs + 1] = { rel = rel, path = path, parent = node }
          else
            ignored.subfolders = ignored.subfolders + 1
          end
        elseif e.type == "file" and is_media(e.name) then
          node.files[#node.files + 1] = { name = e.name, rel = rel, path = path, size = e.size,
                                          mtime_ns = e.mtime_ns, ino = e.ino }
        else
          ignored.other = ignored.other + 1
        end
        ::next::
      end
      for i = #subdirs, 1, -1 do stack[#stack + 1] = subdirs[i] end
    end
  end
  -- which folders hold files that count, and which have such subfolders
  for _, node in ipairs(nodes) do
    if #node.files > 0 then
      local p = node.parent
      while p and not p.parent_of_media do
        p.parent_of_media = true
        p = p.parent
      end
    end
  end
  for _, node in ipairs(nodes) do
    if #node.files > 0 then
      groups[#groups + 1] = { rel = node.rel, path = node.path, files = node.files,
                              parent_of_media = node.parent_of_media or false }
    end
  end
  table.sort(groups, function(a, b) return a.rel < b.rel end)
  ignored.symlink_paths = symlink_paths
  return { groups = groups, ignored = ignored, warnings = warnings }
end

return {
  scan = scan,
  is_media = is_media,
}
