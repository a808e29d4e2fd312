// SPDX-License-Identifier: MIT
// Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier: one behaviour per test, with the
// corner cases of CPython's test_locks.py (fairness, cancellation while being woken, ...).
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include "test_support.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace {

using asyncio::AnyTask;
using asyncio::Barrier;
using asyncio::BoundedSemaphore;
using asyncio::BrokenBarrierError;
using asyncio::CancelledError;
using asyncio::Condition;
using asyncio::Coro;
using asyncio::Event;
using asyncio::Lock;
using asyncio::Semaphore;
using asyncio::Task;

using testing_support::ends_cancelled;
using testing_support::spin;

/// Runs `c` on the virtual clock; a lost wake-up fails with TimeoutError instead of hanging.
template <class T>
T run_v(Coro<T> c) {
  return testing_support::run_guarded_v(std::move(c));
}

// ---- Lock ------------------------------------------------------------------------------------------

Coro<void> lock_and_log(Lock& lock, std::vector<int>& log, int id, double hold = 0) {
  co_await lock.acquire();
  log.push_back(id);
  if (hold > 0) co_await asyncio::sleep(hold);
  lock.release();
}

TEST(Lock, FreeLockIsTakenWithoutSuspending) {
  run_v([]() -> Coro<void> {
    Lock lock;
    bool other_ran = false;
    auto other = asyncio::create_task([](bool& flag) -> Coro<void> {
      flag = true;
      co_return;
    }(other_ran));
    EXPECT_TRUE(co_await lock.acquire());
    EXPECT_TRUE(lock.locked());
    EXPECT_FALSE(other_ran);  // no trip through the loop
    lock.release();
    EXPECT_FALSE(lock.locked());
    co_await other;
  }());
}

TEST(Lock, ReleasingAnUnlockedLockRaisesRuntimeError) {
  Lock lock;
  EXPECT_THROW(lock.release(), asyncio::RuntimeError);
}

TEST(Lock, WaitersAcquireInArrivalOrder) {
  run_v([]() -> Coro<void> {
    Lock lock;
    std::vector<int> log;
    co_await lock.acquire();
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(asyncio::create_task(lock_and_log(lock, log, i)));
    co_await spin();
    EXPECT_EQ(lock.waiters(), 5u);
    lock.release();
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(log, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_FALSE(lock.locked());
  }());
}

TEST(Lock, ReleaseHandsTheLockToTheWaiterSoNewcomersCannotBarge) {
  run_v([]() -> Coro<void> {
    Lock lock;
    std::vector<int> log;
    co_await lock.acquire();
    auto waiter = asyncio::create_task(lock_and_log(lock, log, 1));
    co_await spin();
    lock.release();  // handed to the waiter, which has not run yet
    EXPECT_TRUE(lock.locked());
    // A newcomer arriving before the woken waiter runs must queue behind it.
    auto newcomer = asyncio::create_task(lock_and_log(lock, log, 2));
    co_await waiter;
    co_await newcomer;
    EXPECT_EQ(log, (std::vector<int>{1, 2}));
  }());
}

TEST(Lock, CancelledWaiterLeavesTheQueue) {
  run_v([]() -> Coro<void> {
    Lock lock;
    std::vector<int> log;
    co_await lock.acquire();
    auto a = asyncio::create_task(lock_and_log(lock, log, 1));
    auto b = asyncio::create_task(lock_and_log(lock, log, 2));
    co_await spin();
    a.cancel();
    co_await spin();
    EXPECT_EQ(lock.waiters(), 1u);
    lock.release();
    EXPECT_TRUE(co_await ends_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (std::vector<int>{2}));
    EXPECT_FALSE(lock.locked());
  }());
}

TEST(Lock, WaiterCancelledAfterBeingWokenPassesTheLockOn) {
  // CPython test_locks: test_cancel_release_race / "cancelled while being woken".
  run_v([]() -> Coro<void> {
    Lock lock;
    std::vector<int> log;
    co_await lock.acquire();
    auto a = asyncio::create_task(lock_and_log(lock, log, 1));
    auto b = asyncio::create_task(lock_and_log(lock, log, 2));
    co_await spin();
    lock.release();  // a is woken with the lock...
    a.cancel();      // ...and cancelled before it runs
    EXPECT_TRUE(co_await ends_cancelled(a));
    co_await b;  // b gets the lock instead: the wake-up was not swallowed
    EXPECT_EQ(log, (std::vector<int>{2}));
    EXPECT_FALSE(lock.locked());
  }());
}

TEST(Lock, WaiterCancelledAfterBeingWokenWithNobodyBehindUnlocks) {
  run_v([]() -> Coro<void> {
    Lock lock;
    std::vector<int> log;
    co_await lock.acquire();
    auto a = asyncio::create_task(lock_and_log(lock, log, 1));
    co_await spin();
    lock.release();
    a.cancel();
    EXPECT_TRUE(co_await ends_cancelled(a));
    EXPECT_FALSE(lock.locked());  // never left held by a cancelled waiter
    EXPECT_TRUE(log.empty());
  }());
}

TEST(Lock, CancellingEveryWaiterLeavesTheLockFree) {
  run_v([]() -> Coro<void> {
    Lock lock;
    std::vector<int> log;
    co_await lock.acquire();
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 4; ++i) tasks.push_back(asyncio::create_task(lock_and_log(lock, log, i)));
    co_await spin();
    lock.release();
    for (auto& t : tasks) t.cancel();
    for (auto& t : tasks) EXPECT_TRUE(co_await ends_cancelled(t));
    EXPECT_FALSE(lock.locked());
    EXPECT_EQ(lock.waiters(), 0u);
  }());
}

