/* lsign.c -- Lua binding for percent-encoding, base strings and sign().
 *
 * All signing functions share one "smugoauth.Signer" userdata as upvalue 1:
 * it owns the scratch buffers (reused between calls, so a raise never
 * leaks), the keyed MAC cache and the nonce pool. */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "lcore.h"

#define STATE_MT "smugoauth.Signer"

typedef struct sign_state {
  so_params ps;
  so_buf base, out, key, tmp;
  so_signer *signer;
  so_rand rnd;
} sign_state;

static sign_state *get_state(lua_State *L) {
  return (sign_state *)lua_touserdata(L, lua_upvalueindex(1));
}

/* Reset the scratch space; wipe what may hold secrets. */
static void state_reset(sign_state *st) {
  if (st->key.p) OPENSSL_cleanse(st->key.p, st->key.cap);
  so_params_reset(&st->ps);
  st->base.len = st->out.len = st->key.len = st->tmp.len = 0;
  st->base.oom = st->out.oom = st->key.oom = st->tmp.oom = 0;
}

static int state_gc(lua_State *L) {
  sign_state *st = luaL_checkudata(L, 1, STATE_MT);
  if (st->signer != NULL) {
    state_reset(st);
    so_params_free(&st->ps);
    so_buf_free(&st->base);
    so_buf_free(&st->out);
    so_buf_free(&st->key);
    so_buf_free(&st->tmp);
    so_signer_free(st->signer);
    st->signer = NULL;
  }
  return 0;
}

