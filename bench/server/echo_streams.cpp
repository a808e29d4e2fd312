// SPDX-License-Identifier: MIT
// Our echo server on streams, for bench/run_server.sh: Python's canonical streams echo,
//
//   async def handle(reader, writer):
//       while data := await reader.read(65536):
//           writer.write(data)
//           await writer.drain()
//
// with asyncio::start_server, StreamReader::read, StreamWriter::write and drain.
//
//   echo_streams [host] [port]
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

namespace {

asyncio::Coro<void> handle(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
  try {
    while (true) {
      std::string data = co_await reader.read(65536);
      if (data.empty()) break;  // EOF
      writer.write(data);
      co_await writer.drain();
    }
  } catch (const std::system_error&) {
    // Reset by the peer: the connection ends.
  }
  writer.close();
}

asyncio::Coro<void> serve(std::string host, std::uint16_t port) {
  asyncio::ServerOptions options;
  options.backlog = 1024;
  asyncio::Server server = co_await asyncio::start_server(handle, host, port, std::move(options));
  std::printf("Serving (streams) on %s:%u\n", host.c_str(), port);
  std::fflush(stdout);
  co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = argc > 1 ? argv[1] : "127.0.0.1";
  auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 8888);
  asyncio::run(serve(host, port));
}
