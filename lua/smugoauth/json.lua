--- JSON helpers on lua-cjson: decoding, and a stable pretty printer that
-- keeps "/" unescaped and sorts object keys (for people reading terminals).
-- @module smugoauth.json
local cjson = require "cjson.safe"

--- Compact encoding (lua-cjson).
local function encode(v)
  return cjson.encode(v)
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do if t[i] == nil then return false end end
  return true, n
end

local function quote(s)
  return (cjson.encode(s):gsub("\\/", "/"))
end

local function pretty(v, indent, out, step)
  local t = type(v)
  if t == "table" and v ~= cjson.null then
    local arr, n = is_array(v)
    if arr and (n > 0 or getmetatable(v) == cjson.array_mt) then
      out[#out + 1] = "["
      for i = 1, n do
        out[#out + 1] = (i > 1 and ",\n" or "\n") .. indent .. step
        pretty(v[i], indent .. step, out, step)
      end
      out[#out + 1] = (n > 0 and "\n" .. indent or "") .. "]"
    elseif arr then
      out[#out + 1] = "{}"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        local val = v[k]
        if val == nil then val = v[tonumber(k)] end
        out[#out + 1] = (i > 1 and ",\n" or "\n") .. indent .. step .. quote(k) .. ": "
        pretty(val, indent .. step, out, step)
      end
      out[#out + 1] = "\n" .. indent .. "}"
    end
  elseif t == "string" then
    out[#out + 1] = quote(v)
  elseif v == cjson.null or v == nil then
    out[#out + 1] = "null"
  else
    out[#out + 1] = (cjson.encode(v))
  end
end

--- Pretty-print a decoded value with 2-space indentation and sorted keys.
local function pretty_print(v)
  local out = {}
  pretty(v, "", out, "  ")
  return table.concat(out)
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
  pretty = pretty_print,
  compact = compact,
}
