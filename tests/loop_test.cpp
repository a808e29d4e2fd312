// SPDX-License-Identifier: MIT
// The event loop: scheduling callbacks, timers, running and stopping, closing, the thread's loop,
// watching descriptors, the exception handler, call_soon_threadsafe, debug mode, virtual time.
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include "log_capture.hpp"
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using testing_support::LogCapture;

namespace {

using namespace std::chrono_literals;
using asyncio::EventLoop;

// ---- helpers ---------------------------------------------------------------------------------


/// A poller that forwards to the real one and records each poll (count and loop time).
class RecordingPoller final : public asyncio::Poller {
 public:
  void add(int fd, std::uint32_t interest) override { inner_->add(fd, interest); }
  void modify(int fd, std::uint32_t interest) override { inner_->modify(fd, interest); }
  void remove(int fd) noexcept override { inner_->remove(fd); }
  std::size_t poll(std::span<asyncio::PollEvent> out, std::chrono::nanoseconds timeout) override {
    ++polls;
    if (loop) times.push_back(loop->time());
    return inner_->poll(out, timeout);
  }
  void wakeup() noexcept override { inner_->wakeup(); }
  const char* name() const noexcept override { return "recording"; }

  int polls = 0;
  std::vector<double> times;
  EventLoop* loop = nullptr;

 private:
  std::unique_ptr<asyncio::Poller> inner_ = asyncio::make_poller();
};

std::shared_ptr<EventLoop> virtual_loop() { return asyncio::new_event_loop({.virtual_time = true}); }

/// A pipe closed on scope exit.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  void write_byte() const { ASSERT_EQ(::write(w, "x", 1), 1); }
  void close_write() {
    ::close(w);
    w = -1;
  }
};

/// Stops the loop after `seconds` so that a broken test fails instead of hanging.
void watchdog(EventLoop& loop, double seconds = 10) {
  loop.call_later(seconds, [&loop] {
    ADD_FAILURE() << "watchdog fired";
    loop.stop();
  });
}

asyncio::Coro<int> answer() {
  co_await asyncio::sleep(0);
  co_return 42;
}

asyncio::Coro<void> fail_after_yield() {
  co_await asyncio::sleep(0);
  throw std::runtime_error("boom");
}

asyncio::Coro<void> wait_forever(asyncio::Future<> f) { co_await f; }

asyncio::Coro<void> sleep_for(double seconds) { co_await asyncio::sleep(seconds); }

asyncio::Coro<void> block_for(std::chrono::milliseconds d) {
  std::this_thread::sleep_for(d);  // holds the loop: what debug mode reports
  co_return;
}

// ---- call_soon -------------------------------------------------------------------------------

