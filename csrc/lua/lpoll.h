/* lpoll.h -- the opener of lpoll.c. */
#ifndef SO_LPOLL_H
#define SO_LPOLL_H

#include <lua.h>

/* Add the functions of lpoll.c to the module table on top of the stack. */
int so_open_poll(lua_State *L);

#endif
