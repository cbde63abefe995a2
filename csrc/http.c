/* http.c -- placeholder until the libcurl client lands (opener only). */
#include "lcore.h"

void so_open_http(lua_State *L) {
  (void)L;
}
