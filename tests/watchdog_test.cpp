// SPDX-License-Identifier: MIT
// Blocking detection: the watchdog thread (watchdog.hpp) and debug mode's slow-step report.
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "inspect_support.hpp"

using asyncio::Coro;
using inspect_support::LogCapture;
using namespace std::chrono_literals;

namespace {

std::uint32_t park_line, first_line, second_line;

/// Parks once, then holds the loop until the watchdog has reported it (at most 3 s).
Coro<void> stall(LogCapture* log, bool* seen_while_blocked) {
  park_line = __LINE__; co_await asyncio::sleep(0);
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!log->matching({"still blocked"}).empty()) {
      *seen_while_blocked = true;
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
}

Coro<void> stall_in_first_step() { std::this_thread::sleep_for(300ms); co_return; }

Coro<void> yielder(int n) {
  for (int i = 0; i < n; ++i) co_await asyncio::sleep(0);
}

Coro<void> slow_step() {
  first_line = __LINE__; co_await asyncio::sleep(0);
  std::this_thread::sleep_for(150ms);
  second_line = __LINE__; co_await asyncio::sleep(0);
}

Coro<void> blocks_then_ends() {
  std::this_thread::sleep_for(150ms);
  co_return;
}

}  // namespace

// ---- the watchdog ------------------------------------------------------------------------------

TEST(watchdog, ReportsAStallWhileItLastsWithTheTaskAndItsResumePoint) {
  LogCapture log;
  auto loop = asyncio::new_event_loop();
  asyncio::enable_watchdog(*loop, 0.1);
  bool seen = false;
  auto t = loop->create_task(stall(&log, &seen), "staller");
  loop->run_until_complete(t);
  EXPECT_TRUE(seen) << "the report came only after the step ended (or never)";
  // The report of the end comes within a sampling interval of the step's end.
  loop->run_until_complete(loop->create_task(yielder(1)));
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(asyncio::disable_watchdog(*loop));

  auto lines = log.matching({"watchdog", "still blocked"});
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(log.lines());
  const std::string& line = lines[0];
  EXPECT_NE(line.find("blocked for at least 0.1"), std::string::npos) << line;
  EXPECT_NE(line.find("Task 'staller' (id " + std::to_string(t.core().id()) + ")"), std::string::npos) << line;
  EXPECT_NE(line.find("resumed at watchdog_test.cpp:" + std::to_string(park_line) + " in stall()"), std::string::npos)
      << line;
  auto ended = log.matching({"watchdog", "was blocked for about", "staller", "runs again"});
  EXPECT_EQ(ended.size(), 1u) << ::testing::PrintToString(log.lines());
  loop->close();
}

TEST(watchdog, NamesTheCreationSiteOfAFirstStep) {
  LogCapture log;
  auto loop = asyncio::new_event_loop();
  asyncio::enable_watchdog(*loop, 50ms);
  loop->run_until_complete(loop->create_task(stall_in_first_step()));
  asyncio::disable_watchdog(*loop);
  auto lines = log.matching({"still blocked", "in its first step (created at watchdog_test.cpp:"});
  EXPECT_EQ(lines.size(), 1u) << ::testing::PrintToString(log.lines());
  loop->close();
}

TEST(watchdog, ReportsACallback) {
  LogCapture log;
  auto loop = asyncio::new_event_loop();
  asyncio::enable_watchdog(*loop, 0.05);
  loop->call_soon([] { std::this_thread::sleep_for(300ms); });
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  asyncio::disable_watchdog(*loop);
  EXPECT_EQ(log.matching({"still blocked", "by a callback"}).size(), 1u) << ::testing::PrintToString(log.lines());
  loop->close();
}

TEST(watchdog, QuietWhileStepsAreShort) {
  LogCapture log;
  auto loop = asyncio::new_event_loop();
  asyncio::enable_watchdog(*loop, 0.2);
  for (int i = 0; i < 10; ++i) loop->create_task(yielder(2000));
  loop->run_until_complete(loop->create_task(yielder(2000)));
  std::this_thread::sleep_for(50ms);  // idle: polling is not a stall
  loop->run_until_complete(loop->create_task(yielder(1)));
  asyncio::disable_watchdog(*loop);
  EXPECT_TRUE(log.matching({"watchdog"}).empty()) << ::testing::PrintToString(log.lines());
  asyncio::cancel_all_tasks(*loop);
  loop->close();
}

