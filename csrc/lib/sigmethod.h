/* sigmethod.h -- the signature methods of RFC 5849 3.4.2-3.4.4 (and
 * HMAC-SHA256/512), with a signer object that keeps keyed MAC state and the
 * parsed RSA key from one signature to the next. */
#ifndef SO_SIGMETHOD_H
#define SO_SIGMETHOD_H

#include <stddef.h>

#include "buf.h"

enum { SO_HMAC_SHA1, SO_HMAC_SHA256, SO_HMAC_SHA512, SO_PLAINTEXT, SO_RSA_SHA1 };
/* The methods' names as oauth_signature_method writes them, by the enum
 * above, NULL-terminated. */
extern const char *const so_method_names[];
/* The method named s[0, n) (exactly, case included), or -1. */
int so_method_find(const char *s, size_t n);

/* Outcomes of so_signer_sign. */
enum {
  SO_SIG_OK = 0,
  SO_SIG_BADKEY,        /* the PEM is no usable RSA private key: the caller's mistake */
  SO_SIG_FAILED         /* OpenSSL (or memory) failed */
};

typedef struct so_signer so_signer;   /* caches keyed MAC state and RSA keys */
/* A new signer, or NULL when out of memory. */
so_signer *so_signer_new(void);
/* Free s, wiping the key copies it cached; NULL is fine. */
void so_signer_free(so_signer *s);
/* Sign the base string msg; the signature (base64, or the key itself for
 * PLAINTEXT) is appended to out (whose oom flag the caller checks). key is
 * enc(consumer secret) "&" enc(token secret); pem the RSA-SHA1 private key.
 * Returns an outcome; on failure errbuf holds a message (OpenSSL's error
 * queue drained into it) that never quotes the key. */
int so_signer_sign(so_signer *s, int method, const char *key, size_t keylen,
                   const char *pem, size_t pemlen, const char *msg, size_t msglen,
                   so_buf *out, char *errbuf, size_t errlen);

#endif
