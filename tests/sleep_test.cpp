// SPDX-License-Identifier: MIT
// sleep(): yielding, ordering, durations, sleep(d, result), cancellation.
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include "test_support.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using asyncio::CancelledError;
using asyncio::Coro;
using asyncio::EventLoop;

using testing_support::run_v;
using testing_support::virtual_loop;

/// A poller that forwards to the real one and records the loop time at each poll.
class RecordingPoller final : public asyncio::Poller {
 public:
  void add(int fd, std::uint32_t interest) override { inner_->add(fd, interest); }
  void modify(int fd, std::uint32_t interest) override { inner_->modify(fd, interest); }
  void remove(int fd) noexcept override { inner_->remove(fd); }
  std::size_t poll(std::span<asyncio::PollEvent> out, std::chrono::nanoseconds timeout) override {
    if (loop) times.push_back(loop->time());
    return inner_->poll(out, timeout);
  }
  void wakeup() noexcept override { inner_->wakeup(); }
  const char* name() const noexcept override { return "recording"; }
  std::vector<double> times;
  EventLoop* loop = nullptr;

 private:
  std::unique_ptr<asyncio::Poller> inner_ = asyncio::make_poller();
};

Coro<void> steps(std::string name, int n, std::vector<std::string>* out) {
  for (int i = 1; i <= n; ++i) {
    out->push_back(name + std::to_string(i));
    co_await asyncio::sleep(0);
  }
}

Coro<void> two_stepping_tasks(std::vector<std::string>* out) {
  auto a = asyncio::create_task(steps("A", 2, out));
  auto b = asyncio::create_task(steps("B", 2, out));
  co_await a;
  co_await b;
}

TEST(Sleep, SleepZeroYieldsSoTwoTasksInterleave) {
  std::vector<std::string> order;
  run_v(two_stepping_tasks(&order));
  EXPECT_EQ(order, (std::vector<std::string>{"A1", "B1", "A2", "B2"}));
}

Coro<double> sleep_zero_time() {
  double t0 = asyncio::get_running_loop().time();
  for (int i = 0; i < 100; ++i) co_await asyncio::sleep(0);
  co_return asyncio::get_running_loop().time() - t0;
}

TEST(Sleep, SleepZeroDoesNotAdvanceTheVirtualClock) { EXPECT_EQ(run_v(sleep_zero_time()), 0.0); }

Coro<void> sleep_then_record(double seconds, int id, std::vector<int>* order, std::vector<double>* times) {
  co_await asyncio::sleep(seconds);
  order->push_back(id);
  times->push_back(asyncio::get_running_loop().time());
}

Coro<void> three_sleepers(std::vector<int>* order, std::vector<double>* times) {
  auto a = asyncio::create_task(sleep_then_record(3, 3, order, times));
  auto b = asyncio::create_task(sleep_then_record(1, 1, order, times));
  auto c = asyncio::create_task(sleep_then_record(2, 2, order, times));
  co_await a;
  co_await b;
  co_await c;
}

TEST(Sleep, SleepersWakeInDeadlineOrder) {
  std::vector<int> order;
  std::vector<double> times;
  run_v(three_sleepers(&order, &times));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(times, (std::vector<double>{1.0, 2.0, 3.0}));
}

Coro<void> equal_sleepers(std::vector<int>* order) {
  std::vector<double> times;
  std::vector<asyncio::Task<void>> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back(asyncio::create_task(sleep_then_record(1, i, order, &times)));
  for (auto& t : tasks) co_await t;
}

TEST(Sleep, EqualSleepsWakeInTheOrderTheyStarted) {
  std::vector<int> order;
  run_v(equal_sleepers(&order));
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[i], i);
}

Coro<double> sleep_and_measure(double seconds) {
  auto& loop = asyncio::get_running_loop();
  double t0 = loop.time();
  co_await asyncio::sleep(seconds);
  co_return loop.time() - t0;
}

TEST(Sleep, AdvancesTheVirtualClockByTheDelay) { EXPECT_DOUBLE_EQ(run_v(sleep_and_measure(2.5)), 2.5); }

TEST(Sleep, NegativeDelayActsLikeZero) { EXPECT_EQ(run_v(sleep_and_measure(-1)), 0.0); }

Coro<double> sleep_chrono() {
  auto& loop = asyncio::get_running_loop();
  double t0 = loop.time();
  co_await asyncio::sleep(250ms);
  co_await asyncio::sleep(std::chrono::seconds(1));
  co_return loop.time() - t0;
}

TEST(Sleep, AcceptsChronoDurations) { EXPECT_NEAR(run_v(sleep_chrono()), 1.25, 1e-9); }

TEST(Sleep, WaitsAtLeastTheDelayInRealTime) {
  double elapsed = asyncio::run(sleep_and_measure(0.05));
  EXPECT_GE(elapsed, 0.05);
  EXPECT_LT(elapsed, 5.0);
}

TEST(Sleep, OneHourOnTheVirtualClockTakesLittleRealTime) {
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_NEAR(run_v(sleep_and_measure(3600)), 3600.0, 1e-6);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
}

Coro<int> sleep_with_int() { co_return co_await asyncio::sleep(1, 42); }

TEST(Sleep, SleepWithResultReturnsIt) { EXPECT_EQ(run_v(sleep_with_int()), 42); }

Coro<std::string> sleep_with_string() { co_return co_await asyncio::sleep(0, std::string("later")); }

