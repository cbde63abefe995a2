/* lloop.c -- the C half of smugoauth's one event loop: a reactor that waits
 * on one epoll descriptor for both the descriptors Lua registers (the HTTP
 * server's sockets) and libcurl's own sockets, driven through libcurl's
 * multi *socket* interface (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION,
 * curl_multi_socket_action), as libcurl's docs/examples/ephiperfifo.c does.
 * The tasks, timers and scheduling are Lua's (lua/smugoauth/loop.lua).
 *
 *   core.reactor([opts]) -> Reactor | nil, message, code
 *       opts: maxevents (256), max_host_connections (0: no limit),
 *             max_connections (0: no limit)
 *   r:add(fd, ev) / r:mod(fd, ev) -> true | nil, message, code
 *       ev: "r", "w", "rw" or "" (registered, waiting for nothing)
 *   r:del(fd)                    -> true | nil, message, code
 *   r:start(http, req)           -> id | nil, message, code
 *       runs the request table req (as http:request takes it) with the
 *       settings of the smugoauth.Http client http, on the reactor's one
 *       multi handle (its connections are shared by every transfer); not
 *       from a callback inside r:wait
 *   r:cancel(id)                 -> true (it was running) | false
 *   r:wait(timeout, fds, evs, ids, results) -> nfds, ndone | nil, message, code
 *       waits up to timeout seconds (nil or negative: until something
 *       happens), lets libcurl act on its sockets and timer, and fills
 *       fds/evs with the ready Lua descriptors ("r", "w" or "rw"; errors and
 *       hang-ups count as both) and ids/results with the finished transfers
 *       (a result table as http:request gives, or { error =, code = }, or
 *       { raised = error } when its on_progress or on_data raised)
 *   r:timeout()                  -> seconds until libcurl's timer, or nil
 *   r:pollfd()                   -> the epoll descriptor (readable when
 *                                   something is ready: for outer loops)
 *   r:active()                   -> transfers running
 *   r:close()                    (also __gc and __close; idempotent)
 *   core.monotime()              -> seconds (float) from CLOCK_MONOTONIC:
 *                                   the loop's clock
 *
 * No Lua error crosses libcurl: on_progress and on_data run under lua_pcall
 * (see http_xfer.c), and nothing else calls Lua from libcurl's callbacks. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auxiliar.h"
#include "http_int.h"
#include "lloop.h"

#define REACTOR_MT "smugoauth.Reactor"
#define UV_PENDING 1                /* user value: id -> { req =, http = } */

/* ------------------------------------------------------------ clock */

/* core.monotime() -> seconds since an arbitrary point, never going back */
static int l_monotime(lua_State *L) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return so_fail(L, "EIO", "monotime: clock_gettime: %s", strerror(errno));
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

#if defined(__linux__)
#include <sys/epoll.h>

#define CURL_TAG ((uint64_t)1 << 32)  /* epoll data: libcurl's socket, not Lua's */

typedef struct reactor {
  int epfd;                     /* -1 once closed */
  CURLM *multi;
  long long timer_at;           /* libcurl's deadline (monotonic ms), -1: none */
  so_xfer **slot;               /* transfers by id - 1; NULL: never made */
  lua_Integer *freelist;        /* ids free for reuse */
  size_t nslot, nfree, active;
  int maxev, in_wait;
  lua_State *L;                 /* while waiting: for on_progress, on_data */
  struct epoll_event ev[1];     /* really maxev entries */
} reactor;

/* ------------------------------------------------------------ helpers */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "nil, '<what>: <strerror>', 'EIO'"-style failure from errno. */
static int fail_errno(lua_State *L, const char *what) {
  int e = errno;
  const char *code = e == EBADF ? "EBADF" : e == EEXIST ? "EEXIST" : e == ENOENT ? "ENOENT" :
                     e == ENOMEM ? "ENOMEM" : e == EMFILE ? "EMFILE" : e == EPERM ? "EPERM" : "EIO";
  return so_fail(L, code, "%s: %s", what, strerror(e));
}

static reactor *check_open(lua_State *L, int idx) {
  reactor *r = luaL_checkudata(L, idx, REACTOR_MT);
  if (r->epfd < 0) so_closed_error(L, REACTOR_MT);
  return r;
}

static int check_fd(lua_State *L, int idx) {
  lua_Integer fd = luaL_checkinteger(L, idx);
  luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, idx, "invalid file descriptor");
  return (int)fd;
}

