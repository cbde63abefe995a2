--- smugoauth.http.connection: one client connection of smugoauth.http.server,
-- served by its own task of the server's loop (smugoauth.loop): bytes in and
-- out of a non-blocking LuaSocket (or luasec) socket within the server's
-- deadlines, every head parsed and every response written by
-- smugoauth.http.codec, request bodies admitted (or refused) on the head
-- alone against the app's declaration and the server's body budget.
--
-- The task waits for its socket with `loop:wait_fd` (no deadline of its own:
-- the server's sweep interrupts a wait whose deadline has passed, see
-- `c.io`), and lets the other connections go first with a bare yield after
-- a burst of pipelined requests. The handler runs inside the task and may
-- yield (a request of the library, a sleep): meanwhile the connection is
-- watched (`loop:watch_fd`), so the bytes of a next pipelined request are
-- kept, and a client that goes away (EOF or reset) cancels the task's wait
-- (`task:cancel`: a request in flight returns nil, err code "cancelled").
-- @module smugoauth.http.connection
local core = require "smugoauth.core"
local codec = require "smugoauth.http.codec"
local request = require "smugoauth.http.request"
local budget = require "smugoauth.http.budget"

local sub, concat, format = string.sub, table.concat, string.format
local yield = coroutine.yield
local monotime = core.monotime
local type, tostring, setmetatable, xpcall, pcall = type, tostring, setmetatable, xpcall, pcall
local traceback = debug.traceback
local parse_head, keep_alive, split_body, expects_continue, serialize_response, error_response =
  codec.parser_methods.parse, codec.keep_alive, codec.split_body, codec.expects_continue,
  codec.serialize_response, codec.error_response
local body_limit, reserve, release = budget.body_limit, budget.reserve, budget.release

local CHUNK = 65536          -- bytes asked of receive() at once
local LINGER = 2             -- seconds to drain a client after we close our side
local LINGER_BYTES = 1 << 20 -- and at most this much
local BURST = 32             -- pipelined requests served before letting others run
local RETRY_AFTER = 1        -- seconds, in the 503 sent when max_body_total is full

--- What `serve` returns when the connection is finished.
local DONE = {}

-- ------------------------------------------------------------ I/O

-- The time now, also kept as srv.now. srv.now is set once per poll round, and
-- a handler (or many) may run for long within a round: every deadline is
-- computed, and every expiry judged, from a fresh reading.
local function clock(srv)
  local now = monotime()
  srv.now = now
  return now
end

-- Log through the user's function; a failing logger must not kill the loop.
local function log(srv, msg)
  pcall(srv.log, msg)
end

-- The loop's own answer with this status (a refusal or a failure).
local function refusal(code)
  return error_response(code, code == 503 and RETRY_AFTER or nil)
end

