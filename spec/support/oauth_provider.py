#!/usr/bin/python3
"""oauth_provider.py -- an independent OAuth 1.0a provider speaking SmugMug's
endpoints, for smugoauth's tests.  Signatures are checked by oauthlib's
provider endpoints (not by our C core), so a passing test means two separate
implementations agree.

Run:  /usr/bin/python3 spec/support/oauth_provider.py [options]
The first stdout line is "PORT <n>" (flushed).  SIGTERM/SIGINT stop it cleanly.

Options
  --host H                 address to bind (127.0.0.1)
  --port N                 port; 0 picks a free one (0)
  --cert FILE --key FILE   serve HTTPS with this certificate chain and key
  --consumer-key K         the one registered consumer key (smugoauth-test-key)
  --consumer-secret S      its secret (smugoauth-test-secret); alias --secret
  --rsa-public-key FILE    PEM public key or certificate of the consumer;
                           enables RSA-SHA1/RSA-SHA256/RSA-SHA512
  --timestamp-window S     accepted clock skew in seconds (300)
  --albums N               albums of user "tester" (250)
  --token-secret-suffix X  appended to every issued token secret (""), e.g.
                           "&=+ %/" to test the client's key encoding
  --parent-pid PID         exit when this process is gone
  --verbose                log requests and errors to stderr

Endpoints
  GET|POST /services/oauth/1.0a/getRequestToken   (oauth_callback: oob | URI)
  GET      /services/oauth/1.0a/authorize?oauth_token=T[&Access=&Permissions=]
  GET|POST /services/oauth/1.0a/getAccessToken    (oauth_verifier)
  GET      /api/v2!authuser
  GET      /api/v2/user/tester
  GET      /api/v2/user/tester!albums?start=S&count=C
  GET      /api/v2/album/K<n>
  ANY      /api/v2/echo[...]   JSON of what was received: method, path, query,
           query_params, headers, header_list, content_type, authorization,
           body, body_length, body_base64, form, json, oauth, signed_params,
           base_string, token {access, permissions}; oauth_signature values
           are replaced by "REDACTED".  Every /api/ path needs a valid
           OAuth signature (ResourceEndpoint) before it is answered.

Failures: form-encoded body "oauth_problem=<p>[&extra...]&oauth_problem_advice="
plus "WWW-Authenticate: OAuth realm=\"<origin>/\"".  401: signature_invalid
(&debug_sbs=<provider's base string>), nonce_used, timestamp_refused
(&oauth_acceptable_timestamps=a-b), token_rejected, token_used, token_revoked,
consumer_key_unknown, permission_unknown (not yet authorized), verifier_invalid.
400: parameter_absent (&oauth_parameters_absent=a&b), parameter_rejected
(&oauth_parameters_rejected=...), signature_method_rejected, version_rejected.

Test control (no OAuth, never faulted); parameters in the query or a form body:
  GET|POST /_test/approve?oauth_token=T[&Access=&Permissions=]
           -> text "<verifier>\n[<redirect URL>\n]"; 404 for unknown/used tokens
  GET|POST /_test/access_token[?Access=&Permissions=]
           -> "oauth_token=...&oauth_token_secret=..." (ready to use)
  POST     /_test/revoke?oauth_token=T   -> later use answers token_revoked
  POST     /_test/mode  fail<status>=N (400..599, queued in the order given),
           retry_after=S (Retry-After on faults), delay=S [delay_count=N],
           scope=api|oauth|all (default api: /api/ paths), clear=1
           -> JSON of the mode now in force; 400 for unknown parameters
  GET      /_test/stats -> JSON {total, requests{path: n}, signatures_verified,
           signatures_failed, problems{p: n}, faults_served{status: n},
           nonces{nonce: n}, nonces_seen, log[{method, path, query, nonce,
           timestamp, signature_method, token, status, fault, time}], mode}
  POST     /_test/reset -> clears stats and modes (tokens kept)
"""
import argparse
import base64
import hmac
import json
import os
import secrets
import signal
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from oauthlib.common import urlencode as oauth_urlencode
from oauthlib.oauth1 import (AccessTokenEndpoint, AuthorizationEndpoint,
                             RequestTokenEndpoint, RequestValidator,
                             ResourceEndpoint)
from oauthlib.oauth1.rfc5849 import errors, signature, utils

OAUTH_PREFIX = "/services/oauth/1.0a/"
NICKNAME = "tester"
MANDATORY = ("oauth_consumer_key", "oauth_signature_method", "oauth_signature",
             "oauth_timestamp", "oauth_nonce")
HMAC_METHODS = ("HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512", "PLAINTEXT")
RSA_METHODS = ("RSA-SHA1", "RSA-SHA256", "RSA-SHA512")
LOG_MAX = 10000


# --------------------------------------------------------------- state

