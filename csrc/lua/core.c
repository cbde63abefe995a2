/* core.c -- luaopen_smugoauth_core: the libraries' global set-up, then one
 * opener per binding, as LuaSocket's luasocket.c does with its mod[] table.
 * Each opener adds its functions and classes to the module table on top of
 * the stack; none calls back into this file. */
#include <curl/curl.h>
#include <openssl/crypto.h>

#include <lua.h>
#include <lauxlib.h>

#include "common.h"
#include "http.h"
#include "lcookie.h"
#include "lcrypto.h"
#include "lfile.h"
#include "lloop.h"
#include "lsign.h"

static const luaL_Reg mod[] = {
  {"sign", so_open_sign},               /* sign, base_string, percent_*, parse_form, nonce */
  {"signer", so_open_signer},           /* signer and the Signer class */
  {"crypto", so_open_crypto},           /* hmac, digest(_file, _new), equal, random_bytes, b64 */
  {"http", so_open_http},               /* http_new and the Http class */
  {"loop", so_open_loop},               /* reactor: epoll + libcurl's multi socket API; monotime */
  {"cookie", so_open_cookie},           /* cookie_seal, cookie_open, cookie_key_file */
  {"file", so_open_file},               /* read_private, write_private, commit, ... */
  {NULL, NULL}
};

SO_EXPORT int luaopen_smugoauth_core(lua_State *L);

int luaopen_smugoauth_core(lua_State *L) {
  static int curl_ready = 0;   /* curl_global_init is process-wide by design */
  int i;
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
  for (i = 0; mod[i].name != NULL; i++) mod[i].func(L);
  return 1;
}
