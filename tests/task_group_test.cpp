// SPDX-License-Identifier: MIT
// TaskGroup / task_group(): structured concurrency with Python 3.11+'s semantics.
#include <asyncio/task_group.hpp>
#include <gtest/gtest.h>

#include "test_support.hpp"

#include "log_capture.hpp"

using namespace testing_support;
using asyncio::Coro;
using asyncio::TaskGroup;

namespace {

TEST(TaskGroup, WaitsForEveryChild) {
  run_v([]() -> Coro<void> {
    asyncio::Task<int> a, b;
    co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
      a = tg.create_task(after(1.0, 1));
      b = tg.create_task(after(2.0, 2));
      co_return;
    });
    EXPECT_TRUE(a.done() && b.done());
    EXPECT_EQ(a.result() + b.result(), 3);
    EXPECT_DOUBLE_EQ(now(), 2.0);
  }());
}

Coro<void> log_cancellation(std::vector<int>& log, int id) {
  try {
    co_await asyncio::sleep(100.0);
  } catch (const asyncio::CancelledError&) {
    log.push_back(id);
    throw;
  }
}

// The cancellations are delivered in the order the group made them: creation order, whatever
// order the group keeps its children in.
TEST(TaskGroup, CancelsTheRemainingChildrenInCreationOrder) {
  std::vector<int> log;
  run_v([&]() -> Coro<void> {
    EXPECT_THROW(co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
      for (int i = 0; i < 32; ++i) tg.create_task(log_cancellation(log, i));
      tg.create_task(fail_after(1.0, "boom"));
      co_return;
    }),
                 asyncio::ExceptionGroup);
  }());
  std::vector<int> expected(32);
  for (int i = 0; i < 32; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(log, expected);
}

TEST(TaskGroup, CreateTaskOfACapturingLambdaKeepsItsCaptures) {
  std::vector<int> seen;
  run_v([&]() -> Coro<void> {
    co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
      for (int i = 0; i < 4; ++i)
        tg.create_task([i, &seen]() -> Coro<void> {
          co_await asyncio::sleep(0.1 * (4 - i));
          seen.push_back(i);
        });
      co_return;
    });
  }());
  EXPECT_EQ(seen, (std::vector<int>{3, 2, 1, 0}));
}

TEST(TaskGroup, CreateTaskTakesOtherAwaitables) {
  run_v([]() -> Coro<void> {
    asyncio::Queue<int> q;
    asyncio::Task<int> got;
    co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
      got = tg.create_task(q.get());
      tg.create_task(asyncio::sleep(1.0));
      q.put_nowait(4);
      co_return;
    });
    EXPECT_EQ(got.result(), 4);
    EXPECT_DOUBLE_EQ(now(), 1.0);
  }());
}

TEST(TaskGroup, ReturnsTheBlocksValue) {
  EXPECT_EQ(run_v([]() -> Coro<int> {
              co_return co_await asyncio::task_group([](TaskGroup& tg) -> Coro<int> {
                tg.create_task(nap(0.5));
                co_return 11;
              });
            }()),
            11);
}

TEST(TaskGroup, ChildrenMayStartMoreChildren) {
  run_v([]() -> Coro<void> {
    int finished = 0;
    co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
      tg.create_task([](TaskGroup& tg, int& finished) -> Coro<void> {
        co_await asyncio::sleep(0.5);
        tg.create_task([](int& finished) -> Coro<void> {
          co_await asyncio::sleep(1.0);
          ++finished;
        }(finished));
        ++finished;
      }(tg, finished));
      co_return;
    });
    EXPECT_EQ(finished, 2);
    EXPECT_DOUBLE_EQ(now(), 1.5);
  }());
}

TEST(TaskGroup, FirstFailureCancelsSiblingsAndRaisesExceptionGroup) {
  run_v([]() -> Coro<void> {
    asyncio::Task<int> sibling;
    try {
      co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
        sibling = tg.create_task(after(10.0, 1));
        tg.create_task(fail_after(1.0, "boom"));
        co_return;
      });
      ADD_FAILURE() << "no ExceptionGroup";
    } catch (const asyncio::ExceptionGroup& eg) {
      EXPECT_EQ(eg.exceptions().size(), 1u);
      EXPECT_EQ(asyncio::describe_exception(eg.exceptions()[0]), "std::runtime_error: boom");
    }
    EXPECT_TRUE(sibling.cancelled());
    EXPECT_DOUBLE_EQ(now(), 1.0);
  }());
}

