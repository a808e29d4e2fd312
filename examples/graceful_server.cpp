// SPDX-License-Identifier: MIT
// graceful_server: a streams server that shuts down cleanly on SIGTERM (systemd, Kubernetes) or
// SIGINT (Ctrl-C): it stops accepting at once, lets the requests in flight finish within a
// deadline, closes idle connections, then closes whatever is left and exits 0.
//
// The protocol is one line per request: "work SECONDS" replies "done SECONDS" after that long;
// any other line is echoed.
//
//   async def main(port, drain):
//       stop = asyncio.Event()
//       loop = asyncio.get_running_loop()
//       for sig in (signal.SIGTERM, signal.SIGINT):
//           loop.add_signal_handler(sig, stop.set)
//       server = await asyncio.start_server(handle, "127.0.0.1", port)
//       await stop.wait()
//       server.close()                      # no new connections
//       close_idle_connections()
//       try:
//           await asyncio.wait_for(server.wait_closed(), drain)
//       except TimeoutError:
//           server.close_clients()          # past the deadline
//           await server.wait_closed()
//
// Usage: graceful_server [PORT] [DRAIN_SECONDS]   (PORT 0: any free port, printed)
#include <asyncio/asyncio.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>

namespace {

/// One client connection, as the shutdown sees it.
struct Connection {
  asyncio::StreamWriter writer;
  asyncio::AnyTask task;  // the task serving it
  bool busy = false;      // a request is being served
};

/// What the handlers and the shutdown share (all on the loop's thread). Held by shared_ptr: a
/// handler cut off at the deadline finishes after main_coro has returned.
struct State {
  bool stopping = false;
  std::set<Connection*> connections;
};

asyncio::Coro<void> serve_requests(std::shared_ptr<State> state, asyncio::StreamReader reader,
                                   asyncio::StreamWriter writer) {
  Connection me{writer, asyncio::current_task()};
  state->connections.insert(&me);
  struct Forget {
    State& s;
    Connection* c;
    ~Forget() { s.connections.erase(c); }
  } forget{*state, &me};
  while (!state->stopping) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;  // the client left, or the shutdown closed us while idle
    me.busy = true;
    if (line.rfind("work ", 0) == 0) {
      double seconds = std::atof(line.c_str() + 5);
      co_await asyncio::sleep(seconds);
      writer.write("done " + line.substr(5));
    } else {
      writer.write(line);
    }
    co_await writer.drain();
    me.busy = false;
  }
  writer.close();
  co_await writer.wait_closed();
}

asyncio::Coro<int> main_coro(int port, double drain) {
  auto state = std::make_shared<State>();
  asyncio::Event stop;
  asyncio::EventLoop& loop = asyncio::get_running_loop();
  loop.add_signal_handler(SIGTERM, [&] { stop.set(); });
  loop.add_signal_handler(SIGINT, [&] { stop.set(); });

  asyncio::ClientConnectedCallback handler = [state](asyncio::StreamReader r, asyncio::StreamWriter w) {
    return serve_requests(state, std::move(r), std::move(w));
  };
  asyncio::Server server = co_await asyncio::start_server(handler, "127.0.0.1", static_cast<std::uint16_t>(port));
  std::printf("Serving on 127.0.0.1:%u\n", server.sockets().at(0).getsockname().port());
  std::fflush(stdout);

  co_await stop.wait();
  state->stopping = true;
  server.close();  // stop accepting; connections already accepted go on
  std::size_t idle = 0;
  for (Connection* c : state->connections) {
    if (!c->busy) {
      c->writer.close();
      ++idle;
    }
  }
  std::printf("Stopping: closed %zu idle connection(s), draining %zu request(s) for up to %g s\n", idle,
              state->connections.size() - idle, drain);
  std::fflush(stdout);
  bool drained = true;
  try {
    co_await asyncio::wait_for(server.wait_closed(), drain);
  } catch (const asyncio::TimeoutError&) {
    drained = false;
  }
  if (drained) {
    std::printf("Drained\n");
  } else {
    std::printf("Closing %zu connection(s) still open past the deadline\n", server.active_count());
    server.close_clients();
    for (Connection* c : state->connections) c->task.cancel();  // their requests are cut off
    co_await server.wait_closed();
  }
  std::fflush(stdout);
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 8888;
  double drain = argc > 2 ? std::atof(argv[2]) : 10.0;
  return asyncio::run(main_coro(port, drain));
}
