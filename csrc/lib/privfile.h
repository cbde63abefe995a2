/*
 * privfile.h -- files that hold secrets (stored credentials, the cookie key):
 * read and replaced so that no other local user can read them, or slip a
 * file of theirs in place of ours. Plain C (no Lua); the Lua bindings are in
 * csrc/lua/lfile.c, and cookie.c reads its key file through it.
 *
 * A private file is a regular file, owned by the effective user, with no
 * permission bit for group or others, in a directory owned by the effective
 * user or root that neither group nor others may write (as ssh's
 * StrictModes asks of ~/.ssh). Every check is made on the descriptor that is
 * then read from: see privfile.c for why no file can be swapped in between.
 */
#ifndef SO_PRIVFILE_H
#define SO_PRIVFILE_H

#include <stddef.h>

/* Outcomes of so_priv_read and so_priv_write. */
enum {
  SO_PRIV_OK = 0,
  SO_PRIV_MISSING,     /* no such file (or no such directory) */
  SO_PRIV_REFUSED,     /* a symlink, not a regular file, not ours, group/other
                        * bits, or a directory others may write or own */
  SO_PRIV_TOO_LARGE,   /* more than the caller's capacity */
  SO_PRIV_IO           /* any other failure (errno text in the message) */
};

/* The outcome's stable error code: "ok", "missing", "refused", "too_large", "io". */
const char *so_priv_code(int outcome);

/* Longest path accepted (the whole path, and its directory part). */
#define SO_PRIV_PATH_MAX 4096
/* Room a message may need: two paths and some words. */
#define SO_PRIV_MSG_MAX (2 * SO_PRIV_PATH_MAX + 256)

/* Open the private file at path for reading and check it (at most max
 * bytes): SO_PRIV_OK with the descriptor in *fd (the caller closes it) and
 * its size in *size, or another outcome with a one-line message naming path
 * in msg (msglen bytes, always NUL-terminated) and *fd = -1. */
int so_priv_open(const char *path, size_t max, int *fd, size_t *size, char *msg, size_t msglen);

/* Read the descriptor fd (of path) to its end into buf (at most cap bytes):
 * SO_PRIV_OK with the length in *len, or a failure with a message (a file
 * that grows past cap is SO_PRIV_TOO_LARGE). buf may hold a part of the
 * file after a failure: the caller wipes it. */
int so_priv_read_fd(int fd, const char *path, unsigned char *buf, size_t cap, size_t *len,
                    char *msg, size_t msglen);

/* so_priv_open, then so_priv_read_fd into buf (cap bytes), then close. */
int so_priv_read(const char *path, unsigned char *buf, size_t cap, size_t *len,
                 char *msg, size_t msglen);

/* Replace (or create) the private file at path with data[0, n), atomically:
 * a new temporary file (mode 0600) in the same, checked directory is
 * written, fsync'd and renamed over path, then the directory is fsync'd
 * (best effort). A crash at any point leaves the old file or the new one.
 * SO_PRIV_OK, or another outcome with a message naming path and the step. */
int so_priv_write(const char *path, const void *data, size_t n, char *msg, size_t msglen);

#endif
