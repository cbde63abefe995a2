--- support.archive: the archive server of the download specs
-- (spec/support/archive_server.py: files under a directory, OAuth-checked
-- by oauthlib, Range, faults on demand) started on 127.0.0.1.
--
--     local archive = require "support.archive"
--     local a = archive.start()          -- its own temporary directory
--     a:put("f.bin", bytes)              -- a file it serves (and returns its MD5, hex)
--     a.origin, a:url("f.bin")           -- http://127.0.0.1:PORT/_archive/f.bin (signed)
--     a:url("f.bin", "files")            -- .../_files/f.bin (no signature needed)
--     a:mode{ drop_after = 1000 }        -- see archive_server.py; clear = true resets
--     a:stats().requests                 -- what it answered, in order
--     a:reset()                          -- clear the stats (and the mode)
--     local api = a:session()            -- a session signed for it (client options merged)
--     a:stop()                           -- always, in teardown
local core = require "smugoauth.core"
local cjson = require "cjson"
local proc = require "support.proc"
local files = require "support.files"

local M = {
  PYTHON = "/usr/bin/python3",
  SCRIPT = "spec/support/archive_server.py",
  KEY = "archive-test-key",
  SECRET = "archive-test-secret",
  TOKEN = "archive-test-token",
  TOKEN_SECRET = "archive-test-token-secret",
}

local methods = {}
local mt = { __name = "support.Archive", __index = methods }

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end
M.hex = hex

--- Start a server over dir (default: a new temporary directory).
function M.start(dir)
  dir = dir or files.tmpdir()
  local h = proc.spawn({ M.PYTHON, M.SCRIPT, "--dir", dir, "--key", M.KEY, "--secret", M.SECRET,
                         "--token", M.TOKEN, "--token-secret", M.TOKEN_SECRET, "--max-life", "600" },
                       { expect = "^PORT %d+$", timeout = 15 })
  local self = setmetatable({ h = h, dir = dir, port = h.port, pid = h.pid,
                              origin = "http://127.0.0.1:" .. h.port, http = core.http_new() }, mt)
  return self
end

--- Write a file the server serves; returns its MD5 (hex).
function methods:put(name, bytes)
  files.write_file(self.dir .. "/" .. name, bytes)
  return hex(core.digest("md5", bytes))
end

--- The URL of a file: route "archive" (signed; the default) or "files".
function methods:url(name, route)
  return self.origin .. "/_" .. (route or "archive") .. "/" .. name
end

-- One control request; its JSON answer.
function methods:control(method, path)
  local r = assert(self.http:request { method = method, url = self.origin .. path })
  assert(r.status == 200, path .. " answered " .. r.status)
  return cjson.decode(r.body)
end

--- Set fault modes (a table of name = value; true is "1").
function methods:mode(t)
  local q = {}
  for k, v in pairs(t) do
    if v == true then v = "1" end
    if v ~= false then q[#q + 1] = k .. "=" .. tostring(v) end
  end
  table.sort(q)
  return self:control("POST", "/_test/mode?" .. table.concat(q, "&"))
end

--- The stats: { requests = {...}, files = {name = n} }.
function methods:stats()
  return self:control("GET", "/_test/stats")
end

--- Only the requests for the files (archive and files routes).
function methods:file_requests()
  local out = {}
  for _, r in ipairs(self:stats().requests) do
    if r.path:match("^/_archive/") or r.path:match("^/_files/") then out[#out + 1] = r end
  end
  return out
end

--- Clear the stats and the fault modes.
function methods:reset()
  self:control("POST", "/_test/reset")
  self:mode { clear = true }
end

--- A client (smugoauth.new with the archive's consumer and its origin as
-- every origin; extra options merged) and a session for its token.
function methods:session(opts, token_secret)
  local smugoauth = require "smugoauth"
  local o = { key = M.KEY, secret = M.SECRET, api_origin = self.origin, oauth_origin = self.origin,
              upload_origin = self.origin, retry = { base = 0.01 } }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = smugoauth.new(o)
  return c:session(M.TOKEN, token_secret or M.TOKEN_SECRET), c
end

--- Stop the server and remove its directory.
function methods:stop()
  if self.h then self.h:close() self.h = nil end
  if self.http then self.http:close() self.http = nil end
  if self.dir then os.execute("rm -rf " .. proc.q(self.dir)) self.dir = nil end
end
mt.__close = methods.stop

return M
