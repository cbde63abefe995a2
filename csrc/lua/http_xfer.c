/* http_xfer.c -- one libcurl transfer of a smugoauth.Http client: the
 * transfer callbacks, request tables and their header checks, the curl
 * options of a request, and the result (or failure) pushed when it is done.
 * The client object is http.c; the loop's reactor (lloop.c) runs
 * concurrent transfers with it.
 *
 * Everything a transfer allocates (header list, FILE *, buffers, the sink's
 * descriptor) hangs off its client userdata, so a raise at any point leaks
 * nothing; no Lua error ever crosses libcurl (on_progress and on_data run
 * under lua_pcall).
 *
 * Response sinks (out, out_file, on_data; csrc/lib/sink.c does the file
 * work): the sink is opened when the request is set up, but nothing is
 * truncated or written before the first byte of a 2xx body, so a refused
 * request (401, 503, a connection that died before the answer) leaves the
 * file as it was. With out_offset = N, a 206 whose Content-Range starts at
 * N keeps the file's first N bytes (hashed first) and appends; any other
 * 2xx starts the file over (a 200 is the whole body); a 206 starting
 * elsewhere fails with code "range". A body that stops early leaves the
 * bytes received, in order: what a Range request can continue from. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "encode.h"
#include "http_int.h"

#if LIBCURL_VERSION_NUM < 0x074200
#error "smugoauth needs libcurl 7.66 or later"
#endif

#define KEEP_BUF ((size_t)1 << 20)  /* larger buffers are freed after each use */
/* The most header bytes a transfer accepts (every line of every response,
 * interim ones included, as libcurl counts them). libcurl 7.88 (Debian 12,
 * with the CVE-2023-38039 fix) gives up past 300 KiB with CURLE_RECV_ERROR
 * ("Too large response headers"), the code of a reset connection; stopping
 * below it ourselves makes the refusal ours and reports it as too_large. */
#define HEAD_MAX ((size_t)256 << 10)

/* ------------------------------------------------------------ callbacks */

/* libcurl opens its sockets without close-on-exec: a program started
 * while a connection is open or kept (the CLI's browser opener, a script's
 * os.execute) would inherit it. */
static int on_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose) {
  (void)ud;
  (void)purpose;
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);        /* (the one descriptor flag) */
  return CURL_SOCKOPT_OK;
}

/* Push x's Lua callback `name`: the function at stack index idx of x->L
 * (c:request), or for a reactor's transfer (idx -1) [pkey].req[name] of
 * the pending table at stack index x->ptab. 0 when there is none. */
static int push_callback(so_xfer *x, int idx, const char *name) {
  lua_State *L = x->L;
  if (L == NULL || idx == 0) return 0;
  if (idx > 0) {
    lua_pushvalue(L, idx);              /* room checked before the transfer */
    return 1;
  }
  if (x->ptab == 0) return 0;
  lua_rawgeti(L, x->ptab, x->pkey);
  lua_getfield(L, -1, "req");
  lua_getfield(L, -1, name);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
}

/* lua_pcall the callback pushed by push_callback(x, idx, ...) with its
 * nargs arguments: 0, or -1 when it raised: x->cb_failed is set and the
 * error kept, on top of the stack for c:request, in [pkey].raised for a
 * reactor's transfer. */
static int call_callback(so_xfer *x, int idx, int nargs) {
  lua_State *L = x->L;
  if (lua_pcall(L, nargs, 0, 0) == LUA_OK) return 0;
  x->cb_failed = 1;
  if (idx < 0) {                        /* keep the error in [pkey].raised */
    lua_rawgeti(L, x->ptab, x->pkey);
    lua_insert(L, -2);
    lua_setfield(L, -2, "raised");
    lua_pop(L, 1);
  }                                     /* else the error object is left on top */
  return -1;
}

/* on_data's trampoline, under lua_pcall: (fn, chunk pointer, length) ->
 * fn(chunk). Making the string here keeps a memory error inside the pcall. */
static int call_chunk(lua_State *L) {
  const char *p = lua_touserdata(L, 2);
  size_t n = (size_t)lua_tointeger(L, 3);
  lua_settop(L, 1);
  lua_pushlstring(L, p, n);
  lua_call(L, 1, 0);
  return 0;
}

/* The value of the response header `name` (case-insensitive) in x->head,
 * its length in *n; NULL when absent. */
