// SPDX-License-Identifier: MIT
// to_thread, run_in_executor, ThreadPoolExecutor, ConcurrentFuture, wrap_future,
// run_coroutine_threadsafe, default-executor shutdown. Every thread-crossing path here is also run
// under ThreadSanitizer (tsan preset), the hammer tests with 8 threads.
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using asyncio::CancelledError;
using asyncio::ConcurrentFuture;
using asyncio::Coro;
using asyncio::EventLoop;
using asyncio::Task;
using asyncio::ThreadPoolExecutor;

/// Runs `c` with asyncio::run on the real clock (threads take real time), with a watchdog: a
/// lost completion fails with TimeoutError instead of hanging.
template <class T>
T run_r(Coro<T> c) {
  return asyncio::run(asyncio::wait_for(std::move(c), 60.0));
}

template <class T>
Coro<bool> ends_cancelled(Task<T> t) {
  try {
    co_await t;
  } catch (const CancelledError&) {
    co_return true;
  }
  co_return false;
}

/// A gate a thread blocks on until the test opens it.
class Gate {
 public:
  void open() { p_.set_value(); }
  void wait() const { f_.wait(); }

 private:
  std::promise<void> p_;
  std::shared_future<void> f_ = p_.get_future().share();
};

/// A loop running forever on a thread of its own, for run_coroutine_threadsafe from outside.
class BackgroundLoop {
 public:
  BackgroundLoop() : loop_(asyncio::new_event_loop()) {
    thread_ = std::thread([this] {
      loop_->call_soon([this] { started_.count_down(); });
      loop_->run_forever();
    });
    started_.wait();
  }
  ~BackgroundLoop() { stop(); }
  EventLoop& loop() { return *loop_; }
  /// Stops the loop and joins its thread; the loop is not closed.
  void stop() {
    if (!thread_.joinable()) return;
    loop_->call_soon_threadsafe([this] { loop_->stop(); });
    thread_.join();
  }

 private:
  std::shared_ptr<EventLoop> loop_;
  std::latch started_{1};
  std::thread thread_;
};

// ---- to_thread / run_in_executor -------------------------------------------------------------------

TEST(ToThread, ReturnsTheResultComputedOnAnotherThread) {
  run_r([]() -> Coro<void> {
    auto loop_thread = std::this_thread::get_id();
    auto [value, where] = co_await asyncio::to_thread([](int a, int b) { return std::make_pair(a + b, std::this_thread::get_id()); }, 2, 3);
    EXPECT_EQ(value, 5);
    EXPECT_NE(where, loop_thread);
  }());
}

TEST(ToThread, VoidFunction) {
  run_r([]() -> Coro<void> {
    std::atomic<int> calls{0};
    co_await asyncio::to_thread([&calls] { ++calls; });
    EXPECT_EQ(calls.load(), 1);
  }());
}

TEST(ToThread, MoveOnlyArgumentsAndResults) {
  run_r([]() -> Coro<void> {
    auto out = co_await asyncio::to_thread([](std::unique_ptr<int> p) { return std::make_unique<int>(*p * 2); },
                                           std::make_unique<int>(21));
    EXPECT_EQ(*out, 42);
  }());
}

TEST(ToThread, ReferencesPassWithStdRef) {
  run_r([]() -> Coro<void> {
    std::string text = "abc";
    co_await asyncio::to_thread([](std::string& s) { s += "def"; }, std::ref(text));
    EXPECT_EQ(text, "abcdef");
  }());
}

TEST(ToThread, ExceptionPropagatesToTheAwaiter) {
  run_r([]() -> Coro<void> {
    EXPECT_THROW(co_await asyncio::to_thread([]() -> int { throw std::invalid_argument("bad"); }), std::invalid_argument);
  }());
}