/* The interest argument: "r", "w", "rw" or "" as epoll event bits. */
static uint32_t check_events(lua_State *L, int idx) {
  static const char *const names[] = { "r", "w", "rw", "", NULL };
  /* "": armed for nothing but a hang-up or error, reported once (ONESHOT) */
  static const uint32_t bits[] = { EPOLLIN | EPOLLRDHUP, EPOLLOUT, EPOLLIN | EPOLLRDHUP | EPOLLOUT,
                                   EPOLLONESHOT };
  return bits[luaL_checkoption(L, idx, NULL, names)];
}

/* ------------------------------------------------------- libcurl's side */

/* libcurl wants to watch socket s for what (or no longer). */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  reactor *r = userp;
  struct epoll_event ev;
  (void)e;
  memset(&ev, 0, sizeof ev);
  if (what == CURL_POLL_REMOVE) {
    if (socketp != NULL) {
      epoll_ctl(r->epfd, EPOLL_CTL_DEL, s, &ev);     /* may be closed already */
      curl_multi_assign(r->multi, s, NULL);
    }
    return 0;
  }
  ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
  ev.data.u64 = CURL_TAG | (uint64_t)(uint32_t)s;
  if (socketp == NULL) {
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
      epoll_ctl(r->epfd, EPOLL_CTL_MOD, s, &ev);
    curl_multi_assign(r->multi, s, (void *)r);
  } else if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT) {
    epoll_ctl(r->epfd, EPOLL_CTL_ADD, s, &ev);
  }
  return 0;
}

/* libcurl wants to be called in timeout_ms (-1: never). */
static int on_timer(CURLM *m, long timeout_ms, void *userp) {
  reactor *r = userp;
  (void)m;
  r->timer_at = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  return 0;
}

/* The transfer of id, or NULL. */
static so_xfer *xfer_of(reactor *r, lua_Integer id) {
  if (id < 1 || (size_t)id > r->nslot) return NULL;
  return r->slot[id - 1];
}

/* Take the transfer id out of the multi handle, reset it and free its id
 * (the pending entry is the caller's to clear). */
static void retire(reactor *r, lua_Integer id) {
  so_xfer *x = r->slot[id - 1];
  if (x->attached) {
    curl_multi_remove_handle(r->multi, x->easy);
    x->attached = 0;
    r->active--;
  }
  so_xfer_reset(x);
  r->freelist[r->nfree++] = id;
}

/* ------------------------------------------------------------ methods */

/* core.reactor([opts]) -> Reactor | nil, message, code */
static int l_reactor(lua_State *L) {
  lua_Integer maxev = 256, host = 0, total = 0;
  reactor *r;
  if (!lua_isnoneornil(L, 1)) {
    so_opt o = SO_OPT_INIT("reactor");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (so_opt_next(L, 1, &o)) {
      lua_Integer *dst = so_opt_is(&o, "maxevents") ? &maxev :
                         so_opt_is(&o, "max_host_connections") ? &host :
                         so_opt_is(&o, "max_connections") ? &total : NULL;
      int ok;
      if (dst == NULL) so_opt_unknown(L, &o);
      so_opt_type(L, &o, LUA_TNUMBER);
      *dst = lua_tointegerx(L, -1, &ok);
      if (!ok || *dst < 0 || *dst > 65536 || (dst == &maxev && *dst < 1))
        so_opt_error(L, &o, "an integer from %d to 65536 expected", dst == &maxev ? 1 : 0);
      lua_pop(L, 1);
    }
  }
  r = lua_newuserdatauv(L, sizeof *r + (size_t)(maxev - 1) * sizeof r->ev[0], 1);
  memset(r, 0, sizeof *r);
  r->epfd = -1;
  r->timer_at = -1;
  r->maxev = (int)maxev;
  luaL_setmetatable(L, REACTOR_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_PENDING);
  if ((r->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) return fail_errno(L, "reactor");
  if ((r->multi = curl_multi_init()) == NULL) return luaL_error(L, "reactor: curl_multi_init failed");
  curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, (void *)r);
  curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, (void *)r);
  if (host > 0) curl_multi_setopt(r->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)host);
  if (total > 0) curl_multi_setopt(r->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)total);
  return 1;
}

/* epoll_ctl for Lua's descriptors (add/mod). */
static int ctl(lua_State *L, int op, const char *what) {
  reactor *r = check_open(L, 1);
  int fd = check_fd(L, 2);
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = check_events(L, 3);
  ev.data.u64 = (uint64_t)(uint32_t)fd;
  if (epoll_ctl(r->epfd, op, fd, &ev) != 0) return fail_errno(L, what);
  lua_pushboolean(L, 1);
  return 1;
}

