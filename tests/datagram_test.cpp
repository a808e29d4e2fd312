// SPDX-License-Identifier: MIT
// create_datagram_endpoint, DatagramTransport and DatagramProtocol (UDP and Unix datagrams).
#include "net_support.hpp"

using asyncio::Coro;
using asyncio::SocketAddress;
using net_test::run_loop;

namespace {

struct Datagrams : asyncio::DatagramProtocol {
  asyncio::DatagramTransport* transport = nullptr;
  std::vector<std::pair<std::string, SocketAddress>> received;
  std::vector<std::exception_ptr> errors;
  bool echo = false;
  asyncio::Future<void> lost = asyncio::get_running_loop().create_future<void>();

  void connection_made(asyncio::DatagramTransport& t) override { transport = &t; }
  void datagram_received(std::string_view data, const SocketAddress& addr) override {
    received.emplace_back(std::string(data), addr);
    if (echo) transport->sendto(data, addr);
  }
  void error_received(std::exception_ptr e) override { errors.push_back(e); }
  void connection_lost(std::exception_ptr) override {
    if (!lost.done()) lost.set_result();
  }
};

std::shared_ptr<Datagrams> datagrams() { return std::make_shared<Datagrams>(); }

/// Also counts the flow control calls.
struct FlowDatagrams : Datagrams {
  int pauses = 0, resumes = 0;
  void pause_writing() override { ++pauses; }
  void resume_writing() override { ++resumes; }
};
std::shared_ptr<FlowDatagrams> flow_datagrams() { return std::make_shared<FlowDatagrams>(); }
std::shared_ptr<Datagrams> echoer() {
  auto p = std::make_shared<Datagrams>();
  p->echo = true;
  return p;
}

Coro<void> wait_until(std::function<bool()> cond, double timeout = 5.0) {
  double until = asyncio::get_running_loop().time() + timeout;
  while (!cond()) {
    if (asyncio::get_running_loop().time() > until) throw asyncio::TimeoutError("condition not reached");
    co_await asyncio::sleep(0.001);
  }
}

asyncio::DatagramOptions local(const char* host, std::uint16_t port = 0) {
  asyncio::DatagramOptions o;
  o.local_addr = std::pair<std::string, std::uint16_t>(host, port);
  return o;
}
asyncio::DatagramOptions remote(const char* host, std::uint16_t port) {
  asyncio::DatagramOptions o;
  o.remote_addr = std::pair<std::string, std::uint16_t>(host, port);
  return o;
}

}  // namespace

TEST(transport_datagram, EchoOverUdp) {
  run_loop([]() -> Coro<void> {
    auto server = co_await asyncio::create_datagram_endpoint(echoer, local("127.0.0.1"));
    auto server_addr = server.first->get_extra_info<SocketAddress>("sockname");
    CO_ASSERT_TRUE(server_addr.has_value());
    auto client = co_await asyncio::create_datagram_endpoint(datagrams, remote("127.0.0.1", server_addr->port()));
    EXPECT_EQ(client.first->get_extra_info<SocketAddress>("peername"), server_addr);
    client.first->sendto("one");
    client.first->sendto("two");
    co_await wait_until([&] { return client.second->received.size() == 2; });
    EXPECT_EQ(client.second->received[0].first, "one");
    EXPECT_EQ(client.second->received[1].first, "two");
    EXPECT_EQ(client.second->received[0].second, *server_addr);
    EXPECT_EQ(server.second->received.at(0).second, client.first->get_extra_info<SocketAddress>("sockname"));
    client.first->close();
    server.first->close();
    co_await client.second->lost;
    co_await server.second->lost;
  }());
}

TEST(transport_datagram, ConnectedEndpointRejectsAnotherAddress) {
  run_loop([]() -> Coro<void> {
    auto server = co_await asyncio::create_datagram_endpoint(datagrams, local("127.0.0.1"));
    std::uint16_t port = server.first->get_extra_info<SocketAddress>("sockname")->port();
    auto client = co_await asyncio::create_datagram_endpoint(datagrams, remote("127.0.0.1", port));
    EXPECT_THROW(client.first->sendto("x", SocketAddress::ip("127.0.0.1", 9)), asyncio::ValueError);
    client.first->sendto("ok", SocketAddress::ip("127.0.0.1", port));  // the connected address is fine
    co_await wait_until([&] { return server.second->received.size() == 1; });
    // An unconnected endpoint needs an address.
    EXPECT_THROW(server.first->sendto("nowhere"), asyncio::ValueError);
    client.first->close();
    server.first->close();
    co_await client.second->lost;
  }());
}