class Store:
    """All provider state, in memory, guarded by one lock."""

    def __init__(self):
        self.lock = threading.RLock()
        self.request_tokens = {}   # token -> dict(secret, client_key, callback, verifier, used, ...)
        self.access_tokens = {}    # token -> dict(secret, client_key, revoked, access, permissions)
        self.nonces = {}           # (client_key, timestamp, nonce, token) -> time first seen
        self.exchange_lock = threading.Lock()   # serialises getAccessToken
        self.reset_stats()
        self.reset_mode()

    def reset_stats(self):
        with self.lock:
            self.stats = {"total": 0, "requests": {}, "signatures_verified": 0,
                          "signatures_failed": 0, "problems": {}, "faults_served": {},
                          "nonces": {}, "log": []}

    def reset_mode(self):
        with self.lock:
            self.faults = []        # [[status, remaining], ...] served in order
            self.retry_after = None
            self.delay = 0.0
            self.delay_count = 0
            self.scope = "api"

    def bump(self, table, key, n=1):
        with self.lock:
            t = self.stats[table]
            t[key] = t.get(key, 0) + n

    def purge_nonces(self, window):
        """Forget nonces whose timestamps can no longer pass the window."""
        cutoff = time.time() - 2 * window - 5
        with self.lock:
            if len(self.nonces) > 1000:
                for k, seen in list(self.nonces.items()):
                    if seen < cutoff:
                        del self.nonces[k]


def flag(request, problem, **extra):
    """Note on the oauthlib request why the validator refused it."""
    request.__dict__.setdefault("smug_problems", []).append((problem, extra))


def problems_of(request):
    return request.__dict__.get("smug_problems", []) if request is not None else []


# ----------------------------------------------------------- validator

class Validator(RequestValidator):
    """oauthlib RequestValidator over Store, with relaxed format checks."""

    def __init__(self, store, cfg):
        super().__init__()
        self.store = store
        self.cfg = cfg

    # format checks relaxed: 1..256 printable characters (spaces and
    # non-ASCII allowed), for keys, tokens, nonces and verifiers alike
    @property
    def safe_characters(self):
        return set(chr(c) for c in range(0x20, 0x7F))

    def _check(self, value, bounds):
        return (isinstance(value, str) and bounds[0] <= len(value) <= bounds[1]
                and value.isprintable())

    def check_client_key(self, client_key):
        return self._check(client_key, self.client_key_length)

    def check_request_token(self, request_token):
        return self._check(request_token, self.request_token_length)

    def check_access_token(self, request_token):
        return self._check(request_token, self.access_token_length)

    def check_nonce(self, nonce):
        return self._check(nonce, self.nonce_length)

    def check_verifier(self, verifier):
        return self._check(verifier, self.verifier_length)

    client_key_length = property(lambda self: (1, 256))
    request_token_length = property(lambda self: (1, 256))
    access_token_length = property(lambda self: (1, 256))
    nonce_length = property(lambda self: (1, 256))
    verifier_length = property(lambda self: (1, 256))
    enforce_ssl = property(lambda self: False)
    realms = property(lambda self: [])

    @property
    def timestamp_lifetime(self):
        return self.cfg.timestamp_window

    @property
    def allowed_signature_methods(self):
        return HMAC_METHODS + (RSA_METHODS if self.cfg.rsa_public_pem else ())

    def check_realms(self, realms):
        return True   # SmugMug ignores realm

    dummy_client = property(lambda self: "dummy_client")
    dummy_request_token = property(lambda self: "dummy_request_token")
    dummy_access_token = property(lambda self: "dummy_access_token")

    # secrets and keys
    def get_client_secret(self, client_key, request):
        if client_key == self.cfg.consumer_key:
            return self.cfg.consumer_secret
        return "dummy-secret"

    def get_rsa_key(self, client_key, request):
        return self.cfg.rsa_public_pem

    def get_request_token_secret(self, client_key, token, request):
        with self.store.lock:
            rec = self.store.request_tokens.get(token)
            if rec and rec["client_key"] == client_key:
                return rec["secret"]
        return "dummy-secret"

    def get_access_token_secret(self, client_key, token, request):
        with self.store.lock:
            rec = self.store.access_tokens.get(token)
            if rec and rec["client_key"] == client_key:
                return rec["secret"]
        return "dummy-secret"

    # validation
    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        try:
            ts = int(timestamp)
        except (TypeError, ValueError):
            flag(request, "timestamp_refused")
            return False
        if abs(time.time() - ts) > self.cfg.timestamp_window:
            flag(request, "timestamp_refused")
            return False
        key = (client_key, timestamp, nonce, request_token or access_token or "")
        self.store.purge_nonces(self.cfg.timestamp_window)
        with self.store.lock:
            if key in self.store.nonces:
                flag(request, "nonce_used")
                return False
            self.store.nonces[key] = time.time()
        return True

    def validate_client_key(self, client_key, request):
        if client_key == self.cfg.consumer_key:
            return True
        flag(request, "consumer_key_unknown")
        return False

    def validate_request_token(self, client_key, token, request):
        with self.store.lock:
            rec = self.store.request_tokens.get(token)
            if not rec or rec["client_key"] != client_key:
                flag(request, "token_rejected")
                return False
            if rec["used"]:
                flag(request, "token_used")
                return False
        return True

    def validate_access_token(self, client_key, token, request):
        with self.store.lock:
            rec = self.store.access_tokens.get(token)
            if not rec or rec["client_key"] != client_key:
                flag(request, "token_rejected")
                return False
            if rec["revoked"]:
                flag(request, "token_revoked")
                return False
        return True

    def validate_verifier(self, client_key, token, verifier, request):
        with self.store.lock:
            rec = self.store.request_tokens.get(token)
            if not rec:
                return False   # token_rejected already flagged
            if rec["verifier"] is None:
                flag(request, "permission_unknown")
                return False
            if not hmac.compare_digest(verifier.encode(), rec["verifier"].encode()):
                flag(request, "verifier_invalid")
                return False
        return True

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        if redirect_uri == "oob":
            return True
        u = urllib.parse.urlsplit(redirect_uri)
        if u.scheme and (u.netloc or u.path) and not any(c.isspace() for c in redirect_uri):
            return True
        flag(request, "parameter_rejected", oauth_parameters_rejected="oauth_callback")
        return False

    def validate_requested_realms(self, client_key, realms, request):
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    def verify_request_token(self, token, request):
        with self.store.lock:
            rec = self.store.request_tokens.get(token)
            return bool(rec) and not rec["used"]

    def verify_realms(self, token, realms, request):
        return True

    def get_default_realms(self, client_key, request):
        return []

    def get_realms(self, token, request):
        with self.store.lock:
            rec = self.store.request_tokens.get(token)
            return list(rec["realms"]) if rec else []

    def get_redirect_uri(self, token, request):
        with self.store.lock:
            return self.store.request_tokens[token]["callback"]

    # persistence
    def save_request_token(self, token, request):
        with self.store.lock:
            self.store.request_tokens[token["oauth_token"]] = {
                "secret": token["oauth_token_secret"], "client_key": request.client_key,
                "callback": request.redirect_uri, "realms": list(request.realms or []),
                "verifier": None, "used": False, "access": None, "permissions": None,
                "created": time.time()}

    def save_verifier(self, token, verifier, request):
        with self.store.lock:
            self.store.request_tokens[token]["verifier"] = verifier["oauth_verifier"]

    def save_access_token(self, token, request):
        with self.store.lock:
            rt = self.store.request_tokens.get(request.resource_owner_key, {})
            self.store.access_tokens[token["oauth_token"]] = {
                "secret": token["oauth_token_secret"], "client_key": request.client_key,
                "revoked": False, "access": rt.get("access"),
                "permissions": rt.get("permissions")}

    def invalidate_request_token(self, client_key, request_token, request):
        with self.store.lock:
            self.store.request_tokens[request_token]["used"] = True


