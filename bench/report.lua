-- bench/report.lua -- turn the figures the benchmarks recorded (JSON lines in
-- bench/out/results.jsonl) into bench/out/report.md (a table of each figure
-- against its alternative and its floor, with the ratio and the target) and
-- bench/out/report.png (a chart of the ratios against their targets, gnuplot).
-- usage: lua5.4 bench/report.lua [results.jsonl] [outdir]
local cjson = require "cjson"

local input = arg[1] or "bench/out/results.jsonl"
local outdir = arg[2] or "bench/out"

local rows = {}
for line in io.lines(input) do
  if line:match("%S") then rows[#rows + 1] = cjson.decode(line) end
end

local function fmt(v)
  if v == nil or v == cjson.null then return "" end
  if type(v) ~= "number" then return tostring(v) end
  if v >= 100 then return string.format("%.0f", v) end
  if v >= 10 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end

local function s(v) return (v == nil or v == cjson.null) and "" or tostring(v) end

local md = {
  "| benchmark | figure | smugoauth | alternative | floor | ratio | target | |",
  "|---|---|---:|---:|---:|---:|---|---|",
}
for _, r in ipairs(rows) do
  local alt = r.alt ~= nil and r.alt ~= cjson.null and (fmt(r.alt) .. " (" .. s(r.alt_name) .. ")") or ""
  local floor = r.floor ~= nil and r.floor ~= cjson.null
    and (fmt(r.floor) .. " (" .. s(r.floor_name) .. ")") or ""
  md[#md + 1] = string.format("| %s | %s | %s | %s | %s | %s %s | %s | %s |",
    s(r.bench), s(r.what), fmt(r.ours), alt, floor, fmt(r.ratio), s(r.ratio_desc), s(r.target),
    r.ok == true and "ok" or (r.ok == false and "**missed**" or ""))
end
local f = assert(io.open(outdir .. "/report.md", "w"))
f:write(table.concat(md, "\n"), "\n")
f:close()
print(table.concat(md, "\n"))

-- chart: every bar reads "higher is better", its target marked. A ratio
-- whose target is "<= x" (lower is better: floor/ours, curl/ours, a time
-- ratio) is drawn inverted (1/ratio against 1/x: a fraction of the floor, or
-- times as fast as the alternative); a figure with a limit and no ratio
-- ("< 32" MB) is drawn as headroom (limit/figure, target 1).
local function better(r)
  local target = tostring(r.target or "")
  local op, t = target:match("^%s*([<>]=?)%s*([%d.]+)")
  t = tonumber(t)
  local ratio, ours = tonumber(r.ratio), tonumber(r.ours)
  if ratio and ratio > 0 then
    local desc = s(r.ratio_desc)
    if op and op:sub(1, 1) == "<" then
      local a, b = desc:match("^([^/%s]+)/([^/%s]+)")
      local flipped = "1/(" .. desc .. ")"
      if a and desc:find("(time)", 1, true) then flipped = a .. "/" .. b .. " (speed)"
      elseif a then flipped = b .. "/" .. a end
      return 1 / ratio, t and 1 / t, flipped
    end
    return ratio, (op and op:sub(1, 1) == ">") and t or nil, desc
  elseif ours and ours > 0 and t and op and op:sub(1, 1) == "<" then
    return t / ours, 1, "headroom: limit/figure"
  end
end

local dat = assert(io.open(outdir .. "/report.dat", "w"))
local n, lo = 0, 1
for _, r in ipairs(rows) do
  local v, target = better(r)
  if v then lo = math.min(lo, v, target or v) end
end
local xmin = 10 ^ math.floor(math.log(lo / 2, 10))     -- every bar starts here
for _, r in ipairs(rows) do
  local v, target, desc = better(r)
  if v then
    n = n + 1
    local label = (s(r.bench) .. ": " .. s(r.what)):gsub('"', "'")
    if #label > 58 then label = label:sub(1, 55) .. "..." end
    label = label .. " [" .. desc:gsub('"', "'") .. "]"
    local met = target == nil or v >= target
    dat:write(string.format("%d \"%s\" %.6g %s %s\n", n, label, v,
      target and string.format("%.6g", target) or "NaN", met and "2263091" or "13382417"))
  end
end
dat:close()
if n > 0 and os.execute("command -v gnuplot >/dev/null 2>&1") then
  local gp = assert(io.open(outdir .. "/report.gp", "w"))
  gp:write(([[
set terminal pngcairo noenhanced size 1300,%d font "sans,10"
set output "%s/report.png"
set title "smugoauth benchmarks, higher is better: green = target met, red = missed, black mark = target"
set logscale x
set xrange [%g:*]
set xlabel "times better than the alternative, or fraction of the floor (log scale)"
set yrange [0.5:%d.5]
set ytics nomirror
set style fill solid 0.6
set grid xtics
unset key
plot "%s/report.dat" using (sqrt(%g*$3)):1:(%g):($3):($1-0.35):($1+0.35):5:ytic(2) \
       with boxxyerrorbars lc rgb variable, \
     "" using 4:1:($1-0.45):($1+0.45) with yerrorbars pt 0 lw 3 lc rgb "black"
]]):format(120 + 40 * n, outdir, xmin, n, outdir, xmin, xmin))
  gp:close()
  if os.execute("gnuplot " .. outdir .. "/report.gp 2>/dev/null") then
    print("chart: " .. outdir .. "/report.png")
  else
    print("chart: gnuplot failed")
  end
end
