/* cookie.c -- sealed, authenticated, expiring cookie values, and the
 * private key file their master key may be kept in.
 *
 * A value is four base64url pieces (no padding) joined by '.':
 *
 *     B(hdr) "." B(iv) "." B(ct || gcm_tag) "." B(mac)
 *
 * hdr = version (1 byte, 1) || expiry (8 bytes, big-endian Unix seconds).
 * From the 32-byte master key two keys are derived with HMAC-SHA256 under
 * distinct labels, enc_key and mac_key; then
 *   ct, gcm_tag = AES-256-GCM(enc_key, iv, payload,
 *                             aad = AAD_LABEL || len32(name) || name || expiry)
 *   mac = HMAC-SHA256(mac_key, MAC_LABEL || len32(name) || name ||
 *                     "B(hdr).B(iv).B(ct || gcm_tag)")
 * The MAC covers the cookie name, the expiry and every byte of the value
 * before it, and is checked (CRYPTO_memcmp) before anything is decoded
 * further or decrypted; the GCM tag is a second, independent check. The iv
 * is 96 random bits from the CSPRNG. Values are at most SO_COOKIE_MAX bytes.
 *
 * Sealing and opening are plain C over caller-owned fixed-size buffers with
 * no allocation of its own (OpenSSL's cipher context aside); the key file
 * (read and created through privfile.h) comes last. The Lua binding is
 * csrc/lua/lcookie.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cookie.h"
#include "encode.h"
#include "nonce.h"
#include "privfile.h"

/* ---- implementation ---- */

#define HDR_LEN 9                 /* version + expiry */
#define TAG_LEN 16
#define MAC_LEN 32
#define VERSION 1
#define PIECES 4

static const char DERIVE_ENC[] = "smugoauth cookie v1 encryption key";
static const char DERIVE_MAC[] = "smugoauth cookie v1 mac key";
static const char AAD_LABEL[] = "smugoauth cookie v1 aad";
static const char MAC_LABEL[] = "smugoauth cookie v1 mac";

/* Length of base64url without padding for n bytes. */
static size_t b64u_len(size_t n) {
  return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

/* base64url without padding into out; returns the length written. */
static size_t b64u_encode(char *out, const unsigned char *s, size_t n) {
  size_t o = so_b64_encode(out, s, n), i;
  while (o > 0 && out[o - 1] == '=') o--;
  for (i = 0; i < o; i++) out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
  return o;
}

/* Decode a base64url piece of n > 0 characters into out (capacity cap);
 * want > 0: it must give exactly want bytes. Returns the length, or (size_t)-1. */
static size_t b64u_decode(unsigned char *out, size_t cap, const char *s, size_t n, size_t want) {
  size_t d, o;
  if (n == 0 || n % 4 == 1) return (size_t)-1;
  d = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);          /* what n characters decode to */
  if (d > cap || (want && d != want)) return (size_t)-1;
  o = so_b64_decode(out, s, n, 1);
  return o == d ? o : (size_t)-1;
}

static void put_be64(unsigned char *p, uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--) { p[i] = (unsigned char)(v & 0xff); v >>= 8; }
}

static uint64_t get_be64(const unsigned char *p) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* label || len(name) || name into buf (capacity checked by the caller). */
static size_t bind_name(unsigned char *buf, const char *label, size_t ll,
                        const char *name, size_t nl) {
  memcpy(buf, label, ll);
  put_be32(buf + ll, (uint32_t)nl);
  memcpy(buf + ll + 4, name, nl);
  return ll + 4 + nl;
}

