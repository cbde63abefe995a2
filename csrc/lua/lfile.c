/* lfile.c -- files that hold secrets, for Lua: core.read_private and
 * core.write_private over the private-file unit (privfile.c: every check on
 * the open descriptor, atomic 0600 replacement), the end of a download
 * (core.commit, core.set_mtime over sink.c) and small file helpers (modes,
 * sizes, the listing of a directory, close-on-exec, a terminal's width).
 *
 * Paths are C strings: one with an embedded NUL raises (it would otherwise
 * name another, shorter path). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auxiliar.h"
#include "lfile.h"
#include "privfile.h"
#include "sink.h"

#define READ_DEFAULT ((lua_Integer)64 * 1024)    /* read_private's default cap */
#define READ_LIMIT ((lua_Integer)16 * 1024 * 1024)

static int fail_errno(lua_State *L, const char *what, const char *path, int err) {
  return so_fail(L, "io", "%s: %s: %s", path, what, strerror(err));
}

/* A userdata of n bytes (run under lua_pcall by read_private). */
static int new_buffer(lua_State *L) {
  lua_newuserdatauv(L, (size_t)lua_tointeger(L, 1), 0);
  return 1;
}

/* read_private(path [, max]) -> data | nil, message, code
 * The whole private file (see privfile.h: a regular file, ours, no group or
 * other permission bits, in a directory only we or root own and write),
 * read from the descriptor that was checked; max (64 KiB, at most 16 MiB)
 * bounds its size. code: "missing" (no such file or directory), "refused"
 * (a symlink, FIFO, directory..., another owner, group/other bits, an unsafe
 * directory), "too_large", "io". */
static int l_read_private(lua_State *L) {
  const char *path = so_check_path(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, READ_DEFAULT);
  unsigned char *buf;
  char msg[SO_PRIV_MSG_MAX];
  size_t size = 0, len = 0;
  int fd, st;
  luaL_argcheck(L, max >= 1 && max <= READ_LIMIT, 2, "max must be 1 byte to 16 MiB");
  st = so_priv_open(path, (size_t)max, &fd, &size, msg, sizeof msg);
  if (st != SO_PRIV_OK) return so_fail(L, so_priv_code(st), "%s", msg);
  lua_pushcfunction(L, new_buffer);          /* a raise here must not leak fd */
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    close(fd);
    return lua_error(L);
  }
  buf = lua_touserdata(L, -1);
  st = so_priv_read_fd(fd, path, buf, size, &len, msg, sizeof msg);
  close(fd);
  if (st != SO_PRIV_OK) {
    OPENSSL_cleanse(buf, size);
    return so_fail(L, so_priv_code(st), "%s", msg);
  }
  lua_pushlstring(L, (const char *)buf, len);
  OPENSSL_cleanse(buf, len);
  return 1;
}

/* write_private(path, data) -> true | nil, message, "io"
 * Replaces path atomically with a 0600 file (privfile.h: temporary file in
 * the same checked directory, fsync, rename, directory fsync): a crash or a
 * full disk at any point leaves the old file or the new one, never a mix. */