TEST(TaskGroup, FailureCancelsTheBlockItself) {
  run_v([]() -> Coro<void> {
    bool block_cancelled = false;
    try {
      co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(1.0, "boom"));
        try {
          co_await asyncio::sleep(100.0);
        } catch (const asyncio::CancelledError&) {
          block_cancelled = true;
          throw;
        }
      });
    } catch (const asyncio::ExceptionGroup&) {
    }
    EXPECT_TRUE(block_cancelled);
    EXPECT_DOUBLE_EQ(now(), 1.0);
    EXPECT_EQ(asyncio::current_task().cancelling(), 0u);  // the group withdrew its cancellation
  }());
}

TEST(TaskGroup, SeveralFailuresAreReportedTogether) {
  run_v([]() -> Coro<void> {
    try {
      co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(1.0, "a"));
        tg.create_task(fail_after(1.0, "b"));
        co_return;
      });
    } catch (const asyncio::ExceptionGroup& eg) {
      EXPECT_EQ(eg.exceptions().size(), 2u);
    }
  }());
}

TEST(TaskGroup, BlockExceptionJoinsTheGroupAndCancelsChildren) {
  run_v([]() -> Coro<void> {
    asyncio::Task<int> child;
    try {
      co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
        child = tg.create_task(after(10.0, 1));
        co_await asyncio::sleep(0.5);
        throw std::logic_error("block");
      });
    } catch (const asyncio::ExceptionGroup& eg) {
      EXPECT_EQ(eg.exceptions().size(), 1u);
      EXPECT_EQ(asyncio::describe_exception(eg.exceptions()[0]), "std::logic_error: block");
    }
    EXPECT_TRUE(child.cancelled());
  }());
}

TEST(TaskGroup, ExternalCancellationCancelsChildrenAndPropagates) {
  run_v([]() -> Coro<void> {
    asyncio::Task<int> child;
    auto runner = asyncio::create_task([](asyncio::Task<int>& child) -> Coro<void> {
      co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
        child = tg.create_task(after(10.0, 1));
        co_return;
      });
    }(child));
    co_await asyncio::sleep(1.0);
    runner.cancel();
    EXPECT_THROW(co_await runner, asyncio::CancelledError);
    EXPECT_TRUE(runner.cancelled());
    EXPECT_TRUE(child.cancelled());
  }());
}

TEST(TaskGroup, CancellationDuringTheWaitWaitsForCleanup) {
  run_v([]() -> Coro<void> {
    bool cleaned = false;
    auto runner = asyncio::create_task([](bool& cleaned) -> Coro<void> {
      co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task([](bool& cleaned) -> Coro<void> {
          try {
            co_await forever();
          } catch (const asyncio::CancelledError&) {
          }
          co_await asyncio::sleep(1.0);  // slow cleanup after cancellation
          cleaned = true;
        }(cleaned));
        co_return;
      });
    }(cleaned));
    co_await asyncio::sleep(0.5);
    runner.cancel();
    EXPECT_THROW(co_await runner, asyncio::CancelledError);
    EXPECT_TRUE(cleaned);  // the group did not return before its child finished
    EXPECT_DOUBLE_EQ(now(), 1.5);
  }());
}

TEST(TaskGroup, CreateTaskWhileAbortingIsRuntimeError) {
  run_v([]() -> Coro<void> {
    bool refused = false;
    try {
      co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(0.5, "x"));
        try {
          co_await asyncio::sleep(10.0);
        } catch (const asyncio::CancelledError&) {
          try {
            tg.create_task(nap(0));
          } catch (const asyncio::RuntimeError&) {
            refused = true;
          }
          throw;
        }
      });
    } catch (const asyncio::ExceptionGroup&) {
    }
    EXPECT_TRUE(refused);
  }());
}

TEST(TaskGroup, CancelledChildrenAreNotErrors) {
  run_v([]() -> Coro<void> {
    co_await asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
      auto t = tg.create_task(forever());
      co_await asyncio::sleep(0.1);
      t.cancel();
    });
    EXPECT_DOUBLE_EQ(now(), 0.1);
  }());
}

TEST(TaskGroup, ChildFailingAfterTheBlockLeavesNoCancellationBehind) {
  run_v([]() -> Coro<void> {
    try {
      co_await asyncio::task_group([](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(1.0, "late"));
        co_return;  // the block is done; the group is waiting when the child fails
      });
    } catch (const asyncio::ExceptionGroup&) {
    }
    EXPECT_EQ(asyncio::current_task().cancelling(), 0u);
    co_await asyncio::sleep(1.0);  // and the task really is not cancelled
  }());
}

