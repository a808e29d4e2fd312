// SPDX-License-Identifier: MIT
// asyncio::Runner, and Ctrl-C (SIGINT) under run() and Runner::run() as Python handles it.
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "net_support.hpp"

using asyncio::Coro;

namespace {

Coro<int> value(int v) {
  co_await asyncio::sleep(0);
  co_return v;
}

void (*sigint_handler())(int) {
  struct sigaction current;
  ::sigaction(SIGINT, nullptr, &current);
  return current.sa_handler;
}

/// Sends this process SIGINT, as a terminal's Ctrl-C would.
void ctrl_c() { ::kill(::getpid(), SIGINT); }

}  // namespace

TEST(Runner, RunsSeveralCoroutinesOnOneLoop) {
  asyncio::Runner runner;
  asyncio::EventLoop* first = nullptr;
  auto where = [&]() -> Coro<int> {
    first = &asyncio::get_running_loop();
    co_return 1;
  };
  EXPECT_EQ(runner.run(where()), 1);
  EXPECT_EQ(&runner.get_loop(), first);
  EXPECT_EQ(runner.run(value(2)), 2);
  runner.close();
}

TEST(Runner, CloseIsIdempotentAndRunAfterItIsRuntimeError) {
  asyncio::Runner runner;
  runner.run(value(1));
  runner.close();
  runner.close();
  EXPECT_THROW(runner.run(value(1)), asyncio::RuntimeError);
  EXPECT_THROW(runner.get_loop(), asyncio::RuntimeError);
}

Coro<void> sleep_noting_cancel(bool& cancelled) {
  try {
    co_await asyncio::sleep(3600);
  } catch (const asyncio::CancelledError&) {
    cancelled = true;
    throw;
  }
}

Coro<void> leave_a_task(bool& cancelled) {
  asyncio::create_task(sleep_noting_cancel(cancelled));
  co_await asyncio::sleep(0);
}

TEST(Runner, CloseCancelsTheTasksLeft) {
  bool cancelled = false;
  {
    asyncio::Runner runner;
    runner.run(leave_a_task(cancelled));
  }
  EXPECT_TRUE(cancelled);
}

TEST(Runner, ALoopFactoryMakesTheLoopAndItIsNotSetForTheThread) {
  std::shared_ptr<asyncio::EventLoop> made;
  asyncio::RunOptions options;
  options.loop_factory = [&] { return made = asyncio::new_event_loop(); };
  asyncio::Runner runner(options);
  asyncio::EventLoop* loop = &runner.get_loop();
  EXPECT_EQ(loop, made.get());
  EXPECT_EQ(runner.run(value(3)), 3);
  runner.close();
  EXPECT_TRUE(made->is_closed());
}

TEST(Runner, RunFromARunningLoopIsRuntimeError) {
  asyncio::Runner outer;
  auto nested = []() -> Coro<void> {
    asyncio::Runner inner;
    EXPECT_THROW(inner.run(value(1)), asyncio::RuntimeError);
    co_return;
  };
  outer.run(nested());
}

TEST(Sigint, CancelsTheMainTaskWhichCleansUpAndRunThrowsKeyboardInterrupt) {
  bool cleaned_up = false;
  auto main_task = [&]() -> Coro<void> {
    try {
      ctrl_c();
      co_await asyncio::sleep(30);
    } catch (const asyncio::CancelledError&) {
      cleaned_up = true;
      throw;
    }
  };
  EXPECT_THROW(asyncio::run(main_task()), asyncio::KeyboardInterrupt);
  EXPECT_TRUE(cleaned_up);
  EXPECT_EQ(sigint_handler(), SIG_DFL);  // put back after run
}

TEST(Sigint, AMainTaskThatAbsorbsTheCancellationReturnsNormally) {
  auto main_task = []() -> Coro<int> {
    try {
      ctrl_c();
      co_await asyncio::sleep(30);
    } catch (const asyncio::CancelledError&) {
      asyncio::current_task().uncancel();
      co_return 7;
    }
    co_return 0;
  };
  EXPECT_EQ(asyncio::run(main_task()), 7);
}

TEST(Sigint, TheSecondCtrlCIsNotSwallowed) {
  bool second_seen_by_run = false;
  auto main_task = [&]() -> Coro<void> {
    bool cancelled = false;
    try {
      ctrl_c();
      co_await asyncio::sleep(30);
    } catch (const asyncio::CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      // A clean-up that hangs: the user presses Ctrl-C again.
      ctrl_c();
      co_await asyncio::sleep(30);
    }
  };
  try {
    asyncio::run(main_task());
  } catch (const asyncio::KeyboardInterrupt&) {
    second_seen_by_run = true;
  }
  EXPECT_TRUE(second_seen_by_run);
  EXPECT_EQ(sigint_handler(), SIG_DFL);
}

TEST(Sigint, AProgramsOwnSigintHandlingIsLeftAlone) {
  ::signal(SIGINT, SIG_IGN);
  auto main_task = []() -> Coro<int> {
    ctrl_c();
    co_await asyncio::sleep(0.05);
    co_return 1;
  };
  EXPECT_EQ(asyncio::run(main_task()), 1);
  EXPECT_EQ(sigint_handler(), SIG_IGN);
  ::signal(SIGINT, SIG_DFL);
}

TEST(Sigint, OnlyTheMainThreadsRunTakesSigint) {
  void (*during)(int) = nullptr;
  std::thread other([&] {
    auto look = [&]() -> Coro<void> {
      during = sigint_handler();
      co_return;
    };
    asyncio::run(look());
  });
  other.join();
  EXPECT_EQ(during, SIG_DFL);
}

TEST(Sigint, TheLoopsOwnHandlerReplacesTheRunners) {
  int seen = 0;
  auto main_task = [&]() -> Coro<int> {
    asyncio::get_running_loop().add_signal_handler(SIGINT, [&] { ++seen; });
    ctrl_c();
    for (int i = 0; i < 200 && seen == 0; ++i) co_await asyncio::sleep(0.005);
    co_return seen;
  };
  EXPECT_EQ(asyncio::run(main_task()), 1);
}