static const char *find_header(const so_xfer *x, const char *name, size_t *n) {
  size_t i = 0, k = strlen(name);
  while (i < x->head.len) {
    const char *line = x->head.p + i, *nl = memchr(line, '\n', x->head.len - i);
    size_t len = (size_t)(nl - line), j;
    i += len + 1;
    if (len <= k || line[k] != ':') continue;
    for (j = 0; j < k && (line[j] | 32) == (name[j] | 32); j++) {}
    if (j < k) continue;
    for (j = k + 1; j < len && (line[j] == ' ' || line[j] == '\t'); j++) {}
    *n = len - j;
    return line + j;
  }
  return NULL;
}

/* Does the 206 answer's Content-Range ("bytes FIRST-LAST/SIZE") start at off? */
static int range_starts_at(const so_xfer *x, unsigned long long off) {
  size_t n, i = 6;
  unsigned long long first = 0;
  const char *v = find_header(x, "Content-Range", &n);
  if (v == NULL || n < 8 || memcmp(v, "bytes ", 6) != 0) return 0;
  if (i >= n || v[i] < '0' || v[i] > '9') return 0;
  for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
    if (first > (~0ULL - 9) / 10) return 0;
    first = first * 10 + (unsigned long long)(v[i] - '0');
  }
  return i < n && v[i] == '-' && first == off;
}

/* The first byte of the body (or its end, when it has none) has come:
 * route a 2xx body to the sink, any other one to x->body. */
static void sink_start(so_xfer *x) {
  long status = 0;
  unsigned long long keep = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    x->sinking = SINK_OFF;
    return;
  }
  if (x->offset > 0 && status == 206) {
    if (!range_starts_at(x, x->offset)) {
      x->range_bad = 1;
      x->sinking = SINK_FAILED;
      return;
    }
    keep = x->offset;
  }
  if (so_sink_begin(&x->sink, keep, x->sinkerr, sizeof x->sinkerr) != 0) {
    x->sink_failed = 1;
    x->sinking = SINK_FAILED;
    return;
  }
  x->sinking = SINK_ON;
}

/* Response body: a 2xx one into the sink (and on_data), when there is one;
 * otherwise into x->body, aborting past max_body. */
static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  so_xfer *x = ud;
  size_t len = size * n;
  if (x->sinking == SINK_WAIT) sink_start(x);
  if (x->sinking == SINK_ON) {
    if (x->cb_failed) return 0;
    if (so_sink_write(&x->sink, p, len, x->sinkerr, sizeof x->sinkerr) != 0) {
      x->sink_failed = 1;
      return 0;
    }
    if (x->data != 0 && x->L != NULL) {
      lua_pushcfunction(x->L, call_chunk);
      if (!push_callback(x, x->data, "on_data")) {
        lua_pop(x->L, 1);
        return len;
      }
      lua_pushlightuserdata(x->L, p);
      lua_pushinteger(x->L, (lua_Integer)len);
      if (call_callback(x, x->data, 3) != 0) return 0;
    }
    return len;
  }
  if (x->sinking == SINK_FAILED) return 0;
  if (len > x->max_body - x->body.len) { x->too_large = TOO_LARGE_BODY; return 0; }
  so_buf_add(&x->body, p, len);
  return x->body.oom ? 0 : len;
}

/* One header line; a status line starts a new response (after a 1xx). */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  so_xfer *x = ud;
  size_t len = size * n, end = len, start = 0;
  if (len > HEAD_MAX - x->head_total) { x->too_large = TOO_LARGE_HEAD; return 0; }
  x->head_total += len;
  while (end > 0 && (p[end - 1] == '\n' || p[end - 1] == '\r')) end--;
  if (end >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    x->head.len = x->body.len = 0;
    return len;
  }
  if (end == 0) return len;
  if (len > x->max_body - x->head.len) { x->too_large = TOO_LARGE_BODY; return 0; }
  if ((p[0] == ' ' || p[0] == '\t') && x->head.len > 0) {   /* obsolete line folding */
    while (start < end && (p[start] == ' ' || p[start] == '\t')) start++;
    x->head.p[x->head.len - 1] = ' ';
  }
  so_buf_add(&x->head, p + start, end - start);
  so_buf_addc(&x->head, '\n');
  return x->head.oom ? 0 : len;
}

/* body_file into libcurl's upload buffer. */
static size_t on_read(char *p, size_t size, size_t n, void *ud) {
  so_xfer *x = ud;
  size_t got = fread(p, 1, size * n, x->fp);
  if (got == 0 && ferror(x->fp)) {
    x->read_failed = 1;
    return CURL_READFUNC_ABORT;
  }
  return got;
}

