/* lfile.c -- files that hold secrets: atomic 0600 writes and mode checks.
 *
 * write_private(path, data): the data goes to a new temporary file in the
 * same directory (O_CREAT|O_EXCL, mode 0600), is written whole and fsync'd,
 * then renamed over path and the directory fsync'd. A crash or a full disk
 * at any point leaves either the old file or the new one, never a mix. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lcore.h"

static int fail_errno(lua_State *L, const char *what, const char *path, int err) {
  return so_fail(L, "io", "%s: %s: %s", path, what, strerror(err));
}

/* Write all of buf to fd, retrying on EINTR and short writes. */
static int write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The directory part of path into dir (".") for the fsync after rename. */
static void dir_of(const char *path, char *dir, size_t len) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) snprintf(dir, len, ".");
  else if (slash == path) snprintf(dir, len, "/");
  else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* write_private(path, data) -> true | nil, message, "io" */
static int l_write_private(lua_State *L) {
  size_t n, plen;
  const char *path = luaL_checklstring(L, 1, &plen);
  const char *data = luaL_checklstring(L, 2, &n);
  char tmp[4096], dir[4096];
  int fd, i, err;
  luaL_argcheck(L, plen > 0 && plen < sizeof tmp - 32, 1, "bad path length");
  for (i = 0; i < 100; i++) {
    unsigned char r[6];
    char hex[13];
    if (so_random(r, sizeof r) != 0) return so_fail(L, "io", "%s: no randomness", path);
    so_hex_encode(hex, r, sizeof r);
    hex[12] = '\0';
    snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, hex);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 || errno != EEXIST) break;
  }
  if (fd < 0) return fail_errno(L, "cannot create a temporary file", path, errno);
  {
    const char *step = NULL;
    if (fchmod(fd, 0600) != 0) step = "cannot set mode 0600 on the temporary file";
    else if (write_all(fd, data, n) != 0) step = "cannot write the temporary file";
    else if (fsync(fd) != 0) step = "cannot fsync the temporary file";
    if (step != NULL) {
      err = errno;
      close(fd);
      unlink(tmp);
      return fail_errno(L, step, path, err);
    }
  }
  if (close(fd) != 0) {
    err = errno;
    unlink(tmp);
    return fail_errno(L, "cannot close the temporary file", path, err);
  }
  if (rename(tmp, path) != 0) {
    err = errno;
    unlink(tmp);
    return fail_errno(L, "cannot replace", path, err);
  }
  dir_of(path, dir, sizeof dir);
  fd = open(dir, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {          /* make the rename durable; not all filesystems allow it */
    (void)fsync(fd);
    close(fd);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* file_mode(path) -> mode (permission bits), uid, size | nil, message, "io" */
static int l_file_mode(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) return fail_errno(L, "cannot stat", path, errno);
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_pushinteger(L, (lua_Integer)st.st_uid);
  lua_pushinteger(L, (lua_Integer)st.st_size);
  return 3;
}

/* mkdir_private(path) -> true | nil, message, "io": path and missing
 * parents created with mode 0700; an existing directory is fine. */
static int l_mkdir_private(lua_State *L) {
  size_t n, i;
  const char *path = luaL_checklstring(L, 1, &n);
  char buf[4096];
  struct stat st;
  luaL_argcheck(L, n > 0 && n < sizeof buf, 1, "bad path length");
  memcpy(buf, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return fail_errno(L, "cannot create directory", buf, errno);
      buf[i] = c;
    }
  }
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
    return so_fail(L, "io", "%s: not a directory", path);
  lua_pushboolean(L, 1);
  return 1;
}

/* getuid() -> the real user id (to check a secret file is ours) */
static int l_getuid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getuid());
  return 1;
}

/* isatty(fd) -> boolean: for pretty output and progress bars */
static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  lua_pushboolean(L, fd >= 0 && fd < 1024 && isatty((int)fd));
  return 1;
}

static const luaL_Reg file_funcs[] = {
  {"write_private", l_write_private},
  {"file_mode", l_file_mode},
  {"getuid", l_getuid},
  {"mkdir_private", l_mkdir_private},
  {"isatty", l_isatty},
  {NULL, NULL}
};

void so_open_file(lua_State *L) {
  luaL_setfuncs(L, file_funcs, 0);
}
