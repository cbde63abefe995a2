#!/usr/bin/python3
"""bench/support/bottle_app.py -- SmugMug's web.py stack for bench/web.lua:
Debian's python3-bottle with its default server (wsgiref, one thread),
serving the same `/` page as smugoauth.webapp (the "Authorize" page of a
browser with no session cookie): the same HTML bytes, built per request the
same way (title escaped into a page template), and the same headers.

With API_ORIGIN (for bench/loop.lua) it also serves `/test?path=` as web.py
does: the access token from bottle's signed cookie `at` (pickle + HMAC-MD5,
as the original kept it), an OAuth1Session of requests-oauthlib for it, the
signed GET of API_ORIGIN + path (default /api/v2!authuser) and the JSON,
pretty-printed and escaped, in a page. It then prints "COOKIE at=<value>"
after the port: an authorized browser's cookie, signed with this run's
random secret.

    /usr/bin/python3 bench/support/bottle_app.py [lifetime-seconds [API_ORIGIN]]

Prints "PORT <n>" (a port that was free a moment before), then runs
bottle.run(host="127.0.0.1", port=n, quiet=True) until killed or the lifetime
(default 900 s) ends.
"""
import html
import json
import os
import socket
import sys
import threading

import bottle

CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
BASE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def page(title, body):
    e = html.escape(title, quote=True)
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>" + e + " - smugoauth</title></head>\n<body>\n<h1>" + e +
            "</h1>\n" + body + "\n</body></html>\n")


app = bottle.Bottle()


@app.route("/")
def index():
    # no session cookie: the Authorize link (as webapp's routes["/"])
    for k, v in BASE_HEADERS.items():
        bottle.response.set_header(k, v)
    bottle.response.set_header("Content-Type", "text/html; charset=utf-8")
    return page("SmugMug OAuth example",
                '<p>This application is not authorized yet.</p>\n'
                '<p><a id="authorize" href="/authorize">Authorize</a></p>')


API_ORIGIN = sys.argv[2] if len(sys.argv) > 2 else None
COOKIE_SECRET = os.urandom(16).hex()
CONSUMER_KEY, CONSUMER_SECRET = "ck-bench-consumer-key", "cs-bench-consumer-secret"


@app.route("/test")
def test():
    from requests_oauthlib import OAuth1Session
    for k, v in BASE_HEADERS.items():
        bottle.response.set_header(k, v)
    bottle.response.set_header("Content-Type", "text/html; charset=utf-8")
    tokens = bottle.request.get_cookie("at", secret=COOKIE_SECRET)
    if not API_ORIGIN or not tokens:
        bottle.response.status = 401
        return page("Not authorized", '<p><a id="authorize" href="/authorize">Authorize</a></p>')
    path = bottle.request.query.get("path") or "/api/v2!authuser"
    if not path.startswith("/api/v2"):
        bottle.response.status = 400
        return page("Refused path", "<p>Only paths under /api/v2 are sent.</p>")
    session = OAuth1Session(CONSUMER_KEY, client_secret=CONSUMER_SECRET,
                            resource_owner_key=tokens[0], resource_owner_secret=tokens[1])
    r = session.get(API_ORIGIN + path, headers={"Accept": "application/json"}, timeout=120)
    if r.status_code != 200:
        bottle.response.status = 502
        return page("GET " + path, '<p id="error">HTTP %d</p>' % r.status_code)
    text = json.dumps(r.json(), indent=2)
    return page("GET " + path, '<pre id="result">' + html.escape(text) + "</pre>")


def main():
    lifetime = float(sys.argv[1]) if len(sys.argv) > 1 else 900.0
    timer = threading.Timer(lifetime, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    print("PORT", port, flush=True)
    if API_ORIGIN:
        value = bottle.cookie_encode(("at", ("tk-bench-access-token", "ts-bench-access-token-secret")),
                                     COOKIE_SECRET)
        print("COOKIE at=" + value.decode(), flush=True)
    bottle.run(app=app, host="127.0.0.1", port=port, quiet=True)


if __name__ == "__main__":
    main()
