/* lsign.h -- the signing engine of the bindings (lsign.c) and the two
 * openers that use it: so_open_sign (lsign.c: sign{}, base_string,
 * percent-encoding, parse_form, nonce) and so_open_signer (lsigner.c: the
 * Signer object). lsigner.c calls the engine; lsign.c never calls lsigner.c. */
#ifndef SO_LSIGN_H
#define SO_LSIGN_H

#include <lua.h>

#include "auxiliar.h"
#include "buf.h"
#include "nonce.h"
#include "oauth.h"
#include "sigmethod.h"

/* Scratch buffers, the keyed MAC cache of sign{} and the nonce pool: one
 * per opener, shared as upvalue 1 by its functions. Reused from call to
 * call, so a raise leaks nothing; key holds a secret only while a signature
 * is being made (wiped before anything is returned or raised). */
typedef struct sign_state {
  so_params ps;
  so_buf base, out, key, tmp;
  so_pair *extra;               /* the oauth_* parameters given in params */
  size_t nextra, extracap;
  so_signer *signer;            /* sign{}'s keyed MAC cache, or NULL */
  so_rand rnd;
} sign_state;

/* A timestamp option: a digit string, or an integer formatted into buf. */
typedef struct sign_ts {
  const char *s;
  size_t n;
  char buf[24];
} sign_ts;

/* The options of sign{} and signer{} as read (sign_opts.h), by name. */
typedef struct sign_opts {
#define SO_SIGN_OPT(name, type, ctype, reader, scope) ctype name;
#include "sign_opts.h"
} sign_opts;

/* One protocol parameter we set: its name, the option that sets it, its
 * value, the value encoded when known, and where it landed in the
 * parameter list. */
typedef struct oparam {
  const char *name, *opt, *v, *ev;
  size_t nl, vl, evl;
  so_pair at;
} oparam;

#define SIGN_NOP 8                 /* protocol parameters set by us, at most */

/* Everything one signature needs, as pointers into Lua strings or C memory
 * that outlive the call. */
typedef struct sign_req {
  so_str method, url, ckey, token, pem, callback, verifier, realm, nonce, ts;
  so_str ckey_enc, token_enc;   /* pre-encoded (a Signer), or s NULL */
  so_str csecret, tsecret;      /* sign{}: the key is made of these... */
  const char *key;              /* ...a Signer: enc(cs)&enc(ts), made once */
  size_t keylen;
  int params_idx;               /* stack index of the params table, or 0 */
  int sigmethod, version;       /* version: 1 sends oauth_version=1.0 */
  int nonce_safe;               /* nonce made here: hex, needs no encoding */
  char tsbuf[24], noncebuf[33];
  oparam op[SIGN_NOP];
  int nop;
  size_t siglen;                /* out: the signature is st->out[0, siglen) */
} sign_req;

/* Push a new state (a userdata with __gc) for an opener to share;
 * mac_cache: with a signer (sign{}'s keyed MAC cache) in st->signer. */
sign_state *so_sign_newstate(lua_State *L, int mac_cache);
/* Read the options table at idx; signer: refuse the REQUEST options.
 * Misuse (unknown keys, wrong types, bad values) raises. */
void so_sign_read(lua_State *L, int idx, sign_opts *o, int signer);
/* Fill in the nonce and timestamp when the caller gave none: 0, or the
 * number of failure values pushed (the CSPRNG failed). */
int so_sign_fresh(lua_State *L, sign_state *st, sign_req *r);
/* The engine: the base string into st->base, then in st->out the signature
 * followed by the Authorization header; st->tmp holds enc(signature). 0, or
 * the number of failure values pushed (nil, message, "crypto"); misuse
 * raises (with every secret made for the call wiped first). */
int so_sign_run(lua_State *L, sign_state *st, so_signer *sg, sign_req *r);
/* Push the result table of a signature made by so_sign_run. */
void so_sign_push_result(lua_State *L, sign_state *st, const sign_req *r);
/* Make enc(cs) "&" enc(ts) into st->key: 0, or -1 (nothing left in it)
 * when out of memory. */
int so_sign_key(sign_state *st, const so_str *cs, const so_str *ts);
/* Wipe st->key. */
void so_sign_wipe_key(sign_state *st);

/* The openers (module table on top). */
int so_open_sign(lua_State *L);
int so_open_signer(lua_State *L);

#endif