TEST(CallSoon, RunsCallbacksInFifoOrder) {
  auto loop = asyncio::new_event_loop();
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) loop->call_soon([&order, i] { order.push_back(i); });
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(CallSoon, CallbackScheduledByCallbackRunsAfterAlreadyQueuedOnes) {
  auto loop = asyncio::new_event_loop();
  std::vector<std::string> order;
  loop->call_soon([&] {
    order.push_back("a");
    loop->call_soon([&] {
      order.push_back("c");
      loop->stop();
    });
  });
  loop->call_soon([&] { order.push_back("b"); });
  loop->run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(CallSoon, CancelledHandleDoesNotRun) {
  auto loop = asyncio::new_event_loop();
  bool ran = false;
  asyncio::Handle h = loop->call_soon([&] { ran = true; });
  EXPECT_FALSE(h.cancelled());
  h.cancel();
  EXPECT_TRUE(h.cancelled());
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_FALSE(ran);
}

TEST(CallSoon, CancelIsIdempotentAndHarmlessAfterRunning) {
  auto loop = asyncio::new_event_loop();
  int runs = 0;
  asyncio::Handle h = loop->call_soon([&] { ++runs; });
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(runs, 1);
  h.cancel();
  h.cancel();
  EXPECT_TRUE(h.cancelled());
  asyncio::Handle empty;
  EXPECT_FALSE(empty);
  empty.cancel();  // no state: a no-op
  EXPECT_FALSE(empty.cancelled());
}

TEST(CallSoon, CancelReleasesTheCallbackAtOnce) {
  auto loop = asyncio::new_event_loop();
  auto token = std::make_shared<int>(0);
  asyncio::Handle h = loop->call_soon([token] {});
  EXPECT_EQ(token.use_count(), 2);
  h.cancel();
  EXPECT_EQ(token.use_count(), 1);
}

TEST(CallSoon, CallbackMayCancelItsOwnHandleWhileRunning) {
  auto loop = asyncio::new_event_loop();
  auto h = std::make_shared<asyncio::Handle>();
  std::vector<int> seen;
  int value = 7;
  *h = loop->call_soon([h, &seen, value] {
    h->cancel();
    seen.push_back(value);  // the closure must still be alive here
  });
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(seen, std::vector<int>{7});
  h.reset();
}

// ---- timers ----------------------------------------------------------------------------------

TEST(Timers, FireInDeadlineOrder) {
  auto loop = virtual_loop();
  std::vector<int> order;
  loop->call_later(3.0, [&] { order.push_back(3); });
  loop->call_later(1.0, [&] { order.push_back(1); });
  loop->call_later(2.0, [&] { order.push_back(2); });
  loop->call_later(0.5, [&] { order.push_back(0); });
  loop->call_later(4.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Timers, EqualDeadlinesFireInSchedulingOrder) {
  auto loop = virtual_loop();
  std::vector<int> order;
  double when = loop->time() + 1.0;
  for (int i = 0; i < 50; ++i) loop->call_at(when, [&order, i] { order.push_back(i); });
  loop->call_at(when, [&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST(Timers, CallLaterAcceptsChronoDurations) {
  auto loop = virtual_loop();
  std::vector<int> order;
  loop->call_later(20ms, [&] { order.push_back(2); });
  loop->call_later(std::chrono::microseconds(10'000), [&] { order.push_back(1); });
  loop->call_later(1s, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_DOUBLE_EQ(loop->time(), 1.0);
}

TEST(Timers, TimerFiresNoEarlierThanItsDelayInRealTime) {
  auto loop = asyncio::new_event_loop();
  double start = loop->time();
  double fired = 0;
  loop->call_later(0.05, [&] {
    fired = loop->time();
    loop->stop();
  });
  watchdog(*loop);
  loop->run_forever();
  EXPECT_GE(fired - start, 0.05);
  EXPECT_LT(fired - start, 5.0);
}

TEST(Timers, CallLaterHandleCancelPreventsCallback) {
  auto loop = virtual_loop();
  bool ran = false;
  asyncio::TimerHandle h = loop->call_later(1.0, [&] { ran = true; });
  h.cancel();
  EXPECT_TRUE(h.cancelled());
  loop->call_later(2.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_FALSE(ran);
}

TEST(Timers, CallAtHandleCancelPreventsCallback) {
  auto loop = virtual_loop();
  bool ran = false;
  asyncio::TimerHandle h = loop->call_at(loop->time() + 1.0, [&] { ran = true; });
  h.cancel();
  loop->call_at(loop->time() + 2.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_FALSE(ran);
}

TEST(Timers, CancelFromAnEarlierCallbackPreventsALaterTimer) {
  auto loop = virtual_loop();
  bool ran = false;
  asyncio::TimerHandle late = loop->call_later(2.0, [&] { ran = true; });
  loop->call_later(1.0, [&] { late.cancel(); });
  loop->call_later(3.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_FALSE(ran);
}

TEST(Timers, CancelReleasesTheCallbackAtOnce) {
  auto loop = virtual_loop();
  auto token = std::make_shared<int>(0);
  asyncio::TimerHandle h = loop->call_later(10.0, [token] {});
  EXPECT_EQ(token.use_count(), 2);
  h.cancel();
  EXPECT_EQ(token.use_count(), 1);
}

TEST(Timers, WhenReportsTheDeadline) {
  auto loop = virtual_loop();
  asyncio::TimerHandle a = loop->call_at(12.5, [] {});
  asyncio::TimerHandle b = loop->call_later(3.0, [] {});
  EXPECT_DOUBLE_EQ(a.when(), 12.5);
  EXPECT_DOUBLE_EQ(b.when(), loop->time() + 3.0);
}

TEST(Timers, CancelledTimersLeaveTheHeapAtOnce) {
  // If cancelled timers stayed in the heap (as in Python until they are half of it), the
  // virtual clock would stop at each of their deadlines on the way to the live one.
  auto poller = std::make_shared<RecordingPoller>();
  auto loop = asyncio::new_event_loop({.virtual_time = true, .poller = poller});
  poller->loop = loop.get();
  for (int round = 0; round < 10; ++round) {
    std::vector<asyncio::TimerHandle> handles;
    for (int i = 1; i <= 1000; ++i) handles.push_back(loop->call_later(double(i), [] { ADD_FAILURE(); }));
    for (auto& h : handles) h.cancel();
  }
  loop->call_later(5000.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_DOUBLE_EQ(loop->time(), 5000.0);
  EXPECT_LE(poller->polls, 2);
  for (double t : poller->times) EXPECT_TRUE(t == 0.0 || t == 5000.0) << t;
}

TEST(Timers, CancelledTimerBeforeLiveOneDoesNotWakeTheLoop) {
  auto poller = std::make_shared<RecordingPoller>();
  auto loop = asyncio::new_event_loop({.virtual_time = true, .poller = poller});
  poller->loop = loop.get();
  loop->call_later(1.0, [] {}).cancel();
  loop->call_later(2.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(poller->polls, 1);
  EXPECT_DOUBLE_EQ(loop->time(), 2.0);
}

// ---- the clock -------------------------------------------------------------------------------

TEST(Clock, TimeIsMonotonic) {
  auto loop = asyncio::new_event_loop();
  double last = loop->time();
  for (int i = 0; i < 10000; ++i) {
    double now = loop->time();
    ASSERT_GE(now, last);
    last = now;
  }
}

TEST(Clock, TimeFollowsTheRealClock) {
  auto loop = asyncio::new_event_loop();
  double t0 = loop->time();
  std::this_thread::sleep_for(20ms);
  double elapsed = loop->time() - t0;
  EXPECT_GE(elapsed, 0.019);
  EXPECT_LT(elapsed, 10.0);
  EXPECT_FALSE(loop->uses_virtual_time());
}

TEST(Clock, VirtualTimeStartsAtZeroAndJumpsToTheNextTimer) {
  auto loop = virtual_loop();
  EXPECT_TRUE(loop->uses_virtual_time());
  EXPECT_EQ(loop->time(), 0.0);
  std::vector<double> seen;
  loop->call_later(100.0, [&] { seen.push_back(loop->time()); });
  loop->call_later(250.0, [&] {
    seen.push_back(loop->time());
    loop->stop();
  });
  loop->run_forever();
  EXPECT_EQ(seen, (std::vector<double>{100.0, 250.0}));
}

TEST(Clock, VirtualOneHourSleepTakesLittleRealTime) {
  auto loop = virtual_loop();
  auto real0 = std::chrono::steady_clock::now();
  double t0 = loop->time();
  loop->run_until_complete(sleep_for(3600));
  double real = std::chrono::duration<double>(std::chrono::steady_clock::now() - real0).count();
  EXPECT_NEAR(loop->time() - t0, 3600.0, 1e-3);
  EXPECT_LT(real, 0.5);
}

TEST(Clock, VirtualClockWaitsInRealTimeWhileDescriptorsAreWatched) {
  // A watched descriptor may become ready at any moment, so the clock cannot jump: the loop
  // really waits, and the virtual clock advances by the real time spent waiting.
  auto loop = virtual_loop();
  Pipe p;
  loop->add_reader(p.r, [] {});
  auto real0 = std::chrono::steady_clock::now();
  loop->call_later(0.05, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_GE(std::chrono::steady_clock::now() - real0, 45ms);
  EXPECT_GE(loop->time(), 0.05);
  EXPECT_LT(loop->time(), 10.0);
  loop->remove_reader(p.r);
}

// ---- running ---------------------------------------------------------------------------------

TEST(Run, RunUntilCompleteReturnsTheFutureResult) {
  auto loop = virtual_loop();
  auto fut = loop->create_future<int>();
  loop->call_later(1.0, [fut]() mutable { fut.set_result(7); });
  EXPECT_EQ(loop->run_until_complete(fut), 7);
  EXPECT_DOUBLE_EQ(loop->time(), 1.0);
}

TEST(Run, RunUntilCompleteOfVoidFuture) {
  auto loop = virtual_loop();
  auto fut = loop->create_future();
  loop->call_soon([fut]() mutable { fut.set_result(); });
  loop->run_until_complete(fut);
  EXPECT_TRUE(fut.done());
}

TEST(Run, RunUntilCompleteReturnsTheCoroResult) {
  auto loop = virtual_loop();
  EXPECT_EQ(loop->run_until_complete(answer()), 42);
}

TEST(Run, RunUntilCompleteRethrowsTheFutureException) {
  auto loop = virtual_loop();
  auto fut = loop->create_future<int>();
  loop->call_soon([fut]() mutable { fut.set_exception(std::runtime_error("bad")); });
  EXPECT_THROW(loop->run_until_complete(fut), std::runtime_error);
}

TEST(Run, RunUntilCompleteRethrowsTheCoroException) {
  auto loop = virtual_loop();
  EXPECT_THROW(loop->run_until_complete(fail_after_yield()), std::runtime_error);
}

TEST(Run, RunUntilCompleteOfCancelledFutureThrowsCancelledError) {
  auto loop = virtual_loop();
  auto fut = loop->create_future<int>();
  loop->call_soon([fut]() mutable { fut.cancel("stop it"); });
  try {
    loop->run_until_complete(fut);
    ADD_FAILURE() << "no exception";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_EQ(e.message(), "stop it");
  }
}

TEST(Run, RunUntilCompleteOfDoneFutureReturnsAtOnce) {
  auto loop = virtual_loop();
  auto fut = loop->create_future<int>();
  fut.set_result(3);
  EXPECT_EQ(loop->run_until_complete(fut), 3);
  EXPECT_FALSE(loop->is_running());
}

TEST(Run, RunUntilCompleteThrowsIfTheLoopStopsFirst) {
  auto loop = virtual_loop();
  auto fut = loop->create_future<int>();
  loop->call_soon([&] { loop->stop(); });
  EXPECT_THROW(loop->run_until_complete(fut), asyncio::RuntimeError);
  // The future is still usable afterwards.
  loop->call_soon([fut]() mutable { fut.set_result(1); });
  EXPECT_EQ(loop->run_until_complete(fut), 1);
}

TEST(Run, RunUntilCompleteOnRunningLoopThrowsAndDoesNotStartTheCoro) {
  auto loop = virtual_loop();
  LogCapture log;  // the rejected coroutine is reported as never awaited
  bool threw = false;
  auto started = std::make_shared<bool>(false);
  auto body = [](std::shared_ptr<bool> flag) -> asyncio::Coro<void> {
    *flag = true;
    co_return;
  };
  loop->call_soon([&] {
    try {
      loop->run_until_complete(body(started));
    } catch (const asyncio::RuntimeError&) {
      threw = true;
    }
  });
  loop->call_later(1.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_TRUE(threw);
  EXPECT_FALSE(*started);
  EXPECT_EQ(loop->task_count(), 0u);
}

TEST(Run, RunForeverReturnsAfterStop) {
  auto loop = virtual_loop();
  int ticks = 0;
  std::function<void()> tick = [&] {
    if (++ticks == 5)
      loop->stop();
    else
      loop->call_soon(tick);
  };
  loop->call_soon(tick);
  loop->run_forever();
  EXPECT_EQ(ticks, 5);
  EXPECT_FALSE(loop->is_running());
}

TEST(Run, StopFinishesTheCurrentIterationOnly) {
  auto loop = virtual_loop();
  std::vector<std::string> order;
  loop->call_soon([&] {
    order.push_back("a");
    loop->stop();
    loop->call_soon([&] { order.push_back("c"); });
  });
  loop->call_soon([&] { order.push_back("b"); });  // already queued: same iteration
  loop->run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
  // The rest runs when the loop runs again.
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(Run, StopBeforeRunForeverRunsOneIteration) {
  // Python: "If stop() is called before run_forever() is called, the loop will poll the I/O
  // selector once with a timeout of zero, run all callbacks scheduled ... and then exit."
  auto loop = virtual_loop();
  bool first = false, second = false;
  loop->call_soon([&] {
    first = true;
    loop->call_soon([&] { second = true; });
  });
  loop->stop();
  loop->run_forever();
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
}

TEST(Run, RunForeverCanRunAgainAfterStop) {
  auto loop = virtual_loop();
  int runs = 0;
  for (int i = 0; i < 3; ++i) {
    loop->call_soon([&] {
      ++runs;
      loop->stop();
    });
    loop->run_forever();
  }
  EXPECT_EQ(runs, 3);
}

TEST(Run, RunForeverOnRunningLoopThrows) {
  auto loop = virtual_loop();
  bool threw = false;
  loop->call_soon([&] {
    try {
      loop->run_forever();
    } catch (const asyncio::RuntimeError&) {
      threw = true;
    }
    loop->stop();
  });
  loop->run_forever();
  EXPECT_TRUE(threw);
}

TEST(Run, RunningAnotherLoopInsideALoopThrows) {
  auto outer = virtual_loop();
  auto inner = virtual_loop();
  bool threw = false;
  outer->call_soon([&] {
    try {
      inner->run_forever();
    } catch (const asyncio::RuntimeError&) {
      threw = true;
    }
    outer->stop();
  });
  outer->run_forever();
  EXPECT_TRUE(threw);
  EXPECT_FALSE(inner->is_running());
}

TEST(Run, IsRunningOnlyInsideRunForever) {
  auto loop = virtual_loop();
  EXPECT_FALSE(loop->is_running());
  bool inside = false;
  loop->call_soon([&] {
    inside = loop->is_running();
    loop->stop();
  });
  loop->run_forever();
  EXPECT_TRUE(inside);
  EXPECT_FALSE(loop->is_running());
}

TEST(Run, ExceptionEscapingRunForeverResetsTheLoop) {
  // A throwing exception handler is contained, so force an escape through the poller instead.
  class ThrowingPoller final : public asyncio::Poller {
   public:
    void add(int, std::uint32_t) override {}
    void modify(int, std::uint32_t) override {}
    void remove(int) noexcept override {}
    std::size_t poll(std::span<asyncio::PollEvent>, std::chrono::nanoseconds) override {
      if (fail) throw std::runtime_error("poll failed");
      return 0;
    }
    void wakeup() noexcept override {}
    const char* name() const noexcept override { return "throwing"; }
    bool fail = true;
  };
  auto poller = std::make_shared<ThrowingPoller>();
  auto loop = asyncio::new_event_loop({.poller = poller});
  loop->call_later(0.001, [] {});
  EXPECT_THROW(loop->run_forever(), std::runtime_error);
  EXPECT_FALSE(loop->is_running());
  EXPECT_THROW(asyncio::get_running_loop(), asyncio::RuntimeError);
  poller->fail = false;
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
}

// ---- closing ---------------------------------------------------------------------------------

TEST(Close, MarksTheLoopClosedAndIsIdempotent) {
  auto loop = asyncio::new_event_loop();
  EXPECT_FALSE(loop->is_closed());
  loop->close();
  EXPECT_TRUE(loop->is_closed());
  loop->close();
  EXPECT_TRUE(loop->is_closed());
}

TEST(Close, ClosedLoopRejectsCallSoon) {
  auto loop = asyncio::new_event_loop();
  loop->close();
  EXPECT_THROW(loop->call_soon([] {}), asyncio::RuntimeError);
}

TEST(Close, ClosedLoopRejectsTimersThreadsafeCallsAndRunning) {
  auto loop = asyncio::new_event_loop();
  loop->close();
  EXPECT_THROW(loop->call_later(1.0, [] {}), asyncio::RuntimeError);
  EXPECT_THROW(loop->call_at(1.0, [] {}), asyncio::RuntimeError);
  EXPECT_THROW(loop->call_soon_threadsafe([] {}), asyncio::RuntimeError);
  // create_future() still works on a closed loop, as in CPython (Future.ClosedLoopStillCreatesUsableFutures).
  EXPECT_THROW(loop->run_forever(), asyncio::RuntimeError);
  LogCapture log;  // the rejected coroutine is reported as never awaited
  EXPECT_THROW(loop->run_until_complete(answer()), asyncio::RuntimeError);
}

TEST(Close, CloseOfRunningLoopThrows) {
  auto loop = virtual_loop();
  bool threw = false;
  loop->call_soon([&] {
    try {
      loop->close();
    } catch (const asyncio::RuntimeError&) {
      threw = true;
    }
    loop->stop();
  });
  loop->run_forever();
  EXPECT_TRUE(threw);
  EXPECT_FALSE(loop->is_closed());
}

TEST(Close, DropsPendingCallbacksAndTimersWithoutRunningThem) {
  auto loop = virtual_loop();
  auto token = std::make_shared<int>(0);
  bool ran = false;
  loop->call_soon([token, &ran] { ran = true; });
  loop->call_later(5.0, [token, &ran] { ran = true; });
  asyncio::TimerHandle kept = loop->call_later(6.0, [token, &ran] { ran = true; });
  EXPECT_EQ(token.use_count(), 4);
  loop->close();
  EXPECT_FALSE(ran);
  EXPECT_EQ(token.use_count(), 2);  // the handle we still hold keeps its callback
  kept.cancel();                    // harmless after close
  EXPECT_EQ(token.use_count(), 1);
}

TEST(Close, DestroysPendingTasksAndReportsThemToTheHandler) {
  auto loop = virtual_loop();
  std::vector<asyncio::ExceptionContext> reports;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& c) { reports.push_back(c); });
  auto never = loop->create_future();
  auto task = loop->create_task(wait_forever(never), "stuck");
  loop->call_later(1.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_FALSE(task.done());
  EXPECT_EQ(loop->task_count(), 1u);
  loop->close();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].message, "Task was destroyed but it is pending!");
  EXPECT_EQ(reports[0].task, "stuck");
  EXPECT_NE(reports[0].location.find("loop_test.cpp"), std::string::npos) << reports[0].location;
  EXPECT_EQ(loop->task_count(), 0u);
}

TEST(Close, DestroysTasksThatNeverStarted) {
  auto loop = virtual_loop();
  std::vector<std::string> reports;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& c) { reports.push_back(c.task); });
  auto t = loop->create_task(answer(), "never-started");
  loop->close();
  EXPECT_EQ(reports, std::vector<std::string>{"never-started"});
  EXPECT_FALSE(t.done());
}

asyncio::Coro<void> await_task(asyncio::Task<void> t) { co_await t; }

TEST(Close, DestroysTasksThatAwaitEachOther) {
  auto loop = virtual_loop();
  std::vector<std::string> reports;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& c) { reports.push_back(c.task); });
  auto never = loop->create_future();
  auto inner = loop->create_task(wait_forever(never), "inner");
  auto outer = loop->create_task(await_task(inner), "outer");
  loop->call_later(1.0, [&] { loop->stop(); });
  loop->run_forever();
  loop->close();
  std::sort(reports.begin(), reports.end());
  EXPECT_EQ(reports, (std::vector<std::string>{"inner", "outer"}));
  EXPECT_EQ(loop->task_count(), 0u);
}

TEST(Close, DestructorClosesTheLoop) {
  std::vector<std::string> reports;
  {
    auto loop = virtual_loop();
    loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& c) { reports.push_back(c.message); });
    auto never = loop->create_future();
    loop->create_task(wait_forever(never));
    loop->call_soon([&] { loop->stop(); });
    loop->run_forever();
  }
  EXPECT_EQ(reports, std::vector<std::string>{"Task was destroyed but it is pending!"});
}

// ---- the thread's loop -----------------------------------------------------------------------

TEST(ThreadLoop, GetEventLoopCreatesALoopAndReusesIt) {
  asyncio::set_event_loop(nullptr);
  EventLoop& a = asyncio::get_event_loop();
  EventLoop& b = asyncio::get_event_loop();
  EXPECT_EQ(&a, &b);
  EXPECT_FALSE(a.is_closed());
  asyncio::set_event_loop(nullptr);
}

TEST(ThreadLoop, GetEventLoopReturnsTheSetLoop) {
  auto loop = asyncio::new_event_loop();
  asyncio::set_event_loop(loop);
  EXPECT_EQ(&asyncio::get_event_loop(), loop.get());
  asyncio::set_event_loop(nullptr);
  EXPECT_NE(&asyncio::get_event_loop(), loop.get());
  asyncio::set_event_loop(nullptr);
}

TEST(ThreadLoop, GetEventLoopReturnsTheRunningLoop) {
  auto set = asyncio::new_event_loop();
  auto running = virtual_loop();
  asyncio::set_event_loop(set);
  EventLoop* seen = nullptr;
  running->call_soon([&] {
    seen = &asyncio::get_event_loop();
    running->stop();
  });
  running->run_forever();
  EXPECT_EQ(seen, running.get());
  asyncio::set_event_loop(nullptr);
}

TEST(ThreadLoop, NewEventLoopIsADistinctLoopNotSetForTheThread) {
  asyncio::set_event_loop(nullptr);
  auto a = asyncio::new_event_loop();
  auto b = asyncio::new_event_loop();
  EXPECT_NE(a.get(), b.get());
  EXPECT_NE(&asyncio::get_event_loop(), a.get());
  EXPECT_NE(&asyncio::get_event_loop(), b.get());
  asyncio::set_event_loop(nullptr);
}

TEST(ThreadLoop, EachThreadHasItsOwnLoop) {
  asyncio::set_event_loop(nullptr);
  EventLoop* mine = &asyncio::get_event_loop();
  EventLoop* theirs = nullptr;
  std::thread([&] {
    theirs = &asyncio::get_event_loop();
    asyncio::set_event_loop(nullptr);
  }).join();
  EXPECT_NE(mine, theirs);
  asyncio::set_event_loop(nullptr);
}

TEST(ThreadLoop, GetRunningLoopThrowsOutsideALoop) {
  EXPECT_THROW(asyncio::get_running_loop(), asyncio::RuntimeError);
}

TEST(ThreadLoop, GetRunningLoopInsideACallback) {
  auto loop = virtual_loop();
  EventLoop* seen = nullptr;
  loop->call_soon([&] {
    seen = &asyncio::get_running_loop();
    loop->stop();
  });
  loop->run_forever();
  EXPECT_EQ(seen, loop.get());
  EXPECT_THROW(asyncio::get_running_loop(), asyncio::RuntimeError);
}

// ---- descriptors -----------------------------------------------------------------------------

TEST(Io, AddReaderCallsBackWhenReadable) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  int calls = 0;
  loop->add_reader(p.r, [&] {
    char c;
    ASSERT_EQ(::read(p.r, &c, 1), 1);
    EXPECT_EQ(c, 'x');
    ++calls;
    loop->stop();
  });
  loop->call_later(0.01, [&] { p.write_byte(); });
  watchdog(*loop);
  loop->run_forever();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(loop->remove_reader(p.r));
}

TEST(Io, ReaderIsNotCalledWhileNothingIsReadable) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  int calls = 0;
  loop->add_reader(p.r, [&] { ++calls; });
  loop->call_later(0.05, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(calls, 0);
  loop->remove_reader(p.r);
}

TEST(Io, RemoveReaderStopsCallbacks) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  int calls = 0;
  loop->add_reader(p.r, [&] { ++calls; });
  EXPECT_TRUE(loop->remove_reader(p.r));
  p.write_byte();  // readable, but nobody listens
  loop->call_later(0.05, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(loop->remove_reader(p.r));
}

TEST(Io, RemoveReaderWithoutReaderReturnsFalse) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  EXPECT_FALSE(loop->remove_reader(p.r));
  EXPECT_FALSE(loop->remove_writer(p.w));
  EXPECT_FALSE(loop->remove_reader(-1));
  EXPECT_FALSE(loop->remove_reader(100000));
}

TEST(Io, ReaderCallbackMayRemoveItself) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  std::vector<int> seen;
  int id = 5;
  loop->add_reader(p.r, [&loop, &p, &seen, id] {
    loop->remove_reader(p.r);
    seen.push_back(id);  // the callback's captures must survive its own removal
    loop->call_soon([&loop] { loop->stop(); });
  });
  p.write_byte();
  watchdog(*loop);
  loop->run_forever();
  EXPECT_EQ(seen, std::vector<int>{5});
}

TEST(Io, AddReaderReplacesTheEarlierReader) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  int first = 0, second = 0;
  loop->add_reader(p.r, [&] { ++first; });
  loop->add_reader(p.r, [&] {
    ++second;
    char c;
    ASSERT_EQ(::read(p.r, &c, 1), 1);
    loop->stop();
  });
  p.write_byte();
  watchdog(*loop);
  loop->run_forever();
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
  loop->remove_reader(p.r);
}

TEST(Io, ReaderSeesHangUpAsReadable) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  bool eof = false;
  loop->add_reader(p.r, [&] {
    char c;
    eof = ::read(p.r, &c, 1) == 0;
    loop->remove_reader(p.r);
    loop->stop();
  });
  p.close_write();
  watchdog(*loop);
  loop->run_forever();
  EXPECT_TRUE(eof);
}

TEST(Io, AddWriterCallsBackWhenWritable) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  int calls = 0;
  loop->add_writer(p.w, [&] {
    ++calls;
    loop->remove_writer(p.w);
    loop->stop();
  });
  watchdog(*loop);
  loop->run_forever();
  EXPECT_EQ(calls, 1);
}

TEST(Io, RemoveWriterStopsCallbacks) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  int calls = 0;
  loop->add_writer(p.w, [&] { ++calls; });
  EXPECT_TRUE(loop->remove_writer(p.w));
  EXPECT_FALSE(loop->remove_writer(p.w));
  loop->call_later(0.05, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(calls, 0);
}

TEST(Io, ReaderAndWriterOnTheSameSocket) {
  auto loop = asyncio::new_event_loop();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::string received;
  loop->add_writer(sv[0], [&] {
    ASSERT_EQ(::write(sv[0], "ping", 4), 4);
    loop->remove_writer(sv[0]);  // keeps the reader on the same fd
  });
  loop->add_reader(sv[0], [&] {
    char buf[8];
    auto n = ::read(sv[0], buf, sizeof buf);
    ASSERT_GT(n, 0);
    received.append(buf, static_cast<std::size_t>(n));
    loop->remove_reader(sv[0]);
    loop->stop();
  });
  // The peer echoes what it receives.
  loop->add_reader(sv[1], [&] {
    char buf[8];
    auto n = ::read(sv[1], buf, sizeof buf);
    ASSERT_GT(n, 0);
    ASSERT_EQ(::write(sv[1], buf, static_cast<std::size_t>(n)), n);
    loop->remove_reader(sv[1]);
  });
  watchdog(*loop);
  loop->run_forever();
  EXPECT_EQ(received, "ping");
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(Io, AddReaderWithNegativeFdThrowsValueError) {
  auto loop = asyncio::new_event_loop();
  EXPECT_THROW(loop->add_reader(-1, [] {}), asyncio::ValueError);
  EXPECT_THROW(loop->add_writer(-1, [] {}), asyncio::ValueError);
}

TEST(Io, AddReaderOnAnInvalidFdThrowsAndLeavesNothingWatched) {
  auto loop = asyncio::new_event_loop();
  int fd;
  {
    Pipe p;
    fd = p.r;
  }  // closed now
  EXPECT_THROW(loop->add_reader(fd, [] {}), std::system_error);
  EXPECT_FALSE(loop->remove_reader(fd));
}

TEST(Io, CloseReleasesReaderCallbacks) {
  auto loop = asyncio::new_event_loop();
  Pipe p;
  auto token = std::make_shared<int>(0);
  loop->add_reader(p.r, [token] {});
  EXPECT_EQ(token.use_count(), 2);
  loop->close();
  EXPECT_EQ(token.use_count(), 1);
}

// Two descriptors ready in one poll: the first callback run tears the second watcher down (a
// transport closing another). The event already collected for the second must not reach it, nor
// whoever watches its fd number next within the same batch (a networking fix).
namespace {

/// A transport-like watcher (EventLoop::set_fd_listener) that, when called, runs `on_ready`.
class TestListener final : public asyncio::detail::FdListener {
 public:
  explicit TestListener(std::function<void()> on_ready) : on_ready_(std::move(on_ready)) {}
  void on_fd_ready(std::uint32_t) noexcept override {
    ++calls;
    on_ready_();
  }
  int calls = 0;

 private:
  std::function<void()> on_ready_;
};

}  // namespace

TEST(Io, ListenerRemovedByAnEarlierCallbackOfTheSameBatchIsNotCalled) {
  auto loop = asyncio::new_event_loop();
  Pipe a, b;
  std::unique_ptr<TestListener> la, lb;
  int first = 0;  // 1 or 2: whichever the poll reported first
  // Whichever runs first unregisters and destroys the other (under ASan, calling it would be a
  // use after free), then stops the loop.
  la = std::make_unique<TestListener>([&] {
    if (first == 0) first = 1;
    loop->set_fd_listener(b.r, nullptr, 0);
    lb.reset();
    loop->stop();
  });
  lb = std::make_unique<TestListener>([&] {
    if (first == 0) first = 2;
    loop->set_fd_listener(a.r, nullptr, 0);
    la.reset();
    loop->stop();
  });
  loop->set_fd_listener(a.r, la.get(), asyncio::poll_readable);
  loop->set_fd_listener(b.r, lb.get(), asyncio::poll_readable);
  a.write_byte();
  b.write_byte();  // both readable before the loop polls: one batch
  watchdog(*loop);
  loop->run_forever();
  ASSERT_NE(first, 0);
  TestListener* survivor = first == 1 ? la.get() : lb.get();
  ASSERT_NE(survivor, nullptr);
  EXPECT_EQ(survivor->calls, 1);
  EXPECT_EQ(la && lb, false);
  loop->set_fd_listener(first == 1 ? a.r : b.r, nullptr, 0);
}

TEST(Io, EventOfAClosedFdIsNotDispatchedToTheNextWatcherOfItsNumber) {
  auto loop = asyncio::new_event_loop();
  auto a = std::make_unique<Pipe>();
  auto b = std::make_unique<Pipe>();
  std::unique_ptr<Pipe> reused;  // the pipe opened in the callback: its read end takes the freed number
  int reused_fd = -1, stale_fd = -1;
  TestListener fresh([] {});  // watches the reused number; its pipe is never written to
  std::unique_ptr<TestListener> la, lb;
  // Whichever runs first drops the other: unregisters it, closes its read end, opens a new pipe
  // (which gets the lowest free number: the one just closed) and watches that.
  auto take_over = [&](std::unique_ptr<Pipe>& victim, std::unique_ptr<TestListener>& victim_listener) {
    if (reused) return;
    stale_fd = victim->r;
    loop->set_fd_listener(victim->r, nullptr, 0);
    victim_listener.reset();
    ::close(victim->r);
    victim->r = -1;
    reused = std::make_unique<Pipe>();
    reused_fd = reused->r;
    loop->set_fd_listener(reused->r, &fresh, asyncio::poll_readable);
  };
  char byte;
  la = std::make_unique<TestListener>([&] {
    EXPECT_EQ(::read(a->r, &byte, 1), 1);
    take_over(b, lb);
  });
  lb = std::make_unique<TestListener>([&] {
    EXPECT_EQ(::read(b->r, &byte, 1), 1);
    take_over(a, la);
  });
  loop->set_fd_listener(a->r, la.get(), asyncio::poll_readable);
  loop->set_fd_listener(b->r, lb.get(), asyncio::poll_readable);
  a->write_byte();
  b->write_byte();
  loop->call_later(0.05, [&] { loop->stop(); });
  watchdog(*loop);
  loop->run_forever();
  ASSERT_TRUE(reused);
  ASSERT_EQ(reused_fd, stale_fd) << "the new pipe did not reuse the closed number";
  EXPECT_EQ(fresh.calls, 0) << "the closed fd's event went to the new watcher of its number";
  loop->set_fd_listener(reused->r, nullptr, 0);
  if (la) loop->set_fd_listener(a->r, nullptr, 0);
  if (lb) loop->set_fd_listener(b->r, nullptr, 0);
}

TEST(Io, FailedListenerChangeLeavesTheFdUnwatched) {
  // A poller whose modify() fails, as epoll_ctl(EPOLL_CTL_MOD) may (ENOMEM).
  class FailingModify final : public asyncio::Poller {
   public:
    void add(int fd, std::uint32_t interest) override { inner_->add(fd, interest); }
    void modify(int, std::uint32_t) override { throw std::system_error(ENOMEM, std::generic_category(), "epoll_ctl"); }
    void remove(int fd) noexcept override { inner_->remove(fd); }
    std::size_t poll(std::span<asyncio::PollEvent> out, std::chrono::nanoseconds timeout) override {
      return inner_->poll(out, timeout);
    }
    void wakeup() noexcept override { inner_->wakeup(); }
    const char* name() const noexcept override { return "failing-modify"; }

   private:
    std::unique_ptr<asyncio::Poller> inner_ = asyncio::make_poller();
  };
  auto loop = asyncio::new_event_loop({.poller = std::make_shared<FailingModify>()});
  Pipe p;
  auto doomed = std::make_unique<TestListener>([] {});
  loop->set_fd_listener(p.r, doomed.get(), asyncio::poll_readable);
  EXPECT_THROW(loop->set_fd_listener(p.r, doomed.get(), asyncio::poll_readable | asyncio::poll_writable),
               std::system_error);
  // Its owner, told of the failure, takes itself for unwatched and goes away without unregistering
  // (as a transport does): the loop must not call it any more.
  doomed.reset();
  p.write_byte();
  int calls = 0;
  loop->call_later(0.05, [&] { loop->stop(); });
  loop->run_forever();
  // And the fd can be watched again.
  TestListener next([&] {
    ++calls;
    loop->stop();
  });
  loop->set_fd_listener(p.r, &next, asyncio::poll_readable);
  watchdog(*loop);
  loop->run_forever();
  EXPECT_EQ(calls, 1);
  loop->set_fd_listener(p.r, nullptr, 0);
}

// ---- the exception handler -------------------------------------------------------------------

TEST(ExceptionHandler, NoneIsSetByDefault) {
  auto loop = asyncio::new_event_loop();
  EXPECT_FALSE(loop->get_exception_handler());
}

TEST(ExceptionHandler, SetHandlerReceivesTheContext) {
  auto loop = asyncio::new_event_loop();
  std::vector<asyncio::ExceptionContext> got;
  EventLoop* which = nullptr;
  loop->set_exception_handler([&](EventLoop& l, const asyncio::ExceptionContext& c) {
    which = &l;
    got.push_back(c);
  });
  EXPECT_TRUE(loop->get_exception_handler());
  auto e = std::make_exception_ptr(std::runtime_error("oops"));
  loop->call_exception_handler({"something failed", e, "t1", "here.cpp:1"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(which, loop.get());
  EXPECT_EQ(got[0].message, "something failed");
  EXPECT_EQ(got[0].exception, e);
  EXPECT_EQ(got[0].task, "t1");
  EXPECT_EQ(got[0].location, "here.cpp:1");
}

TEST(ExceptionHandler, ClearingTheHandlerRestoresTheDefault) {
  auto loop = asyncio::new_event_loop();
  int custom = 0;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext&) { ++custom; });
  loop->set_exception_handler(nullptr);
  LogCapture log;
  loop->call_exception_handler({"to the log", nullptr, {}, {}});
  EXPECT_EQ(custom, 0);
  EXPECT_EQ(log.count({"to the log"}), 1u);
}

TEST(ExceptionHandler, DefaultHandlerLogsMessageTaskAndException) {
  auto loop = asyncio::new_event_loop();
  LogCapture log;
  loop->default_exception_handler(
      {"it broke", std::make_exception_ptr(std::runtime_error("details")), "worker", "file.cpp:9"});
  EXPECT_EQ(log.count({"it broke", "worker", "file.cpp:9", "details"}), 1u);
}

TEST(ExceptionHandler, CallWithoutHandlerUsesTheDefault) {
  auto loop = asyncio::new_event_loop();
  LogCapture log;
  loop->call_exception_handler({"default path", nullptr, {}, {}});
  EXPECT_EQ(log.count({"default path"}), 1u);
}

TEST(ExceptionHandler, ExceptionInCallbackGoesToTheHandlerAndTheLoopContinues) {
  auto loop = virtual_loop();
  std::vector<std::string> messages;
  std::string what;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& c) {
    messages.push_back(c.message);
    try {
      std::rethrow_exception(c.exception);
    } catch (const std::exception& e) {
      what = e.what();
    }
  });
  bool after = false;
  loop->call_soon([] { throw std::runtime_error("callback failed"); });
  loop->call_soon([&] { after = true; });
  loop->call_later(1.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(messages, std::vector<std::string>{"Exception in callback"});
  EXPECT_EQ(what, "callback failed");
  EXPECT_TRUE(after);
}

TEST(ExceptionHandler, ExceptionInTimerCallbackGoesToTheHandler) {
  auto loop = virtual_loop();
  int reports = 0;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext&) { ++reports; });
  loop->call_later(1.0, [] { throw 1; });  // not even a std::exception
  loop->call_later(2.0, [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(reports, 1);
}

TEST(ExceptionHandler, ThrowingHandlerIsLoggedAndContained) {
  auto loop = virtual_loop();
  LogCapture log;
  loop->set_exception_handler([](EventLoop&, const asyncio::ExceptionContext&) {
    throw std::runtime_error("handler broke");
  });
  bool after = false;
  loop->call_soon([] { throw std::runtime_error("first"); });
  loop->call_soon([&] {
    after = true;
    loop->stop();
  });
  loop->run_forever();
  EXPECT_TRUE(after);
  EXPECT_EQ(log.count({"exception handler", "handler broke"}), 1u);
}

// ---- call_soon_threadsafe --------------------------------------------------------------------

TEST(Threadsafe, EightThreadsTenThousandCallsEachRunExactlyOnce) {
  constexpr int kThreads = 8;
  constexpr int kCalls = 10000;
  auto loop = asyncio::new_event_loop();
  std::vector<std::uint8_t> runs(kThreads * kCalls, 0);  // touched on the loop thread only
  int total = 0;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (int i = 0; i < kCalls; ++i) {
        int id = t * kCalls + i;
        loop->call_soon_threadsafe([&, id] {
          ++runs[static_cast<std::size_t>(id)];
          if (++total == kThreads * kCalls) loop->stop();
        });
      }
    });
  }
  loop->call_soon([&] { go.store(true, std::memory_order_release); });
  watchdog(*loop, 60);
  loop->run_forever();
  for (auto& th : threads) th.join();
  EXPECT_EQ(total, kThreads * kCalls);
  std::size_t wrong = 0;
  for (auto r : runs) wrong += r != 1;
  EXPECT_EQ(wrong, 0u);
}

