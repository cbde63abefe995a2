--- smugoauth.apps.cli.doc: what the help texts say, read back, and the man
-- page written from it: `smugoauth help --man`.
--
-- The command's documentation lives in one place, the command tables of
-- smugoauth.apps.cli (name, summary, options, args, help) and their help
-- texts; the man page (here) and the completion scripts
-- (smugoauth.apps.cli.completion) are generated from them, so they cannot
-- drift from the code. A help text is plain text in this shape:
--
--     usage: smugoauth NAME ARGS...          (more synopses on indented lines
--            smugoauth NAME OTHER ARGS...     that start with "smugoauth")
--
--     A paragraph, unindented lines.
--
--     Options:                               (a title ending with ":")
--       --name VALUE   what it does           (term, two spaces or more,
--                      continued here          description; continuation
--       -s, --long V   aliases share a line    lines indented deeper)
--
-- `describe` (the CLI description) is what smugoauth.apps.cli's `describe`
-- returns: `name`, `version`, `summary`, `intro` (text), `global` (the global
-- option table), `global_help`, `commands` (the command tables in help
-- order) and `sections` (a list of {TITLE, text} for the man page: FILES,
-- ENVIRONMENT, EXIT STATUS...). A command's `man_help`, when it has one,
-- is what the man page shows instead of its help (when the help repeats
-- what the page has in sections of its own).
-- @module smugoauth.apps.cli.doc
local concat, sort = table.concat, table.sort

-- ------------------------------------------------------------ reading help texts

-- A help text's lines, trailing blanks removed.
local function lines_of(text)
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = (line:gsub("%s+$", "")) end
  return out
end

