// SPDX-License-Identifier: MIT
// asyncio::run(): result, exception, leftover tasks, nesting, options, the thread's loop.
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include "log_capture.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using testing_support::LogCapture;

namespace {

using namespace std::chrono_literals;
using asyncio::CancelledError;
using asyncio::Coro;


Coro<int> forty_two() {
  co_await asyncio::sleep(0.01);
  co_return 42;
}

Coro<void> nothing() { co_return; }

Coro<int> fails() {
  co_await asyncio::sleep(0);
  throw std::domain_error("main failed");
}

TEST(Run, ReturnsTheResult) { EXPECT_EQ(asyncio::run(forty_two()), 42); }

TEST(Run, RunsAVoidCoroutine) { EXPECT_NO_THROW(asyncio::run(nothing())); }

TEST(Run, PropagatesTheException) { EXPECT_THROW(asyncio::run(fails()), std::domain_error); }

Coro<std::unique_ptr<std::string>> make_string() {
  co_await asyncio::sleep(0);
  co_return std::make_unique<std::string>("moved");
}

TEST(Run, ReturnsAMoveOnlyResult) {
  auto p = asyncio::run(make_string());
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, "moved");
}

TEST(Run, CanRunAgainAfterwards) {
  EXPECT_EQ(asyncio::run(forty_two()), 42);
  EXPECT_EQ(asyncio::run(forty_two()), 42);
  EXPECT_THROW(asyncio::run(fails()), std::domain_error);
  EXPECT_EQ(asyncio::run(forty_two()), 42);
}

struct Leftover {
  bool started = false;
  bool saw_cancel = false;
  bool cleanup_finished = false;
};

Coro<void> leftover_body(Leftover* l) {
  l->started = true;
  bool cancelled = false;
  try {
    co_await asyncio::sleep(3600);
  } catch (const CancelledError&) {
    l->saw_cancel = true;
    cancelled = true;
  }
  if (cancelled) {
    co_await asyncio::sleep(1);  // asynchronous clean-up still runs to its end
    l->cleanup_finished = true;
    throw CancelledError();
  }
}

Coro<int> main_leaving_tasks(Leftover* a, Leftover* b) {
  asyncio::create_task(leftover_body(a));
  asyncio::create_task(leftover_body(b));
  co_await asyncio::sleep(0);
  co_return 1;
}

TEST(Run, CancelsLeftoverTasksWhichSeeCancelledError) {
  Leftover a, b;
  EXPECT_EQ(asyncio::run(main_leaving_tasks(&a, &b), {.virtual_time = true}), 1);
  for (auto* l : {&a, &b}) {
    EXPECT_TRUE(l->started);
    EXPECT_TRUE(l->saw_cancel);
    EXPECT_TRUE(l->cleanup_finished);
  }
}

Coro<void> log_cancellation(std::vector<int>* log, int id) {
  try {
    co_await asyncio::sleep(100.0);
  } catch (const CancelledError&) {
    log->push_back(id);
    throw;
  }
}

Coro<void> main_leaving_many(std::vector<int>* log) {
  for (int i = 0; i < 16; ++i) asyncio::create_task(log_cancellation(log, i));
  co_await asyncio::sleep(0);
}

TEST(Run, CancelsLeftoverTasksInCreationOrder) {
  std::vector<int> log;
  asyncio::run(main_leaving_many(&log), {.virtual_time = true});
  std::vector<int> expected;
  for (int i = 0; i < 16; ++i) expected.push_back(i);
  EXPECT_EQ(log, expected);
}

Coro<int> main_failing_with_leftover(Leftover* a) {
  asyncio::create_task(leftover_body(a));
  co_await asyncio::sleep(0);
  throw std::domain_error("main failed");
}

