/* privfile.c -- reading and atomically replacing private files (privfile.h).
 *
 * Why nothing can be swapped in between a check and a use: the directory
 * is opened once and checked through that descriptor (fstat: owned by us
 * or root, not writable by group or others); the file is opened *relative
 * to that descriptor* (openat) with O_NOFOLLOW, so a symlink is refused and
 * the file is an entry of the very directory that was checked, whatever
 * happens to the path's other components meanwhile; the file's checks
 * (regular, ours, no group/other bits) are made on the open descriptor
 * (fstat) and the data is read from that same descriptor. Renaming another
 * file over the name after the open changes nothing for us: we hold the
 * inode we checked. And since only its owner (or root) can write in the
 * directory, no one else can put a file there at all.
 *
 * O_NONBLOCK on the open keeps a FIFO planted under the name from blocking
 * us (it is then refused as not a regular file); O_NOCTTY keeps a terminal
 * device from becoming ours. Writes use the same directory descriptor for
 * the temporary file, the rename and the final fsync. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "encode.h"
#include "nonce.h"
#include "privfile.h"

const char *so_priv_code(int outcome) {
  static const char *const codes[] = { "ok", "missing", "refused", "too_large", "io" };
  return outcome >= SO_PRIV_OK && outcome <= SO_PRIV_IO ? codes[outcome] : "io";
}

/* Format a message into msg and return the outcome st. */
static int say(int st, char *msg, size_t msglen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, msglen, fmt, ap);
  va_end(ap);
  return st;
}

/* Split path into its directory (copied to dir, NUL-terminated) and its last
 * component (*base, inside path). -1 when the directory part is too long. */
static int split_path(const char *path, char *dir, size_t dirlen, const char **base) {
  const char *slash = strrchr(path, '/');
  size_t n;
  if (slash == NULL) {
    snprintf(dir, dirlen, ".");
    *base = path;
    return 0;
  }
  n = slash == path ? 1 : (size_t)(slash - path);      /* "/x": the root */
  if (n >= dirlen) return -1;
  memcpy(dir, path, n);
  dir[n] = '\0';
  *base = slash + 1;
  return 0;
}

/* Is base a name a file can have in a directory (not "", "." or "..")? */
static int file_name(const char *base) {
  return base[0] != '\0' && strcmp(base, ".") != 0 && strcmp(base, "..") != 0;
}

/* Open and check the directory dir that holds path: the descriptor, or -1
 * with *st and msg set. */
static int open_dir(const char *path, const char *dir, int *st, char *msg, size_t msglen) {
  struct stat sb;
  int err, fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
    *st = say(err == ENOENT ? SO_PRIV_MISSING : SO_PRIV_IO, msg, msglen,
              "%s: cannot open its directory %s (%s)", path, dir, strerror(err));
    return -1;
  }
  if (fstat(fd, &sb) != 0) {
    err = errno;
    close(fd);
    *st = say(SO_PRIV_IO, msg, msglen, "%s: cannot stat its directory %s (%s)", path, dir,
              strerror(err));
    return -1;
  }
  if (sb.st_uid != geteuid() && sb.st_uid != 0) {
    close(fd);
    *st = say(SO_PRIV_REFUSED, msg, msglen,
              "%s: refused: its directory %s belongs to another user", path, dir);
    return -1;
  }
  if ((sb.st_mode & 022) != 0) {
    close(fd);
    *st = say(SO_PRIV_REFUSED, msg, msglen,
              "%s: refused: its directory %s is writable by group or others (mode %o);"
              " run chmod go-w %s", path, dir, (unsigned)(sb.st_mode & 07777), dir);
    return -1;
  }
  return fd;
}

/* Check the open file fd (for path, at most cap bytes): SO_PRIV_OK with its
 * size, or a refusal in msg. */
