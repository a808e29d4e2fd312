// SPDX-License-Identifier: MIT
// A TCP chat server: every line a client sends goes to all the other clients.
// Usage: chat_server [host] [port]   (default 127.0.0.1 8888); try it with several `nc 127.0.0.1 8888`.
//
// Each connection runs as its own task (start_server). The set of connected writers is shared
// state, touched only on the loop's thread, so it needs no lock. A slow client does not hold the
// others up: write() never blocks, and its drain() only pauses that client's own task.
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <string>

namespace {

struct Room {
  std::list<asyncio::StreamWriter> members;

  void broadcast(const asyncio::StreamWriter* from, const std::string& text) {
    for (auto& w : members)
      if (&w != from && !w.is_closing()) w.write(text);
  }
};

Room room;

asyncio::Coro<void> client(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
  std::string who = writer.get_extra_info<asyncio::SocketAddress>("peername")->to_string();
  room.members.push_back(writer);
  auto me = std::prev(room.members.end());
  std::printf("%s joined (%zu online)\n", who.c_str(), room.members.size());
  writer.write("Welcome! " + std::to_string(room.members.size() - 1) + " others here.\n");
  room.broadcast(&*me, who + " joined\n");
  try {
    while (true) {
      std::string line = co_await reader.readline();
      if (line.empty()) break;  // the client left
      room.broadcast(&*me, who + ": " + line);
      co_await writer.drain();
    }
  } catch (const std::exception& e) {
    std::printf("%s: %s\n", who.c_str(), e.what());
  }
  room.members.erase(me);
  room.broadcast(nullptr, who + " left\n");
  std::printf("%s left (%zu online)\n", who.c_str(), room.members.size());
  writer.close();
}

asyncio::Coro<void> main_coro(std::string host, std::uint16_t port) {
  asyncio::Server server = co_await asyncio::start_server(client, host, port);
  std::printf("Chat server on %s\n", server.sockets().at(0).getsockname().to_string().c_str());
  std::fflush(stdout);
  co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string host = argc > 1 ? argv[1] : "127.0.0.1";
  auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 8888);
  asyncio::run(main_coro(host, port));
}
