// SPDX-License-Identifier: MIT
// An HTTPS GET over TLS streams: Python's
//
//   async def get(host, path):
//       ctx = ssl.create_default_context()
//       reader, writer = await asyncio.open_connection(host, 443, ssl=ctx)
//       writer.write(f'GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n'.encode())
//       print((await reader.readline()).decode().rstrip())   # the status line
//       body = await reader.read()                             # headers and body, until close
//       print(f'{len(body)} more bytes')
//       writer.close()
//       await writer.wait_closed()
//
// Usage: https_get [host] [path] [port] [cafile]   (default example.com / 443; cafile: a CA to
// trust beside the system's, for a local server with its own certificate)
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

asyncio::Coro<void> get(std::string host, std::string path, std::uint16_t port, std::string cafile) {
  asyncio::ConnectOptions options;
  options.ssl = asyncio::ssl::create_default_context(asyncio::ssl::Purpose::server_auth, cafile);
  auto [reader, writer] = co_await asyncio::open_connection(host, port, std::move(options));
  writer.write("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");

  std::string status = co_await reader.readline();
  std::printf("%s\n", status.substr(0, status.find_last_not_of("\r\n") + 1).c_str());
  std::string rest = co_await reader.read();
  std::printf("%zu more bytes (%s)\n", rest.size(),
              std::any_cast<std::string>(writer.get_extra_info("ssl_version")).c_str());

  writer.close();
  co_await writer.wait_closed();
}

int main(int argc, char** argv) {
  std::string host = argc > 1 ? argv[1] : "example.com";
  std::string path = argc > 2 ? argv[2] : "/";
  auto port = static_cast<std::uint16_t>(argc > 3 ? std::atoi(argv[3]) : 443);
  std::string cafile = argc > 4 ? argv[4] : "";
  try {
    asyncio::run(get(host, path, port, cafile));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "https_get: %s\n", e.what());
    return 1;
  }
}
