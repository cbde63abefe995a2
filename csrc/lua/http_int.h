/* http_int.h -- internals shared by the libcurl client's files, from the
 * bottom up: http_xfer.c (one transfer: callbacks, request tables, curl
 * options, results), http.c (the smugoauth.Http object: calls http_xfer.c)
 * and lloop.c (the reactor: runs transfers with a client's settings, calls
 * both). Not part of the module's interface; the openers are in http.h and
 * lloop.h. */
#ifndef SO_HTTP_INT_H
#define SO_HTTP_INT_H

#include <stddef.h>
#include <stdio.h>

#include <curl/curl.h>

#include "auxiliar.h"
#include "buf.h"
#include "sink.h"
#include "url.h"

#define UV_CAFILE 1                 /* user values of the client userdata */
#define UV_AGENT 2

/* One transfer: an easy handle and what a request needs while it runs. */
typedef struct so_xfer {
  CURL *easy;
  struct curl_slist *hdrs;   /* request headers, alive while the transfer runs */
  FILE *fp;                  /* body_file being streamed */
  so_buf body, head;         /* response body; header lines "Name: value\n" */
  so_buf what;               /* "METHOD scheme://host/path\0" for messages */
  so_buf query;              /* the query string, kept out of messages */
  size_t max_body;
  size_t head_total;         /* header bytes received (all responses) */
  int too_large, read_failed, attached;   /* too_large: TOO_LARGE_BODY or _HEAD */
  lua_State *L;              /* Lua callbacks: the state, and for each its stack */
  int progress, data;        /* index (c:request), -1 for a reactor's transfer */
  int cb_failed;             /* (lloop.c), whose functions are [pkey].req.on_progress */
  int ptab;                  /* and .on_data of the table at stack index ptab; an */
  lua_Integer pkey;          /* error they raise goes to [pkey].raised. pkey: the */
                             /* reactor's id of it; 0 (progress, data): none */
  curl_off_t sent;           /* count last given to on_progress (sent or received) */
  /* the response sink (out, out_file, on_data): a 2xx body goes there */
  so_sink sink;
  int sinking;               /* SINK_*: none, waiting for the body, on, off, failed */
  int sink_failed;           /* a step of the sink failed ("io"): why in sinkerr */
  int range_bad;             /* a 206 that does not continue at out_offset */
  unsigned long long offset; /* out_offset: bytes of out to keep on a 206 */
  unsigned char md5[16];     /* the sink's digest, when asked and finished */
  int digest, has_md5;
  so_buf sinkname;           /* "'path'", "out_file" or "on_data", for messages */
  char sinkerr[SO_SINK_MSG_MAX];
  char err[CURL_ERROR_SIZE];
} so_xfer;

#define SINK_NONE 0                 /* so_xfer.sinking: no sink */
#define SINK_WAIT 1                 /* a sink, and no body byte yet */
#define SINK_ON 2                   /* a 2xx body going to the sink */
#define SINK_OFF 3                  /* another status: its body buffered (capped) */
#define SINK_FAILED 4               /* the sink could not begin: transfer aborted */

#define TOO_LARGE_BODY 1            /* so_xfer.too_large: which cap tripped */
#define TOO_LARGE_HEAD 2

/* A smugoauth.Http client. */
typedef struct so_http {
  so_xfer main;              /* request() */
  long timeout_ms, connect_ms;
  size_t max_body;
  int closed, busy;
} so_http;

/* A checked request table (its options: SO_REQ_OPT rows of http_opts.h);
 * strings are anchored by the table. */
typedef struct so_req {
  so_str method, url, body;
  const char *body_file;
  const char *out;           /* a path: a 2xx body streamed there */
  lua_Integer out_offset;    /* bytes of out to keep when the answer is a 206 */
  int out_file, on_data;     /* present? (a file handle; a function) */
  int digest, sync;          /* "md5" asked; fsync the sink before closing it */
  int headers, progress;     /* present? */
  int fresh;                 /* new connection: 1, 0, -1 (not given: by method) */
  long timeout_ms;           /* 0: the client's */
  size_t max_body;           /* 0: the client's */
  so_url u;
} so_req;

/* ---- http_xfer.c: transfers ---- */
/* An idle transfer with empty buffers and no easy handle yet. */
void so_xfer_init(so_xfer *x);
/* Free what only the running transfer needs: the FILE * and header list
 * (the sink stays for so_xfer_push to finish; so_xfer_reset drops it). */
void so_xfer_release(so_xfer *x);
/* Back to idle after the result was pushed (or the transfer abandoned). */
void so_xfer_reset(so_xfer *x);
/* Free everything, the easy handle included. */
void so_xfer_free(so_xfer *x);
/* Read and check the request table at idx into r; misuse raises naming fn. */
void so_xfer_readreq(lua_State *L, int idx, so_req *r, const char *fn);
/* Set x up for the checked request r (table at idx) of the client at self:
 * NULL, or the failure's code ("io": body_file cannot be read; "network":
 * libcurl refused an option) with the reason in x->err. Out of memory raises. */
const char *so_xfer_prepare(lua_State *L, int self, so_xfer *x, int idx, const so_req *r,
                            const char *fn);
/* After so_xfer_prepare failed with code: reset x and push the failure (nil,
 * message, code; or a { error, code } table). Returns the number of values. */
int so_xfer_failprep(lua_State *L, so_xfer *x, const char *fn, const char *code,
                     int as_table);
/* Push the outcome of the finished x (request state released) and reset x:
 * the result table (with written, size, md5 when it had a sink), or the
 * failure (nil, message, code [, written]: the bytes a sink got before it;
 * or a { error, code [, written] } table). Returns the number of values. */
int so_xfer_push(lua_State *L, so_xfer *x, CURLcode rc, const char *fn, int as_table);

/* ---- http.c: the client ---- */
/* The open, idle client at idx, or raise. */
so_http *so_http_check(lua_State *L, int idx);

#endif
