/*
 * fuzz_header.c -- the Authorization header builder so_auth_header (oauth.c).
 *
 * Input: a separator byte, then F SEP name SEP value SEP name SEP value ...
 * (fz_split). F[0] bit 0 says whether there is a realm; the rest of F is the
 * realm, any bytes. Names and values are percent-encoded with so_pct_encode
 * first, as the callers in lsign.c do (an empty name becomes "oauth_").
 * For every input:
 *   - a realm holding a control character (< 0x20 or 0x7f) is refused with
 *     -1, and the output buffer is left exactly as it was;
 *   - otherwise the output, after what the buffer already held, parses with
 *     a strict parser (OAuth, then realm as an RFC 2617 quoted-string with
 *     only '"' and '\' escaped, then name="value" joined by ", ", nothing
 *     after) to the same realm and the same name/value pairs in order.
 */
#include "fuzz_common.h"
#include "encode.h"
#include "oauth.h"

#define MAXP 19
static const char PREFIX[] = "Authorization: ";

typedef struct parser { const char *s; size_t n, i; } parser;

static int expect(parser *p, const char *lit) {
  size_t l = strlen(lit);
  if (p->n - p->i < l || memcmp(p->s + p->i, lit, l) != 0) return 0;
  p->i += l;
  return 1;
}

/* A quoted-string after its opening quote, into out (capacity p->n). */
static int quoted(parser *p, char *out, size_t *ol, int escapes) {
  *ol = 0;
  while (p->i < p->n) {
    unsigned char c = (unsigned char)p->s[p->i++];
    if (c == '"') return 1;
    if (c < 0x20 || c == 0x7f) return 0;
    if (c == '\\') {
      if (!escapes || p->i == p->n) return 0;
      c = (unsigned char)p->s[p->i++];
      if (c != '"' && c != '\\') return 0;        /* only what must be escaped */
    } else if (!escapes && !fz_unreserved(c) && c != '%') {
      return 0;                                    /* values are percent-encoded */
    }
    out[(*ol)++] = (char)c;
  }
  return 0;                                        /* unterminated */
}

static void fail_parse(const char *why, const char *out, size_t ol, const char *realm,
                       size_t rl) {
  fz_dump("realm", realm, rl);
  fz_dump("header", out, ol);
  FZ_FAIL("the header does not parse back: %s", why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_fields ff;
  so_buf out, enc[2 * MAXP];
  so_hdr_param hp[MAXP];
  char *names[MAXP];
  const char *realm = NULL;
  size_t rl = 0, np = 0, i, k, pl = sizeof PREFIX - 1;
  int rc, has_ctl = 0;

  if (size > 16384) return 0;
  fz_split(&ff, data, size);
  if (ff.count < 1) return 0;
  if (ff.n[0] > 0 && (ff.f[0][0] & 1)) {
    realm = ff.f[0] + 1;
    rl = ff.n[0] - 1;
    for (k = 0; k < rl; k++)
      if ((unsigned char)realm[k] < 0x20 || realm[k] == 0x7f) has_ctl = 1;
  }
  for (i = 1; i < ff.count && np < MAXP; i += 2, np++) {
    so_buf *n = &enc[2 * np], *v = &enc[2 * np + 1];
    so_buf_init(n);
    so_buf_init(v);
    if (ff.n[i] == 0) so_buf_adds(n, "oauth_");
    else so_pct_encode(n, ff.f[i], ff.n[i]);
    so_buf_addc(n, '\0');                          /* names are C strings */
    if (i + 1 < ff.count) so_pct_encode(v, ff.f[i + 1], ff.n[i + 1]);
    FZ_CHECK(!n->oom && !v->oom, "out of memory");
    names[np] = n->p;
    hp[np].name = n->p;
    hp[np].name_len = n->len - 1;                  /* without the NUL */
    hp[np].value = v->p;
    hp[np].value_len = v->len;
  }

  so_buf_init(&out);
  so_buf_adds(&out, PREFIX);
  rc = so_auth_header(&out, realm, rl, hp, np);
  FZ_CHECK(!out.oom, "out of memory");
  if (has_ctl) {
    FZ_CHECK(rc == -1, "a realm with a control character was accepted");
    FZ_CHECK(fz_eq(out.p, out.len, PREFIX, pl), "a refused header appended to the buffer");
  } else {
    parser p;
    char *tmp = fz_xmalloc(out.len);
    size_t tl = 0;
    FZ_CHECK(rc == 0, "so_auth_header refused a realm without control characters");
    FZ_CHECK(out.len >= pl && memcmp(out.p, PREFIX, pl) == 0, "the buffer's prefix changed");
    p.s = out.p + pl;
    p.n = out.len - pl;
    p.i = 0;
    if (!expect(&p, "OAuth ")) fail_parse("no \"OAuth \"", p.s, p.n, realm, rl);
    if (realm != NULL) {
      if (!expect(&p, "realm=\"") || !quoted(&p, tmp, &tl, 1))
        fail_parse("bad realm", p.s, p.n, realm, rl);
      if (!fz_eq(tmp, tl, realm, rl)) fail_parse("realm differs", p.s, p.n, realm, rl);
      if (np > 0 && !expect(&p, ", ")) fail_parse("no \", \" after realm", p.s, p.n, realm, rl);
    }
    for (i = 0; i < np; i++) {
      size_t start = p.i;
      while (p.i < p.n && (fz_unreserved((unsigned char)p.s[p.i]) || p.s[p.i] == '%')) p.i++;
      if (p.i == start) fail_parse("empty parameter name", p.s, p.n, realm, rl);
      if (!fz_eq(p.s + start, p.i - start, names[i], strlen(names[i])))
        fail_parse("parameter name differs", p.s, p.n, realm, rl);
      if (!expect(&p, "=\"") || !quoted(&p, tmp, &tl, 0))
        fail_parse("bad parameter value", p.s, p.n, realm, rl);
      if (!fz_eq(tmp, tl, hp[i].value, hp[i].value_len))
        fail_parse("parameter value differs", p.s, p.n, realm, rl);
      if (i + 1 < np && !expect(&p, ", ")) fail_parse("no \", \"", p.s, p.n, realm, rl);
    }
    if (p.i != p.n) fail_parse("junk at the end", p.s, p.n, realm, rl);
    free(tmp);
  }

  for (i = 0; i < np; i++) {
    so_buf_free(&enc[2 * i]);
    so_buf_free(&enc[2 * i + 1]);
  }
  so_buf_free(&out);
  return 0;
}
