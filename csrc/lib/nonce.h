/* nonce.h -- a CSPRNG pool (OpenSSL's RAND_bytes, drawn 4 KB at a time, safe
 * across fork) and the 128-bit nonces made from it. */
#ifndef SO_NONCE_H
#define SO_NONCE_H

#include <stddef.h>

typedef struct so_rand_page so_rand_page;

typedef struct so_rand {
  so_rand_page *pg;             /* mmap'd, wiped in a forked child */
  int wipeonfork;               /* else: compare the process id */
  long pid;
} so_rand;

/* 0, or -1 when no memory could be had (the pool then draws straight from
 * the CSPRNG: so_rand_bytes still works). */
int so_rand_init(so_rand *r);
/* Wipe and unmap the pool; idempotent. */
void so_rand_free(so_rand *r);
/* n bytes from the pool: 0, or -1 when the CSPRNG failed (OpenSSL's error
 * queue says why). */
int so_rand_bytes(so_rand *r, unsigned char *out, size_t n);
/* n bytes straight from the CSPRNG (no pool): 0, or -1 on failure */
int so_random(unsigned char *out, size_t n);
/* 32 hex characters (128 bits) and a NUL into out: 0, or -1 */
int so_nonce(so_rand *r, char out[33]);

#endif
