-- tools/rockspec_check.lua ROCKSPEC -- fail when the rockspec's build table
-- drifts from the tree: every lua/**/*.lua must be a module under its
-- dotted name (init.lua: the folder's name) and every csrc/**/*.c a source
-- of smugoauth.core, and nothing listed may be missing.
local path = assert(arg[1], "usage: lua5.4 tools/rockspec_check.lua ROCKSPEC")
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
table.sort(problems)
for _, p in ipairs(problems) do io.stderr:write("rockspec: ", p, "\n") end
if #problems > 0 then os.exit(1) end
print("rockspec: every module and C source listed")
