/* lcore.h -- the Lua-facing half of the C core: one opener per file. */
#ifndef SMUGOAUTH_LCORE_H
#define SMUGOAUTH_LCORE_H

#include <lua.h>
#include <lauxlib.h>

#include "smugoauth.h"

/* Each adds its functions to the module table on top of the stack. */
void so_open_sign(lua_State *L);
void so_open_crypto(lua_State *L);
void so_open_http(lua_State *L);
void so_open_http_multi(lua_State *L);
void so_open_poll(lua_State *L);
void so_open_cookie(lua_State *L);
void so_open_file(lua_State *L);

/* "nil, message, code": the shape every runtime failure takes in the core. */
int so_fail(lua_State *L, const char *code, const char *fmt, ...);

/* ---- http.c internals used by the c:many() driver in http_multi.c ---- */
typedef struct so_http so_http;   /* a smugoauth.Http client */
typedef struct so_xfer so_xfer;   /* one transfer: an easy handle and its buffers */
/* The open, idle client at idx, or raise. */
so_http *so_http_check(lua_State *L, int idx);
/* Check the request table at idx; misuse raises, naming fn. */
void so_http_checkreq(lua_State *L, int idx, const char *fn);
/* The client's multi handle (a CURLM *) with n idle pooled transfers. */
void *so_http_multi(lua_State *L, so_http *h, size_t n);
so_xfer *so_http_slot(so_http *h, size_t i);
/* Set x up from the request table at idx and add it to the multi handle of
 * the client at self: 1, or 0 with a { error, code } table pushed. */
int so_xfer_start(lua_State *L, int self, so_xfer *x, int idx);
/* Take the finished x out of the multi handle and push its result table. */
void so_xfer_finish(lua_State *L, int self, so_xfer *x, int curlcode);

#endif
