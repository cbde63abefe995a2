--- THE request pipeline of a session: prepare -> sign -> send -> classify
-- -> retry. Every signed request goes through it: api:request and the
-- methods built on it (get, post, put, patch, delete, pages, each, upload,
-- download, and get_many's tasks). The request options are declared once,
-- in OPTIONS below, which drives both their validation and the construction
-- of the request table the C client takes; `send` is the one place where a
-- session's requests reach the C client.
-- @module smugoauth.request
local cjson = require "cjson.safe"
local errors = require "smugoauth.errors"
local util = require "smugoauth.util"
local retry = require "smugoauth.retry"
local response = require "smugoauth.response"
local loop = require "smugoauth.loop"

local current = loop.current

-- The fields of the request table the C client takes (core `http:request`
-- and the loop reactor's `r:start`), in the order prepare builds them (headers after body:
-- the body decides the Content-Type).
local C_FIELDS = { "method", "url", "body", "headers", "body_file", "on_progress", "timeout",
                   "fresh", "max_body", "out", "out_offset", "out_file", "on_data", "digest", "sync" }

-- v is a positive integer (or raise at level, naming the option).
local function positive_integer(fname, name, v, level)
  if not math.tointeger(v) or v < 1 then
    error(("%s: %s must be a positive integer (bytes)"):format(fname, name), level + 1)
  end
end

-- v is an integer, 0 or more (or raise at level, naming the option).
local function count(fname, name, v, level)
  if not math.tointeger(v) or v < 0 then
    error(("%s: %s must be an integer, 0 or more (bytes)"):format(fname, name), level + 1)
  end
end

-- v is an open io file handle (or raise at level, naming the option).
local function file_handle(fname, name, v, level)
  if io.type(v) ~= "file" then
    error(("%s: %s must be an open io file handle"):format(fname, name), level + 1)
  end
end

-- v is "md5" (or raise at level).
local function digest_name(fname, name, v, level)
  if v ~= "md5" then error(("%s: %s must be \"md5\""):format(fname, name), level + 1) end
end

--- The request options of `api:request(o)` (and of get_many's items),
-- declared once. A row: name, the Lua type(s) accepted, and
--   to      the field of the C request it reaches: copied there as is
--           (after `check`) unless BUILD below composes that field from the
--           options that reach it; false: no field, the pipeline itself uses it
--   signed  part of the OAuth signature base string
--   check   function(fname, name, value, level): raises on a bad value
--   doc     what it does, and its default
local OPTIONS = {
  { "method", "string", to = "method", signed = true,
    doc = '"GET": an HTTP method token, upper-cased' },
  { "path", "string", to = "url", signed = true,
    doc = "a path starting with /, under origin (the client's api_origin by default)" },
  { "origin", "string", to = "url", signed = true,
    doc = "the origin path is under, instead of the client's api_origin" },
  { "url", "string", to = "url", signed = true,
    doc = "an absolute http(s) URL, instead of origin and path" },
  { "query", "table", to = "url", signed = true,
    doc = "a map (values may be arrays) or {name, value} pairs, added to the URL's query" },
  { "form", "table", to = "body", signed = true,
    doc = "a map or pairs: sent as application/x-www-form-urlencoded" },
  { "json", "any", to = "body", signed = false,
    doc = "a value: sent as application/json" },
  { "body", "string", to = "body", signed = false,
    doc = "the body as is (with content_type)" },
  { "body_file", "string", to = "body_file", signed = false,
    doc = "a file streamed as the body, never read whole" },
  { "content_type", "string", to = "headers", signed = false,
    doc = "the Content-Type of body or body_file (json and form set their own)" },
  { "headers", "table", to = "headers", signed = false,
    doc = "a map of header names to strings; Accept: application/json unless given" },
  { "on_progress", "function", to = "on_progress", signed = false,
    doc = "function(sent, total) while the body goes out (not in get_many); with out, out_file " ..
          "or on_data: function(received, total) of the response body (total 0: not said)" },
  { "timeout", "number", to = "timeout", signed = false,
    doc = "seconds for the whole request, instead of the client's timeout" },
  { "max_body", "number", to = "max_body", signed = false, check = positive_integer,
    doc = "bytes: this response's cap instead of the client's max_body (over it: too_large)" },
  { "fresh", "boolean", to = "fresh", signed = false,
    doc = "true: a new connection; false: a kept-alive one may be reused " ..
          "(default: by the retry policy, see smugoauth.retry)" },
  { "retry", "table boolean", to = false, signed = false,
    doc = "a retry policy (smugoauth.retry) or false, instead of the client's" },
  { "out", "string", to = "out", signed = false,
    doc = "a path: a 2xx body is streamed there, any size in constant memory (res.body is " ..
          "empty; res.written, res.size); other statuses' bodies stay in res.body. " ..
          "Without timeout, the client's timeout bounds a stall, not the whole transfer" },
  { "out_offset", "number", to = "out_offset", signed = false, check = count,
    doc = "with out and a Range header: a 206 that continues there keeps that many bytes " ..
          "of the file; any other 2xx starts it over" },
  { "out_file", "userdata", to = "out_file", signed = false, check = file_handle,
    doc = "an io file handle a 2xx body is written to (flushed first; not used meanwhile)" },
  { "on_data", "function", to = "on_data", signed = false,
    doc = "function(chunk) for each piece of a 2xx body; it must not yield, and what it " ..
          "raises is raised by the request" },
  { "digest", "string", to = "digest", signed = false, check = digest_name,
    doc = '"md5": res.md5 is the raw MD5 of what out (the whole file), out_file or on_data got' },
  { "sync", "boolean", to = "sync", signed = false,
    doc = "fsync out or out_file before the request returns" },
}
local TYPES = util.option_types(OPTIONS)

-- A new table with a slot for each C field (all false, each then set by
-- prepare): one constructor generated from C_FIELDS, so that filling it
-- never grows it.
local new_creq = assert(load("return { " .. table.concat(C_FIELDS, " = false, ") .. " = false }",
                             "=C_FIELDS", "t", {}))
local CHECKED = {}                    -- the rows with a check
for _, row in ipairs(OPTIONS) do if row.check then CHECKED[#CHECKED + 1] = row end end

-- ---------------------------------------------------------------- prepare

-- The C request fields composed from several options: function(o, p,
-- session, fname, level) -> the field's value (p: where a builder leaves
-- what a later one or sign needs: params, content_type).
local BUILD = {}

-- An HTTP method is a token (RFC 9110 5.6.2), as the C client takes it.
local TOKEN = "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$"

function BUILD.method(o, _, _, fname, level)
  local method = (o.method or "GET"):upper()
  if #method > 32 or not method:match(TOKEN) then
    error(fname .. ": bad method " .. tostring(o.method) .. " (an HTTP token expected)", level + 1)
  end
  return method
end

function BUILD.url(o, _, session, fname, level)
  local url
  if o.url and (o.path or o.origin) then error(fname .. ": give url, or path (and origin), not both", level + 1) end
  if o.url then
    if not o.url:match("^https?://[^/]") then error(fname .. ": url must be an absolute http(s) URL", level + 1) end
    url = o.url
  else
    local path = o.path
    if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
      error(fname .. ": path must be a string starting with '/' (got " .. tostring(path) .. ")", level + 1)
    end
    url = (o.origin or session.client.api_origin) .. path
  end
  if o.url or o.origin then          -- the client's own origins were checked by smugoauth.new
    local c = session.client
    util.check_clear(fname, errors.safe_url(url), "the request", url, c.insecure_http, level + 1)
    util.check_plaintext(fname, c.signature_method, url, c.insecure_http, level + 1)
  end
  local q = util.param_list(o.query)
  if #q > 0 then url = url .. (url:find("?", 1, true) and "&" or "?") .. util.encode_pairs(q) end
  return url
end

-- Also sets p.params (the form's pairs, signed) and p.content_type.
function BUILD.body(o, p, _, fname, level)
  local nbody = (o.json ~= nil and 1 or 0) + (o.form and 1 or 0) + (o.body and 1 or 0) +
                (o.body_file and 1 or 0)
  if nbody > 1 then error(fname .. ": give only one of json, form, body, body_file", level + 1) end
  p.params, p.content_type = nil, o.content_type
  if o.json ~= nil then
    local s, jerr = cjson.encode(o.json)
    if not s then error(fname .. ": json cannot be encoded: " .. tostring(jerr), level + 1) end
    p.content_type = o.content_type or "application/json"
    return s
  elseif o.form then
    p.params = util.param_list(o.form)
    p.content_type = "application/x-www-form-urlencoded"
    -- oauth_* pairs are signed and sent with the protocol parameters (in the
    -- Authorization header: RFC 5849 3.5), not in the body as well
    local body = {}
    for _, kv in ipairs(p.params) do
      if kv[1]:sub(1, 6) ~= "oauth_" then body[#body + 1] = kv end
    end
    return util.encode_pairs(body)
  end
  return o.body
end

-- "Name: value" lines (the Authorization header is added by sign).
function BUILD.headers(o, p, _, fname, level)
  local headers, has = {}, {}
  for k, v in pairs(o.headers or {}) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      error(fname .. ": headers must map names to strings", level + 1)
    end
    headers[#headers + 1] = k .. ": " .. v
    has[k:lower()] = true
  end
  if not has["accept"] then headers[#headers + 1] = "Accept: application/json" end
  if p.content_type and not has["content-type"] then
    headers[#headers + 1] = "Content-Type: " .. p.content_type
  end
  return headers
end

-- Every option reaches a C field that something builds, or is the
-- pipeline's own: an option cannot be accepted and then dropped.
do
  local known = {}
  for _, f in ipairs(C_FIELDS) do known[f] = true end
  for _, row in ipairs(OPTIONS) do
    assert(row.to == false or (known[row.to] and (BUILD[row.to] or row.to == row[1])),
      "request option " .. row[1] .. " reaches nothing")
  end
  for _, f in ipairs(C_FIELDS) do assert(BUILD[f] or TYPES[f], "C field " .. f .. " is never built") end
end

--- Check request options and prepare the request: `creq`, the request
-- table the C client takes, built once from the options (sign then sets
-- its Authorization header and connection choice for each try); method,
-- url, headers (without Authorization) and fresh (the option) as built;
-- params (the signed form pairs); policy (the retry policy: o.retry, else
-- `default_retry`, else the session's). Misuse raises at `level` (as
-- error's), naming fname.
local function prepare(session, o, fname, level, default_retry)
  level = level + 1
  if type(o) ~= "table" then error(fname .. ": options must be a table", level) end
  util.check_options(fname, o, TYPES, level)
  for _, row in ipairs(CHECKED) do
    if o[row[1]] ~= nil then row.check(fname, row[1], o[row[1]], level) end
  end
  local scratch, creq = { params = false, content_type = false }, new_creq()
  for _, f in ipairs(C_FIELDS) do
    local build = BUILD[f]
    if build then creq[f] = build(o, scratch, session, fname, level) else creq[f] = o[f] end
  end
  local rp = o.retry
  if rp == nil then rp = default_retry end
  if rp == nil then rp = session.retry end
  return { creq = creq, method = creq.method, url = creq.url, headers = creq.headers, fresh = creq.fresh,
           params = scratch.params, policy = retry.new(rp, fname, level) }
end

-- ---------------------------------------------------------------- sign, send

--- Sign a prepared request afresh (a new nonce and timestamp): set the
-- Authorization header and the connection choice of its C request, and
-- trace it. Returns the C request, the base string and the tracer of its
-- outcome (which knows the signature); or nil, err when signing failed at
-- runtime (code "crypto").
local function sign(session, p)
  local auth, base_string, code = session.signer:authorization(p.method, p.url, p.params, true)
  if not auth then return nil, errors.new(code or "crypto", "signing failed: " .. tostring(base_string)) end
  local headers = { "Authorization: " .. auth }
  for i = 1, #p.headers do headers[i + 1] = p.headers[i] end
  local creq = p.creq
  creq.headers = headers
  creq.fresh = p.policy:fresh(p.method, p.fresh)
  return creq, base_string, session.trace:request(p.method, p.url, headers, base_string)
end

--- Send one C request with the settings of `holder.http` (a session's or a
-- client's): `send(holder, creq)` -> the raw result, or nil, message, code.
-- THE one place where a request reaches the C client: inside a task of a
-- smugoauth.loop it runs on that loop's reactor and the task yields until
-- it is done; outside any task it blocks on holder.http, as it always did.
local function send(holder, creq)
  local lp = current()
  if lp and (holder.client or holder).yield ~= false then return lp:transfer(holder.http, creq) end
  return holder.http:request(creq)
end

--- What came back for a prepared request, traced by tr: a response or an
-- error object (smugoauth.response.classify).
local function classify(p, raw, msg, code, base_string, tr)
  local res, err = response.classify(raw, msg, code, p.method, p.url, base_string, tr)
  return res or err
end

-- ---------------------------------------------------------------- retry

-- The client-wide rate-limit pause: a 429 or 503 answer with Retry-After
-- (retry.pause_of) sets `client._paused_until` (retry.clock() time), and
-- every request of the client, from any task or session, waits until then
-- before it is signed and sent: one answer slows down all of them, not only
-- the request that got it.

-- Wait out the client's pause, if any: nil when the request may go, or the
-- error to return instead (the pause lasts longer than the policy's
-- max_time: not sent; or the waiting task was cancelled).
local function wait_pause(session, p)
  local c = session.client
  local waited = p.pause_waited                  -- the pause waited for already (once each)
  while true do
    local untill = c._paused_until
    local d = untill and untill ~= waited and untill - retry.clock()
    if not d or d <= 0 then return nil end
    if d > p.policy.max_time then
      return errors.new("http", ("%s %s not sent: the server asked for a pause of %.0f s more " ..
        "(Retry-After), past the retry policy's max_time of %g s"):format(p.method, errors.safe_url(p.url),
        d, p.policy.max_time), { status = c._paused_status, url = errors.safe_url(p.url), method = p.method,
                                 paused = d })
    end
    session.trace:note(("rate limited: every request waits %.2f s (Retry-After)"):format(d))
    if not p.policy:wait(d) then
      return errors.new("cancelled", "the request was cancelled", { url = errors.safe_url(p.url), method = p.method })
    end
    waited = untill                              -- again only if it was extended meanwhile
  end
end

-- After an answer: a 429/503 with Retry-After pauses the whole client.
local function note_pause(session, r)
  local d = retry.pause_of(r)
  if not d then return end
  local c, untill = session.client, retry.clock() + d
  if not c._paused_until or untill > c._paused_until then
    c._paused_until, c._paused_status = untill, r.status
  end
end

--- One try of a prepared request: wait out the client's rate-limit pause
-- (see above), sign, send, classify. Returns a response or an error object;
-- a transport failure after a response sink got part of a body carries
-- `written` (those bytes, in order).
local function try(session, p)
  local perr = wait_pause(session, p)
  if perr then return perr end
  local creq, base_string, tr = sign(session, p)
  if not creq then return base_string end               -- the signing error
  local raw, msg, code, written = send(session, creq)
  local r = classify(p, raw, msg, code, base_string, tr)
  if errors.is(r) then
    if written then r.written = written end
    if r.code == "http" then note_pause(session, r) end
  end
  return r
end

--- Run a prepared request until it succeeds or its policy gives up:
-- `execute(session, p)` -> a response or an error object (carrying
-- `attempts`). Backoff waits yield inside a task (smugoauth.loop.sleep).
local function execute(session, p)
  local t0 = retry.clock()
  local attempt = 0
  while true do
    attempt = attempt + 1
    local r = try(session, p)
    if not errors.is(r) then return r end
    r.attempts = attempt
    local policy = p.policy
    if not policy:again(p.method, r, attempt) then return r end
    -- bytes out_file or on_data got cannot be taken back: no second copy
    if (r.written or 0) > 0 and (p.creq.out_file or p.creq.on_data) then return r end
    local d = policy:delay(r, attempt)
    if not policy:within(t0, d) then return r end
    session.trace:note(("retrying in %.2f s (attempt %d)"):format(d, attempt + 1))
    local pause = session.client._paused_until
    if not policy:wait(d) then return r end           -- cancelled meanwhile
    p.pause_waited = pause                            -- (a pause that was on is over for it)
  end
end

--- Make a signed request: `api:request(o)` with the options of OPTIONS.
-- Returns the response (status, headers, body, json()) or nil, err.
local function request(session, o)
  local r = execute(session, prepare(session, o, "request", 2))
  if errors.is(r) then return nil, r end
  return r
end

return {
  request = request,
  prepare = prepare,
  sign = sign,
  send = send,
  try = try,
  classify = classify,
  execute = execute,
  OPTIONS = OPTIONS,
  C_FIELDS = C_FIELDS,
}
