/* lpoll.c -- a readiness poller over epoll for the Lua HTTP loop, plus a
 * monotonic clock. LuaSocket's select() cannot watch descriptors past
 * FD_SETSIZE and rescans every descriptor on each call; epoll has neither
 * problem. Descriptors are plain integers (LuaSocket's sock:getfd()).
 *
 *   core.poller([maxevents = 256]) -> Poller | nil, message, code
 *   p:add(fd, "r" | "w" | "rw")    -> true | nil, message, code
 *   p:mod(fd, "r" | "w" | "rw")    -> true | nil, message, code
 *   p:del(fd)                      -> true | nil, message, code
 *   p:wait([timeout [, fds [, evs]]]) -> fds, evs, n | nil, message, code
 *   p:close()                      (also __gc and __close; idempotent)
 *   core.monotime()                -> seconds (float) from CLOCK_MONOTONIC
 *                                     | nil, message, code
 *
 * Codes are errno names ("EEXIST", "ENOENT", "EBADF", ...).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auxiliar.h"
#include "lpoll.h"

#define POLLER_MT "smugoauth.Poller"

#if defined(__linux__)
#include <sys/epoll.h>

typedef struct poller {
  int epfd;                     /* -1 once closed */
  int maxev;
  struct epoll_event ev[1];     /* really maxev entries */
} poller;

/* ------------------------------------------------------------ helpers */

/* The errno values epoll can report, by name (the stable error code). */
static const char *errno_name(int e) {
  switch (e) {
  case EBADF: return "EBADF";
  case EEXIST: return "EEXIST";
  case ENOENT: return "ENOENT";
  case EINVAL: return "EINVAL";
  case ENOMEM: return "ENOMEM";
  case ENOSPC: return "ENOSPC";
  case EPERM: return "EPERM";
  case ELOOP: return "ELOOP";
  case EMFILE: return "EMFILE";
  case ENFILE: return "ENFILE";
  case EINTR: return "EINTR";
  default: return "EIO";
  }
}

/* "nil, '<what>: <strerror>', '<ENAME>'" from the current errno. */
static int fail_errno(lua_State *L, const char *what) {
  int e = errno;
  return so_fail(L, errno_name(e), "%s: %s", what, strerror(e));
}

/* The poller at idx, raising when it is not one or is closed. */
static poller *check_open(lua_State *L, int idx) {
  poller *p = luaL_checkudata(L, idx, POLLER_MT);
  if (p->epfd < 0) so_closed_error(L, POLLER_MT);
  return p;
}

/* The descriptor argument at idx: an integer in 0..INT_MAX. */
static int check_fd(lua_State *L, int idx) {
  lua_Integer fd = luaL_checkinteger(L, idx);
  luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, idx, "invalid file descriptor");
  return (int)fd;
}

/* The interest argument at idx ("r", "w" or "rw") as epoll event bits. */
static uint32_t check_events(lua_State *L, int idx) {
  static const char *const names[] = { "r", "w", "rw", NULL };
  static const uint32_t bits[] = { EPOLLIN, EPOLLOUT, EPOLLIN | EPOLLOUT };
  return bits[luaL_checkoption(L, idx, NULL, names)];
}

/* epoll_ctl for add/mod; the fd is also the event's data. */
static int ctl(lua_State *L, int op, const char *what) {
  poller *p = check_open(L, 1);
  int fd = check_fd(L, 2);
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = check_events(L, 3);
  ev.data.fd = fd;
  if (epoll_ctl(p->epfd, op, fd, &ev) != 0) return fail_errno(L, what);
  lua_pushboolean(L, 1);
  return 1;
}

/* The table at idx (reused) or a new one; leaves it on top. */
static void out_table(lua_State *L, int idx, int n) {
  if (lua_isnoneornil(L, idx)) lua_createtable(L, n, 0);
  else {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushvalue(L, idx);
  }
}

/* Clear t[n+1], t[n+2], ... up to the first nil so #t == n (table on top). */
static void trim_table(lua_State *L, lua_Integer n) {
  for (n = n + 1; lua_rawgeti(L, -1, n) != LUA_TNIL; n++) {
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawseti(L, -2, n);
  }
  lua_pop(L, 1);
}

/* ------------------------------------------------------------ methods */

