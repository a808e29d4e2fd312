// SPDX-License-Identifier: MIT
// Channel<T>: one loop, loops on several threads, plain threads; close, cancellation at every
// point, no lost or duplicated item, no allocation per item. The suites that cross threads also
// run under ThreadSanitizer (tsan preset).
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

#include "alloc_counter.hpp"

namespace {

using namespace std::chrono_literals;
using asyncio::CancelledError;
using asyncio::Channel;
using asyncio::ChannelClosed;
using asyncio::Coro;
using asyncio::EventLoop;
using asyncio::Task;

/// asyncio::run on the real clock with a watchdog: a lost wake-up fails instead of hanging.
template <class T>
T run_r(Coro<T> c) {
  return asyncio::run(asyncio::wait_for(std::move(c), 60.0));
}

/// A loop running forever on its own thread.
class LoopThread {
 public:
  LoopThread() : loop_(asyncio::new_event_loop()) {
    thread_ = std::thread([this] {
      loop_->call_soon([this] { started_.count_down(); });
      loop_->run_forever();
    });
    started_.wait();
  }
  ~LoopThread() {
    loop_->call_soon_threadsafe([this] { loop_->stop(); });
    thread_.join();
    loop_->close();
  }
  EventLoop& loop() { return *loop_; }
  /// Runs `c` as a task on this loop; the caller may block on the result.
  template <class T>
  asyncio::ConcurrentFuture<T> start(Coro<T> c) {
    return asyncio::run_coroutine_threadsafe(std::move(c), *loop_);
  }

 private:
  std::shared_ptr<EventLoop> loop_;
  std::latch started_{1};
  std::thread thread_;
};

/// One recv / one send as a coroutine of its own, for wait_for (which cancels it on timeout).
Coro<int> recv_one(Channel<int>& c) { co_return co_await c.recv(); }
Coro<void> send_one(Channel<int>& c, int v) { co_await c.send(int{v}); }

/// Yields to the loop a few times (lets woken tasks run).
Coro<void> settle(int n = 5) {
  for (int i = 0; i < n; ++i) co_await asyncio::sleep(0);
}

// ---- one loop --------------------------------------------------------------------------------

TEST(ChannelBasics, ZeroCapacityIsAValueError) { EXPECT_THROW(Channel<int>(0), asyncio::ValueError); }

TEST(ChannelBasics, ItemsComeOutInTheOrderTheyWentIn) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(4);
    for (int i = 0; i < 4; ++i) co_await ch.send(int{i});
    EXPECT_EQ(ch.size(), 4u);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(co_await ch.recv(), i);
  }());
}

TEST(ChannelBasics, SendWaitsWhileFullAndARecvLetsItIn) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(1);
    co_await ch.send(1);
    Task<void> second = asyncio::create_task([](Channel<int>& c) -> Coro<void> { co_await c.send(2); }(ch));
    co_await settle();
    EXPECT_FALSE(second.done());
    EXPECT_EQ(co_await ch.recv(), 1);
    co_await second;
    EXPECT_EQ(co_await ch.recv(), 2);
  }());
}

TEST(ChannelBasics, RecvWaitsForASend) {
  run_r([]() -> Coro<void> {
    Channel<std::string> ch(2);
    Task<std::string> r = asyncio::create_task([](Channel<std::string>& c) -> Coro<std::string> { co_return co_await c.recv(); }(ch));
    co_await settle();
    EXPECT_FALSE(r.done());
    co_await ch.send("hello");
    EXPECT_EQ(co_await r, "hello");
  }());
}

TEST(ChannelBasics, MoveOnlyItems) {
  run_r([]() -> Coro<void> {
    Channel<std::unique_ptr<int>> ch(2);
    co_await ch.send(std::make_unique<int>(7));
    auto p = std::make_unique<int>(8);
    EXPECT_TRUE(ch.try_send(p));
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(*co_await ch.recv(), 7);
    EXPECT_EQ(*ch.try_recv().value(), 8);
  }());
}

