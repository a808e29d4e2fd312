// SPDX-License-Identifier: MIT
// TCP echo server with streams (Python docs, "TCP echo server using streams"), echoing every line
// until the client closes. Usage: tcp_echo_server [host] [port]   (default 127.0.0.1 8888)
//
//   async def handle_echo(reader, writer):
//       addr = writer.get_extra_info('peername')
//       while data := await reader.readline():
//           message = data.decode()
//           print(f"Received {message!r} from {addr!r}")
//           print(f"Send: {message!r}")
//           writer.write(data)
//           await writer.drain()
//       print("Close the connection")
//       writer.close()
//       await writer.wait_closed()
//
//   async def main():
//       server = await asyncio.start_server(handle_echo, '127.0.0.1', 8888)
//       addrs = ', '.join(str(sock.getsockname()) for sock in server.sockets)
//       print(f'Serving on {addrs}')
//       async with server:
//           await server.serve_forever()
//
//   asyncio.run(main())
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

asyncio::Coro<void> handle_echo(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
  std::string addr = writer.get_extra_info<asyncio::SocketAddress>("peername")->to_string();
  while (true) {
    std::string data = co_await reader.readline();
    if (data.empty()) break;  // the client closed
    std::string message = data.substr(0, data.find_last_not_of("\r\n") + 1);
    std::printf("Received '%s' from %s\n", message.c_str(), addr.c_str());
    std::printf("Send: '%s'\n", message.c_str());
    std::fflush(stdout);
    writer.write(data);
    co_await writer.drain();
  }
  std::printf("Close the connection\n");
  std::fflush(stdout);
  writer.close();
  co_await writer.wait_closed();
}

asyncio::Coro<void> main_coro(std::string host, std::uint16_t port) {
  asyncio::Server server = co_await asyncio::start_server(handle_echo, host, port);
  std::string addrs;
  for (const asyncio::Socket& sock : server.sockets()) {
    if (!addrs.empty()) addrs += ", ";
    addrs += sock.getsockname().to_string();
  }
  std::printf("Serving on %s\n", addrs.c_str());
  std::fflush(stdout);
  co_await server.serve_forever();  // the Server handle closes the server when it goes away
}

int main(int argc, char** argv) {
  std::string host = argc > 1 ? argv[1] : "127.0.0.1";
  auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 8888);
  asyncio::run(main_coro(host, port));
}
