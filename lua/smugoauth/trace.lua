--- Request tracing for debugging: each request and response line with
-- headers, timing and the signature base string. Every secret is redacted:
-- a tracer knows the secret values of what it traces (the consumer secret,
-- token secrets, verifiers, each request's signature and cookie values) and
-- removes each of them in every encoding (raw, percent-encoded once, twice
-- and three times, form-encoded, JSON-escaped: see util.secret_patterns), on
-- top of the name-based rules of util.redact (oauth_signature,
-- oauth_token_secret and oauth_verifier values, wherever they appear by name).
-- The same redaction serves error messages, traced or not (`tracer:redact`).
-- Enabled by the `debug` option (true: stderr; a function: called per line)
-- or by the environment variable SMUGOAUTH_DEBUG=1.
-- @module smugoauth.trace
local core = require "smugoauth.core"
local util = require "smugoauth.util"

local methods = {}
local mt = { __name = "smugoauth.Tracer", __index = methods,
             __tostring = function() return "smugoauth.Tracer" end }   -- never its secrets

-- How many secrets a tracer remembers from past calls (tracer:remember).
local REMEMBER = 32

-- A tracer emitting through emit (nil: off) that redacts the values given,
-- and those of its parent (a tracer made by `with` sees what its parent
-- learns later).
local function make(emit, values, parent)
  return setmetatable({ emit = emit, enabled = emit ~= nil, _values = values, _parent = parent }, mt)
end

-- The n arguments that are non-empty strings.
local function collect(n, ...)
  local values = {}
  for i = 1, n do
    local v = select(i, ...)
    if type(v) == "string" and v ~= "" then values[#values + 1] = v end
  end
  return values
end

--- A tracer: `trace.new(debug [, secret...])`.
--   debug    nil (default): on when SMUGOAUTH_DEBUG is set and not "0";
--            false: off; true: lines to stderr; a function(line): called per line
--   secret   strings redacted from every line and from `tracer:redact(s)`
--            (nil and "" are skipped)
local function new(debug, ...)
  if debug == nil then
    local env = os.getenv("SMUGOAUTH_DEBUG")
    debug = env ~= nil and env ~= "" and env ~= "0"
  end
  local emit
  if type(debug) == "function" then
    emit = debug
  elseif debug then
    emit = function(line) io.stderr:write(line, "\n") end
  end
  local self = make(emit, collect(select("#", ...), ...))
  self._pinned = #self._values             -- never forgotten by remember
  return self
end

--- The same output, redacting these secrets as well: `tracer:with(secret...)`
-- (nil and empty values are skipped).
function methods:with(...)
  return make(self.emit, collect(select("#", ...), ...), self)
end

--- Keep redacting these secrets from now on, here and in every tracer made
-- from this one by `with`: the secrets of a finished OAuth flow (request
-- token secret, verifier), which a later line might still show. The last 32
-- are kept.
function methods:remember(...)
  local values, pinned = self._values, self._pinned or 0
  for _, v in ipairs(collect(select("#", ...), ...)) do
    values[#values + 1] = v
    if #values > pinned + REMEMBER then table.remove(values, pinned + 1) end
  end
  self._patterns = nil
end

--- s with every secret this tracer knows removed (by value and by name).
function methods:redact(s)
  local t = self
  s = tostring(s)
  while t do
    if not t._patterns then t._patterns = util.secret_patterns(t._values) end
    s = util.redact_values(s, t._patterns)
    t = t._parent
  end
  return util.redact(s)
end

local SECRET_HEADERS = { cookie = true, ["set-cookie"] = true }

--- Emit one line (prefixed "smugoauth: ", redacted), when tracing.
function methods:line(s)
  if self.emit then self.emit("smugoauth: " .. self:redact(s)) end
end

-- The cookie values of a Cookie header ("a=1; b=2") or a Set-Cookie one
-- ("a=1; Path=/": the first pair only).
local function cookie_values(value, only_first)
  local out = {}
  for pair in value:gmatch("[^;]+") do
    local v = pair:match("^%s*[^=]*=%s*(.-)%s*$")
    if v then out[#out + 1] = v end
    if only_first then break end
  end
  return out
end

--- Trace a request; returns the tracer for what follows it (its response,
-- its failure), which also knows the request's own secrets: the signature
-- in its Authorization header and the values of its cookies.
function methods:request(method, url, headers, base_string)
  if not self.emit then return self end
  local extra = {}
  for _, h in ipairs(headers or {}) do
    local name, value = h:match("^([^:]+):%s*(.*)$")
    local lname = name and name:lower()
    if lname == "authorization" then
      local sig = value:match('oauth_signature="([^"]*)"')
      if sig then extra[#extra + 1] = core.percent_decode(sig, false) end
    elseif lname == "cookie" then
      for _, v in ipairs(cookie_values(value)) do extra[#extra + 1] = v end
    end
  end
  local tr = #extra > 0 and self:with(table.unpack(extra)) or self
  tr:line(("> %s %s"):format(method, url))
  for _, h in ipairs(headers or {}) do
    local name = h:match("^([^:]+)")
    if name and SECRET_HEADERS[name:lower()] then h = name .. ": REDACTED" end
    tr:line("> " .. h)
  end
  if base_string then tr:line("  base string: " .. base_string) end
  return tr
end

--- Trace a response (the values of cookies it sets are redacted throughout).
function methods:response(res)
  if not self.emit then return end
  local extra = {}
  for _, h in ipairs(res.header_list or {}) do
    if h[1]:lower() == "set-cookie" then
      for _, v in ipairs(cookie_values(h[2], true)) do extra[#extra + 1] = v end
    end
  end
  local tr = #extra > 0 and self:with(table.unpack(extra)) or self
  tr:line(("< %d (%.1f ms, %d bytes%s)"):format(res.status, (res.time or 0) * 1000, res.written or #res.body,
    res.new_connections == 0 and ", reused connection" or ""))
  for _, h in ipairs(res.header_list or {}) do
    local v = SECRET_HEADERS[h[1]:lower()] and "REDACTED" or h[2]
    tr:line("< " .. h[1] .. ": " .. v)
  end
end

--- Trace a request's failure (an error object).
function methods:failure(err)
  if self.emit then self:line("! " .. tostring(err)) end
end

--- Trace a note about what the library does (e.g. a retry).
function methods:note(s)
  if self.emit then self:line("  " .. s) end
end

return {
  new = new,
  off = make(nil, {}),        -- a tracer that emits nothing (and redacts by name only)
  methods = methods,
  mt = mt,
}
