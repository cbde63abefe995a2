"""A sequential SmugMug backup the way a plain script writes it, with
python3-requests + requests-oauthlib (one requests.Session, keep-alive,
OAuth1 auth on every request): GET !authuser -> the root node -> its
children, page after page (folders followed depth first, albums listed) ->
each album's images, page after page -> each ArchivedUri downloaded (signed,
streamed in 64 KiB pieces) to DEST/<album name>/<FileName>, its MD5 checked
against ArchivedMD5 while it is written. One request at a time.

usage: backup_oauthlib.py API_ORIGIN KEY SECRET TOKEN TOKEN_SECRET DEST [MAX_IMAGES]
  MAX_IMAGES (0: all) stops after that many images have been downloaded.
prints "RESULT files=N bytes=N requests=N listing=N bad_md5=N seconds=S
listing_seconds=S cpu=S" (seconds: the whole run, listing included; cpu:
user + system of this process)"""
import hashlib
import os
import sys
import time

import requests
from requests_oauthlib import OAuth1

PAGE = 100

origin, key, secret, token, token_secret, dest = sys.argv[1:7]
max_images = int(sys.argv[7]) if len(sys.argv) > 7 else 0

session = requests.Session()
session.auth = OAuth1(key, client_secret=secret, resource_owner_key=token,
                      resource_owner_secret=token_secret)
session.headers["Accept"] = "application/json"

counts = {"requests": 0, "listing": 0, "files": 0, "bytes": 0, "bad_md5": 0}
listing_seconds = 0.0


class Enough(Exception):
    pass


def api_get(uri, params=None):
    global listing_seconds
    t = time.perf_counter()
    r = session.get(origin + uri, params=params)
    r.raise_for_status()
    counts["requests"] += 1
    counts["listing"] += 1
    listing_seconds += time.perf_counter() - t
    return r.json()["Response"]


def paged(uri, locator):
    start = 1
    while True:
        resp = api_get(uri, {"start": start, "count": PAGE})
        for item in resp.get(locator) or []:
            yield item
        pages = resp.get("Pages") or {}
        if not pages.get("NextPage"):
            return
        start += PAGE


def safe(name):
    name = name.replace("/", "_").replace("\0", "_")
    return "_" if name in ("", ".", "..") else name


def download(image, folder):
    path = os.path.join(folder, safe(image["FileName"]))
    r = session.get(image["ArchivedUri"], stream=True)
    counts["requests"] += 1
    r.raise_for_status()
    md5 = hashlib.md5()
    n = 0
    with open(path, "wb") as f:
        for chunk in r.iter_content(65536):
            f.write(chunk)
            md5.update(chunk)
            n += len(chunk)
    if md5.hexdigest() != image["ArchivedMD5"] or n != image["ArchivedSize"]:
        counts["bad_md5"] += 1
    counts["files"] += 1
    counts["bytes"] += n
    if max_images and counts["files"] >= max_images:
        raise Enough()


def album(uri, folder):
    a = api_get(uri)["Album"]
    folder = os.path.join(folder, safe(a["Name"]))
    os.makedirs(folder, exist_ok=True)
    for image in paged(a["Uris"]["AlbumImages"]["Uri"], "AlbumImage"):
        download(image, folder)


def node(uri, folder):
    for child in paged(uri, "Node"):
        if child["Type"] == "Folder":
            sub = os.path.join(folder, safe(child["Name"]))
            os.makedirs(sub, exist_ok=True)
            node(child["Uris"]["ChildNodes"]["Uri"], sub)
        elif child["Type"] == "Album":
            album(child["Uris"]["Album"]["Uri"], folder)


c0 = sum(os.times()[:2])
t0 = time.perf_counter()
try:
    user = api_get("/api/v2!authuser")["User"]
    root = api_get(user["Uris"]["Node"]["Uri"])["Node"]
    node(root["Uris"]["ChildNodes"]["Uri"], dest)
except Enough:
    pass
seconds = time.perf_counter() - t0
print("RESULT files=%d bytes=%d requests=%d listing=%d bad_md5=%d seconds=%.6f listing_seconds=%.6f cpu=%.6f" % (
    counts["files"], counts["bytes"], counts["requests"], counts["listing"], counts["bad_md5"], seconds,
    listing_seconds, sum(os.times()[:2]) - c0))
