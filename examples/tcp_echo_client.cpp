// SPDX-License-Identifier: MIT
// TCP echo client with streams (Python docs, "TCP echo client using streams").
// Usage: tcp_echo_client [host] [port] [message]   (default 127.0.0.1 8888 "Hello World!")
//
//   async def tcp_echo_client(message):
//       reader, writer = await asyncio.open_connection('127.0.0.1', 8888)
//
//       print(f'Send: {message!r}')
//       writer.write(message.encode())
//       await writer.drain()
//
//       data = await reader.readline()
//       print(f'Received: {data.decode()!r}')
//
//       print('Close the connection')
//       writer.close()
//       await writer.wait_closed()
//
//   asyncio.run(tcp_echo_client('Hello World!\n'))
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

asyncio::Coro<void> tcp_echo_client(std::string host, std::uint16_t port, std::string message) {
  auto [reader, writer] = co_await asyncio::open_connection(host, port);

  std::printf("Send: '%s'\n", message.c_str());
  writer.write(message + "\n");  // the server echoes lines
  co_await writer.drain();

  std::string data = co_await reader.readline();
  std::printf("Received: '%s'\n", data.substr(0, data.find_last_not_of('\n') + 1).c_str());

  std::printf("Close the connection\n");
  writer.close();
  co_await writer.wait_closed();
}

int main(int argc, char** argv) {
  std::string host = argc > 1 ? argv[1] : "127.0.0.1";
  auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 8888);
  std::string message = argc > 3 ? argv[3] : "Hello World!";
  asyncio::run(tcp_echo_client(host, port, message));
}
