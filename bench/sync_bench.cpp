// SPDX-License-Identifier: MIT
// Our asyncio's side of the synchronization benchmark (bench/run_sync.sh): queue ping-pong, lock
// contention and to_thread round trips, written as a Python programmer would write them, next to
// the same workloads in peers/sync_asyncio.py (asyncio, uvloop) and peers/sync_asio.cpp
// (Boost.Asio).
//
//   sync_bench [--quick] [--only queue,lock,to_thread]
//
// Prints one `RESULT <workload> <metric> <value>` line per metric (bench_common.hpp's format).
#include <asyncio/asyncio.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.hpp"

namespace {

// Full-run sizes (the issue's): --quick divides each by 100.
constexpr long kQueueItems = 1'000'000;  // round trips through two bounded queues
constexpr int kLockTasks = 1000;         // tasks contending for one Lock ...
constexpr long kLockAcquisitions = 1'000'000;  // ... acquiring it this many times in total
constexpr long kToThreadCalls = 100'000;  // sequential to_thread round trips

// ---- queue: two tasks pass items back and forth through two Queue(maxsize=1) ----------------

asyncio::Coro<void> pinger(asyncio::Queue<long>& ping, asyncio::Queue<long>& pong, long n) {
  long sum = 0;
  for (long i = 0; i < n; ++i) {
    co_await ping.put(i);
    sum += co_await pong.get();
  }
  if (sum != n * (n - 1) / 2) std::abort();
}

asyncio::Coro<void> ponger(asyncio::Queue<long>& ping, asyncio::Queue<long>& pong, long n) {
  for (long i = 0; i < n; ++i) co_await pong.put(co_await ping.get());
}

asyncio::Coro<void> bench_queue(long n) {
  asyncio::Queue<long> ping(1), pong(1);
  auto start = bench::Clock::now();
  auto back = asyncio::create_task(ponger(ping, pong, n));
  co_await pinger(ping, pong, n);
  co_await back;
  bench::report("queue", "ns_per_item", bench::seconds_since(start) * 1e9 / double(n));
}

// ---- lock: 1,000 tasks, each `async with lock: counter += 1; await sleep(0)` ----------------

asyncio::Coro<void> contender(asyncio::Lock& lock, long rounds, long& counter) {
  for (long i = 0; i < rounds; ++i) {
    auto held = co_await lock.scoped();
    ++counter;
    co_await asyncio::sleep(0);  // hold it across a yield, so that everybody else queues
  }
}

asyncio::Coro<void> bench_lock(long total) {
  asyncio::Lock lock;
  long counter = 0;
  long rounds = total / kLockTasks;
  std::vector<asyncio::Task<void>> tasks;
  tasks.reserve(kLockTasks);
  auto start = bench::Clock::now();
  for (int t = 0; t < kLockTasks; ++t) tasks.push_back(asyncio::create_task(contender(lock, rounds, counter)));
  for (auto& t : tasks) co_await t;
  double elapsed = bench::seconds_since(start);
  if (counter != rounds * kLockTasks) std::abort();
  bench::report("lock", "ns_per_acquire", elapsed * 1e9 / double(counter));
}

// ---- to_thread: sequential round trips of a trivial function --------------------------------

long trivial(long i) { return i + 1; }

asyncio::Coro<void> bench_to_thread(long n) {
  long sum = 0;
  co_await asyncio::to_thread(trivial, 0L);  // start the default pool outside the timing
  auto start = bench::Clock::now();
  for (long i = 0; i < n; ++i) sum += co_await asyncio::to_thread(trivial, i);
  double elapsed = bench::seconds_since(start);
  if (sum != n * (n + 1) / 2) std::abort();
  bench::report("to_thread", "calls_per_s", double(n) / elapsed);
}

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--quick] [--only queue,lock,to_thread]\n", argv0);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  long div = 1;
  std::string only = "queue,lock,to_thread";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--quick")
      div = 100;
    else if (arg == "--only" && i + 1 < argc)
      only = argv[++i];
    else
      usage(argv[0]);
  }
  auto wants = [&only](std::string_view w) {
    std::string_view list = only;
    while (!list.empty()) {
      std::size_t comma = list.find(',');
      if (list.substr(0, comma) == w) return true;
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return false;
  };
  asyncio::run([](long d, bool q, bool l, bool t) -> asyncio::Coro<void> {
    if (q) co_await bench_queue(kQueueItems / d);
    if (l) co_await bench_lock(kLockAcquisitions / d);
    if (t) co_await bench_to_thread(kToThreadCalls / d);
  }(div, wants("queue"), wants("lock"), wants("to_thread")));
}
