// SPDX-License-Identifier: MIT
// wait(), wait_for() and as_completed().
#include <asyncio/gather.hpp>
#include <asyncio/wait.hpp>
#include <gtest/gtest.h>

#include "test_support.hpp"

using namespace testing_support;
using asyncio::Coro;
using asyncio::Task;

namespace {

std::vector<Task<int>> spawn_after(std::initializer_list<double> delays) {
  std::vector<Task<int>> tasks;
  int i = 0;
  for (double d : delays) tasks.push_back(asyncio::create_task(after(d, i++)));
  return tasks;
}

TEST(Wait, AllCompletedWaitsForEverything) {
  run_v([]() -> Coro<void> {
    auto tasks = spawn_after({0.3, 0.1, 0.2});
    auto [done, pending] = co_await asyncio::wait(tasks);
    EXPECT_EQ(done.size(), 3u);
    EXPECT_TRUE(pending.empty());
    EXPECT_DOUBLE_EQ(now(), 0.3);
  }());
}

TEST(Wait, FirstCompletedReturnsAfterTheFirst) {
  run_v([]() -> Coro<void> {
    auto tasks = spawn_after({0.3, 0.1, 0.2});
    auto [done, pending] = co_await asyncio::wait(tasks, std::nullopt, asyncio::FIRST_COMPLETED);
    EXPECT_EQ(done.size(), 1u);
    EXPECT_EQ(pending.size(), 2u);
    EXPECT_EQ(done[0].result(), 1);
    EXPECT_DOUBLE_EQ(now(), 0.1);
    for (auto& t : pending) t.cancel();
  }());
}

TEST(Wait, FirstExceptionReturnsAtTheFirstFailure) {
  run_v([]() -> Coro<void> {
    std::vector<Task<int>> tasks{asyncio::create_task(after(1.0, 1)), asyncio::create_task(fail_after(0.2, "x")),
                                 asyncio::create_task(after(0.1, 3))};
    auto [done, pending] = co_await asyncio::wait(tasks, std::nullopt, asyncio::FIRST_EXCEPTION);
    EXPECT_EQ(done.size(), 2u);
    EXPECT_EQ(pending.size(), 1u);
    EXPECT_DOUBLE_EQ(now(), 0.2);
    for (auto& t : done) (void)t.exception();
    pending[0].cancel();
  }());
}

TEST(Wait, FirstExceptionWithoutFailuresWaitsForAll) {
  run_v([]() -> Coro<void> {
    auto tasks = spawn_after({0.1, 0.2});
    auto [done, pending] = co_await asyncio::wait(tasks, std::nullopt, asyncio::FIRST_EXCEPTION);
    EXPECT_EQ(done.size(), 2u);
    EXPECT_TRUE(pending.empty());
  }());
}

TEST(Wait, TimeoutReturnsPendingWithoutCancelling) {
  run_v([]() -> Coro<void> {
    auto tasks = spawn_after({0.1, 5.0});
    auto [done, pending] = co_await asyncio::wait(tasks, 1.0);
    EXPECT_EQ(done.size(), 1u);
    EXPECT_EQ(pending.size(), 1u);
    EXPECT_DOUBLE_EQ(now(), 1.0);
    EXPECT_FALSE(pending[0].cancelled());
    EXPECT_EQ(co_await pending[0], 1);
  }());
}

TEST(Wait, AlreadyDoneReturnsWithoutSuspending) {
  run_v([]() -> Coro<void> {
    auto f = asyncio::get_running_loop().create_future<int>();
    f.set_result(1);
    std::vector<asyncio::Future<int>> fs{f};
    auto [done, pending] = co_await asyncio::wait(fs);
    EXPECT_EQ(done.size(), 1u);
    EXPECT_DOUBLE_EQ(now(), 0.0);
  }());
}

TEST(Wait, TheSameTaskTwiceIsOneEntry) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task(after(0.1, 7));
    auto u = asyncio::create_task(after(0.2, 8));
    std::vector<Task<int>> twice{t, u, t};
    auto [done, pending] = co_await asyncio::wait(twice);
    EXPECT_EQ(done.size(), 2u);
    EXPECT_TRUE(done.size() == 2 && done[0] == t && done[1] == u);
    EXPECT_TRUE(pending.empty());
  }());
}

