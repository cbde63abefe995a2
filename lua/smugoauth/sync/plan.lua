--- What to do with each local file of a folder synced to an album, from
-- the file's MD5, what the album holds and what the manifest says: a pure
-- function (no I/O), so every rule is tested directly.
--
-- For each file, in order:
--   "fail"       it could not be read (file.err)
--   "duplicate"  an earlier file of the folder has the same MD5: one upload
--   "present"    an image of the album has its MD5 (ArchivedMD5): whatever
--                its name, it is there (a file renamed locally too)
--   "known"      the manifest says it was uploaded as an image that the
--                album still holds (SmugMug converted it: HEIC to JPEG, a
--                re-encoded video; its MD5 there is another)
--   "adopt"      its upload was under way when a run stopped (a "pending"
--                row) and the album holds an image of the file name it was
--                sent with that no other file accounts for: that upload
--                reached SmugMug (it is recorded, not sent again)
--   "upload"     anything else; `forget` when the manifest named an image
--                the album no longer holds (deleted on SmugMug: sent again)
-- @module smugoauth.sync.plan

--- The plan of one folder: `plan.plan(files, listing, rows)` -> an array
-- of {file, action, key (the image, for present, known, adopt), of (the
-- first file, for duplicate), forget (for upload), row (the manifest's,
-- if any)}.
--   files    the folder's files, each with md5 (hex) or err
--   listing  the album's (smugoauth.sync.remote list: by_md5, keys, by_name)
--   rows     the manifest's rows of the album, by MD5
local function plan(files, listing, rows)
  local out, first = {}, {}
  -- the images some file accounts for: no pending upload may adopt them
  local claimed = {}
  for _, r in pairs(rows) do
    if r.state == "done" and r.image_key then claimed[r.image_key] = true end
  end
  for _, f in ipairs(files) do
    if f.md5 and listing.by_md5[f.md5] then claimed[listing.by_md5[f.md5]] = true end
  end
  for _, f in ipairs(files) do
    local row = f.md5 and rows[f.md5]
    local a
    if f.err or not f.md5 then
      a = { action = "fail" }
    elseif first[f.md5] then
      a = { action = "duplicate", of = first[f.md5] }
    else
      first[f.md5] = f
      local key = listing.by_md5[f.md5]
      if key then
        a = { action = "present", key = key }
      elseif row and row.state == "done" and row.image_key and listing.keys[row.image_key] then
        a = { action = "known", key = row.image_key }
      elseif row and row.state == "pending" then
        for _, k in ipairs(listing.by_name[row.filename] or {}) do
          if not claimed[k] then
            claimed[k] = true
            a = { action = "adopt", key = k }
            break
          end
        end
        a = a or { action = "upload" }
      else
        a = { action = "upload", forget = row and row.state == "done" or nil }
      end
    end
    a.file, a.row = f, row or nil
    out[#out + 1] = a
  end
  return out
end

return {
  plan = plan,
}
