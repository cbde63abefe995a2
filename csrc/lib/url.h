/* url.h -- splitting an absolute http(s)-style URL into its pieces, without
 * copying, and the base string URI of RFC 5849 section 3.4.1.2. */
#ifndef SO_URL_H
#define SO_URL_H

#include <stddef.h>

#include "buf.h"

typedef struct so_url {
  const char *scheme; size_t scheme_len;
  const char *host; size_t host_len;      /* IPv6 keeps its brackets */
  long port;                              /* -1 when absent */
  const char *path; size_t path_len;
  const char *query; size_t query_len;    /* query NULL when there is no '?' */
} so_url;

/* Split s[0, n) (scheme://host[:port]/path?query#fragment): NULL on
 * success, else a static message saying what is wrong (it never quotes
 * the URL, which may hold secrets). */
const char *so_url_parse(so_url *u, const char *s, size_t n);
/* Is the URL's scheme name (lower-case ASCII), case-insensitively? */
int so_url_scheme_is(const so_url *u, const char *name);
/* Append scheme://host[:port]/path, lower-cased, the default port dropped. */
void so_base_uri(so_buf *b, const so_url *u);

#endif
