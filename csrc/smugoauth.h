/*
 * smugoauth.h -- declarations shared by the C core's files.
 *
 * Everything here is internal: the shared object is built with
 * -fvisibility=hidden and only luaopen_smugoauth_core is exported.
 * Files that do not include Lua (buf, encode, oauth, sigmethod, nonce) are
 * plain C over byte buffers so the fuzz targets can link them alone.
 */
#ifndef SMUGOAUTH_H
#define SMUGOAUTH_H

#include <stddef.h>
#include <string.h>

#define SO_VERSION "0.1.0"

#if defined(__GNUC__)
#define SO_EXPORT __attribute__((visibility("default")))
#else
#define SO_EXPORT
#endif

/* ---- buf.c: a growable byte buffer with a sticky out-of-memory flag ---- */

typedef struct so_buf {
  char *p;
  size_t len, cap;
  int oom;                      /* set once an allocation failed */
} so_buf;

void so_buf_init(so_buf *b);
void so_buf_free(so_buf *b);
int so_buf_grow(so_buf *b, size_t extra);
void so_buf_adds(so_buf *b, const char *s);

/* Make room for extra more bytes; 0 on success, -1 (and oom set) on failure.
 * Inline: the signing path calls these for every piece it appends. */
static inline int so_buf_reserve(so_buf *b, size_t extra) {
  if (!b->oom && extra <= b->cap - b->len) return 0;
  return so_buf_grow(b, extra);
}

static inline void so_buf_add(so_buf *b, const void *s, size_t n) {
  if (n == 0 || so_buf_reserve(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static inline void so_buf_addc(so_buf *b, char c) {
  if (so_buf_reserve(b, 1) != 0) return;
  b->p[b->len++] = c;
}

/* ---- encode.c: RFC 5849 percent-encoding, base64, hex ---- */

/* 1 for the unreserved set A-Za-z0-9-._~ */
extern const unsigned char so_unreserved[256];

void so_pct_encode(so_buf *b, const char *s, size_t n);
/* Percent-encode an already encoded string (only '%' can need it). */
void so_pct_reencode(so_buf *b, const char *s, size_t n);
/* Decode into out (capacity >= n); invalid escapes are kept as they are.
 * plus_space: '+' becomes ' '. Returns the decoded length. */
size_t so_pct_decode(char *out, const char *s, size_t n, int plus_space);
size_t so_b64_encode(char *out, const unsigned char *s, size_t n);
#define SO_B64_LEN(n) ((((n) + 2) / 3) * 4)
/* Returns decoded length, or (size_t)-1 on invalid input. url: base64url. */
size_t so_b64_decode(unsigned char *out, const char *s, size_t n, int url);
void so_hex_encode(char *out, const unsigned char *s, size_t n);

/* ---- oauth.c: URL parsing, parameters, base string ---- */

typedef struct so_url {
  const char *scheme; size_t scheme_len;
  const char *host; size_t host_len;      /* IPv6 keeps its brackets */
  long port;                              /* -1 when absent */
  const char *path; size_t path_len;
  const char *query; size_t query_len;
} so_url;

/* Returns NULL on success, else a static message saying what is wrong. */
const char *so_url_parse(so_url *u, const char *s, size_t n);
/* scheme://host[:port]/path, lower-cased, default port dropped */
void so_base_uri(so_buf *b, const so_url *u);

/* A list of encoded parameters: names and values live in arena at offsets. */
typedef struct so_pair {
  size_t n, nl, v, vl;          /* offsets/lengths into the arena */
  const char *np, *vp;          /* set by so_params_sort */
} so_pair;

typedef struct so_params {
  so_buf arena;                 /* encoded names and values */
  so_pair *items;
  size_t count, cap;
  so_buf scratch;               /* decoding space */
  int oom;
} so_params;

void so_params_init(so_params *ps);
void so_params_free(so_params *ps);
void so_params_reset(so_params *ps);
/* add a decoded name/value: both get percent-encoded */
void so_params_add(so_params *ps, const char *n, size_t nl, const char *v, size_t vl);
/* add a name/value pair that is already percent-encoded */
void so_params_add_enc(so_params *ps, const char *n, size_t nl, const char *v, size_t vl);
/* add every name=value of an application/x-www-form-urlencoded string */
void so_params_add_form(so_params *ps, const char *s, size_t n);
/* sort by encoded name, then encoded value (RFC 5849 3.4.1.3.2); after
 * this the arena must not grow while np/vp are used */
void so_params_sort(so_params *ps);
/* append the normalized parameter string, itself percent-encoded */
void so_params_normalized_enc(so_buf *b, const so_params *ps, const char *skip);

/* One Authorization header parameter; the value is already percent-encoded. */
typedef struct so_hdr_param {
  const char *name, *value;
  size_t value_len;
} so_hdr_param;

/* Append `OAuth [realm="..."], name="value", ...` (RFC 5849 3.5.1); realm
 * (may be NULL) is written as an RFC 2617 quoted-string. Returns 0, or -1
 * when realm holds a control character (nothing is appended then). */
int so_auth_header(so_buf *out, const char *realm, size_t realm_len,
                   const so_hdr_param *ps, size_t n);

/* Parse a form string calling fn for each decoded name/value pair.
 * Used by the token-response parser; returns the number of pairs. */
typedef void (*so_form_fn)(void *ud, const char *n, size_t nl, const char *v, size_t vl);
size_t so_form_each(const char *s, size_t n, so_buf *scratch, so_form_fn fn, void *ud);

/* ---- sigmethod.c: signature methods ---- */

enum { SO_HMAC_SHA1, SO_HMAC_SHA256, SO_HMAC_SHA512, SO_PLAINTEXT, SO_RSA_SHA1 };
extern const char *const so_method_names[];

typedef struct so_signer so_signer;   /* caches keyed MAC state and RSA keys */
so_signer *so_signer_new(void);
void so_signer_free(so_signer *s);
/* Sign the base string; the signature (base64, or the key for PLAINTEXT) is
 * appended to out. key is enc(cs)&enc(ts). Returns NULL or an error message
 * (OpenSSL's queue is drained into errbuf). */
const char *so_signer_sign(so_signer *s, int method, const char *key, size_t keylen,
                           const char *pem, size_t pemlen,
                           const char *msg, size_t msglen, so_buf *out,
                           char *errbuf, size_t errlen);
/* Drain OpenSSL's error queue into buf (prefixed by what). */
void so_ssl_error(char *buf, size_t len, const char *what);

/* ---- nonce.c: CSPRNG pool, nonces ---- */

typedef struct so_rand_page so_rand_page;

typedef struct so_rand {
  so_rand_page *pg;             /* mmap'd, wiped in a forked child */
  int wipeonfork;               /* else: compare the process id */
  long pid;
} so_rand;

/* 0, or -1 when no memory could be had */
int so_rand_init(so_rand *r);
void so_rand_free(so_rand *r);
/* 0 on success, -1 when the CSPRNG failed */
int so_rand_bytes(so_rand *r, unsigned char *out, size_t n);
/* n bytes straight from the CSPRNG (no pool): 0, or -1 on failure */
int so_random(unsigned char *out, size_t n);
/* 32 hex characters (128 bits) into out[33] */
int so_nonce(so_rand *r, char out[33]);

#endif
