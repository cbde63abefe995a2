/* lcrypto.c -- small crypto helpers for the Lua front: HMAC, digests,
 * constant-time comparison, base64, random bytes, AES-256-GCM sealing. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "lcore.h"

static const EVP_MD *check_digest(lua_State *L, int idx) {
  static const char *const names[] = { "sha1", "sha256", "sha512", "md5", NULL };
  switch (luaL_checkoption(L, idx, NULL, names)) {
  case 0: return EVP_sha1();
  case 1: return EVP_sha256();
  case 2: return EVP_sha512();
  default: return EVP_md5();
  }
}

static int raise_ssl(lua_State *L, const char *what) {
  char buf[300];
  so_ssl_error(buf, sizeof buf, what);
  return luaL_error(L, "%s", buf);
}

/* hmac(digest, key, msg) -> raw MAC; digest: "sha1" | "sha256" | "sha512" */
static int l_hmac(lua_State *L) {
  const EVP_MD *md = check_digest(L, 1);
  size_t kl, ml;
  const char *k = luaL_checklstring(L, 2, &kl);
  const char *m = luaL_checklstring(L, 3, &ml);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int ol = 0;
  if (HMAC(md, k, (int)kl, (const unsigned char *)m, ml, out, &ol) == NULL)
    return raise_ssl(L, "hmac");
  lua_pushlstring(L, (const char *)out, ol);
  return 1;
}

/* digest(name, s) -> raw digest */
static int l_digest(lua_State *L) {
  const EVP_MD *md = check_digest(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int ol = 0;
  if (!EVP_Digest(s, n, out, &ol, md, NULL)) return raise_ssl(L, "digest");
  lua_pushlstring(L, (const char *)out, ol);
  return 1;
}

/* digest_file(name, path) -> raw digest, size | nil, message, "io" */
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
    return raise_ssl(L, "digest_file");
  }
  while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0) {
    EVP_DigestUpdate(ctx, chunk, got);
    total += (lua_Integer)got;
  }
  if (ferror(fp)) {
    fclose(fp);
    EVP_MD_CTX_free(ctx);
    return so_fail(L, "io", "%s: read error", path);
  }
  fclose(fp);
  EVP_DigestFinal_ex(ctx, out, &ol);
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

/* random_bytes(n) -> n bytes from the CSPRNG */
static int l_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_Buffer b;
  char *p;
  luaL_argcheck(L, n >= 0 && n <= 1 << 20, 1, "must be between 0 and 1 MiB");
  p = luaL_buffinitsize(L, &b, (size_t)n);
  if (n > 0 && RAND_bytes((unsigned char *)p, (int)n) != 1) return raise_ssl(L, "RAND_bytes");
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

/* b64decode(s [, url]) -> bytes | nil when s is not valid base64 */
static int l_b64decode(lua_State *L) {
  size_t n, o;
  const char *s = luaL_checklstring(L, 1, &n);
  int url = lua_toboolean(L, 2);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n / 4 * 3 + 3);
  o = so_b64_decode((unsigned char *)p, s, n, url);
  if (o == (size_t)-1) {
    luaL_pushresultsize(&b, 0);
    lua_pushnil(L);
    return 1;
  }
  luaL_pushresultsize(&b, o);
  return 1;
}

#define GCM_IV 12
#define GCM_TAG 16

/* seal(key32, plaintext [, aad]) -> iv .. ciphertext .. tag (AES-256-GCM) */
static int l_seal(lua_State *L) {
  size_t kl, pl, al = 0;
  const char *k = luaL_checklstring(L, 1, &kl);
  const char *pt = luaL_checklstring(L, 2, &pl);
  const char *aad = luaL_optlstring(L, 3, "", &al);
  luaL_Buffer b;
  unsigned char *o;
  int len = 0, ok;
  EVP_CIPHER_CTX *c;
  luaL_argcheck(L, kl == 32, 1, "key must be 32 bytes");
  luaL_argcheck(L, pl < 1 << 24, 2, "too large");
  o = (unsigned char *)luaL_buffinitsize(L, &b, pl + GCM_IV + GCM_TAG);
  if (RAND_bytes(o, GCM_IV) != 1) return raise_ssl(L, "RAND_bytes");
  if ((c = EVP_CIPHER_CTX_new()) == NULL) return raise_ssl(L, "seal");
  ok = EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, (const unsigned char *)k, o) &&
       EVP_EncryptUpdate(c, NULL, &len, (const unsigned char *)aad, (int)al) &&
       EVP_EncryptUpdate(c, o + GCM_IV, &len, (const unsigned char *)pt, (int)pl) &&
       EVP_EncryptFinal_ex(c, o + GCM_IV + len, &len) &&
       EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, o + GCM_IV + pl);
  EVP_CIPHER_CTX_free(c);
  if (!ok) return raise_ssl(L, "seal");
  luaL_pushresultsize(&b, pl + GCM_IV + GCM_TAG);
  return 1;
}

/* open(key32, sealed [, aad]) -> plaintext | nil when it does not verify */
static int l_open(lua_State *L) {
  size_t kl, sl, al = 0, pl;
  const char *k = luaL_checklstring(L, 1, &kl);
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 2, &sl);
  const char *aad = luaL_optlstring(L, 3, "", &al);
  luaL_Buffer b;
  unsigned char *o, tag[GCM_TAG];
  int len = 0, ok;
  EVP_CIPHER_CTX *c;
  luaL_argcheck(L, kl == 32, 1, "key must be 32 bytes");
  if (sl < GCM_IV + GCM_TAG || sl > (1 << 24)) { lua_pushnil(L); return 1; }
  pl = sl - GCM_IV - GCM_TAG;
  memcpy(tag, s + sl - GCM_TAG, GCM_TAG);
  o = (unsigned char *)luaL_buffinitsize(L, &b, pl + 1);
  if ((c = EVP_CIPHER_CTX_new()) == NULL) return raise_ssl(L, "open");
  ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, (const unsigned char *)k, s) &&
       EVP_DecryptUpdate(c, NULL, &len, (const unsigned char *)aad, (int)al) &&
       EVP_DecryptUpdate(c, o, &len, s + GCM_IV, (int)pl) &&
       EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) &&
       EVP_DecryptFinal_ex(c, o + len, &len) > 0;
  EVP_CIPHER_CTX_free(c);
  if (!ok) {
    ERR_clear_error();
    OPENSSL_cleanse(o, pl);
    luaL_pushresultsize(&b, 0);
    lua_pushnil(L);
    return 1;
  }
  luaL_pushresultsize(&b, pl);
  return 1;
}

static const luaL_Reg crypto_funcs[] = {
  {"hmac", l_hmac},
  {"digest", l_digest},
  {"digest_file", l_digest_file},
  {"equal", l_equal},
  {"random_bytes", l_random_bytes},
  {"b64encode", l_b64encode},
  {"b64decode", l_b64decode},
  {"seal", l_seal},
  {"open", l_open},
  {NULL, NULL}
};

void so_open_crypto(lua_State *L) {
  luaL_setfuncs(L, crypto_funcs, 0);
}
