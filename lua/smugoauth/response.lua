--- Responses, and the classification of what came back for a request:
-- a transport failure, a non-2xx answer (an OAuth problem, with the
-- difference between our signature base string and the provider's
-- debug_sbs), or a response.
-- @module smugoauth.response
local core = require "smugoauth.core"
local cjson = require "cjson.safe"
local errors = require "smugoauth.errors"
local util = require "smugoauth.util"
local trace = require "smugoauth.trace"

local methods = {}
local mt = { __name = "smugoauth.Response", __index = methods }

--- A response from the raw result of the C client (`http:request`).
-- Fields: status, headers (lower-case names; repeats joined by ", "),
-- header_list (the {name, value} pairs as received), body, time (seconds),
-- new_connections (0 when a kept-alive connection was reused); with a
-- response sink (the request options out, out_file, on_data): written (the
-- body bytes it got), size (the file's size: kept bytes included) and md5
-- (raw, with digest = "md5").
local function new(raw)
  return setmetatable({
    status = raw.status, headers = util.header_map(raw.headers), header_list = raw.headers,
    body = raw.body, time = raw.time, new_connections = raw.new_connections,
    written = raw.written, size = raw.size, md5 = raw.md5,
  }, mt)
end

--- The body decoded as JSON (cached), or nil, err (code "json").
function methods:json()
  if self._json ~= nil then return self._json end
  local v, jerr = cjson.decode(self.body)
  if v == nil then
    return nil, errors.new("json", "response body is not JSON (" .. tostring(jerr) .. ")",
      { status = self.status, body = self.body })
  end
  self._json = v
  return v
end

-- ---------------------------------------------------------------- errors

-- Errors are built with the tracer of their request (trace.lua), which knows
-- its secrets: every message goes through tr:redact, traced or not.

--- The error for a request that got no answer: msg and code from the C
-- client ("network", "tls", "timeout", "too_large", "io", "range").
local function transport_error(msg, code, method, url, tr)
  return errors.new(code or "network", (tr or trace.off):redact(msg),
    { url = errors.safe_url(url), method = method })
end

-- Tell where our base string and the provider's differ: method, URI, and
-- then each parameter present on one side only (secrets redacted by tr).
local function sbs_diff(ours, theirs, tr)
  if not ours or not theirs then return "" end
  if ours == theirs then return "\n  the provider's base string equals ours: the keys differ" end
  local function split(sbs)
    local m, u, p = sbs:match("^([^&]*)&([^&]*)&(.*)$")
    if not m then return nil end
    local params = {}
    for _, kv in ipairs(core.parse_form(core.percent_decode(p, false))) do
      params[#params + 1] = kv[1] .. "=" .. kv[2]
    end
    return m, core.percent_decode(u, false), params
  end
  local om, ou, op = split(ours)
  local tm, tu, tp = split(theirs)
  local lines = {}
  if not om or not tm then
    lines[1] = "  ours:   " .. ours
    lines[2] = "  theirs: " .. theirs
  else
    if om ~= tm then lines[#lines + 1] = ("  method: ours %s, theirs %s"):format(om, tm) end
    if ou ~= tu then lines[#lines + 1] = ("  URI: ours %s, theirs %s"):format(ou, tu) end
    local oset, tset = {}, {}
    for _, x in ipairs(op) do oset[x] = true end
    for _, x in ipairs(tp) do tset[x] = true end
    for _, x in ipairs(op) do
      if not tset[x] then lines[#lines + 1] = "  only in ours:   " .. x end
    end
    for _, x in ipairs(tp) do
      if not oset[x] then lines[#lines + 1] = "  only in theirs: " .. x end
    end
    if #lines == 0 then lines[1] = "  same parameters, different order or encoding" end
  end
  for i, line in ipairs(lines) do lines[i] = tr:redact(line) end
  return "\n  signature base strings differ:\n" .. table.concat(lines, "\n")
end

--- The error for a non-2xx response; OAuth problems get code "oauth". tr:
-- the request's tracer (its secrets are redacted from the message, the
-- problem and the base strings kept for debugging; body and headers stay as
-- received). base_string: ours, compared with the provider's debug_sbs.
local function http_error(res, method, url, base_string, tr)
  tr = tr or trace.off
  local problem, form = nil, nil
  local ctype = res.headers["content-type"] or ""
  if res.body:find("oauth_problem=", 1, true) and not ctype:find("json", 1, true) then
    form = {}
    for _, kv in ipairs(core.parse_form(res.body)) do form[kv[1]] = kv[2] end
    problem = form.oauth_problem
  end
  local wa = res.headers["www-authenticate"]
  if not problem and wa then problem = wa:match('oauth_problem="?([%w_]+)') end
  local what = ("%s %s answered %d"):format(method, errors.safe_url(url), res.status)
  local detail = ""
  if res.body ~= "" and ctype:find("json", 1, true) then
    local j = cjson.decode(res.body)
    if type(j) == "table" and type(j.Message) == "string" then detail = ": " .. j.Message end
  end
  if problem then problem = tr:redact(problem) end
  local fields = { status = res.status, body = res.body, headers = res.headers,
                   url = errors.safe_url(url), method = method, problem = problem, response = res }
  if problem then
    local msg = what .. ": oauth_problem=" .. problem
    if form and form.oauth_parameters_absent then
      msg = msg .. " (absent: " .. form.oauth_parameters_absent .. ")"
    end
    if problem == "signature_invalid" and form and form.debug_sbs then
      fields.debug_sbs = tr:redact(form.debug_sbs)
      fields.base_string = base_string and tr:redact(base_string)
      msg = msg .. sbs_diff(base_string, form.debug_sbs, tr)
    end
    return errors.new("oauth", tr:redact(msg), fields)
  end
  return errors.new("http", tr:redact(what .. detail), fields)
end

--- What came back for a request, as a response or an error:
-- `classify(raw, msg, code, method, url, base_string, tr)` with raw, msg,
-- code what the C client returned, base_string the one we signed and tr the
-- request's tracer (from tracer:request), which traces the outcome.
-- Returns the response (2xx), or nil, err (a transport failure, or a
-- non-2xx answer: code "http" or "oauth").
local function classify(raw, msg, code, method, url, base_string, tr)
  tr = tr or trace.off
  if not raw then
    local err = transport_error(msg, code, method, url, tr)
    tr:failure(err)
    return nil, err
  end
  local res = new(raw)
  tr:response(res)
  if res.status < 200 or res.status > 299 then
    return nil, http_error(res, method, url, base_string, tr)
  end
  return res
end

return {
  new = new,
  classify = classify,
  http_error = http_error,
  transport_error = transport_error,
  methods = methods,
  mt = mt,
}
