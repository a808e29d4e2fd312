// SPDX-License-Identifier: MIT
// Our asyncio's side of the core benchmark (bench/run_core.sh): the four core workloads, written
// as a Python programmer would write them, next to the same workloads in
// peers/core_asyncio.py (asyncio, uvloop) and peers/core_asio.cpp (Boost.Asio).
//
//   core_bench [--quick] [--only spawn,pingpong,yield,timers]
//
// Prints one `RESULT <workload> <metric> <value>` line per metric (see bench_common.hpp).
#include <asyncio/asyncio.hpp>

#include <chrono>
#include <cstdlib>
#include <utility>
#include <vector>

#include "bench_common.hpp"

namespace {

// ---- spawn -----------------------------------------------------------------------------------

asyncio::Coro<int> trivial(int i) { co_return i; }

// Python: tasks = [create_task(trivial(i)) for i in range(batch)]; total = sum(await t ...)
asyncio::Coro<long> spawn_batch(std::vector<asyncio::Task<int>>& tasks) {
  tasks.clear();
  for (int i = 0; i < bench::kSpawnBatch; ++i) tasks.push_back(asyncio::create_task(trivial(i)));
  long total = 0;
  for (auto& task : tasks) total += co_await task;
  co_return total;
}

asyncio::Coro<void> bench_spawn(int rounds) {
  std::vector<asyncio::Task<int>> tasks;  // reused, so the timing is of tasks, not of vectors
  tasks.reserve(bench::kSpawnBatch);
  long total = 0;
  auto start = bench::Clock::now();
  for (int r = 0; r < rounds; ++r) total += co_await spawn_batch(tasks);
  double elapsed = bench::seconds_since(start);
  if (total != long(rounds) * bench::kSpawnBatch * (bench::kSpawnBatch - 1) / 2) std::abort();
  bench::report("spawn", "tasks_per_s", rounds * bench::kSpawnBatch / elapsed);
}

// ---- pingpong --------------------------------------------------------------------------------

// Where each side parks the one-shot future it waits on; a fresh future per hop, as in Python.
struct Mailbox {
  asyncio::Future<> ping;  // the ponger waits on it; made before either side starts
  asyncio::Future<> pong;  // the pinger waits on it
};

asyncio::Coro<void> pinger(Mailbox& box, int n) {
  auto& loop = asyncio::get_running_loop();
  for (int i = 0; i < n; ++i) {
    // Park our future before waking the ponger, so its reply has a target.
    box.pong = loop.create_future();
    box.ping.set_result();
    co_await box.pong;
  }
}

asyncio::Coro<void> ponger(Mailbox& box, int n) {
  auto& loop = asyncio::get_running_loop();
  for (int i = 0; i < n; ++i) {
    co_await box.ping;
    box.ping = loop.create_future();
    box.pong.set_result();
  }
}

asyncio::Coro<void> bench_pingpong(int n) {
  Mailbox box{asyncio::get_running_loop().create_future(), {}};
  auto start = bench::Clock::now();
  auto pong_task = asyncio::create_task(ponger(box, n));
  co_await asyncio::create_task(pinger(box, n));
  co_await pong_task;
  double elapsed = bench::seconds_since(start);
  // One round trip is two switches: pinger -> ponger -> pinger.
  bench::report("pingpong", "ns_per_switch", elapsed * 1e9 / (2.0 * n));
}

// ---- yield -----------------------------------------------------------------------------------

asyncio::Coro<void> bench_yield(int n) {
  auto start = bench::Clock::now();
  for (int i = 0; i < n; ++i) co_await asyncio::sleep(0);
  double elapsed = bench::seconds_since(start);
  bench::report("yield", "ns_per_yield", elapsed * 1e9 / n);
}

// ---- timers ----------------------------------------------------------------------------------

// A coroutine of its own (like the Asio peer's), so create_task gets a Coro whatever sleep()
// returns; Python hands asyncio.sleep(d), itself a coroutine, straight to create_task.
asyncio::Coro<void> sleeper(std::chrono::nanoseconds delay) { co_await asyncio::sleep(delay); }

// `rerun`: the second time in this process, on memory the first run gave back (see
// bench::kTimerRerunNote).
asyncio::Coro<void> bench_timers(int n, bool rerun) {
  auto delays = bench::timer_delays(n);
  bench::PeakRss rss;
  // Counted in bytes_per_task, like Python's list of tasks: a few bytes of handle per task.
  std::vector<asyncio::Task<void>> tasks;
  tasks.reserve(n);
  auto start = bench::Clock::now();
  for (auto delay : delays) tasks.push_back(asyncio::create_task(sleeper(delay)));
  for (auto& task : tasks) co_await task;
  double elapsed = bench::seconds_since(start);
  if (rerun) {
    bench::report("timers", "wall_s_rerun", elapsed);
  } else {
    bench::report("timers", "wall_s", elapsed);
    bench::report("timers", "bytes_per_task", rss.bytes_per(n));
  }
}

// ---- driver ----------------------------------------------------------------------------------

asyncio::Coro<void> run_all(bench::Options opts) {
  const int div = opts.divisor;
  // Fixed order; timers last as it grows the heap most.
  if (opts.wants("spawn")) co_await bench_spawn(bench::kSpawnRounds / div);
  if (opts.wants("pingpong")) co_await bench_pingpong(bench::kPingPongRoundTrips / div);
  if (opts.wants("yield")) co_await bench_yield(bench::kYields / div);
  if (opts.wants("timers")) {
    co_await bench_timers(bench::kTimerTasks / div, false);
    co_await bench_timers(bench::kTimerTasks / div, true);
  }
}

}  // namespace

int main(int argc, char** argv) {
  asyncio::run(run_all(bench::parse_options(argc, argv)));
}
