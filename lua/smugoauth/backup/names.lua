--- smugoauth.backup.names: the names a backup gives files and folders under
-- its destination. A name from SmugMug (a FileName, an album or folder
-- Name) is made safe to create on any file system, and can never point
-- outside the folder it is made in: no `/`, `\`, NUL, control or bidi
-- characters, invalid UTF-8, `.` or `..`, characters Windows refuses
-- (`<>:"|?*`), trailing dots or spaces, Windows device names (CON, NUL,
-- COM1...), and no more than `MAX` bytes (cut on a UTF-8 boundary, the
-- extension kept). Then the names of one folder are made distinct, as a
-- case-insensitive file system sees them, deterministically: the result
-- depends on the set of (id, name) pairs only, never on the order the API
-- listed them in, so every run gives every image the same name.
-- @module smugoauth.backup.names
local concat, sort = table.concat, table.sort
local byte, char, sub, find = string.byte, string.char, string.sub, string.find

--- The longest name made, in bytes: NAME_MAX (255) less room for ".part".
local MAX = 250

--- The folder under the destination that holds the backup's own files (its
-- manifest, displaced files): no name made here is equal to it, or starts
-- with it, in any case.
local OWN = ".smugoauth"

-- Characters some file systems refuse (Windows, SMB, exFAT), besides controls.
local REFUSED = { [0x2F] = true, [0x5C] = true, [0x3C] = true, [0x3E] = true, [0x3A] = true,
                  [0x22] = true, [0x7C] = true, [0x3F] = true, [0x2A] = true }

-- Windows device names: refused as the part of a name before its first dot.
local DEVICES = { CON = true, PRN = true, AUX = true, NUL = true, ["CONIN$"] = true, ["CONOUT$"] = true }
for i = 0, 9 do DEVICES["COM" .. i] = true DEVICES["LPT" .. i] = true end
for _, sup in ipairs { "\194\185", "\194\178", "\194\179" } do   -- superscript 1, 2, 3
  DEVICES["COM" .. sup] = true DEVICES["LPT" .. sup] = true
end

-- Code points replaced besides C0/DEL: C1 controls, bidi embeddings,
-- overrides and isolates, the line and paragraph separators, marks that
-- change direction, the byte-order mark.
local function unsafe_cp(cp)
  return (cp >= 0x80 and cp <= 0x9F) or (cp >= 0x202A and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069)
    or cp == 0x200E or cp == 0x200F or cp == 0x061C or cp == 0x2028 or cp == 0x2029 or cp == 0xFEFF
end

-- s with every unsafe character (see the module comment) and every byte
-- that is not part of valid UTF-8 replaced by "_".
local function clean_chars(s)
  if not find(s, "[^\32-\126]") and not find(s, "[/\\<>:\"|?*]") then return s end
  local out, n, i, len = {}, 0, 1, #s
  while i <= len do
    local b = byte(s, i)
    local rep, size
    if b < 0x80 then
      size = 1
      rep = (b < 0x20 or b == 0x7F or REFUSED[b]) and "_" or char(b)
    else
      size = b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC2 and 2 or 1
      local ch = sub(s, i, i + size - 1)
      local ok = size > 1 and b <= 0xF4 and #ch == size and utf8.len(ch) == 1
      if not ok then
        rep, size = "_", 1
      else
        rep = unsafe_cp(utf8.codepoint(ch)) and "_" or ch
      end
    end
    n = n + 1
    out[n] = rep
    i = i + size
  end
  return concat(out)
end

--- A folded form of a name or path, for comparing them as a
-- case-insensitive file system would: ASCII, Latin-1, Latin Extended-A,
-- Greek and Cyrillic capitals to small letters (valid UTF-8 expected).
local function fold(s)
  s = s:lower()
  if not find(s, "[\128-\255]") or not utf8.len(s) then return s end
  local out, n = {}, 0
  for _, cp in utf8.codes(s) do
    if (cp >= 0xC0 and cp <= 0xDE and cp ~= 0xD7) or (cp >= 0x391 and cp <= 0x3AB and cp ~= 0x3A2)
        or (cp >= 0x410 and cp <= 0x42F) then
      cp = cp + 0x20
    elseif cp >= 0x400 and cp <= 0x40F then
      cp = cp + 0x50
    elseif cp == 0x178 then
      cp = 0xFF
    elseif cp >= 0x100 and cp <= 0x17F and cp ~= 0x130 and cp ~= 0x131 and cp ~= 0x138 and cp ~= 0x149
        and cp ~= 0x17F then
      -- Latin Extended-A: pairs, capital then small (0x139-0x148 and 0x179-0x17E start odd)
      local odd_pairs = (cp >= 0x139 and cp <= 0x148) or (cp >= 0x179 and cp <= 0x17E)
      if (cp % 2 == 0) ~= odd_pairs then cp = cp + 1 end
    end
    n = n + 1
    out[n] = utf8.char(cp)
  end
  return concat(out)
