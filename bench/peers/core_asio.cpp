// SPDX-License-Identifier: MIT
// Boost.Asio peer for the core benchmark (bench/run_core.sh): the four core workloads with
// C++20 coroutines (asio::awaitable, co_spawn, use_awaitable) on one single-threaded io_context.
//
//   g++ -std=c++20 -O2 -DNDEBUG bench/peers/core_asio.cpp -o build/bench-peers/core_asio
//   ./core_asio [--quick] [--only spawn,pingpong,yield,timers]
//
// Written against Boost 1.74 (Debian 12). Everything uses the default any_io_executor, as
// idiomatic Asio code does, rather than a hand-tuned concrete executor type.

// Before Boost: 1.74's awaitable.hpp uses std::exchange without including <utility>, which
// g++ 12's standard headers no longer pull in indirectly.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <vector>

#include "../bench_common.hpp"

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

namespace {

// A one-shot, auto-resetting wake-up. Boost 1.74 has no asio::experimental::channel (it came
// in 1.78), so this is the classic Asio idiom: a timer that never expires on its own, cancelled
// to wake whoever waits on it. The cancel posts the waiter's completion through the io_context,
// so each wake is one trip through the scheduler, as a future's callback is in asyncio.
// `set_` keeps a notify() that comes before the wait (cancel() then wakes nobody).
class Notification {
 public:
  explicit Notification(const asio::any_io_executor& ex)
      : timer_(ex, asio::steady_timer::time_point::max()) {}

  void notify() {
    set_ = true;
    timer_.cancel();
  }

  // True, and reset, if notify() happened; otherwise co_await wait() and ask again.
  bool consume() { return std::exchange(set_, false); }

  // The cancellation is the wake-up, so its operation_aborted goes to ec_ instead of throwing.
  auto wait() { return timer_.async_wait(asio::redirect_error(use_awaitable, ec_)); }

 private:
  asio::steady_timer timer_;
  boost::system::error_code ec_;
  bool set_ = false;
};

// Asio has no task handle to await, so "create N tasks, await each" becomes co_spawn with a
// completion handler that stores the result, plus one join the spawner waits on. In asyncio the
// awaiting task also wakes once per batch (all the batch runs before its first await returns),
// so the shape is the same.
class Join {
 public:
  explicit Join(const asio::any_io_executor& ex) : all_done_(ex) {}

  void expect(std::size_t n) { pending_ = n; }
  void one_done() {
    if (--pending_ == 0) all_done_.notify();
  }
  awaitable<void> wait_all() {
    while (!all_done_.consume()) co_await all_done_.wait();
  }