static int reactor_add(lua_State *L) { return ctl(L, EPOLL_CTL_ADD, "reactor:add"); }
static int reactor_mod(lua_State *L) { return ctl(L, EPOLL_CTL_MOD, "reactor:mod"); }

static int reactor_del(lua_State *L) {
  reactor *r = check_open(L, 1);
  int fd = check_fd(L, 2);
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  if (epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, &ev) != 0) return fail_errno(L, "reactor:del");
  lua_pushboolean(L, 1);
  return 1;
}

/* A free id; its slot may still be NULL (the transfer is made on first use). */
static lua_Integer take_id(lua_State *L, reactor *r) {
  size_t n;
  so_xfer **s;
  lua_Integer *f;
  if (r->nfree > 0) return r->freelist[--r->nfree];
  n = r->nslot + 1;
  if ((s = realloc(r->slot, n * sizeof *s)) == NULL) luaL_error(L, "not enough memory");
  r->slot = s;
  r->slot[r->nslot] = NULL;
  if ((f = realloc(r->freelist, n * sizeof *f)) == NULL) luaL_error(L, "not enough memory");
  r->freelist = f;
  r->nslot = n;
  return (lua_Integer)n;
}

/* r:start(http, req) -> id | nil, message, code */
static int reactor_start(lua_State *L) {
  reactor *r = check_open(L, 1);
  lua_Integer id;
  so_xfer *x;
  so_req q;
  const char *code;
  CURLMcode mc;
  /* a transfer started from a callback would miss the wait's Lua state */
  if (r->in_wait) return luaL_error(L, "reactor:start: not from inside reactor:wait");
  so_http_check(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  so_xfer_readreq(L, 3, &q, "start");
  id = take_id(L, r);
  x = r->slot[id - 1];
  if (x == NULL || x->easy == NULL) {           /* first use (or an earlier one ran out of memory) */
    if (x == NULL) {
      if ((x = malloc(sizeof *x)) == NULL) {
        r->freelist[r->nfree++] = id;
        return luaL_error(L, "not enough memory");
      }
      so_xfer_init(x);
      r->slot[id - 1] = x;
    }
    if ((x->easy = curl_easy_init()) == NULL) {
      r->freelist[r->nfree++] = id;
      return luaL_error(L, "reactor:start: curl_easy_init failed");
    }
  }
  if ((code = so_xfer_prepare(L, 2, x, 3, &q, "request")) != NULL) {
    r->freelist[r->nfree++] = id;
    return so_xfer_failprep(L, x, "request", code, 0);
  }
  x->pkey = id;
  if ((mc = curl_multi_add_handle(r->multi, x->easy)) != CURLM_OK) {
    so_xfer_reset(x);
    r->freelist[r->nfree++] = id;
    return luaL_error(L, "reactor:start: curl_multi_add_handle failed: %s", curl_multi_strerror(mc));
  }
  x->attached = 1;
  x->progress = q.progress ? -1 : 0;             /* -1: [id].req.on_progress, ptab set in wait */
  x->data = q.on_data ? -1 : 0;                  /* -1: [id].req.on_data, likewise */
  x->cb_failed = 0;
  r->active++;
  lua_getiuservalue(L, 1, UV_PENDING);           /* pending[id] = { req, http } */
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "req");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "http");
  lua_rawseti(L, -2, id);
  lua_pushinteger(L, id);
  return 1;
}

