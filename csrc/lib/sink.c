/* sink.c -- a download's bytes into a file (or only a digest), and the
 * steps that make a finished file durable (sink.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sink.h"

#define CHUNK 32768                /* bytes read back at a time (kept bytes) */

/* Format a message into msg; returns -1. */
static int say(char *msg, size_t msglen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, msglen, fmt, ap);
  va_end(ap);
  return -1;
}

void so_sink_init(so_sink *s) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
}

int so_sink_open(so_sink *s, const char *path, unsigned long long keep, int hash_kept,
                 char *msg, size_t msglen) {
  int flags = (keep > 0 && hash_kept ? O_RDWR : O_WRONLY) | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
              O_NONBLOCK | O_NOCTTY;
  int fd = open(path, flags, 0644), fl;
  struct stat st;
  if (fd < 0) return say(msg, msglen, "%s: cannot open: %s", path, strerror(errno));
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return say(msg, msglen, "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return say(msg, msglen, "%s: not a regular file", path);
  }
  if ((unsigned long long)st.st_size < keep) {
    close(fd);
    return say(msg, msglen, "%s: holds %lld bytes, fewer than the %llu to keep", path,
               (long long)st.st_size, keep);
  }
  if ((fl = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
    int e = errno;
    close(fd);
    return say(msg, msglen, "%s: cannot set up: %s", path, strerror(e));
  }
  so_sink_abort(s);
  s->fd = fd;
  s->file = 1;
  return 0;
}

void so_sink_adopt(so_sink *s, int fd) {
  so_sink_abort(s);
  s->fd = fd;
  s->file = 0;
}

int so_sink_digest(so_sink *s, char *msg, size_t msglen) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
    EVP_MD_CTX_free(ctx);
    return say(msg, msglen, "cannot start an MD5 digest (OpenSSL)");
  }
  EVP_MD_CTX_free(s->md);
  s->md = ctx;
  return 0;
}

/* Hash the first n bytes of fd into the digest, reading them back. */
static int hash_kept(so_sink *s, unsigned long long n, char *msg, size_t msglen) {
  unsigned char buf[CHUNK];
  unsigned long long off = 0;
  while (off < n) {
    size_t want = n - off < CHUNK ? (size_t)(n - off) : CHUNK;
    ssize_t got = pread(s->fd, buf, want, (off_t)off);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return say(msg, msglen, "cannot read back the bytes to keep: %s", strerror(errno));
    if (got == 0) return say(msg, msglen, "the file shrank while its bytes were read back");
    if (!EVP_DigestUpdate(s->md, buf, (size_t)got))
      return say(msg, msglen, "MD5 digest failed (OpenSSL)");
    off += (unsigned long long)got;
  }
  return 0;
}

int so_sink_begin(so_sink *s, unsigned long long keep, char *msg, size_t msglen) {
  s->kept = s->written = 0;
  if (s->md != NULL && !EVP_DigestInit_ex(s->md, EVP_md5(), NULL))   /* a restart: afresh */
    return say(msg, msglen, "cannot start an MD5 digest (OpenSSL)");
  if (!s->file) {
    if (keep > 0) return say(msg, msglen, "cannot keep bytes of a descriptor not opened here");
    return 0;
  }
  if (ftruncate(s->fd, (off_t)keep) != 0)
    return say(msg, msglen, "cannot truncate to %llu bytes: %s", keep, strerror(errno));
  if (lseek(s->fd, (off_t)keep, SEEK_SET) == (off_t)-1)
    return say(msg, msglen, "cannot seek to %llu: %s", keep, strerror(errno));
  if (s->md != NULL && keep > 0 && hash_kept(s, keep, msg, msglen) != 0) return -1;
  s->kept = keep;
  return 0;
}

int so_sink_write(so_sink *s, const void *p, size_t len, char *msg, size_t msglen) {
  const char *c = p;
  size_t left = len;
  if (s->md != NULL && !EVP_DigestUpdate(s->md, p, len))
    return say(msg, msglen, "MD5 digest failed (OpenSSL)");
  while (s->fd >= 0 && left > 0) {
    ssize_t n = write(s->fd, c, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      s->written += len - left;
      return say(msg, msglen, "write failed: %s", strerror(e));
    }
    c += n;
    left -= (size_t)n;
  }
  s->written += len;
  return 0;
}

int so_sink_finish(so_sink *s, unsigned char md5[16], char *msg, size_t msglen) {
  int rc = 0;
  if (s->md != NULL) {
    unsigned int n = 0;
    if (!EVP_DigestFinal_ex(s->md, md5, &n) || n != 16)
      rc = say(msg, msglen, "MD5 digest failed (OpenSSL)");
  }
  /* a pipe or a terminal cannot be synced (EINVAL): nothing to make durable */
  if (rc == 0 && s->fd >= 0 && s->sync && fsync(s->fd) != 0 && errno != EINVAL)
    rc = say(msg, msglen, "fsync failed: %s", strerror(errno));
  if (s->fd >= 0) {
    int fd = s->fd;
    s->fd = -1;
    if (close(fd) != 0 && rc == 0 && errno != EINTR)
      rc = say(msg, msglen, "close failed: %s", strerror(errno));
  }
  so_sink_abort(s);
  return rc;
}

void so_sink_abort(so_sink *s) {
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  EVP_MD_CTX_free(s->md);
  s->md = NULL;
  s->file = 0;
}

/* ------------------------------------------------------------ durability */

/* Open the directory that holds path (read-only); -1 with errno set. */
static int open_dir_of(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  size_t n;
  if (slash == NULL) return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  n = slash == path ? 1 : (size_t)(slash - path);
  if (n >= sizeof dir) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(dir, path, n);
  dir[n] = '\0';
  return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int so_file_commit(const char *part, const char *final, int synced, char *msg, size_t msglen) {
  int fd;
  if (!synced) {
    if ((fd = open(part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0)
      return say(msg, msglen, "%s: cannot open to fsync: %s", part, strerror(errno));
    if (fsync(fd) != 0) {
      int e = errno;
      close(fd);
      return say(msg, msglen, "%s: cannot fsync: %s", part, strerror(e));
    }
    close(fd);
  }
  if (rename(part, final) != 0)
    return say(msg, msglen, "cannot rename %s to %s: %s", part, final, strerror(errno));
  if ((fd = open_dir_of(final)) < 0)
    return say(msg, msglen, "%s: cannot open its directory to fsync: %s", final, strerror(errno));
  /* some file systems cannot sync a directory (EINVAL): the rename stands */
  if (fsync(fd) != 0 && errno != EINVAL) {
    int e = errno;
    close(fd);
    return say(msg, msglen, "%s: cannot fsync its directory: %s", final, strerror(e));
  }
  close(fd);
  return 0;
}

int so_file_set_mtime(const char *path, double seconds, char *msg, size_t msglen) {
  struct timespec ts[2];
  double whole = (double)(long long)seconds;          /* toward zero, then down */
  if (whole > seconds) whole -= 1;
  ts[0].tv_sec = 0;
  ts[0].tv_nsec = UTIME_OMIT;
  ts[1].tv_sec = (time_t)whole;
  ts[1].tv_nsec = (long)((seconds - whole) * 1e9);
  if (ts[1].tv_nsec > 999999999L) ts[1].tv_nsec = 999999999L;
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0)
    return say(msg, msglen, "%s: cannot set its modification time: %s", path, strerror(errno));
  return 0;
}