/* core.poller([maxevents]) -> Poller | nil, message, code */
static int l_poller(lua_State *L) {
  lua_Integer maxev = luaL_optinteger(L, 1, 256);
  poller *p;
  luaL_argcheck(L, maxev >= 1 && maxev <= 65536, 1, "must be between 1 and 65536");
  /* userdata and metatable first, so nothing can leak once epfd exists */
  p = lua_newuserdatauv(L, sizeof *p + (size_t)(maxev - 1) * sizeof p->ev[0], 0);
  p->epfd = -1;
  p->maxev = (int)maxev;
  luaL_setmetatable(L, POLLER_MT);
  if ((p->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) return fail_errno(L, "poller:create");
  return 1;
}

/* p:add(fd, events) -> true | nil, message, code ("EEXIST" if already added) */
static int poller_add(lua_State *L) {
  return ctl(L, EPOLL_CTL_ADD, "poller:add");
}

/* p:mod(fd, events) -> true | nil, message, code ("ENOENT" if not added) */
static int poller_mod(lua_State *L) {
  return ctl(L, EPOLL_CTL_MOD, "poller:mod");
}

/* p:del(fd) -> true | nil, message, code */
static int poller_del(lua_State *L) {
  poller *p = check_open(L, 1);
  int fd = check_fd(L, 2);
  struct epoll_event ev;        /* ignored, but kernels before 2.6.9 want one */
  memset(&ev, 0, sizeof ev);
  if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev) != 0) return fail_errno(L, "poller:del");
  lua_pushboolean(L, 1);
  return 1;
}

/* p:wait([timeout [, fds [, evs]]]) -> fds, evs, n | nil, message, code
 * timeout in seconds (nil or negative: wait forever; rounded up to the
 * millisecond). fds[i] is a ready descriptor and evs[i] its readiness:
 * "r", "w" or "rw"; errors and hang-ups count as both. fds and evs, when
 * given, are refilled (and trimmed to n) instead of allocating new tables.
 * An interrupted wait (EINTR) is an empty result, not a failure. */
static int poller_wait(lua_State *L) {
  poller *p = check_open(L, 1);
  lua_Number t = luaL_optnumber(L, 2, -1);
  int ms, n, i;
  if (!(t >= 0)) ms = -1;                       /* negative or NaN */
  else if (t >= (lua_Number)INT_MAX / 1000) ms = INT_MAX;
  else {
    ms = (int)(t * 1000);
    if ((lua_Number)ms < t * 1000) ms++;        /* never spin on a tiny timeout */
  }
  lua_settop(L, 4);
  n = epoll_wait(p->epfd, p->ev, p->maxev, ms);
  if (n < 0) {
    if (errno != EINTR) return fail_errno(L, "poller:wait");
    n = 0;
  }
  out_table(L, 3, n);           /* 5: fds */
  out_table(L, 4, n);           /* 6: evs */
  for (i = 0; i < n; i++) {
    uint32_t e = p->ev[i].events;
    int r = (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
    int w = (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
    lua_pushinteger(L, p->ev[i].data.fd);
    lua_rawseti(L, 5, i + 1);
    if (r && w) lua_pushliteral(L, "rw");
    else if (w) lua_pushliteral(L, "w");
    else lua_pushliteral(L, "r");
    lua_rawseti(L, 6, i + 1);
  }
  if (!lua_isnil(L, 3)) { lua_pushvalue(L, 5); trim_table(L, n); }
  if (!lua_isnil(L, 4)) { lua_pushvalue(L, 6); trim_table(L, n); }
  lua_pushinteger(L, n);
  return 3;
}

/* p:close(): close the epoll descriptor; idempotent (also __gc, __close) */
static int poller_close(lua_State *L) {
  poller *p = luaL_checkudata(L, 1, POLLER_MT);
  if (p->epfd >= 0) {
    close(p->epfd);
    p->epfd = -1;
  }
  return 0;
}

/* tostring(p): "smugoauth.Poller (0x...)" or "smugoauth.Poller (closed)" */
static int poller_tostring(lua_State *L) {
  poller *p = luaL_checkudata(L, 1, POLLER_MT);
  if (p->epfd < 0) lua_pushliteral(L, POLLER_MT " (closed)");
  else lua_pushfstring(L, POLLER_MT " (%p)", (void *)p);
  return 1;
}

static const luaL_Reg poller_methods[] = {
  {"add", poller_add},
  {"mod", poller_mod},
  {"del", poller_del},
  {"wait", poller_wait},
  {"close", poller_close},
  {NULL, NULL}
};

static const luaL_Reg poller_meta[] = {
  {"__gc", poller_close},
  {"__close", poller_close},
  {"__tostring", poller_tostring},
  {NULL, NULL}
};

/* Create the Poller metatable with its methods in a separate __index. */
static void poller_createmeta(lua_State *L) {
  so_newclass(L, POLLER_MT, poller_meta, poller_methods, 0);
}

#else /* !__linux__ */

/* No epoll here: core.poller() fails at run time with "ENOSYS". */
static int l_poller(lua_State *L) {
  return so_fail(L, "ENOSYS", "poller: epoll is not available on this system");
}

static void poller_createmeta(lua_State *L) {
  (void)L;
}

#endif

/* ------------------------------------------------------------ clock */

/* core.monotime() -> seconds since an arbitrary point, never going back */
static int l_monotime(lua_State *L) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return so_fail(L, "EIO", "monotime: clock_gettime: %s", strerror(errno));
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

static const luaL_Reg poll_funcs[] = {
  {"poller", l_poller},
  {"monotime", l_monotime},
  {NULL, NULL}
};

int so_open_poll(lua_State *L) {
  poller_createmeta(L);
  luaL_setfuncs(L, poll_funcs, 0);
  return 0;
}
