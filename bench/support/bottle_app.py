#!/usr/bin/python3
"""bench/support/bottle_app.py -- SmugMug's web.py stack for bench/web.lua:
Debian's python3-bottle with its default server (wsgiref, one thread),
serving the same `/` page as smugoauth.webapp (the "Authorize" page of a
browser with no session cookie): the same HTML bytes, built per request the
same way (title escaped into a page template), and the same headers.

    /usr/bin/python3 bench/support/bottle_app.py [lifetime-seconds]

Prints "PORT <n>" (a port that was free a moment before), then runs
bottle.run(host="127.0.0.1", port=n, quiet=True) until killed or the lifetime
(default 900 s) ends.
"""
import html
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
    bottle.run(app=app, host="127.0.0.1", port=port, quiet=True)


if __name__ == "__main__":
    main()
