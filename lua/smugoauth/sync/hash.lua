--- The MD5 of local files, streamed from disk (core.digest_file: 64 KiB at
-- a time, never the whole file in memory) or taken from the manifest's cache
-- when the file still has the size, modification time (nanoseconds) and
-- inode it had when it was hashed.
-- @module smugoauth.sync.hash
local core = require "smugoauth.core"
local errors = require "smugoauth.errors"
local loop = require "smugoauth.loop"

--- Raw bytes as lower-case hex.
local function hex(raw)
  return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- Set `file.md5` (hex) on every file of the array, or `file.err` (code
-- "io") for one that cannot be read: `hash.files(files, m [, on_file])`.
--   m         the manifest (smugoauth.sync.manifest): its cache is used and
--             filled (written at the end)
--   on_file   function(file, cached) after each file
-- Inside a task it lets the loop run between two files (the listing of the
-- albums goes on meanwhile): hashing one file blocks, as any CPU work does.
-- Returns the number of files read and their bytes, and an error when the
-- cache could not be written (not fatal: the next run reads them again).
local function files(list, m, on_file)
  local read, bytes = 0, 0
  local in_task = loop.current() ~= nil
  for _, f in ipairs(list) do
    local md5 = m:cached_md5(f.rel, f.size, f.mtime_ns, f.ino)
    local cached = md5 ~= nil
    if not md5 then
      local raw, size, code = core.digest_file("md5", f.path)
      if raw then
        md5 = hex(raw)
        read, bytes = read + 1, bytes + size
        if size == f.size then
          m:remember_md5(f.rel, f.size, f.mtime_ns, f.ino, md5)
        else
          f.size = size                              -- it changed since the scan: do not cache
        end
      else
        f.err = errors.new(code or "io", tostring(size), { path = f.path })
      end
    end
    f.md5 = md5
    if on_file then on_file(f, cached) end
    if in_task and not cached then loop.sleep(0) end
  end
  local ok, err = m:flush_hashes()
  return read, bytes, not ok and err or nil
end

return {
  files = files,
  hex = hex,
}
