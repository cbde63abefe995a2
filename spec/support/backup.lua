--- support.backup: what the backup specs share -- the files a backup left
-- under its destination, the truth to check them against (the sandbox's
-- own tree and listings, read without the backup's code), and a check of
-- the manifest against both.
--
--     local bk = require "support.backup"
--     local list = bk.files(dest)             -- relative paths of every file but .smugoauth/
--     local truth = bk.truth(api, sb)         -- key -> { md5, size, album, video }
--     local n = bk.verify(dest, truth)        -- every file whole, recorded, with its MD5
local core = require "smugoauth.core"
local sqlite = require "smugoauth.sqlite"
local proc = require "support.proc"
local assert = require "luassert"

local M = {}

local function hex(raw)
  return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end
M.hex = hex

--- The MD5 (hex) of a file, or nil.
function M.md5(path)
  local raw = core.digest_file("md5", path)
  return raw and hex(raw)
end

--- Every entry under dest but .smugoauth/: a sorted list of relative paths
-- of regular files, and a list of the other entries that are not
-- directories (symlinks, ...).
function M.files(dest)
  local p = assert(io.popen("cd " .. proc.q(dest) .. " && find . -mindepth 1 -path ./.smugoauth -prune -o " ..
                            "\\( -type f -printf 'f%P\\0' \\) -o \\( ! -type d -printf 'o%P\\0' \\)"))
  local s = p:read("a")
  p:close()
  local out, other = {}, {}
  for kind, name in s:gmatch("(.)([^%z]*)%z") do
    if kind == "f" then out[#out + 1] = name else other[#other + 1] = name end
  end
  table.sort(out)
  return out, other
end

--- A set of those files.
function M.set(dest)
  local set = {}
  for _, f in ipairs(M.files(dest)) do set[f] = true end
  return set
end

--- What each image of the sandbox should be saved as: key -> { md5, size,
-- album, name (FileName), video } from the sandbox's tree (/_sandbox/tree)
-- and the API's listings (a video: its !largestvideo). Videos still
-- processing are left out (there is nothing to save).
function M.truth(api, sb)
  local out = {}
  local function walk(node)
    if node.Type == "Album" and node.AlbumKey then
      for img in api:each("/api/v2/album/" .. node.AlbumKey .. "!images") do
        assert(img, "listing " .. node.AlbumKey)
        local t = { album = node.AlbumKey, name = img.FileName, md5 = img.ArchivedMD5, size = img.ArchivedSize,
                    video = img.IsVideo == true, processing = img.Processing == true }
        if t.video and not t.processing then
          local lv = assert(api:get("/api/v2/image/" .. img.ImageKey .. "-0!largestvideo")):json().Response
          t.md5, t.size = lv.LargestVideo.MD5, lv.LargestVideo.Size
        end
        if not t.processing then out[img.ImageKey] = t end
      end
    end
    for _, c in ipairs(node.Children or {}) do walk(c) end
  end
  walk(sb:tree())
  return out
end

--- The manifest's rows: a list of { album, key, path, md5, size }.
function M.rows(dest)
  local db = assert(sqlite.open(dest .. "/.smugoauth/backup.sqlite", { readonly = true }))
  local out = {}
  for r in db:rows("SELECT album, key, path, md5, size FROM images ORDER BY path") do out[#out + 1] = r end
  db:close()
  return out
end

--- Check a destination against the truth: every row's file is there, whole
-- (its size and MD5 those of its image), nothing is under dest but the
-- recorded files (no .part, no stray file, no symlink); with `all`, every
-- image of the truth was saved. Raises on the first problem; returns the
-- number of files.
function M.verify(dest, truth, all)
  local rows = M.rows(dest)
  local recorded, keys = {}, {}
  for _, r in ipairs(rows) do
    local t = truth[r.key]
    assert(t, "a row for an image the sandbox does not have: " .. r.key)
    local p = dest .. "/" .. r.path
    assert.equal(t.size, core.file_size(p), r.path)
    assert.equal(t.md5, M.md5(p), r.path)
    assert.equal(t.md5, r.md5, r.path)
    recorded[r.path] = true
    keys[r.key] = true
  end
  local list, other = M.files(dest)
  assert.same({}, other)
  for _, f in ipairs(list) do assert(recorded[f], "a file no row records: " .. f) end
  if all then
    for k in pairs(truth) do assert(keys[k], "not saved: " .. k) end
  end
  return #list
end

return M