TEST(TaskGroup, ExternalCancelDuringFailureStaysPending) {
  run_v([]() -> Coro<void> {
    auto runner = asyncio::create_task([]() -> Coro<void> {
      try {
        co_await asyncio::task_group([](TaskGroup& tg) -> Coro<void> {
          tg.create_task(fail_after(1.0, "x"));
          co_await forever();
        });
      } catch (const asyncio::ExceptionGroup&) {
      }
      co_await asyncio::sleep(10.0);  // the outside cancellation is still delivered here
    }());
    co_await asyncio::sleep(1.0);  // same instant as the child failure
    runner.cancel();
    EXPECT_THROW(co_await runner, asyncio::CancelledError);
    EXPECT_LT(now(), 2.0);
  }());
}

// ---- conformance: behaviours CPython's test_taskgroups checks --------------------------------------

TEST(TaskGroup, OutsideATaskIsRuntimeError) {
  auto loop = virtual_loop();
  bool refused = false;
  loop->call_soon([&] {
    try {
      TaskGroup tg;
    } catch (const asyncio::RuntimeError&) {
      refused = true;
    }
  });
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_TRUE(refused);
}

TEST(TaskGroup, CreateTaskRefusedClosesTheCoroutineQuietly) {
  testing_support::LogCapture log;
  run_v([]() -> Coro<void> {
    try {
      co_await asyncio::task_group([](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(0.1, "boom"));
        try {
          co_await asyncio::sleep(10);
        } catch (const asyncio::CancelledError&) {
          EXPECT_THROW(tg.create_task(after(1.0, 1)), asyncio::RuntimeError);
          throw;
        }
      });
    } catch (const asyncio::ExceptionGroup&) {
    }
  }());
  EXPECT_TRUE(log.matching({"never awaited"}).empty());
}

// test_taskgroup_14: a failing inner group inside an outer group arrives nested.
TEST(TaskGroup, InnerGroupFailureArrivesAsANestedExceptionGroup) {
  run_v([]() -> Coro<void> {
    try {
      co_await asyncio::task_group([](TaskGroup& outer) -> Coro<void> {
        outer.create_task(after(10.0, 0));
        co_await asyncio::task_group([](TaskGroup& inner) -> Coro<void> {
          inner.create_task(fail_after(0.1, "inner"));
          co_return;
        });
      });
      ADD_FAILURE() << "no ExceptionGroup";
    } catch (const asyncio::ExceptionGroup& eg) {
      EXPECT_EQ(eg.exceptions().size(), 1u);
      auto nested = eg.subgroup<asyncio::ExceptionGroup>();
      EXPECT_TRUE(nested.has_value());
      auto leaf = eg.subgroup<std::runtime_error>();  // found through the nesting
      EXPECT_TRUE(leaf.has_value());
    }
  }());
}

// test_taskgroup_18: the block turns its cancellation into an error: an ExceptionGroup of it.
TEST(TaskGroup, BlockTurningItsCancellationIntoAnErrorGivesAnExceptionGroup) {
  run_v([]() -> Coro<void> {
    auto t = asyncio::create_task(asyncio::task_group([](TaskGroup&) -> Coro<void> {
      try {
        co_await asyncio::sleep(10);
      } catch (const asyncio::CancelledError&) {
        throw std::logic_error("instead");
      }
    }));
    co_await asyncio::sleep(0.1);
    t.cancel();
    try {
      co_await t;
      ADD_FAILURE() << "no ExceptionGroup";
    } catch (const asyncio::ExceptionGroup& eg) {
      EXPECT_TRUE(eg.subgroup<std::logic_error>().has_value());
    }
  }());
}

// test_cancellation: the cancel message reaches whoever awaits the cancelled group.
TEST(TaskGroup, CancelMessageReachesTheAwaiterAndEveryChildIsCancelled) {
  run_v([]() -> Coro<void> {
    int cancelled_children = 0;
    auto t = asyncio::create_task(asyncio::task_group([&](TaskGroup& tg) -> Coro<void> {
      for (int i = 0; i < 5; ++i)
        tg.create_task([&]() -> Coro<void> {
          try {
            co_await asyncio::sleep(5);
          } catch (const asyncio::CancelledError&) {
            ++cancelled_children;
            throw;
          }
        });
      co_return;
    }));
    co_await asyncio::sleep(0.1);
    t.cancel("stop");
    try {
      co_await t;
      ADD_FAILURE() << "not cancelled";
    } catch (const asyncio::CancelledError& e) {
      EXPECT_EQ(e.message(), "stop");
    }
    EXPECT_EQ(cancelled_children, 5);
  }());
}

}  // namespace
