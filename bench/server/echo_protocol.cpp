// SPDX-License-Identifier: MIT
// Our echo server on the transport/protocol layer, for bench/run_server.sh.
//
//   echo_protocol [--buffered] [host] [port]
//
// Default: asyncio::Protocol, data_received(view) -> transport.write(view). The view points into
// the transport's shared read buffer, and write() sends it at once when nothing is queued: no copy
// and no allocation per request. --buffered: asyncio::BufferedProtocol, the transport reads into
// the protocol's memory (one shared buffer here too, since buffer_updated consumes it before the
// next read) and buffer_updated writes it back. Both cost the same system calls (recv + send per
// request); the benchmark uses the default, the faster of the two in our measurements.
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>

namespace {

class Echo final : public asyncio::Protocol {
 public:
  void connection_made(asyncio::Transport& t) override { transport_ = &t; }
  void data_received(std::string_view data) override { transport_->write(data); }

 private:
  asyncio::Transport* transport_ = nullptr;
};

constexpr std::size_t kReadSize = 256 * 1024;
char g_buffer[kReadSize];  // single-threaded: every connection may share it

class BufferedEcho final : public asyncio::BufferedProtocol {
 public:
  void connection_made(asyncio::Transport& t) override { transport_ = &t; }
  std::span<char> get_buffer(std::size_t) override { return {g_buffer, kReadSize}; }
  void buffer_updated(std::size_t n) override { transport_->write(std::string_view(g_buffer, n)); }

 private:
  asyncio::Transport* transport_ = nullptr;
};

asyncio::Coro<void> serve(bool buffered, std::string host, std::uint16_t port) {
  asyncio::ServerOptions options;
  options.backlog = 1024;
  asyncio::ProtocolFactory factory;
  if (buffered)
    factory = [] { return std::make_shared<BufferedEcho>(); };
  else
    factory = [] { return std::make_shared<Echo>(); };
  asyncio::Server server = co_await asyncio::create_server(std::move(factory), host, port, std::move(options));
  std::printf("Serving (%s) on %s:%u\n", buffered ? "BufferedProtocol" : "Protocol", host.c_str(), port);
  std::fflush(stdout);
  co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
  int arg = 1;
  bool buffered = false;
  if (arg < argc && std::strcmp(argv[arg], "--buffered") == 0) {
    buffered = true;
    ++arg;
  }
  std::string host = arg < argc ? argv[arg++] : "127.0.0.1";
  auto port = static_cast<std::uint16_t>(arg < argc ? std::atoi(argv[arg++]) : 8888);
  asyncio::run(serve(buffered, host, port));
}
