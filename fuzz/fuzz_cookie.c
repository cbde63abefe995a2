/*
 * fuzz_cookie.c -- the sealed-cookie core so_cookie_seal/so_cookie_open
 * (csrc/lib/cookie.c).
 *
 * The first input byte picks a mode:
 *   0  forge: the rest is a cookie value; so_cookie_open must refuse it
 *      (with one of the documented reasons and *outlen 0) and not crash;
 *   1  forge past the MAC: the rest is the text before the last '.', the
 *      target appends a valid MAC (computed here from the documented
 *      construction), so hdr/iv/ciphertext decoding and the GCM check are
 *      reached; so_cookie_open must still refuse;
 *   2+ round trip: key, iv, expiry, a time, a name, a position, a byte and a
 *      payload are read from the input; so_cookie_seal must give a value in
 *      the documented format (four base64url pieces, header 01||be64(expiry),
 *      the iv, a MAC equal to an independent HMAC-SHA256), and
 *      so_cookie_open must return the payload with the same key and name
 *      before the expiry, and refuse at or after the expiry, with another
 *      name (one byte changed, longer, shorter), with another key (one bit
 *      flipped), with one byte of the value changed (to any byte and to a
 *      base64url character), and with the value cut short or extended.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz_common.h"
#include "cookie.h"
#include "encode.h"

static const char B64U[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding (independent of encode.c). */
static size_t b64u(char *out, const unsigned char *s, size_t n) {
  size_t i, o = 0;
  for (i = 0; i + 3 <= n; i += 3) {
    unsigned long v = (unsigned long)s[i] << 16 | (unsigned long)s[i + 1] << 8 | s[i + 2];
    out[o++] = B64U[v >> 18 & 63]; out[o++] = B64U[v >> 12 & 63];
    out[o++] = B64U[v >> 6 & 63]; out[o++] = B64U[v & 63];
  }
  if (n - i == 1) {
    unsigned long v = (unsigned long)s[i] << 16;
    out[o++] = B64U[v >> 18 & 63]; out[o++] = B64U[v >> 12 & 63];
  } else if (n - i == 2) {
    unsigned long v = (unsigned long)s[i] << 16 | (unsigned long)s[i + 1] << 8;
    out[o++] = B64U[v >> 18 & 63]; out[o++] = B64U[v >> 12 & 63];
    out[o++] = B64U[v >> 6 & 63];
  }
  return o;
}

/* MAC piece for text: B(HMAC-SHA256(mac_key, label || be32(nl) || name || text)). */
static size_t mac_piece(char *out, const so_cookie_keys *k, const char *name, size_t nl,
                        const char *text, size_t tl) {
  static const char label[] = "smugoauth cookie v1 mac";
  unsigned char mac[32], *msg = fz_xmalloc(sizeof label - 1 + 4 + nl + tl), *m = msg;
  unsigned int ml = 0;
  memcpy(m, label, sizeof label - 1); m += sizeof label - 1;
  *m++ = (unsigned char)(nl >> 24); *m++ = (unsigned char)(nl >> 16);
  *m++ = (unsigned char)(nl >> 8); *m++ = (unsigned char)nl;
  memcpy(m, name, nl); m += nl;
  if (tl) memcpy(m, text, tl);
  m += tl;
  if (HMAC(EVP_sha256(), k->mac, 32, msg, (size_t)(m - msg), mac, &ml) == NULL || ml != 32)
    abort();
  free(msg);
  return b64u(out, mac, 32);
}

static const char *const REASONS[] = {
  "too_long", "malformed", "bad_name", "bad_mac", "bad_version", "expired", "crypto", NULL
};

/* Open must refuse: a documented reason, nothing output. */
static void must_refuse(const so_cookie_keys *k, const char *name, size_t nl, const char *v,
                        size_t vl, int64_t now, const char *what) {
  unsigned char out[SO_COOKIE_MAX];
  size_t ol = 12345, i;
  const char *why = so_cookie_open(k, name, nl, v, vl, now, out, &ol);
  if (why == NULL) {
    fz_dump("name", name, nl);
    fz_dump("value", v, vl);
    FZ_FAIL("so_cookie_open accepted %s", what);
  }
  for (i = 0; REASONS[i] != NULL && strcmp(REASONS[i], why) != 0; i++) {}
  FZ_CHECK(REASONS[i] != NULL, "undocumented reason \"%s\" (%s)", why, what);
  FZ_CHECK(ol == 0, "*outlen is %zu after a refusal (%s)", ol, what);
}

