// SPDX-License-Identifier: MIT
// The echo load generator of bench/run_server.sh: single-threaded, epoll, C.
//
//   loadgen -c CONNECTIONS -s SIZE -d SECONDS [-w WARMUP_SECONDS] [-p SERVER_PID] [-k KEEP_SECONDS]
//           [HOST] PORT
//
// Every connection sends a SIZE-byte message, waits until all SIZE bytes have come back, and
// sends the next one: one request in flight per connection. After the warm-up, round trips are
// counted for SECONDS; each one's latency (send of the first byte to receipt of the last) goes
// into a log-linear histogram (64 sub-buckets per power of two: values within 1.6%). With -p, the
// server's CPU time (utime + stime from /proc/PID/stat) is read at the start and the end of the
// measured window. With -k, the connections stay open (idle) that long after the result is
// printed, so that a profiler can stop before they close. One machine-readable line at the end:
//
//   RESULT requests=N seconds=S rps=R p50_us=A p99_us=B p999_us=C server_cpu_s=T loadgen_cpu_s=U
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SUB_BITS 6
#define SUB (1 << SUB_BITS)
#define BUCKETS (64 * SUB)

struct conn {
  int fd;
  size_t sent;      // bytes of the current message sent
  size_t received;  // bytes of its echo received
  int64_t started;  // ns
  int want_out;
};

static uint64_t hist[BUCKETS];
static uint64_t counted;
static size_t msg_size;
static char *msg;
static char rbuf[256 * 1024];
static int epfd;
static int measuring;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static unsigned bucket_of(uint64_t v) {
  if (v < SUB) return (unsigned)v;
  unsigned msb = 63 - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - SUB_BITS + 1;
  return (shift << SUB_BITS) + (unsigned)(v >> shift);  // (v >> shift) is in [SUB/2, SUB)
}

// The middle of a bucket's range.
static double value_of(unsigned b) {
  if (b < SUB) return b;
  unsigned shift = b >> SUB_BITS;
  uint64_t mant = b & (SUB - 1);
  // bucket_of put (v >> shift) in [SUB/2, SUB) on top of shift << SUB_BITS.
  uint64_t lo = mant << shift;
  return (double)lo + (double)((uint64_t)1 << shift) / 2;
}

static double percentile(double p) {
  if (counted == 0) return 0;
  uint64_t rank = (uint64_t)(p * (double)counted);
  if (rank >= counted) rank = counted - 1;
  uint64_t seen = 0;
  for (unsigned b = 0; b < BUCKETS; ++b) {
    seen += hist[b];
    if (seen > rank) return value_of(b);
  }
  return 0;
}

static double cpu_of(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');  // the name may contain spaces
  if (!p) return -1;
  unsigned long utime = 0, stime = 0;
  // After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

static void set_out(struct conn *c, int on) {
  if (c->want_out == on) return;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
  c->want_out = on;
}

static void send_more(struct conn *c) {
  while (c->sent < msg_size) {
    ssize_t n = send(c->fd, msg + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        set_out(c, 1);
        return;
      }
      die("send");
    }
    c->sent += (size_t)n;
  }
  set_out(c, 0);
}

static void start_request(struct conn *c) {
  c->sent = c->received = 0;
  c->started = now_ns();
  send_more(c);
}

static void on_readable(struct conn *c) {
  ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    die("recv");
  }
  if (n == 0) {
    fprintf(stderr, "loadgen: the server closed a connection\n");
    exit(1);
  }
  c->received += (size_t)n;
  if (c->received > msg_size) {
    fprintf(stderr, "loadgen: got more bytes than sent\n");
    exit(1);
  }
  if (c->received < msg_size) return;
  if (measuring) {
    int64_t lat = now_ns() - c->started;
    hist[bucket_of((uint64_t)(lat < 0 ? 0 : lat))]++;
    counted++;
  }
  start_request(c);
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen -c CONNECTIONS -s SIZE -d SECONDS [-w WARMUP] [-p SERVER_PID] [-k KEEP] [HOST] PORT\n");
  exit(2);
}

int main(int argc, char **argv) {
  int conns = 100, server_pid = 0, opt;
  double duration = 5, warmup = 1, keep = 0;
  msg_size = 1024;
  while ((opt = getopt(argc, argv, "c:s:d:w:p:k:")) != -1) {
    switch (opt) {
      case 'c': conns = atoi(optarg); break;
      case 's': msg_size = (size_t)atol(optarg); break;
      case 'd': duration = atof(optarg); break;
      case 'w': warmup = atof(optarg); break;
      case 'p': server_pid = atoi(optarg); break;
      case 'k': keep = atof(optarg); break;
      default: usage();
    }
  }
  const char *host = "127.0.0.1";
  if (argc - optind == 2) host = argv[optind++];
  if (argc - optind != 1 || conns <= 0 || msg_size == 0) usage();
  int port = atoi(argv[optind]);
  signal(SIGPIPE, SIG_IGN);

  msg = malloc(msg_size);
  for (size_t i = 0; i < msg_size; ++i) msg[i] = (char)('a' + i % 26);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("inet_pton");
  struct conn *cs = calloc((size_t)conns, sizeof *cs);
  int one = 1;
  for (int i = 0; i < conns; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
    cs[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }
  for (int i = 0; i < conns; ++i) start_request(&cs[i]);

  struct epoll_event events[256];
  int64_t t0 = now_ns();
  int64_t measure_from = t0 + (int64_t)(warmup * 1e9);
  int64_t measure_to = measure_from + (int64_t)(duration * 1e9);
  double cpu0 = 0, self0 = 0;
  int64_t started_at = 0;
  for (;;) {
    int64_t now = now_ns();
    if (!measuring && now >= measure_from) {
      measuring = 1;
      started_at = now;
      if (server_pid) cpu0 = cpu_of(server_pid);
      self0 = self_cpu();
    }
    if (measuring && now >= measure_to) break;
    int n = epoll_wait(epfd, events, 256, 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      struct conn *c = events[i].data.ptr;
      if (events[i].events & EPOLLOUT) send_more(c);
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    }
  }
  double seconds = (double)(now_ns() - started_at) / 1e9;
  double server_cpu = server_pid ? cpu_of(server_pid) - cpu0 : -1;
  double self_used = self_cpu() - self0;
  printf("RESULT requests=%llu seconds=%.3f rps=%.1f p50_us=%.2f p99_us=%.2f p999_us=%.2f server_cpu_s=%.3f "
         "loadgen_cpu_s=%.3f\n",
         (unsigned long long)counted, seconds, (double)counted / seconds, percentile(0.50) / 1e3,
         percentile(0.99) / 1e3, percentile(0.999) / 1e3, server_cpu, self_used);
  fflush(stdout);
  if (keep > 0) usleep((useconds_t)(keep * 1e6));
  return 0;
}
