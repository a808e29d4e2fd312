// SPDX-License-Identifier: MIT
// No call the library makes raises SIGPIPE: writing to a connection the peer has closed, or that
// is shut down for writing, gives an exception (EPIPE, ECONNRESET), never a dead process. Each
// test runs with SIGPIPE's default disposition (terminate) in place, as a program that never
// touched it has: a SIGPIPE would end the test binary, and CTest would report the crash.
// (Pipe writes have their own test in pipes_test.) A running loop blocks SIGPIPE on its thread
// (src/os/sigpipe_run.hpp); the last tests check that policy itself.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "asyncio/asyncio.hpp"
#include "net_support.hpp"
#if ASYNCIO_HAS_TLS
#include "tls_support.hpp"
#endif

namespace {

using asyncio::Coro;
using net_test::port_of;
using net_test::run_loop;
using net_test::TempDir;

/// SIGPIPE's default disposition (and unblocked) for one test, restored afterwards.
class DefaultSigpipe : public ::testing::Test {
 protected:
  void SetUp() override {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ASSERT_EQ(::sigaction(SIGPIPE, &dfl, &old_), 0);
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    ASSERT_EQ(::pthread_sigmask(SIG_UNBLOCK, &pipe, &old_mask_), 0);
  }
  void TearDown() override {
    ::sigaction(SIGPIPE, &old_, nullptr);
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  struct sigaction old_ {};
  sigset_t old_mask_{};
};

bool is_broken_connection(const std::system_error& e) {
  int c = e.code().value();
  return c == EPIPE || c == ECONNRESET;
}

/// Runs `body`, which must fail with EPIPE or ECONNRESET.
Coro<void> expect_broken(std::function<Coro<void>()> body) {
  try {
    co_await body();
  } catch (const std::system_error& e) {
    EXPECT_TRUE(is_broken_connection(e)) << e.what();
    co_return;
  }
  ADD_FAILURE() << "the write to a broken connection succeeded";
}

/// A connected pair of stream sockets for the sock_* calls, the first shut down for writing.
std::pair<asyncio::Socket, asyncio::Socket> pair_shut_for_writing() {
  auto pair = asyncio::socketpair();
  pair.first.shutdown(SHUT_WR);
  return pair;
}

TEST_F(DefaultSigpipe, SockSendallOnASocketShutForWriting) {
  run_loop([]() -> Coro<void> {
    auto pair = pair_shut_for_writing();  // (no structured binding: clang 14 cannot capture one)
    asyncio::Socket& a = pair.first;
    auto send = [&a]() -> Coro<void> { co_await asyncio::sock_sendall(a, std::string(100, 'x')); };
    co_await expect_broken(send);
  }());
}

/// sock_sendfile of a `size`-byte file on a socket shut for writing: must fail with EPIPE.
Coro<void> sock_sendfile_on_a_shut_socket(std::size_t size) {
  TempDir dir;
  std::string content;
  int file = net_test::patterned_file(dir, size, content);
  auto pair = pair_shut_for_writing();  // (no structured binding: clang 14 cannot capture one)
  asyncio::Socket& a = pair.first;
  auto send = [&a, file]() -> Coro<void> { co_await asyncio::sock_sendfile(a, file, 0); };
  co_await expect_broken(send);
  ::close(file);
}

TEST_F(DefaultSigpipe, SockSendfileOnASocketShutForWriting) {
  run_loop(sock_sendfile_on_a_shut_socket(1 << 20));
}

/// A TCP connection to a server that keeps its side open and reads nothing; `client` gets the
/// client's writer.
struct Connection {
  asyncio::Server server;
  asyncio::StreamWriter writer;
};

Coro<Connection> connect_to_silent_server(bool tls = false) {
  auto handler = [](asyncio::StreamReader r, asyncio::StreamWriter w) -> Coro<void> {
    try {
      co_await r.read(-1);  // until the client is gone
    } catch (const std::system_error&) {
    }
    w.close();
  };
  asyncio::ServerOptions server_options;
  asyncio::ConnectOptions client_options;
#if ASYNCIO_HAS_TLS
  if (tls) {
    server_options.ssl = tls_test::server_context();
    client_options.ssl = tls_test::trusting_client();
    client_options.server_hostname = "localhost";
  }
#else
  (void)tls;
#endif
  asyncio::Server server = co_await asyncio::start_server(handler, "127.0.0.1", 0, std::move(server_options));
  auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(client_options));
  co_return Connection{std::move(server), std::move(writer)};
}

/// Shuts the transport's socket for writing underneath it, so its next write gets EPIPE.
void shut_underneath(const asyncio::StreamWriter& writer) {
  auto sock = writer.get_extra_info<asyncio::SocketView>("socket");
  ASSERT_TRUE(sock.has_value());
  ASSERT_EQ(::shutdown(sock->fd, SHUT_WR), 0);
}

Coro<void> close_connection(Connection& c) {
  c.writer.close();
  try {
    co_await c.writer.wait_closed();
  } catch (const std::system_error&) {  // the transport already failed, as intended
  }
  c.server.close();
  co_await c.server.wait_closed();
}

/// Writes until the connection fails (drain() raises once the transport has seen the error,
/// which may take a write that had to wait for the socket).
Coro<void> write_until_broken(asyncio::StreamWriter& writer) {
  for (int i = 0; i < 100; ++i) {
    writer.write(std::string(1 << 16, 'x'));
    co_await writer.drain();
    co_await asyncio::sleep(0.001);
  }
}

TEST_F(DefaultSigpipe, TransportWriteOnASocketShutForWriting) {
  run_loop([]() -> Coro<void> {
    Connection c = co_await connect_to_silent_server();
    shut_underneath(c.writer);
    auto send = [&c]() -> Coro<void> { co_await write_until_broken(c.writer); };
    co_await expect_broken(send);
    co_await close_connection(c);
  }());
}

TEST_F(DefaultSigpipe, TransportSendfileOnASocketShutForWriting) {
  run_loop([]() -> Coro<void> {
    TempDir dir;
    std::string content;
    int file = net_test::patterned_file(dir, 1 << 20, content);
    Connection c = co_await connect_to_silent_server();
    shut_underneath(c.writer);
    auto send = [&c, file]() -> Coro<void> { co_await asyncio::sendfile(c.writer.transport(), file); };
    co_await expect_broken(send);
    ::close(file);
    co_await close_connection(c);
  }());
}

#if ASYNCIO_HAS_TLS  // a build without TLS (ASYNCIO_WITH_TLS=OFF) has no ssl=
TEST_F(DefaultSigpipe, TlsWriteOnASocketShutForWriting) {
  run_loop([]() -> Coro<void> {
    Connection c = co_await connect_to_silent_server(/*tls=*/true);
    shut_underneath(c.writer);
    auto send = [&c]() -> Coro<void> { co_await write_until_broken(c.writer); };
    co_await expect_broken(send);
    co_await close_connection(c);
  }());
}
#endif

/// The ordinary way it happens: a large file sent to a client that reads a little and leaves.
Coro<void> sendfile_to_a_leaving_client(int file) {
  std::uint16_t port = 0;
  auto served = asyncio::get_running_loop().create_future<void>();
  auto handler = [file, served](asyncio::StreamReader, asyncio::StreamWriter w) mutable -> Coro<void> {
    try {
      co_await asyncio::sendfile(w.transport(), file);
    } catch (const std::system_error& e) {
      EXPECT_TRUE(is_broken_connection(e)) << e.what();
    }
    w.close();
    served.set_result();
  };
  asyncio::Server server = co_await asyncio::start_server(handler, "127.0.0.1", 0);
  port = port_of(server);
  {
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port);
    co_await reader.readexactly(64 * 1024);
    writer.close();  // unread data: the kernel answers the server's next segments with a reset
  }
  co_await served;
  server.close();
  co_await server.wait_closed();
}