static int l_write_private(lua_State *L) {
  const char *path = so_check_path(L, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  char msg[SO_PRIV_MSG_MAX];
  if (so_priv_write(path, data, n, msg, sizeof msg) != SO_PRIV_OK)
    return so_fail(L, "io", "%s", msg);
  lua_pushboolean(L, 1);
  return 1;
}

/* file_mode(path) -> mode (permission bits), uid, size | nil, message, "io" */
static int l_file_mode(lua_State *L) {
  const char *path = so_check_path(L, 1);
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
  const char *path = so_check_path(L, 1);
  char buf[4096];
  struct stat st;
  n = strlen(path);
  if (n >= sizeof buf) return luaL_argerror(L, 1, "bad path length");
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

/* file_size(path) -> size | nil, message, code: "missing" (no such file or
 * directory), "io" (anything else, or not a regular file). A symlink is not
 * followed: it is not a regular file. */
static int l_file_size(lua_State *L) {
  const char *path = so_check_path(L, 1);
  struct stat st;
  if (lstat(path, &st) != 0) {
    int e = errno;
    return so_fail(L, e == ENOENT || e == ENOTDIR ? "missing" : "io", "%s: cannot stat: %s", path,
                   strerror(e));
  }
  if (!S_ISREG(st.st_mode)) return so_fail(L, "io", "%s: not a regular file", path);
  lua_pushinteger(L, (lua_Integer)st.st_size);
  return 1;
}

/* commit(part, final [, synced]) -> true | nil, message, "io": a finished
 * download under its final name, durably: part fsync'd (unless synced is
 * true: it was already), renamed to final, final's directory fsync'd. The
 * message names the step that failed. */
static int l_commit(lua_State *L) {
  const char *part = so_check_path(L, 1), *final = so_check_path(L, 2);
  char msg[SO_SINK_MSG_MAX + 4096];
  if (so_file_commit(part, final, lua_toboolean(L, 3), msg, sizeof msg) != 0)
    return so_fail(L, "io", "%s", msg);
  lua_pushboolean(L, 1);
  return 1;
}

/* set_mtime(path, seconds) -> true | nil, message, "io": the modification
 * time (seconds since the epoch, fractions kept; a symlink itself is not
 * followed); the access time is left alone. */
static int l_set_mtime(lua_State *L) {
  const char *path = so_check_path(L, 1);
  lua_Number t = luaL_checknumber(L, 2);
  char msg[SO_SINK_MSG_MAX + 4096];
  luaL_argcheck(L, t >= -1e15 && t <= 1e15, 2, "seconds out of range");   /* NaN too */
  if (so_file_set_mtime(path, (double)t, msg, sizeof msg) != 0) return so_fail(L, "io", "%s", msg);
  lua_pushboolean(L, 1);
  return 1;
}

/* The open directory of list_dir, in a userdata whose collector closes it
 * when building the listing raises (out of memory). */
typedef struct so_dirbox {
  DIR *d;
} so_dirbox;

#define DIRBOX "smugoauth.DirListing"

static int dirbox_gc(lua_State *L) {
  so_dirbox *b = luaL_checkudata(L, 1, DIRBOX);
  if (b->d != NULL) {
    closedir(b->d);
    b->d = NULL;
  }
  return 0;
}

static const char *type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "link";
  return "other";
}

/* list_dir(path [, nofollow]) -> entries | nil, message, code
 * The entries of the directory path but "." and "..", in no particular
 * order: an array of { name, type, size, mtime, mtime_ns, ino } as lstat
 * sees each (type "file", "dir", "link" or "other": a symlink is never
 * followed; mtime in seconds with its fraction, mtime_ns the same as an
 * integer of nanoseconds). An entry removed while the listing is made is
 * left out. With nofollow, path itself must not be a symlink. code:
 * "missing" (no such directory), "io" (not a directory, a symlink with
 * nofollow, no permission, a read error). */
static int l_list_dir(lua_State *L) {
  const char *path = so_check_path(L, 1);
  int nofollow = lua_toboolean(L, 2);
  so_dirbox *b;
  struct dirent *e;
  lua_Integer n = 0;
  int fd, err;
  b = lua_newuserdatauv(L, sizeof *b, 0);
  b->d = NULL;
  if (luaL_newmetatable(L, DIRBOX)) {
    lua_pushcfunction(L, dirbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
  if (fd < 0) {
    err = errno;
    struct stat st;
    /* O_DIRECTORY | O_NOFOLLOW on a symlink: ENOTDIR (Linux) or ELOOP */
    if (nofollow && (err == ELOOP || err == ENOTDIR) && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
      return so_fail(L, "io", "%s: a symbolic link (not followed)", path);
    return so_fail(L, err == ENOENT ? "missing" : "io", "%s: cannot open the directory: %s", path,
                   strerror(err));
  }
  if ((b->d = fdopendir(fd)) == NULL) {
    err = errno;
    close(fd);
    return fail_errno(L, "cannot read the directory", path, err);
  }
  lua_newtable(L);
  for (;;) {
    struct stat st;
    errno = 0;
    if ((e = readdir(b->d)) == NULL) break;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (fstatat(dirfd(b->d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;             /* removed meanwhile */
      err = errno;
      closedir(b->d);
      b->d = NULL;
      return so_fail(L, "io", "%s/%s: cannot stat: %s", path, e->d_name, strerror(err));
    }
    lua_createtable(L, 0, 6);
    lua_pushstring(L, e->d_name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, type_name(st.st_mode));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, (lua_Integer)st.st_mtim.tv_sec * 1000000000 + (lua_Integer)st.st_mtim.tv_nsec);
    lua_setfield(L, -2, "mtime_ns");
    lua_pushinteger(L, (lua_Integer)st.st_ino);
    lua_setfield(L, -2, "ino");
    lua_rawseti(L, -2, ++n);
  }
  err = errno;
  closedir(b->d);
  b->d = NULL;
  if (err != 0) return fail_errno(L, "cannot read the directory", path, err);
  return 1;
}

/* getuid() -> the real user id */
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

/* term_columns(fd) -> the width of the terminal fd is, or nil (not a
 * terminal, or one that does not say): for progress displays. */
static int l_term_columns(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  struct winsize ws;
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "descriptor expected");
  if (ioctl((int)fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 0;
  lua_pushinteger(L, (lua_Integer)ws.ws_col);
  return 1;
}

/* cloexec(fd) -> true | nil, message, code: the descriptor is closed in
 * programs this process starts (for LuaSocket's sockets, which are not). */
static int l_cloexec(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "descriptor expected");
  if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)   /* (the one descriptor flag) */
    return so_fail(L, "io", "cloexec: %s", strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg file_funcs[] = {
  {"read_private", l_read_private},
  {"write_private", l_write_private},
  {"file_mode", l_file_mode},
  {"file_size", l_file_size},
  {"commit", l_commit},
  {"set_mtime", l_set_mtime},
  {"getuid", l_getuid},
  {"mkdir_private", l_mkdir_private},
  {"isatty", l_isatty},
  {"list_dir", l_list_dir},
  {"cloexec", l_cloexec},
  {"term_columns", l_term_columns},
  {NULL, NULL}
};

int so_open_file(lua_State *L) {
  luaL_setfuncs(L, file_funcs, 0);
  return 0;
}