/* The MAC of `text` (the value up to its last '.') for cookie name. */
static int value_mac(const so_cookie_keys *k, const char *name, size_t nl,
                     const char *text, size_t tl, unsigned char mac[MAC_LEN]) {
  unsigned char msg[sizeof MAC_LABEL + 4 + SO_COOKIE_NAME_MAX + SO_COOKIE_MAX];
  unsigned int ml = 0;
  size_t n = bind_name(msg, MAC_LABEL, sizeof MAC_LABEL - 1, name, nl);
  memcpy(msg + n, text, tl);
  n += tl;
  return HMAC(EVP_sha256(), k->mac, (int)sizeof k->mac, msg, n, mac, &ml) != NULL &&
         ml == MAC_LEN ? 0 : -1;
}

/* AES-256-GCM one-shot; enc: 1 to encrypt (tag written), 0 to decrypt (tag checked). */
static int gcm(const so_cookie_keys *k, int enc, const unsigned char *iv,
               const unsigned char *aad, size_t al, const unsigned char *in, size_t n,
               unsigned char *out, unsigned char tag[TAG_LEN]) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int len = 0, ok;
  if (c == NULL) return -1;
  ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, k->enc, iv, enc) &&
       EVP_CipherUpdate(c, NULL, &len, aad, (int)al) &&
       (n == 0 || EVP_CipherUpdate(c, out, &len, in, (int)n));
  if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag);
  if (ok) ok = EVP_CipherFinal_ex(c, out + (n == 0 ? 0 : len), &len) > 0;
  if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag);
  EVP_CIPHER_CTX_free(c);
  if (!ok) ERR_clear_error();
  return ok ? 0 : -1;
}

int so_cookie_derive(so_cookie_keys *k, const unsigned char master[SO_COOKIE_KEY]) {
  unsigned int l1 = 0, l2 = 0;
  if (HMAC(EVP_sha256(), master, SO_COOKIE_KEY, (const unsigned char *)DERIVE_ENC,
           sizeof DERIVE_ENC - 1, k->enc, &l1) == NULL ||
      HMAC(EVP_sha256(), master, SO_COOKIE_KEY, (const unsigned char *)DERIVE_MAC,
           sizeof DERIVE_MAC - 1, k->mac, &l2) == NULL || l1 != 32 || l2 != 32) {
    ERR_clear_error();
    so_cookie_wipe(k);
    return -1;
  }
  return 0;
}

void so_cookie_wipe(so_cookie_keys *k) {
  OPENSSL_cleanse(k, sizeof *k);
}

/* Value length for a payload of pl bytes. */
static size_t sealed_len(size_t pl) {
  return b64u_len(HDR_LEN) + 1 + b64u_len(SO_COOKIE_IV) + 1 + b64u_len(pl + TAG_LEN) + 1 +
         b64u_len(MAC_LEN);
}

size_t so_cookie_max_payload(void) {
  size_t pl = SO_COOKIE_MAX;
  while (pl > 0 && sealed_len(pl) > SO_COOKIE_MAX) pl--;
  return pl;
}

const char *so_cookie_seal(const so_cookie_keys *k, const char *name, size_t nl,
                           const unsigned char *payload, size_t pl, int64_t expires_at,
                           const unsigned char iv[SO_COOKIE_IV], char *out, size_t *outlen) {
  unsigned char hdr[HDR_LEN], aad[sizeof AAD_LABEL + 4 + SO_COOKIE_NAME_MAX + 8];
  unsigned char ct[SO_COOKIE_MAX + TAG_LEN], mac[MAC_LEN];
  size_t al, o = 0;
  *outlen = 0;
  out[0] = '\0';
  if (nl == 0 || nl > SO_COOKIE_NAME_MAX) return "bad_name";
  if (expires_at <= 0) return "bad_expiry";
  if (pl > SO_COOKIE_MAX || sealed_len(pl) > SO_COOKIE_MAX) return "too_large";
  hdr[0] = VERSION;
  put_be64(hdr + 1, (uint64_t)expires_at);
  al = bind_name(aad, AAD_LABEL, sizeof AAD_LABEL - 1, name, nl);
  memcpy(aad + al, hdr + 1, 8);
  al += 8;
  if (gcm(k, 1, iv, aad, al, payload, pl, ct, ct + pl) != 0) {
    OPENSSL_cleanse(ct, pl);
    return "crypto";
  }
  o += b64u_encode(out + o, hdr, HDR_LEN);
  out[o++] = '.';
  o += b64u_encode(out + o, iv, SO_COOKIE_IV);
  out[o++] = '.';
  o += b64u_encode(out + o, ct, pl + TAG_LEN);
  if (value_mac(k, name, nl, out, o, mac) != 0) {
    out[0] = '\0';
    return "crypto";
  }
  out[o++] = '.';
  o += b64u_encode(out + o, mac, MAC_LEN);
  out[o] = '\0';
  *outlen = o;
  return NULL;
}