TEST(Threadsafe, WakesALoopBlockedWithNothingToDo) {
  auto loop = asyncio::new_event_loop();
  std::atomic<bool> started{false};
  bool ran = false;
  std::thread producer([&] {
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(50ms);  // the loop is now waiting in poll with no timer
    loop->call_soon_threadsafe([&] {
      ran = true;
      loop->stop();
    });
  });
  loop->call_soon([&] { started = true; });
  auto t0 = std::chrono::steady_clock::now();
  loop->run_forever();
  producer.join();
  EXPECT_TRUE(ran);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST(Threadsafe, CallsFromTheLoopThreadRunInOrder) {
  auto loop = virtual_loop();
  std::vector<int> order;
  for (int i = 0; i < 10; ++i) loop->call_soon_threadsafe([&order, i] { order.push_back(i); });
  loop->call_soon_threadsafe([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(Threadsafe, CallAfterCloseFromAnotherThreadThrows) {
  auto loop = asyncio::new_event_loop();
  loop->close();
  bool threw = false;
  std::thread([&] {
    try {
      loop->call_soon_threadsafe([] {});
    } catch (const asyncio::RuntimeError&) {
      threw = true;
    }
  }).join();
  EXPECT_TRUE(threw);
}

// ---- debug mode ------------------------------------------------------------------------------

TEST(Debug, SlowCallbackIsReported) {
  auto loop = asyncio::new_event_loop({.debug = true});
  loop->slow_callback_duration = 0.1;
  LogCapture log;
  loop->call_soon([] { std::this_thread::sleep_for(150ms); });
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(log.count({"callback", "took"}), 1u);
}

TEST(Debug, SlowTaskStepIsReportedWithTheTaskName) {
  auto loop = asyncio::new_event_loop({.debug = true});
  loop->slow_callback_duration = 0.1;
  LogCapture log;
  loop->run_until_complete(loop->create_task(block_for(150ms), "slowpoke"));
  auto lines = log.lines();
  EXPECT_EQ(log.count({"slowpoke", "took"}), 1u) << ::testing::PrintToString(lines);
}

TEST(Debug, FastCallbacksAreNotReported) {
  auto loop = asyncio::new_event_loop({.debug = true});
  loop->slow_callback_duration = 0.1;
  LogCapture log;
  for (int i = 0; i < 100; ++i) loop->call_soon([] {});
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(log.count({"took"}), 0u);
}

TEST(Debug, SlowCallbackIsNotReportedOutsideDebugMode) {
  auto loop = asyncio::new_event_loop();
  if (loop->get_debug()) GTEST_SKIP() << "ASYNCIO_DEBUG is set in the environment";
  loop->slow_callback_duration = 0.01;
  LogCapture log;
  loop->call_soon([] { std::this_thread::sleep_for(30ms); });
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(log.count({"took"}), 0u);
}

TEST(Debug, SetDebugTogglesDebugMode) {
  auto loop = asyncio::new_event_loop({.debug = true});
  EXPECT_TRUE(loop->get_debug());
  loop->set_debug(false);
  EXPECT_FALSE(loop->get_debug());
  loop->set_debug(true);
  EXPECT_TRUE(loop->get_debug());
}

// ---- the timer heap (detail) -----------------------------------------------------------------

TEST(TimerHeap, PopsByDeadlineThenInsertionOrderAndRemovesAnyNode) {
  asyncio::detail::TimerHeap heap;
  std::vector<asyncio::detail::TimerNode> nodes(200);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].when = static_cast<std::int64_t>((i * 37) % 50);  // many ties
    nodes[i].seq = i;
    heap.push(&nodes[i]);
  }
  for (std::size_t i = 0; i < nodes.size(); i += 3) heap.remove(&nodes[i]);
  EXPECT_EQ(heap.size(), nodes.size() - (nodes.size() + 2) / 3);
  std::int64_t last_when = -1;
  std::ptrdiff_t last_index = -1;
  while (!heap.empty()) {
    auto* n = heap.pop();
    EXPECT_FALSE(n->scheduled());
    std::ptrdiff_t index = n - nodes.data();
    EXPECT_NE(index % 3, 0);
    EXPECT_GE(n->when, last_when);
    if (n->when == last_when) {
      EXPECT_GT(index, last_index);
    }
    last_when = n->when;
    last_index = index;
  }
}

// The loop's TimerQueue against a model (a set ordered by deadline, then scheduling order), with
// deadlines that land in all three of its parts (near heap, wheel, far heap), ties, cancellations
// from each part, a clock that moves in steps of every size, and timers scheduled in the past.
TEST(TimerQueue, MatchesAnOrderedSetThroughPushRemoveAndTheClock) {
  using asyncio::detail::TimerNode;
  asyncio::detail::TimerQueue queue;
  std::vector<TimerNode> nodes(20000);
  std::set<std::pair<std::int64_t, std::uint64_t>> model;  // (when, seq)
  std::map<std::uint64_t, TimerNode*> by_seq;
  std::mt19937_64 rng(7);
  constexpr std::int64_t ms = 1'000'000;
  std::int64_t now = 5'000 * ms;
  std::size_t next = 0;
  queue.advance(now);
  auto check_pop = [&](TimerNode* n) {
    ASSERT_NE(n, nullptr);
    ASSERT_FALSE(model.empty());
    EXPECT_FALSE(n->scheduled());
    EXPECT_EQ(std::make_pair(n->when, n->seq), *model.begin());
    by_seq.erase(n->seq);
    model.erase(model.begin());
  };
  while (next < nodes.size() || !model.empty()) {
    int op = static_cast<int>(rng() % 10);
    if (op < 5 && next < nodes.size()) {
      TimerNode& n = nodes[next++];
      std::int64_t range = std::array<std::int64_t, 4>{2 * ms, 50 * ms, 3000 * ms, 20000 * ms}[rng() % 4];
      n.when = now - ms + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(range));
      if (rng() % 8 == 0) n.when = now;  // ties
      queue.push(&n);
      ASSERT_TRUE(n.scheduled());
      model.emplace(n.when, n.seq);
      by_seq[n.seq] = &n;
    } else if (op < 7 && !model.empty()) {
      auto it = by_seq.lower_bound(rng() % (by_seq.rbegin()->first + 1));
      if (it == by_seq.end()) it = by_seq.begin();
      queue.remove(it->second);
      EXPECT_FALSE(it->second->scheduled());
      model.erase({it->second->when, it->first});
      by_seq.erase(it);
    } else if (op < 9) {
      now += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(std::array<std::int64_t, 3>{ms / 10, 3 * ms, 700 * ms}[rng() % 3]));
      queue.advance(now);
      while (TimerNode* n = queue.pop_due(now)) {
        check_pop(n);
        EXPECT_LE(n->when, now);
      }
      if (!model.empty()) {
        EXPECT_GT(model.begin()->first, now);
      }
    } else if (!model.empty()) {
      check_pop(queue.pop());
    }
    ASSERT_EQ(queue.size(), model.size());
    if (!model.empty()) {
      EXPECT_LE(queue.next_deadline(), model.begin()->first);
    }
  }
  EXPECT_TRUE(queue.empty());
}

TEST(TimerQueue, NextDeadlineIsExactWithoutCancellation) {
  asyncio::detail::TimerQueue queue;
  std::vector<asyncio::detail::TimerNode> nodes(3);
  queue.advance(0);
  nodes[0].when = 9'000'000'000;  // far
  nodes[1].when = 2'000'000'000;  // wheel
  nodes[2].when = 2'500'000'000;  // wheel, later slot
  for (auto& n : nodes) queue.push(&n);
  EXPECT_EQ(queue.next_deadline(), 2'000'000'000);
  queue.remove(&nodes[1]);
  EXPECT_EQ(queue.next_deadline(), 2'500'000'000);
  queue.remove(&nodes[2]);
  EXPECT_EQ(queue.next_deadline(), 9'000'000'000);
  EXPECT_EQ(queue.pop(), &nodes[0]);
  EXPECT_TRUE(queue.empty());
}

}  // namespace
