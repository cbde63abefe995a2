--- smugoauth.apps.sandbox.reply: the shapes of the sandbox's answers, as
-- SmugMug's API v2 gives them: JSON objects under Response[Locator], pages
-- of a collection (start, count; Pages with NextPage), errors `{Code,
-- Message}`, dates in ISO 8601; and random keys.
-- @module smugoauth.apps.sandbox.reply
local core = require "smugoauth.core"
local cjson = require "cjson.safe"

local JSONH = { ["Content-Type"] = "application/json" }

--- A random hex string of n bytes.
-- @tparam integer n
-- @treturn string
local function hex(n)
  return (assert(core.random_bytes(n)):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- A JSON answer.
-- @tparam integer status
-- @param value
local function json(status, value)
  return status, JSONH, cjson.encode(value)
end

--- An API error answer `{Code, Message}`.
-- @tparam integer status
-- @tparam string msg
local function api_error(status, msg)
  return json(status, { Code = status, Message = msg })
end

--- The items of one page of `items` for the request's `start` (1-based,
-- default 1) and `count` (default 100, at most 1000), and its Pages object
-- (links under `base`).
-- @tparam table items
-- @param req the request (its params)
-- @tparam string base the collection's URI
-- @return slice, pages
local function pages_of(items, req, base)
  local start = math.max(1, math.tointeger(tonumber(req.params.start or 1) or 1) or 1)
  local count = math.max(1, math.min(1000, math.tointeger(tonumber(req.params.count or 100) or 100) or 100))
  local slice = {}
  for i = start, math.min(#items, start + count - 1) do slice[#slice + 1] = items[i] end
  local pg = { Total = #items, Start = start, Count = #slice, RequestedCount = count,
               FirstPage = ("%s?start=1&count=%d"):format(base, count) }
  if start + count <= #items then
    pg.NextPage = ("%s?start=%d&count=%d"):format(base, start + count, count)
  end
  if start > 1 then pg.PrevPage = ("%s?start=%d&count=%d"):format(base, math.max(1, start - count), count) end
  local last = #items > 0 and (#items - 1) // count * count + 1 or 1
  pg.LastPage = ("%s?start=%d&count=%d"):format(base, last, count)
  return slice, pg
end

--- A 200 answer: Response[locator] = value (pages: a collection's Pages,
-- ltype "Objects"). An empty collection has no Response[locator] at all,
-- as SmugMug answers (an empty album: no AlbumImage key).
-- @tparam string uri
-- @tparam string locator
-- @param value
-- @tparam[opt] table pages
-- @tparam[opt="Object"] string ltype
-- @tparam[opt=200] integer status
local function ok(uri, locator, value, pages, ltype, status)
  local resp = { Uri = uri, Locator = locator, LocatorType = ltype or "Object" }
  if not (pages and next(value) == nil) then resp[locator] = value end
  if pages then resp.Pages = pages end
  status = status or 200
  return json(status, { Request = { Version = "v2", Uri = uri }, Response = resp, Code = status,
                        Message = status == 201 and "Created" or "Ok" })
end

--- A page of a collection as an answer (see pages_of and ok).
-- @tparam table items
-- @param req
-- @tparam string path the collection's URI
-- @tparam string locator
local function page(items, req, path, locator)
  local slice, pg = pages_of(items, req, path)
  return ok(path, locator, slice, pg, "Objects")
end

--- Seconds since the epoch as SmugMug writes dates: `2024-01-02T03:04:05+00:00`.
-- @tparam integer t
-- @treturn string
local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S+00:00", math.tointeger(t) or math.floor(t))
end

--- The JSON body of a request as a table, or nil.
-- @param req
local function body_json(req)
  local v = cjson.decode(req.body or "")
  return type(v) == "table" and v or nil
end

return {
  hex = hex,
  json = json,
  api_error = api_error,
  pages_of = pages_of,
  ok = ok,
  page = page,
  iso = iso,
  body_json = body_json,
  JSONH = JSONH,
}
