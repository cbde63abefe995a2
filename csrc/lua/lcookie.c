/* lcookie.c -- the Lua binding of the sealed-cookie format and its key file
 * (lib/cookie.c): cookie_seal, cookie_open, cookie_key_file and
 * cookie_max_payload. */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "auxiliar.h"
#include "cookie.h"
#include "lcookie.h"
#include "nonce.h"
#include "privfile.h"

/* The 32-byte master key at idx, derived into k: 0, or -1 when OpenSSL
 * failed (a key of the wrong length raises). */
static int check_keys(lua_State *L, int idx, so_cookie_keys *k) {
  size_t kl;
  const char *key = luaL_checklstring(L, idx, &kl);
  luaL_argcheck(L, kl == SO_COOKIE_KEY, idx, "key must be 32 bytes");
  return so_cookie_derive(k, (const unsigned char *)key);
}

/* A cookie name at idx: 1-256 RFC 6265 token characters (raises otherwise). */
static const char *check_name(lua_State *L, int idx, size_t *nl) {
  const char *name = luaL_checklstring(L, idx, nl);
  size_t i;
  luaL_argcheck(L, *nl > 0 && *nl <= SO_COOKIE_NAME_MAX, idx, "name must be 1 to 256 bytes");
  for (i = 0; i < *nl; i++) {
    unsigned char c = (unsigned char)name[i];
    luaL_argcheck(L, c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?={}", c), idx,
                  "name must be a cookie token");
  }
  return name;
}

/* What a reason of so_cookie_open/so_cookie_seal means, for the message. */
static const char *reason_text(const char *why) {
  static const char *const texts[][2] = {
    { "too_long", "the value is too long" }, { "malformed", "the value is malformed" },
    { "bad_name", "bad cookie name" }, { "bad_mac", "the value does not verify" },
    { "bad_version", "unknown format version" }, { "expired", "the value has expired" },
    { "bad_expiry", "bad expiry" }, { "too_large", "the payload is too large" },
    { "crypto", "OpenSSL failed" },
  };
  size_t i;
  for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
    if (strcmp(texts[i][0], why) == 0) return texts[i][1];
  return why;
}

/* cookie_seal(key32, name, payload, expires_at) -> value | nil, message, "crypto" */
static int l_cookie_seal(lua_State *L) {
  so_cookie_keys k;
  size_t nl, pl, vl;
  const char *name = check_name(L, 2, &nl);
  const char *payload = luaL_checklstring(L, 3, &pl);
  lua_Integer exp = luaL_checkinteger(L, 4);
  unsigned char iv[SO_COOKIE_IV];
  char out[SO_COOKIE_MAX + 1];
  const char *why;
  luaL_argcheck(L, exp > 0, 4, "expiry must be a positive time");
  luaL_argcheck(L, pl <= so_cookie_max_payload(), 3, "payload too large for a cookie");
  if (check_keys(L, 1, &k) != 0) return so_fail(L, "crypto", "cookie_seal: key derivation failed");
  if (so_random(iv, SO_COOKIE_IV) != 0) {
    so_cookie_wipe(&k);
    ERR_clear_error();
    return so_fail(L, "crypto", "cookie_seal: the CSPRNG failed");
  }
  why = so_cookie_seal(&k, name, nl, (const unsigned char *)payload, pl, (int64_t)exp, iv,
                       out, &vl);
  so_cookie_wipe(&k);
  if (why != NULL) return so_fail(L, "crypto", "cookie_seal: %s", reason_text(why));
  lua_pushlstring(L, out, vl);
  return 1;
}

/* cookie_open(key32, name, value [, now]) -> payload | nil, message, code
 * code: "too_long", "malformed", "bad_mac" (not sealed with this key for this
 * name), "bad_version", "expired", "crypto" */
static int l_cookie_open(lua_State *L) {
  so_cookie_keys k;
  size_t nl, vl, pl;
  const char *name = check_name(L, 2, &nl);
  const char *value = luaL_checklstring(L, 3, &vl);
  lua_Integer now = luaL_opt(L, luaL_checkinteger, 4, (lua_Integer)time(NULL));
  unsigned char out[SO_COOKIE_MAX];
  const char *why;
  if (check_keys(L, 1, &k) != 0) return so_fail(L, "crypto", "cookie_open: key derivation failed");
  why = so_cookie_open(&k, name, nl, value, vl, (int64_t)now, out, &pl);
  so_cookie_wipe(&k);
  if (why != NULL) return so_fail(L, why, "cookie_open: %s", reason_text(why));
  lua_pushlstring(L, (const char *)out, pl);
  OPENSSL_cleanse(out, pl);
  return 1;
}

/* cookie_key_file(path) -> key32, created | nil, message, "io"
 * Reads the key from a private file (privfile.h: 0600, ours, not a symlink,
 * in a directory no one else may write), or creates one with a fresh key
 * when there is none. */
static int l_cookie_key_file(lua_State *L) {
  const char *path = so_check_path(L, 1);
  unsigned char key[SO_COOKIE_KEY];
  char err[SO_PRIV_MSG_MAX];
  int created = 0;
  if (so_cookie_key_file(path, key, &created, err, sizeof err) != 0)
    return so_fail(L, "io", "%s", err);
  lua_pushlstring(L, (const char *)key, SO_COOKIE_KEY);
  OPENSSL_cleanse(key, sizeof key);
  lua_pushboolean(L, created);
  return 2;
}

static const luaL_Reg cookie_funcs[] = {
  {"cookie_seal", l_cookie_seal},
  {"cookie_open", l_cookie_open},
  {"cookie_key_file", l_cookie_key_file},
  {NULL, NULL}
};

int so_open_cookie(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)so_cookie_max_payload());
  lua_setfield(L, -2, "cookie_max_payload");
  luaL_setfuncs(L, cookie_funcs, 0);
  return 0;
}