/* Rewind body_file when libcurl resends (e.g. a reused connection was dead). */
static int on_seek(void *ud, curl_off_t off, int origin) {
  so_xfer *x = ud;
  if (x->fp == NULL || fseeko(x->fp, (off_t)off, origin) != 0) return CURL_SEEKFUNC_CANTSEEK;
  return CURL_SEEKFUNC_OK;
}

/* on_progress under lua_pcall whenever there is more to report: (sent,
 * total) of the request body, or for a request with a sink (received,
 * total) of the file: the bytes it holds (kept ones included) and the size
 * it will have (0 when the answer did not say). An error stops the transfer. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow) {
  so_xfer *x = ud;
  curl_off_t now = ulnow, total = ultotal;
  (void)dlnow;
  if (x->cb_failed) return 1;
  if (x->sinking != SINK_NONE) {
    if (x->sinking != SINK_ON) return 0;
    now = (curl_off_t)(x->sink.kept + x->sink.written);
    total = dltotal > 0 ? (curl_off_t)x->sink.kept + dltotal : 0;
  }
  if (now <= x->sent) return 0;
  x->sent = now;
  if (!push_callback(x, x->progress, "on_progress")) return 0;
  lua_pushinteger(x->L, (lua_Integer)now);
  lua_pushinteger(x->L, (lua_Integer)total);
  return call_callback(x, x->progress, 2) != 0;
}

/* ---------------------------------------------------------- header checks */

/* Case-insensitive: is the header name s[0, n) equal to name? */
static int name_is(const char *s, size_t n, const char *name) {
  size_t i;
  if (strlen(name) != n) return 0;
  for (i = 0; i < n; i++)
    if ((s[i] | 32) != (name[i] | 32)) return 0;
  return 1;
}

/* Check the header at -1 ("Name: value") and return the length of its name. */
static size_t check_header(lua_State *L, lua_Integer i, const char *fn) {
  size_t n, k;
  const char *s;
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "bad header #%I to '%s' (string expected, got %s)", i, fn, luaL_typename(L, -1));
  s = lua_tolstring(L, -1, &n);
  for (k = 0; k < n; k++)
    if (s[k] == '\r' || s[k] == '\n' || s[k] == '\0')
      luaL_error(L, "bad header #%I to '%s' (CR, LF or NUL in it)", i, fn);
  for (k = 0; k < n && so_tchar[(unsigned char)s[k]]; k++) {}
  if (k == 0 || k == n || s[k] != ':')
    luaL_error(L, "bad header #%I to '%s' ('Name: value' expected)", i, fn);
  return k;
}

/* --------------------------------------------------------- request tables */

/* Is the request's method exactly m? */
static int method_is(const so_req *r, const char *m) {
  return r->method.n == strlen(m) && memcmp(r->method.s, m, r->method.n) == 0;
}

/* Must r go on a new connection? libcurl re-sends a request, unchanged (the
 * same OAuth nonce), when a reused connection dies before the first byte of
 * the answer, even if the server had read it whole: harmless for the
 * idempotent methods, a duplicate album or a spurious nonce_used for the
 * others. A new connection is never retried that way. So unless the request
 * says `fresh = false` (the caller accepts a re-send, e.g. retry.unsafe),
 * every method but GET, HEAD, PUT, DELETE and OPTIONS gets one; `fresh =
 * true` forces one for any method. */
static long fresh_connection(const so_req *r) {
  if (r->fresh >= 0) return r->fresh ? 1L : 0L;
  return method_is(r, "GET") || method_is(r, "HEAD") || method_is(r, "PUT") ||
         method_is(r, "DELETE") || method_is(r, "OPTIONS") ? 0L : 1L;
}

/* headers: an array of "Name: value" strings, each checked. */
static void req_headers(lua_State *L, const so_opt *o, int *out) {
  lua_Integer j, n = (lua_Integer)lua_rawlen(L, -1);
  for (j = 1; j <= n; j++) {
    lua_rawgeti(L, -1, j);
    check_header(L, j, o->fn);
    lua_pop(L, 1);
  }
  *out = 1;
}

/* on_progress, on_data: functions, called from the transfer (under
 * lua_pcall); the type is checked by the row. */
static void req_function(lua_State *L, const so_opt *o, int *out) {
  (void)L;
  (void)o;
  *out = 1;
}