TEST(Lock, ScopedGuardReleasesOnException) {
  run_v([]() -> Coro<void> {
    Lock lock;
    try {
      auto held = co_await lock.scoped();
      EXPECT_TRUE(held.owns());
      EXPECT_TRUE(lock.locked());
      throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    EXPECT_FALSE(lock.locked());
  }());
}

TEST(Lock, ScopedGuardCanReleaseEarlyAndMove) {
  run_v([]() -> Coro<void> {
    Lock lock;
    auto held = co_await lock.scoped();
    asyncio::LockGuard<Lock> moved = std::move(held);
    EXPECT_FALSE(held.owns());
    EXPECT_TRUE(lock.locked());
    moved.release();
    EXPECT_FALSE(lock.locked());
  }());
}

TEST(Lock, MutualExclusionAcrossAwaits) {
  run_v([]() -> Coro<void> {
    Lock lock;
    int inside = 0, max_inside = 0;
    auto worker = [](Lock& l, int& in, int& mx) -> Coro<void> {
      for (int i = 0; i < 10; ++i) {
        auto held = co_await l.scoped();
        mx = std::max(mx, ++in);
        co_await asyncio::sleep(0.001);
        --in;
      }
    };
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(asyncio::create_task(worker(lock, inside, max_inside)));
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(max_inside, 1);
  }());
}

TEST(Lock, DestroyedWhileTasksWaitOnIt) {
  // The waiters are orphaned: they stay parked and can still be cancelled safely.
  run_v([]() -> Coro<void> {
    auto lock = std::make_unique<Lock>();
    std::vector<int> log;
    co_await lock->acquire();
    auto a = asyncio::create_task(lock_and_log(*lock, log, 1));
    co_await spin();
    lock.reset();
    a.cancel();
    EXPECT_TRUE(co_await ends_cancelled(a));
  }());
}

// ---- Event -----------------------------------------------------------------------------------------

Coro<int> wait_event(Event& e, std::vector<int>& log, int id) {
  bool r = co_await e.wait();
  log.push_back(id);
  co_return r ? 1 : 0;
}

TEST(Event, WaitOnASetEventReturnsAtOnce) {
  run_v([]() -> Coro<void> {
    Event e;
    e.set();
    EXPECT_TRUE(e.is_set());
    EXPECT_TRUE(co_await e.wait());
  }());
}

TEST(Event, SetWakesEveryWaiterInOrder) {
  run_v([]() -> Coro<void> {
    Event e;
    std::vector<int> log;
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 3; ++i) tasks.push_back(asyncio::create_task(wait_event(e, log, i)));
    co_await spin();
    EXPECT_TRUE(log.empty());
    e.set();
    for (auto& t : tasks) EXPECT_EQ(co_await t, 1);
    EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));
  }());
}

