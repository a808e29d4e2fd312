// SPDX-License-Identifier: MIT
// Every entry point that takes a duration or a deadline, swept with the values ported Python code
// passes (detail/duration.hpp): 0, -1, 1e-12, 1e10, 1e300, inf, -inf and NaN. NaN is a ValueError;
// zero, negative and tiny values act now; huge and infinite values never fire. Meanwhile a ticker
// task must keep ticking: a deadline that overflowed once froze the whole loop in its poller.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <thread>

#include "asyncio/asyncio.hpp"
#include "asyncio/detail/duration.hpp"
#include "net_support.hpp"

namespace {

using asyncio::Coro;
using net_test::port_of;
using net_test::run_loop;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class Kind { nan, now, never };

Kind kind_of(double v) {
  if (std::isnan(v)) return Kind::nan;
  return v >= 1e10 ? Kind::never : Kind::now;
}

std::string value_name(double v) {
  if (std::isnan(v)) return "NaN";
  if (v == kInf) return "inf";
  if (v == -kInf) return "minus_inf";
  if (v == 0) return "zero";
  if (v == -1) return "minus_one";
  if (v == 1e-12) return "tiny";
  if (v == 1e10) return "1e10";
  return "1e300";
}

const double kValues[] = {0, -1, 1e-12, 1e10, 1e300, kInf, -kInf, kNaN};

/// One entry point under test: a coroutine that starts what takes `v` and returns once it
/// fired (its callback ran, its timeout expired, its wait returned). Its task is still pending
/// when the value means never.
struct Entry {
  const char* name;
  std::function<Coro<void>(double)> start;
};

Coro<void> sleep_entry(double v) { co_await asyncio::sleep(v); }

Coro<void> sleep_chrono_entry(double v) {
  // Durations reach the same conversion (a NaN double duration too).
  co_await asyncio::sleep(std::chrono::duration<double>(v));
}

Coro<void> call_later_entry(double v) {
  asyncio::EventLoop& loop = asyncio::get_running_loop();
  auto fired = loop.create_future<void>();
  asyncio::TimerHandle h = loop.call_later(v, [fired]() mutable { fired.set_result(); });
  co_await fired;
}

Coro<void> call_at_entry(double v) {
  asyncio::EventLoop& loop = asyncio::get_running_loop();
  auto fired = loop.create_future<void>();
  asyncio::TimerHandle h = loop.call_at(loop.time() + v, [fired]() mutable { fired.set_result(); });
  co_await fired;
}

Coro<void> expect_timeout(std::function<Coro<void>()> body) {
  try {
    co_await body();
  } catch (const asyncio::TimeoutError&) {
    co_return;
  }
  ADD_FAILURE() << "no TimeoutError";
}

Coro<void> timeout_entry(double v) {
  auto body = [v]() -> Coro<void> {
    co_await asyncio::timeout(v, []() -> Coro<void> { co_await asyncio::sleep(kInf); });
  };
  co_await expect_timeout(body);
}

Coro<void> timeout_at_entry(double v) {
  auto body = [v]() -> Coro<void> {
    double when = asyncio::get_running_loop().time() + v;
    co_await asyncio::timeout_at(when, []() -> Coro<void> { co_await asyncio::sleep(kInf); });
  };
  co_await expect_timeout(body);
}

Coro<void> reschedule_entry(double v) {
  auto body = [v]() -> Coro<void> {
    auto block = [v](asyncio::Timeout& cm) -> Coro<void> {
      cm.reschedule(asyncio::get_running_loop().time() + v);
      co_await asyncio::sleep(kInf);
    };
    co_await asyncio::timeout(std::nullopt, block);
  };
  co_await expect_timeout(body);
}

Coro<void> sleep_forever() { co_await asyncio::sleep(kInf); }

Coro<void> wait_for_entry(double v) {
  auto body = [v]() -> Coro<void> { co_await asyncio::wait_for(sleep_forever(), v); };
  co_await expect_timeout(body);
}

Coro<void> wait_entry(double v) {
  auto never = asyncio::get_running_loop().create_future<void>();
  std::vector<asyncio::Future<void>> fs;
  fs.push_back(never);
  auto result = co_await asyncio::wait(std::move(fs), v);
  EXPECT_EQ(result.pending.size(), 1u);
}

Coro<void> as_completed_entry(double v) {
  auto never = asyncio::get_running_loop().create_future<void>();
  std::vector<asyncio::Future<void>> fs;
  fs.push_back(never);
  auto body = [&fs, v]() -> Coro<void> {
    auto completions = asyncio::as_completed(std::move(fs), v);
    co_await *completions.begin();
  };
  co_await expect_timeout(body);
}

Coro<void> shutdown_default_executor_entry(double v) {
  // A call still running (for 0.2 s) holds the shutdown: it gives up at once, or waits for it.
  asyncio::EventLoop& loop = asyncio::get_running_loop();
  auto blocker = [] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); };
  asyncio::Future<void> call = asyncio::to_thread(blocker);
  co_await asyncio::sleep(0);
  co_await loop.shutdown_default_executor(v);  // a timeout is logged, not raised (as Python)
}

