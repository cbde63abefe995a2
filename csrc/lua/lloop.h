/* lloop.h -- the opener of lloop.c (core.reactor, the smugoauth.Reactor class,
 * core.monotime). */
#ifndef SO_LLOOP_H
#define SO_LLOOP_H

#include <lua.h>

/* Register the smugoauth.Reactor class, core.reactor and core.monotime. */
int so_open_loop(lua_State *L);

#endif
