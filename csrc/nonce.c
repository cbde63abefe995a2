/* nonce.c -- nonces from a small pool filled by the OpenSSL CSPRNG.
 * The pool is dropped when the process id changes, so a forked child
 * never hands out the parent's nonces. */
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "smugoauth.h"

void so_rand_init(so_rand *r) {
  r->used = sizeof r->pool;    /* empty: filled on first use */
  r->pid = -1;
}

int so_rand_bytes(so_rand *r, unsigned char *out, size_t n) {
  long pid = (long)getpid();
  if (n > sizeof r->pool) return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
  if (pid != r->pid || sizeof r->pool - r->used < n) {
    if (RAND_bytes(r->pool, (int)sizeof r->pool) != 1) return -1;
    r->used = 0;
    r->pid = pid;
  }
  memcpy(out, r->pool + r->used, n);
  OPENSSL_cleanse(r->pool + r->used, n);    /* hand each byte out once */
  r->used += n;
  return 0;
}

int so_nonce(so_rand *r, char out[33]) {
  unsigned char raw[16];
  if (so_rand_bytes(r, raw, sizeof raw) != 0) return -1;
  so_hex_encode(out, raw, sizeof raw);
  out[32] = '\0';
  return 0;
}
