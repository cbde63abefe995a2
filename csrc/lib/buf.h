/* buf.h -- a growable byte buffer whose allocation failures are sticky:
 * append freely, check `oom` once at the end. */
#ifndef SO_BUF_H
#define SO_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct so_buf {
  char *p;
  size_t len, cap;
  int oom;                      /* set once an allocation failed */
} so_buf;

void so_buf_init(so_buf *b);
void so_buf_free(so_buf *b);
/* The slow path of so_buf_reserve: 0, or -1 (and oom set). */
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

#endif
