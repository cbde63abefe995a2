--- smugoauth: OAuth 1.0a signing and quick scripting of the SmugMug API v2.
-- The C core (`smugoauth.core`) does bytes, crypto and HTTP; this module adds
-- the flows, the API session and the sugar around them.
-- @module smugoauth
local core = require "smugoauth.core"
local client = require "smugoauth.client"
local config = require "smugoauth.config"
local credentials = require "smugoauth.credentials"
local errors = require "smugoauth.errors"
local response = require "smugoauth.response"
local upload = require "smugoauth.upload"
local loop = require "smugoauth.loop"

--- Create a client from a config file (default: `SMUGOAUTH_CONFIG`, else
-- `./config.json` when there is one, else `$XDG_CONFIG_HOME/smugoauth/config.json`
-- or `~/.config/smugoauth/config.json`: see smugoauth.config). Returns the
-- client, or nil, err (code "config").
-- Extra options (e.g. debug, timeout) may be given as the second argument;
-- there `getenv`, an os.getenv replacement, finds the config and its
-- environment overrides instead of the process environment (embedders, tests).
local function from_config(path, opts)
  local getenv = opts and opts.getenv
  local conf, err = config.load(path, getenv)
  if not conf then return nil, err end
  local o = { key = conf.key, secret = conf.secret }
  for _, k in ipairs(config.OPTIONAL) do o[k] = conf[k] end
  for k, v in pairs(opts or {}) do
    if k ~= "getenv" then o[k] = v end
  end
  local c = client.new(o)
  c.config_path = conf.path       -- named when stored credentials do not fit it
  return c
end

--- Load stored credentials: `smugoauth.load_credentials([path [, client]])`
-- -> token, secret (and the whole record), or nil, err. With a client, the
-- credentials must have been issued for its API key and its oauth, api and
-- upload origins (see smugoauth.credentials.check for files written by older
-- versions); otherwise nil, err (code "config") and the token goes nowhere.
-- Scripts that read a config they do not control should pass the client.
local function load_credentials(path, c)
  if c ~= nil and (type(c) ~= "table" or type(c.api_origin) ~= "string") then
    error("load_credentials: the second argument must be a client", 2)
  end
  local data, err = credentials.load(path)
  if not data then return nil, err end
  if c ~= nil then
    local ok, cerr = credentials.check(data, c, { credentials = path or credentials.default_path(),
                                                  config = c.config_path })
    if not ok then return nil, cerr end
  end
  return data.token, data.secret, data
end

return {
  _VERSION = "smugoauth " .. core.version,
  version = core.version,
  core = core,

  --- Percent-encode the bytes of `s` as RFC 5849 section 3.6 says.
  -- @function percent_encode
  percent_encode = core.percent_encode,

  --- Decode `%XX` escapes; `+` is a space unless `plus` is false.
  -- @function percent_decode
  percent_decode = core.percent_decode,

  --- The signature base string of a request: `base_string(method, url [, params])`.
  -- `params` is an array of `{name, value}` pairs or a map of name to a string
  -- or an array of strings (decoded values, e.g. a form body).
  -- @function base_string
  base_string = core.base_string,

  --- Sign a request. Options: method (default "GET"), url, params, consumer_key,
  -- consumer_secret, token, token_secret, signature_method ("HMAC-SHA1" default,
  -- "HMAC-SHA256", "HMAC-SHA512", "PLAINTEXT", "RSA-SHA1"), rsa_key (PEM),
  -- callback, verifier, realm, nonce, timestamp, version ("1.0"; false omits it).
  -- Returns a table with signature, base_string, authorization, query, oauth
  -- (array of {name, value} pairs), nonce and timestamp.
  -- @function sign
  sign = core.sign,

  --- Decode an `application/x-www-form-urlencoded` string into {name, value} pairs.
  -- @function parse_form
  parse_form = core.parse_form,

  --- A signer object for one set of credentials (the keyed MAC state is kept
  -- between calls): `smugoauth.signer{consumer_key=, consumer_secret=, token=,
  -- token_secret=, signature_method=, rsa_key=, realm=, version=}` with
  -- `s:authorization(method, url [, params [, true]])` -> "OAuth ..." (and the
  -- base string when the fourth argument is true), and
  -- `s:sign(method, url [, params])` -> the same table as `sign`.
  -- @function signer
  signer = core.signer,

  --- Create a client: see `smugoauth.client` (its OPTIONS) for the options.
  -- @function new
  new = client.new,
  from_config = from_config,
  load_credentials = load_credentials,

  --- The content type uploads use for a file name (by its extension).
  -- @function content_type_for
  content_type_for = upload.content_type_for,

  --- A new event loop (smugoauth.loop): `smugoauth.loop([opts])`.
  -- @function loop
  loop = loop.new,
  --- Run fn(...) as a task of the default loop until every task of it has
  -- finished: `smugoauth.run(fn, ...)` -> fn's results, or raise its error.
  -- @function run
  run = loop.run,
  --- Start a task (on the running task's loop, else the default loop).
  -- @function spawn
  spawn = loop.spawn,
  --- Sleep `seconds`: yields inside a task, blocks outside one.
  -- @function sleep
  sleep = loop.sleep,
  --- A limit of n concurrent holders: `lim:run(fn, ...)`, `lim:spawn(fn, ...)`.
  -- @function limit
  limit = loop.limit,
  --- A bounded queue between tasks: `smugoauth.queue(capacity)` with
  -- `q:put(item)`, `q:get()`, `q:close()` (smugoauth.loop.queue).
  -- @function queue
  queue = loop.queue,
  --- Call fn(item, i) for each item, at most `concurrency` at a time:
  -- `smugoauth.map(list, fn [, {concurrency = 8}])` -> results, errors.
  -- @function map
  map = loop.map,

  errors = errors,
  config = config,
  --- The metatable of responses (`getmetatable(res) == smugoauth.Response`).
  Response = response.mt,
}