/* out_offset: an integer, 0 or more. */
static void req_offset(lua_State *L, const so_opt *o, lua_Integer *out) {
  int ok;
  lua_Integer n = lua_tointegerx(L, -1, &ok);
  if (!ok || n < 0) so_opt_error(L, o, "an integer, 0 or more, expected");
  *out = n;
}

/* out_file: an open Lua file handle. */
static void req_file(lua_State *L, const so_opt *o, int *out) {
  luaL_Stream *f = luaL_testudata(L, -1, LUA_FILEHANDLE);
  if (f == NULL) so_opt_error(L, o, "a file handle expected");
  if (f->closef == NULL) so_opt_error(L, o, "the file is closed");
  *out = 1;
}

/* digest: "md5". */
static void req_digest(lua_State *L, const so_opt *o, int *out) {
  if (strcmp(lua_tostring(L, -1), "md5") != 0) so_opt_error(L, o, "\"md5\" expected");
  *out = 1;
}

/* Read the option on top of the stack (its key in o) into r; an unknown key
 * raises. Expanded from the SO_REQ_OPT rows. */
static void req_option(lua_State *L, const so_opt *o, so_req *r) {
#define SO_REQ_OPT(name, type, reader, field)    \
  if (so_opt_is(o, #name)) {                     \
    so_opt_type(L, o, LUA_T##type);              \
    reader(L, o, &r->field);                     \
    return;                                      \
  }
#include "http_opts.h"
  so_opt_unknown(L, o);
}

/* Read and check the request table at idx; misuse raises naming fn. */
void so_xfer_readreq(lua_State *L, int idx, so_req *r, const char *fn) {
  so_opt o = SO_OPT_INIT(fn);
  const char *err;
  size_t i;
  memset(r, 0, sizeof *r);
  r->method.s = "GET";
  r->method.n = 3;
  r->fresh = -1;                   /* not given: by method (fresh_connection) */
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (so_opt_next(L, idx, &o)) {
    req_option(L, &o, r);
    lua_pop(L, 1);
  }
  for (i = 0; i < r->method.n && so_tchar[(unsigned char)r->method.s[i]]; i++) {}
  if (r->method.n == 0 || r->method.n > 32 || i < r->method.n)
    luaL_error(L, "bad option 'method' to '%s' (an HTTP method token expected)", fn);
  if (r->url.s == NULL) luaL_error(L, "missing option 'url' to '%s'", fn);
  if ((err = so_url_parse(&r->u, r->url.s, r->url.n)) != NULL)
    luaL_error(L, "bad option 'url' to '%s' (%s)", fn, err);
  if (!so_url_scheme_is(&r->u, "http") && !so_url_scheme_is(&r->u, "https"))
    luaL_error(L, "bad option 'url' to '%s' (http or https expected)", fn);
  if (r->body.s != NULL && r->body_file != NULL)
    luaL_error(L, "options 'body' and 'body_file' to '%s' exclude each other", fn);
  if (method_is(r, "HEAD") && (r->body.s != NULL || r->body_file != NULL))
    luaL_error(L, "a HEAD request to '%s' cannot have a body", fn);
  if ((r->out != NULL) + r->out_file + r->on_data > 1)
    luaL_error(L, "options 'out', 'out_file' and 'on_data' to '%s' exclude each other", fn);
  if (r->out_offset > 0 && r->out == NULL)
    luaL_error(L, "option 'out_offset' to '%s' needs 'out'", fn);
  if (r->digest && r->out == NULL && !r->out_file && !r->on_data)
    luaL_error(L, "option 'digest' to '%s' needs 'out', 'out_file' or 'on_data'", fn);
  if (r->sync && r->out == NULL && !r->out_file)
    luaL_error(L, "option 'sync' to '%s' needs 'out' or 'out_file'", fn);
}

/* -------------------------------------------------------------- transfers */

/* An idle transfer with empty buffers and no easy handle yet. */
void so_xfer_init(so_xfer *x) {
  memset(x, 0, sizeof *x);
  so_buf_init(&x->body);
  so_buf_init(&x->head);
  so_buf_init(&x->what);
  so_buf_init(&x->query);
  so_buf_init(&x->sinkname);
  so_sink_init(&x->sink);
}

/* Empty a buffer for the next transfer; big ones go back to the system. */
static void buf_drop(so_buf *b) {
  if (b->cap > KEEP_BUF) so_buf_free(b);
  b->len = 0;
  b->oom = 0;
}

/* Free what only the running transfer needs: the FILE * and the header
 * list (the sink stays: so_xfer_push finishes it, so_xfer_reset drops it). */
void so_xfer_release(so_xfer *x) {
  if (x->fp != NULL) { fclose(x->fp); x->fp = NULL; }
  curl_slist_free_all(x->hdrs);
  x->hdrs = NULL;
  x->L = NULL;
  x->progress = x->data = 0;
  x->ptab = 0;
}

/* Back to idle after the result was pushed (or the transfer abandoned):
 * a sink still open is closed, unsynced. */
void so_xfer_reset(so_xfer *x) {
  so_xfer_release(x);
  so_sink_abort(&x->sink);
  so_sink_init(&x->sink);
  buf_drop(&x->body);
  buf_drop(&x->head);
  buf_drop(&x->what);
  buf_drop(&x->query);
  buf_drop(&x->sinkname);
  x->too_large = x->read_failed = x->cb_failed = 0;
  x->sinking = SINK_NONE;
  x->sink_failed = x->range_bad = x->digest = x->has_md5 = 0;
  x->offset = 0;
  x->sinkerr[0] = '\0';
  x->head_total = 0;
}

/* Free everything, the easy handle included. */
void so_xfer_free(so_xfer *x) {
  so_xfer_release(x);
  so_sink_abort(&x->sink);
  if (x->easy != NULL) { curl_easy_cleanup(x->easy); x->easy = NULL; }
  so_buf_free(&x->body);
  so_buf_free(&x->head);
  so_buf_free(&x->what);
  so_buf_free(&x->query);
  so_buf_free(&x->sinkname);
}

/* Append one request header line to x's list; raise when out of memory. */
static void add_header(lua_State *L, so_xfer *x, const char *h) {
  struct curl_slist *l = curl_slist_append(x->hdrs, h);
  if (l == NULL) luaL_error(L, "not enough memory");
  x->hdrs = l;
}

/* Open the sink of the checked request r (table at idx) last of all, so
 * that nothing can raise while it is open before the transfer owns it:
 * NULL, or "io" (the file cannot be opened or used; why in x->err) or
 * "crypto" (no MD5). Nothing is truncated or written yet: see sink_start. */
static const char *open_sink(lua_State *L, so_xfer *x, int idx, const so_req *r) {
  if (r->out != NULL) {
    so_buf_adds(&x->sinkname, r->out);
    if (so_sink_open(&x->sink, r->out, (unsigned long long)r->out_offset, r->digest,
                     x->err, sizeof x->err) != 0)
      return "io";
  } else if (r->out_file) {
    luaL_Stream *f;
    int fd;
    so_buf_adds(&x->sinkname, "out_file");
    lua_getfield(L, idx, "out_file");
    f = lua_touserdata(L, -1);           /* checked by req_file */
    lua_pop(L, 1);                       /* the request table anchors it */
    /* what the stream holds goes first; then our own descriptor of the same
     * open file, so closing the handle meanwhile cannot pull it away */
    if (f->closef == NULL || fflush(f->f) != 0 ||
        (fd = fcntl(fileno(f->f), F_DUPFD_CLOEXEC, 0)) < 0) {
      snprintf(x->err, sizeof x->err, "out_file: cannot use the file: %s",
               f->closef == NULL ? "it is closed" : strerror(errno));
      return "io";
    }
    so_sink_adopt(&x->sink, fd);
  } else {
    so_buf_adds(&x->sinkname, "on_data");
  }
  so_buf_addc(&x->sinkname, '\0');
  if (x->sinkname.oom) luaL_error(L, "not enough memory");   /* the sink is x's: reset closes it */
  if (r->digest && so_sink_digest(&x->sink, x->err, sizeof x->err) != 0) return "crypto";
  x->sink.sync = r->sync;
  x->digest = r->digest;
  x->offset = (unsigned long long)r->out_offset;
  x->sinking = SINK_WAIT;
  return NULL;
}

/* Set x up for the checked request r (table at idx) of the client at self.
 * Returns NULL, or the failure's code with the reason in x->err: "io" when
 * body_file cannot be read, "network" when libcurl refused an option. */
const char *so_xfer_prepare(lua_State *L, int self, so_xfer *x, int idx, const so_req *r,
                            const char *fn) {
  so_http *h = lua_touserdata(L, self);
  CURL *e = x->easy;
  CURLcode rc = CURLE_OK;
  curl_off_t fsize = 0;
  int has_ctype = 0, has_expect = 0, sink = r->out != NULL || r->out_file || r->on_data;
  so_xfer_reset(x);
  /* Reset every request: it keeps connections and TLS sessions, and it is the
   * only thing that zeroes libcurl's per-handle count of dead-connection
   * retries (7.88 does not per transfer: without it every 6th retry on the
   * handle fails; see "retries a dead reused connection" in http_spec). */
  curl_easy_reset(e);
  x->err[0] = '\0';
  x->max_body = r->max_body ? r->max_body : h->max_body;
  x->sent = 0;
  so_buf_add(&x->what, r->method.s, r->method.n);
  so_buf_addc(&x->what, ' ');
  so_buf_add(&x->what, r->url.s, (size_t)(r->u.path + r->u.path_len - r->url.s));
  so_buf_addc(&x->what, '\0');
  if (r->u.query != NULL) so_buf_add(&x->query, r->u.query, r->u.query_len);
  so_buf_addc(&x->query, '\0');
  if (x->what.oom || x->query.oom) luaL_error(L, "not enough memory");

  if (r->headers) {
    lua_Integer i, n;
    lua_getfield(L, idx, "headers");
    n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      size_t k;
      const char *s;
      lua_rawgeti(L, -1, i);
      k = check_header(L, i, fn);
      s = lua_tostring(L, -1);
      has_ctype |= name_is(s, k, "Content-Type");
      has_expect |= name_is(s, k, "Expect");
      add_header(L, x, s);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (!has_ctype) add_header(L, x, "Content-Type:");   /* no form type by default */
  if (!has_expect) add_header(L, x, "Expect:");        /* no 100-continue */

  if (r->body_file != NULL) {
    struct stat st;
    x->fp = fopen(r->body_file, "rbe");
    if (x->fp == NULL || fstat(fileno(x->fp), &st) != 0) {
      snprintf(x->err, sizeof x->err, "cannot read body_file '%s': %s", r->body_file,
               strerror(errno));
      return "io";
    }
    if (!S_ISREG(st.st_mode)) {
      snprintf(x->err, sizeof x->err, "cannot read body_file '%s': not a regular file",
               r->body_file);
      return "io";
    }
    fsize = (curl_off_t)st.st_size;
  }

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
  SET(CURLOPT_ERRORBUFFER, x->err);
  SET(CURLOPT_PRIVATE, (void *)x);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_URL, r->url.s);           /* anchored by the request table; NUL-free */
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);      /* always: no option turns these off */
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  if (lua_getiuservalue(L, self, UV_CAFILE) == LUA_TSTRING)
    SET(CURLOPT_CAINFO, lua_tostring(L, -1));        /* libcurl copies strings */
  lua_getiuservalue(L, self, UV_AGENT);
  SET(CURLOPT_USERAGENT, lua_tostring(L, -1));
  lua_pop(L, 2);
  if (sink) {
    /* a download of any size: no total limit unless asked, but at most the
     * client's timeout without a byte (libcurl's low-speed check) */
    SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME, (h->timeout_ms + 999) / 1000);
  } else {
    SET(CURLOPT_TIMEOUT_MS, r->timeout_ms ? r->timeout_ms : h->timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body);
  }
  SET(CURLOPT_FRESH_CONNECT, fresh_connection(r));     /* no silent re-send */
  SET(CURLOPT_SOCKOPTFUNCTION, on_sockopt);            /* close-on-exec */
  SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
  SET(CURLOPT_WRITEFUNCTION, on_write);
  SET(CURLOPT_WRITEDATA, (void *)x);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)x);
  SET(CURLOPT_HTTPHEADER, x->hdrs);
  if (r->body_file != NULL) {
    SET(CURLOPT_READFUNCTION, on_read);
    SET(CURLOPT_READDATA, (void *)x);
    SET(CURLOPT_SEEKFUNCTION, on_seek);
    SET(CURLOPT_SEEKDATA, (void *)x);
    if (method_is(r, "POST")) {
      SET(CURLOPT_POST, 1L);
      SET(CURLOPT_POSTFIELDSIZE_LARGE, fsize);
    } else {
      SET(CURLOPT_UPLOAD, 1L);
      SET(CURLOPT_INFILESIZE_LARGE, fsize);
    }
  } else if (r->body.s != NULL) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.n);
    SET(CURLOPT_POSTFIELDS, r->body.s);   /* anchored by the request table */
  } else if (method_is(r, "HEAD")) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (method_is(r, "POST")) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    SET(CURLOPT_POSTFIELDS, "");
  } else {
    SET(CURLOPT_HTTPGET, 1L);
  }
  if (!method_is(r, "GET") && !method_is(r, "HEAD") && !method_is(r, "POST") &&
      !(method_is(r, "PUT") && r->body_file != NULL)) {
    lua_pushlstring(L, r->method.s, r->method.n);
    SET(CURLOPT_CUSTOMREQUEST, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (r->progress) {
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, (void *)x);
  }
#undef SET
  if (rc == CURLE_OUT_OF_MEMORY) luaL_error(L, "not enough memory");
  if (rc != CURLE_OK) {
    snprintf(x->err, sizeof x->err, "cannot set up the transfer: %s", curl_easy_strerror(rc));
    return "network";
  }
  return sink ? open_sink(L, x, idx, r) : NULL;
}