TEST(ChannelBasics, TrySendAndTryRecvNeverWait) {
  Channel<int> ch(1);
  EXPECT_FALSE(ch.try_recv().has_value());
  EXPECT_TRUE(ch.try_send(1));
  int two = 2;
  EXPECT_FALSE(ch.try_send(two));
  EXPECT_EQ(two, 2);  // untouched when not sent
  EXPECT_EQ(ch.try_recv(), 1);
}

TEST(ChannelBasics, WaitingReceiversAreServedInArrivalOrder) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(4);
    std::vector<int> order;
    auto take = [](Channel<int>& c, std::vector<int>& o, int who) -> Coro<void> {
      co_await c.recv();
      o.push_back(who);
    };
    std::vector<Task<void>> ts;
    for (int i = 0; i < 3; ++i) {
      ts.push_back(asyncio::create_task(take(ch, order, i)));
      co_await settle(1);
    }
    for (int i = 0; i < 3; ++i) co_await ch.send(int{i});
    for (auto& t : ts) co_await t;
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  }());
}

// ---- close -------------------------------------------------------------------------------------

TEST(ChannelClose, ReceiversDrainWhatIsLeftThenGetChannelClosed) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(4);
    co_await ch.send(1);
    co_await ch.send(2);
    ch.close();
    EXPECT_TRUE(ch.is_closed());
    EXPECT_EQ(co_await ch.recv(), 1);
    EXPECT_EQ(ch.try_recv(), 2);
    EXPECT_THROW(co_await ch.recv(), ChannelClosed);
    EXPECT_THROW(ch.try_recv(), ChannelClosed);
    EXPECT_THROW(ch.recv_blocking(0.0), ChannelClosed);
  }());
}

TEST(ChannelClose, SendingOnAClosedChannelRaises) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(4);
    ch.close();
    ch.close();  // idempotent
    EXPECT_THROW(co_await ch.send(1), ChannelClosed);
    EXPECT_THROW(ch.try_send(1), ChannelClosed);
    EXPECT_THROW(ch.send_blocking(1), ChannelClosed);
  }());
}

TEST(ChannelClose, WakesWaitingReceiversAndSendersOfTheLoop) {
  run_r([]() -> Coro<void> {
    Channel<int> empty(1), full(1);
    co_await full.send(0);
    auto recv_ends = [](Channel<int>& c) -> Coro<bool> {
      try {
        co_await c.recv();
      } catch (const ChannelClosed&) {
        co_return true;
      }
      co_return false;
    };
    auto send_ends = [](Channel<int>& c) -> Coro<bool> {
      try {
        co_await c.send(1);
      } catch (const ChannelClosed&) {
        co_return true;
      }
      co_return false;
    };
    Task<bool> r = asyncio::create_task(recv_ends(empty));
    Task<bool> s = asyncio::create_task(send_ends(full));
    co_await settle();
    empty.close();
    full.close();
    EXPECT_TRUE(co_await r);
    EXPECT_TRUE(co_await s);
    EXPECT_EQ(full.try_recv(), 0);  // the item sent before the close stays; the waiting one never came
    EXPECT_THROW(full.try_recv(), ChannelClosed);
  }());
}

TEST(ChannelClose, WakesBlockedThreads) {
  Channel<int> empty(1), full(1);
  full.try_send(0);
  std::atomic<int> closed{0};
  std::thread r([&] {
    try {
      empty.recv_blocking();
    } catch (const ChannelClosed&) {
      ++closed;
    }
  });
  std::thread s([&] {
    try {
      full.send_blocking(1);
    } catch (const ChannelClosed&) {
      ++closed;
    }
  });
  std::this_thread::sleep_for(20ms);
  empty.close();
  full.close();
  r.join();
  s.join();
  EXPECT_EQ(closed.load(), 2);
}

// ---- blocking calls and timeouts --------------------------------------------------------------