TEST(Event, ClearRightAfterSetStillReleasesTheWokenWaiters) {
  run_v([]() -> Coro<void> {
    Event e;
    std::vector<int> log;
    auto t = asyncio::create_task(wait_event(e, log, 1));
    co_await spin();
    e.set();
    e.clear();
    EXPECT_EQ(co_await t, 1);
    EXPECT_FALSE(e.is_set());
  }());
}

TEST(Event, WaitAfterClearBlocksUntilSetAgain) {
  run_v([]() -> Coro<void> {
    Event e;
    std::vector<int> log;
    e.set();
    e.clear();
    auto t = asyncio::create_task(wait_event(e, log, 1));
    co_await spin();
    EXPECT_FALSE(t.done());
    e.set();
    co_await t;
    EXPECT_EQ(log, (std::vector<int>{1}));
  }());
}

TEST(Event, CancelledWaiterDoesNotDisturbTheOthers) {
  run_v([]() -> Coro<void> {
    Event e;
    std::vector<int> log;
    auto a = asyncio::create_task(wait_event(e, log, 1));
    auto b = asyncio::create_task(wait_event(e, log, 2));
    co_await spin();
    a.cancel();
    co_await spin();
    e.set();
    EXPECT_TRUE(co_await ends_cancelled(a));
    EXPECT_EQ(co_await b, 1);
    EXPECT_EQ(log, (std::vector<int>{2}));
  }());
}

// ---- Condition -------------------------------------------------------------------------------------

Coro<void> cond_waiter(Condition& c, std::vector<int>& log, int id) {
  auto held = co_await c.scoped();
  co_await c.wait();
  EXPECT_TRUE(c.locked());  // re-acquired before wait() returns
  log.push_back(id);
}

TEST(Condition, WaitWithoutTheLockRaisesRuntimeError) {
  run_v([]() -> Coro<void> {
    Condition c;
    EXPECT_THROW(co_await c.wait(), asyncio::RuntimeError);
  }());
}

TEST(Condition, NotifyWithoutTheLockRaisesRuntimeError) {
  Condition c;
  EXPECT_THROW(c.notify(), asyncio::RuntimeError);
  EXPECT_THROW(c.notify_all(), asyncio::RuntimeError);
}

TEST(Condition, NotifyWakesWaitersOneAtATimeInOrder) {
  run_v([]() -> Coro<void> {
    Condition c;
    std::vector<int> log;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 3; ++i) tasks.push_back(asyncio::create_task(cond_waiter(c, log, i)));
    co_await spin();
    EXPECT_EQ(c.waiters(), 3u);
    for (int round = 1; round <= 3; ++round) {
      {
        auto held = co_await c.scoped();
        c.notify(1);
      }
      co_await spin();
      EXPECT_EQ(log.size(), static_cast<std::size_t>(round));
    }
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));
  }());
}

TEST(Condition, NotifyAllWakesEveryWaiter) {
  run_v([]() -> Coro<void> {
    Condition c;
    std::vector<int> log;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 4; ++i) tasks.push_back(asyncio::create_task(cond_waiter(c, log, i)));
    co_await spin();
    {
      auto held = co_await c.scoped();
      c.notify_all();
    }
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(log, (std::vector<int>{0, 1, 2, 3}));
  }());
}

TEST(Condition, WaitForReturnsThePredicateValue) {
  run_v([]() -> Coro<void> {
    Condition c;
    int value = 0;
    auto waiter = asyncio::create_task([](Condition& cond, int& v) -> Coro<int> {
      auto held = co_await cond.scoped();
      co_return co_await cond.wait_for([&v] { return v >= 3 ? v * 10 : 0; });
    }(c, value));
    for (int i = 1; i <= 3; ++i) {
      co_await spin();
      auto held = co_await c.scoped();
      value = i;
      c.notify_all();
    }
    EXPECT_EQ(co_await waiter, 30);
  }());
}