static void check_oom(lua_State *L, sign_state *st) {
  if (st->ps.oom || st->base.oom || st->out.oom || st->key.oom || st->tmp.oom) {
    state_reset(st);
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
  check_oom(L, st);
}

static void parse_url(lua_State *L, so_url *u, const char *url, size_t n) {
  const char *err = so_url_parse(u, url, n);
  if (err != NULL) luaL_error(L, "bad url '%s' (%s)", url, err);
}

/* base_string(method, url [, params]) -> the signature base string */
static int l_base_string(lua_State *L) {
  sign_state *st = get_state(L);
  size_t ml, ul;
  const char *m = luaL_checklstring(L, 1, &ml);
  const char *url = luaL_checklstring(L, 2, &ul);
  so_url u;
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  state_reset(st);
  parse_url(L, &u, url, ul);
  if (u.query) so_params_add_form(&st->ps, u.query, u.query_len);
  if (!lua_isnoneornil(L, 3)) add_param_table(L, st, 3);
  build_base(L, st, m, ml, &u);
  lua_pushlstring(L, st->base.p, st->base.len);
  return 1;
}

/* ---------------------------------------------------------------- sign */

enum {
  F_METHOD, F_URL, F_PARAMS, F_CKEY, F_CSECRET, F_TOKEN, F_TSECRET, F_SIGMETHOD,
  F_RSAKEY, F_CALLBACK, F_VERIFIER, F_REALM, F_NONCE, F_TIMESTAMP, F_VERSION, F_COUNT
};

static const char *const field_names[F_COUNT] = {
  "method", "url", "params", "consumer_key", "consumer_secret", "token", "token_secret",
  "signature_method", "rsa_key", "callback", "verifier", "realm", "nonce", "timestamp",
  "version"
};

typedef struct sstr { const char *s; size_t n; int set; } sstr;

static int field_index(const char *k, size_t n) {
  int i;
  for (i = 0; i < F_COUNT; i++)
    if (strlen(field_names[i]) == n && memcmp(field_names[i], k, n) == 0) return i;
  return -1;
}

/* Read the options table at 1 into f[]; unknown keys and wrong types raise. */
static void read_fields(lua_State *L, sstr *f, char *tsbuf, int *version_off) {
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
      if (!ok || ts < 0) luaL_error(L, "bad option 'timestamp' (non-negative integer expected)");
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

static int sig_method(lua_State *L, const sstr *f) {
  int i;
  if (!f->set) return SO_HMAC_SHA1;
  for (i = 0; so_method_names[i] != NULL; i++)
    if (strlen(so_method_names[i]) == f->n && memcmp(so_method_names[i], f->s, f->n) == 0)
      return i;
  return luaL_error(L, "bad option 'signature_method' (unknown method '%s')", f->s);
}

typedef struct oparam { const char *name; const char *v; size_t vl; so_pair at; } oparam;

/* sign(opts) -> { signature, base_string, authorization, query, oauth, nonce, timestamp } */
static int l_sign(lua_State *L) {
  sign_state *st = get_state(L);
  sstr f[F_COUNT];
  char tsbuf[24], noncebuf[33];
  int version_off, method, i, no = 0;
  oparam op[9];
  so_url u;
  size_t siglen;
  char errbuf[300];
  const char *err;

  luaL_checktype(L, 1, LUA_TTABLE);
  read_fields(L, f, tsbuf, &version_off);
  if (!f[F_URL].set) luaL_error(L, "missing option 'url'");
  if (!f[F_CKEY].set) luaL_error(L, "missing option 'consumer_key'");
  method = sig_method(L, &f[F_SIGMETHOD]);
  if (method == SO_RSA_SHA1 && !f[F_RSAKEY].set)
    luaL_error(L, "signature_method RSA-SHA1 needs option 'rsa_key' (a PEM private key)");
  if (f[F_TIMESTAMP].set) {
    size_t k;
    for (k = 0; k < f[F_TIMESTAMP].n; k++)
      if (f[F_TIMESTAMP].s[k] < '0' || f[F_TIMESTAMP].s[k] > '9' || k > 20)
        luaL_error(L, "bad option 'timestamp' (digits expected)");
    if (f[F_TIMESTAMP].n == 0) luaL_error(L, "bad option 'timestamp' (digits expected)");
  } else {
    f[F_TIMESTAMP].n = (size_t)snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)time(NULL));
    f[F_TIMESTAMP].s = tsbuf;
  }
  if (!f[F_NONCE].set) {
    if (so_nonce(&st->rnd, noncebuf) != 0) {
      so_ssl_error(errbuf, sizeof errbuf, "RAND_bytes");
      return luaL_error(L, "%s", errbuf);
    }
    f[F_NONCE].s = noncebuf;
    f[F_NONCE].n = 32;
  }
  state_reset(st);
  parse_url(L, &u, f[F_URL].s, f[F_URL].n);
  if (u.query) so_params_add_form(&st->ps, u.query, u.query_len);
  if (f[F_PARAMS].set) {
    lua_getfield(L, 1, "params");
    add_param_table(L, st, -1);
    lua_pop(L, 1);
  }

#define OP(nm, str, len) do { op[no].name = nm; op[no].v = str; op[no].vl = len; no++; } while (0)
  OP("oauth_consumer_key", f[F_CKEY].s, f[F_CKEY].n);
  if (f[F_TOKEN].set && f[F_TOKEN].n) OP("oauth_token", f[F_TOKEN].s, f[F_TOKEN].n);
  OP("oauth_signature_method", so_method_names[method], strlen(so_method_names[method]));
  OP("oauth_timestamp", f[F_TIMESTAMP].s, f[F_TIMESTAMP].n);
  OP("oauth_nonce", f[F_NONCE].s, f[F_NONCE].n);
  if (!version_off)
    OP("oauth_version", f[F_VERSION].set ? f[F_VERSION].s : "1.0",
       f[F_VERSION].set ? f[F_VERSION].n : 3);
  if (f[F_CALLBACK].set && f[F_CALLBACK].n) OP("oauth_callback", f[F_CALLBACK].s, f[F_CALLBACK].n);
  if (f[F_VERIFIER].set && f[F_VERIFIER].n) OP("oauth_verifier", f[F_VERIFIER].s, f[F_VERIFIER].n);
#undef OP
  for (i = 0; i < no; i++) {
    so_params_add(&st->ps, op[i].name, strlen(op[i].name), op[i].v, op[i].vl);
    if (!st->ps.oom) op[i].at = st->ps.items[st->ps.count - 1];
  }
  build_base(L, st, f[F_METHOD].set ? f[F_METHOD].s : "GET", f[F_METHOD].set ? f[F_METHOD].n : 3, &u);

  /* key = enc(consumer_secret) & enc(token_secret) */
  if (f[F_CSECRET].set) so_pct_encode(&st->key, f[F_CSECRET].s, f[F_CSECRET].n);
  so_buf_addc(&st->key, '&');
  if (f[F_TSECRET].set) so_pct_encode(&st->key, f[F_TSECRET].s, f[F_TSECRET].n);
  check_oom(L, st);
  err = so_signer_sign(st->signer, method, st->key.p, st->key.len,
                       f[F_RSAKEY].s, f[F_RSAKEY].n, st->base.p, st->base.len,
                       &st->out, errbuf, sizeof errbuf);
  OPENSSL_cleanse(st->key.p, st->key.len);
  if (err != NULL) {
    state_reset(st);
    return luaL_error(L, "%s", err);
  }
  check_oom(L, st);
  siglen = st->out.len;

  /* Authorization header and query string, built after the signature in out */
  so_buf_add(&st->out, "OAuth ", 6);
  if (f[F_REALM].set) {
    so_buf_add(&st->out, "realm=\"", 7);
    so_pct_encode(&st->out, f[F_REALM].s, f[F_REALM].n);
    so_buf_add(&st->out, "\", ", 3);
  }
  for (i = 0; i < no; i++) {
    so_buf_adds(&st->out, op[i].name);
    so_buf_add(&st->out, "=\"", 2);
    so_buf_add(&st->out, st->ps.arena.p + op[i].at.v, op[i].at.vl);
    so_buf_add(&st->out, "\", ", 3);
  }
  so_buf_add(&st->out, "oauth_signature=\"", 17);
  st->tmp.len = 0;
  so_pct_encode(&st->tmp, st->out.p, siglen);
  so_buf_add(&st->out, st->tmp.p, st->tmp.len);
  so_buf_addc(&st->out, '"');
  check_oom(L, st);

  lua_createtable(L, 0, 8);
  lua_pushlstring(L, st->out.p, siglen);
  lua_setfield(L, -2, "signature");
  lua_pushlstring(L, st->base.p, st->base.len);
  lua_setfield(L, -2, "base_string");
  lua_pushlstring(L, st->out.p + siglen, st->out.len - siglen);
  lua_setfield(L, -2, "authorization");
  {
    luaL_Buffer b;
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
  }
  lua_createtable(L, no + 1, 0);
  for (i = 0; i <= no; i++) {
    lua_createtable(L, 2, 0);
    if (i < no) {
      lua_pushstring(L, op[i].name);
      lua_pushlstring(L, op[i].v, op[i].vl);
    } else {
      lua_pushliteral(L, "oauth_signature");
      lua_pushlstring(L, st->out.p, siglen);
    }
    lua_rawseti(L, -3, 2);
    lua_rawseti(L, -2, 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "oauth");
  lua_pushlstring(L, f[F_NONCE].s, f[F_NONCE].n);
  lua_setfield(L, -2, "nonce");
  lua_pushlstring(L, f[F_TIMESTAMP].s, f[F_TIMESTAMP].n);
  lua_setfield(L, -2, "timestamp");
  return 1;
}

/* nonce() -> 32 hex characters from the CSPRNG */
static int l_nonce(lua_State *L) {
  sign_state *st = get_state(L);
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
  sign_state *st = get_state(L);
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_newtable(L);
  st->tmp.len = 0;
  so_form_each(s, n, &st->tmp, push_pair_cb, L);
  check_oom(L, st);
  return 1;
}

static const luaL_Reg sign_funcs[] = {
  {"percent_encode", l_percent_encode},
  {"percent_decode", l_percent_decode},
  {"base_string", l_base_string},
  {"sign", l_sign},
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
  so_rand_init(&st->rnd);
  if (luaL_newmetatable(L, STATE_MT)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  if ((st->signer = so_signer_new()) == NULL) luaL_error(L, "not enough memory");
  luaL_setfuncs(L, sign_funcs, 1);   /* pops the state, shared as upvalue */
}
