// SPDX-License-Identifier: MIT
// Queue, LifoQueue, PriorityQueue: Python's semantics (CPython test_queues.py corner cases,
// Python 3.13's shutdown), fairness, cancellation races, move-only items, and the steady state
// that allocates nothing.
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include "test_support.hpp"

#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "alloc_counter.hpp"

using testing_support::g_allocations;

namespace {

using asyncio::CancelledError;
using asyncio::Coro;
using asyncio::LifoQueue;
using asyncio::PriorityQueue;
using asyncio::Queue;
using asyncio::QueueEmpty;
using asyncio::QueueFull;
using asyncio::QueueShutDown;
using asyncio::Task;

using testing_support::ends_cancelled;
using testing_support::spin;

/// Runs `c` on the virtual clock; a lost wake-up fails with TimeoutError instead of hanging.
template <class T>
T run_v(Coro<T> c) {
  return testing_support::run_guarded_v(std::move(c));
}

template <class T>
Coro<bool> ends_shut_down(Task<T> t) {
  try {
    co_await t;
  } catch (const QueueShutDown&) {
    co_return true;
  }
  co_return false;
}

template <class Q>
Coro<typename Q::value_type> getter(Q& q) {
  co_return co_await q.get();
}

template <class Q>
Coro<void> putter(Q& q, typename Q::value_type v) {
  co_await q.put(std::move(v));
}

// ---- basics ----------------------------------------------------------------------------------------

TEST(Queue, NowaitCallsAreFirstInFirstOut) {
  Queue<int> q;
  for (int i = 0; i < 5; ++i) q.put_nowait(i);
  EXPECT_EQ(q.qsize(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(q.get_nowait(), i);
  EXPECT_TRUE(q.empty());
}

TEST(Queue, GetNowaitOnEmptyRaisesQueueEmpty) {
  Queue<int> q;
  EXPECT_THROW(q.get_nowait(), QueueEmpty);
}

TEST(Queue, PutNowaitOnFullRaisesQueueFull) {
  Queue<int> q(2);
  q.put_nowait(1);
  q.put_nowait(2);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), QueueFull);
  EXPECT_EQ(q.qsize(), 2u);
}

TEST(Queue, NegativeMaxsizeIsUnboundedAsInPython) {
  Queue<int> q(-1);
  EXPECT_EQ(q.maxsize(), -1);
  for (int i = 0; i < 1000; ++i) q.put_nowait(i);
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.qsize(), 1000u);
  asyncio::LifoQueue<int> lifo(-5);
  lifo.put_nowait(1);
  lifo.put_nowait(2);
  EXPECT_FALSE(lifo.full());
}

TEST(Queue, MaxsizeZeroIsUnbounded) {
  Queue<int> q;
  EXPECT_EQ(q.maxsize(), 0);
  for (int i = 0; i < 10000; ++i) q.put_nowait(i);
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.qsize(), 10000u);
}

TEST(Queue, RingGrowsAcrossTheWrapAroundKeepingOrder) {
  Queue<int> q;
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; ++round) {  // interleave so head wraps before each growth
    for (int i = 0; i < 7; ++i) q.put_nowait(next_in++);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(q.get_nowait(), next_out++);
  }
  while (!q.empty()) EXPECT_EQ(q.get_nowait(), next_out++);
  EXPECT_EQ(next_in, next_out);
}

TEST(Queue, GetWaitsForAPut) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    auto g = asyncio::create_task(getter(q));
    co_await spin();
    EXPECT_FALSE(g.done());
    co_await q.put(42);
    EXPECT_EQ(co_await g, 42);
  }());
}

TEST(Queue, PutWaitsForAFreeSlot) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    co_await q.put(1);
    auto p = asyncio::create_task(putter(q, 2));
    co_await spin();
    EXPECT_FALSE(p.done());
    EXPECT_EQ(co_await q.get(), 1);
    co_await p;
    EXPECT_EQ(q.get_nowait(), 2);
  }());
}

