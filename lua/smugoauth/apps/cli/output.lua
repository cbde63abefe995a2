--- smugoauth.apps.cli.output: what the `smugoauth` command prints, made safe
-- for a terminal: one-line outputs and messages with controls, DEL, C1, bidi
-- controls and invalid UTF-8 shown as escapes (`\x1b`, `\u009b`, `\u202e`,
-- `\xff`); JSON text with those as `\u` escapes (the same JSON value;
-- invalid UTF-8 becomes U+FFFD); and the upload progress bar.
-- @module smugoauth.apps.cli.output
local find, sub, concat, char_of, format = string.find, string.sub, table.concat, string.char, string.format
local floor = math.floor

-- Bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069): they reorder
-- what follows them on the line.
local function is_bidi(cp)
  return (cp >= 0x202A and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069)
end

-- s with every byte a terminal could act on replaced: C0 controls (but those
-- in `keep`, a set of byte values), DEL, C1 controls (U+0080-U+009F, as UTF-8),
-- bidi controls and bytes that are not valid UTF-8. `byte(b)` gives the
-- replacement of a control or invalid byte, `char(cp)` that of a C1 or bidi
-- code point. Valid UTF-8 text and printable ASCII pass as they are.
local function scrub(s, keep, byte, char)
  if not find(s, "[^\32-\126]") then return s end
  local out, n, i, len = {}, 0, 1, #s
  while i <= len do
    local j = find(s, "[^\32-\126]", i)
    if not j then
      n = n + 1
      out[n] = sub(s, i)
      break
    end
    if j > i then
      n = n + 1
      out[n] = sub(s, i, j - 1)
    end
    local b = s:byte(j)
    local rep, size
    if b < 0x80 then
      rep, size = keep and keep[b] and char_of(b) or byte(b), 1
    else
      -- a run of non-ASCII bytes that is valid UTF-8 with no C1 or bidi
      -- control passes whole (the common case: text in other scripts)
      local k = find(s, "[^\128-\255]", j) or len + 1
      local run = sub(s, j, k - 1)
      if utf8.len(run) and not find(run, "\194[\128-\159]") and not find(run, "\226\128[\170-\174]")
          and not find(run, "\226\129[\166-\169]") then
        rep, size = run, #run
      else
        size = b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC2 and 2 or 1
        local ch = sub(s, j, j + size - 1)
        local cp = size > 1 and b <= 0xF4 and #ch == size and utf8.len(ch) == 1 and utf8.codepoint(ch)
        if not cp then
          rep, size = byte(b), 1
        elseif cp <= 0x9F or is_bidi(cp) then
          rep = char(cp)
        else
          rep = ch
        end
      end
    end
    n = n + 1
    out[n] = rep
    i = j + size
  end
  return concat(out)
end

local function esc_byte(b) return format("\\x%02x", b) end
local function esc_char(cp) return format("\\u%04x", cp) end
local KEEP_LINES = { [9] = true, [10] = true }

--- Text for a terminal: controls, C1, bidi controls and invalid UTF-8 become
-- visible escapes (`\x1b`, `\u009b`, `\u202e`, `\xff`); with `lines`,
-- newlines and tabs are kept.
-- @param s (converted with tostring)
-- @tparam[opt] boolean lines
-- @treturn string
local function safe(s, lines)
  return scrub(tostring(s), lines and KEEP_LINES or nil, esc_byte, esc_char)
end

-- JSON's escapes for what a terminal acts on
local function json_byte(b)
  if b < 0x80 then return format("\\u%04x", b) end
  return "\\ufffd"
end
local KEEP_NL = { [10] = true }

--- JSON text (as lua-cjson writes it) with DEL, C1 and bidi controls as \u
-- escapes and invalid UTF-8 as U+FFFD: the same JSON value for valid input,
-- nothing a terminal acts on. Newlines (the pretty printer's) are kept.
-- @tparam string s
-- @treturn string
local function safe_json(s)
  return scrub(s, KEEP_NL, json_byte, esc_char)
end

--- One line of text for a message: the first line, made safe.
-- @param s
-- @treturn string
local function one_line(s)
  return safe(tostring(s):match("^[^\n]*"))
end

--- A byte count for people: 512 B, 1.5 MiB.
-- @tparam number n
-- @treturn string
local function human(n)
  if n < 1024 then return format("%.0f B", n) end
  local units = { "KiB", "MiB", "GiB", "TiB" }
  local i = 0
  repeat n, i = n / 1024, i + 1 until n < 1024 or i == #units
  return format("%.1f %s", n, units[i])
end

--- A progress bar for one file, drawn with note (a function writing to the
-- terminal, e.g. stderr): `bar.update(sent, total)` redraws it when the
-- percentage changes, `bar.finish()` ends its line.
-- @tparam function note
-- @tparam string name the file's name (made safe, shortened to 24 characters)
-- @treturn table
local function progress_bar(note, name)
  name = safe(name)                                  -- valid UTF-8 from here on
  if utf8.len(name) > 24 then name = name:sub(1, utf8.offset(name, 22) - 1) .. "..." end
  local shown, last = false, -1
  local bar = {}
  function bar.update(sent, total)
    if total <= 0 then return end
    local pct = floor(sent * 100 / total)
    if pct == last then return end
    last, shown = pct, true
    local width = 30
    local fill = floor(width * sent / total)
    note(format("\r%-24s [%s%s] %3d%% %s / %s\27[K", name, ("#"):rep(fill), ("-"):rep(width - fill),
      pct, human(sent), human(total)))
  end
  function bar.finish()
    if shown then note("\n") end
  end
  return bar
end

return {
  safe = safe,
  safe_json = safe_json,
  one_line = one_line,
  human = human,
  progress_bar = progress_bar,
}
