/* nonce.c -- nonces from a pool filled by the OpenSSL CSPRNG.
 *
 * RAND_bytes costs about a microsecond a call, so bytes are drawn 4 KB at a
 * time. The pool lives in its own page marked MADV_WIPEONFORK: a forked child
 * sees it zeroed (filled == 0) and refills, so parent and child never hand
 * out the same nonce. Where the kernel lacks that, the process id is checked
 * on every draw instead. */
#define _DEFAULT_SOURCE 1
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "encode.h"
#include "nonce.h"

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

#define PAGE 4096

struct so_rand_page {
  size_t used;
  int filled;
  unsigned char pool[PAGE - 2 * sizeof(size_t)];
};

int so_rand_init(so_rand *r) {
  void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  r->pid = -1;
  r->wipeonfork = 0;
  if (p == MAP_FAILED) {
    r->pg = NULL;
    return -1;
  }
  r->pg = p;
  r->wipeonfork = madvise(p, PAGE, MADV_WIPEONFORK) == 0;
  memset(r->pg, 0, sizeof *r->pg);
  return 0;
}

void so_rand_free(so_rand *r) {
  if (r->pg != NULL) {
    OPENSSL_cleanse(r->pg, sizeof *r->pg);
    munmap(r->pg, PAGE);
    r->pg = NULL;
  }
}

int so_rand_bytes(so_rand *r, unsigned char *out, size_t n) {
  so_rand_page *pg = r->pg;
  if (pg == NULL || n > sizeof pg->pool) return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
  if (!r->wipeonfork) {
    long pid = (long)getpid();
    if (pid != r->pid) { pg->filled = 0; r->pid = pid; }
  }
  if (!pg->filled || sizeof pg->pool - pg->used < n) {
    if (RAND_bytes(pg->pool, (int)sizeof pg->pool) != 1) return -1;
    pg->used = 0;
    pg->filled = 1;
  }
  memcpy(out, pg->pool + pg->used, n);
  OPENSSL_cleanse(pg->pool + pg->used, n);    /* hand each byte out once */
  pg->used += n;
  return 0;
}

int so_random(unsigned char *out, size_t n) {
  return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}

int so_nonce(so_rand *r, char out[33]) {
  unsigned char raw[16];
  if (so_rand_bytes(r, raw, sizeof raw) != 0) return -1;
  so_hex_encode(out, raw, sizeof raw);
  out[32] = '\0';
  return 0;
}
