--- JSON helpers on lua-cjson: decoding, and a stable pretty printer that
-- keeps "/" unescaped and sorts object keys (for people reading terminals).
-- @module smugoauth.json
local cjson = require "cjson.safe"

--- Compact encoding (lua-cjson).
local function encode(v)
  return cjson.encode(v)
end

local byte, sub, gsub = string.byte, string.sub, string.gsub
local concat, sort = table.concat, table.sort

--- `s` cut to at most `n` bytes, never inside a UTF-8 sequence.
-- @tparam string s
-- @tparam integer n
-- @treturn string
local function cut_utf8(s, n)
  if #s <= n then return s end
  local i = n + 1                            -- the first byte left out
  local k = 0
  while k < 3 and i > 1 do                   -- back off over continuation bytes
    local b = byte(s, i)
    if b < 0x80 or b >= 0xC0 then break end
    i, k = i - 1, k + 1
  end
  return sub(s, 1, i - 1)
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do if t[i] == nil then return false end end
  return true, n
end

local function quote(v)
  return (gsub(cjson.encode(v), "\\/", "/"))
end

--- Pretty-print a decoded value: 2-space indentation, sorted keys, "/" left
-- as is. With `limit`, stop once the text would pass that many bytes (never
-- inside a UTF-8 sequence): the work and the memory stay proportional to the
-- limit however large or deeply nested the value is.
-- An empty table is written `[]` (an empty list, as the summaries of the
-- CLI hold), unless lua-cjson's object marker says otherwise.
-- @param v a decoded JSON value
-- @tparam[opt] integer limit bytes (default: no limit)
-- @tparam[opt] boolean flat one line: no newlines nor indentation (`line`)
-- @treturn string the text
-- @treturn boolean whether it was cut
local function pretty(v, limit, flat)
  limit = limit or math.huge
  local out, n, len = {}, 0, 0
  local indents = { [0] = "" }
  local NL, STEP, COLON = "\n", "  ", ": "
  if flat then NL, STEP, COLON = "", "", ":" end
  local function emit(piece)
    local room = limit - len
    if #piece > room then
      n = n + 1
      out[n] = cut_utf8(piece, room)
      return false
    end
    n = n + 1
    out[n] = piece
    len = len + #piece
    return true
  end
  local function walk(x, depth)
    local ind = indents[depth]
    local ind2 = indents[depth + 1]
    if not ind2 then
      ind2 = ind .. STEP
      indents[depth + 1] = ind2
    end
    local t = type(x)
    if t == "table" and x ~= cjson.null then
      local arr, cnt = is_array(x)
      if arr and (cnt > 0 or getmetatable(x) == cjson.array_mt) then
        if not emit("[") then return false end
        for i = 1, cnt do
          if not emit((i > 1 and "," or "") .. NL .. ind2) or not walk(x[i], depth + 1) then
            return false
          end
        end
        return emit((cnt > 0 and NL .. ind or "") .. "]")
      elseif arr then
        return emit("{}")
      end
      local keys = {}
      for k in pairs(x) do keys[#keys + 1] = tostring(k) end
      sort(keys)
      if not emit("{") then return false end
      for i, k in ipairs(keys) do
        local val = x[k]
        if val == nil then val = x[tonumber(k)] end
        if not emit((i > 1 and "," or "") .. NL .. ind2 .. quote(k) .. COLON) or
           not walk(val, depth + 1) then
          return false
        end
      end
      return emit(NL .. ind .. "}")
    elseif t == "string" then
      return emit(quote(x))
    elseif x == cjson.null or x == nil then
      return emit("null")
    end
    return emit(cjson.encode(x) or tostring(x))
  end
  local whole = walk(v, 0)
  return concat(out), not whole
end

--- The pretty printer's text on one line (sorted keys, "/" as is, an
-- empty table `[]`): what the CLI prints when JSON is not for a terminal.
-- @param v a decoded JSON value
-- @treturn string
local function line(v)
  return (pretty(v, nil, true))
end

--- Compact, but with "/" left as is.
local function compact(v)
  local s = cjson.encode(v)
  return s and (s:gsub("\\/", "/"))
end

return {
  null = cjson.null,
  decode = cjson.decode,
  encode = encode,
  pretty = pretty,
  cut_utf8 = cut_utf8,
  compact = compact,
  line = line,
}
