/* lcrypto.c -- small crypto helpers for the Lua front: HMAC, digests (of a
 * string, of a file, and the Digest object fed piece by piece), constant-time
 * comparison, random bytes, base64. (Sealed values are the cookie format's:
 * lcookie.c.) */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#include "auxiliar.h"
#include "encode.h"
#include "lcrypto.h"
#include "sslerr.h"

static const EVP_MD *check_digest(lua_State *L, int idx) {
  static const char *const names[] = { "sha1", "sha256", "sha512", "md5", NULL };
  switch (luaL_checkoption(L, idx, NULL, names)) {
  case 0: return EVP_sha1();
  case 1: return EVP_sha256();
  case 2: return EVP_sha512();
  default: return EVP_md5();
  }
}

/* nil, "<what>: <OpenSSL's reason>", "crypto" (the error queue drained). */
static int fail_ssl(lua_State *L, const char *what) {
  char buf[300];
  return so_fail(L, "crypto", "%s", so_ssl_error(buf, sizeof buf, what));
}

/* hmac(digest, key, msg) -> raw MAC | nil, message, "crypto";
 * digest: "sha1" | "sha256" | "sha512" | "md5" */
static int l_hmac(lua_State *L) {
  const EVP_MD *md = check_digest(L, 1);
  size_t kl, ml;
  const char *k = luaL_checklstring(L, 2, &kl);
  const char *m = luaL_checklstring(L, 3, &ml);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int ol = 0;
  if (HMAC(md, k, (int)kl, (const unsigned char *)m, ml, out, &ol) == NULL)
    return fail_ssl(L, "hmac");
  lua_pushlstring(L, (const char *)out, ol);
  return 1;
}

/* digest(name, s) -> raw digest | nil, message, "crypto" */
static int l_digest(lua_State *L) {
  const EVP_MD *md = check_digest(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int ol = 0;
  if (!EVP_Digest(s, n, out, &ol, md, NULL)) return fail_ssl(L, "digest");
  lua_pushlstring(L, (const char *)out, ol);
  return 1;
}

/* digest_file(name, path) -> raw digest, size | nil, message, code ("io",
 * or "crypto" when OpenSSL failed) */
static int l_digest_file(lua_State *L) {
  const EVP_MD *md = check_digest(L, 1);
  const char *path = so_check_path(L, 2);      /* a NUL byte raises */
  unsigned char out[EVP_MAX_MD_SIZE], chunk[65536];
  unsigned int ol = 0;
  size_t got;
  lua_Integer total = 0;
  EVP_MD_CTX *ctx;
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) return so_fail(L, "io", "%s: cannot open for reading", path);
  if ((ctx = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex(ctx, md, NULL)) {
    fclose(fp);
    EVP_MD_CTX_free(ctx);
    return fail_ssl(L, "digest_file");
  }
  while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0) {
    if (!EVP_DigestUpdate(ctx, chunk, got)) break;
    total += (lua_Integer)got;
  }
  if (ferror(fp)) {
    fclose(fp);
    EVP_MD_CTX_free(ctx);
    return so_fail(L, "io", "%s: read error", path);
  }
  fclose(fp);
  if (got > 0 || !EVP_DigestFinal_ex(ctx, out, &ol)) {   /* an update failed, or the final */
    EVP_MD_CTX_free(ctx);
    return fail_ssl(L, "digest_file");
  }
  EVP_MD_CTX_free(ctx);
  lua_pushlstring(L, (const char *)out, ol);
  lua_pushinteger(L, total);
  return 2;
}

/* equal(a, b) -> boolean, in time independent of where they differ */
static int l_equal(lua_State *L) {
  size_t al, bl;
  const char *a = luaL_checklstring(L, 1, &al);
  const char *b = luaL_checklstring(L, 2, &bl);
  lua_pushboolean(L, al == bl && CRYPTO_memcmp(a, b, al) == 0);
  return 1;
}

/* random_bytes(n) -> n bytes from the CSPRNG | nil, message, "crypto" */
static int l_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_Buffer b;
  char *p;
  luaL_argcheck(L, n >= 0 && n <= 1 << 20, 1, "must be between 0 and 1 MiB");
  p = luaL_buffinitsize(L, &b, (size_t)n);
  if (n > 0 && RAND_bytes((unsigned char *)p, (int)n) != 1) {
    luaL_pushresultsize(&b, 0);
    lua_pop(L, 1);
    return fail_ssl(L, "random_bytes: RAND_bytes");
  }
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

/* b64encode(s [, url]) -> base64 (url: base64url without padding) */
static int l_b64encode(lua_State *L) {
  size_t n, o, i;
  const char *s = luaL_checklstring(L, 1, &n);
  int url = lua_toboolean(L, 2);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, SO_B64_LEN(n));
  o = so_b64_encode(p, (const unsigned char *)s, n);
  if (url) {
    while (o > 0 && p[o - 1] == '=') o--;
    for (i = 0; i < o; i++) p[i] = p[i] == '+' ? '-' : p[i] == '/' ? '_' : p[i];
  }
  luaL_pushresultsize(&b, o);
  return 1;
}