TEST(Sleep, SleepZeroWithResultReturnsIt) { EXPECT_EQ(run_v(sleep_with_string()), "later"); }

Coro<int> sleep_with_unique() {
  std::unique_ptr<int> p = co_await asyncio::sleep(1, std::make_unique<int>(5));
  co_return *p;
}

TEST(Sleep, SleepWithAMoveOnlyResult) { EXPECT_EQ(run_v(sleep_with_unique()), 5); }

Coro<int> many_sleepers() {
  std::vector<asyncio::Task<int>> tasks;
  for (int i = 0; i < 10000; ++i)
    tasks.push_back(asyncio::create_task([](int i) -> Coro<int> {
      co_await asyncio::sleep(1 + i % 100);
      co_return 1;
    }(i)));
  int sum = 0;
  for (auto& t : tasks) sum += co_await t;
  co_return sum;
}

TEST(Sleep, TenThousandSleepersAllWake) { EXPECT_EQ(run_v(many_sleepers()), 10000); }

// ---- cancellation ----------------------------------------------------------------------------

struct Seen {
  bool cancelled = false;
  double at = -1;
};

Coro<void> sleep_long(Seen* seen) {
  try {
    co_await asyncio::sleep(3600);
  } catch (const CancelledError&) {
    seen->cancelled = true;
    seen->at = asyncio::get_running_loop().time();
    throw;
  }
}

Coro<void> cancel_at(double when, Seen* seen) {
  auto t = asyncio::create_task(sleep_long(seen));
  co_await asyncio::sleep(when);
  t.cancel();
  try {
    co_await t;
  } catch (const CancelledError&) {
  }
}

TEST(SleepCancel, RaisesCancelledErrorAtTheTimeOfTheCancel) {
  Seen seen;
  run_v(cancel_at(5, &seen));
  EXPECT_TRUE(seen.cancelled);
  EXPECT_DOUBLE_EQ(seen.at, 5.0);
}

TEST(SleepCancel, CancelRemovesTheTimer) {
  // If the cancelled sleep's timer stayed behind, the virtual clock would stop at its deadline
  // (3600) on the way to the later one, and fire it into a destroyed frame.
  auto poller = std::make_shared<RecordingPoller>();
  auto loop = asyncio::new_event_loop({.virtual_time = true, .poller = poller});
  poller->loop = loop.get();
  Seen seen;
  loop->run_until_complete(cancel_at(1, &seen));
  EXPECT_TRUE(seen.cancelled);
  EXPECT_DOUBLE_EQ(loop->time(), 1.0);
  loop->call_later(7200.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_DOUBLE_EQ(loop->time(), 7201.0);
  for (double t : poller->times) EXPECT_NE(t, 3600.0);
}

Coro<void> cancel_at_sync(Seen* seen, bool* timer_fired_late) {
  // Keep the cancelled task alive (it swallows the error and waits on a future) and watch that
  // nothing wakes it at the old deadline.
  auto gate = asyncio::get_running_loop().create_future<int>();
  auto t = asyncio::create_task([](Seen* seen, asyncio::Future<int> gate) -> Coro<int> {
    try {
      co_await asyncio::sleep(10);
    } catch (const CancelledError&) {
      seen->cancelled = true;
    }
    co_return co_await gate;  // a stray timer would resume this await early
  }(seen, gate));
  co_await asyncio::sleep(1);
  t.cancel();
  co_await asyncio::sleep(20);  // past the old deadline
  *timer_fired_late = t.done();
  gate.set_result(3);
  int v = co_await t;
  EXPECT_EQ(v, 3);
}

TEST(SleepCancel, CancelledSleepNeverWakesTheTaskLater) {
  Seen seen;
  bool fired = true;
  run_v(cancel_at_sync(&seen, &fired));
  EXPECT_TRUE(seen.cancelled);
  EXPECT_FALSE(fired);
}

Coro<int> sleep_result_cancelled() {
  auto t = asyncio::create_task([]() -> Coro<int> { co_return co_await asyncio::sleep(10, 1); }());
  co_await asyncio::sleep(1);
  t.cancel();
  try {
    co_await t;
  } catch (const CancelledError&) {
    co_return 1;
  }
  co_return 0;
}

TEST(SleepCancel, SleepWithResultIsCancellableToo) { EXPECT_EQ(run_v(sleep_result_cancelled()), 1); }

Coro<void> sleep_zero_then_record(bool* after) {
  co_await asyncio::sleep(0);
  *after = true;
}

TEST(SleepCancel, CancelDuringSleepZeroRaisesAtThatAwait) {
  auto loop = virtual_loop();
  bool after = false;
  auto t = loop->create_task(sleep_zero_then_record(&after));
  loop->stop();
  loop->run_forever();  // first step: parked in sleep(0), already rescheduled
  t.cancel();
  EXPECT_THROW(loop->run_until_complete(t), CancelledError);
  EXPECT_FALSE(after);
}

// ---- misuse ----------------------------------------------------------------------------------

Coro<void> bare_sleep() { co_await asyncio::sleep(1); }

TEST(Sleep, SleepOutsideATaskThrowsRuntimeError) {
  auto h = bare_sleep().release();
  h.resume();  // no task is running: the await itself fails
  ASSERT_TRUE(h.done());
  EXPECT_THROW(h.promise().take(), asyncio::RuntimeError);
  h.destroy();
}

}  // namespace
