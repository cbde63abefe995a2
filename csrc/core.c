/* core.c -- luaopen_smugoauth_core: global library set-up, then one opener
 * per concern (signing, crypto helpers, HTTP). */
#include <stdarg.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "lcore.h"

int so_fail(lua_State *L, const char *code, const char *fmt, ...) {
  va_list ap;
  lua_pushnil(L);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_pushstring(L, code);
  return 3;
}

SO_EXPORT int luaopen_smugoauth_core(lua_State *L);

int luaopen_smugoauth_core(lua_State *L) {
  static int curl_ready = 0;   /* curl_global_init is process-wide by design */
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return luaL_error(L, "smugoauth.core: curl_global_init failed");
    curl_ready = 1;
  }
  if (!OPENSSL_init_crypto(0, NULL))
    return luaL_error(L, "smugoauth.core: OpenSSL initialisation failed");
  lua_newtable(L);
  lua_pushliteral(L, SO_VERSION);
  lua_setfield(L, -2, "version");
  so_open_sign(L);
  so_open_crypto(L);
  so_open_http(L);
  so_open_http_multi(L);
  so_open_poll(L);
  so_open_cookie(L);
  so_open_file(L);
  return 1;
}