TEST(Queue, GettersAreServedInArrivalOrder) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    std::vector<Task<int>> gs;
    for (int i = 0; i < 4; ++i) gs.push_back(asyncio::create_task(getter(q)));
    co_await spin();
    for (int i = 0; i < 4; ++i) q.put_nowait(i * 10);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(co_await gs[i], i * 10);
  }());
}

TEST(Queue, PuttersAreServedInArrivalOrder) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(0);
    std::vector<Task<void>> ps;
    for (int i = 1; i <= 4; ++i) ps.push_back(asyncio::create_task(putter(q, i)));
    co_await spin();
    for (int i = 0; i <= 4; ++i) EXPECT_EQ(co_await q.get(), i);
    for (auto& p : ps) co_await p;
  }());
}

TEST(Queue, AnItemHandedToAWaitingGetterCannotBeTakenByGetNowait) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    auto g = asyncio::create_task(getter(q));
    co_await spin();
    q.put_nowait(7);  // goes straight to the waiting getter
    EXPECT_TRUE(q.empty());
    EXPECT_THROW(q.get_nowait(), QueueEmpty);
    EXPECT_EQ(co_await g, 7);
  }());
}

TEST(Queue, AFreedSlotGoesToTheWaitingPutterNotToPutNowait) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(1);
    auto p = asyncio::create_task(putter(q, 2));
    co_await spin();
    EXPECT_EQ(q.get_nowait(), 1);  // the slot is reserved for p at once
    EXPECT_TRUE(q.full());
    EXPECT_THROW(q.put_nowait(3), QueueFull);
    co_await p;
    EXPECT_EQ(q.get_nowait(), 2);
  }());
}

TEST(Queue, HandedItemKeepsItsSlotUntilTheGetterRuns) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    auto g = asyncio::create_task(getter(q));
    co_await spin();
    q.put_nowait(1);
    EXPECT_TRUE(q.full());  // as in Python: the item is still "in" the queue until taken
    EXPECT_EQ(co_await g, 1);
    EXPECT_FALSE(q.full());
  }());
}

// ---- cancellation ----------------------------------------------------------------------------------

TEST(Queue, CancelledGetterLeavesTheQueue) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    auto a = asyncio::create_task(getter(q));
    auto b = asyncio::create_task(getter(q));
    co_await spin();
    a.cancel();
    co_await spin();
    q.put_nowait(5);
    EXPECT_TRUE(co_await ends_cancelled(a));
    EXPECT_EQ(co_await b, 5);
  }());
}

TEST(Queue, GetterCancelledAfterAnItemWasHandedToItPassesItToTheNextGetter) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    auto a = asyncio::create_task(getter(q));
    auto b = asyncio::create_task(getter(q));
    co_await spin();
    q.put_nowait(5);  // handed to a
    a.cancel();       // before a runs
    EXPECT_TRUE(co_await ends_cancelled(a));
    EXPECT_EQ(co_await b, 5);  // not lost
    EXPECT_TRUE(q.empty());
  }());
}

TEST(Queue, GetterCancelledAfterAnItemWasHandedToItPutsItBackInFront) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    auto a = asyncio::create_task(getter(q));
    co_await spin();
    q.put_nowait(1);  // handed to a
    q.put_nowait(2);  // queued
    a.cancel();
    EXPECT_TRUE(co_await ends_cancelled(a));
    EXPECT_EQ(q.qsize(), 2u);
    EXPECT_EQ(q.get_nowait(), 1);  // back at the front: order kept
    EXPECT_EQ(q.get_nowait(), 2);
  }());
}

TEST(Queue, ReturnedItemDoesNotOverfillABoundedQueue) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    auto a = asyncio::create_task(getter(q));
    co_await spin();
    q.put_nowait(1);
    EXPECT_THROW(q.put_nowait(2), QueueFull);  // the handed item holds the only slot
    a.cancel();
    EXPECT_TRUE(co_await ends_cancelled(a));
    EXPECT_EQ(q.qsize(), 1u);
    EXPECT_TRUE(q.full());
  }());
}

TEST(Queue, CancelledPutterDoesNotPutItsItem) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(1);
    auto p = asyncio::create_task(putter(q, 2));
    co_await spin();
    p.cancel();
    EXPECT_TRUE(co_await ends_cancelled(p));
    EXPECT_EQ(q.get_nowait(), 1);
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.full());
  }());
}

