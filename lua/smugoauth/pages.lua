--- Pagination of the SmugMug API v2: whole pages following
-- Response.Pages.NextPage, or the items of every page. The methods
-- `api:pages` and `api:each` of a session (smugoauth.session).
-- @module smugoauth.pages
local core = require "smugoauth.core"
local util = require "smugoauth.util"

-- The query of a NextPage link merged over the original query (so options
-- like _expand survive even when a server leaves them out of the link).
local function next_query(next_page, query)
  local path, qs = next_page:match("^([^?]*)%??(.*)$")
  local merged, seen = {}, {}
  for _, kv in ipairs(core.parse_form(qs)) do
    merged[#merged + 1] = kv
    seen[kv[1]] = true
  end
  for _, kv in ipairs(util.param_list(query)) do
    if not seen[kv[1]] then merged[#merged + 1] = kv end
  end
  return path, merged
end

--- Iterate over whole pages: `for page, res in api:pages(path [, query [, opts]]) do`.
-- `page` is the decoded JSON of each page (opts: request options for each
-- GET), following Response.Pages.NextPage to the end. On an error the loop
-- gets `false, err` once and then stops (false, not nil: a nil would end a
-- generic for before its body saw err).
local function pages(session, path, query, opts)
  local nextp, q, done = path, query, false
  return function()
    if done or not nextp then return nil end
    local res, err = session:get(nextp, q, opts)
    if not res then done = true return false, err end
    local body, jerr = res:json()
    if type(body) ~= "table" then done = true return false, jerr end
    local pg = type(body.Response) == "table" and body.Response.Pages
    if type(pg) == "table" and type(pg.NextPage) == "string" and pg.NextPage ~= "" then
      nextp, q = next_query(pg.NextPage, query)
    else
      nextp = nil
    end
    return body, res
  end
end

--- Iterate over the items of every page: `for item, err in api:each(path [, query [, opts]]) do`.
-- Items are the elements of Response[Response.Locator]. On an error the loop
-- gets `false, err` once and stops: test `if not item then ... end`.
local function each(session, path, query, opts)
  local next_page = pages(session, path, query, opts)
  local items, i, done = nil, 0, false
  return function()
    while not done do
      if items and i < #items then
        i = i + 1
        return items[i]
      end
      local page, err = next_page()
      if not page then
        done = true
        if page == false then return false, err end
        return nil
      end
      local r = page.Response or {}
      local v = r.Locator and r[r.Locator]
      if type(v) == "table" and v[1] == nil and next(v) ~= nil then v = { v } end
      items, i = type(v) == "table" and v or {}, 0
    end
    return nil
  end
end

return {
  pages = pages,
  each = each,
}