end

--- Split a file name into its stem and extension (".jpg"): an extension is
-- a final dot and 1 to 16 letters or digits after a non-empty stem.
local function split_ext(name)
  local stem, ext = name:match("^(.+)(%.[%w]+)$")
  if stem and #ext <= 17 then return stem, ext end
  return name, ""
end

-- The longest prefix of s of at most n bytes that ends on a UTF-8 boundary.
local function cut(s, n)
  if #s <= n then return s end
  local i = n
  while i > 0 and (byte(s, i + 1) or 0) >= 0x80 and (byte(s, i + 1) or 0) < 0xC0 do i = i - 1 end
  return sub(s, 1, i)
end

--- stem .. suffix .. ext cut to `MAX` bytes: the stem is shortened (on a
-- UTF-8 boundary), never the suffix or the extension.
local function fit(stem, suffix, ext)
  local room = MAX - #suffix - #ext
  if room < 1 then ext, room = "", MAX - #suffix end
  stem = cut(stem, room):gsub("[ .]+$", "")
  if stem == "" then stem = "_" end
  return stem .. suffix .. ext
end

--- A safe name for `raw` (any string): see the module comment. `kind` is
-- "file" (an extension is kept when it is cut) or "dir". Returns nil when
-- nothing is left (an empty name, only dots and spaces): the caller gives
-- a fallback.
local function sanitize(raw, kind)
  if type(raw) ~= "string" then return nil end
  local s = clean_chars(raw)
  s = s:gsub("^[ ]+", ""):gsub("[ .]+$", "")
  if s == "" or s == "." or s == ".." then return nil end
  -- Windows device names: the part before the first dot
  local head, rest = s:match("^([^.]*)(.*)$")
  if DEVICES[head:upper():gsub(" +$", "")] then s = head .. "_" .. rest end
  -- our own folder
  if fold(s):sub(1, #OWN) == OWN then s = "_" .. s end
  -- what would look like a download in progress
  if fold(s):sub(-5) == ".part" then s = s .. "_" end
  if #s > MAX then
    if kind == "dir" then
      s = fit(s, "", "")
    else
      local stem, ext = split_ext(s)
      s = fit(stem, "", ext)
    end
  end
  return s
end

--- Give the entries of one folder distinct names: `assign(entries, kind)`.
-- Each entry is a table with `id` (a string unique in the folder: the
-- ImageKey, NodeID or AlbumKey) and `want` (a name from `sanitize`); each
-- gets `name`. Names equal but for case (as `fold` sees them) collide: the
-- entry with the smallest id keeps the name, the others get " (ID)" before
-- the extension (" (ID-2)", " (ID-3)"... should that be taken too). The
-- result depends only on the set of entries. Returns entries.
local function assign(entries, kind)
  local groups = {}
  for _, e in ipairs(entries) do
    assert(type(e.id) == "string" and type(e.want) == "string", "assign: entries need a string id and want")
    local f = fold(e.want)
    local g = groups[f]
    if not g or e.id < g.id then groups[f] = e end   -- the group's leader: the smallest id
  end
  local taken, rest = {}, {}
  for _, e in ipairs(entries) do
    local f = fold(e.want)
    if groups[f] == e then
      e.name = e.want
      taken[f] = true
    else
      rest[#rest + 1] = e
    end
  end
  sort(rest, function(a, b) return a.id < b.id end)
  for _, e in ipairs(rest) do
    local stem, ext = e.want, ""
    if kind ~= "dir" then stem, ext = split_ext(e.want) end
    local id = sanitize(e.id, "dir") or "_"
    local n, name = 1
    repeat
      name = fit(stem, " (" .. id .. (n > 1 and ("-" .. n) or "") .. ")", ext)
      n = n + 1
    until not taken[fold(name)]
    e.name = name
    taken[fold(name)] = true
  end
  return entries
end

return {
  MAX = MAX,
  OWN = OWN,
  sanitize = sanitize,
  fold = fold,
  split_ext = split_ext,
  fit = fit,
  assign = assign,
}
