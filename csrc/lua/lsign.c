/* lsign.c -- the signing engine (lsign.h) and the Lua functions that sign
 * or help to: sign{}, base_string, percent_encode/percent_decode,
 * parse_form and nonce. The Signer object is lsigner.c.
 *
 * The functions registered here share one state userdata as upvalue 1: it
 * owns the scratch buffers (reused between calls, so a raise never leaks),
 * the keyed MAC cache and the nonce pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "encode.h"
#include "lsign.h"
#include "sslerr.h"
#include "url.h"

#define STATE_MT "smugoauth.SignState"

/* ---------------------------------------------------------------- state */

/* Reset the scratch space (the key is wiped separately). */
static void scratch_reset(sign_state *st) {
  so_params_reset(&st->ps);
  st->base.len = st->out.len = st->tmp.len = 0;
  st->base.oom = st->out.oom = st->tmp.oom = 0;
  st->nextra = 0;
}

void so_sign_wipe_key(sign_state *st) {
  if (st->key.p) OPENSSL_cleanse(st->key.p, st->key.len);   /* all a key ever wrote */
  st->key.len = 0;
  st->key.oom = 0;
}

/* Reset everything, the key wiped. */
static void state_reset(sign_state *st) {
  so_sign_wipe_key(st);
  scratch_reset(st);
}

static int state_gc(lua_State *L) {
  sign_state *st = luaL_checkudata(L, 1, STATE_MT);
  state_reset(st);
  so_params_free(&st->ps);
  so_buf_free(&st->base);
  so_buf_free(&st->out);
  so_buf_free(&st->key);
  so_buf_free(&st->tmp);
  free(st->extra);
  st->extra = NULL;
  so_signer_free(st->signer);
  st->signer = NULL;
  so_rand_free(&st->rnd);
  return 0;
}

sign_state *so_sign_newstate(lua_State *L, int mac_cache) {
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
  if (mac_cache && (st->signer = so_signer_new()) == NULL) luaL_error(L, "not enough memory");
  return st;
}

static sign_state *upstate(lua_State *L) {
  return (sign_state *)lua_touserdata(L, lua_upvalueindex(1));
}

/* Raise "not enough memory" (everything reset, the key wiped) when a buffer
 * failed to grow. */
static void check_oom(lua_State *L, sign_state *st) {
  if (st->ps.oom || st->base.oom || st->out.oom || st->key.oom || st->tmp.oom) {
    state_reset(st);
    luaL_error(L, "not enough memory");
  }
}

/* Raise a misuse error after wiping whatever the call made. */
static int raise_reset(lua_State *L, sign_state *st, const char *fmt, const char *arg) {
  state_reset(st);
  return luaL_error(L, fmt, arg);
}

int so_sign_key(sign_state *st, const so_str *cs, const so_str *ts) {
  so_sign_wipe_key(st);
  /* room for the whole key first: a realloc in between would free a block
   * holding part of it without wiping it (what was there before is wiped) */
  if (so_buf_reserve(&st->key, 3 * (cs->n + ts->n) + 1) != 0) {
    so_sign_wipe_key(st);
    return -1;
  }
  if (cs->s) so_pct_encode(&st->key, cs->s, cs->n);
  so_buf_addc(&st->key, '&');
  if (ts->s) so_pct_encode(&st->key, ts->s, ts->n);
  if (!st->key.oom) return 0;
  so_sign_wipe_key(st);
  return -1;
}

/* -------------------------------------------------------------- options */

/* signature_method: one of so_method_names, exactly. */
static void sign_sigmethod(lua_State *L, const so_opt *o, int *out) {
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  int m = so_method_find(s, n);
  if (m < 0) so_opt_error(L, o, "unknown method '%s'", s);
  *out = m;
}

/* realm: any string without control characters (it is written raw,
 * quoted, into the Authorization header). */
static void sign_realm(lua_State *L, const so_opt *o, so_str *out) {
  so_opt_str(L, o, out);
  if (so_has_ctl(out->s, out->n)) so_opt_error(L, o, "control characters are not allowed");
}

