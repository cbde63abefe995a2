/*
 * fuzz_form.c -- the form / token-response parser so_form_each (oauth.c).
 *
 * For any bytes s:
 *   - so_form_each returns the number of pairs it reported, and the pairs
 *     equal those of an independent reference parser (split on '&', empty
 *     components skipped, name up to the first '=', '+' is a space);
 *   - serializing the pairs as enc(name)=enc(value) joined by '&' with
 *     so_pct_encode and parsing that again gives the same pairs;
 *   - the scratch buffer can be reused: parsing s a second time with the
 *     same (now grown, non-empty) scratch gives the same pairs.
 */
#include "fuzz_common.h"
#include "encode.h"
#include "oauth.h"

static void dump_pairs(const char *label, const fz_pairs *ps) {
  size_t i;
  fprintf(stderr, "  %s: %zu pairs\n", label, ps->count);
  for (i = 0; i < ps->count && i < 20; i++) {
    fz_dump("name", ps->p[i].n, ps->p[i].nl);
    fz_dump("value", ps->p[i].v, ps->p[i].vl);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  fz_pairs got = {0}, ref = {0}, again = {0}, reuse = {0};
  so_buf scratch, ser;
  size_t count, i, bad;

  so_buf_init(&scratch);
  so_buf_init(&ser);

  count = so_form_each(s, size, &scratch, fz_pairs_cb, &got);
  FZ_CHECK(!scratch.oom, "scratch ran out of memory");
  FZ_CHECK(count == got.count, "so_form_each returned %zu but reported %zu pairs", count,
           got.count);
  fz_ref_form(&ref, s, size);
  if (!fz_pairs_equal(&got, &ref)) {
    fz_dump("input", s, size);
    dump_pairs("so_form_each", &got);
    dump_pairs("reference", &ref);
    FZ_FAIL("so_form_each differs from the reference parser");
  }

  /* the same scratch again (grown and holding the last pair) */
  count = so_form_each(s, size, &scratch, fz_pairs_cb, &reuse);
  FZ_CHECK(count == reuse.count && fz_pairs_equal(&got, &reuse),
           "so_form_each gave other pairs with a reused scratch buffer");

  /* serialize with so_pct_encode, parse again */
  for (i = 0; i < got.count; i++) {
    if (i > 0) so_buf_addc(&ser, '&');
    so_pct_encode(&ser, got.p[i].n, got.p[i].nl);
    so_buf_addc(&ser, '=');
    so_pct_encode(&ser, got.p[i].v, got.p[i].vl);
  }
  FZ_CHECK(!ser.oom, "out of memory");
  for (i = 0; i < ser.len; i++) {           /* pieces between '&' and '=' are canonical */
    size_t j = i;
    while (j < ser.len && ser.p[j] != '&' && ser.p[j] != '=') j++;
    bad = fz_bad_encoding(ser.p + i, j - i);
    FZ_CHECK(bad == (size_t)-1, "so_pct_encode output not canonical");
    i = j;
  }
  count = so_form_each(ser.p, ser.len, &scratch, fz_pairs_cb, &again);
  if (count != again.count || !fz_pairs_equal(&got, &again)) {
    fz_dump("input", s, size);
    fz_dump("serialized", ser.p, ser.len);
    dump_pairs("first parse", &got);
    dump_pairs("second parse", &again);
    FZ_FAIL("parse(serialize(parse(s))) != parse(s)");
  }

  fz_pairs_free(&got);
  fz_pairs_free(&ref);
  fz_pairs_free(&again);
  fz_pairs_free(&reuse);
  so_buf_free(&scratch);
  so_buf_free(&ser);
  return 0;
}
