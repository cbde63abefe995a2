/* hmac_floor.c -- the floor for signing: HMAC-SHA1 + base64 of one base
 * string, the keyed MAC state set once and reset per message, nothing else.
 * usage: hmac_floor KEY BASE_STRING SECONDS -> prints "<n> <seconds>" */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  EVP_MAC *mac;
  EVP_MAC_CTX *ctx;
  OSSL_PARAM params[2];
  char digest[] = "SHA1", out[64];
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t mdlen, msglen;
  double t0, t1, limit;
  long n = 0;
  volatile char sink = 0;
  if (argc != 4) { fprintf(stderr, "usage: %s KEY BASE_STRING SECONDS\n", argv[0]); return 2; }
  msglen = strlen(argv[2]);
  limit = atof(argv[3]);
  mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  ctx = EVP_MAC_CTX_new(mac);
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
  params[1] = OSSL_PARAM_construct_end();
  if (!EVP_MAC_init(ctx, (const unsigned char *)argv[1], strlen(argv[1]), params)) return 1;
  t0 = now();
  do {
    int i;
    for (i = 0; i < 10000; i++, n++) {
      size_t j, o = 0;
      EVP_MAC_init(ctx, NULL, 0, NULL);
      EVP_MAC_update(ctx, (const unsigned char *)argv[2], msglen);
      EVP_MAC_final(ctx, md, &mdlen, sizeof md);
      for (j = 0; j + 2 < mdlen; j += 3) {
        unsigned v = (unsigned)md[j] << 16 | (unsigned)md[j + 1] << 8 | md[j + 2];
        out[o++] = b64[v >> 18]; out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63]; out[o++] = b64[v & 63];
      }
      if (j < mdlen) {   /* SHA-1: 20 bytes, two left over */
        unsigned v = (unsigned)md[j] << 16 | (unsigned)md[j + 1] << 8;
        out[o++] = b64[v >> 18]; out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63]; out[o++] = '=';
      }
      sink ^= out[0];
    }
    t1 = now();
  } while (t1 - t0 < limit);
  printf("%ld %.6f\n", n, t1 - t0);
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  return sink == 127;
}
