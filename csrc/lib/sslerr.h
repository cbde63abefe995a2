/* sslerr.h -- OpenSSL's error queue as one message. */
#ifndef SO_SSLERR_H
#define SO_SSLERR_H

#include <stddef.h>

/* Drain OpenSSL's (thread-local) error queue into buf (len bytes, always
 * NUL-terminated): "what: <first error>", or "what failed" when the queue
 * was empty. Returns buf. The first error is the root cause; the rest is
 * discarded so that it cannot be blamed on a later call. */
const char *so_ssl_error(char *buf, size_t len, const char *what);

#endif
