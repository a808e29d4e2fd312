// SPDX-License-Identifier: MIT
// shield(): the inner work survives the cancellation of whoever awaits it.
#include <asyncio/shield.hpp>
#include <gtest/gtest.h>

#include "test_support.hpp"

using namespace testing_support;
using asyncio::Coro;

namespace {

TEST(Shield, PassesTheResultThrough) {
  EXPECT_EQ(run_v([]() -> Coro<int> { co_return co_await asyncio::shield(after(0.5, 4)); }()), 4);
}

TEST(Shield, PassesTheExceptionThrough) {
  run_v([]() -> Coro<void> { EXPECT_THROW(co_await asyncio::shield(fail_after(0.1, "x")), std::runtime_error); }());
}

TEST(Shield, CancellingTheAwaiterDoesNotCancelTheInnerTask) {
  run_v([]() -> Coro<void> {
    auto inner = asyncio::create_task(after(2.0, 5));
    auto outer = asyncio::create_task([](asyncio::Task<int> t) -> Coro<int> { co_return co_await asyncio::shield(t); }(inner));
    co_await asyncio::sleep(1.0);
    outer.cancel();
    EXPECT_THROW(co_await outer, asyncio::CancelledError);
    EXPECT_FALSE(inner.done());
    EXPECT_EQ(co_await inner, 5);
    EXPECT_DOUBLE_EQ(now(), 2.0);
  }());
}

TEST(Shield, InnerCancellationCancelsTheOuter) {
  run_v([]() -> Coro<void> {
    auto inner = asyncio::create_task(after(2.0, 5));
    auto outer = asyncio::shield(inner);
    co_await asyncio::sleep(0.5);
    inner.cancel();
    EXPECT_THROW(co_await outer, asyncio::CancelledError);
    EXPECT_TRUE(outer.cancelled());
  }());
}

TEST(Shield, TakesAnyAwaitable) {
  run_v([]() -> Coro<void> {
    asyncio::Event ev;
    asyncio::get_running_loop().call_later(0.5, [&] { ev.set(); });
    EXPECT_TRUE(co_await asyncio::shield(ev.wait()));
    EXPECT_EQ(co_await asyncio::shield(asyncio::sleep(0.5, 6)), 6);
  }());
}

TEST(Shield, DoneInnerIsReturnedAsItIs) {
  run_v([]() -> Coro<void> {
    auto f = asyncio::get_running_loop().create_future<int>();
    f.set_result(1);
    EXPECT_TRUE(asyncio::shield(f) == f);
    co_return;
  }());
}

TEST(Shield, FailureAfterTheOuterWasCancelledGoesToTheExceptionHandler) {
  std::vector<std::string> reports;
  run_v([&]() -> Coro<void> {
    asyncio::get_running_loop().set_exception_handler(
        [&](asyncio::EventLoop&, const asyncio::ExceptionContext& c) { reports.push_back(c.message); });
    auto outer = asyncio::shield(fail_after(1.0, "late"));
    outer.cancel();
    co_await asyncio::sleep(2.0);
  }());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("shield"), std::string::npos) << reports[0];
}

TEST(Shield, ResultAfterTheOuterWasCancelledIsNotReported) {
  std::vector<std::string> reports;
  run_v([&]() -> Coro<void> {
    asyncio::get_running_loop().set_exception_handler(
        [&](asyncio::EventLoop&, const asyncio::ExceptionContext& c) { reports.push_back(c.message); });
    auto outer = asyncio::shield(after(1.0, 3));
    outer.cancel();
    co_await asyncio::sleep(2.0);
  }());
  EXPECT_TRUE(reports.empty());
}

// CPython's test_tasks: a gather of shielded tasks, cancelled, leaves the tasks running.
TEST(Shield, CancellingAGatherOfShieldsLeavesTheInnerTasksRunning) {
  run_v([]() -> Coro<void> {
    auto a = asyncio::create_task(after(1.0, 1));
    auto b = asyncio::create_task(after(1.0, 2));
    auto g = asyncio::gather(asyncio::shield(a), asyncio::shield(b));
    co_await asyncio::sleep(0.5);
    g.cancel();
    EXPECT_THROW(co_await g, asyncio::CancelledError);
    EXPECT_EQ(co_await a + co_await b, 3);
  }());
}

}  // namespace