TEST(transport_datagram, IcmpUnreachableGoesToErrorReceived) {
  run_loop([]() -> Coro<void> {
    std::uint16_t dead;
    {
      asyncio::Socket probe(AF_INET, SOCK_DGRAM);
      probe.bind(SocketAddress::ip("127.0.0.1", 0));
      dead = probe.getsockname().port();
    }
    auto client = co_await asyncio::create_datagram_endpoint(datagrams, remote("127.0.0.1", dead));
    client.first->sendto("anyone?");
    co_await asyncio::sleep(0.05);
    client.first->sendto("anyone??");
    co_await wait_until([&] { return !client.second->errors.empty(); });
    try {
      std::rethrow_exception(client.second->errors[0]);
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::connection_refused);
    }
    EXPECT_FALSE(client.first->is_closing()) << "errors do not close a datagram endpoint";
    client.first->close();
    co_await client.second->lost;
  }());
}

TEST(transport_datagram, Ipv6) {
  if (!net_test::have_ipv6()) GTEST_SKIP() << "no IPv6 loopback";
  run_loop([]() -> Coro<void> {
    auto server = co_await asyncio::create_datagram_endpoint(echoer, local("::1"));
    std::uint16_t port = server.first->get_extra_info<SocketAddress>("sockname")->port();
    auto client = co_await asyncio::create_datagram_endpoint(datagrams, remote("::1", port));
    client.first->sendto("six");
    co_await wait_until([&] { return client.second->received.size() == 1; });
    EXPECT_EQ(client.second->received[0].second.host(), "::1");
    client.first->close();
    server.first->close();
    co_await server.second->lost;
  }());
}

TEST(transport_datagram, UnixDatagrams) {
  net_test::TempDir dir;
  std::string server_path = dir.file("server.dgram");
  std::string client_path = dir.file("client.dgram");
  run_loop([](std::string server_path, std::string client_path) -> Coro<void> {
    asyncio::DatagramOptions so;
    so.family = AF_UNIX;
    so.local_path = server_path;
    auto server = co_await asyncio::create_datagram_endpoint(echoer, std::move(so));
    asyncio::DatagramOptions co;
    co.family = AF_UNIX;
    co.local_path = client_path;  // so that the echo has somewhere to go
    co.remote_path = server_path;
    auto client = co_await asyncio::create_datagram_endpoint(datagrams, std::move(co));
    client.first->sendto("unix datagram");
    co_await wait_until([&] { return client.second->received.size() == 1; });
    EXPECT_EQ(client.second->received[0].first, "unix datagram");
    EXPECT_EQ(client.second->received[0].second.path(), server_path);
    client.first->close();
    server.first->close();
    co_await server.second->lost;
  }(server_path, client_path));
}

TEST(transport_datagram, AdoptsASocket) {
  run_loop([]() -> Coro<void> {
    asyncio::Socket s(AF_INET, SOCK_DGRAM);
    s.bind(SocketAddress::ip("127.0.0.1", 0));
    SocketAddress addr = s.getsockname();
    asyncio::DatagramOptions o;
    o.sock = std::move(s);
    auto endpoint = co_await asyncio::create_datagram_endpoint(datagrams, std::move(o));
    EXPECT_EQ(endpoint.first->get_extra_info<SocketAddress>("sockname"), addr);
    asyncio::Socket sender(AF_INET, SOCK_DGRAM);
    co_await asyncio::sock_sendto(sender, "hello", addr);
    co_await wait_until([&] { return endpoint.second->received.size() == 1; });
    EXPECT_EQ(endpoint.second->received[0].first, "hello");
    asyncio::DatagramOptions bad;
    bad.sock = asyncio::Socket(AF_INET, SOCK_STREAM);
    EXPECT_THROW(co_await asyncio::create_datagram_endpoint(datagrams, std::move(bad)), asyncio::ValueError);
    endpoint.first->abort();
    co_await endpoint.second->lost;
  }());
}

// 512 bytes, numbered.
std::string numbered_datagram(int i) {
  std::string d = "datagram " + std::to_string(i) + " ";
  d.resize(512, static_cast<char>('a' + i % 26));
  return d;
}