/* Characters of base64url and the '.' separator. */
static int value_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_' || c == '.';
}

const char *so_cookie_open(const so_cookie_keys *k, const char *name, size_t nl,
                           const char *value, size_t vl, int64_t now,
                           unsigned char *out, size_t *outlen) {
  const char *piece[PIECES];
  size_t plen[PIECES], i, np = 0, start = 0, ctl;
  unsigned char mac[MAC_LEN], want[MAC_LEN], hdr[HDR_LEN], iv[SO_COOKIE_IV];
  unsigned char ct[SO_COOKIE_MAX], aad[sizeof AAD_LABEL + 4 + SO_COOKIE_NAME_MAX + 8];
  size_t al;
  uint64_t exp;
  int same;
  *outlen = 0;
  if (vl > SO_COOKIE_MAX) return "too_long";
  if (nl == 0 || nl > SO_COOKIE_NAME_MAX) return "bad_name";
  /* split into exactly four non-empty pieces of base64url characters */
  for (i = 0; i <= vl; i++) {
    if (i == vl || value[i] == '.') {
      if (np == PIECES || i == start) return "malformed";
      piece[np] = value + start;
      plen[np++] = i - start;
      start = i + 1;
    } else if (!value_char((unsigned char)value[i])) {
      return "malformed";
    }
  }
  if (np != PIECES) return "malformed";
  /* the MAC first: nothing else is looked at before it verifies */
  if (b64u_decode(mac, MAC_LEN, piece[3], plen[3], MAC_LEN) == (size_t)-1) return "malformed";
  if (value_mac(k, name, nl, value, (size_t)(piece[3] - value) - 1, want) != 0) return "crypto";
  same = CRYPTO_memcmp(mac, want, MAC_LEN) == 0;
  OPENSSL_cleanse(want, sizeof want);
  if (!same) return "bad_mac";
  if (b64u_decode(hdr, HDR_LEN, piece[0], plen[0], HDR_LEN) == (size_t)-1 ||
      b64u_decode(iv, SO_COOKIE_IV, piece[1], plen[1], SO_COOKIE_IV) == (size_t)-1)
    return "malformed";
  ctl = b64u_decode(ct, sizeof ct, piece[2], plen[2], 0);
  if (ctl == (size_t)-1 || ctl < TAG_LEN) return "malformed";
  if (hdr[0] != VERSION) return "bad_version";
  exp = get_be64(hdr + 1);
  if (exp > (uint64_t)INT64_MAX || now < 0 || (uint64_t)now >= exp) return "expired";
  al = bind_name(aad, AAD_LABEL, sizeof AAD_LABEL - 1, name, nl);
  memcpy(aad + al, hdr + 1, 8);
  al += 8;
  if (gcm(k, 0, iv, aad, al, ct, ctl - TAG_LEN, out, ct + ctl - TAG_LEN) != 0) {
    OPENSSL_cleanse(out, ctl - TAG_LEN);
    return "bad_mac";
  }
  *outlen = ctl - TAG_LEN;
  return NULL;
}

/* ---- the key file ---- */

/* Read a 32-byte key from fd: 64 hex digits (an optional final newline), or
 * 32 raw bytes. 0, or -1. */
