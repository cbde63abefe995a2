/* encode.h -- RFC 5849 section 3.6 percent-encoding, base64 and hex. */
#ifndef SO_ENCODE_H
#define SO_ENCODE_H

#include <stddef.h>

#include "buf.h"

/* 1 for the unreserved set A-Za-z0-9-._~ */
extern const unsigned char so_unreserved[256];
/* 1 for RFC 9110 tchar, the bytes of a token (HTTP methods, header names) */
extern const unsigned char so_tchar[256];

/* Append s percent-encoded (every byte outside the unreserved set, upper-case hex). */
void so_pct_encode(so_buf *b, const char *s, size_t n);
/* Percent-encode an already encoded string (only '%' can need it). */
void so_pct_reencode(so_buf *b, const char *s, size_t n);
/* Decode into out (capacity >= n); invalid escapes are kept as they are.
 * plus_space: '+' becomes ' '. Returns the decoded length. */
size_t so_pct_decode(char *out, const char *s, size_t n, int plus_space);

#define SO_B64_LEN(n) ((((n) + 2) / 3) * 4)
/* Standard base64 with padding into out (SO_B64_LEN(n) bytes); returns the length. */
size_t so_b64_encode(char *out, const unsigned char *s, size_t n);
/* Returns decoded length, or (size_t)-1 on invalid input. url: base64url. */
size_t so_b64_decode(unsigned char *out, const char *s, size_t n, int url);
/* Lower-case hex of n bytes into out (2 n characters, not terminated). */
void so_hex_encode(char *out, const unsigned char *s, size_t n);

#endif
