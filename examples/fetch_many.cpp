// SPDX-License-Identifier: MIT
// Fetch from several servers at once and print each answer as it arrives (as_completed): the
// seed's first example made real. One server is deliberately slow; the others are not held up by
// it, and the whole run takes about as long as the slowest server, not the sum of all of them.
//
// The program starts its own servers on 127.0.0.1 (free ports), each answering one line after
// its own delay, then fetches from all of them concurrently:
//
//   async def fetch(name, port):
//       reader, writer = await asyncio.open_connection('127.0.0.1', port)
//       writer.write(f'GET {name}\n'.encode())
//       reply = await reader.readline()
//       writer.close()
//       return name, reply.decode().strip()
//
//   for next_done in asyncio.as_completed([fetch(n, p) for n, p in servers]):
//       name, reply = await next_done
//       print(f'{elapsed():.2f}s {name}: {reply}')
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace {

struct ServerSpec {
  std::string name;
  double delay;  // seconds before the server answers
};

/// A server that answers "<name> says hello after <delay>s" to the first line, after `delay`.
asyncio::Coro<asyncio::Server> start_slow_server(ServerSpec spec) {
  asyncio::ClientConnectedCallback answer = [spec](asyncio::StreamReader reader,
                                                   asyncio::StreamWriter writer) -> asyncio::Coro<void> {
    std::string request = co_await reader.readline();
    co_await asyncio::sleep(spec.delay);
    char reply[128];
    std::snprintf(reply, sizeof reply, "%s says hello after %.2fs\n", spec.name.c_str(), spec.delay);
    writer.write(reply);
    co_await writer.drain();
    writer.close();
  };
  co_return co_await asyncio::start_server(std::move(answer), "127.0.0.1", 0);
}

asyncio::Coro<std::pair<std::string, std::string>> fetch(std::string name, std::uint16_t port) {
  auto conn = co_await asyncio::open_connection("127.0.0.1", port);
  conn.second.write("GET " + name + "\n");
  std::string reply = co_await conn.first.readline();
  conn.second.close();
  if (!reply.empty() && reply.back() == '\n') reply.pop_back();
  co_return std::pair<std::string, std::string>(name, reply);
}

std::vector<ServerSpec> server_specs() {
  return {{"alpha", 0.1}, {"bravo", 0.3}, {"slowpoke", 1.5} /* the deliberately slow one */, {"delta", 0.2},
          {"echo", 0.05}};
}

asyncio::Coro<void> main_coro() {
  std::vector<ServerSpec> specs = server_specs();

  std::vector<asyncio::Server> servers;
  std::vector<asyncio::Coro<std::pair<std::string, std::string>>> fetches;
  double total_delay = 0;
  for (const ServerSpec& spec : specs) {
    asyncio::Server server = co_await start_slow_server(spec);
    std::uint16_t port = server.sockets().at(0).getsockname().port();
    std::printf("server %-8s on port %u answers after %.2fs\n", spec.name.c_str(), port, spec.delay);
    servers.push_back(server);
    fetches.push_back(fetch(spec.name, port));
    total_delay += spec.delay;
  }

  asyncio::EventLoop& loop = asyncio::get_running_loop();
  double start = loop.time();
  for (auto next_done : asyncio::as_completed(std::move(fetches))) {
    auto [name, reply] = co_await next_done;
    std::printf("%5.2fs  %-8s: %s\n", loop.time() - start, name.c_str(), reply.c_str());
  }
  std::printf("all done in %.2fs (one after the other would take %.2fs)\n", loop.time() - start, total_delay);
}

}  // namespace

int main() { asyncio::run(main_coro()); }
