/* oauth.c -- RFC 5849 3.4.1 request parameters and method, the form
 * parser, the Authorization header (oauth.h). */
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "oauth.h"

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

/* --------------------------------------------------------------- method */

int so_method_put(so_buf *b, const char *m, size_t n) {
  size_t i;
  char up[SO_METHOD_MAX];
  if (n == 0 || n > SO_METHOD_MAX) return -1;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)m[i];
    if (!so_tchar[c]) return -1;
    up[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
  }
  so_pct_encode(b, up, n);
  return 0;
}

/* ------------------------------------------------- Authorization header */

int so_has_ctl(const char *s, size_t n) {
  size_t k;
  for (k = 0; k < n; k++)
    if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f) return 1;
  return 0;
}

int so_auth_header(so_buf *out, const char *realm, size_t realm_len,
                   const so_hdr_param *ps, size_t n) {
  size_t i, k;
  if (realm != NULL && so_has_ctl(realm, realm_len)) return -1;
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
    so_buf_add(out, ps[i].name, ps[i].name_len);
    so_buf_add(out, "=\"", 2);
    so_buf_add(out, ps[i].value, ps[i].value_len);
    so_buf_addc(out, '"');
    if (i + 1 < n) so_buf_add(out, ", ", 2);
  }
  return 0;
}
