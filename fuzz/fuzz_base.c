/*
 * fuzz_base.c -- URL parsing, the base string URI, parameter normalization,
 * the method and the signature base string (url.c, oauth.c, encode.c).
 *
 * Input: a separator byte, then method SEP url SEP name SEP value SEP ...
 * (fz_split). For every input:
 *   - so_url_parse never crashes or reads outside the url (it gets its own
 *     heap block); on success the pieces lie inside the url, the scheme is
 *     ALPHA *(ALPHA / DIGIT / "+" / "-" / ".") followed by "://", the host is
 *     non-empty, the port is absent or 1-65535, the path is empty or starts
 *     with '/', and neither path nor query holds a '#';
 *   - so_base_uri equals an independent construction, its scheme and host
 *     are lower-case, it has no query or fragment, and no :80 for http or
 *     :443 for https;
 *   - the normalized parameters (the url's query, then the name/value
 *     fields, oauth_signature left out) use only the encoded alphabet; split
 *     apart they are canonical encodings, sorted by (name, value), and the
 *     same multiset as a reference encoding of the input pairs;
 *   - so_method_put accepts exactly the RFC 9110 tokens of 1 to 32 bytes (an
 *     independent tchar check) and appends them upper-cased and
 *     percent-encoded; a refusal appends nothing;
 *   - METHOD & enc(base uri) & normalized has exactly three '&'-separated
 *     parts, and the middle one decodes to the base string URI.
 */
#include "fuzz_common.h"
#include "encode.h"
#include "oauth.h"
#include "url.h"

static int lc(int c) { return c >= 'A' && c <= 'Z' ? c | 32 : c; }

static int inside(const char *p, size_t n, const char *s, size_t sl) {
  return p >= s && n <= sl && (size_t)(p - s) <= sl - n;
}

static int has_byte(const char *s, size_t n, int c) {
  return n > 0 && memchr(s, c, n) != NULL;
}

static int pair_cmp(const void *a, const void *b) {
  const fz_pair *x = a, *y = b;
  int c = fz_cmp(x->n, x->nl, y->n, y->nl);
  return c ? c : fz_cmp(x->v, x->vl, y->v, y->vl);
}

/* Check the url's pieces and the base string URI; returns nothing, aborts. */
static void check_uri(const char *url, size_t ul, const so_url *u, const so_buf *b) {
  char want[32 + 4096 * 2];
  size_t i, w = 0, auth_end, host_end;
  const char *B = b->p;
  size_t bl = b->len;

  FZ_CHECK(u->scheme == url, "scheme does not start the url");
  FZ_CHECK(u->scheme_len >= 1 && ul >= u->scheme_len + 3 &&
           memcmp(url + u->scheme_len, "://", 3) == 0, "scheme is not followed by ://");
  for (i = 0; i < u->scheme_len; i++) {
    unsigned char c = (unsigned char)url[i];
    int alpha = (c | 32) >= 'a' && (c | 32) <= 'z', digit = c >= '0' && c <= '9';
    FZ_CHECK(alpha || (i > 0 && (digit || c == '+' || c == '-' || c == '.')),
             "bad scheme character 0x%02x", c);
  }
  for (i = 0; i < ul; i++)
    FZ_CHECK((unsigned char)url[i] > 0x20 && url[i] != 0x7f,
             "url with a space or control character was accepted");
  FZ_CHECK(u->host_len >= 1 && inside(u->host, u->host_len, url, ul), "host out of the url");
  FZ_CHECK(!has_byte(u->host, u->host_len, '/') && !has_byte(u->host, u->host_len, '?') &&
           !has_byte(u->host, u->host_len, '#') && !has_byte(u->host, u->host_len, '@'),
           "host holds / ? # or @");
  FZ_CHECK(u->port == -1 || (u->port >= 1 && u->port <= 65535), "port %ld", u->port);
  FZ_CHECK(inside(u->path, u->path_len, url, ul), "path out of the url");
  FZ_CHECK(u->path_len == 0 || u->path[0] == '/', "path does not start with /");
  FZ_CHECK(!has_byte(u->path, u->path_len, '?') && !has_byte(u->path, u->path_len, '#'),
           "path holds ? or #");
  FZ_CHECK(u->query == NULL ? u->query_len == 0 :
           inside(u->query, u->query_len, url, ul) && !has_byte(u->query, u->query_len, '#'),
           "query out of the url or holds #");

  /* independent construction */
  for (i = 0; i < u->scheme_len; i++) want[w++] = (char)lc((unsigned char)u->scheme[i]);
  memcpy(want + w, "://", 3); w += 3;
  for (i = 0; i < u->host_len; i++) want[w++] = (char)lc((unsigned char)u->host[i]);
  if (u->port != -1) {
    int http = u->scheme_len == 4 && lc(url[0]) == 'h' && lc(url[1]) == 't' &&
               lc(url[2]) == 't' && lc(url[3]) == 'p';
    int https = u->scheme_len == 5 && lc(url[0]) == 'h' && lc(url[1]) == 't' &&
                lc(url[2]) == 't' && lc(url[3]) == 'p' && lc(url[4]) == 's';
    if (!(http && u->port == 80) && !(https && u->port == 443))
      w += (size_t)sprintf(want + w, ":%ld", u->port);
  }
  if (u->path_len == 0) want[w++] = '/';
  else { memcpy(want + w, u->path, u->path_len); w += u->path_len; }
  if (!fz_eq(B, bl, want, w)) {
    fz_dump("url", url, ul);
    fz_dump("so_base_uri", B, bl);
    fz_dump("expected", want, w);
    FZ_FAIL("so_base_uri differs from the expected base string URI");
  }

  /* the properties, stated directly */
  FZ_CHECK(!has_byte(B, bl, '?') && !has_byte(B, bl, '#'), "base URI has a query or fragment");
  auth_end = u->scheme_len + 3;
  while (auth_end < bl && B[auth_end] != '/') auth_end++;
  for (i = 0; i < auth_end; i++)
    FZ_CHECK(!(B[i] >= 'A' && B[i] <= 'Z'), "upper case in the base URI's scheme or host");
  host_end = u->scheme_len + 3 + u->host_len;
  if (u->scheme_len == 4 && memcmp(B, "http", 4) == 0)
    FZ_CHECK(!(auth_end == host_end + 3 && memcmp(B + host_end, ":80", 3) == 0),
             "default port :80 kept for http");
  if (u->scheme_len == 5 && memcmp(B, "https", 5) == 0)
    FZ_CHECK(!(auth_end == host_end + 4 && memcmp(B + host_end, ":443", 4) == 0),
             "default port :443 kept for https");
}

