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

TEST(Timeout, KeptTimeoutSaysExpiredAfterTheBlockRaised) {
  run_v([]() -> Coro<void> {
    auto cm = asyncio::timeout(1.0);
    EXPECT_EQ(cm.when(), 1.0);
    EXPECT_THROW(co_await cm.run([]() -> Coro<void> { co_await forever(); }), asyncio::TimeoutError);
    EXPECT_TRUE(cm.expired());
    EXPECT_DOUBLE_EQ(now(), 1.0);
  }());
}

TEST(Timeout, KeptTimeoutNotExpiredWhenTheBlockFinishedInTime) {
  run_v([]() -> Coro<void> {
    auto cm = asyncio::timeout_at(10.0);
    int v = co_await cm.run([]() -> Coro<int> { co_return co_await after(0.5, 8); });
    EXPECT_EQ(v, 8);
    EXPECT_FALSE(cm.expired());
    EXPECT_THROW(cm.reschedule(20.0), asyncio::RuntimeError);  // finished
  }());
}

TEST(Timeout, KeptTimeoutRunsOneBlockOnly) {
  run_v([]() -> Coro<void> {
    auto cm = asyncio::timeout(std::chrono::seconds(1));
    EXPECT_THROW(cm.reschedule(2.0), asyncio::RuntimeError);  // not entered yet
    co_await cm.run(asyncio::sleep(0));
    EXPECT_THROW(co_await cm.run(asyncio::sleep(0)), asyncio::RuntimeError);
  }());
}

TEST(Timeout, KeptTimeoutCanBeRescheduledFromAnotherTask) {
  run_v([]() -> Coro<void> {
    auto cm = asyncio::timeout(1.0);
    auto extender = asyncio::create_task([&cm]() -> Coro<void> {
      co_await asyncio::sleep(0.5);
      cm.reschedule(now() + 2.0);
    });
    co_await cm.run(asyncio::sleep(2.0));
    EXPECT_FALSE(cm.expired());
    EXPECT_DOUBLE_EQ(now(), 2.0);
    co_await extender;
  }());
}

TEST(Timeout, BlockMayBeAnAwaitableItself) {
  run_v([]() -> Coro<void> {
    asyncio::Event ev;
    EXPECT_THROW(co_await asyncio::timeout(1.0, ev.wait()), asyncio::TimeoutError);
    EXPECT_EQ(co_await asyncio::timeout(1.0, after(0.5, 2)), 2);
    asyncio::Queue<int> q;
    q.put_nowait(5);
    EXPECT_EQ(co_await asyncio::timeout(1.0, [&] { return q.get(); }), 5);
  }());
}

TEST(Timeout, BlockMayReturnATask) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task(after(5.0, 1));
    EXPECT_THROW(co_await asyncio::timeout(1.0, [&]() { return t; }), asyncio::TimeoutError);
    EXPECT_TRUE(t.cancelled());
  }());
}

// ---- conformance: behaviours CPython's test_timeouts checks ----------------------------------------

// test_timeout_zero_sleep_zero / test_timeout_in_the_past_sleep_zero.
TEST(Timeout, ZeroOrPastDeadlineExpiresAtTheFirstAwaitEvenASleepZero) {
  run_v([]() -> Coro<void> {
    for (double d : {0.0, -11.0}) {
      auto cm = asyncio::timeout(d);
      EXPECT_THROW(co_await cm.run(asyncio::sleep(0)), asyncio::TimeoutError);
      EXPECT_TRUE(cm.expired());
      EXPECT_LE(*cm.when(), now());
    }
  }());
}

// test_foreign_exception_on_timeout: an error raised while the block unwinds replaces the timeout.
TEST(Timeout, ErrorRaisedWhileUnwindingTheExpiryWins) {
  run_v([]() -> Coro<void> {
    auto crash = []() -> Coro<void> {
      try {
        co_await asyncio::sleep(1.0);
      } catch (const asyncio::CancelledError&) {
      }
      throw std::domain_error("cleanup failed");
    };
    EXPECT_THROW(co_await asyncio::timeout(0.01, crash), std::domain_error);
  }());
}

// test_timeout_after_cancellation: a cancellation swallowed earlier does not stop a later timeout.
TEST(Timeout, TimeoutAfterASwallowedCancellationStillExpires) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task([]() -> Coro<bool> {
      try {
        co_await asyncio::sleep(1.0);
      } catch (const asyncio::CancelledError&) {
      }
      try {
        co_await asyncio::timeout(0.0, asyncio::sleep(1.0));  // cleanup with a deadline
      } catch (const asyncio::TimeoutError&) {
        co_return true;
      }
      co_return false;
    });
    co_await asyncio::sleep(0.1);
    t.cancel();
    EXPECT_TRUE(co_await t);
  }());
}

// test_cancel_in_timeout_after_cancellation: a cancel inside such a block stays a CancelledError.
TEST(Timeout, CancelInsideATimeoutAfterASwallowedCancellationStaysCancelledError) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task([]() -> Coro<bool> {
      try {
        co_await asyncio::sleep(1.0);
      } catch (const asyncio::CancelledError&) {
      }
      try {
        co_await asyncio::timeout(1.0, []() -> Coro<void> {
          asyncio::current_task().cancel();
          co_await asyncio::sleep(2.0);
        });
      } catch (const asyncio::CancelledError&) {
        co_return true;
      }
      co_return false;
    });
    co_await asyncio::sleep(0.1);
    t.cancel();
    EXPECT_TRUE(co_await t);
  }());
}

// test_nested_timeout_in_finally: a timeout inside the cleanup of an expiring one expires too.
TEST(Timeout, NestedTimeoutInTheCleanupOfAnExpiringOne) {
  run_v([]() -> Coro<void> {
    bool inner_expired = false;
    EXPECT_THROW(co_await asyncio::timeout(0.01, [&]() -> Coro<void> {
      std::exception_ptr cancelled;  // (no co_await inside a catch handler in C++: keep it for after)
      try {
        co_await asyncio::sleep(1.0);
      } catch (const asyncio::CancelledError&) {
        cancelled = std::current_exception();
      }
      try {
        co_await asyncio::timeout(0.01, asyncio::sleep(10.0));  // the cleanup, with its own deadline
      } catch (const asyncio::TimeoutError&) {
        inner_expired = true;
      }
      if (cancelled) std::rethrow_exception(cancelled);
    }),
                 asyncio::TimeoutError);
    EXPECT_TRUE(inner_expired);
  }());
}

}  // namespace
