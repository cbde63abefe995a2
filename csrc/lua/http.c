/* http.c -- the libcurl HTTP client object: smugoauth.Http (one reusable
 * easy handle for c:request; its settings are also what the loop's reactor,
 * lloop.c, runs concurrent transfers with), its options and methods. A
 * transfer itself (callbacks, request tables, curl options, results) is
 * http_xfer.c, which this file calls; what they share is declared in
 * http_int.h, the options in http_opts.h. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "http.h"
#include "http_int.h"

#define HTTP_MT "smugoauth.Http"

/* ------------------------------------------------------------------ client */

/* The open, idle client at idx, or raise. */
so_http *so_http_check(lua_State *L, int idx) {
  so_http *h = luaL_checkudata(L, idx, HTTP_MT);
  if (h->closed) so_closed_error(L, HTTP_MT);
  if (h->busy) luaL_error(L, HTTP_MT " is busy (used from its own on_progress)");
  return h;
}

/* c:request(req) -> res | nil, message, code */
static int http_request(lua_State *L) {
  so_http *h = so_http_check(L, 1);
  so_xfer *x = &h->main;
  so_req r;
  CURLcode rc;
  const char *code;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  so_xfer_readreq(L, 2, &r, "request");
  lua_getfield(L, 2, "on_progress");                   /* 3 */
  lua_getfield(L, 2, "on_data");                       /* 4 */
  luaL_checkstack(L, 8, NULL);                         /* room for the callbacks */
  if ((code = so_xfer_prepare(L, 1, x, 2, &r, "request")) != NULL)
    return so_xfer_failprep(L, x, "request", code, 0);
  x->L = L;
  x->progress = r.progress ? 3 : 0;
  x->data = r.on_data ? 4 : 0;
  h->busy = 1;
  rc = curl_easy_perform(x->easy);
  h->busy = 0;
  so_xfer_release(x);                                  /* FILE * closed, slist freed */
  if (x->cb_failed) {                                  /* a callback raised: error on top */
    so_xfer_reset(x);
    return lua_error(L);
  }
  return so_xfer_push(L, x, rc, "request", 0);
}

/* c:close(): free the handles; idempotent (also __gc and __close). */
static int http_close(lua_State *L) {
  so_http *h = luaL_checkudata(L, 1, HTTP_MT);
  if (h->closed) return 0;
  if (h->busy) return luaL_error(L, "cannot close a busy " HTTP_MT " (from its own on_progress)");
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

/* What http_new's options table holds (its SO_HTTP_OPT rows, http_opts.h). */
typedef struct http_newopts {
  const char *ca_file, *user_agent;
  long timeout_ms, connect_ms;
  size_t max_body;
} http_newopts;

/* Read the option on top of the stack (its key in op) into o; an unknown
 * key raises. Expanded from the SO_HTTP_OPT rows. */
static void http_option(lua_State *L, const so_opt *op, http_newopts *o) {
#define SO_HTTP_OPT(name, type, reader, field)   \
  if (so_opt_is(op, #name)) {                    \
    so_opt_type(L, op, LUA_T##type);             \
    reader(L, op, &o->field);                    \
    return;                                      \
  }
#include "http_opts.h"
  so_opt_unknown(L, op);
}

/* http_new([opts]) -> a smugoauth.Http client. Options (defaults):
 *   ca_file = nil (system CA bundle)    timeout = 30 (seconds, total)
 *   connect_timeout = 10 (seconds)      max_body = 64 MiB (response bytes)
 *   user_agent = "smugoauth/<version>"
 * (libcurl failing to make a handle is an out-of-memory condition: it raises.) */
static int l_http_new(lua_State *L) {
  so_http *h;
  http_newopts o;
  o.ca_file = NULL;
  o.user_agent = "smugoauth/" SO_VERSION;
  o.timeout_ms = 30000;
  o.connect_ms = 10000;
  o.max_body = (size_t)64 << 20;
  if (!lua_isnoneornil(L, 1)) {
    so_opt op = SO_OPT_INIT("http_new");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (so_opt_next(L, 1, &op)) {
      http_option(L, &op, &o);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 1);                                     /* anchors the option strings */
  h = lua_newuserdatauv(L, sizeof *h, 2);               /* 2 */
  memset(h, 0, sizeof *h);
  so_xfer_init(&h->main);
  h->timeout_ms = o.timeout_ms;
  h->connect_ms = o.connect_ms;
  h->max_body = o.max_body;
  luaL_setmetatable(L, HTTP_MT);
  lua_pushstring(L, o.user_agent);
  lua_setiuservalue(L, 2, UV_AGENT);
  if (o.ca_file != NULL) {
    lua_pushstring(L, o.ca_file);
    lua_setiuservalue(L, 2, UV_CAFILE);
  }
  if ((h->main.easy = curl_easy_init()) == NULL)
    return luaL_error(L, "http_new: curl_easy_init failed");
  return 1;
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

int so_open_http(lua_State *L) {
  so_newclass(L, HTTP_MT, http_meta, http_methods, 0);
  lua_pushcfunction(L, l_http_new);
  lua_setfield(L, -2, "http_new");
  return 0;
}
