/* http.h -- the opener of the libcurl client: http.c (http_new and the
 * smugoauth.Http class). */
#ifndef SO_HTTP_H
#define SO_HTTP_H

#include <lua.h>

/* Register the smugoauth.Http class and core.http_new. */
int so_open_http(lua_State *L);

#endif
