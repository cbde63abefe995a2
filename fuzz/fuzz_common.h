/*
 * fuzz_common.h -- helpers shared by the libFuzzer targets in fuzz/.
 *
 * A property failure prints what was expected and aborts, so libFuzzer
 * saves the input as a crash artifact just as it does for a sanitizer report.
 * The reference functions here are written independently of csrc/ so the
 * targets can compare the project's code against them.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Print up to 200 bytes of s, escaping what is not printable ASCII. */
static inline void fz_dump(const char *label, const void *p, size_t n) {
  const unsigned char *s = p;
  size_t i;
  fprintf(stderr, "  %s (%zu bytes): \"", label, n);
  for (i = 0; i < n && i < 200; i++) {
    if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') fputc(s[i], stderr);
    else fprintf(stderr, "\\x%02x", s[i]);
  }
  fprintf(stderr, "%s\"\n", n > 200 ? "..." : "");
}

#define FZ_FAIL(...) do { \
    fprintf(stderr, "\nPROPERTY FAILED at %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); \
    abort(); \
  } while (0)

#define FZ_CHECK(cond, ...) do { if (!(cond)) FZ_FAIL(__VA_ARGS__); } while (0)

/* Equal byte strings? */
static inline int fz_eq(const void *a, size_t al, const void *b, size_t bl) {
  return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

/* Byte-wise comparison, shorter first when one is a prefix of the other. */
static inline int fz_cmp(const char *a, size_t al, const char *b, size_t bl) {
  size_t m = al < bl ? al : bl;
  int c = m ? memcmp(a, b, m) : 0;
  if (c != 0) return c;
  return al < bl ? -1 : al > bl;
}

/* RFC 5849 3.6 unreserved: A-Z a-z 0-9 - . _ ~ */
static inline int fz_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

static inline int fz_hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Is s a canonical RFC 5849 encoding: unreserved bytes, and '%' followed by
 * two upper-case hex digits encoding a byte that is not unreserved? Returns
 * the offset of the first bad byte, or (size_t)-1 when all is well. */
static inline size_t fz_bad_encoding(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (fz_unreserved(c)) continue;
    if (c != '%' || i + 2 >= n) return i;
    {
      unsigned char h = (unsigned char)s[i + 1], l = (unsigned char)s[i + 2];
      int hv = fz_hexval(h), lv = fz_hexval(l);
      if (hv < 0 || lv < 0 || (h >= 'a' && h <= 'f') || (l >= 'a' && l <= 'f')) return i;
      if (fz_unreserved((unsigned char)(hv << 4 | lv))) return i;   /* over-encoded */
    }
    i += 2;
  }
  return (size_t)-1;
}

/* Reference percent-encoder into out (capacity 3 n); returns the length. */
static inline size_t fz_ref_encode(char *out, const char *s, size_t n) {
  static const char hx[] = "0123456789ABCDEF";
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (fz_unreserved(c)) { out[o++] = (char)c; continue; }
    out[o++] = '%';
    out[o++] = hx[c >> 4];
    out[o++] = hx[c & 15];
  }
  return o;
}

/* Reference decoder (the documented contract: %XX with two hex digits is a
 * byte, '+' is a space when plus_space, anything else is kept as it is). */
static inline size_t fz_ref_decode(char *out, const char *s, size_t n, int plus_space) {
  size_t i = 0, o = 0;
  while (i < n) {
    if (s[i] == '%' && n - i >= 3 && fz_hexval((unsigned char)s[i + 1]) >= 0 &&
        fz_hexval((unsigned char)s[i + 2]) >= 0) {
      out[o++] = (char)(fz_hexval((unsigned char)s[i + 1]) * 16 +
                        fz_hexval((unsigned char)s[i + 2]));
      i += 3;
    } else {
      out[o++] = plus_space && s[i] == '+' ? ' ' : s[i];
      i++;
    }
  }
  return o;
}

/* ---- a list of byte-string pairs owned by the target ---- */

