--- smugoauth.apps.sandbox.faults: the sandbox's switches (its mode, set
-- through `POST /_sandbox/mode`) and its counters (`/_sandbox/stats`).
--
-- The mode (every field optional; a POST to /_sandbox/mode replaces the
-- whole mode: what it does not give is cleared):
--
--  - `latency=S`: every answer but /_sandbox/'s comes after S seconds (0-3600).
--  - `fail429=N`, `retry_after=S`: the next N protected requests answer 429
--    with `Retry-After: S` (default 1); `fail503=N`: the next N answer 503.
--    `scope=api|archive|all` [all]: which requests they hit: the API and the
--    upload origin, the archive downloads, or both (counted in one storm).
--  - `drop_after=K`, `drop_count=N` [1]: the next N archive downloads (GETs
--    answered with a body) send K body bytes, then the connection closes (the
--    head promised them all).
--  - `rate=B`: archive downloads send at most B body bytes a second each.
--  - (A flag is `1` or `true`.)
--  - `ignore_range=1`: archive downloads answer 200 with the whole file even
--    to a Range; `bad_range=1`: they answer a Range with 206 from byte 0
--    (a wrong start, and a Content-Range that says so).
--  - `lie_md5=1|KEY,KEY`: the listings report a wrong MD5 (ArchivedMD5 and
--    LargestVideo.MD5) for every image (1) or these; `lie_size=...`: a
--    wrong size (one byte more), the same way.
--  - `no_confirm=1`: getRequestToken answers oauth_callback_confirmed=false.
--  - `convert=0`: uploads are kept as sent, never converted (see
--    smugoauth.apps.sandbox.images).
-- @module smugoauth.apps.sandbox.faults
local cjson = require "cjson.safe"

local JSONH = { ["Content-Type"] = "application/json" }

-- A count from a form value: a non-negative integer or nil.
local function count(v)
  local n = math.tointeger(tonumber(v))
  return n and n >= 0 and n or nil
end

-- A flag: "1" or "true" (as the launcher sends true).
local function flag(v) return v == "1" or v == "true" end

-- A set of image keys from "1" (all: true) or "K1,K2" (a set), or nil.
local function keys(v)
  if v == nil or v == "" or v == "0" or v == "false" then return nil end
  if flag(v) or v == "*" then return true end
  local set = {}
  for k in v:gmatch("[^,%s]+") do set[k] = true end
  return set
end

--- The mode of a /_sandbox/mode form (see the module comment); values that
-- are not what they should be are left out.
-- @tparam table f the decoded form (name -> value)
-- @treturn table
local function parse(f)
  local latency = tonumber(f.latency)
  if latency and (latency ~= latency or latency < 0 or latency > 3600) then latency = nil end
  local rate = tonumber(f.rate)
  if rate and (rate ~= rate or rate <= 0) then rate = nil end
  local retry_after = f.retry_after
  if retry_after and not retry_after:match("^%d+$") then retry_after = nil end
  local scope = f.scope
  if scope ~= "api" and scope ~= "archive" then scope = "all" end
  return {
    latency = latency, fail429 = count(f.fail429), fail503 = count(f.fail503),
    retry_after = retry_after, scope = scope, no_confirm = flag(f.no_confirm),
    drop_after = count(f.drop_after), drop_count = count(f.drop_count) or 1, rate = rate,
    ignore_range = flag(f.ignore_range), bad_range = flag(f.bad_range),
    lie_md5 = keys(f.lie_md5), lie_size = keys(f.lie_size),
    no_convert = f.convert == "0" or f.convert == "false",
  }
end

--- The fault answer for a protected request of `kind` ("api" | "archive"),
-- when the mode's storm hits it (consuming one), else nil.
-- @param self the sandbox
-- @tparam string kind
local function storm(self, kind)
  local mode, stats = self.mode, self.stats
  if mode.scope and mode.scope ~= "all" and mode.scope ~= kind then return nil end
  if (mode.fail429 or 0) > 0 then
    mode.fail429 = mode.fail429 - 1
    stats.throttled = stats.throttled + 1
    return 429, { ["Content-Type"] = "application/json", ["Retry-After"] = mode.retry_after or "1" },
      cjson.encode { Code = 429, Message = "Too Many Requests" }
  end
  if (mode.fail503 or 0) > 0 then
    mode.fail503 = mode.fail503 - 1
    stats.unavailable = stats.unavailable + 1
    return 503, JSONH, cjson.encode { Code = 503, Message = "Service Unavailable" }
  end
  return nil
end

--- The bytes an archive download may send before its connection is dropped
-- (consuming one of drop_count), or nil when it is not to be dropped.
-- @param self the sandbox
local function take_drop(self)
  local mode = self.mode
  if not mode.drop_after or (mode.drop_count or 0) <= 0 then return nil end
  mode.drop_count = mode.drop_count - 1
  local k = mode.drop_after
  if mode.drop_count == 0 then mode.drop_after = nil end
  return k
end

--- Whether the listings lie about image `key` (`which`: "lie_md5" | "lie_size").
-- @param self the sandbox
-- @tparam string which
-- @tparam string key
local function lies(self, which, key)
  local set = self.mode[which]
  return set == true or (type(set) == "table" and set[key] == true)
end

--- Fresh counters (`/_sandbox/stats`):
--
--  - `requests`: every request; `verified`, `refused`: signatures checked
--    good and bad; `nonces`: the nonces seen, in order.
--  - `delayed`, `cancelled`: answers delayed by the latency, and of those
--    the ones whose client left meanwhile.
--  - `api_calls`: requests under /api/v2 (counted on arrival, whatever
--    their answer), split into `api_listing` (a GET of the user, a node, a
--    folder or an album, or of one of their lists: what a walk of the tree
--    reads) and `api_other` (the rest: single images, !largestvideo,
--    creations, changes, deletions, anything else); `api_routes`: the same
--    by route, e.g. `["GET node!children"] = 3`.
--  - `throttled`, `unavailable`: 429 and 503 answers of the storms.
--  - `archive_requests`: requests to the archive routes; `archive_refused`:
--    of those, 401 (unsigned or badly signed); `downloads_started`: answers
--    whose body began (200 or 206), `downloads_ranged`: of those, 206;
--    `downloads_completed`: bodies sent whole; `downloads_dropped`: bodies
--    cut by drop_after; `archive_bytes`: body bytes handed to the
--    connections.
--  - `uploads`: images uploaded; `last_upload`: what the last one was
--    (size, md5 base64, content_type, filename, headers).
-- @treturn table
local function new_stats()
  return { requests = 0, verified = 0, refused = 0, uploads = 0, delayed = 0, cancelled = 0,
           nonces = {}, api_calls = 0, api_listing = 0, api_other = 0, api_routes = {},
           throttled = 0, unavailable = 0, archive_requests = 0, archive_refused = 0,
           archive_bytes = 0, downloads_started = 0, downloads_ranged = 0,
           downloads_completed = 0, downloads_dropped = 0 }
end

return {
  parse = parse,
  storm = storm,
  take_drop = take_drop,
  lies = lies,
  new_stats = new_stats,
}