static void must_say(const so_cookie_keys *k, const char *name, size_t nl, const char *v,
                     size_t vl, int64_t now, const char *reason, const char *what) {
  unsigned char out[SO_COOKIE_MAX];
  size_t ol;
  const char *why = so_cookie_open(k, name, nl, v, vl, now, out, &ol);
  if (why == NULL || strcmp(why, reason) != 0) {
    fz_dump("name", name, nl);
    fz_dump("value", v, vl);
    FZ_FAIL("so_cookie_open said \"%s\" for %s (want \"%s\")", why ? why : "(accepted)", what,
            reason);
  }
}

/* Reads fixed-size fields from the input; zeros past its end. */
typedef struct reader { const uint8_t *p; size_t n, i; } reader;

static void take(reader *r, void *out, size_t n) {
  size_t have = r->i < r->n ? r->n - r->i : 0, c = have < n ? have : n;
  if (c) memcpy(out, r->p + r->i, c);
  memset((unsigned char *)out + c, 0, n - c);
  r->i += n;
}

static uint64_t take64(reader *r) {
  unsigned char b[8];
  uint64_t v = 0;
  int i;
  take(r, b, 8);
  for (i = 0; i < 8; i++) v = v << 8 | b[i];
  return v;
}

static so_cookie_keys KEYS;              /* the fixed key of the forge modes */
static const char NAME[] = "smugoauth_at";

static void init_keys(void) {
  static int done;
  unsigned char master[SO_COOKIE_KEY];
  size_t i;
  if (done) return;
  for (i = 0; i < sizeof master; i++) master[i] = (unsigned char)(i * 7 + 1);
  if (so_cookie_derive(&KEYS, master) != 0) abort();
  done = 1;
}