/* b64decode(s [, url]) -> bytes | nil, message, "malformed" when s is not
 * (strict, canonical) base64; url: base64url, padding optional either way */
static int l_b64decode(lua_State *L) {
  size_t n, o;
  const char *s = luaL_checklstring(L, 1, &n);
  int url = lua_toboolean(L, 2);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n / 4 * 3 + 3);
  o = so_b64_decode((unsigned char *)p, s, n, url);
  if (o == (size_t)-1) {
    luaL_pushresultsize(&b, 0);
    lua_pop(L, 1);
    return so_fail(L, "malformed", "b64decode: not valid %s", url ? "base64url" : "base64");
  }
  luaL_pushresultsize(&b, o);
  return 1;
}

/* ------------------------------------------------------------ Digest */

#define DIGEST_MT "smugoauth.Digest"

/* A digest fed piece by piece: ctx is NULL once finished or closed. */
typedef struct digest_obj {
  EVP_MD_CTX *ctx;
} digest_obj;

/* close(), __gc and __close: free and mark closed; idempotent. */
static int digest_close(lua_State *L) {
  digest_obj *o = luaL_checkudata(L, 1, DIGEST_MT);
  EVP_MD_CTX_free(o->ctx);
  o->ctx = NULL;
  return 0;
}

static digest_obj *check_open_digest(lua_State *L) {
  digest_obj *o = luaL_checkudata(L, 1, DIGEST_MT);
  if (o->ctx == NULL) so_closed_error(L, DIGEST_MT);
  return o;
}

/* digest_new(name) -> Digest | nil, message, "crypto";
 * name: "sha1" | "sha256" | "sha512" | "md5" */
static int l_digest_new(lua_State *L) {
  const EVP_MD *md = check_digest(L, 1);
  /* the userdata first, so the context cannot leak on a raise */
  digest_obj *o = lua_newuserdatauv(L, sizeof *o, 0);
  o->ctx = NULL;
  luaL_setmetatable(L, DIGEST_MT);
  if ((o->ctx = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex(o->ctx, md, NULL)) {
    EVP_MD_CTX_free(o->ctx);
    o->ctx = NULL;
    return fail_ssl(L, "digest_new");
  }
  return 1;
}

/* d:update(s) -> d | nil, message, "crypto" (the digest is then closed) */
static int l_digest_update(lua_State *L) {
  digest_obj *o = check_open_digest(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  if (!EVP_DigestUpdate(o->ctx, s, n)) {
    EVP_MD_CTX_free(o->ctx);
    o->ctx = NULL;
    return fail_ssl(L, "Digest:update");
  }
  lua_settop(L, 1);
  return 1;
}

/* d:final() -> raw digest of everything fed | nil, message, "crypto"; the
 * digest is closed either way */
static int l_digest_final(lua_State *L) {
  digest_obj *o = check_open_digest(L);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int ol = 0;
  int ok = EVP_DigestFinal_ex(o->ctx, out, &ol);
  EVP_MD_CTX_free(o->ctx);
  o->ctx = NULL;
  if (!ok) return fail_ssl(L, "Digest:final");
  lua_pushlstring(L, (const char *)out, ol);
  return 1;
}

/* tostring(d): "smugoauth.Digest (md5)" or "... (closed)" */
static int digest_tostring(lua_State *L) {
  digest_obj *o = luaL_checkudata(L, 1, DIGEST_MT);
  if (o->ctx == NULL) lua_pushliteral(L, DIGEST_MT " (closed)");
  else lua_pushfstring(L, DIGEST_MT " (%s)", OBJ_nid2sn(EVP_MD_CTX_type(o->ctx)));
  return 1;
}

static const luaL_Reg digest_methods[] = {
  {"update", l_digest_update},
  {"final", l_digest_final},
  {"close", digest_close},
  {NULL, NULL}
};

static const luaL_Reg digest_meta[] = {
  {"__gc", digest_close},
  {"__close", digest_close},
  {"__tostring", digest_tostring},
  {NULL, NULL}
};

static const luaL_Reg crypto_funcs[] = {
  {"hmac", l_hmac},
  {"digest", l_digest},
  {"digest_new", l_digest_new},
  {"digest_file", l_digest_file},
  {"equal", l_equal},
  {"random_bytes", l_random_bytes},
  {"b64encode", l_b64encode},
  {"b64decode", l_b64decode},
  {NULL, NULL}
};

int so_open_crypto(lua_State *L) {
  so_newclass(L, DIGEST_MT, digest_meta, digest_methods, 0);
  luaL_setfuncs(L, crypto_funcs, 0);
  return 0;
}
