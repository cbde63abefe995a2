/* sign_opts.h -- the options of sign{} and signer{}, declared once: one
 * X-macro row each, as Lua-cURLv3's lcopteasy.h. No include guard: lsign.c
 * includes this file with SO_SIGN_OPT defined to expand the rows into the
 * fields of sign_opts (lsign.h) and into the reader of the options table;
 * any other expansion is made the same way, so a name can never be declared
 * in one place and missed in another.
 *
 *   SO_SIGN_OPT(name, type, ctype, reader, scope)
 *     name    the option's key, and the field of sign_opts it is read into
 *     type    its Lua type, LUA_T<type>; NONE: the reader checks
 *     ctype   the C type of the field
 *     reader  void reader(lua_State *, const so_opt *, ctype *): auxiliar's
 *             so_opt_* or lsign.c's sign_* readers
 *     scope   REQUEST: sign{} only (signer{} refuses it: it belongs to a
 *             request); ANY: sign{} and signer{}
 */
#ifndef SO_SIGN_OPT
#define SO_SIGN_OPT(name, type, ctype, reader, scope)
#endif

/* the request */
SO_SIGN_OPT(method,           STRING, so_str,  so_opt_str,      REQUEST)  /* "GET" */
SO_SIGN_OPT(url,              STRING, so_str,  so_opt_str,      REQUEST)  /* required */
SO_SIGN_OPT(params,           TABLE,  int,     so_opt_present,  REQUEST)  /* pairs or map */
/* the credentials */
SO_SIGN_OPT(consumer_key,     STRING, so_str,  so_opt_str,      ANY)      /* required */
SO_SIGN_OPT(consumer_secret,  STRING, so_str,  so_opt_str,      ANY)
SO_SIGN_OPT(token,            STRING, so_str,  so_opt_str,      ANY)      /* "": none */
SO_SIGN_OPT(token_secret,     STRING, so_str,  so_opt_str,      ANY)
SO_SIGN_OPT(signature_method, STRING, int,     sign_sigmethod,  ANY)      /* "HMAC-SHA1" */
SO_SIGN_OPT(rsa_key,          STRING, so_str,  so_opt_str,      ANY)      /* PEM, RSA-SHA1 */
SO_SIGN_OPT(realm,            STRING, so_str,  sign_realm,      ANY)      /* header only */
SO_SIGN_OPT(version,          NONE,   int,     sign_version,    ANY)      /* "1.0" or false */
/* the flow's parameters and what is made fresh otherwise */
SO_SIGN_OPT(callback,         STRING, so_str,  so_opt_str,      REQUEST)  /* "": none */
SO_SIGN_OPT(verifier,         STRING, so_str,  so_opt_str,      REQUEST)  /* "": none */
SO_SIGN_OPT(nonce,            STRING, so_str,  sign_nonce,      REQUEST)  /* 128 random bits */
SO_SIGN_OPT(timestamp,        NONE,   sign_ts, sign_timestamp,  REQUEST)  /* time(NULL) */

#undef SO_SIGN_OPT
