/* sigmethod.c -- HMAC-SHA1/256/512, PLAINTEXT and RSA-SHA1 (RFC 5849 3.4.2-3.4.4).
 *
 * A signer keeps, for each HMAC method, the last key and a MAC context keyed
 * with it: signing again with the same credentials only resets the context
 * (EVP_MAC_init with a NULL key), which is several times cheaper than a
 * fresh HMAC setup. Key copies are wiped when replaced or freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "encode.h"
#include "sigmethod.h"
#include "sslerr.h"

const char *const so_method_names[] = {
  "HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512", "PLAINTEXT", "RSA-SHA1", NULL
};

static const char *const digest_names[] = { "SHA1", "SHA256", "SHA512" };

typedef struct mac_slot {
  EVP_MAC_CTX *ctx;
  unsigned char *key;
  size_t keylen;
} mac_slot;

struct so_signer {
  EVP_MAC *mac;
  mac_slot slots[3];
  EVP_PKEY *pkey;               /* last RSA key and the PEM it came from */
  char *pem;
  size_t pemlen;
};

int so_method_find(const char *s, size_t n) {
  int i;
  for (i = 0; so_method_names[i] != NULL; i++)
    if (strlen(so_method_names[i]) == n && memcmp(so_method_names[i], s, n) == 0) return i;
  return -1;
}

so_signer *so_signer_new(void) {
  so_signer *s = calloc(1, sizeof *s);
  return s;
}

static void wipe_free(void *p, size_t n) {
  if (p != NULL) {
    OPENSSL_cleanse(p, n);
    free(p);
  }
}

void so_signer_free(so_signer *s) {
  int i;
  if (s == NULL) return;
  for (i = 0; i < 3; i++) {
    EVP_MAC_CTX_free(s->slots[i].ctx);
    wipe_free(s->slots[i].key, s->slots[i].keylen);
  }
  EVP_MAC_free(s->mac);
  EVP_PKEY_free(s->pkey);
  wipe_free(s->pem, s->pemlen);
  free(s);
}

/* Return a context ready for update: reset if the key is the cached one,
 * else keyed anew. NULL on failure (message in errbuf). */
static EVP_MAC_CTX *keyed_ctx(so_signer *s, int method, const char *key, size_t keylen,
                              char *errbuf, size_t errlen) {
  mac_slot *slot = &s->slots[method];
  OSSL_PARAM params[2];
  char digest[8];
  if (slot->ctx != NULL && slot->keylen == keylen && memcmp(slot->key, key, keylen) == 0) {
    if (EVP_MAC_init(slot->ctx, NULL, 0, NULL)) return slot->ctx;
    so_ssl_error(errbuf, errlen, "HMAC reset");
    return NULL;
  }
  if (s->mac == NULL && (s->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
    so_ssl_error(errbuf, errlen, "EVP_MAC_fetch(HMAC)");
    return NULL;
  }
  if (slot->ctx == NULL && (slot->ctx = EVP_MAC_CTX_new(s->mac)) == NULL) {
    so_ssl_error(errbuf, errlen, "EVP_MAC_CTX_new");
    return NULL;
  }
  wipe_free(slot->key, slot->keylen);
  slot->key = NULL;
  slot->keylen = 0;
  strcpy(digest, digest_names[method]);
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
  params[1] = OSSL_PARAM_construct_end();
  if (!EVP_MAC_init(slot->ctx, (const unsigned char *)key, keylen, params)) {
    so_ssl_error(errbuf, errlen, "HMAC key setup");
    return NULL;
  }
  if ((slot->key = malloc(keylen)) != NULL) {   /* no cache is not an error */
    memcpy(slot->key, key, keylen);
    slot->keylen = keylen;
  }
  return slot->ctx;
}

static void add_b64(so_buf *out, const unsigned char *md, size_t mdlen) {
  if (so_buf_reserve(out, SO_B64_LEN(mdlen)) != 0) return;
  out->len += so_b64_encode(out->p + out->len, md, mdlen);
}

static int sign_hmac(so_signer *s, int method, const char *key, size_t keylen,
                     const char *msg, size_t msglen, so_buf *out, char *errbuf, size_t errlen) {
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t mdlen = 0;
  EVP_MAC_CTX *ctx = keyed_ctx(s, method, key, keylen, errbuf, errlen);
  if (ctx == NULL) return SO_SIG_FAILED;
  if (!EVP_MAC_update(ctx, (const unsigned char *)msg, msglen) ||
      !EVP_MAC_final(ctx, md, &mdlen, sizeof md)) {
    so_ssl_error(errbuf, errlen, "HMAC");
    return SO_SIG_FAILED;
  }
  add_b64(out, md, mdlen);
  OPENSSL_cleanse(md, sizeof md);
  return SO_SIG_OK;
}

/* Parse (or reuse) the PEM private key; NULL with *st and errbuf set. */
static EVP_PKEY *rsa_key(so_signer *s, const char *pem, size_t pemlen, int *st,
                         char *errbuf, size_t errlen) {
  BIO *bio;
  EVP_PKEY *pk;
  *st = SO_SIG_OK;
  if (s->pkey != NULL && s->pemlen == pemlen && memcmp(s->pem, pem, pemlen) == 0)
    return s->pkey;
  *st = SO_SIG_BADKEY;
  if (pemlen > 1 << 20) {
    snprintf(errbuf, errlen, "rsa_key is too large");
    return NULL;
  }
  if ((bio = BIO_new_mem_buf(pem, (int)pemlen)) == NULL) {
    *st = SO_SIG_FAILED;
    so_ssl_error(errbuf, errlen, "BIO_new_mem_buf");
    return NULL;
  }
  pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (pk == NULL) {
    so_ssl_error(errbuf, errlen, "rsa_key is not a PEM private key");
    return NULL;
  }
  if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
    EVP_PKEY_free(pk);
    ERR_clear_error();
    snprintf(errbuf, errlen, "rsa_key is not an RSA key");
    return NULL;
  }
  *st = SO_SIG_FAILED;
  EVP_PKEY_free(s->pkey);
  wipe_free(s->pem, s->pemlen);
  s->pkey = pk;
  s->pemlen = 0;
  if ((s->pem = malloc(pemlen)) != NULL) {
    memcpy(s->pem, pem, pemlen);
    s->pemlen = pemlen;
  } else {
    s->pkey = NULL;     /* cannot compare next time: do not cache */
    EVP_PKEY_free(pk);
    snprintf(errbuf, errlen, "not enough memory");
    return NULL;
  }
  *st = SO_SIG_OK;
  return pk;
}

