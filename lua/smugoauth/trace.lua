--- Request tracing for debugging: each request and response line with
-- headers, timing and the signature base string. Every secret is redacted:
-- oauth_signature, token secrets, verifiers, cookies.
-- Enabled by the `debug` option (true: stderr; a function: called per line)
-- or by the environment variable SMUGOAUTH_DEBUG=1.
-- @module smugoauth.trace
local util = require "smugoauth.util"

local M = {}

local Tracer = {}
Tracer.__index = Tracer

local function off() end

--- A tracer: `trace.new(debug)` with debug nil/false/true or a function(line).
function M.new(debug)
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
  return setmetatable({ emit = emit, enabled = emit ~= nil }, Tracer)
end

local SECRET_HEADERS = { cookie = true, ["set-cookie"] = true }

function Tracer:line(s)
  if self.emit then self.emit("smugoauth: " .. util.redact(s)) end
end

function Tracer:request(method, url, headers, base_string)
  if not self.emit then return end
  self.t0 = os.clock()
  self:line(("> %s %s"):format(method, url))
  for _, h in ipairs(headers or {}) do
    local name = h:match("^([^:]+)")
    if name and SECRET_HEADERS[name:lower()] then h = name .. ": REDACTED" end
    self:line("> " .. h)
  end
  if base_string then self:line("  base string: " .. base_string) end
end

function Tracer:response(res)
  if not self.emit then return end
  self:line(("< %d (%.1f ms, %d bytes%s)"):format(res.status, (res.time or 0) * 1000, #res.body,
    res.new_connections == 0 and ", reused connection" or ""))
  for _, h in ipairs(res.header_list or {}) do
    local v = SECRET_HEADERS[h[1]:lower()] and "REDACTED" or h[2]
    self:line("< " .. h[1] .. ": " .. v)
  end
end

function Tracer:failure(err)
  if self.emit then self:line("! " .. tostring(err)) end
end

function Tracer:note(s)
  if self.emit then self:line("  " .. s) end
end

M.off = setmetatable({ emit = nil, enabled = false, request = off, response = off,
                       failure = off, note = off, line = off }, Tracer)
return M
