--- smugoauth.apps.web.render: what the web app's `/test` page shows for an
-- API answer: the JSON pretty-printed as smugoauth.json does it (2-space
-- indentation, sorted keys, "/" unescaped), or the body as it came, cut at a
-- byte limit (never inside a UTF-8 sequence), with the work and the memory
-- proportional to the limit however deep the value is nested.
-- @module smugoauth.apps.web.render
local cjson = require "cjson.safe"
local html = require "smugoauth.http.html"
local json = require "smugoauth.json"

local format = string.format

local cut_utf8 = json.cut_utf8

--- json.pretty's text for a decoded value, stopping once it would pass limit
-- bytes: smugoauth.json.pretty(v, limit).
local json_text = json.pretty

--- The text of an API body: the JSON pretty-printed, or the body as it is,
-- at most limit bytes.
-- @tparam string body
-- @tparam integer limit
-- @treturn string
-- @treturn boolean whether it was cut
local function text(body, limit)
  local v = cjson.decode(body)
  if v ~= nil then return json_text(v, limit) end
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
  json = json_text,
  text = text,
  pre = pre,
}