static int check_file(int fd, const char *path, size_t cap, size_t *size, char *msg,
                      size_t msglen) {
  struct stat sb;
  if (fstat(fd, &sb) != 0)
    return say(SO_PRIV_IO, msg, msglen, "%s: cannot stat (%s)", path, strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return say(SO_PRIV_REFUSED, msg, msglen, "%s: refused: not a regular file", path);
  if (sb.st_uid != geteuid())
    return say(SO_PRIV_REFUSED, msg, msglen, "%s: refused: the file belongs to another user",
               path);
  if ((sb.st_mode & 077) != 0)
    return say(SO_PRIV_REFUSED, msg, msglen,
               "%s: refused: mode %o lets others read it (group or others have access);"
               " run chmod 600 %s", path, (unsigned)(sb.st_mode & 07777), path);
  if (sb.st_size < 0 || (unsigned long long)sb.st_size > (unsigned long long)cap)
    return say(SO_PRIV_TOO_LARGE, msg, msglen, "%s: refused: larger than %zu bytes", path, cap);
  *size = (size_t)sb.st_size;
  return SO_PRIV_OK;
}

int so_priv_read_fd(int fd, const char *path, unsigned char *buf, size_t cap, size_t *len,
                    char *msg, size_t msglen) {
  size_t n = 0;
  *len = 0;
  for (;;) {
    unsigned char extra;
    ssize_t got = n < cap ? read(fd, buf + n, cap - n) : read(fd, &extra, 1);
    if (got < 0) {
      if (errno == EINTR) continue;
      return say(SO_PRIV_IO, msg, msglen, "%s: cannot read (%s)", path, strerror(errno));
    }
    if (got == 0) break;
    if (n == cap)        /* more than fstat said */
      return say(SO_PRIV_TOO_LARGE, msg, msglen, "%s: refused: it grew while being read", path);
    n += (size_t)got;
  }
  *len = n;
  return SO_PRIV_OK;
}

int so_priv_open(const char *path, size_t max, int *fd, size_t *size, char *msg, size_t msglen) {
  char dir[SO_PRIV_PATH_MAX];
  const char *base;
  int dfd, err, st;
  *fd = -1;
  *size = 0;
  msg[0] = '\0';
  if (strlen(path) >= SO_PRIV_PATH_MAX || split_path(path, dir, sizeof dir, &base) != 0)
    return say(SO_PRIV_IO, msg, msglen, "%.200s...: path too long", path);
  if (!file_name(base))
    return say(SO_PRIV_REFUSED, msg, msglen, "%s: refused: not a regular file", path);
  if ((dfd = open_dir(path, dir, &st, msg, msglen)) < 0) return st;
  *fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  err = errno;
  close(dfd);
  if (*fd < 0) {
    if (err == ENOENT) return say(SO_PRIV_MISSING, msg, msglen, "%s: no such file", path);
    if (err == ELOOP)
      return say(SO_PRIV_REFUSED, msg, msglen, "%s: refused: a symbolic link", path);
    return say(SO_PRIV_IO, msg, msglen, "%s: cannot open (%s)", path, strerror(err));
  }
  if ((st = check_file(*fd, path, max, size, msg, msglen)) != SO_PRIV_OK) {
    close(*fd);
    *fd = -1;
  }
  return st;
}

int so_priv_read(const char *path, unsigned char *buf, size_t cap, size_t *len,
                 char *msg, size_t msglen) {
  size_t size;
  int fd, st;
  *len = 0;
  if ((st = so_priv_open(path, cap, &fd, &size, msg, msglen)) != SO_PRIV_OK) return st;
  st = so_priv_read_fd(fd, path, buf, cap, len, msg, msglen);
  close(fd);
  return st;
}

/* Write all of buf to fd, retrying on EINTR and short writes. */
static int write_all(int fd, const unsigned char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

/* An errno failure of the write at step `what`. */
static int write_failed(const char *path, const char *what, int err, char *msg, size_t msglen) {
  return say(SO_PRIV_IO, msg, msglen, "%s: %s: %s", path, what, strerror(err));
}

int so_priv_write(const char *path, const void *data, size_t n, char *msg, size_t msglen) {
  char dir[SO_PRIV_PATH_MAX], tmp[512];
  const char *base, *step = NULL;
  int dfd, fd = -1, i, err, st;
  msg[0] = '\0';
  if (strlen(path) >= SO_PRIV_PATH_MAX || split_path(path, dir, sizeof dir, &base) != 0)
    return say(SO_PRIV_IO, msg, msglen, "%.200s...: path too long", path);
  if (!file_name(base))
    return say(SO_PRIV_REFUSED, msg, msglen, "%s: refused: not a file name", path);
  if (strlen(base) > sizeof tmp - 32) return write_failed(path, "name", ENAMETOOLONG, msg, msglen);
  if ((dfd = open_dir(path, dir, &st, msg, msglen)) < 0) return st;
  for (i = 0; i < 100; i++) {
    unsigned char r[6];
    char hex[13];
    if (so_random(r, sizeof r) != 0) {
      close(dfd);
      return say(SO_PRIV_IO, msg, msglen, "%s: no randomness for a temporary name", path);
    }
    so_hex_encode(hex, r, sizeof r);
    hex[12] = '\0';
    snprintf(tmp, sizeof tmp, "%s.tmp-%s", base, hex);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 || errno != EEXIST) break;
  }
  if (fd < 0) {
    err = errno;
    close(dfd);
    return write_failed(path, "cannot create a temporary file", err, msg, msglen);
  }
  if (fchmod(fd, 0600) != 0) step = "cannot set mode 0600 on the temporary file";
  else if (write_all(fd, data, n) != 0) step = "cannot write the temporary file";
  else if (fsync(fd) != 0) step = "cannot fsync the temporary file";
  if (step != NULL) {
    err = errno;
    close(fd);
  } else if (close(fd) != 0) {
    err = errno;
    step = "cannot close the temporary file";
  } else if (renameat(dfd, tmp, dfd, base) != 0) {
    err = errno;
    step = "cannot replace";
  }
  if (step != NULL) {
    unlinkat(dfd, tmp, 0);
    close(dfd);
    return write_failed(path, step, err, msg, msglen);
  }
  (void)fsync(dfd);      /* make the rename durable; not all filesystems allow it */
  close(dfd);
  return SO_PRIV_OK;
}
