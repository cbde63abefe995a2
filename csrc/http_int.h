/* http_int.h -- internals shared by the libcurl client's files: http.c (the
 * smugoauth.Http object and its options), http_xfer.c (one transfer:
 * callbacks, request tables, curl options, results) and http_multi.c (the
 * c:many() driver). Not part of the module's interface. */
#ifndef SMUGOAUTH_HTTP_INT_H
#define SMUGOAUTH_HTTP_INT_H

#include <stddef.h>
#include <stdio.h>

#include <curl/curl.h>

#include "lcore.h"

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
  lua_State *L;              /* on_progress: state and stack index, 0 when none */
  int progress, cb_failed;
  curl_off_t sent;           /* upload count last given to on_progress */
  char err[CURL_ERROR_SIZE];
} so_xfer;

#define TOO_LARGE_BODY 1            /* so_xfer.too_large: which cap tripped */
#define TOO_LARGE_HEAD 2

/* A smugoauth.Http client. */
typedef struct so_http {
  so_xfer main;              /* request() */
  CURLM *multi;              /* many(): created on first use */
  so_xfer **pool;            /* many(): its transfers, kept for reuse */
  size_t npool;
  long timeout_ms, connect_ms;
  size_t max_body;
  int closed, busy;
} so_http;

/* A checked request table; strings are anchored by the table. */
typedef struct so_req {
  const char *method, *url, *body, *body_file;
  size_t method_len, url_len, body_len;
  int headers, progress;     /* present? */
  int fresh;                 /* use a new connection */
  long timeout_ms;           /* 0: the client's */
  size_t max_body;           /* 0: the client's */
  so_url u;
} so_req;

/* ---- http.c: option helpers (the key at -2, the value at -1; misuse
 * raises naming the option and fn), the client, many()'s transfers ---- */
/* The index in names of the option key at -2; unknown keys raise. */
int so_opt_field(lua_State *L, const char *const *names, const char *fn);
/* Raise unless the value at -1 has Lua type t. */
void so_opt_type(lua_State *L, int t, const char *k, const char *fn);
/* The string at -1 and its length. */
const char *so_opt_string(lua_State *L, const char *k, const char *fn, size_t *len);
/* The string at -1, which must hold no NUL byte. */
const char *so_opt_cstring(lua_State *L, const char *k, const char *fn);
/* The seconds at -1 as milliseconds, at least 1. */
long so_opt_ms(lua_State *L, const char *k, const char *fn);
/* The open, idle client at idx, or raise. */
so_http *so_http_check(lua_State *L, int idx);
/* Check the request table at idx; misuse raises, naming fn. */
void so_http_checkreq(lua_State *L, int idx, const char *fn);
/* The client's multi handle (a CURLM *) with n idle pooled transfers. */
void *so_http_multi(lua_State *L, so_http *h, size_t n);
/* Pooled transfer i (below the n given to so_http_multi). */
so_xfer *so_http_slot(so_http *h, size_t i);
/* Set x up from the request table at idx and add it to the multi handle of
 * the client at self: 1, or 0 with a { error, code } table pushed. */
int so_xfer_start(lua_State *L, int self, so_xfer *x, int idx);
/* Take the finished x out of the multi handle and push its result table. */
void so_xfer_finish(lua_State *L, int self, so_xfer *x, int curlcode);

/* ---- http_xfer.c: transfers ---- */
/* An idle transfer with empty buffers and no easy handle yet. */
void so_xfer_init(so_xfer *x);
/* Free what only the running transfer needs: the FILE * and header list. */
void so_xfer_release(so_xfer *x);
/* Back to idle after the result was pushed (or the transfer abandoned). */
void so_xfer_reset(so_xfer *x);
/* Free everything, the easy handle included. */
void so_xfer_free(so_xfer *x);
/* Read and check the request table at idx into r; misuse raises naming fn. */
void so_xfer_readreq(lua_State *L, int idx, so_req *r, const char *fn);
/* Set x up for the checked request r (table at idx) of the client at self:
 * 0, or -1 with the reason in x->err when body_file cannot be read. */
int so_xfer_prepare(lua_State *L, int self, so_xfer *x, int idx, const so_req *r,
                    const char *fn);
/* After so_xfer_prepare failed: reset x and push the "io" failure (nil,
 * message, code; or a { error, code } table). Returns the number of values. */
int so_xfer_failprep(lua_State *L, so_xfer *x, const char *fn, int as_table);
/* Push the outcome of the finished x (request state released) and reset x:
 * the result table, or the failure. Returns the number of values. */
int so_xfer_push(lua_State *L, so_xfer *x, CURLcode rc, const char *fn, int as_table);

#endif