/* ----------------------------------------------------------------- results */

/* The stable error code of a failed transfer. */
static const char *fail_code(const so_xfer *x, CURLcode rc) {
  if (x->range_bad) return "range";
  if (x->sink_failed) return "io";
  if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) return "too_large";
  /* libcurl 7.88 says "out of memory" for a header line over its 100 KiB cap:
   * a hostile or broken server, not our process running out */
  if (rc == CURLE_OUT_OF_MEMORY) return "too_large";
  if (x->read_failed || rc == CURLE_READ_ERROR) return "io";
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT: return "timeout";
  case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND: case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED: case CURLE_USE_SSL_FAILED:
  case CURLE_SSL_SHUTDOWN_FAILED: case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS:
#if LIBCURL_VERSION_NUM >= 0x074d00
  case CURLE_SSL_CLIENTCERT:
#endif
    return "tls";
  default: return "network";
  }
}

/* The Content-Range of the answer (for a message), "none" when absent. */
static const char *content_range(so_xfer *x) {
  static const char none[] = "none";
  size_t n;
  const char *v = find_header(x, "Content-Range", &n);
  if (v == NULL || n > 80) return none;
  memmove(x->sinkerr, v, n);            /* unused on this path: a scratch buffer */
  x->sinkerr[n] = '\0';
  return x->sinkerr;
}