/* r:cancel(id) -> true | false */
static int reactor_cancel(lua_State *L) {
  reactor *r = check_open(L, 1);
  lua_Integer id = luaL_checkinteger(L, 2);
  so_xfer *x = xfer_of(r, id);
  if (r->in_wait) return luaL_error(L, "reactor:cancel: not from inside reactor:wait");
  lua_getiuservalue(L, 1, UV_PENDING);
  if (x == NULL || lua_rawgeti(L, -1, id) == LUA_TNIL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pop(L, 1);
  retire(r, id);
  lua_pushnil(L);
  lua_rawseti(L, -2, id);
  lua_pushboolean(L, 1);
  return 1;
}

/* Store the outcome of every finished transfer: ids[n+1], results[n+1], ...
 * Stack: 1 reactor, 5 ids, 6 results, 7 pending. Returns the new n. */
static int collect(lua_State *L, reactor *r, int n) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(r->multi, &left)) != NULL) {
    CURLcode rc = m->data.result;
    char *priv = NULL;
    lua_Integer id;
    so_xfer *x;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
    x = (so_xfer *)(void *)priv;
    id = x != NULL ? x->pkey : 0;
    if (xfer_of(r, id) != x) continue;               /* not ours: cannot happen */
    curl_multi_remove_handle(r->multi, x->easy);     /* m is invalid from here */
    x->attached = 0;
    r->active--;
    so_xfer_release(x);
    lua_rawgeti(L, 7, id);                           /* the pending entry */
    if (x->cb_failed && lua_getfield(L, -1, "raised") != LUA_TNIL) {
      lua_createtable(L, 0, 1);                      /* { raised = error } */
      lua_insert(L, -2);
      lua_setfield(L, -2, "raised");
      so_xfer_reset(x);
    } else {
      if (x->cb_failed) lua_pop(L, 1);
      so_xfer_push(L, x, rc, "request", 1);          /* resets x */
    }
    lua_rawseti(L, 6, n + 1);
    lua_pop(L, 1);                                   /* the entry */
    lua_pushinteger(L, id);
    lua_rawseti(L, 5, n + 1);
    lua_pushnil(L);
    lua_rawseti(L, 7, id);
    r->freelist[r->nfree++] = id;
    n++;
  }
  return n;
}

/* The table at idx (reused) or a new one, replacing idx. */
static void out_table(lua_State *L, int idx) {
  if (lua_isnil(L, idx)) {
    lua_newtable(L);
    lua_replace(L, idx);
  } else {
    luaL_checktype(L, idx, LUA_TTABLE);
  }
}

/* Clear t[n+1], t[n+2], ... up to the first nil (t at idx). */
static void trim(lua_State *L, int idx, lua_Integer n) {
  for (n = n + 1; lua_rawgeti(L, idx, n) != LUA_TNIL; n++) {
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawseti(L, idx, n);
  }
  lua_pop(L, 1);
}

/* Point every running transfer with a Lua callback (on_progress, on_data)
 * at the pending table at idx of L (0: detach them after the wait). */
static void progress_state(reactor *r, lua_State *L, int idx) {
  size_t i;
  for (i = 0; i < r->nslot; i++) {
    so_xfer *x = r->slot[i];
    if (x != NULL && x->attached && (x->progress < 0 || x->data < 0)) {
      x->L = idx ? L : NULL;
      x->ptab = idx;
    }
  }
}

