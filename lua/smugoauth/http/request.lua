--- smugoauth.http.request: the request a handler of smugoauth.http.server
-- gets. A parsed head (smugoauth.http.codec) with `peer`, `scheme` and, once
-- read, `body`; the fields below are computed on first use:
--
--  - `params`: map of the decoded query names to their first value;
--  - `params_list`: the decoded query as `{name, value}` pairs, in order;
--  - `cookies`: map of cookie name to raw value (smugoauth.http.cookie.parse);
--  - `form()` (or `req:form()`): the decoded urlencoded body, map and list;
--    empty when the Content-Type says the body is something else.
-- @module smugoauth.http.request
local core = require "smugoauth.core"
local cookie = require "smugoauth.http.cookie"

local find, lower = string.find, string.lower
local rawset, setmetatable = rawset, setmetatable
local parse_form = core.parse_form

--- Decode an `application/x-www-form-urlencoded` string (a query or a form
-- body; `+` is a space).
-- @tparam string|nil s
-- @treturn table map of name to its first value
-- @treturn table array of `{name, value}` pairs, in order
local function parse_query(s)
  if s == nil or s == "" then return {}, {} end
  local list = parse_form(s)
  local map = {}
  for i = 1, #list do
    local p = list[i]
    if map[p[1]] == nil then map[p[1]] = p[2] end
  end
  return map, list
end

-- The fields computed on first use: name -> function(req) -> value.
local lazy = {}

function lazy.params(req)
  local map, list = parse_query(req.query)
  rawset(req, "params_list", list)
  return map
end

function lazy.params_list(req)
  local _ = req.params
  return req.params_list
end

function lazy.cookies(req)
  return cookie.parse(req.headers.cookie)
end

function lazy.form(req)
  local map, list
  return function()
    if not map then
      local ct = req.headers["content-type"]
      if ct == nil or find(lower(ct), "^application/x%-www%-form%-urlencoded") then
        map, list = parse_query(req.body)
      else
        map, list = {}, {}
      end
    end
    return map, list
  end
end

-- The request's methods are its lazy fields: `__index` computes one, once.
local mt = {__name = "smugoauth.HttpRequest", __index = function(req, k)
  local f = lazy[k]
  if f then
    local v = f(req)
    rawset(req, k, v)
    return v
  end
end}

--- Make a request of a parsed head (the table itself becomes the request).
--
-- Options: the head as `codec` parses it (`method`, `target`, `version`,
-- `path`, `query`, `headers`), plus:
--
--  - `peer` (string): `"ip:port"` of the client (`"[ip]:port"` for IPv6).
--  - `scheme` (string): `"http"` or `"https"`.
-- @tparam table head
-- @tparam string peer
-- @tparam string scheme
-- @return the request
local function new(head, peer, scheme)
  head.peer, head.scheme = peer, scheme
  return setmetatable(head, mt)
end

return {
  new = new,
  mt = mt,
  parse_query = parse_query,
}