const Entry kEntries[] = {
    {"sleep", sleep_entry},
    {"sleep_chrono", sleep_chrono_entry},
    {"call_later", call_later_entry},
    {"call_at", call_at_entry},
    {"timeout", timeout_entry},
    {"timeout_at", timeout_at_entry},
    {"reschedule", reschedule_entry},
    {"wait_for", wait_for_entry},
    {"wait", wait_entry},
    {"as_completed", as_completed_entry},
};

/// Starts the entry as a task beside a ticker, lets the ticker tick, and checks the entry's
/// outcome against the value's kind. The ticker must finish in real time: a frozen loop fails.
Coro<void> sweep(const Entry& entry, double v) {
  asyncio::EventLoop& loop = asyncio::get_running_loop();
  int ticks = 0;
  auto ticker = [&ticks]() -> Coro<void> {
    for (int i = 0; i < 5; ++i) {
      co_await asyncio::sleep(0.002);
      ++ticks;
    }
  };
  auto started = std::chrono::steady_clock::now();
  asyncio::Task<void> ticking = loop.create_task(ticker());
  asyncio::Task<void> under_test = loop.create_task(entry.start(v));
  co_await ticking;
  EXPECT_EQ(ticks, 5);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10)) << "the loop stalled";
  switch (kind_of(v)) {
    case Kind::nan:
      EXPECT_TRUE(under_test.done()) << entry.name << "(NaN) did not fail at once";
      if (under_test.done()) {
        EXPECT_THROW(under_test.result(), asyncio::ValueError) << entry.name;
      }
      break;
    case Kind::now:
      EXPECT_TRUE(under_test.done()) << entry.name << "(" << v << ") did not act now";
      if (under_test.done()) {
        EXPECT_NO_THROW(under_test.result()) << entry.name;
      }
      break;
    case Kind::never:
      EXPECT_FALSE(under_test.done()) << entry.name << "(" << v << ") fired";
      under_test.cancel();
      try {
        co_await under_test;
      } catch (const asyncio::CancelledError&) {
      }
      break;
  }
}

class Durations : public ::testing::TestWithParam<std::tuple<int, double>> {};

TEST_P(Durations, ActsNowNeverOrRaises) {
  const Entry& entry = kEntries[std::get<0>(GetParam())];
  double v = std::get<1>(GetParam());
  run_loop(sweep(entry, v));
}

INSTANTIATE_TEST_SUITE_P(EveryEntryPoint, Durations,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(std::size(kEntries))),
                                            ::testing::ValuesIn(kValues)),
                         [](const ::testing::TestParamInfo<Durations::ParamType>& info) {
                           return std::string(kEntries[std::get<0>(info.param)].name) + "_" +
                                  value_name(std::get<1>(info.param));
                         });

// shutdown_default_executor: a call that is still running holds it until the timeout.

TEST(DurationsExecutor, ShutdownDefaultExecutorTakesEveryTimeout) {
  for (double v : kValues) {
    SCOPED_TRACE(value_name(v));
    run_loop(sweep(Entry{"shutdown_default_executor", shutdown_default_executor_entry}, v));
  }
}

// The thread side: ConcurrentFuture's blocking waits.

TEST(DurationsThreads, ConcurrentFutureResultNaNIsValueError) {
  asyncio::ConcurrentFuture<int> f;
  EXPECT_THROW(f.result(kNaN), asyncio::ValueError);
  EXPECT_THROW(f.wait(kNaN), asyncio::ValueError);
}

