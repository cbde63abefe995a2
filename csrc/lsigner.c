/* lsigner.c -- the Signer object: one set of credentials kept in C memory
 * (wiped on close) with a MAC context keyed once, for sessions that sign
 * every request with the same credentials. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lsign.h"

#define SIGNER_MT "smugoauth.Signer"

/* Credentials held in C memory (wiped on close) and a MAC context keyed
 * once with them: what an API session signs every request with. */
typedef struct signer_obj {
  so_signer *sg;
  char *ckey, *token, *key, *pem, *realm, *version, *ckey_enc, *token_enc;
  size_t ckey_len, token_len, key_len, pem_len, realm_len, version_len, ckey_enc_len,
         token_enc_len;
  int sigmethod, version_off;
} signer_obj;

static void wipe(char **p, size_t *n) {
  if (*p != NULL) {
    OPENSSL_cleanse(*p, *n);
    free(*p);
  }
  *p = NULL;
  *n = 0;
}

/* close(), __gc and __close: free and mark closed; idempotent. */
static int signer_close(lua_State *L) {
  signer_obj *o = luaL_checkudata(L, 1, SIGNER_MT);
  so_signer_free(o->sg);
  o->sg = NULL;
  wipe(&o->ckey, &o->ckey_len);
  wipe(&o->token, &o->token_len);
  wipe(&o->key, &o->key_len);
  wipe(&o->pem, &o->pem_len);
  wipe(&o->realm, &o->realm_len);
  wipe(&o->version, &o->version_len);
  wipe(&o->ckey_enc, &o->ckey_enc_len);
  wipe(&o->token_enc, &o->token_enc_len);
  return 0;
}

static signer_obj *check_signer(lua_State *L) {
  signer_obj *o = luaL_checkudata(L, 1, SIGNER_MT);
  if (o->sg == NULL) luaL_error(L, "attempt to use a closed smugoauth.Signer");
  return o;
}

static char *dup_field(lua_State *L, const sstr *f, size_t *len) {
  char *p;
  *len = 0;
  if (!f->set) return NULL;
  if ((p = malloc(f->n + 1)) == NULL) luaL_error(L, "not enough memory");
  if (f->n) memcpy(p, f->s, f->n);
  p[f->n] = '\0';
  *len = f->n;
  return p;
}

/* signer{consumer_key=, consumer_secret=, token=, token_secret=,
 *        signature_method=, rsa_key=, realm=, version=} -> Signer */
int so_sign_l_signer(lua_State *L) {
  sign_state *st = so_sign_state(L);
  sstr f[F_COUNT];
  char tsbuf[24];
  int version_off, i;
  signer_obj *o;
  luaL_checktype(L, 1, LUA_TTABLE);
  so_sign_read_fields(L, f, tsbuf, &version_off);
  for (i = 0; i < F_COUNT; i++) {
    if (f[i].set && (i == F_METHOD || i == F_URL || i == F_PARAMS || i == F_CALLBACK ||
                     i == F_VERIFIER || i == F_NONCE || i == F_TIMESTAMP))
      luaL_error(L, "option '%s' belongs to a request, not to a signer", so_sign_field_names[i]);
  }
  if (!f[F_CKEY].set) luaL_error(L, "missing option 'consumer_key'");
  /* the userdata first, so nothing allocated below can leak on a raise */
  o = lua_newuserdatauv(L, sizeof *o, 0);
  memset(o, 0, sizeof *o);
  luaL_setmetatable(L, SIGNER_MT);
  o->sigmethod = so_sign_method(L, &f[F_SIGMETHOD]);
  o->version_off = version_off;
  if (o->sigmethod == SO_RSA_SHA1 && !f[F_RSAKEY].set)
    luaL_error(L, "signature_method RSA-SHA1 needs option 'rsa_key' (a PEM private key)");
  if ((o->sg = so_signer_new()) == NULL) luaL_error(L, "not enough memory");
  o->ckey = dup_field(L, &f[F_CKEY], &o->ckey_len);
  o->token = dup_field(L, &f[F_TOKEN], &o->token_len);
  o->pem = dup_field(L, &f[F_RSAKEY], &o->pem_len);
  o->realm = dup_field(L, &f[F_REALM], &o->realm_len);
  o->version = dup_field(L, &f[F_VERSION], &o->version_len);
  so_sign_reset(st);
  if (f[F_CSECRET].set) so_pct_encode(&st->key, f[F_CSECRET].s, f[F_CSECRET].n);
  so_buf_addc(&st->key, '&');
  if (f[F_TSECRET].set) so_pct_encode(&st->key, f[F_TSECRET].s, f[F_TSECRET].n);
  so_sign_check_oom(L, st);
  {
    sstr k;
    k.s = st->key.p; k.n = st->key.len; k.set = 1;
    o->key = dup_field(L, &k, &o->key_len);
    so_sign_reset(st);
    /* the encoded forms of the constant oauth_* values, made once */
    so_pct_encode(&st->tmp, o->ckey, o->ckey_len);
    k.s = st->tmp.p; k.n = st->tmp.len;
    o->ckey_enc = dup_field(L, &k, &o->ckey_enc_len);
    st->tmp.len = 0;
    if (o->token != NULL) {
      so_pct_encode(&st->tmp, o->token, o->token_len);
      k.s = st->tmp.p; k.n = st->tmp.len;
      o->token_enc = dup_field(L, &k, &o->token_enc_len);
    }
    so_sign_check_oom(L, st);
  }
  so_sign_reset(st);
  return 1;
}