TEST(Condition, CancelledWaitReacquiresTheLockBeforeRaising) {
  run_v([]() -> Coro<void> {
    Condition c;
    bool locked_when_cancelled = false;
    auto waiter = asyncio::create_task([](Condition& cond, bool& locked) -> Coro<void> {
      auto held = co_await cond.scoped();
      try {
        co_await cond.wait();
      } catch (const CancelledError&) {
        locked = cond.locked();
        throw;
      }
    }(c, locked_when_cancelled));
    co_await spin();
    co_await c.acquire();  // hold the lock while the waiter is cancelled
    waiter.cancel();
    co_await spin();
    EXPECT_FALSE(waiter.done());  // still waiting for the lock, not raising yet
    c.release();
    EXPECT_TRUE(co_await ends_cancelled(waiter));
    EXPECT_TRUE(locked_when_cancelled);
    EXPECT_FALSE(c.locked());  // and the guard released it on the way out
  }());
}

TEST(Condition, CancelledAgainWhileReacquiringStillReacquires) {
  run_v([]() -> Coro<void> {
    Condition c;
    bool locked_when_cancelled = false;
    auto waiter = asyncio::create_task([](Condition& cond, bool& locked) -> Coro<void> {
      auto held = co_await cond.scoped();
      try {
        co_await cond.wait();
      } catch (const CancelledError&) {
        locked = cond.locked();
        throw;
      }
    }(c, locked_when_cancelled));
    co_await spin();
    co_await c.acquire();
    waiter.cancel();
    co_await spin();
    waiter.cancel();  // cancelled again while queued for the lock
    co_await spin();
    EXPECT_FALSE(waiter.done());
    c.release();
    EXPECT_TRUE(co_await ends_cancelled(waiter));
    EXPECT_TRUE(locked_when_cancelled);
  }());
}

TEST(Condition, NotifiedWaiterCancelledBeforeRunningPassesTheNotificationOn) {
  run_v([]() -> Coro<void> {
    Condition c;
    std::vector<int> log;
    auto a = asyncio::create_task(cond_waiter(c, log, 1));
    auto b = asyncio::create_task(cond_waiter(c, log, 2));
    co_await spin();
    {
      auto held = co_await c.scoped();
      c.notify(1);  // a is notified...
      a.cancel();   // ...and cancelled before it runs
    }
    EXPECT_TRUE(co_await ends_cancelled(a));
    co_await b;  // b got the notification a could not use
    EXPECT_EQ(log, (std::vector<int>{2}));
  }());
}

TEST(Condition, SharesAnExistingLock) {
  run_v([]() -> Coro<void> {
    Lock lock;
    Condition c(lock);
    co_await lock.acquire();
    EXPECT_TRUE(c.locked());
    c.release();
    EXPECT_FALSE(lock.locked());
  }());
}

// ---- Semaphore -------------------------------------------------------------------------------------

Coro<void> sem_and_log(Semaphore& s, std::vector<int>& log, int id) {
  co_await s.acquire();
  log.push_back(id);
}

TEST(Semaphore, NegativeInitialValueRaisesValueError) {
  EXPECT_THROW(Semaphore(-1), asyncio::ValueError);
  EXPECT_THROW(BoundedSemaphore(-1), asyncio::ValueError);
}

TEST(Semaphore, AcquireCountsDownAndLocksAtZero) {
  run_v([]() -> Coro<void> {
    Semaphore s(2);
    EXPECT_FALSE(s.locked());
    co_await s.acquire();
    EXPECT_EQ(s.value(), 1u);
    co_await s.acquire();
    EXPECT_TRUE(s.locked());
    s.release();
    s.release();
    EXPECT_EQ(s.value(), 2u);
  }());
}

TEST(Semaphore, WaitersAreServedInArrivalOrder) {
  run_v([]() -> Coro<void> {
    Semaphore s(0);
    std::vector<int> log;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 4; ++i) tasks.push_back(asyncio::create_task(sem_and_log(s, log, i)));
    co_await spin();
    for (int i = 0; i < 4; ++i) s.release();
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(log, (std::vector<int>{0, 1, 2, 3}));
  }());
}

