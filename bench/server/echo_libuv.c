// SPDX-License-Identifier: MIT
// libuv echo server for bench/run_server.sh: the idiomatic fast path. Reads go into one shared
// buffer (alloc_cb hands out the same memory each time: read_cb consumes it before returning);
// each read is echoed with uv_try_write, and only what the socket does not take is copied into a
// uv_write request.
//
//   echo_libuv [host] [port]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define READ_SIZE (256 * 1024)

static uv_loop_t *loop;
static char rbuf[READ_SIZE];

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} write_req_t;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_close(uv_handle_t *handle) { free(handle); }

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  uv_handle_t *handle = (uv_handle_t *)req->handle;
  free(w->buf.base);
  free(w);
  if (status < 0 && !uv_is_closing(handle)) uv_close(handle, on_close);
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf) {
  if (nread < 0) {
    if (!uv_is_closing((uv_handle_t *)client)) uv_close((uv_handle_t *)client, on_close);
    return;
  }
  if (nread == 0) return;
  uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
  int n = uv_try_write(client, &out, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    uv_close((uv_handle_t *)client, on_close);
    return;
  }
  if (n == nread) return;
  write_req_t *w = malloc(sizeof *w);
  w->buf = uv_buf_init(malloc((size_t)(nread - n)), (unsigned)(nread - n));
  memcpy(w->buf.base, buf->base + n, (size_t)(nread - n));
  uv_write(&w->req, client, &w->buf, 1, on_write);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  uv_tcp_t *client = malloc(sizeof *client);
  uv_tcp_init(loop, client);
  if (uv_accept(server, (uv_stream_t *)client) == 0) {
    uv_tcp_nodelay(client, 1);
    uv_read_start((uv_stream_t *)client, on_alloc, on_read);
  } else {
    uv_close((uv_handle_t *)client, on_close);
  }
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 8888;
  loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  struct sockaddr_in addr;
  uv_ip4_addr(host, port, &addr);
  int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (!r) r = uv_listen((uv_stream_t *)&server, 1024, on_connection);
  if (r) {
    fprintf(stderr, "listen: %s\n", uv_strerror(r));
    return 1;
  }
  printf("Serving on %s:%d\n", host, port);
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
