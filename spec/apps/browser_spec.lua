-- browser_spec.lua -- the web flow (examples/web.lua) through a real browser:
-- Debian's chromium driven by playwright-core (spec/support/browser/flow.js)
-- against the sandbox, with "another local user" listening on [::1] at the
-- app's port (Chromium tries ::1 first for localhost), who must receive
-- nothing. What the browser needs is installed when missing (apt-get:
-- chromium, nodejs/npm; npm ci: playwright-core), never skipped.
-- SMUGOAUTH_KEEP_SCREENSHOTS=DIR keeps the screenshots there.
local cjson = require "cjson.safe"
local sandbox = require "support.sandbox"
local web = require "support.web_fixture"

local BROWSER_DIR = "spec/support/browser"

-- Run a shell command; true when it exited 0.
local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  return ok == true and how == "exit" and code == 0
end

local function have(cmd)
  return sh("command -v " .. cmd .. " >/dev/null 2>&1")
end

-- apt-get install as root (or through sudo), updating the lists when needed.
local function apt_install(pkgs)
  local sudo = sh("[ \"$(id -u)\" -eq 0 ]") and "" or "sudo "
  local install = sudo .. "env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq " .. pkgs ..
    " >/dev/null 2>&1"
  return sh(install) or (sh(sudo .. "apt-get update -qq >/dev/null 2>&1") and sh(install))
end

-- Chromium, node, npm and playwright-core: there, or installed now.
local function ensure_browser()
  if not sh("test -x /usr/bin/chromium") then
    assert(apt_install("chromium"), "could not install chromium with apt-get")
  end
  if not have("node") or not have("npm") then
    assert(apt_install("nodejs npm"), "could not install nodejs and npm with apt-get")
  end
  if not sh("test -f " .. BROWSER_DIR .. "/node_modules/playwright-core/package.json") then
    assert(sh("cd " .. BROWSER_DIR .. " && npm ci --no-audit --no-fund >/dev/null 2>&1"),
      "npm ci in " .. BROWSER_DIR .. " failed")
  end
end

local function is_png(path)
  local s = web.read_file(path)
  return s ~= nil and s:sub(1, 8) == "\137PNG\r\n\26\n" and #s > 5000
end

describe("the web flow in chromium", function()
  local sb, w, dir, spy, spy_err

  setup(function()
    ensure_browser()
    sb = sandbox.start { key = "browser-key", secret = "browser s3cr&t" }
    dir = web.tmpdir()
    w = web.start { config = web.write_config(dir, sb), key_file = dir .. "/cookie.key" }
    spy, spy_err = web.spy("::1", w.port)
  end)
  teardown(function()
    if spy then spy:stop() end
    if w then w:stop() end
    if sb then sb:stop() end
    local keep = os.getenv("SMUGOAUTH_KEEP_SCREENSHOTS")
    if keep and dir then sh("mkdir -p " .. web.q(keep) .. " && cp " .. web.q(dir) .. "/*.png " .. web.q(keep)) end
    web.remove_dir(dir)
  end)

  it("authorizes, approves, comes back and shows the escaped JSON with NickName", function()
    if not spy then
      print("\n  NOTE: [::1]:" .. w.port .. " cannot be listened on here (" .. tostring(spy_err) ..
        "): the other-user check is skipped; the rest of the flow runs")
    end
    local before = sb:stats().verified
    local p = assert(io.popen("timeout 180 node " .. BROWSER_DIR .. "/flow.js --url " ..
      web.q(w.origin .. "/") .. " --out " .. web.q(dir) ..
      " --cross " .. web.q(sb.origin .. "/_sandbox/stats") .. " 2>&1"))
    local out = p:read("a")
    p:close()
    -- another user on [::1] at our port got nothing
    if spy then assert.same({}, spy.log(), "another local user on [::1] received requests") end
    local report = cjson.decode(out:match("({.*})%s*$") or "")
    assert.is_table(report, "flow.js printed no report:\n" .. out)
    assert.is_true(report.ok, "the browser flow failed: " .. tostring(report.error) .. "\n" .. out)

    -- every step, in order, on the expected origins: the app's is 127.0.0.1
    assert.matches("^http://127%.0%.0%.1:%d+$", w.origin)
    local names = {}
    for _, s in ipairs(report.steps) do
      names[#names + 1] = s.name
      assert.truthy(s.url:find(w.origin .. "/", 1, true) == 1 or s.url:find(sb.origin .. "/", 1, true) == 1,
        s.name .. ": " .. s.url)
    end
    assert.equal("start", names[1])
    assert.equal(w.origin .. "/", report.steps[1].url)
    assert.matches("^" .. sb.origin:gsub("%p", "%%%0") .. "/services/oauth/1%.0a/authorize%?",
      report.approve_page)
    assert.matches("Access=Full", report.approve_page, 1, true)
    assert.matches("Permissions=Modify", report.approve_page, 1, true)
    local test_step
    for _, s in ipairs(report.steps) do if s.name == "test" then test_step = s end end
    assert.equal(w.origin .. "/test?path=%2Fapi%2Fv2%21authuser", test_step.url)
    assert.equal(200, test_step.status)

    -- the form's default path, and the JSON it showed
    assert.equal("/api/v2!authuser", report.default_path)
    assert.equal("tester", report.nickname)
    assert.matches('"NickName": "tester"', report.result_text, 1, true)
    assert.equal(0, report.scripts)

    -- the cookie: HttpOnly, SameSite=Lax, not readable by page scripts
    assert.equal("", report.document_cookie)
    assert.equal(1, #report.cookies)
    local c = report.cookies[1]
    assert.equal("smugoauth_at", c.name)
    assert.equal("127.0.0.1", c.domain)
    assert.equal("/", c.path)
    assert.is_true(c.httpOnly)
    assert.equal("Lax", c.sameSite)

    -- a path off the API: refused, and its markup shown as text
    assert.equal(400, report.refused_status)
    assert.matches('/api/v2.evil.com/\\"><b>x</b>', report.refused_text, 1, true)
    assert.equal(0, report.refused_bold)

    -- /authorize typed by the user goes to the provider; opened from another
    -- origin's page (same site: another port of 127.0.0.1) it is refused
    assert.matches("^" .. sb.origin:gsub("%p", "%%%0") .. "/services/oauth/1%.0a/authorize%?", report.typed_url)
    assert.equal(200, report.typed_status)
    assert.equal(w.origin .. "/authorize", report.cross_url)
    assert.equal(403, report.cross_status)
    assert.matches("own pages", report.cross_text, 1, true)
    -- signed calls the provider verified: two request tokens (the click, the
    -- typed URL), one access token, one API GET; none for the cross attempt
    assert.equal(before + 4, sb:stats().verified)

    -- no CSP violation or script error on our pages
    for _, line in ipairs(report.console) do
      assert.falsy(line:find("Content Security Policy", 1, true), line)
      assert.falsy(line:find("pageerror", 1, true), line)
    end

    assert.is_true(is_png(report.screenshot), "no screenshot at " .. tostring(report.screenshot))
    assert.is_true(is_png(report.refused_screenshot))
  end)
end)
