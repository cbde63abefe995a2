/* http.h -- the openers of the libcurl client: http.c (http_new and the
 * smugoauth.Http class) and http_multi.c (its many() method, added to the
 * class that so_open_http made). */
#ifndef SO_HTTP_H
#define SO_HTTP_H

#include <lua.h>

/* Register the smugoauth.Http class and core.http_new. */
int so_open_http(lua_State *L);
/* Add many() to the smugoauth.Http class (after so_open_http). */
int so_open_http_multi(lua_State *L);

#endif