/* version: "1.0" (sent as oauth_version) or false (left out); RFC 5849
 * 3.1 knows no other value. */
static void sign_version(lua_State *L, const so_opt *o, int *out) {
  if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    *out = 0;
    return;
  }
  so_opt_type(L, o, LUA_TSTRING);
  if (strcmp(lua_tostring(L, -1), "1.0") != 0 || lua_rawlen(L, -1) != 3)
    so_opt_error(L, o, "\"1.0\" or false expected");
  *out = 1;
}

/* nonce: a non-empty string. */
static void sign_nonce(lua_State *L, const so_opt *o, so_str *out) {
  so_opt_str(L, o, out);
  if (out->n == 0) so_opt_error(L, o, "empty");
}

/* timestamp: a positive integer, or a string of digits that is one. */
static void sign_timestamp(lua_State *L, const so_opt *o, sign_ts *out) {
  size_t k;
  if (lua_type(L, -1) == LUA_TNUMBER) {
    int ok;
    lua_Integer ts = lua_tointegerx(L, -1, &ok);
    if (!ok || ts <= 0) so_opt_error(L, o, "positive integer expected");
    out->n = (size_t)snprintf(out->buf, sizeof out->buf, "%lld", (long long)ts);
    out->s = out->buf;
    return;
  }
  so_opt_type(L, o, LUA_TSTRING);
  out->s = lua_tolstring(L, -1, &out->n);
  if (out->n == 0 || out->n > 20) so_opt_error(L, o, "digits expected");
  for (k = 0; k < out->n; k++)
    if (out->s[k] < '0' || out->s[k] > '9') so_opt_error(L, o, "digits expected");
  for (k = 0; k < out->n && out->s[k] == '0'; k++) {}
  if (k == out->n) so_opt_error(L, o, "a positive integer expected");
}

#define SIGN_REQUEST 1          /* the scope column of sign_opts.h */
#define SIGN_ANY 0

/* Read the option on top of the stack (its key in op) into o; an unknown
 * key, or for a signer one of a request, raises. Expanded from the
 * SO_SIGN_OPT rows. */