TEST(Wait, OtherAwaitablesAreWrappedInTasks) {
  run_v([]() -> Coro<void> {
    std::vector<asyncio::detail::SleepResultAwaiter<int>> sleeps;
    sleeps.push_back(asyncio::sleep(0.3, 1));
    sleeps.push_back(asyncio::sleep(0.1, 2));
    auto [done, pending] = co_await asyncio::wait(std::move(sleeps), std::nullopt, asyncio::FIRST_COMPLETED);
    EXPECT_EQ(done.size(), 1u);
    EXPECT_EQ(pending.size(), 1u);
    EXPECT_TRUE(done.size() == 1 && done[0].result() == 2);
    std::vector<Coro<int>> coros;
    coros.push_back(after(0.1, 5));
    auto [all, none] = co_await asyncio::wait(std::move(coros));
    EXPECT_TRUE(all.size() == 1 && all[0].result() == 5 && none.empty());
    for (auto& t : pending) t.cancel();
  }());
}

TEST(Wait, EmptySetIsValueError) {
  run_v([]() -> Coro<void> {
    EXPECT_THROW(co_await asyncio::wait(std::vector<Task<int>>{}), asyncio::ValueError);
  }());
}

TEST(Wait, CancellingTheWaiterLeavesTasksRunningAndUnhooked) {
  run_v([]() -> Coro<void> {
    auto tasks = spawn_after({1.0});
    auto waiter = asyncio::create_task([](std::vector<Task<int>> ts) -> Coro<void> {
      co_await asyncio::wait(ts);
    }(tasks));
    co_await asyncio::sleep(0.1);
    waiter.cancel();
    EXPECT_THROW(co_await waiter, asyncio::CancelledError);
    EXPECT_FALSE(tasks[0].done());
    EXPECT_EQ(co_await tasks[0], 0);  // completes normally; the dead waiter's callback is gone
  }());
}

TEST(WaitFor, ReturnsTheResultInTime) {
  EXPECT_EQ(run_v([]() -> Coro<int> { co_return co_await asyncio::wait_for(after(0.5, 42), 1.0); }()), 42);
}

TEST(WaitFor, TimeoutRaisesTimeoutErrorAtTheDeadline) {
  run_v([]() -> Coro<void> {
    EXPECT_THROW(co_await asyncio::wait_for(after(5.0, 1), 1.0), asyncio::TimeoutError);
    EXPECT_DOUBLE_EQ(now(), 1.0);
  }());
}

TEST(WaitFor, TakesAnEventWait) {
  run_v([]() -> Coro<void> {
    asyncio::Event ev;
    asyncio::get_running_loop().call_later(1.0, [&] { ev.set(); });
    EXPECT_TRUE(co_await asyncio::wait_for(ev.wait(), 5));
    EXPECT_DOUBLE_EQ(now(), 1.0);
    asyncio::Event never;
    EXPECT_THROW(co_await asyncio::wait_for(never.wait(), 2), asyncio::TimeoutError);
    EXPECT_DOUBLE_EQ(now(), 3.0);
  }());
}

TEST(WaitFor, TakesQueueGetLockAcquireAndSleep) {
  run_v([]() -> Coro<void> {
    asyncio::Queue<std::string> q;
    q.put_nowait("job");
    EXPECT_EQ(co_await asyncio::wait_for(q.get(), 1), "job");
    EXPECT_THROW(co_await asyncio::wait_for(q.get(), 1), asyncio::TimeoutError);
    EXPECT_EQ(q.qsize(), 0u);
    asyncio::Lock lock;
    EXPECT_TRUE(co_await asyncio::wait_for(lock.acquire(), 1));
    EXPECT_THROW(co_await asyncio::wait_for(lock.acquire(), 1), asyncio::TimeoutError);
    EXPECT_EQ(lock.waiters(), 0u);  // the timed-out acquire left the queue
    lock.release();
    EXPECT_FALSE(lock.locked());
    EXPECT_EQ(co_await asyncio::wait_for(asyncio::sleep(0.5, 4), 1), 4);
    EXPECT_THROW(co_await asyncio::wait_for(asyncio::sleep(5), 1), asyncio::TimeoutError);
  }());
}

