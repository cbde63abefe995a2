#!/usr/bin/python3
"""oauthlib_sign.py -- sign requests with oauthlib, for spec/core/crosscheck_spec.lua.

Usage:  /usr/bin/python3 spec/support/oauthlib_sign.py < requests.jsonl > results.jsonl

Each input line is one JSON object (written by the Lua spec with lua-cjson):

  id                 request number, echoed back
  method, url        the HTTP request line (url with its query string)
  form               [[name, value], ...] decoded form-body parameters ([] or {})
  consumer_key, consumer_secret, token, token_secret, callback, verifier,
  realm, nonce, timestamp                   strings; absent when not used
  version            "1.0" or false (oauth_version left out)
  signature_method   HMAC-SHA1 | HMAC-SHA256 | HMAC-SHA512 | PLAINTEXT | RSA-SHA1
  rsa_key_file       path of the PEM private key for RSA-SHA1
  ours_authorization, ours_query   what smugoauth produced, parsed back here

Each output line (same order) is one JSON object:

  id
  base_string        from oauthlib.oauth1.rfc5849.signature: collect_parameters
                     (URI query + the oauth_* parameters as an Authorization
                     header + the form body), normalize_parameters,
                     base_string_uri, signature_base_string
  signature          the signature.sign_*_with_client function over that string
  client_signature   oauth_signature from oauthlib.oauth1.Client(...).sign(...)
                     with the same nonce and timestamp, or null when the Client
                     cannot express the request (client_note says why)
  ours_header        our Authorization header parsed by oauthlib
                     (utils.parse_authorization_header + unescape): [[n, v], ...]
  ours_query         our query string parsed by oauthlib.common.urldecode
  error              present instead of the above when oauthlib raised

Nothing here is smugoauth code: a match means two implementations agree.
"""
import json
import re
import sys
import types
import urllib.parse

from oauthlib.common import urldecode, urlencode
from oauthlib.oauth1 import Client
from oauthlib.oauth1.rfc5849 import parameters, signature, utils

SIGNERS = {
    "HMAC-SHA1": signature.sign_hmac_sha1_with_client,
    "HMAC-SHA256": signature.sign_hmac_sha256_with_client,
    "HMAC-SHA512": signature.sign_hmac_sha512_with_client,
    "RSA-SHA1": signature.sign_rsa_sha1_with_client,
    "PLAINTEXT": signature.sign_plaintext_with_client,
}

_keys = {}


def rsa_key(path):
    if path not in _keys:
        with open(path, encoding="ascii") as f:
            _keys[path] = f.read()
    return _keys[path]


def pairs(value):
    """lua-cjson writes an empty Lua table as {}: treat it as an empty list."""
    if not value:
        return []
    return [(p[0], p[1]) for p in value]


def oauth_params(req):
    """The protocol parameters, as the RFC and smugoauth define them."""
    ps = [("oauth_consumer_key", req["consumer_key"])]
    if req.get("token"):
        ps.append(("oauth_token", req["token"]))
    ps.append(("oauth_signature_method", req["signature_method"]))
    ps.append(("oauth_timestamp", req["timestamp"]))
    ps.append(("oauth_nonce", req["nonce"]))
    if req.get("version", "1.0") is not False:
        ps.append(("oauth_version", req.get("version", "1.0")))
    if req.get("callback"):
        ps.append(("oauth_callback", req["callback"]))
    if req.get("verifier"):
        ps.append(("oauth_verifier", req["verifier"]))
    return ps


def raw_realm(req):
    """The realm for oauthlib's own headers, which it writes raw between quotes
    (no escaping): left out when it holds '"' or '\\'. It is never signed."""
    realm = req.get("realm")
    if realm is not None and re.search(r'["\\]', realm):
        return None
    return realm


def credentials(req):
    return types.SimpleNamespace(
        client_secret=req.get("consumer_secret"),
        resource_owner_secret=req.get("token_secret"),
        rsa_key=rsa_key(req["rsa_key_file"]) if req.get("rsa_key_file") else None,
    )


def via_signature_module(req):
    """Base string and signature from the signature module's functions."""
    url, form = req["url"], pairs(req.get("form"))
    # The protocol parameters travel in the Authorization header, as smugoauth
    # sends them; collect_parameters parses and decodes the header itself.
    header = parameters.prepare_headers(oauth_params(req), realm=raw_realm(req))
    params = signature.collect_parameters(
        uri_query=urllib.parse.urlparse(url).query, body=form, headers=header)
    base = signature.signature_base_string(
        req["method"], signature.base_string_uri(url),
        signature.normalize_parameters(params))
    return base, SIGNERS[req["signature_method"]](base, credentials(req))


def via_client(req):
    """oauth_signature as oauthlib's Client puts it in the Authorization header."""
    if req.get("version", "1.0") != "1.0":
        return None, "Client always sends oauth_version=1.0"
    form = pairs(req.get("form"))
    cred = credentials(req)
    client = Client(
        req["consumer_key"],
        client_secret=cred.client_secret,
        resource_owner_key=req.get("token") or None,
        resource_owner_secret=cred.resource_owner_secret,
        callback_uri=req.get("callback") or None,
        signature_method=req["signature_method"],
        rsa_key=cred.rsa_key,
        verifier=req.get("verifier") or None,
        realm=raw_realm(req),
        nonce=req["nonce"],
        timestamp=req["timestamp"],
    )
    if form:
        # A form-encoded string, not the list: Client turns a list of pairs
        # into a dict (oauthlib.common.to_unicode) and loses duplicate names.
        _, headers, _ = client.sign(
            req["url"], http_method=req["method"], body=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
    else:
        _, headers, _ = client.sign(req["url"], http_method=req["method"])
    got = dict(utils.parse_authorization_header(headers["Authorization"]))
    return utils.unescape(got["oauth_signature"]), None


def parse_ours(req):
    header = [(n, utils.unescape(v)) for n, v in
              utils.parse_authorization_header(req["ours_authorization"])]
    query = [list(p) for p in urldecode(req["ours_query"])]
    return [list(p) for p in header], query


def handle(req):
    out = {"id": req["id"]}
    try:
        out["base_string"], out["signature"] = via_signature_module(req)
        out["client_signature"], out["client_note"] = via_client(req)
        out["ours_header"], out["ours_query"] = parse_ours(req)
    except Exception as e:  # report, never stop the batch
        out["error"] = "%s: %s" % (type(e).__name__, e)
    return out


def main():
    out = sys.stdout
    for line in sys.stdin.buffer:
        if line.strip():
            req = json.loads(line.decode("utf-8"))
            out.write(json.dumps(handle(req), ensure_ascii=False) + "\n")
    out.flush()


if __name__ == "__main__":
    sys.stdout.reconfigure(encoding="utf-8")
    main()
