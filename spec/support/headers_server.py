#!/usr/bin/python3
"""Answers every request, any method and path, with 200 and a JSON account of
what arrived, for the library specs that check what reaches the wire:

    {"stat": "ok", "method": ..., "path": ..., "query": ...,
     "headers": {lower-case name: value}, "body_len": n}

("stat": "ok" makes it an upload origin too.) Keep-alive HTTP/1.1.
A query parameter delay=S answers after S seconds (each connection has its
own thread: delayed requests overlap); GET /_stats answers
{"connections": n, "requests": n, "inflight": n} (it is not counted).

    headers_server.py [--max-life S]

Binds 127.0.0.1 on a free port and prints "PORT <n>" as its first line;
exits on SIGTERM or after --max-life seconds (300). Stdlib only.
"""
import argparse
import http.server
import json
import signal
import sys
import threading
import time
import urllib.parse

STATS = {"connections": 0, "requests": 0, "inflight": 0}
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        with LOCK:
            STATS["connections"] += 1
        super().setup()

    def answer(self, doc):
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_stats":
            with LOCK:
                doc = dict(STATS)
            return self.answer(doc)
        with LOCK:
            STATS["requests"] += 1
            STATS["inflight"] += 1
        try:
            self.handle_counted(url)
        finally:
            with LOCK:
                STATS["inflight"] -= 1

    def handle_counted(self, url):
        delay = urllib.parse.parse_qs(url.query).get("delay")
        if delay:
            time.sleep(float(delay[0]))
        left = int(self.headers.get("Content-Length") or 0)
        total = 0
        while left > 0:
            data = self.rfile.read(min(left, 65536))
            if not data:
                break
            total += len(data)
            left -= len(data)
        self.answer({
            "stat": "ok", "method": self.command, "path": url.path, "query": url.query,
            "headers": {k.lower(): v for k, v in self.headers.items()}, "body_len": total,
        })

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-life", type=int, default=300)
    cfg = ap.parse_args()
    signal.alarm(cfg.max_life)          # a spec that died without killing us: gone anyway
    srv = Server(("127.0.0.1", 0), Handler)
    sys.stdout.write("PORT %d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
