#!/usr/bin/python3
"""A careless OAuth provider for spec/lib/trace_spec.lua: it hands out tokens and
then echoes every secret the client knows back in headers (X-Echo-Secrets:
the consumer secret, and each token secret and the verifier once issued;
X-Issued: the token secret of the answer itself), cookies, JSON messages and
debug_sbs strings, so the spec can check that the client's trace and error
messages redact them all.

    leaky_provider.py CONSUMER_SECRET REQUEST_TOKEN_SECRET ACCESS_TOKEN_SECRET VERIFIER COOKIE

Binds 127.0.0.1 on a free port and prints "PORT <n>" first, then one line
"AUTH <Authorization header>" for every request it reads (the spec takes the
signatures from them). No signature is checked. Paths:

  GET  /services/oauth/1.0a/getRequestToken   a request token (its secret given)
  GET  /services/oauth/1.0a/getAccessToken    the access token when oauth_verifier is
       VERIFIER; else 401 signature_invalid, with a malformed debug_sbs the 1st,
       3rd... time and a well-formed one (other parameters, secrets in them) in between
  GET  /api/v2!authuser                       200 JSON; Set-Cookie with COOKIE, and
       the Authorization header and both cookies echoed in other headers
  GET  /api/v2/json-error                     400 JSON whose Message holds the secrets
  GET  /api/v2/sbs-error                      401 signature_invalid, debug_sbs with secrets
  GET  /_reset                                forget what was issued (for the next client)

Header values are sent as UTF-8 bytes. Exits after 120 s. Stdlib only.
"""
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CS, RTS, ATS, VERIFIER, COOKIE = sys.argv[1:6]
STATE = {"bad_verifiers": 0, "issued": [CS]}   # the secrets the client knows by now
LOCK = threading.Lock()


def enc(s):
    return urllib.parse.quote(s, safe="~")


def oauth_params(header):
    out = {}
    for part in header[len("OAuth "):].split(","):
        k, _, v = part.strip().partition("=")
        if v.startswith('"') and v.endswith('"'):
            out[k] = urllib.parse.unquote(v[1:-1])
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype, headers=()):
        body = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v.encode("utf-8").decode("latin-1"))   # UTF-8 on the wire
        self.end_headers()
        self.wfile.write(body)

    def issue(self, secret):
        with LOCK:
            if secret not in STATE["issued"]:
                STATE["issued"].append(secret)

    def do_GET(self):
        if self.path == "/_reset":             # a new client: it knows only the consumer secret
            with LOCK:
                STATE["bad_verifiers"], STATE["issued"] = 0, [CS]
            return self.reply(200, "ok", "text/plain")
        auth = self.headers.get("Authorization", "")
        with LOCK:
            print("AUTH " + auth, flush=True)
        o = oauth_params(auth)
        path = self.path.split("?", 1)[0]
        with LOCK:
            known = " ".join(STATE["issued"])
        echo = [("X-Echo-Authorization", auth), ("X-Echo-Secrets", known),
                ("X-Echo-Request-Cookie", self.headers.get("Cookie", ""))]
        if path.endswith("/getRequestToken"):
            form = "oauth_token=rt-1&oauth_token_secret=%s&oauth_callback_confirmed=true" % enc(RTS)
            self.issue(RTS)
            return self.reply(200, form, "application/x-www-form-urlencoded", echo + [("X-Issued", RTS)])
        if path.endswith("/getAccessToken"):
            v = o.get("oauth_verifier", "")
            if v == VERIFIER:
                form = "oauth_token=at-1&oauth_token_secret=%s" % enc(ATS)
                self.issue(VERIFIER)
                self.issue(ATS)
                return self.reply(200, form, "application/x-www-form-urlencoded", echo + [("X-Issued", ATS)])
            with LOCK:
                STATE["bad_verifiers"] += 1
                first = STATE["bad_verifiers"] % 2 == 1
            if first:
                sbs = "garbage " + auth + " " + v
            else:
                params = sorted((k, x) for k, x in o.items() if k not in ("oauth_signature", "oauth_verifier"))
                params += [("echo_secret", CS), ("echo_verifier", v), ("oauth_verifier", v + "x")]
                norm = "&".join("%s=%s" % (enc(k), enc(x)) for k, x in sorted(params))
                sbs = "GET&%s&%s" % (enc("http://elsewhere/services/oauth/1.0a/getAccessToken"), enc(norm))
            form = "oauth_problem=signature_invalid&debug_sbs=%s" % enc(sbs)
            return self.reply(401, form, "application/x-www-form-urlencoded", echo)
        if path == "/api/v2!authuser":
            cookie = [("Set-Cookie", "SMSESS=%s; Path=/; HttpOnly" % COOKIE),
                      ("X-Echo-Cookie", "SMSESS=" + COOKIE)]
            doc = {"Response": {"User": {"NickName": "leaky"}}, "Echo": auth}
            return self.reply(200, json.dumps(doc), "application/json", echo + cookie)
        if path == "/api/v2/json-error":
            doc = {"Code": 400, "Message": "bad request: %s / %s / %s / %s / %s" % (CS, RTS, ATS, VERIFIER, auth)}
            return self.reply(400, json.dumps(doc), "application/json", echo)
        if path == "/api/v2/sbs-error":
            sbs = "GET&%s&%s" % (enc("http://x/y"), enc("a=%s&oauth_token_secret=%s&b=%s" % (enc(CS), enc(ATS), enc(RTS))))
            form = "oauth_problem=signature_invalid&debug_sbs=%s" % enc(sbs)
            return self.reply(401, form, "application/x-www-form-urlencoded", echo)
        return self.reply(404, "no such path", "text/plain")


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print("PORT %d" % srv.server_address[1], flush=True)

    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.5)
        srv.shutdown()
    threading.Thread(target=watch, daemon=True).start()
    srv.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