 private:
  Notification all_done_;
  std::size_t pending_ = 0;
};

// ---- spawn -----------------------------------------------------------------------------------

awaitable<int> trivial(int i) { co_return i; }

awaitable<long> spawn_batch(const asio::any_io_executor& ex, Join& join, std::vector<int>& results) {
  join.expect(results.size());
  for (int i = 0; i < int(results.size()); ++i) {
    asio::co_spawn(ex, trivial(i), [&join, &results, i](std::exception_ptr e, int value) {
      if (e) std::rethrow_exception(e);
      results[i] = value;
      join.one_done();
    });
  }
  co_await join.wait_all();
  long total = 0;
  for (int v : results) total += v;
  co_return total;
}

awaitable<void> bench_spawn(int rounds) {
  auto ex = co_await asio::this_coro::executor;
  Join join(ex);
  std::vector<int> results(bench::kSpawnBatch);
  long total = 0;
  auto start = bench::Clock::now();
  for (int r = 0; r < rounds; ++r) total += co_await spawn_batch(ex, join, results);
  double elapsed = bench::seconds_since(start);
  if (total != long(rounds) * bench::kSpawnBatch * (bench::kSpawnBatch - 1) / 2) std::abort();
  bench::report("spawn", "tasks_per_s", rounds * bench::kSpawnBatch / elapsed);
}

// ---- pingpong --------------------------------------------------------------------------------

struct Court {
  explicit Court(const asio::any_io_executor& ex) : ping(ex), pong(ex) {}
  Notification ping;  // the ponger waits on it
  Notification pong;  // the pinger waits on it
};

awaitable<void> pinger(Court& court, int n) {
  for (int i = 0; i < n; ++i) {
    court.ping.notify();
    while (!court.pong.consume()) co_await court.pong.wait();
  }
}

awaitable<void> ponger(Court& court, int n) {
  for (int i = 0; i < n; ++i) {
    while (!court.ping.consume()) co_await court.ping.wait();
    court.pong.notify();
  }
}

awaitable<void> bench_pingpong(int n) {
  auto ex = co_await asio::this_coro::executor;
  Court court(ex);
  Join join(ex);
  join.expect(2);
  auto on_done = [&join](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    join.one_done();
  };
  auto start = bench::Clock::now();
  asio::co_spawn(ex, ponger(court, n), on_done);
  asio::co_spawn(ex, pinger(court, n), on_done);
  co_await join.wait_all();
  double elapsed = bench::seconds_since(start);
  // One round trip is two switches: pinger -> ponger -> pinger.
  bench::report("pingpong", "ns_per_switch", elapsed * 1e9 / (2.0 * n));
}

// ---- yield -----------------------------------------------------------------------------------

awaitable<void> bench_yield(int n) {
  auto ex = co_await asio::this_coro::executor;
  auto start = bench::Clock::now();
  // Asio's sleep(0): go to the back of the io_context's queue and come back.
  for (int i = 0; i < n; ++i) co_await asio::post(ex, use_awaitable);
  double elapsed = bench::seconds_since(start);
  bench::report("yield", "ns_per_yield", elapsed * 1e9 / n);
}

// ---- timers ----------------------------------------------------------------------------------

// Asio's asyncio.sleep(d): a timer per sleeper, living in the coroutine frame.
awaitable<void> sleeper(std::chrono::nanoseconds delay) {
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  co_await timer.async_wait(use_awaitable);
}

awaitable<void> bench_timers(int n, bool rerun) {
  auto ex = co_await asio::this_coro::executor;
  auto delays = bench::timer_delays(n);
  Join join(ex);
  join.expect(n);
  bench::PeakRss rss;
  auto start = bench::Clock::now();
  for (auto delay : delays) {
    asio::co_spawn(ex, sleeper(delay), [&join](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
      join.one_done();
    });
  }
  co_await join.wait_all();
  double elapsed = bench::seconds_since(start);
  if (rerun) {
    bench::report("timers", "wall_s_rerun", elapsed);
  } else {
    bench::report("timers", "wall_s", elapsed);
    bench::report("timers", "bytes_per_task", rss.bytes_per(n));
  }
}

// ---- driver ----------------------------------------------------------------------------------

// Each workload gets a fresh io_context. An io_context creates its reactor (epoll) with the first
// timer or socket and from then on polls it, non-blocking, every time round its queue; one
// workload's timers must not leave that cost behind for the next (a yield loop alone never
// polls). Our loop likewise polls only once something is watched, and asyncio's always do.
template <class Workload>
void run_workload(Workload workload) {
  asio::io_context ctx(1);  // concurrency hint 1: single-threaded, lets Asio skip locking
  asio::co_spawn(ctx, workload(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  ctx.run();
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse_options(argc, argv);
  const int div = opts.divisor;
  // Fixed order; timers last as it grows the heap most.
  if (opts.wants("spawn")) run_workload([=] { return bench_spawn(bench::kSpawnRounds / div); });
  if (opts.wants("pingpong"))
    run_workload([=] { return bench_pingpong(bench::kPingPongRoundTrips / div); });
  if (opts.wants("yield")) run_workload([=] { return bench_yield(bench::kYields / div); });
  if (opts.wants("timers")) {
    run_workload([=] { return bench_timers(bench::kTimerTasks / div, false); });
    run_workload([=] { return bench_timers(bench::kTimerTasks / div, true); });  // bench_common.hpp
  }
}