TEST(watchdog, EnableDisable) {
  auto loop = asyncio::new_event_loop();
  EXPECT_FALSE(asyncio::disable_watchdog(*loop));
  EXPECT_THROW(asyncio::enable_watchdog(*loop, 0.0), asyncio::ValueError);
  asyncio::enable_watchdog(*loop, 1.0);
  asyncio::enable_watchdog(*loop, 0.5);  // restarts with the new threshold
  loop->run_until_complete(loop->create_task(yielder(10)));
  EXPECT_TRUE(asyncio::disable_watchdog(*loop));
  EXPECT_FALSE(asyncio::disable_watchdog(*loop));
  asyncio::enable_watchdog(*loop, 1.0);  // the loop's destruction stops it
}

TEST(watchdog, ThreadSafeWhileBusy) {
  // Many short steps while the watchdog samples: meant for ThreadSanitizer builds.
  auto loop = asyncio::new_event_loop();
  asyncio::enable_watchdog(*loop, std::chrono::milliseconds(1));
  for (int i = 0; i < 20; ++i) loop->create_task(yielder(500), "busy-" + std::to_string(i));
  LogCapture log;  // steps may exceed 1 ms under a sanitizer: reports are fine here
  loop->run_until_complete(loop->create_task(yielder(500)));
  asyncio::disable_watchdog(*loop);
  asyncio::cancel_all_tasks(*loop);
  loop->close();
}

// ---- debug mode's slow-step report ------------------------------------------------------------------

TEST(watchdogSlowStep, NamesTheTaskWhereTheStepBeganAndEndedAndTheTime) {
  LogCapture log;
  auto loop = asyncio::new_event_loop({.debug = true});
  loop->slow_callback_duration = 0.1;
  loop->run_until_complete(loop->create_task(slow_step(), "slow"));
  auto lines = log.matching({"Executing Task 'slow'", "took"});
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(log.lines());
  const std::string& line = lines[0];
  EXPECT_NE(line.find("coro=slow_step()"), std::string::npos) << line;
  EXPECT_NE(line.find("took 0.1"), std::string::npos) << line;
  EXPECT_NE(line.find("the step began at watchdog_test.cpp:" + std::to_string(first_line) + " in slow_step()"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("ended at watchdog_test.cpp:" + std::to_string(second_line) + " in slow_step()"),
            std::string::npos)
      << line;
  loop->close();
}

TEST(watchdogSlowStep, FirstStepToTheEnd) {
  LogCapture log;
  auto loop = asyncio::new_event_loop({.debug = true});
  loop->slow_callback_duration = 0.1;
  loop->run_until_complete(loop->create_task(blocks_then_ends(), "oneshot"));
  auto lines = log.matching({"Executing Task 'oneshot'", "created at watchdog_test.cpp:",
                             "the step began at the task's start and ended with the task's end"});
  EXPECT_EQ(lines.size(), 1u) << ::testing::PrintToString(log.lines());
  loop->close();
}

TEST(watchdogSlowStep, WorksWithTracingAndTheWatchdogTogether) {
  LogCapture log;
  auto loop = asyncio::new_event_loop({.debug = true});
  loop->slow_callback_duration = 0.1;
  std::string path = ::testing::TempDir() + "/slow-" + std::to_string(::getpid()) + ".json";
  asyncio::start_trace(*loop, path);
  asyncio::enable_watchdog(*loop, 0.05);
  loop->run_until_complete(loop->create_task(slow_step(), "slow"));
  asyncio::disable_watchdog(*loop);
  asyncio::stop_trace(*loop);
  EXPECT_EQ(log.matching({"Executing Task 'slow'", "took"}).size(), 1u);
  EXPECT_EQ(log.matching({"watchdog", "still blocked", "slow"}).size(), 1u) << ::testing::PrintToString(log.lines());
  auto slices = inspect_support::read_trace(path);
  bool long_run = false;
  for (const auto& s : slices) long_run = long_run || (s.name == "run" && s.dur >= 0.14);
  EXPECT_TRUE(long_run);
  loop->close();
}

TEST(watchdog, EnvironmentVariableWatchesEveryLoop) {
  LogCapture log;
  ::setenv("ASYNCIO_WATCHDOG", "0.05", 1);
  auto loop = asyncio::new_event_loop();
  ::unsetenv("ASYNCIO_WATCHDOG");
  loop->call_soon([] { std::this_thread::sleep_for(300ms); });
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_TRUE(asyncio::disable_watchdog(*loop));
  EXPECT_EQ(log.matching({"still blocked", "by a callback"}).size(), 1u) << ::testing::PrintToString(log.lines());
  loop->close();
}