class SmugRequestTokenEndpoint(RequestTokenEndpoint):
    """Request tokens whose secrets end with the configured suffix."""

    def __init__(self, validator, secret_suffix=""):
        super().__init__(validator)
        self.secret_suffix = secret_suffix

    def create_request_token(self, request, credentials):
        token = {"oauth_token": self.token_generator(),
                 "oauth_token_secret": self.token_generator() + self.secret_suffix,
                 "oauth_callback_confirmed": "true"}
        token.update(credentials)
        self.request_validator.save_request_token(token, request)
        return oauth_urlencode(token.items())


class SmugAccessTokenEndpoint(AccessTokenEndpoint):
    """SmugMug answers only oauth_token and oauth_token_secret."""

    def __init__(self, validator, secret_suffix=""):
        super().__init__(validator)
        self.secret_suffix = secret_suffix

    def create_access_token(self, request, credentials):
        request.realms = self.request_validator.get_realms(request.resource_owner_key, request)
        token = {"oauth_token": self.token_generator(),
                 "oauth_token_secret": self.token_generator() + self.secret_suffix}
        token.update(credentials)
        self.request_validator.save_access_token(token, request)
        return oauth_urlencode(token.items())


def six_digits():
    return "%06d" % secrets.randbelow(1000000)


# ------------------------------------------------------------- problems

# oauthlib error description (prefix) -> (oauth_problem, status)
DESCRIPTIONS = [
    ("Missing mandatory OAuth parameters", "parameter_absent", 400),
    ("Missing callback URI", "parameter_absent", 400),
    ("Missing resource owner", "parameter_absent", 400),
    ("Missing verifier", "parameter_absent", 400),
    ("Duplicate OAuth1 entries", "parameter_rejected", 400),
    ("oauth_ params must come from only 1", "parameter_rejected", 400),
    ("Invalid OAuth version", "version_rejected", 400),
    ("Invalid timestamp size", "timestamp_refused", 401),
    ("Timestamp must be an integer", "timestamp_refused", 401),
    ("Timestamp given is invalid", "timestamp_refused", 401),
    ("Invalid client key format", "consumer_key_unknown", 401),
    ("Invalid nonce format", "parameter_rejected", 400),
    ("Invalid resource owner key format", "token_rejected", 401),
    ("Invalid verifier format", "verifier_invalid", 401),
]
STATUS = {"signature_invalid": 401, "nonce_used": 401, "timestamp_refused": 401,
          "token_rejected": 401, "token_used": 401, "token_revoked": 401,
          "consumer_key_unknown": 401, "verifier_invalid": 401,
          "permission_unknown": 401, "parameter_absent": 400,
          "parameter_rejected": 400, "signature_method_rejected": 400,
          "version_rejected": 400}
