// SPDX-License-Identifier: MIT
// timeout() / timeout_at() / Timeout (Python 3.11's asyncio.timeout).
#include <asyncio/timeout.hpp>
#include <gtest/gtest.h>

#include "test_support.hpp"

using namespace testing_support;
using asyncio::Coro;

namespace {

TEST(Timeout, BlockFinishingInTimeReturnsItsValue) {
  EXPECT_EQ(run_v([]() -> Coro<int> {
              co_return co_await asyncio::timeout(1.0, []() -> Coro<int> { co_return co_await after(0.5, 3); });
            }()),
            3);
}

TEST(Timeout, ExpiryRaisesTimeoutErrorAtTheDeadline) {
  run_v([]() -> Coro<void> {
    EXPECT_THROW(co_await asyncio::timeout(1.0, []() -> Coro<void> { co_await forever(); }), asyncio::TimeoutError);
    EXPECT_DOUBLE_EQ(now(), 1.0);
  }());
}

TEST(Timeout, BlockSeesCancelledErrorInside) {
  bool saw_cancel = false;
  run_v([&]() -> Coro<void> {
    try {
      co_await asyncio::timeout(1.0, [&]() -> Coro<void> {
        try {
          co_await forever();
        } catch (const asyncio::CancelledError&) {
          saw_cancel = true;
          throw;
        }
      });
    } catch (const asyncio::TimeoutError&) {
    }
  }());
  EXPECT_TRUE(saw_cancel);
}

TEST(Timeout, ExpiredReportsTheState) {
  run_v([]() -> Coro<void> {
    bool expired_inside = true;
    try {
      co_await asyncio::timeout(1.0, [&](asyncio::Timeout& cm) -> Coro<void> {
        expired_inside = cm.expired();
        co_await forever();
      });
    } catch (const asyncio::TimeoutError&) {
    }
    EXPECT_FALSE(expired_inside);
  }());
}

TEST(Timeout, RescheduleExtendsTheDeadline) {
  run_v([]() -> Coro<void> {
    co_await asyncio::timeout(1.0, [](asyncio::Timeout& cm) -> Coro<void> {
      EXPECT_DOUBLE_EQ(*cm.when(), 1.0);
      cm.reschedule(now() + 5.0);
      co_await asyncio::sleep(3.0);
    });
    EXPECT_DOUBLE_EQ(now(), 3.0);
  }());
}

TEST(Timeout, RescheduleToNoneDisablesIt) {
  run_v([]() -> Coro<void> {
    co_await asyncio::timeout(1.0, [](asyncio::Timeout& cm) -> Coro<void> {
      cm.reschedule(std::nullopt);
      co_await asyncio::sleep(10.0);
    });
    EXPECT_DOUBLE_EQ(now(), 10.0);
  }());
}

TEST(Timeout, RescheduleIntoThePastExpiresOnTheNextIteration) {
  run_v([]() -> Coro<void> {
    EXPECT_THROW(co_await asyncio::timeout(10.0,
                                           [](asyncio::Timeout& cm) -> Coro<void> {
                                             cm.reschedule(now() - 1);
                                             co_await forever();
                                           }),
                 asyncio::TimeoutError);
    EXPECT_DOUBLE_EQ(now(), 0.0);
  }());
}

TEST(Timeout, NoneMeansNoDeadline) {
  run_v([]() -> Coro<void> {
    co_await asyncio::timeout(std::nullopt, []() -> Coro<void> { co_await asyncio::sleep(100.0); });
    EXPECT_DOUBLE_EQ(now(), 100.0);
  }());
}

TEST(Timeout, ChronoDurationsWork) {
  run_v([]() -> Coro<void> {
    EXPECT_THROW(co_await asyncio::timeout(std::chrono::milliseconds(250), []() -> Coro<void> { co_await forever(); }),
                 asyncio::TimeoutError);
    EXPECT_DOUBLE_EQ(now(), 0.25);
  }());
}

TEST(Timeout, TimeoutAtUsesAnAbsoluteDeadline) {
  run_v([]() -> Coro<void> {
    co_await asyncio::sleep(2.0);
    EXPECT_THROW(co_await asyncio::timeout_at(3.0, []() -> Coro<void> { co_await forever(); }), asyncio::TimeoutError);
    EXPECT_DOUBLE_EQ(now(), 3.0);
  }());
}

TEST(Timeout, InnerExpiryDoesNotTriggerOuter) {
  run_v([]() -> Coro<void> {
    bool inner_timed_out = false;
    co_await asyncio::timeout(10.0, [&]() -> Coro<void> {
      try {
        co_await asyncio::timeout(1.0, []() -> Coro<void> { co_await forever(); });
      } catch (const asyncio::TimeoutError&) {
        inner_timed_out = true;
      }
      co_await asyncio::sleep(1.0);
    });
    EXPECT_TRUE(inner_timed_out);
    EXPECT_DOUBLE_EQ(now(), 2.0);
  }());
}

TEST(Timeout, OuterExpiryPassesThroughInnerAsCancellation) {
  run_v([]() -> Coro<void> {
    bool inner_saw_timeout = false;
    try {
      co_await asyncio::timeout(1.0, [&]() -> Coro<void> {
        try {
          co_await asyncio::timeout(10.0, []() -> Coro<void> { co_await forever(); });
        } catch (const asyncio::TimeoutError&) {
          inner_saw_timeout = true;
        }
      });
      ADD_FAILURE() << "outer timeout did not fire";
    } catch (const asyncio::TimeoutError&) {
    }
    EXPECT_FALSE(inner_saw_timeout);
    EXPECT_DOUBLE_EQ(now(), 1.0);
  }());
}

TEST(Timeout, ExternalCancellationStaysCancelledError) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task([]() -> Coro<void> {
      co_await asyncio::timeout(10.0, []() -> Coro<void> { co_await forever(); });
    }());
    co_await asyncio::sleep(1.0);
    t.cancel();
    EXPECT_THROW(co_await t, asyncio::CancelledError);
    EXPECT_TRUE(t.cancelled());
  }());
}

TEST(Timeout, UncancelRestoresTheCancellingCount) {
  run_v([]() -> Coro<void> {
    try {
      co_await asyncio::timeout(0.5, []() -> Coro<void> { co_await forever(); });
    } catch (const asyncio::TimeoutError&) {
    }
    EXPECT_EQ(asyncio::current_task().cancelling(), 0u);
    co_await asyncio::sleep(1.0);  // the task is not left cancelled
  }());
}

TEST(Timeout, ExceptionFromTheBlockPropagatesUnchanged) {
  run_v([]() -> Coro<void> {
    EXPECT_THROW(co_await asyncio::timeout(1.0, []() -> Coro<int> { co_return co_await fail_after(0.1, "x"); }),
                 std::runtime_error);
  }());
}

TEST(Timeout, BlockMayReturnATask) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task(after(5.0, 1));
    EXPECT_THROW(co_await asyncio::timeout(1.0, [&]() { return t; }), asyncio::TimeoutError);
    EXPECT_TRUE(t.cancelled());
  }());
}

}  // namespace