TEST(Queue, PutterCancelledAfterASlotWasReservedPassesTheSlotOn) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(0);
    auto p1 = asyncio::create_task(putter(q, 1));
    auto p2 = asyncio::create_task(putter(q, 2));
    co_await spin();
    EXPECT_EQ(q.get_nowait(), 0);  // slot reserved for p1
    p1.cancel();                   // p1 never runs: its slot goes to p2
    EXPECT_TRUE(co_await ends_cancelled(p1));
    co_await p2;
    EXPECT_EQ(q.get_nowait(), 2);
    EXPECT_TRUE(q.empty());
  }());
}

// ---- move-only items -------------------------------------------------------------------------------

TEST(Queue, MoveOnlyItemsThroughEveryPath) {
  run_v([]() -> Coro<void> {
    Queue<std::unique_ptr<int>> q(1);
    q.put_nowait(std::make_unique<int>(1));                       // stored
    auto p = asyncio::create_task(putter(q, std::make_unique<int>(2)));  // waits
    co_await spin();
    EXPECT_EQ(*q.get_nowait(), 1);
    co_await p;
    EXPECT_EQ(*co_await q.get(), 2);
    auto a = asyncio::create_task(getter(q));
    auto b = asyncio::create_task(getter(q));
    co_await spin();
    q.put_nowait(std::make_unique<int>(3));  // handed to a, which is cancelled: b gets it
    a.cancel();
    EXPECT_TRUE(co_await ends_cancelled(a));
    EXPECT_EQ(*co_await b, 3);
  }());
}

TEST(Queue, ItemsLeftInAQueueAreDestroyedWithIt) {
  auto shared = std::make_shared<int>(0);
  {
    Queue<std::shared_ptr<int>> q;
    for (int i = 0; i < 40; ++i) q.put_nowait(shared);
    for (int i = 0; i < 10; ++i) q.get_nowait();
    EXPECT_EQ(shared.use_count(), 31);
  }
  EXPECT_EQ(shared.use_count(), 1);
}

// ---- task_done / join ------------------------------------------------------------------------------

TEST(Queue, JoinWaitsUntilEveryItemIsMarkedDone) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    for (int i = 0; i < 3; ++i) q.put_nowait(i);
    bool joined = false;
    auto j = asyncio::create_task([](Queue<int>& qq, bool& flag) -> Coro<void> {
      co_await qq.join();
      flag = true;
    }(q, joined));
    for (int i = 0; i < 3; ++i) {
      co_await q.get();
      co_await spin();
      EXPECT_FALSE(joined);
      q.task_done();
    }
    co_await j;
    EXPECT_TRUE(joined);
  }());
}

TEST(Queue, JoinReturnsAtOnceWithNothingUnfinished) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    co_await q.join();
    q.put_nowait(1);
    q.get_nowait();
    q.task_done();
    co_await q.join();
  }());
}

TEST(Queue, TaskDoneTooManyTimesRaisesValueError) {
  Queue<int> q;
  EXPECT_THROW(q.task_done(), asyncio::ValueError);
  q.put_nowait(1);
  q.task_done();
  EXPECT_THROW(q.task_done(), asyncio::ValueError);
}

// ---- LifoQueue, PriorityQueue ----------------------------------------------------------------------

TEST(LifoQueue, LastInFirstOut) {
  LifoQueue<int> q;
  for (int i = 0; i < 4; ++i) q.put_nowait(i);
  for (int i = 3; i >= 0; --i) EXPECT_EQ(q.get_nowait(), i);
}

TEST(PriorityQueue, SmallestFirstLikeHeapq) {
  PriorityQueue<int> q;
  for (int v : {5, 1, 4, 2, 3}) q.put_nowait(v);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(q.get_nowait(), i);
}

