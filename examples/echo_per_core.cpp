// SPDX-License-Identifier: MIT
// An echo server on every core: one event loop per thread (asyncio::run_per_core), all serving
// one port. Usage:
//
//   echo_per_core [--loops N] [--handoff] [--pin] [--log] [host] [port]   (127.0.0.1 8888)
//
// Default, SO_REUSEPORT: every loop opens its own listening socket on the same port
// (ServerOptions::reuse_port), and the kernel spreads new connections over them by a hash of
// their addresses. No loop ever touches another's objects; nothing is shared but the port.
//
// --handoff: loop 0 alone listens and accepts; it keeps every N-th connection and hands the
// others, round robin, to the other loops through a Channel<Socket> per loop; each loop runs
// the protocol on the sockets it receives with connect_accepted_socket. For kernels or platforms
// where SO_REUSEPORT does not balance (or does not exist), or to choose the loop yourself.
//
// --loops: how many loops (default: one per CPU the process may use). --pin: pin loop i to
// the i-th CPU. --log: print which loop took each connection. Port 0 picks a free port; the
// line "Serving on HOST:PORT" says which. docs/multicore.md explains the two designs.
#include <asyncio/asyncio.hpp>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Config {
  std::size_t loops = 0;
  bool handoff = false;
  bool pin = false;
  bool log = false;
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
};

/// The echo protocol: every byte received goes straight back.
class Echo final : public asyncio::Protocol {
 public:
  Echo(std::size_t loop, bool log) : loop_(loop), log_(log) {}
  void connection_made(asyncio::Transport& t) override {
    transport_ = &t;
    if (log_) {
      std::printf("loop %zu: connection\n", loop_);
      std::fflush(stdout);
    }
  }
  void data_received(std::string_view data) override { transport_->write(data); }

 private:
  asyncio::Transport* transport_ = nullptr;
  std::size_t loop_;
  bool log_;
};

/// What the loops share: set up before they start, each part thread-safe.
struct Shared {
  explicit Shared(const Config& c, std::size_t n) : config(c), loops(n), port(n), listening(n) {
    for (std::size_t i = 0; i < n; ++i) inbox.push_back(std::make_unique<asyncio::Channel<asyncio::Socket>>(64));
  }
  Config config;
  std::size_t loops;
  // reuse_port: loop 0 tells the others the port it got, and they tell it they listen. Two
  // channels, one per direction: on one, loop 0 could take back its own message.
  asyncio::Channel<std::uint16_t> port;
  asyncio::Channel<std::uint16_t> listening;
  std::vector<std::unique_ptr<asyncio::Channel<asyncio::Socket>>> inbox;  // handoff: sockets for loop i
};

void announce(const Shared& sh, std::uint16_t port) {
  std::printf("Serving on %s:%u (%zu loops, %s)\n", sh.config.host.c_str(), port, sh.loops,
              sh.config.handoff ? "handoff" : "reuse_port");
  std::fflush(stdout);
}

asyncio::Coro<void> serve_reuse_port(Shared& sh, std::size_t index) {
  asyncio::ServerOptions options;
  options.reuse_port = true;
  options.backlog = 1024;
  asyncio::ProtocolFactory factory = [index, log = sh.config.log] { return std::make_shared<Echo>(index, log); };
  std::uint16_t port = sh.config.port;
  if (index > 0 && port == 0) port = co_await sh.port.recv();  // loop 0 picked it
  asyncio::Server server = co_await asyncio::create_server(std::move(factory), sh.config.host, port, std::move(options));
  if (index == 0) {
    port = server.sockets().front().getsockname().port();
    if (sh.config.port == 0)
      for (std::size_t i = 1; i < sh.loops; ++i) co_await sh.port.send(std::uint16_t{port});
    // Announce once every loop listens, so that the first clients already reach all of them.
    for (std::size_t i = 1; i < sh.loops; ++i) co_await sh.listening.recv();
    announce(sh, port);
  } else {
    co_await sh.listening.send(std::uint16_t{0});
  }
  co_await server.serve_forever();
}

asyncio::Coro<void> serve_handoff(Shared& sh, std::size_t index) {
  asyncio::ProtocolFactory factory = [index, log = sh.config.log] { return std::make_shared<Echo>(index, log); };
  if (index > 0) {
    // Run the protocol on every socket loop 0 hands over; the transport lives until it closes.
    for (;;) {
      asyncio::Socket conn = co_await sh.inbox[index]->recv();
      co_await asyncio::connect_accepted_socket(factory, std::move(conn));
    }
  }
  asyncio::SocketAddress address = asyncio::SocketAddress::ip(sh.config.host, sh.config.port);
  asyncio::Socket listener(address.family(), SOCK_STREAM);
  listener.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  listener.bind(address);
  listener.listen(1024);
  announce(sh, listener.getsockname().port());
  for (std::size_t next = 0;; next = (next + 1) % sh.loops) {
    auto [conn, peer] = co_await asyncio::sock_accept(listener);
    if (next == 0)
      co_await asyncio::connect_accepted_socket(factory, std::move(conn));
    else
      co_await sh.inbox[next]->send(std::move(conn));  // a socket no task waits on may cross threads
  }
}

Config parse(int argc, char** argv) {
  Config c;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--loops") == 0 && i + 1 < argc)
      c.loops = static_cast<std::size_t>(std::atoi(argv[++i]));
    else if (std::strcmp(argv[i], "--handoff") == 0)
      c.handoff = true;
    else if (std::strcmp(argv[i], "--pin") == 0)
      c.pin = true;
    else if (std::strcmp(argv[i], "--log") == 0)
      c.log = true;
    else if (positional++ == 0)
      c.host = argv[i];
    else
      c.port = static_cast<std::uint16_t>(std::atoi(argv[i]));
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  Config config = parse(argc, argv);
  asyncio::PerCoreOptions options;
  options.loops = config.loops ? config.loops : asyncio::usable_cpu_count();
  options.pin = config.pin;
  Shared shared(config, options.loops);
  asyncio::run_per_core([&shared](std::size_t index) {
    return shared.config.handoff ? serve_handoff(shared, index) : serve_reuse_port(shared, index);
  }, options);
}