TEST_F(DefaultSigpipe, SendfileToAClientThatLeavesMidTransfer) {
  TempDir dir;
  std::string content;
  int file = net_test::patterned_file(dir, 32 << 20, content);
  for (int i = 0; i < 5; ++i) run_loop(sendfile_to_a_leaving_client(file));
  ::close(file);
}

TEST_F(DefaultSigpipe, SendfileDoesNotSwallowASigpipeThatWasAlreadyPending) {
  // The application's own SIGPIPE, blocked and pending before our call, stays pending after it.
  sigset_t pipe, old;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &pipe, &old), 0);
  ASSERT_EQ(::raise(SIGPIPE), 0);
  // However the body ends, the SIGPIPE raised above is taken back before the mask is restored,
  // or it would end the test binary.
  struct TakeBack {
    sigset_t set, old;
    ~TakeBack() {
      const struct timespec zero {};
      ::sigtimedwait(&set, nullptr, &zero);
      ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
  } take_back{pipe, old};
  run_loop(sock_sendfile_on_a_shut_socket(1 << 16));
  sigset_t pending;
  sigemptyset(&pending);
  ASSERT_EQ(::sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 1);
}

bool sigpipe_blocked_here() {
  sigset_t mask;
  sigemptyset(&mask);
  ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, SIGPIPE) == 1;
}

bool sigpipe_pending_here() {
  sigset_t pending;
  sigemptyset(&pending);
  ::sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

TEST_F(DefaultSigpipe, TheRunningLoopBlocksItOnItsThreadAndGivesTheMaskBack) {
  bool blocked_while_running = false;
  run_loop([](bool& seen) -> Coro<void> {
    seen = sigpipe_blocked_here();
    co_return;
  }(blocked_while_running));
  EXPECT_TRUE(blocked_while_running);
  EXPECT_FALSE(sigpipe_blocked_here());
}

TEST_F(DefaultSigpipe, ARawWriteOnTheLoopThreadIsEpipeAndLeavesNothingPending) {
  // Python ignores SIGPIPE: a write of the application's own, in a coroutine, fails with EPIPE.
  int err = 0;
  run_loop([](int& out) -> Coro<void> {
    int fds[2];
    if (::pipe(fds) != 0) throw std::system_error(errno, std::system_category(), "pipe");
    ::close(fds[0]);
    out = ::write(fds[1], "x", 1) < 0 ? errno : 0;
    ::close(fds[1]);
    co_return;
  }(err));
  EXPECT_EQ(err, EPIPE);
  EXPECT_FALSE(sigpipe_pending_here());  // consumed before the mask came back: the test lives
}

TEST(SigpipeElsewhere, ALoopLeavesAnIgnoredOrHandledSigpipeAlone) {
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  ASSERT_EQ(::sigaction(SIGPIPE, &ign, &old), 0);
  bool blocked_while_running = true;
  run_loop([](bool& seen) -> Coro<void> {
    seen = sigpipe_blocked_here();
    co_return;
  }(blocked_while_running));
  ::sigaction(SIGPIPE, &old, nullptr);
  EXPECT_FALSE(blocked_while_running);
}

}  // namespace