TEST(ChannelBlocking, RecvTimesOutWithTimeoutError) {
  Channel<int> ch(1);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(ch.recv_blocking(0.05), asyncio::TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 40ms);
  EXPECT_THROW(ch.recv_blocking(0.0), asyncio::TimeoutError);
}

TEST(ChannelBlocking, SendTimesOutAndSendsNothing) {
  Channel<int> ch(1);
  ch.send_blocking(1);
  EXPECT_THROW(ch.send_blocking(2, 0.02), asyncio::TimeoutError);
  EXPECT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch.recv_blocking(0.0), 1);
  EXPECT_THROW(ch.recv_blocking(0.0), asyncio::TimeoutError);
}

TEST(ChannelBlocking, NanTimeoutIsAValueError) {
  Channel<int> ch(1);
  EXPECT_THROW(ch.recv_blocking(std::nan("")), asyncio::ValueError);
}

TEST(ChannelBlocking, AThreadAndALoopTalk) {
  LoopThread lt;
  Channel<int> to_loop(2), from_loop(2);
  auto echo = lt.start([](Channel<int>& in, Channel<int>& out) -> Coro<int> {
    int n = 0;
    try {
      for (;;) {
        int v = co_await in.recv();
        co_await out.send(v * 10);
        ++n;
      }
    } catch (const ChannelClosed&) {
    }
    co_return n;
  }(to_loop, from_loop));
  for (int i = 0; i < 1000; ++i) {
    to_loop.send_blocking(int{i}, 10.0);
    EXPECT_EQ(from_loop.recv_blocking(10.0), i * 10);
  }
  to_loop.close();
  EXPECT_EQ(echo.result(10.0), 1000);
}

// ---- cancellation ---------------------------------------------------------------------------

TEST(ChannelCancel, CancelledWaitingRecvTakesNothing) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(1);
    Task<int> r = asyncio::create_task([](Channel<int>& c) -> Coro<int> { co_return co_await c.recv(); }(ch));
    co_await settle();
    r.cancel();
    EXPECT_THROW(co_await r, CancelledError);
    co_await ch.send(5);
    EXPECT_EQ(ch.try_recv(), 5);
  }());
}

TEST(ChannelCancel, CancelledWaitingSendSendsNothing) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(1);
    co_await ch.send(1);
    Task<void> s = asyncio::create_task([](Channel<int>& c) -> Coro<void> { co_await c.send(2); }(ch));
    co_await settle();
    s.cancel();
    EXPECT_THROW(co_await s, CancelledError);
    EXPECT_EQ(co_await ch.recv(), 1);
    EXPECT_FALSE(ch.try_recv().has_value());
  }());
}

TEST(ChannelCancel, RecvCancelledAfterAnItemWasHandedToItGivesItBack) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(2);
    Task<int> first = asyncio::create_task([](Channel<int>& c) -> Coro<int> { co_return co_await c.recv(); }(ch));
    Task<int> second = asyncio::create_task([](Channel<int>& c) -> Coro<int> { co_return co_await c.recv(); }(ch));
    co_await settle();
    co_await ch.send(42);  // handed to `first`, which has not run yet
    first.cancel();
    EXPECT_THROW(co_await first, CancelledError);
    EXPECT_EQ(co_await second, 42);  // passed on, not lost
  }());
}

TEST(ChannelBasics, AnItemHandedToAReceiverThatHasNotRunCountsAgainstTheCapacity) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(1);
    Task<int> r = asyncio::create_task([](Channel<int>& c) -> Coro<int> { co_return co_await c.recv(); }(ch));
    co_await settle();
    EXPECT_TRUE(ch.try_send(1));   // handed to r, which has not run
    EXPECT_FALSE(ch.try_send(2));  // no room: 1 still counts (the lock-free path too)
    EXPECT_EQ(co_await r, 1);
    EXPECT_TRUE(ch.try_send(2));   // r ran: the room is back
    EXPECT_EQ(ch.try_recv(), 2);
  }());
}

