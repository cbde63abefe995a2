--- smugoauth.http.budget: what a request may send, decided on its head
-- alone: the app's declaration of the bodies its routes take (the server's
-- option `body`, capped by max_body) and the server-wide budget of body
-- bytes in flight (max_body_total), of which each connection holds a share
-- while it reads a body. Used by smugoauth.http.connection.
-- @module smugoauth.http.budget
local type, tostring, xpcall = type, tostring, xpcall
local traceback = debug.traceback
local tointeger = math.tointeger

--- The most body bytes req may carry, from the server's option `body` (capped
-- by max_body), or nil and a message when the app's declaration failed.
local function body_limit(srv, req)
  local decl, limit = srv.body, nil
  if decl == true then
    limit = true
  elseif type(decl) == "table" then
    limit = decl[req.path]
  elseif decl then
    local ok, v = xpcall(decl, traceback, req)
    if not ok then return nil, "body declaration error: " .. tostring(v) end
    limit = v
  end
  if limit == nil or limit == false then return 0 end
  if limit == true then return srv.max_body end
  limit = type(limit) == "number" and tointeger(limit)
  if not limit or limit < 0 then return nil, "invalid body limit from the body declaration" end
  return limit < srv.max_body and limit or srv.max_body
end

--- Give back the connection's share of max_body_total (once; also when the
-- connection is dropped half-way through a body).
local function release(c)
  local r = c.reserved
  if r > 0 then
    local srv = c.srv
    srv.body_inflight = srv.body_inflight - r
    c.reserved = 0
  end
end

--- Grow the connection's share of max_body_total to n bytes: true, or false
-- when that does not fit now.
local function reserve(c, n)
  local srv, more = c.srv, n - c.reserved
  if more <= 0 then return true end
  if srv.body_inflight + more > srv.max_body_total then return false end
  srv.body_inflight, c.reserved = srv.body_inflight + more, n
  return true
end

return {
  body_limit = body_limit,
  release = release,
  reserve = reserve,
}
