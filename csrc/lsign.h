/* lsign.h -- internals shared by lsign.c (sign(), base_string(), encoding)
 * and lsigner.c (the Signer object): the scratch state and the engine. */
#ifndef SMUGOAUTH_LSIGN_H
#define SMUGOAUTH_LSIGN_H

#include "lcore.h"

/* The scratch buffers, keyed MAC cache and nonce pool shared (as upvalue 1)
 * by every signing function. */
typedef struct sign_state {
  so_params ps;
  so_buf base, out, key, tmp;
  so_signer *signer;
  so_rand rnd;
} sign_state;

/* The options sign() and signer() read. */
enum {
  F_METHOD, F_URL, F_PARAMS, F_CKEY, F_CSECRET, F_TOKEN, F_TSECRET, F_SIGMETHOD,
  F_RSAKEY, F_CALLBACK, F_VERIFIER, F_REALM, F_NONCE, F_TIMESTAMP, F_VERSION, F_COUNT
};

extern const char *const so_sign_field_names[F_COUNT];

/* An option's string value (pointers into Lua strings anchored by the table). */
typedef struct sstr { const char *s; size_t n; int set; } sstr;

/* One oauth_* parameter: its value, and the value encoded when known. */
typedef struct oparam {
  const char *name, *v, *ev;
  size_t vl, evl;
  so_pair at;
} oparam;

/* Everything one signature needs, as pointers into Lua strings or C memory
 * that outlive the call. */
typedef struct sign_req {
  const char *method, *url, *ckey, *token, *pem, *callback, *verifier, *realm, *version;
  size_t method_len, url_len, ckey_len, token_len, pem_len, callback_len, verifier_len,
         realm_len, version_len;
  const char *ckey_enc, *token_enc;       /* pre-encoded, or NULL */
  size_t ckey_enc_len, token_enc_len;
  int nonce_safe;                         /* nonce made here: hex, needs no encoding */
  int params_idx;               /* stack index of the params table, or 0 */
  int sigmethod, version_off;
  const char *nonce, *ts;
  size_t nonce_len, ts_len;
  char tsbuf[24], noncebuf[33];
  oparam op[9];
  int nop;
  size_t siglen;                /* out: signature is st->out[0, siglen) */
} sign_req;

sign_state *so_sign_state(lua_State *L);
void so_sign_scratch_reset(sign_state *st);
void so_sign_reset(sign_state *st);
/* Raise "not enough memory" (after a reset) when a buffer failed to grow. */
void so_sign_check_oom(lua_State *L, sign_state *st);
/* Read the options table at 1 into f[]; unknown keys and wrong types raise. */
void so_sign_read_fields(lua_State *L, sstr *f, char *tsbuf, int *version_off);
int so_sign_method(lua_State *L, const sstr *f);
/* Fill in the nonce and timestamp when the caller gave none. */
void so_sign_fresh(lua_State *L, sign_state *st, sign_req *r);
/* Base string into st->base; signature then Authorization header in st->out. */
void so_sign_run(lua_State *L, sign_state *st, so_signer *sg, sign_req *r,
                 const char *key, size_t keylen);
void so_sign_push_result(lua_State *L, sign_state *st, const sign_req *r);

/* lsigner.c */
int so_sign_l_signer(lua_State *L);
/* Stack: the state. Creates the "smugoauth.Signer" metatable. */
void so_sign_signer_meta(lua_State *L);

#endif
