--- smugoauth.apps.cli.progress: the progress display of `smugoauth backup`
-- (and of any command that moves many files) on a terminal: one block,
-- redrawn in place at most ten times a second -- files done of those known,
-- bytes, rate, ETA, and the files in flight with their percentage. Every
-- name is made safe for the terminal (smugoauth.apps.cli.output); lines
-- are cut to the terminal's width.
--
--     local p = progress.new{ write = function(s) io.stderr:write(s) end, columns = 80 }
--     p:add(1, 262144)             -- a file (and its bytes) is known to come
--     p:start("a/IMG_1.JPG", 262144)
--     p:update("a/IMG_1.JPG", 131072)
--     p:finish("a/IMG_1.JPG", 262144)   -- done: its bytes count in full
--     p:draw() ... p:clear()
-- @module smugoauth.apps.cli.progress
local core = require "smugoauth.core"
local output = require "smugoauth.apps.cli.output"

local format, floor, concat = string.format, math.floor, table.concat
local safe, human = output.safe, output.human

local methods = {}
local mt = { __name = "smugoauth.CliProgress", __index = methods }

--- The seconds between two redraws.
local INTERVAL = 0.1

--- The files in flight shown under the totals.
local SHOWN = 8

--- A display: `progress.new(opts)`.
--   write     function(s): writes to the terminal (required)
--   columns   the terminal's width (default 80)
--   clock     function() -> seconds (default core.monotime)
--   label     the first word of the first line (default "backup")
local function new(opts)
  if type(opts) ~= "table" or type(opts.write) ~= "function" then error("progress.new: write expected", 2) end
  local clock = opts.clock or core.monotime
  return setmetatable({
    write = opts.write, columns = math.max(20, math.tointeger(opts.columns) or 80), clock = clock,
    label = opts.label or "backup", t0 = clock(), last = -math.huge, lines = 0,
    files = 0, files_done = 0, bytes = 0, bytes_done = 0, failed = 0, listing = true,
    flight = {}, order = {}, window = {},
  }, mt)
end

-- s cut to n columns (counting UTF-8 characters; s is safe already).
local function cut(s, n)
  if utf8.len(s) <= n then return s end
  return s:sub(1, utf8.offset(s, n) - 1) .. "~"
end

-- Seconds as m:ss or h:mm:ss.
local function clock_text(s)
  s = floor(s + 0.5)
  if s >= 3600 then return format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return format("%d:%02d", s // 60, s % 60)
end

--- `n` more files and `bytes` more bytes are to come.
function methods:add(n, bytes)
  self.files, self.bytes = self.files + n, self.bytes + (bytes or 0)
end

--- The listing is over: the totals are final (the ETA is shown from then on).
function methods:listed()
  self.listing = false
end

--- A file starts (size: its bytes, or nil).
function methods:start(path, size)
  if not self.flight[path] then self.order[#self.order + 1] = path end
  self.flight[path] = { got = 0, size = size }
end

--- Bytes of a file in flight so far.
function methods:update(path, got, size)
  local f = self.flight[path]
  if f then
    f.got = got
    if size then f.size = size end
  end
end

--- A file is done (bytes: what it counts for; failed: true when it failed).
function methods:finish(path, bytes, failed)
  if self.flight[path] then
    self.flight[path] = nil
    for i, p in ipairs(self.order) do
      if p == path then table.remove(self.order, i) break end
    end
  end
  self.files_done = self.files_done + 1
  self.bytes_done = self.bytes_done + (bytes or 0)
  if failed then self.failed = self.failed + 1 end
end

-- Bytes done, counting those of the files in flight.
local function done_bytes(self)
  local n = self.bytes_done
  for _, f in pairs(self.flight) do n = n + f.got end
  return n
end

-- The rate over the last few seconds (bytes/s), from samples of done bytes.
local function rate(self, now, done)
  local w = self.window
  w[#w + 1] = { now, done }
  while #w > 2 and now - w[1][1] > 5 do table.remove(w, 1) end
  local dt = now - w[1][1]
  if dt < 0.2 then return nil end
  return (done - w[1][2]) / dt
end

--- The block's lines now (an array of strings, safe, cut to the width).
function methods:lines_now()
  local now = self.clock()
  local done = done_bytes(self)
  local r = rate(self, now, done)
  local parts = { format("%s: %d/%d files", self.label, self.files_done, self.files) }
  if self.failed > 0 then parts[1] = parts[1] .. format(" (%d failed)", self.failed) end
  parts[#parts + 1] = format("%s/%s", human(done), human(self.bytes))
  if r then parts[#parts + 1] = human(r) .. "/s" end
  if self.listing then
    parts[#parts + 1] = "listing..."
  elseif r and r > 0 then
    parts[#parts + 1] = "ETA " .. clock_text(math.max(0, self.bytes - done) / r)
  end
  parts[#parts + 1] = clock_text(now - self.t0)
  local out = { cut(concat(parts, "  "), self.columns - 1) }
  for i = 1, math.min(SHOWN, #self.order) do
    local p = self.order[i]
    local f = self.flight[p]
    local pct = f.size and f.size > 0 and format("%3d%%", floor(f.got * 100 / f.size)) or "    "
    local name = safe(p)
    local room = self.columns - 1 - 4 - #pct
    out[#out + 1] = "  " .. pct .. "  " .. cut(name, room)
  end
  if #self.order > SHOWN then out[#out + 1] = format("  ... and %d more", #self.order - SHOWN) end
  return out
end

--- Redraw the block (at most every INTERVAL seconds unless `force`).
function methods:draw(force)
  local now = self.clock()
  if not force and now - self.last < INTERVAL then return end
  self.last = now
  local lines = self:lines_now()
  local s = {}
  if self.lines > 0 then s[1] = format("\r\27[%dA", self.lines) end   -- up to the block's first line
  for _, l in ipairs(lines) do s[#s + 1] = "\r" .. l .. "\27[K\n" end
  s[#s + 1] = "\27[J"                                                  -- what the old block had below
  self.lines = #lines
  self.write(concat(s))
end

--- Remove the block from the terminal.
function methods:clear()
  if self.lines > 0 then
    self.write(format("\r\27[%dA\27[J", self.lines))
    self.lines = 0
  end
end

return {
  new = new,
  INTERVAL = INTERVAL,
  methods = methods,
  mt = mt,
}
