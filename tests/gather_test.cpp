// SPDX-License-Identifier: MIT
// gather(): order, exceptions, return_exceptions, cancellation (Python's documented semantics).
#include <asyncio/gather.hpp>
#include <gtest/gtest.h>

#include "test_support.hpp"

using namespace testing_support;
using asyncio::Coro;

namespace {

TEST(Gather, NoArgumentsGivesAnEmptyResultAtOnce) {
  run_v([]() -> Coro<void> {
    auto f = asyncio::gather();
    EXPECT_TRUE(f.done());
    std::tuple<> r = co_await f;
    (void)r;
    auto g = asyncio::gather(asyncio::return_exceptions);
    EXPECT_TRUE(g.done());
    co_await g;
    std::vector<Coro<int>> none;
    auto h = asyncio::gather(std::move(none));
    EXPECT_TRUE((co_await h).empty());
  }());
}

TEST(Gather, TakesEveryAwaitableOfTheLibrary) {
  run_v([]() -> Coro<void> {
    asyncio::Event ev;
    asyncio::Lock lock;
    asyncio::Queue<int> q;
    asyncio::get_running_loop().call_later(0.5, [&] {
      ev.set();
      q.put_nowait(9);
    });
    auto [slept, set, got, acquired, value] =
        co_await asyncio::gather(asyncio::sleep(1.0), ev.wait(), q.get(), lock.acquire(), asyncio::sleep(0.2, 7));
    (void)slept;
    EXPECT_TRUE(set);
    EXPECT_EQ(got, 9);
    EXPECT_TRUE(acquired);
    EXPECT_EQ(value, 7);
    EXPECT_TRUE(lock.locked());
    EXPECT_DOUBLE_EQ(now(), 1.0);
  }());
}

TEST(Gather, TupleResultsKeepArgumentOrder) {
  auto r = run_v([]() -> Coro<std::tuple<int, std::string>> {
    co_return co_await asyncio::gather(after(2.0, 1), after(1.0, std::string("b")));
  }());
  EXPECT_EQ(std::get<0>(r), 1);
  EXPECT_EQ(std::get<1>(r), "b");
}

TEST(Gather, ChildrenRunConcurrently) {
  double took = run_v([]() -> Coro<double> {
    double t0 = now();
    co_await asyncio::gather(after(1.0, 1), after(1.0, 2), after(1.0, 3));
    co_return now() - t0;
  }());
  EXPECT_DOUBLE_EQ(took, 1.0);
}

TEST(Gather, VoidChildGivesMonostate) {
  int v = run_v([]() -> Coro<int> {
    auto [nothing, seven] = co_await asyncio::gather(nap(0.2), after(0.1, 7));
    static_assert(std::is_same_v<decltype(nothing), std::monostate>);
    co_return seven;
  }());
  EXPECT_EQ(v, 7);
}

Coro<int> record(std::vector<int>& order, int value) {
  order.push_back(value);
  co_return value;
}

TEST(Gather, ChildrenStartBeforeGatherIsAwaited) {
  std::vector<int> order;
  run_v([&]() -> Coro<void> {
    auto g = asyncio::gather(record(order, 1));
    order.push_back(0);
    co_await asyncio::sleep(0);
    order.push_back(2);
    co_await g;
  }());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST(Gather, RangeFormReturnsVectorInOrder) {
  auto r = run_v([]() -> Coro<std::vector<int>> {
    std::vector<Coro<int>> coros;
    for (int i = 0; i < 5; ++i) coros.push_back(after(1.0 - 0.1 * i, i));
    co_return co_await asyncio::gather(std::move(coros));
  }());
  EXPECT_EQ(r, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Gather, EmptyRangeCompletesAtOnce) {
  auto r = run_v([]() -> Coro<std::vector<int>> { co_return co_await asyncio::gather(std::vector<Coro<int>>{}); }());
  EXPECT_TRUE(r.empty());
}

TEST(Gather, AcceptsTasksAndFutures) {
  int v = run_v([]() -> Coro<int> {
    auto t = asyncio::create_task(after(0.5, 2));
    auto f = asyncio::get_running_loop().create_future<int>();
    asyncio::get_running_loop().call_later(0.1, [f]() mutable { f.set_result(3); });
    auto [a, b] = co_await asyncio::gather(t, f);
    co_return a * b;
  }());
  EXPECT_EQ(v, 6);
}

TEST(Gather, FirstExceptionPropagatesAtOnceOthersKeepRunning) {
  auto r = run_v([]() -> Coro<std::pair<double, bool>> {
    auto slow = asyncio::create_task(after(5.0, 1));
    double t0 = now();
    bool threw = false;
    try {
      co_await asyncio::gather(slow, fail_after(1.0, "boom"));
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "boom";
    }
    double at = now() - t0;
    co_await slow;  // not cancelled: still finishes
    co_return std::pair{at, threw && !slow.cancelled()};
  }());
  EXPECT_DOUBLE_EQ(r.first, 1.0);
  EXPECT_TRUE(r.second);
}

TEST(Gather, ReturnExceptionsGivesOutcomes) {
  run_v([]() -> Coro<void> {
    auto [a, b] = co_await asyncio::gather(asyncio::return_exceptions, after(0.1, 1), fail_after(0.2, "bad"));
    EXPECT_TRUE(a.has_value());
    EXPECT_EQ(a.value(), 1);
    EXPECT_TRUE(b.has_exception());
    EXPECT_THROW(b.value(), std::runtime_error);
  }());
}

TEST(Gather, ReturnExceptionsRangeForm) {
  run_v([]() -> Coro<void> {
    std::vector<Coro<int>> coros;
    coros.push_back(after(0.1, 1));
    coros.push_back(fail_after(0.1, "x"));
    auto out = co_await asyncio::gather(asyncio::return_exceptions, std::move(coros));
    EXPECT_EQ(out.size(), 2u);
    if (out.size() != 2u) co_return;
    EXPECT_TRUE(out[0].has_value());
    EXPECT_TRUE(out[1].has_exception());
  }());
}

TEST(Gather, CancellingGatherCancelsChildren) {
  run_v([]() -> Coro<void> {
    auto a = asyncio::create_task(forever());
    auto b = asyncio::create_task(forever());
    auto g = asyncio::gather(a, b);
    co_await asyncio::sleep(0.1);
    EXPECT_TRUE(g.cancel());
    EXPECT_THROW(co_await g, asyncio::CancelledError);
    EXPECT_TRUE(a.cancelled());
    EXPECT_TRUE(b.cancelled());
    // As in CPython: the first cancelled child ends the gather with a CancelledError exception,
    // so g.cancelled() is false although awaiting it raises CancelledError.
  }());
}

TEST(Gather, CancellingAwaitingTaskCancelsChildren) {
  run_v([]() -> Coro<void> {
    auto a = asyncio::create_task(forever());
    auto waiter = asyncio::create_task([](asyncio::Task<void> a) -> Coro<void> {
      co_await asyncio::gather(a, nap(1e9));
    }(a));
    co_await asyncio::sleep(0.1);
    waiter.cancel();
    EXPECT_THROW(co_await waiter, asyncio::CancelledError);
    EXPECT_TRUE(a.cancelled());
  }());
}

TEST(Gather, ChildCancelledRaisesCancelledErrorWithoutReturnExceptions) {
  run_v([]() -> Coro<void> {
    auto a = asyncio::create_task(forever());
    auto g = asyncio::gather(a, after(1.0, 1));
    co_await asyncio::sleep(0.1);
    a.cancel();
    EXPECT_THROW(co_await g, asyncio::CancelledError);
    EXPECT_FALSE(g.cancelled());  // the gather itself was not cancelled
  }());
}

TEST(Gather, ChildCancelledIsAnOutcomeWithReturnExceptions) {
  run_v([]() -> Coro<void> {
    auto a = asyncio::create_task(forever());
    auto g = asyncio::gather(asyncio::return_exceptions, a, after(1.0, 1));
    co_await asyncio::sleep(0.1);
    a.cancel();
    auto [ra, rb] = co_await g;
    EXPECT_TRUE(ra.cancelled());
    EXPECT_EQ(rb.value(), 1);
  }());
}

TEST(Gather, LaterFailuresAfterFirstAreNotReportedAsUnretrieved) {
  std::vector<std::string> reports;
  run_v([&]() -> Coro<void> {
    asyncio::get_running_loop().set_exception_handler(
        [&](asyncio::EventLoop&, const asyncio::ExceptionContext& c) { reports.push_back(c.message); });
    try {
      co_await asyncio::gather(fail_after(0.1, "a"), fail_after(0.2, "b"));
    } catch (const std::runtime_error&) {
    }
    co_await asyncio::sleep(1.0);
  }());
  EXPECT_TRUE(reports.empty());
}

// ---- conformance: behaviours CPython's test_tasks (gather) checks ----------------------------------

TEST(Gather, TheSameTaskTwiceGivesItsResultTwice) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task(after(0.5, 3));
    auto [a, b] = co_await asyncio::gather(t, t);
    EXPECT_EQ(a, 3);
    EXPECT_EQ(b, 3);
  }());
}

TEST(Gather, ResultsInArgumentOrderWhateverTheCompletionOrder) {
  run_v([]() -> Coro<void> {
    auto& loop = asyncio::get_running_loop();
    auto a = loop.create_future<int>();
    auto b = loop.create_future<int>();
    auto c = loop.create_future<int>();
    std::vector<asyncio::Future<int>> fs;
    fs.push_back(a);
    fs.push_back(b);
    fs.push_back(c);
    auto g = asyncio::gather(std::move(fs));
    b.set_result(1);
    a.set_result(2);
    co_await asyncio::sleep(0);
    EXPECT_FALSE(g.done());
    c.set_result(3);
    std::vector<int> results = co_await g;
    EXPECT_EQ(results, (std::vector<int>{2, 1, 3}));
  }());
}

}  // namespace
