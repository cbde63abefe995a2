"""Signed GETs per second with python3-requests + requests-oauthlib: one
requests.Session (keep-alive) with OAuth1 auth, the same GET as bench/http.lua.
usage: requests_oauth.py URL SECONDS
prints "<n> <seconds> <status> <cpu-seconds>" (cpu: user + system of this
process during the timed loop, from os.times like the kernel accounts children)"""
import os
import sys
import time

import requests
from requests_oauthlib import OAuth1

url, limit = sys.argv[1], float(sys.argv[2])
session = requests.Session()
session.auth = OAuth1("ck-bench-consumer-key", client_secret="cs-bench-consumer-secret",
                      resource_owner_key="tk-bench-access-token",
                      resource_owner_secret="ts-bench-access-token-secret")
session.headers["Accept"] = "application/json"

status = session.get(url).status_code          # connect once, outside the clock
n = 0
c0 = sum(os.times()[:2])
t0 = time.perf_counter()
while True:
    for _ in range(20):
        r = session.get(url)
        if r.status_code != 200:
            status = r.status_code
        r.json()
        n += 1
    t1 = time.perf_counter()
    if t1 - t0 >= limit:
        break
print(n, "%.6f" % (t1 - t0), status, "%.6f" % (sum(os.times()[:2]) - c0))
