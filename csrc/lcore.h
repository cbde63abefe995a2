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
/* lfile.c: the path at idx, a non-empty string without NUL bytes, or raise. */
const char *so_check_path(lua_State *L, int idx);

#endif