static void sign_option(lua_State *L, const so_opt *op, sign_opts *o, int signer) {
#define SO_SIGN_OPT(name, type, ctype, reader, scope)                            \
  if (so_opt_is(op, #name)) {                                                    \
    if (signer && SIGN_##scope)                                                  \
      luaL_error(L, "option '%s' belongs to a request, not to a signer", #name); \
    so_opt_type(L, op, LUA_T##type);                                             \
    reader(L, op, &o->name);                                                     \
    return;                                                                      \
  }
#include "sign_opts.h"
  so_opt_unknown(L, op);
}

void so_sign_read(lua_State *L, int idx, sign_opts *o, int signer) {
  so_opt op = SO_OPT_INIT(NULL);
  memset(o, 0, sizeof *o);
  o->signature_method = SO_HMAC_SHA1;
  o->version = 1;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (so_opt_next(L, idx, &op)) {
    sign_option(L, &op, o, signer);
    lua_pop(L, 1);
  }
}

/* ----------------------------------------------------------- parameters */

/* The string at idx (strings and numbers), or raise naming what it is. */
static const char *param_str(lua_State *L, int idx, size_t *len, const char *what) {
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "bad %s (string expected, got %s)", what, luaL_typename(L, idx));
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
                   (int)i, luaL_typename(L, -1));
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
      luaL_error(L, "bad params (names must be strings, got %s)", luaL_typename(L, -2));
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

/* The URL's pieces, or raise (the URL is not echoed: it may hold secrets). */
static void parse_url(lua_State *L, so_url *u, const char *url, size_t n) {
  const char *err = so_url_parse(u, url, n);
  if (err != NULL) luaL_error(L, "bad url (%s)", err);
}

/* method & enc(base uri) & enc(normalized params) into st->base */
static void build_base(lua_State *L, sign_state *st, const so_str *m, const so_url *u) {
  if (so_method_put(&st->base, m->s, m->n) != 0)
    raise_reset(L, st, "%s", "bad method (an HTTP method token expected)");
  so_buf_addc(&st->base, '&');
  st->tmp.len = 0;
  so_base_uri(&st->tmp, u);
  so_pct_encode(&st->base, st->tmp.p, st->tmp.len);
  so_buf_addc(&st->base, '&');
  so_params_sort(&st->ps);
  so_params_normalized_enc(&st->base, &st->ps, "oauth_signature");
  check_oom(L, st);
}

/* base_string(method, url [, params]) -> the signature base string (RFC
 * 5849 3.4.1) of a request as it arrived: every parameter of the url's
 * query and of params is in it, oauth_signature aside. */
static int l_base_string(lua_State *L) {
  sign_state *st = upstate(L);
  so_str m;
  size_t ul;
  const char *url;
  so_url u;
  m.s = luaL_checklstring(L, 1, &m.n);
  url = luaL_checklstring(L, 2, &ul);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  state_reset(st);
  parse_url(L, &u, url, ul);
  if (u.query) so_params_add_form(&st->ps, u.query, u.query_len);
  if (!lua_isnoneornil(L, 3)) add_param_table(L, st, 3);
  build_base(L, st, &m, &u);
  lua_pushlstring(L, st->base.p, st->base.len);
  return 1;
}

/* ---------------------------------------------------------------- engine */

int so_sign_fresh(lua_State *L, sign_state *st, sign_req *r) {
  if (r->ts.s == NULL) {
    char tmp[24];
    size_t k = 0, j;
    unsigned long long t = (unsigned long long)time(NULL);
    do { tmp[k++] = (char)('0' + t % 10); t /= 10; } while (t);
    for (j = 0; j < k; j++) r->tsbuf[j] = tmp[k - 1 - j];
    r->ts.s = r->tsbuf;
    r->ts.n = k;
  }
  if (r->nonce.s == NULL) {
    if (so_nonce(&st->rnd, r->noncebuf) != 0) {
      char err[300];
      return so_fail(L, "crypto", "%s", so_ssl_error(err, sizeof err, "nonce: RAND_bytes"));
    }
    r->nonce.s = r->noncebuf;
    r->nonce.n = 32;
    r->nonce_safe = 1;
  }
  return 0;
}

/* Check the oauth_* parameters of the url's query (items [0, nq)) and of
 * params (the rest) against each other and against ours, r->op (RFC 5849
 * 3.5: each is sent once, where the protocol parameters go): one we set
 * too, or one given twice, raises naming it (never its value); the others
 * given in params are kept in st->extra, to be sent with ours. */
static void check_oauth_params(lua_State *L, sign_state *st, const sign_req *r, size_t nq) {
  size_t i, j, count = st->ps.count;
  const char *arena = st->ps.arena.p ? st->ps.arena.p : "";
  for (i = 0; i < count; i++) {
    const so_pair *it = &st->ps.items[i];
    const char *n = arena + it->n, *where = i < nq ? "in the url query" : "in params";
    if (!so_oauth_name(n, it->nl)) continue;
    if (it->nl == 15 && memcmp(n, "oauth_signature", 15) == 0) {
      state_reset(st);
      luaL_error(L, "protocol parameter 'oauth_signature' given twice (%s, and made here)", where);
    }
    for (j = 0; j < (size_t)r->nop; j++) {
      const oparam *o = &r->op[j];
      if (o->nl == it->nl && memcmp(o->name, n, it->nl) == 0) {
        state_reset(st);
        luaL_error(L, "protocol parameter '%s' given twice (%s, and by option '%s')", o->name,
                   where, o->opt);
      }
    }
    for (j = 0; j < i; j++) {
      const so_pair *o = &st->ps.items[j];
      if (o->nl == it->nl && memcmp(arena + o->n, n, it->nl) == 0) {
        lua_pushlstring(L, n, it->nl);            /* encoded: printable, no secret */
        state_reset(st);
        luaL_error(L, "protocol parameter '%s' given twice (%s)", lua_tostring(L, -1),
                   j < nq && i >= nq ? "in the url query and in params" : where);
      }
    }
    if (i < nq) continue;                         /* sent in the url, as given */
    if (st->nextra == st->extracap) {
      size_t cap = st->extracap ? st->extracap * 2 : 4;
      so_pair *p = realloc(st->extra, cap * sizeof *p);
      if (p == NULL) raise_reset(L, st, "%s", "not enough memory");
      st->extra = p;
      st->extracap = cap;
    }
    st->extra[st->nextra++] = *it;
  }
}

/* Append the Authorization header to st->out: our protocol parameters,
 * the oauth_* ones of params, oauth_signature (encoded in st->tmp). */
static void put_header(lua_State *L, sign_state *st, const sign_req *r) {
  so_hdr_param fixed[SIGN_NOP + 1], *hp = fixed;
  size_t i, n = (size_t)r->nop + st->nextra + 1;
  const char *arena = st->ps.arena.p;
  int rc;
  if (n > sizeof fixed / sizeof fixed[0] && (hp = malloc(n * sizeof *hp)) == NULL) {
    state_reset(st);
    luaL_error(L, "not enough memory");
  }
  for (i = 0; i < (size_t)r->nop; i++) {
    hp[i].name = r->op[i].name;
    hp[i].name_len = r->op[i].nl;
    hp[i].value = arena + r->op[i].at.v;
    hp[i].value_len = r->op[i].at.vl;
  }
  for (i = 0; i < st->nextra; i++) {
    so_hdr_param *h = &hp[r->nop + i];
    h->name = arena + st->extra[i].n;
    h->name_len = st->extra[i].nl;
    h->value = arena + st->extra[i].v;
    h->value_len = st->extra[i].vl;
  }
  hp[n - 1].name = "oauth_signature";
  hp[n - 1].name_len = 15;
  hp[n - 1].value = st->tmp.p;
  hp[n - 1].value_len = st->tmp.len;
  rc = so_auth_header(&st->out, r->realm.s, r->realm.n, hp, n);
  if (hp != fixed) free(hp);
  if (rc != 0) raise_reset(L, st, "%s", "bad option 'realm' (control characters are not allowed)");
}

int so_sign_run(lua_State *L, sign_state *st, so_signer *sg, sign_req *r) {
  so_url u;
  oparam *op = r->op;
  size_t i, nq;
  int no = 0, rc;
  char errbuf[300];
  const char *mname = so_method_names[r->sigmethod], *key = r->key;
  size_t keylen = r->keylen;

  /* the protocol parameters we set (RFC 5849 3.1), in the header's order */
#define OP(nm, o, str, len, e, el) do { op[no].name = nm; op[no].nl = sizeof nm - 1; \
    op[no].opt = o; op[no].v = str; op[no].vl = len; op[no].ev = e; op[no].evl = el; no++; } while (0)
  OP("oauth_consumer_key", "consumer_key", r->ckey.s, r->ckey.n, r->ckey_enc.s, r->ckey_enc.n);
  if (r->token.n)
    OP("oauth_token", "token", r->token.s, r->token.n, r->token_enc.s, r->token_enc.n);
  OP("oauth_signature_method", "signature_method", mname, strlen(mname), mname, strlen(mname));
  OP("oauth_timestamp", "timestamp", r->ts.s, r->ts.n, r->ts.s, r->ts.n);          /* digits */
  OP("oauth_nonce", "nonce", r->nonce.s, r->nonce.n, r->nonce_safe ? r->nonce.s : NULL,
     r->nonce.n);
  if (r->version) OP("oauth_version", "version", "1.0", 3, "1.0", 3);
  if (r->callback.n) OP("oauth_callback", "callback", r->callback.s, r->callback.n, NULL, 0);
  if (r->verifier.n) OP("oauth_verifier", "verifier", r->verifier.s, r->verifier.n, NULL, 0);
#undef OP
  r->nop = no;

  /* the request's own parameters, then ours */
  scratch_reset(st);
  parse_url(L, &u, r->url.s, r->url.n);
  if (u.query) so_params_add_form(&st->ps, u.query, u.query_len);
  nq = st->ps.count;
  if (r->params_idx) add_param_table(L, st, r->params_idx);
  check_oom(L, st);
  check_oauth_params(L, st, r, nq);
  for (i = 0; i < (size_t)no; i++) {
    if (op[i].ev) so_params_add_enc(&st->ps, op[i].name, op[i].nl, op[i].ev, op[i].evl);
    else so_params_add(&st->ps, op[i].name, op[i].nl, op[i].v, op[i].vl);
    if (!st->ps.oom) op[i].at = st->ps.items[st->ps.count - 1];
  }
  if (r->method.s == NULL) { r->method.s = "GET"; r->method.n = 3; }
  build_base(L, st, &r->method, &u);

  /* the key only now, when nothing can raise before it is wiped */
  if (key == NULL) {
    if (so_sign_key(st, &r->csecret, &r->tsecret) != 0)
      raise_reset(L, st, "%s", "not enough memory");
    key = st->key.p;
    keylen = st->key.len;
  }
  rc = so_signer_sign(sg, r->sigmethod, key, keylen, r->pem.s, r->pem.n,
                      st->base.p, st->base.len, &st->out, errbuf, sizeof errbuf);
  so_sign_wipe_key(st);
  if (rc == SO_SIG_BADKEY) raise_reset(L, st, "%s", errbuf);
  if (rc != SO_SIG_OK) {
    state_reset(st);
    return so_fail(L, "crypto", "%s", errbuf);
  }
  check_oom(L, st);
  r->siglen = st->out.len;

  /* the Authorization header after the signature in out */
  st->tmp.len = 0;
  so_pct_encode(&st->tmp, st->out.p, r->siglen);
  check_oom(L, st);
  put_header(L, st, r);
  check_oom(L, st);
  return 0;
}

/* Push {name, value} for the `oauth` list. A name of nl (size_t)-1 is a
 * C string constant: lua_pushstring finds those in Lua's string cache by
 * address, where lua_pushlstring would hash them on every call. */
static void push_pair(lua_State *L, const char *n, size_t nl, const char *v, size_t vl) {
  lua_createtable(L, 2, 0);
  if (nl == (size_t)-1) lua_pushstring(L, n);
  else lua_pushlstring(L, n, nl);
  lua_rawseti(L, -2, 1);
  lua_pushlstring(L, v, vl);
  lua_rawseti(L, -2, 2);
}

void so_sign_push_result(lua_State *L, sign_state *st, const sign_req *r) {
  int i, no = r->nop;
  const oparam *op = r->op;
  const char *arena = st->ps.arena.p;
  size_t k, nx = st->nextra;
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
    luaL_addlstring(&b, op[i].name, op[i].nl);
    luaL_addchar(&b, '=');
    luaL_addlstring(&b, arena + op[i].at.v, op[i].at.vl);
    luaL_addchar(&b, '&');
  }
  for (k = 0; k < nx; k++) {
    luaL_addlstring(&b, arena + st->extra[k].n, st->extra[k].nl);
    luaL_addchar(&b, '=');
    luaL_addlstring(&b, arena + st->extra[k].v, st->extra[k].vl);
    luaL_addchar(&b, '&');
  }
  luaL_addstring(&b, "oauth_signature=");
  luaL_addlstring(&b, st->tmp.p, st->tmp.len);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "query");
  lua_createtable(L, no + (int)nx + 1, 0);
  for (i = 0; i < no; i++) {
    push_pair(L, op[i].name, (size_t)-1, op[i].v, op[i].vl);
    lua_rawseti(L, -2, i + 1);
  }
  for (k = 0; k < nx; k++) {               /* decoded again: they were given decoded */
    const so_pair *x = &st->extra[k];
    char *d = luaL_buffinitsize(L, &b, x->nl + x->vl);
    size_t dn = so_pct_decode(d, arena + x->n, x->nl, 0);
    size_t dv = so_pct_decode(d + dn, arena + x->v, x->vl, 0);
    luaL_pushresultsize(&b, dn + dv);
    push_pair(L, lua_tostring(L, -1), dn, lua_tostring(L, -1) + dn, dv);
    lua_remove(L, -2);
    lua_rawseti(L, -2, no + (int)k + 1);
  }
  push_pair(L, "oauth_signature", (size_t)-1, st->out.p, r->siglen);
  lua_rawseti(L, -2, no + (int)nx + 1);
  lua_setfield(L, -2, "oauth");
  lua_pushlstring(L, r->nonce.s, r->nonce.n);
  lua_setfield(L, -2, "nonce");
  lua_pushlstring(L, r->ts.s, r->ts.n);
  lua_setfield(L, -2, "timestamp");
}

