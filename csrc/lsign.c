/* lsign.c -- Lua binding for percent-encoding, base strings and sign().
 *
 * All signing functions share one "smugoauth.Signer" userdata as upvalue 1:
 * it owns the scratch buffers (reused between calls, so a raise never
 * leaks), the keyed MAC cache and the nonce pool. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "lsign.h"

#define STATE_MT "smugoauth.SignState"


sign_state *so_sign_state(lua_State *L) {
  return (sign_state *)lua_touserdata(L, lua_upvalueindex(1));
}

/* Reset the scratch space (not the key). */
void so_sign_scratch_reset(sign_state *st) {
  so_params_reset(&st->ps);
  st->base.len = st->out.len = st->tmp.len = 0;
  st->base.oom = st->out.oom = st->tmp.oom = 0;
}

/* Reset everything; wipe the key buffer, which held secrets. */
void so_sign_reset(sign_state *st) {
  if (st->key.p) OPENSSL_cleanse(st->key.p, st->key.cap);
  st->key.len = 0;
  st->key.oom = 0;
  so_sign_scratch_reset(st);
}

static int state_gc(lua_State *L) {
  sign_state *st = luaL_checkudata(L, 1, STATE_MT);
  if (st->signer != NULL) {
    so_sign_reset(st);
    so_params_free(&st->ps);
    so_buf_free(&st->base);
    so_buf_free(&st->out);
    so_buf_free(&st->key);
    so_buf_free(&st->tmp);
    so_signer_free(st->signer);
    st->signer = NULL;
    so_rand_free(&st->rnd);
  }
  return 0;
}

void so_sign_check_oom(lua_State *L, sign_state *st) {
  if (st->ps.oom || st->base.oom || st->out.oom || st->key.oom || st->tmp.oom) {
    so_sign_reset(st);
    luaL_error(L, "not enough memory");
  }
}

/* ------------------------------------------------------------ encoding */

/* percent_encode(s) -> RFC 5849 encoding of the bytes of s */
static int l_percent_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  size_t i;
  char *o = luaL_buffinitsize(L, &b, n * 3);
  static const char hx[] = "0123456789ABCDEF";
  char *start = o;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (so_unreserved[c]) *o++ = (char)c;
    else { *o++ = '%'; *o++ = hx[c >> 4]; *o++ = hx[c & 15]; }
  }
  luaL_pushresultsize(&b, (size_t)(o - start));
  return 1;
}

/* percent_decode(s [, plus = true]) -> bytes; '+' is a space unless plus is false */
static int l_percent_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  int plus = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  luaL_Buffer b;
  char *o = luaL_buffinitsize(L, &b, n);
  luaL_pushresultsize(&b, so_pct_decode(o, s, n, plus));
  return 1;
}

/* -------------------------------------------------------- parameters */

static const char *typename_at(lua_State *L, int idx) {
  return luaL_typename(L, idx);
}

/* The string at idx (strings and numbers), or raise naming what it is. */
static const char *param_str(lua_State *L, int idx, size_t *len, const char *what) {
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "bad %s (string expected, got %s)", what, typename_at(L, idx));
  return lua_tolstring(L, idx, len);
}

/* Add the table at idx: an array of {name, value} pairs, or a map of
 * name -> string | array of strings. */
static void add_param_table(lua_State *L, sign_state *st, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_rawgeti(L, idx, 1) != LUA_TNIL) {
    lua_Integer i, n;
    lua_pop(L, 1);
    n = (lua_Integer)lua_rawlen(L, idx);
    for (i = 1; i <= n; i++) {
      size_t nl, vl;
      const char *k, *v;
      if (lua_rawgeti(L, idx, i) != LUA_TTABLE)
        luaL_error(L, "bad params[%d] ({name, value} pair expected, got %s)",
                   (int)i, typename_at(L, -1));
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      k = param_str(L, -2, &nl, "parameter name");
      v = param_str(L, -1, &vl, "parameter value");
      so_params_add(&st->ps, k, nl, v, vl);
      lua_pop(L, 3);
    }
    return;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t nl, vl;
    const char *k, *v;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "bad params (names must be strings, got %s)", typename_at(L, -2));
    k = lua_tolstring(L, -2, &nl);
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        v = param_str(L, -1, &vl, "parameter value");
        so_params_add(&st->ps, k, nl, v, vl);
        lua_pop(L, 1);
      }
    } else {
      v = param_str(L, -1, &vl, "parameter value");
      so_params_add(&st->ps, k, nl, v, vl);
    }
    lua_pop(L, 1);
  }
}

