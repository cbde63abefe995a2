/* url.c -- splitting a URL without copying; the base string URI of
 * RFC 5849 section 3.4.1.2 (url.h). */
#include <string.h>

#include "url.h"

static int is_alpha(unsigned char c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c | 32) : c; }

/* Split scheme://host[:port]/path?query#fragment without copying. */
const char *so_url_parse(so_url *u, const char *s, size_t n) {
  size_t i = 0, a, e, hend;
  memset(u, 0, sizeof *u);
  u->port = -1;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c == 0x7f) break;
  }
  if (i < n) return "url contains a space or control character (percent-encode it)";
  if (n == 0 || !is_alpha((unsigned char)s[0])) return "url has no scheme";
  for (i = 1; i < n && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i])
                        || s[i] == '+' || s[i] == '-' || s[i] == '.'); i++) {}
  if (i + 3 > n || memcmp(s + i, "://", 3) != 0) return "url has no scheme";
  u->scheme = s;
  u->scheme_len = i;
  a = i + 3;
  for (e = a; e < n && s[e] != '/' && s[e] != '?' && s[e] != '#'; e++) {
    if (s[e] == '@') return "url must not contain user information";
    if (s[e] == '\\') return "url has a backslash in its host";
  }
  /* authority is s[a, e) */
  if (a < e && s[a] == '[') {
    const char *rb = memchr(s + a, ']', e - a);
    if (rb == NULL) return "url has an unterminated IPv6 address";
    hend = (size_t)(rb - s) + 1;
  } else {
    const char *colon = memchr(s + a, ':', e - a);
    hend = colon ? (size_t)(colon - s) : e;
  }
  u->host = s + a;
  u->host_len = hend - a;
  if (u->host_len == 0 || (u->host_len == 2 && s[a] == '[')) return "url has no host";
  if (hend < e) {
    size_t k;
    long port = 0;
    if (s[hend] != ':') return "url has junk after its host";
    for (k = hend + 1; k < e; k++) {
      if (!is_digit((unsigned char)s[k])) return "url has a non-numeric port";
      port = port * 10 + (s[k] - '0');
      if (port > 65535) return "url port is out of range";
    }
    if (k > hend + 1) {
      if (port == 0) return "url port is out of range";
      u->port = port;
    }
  }
  u->path = s + e;
  {
    const char *q = memchr(s + e, '?', n - e), *h;
    const char *pend = q ? q : s + n;
    h = memchr(s + e, '#', (size_t)(pend - (s + e)));
    if (h != NULL) {               /* a fragment before any '?' ends it all */
      u->path_len = (size_t)(h - (s + e));
      return NULL;
    }
    u->path_len = (size_t)(pend - (s + e));
    if (q != NULL) {
      h = memchr(q + 1, '#', (size_t)(s + n - (q + 1)));
      u->query = q + 1;
      u->query_len = (size_t)((h ? h : s + n) - (q + 1));
    }
  }
  return NULL;
}

int so_url_scheme_is(const so_url *u, const char *name) {
  size_t i, n = strlen(name);
  if (u->scheme_len != n) return 0;
  for (i = 0; i < n; i++)
    if (lower(u->scheme[i]) != name[i]) return 0;
  return 1;
}

/* Base string URI (3.4.1.2): lower-case scheme and host, no default port. */
void so_base_uri(so_buf *b, const so_url *u) {
  size_t i;
  char *o;
  if (so_buf_reserve(b, u->scheme_len + u->host_len + u->path_len + 10) != 0) return;
  o = b->p + b->len;
  for (i = 0; i < u->scheme_len; i++) *o++ = lower(u->scheme[i]);
  memcpy(o, "://", 3); o += 3;
  for (i = 0; i < u->host_len; i++) *o++ = lower(u->host[i]);
  if (u->port >= 0) {
    int dflt = (u->port == 80 && so_url_scheme_is(u, "http")) ||
               (u->port == 443 && so_url_scheme_is(u, "https"));
    if (!dflt) {
      char tmp[8];
      int k = 0;
      long p = u->port;
      do { tmp[k++] = (char)('0' + p % 10); p /= 10; } while (p);
      *o++ = ':';
      while (k) *o++ = tmp[--k];
    }
  }
  if (u->path_len == 0) *o++ = '/';
  else { memcpy(o, u->path, u->path_len); o += u->path_len; }
  b->len = (size_t)(o - b->p);
}