/* Push "fn: METHOD scheme://host/path: detail" with the query string cut
 * out of detail (it may hold oauth_signature). */
static void push_message(lua_State *L, so_xfer *x, const char *fn, const char *detail) {
  const char *q = x->query.p, *cut;
  size_t dl = strlen(detail);
  if (q != NULL && q[0] != '\0' && (cut = strstr(detail, q)) != NULL) dl = (size_t)(cut - detail);
  lua_pushfstring(L, "%s: %s: ", fn, x->what.p);
  lua_pushlstring(L, detail, dl);
  if (dl < strlen(detail)) lua_pushliteral(L, "...");
  else lua_pushliteral(L, "");
  lua_concat(L, 3);
}

/* Turn the message on top into nil, message, code (or one table). */
static int push_fail(lua_State *L, const char *code, int as_table) {
  if (as_table) {
    lua_createtable(L, 0, 2);
    lua_insert(L, -2);
    lua_setfield(L, -2, "error");
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    return 1;
  }
  lua_pushnil(L);
  lua_insert(L, -2);
  lua_pushstring(L, code);
  return 3;
}

/* After so_xfer_prepare failed with code (x->err says why): reset x and push
 * the failure. Returns the number of values. */
int so_xfer_failprep(lua_State *L, so_xfer *x, const char *fn, const char *code,
                     int as_table) {
  push_message(L, x, fn, x->err);
  so_xfer_reset(x);
  return push_fail(L, code, as_table);
}

