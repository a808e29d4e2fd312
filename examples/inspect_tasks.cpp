// SPDX-License-Identifier: MIT
// Seeing inside a running program (include/asyncio/inspect.hpp): a small echo server, a group of
// clients talking to it, and the dumps a developer would look at — the `ps`-like table, the
// `pstree`-like tree and one task's await graph.
//
//   inspect_tasks                 prints the dumps once and exits
//   inspect_tasks --serve 60      keeps running for 60 s; meanwhile, from another terminal:
//                                   asyncio-inspect ps <pid>
//                                   asyncio-inspect pstree <pid>
#include <asyncio/asyncio.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// The server side: one task per connection (start_server makes it), echoing lines back after a
// little "work".
asyncio::Coro<void> handle_client(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;                 // the client closed its side
    co_await asyncio::sleep(0.05);           // pretend to work on the request
    writer.write(line);
    co_await writer.drain();
  }
  writer.close();
  co_await writer.wait_closed();
}

asyncio::Coro<std::string> ask(asyncio::StreamReader& reader, asyncio::StreamWriter& writer, std::string text) {
  writer.write(text + "\n");
  co_await writer.drain();
  co_return co_await reader.readline();     // parks here while the server "works"
}

// A client: a few requests, with a pause between them.
asyncio::Coro<void> client(std::uint16_t port, int requests) {
  auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port);
  for (int i = 0; i < requests; ++i) {
    co_await ask(reader, writer, "hello " + std::to_string(i));
    co_await asyncio::sleep(0.2);
  }
  writer.close();
  co_await writer.wait_closed();
}

asyncio::Coro<void> clients(std::uint16_t port, int requests) {
  co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> asyncio::Coro<void> {
    for (int i = 1; i <= 3; ++i) tg.create_task(client(port, requests), "client-" + std::to_string(i));
    co_return;
  });
}

asyncio::Coro<void> main_coro(double serve_seconds) {
  auto& loop = asyncio::get_running_loop();
  std::string socket = asyncio::enable_inspection(loop);  // asyncio-inspect ps|pstree <pid>

  asyncio::Server server = co_await asyncio::start_server(handle_client, "127.0.0.1", 0);
  std::uint16_t port = server.sockets().front().getsockname().port();
  auto serving = asyncio::create_task(server.serve_forever(), "server");
  int requests = serve_seconds > 0 ? 1'000'000 : 10;
  auto talking = asyncio::create_task(clients(port, requests), "clients");

  co_await asyncio::sleep(0.33);  // let everyone get going, then look
  std::printf("== asyncio::format_tasks_table(loop)\n%s\n", asyncio::format_tasks_table(loop).c_str());
  std::printf("== asyncio::format_tasks_tree(loop)\n%s\n", asyncio::format_tasks_tree(loop).c_str());
  for (const asyncio::AnyTask& t : asyncio::all_tasks())
    if (t.get_name() == "client-1") {
      std::printf("== asyncio::print_call_graph(client-1)\n");
      asyncio::print_call_graph(t);
    }
  std::printf("\n== co_await asyncio::print_call_graph() in main_coro\n");
  co_await asyncio::print_call_graph();
  std::fflush(stdout);

  if (serve_seconds > 0) {
    std::printf("\nserving for %g s; try:  asyncio-inspect ps %ld   (socket %s)\n", serve_seconds,
                static_cast<long>(::getpid()), socket.c_str());
    std::fflush(stdout);
    co_await asyncio::sleep(serve_seconds);
  }
  talking.cancel();
  try {
    co_await talking;
  } catch (const asyncio::CancelledError&) {
  }
  server.close();
  co_await server.wait_closed();
  serving.cancel();
}

}  // namespace

int main(int argc, char** argv) {
  double serve = 0;
  if (argc == 3 && std::strcmp(argv[1], "--serve") == 0) {
    serve = std::atof(argv[2]);
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: %s [--serve SECONDS]\n", argv[0]);
    return 2;
  }
  asyncio::run(main_coro(serve));
}
