// SPDX-License-Identifier: MIT
// The floor of the server benchmark (bench/run_server.sh): a plain C, single-threaded,
// level-triggered epoll echo server. One recv per readiness event into one shared buffer, and a
// send of what arrived; only what the socket does not take is kept (per connection) and sent on
// EPOLLOUT. Nothing else: no allocation per request, no timers, no wakeup descriptor.
//
//   echo_c_epoll [host] [port]          echo every byte back
//   echo_c_epoll --http [host] [port]   answer every "\r\n\r\n"-terminated request with a fixed
//                                        HTTP/1.1 200 "Hello, World!" (keep-alive), for wrk
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE (256 * 1024)
#define MAX_EVENTS 256

static const char kHello[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

struct conn {
  int fd;
  char *pending;  // bytes the socket did not take (rare)
  size_t pending_len;
  unsigned tail;  // http: how many bytes of "\r\n\r\n" the previous read ended with
};

static int epfd;
static int http_mode;
static char rbuf[READ_SIZE];
static char wbuf[READ_SIZE / 16 * sizeof kHello];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void close_conn(struct conn *c) {
  close(c->fd);  // also leaves the epoll set
  free(c->pending);
  free(c);
}

static void set_events(struct conn *c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
}

// Sends `data`; buffers what the socket does not take and watches for EPOLLOUT. 0 on error.
static int send_all(struct conn *c, const char *data, size_t len) {
  if (c->pending_len) {  // keep the order: append behind what is waiting
    c->pending = realloc(c->pending, c->pending_len + len);
    memcpy(c->pending + c->pending_len, data, len);
    c->pending_len += len;
    return 1;
  }
  ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) return 0;
    n = 0;
  }
  if ((size_t)n == len) return 1;
  c->pending_len = len - (size_t)n;
  c->pending = malloc(c->pending_len);
  memcpy(c->pending, data + n, c->pending_len);
  set_events(c, EPOLLIN | EPOLLOUT);
  return 1;
}

// Counts complete requests in a read (the end of each head is "\r\n\r\n", possibly split).
static size_t count_requests(struct conn *c, const char *p, size_t n) {
  static const char end[] = "\r\n\r\n";
  size_t count = 0;
  unsigned t = c->tail;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] == end[t]) {
      if (++t == 4) {
        ++count;
        t = 0;
      }
    } else {
      t = p[i] == '\r' ? 1 : 0;
    }
  }
  c->tail = t;
  return count;
}

static void on_readable(struct conn *c) {
  ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    close_conn(c);
    return;
  }
  if (n < 0) return;
  int ok;
  if (!http_mode) {
    ok = send_all(c, rbuf, (size_t)n);
  } else {
    size_t requests = count_requests(c, rbuf, (size_t)n), len = 0;
    for (size_t i = 0; i < requests && len + sizeof kHello - 1 <= sizeof wbuf; ++i) {
      memcpy(wbuf + len, kHello, sizeof kHello - 1);
      len += sizeof kHello - 1;
    }
    ok = len == 0 || send_all(c, wbuf, len);
  }
  if (!ok) close_conn(c);
}

// 0 if the connection was closed.
static int on_writable(struct conn *c) {
  ssize_t n = send(c->fd, c->pending, c->pending_len, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      close_conn(c);
      return 0;
    }
    return 1;
  }
  c->pending_len -= (size_t)n;
  memmove(c->pending, c->pending + n, c->pending_len);
  if (c->pending_len == 0) {
    free(c->pending);
    c->pending = NULL;
    set_events(c, EPOLLIN);
  }
  return 1;
}

int main(int argc, char **argv) {
  int arg = 1;
  if (arg < argc && strcmp(argv[arg], "--http") == 0) {
    http_mode = 1;
    ++arg;
  }
  const char *host = arg < argc ? argv[arg++] : "127.0.0.1";
  int port = arg < argc ? atoi(argv[arg++]) : 8888;
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("inet_pton");
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 1024) < 0) die("listen");

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};  // NULL: the listener
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");
  printf("Serving on %s:%d\n", host, port);
  fflush(stdout);

  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      struct conn *c = events[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c = calloc(1, sizeof *c);
          c->fd = fd;
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
          if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev) < 0) die("epoll_ctl");
        }
        continue;
      }
      // A connection closed here is not looked at again: each appears once per epoll_wait.
      if ((events[i].events & EPOLLOUT) && !on_writable(c)) continue;
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    }
  }
}
