--- smugoauth: OAuth 1.0a signing and quick scripting of the SmugMug API v2.
-- The C core (`smugoauth.core`) does bytes, crypto and HTTP; this module adds
-- the flows, the API session and the sugar around them.
-- @module smugoauth
local core = require "smugoauth.core"

local M = {
  _VERSION = "smugoauth " .. core.version,
  version = core.version,
  core = core,
}

--- Percent-encode the bytes of `s` as RFC 5849 section 3.6 says.
-- @function percent_encode
M.percent_encode = core.percent_encode

--- Decode `%XX` escapes; `+` is a space unless `plus` is false.
-- @function percent_decode
M.percent_decode = core.percent_decode

--- The signature base string of a request: `base_string(method, url [, params])`.
-- `params` is an array of `{name, value}` pairs or a map of name to a string
-- or an array of strings (decoded values, e.g. a form body).
-- @function base_string
M.base_string = core.base_string

--- Sign a request. Options: method (default "GET"), url, params, consumer_key,
-- consumer_secret, token, token_secret, signature_method ("HMAC-SHA1" default,
-- "HMAC-SHA256", "HMAC-SHA512", "PLAINTEXT", "RSA-SHA1"), rsa_key (PEM),
-- callback, verifier, realm, nonce, timestamp, version ("1.0"; false omits it).
-- Returns a table with signature, base_string, authorization, query, oauth
-- (array of {name, value} pairs), nonce and timestamp.
-- @function sign
M.sign = core.sign

--- Decode an `application/x-www-form-urlencoded` string into {name, value} pairs.
-- @function parse_form
M.parse_form = core.parse_form

return M