static int parse_key(const unsigned char *s, size_t n, unsigned char key[SO_COOKIE_KEY]) {
  size_t i;
  if (n == SO_COOKIE_KEY) {
    memcpy(key, s, SO_COOKIE_KEY);
    return 0;
  }
  if (n == 65 && s[64] == '\n') n = 64;
  if (n != 64) return -1;
  for (i = 0; i < 64; i++) {
    int c = s[i], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
                      c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (v < 0) return -1;
    if (i % 2 == 0) key[i / 2] = (unsigned char)(v << 4);
    else key[i / 2] = (unsigned char)(key[i / 2] | v);
  }
  return 0;
}

/* Read the key file through the private-file unit (privfile.h: a regular
 * file, ours, 0600 or stricter, in a directory only we or root own and
 * write; every check on the descriptor it is read from). NULL, or a message
 * in err; *missing is set when there is no such file. */
static const char *read_key_file(const char *path, unsigned char key[SO_COOKIE_KEY],
                                 int *missing, char *err, size_t errlen) {
  unsigned char buf[80];
  size_t n = 0;
  int st = so_priv_read(path, buf, sizeof buf, &n, err, errlen);
  *missing = st == SO_PRIV_MISSING;
  if (st == SO_PRIV_OK && parse_key(buf, n, key) != 0) st = SO_PRIV_TOO_LARGE;
  OPENSSL_cleanse(buf, sizeof buf);
  if (st == SO_PRIV_TOO_LARGE)
    snprintf(err, errlen, "%s: the key file must hold 64 hex digits (32 bytes)", path);
  return st == SO_PRIV_OK ? NULL : err;
}

/* Create the key file with a fresh random key: written to a 0600 temporary
 * file beside it, then linked into place (link fails if the name exists, so a
 * concurrent creator wins and its key is read instead). *created is set. */
static const char *create_key_file(const char *path, unsigned char key[SO_COOKIE_KEY],
                                   int *created, char *err, size_t errlen) {
  char tmp[4096 + 16];
  char hex[65];
  int fd, rc;
  size_t pl = strlen(path);
  *created = 0;
  if (pl > 4096) {
    snprintf(err, errlen, "key file path too long");
    return err;
  }
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp.XXXXXX", 12);
  if (so_random(key, SO_COOKIE_KEY) != 0) {
    ERR_clear_error();
    snprintf(err, errlen, "%s: the CSPRNG failed", path);
    return err;
  }
  fd = mkstemp(tmp);           /* O_EXCL, mode 0600 */
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot create the key file (%s)", path, strerror(errno));
    return err;
  }
  so_hex_encode(hex, key, SO_COOKIE_KEY);
  hex[64] = '\n';
  rc = fchmod(fd, 0600) == 0 && write(fd, hex, 65) == 65 && fsync(fd) == 0;
  OPENSSL_cleanse(hex, sizeof hex);
  if (close(fd) != 0) rc = 0;
  if (!rc) {
    snprintf(err, errlen, "%s: cannot write the key file (%s)", path, strerror(errno));
    unlink(tmp);
    return err;
  }
  rc = link(tmp, path);
  unlink(tmp);
  if (rc != 0) {
    int missing;
    if (errno == EEXIST) return read_key_file(path, key, &missing, err, errlen);
    snprintf(err, errlen, "%s: cannot create the key file (%s)", path, strerror(errno));
    return err;
  }
  *created = 1;
  return NULL;
}

int so_cookie_key_file(const char *path, unsigned char key[SO_COOKIE_KEY], int *created,
                       char *err, size_t errlen) {
  int missing = 0;
  const char *why = read_key_file(path, key, &missing, err, errlen);
  *created = 0;
  if (why != NULL && missing)       /* none yet (its directory was checked): create it */
    why = create_key_file(path, key, created, err, errlen);
  if (why != NULL) {
    OPENSSL_cleanse(key, SO_COOKIE_KEY);
    return -1;
  }
  return 0;
}
