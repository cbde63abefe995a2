/* fastserver.c -- the benchmark server: a small HTTP/1.1 keep-alive server
 * on 127.0.0.1, one thread, epoll, that answers every request with one fixed
 * JSON body, so the client under test is what gets measured.
 *
 *   fastserver [--delay-ms N] [--body JSON] [--max-seconds S]
 *
 * It binds 127.0.0.1 on a free port, prints "PORT <n>" on stdout and serves
 * until SIGTERM/SIGINT, its parent's death (PR_SET_PDEATHSIG) or
 * --max-seconds (default 900) -- whichever comes first.
 *
 *   --delay-ms N   answer each request N ms after it was read in full
 *                  (timers on the epoll timeout; any number of connections
 *                  wait at once)
 *   --body JSON    the body of every answer (default a small authuser JSON)
 *
 * Request bodies (Content-Length) are read with 1 MiB reads and thrown
 * away, so it is also the upload sink; "Expect: 100-continue" is answered.
 * GET /_stats answers {"requests":R,"connections":C,"body_bytes":B} (not
 * counted). Transfer-Encoding is refused (501) -- no client here sends it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_CAP 65536            /* header section limit per request */
#define SCRATCH (1 << 20)         /* body reads */
#define MAX_FD 65536

enum { ST_HEAD, ST_BODY, ST_WAIT, ST_WRITE };

struct conn {
  int fd, state, close_after;
  char *in;                       /* header bytes (and pipelined leftovers) */
  size_t inlen;
  long long body_left;
  double due;                     /* ST_WAIT: when to answer */
  const char *out;                /* ST_WRITE: what is left to send */
  size_t outlen;
  char stats[256];
};

static struct conn *conns[MAX_FD];
static int epfd, nwaiting;
static long long n_requests, n_conns, n_body;
static char *answer, *answer_close;
static size_t answer_len, answer_close_len;
static double delay;
static volatile sig_atomic_t stop;
static char scratch[SCRATCH];

