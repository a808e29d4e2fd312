// SPDX-License-Identifier: MIT
// Unix domain sockets: create_unix_server / create_unix_connection, start_unix_server /
// open_unix_connection, stale socket files, abstract names; sockets live in a temporary directory.
#include <sys/stat.h>

#include <fstream>

#include "net_support.hpp"

using asyncio::Coro;
using asyncio::StreamReader;
using asyncio::StreamWriter;
using net_test::run_loop;

namespace {

Coro<void> echo_lines(StreamReader reader, StreamWriter writer) {
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;
    writer.write(line);
    co_await writer.drain();
  }
}

bool is_socket_file(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

struct Collect : asyncio::Protocol {
  asyncio::Transport* transport = nullptr;
  std::string data;
  asyncio::Future<void> lost = asyncio::get_running_loop().create_future<void>();
  bool echo = false;
  void connection_made(asyncio::Transport& t) override { transport = &t; }
  void data_received(std::string_view d) override {
    data.append(d);
    if (echo) transport->write(d);
  }
  void connection_lost(std::exception_ptr) override { lost.set_result(); }
};

}  // namespace

TEST(unix_socket, StreamsEcho) {
  net_test::TempDir dir;
  std::string path = dir.file("echo.sock");
  run_loop([](std::string path) -> Coro<void> {
    asyncio::Server server = co_await asyncio::start_unix_server(echo_lines, path);
    EXPECT_TRUE(is_socket_file(path));
    EXPECT_EQ(server.sockets().at(0).family(), AF_UNIX);
    auto [reader, writer] = co_await asyncio::open_unix_connection(path);
    writer.write("over a unix socket\n");
    EXPECT_EQ(co_await reader.readline(), "over a unix socket\n");
    EXPECT_EQ(writer.get_extra_info<asyncio::SocketAddress>("peername")->path(), path);
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
  }(path));
}

TEST(unix_socket, ProtocolsOverUnixSockets) {
  net_test::TempDir dir;
  std::string path = dir.file("proto.sock");
  run_loop([](std::string path) -> Coro<void> {
    asyncio::Server server = co_await asyncio::create_unix_server(
        [] {
          auto p = std::make_shared<Collect>();
          p->echo = true;
          return p;
        },
        path);
    auto [transport, client] = co_await asyncio::create_unix_connection([] { return std::make_shared<Collect>(); }, path);
    transport->write("ping");
    for (int i = 0; i < 1000 && client->data != "ping"; ++i) co_await asyncio::sleep(0.001);
    EXPECT_EQ(client->data, "ping");
    EXPECT_EQ(transport->get_extra_info<asyncio::SocketAddress>("sockname")->path(), "")
        << "an unbound client socket has no name";
    transport->close();
    co_await client->lost;
  }(path));
}

TEST(unix_socket, StaleSocketFileIsRemovedBeforeBind) {
  net_test::TempDir dir;
  std::string path = dir.file("stale.sock");
  {
    // A previous run that died without cleaning up: a socket file with nobody listening.
    asyncio::Socket old(AF_UNIX, SOCK_STREAM);
    old.bind(asyncio::SocketAddress::unix_path(path));
  }
  ASSERT_TRUE(is_socket_file(path));
  run_loop([](std::string path) -> Coro<void> {
    asyncio::Server server = co_await asyncio::start_unix_server(echo_lines, path);
    auto [reader, writer] = co_await asyncio::open_unix_connection(path);
    writer.write("fresh\n");
    EXPECT_EQ(co_await reader.readline(), "fresh\n");
  }(path));
}

