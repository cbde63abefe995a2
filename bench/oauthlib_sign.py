"""Signatures per second of python3-oauthlib's Client.sign on one request.
usage: oauthlib_sign.py URL SECONDS -> prints "<n> <seconds>" """
import sys
import time

from oauthlib.oauth1 import Client

url, limit = sys.argv[1], float(sys.argv[2])
client = Client("ck-bench-consumer-key", client_secret="cs-bench-consumer-secret",
                resource_owner_key="tk-bench-access-token",
                resource_owner_secret="ts-bench-access-token-secret")
n = 0
t0 = time.perf_counter()
while True:
    for _ in range(100):
        client.sign(url, http_method="GET", headers={"Accept": "application/json"})
        n += 1
    t1 = time.perf_counter()
    if t1 - t0 >= limit:
        break
print(n, "%.6f" % (t1 - t0))
