#!/usr/bin/python3
"""A small threaded HTTP/1.1 keep-alive server for the HTTP client specs.

    echo_server.py [--cert PEM --key KEY]

Binds 127.0.0.1 on a free port and prints "PORT <n>" as its first line.
Endpoints (any method unless said):
  /echo[?delay=ms]     JSON: method, path, query, headers ([name, value] in
                       order), body_len, body_md5 (after an optional delay)
  /status/<n>          that status, body "status <n>"
  /redirect            302 with Location: /echo
  /headers             repeated and mixed-case response headers
  /interim             a 103 Early Hints (Link header) before the 200
  /big?bytes=N[&chunked=1]  N bytes of "x" (chunked: no Content-Length)
  /slow?ms=N           sleeps N ms, then answers "slow"
  /drip?n=N&ms=M       N bytes, one every M ms
  /close-mid-body      promises 1000 bytes, sends 10, closes
  /empty               closes without answering
Stdlib only; stops on SIGTERM.
"""
import argparse
import hashlib
import http.server
import json
import socket
import ssl
import sys
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "echo/1"

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def read_body(self):
        h = hashlib.md5()
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(size)
                h.update(data)
                total += len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    break
                h.update(data)
                total += len(data)
                left -= len(data)
        return total, h.hexdigest()

    def send(self, status, body=b"", headers=(), ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        body_len, body_md5 = self.read_body()
        path = url.path
        if path == "/echo":
            time.sleep(int(q.get("delay", "0")) / 1000)
            doc = {
                "method": self.command, "path": path, "query": url.query,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body_len": body_len, "body_md5": body_md5,
            }
            self.send(200, json.dumps(doc).encode(), ctype="application/json")
        elif path.startswith("/status/"):
            n = int(path[len("/status/"):])
            self.send(n, ("status %d" % n).encode())
        elif path == "/redirect":
            self.send(302, b"moved", [("Location", "/echo")])
        elif path == "/headers":
            self.send(200, b"ok", [("X-Mixed-Case", "Yes"), ("Set-Cookie", "a=1"),
                                   ("Set-Cookie", "b=2"), ("X-Spaces", "  padded  ")])
        elif path == "/interim":
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            self.send(200, b"final", [("X-Final", "1")])
        elif path == "/big":
            n = int(q.get("bytes", "0"))
            self.send_response(200)
            if q.get("chunked"):
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    while n > 0:
                        part = chunk[:min(n, len(chunk))]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                        n -= len(part)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    return
            else:
                self.send_header("Content-Length", str(n))
                self.end_headers()
                try:
                    while n > 0:
                        part = min(n, 65536)
                        self.wfile.write(b"x" * part)
                        n -= part
                except OSError:
                    return
        elif path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000)
            self.send(200, b"slow")
        elif path == "/drip":
            n, ms = int(q.get("n", "10")), int(q.get("ms", "100"))
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            try:
                for _ in range(n):
                    self.wfile.write(b"d")
                    self.wfile.flush()
                    time.sleep(ms / 1000)
            except OSError:
                return
        elif path == "/close-mid-body":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        elif path == "/empty":
            self.close_connection = True
        else:
            self.send(404, b"not found")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # TLS rejections are expected
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
    sys.stdout.write("PORT %d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