TEST(Semaphore, ReleasedUnitGoesToTheWaiterNotToANewcomer) {
  run_v([]() -> Coro<void> {
    Semaphore s(0);
    std::vector<int> log;
    auto waiter = asyncio::create_task(sem_and_log(s, log, 1));
    co_await spin();
    s.release();
    EXPECT_TRUE(s.locked());  // the unit is already the waiter's
    auto newcomer = asyncio::create_task(sem_and_log(s, log, 2));
    co_await waiter;
    co_await spin();
    EXPECT_FALSE(newcomer.done());
    s.release();
    co_await newcomer;
    EXPECT_EQ(log, (std::vector<int>{1, 2}));
  }());
}

// CPython 3.12+: a free unit does not let a newcomer overtake a waiter that was woken but has
// not run yet; locked() says so, and the newcomer gets its unit once that waiter has run.
TEST(Semaphore, NewcomerQueuesBehindAWokenWaiterEvenWithAFreeUnit) {
  run_v([]() -> Coro<void> {
    Semaphore s(0);
    std::vector<int> log;
    auto woken = asyncio::create_task(sem_and_log(s, log, 1));
    co_await spin();
    s.release();  // handed to `woken`, which has not run yet
    s.release();  // a free unit
    EXPECT_EQ(s.value(), 1u);
    EXPECT_TRUE(s.locked());
    auto newcomer = asyncio::create_task(sem_and_log(s, log, 2));
    co_await woken;
    co_await newcomer;
    EXPECT_EQ(log, (std::vector<int>{1, 2}));
    EXPECT_EQ(s.value(), 0u);
  }());
}

TEST(Semaphore, BoundedSemaphoreKeepsTheSameOrderWithWokenWaiters) {
  run_v([]() -> Coro<void> {
    BoundedSemaphore s(2);
    co_await s.acquire();
    co_await s.acquire();
    std::vector<int> log;
    auto woken = asyncio::create_task(sem_and_log(s, log, 1));
    co_await spin();
    s.release();
    s.release();
    EXPECT_TRUE(s.locked());
    // Not from a task: acquire() must queue, so its await_ready refuses the free unit.
    EXPECT_FALSE(s.acquire().await_ready());
    auto newcomer = asyncio::create_task(sem_and_log(s, log, 2));
    co_await woken;
    co_await newcomer;
    EXPECT_EQ(log, (std::vector<int>{1, 2}));
    EXPECT_EQ(s.value(), 0u);  // both units held again: the bound still counts right
    s.release();
    s.release();
    EXPECT_THROW(s.release(), asyncio::ValueError);
  }());
}

TEST(Semaphore, WaiterCancelledAfterBeingWokenPassesTheUnitOn) {
  run_v([]() -> Coro<void> {
    Semaphore s(0);
    std::vector<int> log;
    auto a = asyncio::create_task(sem_and_log(s, log, 1));
    auto b = asyncio::create_task(sem_and_log(s, log, 2));
    co_await spin();
    s.release();
    a.cancel();
    EXPECT_TRUE(co_await ends_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (std::vector<int>{2}));
    EXPECT_EQ(s.value(), 0u);
  }());
}

TEST(Semaphore, WaiterCancelledAfterBeingWokenGivesTheUnitBack) {
  run_v([]() -> Coro<void> {
    Semaphore s(0);
    std::vector<int> log;
    auto a = asyncio::create_task(sem_and_log(s, log, 1));
    co_await spin();
    s.release();
    a.cancel();
    EXPECT_TRUE(co_await ends_cancelled(a));
    EXPECT_EQ(s.value(), 1u);
    EXPECT_FALSE(s.locked());
  }());
}

TEST(Semaphore, PlainSemaphoreMayBeReleasedAboveItsInitialValue) {
  Semaphore s(1);
  s.release();
  EXPECT_EQ(s.value(), 2u);
}