/* r:wait([timeout [, fds, evs, ids, results]]) -> nfds, ndone | nil, message, code */
static int reactor_wait(lua_State *L) {
  reactor *r = check_open(L, 1);
  lua_Number t = luaL_optnumber(L, 2, -1);
  long long deadline = -1, now;
  int ms, n, i, nfds = 0, ndone = 0, running = 0;
  if (r->in_wait) return luaL_error(L, "reactor:wait: already waiting");
  lua_settop(L, 6);
  out_table(L, 3);
  out_table(L, 4);
  out_table(L, 5);
  out_table(L, 6);
  lua_getiuservalue(L, 1, UV_PENDING);           /* 7 */
  luaL_checkstack(L, 12, NULL);                  /* callbacks (on_progress, on_data) need room */
  now = now_ms();
  if (t >= 0) deadline = now + (t >= (lua_Number)INT_MAX / 1000 ? INT_MAX
                                : (long long)(t * 1000 + 0.999));
  if (r->timer_at >= 0 && (deadline < 0 || r->timer_at < deadline)) deadline = r->timer_at;
  ms = deadline < 0 ? -1 : deadline <= now ? 0 : (int)(deadline - now > INT_MAX ? INT_MAX
                                                       : deadline - now);
  n = epoll_wait(r->epfd, r->ev, r->maxev, ms);
  if (n < 0) {
    if (errno != EINTR) return fail_errno(L, "reactor:wait");
    n = 0;
  }
  r->in_wait = 1;
  r->L = L;
  progress_state(r, L, 7);
  for (i = 0; i < n; i++) {
    uint32_t e = r->ev[i].events;
    uint64_t d = r->ev[i].data.u64;
    if (d & CURL_TAG) {
      int flags = ((e & (EPOLLIN | EPOLLHUP)) ? CURL_CSELECT_IN : 0) |
                  ((e & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                  ((e & EPOLLERR) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(r->multi, (curl_socket_t)(d & 0xffffffffu), flags, &running);
    } else {
      int rd = (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0;
      int wr = (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
      lua_pushinteger(L, (lua_Integer)(d & 0xffffffffu));
      lua_rawseti(L, 3, ++nfds);
      if (rd && wr) lua_pushliteral(L, "rw");
      else if (wr) lua_pushliteral(L, "w");
      else lua_pushliteral(L, "r");
      lua_rawseti(L, 4, nfds);
    }
  }
  if (r->timer_at >= 0 && now_ms() >= r->timer_at) {
    r->timer_at = -1;
    curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }
  ndone = collect(L, r, 0);
  progress_state(r, L, 0);
  r->in_wait = 0;
  r->L = NULL;
  trim(L, 3, nfds);
  trim(L, 4, nfds);
  trim(L, 5, ndone);
  trim(L, 6, ndone);
  lua_pushinteger(L, nfds);
  lua_pushinteger(L, ndone);
  return 2;
}

/* r:timeout() -> seconds until libcurl's timer fires (0 when due), or nil */
static int reactor_timeout(lua_State *L) {
  reactor *r = check_open(L, 1);
  long long left;
  if (r->timer_at < 0) return 0;
  left = r->timer_at - now_ms();
  lua_pushnumber(L, left > 0 ? (lua_Number)left / 1000 : 0);
  return 1;
}

static int reactor_pollfd(lua_State *L) {
  reactor *r = check_open(L, 1);
  lua_pushinteger(L, r->epfd);
  return 1;
}

static int reactor_active(lua_State *L) {
  reactor *r = check_open(L, 1);
  lua_pushinteger(L, (lua_Integer)r->active);
  return 1;
}

/* r:close(): every transfer dropped, the handles and descriptor freed. */
static int reactor_close(lua_State *L) {
  reactor *r = luaL_checkudata(L, 1, REACTOR_MT);
  size_t i;
  if (r->epfd < 0) return 0;
  if (r->in_wait) return luaL_error(L, "reactor:close: not from inside reactor:wait");
  for (i = 0; i < r->nslot; i++) {
    so_xfer *x = r->slot[i];
    if (x == NULL) continue;
    if (x->attached) curl_multi_remove_handle(r->multi, x->easy);
    so_xfer_free(x);
    free(x);
  }
  free(r->slot);
  free(r->freelist);
  r->slot = NULL;
  r->freelist = NULL;
  r->nslot = r->nfree = r->active = 0;
  if (r->multi != NULL) curl_multi_cleanup(r->multi);
  r->multi = NULL;
  close(r->epfd);
  r->epfd = -1;
  lua_newtable(L);                               /* drop the pending requests */
  lua_setiuservalue(L, 1, UV_PENDING);
  return 0;
}

static int reactor_tostring(lua_State *L) {
  reactor *r = luaL_checkudata(L, 1, REACTOR_MT);
  if (r->epfd < 0) lua_pushliteral(L, REACTOR_MT " (closed)");
  else lua_pushfstring(L, REACTOR_MT " (%p)", (void *)r);
  return 1;
}

static const luaL_Reg reactor_methods[] = {
  {"add", reactor_add},
  {"mod", reactor_mod},
  {"del", reactor_del},
  {"start", reactor_start},
  {"cancel", reactor_cancel},
  {"wait", reactor_wait},
  {"timeout", reactor_timeout},
  {"pollfd", reactor_pollfd},
  {"active", reactor_active},
  {"close", reactor_close},
  {NULL, NULL}
};

static const luaL_Reg reactor_meta[] = {
  {"__gc", reactor_close},
  {"__close", reactor_close},
  {"__tostring", reactor_tostring},
  {NULL, NULL}
};

int so_open_loop(lua_State *L) {
  so_newclass(L, REACTOR_MT, reactor_meta, reactor_methods, 0);
  lua_pushcfunction(L, l_reactor);
  lua_setfield(L, -2, "reactor");
  lua_pushcfunction(L, l_monotime);
  lua_setfield(L, -2, "monotime");
  return 0;
}

#else /* !__linux__ */

static int l_reactor(lua_State *L) {
  return so_fail(L, "ENOSYS", "reactor: epoll is not available on this system");
}

int so_open_loop(lua_State *L) {
  lua_pushcfunction(L, l_reactor);
  lua_setfield(L, -2, "reactor");
  lua_pushcfunction(L, l_monotime);
  lua_setfield(L, -2, "monotime");
  return 0;
}

#endif
