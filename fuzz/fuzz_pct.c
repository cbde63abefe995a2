/*
 * fuzz_pct.c -- RFC 5849 percent-encoding (encode.c).
 *
 * For any bytes x:
 *   - so_pct_encode(x) equals the reference encoding and is canonical: only
 *     A-Za-z0-9-._~ and %XX with upper-case hex, unreserved bytes never escaped;
 *   - so_pct_decode(so_pct_encode(x)) == x, with and without plus_space;
 *   - so_pct_reencode(e) for e = so_pct_encode(x) decodes back to e, and is
 *     the same as so_pct_encode(e) (only '%' needs escaping in e);
 *   - so_pct_decode(x) writes at most n bytes (x is decoded into a heap block
 *     of exactly n bytes, so ASan sees any overrun) and matches the reference
 *     decoder in both '+' modes.
 */
#include "fuzz_common.h"
#include "encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *x = (const char *)data;
  so_buf enc, re, enc2;
  char *dec, *ref;
  size_t dl, rl, bad, plus;

  so_buf_init(&enc);
  so_buf_init(&re);
  so_buf_init(&enc2);

  /* encode: canonical and equal to the reference */
  so_pct_encode(&enc, x, size);
  FZ_CHECK(!enc.oom, "so_pct_encode ran out of memory on %zu bytes", size);
  bad = fz_bad_encoding(enc.p, enc.len);
  if (bad != (size_t)-1) {
    fz_dump("input", x, size);
    fz_dump("encoded", enc.p, enc.len);
    FZ_FAIL("so_pct_encode output is not canonical at offset %zu", bad);
  }
  ref = fz_xmalloc(size * 3);
  rl = fz_ref_encode(ref, x, size);
  if (!fz_eq(enc.p, enc.len, ref, rl)) {
    fz_dump("input", x, size);
    fz_dump("so_pct_encode", enc.p, enc.len);
    fz_dump("reference", ref, rl);
    FZ_FAIL("so_pct_encode differs from the reference encoder");
  }
  free(ref);

  /* decode(encode(x)) == x, in both '+' modes */
  dec = fz_exact(enc.len);
  for (plus = 0; plus < 2; plus++) {
    dl = so_pct_decode(dec, enc.p, enc.len, (int)plus);
    if (!fz_eq(dec, dl, x, size)) {
      fz_dump("input", x, size);
      fz_dump("decoded", dec, dl);
      FZ_FAIL("so_pct_decode(so_pct_encode(x)) != x (plus_space %zu)", plus);
    }
  }
  free(dec);

  /* reencode(encode(x)) decodes back to encode(x) and equals encode(encode(x)) */
  so_pct_reencode(&re, enc.p, enc.len);
  so_pct_encode(&enc2, enc.p, enc.len);
  FZ_CHECK(!re.oom && !enc2.oom, "out of memory");
  bad = fz_bad_encoding(re.p, re.len);
  FZ_CHECK(bad == (size_t)-1, "so_pct_reencode output is not canonical at offset %zu", bad);
  if (!fz_eq(re.p, re.len, enc2.p, enc2.len)) {
    fz_dump("encoded", enc.p, enc.len);
    fz_dump("so_pct_reencode", re.p, re.len);
    fz_dump("so_pct_encode", enc2.p, enc2.len);
    FZ_FAIL("so_pct_reencode(e) != so_pct_encode(e) for an encoded e");
  }
  dec = fz_exact(re.len);
  dl = so_pct_decode(dec, re.p, re.len, 0);
  if (!fz_eq(dec, dl, enc.p, enc.len)) {
    fz_dump("encoded", enc.p, enc.len);
    fz_dump("decode(reencode(e))", dec, dl);
    FZ_FAIL("so_pct_decode(so_pct_reencode(e)) != e");
  }
  free(dec);

  /* decode arbitrary bytes: never more than n bytes, same as the reference */
  dec = fz_exact(size);              /* exactly n bytes: ASan catches an overrun */
  ref = fz_xmalloc(size);
  for (plus = 0; plus < 2; plus++) {
    dl = so_pct_decode(dec, x, size, (int)plus);
    FZ_CHECK(dl <= size, "so_pct_decode returned %zu for %zu input bytes", dl, size);
    rl = fz_ref_decode(ref, x, size, (int)plus);
    if (!fz_eq(dec, dl, ref, rl)) {
      fz_dump("input", x, size);
      fz_dump("so_pct_decode", dec, dl);
      fz_dump("reference", ref, rl);
      FZ_FAIL("so_pct_decode differs from the reference decoder (plus_space %zu)", plus);
    }
  }
  free(dec);
  free(ref);

  so_buf_free(&enc);
  so_buf_free(&re);
  so_buf_free(&enc2);
  return 0;
}
