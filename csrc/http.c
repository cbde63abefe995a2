/* http.c -- the libcurl HTTP client object: smugoauth.Http (one reusable
 * easy handle for c:request, a multi handle and a pool of transfers for
 * c:many), its options and methods. A transfer itself (callbacks, request
 * tables, curl options, results) is http_xfer.c; the c:many() driver is
 * http_multi.c; what they share is declared in http_int.h. */
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

#define HTTP_MT "smugoauth.Http"

/* ------------------------------------------------------- option helpers */

/* The index in names of the option key at -2; anything else raises. */
int so_opt_field(lua_State *L, const char *const *names, const char *fn) {
  const char *k;
  int i;
  if (lua_type(L, -2) != LUA_TSTRING)
    return luaL_error(L, "bad option key to '%s' (string expected, got %s)", fn,
                      luaL_typename(L, -2));
  k = lua_tostring(L, -2);
  for (i = 0; names[i] != NULL; i++)
    if (strcmp(names[i], k) == 0) return i;
  return luaL_error(L, "unknown option '%s' to '%s'", k, fn);
}

/* Raise unless the option value at -1 has Lua type t. */
void so_opt_type(lua_State *L, int t, const char *k, const char *fn) {
  if (lua_type(L, -1) != t)
    luaL_error(L, "bad option '%s' to '%s' (%s expected, got %s)", k, fn,
               lua_typename(L, t), luaL_typename(L, -1));
}

/* The option value at -1 as a string and its length. */
const char *so_opt_string(lua_State *L, const char *k, const char *fn, size_t *len) {
  so_opt_type(L, LUA_TSTRING, k, fn);
  return lua_tolstring(L, -1, len);
}

/* A C string without NUL bytes (paths, CA file, user agent). */
const char *so_opt_cstring(lua_State *L, const char *k, const char *fn) {
  size_t n;
  const char *s = so_opt_string(L, k, fn, &n);
  if (strlen(s) != n) luaL_error(L, "bad option '%s' to '%s' (contains NUL)", k, fn);
  return s;
}

/* Seconds (may be fractional) as milliseconds, at least 1. */
long so_opt_ms(lua_State *L, const char *k, const char *fn) {
  lua_Number s;
  long ms;
  so_opt_type(L, LUA_TNUMBER, k, fn);
  s = lua_tonumber(L, -1);
  if (!(s > 0 && s <= 86400.0 * 24))    /* 24 days of ms fit a 32-bit long */
    luaL_error(L, "bad option '%s' to '%s' (seconds, more than 0 and at most 24 days)", k, fn);
  ms = (long)(s * 1000.0 + 0.5);
  return ms > 0 ? ms : 1;
}

/* ------------------------------------------------------------------ client */

/* The open, idle client at idx, or raise. */
so_http *so_http_check(lua_State *L, int idx) {
  so_http *h = luaL_checkudata(L, idx, HTTP_MT);
  if (h->closed) luaL_error(L, "attempt to use a closed " HTTP_MT);
  if (h->busy) luaL_error(L, HTTP_MT " is busy (used from its own on_progress)");
  return h;
}

/* Take x out of the multi handle (if in) and free its request state. */
static void xfer_detach(so_http *h, so_xfer *x) {
  if (x->attached) {
    curl_multi_remove_handle(h->multi, x->easy);
    x->attached = 0;
  }
  so_xfer_reset(x);
}

/* c:request(req) -> res | nil, message, code */
static int http_request(lua_State *L) {
  so_http *h = so_http_check(L, 1);
  so_xfer *x = &h->main;
  so_req r;
  CURLcode rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  so_xfer_readreq(L, 2, &r, "request");
  if (r.progress) lua_getfield(L, 2, "on_progress");   /* 3 */
  luaL_checkstack(L, 8, NULL);                         /* room for on_progress */
  if (so_xfer_prepare(L, 1, x, 2, &r, "request") != 0)
    return so_xfer_failprep(L, x, "request", 0);
  if (r.progress) {
    x->L = L;
    x->progress = 3;
  }
  h->busy = 1;
  rc = curl_easy_perform(x->easy);
  h->busy = 0;
  so_xfer_release(x);                                  /* FILE * closed, slist freed */
  if (x->cb_failed) {                                  /* on_progress raised: error on top */
    so_xfer_reset(x);
    return lua_error(L);
  }
  return so_xfer_push(L, x, rc, "request", 0);
}

/* c:close(): free the handles; idempotent (also __gc and __close). */
static int http_close(lua_State *L) {
  so_http *h = luaL_checkudata(L, 1, HTTP_MT);
  size_t i;
  if (h->closed) return 0;
  if (h->busy) return luaL_error(L, "cannot close a busy " HTTP_MT " (from its own on_progress)");
  for (i = 0; i < h->npool; i++) {
    xfer_detach(h, h->pool[i]);
    so_xfer_free(h->pool[i]);
    free(h->pool[i]);
  }
  free(h->pool);
  h->pool = NULL;
  h->npool = 0;
  if (h->multi != NULL) { curl_multi_cleanup(h->multi); h->multi = NULL; }
  so_xfer_free(&h->main);
  h->closed = 1;
  return 0;
}

/* tostring(c): "smugoauth.Http (0x...)" or "smugoauth.Http (closed)". */
static int http_tostring(lua_State *L) {
  so_http *h = luaL_checkudata(L, 1, HTTP_MT);
  if (h->closed) lua_pushliteral(L, HTTP_MT " (closed)");
  else lua_pushfstring(L, HTTP_MT " (%p)", (void *)h);
  return 1;
}