TEST(transport_datagram, SendsQueueWhileTheSocketWouldBlockAndGoOutInOrder) {
  run_loop([]() -> Coro<void> {
    // Loopback UDP drops datagrams rather than make the sender wait; a connected Unix datagram
    // pair blocks (EAGAIN) as soon as the receiver holds net.unix.max_dgram_qlen of them.
    std::pair<asyncio::Socket, asyncio::Socket> pair = asyncio::socketpair(AF_UNIX, SOCK_DGRAM);
    asyncio::DatagramOptions so;
    so.sock = std::move(pair.first);
    auto sender = co_await asyncio::create_datagram_endpoint(flow_datagrams, std::move(so));
    sender.first->set_write_buffer_limits(4096, 1024);
    constexpr int kCount = 200;
    constexpr std::size_t kQueuedSize = 512 + 8;  // asyncio counts 8 bytes of header per datagram
    int queued_from = kCount;  // the first datagram the socket did not take
    for (int i = 0; i < kCount; ++i) {
      std::size_t before = sender.first->get_write_buffer_size();
      sender.first->sendto(numbered_datagram(i));
      std::size_t after = sender.first->get_write_buffer_size();
      if (after != 0 && queued_from == kCount) queued_from = i;
      // Once one datagram waits, every later one queues behind it (no overtaking).
      EXPECT_EQ(after, i < queued_from ? 0 : before + kQueuedSize) << "datagram " << i;
    }
    CO_ASSERT_TRUE(queued_from < kCount);  // the socket did block...
    EXPECT_GT(queued_from, 0);             // ...after taking the first ones
    EXPECT_EQ(sender.first->get_write_buffer_size(), static_cast<std::size_t>(kCount - queued_from) * kQueuedSize);
    EXPECT_EQ(sender.second->pauses, 1);
    EXPECT_EQ(sender.second->resumes, 0);
    // close() keeps the queue: it drains first, then connection_lost.
    sender.first->close();
    co_await asyncio::sleep(0.02);
    EXPECT_FALSE(sender.second->lost.done()) << "nothing can drain while the receiver does not read";
    // The receiver starts reading: everything arrives, in order.
    asyncio::DatagramOptions ro;
    ro.sock = std::move(pair.second);
    auto receiver = co_await asyncio::create_datagram_endpoint(datagrams, std::move(ro));
    co_await wait_until([&] { return receiver.second->received.size() == static_cast<std::size_t>(kCount); });
    for (int i = 0; i < kCount; ++i) EXPECT_EQ(receiver.second->received[i].first, numbered_datagram(i)) << i;
    co_await sender.second->lost;
    EXPECT_EQ(sender.first->get_write_buffer_size(), 0u);
    EXPECT_EQ(sender.second->resumes, 1);
    EXPECT_TRUE(sender.second->errors.empty());
    receiver.first->close();
    co_await receiver.second->lost;
  }());
}

TEST(transport_datagram, FamilyIsNeededWithoutAddresses) {
  run_loop([]() -> Coro<void> {
    asyncio::DatagramOptions none;
    EXPECT_THROW(co_await asyncio::create_datagram_endpoint(datagrams, std::move(none)), asyncio::ValueError);
    asyncio::DatagramOptions v4;
    v4.family = AF_INET;
    auto endpoint = co_await asyncio::create_datagram_endpoint(datagrams, std::move(v4));
    auto peer = co_await asyncio::create_datagram_endpoint(datagrams, local("127.0.0.1"));
    SocketAddress peer_addr = *peer.first->get_extra_info<SocketAddress>("sockname");
    endpoint.first->sendto("unbound sender", peer_addr);
    co_await wait_until([&] { return peer.second->received.size() == 1; });
    endpoint.first->close();
    peer.first->close();
    co_await peer.second->lost;
  }());
}

TEST(transport_datagram, NoDescriptorLeaks) {
  int before = net_test::count_open_fds();
  run_loop([]() -> Coro<void> {
    auto server = co_await asyncio::create_datagram_endpoint(echoer, local("127.0.0.1"));
    std::uint16_t port = server.first->get_extra_info<SocketAddress>("sockname")->port();
    for (int i = 0; i < 10; ++i) {
      auto client = co_await asyncio::create_datagram_endpoint(datagrams, remote("127.0.0.1", port));
      client.first->sendto("x");
      co_await wait_until([&] { return client.second->received.size() == 1; });
      client.first->close();
      co_await client.second->lost;
    }
    // The server endpoint is left open: the loop's close gives its socket back.
  }());
  EXPECT_EQ(net_test::count_open_fds(), before);
}
