/* lcookie.h -- the opener of lcookie.c. */
#ifndef SO_LCOOKIE_H
#define SO_LCOOKIE_H

#include <lua.h>

/* Add the functions of lcookie.c to the module table on top of the stack. */
int so_open_cookie(lua_State *L);

#endif