TEST(unix_socket, ARegularFileAtThePathIsNotRemoved) {
  net_test::TempDir dir;
  std::string path = dir.file("data.txt");
  std::ofstream(path) << "precious";
  run_loop([](std::string path) -> Coro<void> {
    EXPECT_THROW(co_await asyncio::start_unix_server(echo_lines, path), std::system_error);
  }(path));
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST(unix_socket, ClosingTheServerRemovesItsSocketFile) {
  net_test::TempDir dir;
  std::string path = dir.file("cleanup.sock");
  run_loop([](std::string path) -> Coro<void> {
    asyncio::Server server = co_await asyncio::start_unix_server(echo_lines, path);
    EXPECT_TRUE(exists(path));
    server.close();
    EXPECT_FALSE(exists(path));
  }(path));
}

TEST(unix_socket, CleanupLeavesAFileThatIsNoLongerOurs) {
  net_test::TempDir dir;
  std::string path = dir.file("replaced.sock");
  run_loop([](std::string path) -> Coro<void> {
    asyncio::Server server = co_await asyncio::start_unix_server(echo_lines, path);
    // Someone else replaces the socket file while we run; closing must not delete theirs.
    ::unlink(path.c_str());
    asyncio::Socket other(AF_UNIX, SOCK_STREAM);
    other.bind(asyncio::SocketAddress::unix_path(path));
    server.close();
    EXPECT_TRUE(is_socket_file(path));
  }(path));
}

TEST(unix_socket, AbstractNamespace) {
  run_loop([]() -> Coro<void> {
    std::string name = std::string("\0asyncio-test-", 14) + std::to_string(::getpid());
    asyncio::Server server = co_await asyncio::start_unix_server(echo_lines, name);
    auto [reader, writer] = co_await asyncio::open_unix_connection(name);
    writer.write("abstract\n");
    EXPECT_EQ(co_await reader.readline(), "abstract\n");
  }());
}

TEST(unix_socket, ConnectingWithoutAServerFails) {
  net_test::TempDir dir;
  std::string path = dir.file("nobody.sock");
  run_loop([](std::string path) -> Coro<void> {
    try {
      co_await asyncio::open_unix_connection(path);
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
    }
  }(path));
}

TEST(unix_socket, AdoptedSockets) {
  run_loop([]() -> Coro<void> {
    auto pair = asyncio::socketpair();
    auto [transport, client] =
        co_await asyncio::create_unix_connection([] { return std::make_shared<Collect>(); }, "", std::move(pair.first));
    co_await asyncio::sock_sendall(pair.second, "from the other end");
    for (int i = 0; i < 1000 && client->data.size() < 18; ++i) co_await asyncio::sleep(0.001);
    EXPECT_EQ(client->data, "from the other end");
    transport->close();
    co_await client->lost;
  }());
}

TEST(unix_socket, NoDescriptorLeaks) {
  net_test::TempDir dir;
  std::string path = dir.file("leak.sock");
  int before = net_test::count_open_fds();
  run_loop([](std::string path) -> Coro<void> {
    asyncio::Server server = co_await asyncio::start_unix_server(echo_lines, path);
    for (int i = 0; i < 20; ++i) {
      auto [reader, writer] = co_await asyncio::open_unix_connection(path);
      writer.write("x\n");
      EXPECT_EQ(co_await reader.readline(), "x\n");
      writer.close();
      co_await writer.wait_closed();
    }
    server.close();
    co_await server.wait_closed();
  }(path));
  EXPECT_EQ(net_test::count_open_fds(), before);
}

TEST(unix_socket, PythonClientAgainstOurUnixServer) {
  net_test::TempDir dir;
  std::string path = dir.file("py.sock");
  run_loop(
      [](std::string path) -> Coro<void> {
        asyncio::Server server = co_await asyncio::start_unix_server(echo_lines, path);
        const char* script = R"PY(
import asyncio, sys
async def main(path):
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b'unix interop\n')
    await writer.drain()
    print((await reader.readline()).decode(), end='')
    writer.close()
    await writer.wait_closed()
asyncio.run(main(sys.argv[1]))
)PY";
        std::vector<std::string> args;
        args.push_back(path);
        net_test::ProcessResult r = co_await net_test::run_python(script, std::move(args));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_EQ(r.output, "unix interop\n");
      }(path),
      60);
}