TEST(ChannelCancel, HandedBackItemGoesToTheFrontWhenNoOneWaits) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(2);
    Task<int> r = asyncio::create_task([](Channel<int>& c) -> Coro<int> { co_return co_await c.recv(); }(ch));
    co_await settle();
    co_await ch.send(1);  // handed to r
    co_await ch.send(2);  // fills the other slot: 1 still counts while in flight
    EXPECT_FALSE(ch.try_send(3));
    r.cancel();
    EXPECT_THROW(co_await r, CancelledError);
    EXPECT_EQ(ch.try_recv(), 1);
    EXPECT_EQ(ch.try_recv(), 2);
  }());
}

TEST(ChannelCancel, SendCancelledAfterItsItemWentInHasSentAndIsCancelledAtItsNextAwait) {
  run_r([]() -> Coro<void> {
    Channel<int> ch(1);
    co_await ch.send(1);
    bool a_returned = false;
    Task<void> a = asyncio::create_task([](Channel<int>& c, bool& returned) -> Coro<void> {
      co_await c.send(2);
      returned = true;
      co_await asyncio::sleep(0);  // the cancellation comes here
    }(ch, a_returned));
    Task<void> b = asyncio::create_task([](Channel<int>& c) -> Coro<void> { co_await c.send(3); }(ch));
    co_await settle();
    EXPECT_EQ(co_await ch.recv(), 1);  // the freed slot takes `a`'s item: `a` has sent
    a.cancel();                        // before `a` ran again
    EXPECT_THROW(co_await a, CancelledError);
    EXPECT_TRUE(a_returned);  // its send returned normally
    EXPECT_EQ(co_await ch.recv(), 2);  // so its item is there, once, and before `b`'s
    co_await b;
    EXPECT_EQ(co_await ch.recv(), 3);
    EXPECT_FALSE(ch.try_recv().has_value());
  }());
}

TEST(ChannelCancel, WaitForTimeoutsOnRecvNeverLoseItems) {
  // wait_for cancels the inner task at any point: before or after an item was handed to it.
  LoopThread producer_loop;
  Channel<int> ch(1);
  constexpr int kItems = 2000;
  auto produced = producer_loop.start([](Channel<int>& c) -> Coro<void> {
    for (int i = 0; i < kItems; ++i) co_await c.send(int{i});
    c.close();
  }(ch));
  std::vector<int> got = run_r([](Channel<int>& c) -> Coro<std::vector<int>> {
    std::vector<int> out;
    for (;;) {
      try {
        auto op = recv_one(c);
        out.push_back(co_await asyncio::wait_for(std::move(op), 0.00002));
      } catch (const asyncio::TimeoutError&) {
      } catch (const ChannelClosed&) {
        break;
      }
    }
    co_return out;
  }(ch));
  produced.result(10.0);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kItems));
  for (int i = 0; i < kItems; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i);
}

// ---- many loops and threads -------------------------------------------------------------------

TEST(ChannelThreads, PingPongBetweenTwoLoops) {
  LoopThread a, b;
  Channel<int> ping(1), pong(1);
  constexpr int kRounds = 5000;
  auto ponger = b.start([](Channel<int>& in, Channel<int>& out) -> Coro<void> {
    for (int i = 0; i < kRounds; ++i) co_await out.send(co_await in.recv() + 1);
  }(ping, pong));
  auto pinger = a.start([](Channel<int>& out, Channel<int>& in) -> Coro<int> {
    int v = 0;
    for (int i = 0; i < kRounds; ++i) {
      co_await out.send(int{v});
      v = co_await in.recv();
    }
    co_return v;
  }(ping, pong));
  EXPECT_EQ(pinger.result(60.0), kRounds);
  ponger.result(60.0);
}

// ---- the yield before parking ------------------------------------------------------------------

