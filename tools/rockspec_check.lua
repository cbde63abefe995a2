-- tools/rockspec_check.lua ROCKSPEC [--write] -- fail when the rockspec's
-- build table drifts from the tree: every lua/**/*.lua must be a module under
-- its dotted name (init.lua: the folder's name) and every csrc/**/*.c a
-- source of smugoauth.core, and nothing listed may be missing; the man page
-- and the completion scripts must exist and be shipped (copy_directories).
-- With --write,
-- rewrite the rockspec's list of Lua modules from the tree first.
local path = assert(arg[1], "usage: lua5.4 tools/rockspec_check.lua ROCKSPEC [--write]")
local function lua_modules()
  local out = {}
  local p = assert(io.popen("find lua -name '*.lua' | sort"))
  for f in p:lines() do
    out[#out + 1] = { f:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", "."), f }
  end
  p:close()
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

if arg[2] == "--write" then
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  local rows = {}
  for _, m in ipairs(lua_modules()) do rows[#rows + 1] = ('    ["%s"] = "%s",\n'):format(m[1], m[2]) end
  local a = assert(text:find('    ["smugoauth"] = "lua/smugoauth.lua",', 1, true), "no module list")
  local b = assert(text:find("  },\n  install", a, true), "no end of the module list")
  text = text:sub(1, a - 1) .. table.concat(rows) .. text:sub(b)
  f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local spec = {}
assert(loadfile(path, "t", spec))()
local modules = spec.build.modules

local function files(dir, ext)
  local out = {}
  local p = assert(io.popen("find " .. dir .. " -name '*." .. ext .. "' | sort"))
  for f in p:lines() do out[#out + 1] = f end
  p:close()
  return out
end

local problems = {}
local want = { ["smugoauth.core"] = true }
for _, f in ipairs(files("lua", "lua")) do
  local name = f:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  want[name] = true
  if modules[name] ~= f then
    problems[#problems + 1] = ("module %s should be %q (rockspec has %s)"):format(name, f, tostring(modules[name]))
  end
end
for name in pairs(modules) do
  if not want[name] then problems[#problems + 1] = "module " .. name .. " has no file under lua/" end
end
local listed = {}
for _, s in ipairs(modules["smugoauth.core"].sources) do listed[s] = true end
for _, f in ipairs(files("csrc", "c")) do
  if not listed[f] then problems[#problems + 1] = "C source " .. f .. " is not in smugoauth.core's sources" end
  listed[f] = nil
end
for f in pairs(listed) do problems[#problems + 1] = "C source " .. f .. " is listed but does not exist" end
-- the generated files (man page, completion scripts) are shipped
local copied = {}
for _, d in ipairs(spec.build.copy_directories or {}) do copied[d] = true end
for _, f in ipairs { "man/smugoauth.1", "completions/smugoauth.bash", "completions/_smugoauth" } do
  local probe = io.open(f, "rb")
  if not probe then problems[#problems + 1] = f .. " does not exist (make generated)" else probe:close() end
  if not copied[f:match("^[^/]+")] then
    problems[#problems + 1] = f .. ": its folder is not in build.copy_directories"
  end
end
table.sort(problems)
for _, p in ipairs(problems) do io.stderr:write("rockspec: ", p, "\n") end
if #problems > 0 then
  io.stderr:write("rockspec: (Lua modules: lua5.4 tools/rockspec_check.lua ", path, " --write)\n")
  os.exit(1)
end
print("rockspec: every module and C source listed")