TEST(Semaphore, BoundedSemaphoreOverReleaseRaisesValueError) {
  run_v([]() -> Coro<void> {
    BoundedSemaphore s(2);
    EXPECT_THROW(s.release(), asyncio::ValueError);
    co_await s.acquire();
    s.release();
    EXPECT_THROW(s.release(), asyncio::ValueError);
    EXPECT_EQ(s.value(), 2u);
  }());
}

TEST(Semaphore, LimitsConcurrency) {
  run_v([]() -> Coro<void> {
    Semaphore s(3);
    int inside = 0, max_inside = 0;
    auto worker = [](Semaphore& sem, int& in, int& mx, int i) -> Coro<void> {
      auto held = co_await sem.scoped();
      mx = std::max(mx, ++in);
      co_await asyncio::sleep(0.01 * (i % 4 + 1));
      --in;
    };
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 12; ++i) tasks.push_back(asyncio::create_task(worker(s, inside, max_inside, i)));
    for (auto& t : tasks) co_await t;
    EXPECT_EQ(max_inside, 3);
    EXPECT_EQ(s.value(), 3u);
  }());
}

// ---- Barrier ---------------------------------------------------------------------------------------

Coro<std::size_t> barrier_party(Barrier& b, std::vector<int>& log, int id) {
  std::size_t index = co_await b.wait();
  log.push_back(id);
  co_return index;
}

TEST(Barrier, ZeroPartiesRaisesValueError) { EXPECT_THROW(Barrier(0), asyncio::ValueError); }

TEST(Barrier, PartiesPassTogetherWithTheirArrivalIndices) {
  run_v([]() -> Coro<void> {
    Barrier b(3);
    std::vector<int> log;
    auto p0 = asyncio::create_task(barrier_party(b, log, 0));
    auto p1 = asyncio::create_task(barrier_party(b, log, 1));
    co_await spin();
    EXPECT_EQ(b.n_waiting(), 2u);
    EXPECT_TRUE(log.empty());
    auto p2 = asyncio::create_task(barrier_party(b, log, 2));
    EXPECT_EQ(co_await p0, 0u);
    EXPECT_EQ(co_await p1, 1u);
    EXPECT_EQ(co_await p2, 2u);
    EXPECT_EQ(log.size(), 3u);
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_FALSE(b.broken());
  }());
}

TEST(Barrier, IsReusableRoundAfterRound) {
  run_v([]() -> Coro<void> {
    Barrier b(2);
    std::vector<int> log;
    for (int round = 0; round < 3; ++round) {
      auto a = asyncio::create_task(barrier_party(b, log, 0));
      auto c = asyncio::create_task(barrier_party(b, log, 1));
      std::size_t ia = co_await a, ic = co_await c;
      EXPECT_EQ(ia + ic, 1u);
    }
    EXPECT_EQ(log.size(), 6u);
  }());
}

TEST(Barrier, AbortBreaksWaitingAndFutureParties) {
  run_v([]() -> Coro<void> {
    Barrier b(3);
    std::vector<int> log;
    auto a = asyncio::create_task(barrier_party(b, log, 0));
    auto c = asyncio::create_task(barrier_party(b, log, 1));
    co_await spin();
    co_await b.abort();
    EXPECT_THROW(co_await a, BrokenBarrierError);
    EXPECT_THROW(co_await c, BrokenBarrierError);
    EXPECT_TRUE(b.broken());
    EXPECT_THROW(co_await b.wait(), BrokenBarrierError);
  }());
}

TEST(Barrier, ResetBreaksCurrentWaitersThenFillsAgain) {
  run_v([]() -> Coro<void> {
    Barrier b(3);
    std::vector<int> log;
    auto a = asyncio::create_task(barrier_party(b, log, 0));
    auto c = asyncio::create_task(barrier_party(b, log, 1));
    co_await spin();
    co_await b.reset();
    EXPECT_THROW(co_await a, BrokenBarrierError);
    EXPECT_THROW(co_await c, BrokenBarrierError);
    EXPECT_FALSE(b.broken());
    std::vector<Task<std::size_t>> round;
    for (int i = 0; i < 3; ++i) round.push_back(asyncio::create_task(barrier_party(b, log, 10 + i)));
    std::size_t sum = 0;
    for (auto& t : round) sum += co_await t;
    EXPECT_EQ(sum, 0u + 1u + 2u);
  }());
}

