"""bench/support/requests_oauth_pool.py -- for bench/loop.lua: COUNT signed
GETs with python3-requests + requests-oauthlib in a ThreadPoolExecutor of
WORKERS threads, as a Python user would write it:

  per-thread  one OAuth1Session per thread (threading.local): each thread
              keeps its own keep-alive connection
  shared      one OAuth1Session shared by every thread (urllib3's pool keeps
              at most 10 connections per host: the others are opened and
              dropped)

One GET first, outside the clock. Prints one line:
  RESULT secs=<wall> ok=<answers 200> errors=<others> hwm_kb=<VmHWM> cpu=<s>

usage: requests_oauth_pool.py ORIGIN COUNT WORKERS per-thread|shared
"""
import concurrent.futures
import os
import sys
import threading
import time

from requests_oauthlib import OAuth1Session

origin, count, workers, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if mode not in ("per-thread", "shared"):
    sys.exit("mode must be per-thread or shared")


def new_session():
    s = OAuth1Session("ck-bench-consumer-key", client_secret="cs-bench-consumer-secret",
                      resource_owner_key="tk-bench-access-token",
                      resource_owner_secret="ts-bench-access-token-secret")
    s.headers["Accept"] = "application/json"
    return s


local = threading.local()
shared = new_session()


def session():
    if mode == "shared":
        return shared
    s = getattr(local, "session", None)
    if s is None:
        s = local.session = new_session()
    return s


def fetch(i):
    r = session().get("%s/api/v2/album/bench%d!images" % (origin, i))
    r.json()
    return r.status_code


def vm_hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


shared.get(origin + "/api/v2/album/bench1!images")      # imports, first connection: outside the clock
ok = errors = 0
c0 = sum(os.times()[:2])
t0 = time.perf_counter()
with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
    for status in pool.map(fetch, range(1, count + 1)):
        if status == 200:
            ok += 1
        else:
            errors += 1
secs = time.perf_counter() - t0
print("RESULT secs=%.6f ok=%d errors=%d hwm_kb=%d cpu=%.3f" % (secs, ok, errors, vm_hwm_kb(),
                                                               sum(os.times()[:2]) - c0))
