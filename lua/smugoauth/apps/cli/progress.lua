--- smugoauth.apps.cli.progress: the progress display of the transfer
-- commands on a terminal: one block, redrawn in place (at most ten times a
-- second), with the files and bytes done of the total, the rate, the time
-- left and the files in flight:
--
--     uploading 12/40 files, 30.1 MiB of 120.0 MiB, 4.2 MiB/s, 0:21 left
--       IMG_0001.jpg                        3.1 MiB  45%
--       IMG_0002.heic                       1.2 MiB   3%
--
-- It only draws: a command tells it what happens (`total`, `start`,
-- `update`, `done`, `phase`) and calls `clear` before printing a line of its
-- own under it. Names are made safe for the terminal (smugoauth.apps.cli.output).
-- @module smugoauth.apps.cli.progress
local core = require "smugoauth.core"
local output = require "smugoauth.apps.cli.output"

local format, floor, concat = string.format, math.floor, table.concat
local safe = output.safe

local methods = {}
local mt = { __name = "smugoauth.CliProgress", __index = methods }

--- A byte count for people: 512 B, 1.5 MiB.
-- @tparam number n
-- @treturn string
local function human(n)
  if n < 1024 then return format("%d B", n) end
  local units = { "KiB", "MiB", "GiB", "TiB" }
  local i = 0
  repeat n, i = n / 1024, i + 1 until n < 1024 or i == #units
  return format("%.1f %s", n, units[i])
end

-- Seconds as H:MM:SS or M:SS.
local function clock(s)
  s = floor(s + 0.5)
  if s >= 3600 then return format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return format("%d:%02d", s // 60, s % 60)
end

-- name cut to n columns (made safe first), with "..." in the middle.
local function fit(name, n)
  name = safe(name)
  local len = utf8.len(name) or #name
  if len <= n then return name .. (" "):rep(n - len) end
  local head = n // 2 - 2
  local tail = n - head - 3
  return name:sub(1, utf8.offset(name, head + 1) - 1) .. "..." .. name:sub(utf8.offset(name, -tail))
end

--- A display: `progress.new(note [, opts])`.
--   note        function(...) that writes to the terminal (stderr) at once
--   opts.verb   "transferring": the first word of the block
--   opts.now    core.monotime: the clock (tests)
--   opts.width  78: the columns it draws in
--   opts.shown  4: the files in flight listed at most
local function new(note, opts)
  opts = opts or {}
  return setmetatable({ note = note, verb = opts.verb or "transferring", now = opts.now or core.monotime,
    width = opts.width or 78, shown = opts.shown or 4, files = 0, bytes = 0, done_files = 0,
    done_bytes = 0, failed = 0, active = {}, order = {}, drawn = 0, last = -1, t0 = nil }, mt)
end

--- The totals: `p:total(files, bytes)`.
function methods:total(files, bytes)
  self.files, self.bytes = files, bytes
  self:draw(true)
end

--- A line of its own instead of the counts (e.g. "hashing 120/500"): `p:phase(text)`; nil goes back.
function methods:phase(text)
  self.phase_text = text
  self:draw(false)
end

--- A file starts: `p:start(id, name, size)`.
function methods:start(id, name, size)
  self.t0 = self.t0 or self.now()
  self.active[id] = { name = name, size = size or 0, got = 0 }
  self.order[#self.order + 1] = id
  self:draw(true)
end

--- Bytes of a file so far: `p:update(id, got [, size])`.
function methods:update(id, got, size)
  local a = self.active[id]
  if not a then return end
  a.got = got
  if size and size > 0 then a.size = size end
  self:draw(false)
end

--- A file ended: `p:done(id, ok [, size])` (size: its bytes, counted when ok).
function methods:done(id, ok, size)
  local a = self.active[id]
  self.active[id] = nil
  for i, v in ipairs(self.order) do
    if v == id then table.remove(self.order, i) break end
  end
  if ok then
    self.done_files = self.done_files + 1
    self.done_bytes = self.done_bytes + (size or (a and a.size) or 0)
  else
    self.failed = self.failed + 1
  end
  self:draw(true)
end

-- The lines of the block.
function methods:lines()
  if self.phase_text then return { safe(self.phase_text) } end
  local got = self.done_bytes
  for _, id in ipairs(self.order) do got = got + self.active[id].got end
  local head = format("%s %d/%d files, %s of %s", self.verb, self.done_files, self.files, human(got),
                      human(self.bytes))
  if self.failed > 0 then head = head .. format(", %d failed", self.failed) end
  local el = self.t0 and (self.now() - self.t0) or 0
  if el > 0.5 and got > 0 then
    local rate = got / el
    head = head .. format(", %s/s", human(rate))
    if self.bytes > got then head = head .. ", " .. clock((self.bytes - got) / rate) .. " left" end
  end
  local out = { head }
  for i, id in ipairs(self.order) do
    if i > self.shown then
      out[#out + 1] = format("  ... and %d more", #self.order - self.shown)
      break
    end
    local a = self.active[id]
    local pct = a.size > 0 and floor(a.got * 100 / a.size) or 0
    out[#out + 1] = format("  %s %10s %3d%%", fit(a.name, self.width - 18), human(a.size), pct)
  end
  return out
end

--- Redraw (at most every 0.1 s unless `force`).
function methods:draw(force)
  local t = self.now()
  if not force and t - self.last < 0.1 then return end
  self.last = t
  local lines = self:lines()
  self:clear()
  self.note(concat(lines, "\27[K\n"), "\27[K")
  self.drawn = #lines
end

--- Erase the block (before a line of the command's own; the next draw puts it back).
function methods:clear()
  if self.drawn > 0 then
    self.note("\r", self.drawn > 1 and format("\27[%dA", self.drawn - 1) or "", "\27[J")
    self.drawn = 0
  end
end

--- Erase the block for good.
function methods:finish()
  self:clear()
end

return {
  new = new,
  human = human,
  clock = clock,
  methods = methods,
  mt = mt,
}
