// SPDX-License-Identifier: MIT
// getaddrinfo / getnameinfo on the loop: numeric hosts inline, names off the loop thread.
#include "net_support.hpp"

using asyncio::Coro;
using net_test::run_loop;

namespace {

/// Set by a call_soon callback: true once the loop ran an iteration after `arm()`.
struct IterationProbe {
  bool ran = false;
  void arm() {
    asyncio::get_running_loop().call_soon([this] { ran = true; });
  }
};

bool contains(const std::vector<asyncio::AddrInfo>& infos, const std::string& host) {
  for (auto& ai : infos)
    if (ai.address.host() == host) return true;
  return false;
}

}  // namespace

TEST(dns, NumericIpv4IsResolvedInline) {
  run_loop([]() -> Coro<void> {
    IterationProbe probe;
    probe.arm();
    auto infos = co_await asyncio::getaddrinfo("127.0.0.1", 8080, 0, SOCK_STREAM);
    EXPECT_FALSE(probe.ran) << "a numeric host must not leave the loop thread";
    CO_ASSERT_EQ(infos.size(), 1u);
    EXPECT_EQ(infos[0].family, AF_INET);
    EXPECT_EQ(infos[0].type, SOCK_STREAM);
    EXPECT_EQ(infos[0].address.to_string(), "127.0.0.1:8080");
  }());
}

TEST(dns, NumericIpv6IsResolvedInline) {
  run_loop([]() -> Coro<void> {
    IterationProbe probe;
    probe.arm();
    auto infos = co_await asyncio::getaddrinfo("::1", 443, AF_INET6, SOCK_STREAM);
    EXPECT_FALSE(probe.ran);
    CO_ASSERT_EQ(infos.size(), 1u);
    EXPECT_EQ(infos[0].family, AF_INET6);
    EXPECT_EQ(infos[0].address.to_string(), "[::1]:443");
  }());
}

TEST(dns, EmptyHostWithPassiveFlagIsTheWildcard) {
  run_loop([]() -> Coro<void> {
    auto infos = co_await asyncio::getaddrinfo("", 9000, AF_INET, SOCK_STREAM, 0, AI_PASSIVE);
    CO_ASSERT_FALSE(infos.empty());
    EXPECT_EQ(infos[0].address.host(), "0.0.0.0");
    EXPECT_EQ(infos[0].address.port(), 9000);
  }());
}

TEST(dns, NameIsResolvedOffTheLoopThread) {
  run_loop([]() -> Coro<void> {
    IterationProbe probe;
    probe.arm();
    auto infos = co_await asyncio::getaddrinfo("localhost", 80, AF_INET, SOCK_STREAM);
    EXPECT_TRUE(probe.ran) << "the loop kept running while the resolver worked";
    EXPECT_TRUE(contains(infos, "127.0.0.1"));
  }());
}

TEST(dns, ServiceNamesAreResolved) {
  run_loop([]() -> Coro<void> {
    auto infos = co_await asyncio::getaddrinfo("127.0.0.1", std::string("http"), AF_INET, SOCK_STREAM);
    CO_ASSERT_FALSE(infos.empty());
    EXPECT_EQ(infos[0].address.port(), 80);
  }());
}

TEST(dns, HintsAreRespected) {
  run_loop([]() -> Coro<void> {
    auto infos = co_await asyncio::getaddrinfo("localhost", 80, AF_INET, SOCK_DGRAM);
    CO_ASSERT_FALSE(infos.empty());
    for (auto& ai : infos) {
      EXPECT_EQ(ai.family, AF_INET);
      EXPECT_EQ(ai.type, SOCK_DGRAM);
    }
  }());
}

TEST(dns, FailureIsASystemErrorInTheGaiCategory) {
  run_loop([]() -> Coro<void> {
    try {
      co_await asyncio::getaddrinfo("127.0.0.1", std::string("no-such-service-xyz"), AF_INET, SOCK_STREAM);
      ADD_FAILURE() << "expected a resolver error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().category(), asyncio::gai_category());
      EXPECT_NE(std::string(e.what()).find("no-such-service-xyz"), std::string::npos) << e.what();
    }
  }());
}

TEST(dns, CancelRaisesAtOnceAndTheLateResultIsDropped) {
  run_loop([]() -> Coro<void> {
    auto task = asyncio::create_task(asyncio::getaddrinfo("localhost", 80));
    co_await asyncio::sleep(0);  // the task is now waiting for the resolver thread
    task.cancel();
    double t0 = asyncio::get_running_loop().time();
    EXPECT_THROW(co_await task, asyncio::CancelledError);
    EXPECT_LT(asyncio::get_running_loop().time() - t0, 0.5);  // not after the resolver
    // Let the resolver finish and post its result into the loop: it must be dropped quietly.
    co_await asyncio::sleep(0.2);
  }());
}

TEST(dns, ManyConcurrentLookups) {
  run_loop([]() -> Coro<void> {
    std::vector<asyncio::Task<std::vector<asyncio::AddrInfo>>> tasks;
    for (int i = 0; i < 16; ++i) tasks.push_back(asyncio::create_task(asyncio::getaddrinfo("localhost", 1000 + i, AF_INET)));
    for (int i = 0; i < 16; ++i) {
      auto infos = co_await tasks[i];
      CO_ASSERT_FALSE(infos.empty());
      EXPECT_EQ(infos[0].address.port(), 1000 + i);
    }
  }());
}

TEST(dns, GetnameinfoNumericIsInline) {
  run_loop([]() -> Coro<void> {
    IterationProbe probe;
    probe.arm();
    auto [host, service] = co_await asyncio::getnameinfo(asyncio::SocketAddress::ip("127.0.0.1", 8080),
                                                         NI_NUMERICHOST | NI_NUMERICSERV);
    EXPECT_FALSE(probe.ran);
    EXPECT_EQ(host, "127.0.0.1");
    EXPECT_EQ(service, "8080");
  }());
}

TEST(dns, GetnameinfoLooksUpNames) {
  run_loop([]() -> Coro<void> {
    auto result = co_await asyncio::getnameinfo(asyncio::SocketAddress::ip("127.0.0.1", 80));
    EXPECT_FALSE(result.first.empty());
    EXPECT_EQ(result.second, "http");
  }());
}