static int sign_rsa(so_signer *s, const char *pem, size_t pemlen, const char *msg,
                    size_t msglen, so_buf *out, char *errbuf, size_t errlen) {
  int st;
  EVP_PKEY *pk = rsa_key(s, pem, pemlen, &st, errbuf, errlen);
  EVP_MD_CTX *md;
  unsigned char *sig;
  size_t siglen = 0;
  if (pk == NULL) return st;
  if ((md = EVP_MD_CTX_new()) == NULL) {
    so_ssl_error(errbuf, errlen, "EVP_MD_CTX_new");
    return SO_SIG_FAILED;
  }
  if (!EVP_DigestSignInit(md, NULL, EVP_sha1(), NULL, pk) ||
      !EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)msg, msglen)) {
    so_ssl_error(errbuf, errlen, "RSA-SHA1 signing");
    EVP_MD_CTX_free(md);
    return SO_SIG_FAILED;
  }
  st = SO_SIG_FAILED;
  if ((sig = malloc(siglen)) == NULL) {
    snprintf(errbuf, errlen, "not enough memory");
  } else if (!EVP_DigestSign(md, sig, &siglen, (const unsigned char *)msg, msglen)) {
    so_ssl_error(errbuf, errlen, "RSA-SHA1 signing");
  } else {
    add_b64(out, sig, siglen);
    st = SO_SIG_OK;
  }
  free(sig);
  EVP_MD_CTX_free(md);
  return st;
}

int so_signer_sign(so_signer *s, int method, const char *key, size_t keylen,
                   const char *pem, size_t pemlen, const char *msg, size_t msglen,
                   so_buf *out, char *errbuf, size_t errlen) {
  switch (method) {
  case SO_HMAC_SHA1: case SO_HMAC_SHA256: case SO_HMAC_SHA512:
    return sign_hmac(s, method, key, keylen, msg, msglen, out, errbuf, errlen);
  case SO_PLAINTEXT:
    so_buf_add(out, key, keylen);
    return SO_SIG_OK;
  case SO_RSA_SHA1:
    return sign_rsa(s, pem, pemlen, msg, msglen, out, errbuf, errlen);
  default:
    snprintf(errbuf, errlen, "unknown signature method");
    return SO_SIG_FAILED;
  }
}