/* Upper-case and check an HTTP method (a token of letters). */
static void put_method(lua_State *L, so_buf *b, const char *m, size_t n) {
  size_t i;
  if (n == 0 || n > 32) luaL_error(L, "bad method (an HTTP method expected)");
  for (i = 0; i < n; i++) {
    char c = m[i];
    if (c >= 'a' && c <= 'z') c = (char)(c - 32);
    else if (!(c >= 'A' && c <= 'Z')) luaL_error(L, "bad method '%s' (letters only)", m);
    so_buf_addc(b, c);
  }
}

/* method & enc(base uri) & enc(normalized params) into st->base */
static void build_base(lua_State *L, sign_state *st, const char *m, size_t ml,
                       const so_url *u) {
  put_method(L, &st->base, m, ml);
  so_buf_addc(&st->base, '&');
  st->tmp.len = 0;
  so_base_uri(&st->tmp, u);
  so_pct_encode(&st->base, st->tmp.p, st->tmp.len);
  so_buf_addc(&st->base, '&');
  so_params_sort(&st->ps);
  so_params_normalized_enc(&st->base, &st->ps, "oauth_signature");
  so_sign_check_oom(L, st);
}

static void parse_url(lua_State *L, so_url *u, const char *url, size_t n) {
  const char *err = so_url_parse(u, url, n);
  if (err != NULL) luaL_error(L, "bad url (%s)", err);   /* not echoed: it may hold secrets */
}

/* base_string(method, url [, params]) -> the signature base string */
static int l_base_string(lua_State *L) {
  sign_state *st = so_sign_state(L);
  size_t ml, ul;
  const char *m = luaL_checklstring(L, 1, &ml);
  const char *url = luaL_checklstring(L, 2, &ul);
  so_url u;
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  so_sign_reset(st);
  parse_url(L, &u, url, ul);
  if (u.query) so_params_add_form(&st->ps, u.query, u.query_len);
  if (!lua_isnoneornil(L, 3)) add_param_table(L, st, 3);
  build_base(L, st, m, ml, &u);
  lua_pushlstring(L, st->base.p, st->base.len);
  return 1;
}

/* ---------------------------------------------------------------- sign */


const char *const so_sign_field_names[F_COUNT] = {
  "method", "url", "params", "consumer_key", "consumer_secret", "token", "token_secret",
  "signature_method", "rsa_key", "callback", "verifier", "realm", "nonce", "timestamp",
  "version"
};


static int field_index(const char *k, size_t n) {
  int i;
  for (i = 0; i < F_COUNT; i++)
    if (strlen(so_sign_field_names[i]) == n && memcmp(so_sign_field_names[i], k, n) == 0) return i;
  return -1;
}

/* Read the options table at 1 into f[]; unknown keys and wrong types raise. */
void so_sign_read_fields(lua_State *L, sstr *f, char *tsbuf, int *version_off) {
  memset(f, 0, sizeof(sstr) * F_COUNT);
  *version_off = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    size_t kl;
    const char *k;
    int i, t = lua_type(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "bad option key (string expected, got %s)", typename_at(L, -2));
    k = lua_tolstring(L, -2, &kl);
    i = field_index(k, kl);
    if (i < 0) luaL_error(L, "unknown option '%s'", k);
    if (i == F_PARAMS) {
      if (t != LUA_TTABLE) luaL_error(L, "bad option 'params' (table expected, got %s)",
                                      typename_at(L, -1));
      f[i].set = 1;
    } else if (i == F_TIMESTAMP && t == LUA_TNUMBER) {
      lua_Integer ts;
      int ok;
      ts = lua_tointegerx(L, -1, &ok);
      if (!ok || ts <= 0) luaL_error(L, "bad option 'timestamp' (positive integer expected)");
      f[i].n = (size_t)snprintf(tsbuf, 24, "%lld", (long long)ts);
      f[i].s = tsbuf;
      f[i].set = 1;
    } else if (i == F_VERSION && t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
      *version_off = 1;
    } else if (t == LUA_TSTRING) {
      f[i].s = lua_tolstring(L, -1, &f[i].n);   /* anchored by the table */
      f[i].set = 1;
    } else {
      luaL_error(L, "bad option '%s' (string expected, got %s)", k, typename_at(L, -1));
    }
    lua_pop(L, 1);
  }
}

