#!/usr/bin/python3
"""archive_server.py -- a small stand-in for SmugMug's archive hosts, for the
download specs (spec/core/sink_spec.lua, spec/lib/download_spec.lua). Stdlib
HTTP (threaded, keep-alive HTTP/1.1); OAuth signatures are checked by
oauthlib (SignatureOnlyEndpoint), not by our C core.

    /usr/bin/python3 spec/support/archive_server.py --dir D [--key K --secret S
        --token T --token-secret TS] [--max-life S]

Binds 127.0.0.1 on a free port and prints "PORT <n>" as its first line;
exits on SIGTERM or after --max-life seconds (300).

Files are the regular files directly under D (names of letters, digits,
'.', '_', '-'), read when asked (a spec may add or change them at any time).

  GET|HEAD /_archive/NAME   the file, signed for this very URL (OAuth 1.0a,
                            the consumer and token given above) or 401 with
                            WWW-Authenticate; honours "Range: bytes=N-" and
                            "bytes=N-M" (206 with Content-Range; 416 with
                            "Content-Range: bytes */SIZE" past the end)
  GET|HEAD /_files/NAME     the same without any signature check
  GET /api/v2/image/NAME-0  (signed) {"Response": {"Image": {ImageKey,
                            FileName, ArchivedUri (this server's
                            /_archive/NAME), ArchivedMD5 (hex), ArchivedSize,
                            IsVideo, Processing, Uris.LargestVideo}}}
  GET /api/v2/image/NAME-0!largestvideo   (signed) {"Response":
                            {"LargestVideo": {Url, Size, MD5}}}; 404 while
                            NAME is listed in mode processing

Test control (never signed, never faulted):
  POST /_test/mode  query or form, each optional; the faults apply to the
                    file routes (/_archive/, /_files/):
      drop_after=N     send N body bytes of an answer, then close the
                       connection (the headers promised them all) ...
      drop_count=C     ... for the next C answers (1)
      rate=B           at most B body bytes a second (0: no limit)
      ignore_range=1   answer 200 with the whole file even to a Range
      bad_range=1      answer a Range with 206 from byte 0 (a wrong start)
      status=CODE      answer CODE (with a short text body) ...
      status_count=C   ... the next C times (1); retry_after=S adds Retry-After
      no_length=1      no Content-Length: the body ends when the connection does
      lie_md5=1        the image routes report a wrong MD5
      lie_size=1       ... and a wrong size (one byte more)
      video=1          the image routes say IsVideo
      processing=NAME  that video is still processing
      clear=1          back to no mode at all
                    -> JSON of the mode now in force
  GET  /_test/stats -> {"requests": [{method, path, range, status, sent,
                       signed, dropped}], "files": {NAME: n}}
                       (sent: body bytes written; signed: the signature was
                       checked and valid; files: answers per file route)
  POST /_test/reset -> clears the stats
"""
import argparse
import hashlib
import http.server
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse

from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint

LOCK = threading.Lock()
STATS = {"requests": [], "files": {}}
MODE = {}
CFG = None
NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
CHUNK = 65536


class Validator(RequestValidator):
    """One consumer and one access token; any nonce, key or realm format."""

    enforce_ssl = False
    allowed_signature_methods = ("HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512", "PLAINTEXT")
    dummy_client = "dummy"
    dummy_access_token = "dummy"

    def check_client_key(self, client_key):
        return True

    def check_access_token(self, token):
        return True

    def check_nonce(self, nonce):
        return True

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        return True

    def validate_client_key(self, client_key, request):
        return client_key == CFG.key

    def validate_access_token(self, client_key, token, request):
        return token == CFG.token

    def get_client_secret(self, client_key, request):
        return CFG.secret

    def get_access_token_secret(self, client_key, token, request):
        # a token that is not ours cannot be signed for: a secret no one has
        return CFG.token_secret if token == CFG.token else os.urandom(16).hex()


