--- smugoauth.loop.timers: the timers of a loop, a binary heap ordered by
-- time (then by creation), with removal of any entry in O(log n). An entry
-- is a table with `at` (monotonic seconds) and `seq`; the heap keeps `pos`.
-- @module smugoauth.loop.timers
local function heap_push(h, e)
  local n = h.n + 1
  h.n = n
  local i = n
  while i > 1 do
    local p = i // 2
    local pe = h[p]
    if pe.at < e.at or (pe.at == e.at and pe.seq < e.seq) then break end
    h[i], pe.pos = pe, i
    i = p
  end
  h[i], e.pos = e, i
end

-- Move e (at i) down until both children come later.
local function sift_down(h, e, i)
  local n = h.n
  while true do
    local c = 2 * i
    if c > n then break end
    local ce = h[c]
    if c < n then
      local r = h[c + 1]
      if r.at < ce.at or (r.at == ce.at and r.seq < ce.seq) then c, ce = c + 1, r end
    end
    if e.at < ce.at or (e.at == ce.at and e.seq < ce.seq) then break end
    h[i], ce.pos = ce, i
    i = c
  end
  h[i], e.pos = e, i
end

-- Take e out of the heap (a timer that is no longer wanted).
local function heap_remove(h, e)
  local i = e.pos
  if not i or h[i] ~= e then return end
  local n = h.n
  local last = h[n]
  h[n], h.n, e.pos = nil, n - 1, nil
  if i == n then return end
  h[i], last.pos = last, i
  local p = i // 2                               -- up, or down
  if i > 1 and (last.at < h[p].at or (last.at == h[p].at and last.seq < h[p].seq)) then
    h[i] = nil
    while i > 1 do
      p = i // 2
      local pe = h[p]
      if pe.at < last.at or (pe.at == last.at and pe.seq < last.seq) then break end
      h[i], pe.pos = pe, i
      i = p
    end
    h[i], last.pos = last, i
  else
    sift_down(h, last, i)
  end
end

local function heap_pop(h)
  local top, n = h[1], h.n
  local last = h[n]
  h[n], h.n = nil, n - 1
  if n > 1 then sift_down(h, last, 1) end
  top.pos = nil
  return top
end

return {
  push = heap_push,
  pop = heap_pop,
  remove = heap_remove,
}