PRIORITY = ["nonce_used", "timestamp_refused", "consumer_key_unknown", "token_rejected",
            "token_used", "token_revoked", "permission_unknown", "verifier_invalid",
            "parameter_rejected"]


class Problem(Exception):
    """An OAuth failure answered SmugMug's way (oauth_problem=...)."""

    def __init__(self, problem, advice="", status=None, extra=None):
        super().__init__(problem)
        self.problem = problem
        self.advice = advice
        self.status = status or STATUS.get(problem, 401)
        self.extra = list(extra or [])


def raw_oauth_params(uri, body, headers):
    """Every oauth_* name present in header, query or form body, with its value."""
    found = {}
    for source in ({"uri_query": urllib.parse.urlsplit(uri).query}, {"body": body},
                   {"headers": headers}):
        try:
            found.update(signature.collect_parameters(exclude_oauth_signature=False, **source))
        except ValueError:
            pass   # a malformed source contributes nothing
    return {k: v for k, v in found.items() if k.startswith("oauth_")}


def problem_from_error(exc, uri, body, headers, also_required, window):
    """Map an oauthlib error (or a parse ValueError) to a Problem."""
    if isinstance(exc, errors.InvalidSignatureMethodError):
        return Problem("signature_method_rejected", str(exc.description))
    desc = str(getattr(exc, "description", "") or exc)
    for prefix, problem, status in DESCRIPTIONS:
        if prefix in desc:
            break
    else:
        problem, status = "parameter_rejected", 400
    extra = []
    if problem == "parameter_absent":
        have = raw_oauth_params(uri, body, headers)
        absent = [p for p in MANDATORY + tuple(also_required) if not have.get(p)]
        if absent:
            extra.append(("oauth_parameters_absent", "&".join(absent)))
    elif problem == "timestamp_refused":
        now = int(time.time())
        extra.append(("oauth_acceptable_timestamps",
                      "%d-%d" % (now - window, now + window)))
    elif problem == "version_rejected":
        extra.append(("oauth_acceptable_versions", "1.0-1.0"))
    return Problem(problem, desc, status, extra)


def base_string_of(request):
    """The provider's signature base string for an oauthlib request."""
    return signature.signature_base_string(
        request.http_method, signature.base_string_uri(request.uri),
        signature.normalize_parameters(request.params))