-- One paragraph (its lines) as a block.
local function block_of(par)
  local first = par[1]
  if first:match("^usage: ") then
    local synopses = {}
    for i, line in ipairs(par) do
      line = i == 1 and line:sub(8) or line:match("^%s*(.-)$")
      if i == 1 or line:match("^smugoauth[%s$]") or line == "smugoauth" then
        synopses[#synopses + 1] = line
      else
        synopses[#synopses] = synopses[#synopses] .. " " .. line
      end
    end
    return { kind = "usage", synopses = synopses }
  end
  local title, from = nil, 1
  if #par > 1 and not first:match("^%s") and first:match(":$") and par[2]:match("^%s") then
    title, from = first, 2
  end
  local items, is_list = {}, true
  for i = from, #par do
    local line = par[i]
    local term, desc = line:match("^  (%S.-)%s%s+(%S.*)$")
    if not term and line:match("^  %S") then term, desc = line:sub(3), "" end
    if term then
      items[#items + 1] = { term = term, desc = desc }
    elseif line:match("^   +%S") and #items > 0 then
      local it = items[#items]
      it.desc = it.desc == "" and line:match("^%s*(.-)$") or (it.desc .. " " .. line:match("^%s*(.-)$"))
    else
      is_list = false
      break
    end
  end
  if is_list and #items > 0 then return { kind = "list", title = title, items = items } end
  for _, line in ipairs(par) do
    if line:match("^%s") then return { kind = "verbatim", lines = par } end
  end
  return { kind = "text", text = concat(par, " ") }
end

--- A help text as a list of blocks, in order: `{kind = "usage", synopses}`
-- (each synopsis one string), `{kind = "text", text}` (a paragraph, its lines
-- joined), `{kind = "list", title, items = {{term, desc}...}}` and
-- `{kind = "verbatim", lines}` (indented text that is no list).
-- @tparam string text
-- @treturn table
local function parse(text)
  local blocks, par = {}, {}
  for _, line in ipairs(lines_of(text)) do
    if line == "" then
      if #par > 0 then blocks[#blocks + 1] = block_of(par) end
      par = {}
    else
      par[#par + 1] = line
    end
  end
  if #par > 0 then blocks[#blocks + 1] = block_of(par) end
  return blocks
end

--- The options a list term names and the value they take:
-- `"-q, --query NAME=VALUE"` -> `{"-q", "--query"}, "NAME=VALUE"`;
-- nil when the term names no option.
-- @tparam string term
-- @treturn table|nil names
-- @treturn string|nil value
local function term_options(term)
  local names, value = {}, nil
  for piece in (term .. ", "):gmatch("(.-), ") do
    local name, v = piece:match("^(%-%-?%w[%w%-]*)%s*(.*)$")
    if not name then return nil end
    names[#names + 1] = name
    if v ~= "" then value = v end
  end
  return names, value
end

--- What the option lists of a help text (lists titled "...options...:")
-- say about each option: `{[name] = {desc, value, term}}` (value: the
-- placeholder of its argument, e.g. "PATH").
-- @tparam string text
-- @treturn table
local function option_docs(text)
  local docs = {}
  for _, b in ipairs(parse(text)) do
    if b.kind == "list" and b.title and b.title:lower():find("options", 1, true) then
      for _, it in ipairs(b.items) do
        local names, value = term_options(it.term)
        for _, name in ipairs(names or {}) do
          docs[name] = { desc = it.desc, value = value, term = it.term }
        end
      end
    end
  end
  return docs
end

-- "-q" before "--query"; then by name.
local function by_name(a, b)
  local la, lb = a:sub(2, 2) == "-", b:sub(2, 2) == "-"
  if la ~= lb then return lb end
  return a < b
end

--- The options a command accepts (the global ones too, as the parser merges
-- them), grouped by what they set (aliases together), in a stable order:
-- a list of `{names, key, arg, many, complete, desc, value, global}`; desc
-- and value come from the command's help (else the global help), nil when
-- neither documents the option. `cmd` nil: the global options alone.
-- @tparam table describe the CLI description (module comment)
-- @tparam[opt] table cmd a command table
-- @treturn table
local function options_of(describe, cmd)
  local spec = {}
  for name, o in pairs(describe.global) do spec[name] = { o, true } end
  for name, o in pairs(cmd and cmd.options or {}) do spec[name] = { o, false } end
  local docs = option_docs(describe.global_help)
  for name, d in pairs(cmd and option_docs(cmd.help) or {}) do docs[name] = d end
  local groups, by_key = {}, {}
  local names = {}
  for name in pairs(spec) do names[#names + 1] = name end
  sort(names, by_name)
  for _, name in ipairs(names) do
    local o, global = spec[name][1], spec[name][2]
    local key = o[1] .. (o.arg and "=" or "")
    local g = by_key[key]
    if not g then
      g = { names = {}, key = o[1], arg = o.arg or false, many = o.many or false, complete = o.complete,
            global = global }
      by_key[key] = g
      groups[#groups + 1] = g
    end
    g.names[#g.names + 1] = name
    local d = docs[name]
    if d then g.desc, g.value = g.desc or d.desc, g.value or d.value end
  end
  sort(groups, function(a, b) return by_name(a.names[1], b.names[1]) end)
  return groups
end

-- ------------------------------------------------------------ the man page

-- Text for roff: backslashes, quotes and the dashes of options escaped, and
-- a line never starting with a control character.
local function esc(s)
  s = s:gsub("\\", "\\e"):gsub("`", "\\(ga"):gsub("'", "\\(aq")
  -- a dash that starts a word (an option, "-", "--") is a minus sign; one
  -- inside a word ("six-digit") stays a hyphen
  local text = s
  s = text:gsub("()(%-+)", function(at, d)
    if at > 1 and text:sub(at - 1, at - 1):match("[%w%.]") then return d end
    return (d:gsub("%-", "\\-"))
  end)
  if s:match("^[%.']") then s = "\\&" .. s end
  return s
end

-- A list term in bold (options bold, their value italic).
local function term_roff(term)
  local names, value = term_options(term)
  if not names then return "\\fB" .. esc(term) .. "\\fR" end
  local parts = {}
  for _, n in ipairs(names) do parts[#parts + 1] = "\\fB" .. esc(n) .. "\\fR" end
  local s = concat(parts, ", ")
  if value then s = s .. " \\fI" .. esc(value) .. "\\fR" end
  return s
end

-- The roff of one block (usage: .SY/.YS synopses; text: .PP; list: .TP
-- items after a title paragraph; verbatim: .nf/.fi).
local function block_roff(b, out)
  if b.kind == "usage" then
    for _, s in ipairs(b.synopses) do
      local cmd, rest = s:match("^(smugoauth%s+[%w%-]+)%s*(.*)$")
      if not cmd then cmd, rest = "smugoauth", s:gsub("^smugoauth%s*", "") end
      out[#out + 1] = '.SY "' .. esc(cmd) .. '"'
      if rest ~= "" then out[#out + 1] = esc(rest) end
      out[#out + 1] = ".YS"
    end
  elseif b.kind == "text" then
    out[#out + 1] = ".PP"
    out[#out + 1] = esc(b.text)
  elseif b.kind == "list" then
    if b.title then
      out[#out + 1] = ".PP"
      out[#out + 1] = esc(b.title)
    end
    for _, it in ipairs(b.items) do
      out[#out + 1] = ".TP"
      out[#out + 1] = term_roff(it.term)
      out[#out + 1] = it.desc ~= "" and esc(it.desc) or "\\&"
    end
  else
    out[#out + 1] = ".PP"
    out[#out + 1] = ".nf"
    for _, l in ipairs(b.lines) do out[#out + 1] = esc(l) end
    out[#out + 1] = ".fi"
  end
end

-- The roff of a help text; a list titled as the section it is in ("Exit
-- status:" in EXIT STATUS) loses its title.
local function text_roff(text, out, section)
  for _, b in ipairs(parse(text)) do
    if section and b.kind == "list" and b.title and b.title:lower() == section:lower() .. ":" then
      b.title = nil
    end
    block_roff(b, out)
  end
end

--- The man page (roff, man macros) of the CLI description: NAME, SYNOPSIS,
-- DESCRIPTION, COMMANDS (each command's help), GLOBAL OPTIONS, then the
-- description's sections. The same description gives the same bytes (no
-- date): the page in the tree is checked to be current.
-- @tparam table describe the CLI description (module comment)
-- @treturn string
local function man(describe)
  local out = {
    ".\\\" " .. describe.name .. "(1): generated by `" .. describe.name ..
      " help --man` from the command's own tables and help texts; do not edit.",
    ('.TH %s 1 "" "%s" "User Commands"'):format(describe.name:upper(), esc(describe.version)),
    ".\\\" paths and options are never hyphenated, lines never stretched",
    ".nh",
    ".ad l",
    ".SH NAME",
    esc(describe.name) .. " \\- " .. esc(describe.summary),
    ".SH SYNOPSIS",
    '.SY "' .. esc(describe.name) .. '"',
    "[\\fIglobal options\\fR] \\fICOMMAND\\fR [\\fIarguments\\fR]",
    ".YS",
    ".SH DESCRIPTION",
  }
  text_roff(describe.intro, out)
  out[#out + 1] = ".SH COMMANDS"
  for _, cmd in ipairs(describe.commands) do
    out[#out + 1] = ".SS " .. esc(cmd.name)
    text_roff(cmd.man_help or cmd.help, out)
  end
  out[#out + 1] = ".SH GLOBAL OPTIONS"
  text_roff(describe.global_help, out)
  for _, sec in ipairs(describe.sections or {}) do
    out[#out + 1] = ".SH " .. esc(sec[1])
    text_roff(sec[2], out, sec[1])
  end
  return concat(out, "\n") .. "\n"
end

return {
  parse = parse,
  term_options = term_options,
  option_docs = option_docs,
  options_of = options_of,
  man = man,
  esc = esc,
}
