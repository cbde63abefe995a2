/* sink.h -- where a download's bytes go, and how a finished download is
 * made durable. Plain C (no Lua); the libcurl transfer (csrc/lua/http_xfer.c)
 * drives a sink, csrc/lua/lfile.c exposes commit and set_mtime.
 *
 * A sink is a descriptor written in order -- a file opened for the download
 * or one the caller hands over (it is then the sink's to close) -- or no
 * descriptor at all (the bytes go to a callback of the caller), with an
 * optional running MD5 of every byte the file ends up holding: the bytes
 * kept from an earlier, interrupted download first (read back and hashed),
 * then the ones written. Every step that fails says which step, with the
 * system's reason, in the caller's message buffer; nothing here allocates
 * but the digest context, and so_sink_abort frees everything on any path.
 */
#ifndef SO_SINK_H
#define SO_SINK_H

#include <stddef.h>

/* Room for a sink's message: a path and some words. */
#define SO_SINK_MSG_MAX 512

typedef struct so_sink {
  int fd;                          /* -1: none (a callback sink) or closed */
  int file;                        /* 1: fd is a file the sink opened (may truncate) */
  int sync;                        /* fsync before close */
  void *md;                        /* the MD5 context (EVP_MD_CTX *), NULL: none */
  unsigned long long kept;         /* bytes kept from before (after begin) */
  unsigned long long written;      /* bytes written since begin */
} so_sink;

/* An idle sink: no descriptor, no digest. */
void so_sink_init(so_sink *s);

/* Open path for a download: O_WRONLY (O_RDWR when hashing kept bytes),
 * O_CREAT, O_NOFOLLOW (a symlink is refused), O_CLOEXEC, O_NONBLOCK (a
 * FIFO does not block: it is refused), mode 0644 less the umask; it must be
 * a regular file at least `keep` bytes long. Nothing is truncated yet (a
 * failed request must leave the file as it was: see so_sink_begin).
 * 0, or -1 with the reason in msg. */
int so_sink_open(so_sink *s, const char *path, unsigned long long keep, int hash_kept,
                 char *msg, size_t msglen);

/* Make the descriptor fd (the caller's, e.g. a dup of a stdio stream's)
 * the sink's: written at its current offset, never truncated, closed by
 * the sink. */
void so_sink_adopt(so_sink *s, int fd);

/* Keep a running MD5 of the sink's bytes. 0, or -1 (OpenSSL failed). */
int so_sink_digest(so_sink *s, char *msg, size_t msglen);

/* The body starts. For a file the sink opened: keep its first `keep` bytes
 * (read back into the digest) and drop any after them, so that the body is
 * appended after exactly those; keep = 0 starts the file over. Otherwise
 * keep must be 0. 0, or -1 with the reason in msg. */
int so_sink_begin(so_sink *s, unsigned long long keep, char *msg, size_t msglen);

/* Write (or, without a descriptor, only hash) len bytes; 0, or -1 with the
 * reason in msg (a failed write: the file holds a prefix of what was given). */
int so_sink_write(so_sink *s, const void *p, size_t len, char *msg, size_t msglen);

/* The body is complete: the MD5 of every byte into md5 (16 bytes, when
 * hashing), fsync when s->sync, close. 0, or -1 with the reason in msg;
 * the sink is closed either way. */
int so_sink_finish(so_sink *s, unsigned char md5[16], char *msg, size_t msglen);

/* Close and free without syncing (failure paths); idempotent. */
void so_sink_abort(so_sink *s);

/* Make a finished download durable under its final name: fsync part
 * (unless `synced`: it was already), rename it to final, fsync the
 * directory of final. 0, or -1 with the failed step and reason in msg. */
int so_file_commit(const char *part, const char *final, int synced, char *msg, size_t msglen);

/* Set path's modification time to `seconds` since the epoch (fractions
 * kept; the access time is left alone; a symlink itself is not followed).
 * 0, or -1 with the reason in msg. */
int so_file_set_mtime(const char *path, double seconds, char *msg, size_t msglen);

#endif
