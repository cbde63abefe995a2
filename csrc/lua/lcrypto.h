/* lcrypto.h -- the opener of lcrypto.c. */
#ifndef SO_LCRYPTO_H
#define SO_LCRYPTO_H

#include <lua.h>

/* Add the functions of lcrypto.c to the module table on top of the stack. */
int so_open_crypto(lua_State *L);

#endif
