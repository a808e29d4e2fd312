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

enum op { OP_ACCEPT, OP_RECV, OP_SEND };

struct conn {
  int fd;
  enum op op;
  size_t len, sent;  // OP_SEND: bytes to send, bytes sent so far
  char buf[BUF_SIZE];
};

static struct io_uring ring;
static struct conn accept_token = {.op = OP_ACCEPT};

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

static void on_completion(struct io_uring_cqe *cqe, int listener) {
  struct conn *c = io_uring_cqe_get_data(cqe);
  int res = cqe->res;
  if (c->op == OP_ACCEPT) {
    if (res >= 0) {
      int one = 1;
      setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      struct conn *n = malloc(sizeof *n);
      if (!n) die("malloc", ENOMEM);
      n->fd = res;
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
  int err = io_uring_queue_init(QUEUE_DEPTH, &ring, 0);
  if (err < 0) die("io_uring_queue_init", -err);
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
