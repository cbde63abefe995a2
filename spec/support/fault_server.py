#!/usr/bin/python3
"""A misbehaving HTTP/1.1 server for the fault-injection specs (spec/lib/faults_spec.lua).

    fault_server.py [--port N] [--cert PEM --key KEY] [--silent] [--parent-pid PID] [--max-life S]

Binds 127.0.0.1 on a free port (or --port N, to come back where a stopped one
was) and prints "PORT <n>" as its first line.
The behaviour is chosen per request by the first path segment, e.g.
GET /reset-body?x=1 runs the fault "reset-body" (see FAULTS below). Paths that
name no fault (the OAuth token endpoints, "/" for uploads, anything else) get
the default behaviour: "ok", unless a control request queued another:

  GET /_control?fault=NAME[&count=N]   the next N (1) default-path requests get NAME
  GET /_control?reset=1                forget queued faults and counters
  GET /_stats                          JSON: {"total": n, "paths": {path: n}, "faults": {name: n},
                                       "queued": [name, n], "log": [[path, oauth_nonce], ...]}

Control and stats requests are not counted. "ok" answers in the shape the
client expects for the path: a token form under /services/oauth/, upload JSON
({"stat": "ok"}) for "/", an API JSON document elsewhere.

--cert/--key serve TLS (the handshake runs in the connection's thread, so a
refused certificate only ends that connection). --silent accepts connections
and never sends a byte (for TLS handshake and connect-level stalls).

Everything is bounded: reads time out after 30 s, no fault stalls longer than
30 s or sends more than 16 MiB, and the server exits after --max-life seconds
(300), when --parent-pid is gone, or on SIGTERM. Stdlib only.
"""
import argparse
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse

IO_TIMEOUT = 30.0        # seconds any single read or write may block
STALL_MAX = 30.0         # seconds a stalling fault waits at most
SEND_MAX = 16 << 20      # bytes a flooding fault sends at most
HEAD_MAX = 64 << 10      # request head size accepted
BODY_MAX = 256 << 20     # request body size read (and discarded)

FAULTS = {}              # name -> function(conn, req) -> keep the connection open?
NO_BODY = set()          # faults that act before the request body is read


def fault(name, read_body=True):
    def register(fn):
        FAULTS[name] = fn
        if not read_body:
            NO_BODY.add(name)
        return fn
    return register


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.queued = None   # [name, count] for default paths
        self.total = 0
        self.paths = {}
        self.faults = {}
        self.log = []        # [path, oauth_nonce] per request

    def choose(self, path, auth):
        first = path.lstrip("/").split("/", 1)[0]
        nonce = re.search(r'oauth_nonce="([^"]*)"', auth)
        with self.lock:
            if len(self.log) < 1000:
                self.log.append([path, nonce.group(1) if nonce else ""])
            if first in FAULTS:
                name = first
            elif self.queued and self.queued[1] > 0:
                name = self.queued[0]
                self.queued[1] -= 1
                if self.queued[1] == 0:
                    self.queued = None
            else:
                name = "ok"
            self.total += 1
            self.paths[path] = self.paths.get(path, 0) + 1
            self.faults[name] = self.faults.get(name, 0) + 1
        return name


STATE = State()


class Request:
    def __init__(self, method, target, headers):
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.headers = headers
        self.params = dict(urllib.parse.parse_qsl(self.query))