ENDPOINT = None


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    # ------------------------------------------------------------ helpers

    def origin(self):
        return "http://" + (self.headers.get("Host") or "127.0.0.1")

    def signed(self):
        """Valid OAuth for this request's URL (as the client sees it)?"""
        uri = self.origin() + self.path
        headers = {k: v for k, v in self.headers.items()}
        try:
            valid, _ = ENDPOINT.validate_request(uri, self.command, "", headers)
        except Exception:  # noqa: BLE001 -- a malformed request is simply not signed
            return False
        return bool(valid)

    def record(self, **entry):
        entry = {k: v for k, v in entry.items() if v is not None}
        with LOCK:
            STATS["requests"].append(entry)
        return entry

    def drain(self):
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            b = self.rfile.read(min(left, CHUNK))
            if not b:
                break
            left -= len(b)

    def answer(self, status, body, ctype="application/json", extra=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def file_path(self, name):
        if not NAME_RE.match(name) or name.startswith("."):
            return None
        p = os.path.join(CFG.dir, name)
        return p if os.path.isfile(p) else None

    # ------------------------------------------------------------ routes

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        self.drain()
        if url.path.startswith("/_test/"):
            return self.control(url)
        m = re.match(r"^/_(archive|files)/([^/]+)$", url.path)
        if m:
            return self.serve_file(m.group(1) == "archive", urllib.parse.unquote(m.group(2)), url)
        m = re.match(r"^/api/v2/image/([^/!]+)-0(!largestvideo)?$", url.path)
        if m:
            return self.image(urllib.parse.unquote(m.group(1)), bool(m.group(2)), url)
        self.record(method=self.command, path=url.path, status=404, sent=0, signed=False)
        return self.answer(404, {"Code": 404, "Message": "Not Found"})

    do_GET = do_POST = do_HEAD = handle_any

    def control(self, url):
        if url.path == "/_test/stats":
            with LOCK:
                doc = json.loads(json.dumps(STATS))
            return self.answer(200, doc)
        if url.path == "/_test/reset":
            with LOCK:
                STATS["requests"].clear()
                STATS["files"].clear()
            return self.answer(200, {"ok": True})
        if url.path == "/_test/mode":
            q = dict(urllib.parse.parse_qsl(url.query))
            with LOCK:
                if q.pop("clear", None):
                    MODE.clear()
                for k, v in q.items():
                    MODE[k] = v
                doc = dict(MODE)
            return self.answer(200, doc)
        return self.answer(404, {"Code": 404})

    def take(self, key, count_key):
        """A counted fault of MODE: its value when it applies to this answer."""
        with LOCK:
            if key not in MODE:
                return None
            v = MODE[key]
            left = int(MODE.get(count_key, "1")) - 1
            if left <= 0:
                MODE.pop(key, None)
                MODE.pop(count_key, None)
            else:
                MODE[count_key] = str(left)
            return v

    def image(self, name, largest, url):
        ok = self.signed()
        entry = self.record(method=self.command, path=url.path, status=200, sent=0, signed=ok)
        if not ok:
            entry["status"] = 401
            return self.answer(401, "oauth_problem=signature_invalid", "text/plain",
                               {"WWW-Authenticate": 'OAuth realm="%s/"' % self.origin()})
        p = self.file_path(name)
        if p is None:
            entry["status"] = 404
            return self.answer(404, {"Code": 404, "Message": "Not Found"})
        with LOCK:
            mode = dict(MODE)
        size = os.path.getsize(p)
        md5 = md5_of(p)
        if mode.get("lie_md5"):
            md5 = hashlib.md5(b"not " + md5.encode()).hexdigest()
        if mode.get("lie_size"):
            size += 1
        file_url = self.origin() + "/_archive/" + urllib.parse.quote(name)
        video = bool(mode.get("video"))
        processing = mode.get("processing") == name
        if largest:
            if not video or processing:
                entry["status"] = 404
                return self.answer(404, {"Code": 404, "Message": "Not Found"})
            return self.answer(200, {"Response": {"LargestVideo": {
                "Url": file_url, "Size": size, "MD5": md5}}, "Code": 200})
        key = name
        return self.answer(200, {"Response": {"Image": {
            "ImageKey": key, "FileName": name, "ArchivedUri": file_url,
            "ArchivedMD5": md5, "ArchivedSize": size, "IsVideo": video,
            "Processing": processing, "LastUpdated": "2024-01-02T03:04:05+00:00",
            "Uris": {"LargestVideo": {"Uri": "/api/v2/image/%s-0!largestvideo" % key}},
        }}, "Code": 200})

    def serve_file(self, signed_route, name, url):
        ok = self.signed() if signed_route else False
        rng = self.headers.get("Range")
        entry = self.record(method=self.command, path=url.path, range=rng, status=0, sent=0,
                            signed=ok, dropped=False)
        with LOCK:
            STATS["files"][name] = STATS["files"].get(name, 0) + 1
        if signed_route and not ok:
            entry["status"] = 401
            return self.answer(401, "oauth_problem=signature_invalid", "text/plain",
                               {"WWW-Authenticate": 'OAuth realm="%s/"' % self.origin()})
        status = self.take("status", "status_count")
        if status:
            entry["status"] = int(status)
            extra = {}
            with LOCK:
                if MODE.get("retry_after"):
                    extra["Retry-After"] = MODE["retry_after"]
            return self.answer(int(status), "fault %s" % status, "text/plain", extra)
        p = self.file_path(name)
        if p is None:
            entry["status"] = 404
            return self.answer(404, {"Code": 404, "Message": "Not Found"})
        size = os.path.getsize(p)
        with LOCK:
            mode = dict(MODE)
        start, end, status = 0, size - 1, 200
        m = rng and re.match(r"^bytes=(\d+)-(\d*)$", rng.strip())
        if m and not mode.get("ignore_range"):
            first = int(m.group(1))
            last = int(m.group(2)) if m.group(2) else size - 1
            if first >= size:
                entry["status"] = 416
                return self.answer(416, "", "text/plain", {"Content-Range": "bytes */%d" % size})
            start, end, status = first, min(last, size - 1), 206
            if mode.get("bad_range"):
                start = 0
        length = end - start + 1 if size > 0 else 0
        drop = self.take("drop_after", "drop_count")
        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        if mode.get("no_length"):
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return None
        limit = int(drop) if drop is not None else None
        rate = float(mode.get("rate") or 0)
        t0 = time.monotonic()
        sent = 0
        with open(p, "rb") as f:
            f.seek(start)
            while sent < length:
                n = min(CHUNK, length - sent)
                if rate > 0:
                    n = min(n, max(1024, int(rate / 20)))
                if limit is not None:
                    n = min(n, limit - sent)
                    if n <= 0:
                        break
                b = f.read(n)
                if not b:
                    break
                try:
                    self.wfile.write(b)
                    self.wfile.flush()
                except OSError:
                    break
                sent += len(b)
                with LOCK:
                    entry["sent"] = sent
                if rate > 0:
                    ahead = sent / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        if sent < length:
            entry["dropped"] = True
            self.close_connection = True
        return None


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    global CFG, ENDPOINT
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--key", default="archive-test-key")
    ap.add_argument("--secret", default="archive-test-secret")
    ap.add_argument("--token", default="archive-test-token")
    ap.add_argument("--token-secret", default="archive-test-token-secret")
    ap.add_argument("--max-life", type=int, default=300)
    CFG = ap.parse_args()
    ENDPOINT = SignatureOnlyEndpoint(Validator())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.alarm(CFG.max_life)          # a spec that died without killing us: gone anyway
    srv = Server(("127.0.0.1", 0), Handler)
    sys.stdout.write("PORT %d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