TEST(Run, CancelsLeftoverTasksAlsoWhenMainFails) {
  Leftover a;
  EXPECT_THROW(asyncio::run(main_failing_with_leftover(&a), {.virtual_time = true}), std::domain_error);
  EXPECT_TRUE(a.saw_cancel);
  EXPECT_TRUE(a.cleanup_finished);
}

Coro<void> leftover_that_fails_on_cancel() {
  try {
    co_await asyncio::sleep(3600);
  } catch (const CancelledError&) {
  }
  throw std::runtime_error("failed while shutting down");
}

Coro<void> main_with_failing_leftover() {
  asyncio::create_task(leftover_that_fails_on_cancel(), "bad-leftover");
  co_await asyncio::sleep(0);
}

TEST(Run, LeftoverFailingDuringShutdownIsReported) {
  LogCapture log;
  asyncio::run(main_with_failing_leftover(), {.virtual_time = true});
  EXPECT_EQ(log.count("failed while shutting down"), 1u);
  EXPECT_EQ(log.count("bad-leftover"), 1u);
}

Coro<void> cancel_self_main() {
  asyncio::current_task().cancel("main cancelled");
  co_await asyncio::sleep(0);
}

TEST(Run, CancelledMainRaisesCancelledError) {
  try {
    asyncio::run(cancel_self_main());
    ADD_FAILURE() << "no exception";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "main cancelled");
  }
}

Coro<bool> nested_run() {
  LogCapture log;  // the inner coroutine is dropped unawaited
  try {
    asyncio::run(forty_two());
  } catch (const asyncio::RuntimeError&) {
    co_return true;
  }
  co_return false;
}

TEST(Run, NestedRunThrowsRuntimeError) { EXPECT_TRUE(asyncio::run(nested_run())); }

TEST(Run, NestedRunDoesNotDisturbTheOuterRun) {
  EXPECT_TRUE(asyncio::run(nested_run()));
  EXPECT_EQ(asyncio::run(forty_two()), 42);
}

Coro<bool> thread_loop_is_the_running_loop() {
  co_return &asyncio::get_event_loop() == &asyncio::get_running_loop();
}

TEST(Run, TheRunningLoopIsTheThreadsLoopDuringRun) {
  EXPECT_TRUE(asyncio::run(thread_loop_is_the_running_loop()));
  EXPECT_THROW(asyncio::get_running_loop(), asyncio::RuntimeError);
  asyncio::set_event_loop(nullptr);
}

Coro<bool> debug_flag() { co_return asyncio::get_running_loop().get_debug(); }
Coro<bool> virtual_flag() { co_return asyncio::get_running_loop().uses_virtual_time(); }

TEST(Run, DebugOptionTurnsOnDebugMode) {
  EXPECT_TRUE(asyncio::run(debug_flag(), {.debug = true}));
}

TEST(Run, VirtualTimeOption) {
  EXPECT_TRUE(asyncio::run(virtual_flag(), {.virtual_time = true}));
  EXPECT_FALSE(asyncio::run(virtual_flag()));
}

Coro<double> one_hour() {
  auto& loop = asyncio::get_running_loop();
  double t0 = loop.time();
  co_await asyncio::sleep(3600);
  co_return loop.time() - t0;
}

TEST(Run, OneHourOfVirtualTimeTakesLittleRealTime) {
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_NEAR(asyncio::run(one_hour(), {.virtual_time = true}), 3600.0, 1e-6);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
}

TEST(Run, UnawaitedTaskResultsDoNotLeakAfterRun) {
  // A finished task nobody awaited, with an exception: reported, not leaked (ASan checks leaks).
  LogCapture log;
  asyncio::run([]() -> Coro<void> {
    asyncio::Task<int> ignored = asyncio::create_task(fails(), "ignored");
    // Until its second step has failed, whatever the clock does (a timer here raced it on a
    // loaded machine); looking at done() retrieves nothing.
    while (!ignored.done()) co_await asyncio::sleep(0);
  }());
  EXPECT_EQ(log.count("never retrieved"), 1u);
}

}  // namespace