static void round_trip(const uint8_t *data, size_t size) {
  reader r = { data, size, 0 };
  unsigned char master[SO_COOKIE_KEY], iv[SO_COOKIE_IV], out[SO_COOKIE_MAX], nb, b;
  char name[SO_COOKIE_NAME_MAX + 1], value[SO_COOKIE_MAX + 2], alt[SO_COOKIE_MAX + 2];
  char want[256];
  so_cookie_keys k, k2;
  size_t nl, vl, ol, pl, pos, dots[3], nd = 0, i, wl;
  const unsigned char *payload;
  int64_t exp, now;
  uint64_t off;
  const char *why;
  unsigned char hdr[9];

  take(&r, master, sizeof master);
  take(&r, iv, sizeof iv);
  exp = (int64_t)(take64(&r) >> 1);
  if (exp == 0) exp = 1;
  off = take64(&r);
  now = (int64_t)(off % (uint64_t)exp);
  take(&r, &nb, 1);
  nl = (size_t)nb + 1;
  take(&r, name, nl);
  pos = (size_t)take64(&r);
  take(&r, &b, 1);
  payload = r.i < size ? data + r.i : data + size;
  pl = r.i < size ? size - r.i : 0;

  if (so_cookie_derive(&k, master) != 0) abort();
  why = so_cookie_seal(&k, name, nl, payload, pl, exp, iv, value, &vl);
  if (pl > so_cookie_max_payload()) {
    FZ_CHECK(why != NULL && strcmp(why, "too_large") == 0,
             "payload of %zu bytes (max %zu) not refused as too_large", pl,
             so_cookie_max_payload());
    return;
  }
  FZ_CHECK(why == NULL, "so_cookie_seal failed: %s", why);
  FZ_CHECK(vl <= SO_COOKIE_MAX && value[vl] == '\0', "sealed value too long or unterminated");

  /* the documented format */
  for (i = 0; i < vl; i++) {
    if (value[i] == '.') { FZ_CHECK(nd < 3, "more than four pieces"); dots[nd++] = i; }
    else FZ_CHECK(strchr(B64U, value[i]) != NULL && value[i] != '\0',
                  "byte 0x%02x in a sealed value", (unsigned char)value[i]);
  }
  FZ_CHECK(nd == 3, "%zu pieces", nd + 1);
  hdr[0] = 1;
  for (i = 0; i < 8; i++) hdr[1 + i] = (unsigned char)((uint64_t)exp >> (56 - 8 * i));
  wl = b64u(want, hdr, 9);
  FZ_CHECK(fz_eq(value, dots[0], want, wl), "header piece is not B(01 || be64(expiry))");
  wl = b64u(want, iv, SO_COOKIE_IV);
  FZ_CHECK(fz_eq(value + dots[0] + 1, dots[1] - dots[0] - 1, want, wl), "iv piece is not B(iv)");
  FZ_CHECK(dots[2] - dots[1] - 1 == (pl + 16) / 3 * 4 + ((pl + 16) % 3 ? (pl + 16) % 3 + 1 : 0),
           "ciphertext piece has the wrong length");
  wl = mac_piece(want, &k, name, nl, value, dots[2]);
  FZ_CHECK(fz_eq(value + dots[2] + 1, vl - dots[2] - 1, want, wl),
           "MAC piece is not the documented HMAC-SHA256");

  /* opens before the expiry with the same key and name */
  why = so_cookie_open(&k, name, nl, value, vl, now, out, &ol);
  FZ_CHECK(why == NULL, "so_cookie_open refused its own value: %s", why);
  FZ_CHECK(fz_eq(out, ol, payload, pl), "so_cookie_open returned another payload");
  why = so_cookie_open(&k, name, nl, value, vl, exp - 1, out, &ol);
  FZ_CHECK(why == NULL && fz_eq(out, ol, payload, pl), "refused one second before the expiry");

  /* expiry */
  must_say(&k, name, nl, value, vl, exp, "expired", "the expiry time itself");
  if (exp < INT64_MAX - 1000)
    must_say(&k, name, nl, value, vl, exp + 1 + (int64_t)(off % 1000), "expired", "after expiry");
  must_refuse(&k, name, nl, value, vl, -1, "a negative time");

  /* another name */
  memcpy(alt, name, nl);
  alt[pos % nl] = (char)(alt[pos % nl] ^ (b ? b : 1));
  must_say(&k, alt, nl, value, vl, now, "bad_mac", "another name (one byte changed)");
  if (nl < SO_COOKIE_NAME_MAX) {
    memcpy(alt, name, nl);
    alt[nl] = (char)b;
    must_say(&k, alt, nl + 1, value, vl, now, "bad_mac", "another name (one byte longer)");
  }
  if (nl > 1) must_say(&k, name, nl - 1, value, vl, now, "bad_mac", "another name (shorter)");

  /* another key */
  master[pos % SO_COOKIE_KEY] ^= (unsigned char)(1u << (b & 7));
  if (so_cookie_derive(&k2, master) != 0) abort();
  must_say(&k2, name, nl, value, vl, now, "bad_mac", "another key (one bit flipped)");
  so_cookie_wipe(&k2);

  /* one byte changed: to any other byte, and to another base64url character */
  memcpy(alt, value, vl);
  alt[pos % vl] = (char)(alt[pos % vl] ^ (b ? b : 0x80));
  must_refuse(&k, name, nl, alt, vl, now, "the value with one byte changed");
  memcpy(alt, value, vl);
  alt[pos % vl] = B64U[b % 64] != value[pos % vl] ? B64U[b % 64] : B64U[(b + 1) % 64];
  must_refuse(&k, name, nl, alt, vl, now, "the value with one character replaced");

  /* cut short, extended */
  must_refuse(&k, name, nl, value, vl - 1, now, "the value without its last byte");
  memcpy(alt, value, vl);
  alt[vl] = B64U[b % 64];
  must_refuse(&k, name, nl, alt, vl + 1, now, "the value with a byte added");
  so_cookie_wipe(&k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_keys();
  if (size == 0) return 0;
  if (data[0] == 0) {
    const char *v = (const char *)data + 1;
    size_t vl = size - 1;
    must_refuse(&KEYS, NAME, sizeof NAME - 1, v, vl, 1700000000, "a forged value");
  } else if (data[0] == 1) {
    char *v;
    size_t tl = size - 1, vl;
    if (tl > SO_COOKIE_MAX) return 0;
    v = fz_xmalloc(tl + 1 + 64);
    memcpy(v, data + 1, tl);
    v[tl] = '.';
    vl = tl + 1 + mac_piece(v + tl + 1, &KEYS, NAME, sizeof NAME - 1, v, tl);
    must_refuse(&KEYS, NAME, sizeof NAME - 1, v, vl, 1700000000, "a forged value with a valid MAC");
    free(v);
  } else {
    round_trip(data + 1, size - 1);
  }
  return 0;
}
