/* auxiliar.c -- the helper unit of the Lua bindings (auxiliar.h). */
#include <stdarg.h>
#include <string.h>

#include "auxiliar.h"

/* ------------------------------------------------------------ failures */

int so_fail(lua_State *L, const char *code, const char *fmt, ...) {
  va_list ap;
  lua_pushnil(L);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_pushstring(L, code);
  return 3;
}

/* ----------------------------------------------------------- arguments */

const char *so_check_path(lua_State *L, int idx) {
  size_t n;
  const char *path = luaL_checklstring(L, idx, &n);
  luaL_argcheck(L, n > 0, idx, "empty path");
  luaL_argcheck(L, strlen(path) == n, idx, "path contains a NUL byte");
  return path;
}

/* ------------------------------------------------------------- classes */

void so_newclass(lua_State *L, const char *tname, const luaL_Reg *meta,
                 const luaL_Reg *methods, int nup) {
  int i;
  luaL_newmetatable(L, tname);                         /* ups mt */
  lua_newtable(L);                                     /* ups mt index */
  for (i = 0; i < nup; i++) lua_pushvalue(L, -(nup + 2));
  luaL_setfuncs(L, methods, nup);                      /* ups mt index */
  lua_setfield(L, -2, "__index");                      /* ups mt */
  lua_insert(L, -(nup + 1));                           /* mt ups */
  luaL_setfuncs(L, meta, nup);                         /* mt */
  lua_pop(L, 1);
}

int so_closed_error(lua_State *L, const char *tname) {
  return luaL_error(L, "attempt to use a closed %s", tname);
}

/* ------------------------------------------------------------- options */

int so_opt_next(lua_State *L, int idx, so_opt *o) {
  if (lua_next(L, idx) == 0) return 0;
  if (lua_type(L, -2) != LUA_TSTRING) {
    if (o->fn != NULL)
      luaL_error(L, "bad option key to '%s' (string expected, got %s)", o->fn,
                 luaL_typename(L, -2));
    luaL_error(L, "bad option key (string expected, got %s)", luaL_typename(L, -2));
  }
  o->name = lua_tolstring(L, -2, &o->len);
  return 1;
}

int so_opt_unknown(lua_State *L, const so_opt *o) {
  if (o->fn != NULL) return luaL_error(L, "unknown option '%s' to '%s'", o->name, o->fn);
  return luaL_error(L, "unknown option '%s'", o->name);
}

int so_opt_error(lua_State *L, const so_opt *o, const char *fmt, ...) {
  va_list ap;
  const char *detail;
  va_start(ap, fmt);
  detail = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  if (o->fn != NULL)
    return luaL_error(L, "bad option '%s' to '%s' (%s)", o->name, o->fn, detail);
  return luaL_error(L, "bad option '%s' (%s)", o->name, detail);
}

void so_opt_type(lua_State *L, const so_opt *o, int t) {
  if (t != LUA_TNONE && lua_type(L, -1) != t)
    so_opt_error(L, o, "%s expected, got %s", lua_typename(L, t), luaL_typename(L, -1));
}

void so_opt_str(lua_State *L, const so_opt *o, so_str *out) {
  (void)o;
  out->s = lua_tolstring(L, -1, &out->n);
}

void so_opt_cstr(lua_State *L, const so_opt *o, const char **out) {
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (strlen(s) != n) so_opt_error(L, o, "contains NUL");
  *out = s;
}

void so_opt_ms(lua_State *L, const so_opt *o, long *out) {
  lua_Number s = lua_tonumber(L, -1);
  long ms;
  if (!(s > 0 && s <= 86400.0 * 24))    /* 24 days of ms fit a 32-bit long */
    so_opt_error(L, o, "seconds, more than 0 and at most 24 days");
  ms = (long)(s * 1000.0 + 0.5);
  *out = ms > 0 ? ms : 1;
}

void so_opt_size(lua_State *L, const so_opt *o, size_t *out) {
  int ok;
  lua_Integer n = lua_tointegerx(L, -1, &ok);
  if (!ok || n < 1 || (lua_Unsigned)n > (lua_Unsigned)((size_t)-1 / 4))
    so_opt_error(L, o, "positive integer expected");
  *out = (size_t)n;
}

void so_opt_bool(lua_State *L, const so_opt *o, int *out) {
  (void)o;
  *out = lua_toboolean(L, -1);
}

void so_opt_present(lua_State *L, const so_opt *o, int *out) {
  (void)L;
  (void)o;
  *out = 1;
}
