--- smugoauth.http.html: the one HTML kit of our servers (the web app, the
-- login callback of `smugoauth login --web`, the sandbox): escaping, the page
-- shell, and answers in the handler's shape (`status, headers, body`) that
-- always carry the security headers: a restrictive Content-Security-Policy,
-- `X-Content-Type-Options: nosniff`, `Cache-Control: no-store`,
-- `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and the
-- same-origin opener and resource policies.
--
--    local html = require "smugoauth.http.html"
--    return html.render(200, "Hello", "<p>" .. html.escape(name) .. "</p>")
--    return html.problem(403, "Refused", "Not from here.", nil, "/")
--    return html.redirect("https://example.com/", { ["Set-Cookie"] = c })
-- @module smugoauth.http.html
local gsub, type, tostring, pairs, error = string.gsub, type, tostring, pairs, error

local ESC = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}

--- Escape `&<>"'` for HTML text and attribute values.
-- @tparam string s (numbers are converted)
-- @treturn string
local function escape(s)
  local t = type(s)
  if t == "number" then s = tostring(s)
  elseif t ~= "string" then
    error("bad argument #1 to 'escape' (string expected, got " .. t .. ")", 2)
  end
  return (gsub(s, "[&<>\"']", ESC))
end

--- The Content-Security-Policy of every page: nothing loads, forms post only
-- to the page's own origin, no framing, no `<base>`.
local CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

--- The headers every answer carries (do not change this table: give extra
-- headers to the functions below; they override these).
local SECURITY_HEADERS = {
  ["Content-Security-Policy"] = CSP,
  ["X-Content-Type-Options"] = "nosniff",
  ["Cache-Control"] = "no-store",
  ["Referrer-Policy"] = "no-referrer",
  ["X-Frame-Options"] = "DENY",
  ["Cross-Origin-Opener-Policy"] = "same-origin",
  ["Cross-Origin-Resource-Policy"] = "same-origin",
}

--- A new header map for an HTML answer: Content-Type `text/html;
-- charset=utf-8`, the security headers, then extra (which may override them).
-- @tparam[opt] table extra map of name to value
-- @treturn table
local function headers(extra)
  local h = { ["Content-Type"] = "text/html; charset=utf-8" }
  for k, v in pairs(SECURITY_HEADERS) do h[k] = v end
  if extra then
    for k, v in pairs(extra) do h[k] = v end
  end
  return h
end

--- A whole HTML document: title (escaped) in `<title>` (with " - smugoauth")
-- and `<h1>`, then body, which is HTML (escape what it reflects).
-- @tparam string title
-- @tparam string body
-- @treturn string
local function page(title, body)
  local t = escape(title)
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" ..
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" ..
    "<title>" .. t .. " - smugoauth</title></head>\n<body>\n<h1>" .. t ..
    "</h1>\n" .. body .. "\n</body></html>\n"
end

--- An answer with the HTML headers: `status, headers(extra), body`.
-- @tparam integer status
-- @tparam[opt] string body
-- @tparam[opt] table extra
local function respond(status, body, extra)
  return status, headers(extra), body or ""
end

--- A page as an answer: `respond(status, page(title, body), extra)`.
-- @tparam integer status
-- @tparam string title
-- @tparam string body HTML
-- @tparam[opt] table extra
local function render(status, title, body, extra)
  return status, headers(extra), page(title, body)
end

--- A 302 to location, with the HTML headers and an empty body.
-- @tparam string location
-- @tparam[opt] table extra
local function redirect(location, extra)
  local h = headers(extra)
  h.Location = location
  return 302, h, ""
end

--- A page for a refusal or a failure: message (escaped) in `<p id="error">`,
-- then a link "Back to the start" to back when given.
-- @tparam integer status
-- @tparam string title
-- @tparam string message plain text
-- @tparam[opt] table extra
-- @tparam[opt] string back href
local function problem(status, title, message, extra, back)
  local body = "<p id=\"error\">" .. escape(message) .. "</p>"
  if back then body = body .. "\n<p><a href=\"" .. escape(back) .. "\">Back to the start</a></p>" end
  return render(status, title, body, extra)
end

return {
  escape = escape,
  CSP = CSP,
  SECURITY_HEADERS = SECURITY_HEADERS,
  headers = headers,
  page = page,
  respond = respond,
  render = render,
  redirect = redirect,
  problem = problem,
}
