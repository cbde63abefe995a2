/* encode.c -- character classes, RFC 5849 section 3.6 percent-encoding,
 * base64 and hex (encode.h). */
#include <string.h>

#include "encode.h"

#define U1(c) [c] = 1
const unsigned char so_unreserved[256] = {
  U1('-'), U1('.'), U1('_'), U1('~'),
  U1('0'), U1('1'), U1('2'), U1('3'), U1('4'), U1('5'), U1('6'), U1('7'), U1('8'), U1('9'),
  U1('A'), U1('B'), U1('C'), U1('D'), U1('E'), U1('F'), U1('G'), U1('H'), U1('I'), U1('J'),
  U1('K'), U1('L'), U1('M'), U1('N'), U1('O'), U1('P'), U1('Q'), U1('R'), U1('S'), U1('T'),
  U1('U'), U1('V'), U1('W'), U1('X'), U1('Y'), U1('Z'),
  U1('a'), U1('b'), U1('c'), U1('d'), U1('e'), U1('f'), U1('g'), U1('h'), U1('i'), U1('j'),
  U1('k'), U1('l'), U1('m'), U1('n'), U1('o'), U1('p'), U1('q'), U1('r'), U1('s'), U1('t'),
  U1('u'), U1('v'), U1('w'), U1('x'), U1('y'), U1('z'),
};

/* RFC 9110 5.6.2 tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" /
 * "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
const unsigned char so_tchar[256] = {
  U1('!'), U1('#'), U1('$'), U1('%'), U1('&'), U1('\''), U1('*'), U1('+'), U1('-'), U1('.'),
  U1('^'), U1('_'), U1('`'), U1('|'), U1('~'),
  U1('0'), U1('1'), U1('2'), U1('3'), U1('4'), U1('5'), U1('6'), U1('7'), U1('8'), U1('9'),
  U1('A'), U1('B'), U1('C'), U1('D'), U1('E'), U1('F'), U1('G'), U1('H'), U1('I'), U1('J'),
  U1('K'), U1('L'), U1('M'), U1('N'), U1('O'), U1('P'), U1('Q'), U1('R'), U1('S'), U1('T'),
  U1('U'), U1('V'), U1('W'), U1('X'), U1('Y'), U1('Z'),
  U1('a'), U1('b'), U1('c'), U1('d'), U1('e'), U1('f'), U1('g'), U1('h'), U1('i'), U1('j'),
  U1('k'), U1('l'), U1('m'), U1('n'), U1('o'), U1('p'), U1('q'), U1('r'), U1('s'), U1('t'),
  U1('u'), U1('v'), U1('w'), U1('x'), U1('y'), U1('z'),
};
#undef U1

static const char hexdig[] = "0123456789ABCDEF";

/* Percent-encode every byte outside the unreserved set, upper-case hex.
 * Runs of unreserved bytes (the common case) are copied in one go. */
void so_pct_encode(so_buf *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end;
  char *o;
  if (n == 0 || so_buf_reserve(b, n * 3) != 0) return;   /* worst case: all escaped */
  end = p + n;
  o = b->p + b->len;
  while (p < end) {
    const unsigned char *run = p;
    while (p < end && so_unreserved[*p]) p++;
    if (p > run) {
      memcpy(o, run, (size_t)(p - run));
      o += p - run;
    }
    while (p < end && !so_unreserved[*p]) {
      unsigned char c = *p++;
      o[0] = '%';
      o[1] = hexdig[c >> 4];
      o[2] = hexdig[c & 15];
      o += 3;
    }
  }
  b->len = (size_t)(o - b->p);
}

/* Encode a string that is already encoded: only '%' is outside the set,
 * so copy the runs between them (memchr is vectorised). */
void so_pct_reencode(so_buf *b, const char *s, size_t n) {
  const char *end, *pc;
  char *o;
  if (n == 0 || so_buf_reserve(b, n * 3) != 0) return;
  end = s + n;
  o = b->p + b->len;
  while ((pc = memchr(s, '%', (size_t)(end - s))) != NULL) {
    memcpy(o, s, (size_t)(pc - s));
    o += pc - s;
    memcpy(o, "%25", 3);
    o += 3;
    s = pc + 1;
  }
  memcpy(o, s, (size_t)(end - s));
  o += end - s;
  b->len = (size_t)(o - b->p);
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decode %XX escapes (and '+' when plus_space); malformed escapes stay as is. */
size_t so_pct_decode(char *out, const char *s, size_t n, int plus_space) {
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%' && i + 2 < n) {
      int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
        continue;
      }
    } else if (c == '+' && plus_space) {
      c = ' ';
    }
    out[o++] = (char)c;
  }
  return o;
}

static const char b64std[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; out needs SO_B64_LEN(n) bytes. */
size_t so_b64_encode(char *out, const unsigned char *s, size_t n) {
  size_t i, o = 0;
  for (i = 0; i + 2 < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
    out[o++] = b64std[v >> 18];
    out[o++] = b64std[(v >> 12) & 63];
    out[o++] = b64std[(v >> 6) & 63];
    out[o++] = b64std[v & 63];
  }
  if (i < n) {
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
    out[o++] = b64std[v >> 18];
    out[o++] = b64std[(v >> 12) & 63];
    out[o++] = i + 1 < n ? b64std[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  return o;
}

static int b64val(unsigned char c, int url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

/* Strict decoder: padding optional, nothing else tolerated. */
size_t so_b64_decode(unsigned char *out, const char *s, size_t n, int url) {
  size_t i, o = 0;
  unsigned acc = 0;
  int bits = 0;
  while (n > 0 && s[n - 1] == '=') n--;
  if (n % 4 == 1) return (size_t)-1;
  for (i = 0; i < n; i++) {
    int v = b64val((unsigned char)s[i], url);
    if (v < 0) return (size_t)-1;
    acc = acc << 6 | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return (size_t)-1;     /* non-canonical trailing bits */
  return o;
}

void so_hex_encode(char *out, const unsigned char *s, size_t n) {
  static const char lx[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = lx[s[i] >> 4];
    out[2 * i + 1] = lx[s[i] & 15];
  }
}
