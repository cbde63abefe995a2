/* buf.c -- a growable byte buffer; allocation failures are sticky. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void so_buf_init(so_buf *b) {
  b->p = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
}

void so_buf_free(so_buf *b) {
  free(b->p);
  so_buf_init(b);
}

/* The slow path of so_buf_reserve: grow the allocation (doubling). */
int so_buf_grow(so_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (b->oom) return -1;
  if (extra <= b->cap - b->len) return 0;
  if (extra > (size_t)-1 / 2 - b->len) { b->oom = 1; return -1; }
  need = b->len + extra;
  cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  p = realloc(b->p, cap);
  if (p == NULL) { b->oom = 1; return -1; }
  b->p = p;
  b->cap = cap;
  return 0;
}

void so_buf_adds(so_buf *b, const char *s) {
  so_buf_add(b, s, strlen(s));
}
