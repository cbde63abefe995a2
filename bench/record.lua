-- bench/record.lua -- shared by the benchmarks: record one figure for the
-- report (`make bench` collects them into bench/out/report.md and a chart).
-- Each call appends a JSON line to $BENCH_OUT (when set):
--   record{ bench = "sign", what = "signatures/s", ours = 1e6, alt = 4e3,
--           alt_name = "python3-oauthlib", floor = 2e6, floor_name = "C HMAC loop",
--           ratio = 250, ratio_desc = "ours/alt", target = ">= 100", ok = true }
local M = {}

local function encode(v)
  local t = type(v)
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.6g", v)
  elseif t == "boolean" then return tostring(v)
  elseif v == nil then return "null" end
  return '"' .. tostring(v):gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function M.record(fields)
  local path = os.getenv("BENCH_OUT")
  if not path or path == "" then return end
  local keys = {}
  for k in pairs(fields) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = encode(k) .. ":" .. encode(fields[k]) end
  local f = assert(io.open(path, "a"))
  f:write("{", table.concat(parts, ","), "}\n")
  f:close()
end

return M