TEST(WaitFor, ZeroTimeoutOnAnAwaitableThatIsNotReadyIsTimeout) {
  run_v([]() -> Coro<void> {
    asyncio::Event ev;
    EXPECT_THROW(co_await asyncio::wait_for(ev.wait(), 0), asyncio::TimeoutError);
  }());
}

TEST(WaitFor, TimeoutCancelsTheTaskAndWaitsForIt) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task(after(5.0, 1));
    EXPECT_THROW(co_await asyncio::wait_for(t, 1.0), asyncio::TimeoutError);
    EXPECT_TRUE(t.cancelled());
  }());
}

TEST(WaitFor, NoTimeoutWaitsAsLongAsNeeded) {
  EXPECT_EQ(run_v([]() -> Coro<int> { co_return co_await asyncio::wait_for(after(100.0, 7), std::nullopt); }()), 7);
}

TEST(WaitFor, ZeroTimeoutOnDoneFutureGivesResult) {
  run_v([]() -> Coro<void> {
    auto f = asyncio::get_running_loop().create_future<int>();
    f.set_result(5);
    EXPECT_EQ(co_await asyncio::wait_for(f, 0), 5);
  }());
}

TEST(WaitFor, ZeroTimeoutOnPendingWorkIsTimeout) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task(after(1.0, 1));
    EXPECT_THROW(co_await asyncio::wait_for(t, 0), asyncio::TimeoutError);
    EXPECT_TRUE(t.cancelled());
  }());
}

TEST(WaitFor, OuterCancellationStaysCancelledError) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task([]() -> Coro<int> { co_return co_await asyncio::wait_for(after(5.0, 1), 10.0); }());
    co_await asyncio::sleep(1.0);
    t.cancel();
    EXPECT_THROW(co_await t, asyncio::CancelledError);
    EXPECT_TRUE(t.cancelled());
  }());
}

TEST(WaitFor, InnerExceptionPropagates) {
  run_v([]() -> Coro<void> {
    EXPECT_THROW(co_await asyncio::wait_for(fail_after(0.1, "x"), 1.0), std::runtime_error);
  }());
}

TEST(WaitFor, ValueReturnedWhileSwallowingTheTimeoutIsKept) {
  // Python 3.12 semantics: the awaitable runs in the calling task; if it catches the
  // cancellation and returns normally, wait_for returns that value.
  int v = run_v([]() -> Coro<int> {
    co_return co_await asyncio::wait_for(
        []() -> Coro<int> {
          try {
            co_await asyncio::sleep(5.0);
          } catch (const asyncio::CancelledError&) {
          }
          co_return 9;
        }(),
        1.0);
  }());
  EXPECT_EQ(v, 9);
}

TEST(AsCompleted, YieldsInCompletionOrder) {
  auto order = run_v([]() -> Coro<std::vector<int>> {
    std::vector<int> out;
    for (auto next : asyncio::as_completed(spawn_after({0.3, 0.1, 0.2}))) out.push_back(co_await next);
    co_return out;
  }());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 0}));
}

TEST(AsCompleted, ExceptionsComeOutOfTheirAwait) {
  run_v([]() -> Coro<void> {
    std::vector<Coro<int>> coros;
    coros.push_back(after(0.2, 1));
    coros.push_back(fail_after(0.1, "x"));
    auto range = asyncio::as_completed(std::move(coros));
    auto it = range.begin();
    EXPECT_THROW(co_await *it, std::runtime_error);
    ++it;
    EXPECT_EQ(co_await *it, 1);
  }());
}

TEST(AsCompleted, TheSameTaskTwiceIsYieldedOnce) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task(after(0.1, 7));
    std::vector<Task<int>> twice{t, t};
    auto range = asyncio::as_completed(twice);
    EXPECT_EQ(range.size(), 1u);
    int n = 0;
    for (auto next : range) {
      EXPECT_EQ(co_await next, 7);
      ++n;
    }
    EXPECT_EQ(n, 1);
  }());
}

TEST(AsCompleted, TakesOtherAwaitables) {
  auto order = run_v([]() -> Coro<std::vector<int>> {
    std::vector<asyncio::detail::SleepResultAwaiter<int>> sleeps;
    sleeps.push_back(asyncio::sleep(0.3, 3));
    sleeps.push_back(asyncio::sleep(0.1, 1));
    std::vector<int> out;
    for (auto next : asyncio::as_completed(std::move(sleeps))) out.push_back(co_await next);
    co_return out;
  }());
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
}

