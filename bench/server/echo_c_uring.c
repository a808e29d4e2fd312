// SPDX-License-Identifier: MIT
// A completion-based floor for the server benchmark (bench/run_server.sh): a plain C,
// single-threaded io_uring echo server (liburing). Each connection always has one operation in
// flight: a recv into its own buffer, then a send of what arrived, then the next recv. All the
// operations a loop pass produces go to the kernel in one io_uring_submit_and_wait, so where the
// epoll floor (echo_c_epoll.c) makes a recv and a send system call per request, this one makes
// about one system call per pass over all connections. It answers one question: how far past the
// epoll floor a completion-based backend could take a server on this machine.
//
//   echo_c_uring [host] [port]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define QUEUE_DEPTH 4096
#define RING_BUFS 1024  // --multishot: provided buffers, 16 KiB each
#define RING_BUF_SIZE (16 * 1024)

enum op { OP_ACCEPT, OP_RECV, OP_SEND, OP_MSEND };

struct conn {
  enum op op;  // first, as in struct msend
  int fd;
  size_t len, sent;  // OP_SEND: bytes to send, bytes sent so far
  char buf[BUF_SIZE];
};

// --multishot: a send of provided buffer `bid` (one in flight per buffer).
struct msend {
  enum op op;  // OP_MSEND, first like conn's so that completions tell the two apart
  int fd;
  unsigned bid;
  size_t len, sent;
};

static struct io_uring ring;
static struct conn accept_token = {.op = OP_ACCEPT};
static int multishot;
static struct io_uring_buf_ring *buf_ring;
static char *ring_bufs;
static struct msend msends[RING_BUFS];

static void die(const char *what, int err) {
  fprintf(stderr, "%s: %s\n", what, strerror(err));
  exit(1);
}

static struct io_uring_sqe *sqe(void) {
  struct io_uring_sqe *s = io_uring_get_sqe(&ring);
  if (!s) {  // the submission queue is full: hand it to the kernel and take a fresh entry
    io_uring_submit(&ring);
    s = io_uring_get_sqe(&ring);
    if (!s) die("io_uring_get_sqe", EBUSY);
  }
  return s;
}

static void queue_accept(int listener) {
  struct io_uring_sqe *s = sqe();
  io_uring_prep_accept(s, listener, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data(s, &accept_token);
}

static void queue_recv(struct conn *c) {
  struct io_uring_sqe *s = sqe();
  c->op = OP_RECV;
  io_uring_prep_recv(s, c->fd, c->buf, BUF_SIZE, 0);
  io_uring_sqe_set_data(s, c);
}

static void queue_send(struct conn *c) {
  struct io_uring_sqe *s = sqe();
  c->op = OP_SEND;
  io_uring_prep_send(s, c->fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data(s, c);
}

static void close_conn(struct conn *c) {
  close(c->fd);
  free(c);
}

// ---- --multishot ----

static void give_back(unsigned bid) {
  io_uring_buf_ring_add(buf_ring, ring_bufs + (size_t)bid * RING_BUF_SIZE, RING_BUF_SIZE, (unsigned short)bid,
                        io_uring_buf_ring_mask(RING_BUFS), 0);
  io_uring_buf_ring_advance(buf_ring, 1);
}

static void setup_buf_ring(void) {
  if (posix_memalign((void **)&buf_ring, 4096, RING_BUFS * sizeof(struct io_uring_buf))) die("posix_memalign", ENOMEM);
  ring_bufs = malloc((size_t)RING_BUFS * RING_BUF_SIZE);
  if (!ring_bufs) die("malloc", ENOMEM);
  struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)buf_ring, .ring_entries = RING_BUFS, .bgid = 0};
  io_uring_buf_ring_init(buf_ring);
  int err = io_uring_register_buf_ring(&ring, &reg, 0);
  if (err) die("io_uring_register_buf_ring", -err);
  for (unsigned i = 0; i < RING_BUFS; ++i) give_back(i);
}

static void queue_multishot_recv(struct conn *c) {
  struct io_uring_sqe *s = sqe();
  c->op = OP_RECV;
  io_uring_prep_recv_multishot(s, c->fd, NULL, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = 0;
  io_uring_sqe_set_data(s, c);
}

static void queue_msend(struct msend *m) {
  struct io_uring_sqe *s = sqe();
  io_uring_prep_send(s, m->fd, ring_bufs + (size_t)m->bid * RING_BUF_SIZE + m->sent, m->len - m->sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data(s, m);
}

static void on_multishot_recv(struct conn *c, struct io_uring_cqe *cqe) {
  int res = cqe->res;
  if (res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    struct msend *m = &msends[bid];
    *m = (struct msend){.op = OP_MSEND, .fd = c->fd, .bid = bid, .len = (size_t)res, .sent = 0};
    queue_msend(m);
  }
  if (cqe->flags & IORING_CQE_F_MORE) return;  // the recv goes on
  if (res == -ENOBUFS || (res > 0)) return queue_multishot_recv(c);  // ended early: rearm
  close_conn(c);  // EOF or error (sends in flight fail on the closed descriptor, buffers return)
}

static void on_msend(struct msend *m, int res) {
  if (res > 0) m->sent += (size_t)res;
  if (res > 0 && m->sent < m->len) return queue_msend(m);
  give_back(m->bid);
}

static void on_completion(struct io_uring_cqe *cqe, int listener) {
  struct conn *c = io_uring_cqe_get_data(cqe);
  int res = cqe->res;
  if (c->op == OP_MSEND) return on_msend((struct msend *)c, res);
  if (multishot && c->op == OP_RECV) return on_multishot_recv(c, cqe);
  if (c->op == OP_ACCEPT) {
    if (res >= 0) {
      int one = 1;
      setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      struct conn *n = malloc(sizeof *n);
      if (!n) die("malloc", ENOMEM);
      n->fd = res;
      if (multishot)
        queue_multishot_recv(n);
      else
        queue_recv(n);
    }
    queue_accept(listener);
    return;
  }
  if (c->op == OP_RECV) {
    if (res <= 0) {
      if (res == -EAGAIN || res == -EINTR) return queue_recv(c);
      return close_conn(c);
    }
    c->len = (size_t)res;
    c->sent = 0;
    return queue_send(c);
  }
  if (res < 0) {
    if (res == -EAGAIN || res == -EINTR) return queue_send(c);
    return close_conn(c);
  }
  c->sent += (size_t)res;
  if (c->sent < c->len) return queue_send(c);
  queue_recv(c);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--multishot") == 0) {
    multishot = 1;
    --argc;
    ++argv;
  }
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 8888;
  signal(SIGPIPE, SIG_IGN);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  inet_pton(AF_INET, host, &addr.sin_addr);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind", errno);
  if (listen(listener, 1024) < 0) die("listen", errno);
  // One thread submits everything, and completions are processed only when it asks for them
  // (Linux 6.1+): no task-work interrupts while the loop is busy. Older kernels: plain flags.
  int err = io_uring_queue_init(QUEUE_DEPTH, &ring, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  if (err == -EINVAL) err = io_uring_queue_init(QUEUE_DEPTH, &ring, 0);
  if (err < 0) die("io_uring_queue_init", -err);
  if (multishot) setup_buf_ring();
  printf("Serving on %s:%d\n", host, port);
  fflush(stdout);
  queue_accept(listener);
  for (;;) {
    err = io_uring_submit_and_wait(&ring, 1);
    if (err < 0 && err != -EINTR) die("io_uring_submit_and_wait", -err);
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      on_completion(cqe, listener);
      ++seen;
    }
    io_uring_cq_advance(&ring, seen);
  }
}
