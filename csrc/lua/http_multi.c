/* http_multi.c -- c:many(requests [, concurrency]): run request tables
 * through the client's one curl multi handle, at most `concurrency` at a
 * time (connections are reused across them), and return the results in
 * input order. The transfers themselves are built by http_xfer.c, the
 * handle and its pool kept by http.c (shared internals: http_int.h); this
 * file is the top of the three: neither calls it. */
#include <curl/curl.h>

#include "http.h"
#include "http_int.h"

#define MANY_MAX 64          /* the largest concurrency */
#define MANY_DEFAULT 8

/* Set x up from the request table at idx and add it to the multi handle:
 * 1, or 0 with a { error, code } table pushed. */
static int xfer_start(lua_State *L, so_http *h, so_xfer *x, int idx) {
  so_req r;
  CURLMcode mc;
  const char *code;
  idx = lua_absindex(L, idx);
  so_xfer_readreq(L, idx, &r, "many");
  if ((code = so_xfer_prepare(L, 1, x, idx, &r, "many")) != NULL) {
    so_xfer_failprep(L, x, "many", code, 1);
    return 0;
  }
  if ((mc = curl_multi_add_handle(h->multi, x->easy)) != CURLM_OK)
    luaL_error(L, "many: curl_multi_add_handle failed: %s", curl_multi_strerror(mc));
  x->attached = 1;
  return 1;
}

/* Take the finished x out of the multi handle and push its result table. */
static void xfer_finish(lua_State *L, so_http *h, so_xfer *x, CURLcode rc) {
  if (x->attached) {
    curl_multi_remove_handle(h->multi, x->easy);
    x->attached = 0;
  }
  so_xfer_release(x);
  so_xfer_push(L, x, rc, "many", 1);
}

/* Start requests next.. on every idle slot; failures that happen before a
 * transfer starts (an unreadable body_file) are stored as results at once.
 * Stack: 1 client, 2 requests, 3 concurrency, 4 results. */
static void fill_slots(lua_State *L, so_http *h, lua_Integer *owner, size_t slots,
                       lua_Integer *next, lua_Integer n, int *active) {
  size_t s;
  for (s = 0; s < slots; s++) {
    while (owner[s] == 0 && *next <= n) {
      lua_rawgeti(L, 2, *next);
      if (xfer_start(L, h, h->pool[s], -1)) {
        owner[s] = *next;
        (*active)++;
      } else {
        lua_rawseti(L, 4, *next);       /* the { error, code } table */
      }
      lua_pop(L, 1);                    /* the request table */
      (*next)++;
    }
  }
}

/* Store the results of every finished transfer; returns how many finished. */
static int collect(lua_State *L, so_http *h, CURLM *multi, lua_Integer *owner, size_t slots,
                   int *active) {
  CURLMsg *m;
  int left, done = 0;
  while ((m = curl_multi_info_read(multi, &left)) != NULL) {
    CURLcode rc = m->data.result;
    char *priv = NULL;
    size_t s;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
    for (s = 0; s < slots && (void *)h->pool[s] != (void *)priv; s++) {}
    if (s == slots || owner[s] == 0) continue;   /* not ours: cannot happen */
    xfer_finish(L, h, h->pool[s], rc);    /* m is invalid from here */
    lua_rawseti(L, 4, owner[s]);
    owner[s] = 0;
    (*active)--;
    done++;
  }
  return done;
}

/* c:many(requests [, concurrency = 8]) -> array, in input order, of
 * res tables (as c:request returns) or { error = message, code = code } */
static int l_many(lua_State *L) {
  so_http *h = so_http_check(L, 1);
  lua_Integer conc = luaL_optinteger(L, 3, MANY_DEFAULT), n, i, next = 1;
  lua_Integer owner[MANY_MAX];          /* request each slot runs, 0 when idle */
  size_t slots, s;
  int active = 0;
  CURLM *multi;
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_argcheck(L, conc >= 1 && conc <= MANY_MAX, 3, "concurrency must be 1 to 64");
  lua_settop(L, 3);
  n = (lua_Integer)lua_rawlen(L, 2);
  for (i = 1; i <= n; i++) {            /* all misuse raises before anything runs */
    if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
      luaL_error(L, "bad request #%I to 'many' (table expected, got %s)", i,
                 luaL_typename(L, -1));
    so_req r;
    so_xfer_readreq(L, -1, &r, "many");
    lua_pop(L, 1);
  }
  slots = (size_t)(n < conc ? n : conc);
  multi = so_http_pool(L, h, slots);
  lua_createtable(L, n > 0 && n < 1 << 20 ? (int)n : 0, 0);   /* 4: results */
  for (s = 0; s < slots; s++) owner[s] = 0;
  fill_slots(L, h, owner, slots, &next, n, &active);
  while (active > 0) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK)
      return luaL_error(L, "many: curl_multi_perform failed: %s", curl_multi_strerror(mc));
    if (collect(L, h, multi, owner, slots, &active) > 0 && next <= n) {
      fill_slots(L, h, owner, slots, &next, n, &active);
      continue;                         /* start the new ones at once */
    }
    if (active > 0 && (mc = curl_multi_poll(multi, NULL, 0, 1000, NULL)) != CURLM_OK)
      return luaL_error(L, "many: curl_multi_poll failed: %s", curl_multi_strerror(mc));
  }
  return 1;
}

int so_open_http_multi(lua_State *L) {
  luaL_getmetatable(L, "smugoauth.Http");   /* made by so_open_http */
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, l_many);
  lua_setfield(L, -2, "many");
  lua_pop(L, 2);
  return 0;
}