/* The response header lines as an array of {name, value}. */
static void push_headers(lua_State *L, const so_buf *hb) {
  size_t i = 0;
  lua_Integer n = 0;
  lua_newtable(L);
  while (i < hb->len) {
    const char *line = hb->p + i, *nl = memchr(line, '\n', hb->len - i), *colon, *v, *ve;
    size_t len = (size_t)(nl - line);
    i += len + 1;
    if ((colon = memchr(line, ':', len)) == NULL) continue;
    for (v = colon + 1; v < line + len && (*v == ' ' || *v == '\t'); v++) {}
    for (ve = line + len; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--) {}
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, line, (size_t)(colon - line));
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, v, (size_t)(ve - v));
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, ++n);
  }
}

/* The result's http_version string for a CURL_HTTP_VERSION_* value. */
static const char *version_name(long v) {
  switch (v) {
  case CURL_HTTP_VERSION_1_0: return "1.0";
  case CURL_HTTP_VERSION_1_1: return "1.1";
  case CURL_HTTP_VERSION_2_0: return "2";
  case CURL_HTTP_VERSION_3: return "3";
  default: return "unknown";
  }
}

/* Push the outcome of a finished transfer (its request state released):
 * the result table, or the failure: nil, message, code, and when a 2xx
 * body had begun to go to a sink, the bytes it got (as_table: a table
 * { error, code, written }). Returns the number of values. */
