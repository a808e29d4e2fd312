// SPDX-License-Identifier: MIT
// asyncio-inspect: dumps the tasks of a running program that serves inspection (it called
// asyncio::enable_inspection, or runs with ASYNCIO_INSPECT=1 in its environment), as
// `python -m asyncio ps|pstree PID` does for Python programs.
//
//   asyncio-inspect ps PID            a table: id, name, state, coroutine, location, waiting on, awaited by
//   asyncio-inspect pstree PID        a tree: each task above the tasks it awaits
//   asyncio-inspect graph PID TASK    the await graph of one task (print_call_graph)
//   --json                            JSON for other tools instead of text (inspect.hpp:
//                                     format_tasks_json, format_call_graph_json)
//   --timeout SECONDS                 how long to wait for the answer (default 5)
//
// The program's own event loop answers, between two steps, so the dump is a consistent snapshot
// and the program keeps running. Exit status: 0 ok, 1 no answer (not opted in, no such process,
// loop blocked or not running), 2 usage.
#include <asyncio/inspect.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: asyncio-inspect [--json] [--timeout SECONDS] ps PID\n"
               "       asyncio-inspect [--json] [--timeout SECONDS] pstree PID\n"
               "       asyncio-inspect [--json] [--timeout SECONDS] graph PID TASK_ID\n");
  std::exit(2);
}

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "asyncio-inspect: %s\n", message.c_str());
  std::exit(1);
}

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

/// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) fail(std::string("poll: ") + std::strerror(errno));
  }
}

bool is_socket(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

int main(int argc, char** argv) {
  double timeout = 5.0;
  bool json = false;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--timeout" && i + 1 < argc) {
      timeout = std::atof(argv[++i]);
      if (!(timeout > 0)) usage();
    } else if (a == "--json") {
      json = true;
    } else if (a == "-h" || a == "--help") {
      usage();
    } else {
      args.push_back(a);
    }
  }
  if (args.size() < 2) usage();
  const std::string& command = args[0];
  std::string request;
  if (command == "ps" || command == "pstree") {
    if (args.size() != 2) usage();
    request = command;
  } else if (command == "graph") {
    if (args.size() != 3) usage();
    request = "graph " + args[2];
  } else {
    usage();
  }
  if (json) request += " json";
  char* end = nullptr;
  long pid = std::strtol(args[1].c_str(), &end, 10);
  if (!end || *end || pid <= 0) usage();

  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fail("no process with PID " + std::to_string(pid));

  std::vector<std::string> candidates = asyncio::inspection_socket_candidates(pid);
  std::string path;
  for (const std::string& c : candidates)
    if (is_socket(c)) {
      path = c;
      break;
    }
  if (path.empty()) {
    std::string tried;
    for (const std::string& c : candidates) tried += (tried.empty() ? "" : " or ") + c;
    fail("process " + std::to_string(pid) + " does not accept inspection (no socket at " + tried +
         "); the program must call asyncio::enable_inspection(loop) or run with ASYNCIO_INSPECT=1");
  }

  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) fail("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EAGAIN || errno == EINPROGRESS) {
      // The listen queue is full: the loop has not accepted for a while.
      if (!wait_for(fd, POLLOUT, deadline))
        fail("process " + std::to_string(pid) + " did not accept the connection within the timeout: its event loop is blocked or not running");
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err) errno = err;
    }
    if (errno == ECONNREFUSED)
      fail("process " + std::to_string(pid) + " is not listening on " + path +
           " (a stale socket of a process that ended, or inspection was disabled)");
    if (errno != 0 && errno != EAGAIN && errno != EINPROGRESS)
      fail("cannot connect to " + path + ": " + std::strerror(errno));
  }

  std::string line = request + "\n";
  std::size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, deadline)) fail("timed out sending the request");
    } else {
      fail(std::string("send: ") + std::strerror(errno));
    }
  }
  ::shutdown(fd, SHUT_WR);

  std::string answer;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      answer.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) fail(std::string("recv: ") + std::strerror(errno));
    if (!wait_for(fd, POLLIN, deadline)) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%g", timeout);
      fail("process " + std::to_string(pid) + " did not answer within " + secs +
           " s: its event loop is blocked (a step holding the loop) or not running");
    }
  }
  ::close(fd);
  std::fwrite(answer.data(), 1, answer.size(), stdout);
  return answer.rfind("error: ", 0) == 0 ? 1 : 0;
}
