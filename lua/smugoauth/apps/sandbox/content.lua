--- smugoauth.apps.sandbox.content: the bytes of the sandbox's images,
-- generated from a seed instead of stored, so an image of any size (a 2 GB
-- video) is served in 64 KiB pieces without ever being in memory or on
-- disk, and a test knows its bytes and MD5 without a copy.
--
-- The bytes of (seed, size): piece i (0-based, CHUNK = 64 KiB each, the
-- last one cut at size) is 16 units of 4 KiB; unit j of it is the 12 hex
-- digits of i and j (8 and 4) followed by the last 4084 bytes of the seed's
-- unit, 4 KiB of SHA-512 output (`sha512(seed .. "#" .. n)` for n = 0 .. 63).
-- So no 4 KiB of the bytes is like another, nor like those of another seed:
-- bytes served from a wrong offset, or of another image, never have the
-- right MD5. (A seed costs 64 digests; a piece, 16 short formats.)
--
--     local content = require "smugoauth.apps.sandbox.content"
--     local s = content.bytes("I00001/v1", 1000)     -- the whole thing (small sizes)
--     for piece in content.pieces("I00001/v1", size, 500) do ... end   -- from byte 500
--     print(content.md5("I00001/v1", size))          -- hex, computed once per (seed, size)
-- @module smugoauth.apps.sandbox.content
local core = require "smugoauth.core"
local loop = require "smugoauth.loop"

local CHUNK = 65536
local UNIT = 4096
local STAMP = 12
local MAX_UNITS = 1024            -- seeds whose unit is kept (4 KiB each)
local MAX_BYTES = 64 * 1024 * 1024   -- what `bytes` makes at once

local units, unit_order = {}, {}
local sums, pending = {}, {}
local format, concat = string.format, table.concat

-- The seed's 4 KiB unit without its first STAMP bytes (the last MAX_UNITS kept).
local function unit(seed)
  local u = units[seed]
  if u then return u end
  local parts = {}
  for n = 0, UNIT // 64 - 1 do parts[n + 1] = assert(core.digest("sha512", seed .. "#" .. n)) end
  u = concat(parts):sub(STAMP + 1)
  units[seed] = u
  unit_order[#unit_order + 1] = seed
  if #unit_order > MAX_UNITS then units[table.remove(unit_order, 1)] = nil end
  return u
end

local scratch = {}

--- Piece i (0-based) of the bytes of seed: CHUNK bytes (the caller cuts the
-- last one).
-- @string seed
-- @int i
-- @treturn string
local function piece(seed, i)
  local u = unit(seed)
  for j = 0, CHUNK // UNIT - 1 do
    scratch[2 * j + 1], scratch[2 * j + 2] = format("%08x%04x", i, j), u
  end
  return concat(scratch, "", 1, 2 * (CHUNK // UNIT))
end

local function check(seed, size, from)
  if type(seed) ~= "string" then error("content: seed must be a string", 3) end
  if not math.tointeger(size) or size < 0 then error("content: size must be an integer >= 0", 3) end
  if from ~= nil and (not math.tointeger(from) or from < 0) then
    error("content: offset must be an integer >= 0", 3)
  end
end

--- The bytes of (seed, size) from byte `from` (0-based, default 0) to byte
-- `last` (default size - 1), as an iterator of pieces of at most CHUNK bytes.
-- @string seed
-- @int size
-- @int[opt] from
-- @int[opt] last
-- @return iterator
local function pieces(seed, size, from, last)
  check(seed, size, from)
  local pos = from or 0
  last = math.min(last or size - 1, size - 1)
  return function()
    if pos > last then return nil end
    local i = pos // CHUNK
    local within = pos - i * CHUNK
    local n = math.min(CHUNK - within, last - pos + 1)
    local p = piece(seed, i)
    if within > 0 or n < CHUNK then p = p:sub(within + 1, within + n) end
    pos = pos + n
    return p
  end
end

--- All the bytes of (seed, size) as one string (at most 64 MiB: for tests).
-- @string seed
-- @int size
-- @treturn string
local function bytes(seed, size)
  check(seed, size)
  if size > MAX_BYTES then error("content.bytes: at most 64 MiB at once (use pieces)", 2) end
  local t = {}
  for p in pieces(seed, size) do t[#t + 1] = p end
  return table.concat(t)
end

--- The MD5 of (seed, size), lower-case hex. Computed once and kept; inside
-- a task of a loop it yields every 16 MiB (a 2 GB video takes seconds),
-- and a second caller for the same bytes waits for the first.
-- @string seed
-- @int size
-- @treturn string
local function md5(seed, size)
  check(seed, size)
  local k = seed .. "\0" .. size
  local sum = sums[k]
  if sum then return sum end
  local in_task = loop.current() ~= nil
  if in_task then
    while pending[k] do loop.sleep(0.01) end
    if sums[k] then return sums[k] end
  end
  pending[k] = true
  local ok, v = pcall(function()
    local d <close> = assert(core.digest_new("md5"))
    local n = 0
    for p in pieces(seed, size) do
      d:update(p)
      n = n + 1
      if in_task and n % 256 == 0 then loop.sleep(0) end
    end
    return (assert(d:final()):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
  end)
  pending[k] = nil                     -- (also when it failed: a waiting caller tries itself)
  if not ok then error(v, 0) end
  sums[k] = v
  return v
end

return {
  CHUNK = CHUNK,
  piece = piece,
  pieces = pieces,
  bytes = bytes,
  md5 = md5,
}
