--- smugoauth.apps.web.render: what the web app's `/test` page shows for an
-- API answer: the JSON pretty-printed as smugoauth.json does it (2-space
-- indentation, sorted keys, "/" unescaped), or the body as it came, cut at a
-- byte limit (never inside a UTF-8 sequence), with the work and the memory
-- proportional to the limit however deep the value is nested.
-- @module smugoauth.apps.web.render
local cjson = require "cjson.safe"
local html = require "smugoauth.http.html"

local byte, format, gsub, sub = string.byte, string.format, string.gsub, string.sub
local concat, sort = table.concat, table.sort
local pairs, ipairs, type, tostring, tonumber, getmetatable =
  pairs, ipairs, type, tostring, tonumber, getmetatable

--- s cut to at most n bytes, not inside a UTF-8 sequence.
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

--- json.pretty's text for a decoded value, stopping once it would pass limit
-- bytes.
-- @param v a decoded JSON value
-- @tparam integer limit
-- @treturn string the text
-- @treturn boolean whether it was cut
local function json(v, limit)
  local out, n, len = {}, 0, 0
  local indents = { [0] = "" }
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
      ind2 = ind .. "  "
      indents[depth + 1] = ind2
    end
    local t = type(x)
    if t == "table" and x ~= cjson.null then
      local arr, cnt = is_array(x)
      if arr and (cnt > 0 or getmetatable(x) == cjson.array_mt) then
        if not emit("[") then return false end
        for i = 1, cnt do
          if not emit((i > 1 and ",\n" or "\n") .. ind2) or not walk(x[i], depth + 1) then
            return false
          end
        end
        return emit((cnt > 0 and "\n" .. ind or "") .. "]")
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
        if not emit((i > 1 and ",\n" or "\n") .. ind2 .. quote(k) .. ": ") or
           not walk(val, depth + 1) then
          return false
        end
      end
      return emit("\n" .. ind .. "}")
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

--- The text of an API body: the JSON pretty-printed, or the body as it is,
-- at most limit bytes.
-- @tparam string body
-- @tparam integer limit
-- @treturn string
-- @treturn boolean whether it was cut
local function text(body, limit)
  local v = cjson.decode(body)
  if v ~= nil then return json(v, limit) end
  if #body > limit then return cut_utf8(body, limit), true end
  return body, false
end

--- The HTML of a rendered body in `<pre id=...>` (escaped), after a
-- `<p id="cut">` note when it was cut.
-- @tparam string id
-- @tparam string body
-- @tparam integer limit
-- @treturn string
local function pre(id, body, limit)
  local t, cut = text(body, limit)
  local note = ""
  if cut then
    note = format("<p id=\"cut\">The answer is cut: only the first %d bytes of its text are shown " ..
      "(the answer was %d bytes).</p>\n", #t, #body)
  end
  return note .. "<pre id=\"" .. id .. "\">" .. html.escape(t) .. "</pre>"
end

return {
  cut_utf8 = cut_utf8,
  json = json,
  text = text,
  pre = pre,
}