typedef struct fz_pair { char *n, *v; size_t nl, vl; } fz_pair;
typedef struct fz_pairs { fz_pair *p; size_t count, cap; } fz_pairs;

static inline void *fz_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) abort();
  return p;
}

/* Exactly n bytes (malloc(0) under ASan is a block nothing may be written to). */
static inline void *fz_exact(size_t n) {
  void *p = malloc(n);
  if (p == NULL && n > 0) abort();
  return p;
}

static inline char *fz_dup(const char *s, size_t n) {
  char *p = fz_xmalloc(n);
  if (n) memcpy(p, s, n);
  return p;
}

static inline void fz_pairs_add(fz_pairs *ps, const char *n, size_t nl, const char *v,
                                size_t vl) {
  if (ps->count == ps->cap) {
    size_t cap = ps->cap ? ps->cap * 2 : 8;
    fz_pair *p = realloc(ps->p, cap * sizeof *p);
    if (p == NULL) abort();
    ps->p = p;
    ps->cap = cap;
  }
  ps->p[ps->count].n = fz_dup(n, nl);
  ps->p[ps->count].nl = nl;
  ps->p[ps->count].v = fz_dup(v, vl);
  ps->p[ps->count].vl = vl;
  ps->count++;
}

static inline void fz_pairs_free(fz_pairs *ps) {
  size_t i;
  for (i = 0; i < ps->count; i++) { free(ps->p[i].n); free(ps->p[i].v); }
  free(ps->p);
  ps->p = NULL;
  ps->count = ps->cap = 0;
}

static inline int fz_pairs_equal(const fz_pairs *a, const fz_pairs *b) {
  size_t i;
  if (a->count != b->count) return 0;
  for (i = 0; i < a->count; i++)
    if (!fz_eq(a->p[i].n, a->p[i].nl, b->p[i].n, b->p[i].nl) ||
        !fz_eq(a->p[i].v, a->p[i].vl, b->p[i].v, b->p[i].vl)) return 0;
  return 1;
}

/* so_form_fn that appends to an fz_pairs. */
static inline void fz_pairs_cb(void *ud, const char *n, size_t nl, const char *v, size_t vl) {
  fz_pairs_add((fz_pairs *)ud, n, nl, v, vl);
}

/* Reference form parser: split on '&', skip empty components, the name ends
 * at the first '=', both halves decoded with '+' as a space. */
static inline void fz_ref_form(fz_pairs *out, const char *s, size_t n) {
  size_t i = 0;
  char *dn = fz_xmalloc(n), *dv = fz_xmalloc(n);
  while (i <= n) {
    size_t end = i, eq;
    while (end < n && s[end] != '&') end++;
    if (end > i) {
      size_t nl, vl;
      for (eq = i; eq < end && s[eq] != '='; eq++) {}
      nl = fz_ref_decode(dn, s + i, eq - i, 1);
      vl = eq < end ? fz_ref_decode(dv, s + eq + 1, end - eq - 1, 1) : 0;
      fz_pairs_add(out, dn, nl, dv, vl);
    }
    i = end + 1;
  }
  free(dn);
  free(dv);
}

/* ---- splitting an input into fields ----
 * The first byte is the separator; the rest is split on it. The fuzzer can
 * pick any separator, so any byte can occur inside a field. */
typedef struct fz_fields { const char *f[40]; size_t n[40]; size_t count; } fz_fields;

static inline void fz_split(fz_fields *ff, const uint8_t *data, size_t size) {
  const char *s = (const char *)data + 1, *end = (const char *)data + size;
  char sep;
  ff->count = 0;
  if (size == 0) return;
  sep = (char)data[0];
  while (ff->count < 40) {
    const char *e = memchr(s, sep, (size_t)(end - s));
    if (e == NULL) e = end;
    ff->f[ff->count] = s;
    ff->n[ff->count++] = (size_t)(e - s);
    if (e == end) break;
    s = e + 1;
  }
}

#endif
