/*
 * cookie.h -- sealed, authenticated, expiring cookie values (the value
 * format is described at the top of cookie.c), and the private file their
 * master key may be kept in.
 */
#ifndef SO_COOKIE_H
#define SO_COOKIE_H

#include <stddef.h>
#include <stdint.h>

#define SO_COOKIE_MAX 4096        /* longest value sealed or accepted */
#define SO_COOKIE_KEY 32          /* master key bytes */
#define SO_COOKIE_IV 12           /* AES-GCM nonce bytes */
#define SO_COOKIE_NAME_MAX 256    /* longest cookie name */

typedef struct so_cookie_keys {
  unsigned char enc[32], mac[32];
} so_cookie_keys;

/* Derive the encryption and MAC keys from a 32-byte master key: 0, or -1
 * when OpenSSL failed. */
int so_cookie_derive(so_cookie_keys *k, const unsigned char master[SO_COOKIE_KEY]);
/* Wipe derived keys. */
void so_cookie_wipe(so_cookie_keys *k);
/* Seal payload for cookie `name` until expires_at (Unix seconds, > 0); iv
 * must be fresh from the CSPRNG for every call. The value goes to out (capacity >= SO_COOKIE_MAX + 1,
 * NUL-terminated), its length to *outlen. Returns NULL, or a reason:
 * "bad_name", "bad_expiry", "too_large", "crypto". */
const char *so_cookie_seal(const so_cookie_keys *k, const char *name, size_t nl,
                           const unsigned char *payload, size_t pl, int64_t expires_at,
                           const unsigned char iv[SO_COOKIE_IV], char *out, size_t *outlen);
/* Open a value sealed for cookie `name` at time now. The payload goes to out
 * (capacity >= SO_COOKIE_MAX), its length to *outlen. Returns NULL, or a
 * reason: "too_long", "malformed", "bad_name", "bad_mac", "bad_version",
 * "expired", "crypto". */
const char *so_cookie_open(const so_cookie_keys *k, const char *name, size_t nl,
                           const char *value, size_t vl, int64_t now,
                           unsigned char *out, size_t *outlen);
/* Largest payload so_cookie_seal accepts for a name (it does not depend on
 * the name: the name is not part of the value). */
size_t so_cookie_max_payload(void);
/* Read the master key from the private file at path (privfile.h: 0600,
 * ours, not a symlink, in a directory no one else may write; 64 hex digits
 * or 32 raw bytes), or create the file with a fresh random key when there is
 * none (*created set). 0 with the key, or -1 with a one-line message naming
 * path in err (and the key wiped). */
int so_cookie_key_file(const char *path, unsigned char key[SO_COOKIE_KEY], int *created,
                       char *err, size_t errlen);

#endif
