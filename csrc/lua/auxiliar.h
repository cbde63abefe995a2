/* auxiliar.h -- the one helper unit of the Lua bindings (as LuaSocket's
 * auxiliar.c): the shape of runtime failures, the option reader that the
 * X-macro option lists (sign_opts.h, http_opts.h) expand into, argument
 * checks and class helpers. It includes and calls no other unit of ours:
 * every binding may use it, it uses none of them. */
#ifndef SO_AUXILIAR_H
#define SO_AUXILIAR_H

#include <stddef.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

/* ------------------------------------------------------------ failures */

/* Push nil, the formatted message (lua_pushfstring formats), code: the one
 * shape of every runtime failure of the core. Returns 3 (the values pushed). */
int so_fail(lua_State *L, const char *code, const char *fmt, ...);

/* ----------------------------------------------------------- arguments */

/* The path at idx: a non-empty string without NUL bytes (a NUL would name
 * another, shorter path), or raise. */
const char *so_check_path(lua_State *L, int idx);

/* ------------------------------------------------------------- classes */

/* Create the metatable tname (luaL_newmetatable: sets __name) with the
 * metamethods meta and an __index table holding methods; the nup values on
 * top of the stack are shared as upvalues by all of them, and popped. */
void so_newclass(lua_State *L, const char *tname, const luaL_Reg *meta,
                 const luaL_Reg *methods, int nup);
/* Raise "attempt to use a closed <tname>". */
int so_closed_error(lua_State *L, const char *tname);

/* ------------------------------------------------------------- options
 * An options table is read by one loop that an X-macro list of rows
 * expands into (see sign_opts.h):
 *
 *   so_opt o = SO_OPT_INIT("request");
 *   lua_pushnil(L);
 *   while (so_opt_next(L, idx, &o)) {
 *   #define ROW(name, type, field) \
 *     if (so_opt_is(&o, #name)) { so_opt_type(L, &o, LUA_T##type); \
 *                                 so_opt_str(L, &o, &r->field); } else
 *   #include "rows.h"
 *   #undef ROW
 *     so_opt_unknown(L, &o);
 *     lua_pop(L, 1);
 *   }
 *
 * Messages name the option and, when fn is not NULL, the function:
 * "bad option 'url' to 'request' (string expected, got number)". */

/* A string option: s is NULL when the option was not given. The bytes
 * belong to a Lua string anchored by the options table. */
typedef struct so_str {
  const char *s;
  size_t n;
} so_str;

/* The option being read: the function it was given to, and its key. */
typedef struct so_opt {
  const char *fn;               /* for messages, or NULL */
  const char *name;             /* the key (anchored by the table) */
  size_t len;
} so_opt;

#define SO_OPT_INIT(fn) { fn, NULL, 0 }

/* lua_next over the table at idx (absolute): 1 with the key in o (a key
 * that is not a string raises) and the value on top, 0 at the end. */
int so_opt_next(lua_State *L, int idx, so_opt *o);
/* Is the key being read the string literal lit? */
#define so_opt_is(o, lit) \
  ((o)->len == sizeof(lit) - 1 && memcmp((o)->name, lit, sizeof(lit) - 1) == 0)
/* Raise "unknown option 'k' [to 'fn']". */
int so_opt_unknown(lua_State *L, const so_opt *o);
/* Raise "bad option 'k' [to 'fn'] (<formatted detail>)". */
int so_opt_error(lua_State *L, const so_opt *o, const char *fmt, ...);
/* Raise unless the value on top has Lua type t ("(string expected, got
 * number)"); LUA_TNONE accepts any type (the reader checks). */
void so_opt_type(lua_State *L, const so_opt *o, int t);

/* Readers of the value on top (its type already checked). */
/* The string and its length. */
void so_opt_str(lua_State *L, const so_opt *o, so_str *out);
/* A string that holds no NUL byte (paths, header values). */
void so_opt_cstr(lua_State *L, const so_opt *o, const char **out);
/* Seconds, more than 0 and at most 24 days, as milliseconds (at least 1). */
void so_opt_ms(lua_State *L, const so_opt *o, long *out);
/* A positive integer (a size; at most SIZE_MAX / 4). */
void so_opt_size(lua_State *L, const so_opt *o, size_t *out);
/* A boolean as 0 or 1. */
void so_opt_bool(lua_State *L, const so_opt *o, int *out);
/* 1: the option is there (a table or function the caller fetches later). */
void so_opt_present(lua_State *L, const so_opt *o, int *out);

#endif