int so_sign_method(lua_State *L, const sstr *f) {
  int i;
  if (!f->set) return SO_HMAC_SHA1;
  for (i = 0; so_method_names[i] != NULL; i++)
    if (strlen(so_method_names[i]) == f->n && memcmp(so_method_names[i], f->s, f->n) == 0)
      return i;
  return luaL_error(L, "bad option 'signature_method' (unknown method '%s')", f->s);
}



/* Fill in the nonce and timestamp when the caller gave none. */
void so_sign_fresh(lua_State *L, sign_state *st, sign_req *r) {
  if (r->ts == NULL) {
    char tmp[24];
    size_t k = 0, j;
    unsigned long long t = (unsigned long long)time(NULL);
    do { tmp[k++] = (char)('0' + t % 10); t /= 10; } while (t);
    for (j = 0; j < k; j++) r->tsbuf[j] = tmp[k - 1 - j];
    r->ts_len = k;
    r->ts = r->tsbuf;
  }
  if (r->nonce == NULL) {
    if (so_nonce(&st->rnd, r->noncebuf) != 0) {
      char errbuf[300];
      so_ssl_error(errbuf, sizeof errbuf, "RAND_bytes");
      luaL_error(L, "%s", errbuf);
    }
    r->nonce = r->noncebuf;
    r->nonce_len = 32;
    r->nonce_safe = 1;
  }
}

/* The engine: base string into st->base, then in st->out the signature
 * followed by the Authorization header; st->tmp holds enc(signature). */
void so_sign_run(lua_State *L, sign_state *st, so_signer *sg, sign_req *r,
                     const char *key, size_t keylen) {
  so_url u;
  oparam *op = r->op;
  int i, no = 0;
  char errbuf[300];
  const char *err;
  const char *mname = so_method_names[r->sigmethod];

  so_sign_scratch_reset(st);
  parse_url(L, &u, r->url, r->url_len);
  if (u.query) so_params_add_form(&st->ps, u.query, u.query_len);
  if (r->params_idx) add_param_table(L, st, r->params_idx);
#define OP(nm, str, len, e, el) do { op[no].name = nm; op[no].v = str; op[no].vl = len; \
    op[no].ev = e; op[no].evl = el; no++; } while (0)
  OP("oauth_consumer_key", r->ckey, r->ckey_len, r->ckey_enc, r->ckey_enc_len);
  if (r->token_len) OP("oauth_token", r->token, r->token_len, r->token_enc, r->token_enc_len);
  OP("oauth_signature_method", mname, strlen(mname), mname, strlen(mname));
  OP("oauth_timestamp", r->ts, r->ts_len, r->ts, r->ts_len);          /* digits */
  OP("oauth_nonce", r->nonce, r->nonce_len, r->nonce_safe ? r->nonce : NULL, r->nonce_len);
  if (!r->version_off) {
    if (r->version) OP("oauth_version", r->version, r->version_len, NULL, 0);
    else OP("oauth_version", "1.0", 3, "1.0", 3);
  }
  if (r->callback_len) OP("oauth_callback", r->callback, r->callback_len, NULL, 0);
  if (r->verifier_len) OP("oauth_verifier", r->verifier, r->verifier_len, NULL, 0);