/* Split the normalized string back into (encoded name, value) pairs. */
static void unnormalize(const char *s, size_t n, fz_pairs *out) {
  char *cur = fz_xmalloc(n), *name = fz_xmalloc(n);
  size_t i, cl = 0, nl = 0;
  int have_name = 0;
  for (i = 0; i <= n; i++) {
    if (i == n || (s[i] == '%' && i + 2 < n && s[i + 1] == '2' && s[i + 2] == '6')) {
      if (i == n && n == 0) break;
      FZ_CHECK(have_name, "normalized item without %%3D");
      fz_pairs_add(out, name, nl, cur, cl);
      cl = 0;
      have_name = 0;
      i += 2;
      continue;
    }
    if (s[i] == '%') {
      FZ_CHECK(i + 2 < n, "truncated escape in the normalized string");
      if (s[i + 1] == '2' && s[i + 2] == '5') {
        cur[cl++] = '%';
      } else if (s[i + 1] == '3' && s[i + 2] == 'D') {
        FZ_CHECK(!have_name, "two %%3D in one normalized item");
        memcpy(name, cur, cl);
        nl = cl;
        cl = 0;
        have_name = 1;
      } else {
        FZ_FAIL("escape other than %%25 %%26 %%3D in the normalized string");
      }
      i += 2;
      continue;
    }
    FZ_CHECK(fz_unreserved((unsigned char)s[i]), "byte 0x%02x in the normalized string",
             (unsigned char)s[i]);
    cur[cl++] = s[i];
  }
  free(cur);
  free(name);
}

