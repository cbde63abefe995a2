/* poll.c -- placeholder until the epoll poller lands (opener only). */
#include "lcore.h"

void so_open_poll(lua_State *L) {
  (void)L;
}