#undef OP
  r->nop = no;
  for (i = 0; i < no; i++) {
    if (op[i].ev) so_params_add_enc(&st->ps, op[i].name, strlen(op[i].name), op[i].ev, op[i].evl);
    else so_params_add(&st->ps, op[i].name, strlen(op[i].name), op[i].v, op[i].vl);
    if (!st->ps.oom) op[i].at = st->ps.items[st->ps.count - 1];
  }
  build_base(L, st, r->method ? r->method : "GET", r->method ? r->method_len : 3, &u);
  err = so_signer_sign(sg, r->sigmethod, key, keylen, r->pem, r->pem_len,
                       st->base.p, st->base.len, &st->out, errbuf, sizeof errbuf);
  if (err != NULL) {
    so_sign_reset(st);
    luaL_error(L, "%s", err);
  }
  so_sign_check_oom(L, st);
  r->siglen = st->out.len;

  /* Authorization header after the signature in out */
  {
    so_hdr_param hp[10];
    st->tmp.len = 0;
    so_pct_encode(&st->tmp, st->out.p, r->siglen);
    so_sign_check_oom(L, st);
    for (i = 0; i < no; i++) {
      hp[i].name = op[i].name;
      hp[i].value = st->ps.arena.p + op[i].at.v;
      hp[i].value_len = op[i].at.vl;
    }
    hp[no].name = "oauth_signature";
    hp[no].value = st->tmp.p;
    hp[no].value_len = st->tmp.len;
    if (so_auth_header(&st->out, r->realm, r->realm_len, hp, (size_t)no + 1) != 0) {
      so_sign_scratch_reset(st);
      luaL_error(L, "bad option 'realm' (control characters are not allowed)");
    }
  }
  so_sign_check_oom(L, st);
}

/* Push the full result table of a signature made by so_sign_run. */
void so_sign_push_result(lua_State *L, sign_state *st, const sign_req *r) {
  int i, no = r->nop;
  const oparam *op = r->op;
  luaL_Buffer b;
  lua_createtable(L, 0, 7);
  lua_pushlstring(L, st->out.p, r->siglen);
  lua_setfield(L, -2, "signature");
  lua_pushlstring(L, st->base.p, st->base.len);
  lua_setfield(L, -2, "base_string");
  lua_pushlstring(L, st->out.p + r->siglen, st->out.len - r->siglen);
  lua_setfield(L, -2, "authorization");
  luaL_buffinit(L, &b);
  for (i = 0; i < no; i++) {
    luaL_addstring(&b, op[i].name);
    luaL_addchar(&b, '=');
    luaL_addlstring(&b, st->ps.arena.p + op[i].at.v, op[i].at.vl);
    luaL_addchar(&b, '&');
  }
  luaL_addstring(&b, "oauth_signature=");
  luaL_addlstring(&b, st->tmp.p, st->tmp.len);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "query");
  lua_createtable(L, no + 1, 0);
  for (i = 0; i <= no; i++) {
    lua_createtable(L, 2, 0);
    if (i < no) {
      lua_pushstring(L, op[i].name);
      lua_pushlstring(L, op[i].v, op[i].vl);
    } else {
      lua_pushliteral(L, "oauth_signature");
      lua_pushlstring(L, st->out.p, r->siglen);
    }
    lua_rawseti(L, -3, 2);
    lua_rawseti(L, -2, 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "oauth");
  lua_pushlstring(L, r->nonce, r->nonce_len);
  lua_setfield(L, -2, "nonce");
  lua_pushlstring(L, r->ts, r->ts_len);
  lua_setfield(L, -2, "timestamp");
}

static void check_ts(lua_State *L, const char *s, size_t n) {
  size_t k;
  if (n == 0 || n > 20) luaL_error(L, "bad option 'timestamp' (digits expected)");
  for (k = 0; k < n; k++)
    if (s[k] < '0' || s[k] > '9') luaL_error(L, "bad option 'timestamp' (digits expected)");
  for (k = 0; k < n && s[k] == '0'; k++) {}
  if (k == n) luaL_error(L, "bad option 'timestamp' (a positive integer expected)");
}

/* sign(opts) -> { signature, base_string, authorization, query, oauth, nonce, timestamp } */
static int l_sign(lua_State *L) {
  sign_state *st = so_sign_state(L);
  sstr f[F_COUNT];
  sign_req r;
  char tsbuf[24];

  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&r, 0, sizeof r);
  so_sign_read_fields(L, f, tsbuf, &r.version_off);
  if (!f[F_URL].set) luaL_error(L, "missing option 'url'");
  if (!f[F_CKEY].set) luaL_error(L, "missing option 'consumer_key'");
  r.sigmethod = so_sign_method(L, &f[F_SIGMETHOD]);
  if (r.sigmethod == SO_RSA_SHA1 && !f[F_RSAKEY].set)
    luaL_error(L, "signature_method RSA-SHA1 needs option 'rsa_key' (a PEM private key)");
