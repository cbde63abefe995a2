--- Error objects: what every runtime failure in smugoauth returns as `nil, err`.
-- `err.code` is stable and machine-readable:
--   "network"  connection refused, reset, DNS, truncated transfer
--   "tls"      certificate or handshake failure (verification is always on)
--   "timeout"  connect or total timeout
--   "too_large" response body over max_body, a response header section over
--              256 KiB, or a header line over libcurl's 100 KiB
--   "http"     the server answered with a non-2xx status
--   "oauth"    the provider refused the OAuth request (`err.problem` says why)
--   "api"      SmugMug answered 200 with "stat": "fail"
--   "json"     a body that should be JSON is not
--   "config"   configuration missing or invalid
--   "io"       a local file could not be read or written
--   "crypto"   OpenSSL or the system's random generator failed (not a misuse)
--   "checksum" a download's bytes do not have the MD5 or the size the API
--              reported (its .part is removed)
--   "processing" a video SmugMug is still processing: nothing to download yet
-- (The C core's own failures are `nil, message, code` with these codes and
-- a few of its own: "malformed" input to a decoder, "missing"/"refused" for
-- private files, "range" for a 206 that does not continue where a resumed
-- download asked.)
-- Other fields when known: message, status, problem (oauth_problem), body,
-- headers, url (without query string), attempts, written (the bytes a
-- response sink got before a transport failure), path.
-- @module smugoauth.errors

local methods = {}
local mt = { __name = "smugoauth.Error", __index = methods }

function mt.__tostring(e)
  local s = "smugoauth: " .. e.code
  if e.status then s = s .. " (HTTP " .. e.status .. ")" end
  if e.problem then s = s .. " [" .. e.problem .. "]" end
  return s .. ": " .. (e.message or "failed")
end

--- Make an error: `errors.new(code, message [, fields])`.
-- `fields` (optional, default {}) becomes the error object itself: any of
-- status, problem, body, headers, url, method, response, attempts, path...
local function new(code, message, fields)
  local e = fields or {}
  e.code, e.message = code, message
  return setmetatable(e, mt)
end

--- True when `v` is a smugoauth error object.
local function is(v)
  return getmetatable(v) == mt
end

--- Strip the query string and fragment from a URL (they may hold signatures).
local function safe_url(url)
  return (tostring(url):gsub("[?#].*$", ""))
end

return {
  new = new,
  is = is,
  safe_url = safe_url,
  methods = methods,
  mt = mt,
  Error = mt,          -- the name it had before (the metatable of every error)
}
