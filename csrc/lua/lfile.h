/* lfile.h -- the opener of lfile.c. */
#ifndef SO_LFILE_H
#define SO_LFILE_H

#include <lua.h>

/* Add the functions of lfile.c to the module table on top of the stack. */
int so_open_file(lua_State *L);

#endif
