/*
 * fuzz_b64.c -- base64 and base64url (encode.c), which the sealed cookies
 * and the b64decode binding rely on.
 *
 * For any bytes x:
 *   - so_b64_encode(x) has SO_B64_LEN(n) bytes of the standard alphabet
 *     with '=' padding only at the end, and decodes back to x (standard),
 *     and to x as base64url after translating +/ to -_ and dropping '=';
 *   - so_b64_decode(x) on arbitrary bytes writes at most 3/4 of the
 *     unpadded length (into a block of exactly that size), and when it
 *     accepts, the input is canonical: encoding the result again gives the
 *     input back (trailing '=' aside), so no two strings decode to the same
 *     bytes.
 */
#include "fuzz_common.h"
#include "encode.h"

static void canonical(const char *s, size_t n, int url) {
  size_t m = n, cap, dl, el, i;
  unsigned char *dec;
  char *enc;
  while (m > 0 && s[m - 1] == '=') m--;
  cap = m * 6 / 8;
  dec = fz_exact(cap);
  dl = so_b64_decode(dec, s, n, url);
  if (dl != (size_t)-1) {
    FZ_CHECK(dl <= cap, "so_b64_decode returned %zu for %zu characters", dl, m);
    enc = fz_xmalloc(SO_B64_LEN(dl));
    el = so_b64_encode(enc, dec, dl);
    while (el > 0 && enc[el - 1] == '=') el--;
    if (url) for (i = 0; i < el; i++) enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
    if (!fz_eq(enc, el, s, m)) {
      fz_dump("input", s, n);
      fz_dump("encode(decode(input))", enc, el);
      FZ_FAIL("so_b64_decode accepted a non-canonical %s string", url ? "base64url" : "base64");
    }
    free(enc);
  }
  free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const unsigned char *x = data;
  size_t el, dl, i, pad = 0;
  char *enc = fz_xmalloc(SO_B64_LEN(size));
  unsigned char *dec = fz_exact(size);

  el = so_b64_encode(enc, x, size);
  FZ_CHECK(el == SO_B64_LEN(size), "so_b64_encode wrote %zu bytes for %zu", el, size);
  for (i = 0; i < el; i++) {
    unsigned char c = (unsigned char)enc[i];
    int ok = fz_unreserved(c) ? c != '-' && c != '.' && c != '_' && c != '~' : c == '+' || c == '/';
    if (c == '=') pad++;
    else FZ_CHECK(ok && pad == 0, "byte 0x%02x at %zu in base64", c, i);
  }
  FZ_CHECK(pad == (3 - size % 3) % 3, "%zu padding bytes for %zu input bytes", pad, size);
  dl = so_b64_decode(dec, enc, el, 0);
  FZ_CHECK(fz_eq(dec, dl, x, size), "decode(encode(x)) != x (base64)");
  for (i = 0; i < el; i++) enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
  dl = so_b64_decode(dec, enc, el - pad, 1);
  FZ_CHECK(fz_eq(dec, dl, x, size), "decode(encode(x)) != x (base64url, unpadded)");
  free(enc);
  free(dec);

  canonical((const char *)data, size, 0);
  canonical((const char *)data, size, 1);
  return 0;
}