TEST(DurationsThreads, ConcurrentFutureResultNowValuesTimeOutAtOnce) {
  for (double v : {0.0, -1.0, 1e-12, -kInf}) {
    asyncio::ConcurrentFuture<int> f;
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(f.result(v), asyncio::TimeoutError) << v;
    EXPECT_FALSE(f.wait(v)) << v;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << v;
  }
}

TEST(DurationsThreads, ConcurrentFutureResultHugeValuesWaitForTheResult) {
  for (double v : {1e10, 1e300, kInf}) {
    asyncio::ConcurrentFuture<int> f;
    std::thread setter([f] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      f.set_result(7);
    });
    EXPECT_EQ(f.result(v), 7) << v;  // not an immediate TimeoutError
    setter.join();
  }
}

#if ASYNCIO_HAS_TLS  // a build without TLS (ASYNCIO_WITH_TLS=OFF) has no ssl=
// TLS timeouts (Python's SSLProtocol): a positive number, +inf for no limit.

Coro<void> tls_server_with(double handshake, double shutdown) {
  asyncio::ServerOptions options;
  options.ssl = asyncio::ssl::SSLContext(asyncio::ssl::Side::server);
  options.ssl_handshake_timeout = handshake;
  options.ssl_shutdown_timeout = shutdown;
  auto handler = [](asyncio::StreamReader, asyncio::StreamWriter) -> Coro<void> { co_return; };
  asyncio::Server server = co_await asyncio::start_server(handler, "127.0.0.1", 0, std::move(options));
  server.close();
  co_await server.wait_closed();
}

TEST(DurationsTls, HandshakeAndShutdownTimeoutsMustBePositive) {
  for (double v : kValues) {
    SCOPED_TRACE(value_name(v));
    bool positive = v > 0;
    if (positive) {
      EXPECT_NO_THROW(run_loop(tls_server_with(v, 30.0)));
      EXPECT_NO_THROW(run_loop(tls_server_with(60.0, v)));
    } else {
      EXPECT_THROW(run_loop(tls_server_with(v, 30.0)), asyncio::ValueError);
      EXPECT_THROW(run_loop(tls_server_with(60.0, v)), asyncio::ValueError);
    }
  }
}
#endif

// Happy Eyeballs: the delay between attempts; NaN is a ValueError, every other value connects.

Coro<void> connect_with_delay(double v) {
  auto handler = [](asyncio::StreamReader, asyncio::StreamWriter w) -> Coro<void> {
    w.close();
    co_return;
  };
  asyncio::Server server = co_await asyncio::start_server(handler, "127.0.0.1", 0);
  asyncio::ConnectOptions options;
  options.happy_eyeballs_delay = v;
  std::exception_ptr failure;
  try {
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(options));
    writer.close();
  } catch (...) {
    failure = std::current_exception();
  }
  server.close();
  co_await server.wait_closed();
  if (failure) std::rethrow_exception(failure);
}

TEST(DurationsNet, HappyEyeballsDelayTakesEveryValue) {
  for (double v : kValues) {
    SCOPED_TRACE(value_name(v));
    if (std::isnan(v))
      EXPECT_THROW(run_loop(connect_with_delay(v)), asyncio::ValueError);
    else
      EXPECT_NO_THROW(run_loop(connect_with_delay(v)));
  }
}

// The conversion itself, at its edges.

TEST(DurationsConversion, SaturatesInsteadOfOverflowing) {
  using asyncio::detail::delay_ns;
  using asyncio::detail::kNeverNs;
  EXPECT_EQ(delay_ns(kInf), kNeverNs);
  EXPECT_EQ(delay_ns(1e300), kNeverNs);
  EXPECT_EQ(delay_ns(9.3e9), kNeverNs);
  EXPECT_EQ(delay_ns(-kInf), 0);
  EXPECT_EQ(delay_ns(-1), 0);
  EXPECT_EQ(delay_ns(1.5), 1'500'000'000);
  EXPECT_EQ(delay_ns(std::chrono::hours::max()), kNeverNs);
  EXPECT_EQ(delay_ns(std::chrono::seconds(-5)), 0);
  EXPECT_EQ(delay_ns(std::chrono::milliseconds(3)), 3'000'000);
  EXPECT_EQ(asyncio::detail::deadline_after(kNeverNs - 5, 10), kNeverNs);
  EXPECT_EQ(asyncio::detail::deadline_after(100, 10), 110);
  EXPECT_THROW(delay_ns(kNaN), asyncio::ValueError);
}

}  // namespace
