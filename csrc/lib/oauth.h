/* oauth.h -- RFC 5849 section 3.4.1: request parameters (collected,
 * encoded, sorted and normalized), the method of the base string, the
 * application/x-www-form-urlencoded parser, and the Authorization header of
 * section 3.5.1. */
#ifndef SO_OAUTH_H
#define SO_OAUTH_H

#include <stddef.h>
#include <string.h>

#include "buf.h"

/* A list of encoded parameters: names and values live in arena at offsets. */
typedef struct so_pair {
  size_t n, nl, v, vl;          /* offsets/lengths into the arena */
  const char *np, *vp;          /* set by so_params_sort */
} so_pair;

typedef struct so_params {
  so_buf arena;                 /* encoded names and values */
  so_pair *items;
  size_t count, cap;
  so_buf scratch;               /* decoding space */
  int oom;
} so_params;

void so_params_init(so_params *ps);
void so_params_free(so_params *ps);
/* Forget the contents, keep the memory for the next request. */
void so_params_reset(so_params *ps);
/* add a decoded name/value: both get percent-encoded */
void so_params_add(so_params *ps, const char *n, size_t nl, const char *v, size_t vl);
/* add a name/value pair that is already percent-encoded */
void so_params_add_enc(so_params *ps, const char *n, size_t nl, const char *v, size_t vl);
/* add every name=value of an application/x-www-form-urlencoded string */
void so_params_add_form(so_params *ps, const char *s, size_t n);
/* sort by encoded name, then encoded value (RFC 5849 3.4.1.3.2); after
 * this the arena must not grow while np/vp are used */
void so_params_sort(so_params *ps);
/* append the normalized parameter string, itself percent-encoded; skip: a
 * name left out (oauth_signature), or NULL */
void so_params_normalized_enc(so_buf *b, const so_params *ps, const char *skip);

/* Is the (decoded or encoded: the prefix encodes to itself) name a protocol
 * parameter name, "oauth_..." (RFC 5849 3.5: it goes where the protocol
 * parameters go)? */
static inline int so_oauth_name(const char *n, size_t nl) {
  return nl >= 6 && memcmp(n, "oauth_", 6) == 0;
}

/* The longest method accepted. */
#define SO_METHOD_MAX 32
/* Append the method as RFC 5849 3.4.1.1 has it in the base string:
 * upper-cased, then percent-encoded (a method is an RFC 9110 token: letters,
 * digits and !#$%&'*+-.^_`|~, as M-SEARCH or VERSION-CONTROL). 0, or -1
 * (nothing appended) when m is not a token of 1 to SO_METHOD_MAX bytes. */
int so_method_put(so_buf *b, const char *m, size_t n);

/* One Authorization header parameter; the value is already percent-encoded. */
typedef struct so_hdr_param {
  const char *name, *value;
  size_t name_len, value_len;
} so_hdr_param;

/* Append `OAuth [realm="..."], name="value", ...` (RFC 5849 3.5.1); realm
 * (may be NULL) is written as an RFC 2617 quoted-string. Returns 0, or -1
 * when realm holds a control character (nothing is appended then). */
int so_auth_header(so_buf *out, const char *realm, size_t realm_len,
                   const so_hdr_param *ps, size_t n);
/* Does s hold a control character (what a realm must not)? */
int so_has_ctl(const char *s, size_t n);

/* Parse a form string calling fn for each decoded name/value pair ('+' is a
 * space; empty components are skipped; the name ends at the first '=').
 * scratch is decoding space. Returns the number of pairs. */
typedef void (*so_form_fn)(void *ud, const char *n, size_t nl, const char *v, size_t vl);
size_t so_form_each(const char *s, size_t n, so_buf *scratch, so_form_fn fn, void *ud);

#endif