static const char R100[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char R501[] = "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char R431[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                           "Content-Length: 0\r\nConnection: close\r\n\r\n";
static const char R400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_signal(int sig) { (void)sig; stop = 1; }

static void watch(struct conn *c, unsigned int events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.fd = c->fd;
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void drop(struct conn *c) {
  if (c->state == ST_WAIT) nwaiting--;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  conns[c->fd] = NULL;
  free(c->in);
  free(c);
}

/* Case-insensitive search for a header field "name:" at a line start in
 * [h, h+n); returns its value (leading blanks skipped) or NULL. */
static const char *field(const char *h, size_t n, const char *name, size_t *vlen) {
  size_t k = strlen(name), i = 0;
  while (i < n) {
    const char *line = h + i, *nl = memchr(line, '\n', n - i);
    size_t len = nl ? (size_t)(nl - line) : n - i;
    i += len + 1;
    if (len > k && line[k] == ':' && strncasecmp(line, name, k) == 0) {
      const char *v = line + k + 1, *e = line + len;
      while (v < e && (*v == ' ' || *v == '\t')) v++;
      while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
      *vlen = (size_t)(e - v);
      return v;
    }
  }
  return NULL;
}

/* Send out/outlen; what does not go at once waits for EPOLLOUT.
 * Returns 0 when all was sent, 1 when pending, -1 when the connection died. */
static int send_answer(struct conn *c, const char *out, size_t outlen) {
  while (outlen > 0) {
    ssize_t w = send(c->fd, out, outlen, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->out = out;
        c->outlen = outlen;
        c->state = ST_WRITE;
        watch(c, EPOLLOUT);
        return 1;
      }
      return -1;
    }
    out += w;
    outlen -= (size_t)w;
  }
  return 0;
}

static int process(struct conn *c);

/* The request in c is complete: answer it now or after the delay. */
static int complete(struct conn *c, int is_stats) {
  int r;
  if (is_stats) {
    int n = snprintf(c->stats + 128, 128, "{\"requests\":%lld,\"connections\":%lld,\"body_bytes\":%lld}",
                     n_requests, n_conns, n_body);
    int h = snprintf(c->stats, 128, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n", n);
    memmove(c->stats + h, c->stats + 128, (size_t)n + 1);
    r = send_answer(c, c->stats, (size_t)(h + n));
  } else {
    n_requests++;
    if (delay > 0) {
      c->state = ST_WAIT;
      c->due = now() + delay;
      nwaiting++;
      watch(c, 0);
      return 0;
    }
    r = c->close_after ? send_answer(c, answer_close, answer_close_len)
                       : send_answer(c, answer, answer_len);
  }
  if (r != 0) return r;
  if (c->close_after) return -1;
  c->state = ST_HEAD;
  return process(c);
}

/* Parse whatever is buffered: heads, and body bytes already read with them.
 * Returns -1 when the connection is to be dropped. */
static int process(struct conn *c) {
  while (c->state == ST_HEAD) {
    char *end = NULL;
    size_t i, hlen, vlen, take;
    const char *v;
    int is_stats;
    for (i = 0; i + 3 < c->inlen; i++)
      if (c->in[i] == '\r' && c->in[i + 1] == '\n' && c->in[i + 2] == '\r' && c->in[i + 3] == '\n') {
        end = c->in + i + 4;
        break;
      }
    if (end == NULL) {
      if (c->inlen >= HEAD_CAP) { send_answer(c, R431, sizeof R431 - 1); return -1; }
      return 0;
    }
    hlen = (size_t)(end - c->in);
    if (field(c->in, hlen, "Transfer-Encoding", &vlen)) {
      send_answer(c, R501, sizeof R501 - 1);
      return -1;
    }
    c->body_left = 0;
    if ((v = field(c->in, hlen, "Content-Length", &vlen)) != NULL) {
      char *e;
      c->body_left = strtoll(v, &e, 10);
      if (e != v + vlen || c->body_left < 0) { send_answer(c, R400, sizeof R400 - 1); return -1; }
    }
    v = field(c->in, hlen, "Connection", &vlen);
    c->close_after = (v != NULL && vlen == 5 && strncasecmp(v, "close", 5) == 0) ||
                     (hlen > 10 && memmem(c->in, hlen < 256 ? hlen : 256, "HTTP/1.0\r\n", 10) != NULL &&
                      !(v != NULL && vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0));
    is_stats = c->inlen >= 12 && memcmp(c->in, "GET /_stats ", 12) == 0;
    v = field(c->in, hlen, "Expect", &vlen);
    take = c->inlen - hlen < (size_t)c->body_left ? c->inlen - hlen : (size_t)c->body_left;
    if (v != NULL && vlen == 12 && strncasecmp(v, "100-continue", 12) == 0 &&
        (long long)take < c->body_left)
      send(c->fd, R100, sizeof R100 - 1, MSG_NOSIGNAL);    /* tiny: goes at once */
    n_body += (long long)take;
    c->body_left -= (long long)take;
    memmove(c->in, end + take, c->inlen - hlen - take);
    c->inlen -= hlen + take;
    if (c->body_left > 0) {
      c->state = ST_BODY;
      return 0;
    }
    return complete(c, is_stats);
  }
  return 0;
}

static void on_readable(struct conn *c) {
  for (;;) {
    ssize_t r;
    if (c->state == ST_BODY) {
      size_t want = c->body_left < SCRATCH ? (size_t)c->body_left : SCRATCH;
      r = read(c->fd, scratch, want);
      if (r > 0) {
        n_body += r;
        c->body_left -= r;
        if (c->body_left == 0 && complete(c, 0) < 0) { drop(c); return; }
        if (c->state != ST_HEAD && c->state != ST_BODY) return;
        continue;
      }
    } else if (c->state == ST_HEAD) {
      if (c->inlen >= HEAD_CAP) {
        if (process(c) < 0) drop(c);
        return;
      }
      r = read(c->fd, c->in + c->inlen, HEAD_CAP - c->inlen);
      if (r > 0) {
        c->inlen += (size_t)r;
        if (process(c) < 0) { drop(c); return; }
        if (c->state != ST_HEAD && c->state != ST_BODY) return;
        if ((size_t)r < 4096) return;   /* likely drained: let epoll say */
        continue;
      }
    } else {
      return;
    }
    if (r == 0) { drop(c); return; }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) drop(c);
    return;
  }
}

static void on_writable(struct conn *c) {
  int r = send_answer(c, c->out, c->outlen);
  if (r < 0 || (r == 0 && c->close_after)) { drop(c); return; }
  if (r == 0) {
    c->state = ST_HEAD;
    watch(c, EPOLLIN);
    if (process(c) < 0) drop(c);
  }
}

static void fire_timers(double t) {
  int fd;
  for (fd = 0; fd < MAX_FD && nwaiting > 0; fd++) {
    struct conn *c = conns[fd];
    int r;
    if (c == NULL || c->state != ST_WAIT || c->due > t) continue;
    nwaiting--;
    c->state = ST_HEAD;
    r = c->close_after ? send_answer(c, answer_close, answer_close_len)
                       : send_answer(c, answer, answer_len);
    if (r < 0 || (r == 0 && c->close_after)) { drop(c); continue; }
    if (r == 0) {
      watch(c, EPOLLIN);
      if (process(c) < 0) drop(c);
    }
  }
}

static int next_timeout(double t) {
  double first = -1;
  int fd, seen = 0;
  if (nwaiting == 0) return 1000;
  for (fd = 0; fd < MAX_FD && seen < nwaiting; fd++) {
    struct conn *c = conns[fd];
    if (c == NULL || c->state != ST_WAIT) continue;
    seen++;
    if (first < 0 || c->due < first) first = c->due;
  }
  if (first <= t) return 0;
  return (int)((first - t) * 1000.0) + 1;
}

static char *make_answer(const char *body, int close_it, size_t *len) {
  size_t n = strlen(body) + 256;
  char *s = malloc(n);
  int k;
  if (s == NULL) exit(1);
  k = snprintf(s, n, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
               strlen(body), close_it ? "Connection: close\r\n" : "", body);
  *len = (size_t)k;
  return s;
}

int main(int argc, char **argv) {
  const char *body = "{\"Code\":200,\"Message\":\"Ok\",\"Response\":{\"Uri\":\"/api/v2!authuser\","
                     "\"User\":{\"NickName\":\"bench\",\"Name\":\"Bench User\",\"Uri\":\"/api/v2/user/bench\"}}}";
  double max_seconds = 900, t_end;
  int lfd, i, one = 1;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  struct epoll_event ev, evs[256];
  struct sigaction sa;
  pid_t parent = getppid();

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc) delay = atof(argv[++i]) / 1000.0;
    else if (strcmp(argv[i], "--body") == 0 && i + 1 < argc) body = argv[++i];
    else if (strcmp(argv[i], "--max-seconds") == 0 && i + 1 < argc) max_seconds = atof(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--delay-ms N] [--body JSON] [--max-seconds S]\n", argv[0]);
      return 2;
    }
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 0;            /* the parent is already gone */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  answer = make_answer(body, 0, &answer_len);
  answer_close = make_answer(body, 1, &answer_close_len);

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) { perror("socket"); return 1; }
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1024) != 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
    perror("bind/listen");
    return 1;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  printf("PORT %d\n", ntohs(a.sin_port));
  fflush(stdout);

  t_end = now() + max_seconds;
  while (!stop) {
    double t = now();
    int n;
    if (t >= t_end) break;
    n = epoll_wait(epfd, evs, 256, next_timeout(t));
    if (n < 0 && errno != EINTR) { perror("epoll_wait"); break; }
    for (i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      struct conn *c;
      if (fd == lfd) {
        int cfd;
        while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          c = cfd < MAX_FD ? calloc(1, sizeof *c) : NULL;
          if (c != NULL && (c->in = malloc(HEAD_CAP)) == NULL) { free(c); c = NULL; }
          if (c == NULL) { close(cfd); continue; }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c->fd = cfd;
          c->state = ST_HEAD;
          conns[cfd] = c;
          n_conns++;
          memset(&ev, 0, sizeof ev);
          ev.events = EPOLLIN;
          ev.data.fd = cfd;
          epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &ev);
        }
        continue;
      }
      if ((c = conns[fd]) == NULL) continue;
      if ((evs[i].events & (EPOLLERR | EPOLLHUP)) && c->state != ST_BODY && c->state != ST_HEAD) {
        drop(c);
        continue;
      }
      if (c->state == ST_WRITE && (evs[i].events & EPOLLOUT)) on_writable(c);
      else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    }
    if (nwaiting > 0) fire_timers(now());
  }
  for (i = 0; i < MAX_FD; i++)
    if (conns[i] != NULL) drop(conns[i]);
  close(lfd);
  close(epfd);
  free(answer);
  free(answer_close);
  return 0;
}
