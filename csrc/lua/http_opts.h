/* http_opts.h -- the options of the libcurl client, declared once: one
 * X-macro row each, as Lua-cURLv3's lcopteasy.h. No include guard: the
 * client's files include it with SO_REQ_OPT or SO_HTTP_OPT defined to expand
 * the rows they need (the other kind expands to nothing), so an option
 * cannot be accepted in one place and forgotten in another.
 *
 *   SO_REQ_OPT(name, type, reader, field)   a request table (c:request,
 *                                           the reactor's r:start)
 *   SO_HTTP_OPT(name, type, reader, field)  the options of http_new
 *     name    the key
 *     type    its Lua type, LUA_T<type>
 *     reader  void reader(lua_State *, const so_opt *, <field type> *):
 *             auxiliar's so_opt_* or http_xfer.c's req_* readers
 *     field   where it lands: a field of so_req (http_int.h) or of
 *             http.c's http_newopts
 */
#ifndef SO_REQ_OPT
#define SO_REQ_OPT(name, type, reader, field)
#endif
#ifndef SO_HTTP_OPT
#define SO_HTTP_OPT(name, type, reader, field)
#endif

/* c:request{...} and r:start(c, {...}): */
SO_REQ_OPT(method,      STRING,   so_opt_str,     method)      /* "GET"; a token */
SO_REQ_OPT(url,         STRING,   so_opt_str,     url)         /* http(s), required */
SO_REQ_OPT(headers,     TABLE,    req_headers,    headers)     /* {"Name: value", ...} */
SO_REQ_OPT(body,        STRING,   so_opt_str,     body)
SO_REQ_OPT(body_file,   STRING,   so_opt_cstr,    body_file)   /* streamed from a file */
SO_REQ_OPT(on_progress, FUNCTION, req_function,   progress)    /* (sent, total) */
SO_REQ_OPT(timeout,     NUMBER,   so_opt_ms,      timeout_ms)  /* seconds; the client's */
SO_REQ_OPT(fresh,       BOOLEAN,  so_opt_bool,    fresh)       /* new connection; by method */
SO_REQ_OPT(max_body,    NUMBER,   so_opt_size,    max_body)    /* bytes; the client's */
/* Response sinks: a 2xx body goes to one of these instead of res.body (any
 * other status's body is buffered, capped, as without them), in constant
 * memory whatever its size; on_progress then gets (received, total) of the
 * file; without `timeout` a transfer has no total limit, but fails with
 * "timeout" after the client's timeout without a byte. */
SO_REQ_OPT(out,         STRING,   so_opt_cstr,    out)         /* a path: opened before sending */
SO_REQ_OPT(out_offset,  NUMBER,   req_offset,     out_offset)  /* a 206 keeps these bytes of out */
SO_REQ_OPT(out_file,    USERDATA, req_file,       out_file)    /* a Lua file handle (dup'd) */
SO_REQ_OPT(on_data,     FUNCTION, req_function,   on_data)     /* (chunk) under pcall */
SO_REQ_OPT(digest,      STRING,   req_digest,     digest)      /* "md5": res.md5, of the file */
SO_REQ_OPT(sync,        BOOLEAN,  so_opt_bool,    sync)        /* fsync out/out_file before close */

/* http_new{...}: */
SO_HTTP_OPT(ca_file,         STRING, so_opt_cstr, ca_file)     /* the system's bundle */
SO_HTTP_OPT(timeout,         NUMBER, so_opt_ms,   timeout_ms)  /* 30 s, the whole transfer */
SO_HTTP_OPT(connect_timeout, NUMBER, so_opt_ms,   connect_ms)  /* 10 s */
SO_HTTP_OPT(max_body,        NUMBER, so_opt_size, max_body)    /* 64 MiB of response */
SO_HTTP_OPT(user_agent,      STRING, so_opt_cstr, user_agent)  /* "smugoauth/<version>" */

#undef SO_REQ_OPT
#undef SO_HTTP_OPT