/* ------------------------------------------------------------------ sign */

/* sign(opts) -> { signature, base_string, authorization, query, oauth,
 * nonce, timestamp } | nil, message, "crypto". The options: sign_opts.h. */
static int l_sign(lua_State *L) {
  sign_state *st = upstate(L);
  sign_opts o;
  sign_req r;
  int n;
  luaL_checktype(L, 1, LUA_TTABLE);
  so_sign_read(L, 1, &o, 0);
  if (o.url.s == NULL) luaL_error(L, "missing option 'url'");
  if (o.consumer_key.s == NULL) luaL_error(L, "missing option 'consumer_key'");
  if (o.signature_method == SO_RSA_SHA1 && o.rsa_key.s == NULL)
    luaL_error(L, "signature_method RSA-SHA1 needs option 'rsa_key' (a PEM private key)");
  memset(&r, 0, sizeof r);
  r.method = o.method;
  r.url = o.url;
  r.ckey = o.consumer_key;
  r.token = o.token;
  r.pem = o.rsa_key;
  r.callback = o.callback;
  r.verifier = o.verifier;
  r.realm = o.realm;
  r.nonce = o.nonce;
  r.ts.s = o.timestamp.s;
  r.ts.n = o.timestamp.n;
  r.csecret = o.consumer_secret;
  r.tsecret = o.token_secret;
  r.sigmethod = o.signature_method;
  r.version = o.version;
  if (o.params) {
    lua_getfield(L, 1, "params");
    r.params_idx = lua_gettop(L);
  }
  if ((n = so_sign_fresh(L, st, &r)) != 0) return n;
  if ((n = so_sign_run(L, st, st->signer, &r)) != 0) return n;
  so_sign_push_result(L, st, &r);
  return 1;
}

/* ------------------------------------------------------------- encoding */

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

/* nonce() -> 32 hex characters from the CSPRNG | nil, message, "crypto" */
static int l_nonce(lua_State *L) {
  sign_state *st = upstate(L);
  char buf[33];
  if (so_nonce(&st->rnd, buf) != 0) {
    char err[300];
    return so_fail(L, "crypto", "%s", so_ssl_error(err, sizeof err, "nonce: RAND_bytes"));
  }
  lua_pushlstring(L, buf, 32);
  return 1;
}

/* parse_form(s) -> array of {name, value}, decoded ('+' is a space) */
static void push_pair_cb(void *ud, const char *n, size_t nl, const char *v, size_t vl) {
  lua_State *L = ud;
  push_pair(L, n, nl, v, vl);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

static int l_parse_form(lua_State *L) {
  sign_state *st = upstate(L);
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

int so_open_sign(lua_State *L) {
  so_sign_newstate(L, 1);
  luaL_setfuncs(L, sign_funcs, 1);   /* pops the state, shared as upvalue */
  return 0;
}