TEST(ChannelYieldGate, YieldsBeforeEveryParkWhileTheYieldsHelp) {
  asyncio::detail::ChannelYieldGate gate;
  int yields = 0;
  for (int i = 0; i < 200; ++i) {
    if (gate.yield_first()) {
      ++yields;
      gate.learn(true);
    }
  }
  EXPECT_EQ(yields, 200);
}

TEST(ChannelYieldGate, StopsYieldingOnceTheYieldsFindNothing) {
  // Parties on one loop: the look after a yield never finds what it wanted.
  asyncio::detail::ChannelYieldGate gate;
  int yields = 0;
  for (int i = 0; i < 6400; ++i) {
    if (gate.yield_first()) {
      ++yields;
      gate.learn(false);
    }
  }
  // A couple of misses stop it; then one park in 64 tries again: about 100 in all.
  EXPECT_LE(yields, 6400 / 64 + 10);
  EXPECT_GE(yields, 6400 / 64 - 10);  // it keeps trying, to notice a change
}

TEST(ChannelYieldGate, YieldsAgainOnceTheYieldsItTriesHelpAgain) {
  asyncio::detail::ChannelYieldGate gate;
  for (int i = 0; i < 100; ++i)
    if (gate.yield_first()) gate.learn(false);
  // From now on every yield finds what it wanted: the occasional tries bring the gate back.
  int yields_in_last_100 = 0;
  for (int i = 0; i < 5000; ++i) {
    bool yielded = gate.yield_first();
    if (yielded) gate.learn(true);
    if (i >= 4900 && yielded) ++yields_in_last_100;
  }
  EXPECT_EQ(yields_in_last_100, 100);
}

/// CPU time the calling thread has used.
std::chrono::nanoseconds thread_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

TEST(ChannelSpin, ALoopWaitingLongOnAChannelSleepsInsteadOfSpinning) {
  // The loop may poll awake for a post while its channel waits are short; a wait of 300 ms must
  // cost its thread next to no CPU (a loop that kept spinning would burn the whole 300 ms).
  LoopThread a;
  Channel<int> ch(1);
  auto waiter = a.start([](Channel<int>& c) -> Coro<long> {
    for (int i = 0; i < 20; ++i) co_await c.recv();  // quick ones first: the loop learns to spin
    auto before = thread_cpu_time();
    co_await c.recv();
    co_return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(thread_cpu_time() - before).count());
  }(ch));
  for (int i = 0; i < 20; ++i) ch.send_blocking(int{i}, 10.0);
  std::this_thread::sleep_for(300ms);
  ch.send_blocking(99, 10.0);
  EXPECT_LT(waiter.result(60.0), 100);
}

/// Tracks which items arrived, and how often.
struct Tally {
  explicit Tally(int n) : seen(static_cast<std::size_t>(n)) {}
  void add(int v) { seen[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed); }
  /// Every item exactly once.
  void expect_each_once() const {
    int wrong = 0;
    for (auto& s : seen) wrong += s.load() != 1;
    EXPECT_EQ(wrong, 0);
  }
  std::vector<std::atomic<int>> seen;
};