TEST(PriorityQueue, PairsCompareLikePythonTuples) {
  PriorityQueue<std::pair<int, std::string>> q;
  q.put_nowait({2, "b"});
  q.put_nowait({1, "z"});
  q.put_nowait({1, "a"});
  EXPECT_EQ(q.get_nowait().second, "a");
  EXPECT_EQ(q.get_nowait().second, "z");
  EXPECT_EQ(q.get_nowait().second, "b");
}

TEST(PriorityQueue, CustomCompare) {
  PriorityQueue<int, std::greater<int>> q;
  for (int v : {1, 3, 2}) q.put_nowait(v);
  EXPECT_EQ(q.get_nowait(), 3);
  EXPECT_EQ(q.get_nowait(), 2);
}

TEST(PriorityQueue, ItemReturnedByACancelledGetterKeepsItsPriority) {
  run_v([]() -> Coro<void> {
    PriorityQueue<int> q;
    auto a = asyncio::create_task(getter(q));
    co_await spin();
    q.put_nowait(5);  // handed to a
    q.put_nowait(7);
    q.put_nowait(1);
    a.cancel();
    EXPECT_TRUE(co_await ends_cancelled(a));
    EXPECT_EQ(q.get_nowait(), 1);
    EXPECT_EQ(q.get_nowait(), 5);
    EXPECT_EQ(q.get_nowait(), 7);
  }());
}

// ---- shutdown (Python 3.13) ------------------------------------------------------------------------

TEST(QueueShutdown, WakesBlockedGettersWithQueueShutDown) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    auto a = asyncio::create_task(getter(q));
    auto b = asyncio::create_task(getter(q));
    co_await spin();
    q.shutdown();
    EXPECT_TRUE(co_await ends_shut_down(a));
    EXPECT_TRUE(co_await ends_shut_down(b));
  }());
}

TEST(QueueShutdown, WakesBlockedPuttersWithQueueShutDown) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(1);
    auto a = asyncio::create_task(putter(q, 2));
    auto b = asyncio::create_task(putter(q, 3));
    co_await spin();
    q.shutdown();
    EXPECT_TRUE(co_await ends_shut_down(a));
    EXPECT_TRUE(co_await ends_shut_down(b));
    EXPECT_EQ(q.qsize(), 1u);
  }());
}

TEST(QueueShutdown, PutsRaiseAfterShutdown) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    q.shutdown();
    EXPECT_THROW(q.put_nowait(1), QueueShutDown);
    EXPECT_THROW(co_await q.put(1), QueueShutDown);
    EXPECT_TRUE(q.is_shut_down());
  }());
}

TEST(QueueShutdown, GetsDrainWhatIsLeftThenRaise) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    q.put_nowait(1);
    q.put_nowait(2);
    q.shutdown();
    EXPECT_EQ(co_await q.get(), 1);
    EXPECT_EQ(q.get_nowait(), 2);
    EXPECT_THROW(q.get_nowait(), QueueShutDown);
    EXPECT_THROW(co_await q.get(), QueueShutDown);
  }());
}

TEST(QueueShutdown, ImmediateDropsItemsAndReleasesJoin) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    q.put_nowait(1);
    q.put_nowait(2);
    auto j = asyncio::create_task([](Queue<int>& qq) -> Coro<void> { co_await qq.join(); }(q));
    co_await spin();
    EXPECT_FALSE(j.done());
    q.shutdown(true);
    EXPECT_TRUE(q.empty());
    co_await j;  // each dropped item counted as done
    EXPECT_THROW(co_await q.get(), QueueShutDown);
  }());
}

TEST(QueueShutdown, ImmediateTakesBackAnItemHandedToAGetterThatHasNotRun) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    auto g = asyncio::create_task(getter(q));
    co_await spin();
    q.put_nowait(1);  // handed to g
    q.shutdown(true);
    EXPECT_TRUE(co_await ends_shut_down(g));
    co_await q.join();
  }());
}

TEST(QueueShutdown, NonImmediateLetsAHandedItemReachItsGetter) {
  run_v([]() -> Coro<void> {
    Queue<int> q;
    auto g = asyncio::create_task(getter(q));
    co_await spin();
    q.put_nowait(1);
    q.shutdown();
    EXPECT_EQ(co_await g, 1);
  }());
}

