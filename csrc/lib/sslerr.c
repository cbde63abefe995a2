/* sslerr.c -- OpenSSL's error queue as one message (sslerr.h). */
#include <stdio.h>

#include <openssl/err.h>

#include "sslerr.h"

const char *so_ssl_error(char *buf, size_t len, const char *what) {
  unsigned long e = ERR_get_error(), first = e;
  while (e != 0) e = ERR_get_error();
  if (first != 0) {
    char msg[256];
    ERR_error_string_n(first, msg, sizeof msg);
    snprintf(buf, len, "%s: %s", what, msg);
  } else {
    snprintf(buf, len, "%s failed", what);
  }
  return buf;
}