TEST(ToThread, TheLoopKeepsRunningWhileTheThreadBlocks) {
  run_r([]() -> Coro<void> {
    // The thread returns once the loop has ticked five times while it blocks (or gives up after
    // 10 s, and then the count says the loop stood still): no timing to miss on a starved CPU.
    std::atomic<int> ticks{0};
    auto ticker = asyncio::create_task([](std::atomic<int>& n) -> Coro<void> {
      for (;;) {
        co_await asyncio::sleep(0.01);
        ++n;
      }
    }(ticks));
    auto blocking = [&ticks] {
      auto give_up = std::chrono::steady_clock::now() + 10s;
      while (ticks.load() < 5 && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
    };
    co_await asyncio::to_thread(blocking);
    ticker.cancel();
    EXPECT_TRUE(co_await ends_cancelled(ticker));
    EXPECT_GE(ticks.load(), 5);  // the loop was never stalled
  }());
}

TEST(ToThread, CancelledAwaiterGetsCancelledErrorAtOnceAndTheLateResultIsDropped) {
  auto gate = std::make_shared<Gate>();
  auto state = std::make_shared<std::atomic<int>>(0);  // 1: running, 2: finished
  run_r([](std::shared_ptr<Gate> g, std::shared_ptr<std::atomic<int>> st) -> Coro<void> {
    auto t = asyncio::create_task([](std::shared_ptr<Gate> g2, std::shared_ptr<std::atomic<int>> d2) -> Coro<std::string> {
      // Named, not a temporary inside the co_await: g++ 12 destroys class-type temporaries of a
      // co_await expression twice when await_resume throws (here: CancelledError).
      auto blocking = [g2, d2] {
        d2->store(1);  // running: from now on the call cannot be skipped
        g2->wait();
        d2->store(2);
        return std::string(1000, 'x');  // a result with heap memory, delivered to nobody
      };
      co_return co_await asyncio::to_thread(std::move(blocking));
    }(g, st));
    while (st->load() == 0) co_await asyncio::sleep(0.001);
    double before = asyncio::get_running_loop().time();
    t.cancel();
    EXPECT_TRUE(co_await ends_cancelled(t));
    EXPECT_LT(asyncio::get_running_loop().time() - before, 0.5);  // did not wait for the thread
    EXPECT_EQ(st->load(), 1);  // still running
    g->open();  // the thread finishes now; its result must go nowhere, safely
  }(gate, state));
  EXPECT_EQ(state->load(), 2);  // asyncio::run waited for the default executor's threads
}

TEST(ToThread, CallCancelledBeforeItStartsIsSkipped) {
  ThreadPoolExecutor pool(1);
  Gate gate;
  std::atomic<bool> second_ran{false};
  run_r([](ThreadPoolExecutor& p, Gate& g, std::atomic<bool>& ran) -> Coro<void> {
    auto& loop = asyncio::get_running_loop();
    auto first = loop.run_in_executor(&p, [&g] { g.wait(); });
    auto waiter = asyncio::create_task([](asyncio::Future<void> f) -> Coro<void> { co_await f; }(
        loop.run_in_executor(&p, [&ran] { ran = true; })));
    co_await asyncio::sleep(0.01);
    waiter.cancel();
    EXPECT_TRUE(co_await ends_cancelled(waiter));
    g.open();
    co_await first;
  }(pool, gate, second_ran));
  pool.shutdown(true);
  EXPECT_FALSE(second_ran.load());
}

TEST(RunInExecutor, FreeFunctionAndLoopMethodWithACustomPool) {
  ThreadPoolExecutor pool(2, "custom");
  run_r([](ThreadPoolExecutor& p) -> Coro<void> {
    auto& loop = asyncio::get_running_loop();
    int a = co_await asyncio::run_in_executor(loop, &p, [](int x) { return x * 3; }, 7);
    int b = co_await loop.run_in_executor(&p, [](int x) { return x + 1; }, 41);
    int c = co_await loop.run_in_executor(nullptr, [] { return 5; });  // the default pool
    EXPECT_EQ(a, 21);
    EXPECT_EQ(b, 42);
    EXPECT_EQ(c, 5);
  }(pool));
}

TEST(RunInExecutor, ResultsCanBeGathered) {
  run_r([]() -> Coro<void> {
    std::vector<asyncio::Future<int>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(asyncio::to_thread([](int x) { return x * x; }, i));
    std::vector<int> results = co_await asyncio::gather(std::move(fs));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(results[i], i * i);
  }());
}

/// An executor that counts what it is given and records how it was shut down.
class CountingExecutor final : public asyncio::Executor {
 public:
  void execute(asyncio::Work work) override {
    ++executed;
    inner.execute(std::move(work));
  }
  void shutdown(bool wait, bool cancel_futures) override {
    shutdown_wait = wait;
    ++shutdowns;
    inner.shutdown(wait, cancel_futures);
  }
  ThreadPoolExecutor inner{2};
  std::atomic<int> executed{0};
  std::atomic<int> shutdowns{0};
  std::atomic<bool> shutdown_wait{false};
};

TEST(DefaultExecutor, SetDefaultExecutorIsUsedByToThreadAndShutDownByRun) {
  auto ex = std::make_shared<CountingExecutor>();
  run_r([](std::shared_ptr<CountingExecutor> e) -> Coro<void> {
    asyncio::get_running_loop().set_default_executor(e);
    EXPECT_EQ(co_await asyncio::to_thread([] { return 1; }), 1);
    EXPECT_EQ(e->executed.load(), 1);
  }(ex));
  // asyncio::run ended with loop.shutdown_default_executor(): shutdown(wait=true).
  EXPECT_EQ(ex->shutdowns.load(), 1);
  EXPECT_TRUE(ex->shutdown_wait.load());
}

TEST(DefaultExecutor, SizeFollowsPython) {
  std::size_t cores = std::thread::hardware_concurrency();
  EXPECT_EQ(asyncio::default_max_workers(), std::min<std::size_t>(32, (cores ? cores : 1) + 4));
  ThreadPoolExecutor pool;
  EXPECT_EQ(pool.max_workers(), asyncio::default_max_workers());
}

TEST(DefaultExecutor, ToThreadAfterShutdownDefaultExecutorRaisesRuntimeError) {
  run_r([]() -> Coro<void> {
    co_await asyncio::to_thread([] {});
    co_await asyncio::get_running_loop().shutdown_default_executor();
    EXPECT_THROW((void)asyncio::to_thread([] {}), asyncio::RuntimeError);
  }());
}

TEST(DefaultExecutor, ShutdownWithoutAnExecutorIsANoOp) {
  run_r([]() -> Coro<void> { co_await asyncio::get_running_loop().shutdown_default_executor(); }());
}

TEST(DefaultExecutor, ShutdownKeepsTheLoopRunningWhileCallsFinish) {
  run_r([]() -> Coro<void> {
    // The call in flight returns once the loop has ticked three times, which it can only do
    // while shutdown waits for that call: no timing to miss on a starved CPU (it gives up after
    // 10 s, and then the count says the loop stood still).
    std::atomic<int> ticks{0};
    auto ticker = asyncio::create_task([](std::atomic<int>& n) -> Coro<void> {
      for (;;) {
        co_await asyncio::sleep(0.005);
        ++n;
      }
    }(ticks));
    auto slow = asyncio::to_thread([&ticks] {
      auto give_up = std::chrono::steady_clock::now() + 10s;
      while (ticks.load() < 3 && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
      return 7;
    });
    co_await asyncio::get_running_loop().shutdown_default_executor();
    EXPECT_TRUE(slow.done());  // the call in flight completed and was delivered
    EXPECT_EQ(co_await slow, 7);
    EXPECT_GE(ticks.load(), 3);
    ticker.cancel();
    co_await ends_cancelled(ticker);
  }());
}

TEST(DefaultExecutor, ShutdownTimeoutStopsWaitingAndWarns) {
  Gate gate;
  std::vector<std::string> warnings;
  auto old_sink = asyncio::set_log_sink([&warnings](asyncio::LogLevel level, std::string_view text) {
    if (level == asyncio::LogLevel::warning) warnings.emplace_back(text);
  });
  run_r([](Gate& g) -> Coro<void> {
    auto& loop = asyncio::get_running_loop();
    auto stuck = asyncio::to_thread([&g] { g.wait(); return 3; });
    double t0 = loop.time();
    co_await loop.shutdown_default_executor(0.05);  // the stuck call outlives the timeout
    EXPECT_LT(loop.time() - t0, 5.0);
    g.open();
    EXPECT_EQ(co_await stuck, 3);  // still delivered once it finishes
  }(gate));
  asyncio::set_log_sink(std::move(old_sink));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("did not finish joining"), std::string::npos);
}

// ---- ThreadPoolExecutor ----------------------------------------------------------------------------

TEST(ThreadPoolExecutor, StartsThreadsOnDemandUpToTheMaximum) {
  ThreadPoolExecutor pool(3);
  EXPECT_EQ(pool.thread_count(), 0u);
  Gate gate;
  std::vector<ConcurrentFuture<void>> fs;
  for (int i = 0; i < 10; ++i) fs.push_back(pool.submit([&gate] { gate.wait(); }));
  EXPECT_EQ(pool.thread_count(), 3u);
  gate.open();
  for (auto& f : fs) f.result();
}

TEST(ThreadPoolExecutor, SubmitReturnsAConcurrentFuture) {
  ThreadPoolExecutor pool(2);
  auto f = pool.submit([](int a) { return a * 2; }, 21);
  EXPECT_EQ(f.result(), 42);
  auto g = pool.submit([]() -> int { throw std::runtime_error("no"); });
  EXPECT_THROW(g.result(), std::runtime_error);
  EXPECT_NE(g.exception(), nullptr);
}

TEST(ThreadPoolExecutor, SubmitAfterShutdownRaisesRuntimeError) {
  ThreadPoolExecutor pool(1);
  pool.shutdown();
  EXPECT_THROW(pool.submit([] {}), asyncio::RuntimeError);
}

TEST(ThreadPoolExecutor, ShutdownWaitRunsEverythingQueued) {
  ThreadPoolExecutor pool(2);
  std::atomic<int> done{0};
  std::vector<ConcurrentFuture<void>> fs;
  for (int i = 0; i < 8; ++i)
    fs.push_back(pool.submit([&done] {
      std::this_thread::sleep_for(5ms);
      ++done;
    }));
  pool.shutdown(true);
  EXPECT_EQ(done.load(), 8);
  for (auto& f : fs) EXPECT_TRUE(f.done());
}

TEST(ThreadPoolExecutor, ShutdownCancelFuturesCancelsQueuedCallsNotRunningOnes) {
  ThreadPoolExecutor pool(1);
  Gate gate;
  auto running = pool.submit([&gate] {
    gate.wait();
    return 1;
  });
  while (!running.running()) std::this_thread::yield();
  auto queued = pool.submit([] { return 2; });
  pool.shutdown(false, true);
  EXPECT_TRUE(queued.cancelled());
  EXPECT_THROW(queued.result(), CancelledError);
  EXPECT_FALSE(running.cancel());  // running: cannot be cancelled
  gate.open();
  EXPECT_EQ(running.result(), 1);
}

TEST(ThreadPoolExecutor, ShutdownWithLoopCallsInFlight) {
  // Calls running when the pool shuts down complete and deliver; queued ones are cancelled and
  // their awaiting tasks get CancelledError.
  ThreadPoolExecutor pool(2);
  Gate gate;
  run_r([](ThreadPoolExecutor& p, Gate& g) -> Coro<void> {
    auto& loop = asyncio::get_running_loop();
    std::atomic<int> started{0};
    std::vector<asyncio::Future<int>> running, queued;
    for (int i = 0; i < 2; ++i)
      running.push_back(loop.run_in_executor(&p, [&g, &started, i] {
        ++started;
        g.wait();
        return i;
      }));
    while (started.load() < 2) co_await asyncio::sleep(0.001);
    for (int i = 0; i < 3; ++i) queued.push_back(loop.run_in_executor(&p, [i] { return 10 + i; }));
    co_await asyncio::to_thread([&p] { p.shutdown(false, true); });
    for (auto& f : queued) {
      EXPECT_THROW(co_await f, CancelledError);
    }
    g.open();
    EXPECT_EQ(co_await running[0], 0);
    EXPECT_EQ(co_await running[1], 1);
  }(pool, gate));
  pool.shutdown(true);
}

// ---- ConcurrentFuture, wrap_future -----------------------------------------------------------------

TEST(ConcurrentFuture, ResultWithTimeoutRaisesTimeoutError) {
  ConcurrentFuture<int> f;
  EXPECT_THROW(f.result(0.01), asyncio::TimeoutError);
  EXPECT_FALSE(f.wait(0.0));
}

TEST(ConcurrentFuture, CancelPendingThenResultRaisesCancelledError) {
  ConcurrentFuture<int> f;
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_FALSE(f.set_running_or_notify_cancel());
  EXPECT_THROW(f.result(), CancelledError);
}

TEST(ConcurrentFuture, RunningFutureCannotBeCancelled) {
  ConcurrentFuture<int> f;
  EXPECT_TRUE(f.set_running_or_notify_cancel());
  EXPECT_TRUE(f.running());
  EXPECT_FALSE(f.cancel());
  f.set_result(3);
  EXPECT_EQ(f.result(), 3);
}

TEST(ConcurrentFuture, SetTwiceRaisesInvalidStateError) {
  ConcurrentFuture<int> f;
  f.set_result(1);
  EXPECT_THROW(f.set_result(2), asyncio::InvalidStateError);
  EXPECT_THROW(f.set_exception(std::make_exception_ptr(std::runtime_error("x"))), asyncio::InvalidStateError);
}

TEST(ConcurrentFuture, DoneCallbacksRunOnceOnTheCompletingThreadOrAtOnce) {
  ConcurrentFuture<int> f;
  std::atomic<int> calls{0};
  std::thread::id where;
  f.add_done_callback([&](ConcurrentFuture<int> g) {
    ++calls;
    where = std::this_thread::get_id();
    EXPECT_EQ(g.result(), 9);
  });
  std::thread::id setter;
  std::thread t([&] {
    setter = std::this_thread::get_id();
    f.set_result(9);
  });
  t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(where, setter);
  f.add_done_callback([&](ConcurrentFuture<int>) { ++calls; });  // already done: runs now
  EXPECT_EQ(calls.load(), 2);
}

TEST(ConcurrentFuture, BlockingResultWakesWhenAnotherThreadSetsIt) {
  ConcurrentFuture<std::string> f;
  std::thread t([f] {
    std::this_thread::sleep_for(10ms);
    f.set_result(std::string("late"));
  });
  EXPECT_EQ(f.result(5.0), "late");
  t.join();
}

TEST(WrapFuture, AwaitsAConcurrentFutureCompletedByAThread) {
  ThreadPoolExecutor pool(1);
  run_r([](ThreadPoolExecutor& p) -> Coro<void> {
    auto cf = p.submit([] { return std::string("from pool"); });
    EXPECT_EQ(co_await asyncio::wrap_future(cf), "from pool");
    auto bad = p.submit([]() -> int { throw std::runtime_error("pool error"); });
    EXPECT_THROW(co_await asyncio::wrap_future(bad), std::runtime_error);
  }(pool));
}

TEST(WrapFuture, CancellingTheLoopFutureCancelsTheConcurrentFuture) {
  run_r([]() -> Coro<void> {
    ConcurrentFuture<int> cf;
    auto waiter = asyncio::create_task([](asyncio::Future<int> f) -> Coro<int> { co_return co_await f; }(asyncio::wrap_future(cf)));
    co_await asyncio::sleep(0.001);
    waiter.cancel();
    EXPECT_TRUE(co_await ends_cancelled(waiter));
    EXPECT_TRUE(cf.cancelled());
  }());
}

TEST(WrapFuture, CancelledConcurrentFutureCancelsTheLoopFuture) {
  run_r([]() -> Coro<void> {
    ConcurrentFuture<int> cf;
    auto f = asyncio::wrap_future(cf);
    std::thread t([cf] { cf.cancel(); });
    EXPECT_THROW(co_await f, CancelledError);
    t.join();
  }());
}

// ---- run_coroutine_threadsafe ----------------------------------------------------------------------

Coro<int> add_later(int a, int b) {
  co_await asyncio::sleep(0.001);
  co_return a + b;
}

TEST(RunCoroutineThreadsafe, FromAForeignThreadReturnsTheResult) {
  BackgroundLoop bg;
  auto cf = asyncio::run_coroutine_threadsafe(add_later(20, 22), bg.loop());
  EXPECT_EQ(cf.result(10.0), 42);
}

TEST(RunCoroutineThreadsafe, ACapturingLambdaIsKeptAliveForTheCoroutine) {
  BackgroundLoop bg;
  std::string text = "captured";
  // The lambda object is a temporary of this statement: make_coro moves it into the frame.
  auto cf = asyncio::run_coroutine_threadsafe([text]() -> Coro<std::string> {
    co_await asyncio::sleep(0.01);
    co_return text + "!";
  }, bg.loop());
  EXPECT_EQ(cf.result(10.0), "captured!");
}

TEST(RunCoroutineThreadsafe, ExceptionReachesTheCallingThread) {
  BackgroundLoop bg;
  auto cf = asyncio::run_coroutine_threadsafe([]() -> Coro<int> {
    co_await asyncio::sleep(0);
    throw std::out_of_range("range");
  }(), bg.loop());
  EXPECT_THROW(cf.result(10.0), std::out_of_range);
}

TEST(RunCoroutineThreadsafe, CancellingTheFutureCancelsTheTaskInTheLoop) {
  BackgroundLoop bg;
  auto saw_cancel = std::make_shared<std::atomic<bool>>(false);
  auto started = std::make_shared<std::latch>(1);
  auto cf = asyncio::run_coroutine_threadsafe([](std::shared_ptr<std::atomic<bool>> flag, std::shared_ptr<std::latch> go) -> Coro<int> {
    go->count_down();
    try {
      co_await asyncio::sleep(3600);
    } catch (const CancelledError&) {
      flag->store(true);
      throw;
    }
    co_return 0;
  }(saw_cancel, started), bg.loop());
  started->wait();
  EXPECT_TRUE(cf.cancel());
  EXPECT_THROW(cf.result(), CancelledError);
  // The task sees the cancellation soon after, in the loop.
  for (int i = 0; i < 1000 && !saw_cancel->load(); ++i) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(saw_cancel->load());
}

TEST(RunCoroutineThreadsafe, CancelledBeforeTheLoopStartsItNeverRuns) {
  auto loop = asyncio::new_event_loop();
  auto ran = std::make_shared<std::atomic<bool>>(false);
  auto cf = asyncio::run_coroutine_threadsafe([](std::shared_ptr<std::atomic<bool>> r) -> Coro<void> {
    r->store(true);
    co_return;
  }(ran), *loop);
  EXPECT_TRUE(cf.cancel());
  loop->run_until_complete([]() -> Coro<void> { co_await asyncio::sleep(0.01); }());
  EXPECT_FALSE(ran->load());
  loop->close();
}

TEST(RunCoroutineThreadsafe, LoopClosedBeforeTheTaskEndsCancelsTheFuture) {
  auto cf = [] {
    BackgroundLoop bg;
    auto f = asyncio::run_coroutine_threadsafe([]() -> Coro<int> {
      co_await asyncio::sleep(3600);
      co_return 1;
    }(), bg.loop());
    std::this_thread::sleep_for(10ms);
    bg.stop();
    bg.loop().close();  // destroys the pending task
    return f;
  }();
  EXPECT_THROW(cf.result(5.0), CancelledError);  // not left pending forever
}

TEST(RunCoroutineThreadsafe, ClosedLoopRaisesRuntimeError) {
  auto loop = asyncio::new_event_loop();
  loop->close();
  EXPECT_THROW(asyncio::run_coroutine_threadsafe(add_later(1, 2), *loop), asyncio::RuntimeError);
}

TEST(RunCoroutineThreadsafe, BetweenTwoLoopsWithWrapFuture) {
  BackgroundLoop other;
  run_r([](EventLoop& o) -> Coro<void> {
    auto cf = asyncio::run_coroutine_threadsafe(add_later(1, 2), o);
    EXPECT_EQ(co_await asyncio::wrap_future(cf), 3);
  }(other.loop()));
}

TEST(RunCoroutineThreadsafe, HammeredByEightThreads) {
  BackgroundLoop bg;
  constexpr int kThreads = 8, kCalls = 300;
  std::atomic<int> ok{0}, cancelled{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<std::pair<int, ConcurrentFuture<int>>> fs;
      for (int i = 0; i < kCalls; ++i) {
        fs.emplace_back(i, asyncio::run_coroutine_threadsafe([](int v) -> Coro<int> {
          if (v % 3 == 0) co_await asyncio::sleep(0.0005);
          co_return v * 2;
        }(i), bg.loop()));
        if (rng() % 4 == 0) fs.back().second.cancel();
      }
      for (auto& [i, f] : fs) {
        try {
          EXPECT_EQ(f.result(30.0), i * 2);
          ++ok;
        } catch (const CancelledError&) {
          ++cancelled;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load() + cancelled.load(), kThreads * kCalls);
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(cancelled.load(), 0);
}

TEST(ToThread, HammeredByManyTasksOnEightWorkersWithCancellations) {
  auto pool = std::make_shared<ThreadPoolExecutor>(8);
  run_r([](std::shared_ptr<ThreadPoolExecutor> p) -> Coro<void> {
    asyncio::get_running_loop().set_default_executor(p);
    constexpr int kTasks = 64, kCalls = 50;
    int ok = 0, cancelled = 0;
    std::vector<Task<int>> tasks;
    for (int t = 0; t < kTasks; ++t) {
      tasks.push_back(asyncio::create_task([](int seed) -> Coro<int> {
        int sum = 0;
        for (int i = 0; i < kCalls; ++i) {
          sum += co_await asyncio::to_thread([](int a, int b) {
            if ((a + b) % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
            return a + b;
          }, seed, i);
        }
        co_return sum;
      }(t)));
    }
    std::mt19937 rng(1);
    for (int round = 0; round < 10; ++round) {
      co_await asyncio::sleep(0.0005);
      tasks[rng() % kTasks].cancel();
    }
    for (int t = 0; t < kTasks; ++t) {
      try {
        EXPECT_EQ(co_await tasks[t], kCalls * t + kCalls * (kCalls - 1) / 2);
        ++ok;
      } catch (const CancelledError&) {
        ++cancelled;
      }
    }
    EXPECT_EQ(ok + cancelled, kTasks);
  }(pool));
}

TEST(Threads, LoopDestroyedWhileAThreadStillRunsItsCall) {
  // The pool outlives the loop: the late completion must find the loop gone and drop the result.
  ThreadPoolExecutor pool(1);
  Gate gate;
  {
    auto loop = asyncio::new_event_loop();
    loop->run_until_complete([](ThreadPoolExecutor& p, Gate& g) -> Coro<void> {
      auto f = asyncio::get_running_loop().run_in_executor(&p, [&g] {
        g.wait();
        return std::string(100, 'y');
      });
      (void)f;  // never awaited
      co_return;
    }(pool, gate));
    loop->close();
  }
  gate.open();
  pool.shutdown(true);
}


// ---- loops calling each other (run_coroutine_threadsafe + wrap_future) ---------------------------

/// Awaits `coro` run as a task on `loop` (another loop, on another thread): the idiom
/// docs/multicore.md documents.
template <class T>
Coro<T> call_in(EventLoop& loop, Coro<T> coro) {
  co_return co_await asyncio::wrap_future(asyncio::run_coroutine_threadsafe(std::move(coro), loop));
}

/// Four loops, each on its own thread.
struct FourLoops {
  BackgroundLoop loops[4];
  EventLoop& operator[](int i) { return loops[i % 4].loop(); }
};

/// Hops `hops` times around the ring of loops, each hop awaiting the next loop; returns the sum of
/// the indexes of the loops it ran on, checking at each hop that it runs on the loop it was sent to.
Coro<int> hop(FourLoops& ring, int at, int hops) {
  EXPECT_EQ(&asyncio::get_running_loop(), &ring[at]);
  if (hops == 0) co_return at;
  if (at % 2 == 0) co_await asyncio::sleep(0);
  int rest = co_await call_in(ring[at + 1], hop(ring, (at + 1) % 4, hops - 1));
  co_return at + rest;
}

TEST(CrossLoop, FourLoopsCallEachOtherAroundARing) {
  FourLoops ring;
  constexpr int kChains = 50, kHops = 8;
  // Every loop starts chains that travel through all four loops, all at the same time.
  std::vector<ConcurrentFuture<int>> chains;
  for (int start = 0; start < 4; ++start)
    for (int c = 0; c < kChains; ++c) chains.push_back(asyncio::run_coroutine_threadsafe(hop(ring, start, kHops), ring[start]));
  for (std::size_t i = 0; i < chains.size(); ++i) {
    int start = static_cast<int>(i) / kChains;
    int expected = 0;
    for (int h = 0; h <= kHops; ++h) expected += (start + h) % 4;
    EXPECT_EQ(chains[i].result(60.0), expected);
  }
}

TEST(CrossLoop, RemoteFailureArrivesAsTheAwaitersException) {
  FourLoops ring;
  auto cf = asyncio::run_coroutine_threadsafe([](FourLoops& r) -> Coro<std::string> {
    try {
      co_await call_in(r[1], []() -> Coro<int> {
        co_await asyncio::sleep(0.001);
        throw asyncio::ValueError("bad input on loop 1");
      }());
    } catch (const asyncio::ValueError& e) {
      co_return e.what();
    }
    co_return "no exception";
  }(ring), ring[0]);
  EXPECT_EQ(cf.result(30.0), "bad input on loop 1");
}

TEST(CrossLoop, CancellingTheAwaiterCancelsTheRemoteTask) {
  FourLoops ring;
  auto remote_started = std::make_shared<std::latch>(1);
  auto remote_cancelled = std::make_shared<std::promise<void>>();
  auto remote = [](std::shared_ptr<std::latch> started, std::shared_ptr<std::promise<void>> cancelled) -> Coro<int> {
    started->count_down();
    try {
      co_await asyncio::sleep(3600);
    } catch (const CancelledError&) {
      cancelled->set_value();
      throw;
    }
    co_return 0;
  };
  auto awaiter = asyncio::run_coroutine_threadsafe([](FourLoops& r, Coro<int> work, std::shared_ptr<std::latch> started) -> Coro<bool> {
    Task<int> t = asyncio::get_running_loop().create_task(call_in(r[2], std::move(work)));
    // Cancel once the remote coroutine runs (one cancelled before it starts never runs at all).
    while (!started->try_wait()) co_await asyncio::sleep(0.001);
    t.cancel();
    co_return co_await ends_cancelled(t);
  }(ring, remote(remote_started, remote_cancelled), remote_started), ring[0]);
  EXPECT_TRUE(awaiter.result(30.0));
  // The remote task, on loop 2's thread, saw the cancellation.
  EXPECT_EQ(remote_cancelled->get_future().wait_for(30s), std::future_status::ready);
}

TEST(CrossLoop, RemoteLoopClosingMeanwhileEndsTheAwaiterWithCancelledError) {
  BackgroundLoop here;
  auto remote_started = std::make_shared<std::latch>(1);
  auto remote = asyncio::new_event_loop();
  std::thread remote_thread([remote] { remote->run_forever(); });
  auto awaiter = asyncio::run_coroutine_threadsafe([](EventLoop& r, std::shared_ptr<std::latch> go) -> Coro<std::string> {
    try {
      co_await call_in(r, [](std::shared_ptr<std::latch> g) -> Coro<int> {
        g->count_down();
        co_await asyncio::sleep(3600);
        co_return 1;
      }(go));
    } catch (const CancelledError&) {
      // Not this task's own cancellation: the remote loop went away.
      co_return asyncio::current_task().cancelling() == 0 ? "remote gone" : "cancelled here";
    }
    co_return "finished";
  }(*remote, remote_started), here.loop());
  remote_started->wait();
  remote->call_soon_threadsafe([remote] { remote->stop(); });
  remote_thread.join();
  remote->close();  // destroys the pending remote task
  EXPECT_EQ(awaiter.result(30.0), "remote gone");
}

TEST(CrossLoop, EightThreadsAndFourLoopsWithCancellations) {
  FourLoops ring;
  constexpr int kThreads = 8, kCalls = 100;
  std::atomic<int> ok{0}, cancelled{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<ConcurrentFuture<int>> fs;
      for (int i = 0; i < kCalls; ++i) {
        int start = static_cast<int>(rng() % 4);
        fs.push_back(asyncio::run_coroutine_threadsafe(hop(ring, start, 3), ring[start]));
        if (rng() % 5 == 0) fs.back().cancel();
      }
      for (auto& f : fs) {
        try {
          f.result(60.0);
          ++ok;
        } catch (const CancelledError&) {
          ++cancelled;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load() + cancelled.load(), kThreads * kCalls);
  EXPECT_GT(ok.load(), 0);
}

}  // namespace