TEST(ChannelThreads, FourLoopsAndFourThreadsCancellingLoseAndDuplicateNothing) {
  // 8 threads: 4 loops, each with producer and consumer tasks that are cancelled at random
  // (through wait_for), and 4 plain threads (2 blocking producers, 2 blocking consumers with
  // timeouts). Every item must arrive exactly once.
  constexpr int kPerProducer = 3000, kLoopProducers = 4, kThreadProducers = 2;
  constexpr int kTotal = kPerProducer * (kLoopProducers + kThreadProducers);
  Channel<int> ch(8);
  Tally tally(kTotal);
  std::atomic<int> producers_left{kLoopProducers + kThreadProducers};
  auto producer_done = [&] {
    if (--producers_left == 0) ch.close();
  };
  LoopThread loops[4];
  std::vector<asyncio::ConcurrentFuture<void>> tasks;
  for (int l = 0; l < 4; ++l) {
    int base = l * kPerProducer;
    tasks.push_back(loops[l].start([](Channel<int>& c, int first, auto done) -> Coro<void> {
      std::mt19937 rng(static_cast<unsigned>(first));
      for (int i = first; i < first + kPerProducer;) {
        try {
          auto op = send_one(c, i);
          co_await asyncio::wait_for(std::move(op), (rng() % 4 == 0) ? 0.00001 : 10.0);
          ++i;  // sent exactly when the send returned
        } catch (const asyncio::TimeoutError&) {
        }
      }
      done();
    }(ch, base, producer_done)));
    tasks.push_back(loops[l].start([](Channel<int>& c, Tally& t, int seed) -> Coro<void> {
      std::mt19937 rng(static_cast<unsigned>(seed));
      for (;;) {
        try {
          auto op = recv_one(c);
          t.add(co_await asyncio::wait_for(std::move(op), (rng() % 4 == 0) ? 0.00001 : 10.0));
        } catch (const asyncio::TimeoutError&) {
        } catch (const ChannelClosed&) {
          co_return;
        }
      }
    }(ch, tally, 100 + l)));
  }
  std::vector<std::thread> threads;
  for (int p = 0; p < kThreadProducers; ++p) {
    threads.emplace_back([&, p] {
      int first = (kLoopProducers + p) * kPerProducer;
      for (int i = first; i < first + kPerProducer;) {
        try {
          ch.send_blocking(int{i}, 0.0005);
          ++i;
        } catch (const asyncio::TimeoutError&) {
        }
      }
      producer_done();
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      for (;;) {
        try {
          tally.add(ch.recv_blocking(0.0005));
        } catch (const asyncio::TimeoutError&) {
        } catch (const ChannelClosed&) {
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& t : tasks) t.result(60.0);
  tally.expect_each_once();
}

TEST(ChannelThreads, ReceiverLoopClosingWithAnItemInFlightGivesItBack) {
  Channel<int> ch(2);
  auto loop = asyncio::new_event_loop();
  std::latch waiting(1);
  std::thread t([&] {
    Task<int> r = loop->create_task([](Channel<int>& c, std::latch& w) -> Coro<int> {
      w.count_down();
      co_return co_await c.recv();
    }(ch, waiting));
    loop->run_until_complete(settle(3));
  });
  waiting.wait();
  t.join();  // the loop stopped with its task waiting on the channel
  ch.send_blocking(9, 1.0);  // handed to the waiting task; its loop never runs again
  loop->close();  // destroys the task: the item comes back
  EXPECT_EQ(ch.recv_blocking(0.0), 9);
}

TEST(ChannelThreads, SteadyStateAllocatesNothingPerItem) {
  LoopThread a, b;
  Channel<long> ch(64);
  constexpr long kItems = 200'000;
  std::atomic<std::size_t> allocs_during{~std::size_t{0}};
  auto consumer = b.start([](Channel<long>& c, std::atomic<std::size_t>& allocs) -> Coro<long> {
    // Counted from item 10,000 (the loops have warmed up) to 1,000 before the end: the producer,
    // at most 64 items ahead, is still sending then, so its task's completion (which schedules
    // its done callbacks and may allocate) cannot fall inside the count on a starved CPU.
    long sum = 0;
    std::size_t before = 0;
    for (long i = 0; i < kItems; ++i) {
      if (i == 10'000) before = testing_support::g_allocations.load();
      if (i == kItems - 1'000) allocs = testing_support::g_allocations.load() - before;
      sum += co_await c.recv();
    }
    co_return sum;
  }(ch, allocs_during));
  auto producer = a.start([](Channel<long>& c) -> Coro<void> {
    for (long i = 0; i < kItems; ++i) co_await c.send(long{i});
  }(ch));
  EXPECT_EQ(consumer.result(60.0), kItems * (kItems - 1) / 2);
  producer.result(60.0);
  // Cross-thread wake-ups go through the loops' intrusive queues, not call_soon_threadsafe.
  EXPECT_EQ(allocs_during.load(), 0u);
}

}  // namespace
