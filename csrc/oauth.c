/* oauth.c -- RFC 5849 3.4.1: base string URI and request parameters. */
#include <stdlib.h>
#include <string.h>

#include "smugoauth.h"

/* ---------------------------------------------------------------- URL */

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

/* Is the URL's scheme name (case-insensitively)? */
static int scheme_is(const so_url *u, const char *name) {
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
    int dflt = (u->port == 80 && scheme_is(u, "http")) || (u->port == 443 && scheme_is(u, "https"));
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

/* --------------------------------------------------------- parameters */

void so_params_init(so_params *ps) {
  so_buf_init(&ps->arena);
  so_buf_init(&ps->scratch);
  ps->items = NULL;
  ps->count = ps->cap = 0;
  ps->oom = 0;
}

void so_params_free(so_params *ps) {
  so_buf_free(&ps->arena);
  so_buf_free(&ps->scratch);
  free(ps->items);
  so_params_init(ps);
}

/* Forget the contents, keep the memory for the next request. */
void so_params_reset(so_params *ps) {
  ps->arena.len = 0;
  ps->scratch.len = 0;
  ps->count = 0;
  ps->oom = ps->arena.oom = ps->scratch.oom = 0;
}

/* Append an item; encode: percent-encode n and v, else copy them. */
static void params_push(so_params *ps, const char *n, size_t nl, const char *v, size_t vl,
                        int encode) {
  so_pair *it;
  if (ps->count == ps->cap) {
    size_t cap = ps->cap ? ps->cap * 2 : 16;
    so_pair *items = realloc(ps->items, cap * sizeof *items);
    if (items == NULL) { ps->oom = 1; return; }
    ps->items = items;
    ps->cap = cap;
  }
  it = &ps->items[ps->count];
  it->n = ps->arena.len;
  if (encode) so_pct_encode(&ps->arena, n, nl); else so_buf_add(&ps->arena, n, nl);
  it->nl = ps->arena.len - it->n;
  it->v = ps->arena.len;
  if (encode) so_pct_encode(&ps->arena, v, vl); else so_buf_add(&ps->arena, v, vl);
  it->vl = ps->arena.len - it->v;
  if (ps->arena.oom) { ps->oom = 1; return; }
  ps->count++;
}

void so_params_add(so_params *ps, const char *n, size_t nl, const char *v, size_t vl) {
  params_push(ps, n, nl, v, vl, 1);
}

void so_params_add_enc(so_params *ps, const char *n, size_t nl, const char *v, size_t vl) {
  params_push(ps, n, nl, v, vl, 0);
}

static void add_pair_cb(void *ud, const char *n, size_t nl, const char *v, size_t vl) {
  so_params_add((so_params *)ud, n, nl, v, vl);
}

/* Decode each name=value of a form string; empty components are skipped. */
size_t so_form_each(const char *s, size_t n, so_buf *scratch, so_form_fn fn, void *ud) {
  size_t i = 0, count = 0;
  while (i < n) {
    const char *amp = memchr(s + i, '&', n - i);
    size_t end = amp ? (size_t)(amp - s) : n;
    if (end > i) {
      const char *eq = memchr(s + i, '=', end - i);
      size_t ne = eq ? (size_t)(eq - s) : end;
      size_t vs = eq ? ne + 1 : end;
      size_t dn, dv;
      scratch->len = 0;
      if (so_buf_reserve(scratch, end - i) != 0) return count;
      dn = so_pct_decode(scratch->p, s + i, ne - i, 1);
      dv = so_pct_decode(scratch->p + dn, s + vs, end - vs, 1);
      fn(ud, scratch->p, dn, scratch->p + dn, dv);
      count++;
    }
    i = end + 1;
  }
  return count;
}

void so_params_add_form(so_params *ps, const char *s, size_t n) {
  so_form_each(s, n, &ps->scratch, add_pair_cb, ps);
  if (ps->scratch.oom) ps->oom = 1;
}

static int pair_cmp(const void *pa, const void *pb) {
  const so_pair *a = pa, *b = pb;
  size_t m = a->nl < b->nl ? a->nl : b->nl;
  int c = memcmp(a->np, b->np, m);
  if (c != 0) return c;
  if (a->nl != b->nl) return a->nl < b->nl ? -1 : 1;
  m = a->vl < b->vl ? a->vl : b->vl;
  c = memcmp(a->vp, b->vp, m);
  if (c != 0) return c;
  return a->vl < b->vl ? -1 : (a->vl > b->vl);
}

/* Fix the pointers into the (now final) arena, then sort: insertion sort
 * for the usual handful of parameters, qsort beyond. */
void so_params_sort(so_params *ps) {
  size_t i, j;
  const char *base = ps->arena.p ? ps->arena.p : "";   /* all empty: no arena yet */
  for (i = 0; i < ps->count; i++) {
    ps->items[i].np = base + ps->items[i].n;
    ps->items[i].vp = base + ps->items[i].v;
  }
  if (ps->count > 16) {
    qsort(ps->items, ps->count, sizeof *ps->items, pair_cmp);
    return;
  }
  for (i = 1; i < ps->count; i++) {
    so_pair t = ps->items[i];
    for (j = i; j > 0 && pair_cmp(&ps->items[j - 1], &t) > 0; j--)
      ps->items[j] = ps->items[j - 1];
    ps->items[j] = t;
  }
}

/* enc(n1=v1&n2=v2...): '=' is %3D, '&' is %26, '%' is %25. skip: a name
 * left out of the string (oauth_signature), or NULL. */
void so_params_normalized_enc(so_buf *b, const so_params *ps, const char *skip) {
  size_t i, sl = skip ? strlen(skip) : 0;
  int first = 1;
  for (i = 0; i < ps->count; i++) {
    const so_pair *it = &ps->items[i];
    if (skip && it->nl == sl && memcmp(it->np, skip, sl) == 0) continue;
    if (!first) so_buf_add(b, "%26", 3);
    first = 0;
    so_pct_reencode(b, it->np, it->nl);
    so_buf_add(b, "%3D", 3);
    so_pct_reencode(b, it->vp, it->vl);
  }
}

/* ------------------------------------------------- Authorization header */

int so_auth_header(so_buf *out, const char *realm, size_t realm_len,
                   const so_hdr_param *ps, size_t n) {
  size_t i, k;
  if (realm != NULL)
    for (k = 0; k < realm_len; k++)
      if ((unsigned char)realm[k] < 0x20 || realm[k] == 0x7f) return -1;
  so_buf_add(out, "OAuth ", 6);
  if (realm != NULL) {
    so_buf_add(out, "realm=\"", 7);
    for (k = 0; k < realm_len; k++) {
      if (realm[k] == '"' || realm[k] == '\\') so_buf_addc(out, '\\');
      so_buf_addc(out, realm[k]);
    }
    so_buf_addc(out, '"');
    if (n > 0) so_buf_add(out, ", ", 2);
  }
  for (i = 0; i < n; i++) {
    so_buf_adds(out, ps[i].name);
    so_buf_add(out, "=\"", 2);
    so_buf_add(out, ps[i].value, ps[i].value_len);
    so_buf_addc(out, '"');
    if (i + 1 < n) so_buf_add(out, ", ", 2);
  }
  return 0;
}