TEST(Barrier, ResetOfABrokenBarrierMakesItUsableAgain) {
  run_v([]() -> Coro<void> {
    Barrier b(1);
    co_await b.abort();
    EXPECT_TRUE(b.broken());
    co_await b.reset();
    EXPECT_FALSE(b.broken());
    EXPECT_EQ(co_await b.wait(), 0u);
  }());
}

TEST(Barrier, CancelledPartyLeavesAndAnotherTakesItsPlace) {
  run_v([]() -> Coro<void> {
    Barrier b(3);
    std::vector<int> log;
    auto a = asyncio::create_task(barrier_party(b, log, 0));
    auto c = asyncio::create_task(barrier_party(b, log, 1));
    co_await spin();
    EXPECT_EQ(b.n_waiting(), 2u);
    c.cancel();
    EXPECT_TRUE(co_await ends_cancelled(c));
    EXPECT_EQ(b.n_waiting(), 1u);  // the cancelled party no longer counts
    EXPECT_FALSE(a.done());
    auto d = asyncio::create_task(barrier_party(b, log, 2));
    co_await spin();
    EXPECT_FALSE(a.done());  // two of three: still filling
    auto e = asyncio::create_task(barrier_party(b, log, 3));
    EXPECT_EQ(co_await a, 0u);
    EXPECT_EQ(co_await d, 1u);  // took the index the cancelled party had
    EXPECT_EQ(co_await e, 2u);
    EXPECT_FALSE(b.broken());
  }());
}

TEST(Barrier, PartyCancelledWhileDrainingStillLetsTheOthersPass) {
  run_v([]() -> Coro<void> {
    Barrier b(2);
    std::vector<int> log;
    auto a = asyncio::create_task(barrier_party(b, log, 0));
    co_await spin();
    auto c = asyncio::create_task(barrier_party(b, log, 1));
    co_await asyncio::sleep(0);  // c arrives and releases the barrier; a is notified
    a.cancel();
    bool a_cancelled = co_await ends_cancelled(a);
    EXPECT_TRUE(a_cancelled);
    EXPECT_EQ(co_await c, 1u);
    // The barrier is filling again and works for the next round.
    auto x = asyncio::create_task(barrier_party(b, log, 2));
    auto y = asyncio::create_task(barrier_party(b, log, 3));
    std::size_t ix = co_await x, iy = co_await y;
    EXPECT_EQ(ix + iy, 1u);
  }());
}

// ---- conformance: behaviours CPython's test_locks checks ------------------------------------------

// ConditionTests.test_timeout_in_block: a wait cut short by a timeout still holds the lock after.
TEST(Condition, WaitCutShortByATimeoutStillHoldsTheLock) {
  run_v([]() -> Coro<void> {
    asyncio::Condition c;
    auto held = co_await c.scoped();
    EXPECT_THROW(co_await asyncio::wait_for(c.wait(), 0.5), asyncio::TimeoutError);
    EXPECT_TRUE(c.locked());
    EXPECT_EQ(c.waiters(), 0u);
  }());
}

// SemaphoreTests.test_acquire_hang: a waiter cancelled after a release does not leave the next one stuck.
TEST(Semaphore, ReleaseThenCancelOfTheWokenWaiterDoesNotHangTheNext) {
  run_v([]() -> Coro<void> {
    Semaphore s(0);
    std::vector<int> log;
    auto a = asyncio::create_task(sem_and_log(s, log, 1));
    auto b = asyncio::create_task(sem_and_log(s, log, 2));
    co_await spin();
    s.release();
    s.release();
    a.cancel();
    co_await asyncio::sleep(0);
    co_await asyncio::wait_for(b, 1.0);
    EXPECT_TRUE(a.cancelled());
    EXPECT_EQ(log, (std::vector<int>{2}));
    EXPECT_EQ(s.value(), 1u);  // a's unit came back
  }());
}

}  // namespace