/* Fill a request from the signer and the call's (method, url [, params]). */
static void signer_req(lua_State *L, signer_obj *o, sign_req *r) {
  memset(r, 0, sizeof *r);
  r->method = luaL_checklstring(L, 2, &r->method_len);
  r->url = luaL_checklstring(L, 3, &r->url_len);
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    r->params_idx = 4;
  }
  r->ckey = o->ckey; r->ckey_len = o->ckey_len;
  r->token = o->token; r->token_len = o->token_len;
  r->ckey_enc = o->ckey_enc; r->ckey_enc_len = o->ckey_enc_len;
  r->token_enc = o->token_enc; r->token_enc_len = o->token_enc_len;
  r->pem = o->pem; r->pem_len = o->pem_len;
  r->realm = o->realm; r->realm_len = o->realm_len;
  r->version = o->version; r->version_len = o->version_len;
  r->version_off = o->version_off;
  r->sigmethod = o->sigmethod;
}

/* signer:authorization(method, url [, params [, want_base]]) -> "OAuth ..."
 * header value [, base string when want_base is true] */
static int l_signer_authorization(lua_State *L) {
  sign_state *st = so_sign_state(L);
  signer_obj *o = check_signer(L);
  int want_base = lua_toboolean(L, 5);
  sign_req r;
  signer_req(L, o, &r);
  so_sign_fresh(L, st, &r);
  so_sign_run(L, st, o->sg, &r, o->key, o->key_len);
  lua_pushlstring(L, st->out.p + r.siglen, st->out.len - r.siglen);
  if (!want_base) return 1;
  lua_pushlstring(L, st->base.p, st->base.len);
  return 2;
}

/* signer:sign(method, url [, params]) -> the same table as sign() */
static int l_signer_sign(lua_State *L) {
  sign_state *st = so_sign_state(L);
  signer_obj *o = check_signer(L);
  sign_req r;
  signer_req(L, o, &r);
  so_sign_fresh(L, st, &r);
  so_sign_run(L, st, o->sg, &r, o->key, o->key_len);
  so_sign_push_result(L, st, &r);
  return 1;
}

static int signer_tostring(lua_State *L) {
  signer_obj *o = luaL_checkudata(L, 1, SIGNER_MT);
  if (o->sg == NULL) lua_pushliteral(L, "smugoauth.Signer (closed)");
  else lua_pushfstring(L, "smugoauth.Signer (%s, %s)", so_method_names[o->sigmethod],
                       o->token_len ? "token" : "no token");
  return 1;
}

static const luaL_Reg signer_methods[] = {
  {"authorization", l_signer_authorization},
  {"sign", l_signer_sign},
  {"close", signer_close},
  {NULL, NULL}
};

static const luaL_Reg signer_meta[] = {
  {"__gc", signer_close},
  {"__close", signer_close},
  {"__tostring", signer_tostring},
  {"__index", NULL},
  {NULL, NULL}
};

/* Stack: state. Create the Signer metatable with methods sharing the state. */
void so_sign_signer_meta(lua_State *L) {
  luaL_newmetatable(L, SIGNER_MT);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, signer_meta, 1);
  luaL_newlibtable(L, signer_methods);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, signer_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