TEST(AsCompleted, TimeoutRaisesForTheRest) {
  run_v([]() -> Coro<void> {
    auto tasks = spawn_after({0.1, 10.0});
    auto range = asyncio::as_completed(tasks, 1.0);
    auto it = range.begin();
    EXPECT_EQ(co_await *it, 0);
    ++it;
    EXPECT_THROW(co_await *it, asyncio::TimeoutError);
    EXPECT_DOUBLE_EQ(now(), 1.0);
    tasks[1].cancel();
  }());
}

TEST(AsCompleted, AwaitablesMayBeAwaitedConcurrently) {
  auto r = run_v([]() -> Coro<std::tuple<int, int>> {
    auto range = asyncio::as_completed(spawn_after({0.2, 0.1}));
    auto it = range.begin();
    Coro<int> first = *it;
    ++it;
    Coro<int> second = *it;
    co_return co_await asyncio::timeout(5.0, [&]() { return asyncio::gather(std::move(first), std::move(second)); });
  }());
  EXPECT_EQ(std::get<0>(r), 1);  // the first awaiter gets the first completion
  EXPECT_EQ(std::get<1>(r), 0);
}

// ---- conformance: behaviours CPython's test_waitfor checks -----------------------------------------

// test_cancel_wait_for: cancelling the wait_for cancels the task it waits on.
TEST(WaitFor, CancellingTheWaitForCancelsTheInnerTask) {
  run_v([]() -> Coro<void> {
    auto inner = asyncio::create_task(asyncio::sleep(100.0));
    auto waiting = asyncio::create_task(asyncio::wait_for(inner, 60.0));
    co_await asyncio::sleep(0.1);
    waiting.cancel();
    EXPECT_THROW(co_await waiting, asyncio::CancelledError);
    EXPECT_TRUE(inner.cancelled());
  }());
}

// test_wait_for_reraises_exception_during_cancellation.
TEST(WaitFor, ErrorRaisedByTheInnerWhileBeingCancelledPropagates) {
  run_v([]() -> Coro<void> {
    auto inner = asyncio::create_task([]() -> Coro<void> {
      try {
        co_await asyncio::sleep(1.0);
      } catch (const asyncio::CancelledError&) {
      }
      throw std::domain_error("foo");
    });
    EXPECT_THROW(co_await asyncio::wait_for(inner, 0.01), std::domain_error);
  }());
}

// test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started.
TEST(WaitFor, ZeroTimeoutNeverStartsACoroutine) {
  run_v([]() -> Coro<void> {
    bool started = false;
    auto body = [&]() -> Coro<int> {
      started = true;
      co_return 1;
    };
    EXPECT_THROW(co_await asyncio::wait_for(body(), 0), asyncio::TimeoutError);
    EXPECT_FALSE(started);
  }());
}

// test_asyncio_wait_for_timeout: an inner that holds off its cancellation is waited for; if it
// then returns a value, that value is the result (as Python 3.12's wait_for).
TEST(WaitFor, InnerHoldingOffItsCancellationIsWaitedFor) {
  run_v([]() -> Coro<void> {
    auto stubborn = []() -> Coro<int> {
      for (int i = 0; i < 3; ++i) {
        try {
          co_await asyncio::sleep(0.3);
        } catch (const asyncio::CancelledError&) {
        }
      }
      co_return 42;
    };
    auto inner = asyncio::create_task(stubborn());
    EXPECT_EQ(co_await asyncio::wait_for(inner, 0.1), 42);
    EXPECT_NEAR(now(), 0.7, 1e-6);
  }());
}

// test_wait_for_self_cancellation: a wait_for cancelled before it starts leaves the inner alone.
TEST(WaitFor, CancelledBeforeItStartsLeavesTheInnerAlone) {
  run_v([]() -> Coro<void> {
    auto inner = asyncio::create_task(after(0.3, 42));
    auto waiting = asyncio::create_task(asyncio::wait_for(inner, 0.1));
    waiting.cancel();
    EXPECT_THROW(co_await waiting, asyncio::CancelledError);
    EXPECT_EQ(co_await inner, 42);
  }());
}

}  // namespace