-- Wait until the connection's socket is ready for `what` ("r" | "w"): true,
-- or false when its deadline passed (the server's sweep interrupted the wait),
-- the task was cancelled or the server dropped the connection. c.io tells the
-- sweep that the task waits on its own socket (not in its handler).
local function wait(c, what)
  if c.dropped then return false end
  c.io = true
  local ok, msg = c.lp:wait_fd(c.fd, what)
  c.io = false
  if ok == nil then log(c.srv, "cannot watch a connection: " .. tostring(msg)) end
  return ok == true and not c.dropped
end

-- Let the other tasks of the loop run first (the next round): false when the
-- connection was dropped meanwhile.
local function pause(c)
  yield()
  return not c.dropped
end

-- The next bytes from the client, or nil, "timeout" | "closed".
local function recv(c)
  local sock, srv = c.sock, c.srv
  while true do
    if c.dropped then return nil, "closed" end
    local data, err, partial = sock:receive(CHUNK)
    if data then return data end
    if partial and partial ~= "" then return partial end
    if err == "timeout" or err == "wantread" then
      if clock(srv) > c.deadline or not wait(c, "r") then return nil, "timeout" end
    elseif err == "wantwrite" then
      if clock(srv) > c.deadline or not wait(c, "w") then return nil, "timeout" end
    else
      return nil, "closed"
    end
  end
end

-- Send all of data within send_timeout (nowait: only what goes at once);
-- true or nil.
local function send_all(c, data, nowait)
  local sock, srv, i, n = c.sock, c.srv, 1, #data
  c.deadline = clock(srv) + srv.send_timeout
  while true do
    if c.dropped then return nil end
    local last, err, partial = sock:send(data, i)
    if last then return true end
    if err == "timeout" or err == "wantwrite" or err == "wantread" then
      if partial and partial >= i then i = partial + 1 end
      if i > n then return true end
      if nowait or clock(srv) > c.deadline or not wait(c, err == "wantread" and "r" or "w") then
        return nil
      end
    else
      return nil
    end
  end
end

-- After a closing response: stop sending, then read and discard what the client
-- still sends (for a moment), so closing does not reset the connection before
-- the client has read the response.
local function linger(c)
  local sock = c.sock
  if not sock.shutdown then return end          -- TLS: just close
  sock:shutdown("send")
  c.deadline = clock(c.srv) + LINGER
  local total = 0
  while total < LINGER_BYTES do
    local data = recv(c)
    if not data then return end
    total = total + #data
  end
end

-- Answer with an error status, then close.
local function refuse(c, code)
  if send_all(c, refusal(code)) then linger(c) end
  return DONE
end

-- ------------------------------------------------------------ streamed bodies

-- Send a streamed body (the handler's body function, called for each piece
-- in the connection's task: it may yield), framed as the writer said:
-- "length" (the pieces must add up to length), "chunked" or "close". true
-- when the whole body went out; false when it did not (the source ended
-- short or failed, the client left, a send timed out): the connection must
-- then close, as its client cannot tell where this response ends otherwise.
local function stream(c, source, framing, length)
  local srv, sent = c.srv, 0
  while true do
    if c.gone or c.dropped then return false end
    local ok, piece = xpcall(source, traceback)
    if not ok then
      log(srv, "streamed body error: " .. tostring(piece))
      return false
    end
    if piece == nil then break end
    if type(piece) ~= "string" then
      log(srv, "streamed body: a piece is not a string")
      return false
    end
    local n = #piece
    if n > 0 then
      if framing == "length" and sent + n > length then
        log(srv, "streamed body: longer than its Content-Length")
        return false
      end
      if c.gone or c.dropped then return false end
      if not send_all(c, framing == "chunked" and format("%x\r\n", n) .. piece .. "\r\n" or piece) then
        return false
      end
      sent = sent + n
    end
  end
  if framing == "length" then return sent == length end
  if framing == "chunked" then return send_all(c, "0\r\n\r\n") == true end
  return true
end

-- ------------------------------------------------------------ requests

-- The chunked body of req (its head ends before index `from` of buf), read
-- and decoded: true, or nil and a status (nil status: just close).
-- Admitted on the head like a Content-Length body: the declaration is asked
-- (the request shows no Content-Length: the length is unknown), a route that
-- takes no body gets 413 at once (RFC 9110 6.4.1: Transfer-Encoding says
-- there is one), and so does a full max_body_total (503). Then the decoder
-- refuses 413 as soon as a chunk-size would take the decoded total past the
-- limit (the route's, capped by max_body and max_body_total), and each
-- chunk-size is reserved from max_body_total as it is read, before the data
-- it announces (503 when it does not fit: the bodies in flight stay within
-- the budget, and a chunked body holds what it announced, not its route's
-- whole limit). The trailer section is bounded by max_header_bytes (431);
-- request_timeout bounds the whole read (408).
local function read_chunked(c, req, buf, from)
  local srv = c.srv
  local limit, lerr = body_limit(srv, req)
  if not limit then
    log(srv, lerr)
    return nil, 500
  end
  local total = srv.max_body_total
  if limit > total then limit = total end
  if limit == 0 then return nil, 413 end
  if srv.body_inflight >= total then return nil, 503 end

  local dec = codec.new_chunked{max_body = limit, max_trailer = srv.max_header_bytes}
  local body, rest = dec:feed(buf, from)
  c.buf = ""
  local first = true
  while true do
    if not body and rest then return nil, rest end   -- refused: rest is the status
    if not reserve(c, dec.total) then return nil, 503 end
    if body then break end
    if first and expects_continue(req) then
      local deadline = c.deadline
      if not send_all(c, codec.CONTINUE) then return nil end
      c.deadline = deadline
    end
    first = false
    local data, err = recv(c)
    if not data then return nil, err == "timeout" and 408 or nil end
    body, rest = dec:feed(data)
  end
  req.body, c.buf = body, rest
  return true
end

-- Read the head and body of the next request. Returns the request, or nil
-- and a status to answer with (nil status: just close).
local function read_request(c)
  local srv, buf = c.srv, c.buf
  if buf == "" then                      -- idle between requests
    c.deadline = clock(srv) + (c.served > 0 and srv.idle_timeout or srv.request_timeout)
    -- nothing buffered: let epoll say when the next request comes (saves a
    -- receive() that would find nothing, on every keep-alive request); not
    -- for the first one (it has mostly come with the connection: a wait,
    -- and a round of the loop, saved), not with TLS (OpenSSL may hold bytes
    -- that epoll cannot see)
    if c.served > 0 and not srv.tls and not c.sock:dirty() and not wait(c, "r") then return nil end
    local data = recv(c)
    if not data then return nil end
    buf = data
  end
  if c.served > 0 then c.deadline = clock(srv) + srv.request_timeout end

  local parser = c.parser
  local head, a, b = parse_head(parser, buf)
  while not head do
    if a then return nil, a end          -- refused: a is the status
    local data, err = recv(c)
    if not data then return nil, err == "timeout" and 408 or nil end
    buf = b .. data                      -- b: the head so far
    head, a, b = parse_head(parser, buf)
  end
  local from, clen = a, b                -- the body's first index, its length
  local req = request.new(head, c.peer, srv.scheme)

  -- the body: admitted (or refused) on the head alone, before any byte of it
  -- is read (a chunked one is also refused as it goes: see read_chunked)
  if clen == "chunked" then
    local ok, status = read_chunked(c, req, buf, from)
    if not ok then return nil, status end
    return req
  end
  if clen == 0 then
    req.body = ""
    c.buf = from <= #buf and sub(buf, from) or ""
    return req
  end
  if clen > srv.max_body or clen > srv.max_body_total then return nil, 413 end
  local limit, lerr = body_limit(srv, req)
  if not limit then
    log(srv, lerr)
    return nil, 500
  end
  if clen > limit then return nil, 413 end
  if srv.body_inflight + clen > srv.max_body_total then return nil, 503 end
  srv.body_inflight, c.reserved = srv.body_inflight + clen, clen

  local body, rest = split_body(buf, from, clen)
  if body then
    req.body, c.buf = body, rest
    return req
  end
  if expects_continue(head) then
    local deadline = c.deadline
    if not send_all(c, codec.CONTINUE) then return nil end
    c.deadline = deadline
  end
  c.buf = ""
  local parts, n, need = {sub(buf, from)}, 1, rest
  while need > 0 do
    local data, err = recv(c)
    if not data then return nil, err == "timeout" and 408 or nil end
    n = n + 1
    if #data > need then
      parts[n] = sub(data, 1, need)
      c.buf = sub(data, need + 1)
      need = 0
    else
      parts[n] = data
      need = need - #data
    end
  end
  req.body = concat(parts)
  return req
end

-- The connection's coroutine: serve requests until one side closes.
local function serve(c)
  local srv, sock = c.srv, c.sock
  if srv.tls then
    c.deadline = clock(srv) + srv.request_timeout
    while true do
      local ok, err = sock:dohandshake()
      if ok then break end
      if err == "wantread" or err == "timeout" then
        if not wait(c, "r") then return DONE end
      elseif err == "wantwrite" then
        if not wait(c, "w") then return DONE end
      else
        return DONE
      end
    end
  end
  local burst = 0
  while true do
    local req, code = read_request(c)
    if not req then
      if code == 408 then                        -- best effort, no waiting
        send_all(c, refusal(408), true)
        return DONE
      end
      if code then return refuse(c, code) end
      return DONE
    end
    c.served = c.served + 1

    local keep = keep_alive(req)
    -- while the handler runs (it may yield), watch the socket: a next
    -- request's bytes are kept, a client gone cancels the handler's waits.
    -- (The watch ends with the connection's next wait on its socket, which
    -- takes the descriptor over: no unwatch on every request. Until then, in
    -- a pause between pipelined requests, it keeps doing the same.)
    if c.dropped then return DONE end
    c.lp:watch_fd(c.fd, "r", srv.on_read)
    local ok, status, hdrs, body = xpcall(srv.handler, traceback, req)
    if c.dropped then return DONE end            -- the server closed meanwhile
    clock(srv)                                   -- the handler may have taken long
    local resp, keep2, framing, length
    if ok then
      resp, keep2, framing, length = serialize_response(req, keep, status, hdrs, body, srv:_date())
      if not resp then
        log(srv, "bad handler response: " .. keep2)
        ok = false
      end
    else
      log(srv, "handler error: " .. tostring(status))
    end
    if not ok then
      resp, keep2 = refusal(500), false
    end
    -- the request body is done with: do not pin it while the response goes
    -- out or the next request is awaited, and give back its budget
    local source = framing and framing ~= "none" and body
    req, status, hdrs, body = nil, nil, nil, nil  -- luacheck: ignore 311
    release(c)
    if c.gone then                               -- the client left: what goes at once
      send_all(c, resp, true)
      return DONE
    end
    if not send_all(c, resp) then return DONE end
    if source then                               -- a streamed body
      local whole = stream(c, source, framing, length)
      source = nil                               -- luacheck: ignore 311
      if not whole then
        if not (c.gone or c.dropped) then linger(c) end
        return DONE
      end
    end
    if not keep2 then
      linger(c)
      return DONE
    end
    burst = burst + 1
    if burst >= BURST and c.buf ~= "" then      -- let the others run
      burst = 0
      if not pause(c) then return DONE end
    elseif c.buf == "" then
      burst = 0
    end
  end
end

-- ------------------------------------------------------------ the object

local methods = {}
local mt = {__name = "smugoauth.HttpConnection", __index = methods}

--- A connection of srv on sock, to be served by `serve(c)` in a task of the
-- server's loop whose Task the server sets as `c.task`.
--
-- Options (all required):
--
--  - `srv`: the server (its options, `loop`, `now`, `body_inflight`,
--    `handler`, `body`, `log`, `scheme`, `tls`, `_date()`).
--  - `sock`: the accepted socket (non-blocking; luasec-wrapped for TLS).
--  - `fd`: its descriptor (waited on with the server's loop).
--  - `peer`: `"ip:port"` of the client, as requests show it.
-- @return the connection
local function new(srv, sock, fd, peer)
  return setmetatable({
    srv = srv, lp = srv.loop, sock = sock, fd = fd, peer = peer, buf = "", served = 0,
    deadline = 0, reserved = 0, parser = codec.new_parser(srv), io = false, dropped = false,
    gone = false, task = nil,
  }, mt)
end

--- The end of the connection's task (a to-be-closed variable of it): the
-- server forgets the connection (`srv:_ended(c, err)`; err: an error that
-- ended the task, else nil).
mt.__close = function(c, err)
  return c.srv:_ended(c, err)
end

--- Give back the connection's share of the body budget and close its socket
-- (the server forgets it first).
function methods:close()
  release(self)
  self.sock:close()
end

return {
  new = new,
  serve = serve,
  CHUNK = CHUNK,
  DONE = DONE,
  methods = methods,
  mt = mt,
}
