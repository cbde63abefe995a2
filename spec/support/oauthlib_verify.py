#!/usr/bin/python3
"""oauthlib_verify.py -- verify signed requests as an oauthlib server would,
for spec/core/sign_spec.lua.

Usage:  /usr/bin/python3 spec/support/oauthlib_verify.py < requests.jsonl > results.jsonl

Each input line is one JSON object:

  method, uri        the request line (uri with its query string, if any)
  headers            {name: value} (Authorization, Content-Type, ...)
  body               the request body ("" when none)
  consumer_key, consumer_secret, token, token_secret
                     what the server knows about the client and the token
  rsa_public_key     PEM, for RSA-SHA1

Each output line (same order) is one JSON object:

  valid              oauthlib.oauth1.SignatureOnlyEndpoint.validate_request:
                     the protocol parameters come from one place (header,
                     form body or query), none twice, and the signature it
                     recomputes (RFC 5849 3.4) matches
  error              why oauthlib refused the request, when it raised
  oauth_params       the protocol parameters oauthlib collected, {name: value}

Nothing here is smugoauth code: a valid request means another implementation
collected the same parameters and computed the same signature.
"""
import json
import sys

from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint
from oauthlib.oauth1.rfc5849 import errors


class Validator(RequestValidator):
    """Knows one client and one token; accepts any key, nonce or realm format."""

    def __init__(self, req):
        super().__init__()
        self.req = req

    enforce_ssl = False
    allowed_signature_methods = ("HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512",
                                 "PLAINTEXT", "RSA-SHA1")
    dummy_client = "dummy"

    def check_client_key(self, client_key):
        return True

    def check_nonce(self, nonce):
        return True

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        return True

    def validate_client_key(self, client_key, request):
        return client_key == self.req["consumer_key"]

    def get_client_secret(self, client_key, request):
        return self.req.get("consumer_secret") or ""

    def get_access_token_secret(self, client_key, token, request):
        return self.req.get("token_secret") or ""

    def get_rsa_key(self, client_key, request):
        return self.req.get("rsa_public_key")


def handle(req):
    endpoint = SignatureOnlyEndpoint(Validator(req))
    out = {}
    try:
        # _create_request raises the refusals validate_request only logs
        request = endpoint._create_request(req["uri"], req["method"], req.get("body", ""),
                                           req.get("headers", {}))
        out["oauth_params"] = dict(request.oauth_params)
    except errors.OAuth1Error as e:
        desc = e.description
        if isinstance(desc, tuple):     # oauthlib 3.2 passes (format, arg) for one of them
            desc = desc[0] % desc[1:]
        out["valid"] = False
        out["error"] = desc
        return out
    valid, _ = endpoint.validate_request(req["uri"], req["method"], req.get("body", ""),
                                         req.get("headers", {}))
    out["valid"] = valid
    return out


def main():
    out = sys.stdout
    for line in sys.stdin.buffer:
        if line.strip():
            out.write(json.dumps(handle(json.loads(line.decode("utf-8")))) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
