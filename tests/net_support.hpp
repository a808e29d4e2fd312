// SPDX-License-Identifier: MIT
// Helpers shared by the networking tests (socket, dns, transports, streams, unix): real sockets on
// loopback, descriptor counting, temporary directories, and Python subprocesses for interop.
#pragma once

#include <asyncio/asyncio.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace net_test {

/// Thrown by the CO_ASSERT_* macros: gtest's ASSERT_* macros `return`, which a coroutine cannot.
struct AssertionAbort {};

// Fatal assertions for coroutine bodies: record the failure, then leave by exception.
#define CO_ASSERT_TRUE(cond)                                     \
  do {                                                           \
    EXPECT_TRUE(cond);                                           \
    if (::testing::Test::HasFailure()) throw ::net_test::AssertionAbort{}; \
  } while (0)
#define CO_ASSERT_FALSE(cond) CO_ASSERT_TRUE(!(cond))
#define CO_ASSERT_EQ(a, b)                                       \
  do {                                                           \
    EXPECT_EQ(a, b);                                             \
    if (::testing::Test::HasFailure()) throw ::net_test::AssertionAbort{}; \
  } while (0)

/// Open descriptors of this process (entries of /proc/self/fd, minus the one listing it).
inline int count_open_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;
}

/// True if ::1 is configured (IPv6 loopback).
inline bool have_ipv6() {
  try {
    asyncio::Socket s(AF_INET6, SOCK_STREAM);
    s.bind(asyncio::SocketAddress::ip("::1", 0));
    return true;
  } catch (...) {
    return false;
  }
}

/// Runs `c` on a fresh loop (asyncio::run) with a safety deadline, so a hang fails the test
/// instead of blocking the suite.
template <class T>
T run_loop(asyncio::Coro<T> c, double deadline = 30.0) {
  return asyncio::run(asyncio::wait_for(std::move(c), deadline));
}

/// A temporary directory removed (with its files) at the end of the scope.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/asyncio-net-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (!p) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    if (DIR* d = ::opendir(path_.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") ::unlink((path_ + "/" + name).c_str());
      }
      ::closedir(d);
    }
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// A file of `size` patterned bytes in `dir`, opened read-only (sendfile tests).
inline int patterned_file(const TempDir& dir, std::size_t size, std::string& content) {
  content.resize(size);
  for (std::size_t i = 0; i < size; ++i) content[i] = static_cast<char>('a' + (i * 7) % 26);
  std::string path = dir.file("data");
  int w = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_EQ(::write(w, content.data(), size), static_cast<ssize_t>(size));
  ::close(w);
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

/// A listening TCP socket on 127.0.0.1 with an ephemeral port.
inline asyncio::Socket listen_tcp(const char* host = "127.0.0.1", int backlog = 100) {
  asyncio::SocketAddress a = asyncio::SocketAddress::ip(host, 0);
  asyncio::Socket s(a.family(), SOCK_STREAM);
  s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  s.bind(a);
  s.listen(backlog);
  return s;
}

inline std::uint16_t port_of(const asyncio::Server& server) { return server.sockets().at(0).getsockname().port(); }

/// The Python interpreter for interop tests (Debian's, else whatever python3 is on PATH).
inline std::string python() {
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return "python3";
}

struct ProcessResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

/// A child process whose stdout and stderr come to us on a socket, so that the loop can read
/// them while it goes on serving.
struct Child {
  pid_t pid = -1;
  asyncio::Socket out;
};

inline Child spawn(std::vector<std::string> argv) {
  std::pair<asyncio::Socket, asyncio::Socket> pair = asyncio::socketpair();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pair.second.fileno(), 1);
  posix_spawn_file_actions_adddup2(&actions, pair.second.fileno(), 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  Child child;
  int rc = ::posix_spawnp(&child.pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::system_error(rc, std::system_category(), "posix_spawnp");
  child.out = std::move(pair.first);
  return child;
}

/// Reads the child's output up to and including the next newline (or EOF).
inline asyncio::Coro<std::string> read_line(Child& child) {
  std::string line;
  char c;
  while (co_await asyncio::sock_recv_into(child.out, std::span<char>(&c, 1)) == 1) {
    line += c;
    if (c == '\n') break;
  }
  co_return line;
}

/// Reads the rest of the output, then reaps the child.
inline asyncio::Coro<ProcessResult> finish(Child& child, std::string already = {}) {
  ProcessResult result;
  result.output = std::move(already);
  for (;;) {
    std::string chunk = co_await asyncio::sock_recv(child.out, 65536);
    if (chunk.empty()) break;
    result.output += chunk;
  }
  int status = 0;
  // The child closed its output, so it is exiting; poll without blocking the loop.
  while (::waitpid(child.pid, &status, WNOHANG) == 0) co_await asyncio::sleep(0.01);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  co_return result;
}

/// Runs `program args...` to its end; returns its exit code and output.
inline asyncio::Coro<ProcessResult> run_process(std::vector<std::string> argv) {
  Child child = spawn(std::move(argv));
  co_return co_await finish(child);
}

inline asyncio::Coro<ProcessResult> run_python(std::string script, std::vector<std::string> args = {}) {
  std::vector<std::string> argv{python(), "-c", std::move(script)};
  for (auto& a : args) argv.push_back(std::move(a));
  return run_process(std::move(argv));
}

/// Lowers RLIMIT_NOFILE for a scope and restores it.
class FdLimit {
 public:
  explicit FdLimit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit r = saved_;
    r.rlim_cur = soft;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
  ~FdLimit() { restore(); }
  void restore() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

 private:
  rlimit saved_{};
};

/// A pipe with a thread writing `content` into it, `chunk` bytes per write, then closing its
/// write end; read_fd() is for the test. If the test leaves early (a failed assertion, an
/// exception under injected faults), the read end is closed first, so the writer stops with EPIPE
/// (SIGPIPE is blocked in that thread) and is joined instead of ending the process.
class PipeWriter {
 public:
  explicit PipeWriter(std::string content, std::size_t chunk = static_cast<std::size_t>(-1))
      : content_(std::move(content)) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    read_fd_ = fds[0];
    int write_fd = fds[1];
    thread_ = std::thread([this, write_fd, chunk] {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      ::pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      for (std::size_t off = 0; off < content_.size();) {
        ssize_t n = ::write(write_fd, content_.data() + off, std::min(chunk, content_.size() - off));
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
      }
      ::close(write_fd);
    });
  }
  PipeWriter(const PipeWriter&) = delete;
  PipeWriter& operator=(const PipeWriter&) = delete;
  ~PipeWriter() {
    if (read_fd_ >= 0) ::close(read_fd_);
    if (thread_.joinable()) thread_.join();
  }
  int read_fd() const noexcept { return read_fd_; }
  const std::string& content() const noexcept { return content_; }

 private:
  std::string content_;
  int read_fd_ = -1;
  std::thread thread_;
};

}  // namespace net_test
