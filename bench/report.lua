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

-- chart: each ratio as a bar, its target as a point (log scale)
local dat = assert(io.open(outdir .. "/report.dat", "w"))
local n = 0
for _, r in ipairs(rows) do
  local target = tonumber(tostring(r.target or ""):match("([%d.]+)"))
  if type(r.ratio) == "number" and r.ratio > 0 then
    n = n + 1
    local label = (s(r.bench) .. ": " .. s(r.what)):gsub('"', "'")
    if #label > 60 then label = label:sub(1, 57) .. "..." end
    dat:write(string.format("%d \"%s\" %.6g %s\n", n, label,
      r.ratio, target and string.format("%.6g", target) or "NaN"))
  end
end
dat:close()
if n > 0 and os.execute("command -v gnuplot >/dev/null 2>&1") then
  local gp = assert(io.open(outdir .. "/report.gp", "w"))
  gp:write(([[
set terminal pngcairo noenhanced size 1200,%d font "sans,10"
set output "%s/report.png"
set title "smugoauth benchmarks: ratio (bar) and target (point)"
set logscale x
set xlabel "ratio (log scale)"
set yrange [0.5:%d.5]
set ytics nomirror
set style fill solid 0.6
set grid xtics
unset key
plot "%s/report.dat" using (sqrt($3)):1:(1):($3):($1-0.35):($1+0.35):ytic(2) \
       with boxxyerrorbars lc rgb "#4477aa", \
     "" using 4:1 with points pt 7 ps 1.5 lc rgb "#cc3311"
]]):format(120 + 40 * n, outdir, n, outdir))
  gp:close()
  if os.execute("gnuplot " .. outdir .. "/report.gp 2>/dev/null") then
    print("chart: " .. outdir .. "/report.png")
  else
    print("chart: gnuplot failed")
  end
end