/* The keys of http_new's options table, in l_http_new's switch order. */
static const char *const new_fields[] = {
  "ca_file", "timeout", "connect_timeout", "max_body", "user_agent", NULL
};

/* http_new([opts]) -> a smugoauth.Http client. Options (defaults):
 *   ca_file = nil (system CA bundle)    timeout = 30 (seconds, total)
 *   connect_timeout = 10 (seconds)      max_body = 64 MiB (response bytes)
 *   user_agent = "smugoauth/<version>" */
static int l_http_new(lua_State *L) {
  so_http *h;
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  h = lua_newuserdatauv(L, sizeof *h, 2);               /* 2 */
  memset(h, 0, sizeof *h);
  so_xfer_init(&h->main);
  h->timeout_ms = 30000;
  h->connect_ms = 10000;
  h->max_body = (size_t)64 << 20;
  luaL_setmetatable(L, HTTP_MT);
  lua_pushliteral(L, "smugoauth/" SO_VERSION);
  lua_setiuservalue(L, 2, UV_AGENT);
  if (lua_istable(L, 1)) {
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
      int f = so_opt_field(L, new_fields, "http_new");
      const char *k = new_fields[f];
      switch (f) {
      case 0: so_opt_cstring(L, k, "http_new"); lua_pushvalue(L, -1);
              lua_setiuservalue(L, 2, UV_CAFILE); break;
      case 1: h->timeout_ms = so_opt_ms(L, k, "http_new"); break;
      case 2: h->connect_ms = so_opt_ms(L, k, "http_new"); break;
      case 3: {
        lua_Integer n;
        int ok;
        so_opt_type(L, LUA_TNUMBER, k, "http_new");
        n = lua_tointegerx(L, -1, &ok);
        if (!ok || n < 1 || (lua_Unsigned)n > (lua_Unsigned)((size_t)-1 / 4))
          luaL_error(L, "bad option 'max_body' to 'http_new' (positive integer expected)");
        h->max_body = (size_t)n;
        break;
      }
      default: so_opt_cstring(L, k, "http_new"); lua_pushvalue(L, -1);
               lua_setiuservalue(L, 2, UV_AGENT); break;
      }
      lua_pop(L, 1);
    }
  }
  if ((h->main.easy = curl_easy_init()) == NULL)
    return luaL_error(L, "http_new: curl_easy_init failed");
  return 1;
}

/* ----------------------------------------------------------- many() support */

/* Check the request table at idx (for many(), before anything runs). */
void so_http_checkreq(lua_State *L, int idx, const char *fn) {
  so_req r;
  so_xfer_readreq(L, idx, &r, fn);
}

/* The multi handle, created on first use, with n idle pooled transfers. */
void *so_http_multi(lua_State *L, so_http *h, size_t n) {
  size_t i;
  for (i = 0; i < h->npool; i++) xfer_detach(h, h->pool[i]);  /* after an earlier raise */
  if (h->multi == NULL && (h->multi = curl_multi_init()) == NULL)
    luaL_error(L, "many: curl_multi_init failed");
  if (n > h->npool) {
    so_xfer **p = realloc(h->pool, n * sizeof *p);
    if (p == NULL) luaL_error(L, "not enough memory");
    h->pool = p;
    while (h->npool < n) {
      so_xfer *x = malloc(sizeof *x);
      if (x == NULL) luaL_error(L, "not enough memory");
      so_xfer_init(x);
      h->pool[h->npool++] = x;
      if ((x->easy = curl_easy_init()) == NULL) luaL_error(L, "many: curl_easy_init failed");
    }
  }
  return h->multi;
}

/* Pooled transfer i. */
so_xfer *so_http_slot(so_http *h, size_t i) {
  return h->pool[i];
}

/* Set x up from the request table at idx and add it to the multi handle:
 * 1, or 0 with a { error, code } table pushed. */
int so_xfer_start(lua_State *L, int self, so_xfer *x, int idx) {
  so_http *h = lua_touserdata(L, self);
  so_req r;
  CURLMcode mc;
  idx = lua_absindex(L, idx);
  so_xfer_readreq(L, idx, &r, "many");
  if (so_xfer_prepare(L, self, x, idx, &r, "many") != 0) {
    so_xfer_failprep(L, x, "many", 1);
    return 0;
  }
  if ((mc = curl_multi_add_handle(h->multi, x->easy)) != CURLM_OK)
    luaL_error(L, "many: curl_multi_add_handle failed: %s", curl_multi_strerror(mc));
  x->attached = 1;
  return 1;
}

/* Take the finished x out of the multi handle and push its result table. */
void so_xfer_finish(lua_State *L, int self, so_xfer *x, int curlcode) {
  so_http *h = lua_touserdata(L, self);
  if (x->attached) {
    curl_multi_remove_handle(h->multi, x->easy);
    x->attached = 0;
  }
  so_xfer_release(x);
  so_xfer_push(L, x, (CURLcode)curlcode, "many", 1);
}

/* ------------------------------------------------------------------ opener */

static const luaL_Reg http_methods[] = {
  {"request", http_request},
  {"close", http_close},
  {NULL, NULL}
};

static const luaL_Reg http_meta[] = {
  {"__gc", http_close},
  {"__close", http_close},
  {"__tostring", http_tostring},
  {NULL, NULL}
};

/* Register the smugoauth.Http metatable and core.http_new. */
void so_open_http(lua_State *L) {
  luaL_newmetatable(L, HTTP_MT);
  luaL_setfuncs(L, http_meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, http_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_http_new);
  lua_setfield(L, -2, "http_new");
}
