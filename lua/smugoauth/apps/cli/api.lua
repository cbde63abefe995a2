--- smugoauth.apps.cli.api: the commands that call the API with the stored
-- credentials: `whoami`, `get` (with `--paginate`), `post`, `patch`,
-- `delete`.
-- @module smugoauth.apps.cli.api
local cjson = require "cjson.safe"
local context = require "smugoauth.apps.cli.context"
local output = require "smugoauth.apps.cli.output"

local status, fail, usage = context.status, context.fail, context.usage
local safe = output.safe

local QUERY = { "query", arg = true, many = true }

-- NAME=VALUE strings into {name, value} pairs.
local function pairs_of(cmd, opt, list)
  local out = {}
  for _, s in ipairs(list or {}) do
    local k, v = s:match("^([^=]+)=(.*)$")
    if not k then usage(cmd, opt .. " expects NAME=VALUE (got '" .. s .. "')") end
    out[#out + 1] = { k, v }
  end
  return out
end

-- PATH must be an API path or a URL.
local function check_path(cmd, p)
  if p:sub(1, 1) ~= "/" and not p:match("^https?://") then
    usage(cmd, "PATH must start with / (e.g. /api/v2!authuser), got '" .. p .. "'")
  end
end

-- An API path from PATH or a URL on the API origin.
local function api_path(ctx, cmd, p)
  if p:sub(1, 1) == "/" then return p end
  local origin = ctx:client().api_origin
  if p:sub(1, #origin + 1) == origin .. "/" then return p:sub(#origin + 1) end
  usage(cmd, "URL " .. p:gsub("[?#].*", "") .. " is not on the API origin " .. origin)
end

-- Print the answer of an API call and turn a failure into its status.
local function finish_call(ctx, name, res, err)
  if not res then
    if err.code == "http" and err.body and err.body ~= "" then ctx:body_out(err.body) end
    ctx:fail_err(err, name, true)
  end
  ctx:body_out(res.body)
  local body = cjson.decode(res.body or "")
  if type(body) == "table" and body.stat == "fail" then
    fail(status.ERROR, ("%s: the API answered \"stat\": \"fail\": %s"):format(name,
      tostring(body.message or body.Message or "no message")))
  end
  return status.OK
end

local whoami = {
  name = "whoami", summary = "show whom the stored credentials log in as",
  options = { ["--json"] = { "json" } }, max = 0,
  help = [[
usage: smugoauth whoami [--json]

GET /api/v2!authuser with the stored credentials and print "NickName (Name)".

Options:
  --json    print the whole User object as JSON
]],
  run = function(ctx, opts)
    local api = ctx:session()
    local res, err = api:get("/api/v2!authuser")
    if not res then ctx:fail_err(err, "whoami", true) end
    local body = res:json()
    local user = type(body) == "table" and type(body.Response) == "table" and body.Response.User
    if type(user) ~= "table" then
      fail(status.ERROR, "whoami: no Response.User in the answer to GET /api/v2!authuser")
    end
    if opts.json then
      ctx:json_out(user)
    else
      local s = tostring(user.NickName)
      if type(user.Name) == "string" and user.Name ~= "" then s = s .. " (" .. user.Name .. ")" end
      ctx:out(safe(s), "\n")
    end
    return status.OK
  end,
}

local get = {
  name = "get", summary = "GET an API path and print the JSON",
  options = { ["-q"] = QUERY, ["--query"] = QUERY, ["--paginate"] = { "paginate" } },
  min = 1, max = 1, args = "PATH",
  help = [[
usage: smugoauth get PATH [-q NAME=VALUE]... [--paginate]

GET an API v2 path (e.g. /api/v2!authuser, /api/v2/user/NICK!albums) with the
stored credentials and print the JSON answer. PATH may also be a full URL on
the API origin.

Options:
  -q, --query NAME=VALUE   add a query parameter (repeatable): -q count=50 -q _expand=User
  --paginate               follow Response.Pages.NextPage to the end and print the
                           items of every page as one JSON array
]],
  run = function(ctx, opts, pos)
    check_path("get", pos[1])
    local query = pairs_of("get", "-q", opts.query)
    local path = api_path(ctx, "get", pos[1])
    local api = ctx:session()
    if not opts.paginate then
      local res, err = api:get(path, query)
      return finish_call(ctx, "get", res, err)
    end
    local items = {}
    for item, err in api:each(path, query) do
      if not item then ctx:fail_err(err, "get", true) end
      items[#items + 1] = item
    end
    if #items == 0 then ctx:out("[]\n") else ctx:json_out(items) end
    return status.OK
  end,
}

-- The body of --json: the argument, or @FILE, or @- (stdin); valid JSON.
local function read_json_arg(ctx, cmd, v)
  if v:sub(1, 1) == "@" then
    local name = v:sub(2)
    local text
    if name == "-" then
      text = ctx.stdin:read("a")
    else
      local f, oerr = io.open(name, "rb")
      if not f then usage(cmd, "--json " .. v .. ": " .. tostring(oerr)) end
      text = f:read("a")
      f:close()
    end
    if not text then usage(cmd, "--json " .. v .. ": cannot be read") end
    v = text
  end
  local ok, jerr = cjson.decode(v)
  if ok == nil then usage(cmd, "--json: not valid JSON (" .. tostring(jerr) .. ")") end
  return v
end

-- The command that sends method to a path (post, patch, delete).
local function verb_command(name, method, what)
  local FIELD = { "field", arg = true, many = true }
  return {
    name = name, summary = what,
    options = { ["-q"] = QUERY, ["--query"] = QUERY, ["-f"] = FIELD, ["--field"] = FIELD,
                ["--json"] = { "json", arg = true } },
    min = 1, max = 1, args = "PATH",
    help = ([[
usage: smugoauth %s PATH [--json JSON | -f NAME=VALUE...] [-q NAME=VALUE]...

Send a signed %s to an API v2 path with the stored credentials and print the
JSON answer. PATH may also be a full URL on the API origin.

Options:
  --json JSON              the request body, sent as application/json (not part of
                           the signature); @FILE reads it from a file, @- from stdin
  -f, --field NAME=VALUE   a form field (repeatable), sent as
                           application/x-www-form-urlencoded and signed
  -q, --query NAME=VALUE   a query parameter (repeatable)
]]):format(name, method),
    run = function(ctx, opts, pos)
      check_path(name, pos[1])
      if opts.json and opts.field then usage(name, "give --json or -f, not both") end
      local query = pairs_of(name, "-q", opts.query)
      local form = opts.field and pairs_of(name, "-f", opts.field) or nil
      local body = opts.json and read_json_arg(ctx, name, opts.json) or nil
      local path = api_path(ctx, name, pos[1])
      local api = ctx:session()
      local res, err = api:request { method = method, path = path, query = query, form = form,
        body = body, content_type = body and "application/json" or nil }
      return finish_call(ctx, name, res, err)
    end,
  }
end

return {
  whoami = whoami,
  get = get,
  post = verb_command("post", "POST", "POST to an API path (--json or -f fields)"),
  patch = verb_command("patch", "PATCH", "PATCH an API path (--json or -f fields)"),
  delete = verb_command("delete", "DELETE", "DELETE an API path"),
}