class Conn(socketserver.BaseRequestHandler):
    """One connection: requests in a keep-alive loop until a fault ends it."""

    def setup(self):
        self.sock = self.request
        self.sock.settimeout(IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    # --------------------------------------------------------------- I/O

    def send(self, data):
        self.sock.sendall(data)

    def recv_more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > HEAD_MAX:
                raise EOFError
            self.recv_more()
            if self.server.tls is None and self.buf.startswith(b"\x16\x03"):
                # a TLS ClientHello on the plain port: answer in plain HTTP, as servers do
                self.answer(400, b"plain HTTP port", "text/plain", [("Connection", "close")])
                raise EOFError
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Request(method, target, headers)

    def read_body(self, req):
        left = min(int(req.headers.get("content-length") or 0), BODY_MAX)
        while left > 0:
            if not self.buf:
                self.recv_more()
            take = min(left, len(self.buf))
            self.buf = self.buf[take:]
            left -= take

    def reset(self):
        """Close with a TCP RST instead of a FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()

    def stall(self, limit=STALL_MAX):
        """Send nothing until the client goes away (or limit seconds)."""
        deadline = time.monotonic() + limit
        self.sock.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except OSError:
                return

    def answer(self, status, body=b"", ctype="application/json", headers=(), reason=None):
        reasons = {200: "OK", 302: "Found", 401: "Unauthorized", 429: "Too Many Requests",
                   502: "Bad Gateway", 503: "Service Unavailable"}
        lines = ["HTTP/1.1 %d %s" % (status, reason or reasons.get(status, "Status")),
                 "Content-Type: " + ctype, "Content-Length: %d" % len(body)]
        lines += ["%s: %s" % h for h in headers]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return True

    # ------------------------------------------------------------ driver

    def handle(self):
        try:
            if self.server.tls is not None:
                self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
            if self.server.silent:
                self.stall()
                return
            while True:
                req = self.read_head()
                if req.path == "/_control":
                    self.control(req)
                    continue
                if req.path == "/_stats":
                    self.read_body(req)
                    with STATE.lock:
                        doc = {"total": STATE.total, "paths": STATE.paths, "log": STATE.log,
                               "faults": STATE.faults, "queued": STATE.queued}
                    self.answer(200, json.dumps(doc).encode())
                    continue
                name = STATE.choose(req.path, req.headers.get("authorization", ""))
                if name not in NO_BODY:
                    self.read_body(req)
                if not FAULTS[name](self, req):
                    break
        except (EOFError, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def control(self, req):
        self.read_body(req)
        p = req.params
        with STATE.lock:
            if p.get("reset"):
                STATE.queued, STATE.total, STATE.paths, STATE.faults = None, 0, {}, {}
                STATE.log = []
            if "fault" in p:
                if p["fault"] not in FAULTS:
                    return self.answer(400, b"unknown fault", "text/plain")
                STATE.queued = [p["fault"], int(p.get("count", "1"))]
        return self.answer(200, b"ok", "text/plain")


# ------------------------------------------------------------------ faults

def ok_body(path):
    if path.startswith("/services/oauth/"):
        form = "oauth_token=tok-%d&oauth_token_secret=tok-secret" % STATE.total
        if "RequestToken" in path:
            form += "&oauth_callback_confirmed=true"
        return form.encode(), "application/x-www-form-urlencoded"
    if path == "/":
        return (json.dumps({"stat": "ok", "method": "smugmug.images.upload",
                            "Image": {"ImageUri": "/api/v2/image/ok-0", "AlbumImageUri": "x"}})
                .encode(), "application/json")
    return (json.dumps({"Code": 200, "Message": "Ok", "Response": {"Uri": path, "ok": True}})
            .encode(), "application/json")


@fault("ok")
def f_ok(c, req):
    body, ctype = ok_body(req.path)
    return c.answer(200, body, ctype)


@fault("paged")
def f_paged(c, req):
    """One page of one item whose NextPage is a fault (?next=NAME, default reset-body)."""
    nxt = "/" + req.params.get("next", "reset-body") + "?page=2"
    doc = {"Response": {"Locator": "Album", "Album": [{"Name": "first"}],
                        "Pages": {"Total": 2, "Start": 1, "Count": 1, "NextPage": nxt}}}
    return c.answer(200, json.dumps(doc).encode())


@fault("reset-headers")
def f_reset_headers(c, req):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: appl")
    time.sleep(0.05)
    c.reset()


@fault("reset-body")
def f_reset_body(c, req):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    c.send(b"{" + b" " * 99)
    time.sleep(0.05)
    c.reset()


@fault("reset-at-once")
def f_reset_at_once(c, req):
    c.reset()


@fault("reset-during-upload", read_body=False)
def f_reset_during_upload(c, req):
    """RST right after the request head, the body unread."""
    c.reset()


@fault("reset-mid-upload", read_body=False)
def f_reset_mid_upload(c, req):
    """RST after reading about 1 MiB of the request body."""
    got = 0
    while got < (1 << 20):
        if not c.buf:
            c.recv_more()
        got += len(c.buf)
        c.buf = b""
    c.reset()


@fault("empty-reply")
def f_empty_reply(c, req):
    return False          # FIN, not a byte sent


@fault("truncated-chunked")
def f_truncated_chunked(c, req):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n")
    c.send(b"5\r\n{\"a\":\r\n")
    c.send(b"4\r\n 1, \r\n")
    time.sleep(0.05)
    return False          # FIN before the last chunk


@fault("bad-chunk")
def f_bad_chunk(c, req):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    time.sleep(0.05)
    return False


@fault("bad-status")
def f_bad_status(c, req):
    c.send(b"HTTP/1.1 two hundred OK\r\nContent-Length: 2\r\n\r\nhi")
    time.sleep(0.05)
    return False


@fault("http09")
def f_http09(c, req):
    c.send(b"hello, I am not HTTP\r\n")
    time.sleep(0.05)
    return False


@fault("bad-content-length")
def f_bad_content_length(c, req):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: -5\r\n\r\n{}")
    time.sleep(0.05)
    return False


def flood(c, chunked):
    block = b"x" * 65536
    sent = 0
    while sent < SEND_MAX:
        c.send(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
        sent += len(block)
    if chunked:
        c.send(b"0\r\n\r\n")
    return False


@fault("huge")
def f_huge(c, req):
    """Content-Length: 16 MiB, sent until the client gives up."""
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % SEND_MAX)
    return flood(c, False)


@fault("huge-chunked")
def f_huge_chunked(c, req):
    """16 MiB chunked: no length announced, the cap must trip while reading."""
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n")
    return flood(c, True)


@fault("huge-headers")
def f_huge_headers(c, req):
    """About 1 MiB of 1 KiB header lines."""
    c.send(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Pad-%05d: " + b"p" * 1000 + b"\r\n"
    for i in range(1024):
        c.send(line % i)
    c.send(b"Content-Length: 0\r\n\r\n")
    return False


@fault("big-headers")
def f_big_headers(c, req):
    """A header section of ?kib=N KiB (400) in 1 KiB lines: over libcurl's
    own 300 KiB limit by default, under any cap with ?kib=200."""
    kib = min(int(req.params.get("kib", "400")), 1024)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    line = b"X-Pad-%05d: " + b"p" * (1024 - 15) + b"\r\n"
    c.send(head + b"".join(line % i for i in range(kib)))
    body = json.dumps({"Response": {"Uri": req.path, "ok": True}}).encode()
    c.send(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return True


@fault("long-header-line")
def f_long_header_line(c, req):
    """One 1 MiB header line (libcurl refuses lines over 100 KiB)."""
    c.send(b"HTTP/1.1 200 OK\r\nX-Long: ")
    for _ in range(16):
        c.send(b"l" * 65536)
    c.send(b"\r\nContent-Length: 0\r\n\r\n")
    return False


@fault("never")
def f_never(c, req):
    c.stall()
    return False


@fault("slow-headers")
def f_slow_headers(c, req):
    c.send(b"HTTP/1.1 200 OK\r\n")
    c.stall()
    return False


@fault("trickle")
def f_trickle(c, req):
    """100 bytes promised, one every 200 ms (20 s)."""
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    for _ in range(100):
        c.send(b" ")
        time.sleep(0.2)
    return False


@fault("interim-flood")
def f_interim_flood(c, req):
    """Endless 1xx interim responses, one every 10 ms (bounded by STALL_MAX)."""
    deadline = time.monotonic() + STALL_MAX
    while time.monotonic() < deadline:
        c.send(b"HTTP/1.1 102 Processing\r\n\r\n")
        time.sleep(0.01)
    return False


@fault("garbage-token")
def f_garbage_token(c, req):
    return c.answer(200, b"oauth_token=&nonsense", "application/x-www-form-urlencoded")


@fault("missing-fields")
def f_missing_fields(c, req):
    return c.answer(200, b"oauth_token=abc", "application/x-www-form-urlencoded")


@fault("secret-without-token")
def f_secret_without_token(c, req):
    return c.answer(200, b"oauth_token=&oauth_token_secret=LEAKED-S3CRET",
                    "application/x-www-form-urlencoded")


@fault("callback-unconfirmed")
def f_callback_unconfirmed(c, req):
    return c.answer(200, b"oauth_token=abc&oauth_token_secret=def",
                    "application/x-www-form-urlencoded")


@fault("oauth-problem")
def f_oauth_problem(c, req):
    return c.answer(401, b"oauth_problem=token_rejected", "application/x-www-form-urlencoded",
                    [("WWW-Authenticate", 'OAuth realm="fault", oauth_problem="token_rejected"')])


@fault("html-error")
def f_html_error(c, req):
    return c.answer(502, b"<html><head><title>502 Bad Gateway</title></head>"
                         b"<body><h1>Bad Gateway</h1></body></html>\n", "text/html")


@fault("rate-limited")
def f_rate_limited(c, req):
    return c.answer(429, b'{"Code":429,"Message":"Too Many Requests"}', "application/json",
                    [("Retry-After", "0")])


@fault("not-json")
def f_not_json(c, req):
    return c.answer(200, b"<html>", "text/plain")


@fault("truncated-json")
def f_truncated_json(c, req):
    return c.answer(200, b'{"Response": {"Uri": "/x", "Album": [', "application/json")


@fault("api-fail")
def f_api_fail(c, req):
    return c.answer(200, b'{"stat": "fail", "code": 5, "message": "system error"}',
                    "application/json")


# ------------------------------------------------------------------ server

class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):   # faults are expected
        pass


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--silent", action="store_true")
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--max-life", type=float, default=300.0)
    cfg = ap.parse_args(argv)
    srv = Server(("127.0.0.1", cfg.port), Conn)
    srv.silent = cfg.silent
    srv.tls = None
    if cfg.cert:
        srv.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.tls.load_cert_chain(cfg.cert, cfg.key)

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch():
        deadline = time.monotonic() + cfg.max_life
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if cfg.parent_pid:
                try:
                    os.kill(cfg.parent_pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
        stop()
    threading.Thread(target=watch, daemon=True).start()

    sys.stdout.write("PORT %d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.05)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
