// SPDX-License-Identifier: MIT
// Boost.Asio echo server with C++20 coroutines for bench/run_server.sh: one coroutine per
// connection (co_spawn), async_read_some into a per-connection buffer, async_write of what
// arrived, on a single-threaded io_context (the same shape as our echo_streams.cpp).
//
//   echo_asio [host] [port]
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace asio = boost::asio;
using asio::ip::tcp;

static asio::awaitable<void> echo(tcp::socket socket) {
  auto buf = std::make_unique<char[]>(64 * 1024);
  try {
    for (;;) {
      std::size_t n = co_await socket.async_read_some(asio::buffer(buf.get(), 64 * 1024), asio::use_awaitable);
      co_await asio::async_write(socket, asio::buffer(buf.get(), n), asio::use_awaitable);
    }
  } catch (const std::exception&) {
    // EOF or reset: the connection ends.
  }
}

static asio::awaitable<void> listener(tcp::acceptor acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
  }
}

int main(int argc, char** argv) {
  const char* host = argc > 1 ? argv[1] : "127.0.0.1";
  auto port = static_cast<unsigned short>(argc > 2 ? std::atoi(argv[2]) : 8888);
  asio::io_context io(1);  // concurrency hint 1: no locking inside the scheduler
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address(host), port));
  acceptor.listen(1024);
  std::printf("Serving on %s:%u\n", host, port);
  std::fflush(stdout);
  asio::co_spawn(io, listener(std::move(acceptor)), asio::detached);
  io.run();
}