def problem_from_request(request):
    """Why a validated request failed: a validator flag, else the signature."""
    flags = problems_of(request)
    names = [p for p, _ in flags]
    for want in PRIORITY:
        if want in names:
            extra = next(e for p, e in flags if p == want)
            return Problem(want, "", None, extra.items())
    if request is not None and request.validator_log.get("signature") is False:
        return Problem("signature_invalid", "", None,
                       [("debug_sbs", base_string_of(request))])
    return Problem("permission_denied", "request refused")


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SmugOAuthTestProvider/1.0"
    timeout = 60   # idle keep-alive connections

    # -- plumbing --------------------------------------------------------
    def setup(self):
        super().setup()
        if self.server.tls:
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(self.timeout)

    def log_message(self, fmt, *args):
        if self.server.cfg.verbose:
            super().log_message(fmt, *args)

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass   # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, status, body=b"", ctype="text/plain; charset=utf-8", headers=()):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.status_sent = status

    def reply_json(self, status, obj, headers=()):
        self.reply(status, json.dumps(obj), "application/json; charset=utf-8", headers)

    def reply_form(self, status, pairs, headers=()):
        self.reply(status, urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote),
                   "application/x-www-form-urlencoded; charset=utf-8", headers)

    def reply_problem(self, p):
        self.server.store.bump("problems", p.problem)
        pairs = [("oauth_problem", p.problem)] + p.extra
        if p.advice:
            pairs.append(("oauth_problem_advice", p.advice))
        realm = '"%s/"' % self.server.origin
        self.reply_form(p.status, pairs, [("WWW-Authenticate", "OAuth realm=%s" % realm)])

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # -- dispatch --------------------------------------------------------
    def dispatch(self):
        self.status_sent = None
        try:
            self.body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.reply(400, "bad request body\n")
            return
        target = self.path
        if target.startswith("http://") or target.startswith("https://"):
            target = urllib.parse.urlunsplit(("", "") + urllib.parse.urlsplit(target)[2:])
        self.target = target
        split = urllib.parse.urlsplit(target)
        self.route_path, self.query = split.path, split.query
        host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_port
        self.uri = "%s://%s%s" % (self.server.scheme, host, target)
        self.hdrs = {k: v for k, v in self.headers.items()}
        try:
            if self.route_path.startswith("/_test/"):
                self.control()
                return
            self.record()
            if self.fault():
                return
            if self.route_path.startswith(OAUTH_PREFIX):
                self.oauth_route(self.route_path[len(OAUTH_PREFIX):])
            elif self.route_path.startswith("/api/v2"):
                self.api()
            else:
                self.reply_json(404, {"Code": 404, "Message": "Not Found"})
        except Problem as p:
            self.reply_problem(p)
        except Exception:   # noqa: BLE001 -- answer 500, keep serving
            if self.server.cfg.verbose:
                traceback.print_exc()
            if self.status_sent is None:
                self.close_connection = True
                self.reply_json(500, {"Code": 500, "Message": "provider error",
                                      "Trace": traceback.format_exc()})
        finally:
            self.finish_record()

    def record(self):
        store = self.server.store
        oauth = raw_oauth_params(self.uri, self.form_body(), self.hdrs)
        self.entry = {"method": self.command, "path": self.route_path, "query": self.query,
                      "nonce": oauth.get("oauth_nonce"),
                      "timestamp": oauth.get("oauth_timestamp"),
                      "signature_method": oauth.get("oauth_signature_method"),
                      "token": oauth.get("oauth_token"), "status": None, "fault": False,
                      "time": time.time()}
        with store.lock:
            store.stats["total"] += 1
            store.bump("requests", self.route_path)
            if self.entry["nonce"]:
                store.bump("nonces", self.entry["nonce"])
            log = store.stats["log"]
            log.append(self.entry)
            del log[:-LOG_MAX]

    def finish_record(self):
        entry = getattr(self, "entry", None)
        if entry is not None:
            entry["status"] = self.status_sent
            self.entry = None

    def fault(self):
        """Serve a queued fault (429/503/...) or delay, if the mode says so."""
        store = self.server.store
        api = self.route_path.startswith("/api/")
        with store.lock:
            applies = store.scope == "all" or (store.scope == "api") == api
            if not applies:
                return False
            delay = 0.0
            if store.delay_count > 0:
                store.delay_count -= 1
                delay = store.delay
            status = None
            if store.faults:
                status = store.faults[0][0]
                store.faults[0][1] -= 1
                if store.faults[0][1] <= 0:
                    store.faults.pop(0)
                retry_after = store.retry_after
        if delay:
            time.sleep(delay)
        if status is None:
            return False
        store.bump("faults_served", str(status))
        self.entry["fault"] = True
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
        messages = {429: "Too Many Requests", 500: "Internal Server Error",
                    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
        self.reply_json(status, {"Code": status, "Message": messages.get(status, "Fault")},
                        headers)
        return True

    # -- OAuth helpers ----------------------------------------------------
    def form_body(self):
        ctype = self.headers.get("Content-Type", "")
        if "application/x-www-form-urlencoded" in ctype:
            return self.body.decode("utf-8", "replace")
        return ""

    def body_text(self):
        return self.body.decode("utf-8", "replace")

    def count_signature(self, request):
        sig = request.validator_log.get("signature") if request is not None else None
        if sig is True:
            with self.server.store.lock:
                self.server.store.stats["signatures_verified"] += 1
        elif sig is False:
            with self.server.store.lock:
                self.server.store.stats["signatures_failed"] += 1

    def create_request(self, endpoint, also_required=()):
        """oauthlib's request for this HTTP request, format checks done."""
        try:
            request = endpoint._create_request(self.uri, self.command, self.body_text(),
                                               self.hdrs)
            endpoint._check_transport_security(request)
            endpoint._check_mandatory_parameters(request)
        except (errors.OAuth1Error, ValueError) as exc:
            raise problem_from_error(exc, self.uri, self.form_body(), self.hdrs,
                                     also_required, self.server.cfg.timestamp_window)
        return request

    def oauth_route(self, name):
        srv = self.server
        if name == "authorize":
            if self.command not in ("GET", "HEAD", "POST"):
                return self.reply(405, "method not allowed\n", headers=[("Allow", "GET, POST")])
            return self.authorize()
        if name not in ("getRequestToken", "getAccessToken"):
            return self.reply_json(404, {"Code": 404, "Message": "Not Found"})
        if self.command not in ("GET", "POST"):
            return self.reply(405, "method not allowed\n", headers=[("Allow", "GET, POST")])
        if name == "getRequestToken":
            ep = srv.request_token_endpoint
            request = self.create_request(ep, ["oauth_callback"])
            try:
                valid, request = ep.validate_request_token_request(request)
            except errors.OAuth1Error as exc:
                raise problem_from_error(exc, self.uri, self.form_body(), self.hdrs,
                                         ["oauth_callback"], srv.cfg.timestamp_window)
            self.count_signature(request)
            if not valid:
                raise problem_from_request(request)
            body = ep.create_request_token(request, {})
            return self.reply(200, body, "application/x-www-form-urlencoded; charset=utf-8")
        ep = srv.access_token_endpoint
        request = self.create_request(ep, ["oauth_token", "oauth_verifier"])
        with srv.store.exchange_lock:   # a request token is usable once
            try:
                valid, request = ep.validate_access_token_request(request)
            except errors.OAuth1Error as exc:
                raise problem_from_error(exc, self.uri, self.form_body(), self.hdrs,
                                         ["oauth_token", "oauth_verifier"],
                                         srv.cfg.timestamp_window)
            self.count_signature(request)
            if not valid:
                raise problem_from_request(request)
            body = ep.create_access_token(request, {})
            srv.validator.invalidate_request_token(request.client_key,
                                                   request.resource_owner_key, request)
        return self.reply(200, body, "application/x-www-form-urlencoded; charset=utf-8")

    def approve(self, token, access=None, permissions=None):
        """Authorize a request token: (verifier, redirect URL or None)."""
        ep = self.server.authorization_endpoint
        uri = "%s%sauthorize?%s" % (self.server.origin, OAUTH_PREFIX,
                                    urllib.parse.urlencode({"oauth_token": token}))
        try:
            headers, body, status = ep.create_authorization_response(uri, "GET")
        except (errors.OAuth1Error, ValueError, KeyError):
            raise Problem("token_rejected", "unknown or used request token")
        with self.server.store.lock:
            rec = self.server.store.request_tokens[token]
            rec["access"], rec["permissions"] = access, permissions
            verifier = rec["verifier"]
        return verifier, (headers.get("Location") if status == 302 else None)

    def authorize(self):
        q = dict(urllib.parse.parse_qsl(self.query, keep_blank_values=True))
        token = q.get("oauth_token")
        if not token:
            raise Problem("parameter_absent", "", 400, [("oauth_parameters_absent", "oauth_token")])
        verifier, location = self.approve(token, q.get("Access"), q.get("Permissions"))
        if location:
            return self.reply(302, "", headers=[("Location", location)])
        page = ("<!DOCTYPE html>\n<html><head><title>SmugMug test authorization</title></head>"
                "<body><h1>Authorized</h1><p>Access: %s, Permissions: %s</p>"
                "<p>Enter this six-digit code in the application:</p>"
                "<p id=\"verifier\" class=\"verifier\">%s</p></body></html>\n"
                % (q.get("Access") or "Public", q.get("Permissions") or "Read", verifier))
        return self.reply(200, page, "text/html; charset=utf-8")

    # -- API ---------------------------------------------------------------
    def api(self):
        srv = self.server
        ep = srv.resource_endpoint
        pre = self.create_request(ep, ["oauth_token"])
        if not pre.resource_owner_key:
            raise Problem("parameter_absent", "", 400, [("oauth_parameters_absent", "oauth_token")])
        if not srv.validator.check_access_token(pre.resource_owner_key):
            raise Problem("token_rejected", "bad token format")
        valid, request = ep.validate_protected_resource_request(
            self.uri, self.command, self.body_text(), self.hdrs)
        self.count_signature(request)
        if not valid:
            raise problem_from_request(request)
        path = self.route_path
        if path.startswith("/api/v2/echo"):
            return self.echo(request)
        if self.command not in ("GET", "HEAD"):
            return self.reply_json(405, {"Code": 405, "Message": "Method Not Allowed"})
        if path == "/api/v2!authuser":
            return self.reply_json(200, envelope(path, "User", "Object", {"User": user()}))
        if path == "/api/v2/user/" + NICKNAME:
            return self.reply_json(200, envelope(path, "User", "Object", {"User": user()}))
        if path == "/api/v2/user/%s!albums" % NICKNAME:
            return self.albums(path)
        if path.startswith("/api/v2/album/K"):
            try:
                n = int(path[len("/api/v2/album/K"):])
            except ValueError:
                n = 0
            if 1 <= n <= srv.cfg.albums:
                return self.reply_json(200, envelope(path, "Album", "Object", {"Album": album(n)}))
        return self.reply_json(404, {"Code": 404, "Message": "Not Found"})

    def albums(self, path):
        total = self.server.cfg.albums
        q = dict(urllib.parse.parse_qsl(self.query, keep_blank_values=True))
        try:
            start = int(q.get("start") or 1)
            requested = int(q.get("count") or 10)
            if start < 1 or requested < 0:
                raise ValueError
        except ValueError:
            return self.reply_json(400, {"Code": 400, "Message": "Bad Request: start, count"})
        count = min(requested, 100, max(0, total - start + 1))
        items = [album(n) for n in range(start, start + count)]
        page = lambda s: "%s?start=%d&count=%d" % (path, s, requested)   # noqa: E731
        per = max(requested, 1)
        pages = {"Total": total, "Start": start, "Count": count, "RequestedCount": requested,
                 "FirstPage": page(1),
                 "LastPage": page(max(1, ((total - 1) // per) * per + 1))}
        if start + count <= total and count > 0:
            pages["NextPage"] = page(start + count)
        if start > 1:
            pages["PrevPage"] = page(max(1, start - per))
        self.reply_json(200, envelope(path, "Album", "Objects",
                                      {"Album": items, "Pages": pages}))

    def echo(self, request):
        def redact(s):
            pairs = urllib.parse.parse_qsl(s, keep_blank_values=True)
            if not any(k == "oauth_signature" for k, _ in pairs):
                return s
            return "&".join(("oauth_signature=REDACTED" if p.split("=", 1)[0] == "oauth_signature"
                             else p) for p in s.split("&"))
        auth = self.headers.get("Authorization")
        if auth is not None:
            try:
                parts = utils.parse_authorization_header(auth)
                sig = dict(parts).get("oauth_signature")
                if sig:
                    auth = auth.replace(sig, "REDACTED")
            except ValueError:
                pass
        header_list = [[k, auth if k.lower() == "authorization" else v]
                       for k, v in self.headers.items()]
        headers = {}
        for k, v in header_list:
            headers[k] = headers[k] + ", " + v if k in headers else v
        ctype = self.headers.get("Content-Type")
        text = self.body_text()
        form = json_body = None
        if ctype and "application/x-www-form-urlencoded" in ctype:
            form = [[k, v] for k, v in urllib.parse.parse_qsl(text, keep_blank_values=True)]
            for pair in form:
                if pair[0] == "oauth_signature":
                    pair[1] = "REDACTED"
            text = redact(text)
        elif ctype and "json" in ctype:
            try:
                json_body = json.loads(text)
            except ValueError:
                json_body = None
        oauth = dict(request.oauth_params)
        oauth["oauth_signature"] = "REDACTED"
        with self.server.store.lock:
            rec = dict(self.server.store.access_tokens.get(request.resource_owner_key, {}))
        self.reply_json(200, {
            "method": self.command, "path": self.route_path, "query": redact(self.query),
            "query_params": [[k, v if k != "oauth_signature" else "REDACTED"] for k, v in
                             urllib.parse.parse_qsl(self.query, keep_blank_values=True)],
            "headers": headers, "header_list": header_list,
            "content_type": ctype, "authorization": auth,
            "body": text, "body_length": len(self.body),
            "body_base64": base64.b64encode(self.body).decode("ascii"),
            "form": form, "json": json_body, "oauth": oauth,
            "signed_params": [[k, v] for k, v in request.params],
            "base_string": base_string_of(request),
            "token": {"access": rec.get("access"), "permissions": rec.get("permissions")},
        })

    # -- test control -------------------------------------------------------
    def control(self):
        srv, store = self.server, self.server.store
        name = self.route_path[len("/_test/"):]
        q = dict(urllib.parse.parse_qsl(self.query, keep_blank_values=True))
        if "application/x-www-form-urlencoded" in self.headers.get("Content-Type", "") or \
                (self.body and self.command == "POST"):
            q.update(urllib.parse.parse_qsl(self.body_text(), keep_blank_values=True))
        if name == "approve":
            token = q.get("oauth_token")
            if not token:
                return self.reply(400, "oauth_token missing\n")
            try:
                verifier, location = self.approve(token, q.get("Access"), q.get("Permissions"))
            except Problem:
                return self.reply(404, "unknown or used request token\n")
            return self.reply(200, verifier + "\n" + (location + "\n" if location else ""))
        if name == "access_token":
            token = {"oauth_token": secrets.token_hex(15),
                     "oauth_token_secret": secrets.token_hex(15) + srv.cfg.token_secret_suffix}
            with store.lock:
                store.access_tokens[token["oauth_token"]] = {
                    "secret": token["oauth_token_secret"], "client_key": srv.cfg.consumer_key,
                    "revoked": False, "access": q.get("Access"),
                    "permissions": q.get("Permissions")}
            return self.reply(200, oauth_urlencode(token.items()),
                              "application/x-www-form-urlencoded; charset=utf-8")
        if name == "revoke":
            with store.lock:
                rec = store.access_tokens.get(q.get("oauth_token", ""))
                if rec:
                    rec["revoked"] = True
            return self.reply(200 if rec else 404, "revoked\n" if rec else "unknown token\n")
        if name == "mode":
            return self.set_mode(q)
        if name == "stats":
            with store.lock:
                body = json.dumps(dict(store.stats, mode=self.mode_snapshot(),
                                       nonces_seen=len(store.stats["nonces"])))
            return self.reply(200, body, "application/json; charset=utf-8")
        if name == "reset":
            store.reset_stats()
            store.reset_mode()
            return self.reply(200, "reset\n")
        return self.reply(404, "unknown control endpoint\n")

    def mode_snapshot(self):
        s = self.server.store
        return {"faults": [list(f) for f in s.faults], "retry_after": s.retry_after,
                "delay": s.delay, "delay_count": s.delay_count, "scope": s.scope}

    def set_mode(self, q):
        store = self.server.store
        try:
            with store.lock:
                if q.get("clear"):
                    store.reset_mode()
                for k, v in q.items():
                    if k.startswith("fail") and k[4:].isdigit():
                        status = int(k[4:])
                        if not 400 <= status <= 599:
                            raise ValueError(k)
                        if int(v) > 0:
                            store.faults.append([status, int(v)])
                    elif k == "retry_after":
                        store.retry_after = v if v != "" else None
                    elif k == "delay":
                        store.delay = float(v)
                        store.delay_count = max(store.delay_count, 1)
                    elif k == "delay_count":
                        store.delay_count = int(v)
                    elif k == "scope":
                        if v not in ("api", "oauth", "all"):
                            raise ValueError(k)
                        store.scope = v
                    elif k != "clear":
                        raise ValueError(k)
                snap = self.mode_snapshot()
        except ValueError as exc:
            return self.reply(400, "bad mode parameter %s\n" % exc)
        return self.reply(200, json.dumps(snap), "application/json; charset=utf-8")


# ---------------------------------------------------------- SmugMug data

def envelope(uri, locator, locator_type, fields):
    response = {"Uri": uri, "Locator": locator, "LocatorType": locator_type}
    response.update(fields)
    return {"Response": response, "Code": 200, "Message": "Ok"}


def user():
    return {"NickName": NICKNAME, "Name": "Test User", "Uri": "/api/v2/user/" + NICKNAME,
            "WebUri": "https://%s.smugmug.com" % NICKNAME, "AccountStatus": "Active",
            "ResponseLevel": "Public",
            "Uris": {"UserAlbums": {"Uri": "/api/v2/user/%s!albums" % NICKNAME,
                                    "Locator": "Album", "LocatorType": "Objects"}}}


def album(n):
    return {"Name": "Album %d" % n, "UrlName": "Album-%d" % n, "AlbumKey": "K%d" % n,
            "Uri": "/api/v2/album/K%d" % n, "NodeID": "N%d" % n,
            "WebUri": "https://%s.smugmug.com/Album-%d" % (NICKNAME, n),
            "Description": "", "Keywords": "", "Privacy": "Unlisted",
            "ImageCount": n % 17, "Date": "2024-01-01T00:00:00+00:00",
            "Uris": {"AlbumImages": {"Uri": "/api/v2/album/K%d!images" % n}}}


# ----------------------------------------------------------------- main

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if self.cfg.verbose:
            super().handle_error(request, client_address)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="OAuth 1.0a test provider (SmugMug endpoints)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key", help="TLS private key (with --cert)")
    ap.add_argument("--consumer-key", default="smugoauth-test-key")
    ap.add_argument("--consumer-secret", "--secret", dest="consumer_secret",
                    default="smugoauth-test-secret")
    ap.add_argument("--rsa-public-key")
    ap.add_argument("--timestamp-window", type=int, default=300)
    ap.add_argument("--albums", type=int, default=250)
    ap.add_argument("--token-secret-suffix", default="")
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--verbose", action="store_true")
    cfg = ap.parse_args(argv)
    if bool(cfg.cert) != bool(cfg.key):
        ap.error("--cert and --key go together")
    cfg.rsa_public_pem = None
    if cfg.rsa_public_key:
        with open(cfg.rsa_public_key) as f:
            pem = f.read()
        if "BEGIN CERTIFICATE" in pem:
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization
            pub = x509.load_pem_x509_certificate(pem.encode()).public_key()
            pem = pub.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        cfg.rsa_public_pem = pem
    return cfg


def main(argv):
    cfg = parse_args(argv)
    store = Store()
    validator = Validator(store, cfg)

    server = Server((cfg.host, cfg.port), Handler)
    server.cfg, server.store, server.validator = cfg, store, validator
    server.tls = bool(cfg.cert)
    server.scheme = "https" if server.tls else "http"
    server.origin = "%s://%s:%d" % (server.scheme, cfg.host, server.server_port)

    server.request_token_endpoint = SmugRequestTokenEndpoint(validator, cfg.token_secret_suffix)
    server.authorization_endpoint = AuthorizationEndpoint(validator, token_generator=six_digits)
    server.access_token_endpoint = SmugAccessTokenEndpoint(validator, cfg.token_secret_suffix)
    server.resource_endpoint = ResourceEndpoint(validator)
    if server.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cfg.cert, cfg.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if cfg.parent_pid:
        def watch():
            while True:
                time.sleep(0.5)
                try:
                    os.kill(cfg.parent_pid, 0)
                except ProcessLookupError:
                    return stop()
                except PermissionError:
                    pass
        threading.Thread(target=watch, daemon=True).start()

    sys.stdout.write("PORT %d\n" % server.server_port)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