TEST(QueueShutdown, PutterWithAReservedSlotRaisesAndPutsNothing) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    q.put_nowait(0);
    auto p = asyncio::create_task(putter(q, 1));
    co_await spin();
    EXPECT_EQ(q.get_nowait(), 0);  // slot reserved for p
    q.shutdown();
    EXPECT_TRUE(co_await ends_shut_down(p));
    EXPECT_TRUE(q.empty());
  }());
}

// ---- lifetime, steady state ------------------------------------------------------------------------

TEST(Queue, DestroyedWhileTasksWaitOnIt) {
  run_v([]() -> Coro<void> {
    auto q = std::make_unique<Queue<int>>();
    auto g = asyncio::create_task(getter(*q));
    co_await spin();
    q.reset();
    g.cancel();
    EXPECT_TRUE(co_await ends_cancelled(g));
  }());
}

Coro<void> produce(Queue<long>& q, long n) {
  for (long i = 0; i < n; ++i) co_await q.put(i);
}

Coro<void> consume(Queue<long>& q, long n, long warmup, long& sum, std::size_t& allocs_in_steady_state) {
  std::size_t at_warmup = 0;
  for (long i = 0; i < n; ++i) {
    if (i == warmup) at_warmup = g_allocations.load();
    sum += co_await q.get();
    q.task_done();
  }
  allocs_in_steady_state = g_allocations.load() - at_warmup;
}

TEST(Queue, MillionItemPipelineAllocatesNothingPerItem) {
  std::size_t before = g_allocations.load();
  int* volatile probe = new int(1);  // volatile: the pair cannot be optimized away
  delete probe;
  ASSERT_GT(g_allocations.load(), before);  // the counter sees allocations
  run_v([]() -> Coro<void> {
    constexpr long n = 1'000'000;
    Queue<long> q(64);
    long sum = 0;
    std::size_t allocs = ~std::size_t{0};
    auto c = asyncio::create_task(consume(q, n, 10'000, sum, allocs));
    auto p = asyncio::create_task(produce(q, n));
    co_await p;
    co_await q.join();
    co_await c;
    EXPECT_EQ(sum, n * (n - 1) / 2);
    EXPECT_EQ(allocs, 0u);
  }());
}

// ---- conformance: behaviours CPython's test_queues checks ------------------------------------------

// QueueGetTests.test_why_are_getters_waiting / QueuePutTests.test_why_are_putters_waiting.
TEST(Queue, ProducerAndConsumerThroughASizeOneQueueBothFinish) {
  run_v([]() -> Coro<void> {
    Queue<int> q(1);
    std::vector<int> got;
    co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> Coro<void> {
      tg.create_task([&]() -> Coro<void> {
        for (int i = 0; i < 5; ++i) co_await q.put(i);
      });
      tg.create_task([&]() -> Coro<void> {
        for (int i = 0; i < 5; ++i) got.push_back(co_await q.get());
      });
      co_return;
    });
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
  }());
}

template <class Q>
Coro<void> join_and_shutdown_work() {
  Q q;
  for (int i : {3, 1, 2}) q.put_nowait(i);
  int sum = 0;
  auto worker = asyncio::create_task([](Q& q, int& sum) -> Coro<void> {
    for (;;) {
      sum += co_await q.get();
      q.task_done();
    }
  }(q, sum));
  co_await asyncio::wait_for(q.join(), 1.0);
  EXPECT_EQ(sum, 6);
  q.shutdown();
  EXPECT_THROW(co_await worker, asyncio::QueueShutDown);  // the blocked get() is woken with it
  EXPECT_THROW(q.put_nowait(1), asyncio::QueueShutDown);
}

// LifoQueueJoinTests / PriorityQueueJoinTests / LifoQueueShutdownTests / PriorityQueueShutdownTests.
TEST(LifoQueue, JoinAndShutdownBehaveAsForQueue) { run_v(join_and_shutdown_work<asyncio::LifoQueue<int>>()); }
TEST(PriorityQueue, JoinAndShutdownBehaveAsForQueue) { run_v(join_and_shutdown_work<asyncio::PriorityQueue<int>>()); }

}  // namespace