int so_xfer_push(lua_State *L, so_xfer *x, CURLcode rc, const char *fn, int as_table) {
  long status = 0, conns = 0, ver = 0;
  curl_off_t us = 0;
  if (x->body.oom || x->head.oom) {      /* our own buffers: really out of memory */
    so_xfer_reset(x);
    return luaL_error(L, "not enough memory");
  }
  if (rc == CURLE_OK && x->sinking == SINK_WAIT) sink_start(x);   /* a body of 0 bytes */
  if (rc == CURLE_OK && x->sinking == SINK_FAILED) rc = CURLE_WRITE_ERROR;
  if (rc == CURLE_OK && x->sinking == SINK_ON) {
    if (so_sink_finish(&x->sink, x->md5, x->sinkerr, sizeof x->sinkerr) != 0) {
      x->sink_failed = 1;
      rc = CURLE_WRITE_ERROR;
    } else {
      x->has_md5 = x->digest;
    }
  }
  so_sink_abort(&x->sink);               /* closed on every other path, unsynced */
  if (rc != CURLE_OK) {
    const char *code = fail_code(x, rc);
    int began = x->sinking == SINK_ON, n;
    lua_Integer written = (lua_Integer)x->sink.written;
    if (x->range_bad)
      lua_pushfstring(L, "the 206 answer does not continue at out_offset %I (Content-Range: %s)",
                      (lua_Integer)x->offset, content_range(x));
    else if (x->sink_failed)
      lua_pushfstring(L, "%s: %s", x->sinkname.p, x->sinkerr);
    else if (x->too_large == TOO_LARGE_HEAD)
      lua_pushfstring(L, "response headers larger than %I KiB", (lua_Integer)(HEAD_MAX >> 10));
    else if (x->too_large)
      lua_pushfstring(L, "response larger than max_body (%I bytes)", (lua_Integer)x->max_body);
    else if (rc == CURLE_OUT_OF_MEMORY)
      lua_pushliteral(L, "response header too large (libcurl gave up on it)");
    else if (rc == CURLE_FILESIZE_EXCEEDED)
      lua_pushfstring(L, "response larger than max_body (%I bytes, by Content-Length)",
                      (lua_Integer)x->max_body);
    else if (x->read_failed)
      lua_pushliteral(L, "error reading body_file");
    else
      lua_pushstring(L, x->err[0] ? x->err : curl_easy_strerror(rc));
    push_message(L, x, fn, lua_tostring(L, -1));
    lua_remove(L, -2);
    so_xfer_reset(x);
    n = push_fail(L, code, as_table);
    if (began) {                         /* the sink got these bytes, in order */
      lua_pushinteger(L, written);
      if (as_table) lua_setfield(L, -2, "written");
      else n++;
    }
    return n;
  }
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns);
  curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &ver);
  curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  push_headers(L, &x->head);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, x->body.p ? x->body.p : "", x->body.len);
  lua_setfield(L, -2, "body");
  lua_pushnumber(L, (lua_Number)us / 1e6);
  lua_setfield(L, -2, "time");
  lua_pushinteger(L, conns);
  lua_setfield(L, -2, "new_connections");
  lua_pushstring(L, version_name(ver));
  lua_setfield(L, -2, "http_version");
  if (x->sinking != SINK_NONE) {         /* what the sink got: nothing unless 2xx */
    int on = x->sinking == SINK_ON;
    lua_pushinteger(L, on ? (lua_Integer)x->sink.written : 0);
    lua_setfield(L, -2, "written");
    if (on) {
      lua_pushinteger(L, (lua_Integer)(x->sink.kept + x->sink.written));
      lua_setfield(L, -2, "size");
    }
    if (on && x->has_md5) {
      lua_pushlstring(L, (const char *)x->md5, sizeof x->md5);
      lua_setfield(L, -2, "md5");
    }
  }
  so_xfer_reset(x);
  return 1;
}