static void add_expected(fz_pairs *exp, const char *n, size_t nl, const char *v, size_t vl) {
  char *en = fz_xmalloc(nl * 3), *ev = fz_xmalloc(vl * 3);
  size_t enl = fz_ref_encode(en, n, nl), evl = fz_ref_encode(ev, v, vl);
  if (!fz_eq(en, enl, "oauth_signature", 15)) fz_pairs_add(exp, en, enl, ev, evl);
  free(en);
  free(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_fields ff;
  char *url, *query = NULL;
  so_url u;
  const char *err;
  so_buf uri, norm, base;
  so_params ps;
  fz_pairs qpairs = {0}, expected = {0}, got = {0};
  char method[3 * 32];
  size_t ml = 0, i, a1, a2, amps;

  if (size > 8192) return 0;
  fz_split(&ff, data, size);
  if (ff.count < 2) return 0;
  url = fz_exact(ff.n[1]);
  if (ff.n[1]) memcpy(url, ff.f[1], ff.n[1]);
  err = so_url_parse(&u, url, ff.n[1]);
  if (err != NULL) {
    FZ_CHECK(strlen(err) > 0, "empty error message");
    free(url);
    return 0;
  }
  so_buf_init(&uri);
  so_buf_init(&norm);
  so_buf_init(&base);
  so_params_init(&ps);

  so_base_uri(&uri, &u);
  FZ_CHECK(!uri.oom, "out of memory");
  check_uri(url, ff.n[1], &u, &uri);

  /* parameters: the query (copied to its own block), then the fields */
  if (u.query != NULL) {
    query = fz_exact(u.query_len);
    if (u.query_len) memcpy(query, u.query, u.query_len);
    so_params_add_form(&ps, query, u.query_len);
    fz_ref_form(&qpairs, query, u.query_len);
    for (i = 0; i < qpairs.count; i++)
      add_expected(&expected, qpairs.p[i].n, qpairs.p[i].nl, qpairs.p[i].v, qpairs.p[i].vl);
  }
  for (i = 2; i < ff.count; i += 2) {
    const char *v = i + 1 < ff.count ? ff.f[i + 1] : "";
    size_t vl = i + 1 < ff.count ? ff.n[i + 1] : 0;
    so_params_add(&ps, ff.f[i], ff.n[i], v, vl);
    add_expected(&expected, ff.f[i], ff.n[i], v, vl);
  }
  FZ_CHECK(!ps.oom, "out of memory");
  so_params_sort(&ps);
  for (i = 1; i < ps.count; i++) {
    const so_pair *x = &ps.items[i - 1], *y = &ps.items[i];
    int c = fz_cmp(x->np, x->nl, y->np, y->nl);
    FZ_CHECK(c < 0 || (c == 0 && fz_cmp(x->vp, x->vl, y->vp, y->vl) <= 0),
             "so_params_sort left items %zu and %zu out of order", i - 1, i);
  }
  so_params_normalized_enc(&norm, &ps, "oauth_signature");
  FZ_CHECK(!norm.oom, "out of memory");
  unnormalize(norm.p, norm.len, &got);
  for (i = 0; i < got.count; i++) {
    FZ_CHECK(fz_bad_encoding(got.p[i].n, got.p[i].nl) == (size_t)-1 &&
             fz_bad_encoding(got.p[i].v, got.p[i].vl) == (size_t)-1,
             "normalized item %zu is not a canonical encoding", i);
    if (i > 0) FZ_CHECK(pair_cmp(&got.p[i - 1], &got.p[i]) <= 0,
                        "normalized items %zu and %zu out of order", i - 1, i);
  }
  if (expected.count > 1) qsort(expected.p, expected.count, sizeof *expected.p, pair_cmp);
  if (!fz_pairs_equal(&got, &expected)) {
    fz_dump("input", data, size);
    fz_dump("normalized", norm.p, norm.len);
    FZ_FAIL("normalized parameters (%zu) are not the input parameters (%zu)", got.count,
            expected.count);
  }

  /* the base string: what lsign.c's build_base makes of these pieces; the
   * method: a token of 1 to 32 bytes, upper-cased and percent-encoded */
  {
    int token = ff.n[0] >= 1 && ff.n[0] <= 32;
    char up[32];
    for (i = 0; token && i < ff.n[0]; i++) {
      unsigned char c = (unsigned char)ff.f[0][i];
      token = c < 0x80 && c != 0 && ((c | 32) >= 'a' && (c | 32) <= 'z' ? 1 :
              (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL);
      if (token) up[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
    if (so_method_put(&base, ff.f[0], ff.n[0]) != 0) {
      FZ_CHECK(!token, "so_method_put refused a token");
      FZ_CHECK(base.len == 0, "so_method_put appended something to a refusal");
      memcpy(method, "GET", 3);
      ml = 3;
      so_buf_add(&base, method, ml);
    } else {
      FZ_CHECK(token, "so_method_put accepted a method that is not a token");
      ml = fz_ref_encode(method, up, ff.n[0]);
      FZ_CHECK(fz_eq(base.p, base.len, method, ml),
               "the method is not upper-cased and percent-encoded");
    }
  }
  so_buf_addc(&base, '&');
  so_pct_encode(&base, uri.p, uri.len);
  so_buf_addc(&base, '&');
  so_buf_add(&base, norm.p, norm.len);
  FZ_CHECK(!base.oom, "out of memory");
  for (i = 0, amps = 0, a1 = a2 = 0; i < base.len; i++) {
    if (base.p[i] != '&') continue;
    if (amps == 0) a1 = i; else a2 = i;
    amps++;
  }
  FZ_CHECK(amps == 2, "base string has %zu '&' (want 2)", amps);
  FZ_CHECK(fz_eq(base.p, a1, method, ml), "base string does not start with the method");
  FZ_CHECK(fz_bad_encoding(base.p + a1 + 1, a2 - a1 - 1) == (size_t)-1,
           "base string URI part is not a canonical encoding");
  {
    char *dec = fz_exact(a2 - a1 - 1);
    size_t dl = so_pct_decode(dec, base.p + a1 + 1, a2 - a1 - 1, 0);
    FZ_CHECK(fz_eq(dec, dl, uri.p, uri.len), "base string URI part does not decode to the URI");
    free(dec);
  }
  FZ_CHECK(fz_eq(base.p + a2 + 1, base.len - a2 - 1, norm.p, norm.len),
           "base string parameter part is not the normalized string");

  fz_pairs_free(&qpairs);
  fz_pairs_free(&expected);
  fz_pairs_free(&got);
  so_params_free(&ps);
  so_buf_free(&uri);
  so_buf_free(&norm);
  so_buf_free(&base);
  free(query);
  free(url);
  return 0;
}
