/* lsigner.c -- the Signer object: one set of credentials kept in C memory
 * (wiped on close) with a MAC context keyed once, for sessions that sign
 * every request with the same credentials. It signs through the engine of
 * lsign.c (lsign.h); its functions share their own engine state as
 * upvalue 1. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "encode.h"
#include "lsign.h"

#define SIGNER_MT "smugoauth.Signer"

/* A malloc'd, NUL-terminated copy (p NULL: none). */
typedef struct owned {
  char *p;
  size_t n;
} owned;

typedef struct signer_obj {
  so_signer *sg;                /* NULL once closed */
  owned ckey, token, pem, realm, ckey_enc, token_enc;
  owned key;                    /* enc(consumer_secret) & enc(token_secret) */
  int sigmethod, version;
} signer_obj;

/* Wipe and free one copy. */
static void wipe(owned *v) {
  if (v->p != NULL) {
    OPENSSL_cleanse(v->p, v->n);
    free(v->p);
  }
  v->p = NULL;
  v->n = 0;
}

/* As a so_str for the engine. */
static so_str view(const owned *v) {
  so_str s;
  s.s = v->p;
  s.n = v->n;
  return s;
}

/* Free everything the object holds, secrets wiped; idempotent. */
static void signer_wipe(signer_obj *o) {
  so_signer_free(o->sg);
  o->sg = NULL;
  wipe(&o->key);
  wipe(&o->ckey);
  wipe(&o->token);
  wipe(&o->pem);
  wipe(&o->realm);
  wipe(&o->ckey_enc);
  wipe(&o->token_enc);
}

/* close(), __gc and __close: free and mark closed; idempotent. */
static int signer_close(lua_State *L) {
  signer_wipe(luaL_checkudata(L, 1, SIGNER_MT));
  return 0;
}

static signer_obj *check_signer(lua_State *L) {
  signer_obj *o = luaL_checkudata(L, 1, SIGNER_MT);
  if (o->sg == NULL) so_closed_error(L, SIGNER_MT);
  return o;
}

/* A NUL-terminated malloc'd copy of s[0, n) into *out (nothing when s is
 * NULL); when memory runs out, everything o holds is wiped before the raise. */
static void copy(lua_State *L, signer_obj *o, const char *s, size_t n, owned *out) {
  char *p;
  if (s == NULL) return;
  if ((p = malloc(n + 1)) == NULL) {
    signer_wipe(o);
    luaL_error(L, "not enough memory");
  }
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  out->p = p;
  out->n = n;
}

/* The encoded form of v, copied into *out (via the state's tmp buffer). */
static void copy_enc(lua_State *L, sign_state *st, signer_obj *o, const owned *v,
                     owned *out) {
  if (v->p == NULL) return;
  st->tmp.len = 0;
  so_pct_encode(&st->tmp, v->p, v->n);
  if (st->tmp.oom) {
    st->tmp.oom = 0;
    signer_wipe(o);
    luaL_error(L, "not enough memory");
  }
  copy(L, o, st->tmp.p ? st->tmp.p : "", st->tmp.len, out);
}

/* signer{consumer_key=, consumer_secret=, token=, token_secret=,
 *        signature_method=, rsa_key=, realm=, version=} -> Signer
 * (sign_opts.h: the options marked ANY; the others belong to a request). */
