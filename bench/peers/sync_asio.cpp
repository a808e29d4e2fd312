// SPDX-License-Identifier: MIT
// Boost.Asio peer for the synchronization benchmark (bench/run_sync.sh).
//
//   g++ -std=c++20 -O2 -DNDEBUG bench/peers/sync_asio.cpp -o build/bench-peers/sync_asio -pthread
//   ./sync_asio [--quick] [--only queue,lock,to_thread]
//
// Where Asio has a counterpart, it runs the same workload as bench/sync_bench.cpp:
//  - queue: asio::experimental::channel (two channels of capacity 1, items passed back and
//    forth). The channel came with Boost 1.80; with an older Boost (Debian 12 ships 1.74) the
//    workload reports `SKIP` and the table says so.
//  - lock: Asio has no asynchronous mutex; `SKIP`.
//  - to_thread: co_spawn of the trivial function onto an asio::thread_pool (sized like Python's
//    default executor, min(32, cores + 4)), awaited from a coroutine on a single-threaded
//    io_context with use_awaitable: the Asio idiom for "run this on a thread and come back".

// Before Boost: 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/version.hpp>

#if __has_include(<boost/asio/experimental/channel.hpp>)
#include <boost/asio/experimental/channel.hpp>
#define SYNC_ASIO_HAS_CHANNEL 1
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <thread>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

namespace {

constexpr long kQueueItems = 1'000'000;
constexpr long kToThreadCalls = 100'000;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void report(const char* workload, const char* metric, double value) {
  std::printf("RESULT %s %s %.6g\n", workload, metric, value);
  std::fflush(stdout);
}
void skip(const char* workload, const char* why) {
  std::printf("SKIP %s %s\n", workload, why);
  std::fflush(stdout);
}

#ifdef SYNC_ASIO_HAS_CHANNEL
using Channel = asio::experimental::channel<void(boost::system::error_code, long)>;

awaitable<void> pinger(Channel& ping, Channel& pong, long n) {
  long sum = 0;
  for (long i = 0; i < n; ++i) {
    co_await ping.async_send(boost::system::error_code{}, i, use_awaitable);
    sum += co_await pong.async_receive(use_awaitable);
  }
  if (sum != n * (n - 1) / 2) std::abort();
}

awaitable<void> ponger(Channel& ping, Channel& pong, long n) {
  for (long i = 0; i < n; ++i) {
    long v = co_await ping.async_receive(use_awaitable);
    co_await pong.async_send(boost::system::error_code{}, v, use_awaitable);
  }
}

void bench_queue(long n) {
  asio::io_context io(1);
  Channel ping(io, 1), pong(io, 1);
  auto start = Clock::now();
  asio::co_spawn(io, ponger(ping, pong, n), asio::detached);
  asio::co_spawn(io, pinger(ping, pong, n), asio::detached);
  io.run();
  report("queue", "ns_per_item", seconds_since(start) * 1e9 / double(n));
}
#else
void bench_queue(long) { skip("queue", "Boost " BOOST_LIB_VERSION " has no asio::experimental::channel (since 1.80)"); }
#endif

long trivial(long i) { return i + 1; }

awaitable<void> to_thread_loop(asio::thread_pool& pool, long n, double& elapsed) {
  long sum = co_await asio::co_spawn(pool, []() -> awaitable<long> { co_return trivial(0); }, use_awaitable);
  auto start = Clock::now();
  for (long i = 0; i < n; ++i)
    sum += co_await asio::co_spawn(pool, [i]() -> awaitable<long> { co_return trivial(i); }, use_awaitable);
  elapsed = seconds_since(start);
  if (sum != 1 + n * (n + 1) / 2) std::abort();
}

void bench_to_thread(long n) {
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  asio::thread_pool pool(std::min(32u, cores + 4));
  asio::io_context io(1);
  double elapsed = 0;
  asio::co_spawn(io, to_thread_loop(pool, n, elapsed), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  pool.join();
  report("to_thread", "calls_per_s", double(n) / elapsed);
}

bool wanted(std::string_view list, std::string_view w) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    if (list.substr(0, comma) == w) return true;
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  long div = 1;
  std::string only = "queue,lock,to_thread";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--quick") {
      div = 100;
    } else if (arg == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--only queue,lock,to_thread]\n", argv[0]);
      return 2;
    }
  }
  if (wanted(only, "queue")) bench_queue(kQueueItems / div);
  if (wanted(only, "lock")) skip("lock", "Asio has no asynchronous mutex");
  if (wanted(only, "to_thread")) bench_to_thread(kToThreadCalls / div);
}