#define TAKE(field, F) do { if (f[F].set) { r.field = f[F].s; r.field##_len = f[F].n; } } while (0)
  TAKE(method, F_METHOD); TAKE(url, F_URL); TAKE(ckey, F_CKEY); TAKE(token, F_TOKEN);
  TAKE(pem, F_RSAKEY); TAKE(callback, F_CALLBACK); TAKE(verifier, F_VERIFIER);
  TAKE(realm, F_REALM); TAKE(version, F_VERSION); TAKE(nonce, F_NONCE); TAKE(ts, F_TIMESTAMP);
#undef TAKE
  if (r.ts) check_ts(L, r.ts, r.ts_len);
  if (r.nonce && r.nonce_len == 0) luaL_error(L, "bad option 'nonce' (empty)");
  so_sign_fresh(L, st, &r);
  if (f[F_PARAMS].set) {
    lua_getfield(L, 1, "params");
    r.params_idx = lua_gettop(L);
  }
  /* key = enc(consumer_secret) & enc(token_secret) */
  so_sign_reset(st);
  if (f[F_CSECRET].set) so_pct_encode(&st->key, f[F_CSECRET].s, f[F_CSECRET].n);
  so_buf_addc(&st->key, '&');
  if (f[F_TSECRET].set) so_pct_encode(&st->key, f[F_TSECRET].s, f[F_TSECRET].n);
  so_sign_check_oom(L, st);
  so_sign_run(L, st, st->signer, &r, st->key.p, st->key.len);
  OPENSSL_cleanse(st->key.p, st->key.len);
  so_sign_push_result(L, st, &r);
  return 1;
}

/* nonce() -> 32 hex characters from the CSPRNG */
static int l_nonce(lua_State *L) {
  sign_state *st = so_sign_state(L);
  char buf[33];
  if (so_nonce(&st->rnd, buf) != 0) {
    char errbuf[256];
    so_ssl_error(errbuf, sizeof errbuf, "RAND_bytes");
    return luaL_error(L, "%s", errbuf);
  }
  lua_pushlstring(L, buf, 32);
  return 1;
}

/* parse_form(s) -> array of {name, value}, decoded ('+' is a space) */
static void push_pair_cb(void *ud, const char *n, size_t nl, const char *v, size_t vl) {
  lua_State *L = ud;
  lua_createtable(L, 2, 0);
  lua_pushlstring(L, n, nl);
  lua_rawseti(L, -2, 1);
  lua_pushlstring(L, v, vl);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

static int l_parse_form(lua_State *L) {
  sign_state *st = so_sign_state(L);
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_newtable(L);
  st->tmp.len = 0;
  so_form_each(s, n, &st->tmp, push_pair_cb, L);
  so_sign_check_oom(L, st);
  return 1;
}

static const luaL_Reg sign_funcs[] = {
  {"percent_encode", l_percent_encode},
  {"percent_decode", l_percent_decode},
  {"base_string", l_base_string},
  {"sign", l_sign},
  {"signer", so_sign_l_signer},
  {"nonce", l_nonce},
  {"parse_form", l_parse_form},
  {NULL, NULL}
};

void so_open_sign(lua_State *L) {
  sign_state *st = lua_newuserdatauv(L, sizeof *st, 0);
  memset(st, 0, sizeof *st);
  so_params_init(&st->ps);
  so_buf_init(&st->base);
  so_buf_init(&st->out);
  so_buf_init(&st->key);
  so_buf_init(&st->tmp);
  so_rand_init(&st->rnd);      /* on failure it falls back to RAND_bytes */
  if (luaL_newmetatable(L, STATE_MT)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  if ((st->signer = so_signer_new()) == NULL) luaL_error(L, "not enough memory");
  so_sign_signer_meta(L);
  luaL_setfuncs(L, sign_funcs, 1);   /* pops the state, shared as upvalue */
}