static int l_signer(lua_State *L) {
  sign_state *st = (sign_state *)lua_touserdata(L, lua_upvalueindex(1));
  sign_opts f;
  signer_obj *o;
  luaL_checktype(L, 1, LUA_TTABLE);
  so_sign_read(L, 1, &f, 1);
  if (f.consumer_key.s == NULL) luaL_error(L, "missing option 'consumer_key'");
  if (f.signature_method == SO_RSA_SHA1 && f.rsa_key.s == NULL)
    luaL_error(L, "signature_method RSA-SHA1 needs option 'rsa_key' (a PEM private key)");
  /* the userdata first, so nothing allocated below can leak on a raise */
  o = lua_newuserdatauv(L, sizeof *o, 0);
  memset(o, 0, sizeof *o);
  luaL_setmetatable(L, SIGNER_MT);
  o->sigmethod = f.signature_method;
  o->version = f.version;
  if ((o->sg = so_signer_new()) == NULL) luaL_error(L, "not enough memory");
  copy(L, o, f.consumer_key.s, f.consumer_key.n, &o->ckey);
  copy(L, o, f.token.s, f.token.n, &o->token);
  copy(L, o, f.realm.s, f.realm.n, &o->realm);
  copy_enc(L, st, o, &o->ckey, &o->ckey_enc);        /* made once, not per request */
  copy_enc(L, st, o, &o->token, &o->token_enc);
  copy(L, o, f.rsa_key.s, f.rsa_key.n, &o->pem);
  if (so_sign_key(st, &f.consumer_secret, &f.token_secret) != 0 ||
      (o->key.p = malloc(st->key.len)) == NULL) {
    so_sign_wipe_key(st);
    signer_wipe(o);
    luaL_error(L, "not enough memory");
  }
  memcpy(o->key.p, st->key.p, st->key.len);
  o->key.n = st->key.len;
  so_sign_wipe_key(st);
  return 1;
}

/* Fill a request from the signer and the call's (method, url [, params]). */
static void signer_req(lua_State *L, signer_obj *o, sign_req *r) {
  memset(r, 0, sizeof *r);
  r->method.s = luaL_checklstring(L, 2, &r->method.n);
  r->url.s = luaL_checklstring(L, 3, &r->url.n);
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    r->params_idx = 4;
  }
  r->ckey = view(&o->ckey);
  r->token = view(&o->token);
  r->ckey_enc = view(&o->ckey_enc);
  r->token_enc = view(&o->token_enc);
  r->pem = view(&o->pem);
  r->realm = view(&o->realm);
  r->key = o->key.p;
  r->keylen = o->key.n;
  r->version = o->version;
  r->sigmethod = o->sigmethod;
}

/* signer:authorization(method, url [, params [, want_base]]) -> "OAuth ..."
 * header value [, base string when want_base is true] | nil, message, code */
static int l_signer_authorization(lua_State *L) {
  sign_state *st = (sign_state *)lua_touserdata(L, lua_upvalueindex(1));
  signer_obj *o = check_signer(L);
  int want_base = lua_toboolean(L, 5), n;
  sign_req r;
  signer_req(L, o, &r);
  if ((n = so_sign_fresh(L, st, &r)) != 0) return n;
  if ((n = so_sign_run(L, st, o->sg, &r)) != 0) return n;
  lua_pushlstring(L, st->out.p + r.siglen, st->out.len - r.siglen);
  if (!want_base) return 1;
  lua_pushlstring(L, st->base.p, st->base.len);
  return 2;
}

/* signer:sign(method, url [, params]) -> the same table as sign() | nil,
 * message, code */
static int l_signer_sign(lua_State *L) {
  sign_state *st = (sign_state *)lua_touserdata(L, lua_upvalueindex(1));
  signer_obj *o = check_signer(L);
  sign_req r;
  int n;
  signer_req(L, o, &r);
  if ((n = so_sign_fresh(L, st, &r)) != 0) return n;
  if ((n = so_sign_run(L, st, o->sg, &r)) != 0) return n;
  so_sign_push_result(L, st, &r);
  return 1;
}

/* tostring(s): "smugoauth.Signer (HMAC-SHA1, token)" or "... (closed)" */
static int signer_tostring(lua_State *L) {
  signer_obj *o = luaL_checkudata(L, 1, SIGNER_MT);
  if (o->sg == NULL) lua_pushliteral(L, SIGNER_MT " (closed)");
  else lua_pushfstring(L, SIGNER_MT " (%s, %s)", so_method_names[o->sigmethod],
                       o->token.n ? "token" : "no token");
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
  {NULL, NULL}
};

/* Register the Signer class and core.signer, sharing one engine state. */
int so_open_signer(lua_State *L) {
  so_sign_newstate(L, 0);                /* t st: each Signer has its own MAC cache */
  lua_pushvalue(L, -1);
  so_newclass(L, SIGNER_MT, signer_meta, signer_methods, 1);
  lua_pushcclosure(L, l_signer, 1);
  lua_setfield(L, -2, "signer");
  return 0;
}
