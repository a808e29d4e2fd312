// SPDX-License-Identifier: MIT
// Task<T>: scheduling, names, results, cancellation (Python 3.11+ semantics), current_task,
// all_tasks, the "never retrieved" report, and that task frames never leak.
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include "test_support.hpp"

#include "log_capture.hpp"

#include <memory>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using testing_support::LogCapture;

namespace {

using asyncio::AnyTask;
using asyncio::CancelledError;
using asyncio::Coro;
using asyncio::EventLoop;
using asyncio::Future;
using asyncio::Task;

using testing_support::run_v;
using testing_support::virtual_loop;

/// One loop iteration per round (stop() before run_forever() runs exactly one).
void run_briefly(EventLoop& loop, int iterations = 3) {
  for (int i = 0; i < iterations; ++i) {
    loop.stop();
    loop.run_forever();
  }
}

/// Collects what reaches a loop's exception handler.
struct Reports {
  std::vector<asyncio::ExceptionContext> items;
  void install(EventLoop& loop) {
    loop.set_exception_handler([this](EventLoop&, const asyncio::ExceptionContext& c) { items.push_back(c); });
  }
};

/// Counts live instances; one lives in each test coroutine's frame.
struct Live {
  static inline int count = 0;
  Live() { ++count; }
  Live(const Live&) { ++count; }
  ~Live() { --count; }
};

// ---- coroutines used below -------------------------------------------------------------------

Coro<void> set_true(bool* flag) {
  *flag = true;
  co_return;
}

Coro<int> value_after(double seconds, int v) {
  co_await asyncio::sleep(seconds);
  co_return v;
}

Coro<int> fail_after(double seconds) {
  co_await asyncio::sleep(seconds);
  throw std::runtime_error("task failed");
}

Coro<void> wait_on(Future<int> f) { co_await f; }

/// Sleeps; records whether and when CancelledError arrived, then re-raises it.
struct SleepLog {
  bool cancelled = false;
  double at = -1;
  std::string message;
  bool cleaned_up = false;
};

Coro<int> logged_sleep(SleepLog* log, double seconds) {
  Live live;
  try {
    co_await asyncio::sleep(seconds);
  } catch (const CancelledError& e) {
    log->cancelled = true;
    log->at = asyncio::get_running_loop().time();
    log->message = e.message();
    log->cleaned_up = true;
    throw;
  }
  co_return 1;
}

Coro<int> swallow_cancel(SleepLog* log) {
  try {
    co_await asyncio::sleep(100);
  } catch (const CancelledError& e) {
    log->cancelled = true;
    log->message = e.message();
    co_return 42;
  }
  co_return 0;
}

Coro<void> sleep_forever() {
  Live live;
  co_await asyncio::sleep(1e9);
}

// ---- creation and scheduling -----------------------------------------------------------------

TEST(Task, CreateTaskRunsTheBodyOnTheNextIteration) {
  auto loop = virtual_loop();
  bool ran = false;
  auto t = loop->create_task(set_true(&ran));
  EXPECT_FALSE(ran);
  EXPECT_FALSE(t.done());
  run_briefly(*loop, 1);
  EXPECT_TRUE(ran);
  EXPECT_TRUE(t.done());
}

Coro<bool> child_waits_for_parent_to_yield() {
  bool ran = false;
  auto t = asyncio::create_task(set_true(&ran));
  bool before = ran;
  co_await asyncio::sleep(0);
  co_return !before && ran && t.done();
}

TEST(Task, ChildTaskStartsOnlyWhenTheParentYields) { EXPECT_TRUE(run_v(child_waits_for_parent_to_yield())); }

Coro<std::string> capturing_lambda_task() {
  std::string name = "abc";
  // A capturing lambda whose object dies at the `;`: create_task moves it into the task's frame.
  auto t = asyncio::create_task([name]() -> Coro<std::string> {
    co_await asyncio::sleep(0.1);
    co_return name + name;
  });
  name.clear();
  co_return co_await t;
}

TEST(Task, CreateTaskOfACoroutineLambdaKeepsItsCapturesAlive) {
  EXPECT_EQ(run_v(capturing_lambda_task()), "abcabc");
}

Coro<int> make_coro_with_arguments() {
  auto add = [](int a, std::unique_ptr<int> b) -> Coro<int> {
    co_await asyncio::sleep(0);
    co_return a + *b;
  };
  co_return co_await asyncio::create_task(asyncio::make_coro(add, 2, std::make_unique<int>(40)));
}

TEST(Task, MakeCoroOwnsTheCallableAndItsArguments) { EXPECT_EQ(run_v(make_coro_with_arguments()), 42); }

Coro<bool> create_task_of_other_awaitables() {
  asyncio::Event ev;
  auto waiting = asyncio::create_task(ev.wait(), "waiter");
  auto sleeping = asyncio::create_task(asyncio::sleep(0.5, 3));
  co_await asyncio::sleep(0.1);
  bool pending = !waiting.done();
  ev.set();
  bool set = co_await waiting;
  int slept = co_await sleeping;
  co_return pending && waiting.get_name() == "waiter" && set && slept == 3;
}

TEST(Task, CreateTaskTakesOtherAwaitables) { EXPECT_TRUE(run_v(create_task_of_other_awaitables())); }

TEST(Task, DroppedHandleDoesNotStopThePendingTask) {
  auto loop = virtual_loop();
  bool ran = false;
  loop->create_task(set_true(&ran));
  run_briefly(*loop, 1);
  EXPECT_TRUE(ran);
}

TEST(Task, CreateTaskOutsideARunningLoopThrows) {
  LogCapture log;  // the coroutine is dropped unawaited
  bool ran = false;
  EXPECT_THROW(asyncio::create_task(set_true(&ran)), asyncio::RuntimeError);
  EXPECT_FALSE(ran);
}

TEST(Task, DefaultNameIsTaskN) {
  auto loop = virtual_loop();
  auto a = loop->create_task(value_after(0, 1));
  auto b = loop->create_task(value_after(0, 2));
  std::regex pattern("Task-([0-9]+)");
  std::smatch ma, mb;
  std::string na = a.get_name(), nb = b.get_name();
  ASSERT_TRUE(std::regex_match(na, ma, pattern)) << na;
  ASSERT_TRUE(std::regex_match(nb, mb, pattern)) << nb;
  EXPECT_EQ(std::stoll(mb[1]) , std::stoll(ma[1]) + 1);
  run_briefly(*loop);
}

TEST(Task, NameGivenAtCreation) {
  auto loop = virtual_loop();
  auto t = loop->create_task(value_after(0, 1), "fetcher");
  EXPECT_EQ(t.get_name(), "fetcher");
  run_briefly(*loop);
}

TEST(Task, SetNameRenames) {
  auto loop = virtual_loop();
  auto t = loop->create_task(value_after(0, 1));
  t.set_name("renamed");
  EXPECT_EQ(t.get_name(), "renamed");
  AnyTask any = t;
  EXPECT_EQ(any.get_name(), "renamed");
  any.set_name("again");
  EXPECT_EQ(t.get_name(), "again");
  run_briefly(*loop);
}

TEST(Task, ResultOfAFinishedTask) {
  auto loop = virtual_loop();
  auto t = loop->create_task(value_after(1, 5));
  EXPECT_EQ(loop->run_until_complete(t), 5);
  EXPECT_TRUE(t.done());
  EXPECT_FALSE(t.cancelled());
  EXPECT_EQ(t.result(), 5);
  EXPECT_EQ(t.exception(), nullptr);
  EXPECT_EQ(&t.get_loop(), loop.get());
}

TEST(Task, ResultOfAPendingTaskThrowsInvalidStateError) {
  auto loop = virtual_loop();
  auto t = loop->create_task(value_after(1, 5));
  EXPECT_THROW(t.result(), asyncio::InvalidStateError);
  EXPECT_THROW(t.exception(), asyncio::InvalidStateError);
  loop->run_until_complete(t);
}

TEST(Task, ExceptionOfAFailedTask) {
  auto loop = virtual_loop();
  auto t = loop->create_task(fail_after(1));
  EXPECT_THROW(loop->run_until_complete(t), std::runtime_error);
  EXPECT_TRUE(t.done());
  EXPECT_FALSE(t.cancelled());
  EXPECT_TRUE(t.exception());
  EXPECT_THROW(t.result(), std::runtime_error);
}

Coro<int> await_task_result() {
  auto t = asyncio::create_task(value_after(2, 9));
  int v = co_await t;
  co_return v + (t.done() ? 1 : 0);
}

TEST(Task, AwaitingATaskReturnsItsResult) { EXPECT_EQ(run_v(await_task_result()), 10); }

Coro<std::string> await_failing_task() {
  auto t = asyncio::create_task(fail_after(1));
  try {
    co_await t;
  } catch (const std::runtime_error& e) {
    co_return e.what();
  }
  co_return "";
}

TEST(Task, AwaitingAFailedTaskRethrows) { EXPECT_EQ(run_v(await_failing_task()), "task failed"); }

Coro<int> await_any_task() {
  auto t = asyncio::create_task(fail_after(0));
  AnyTask any = t;
  try {
    co_await any;
  } catch (const std::runtime_error&) {
    co_return 1;
  }
  co_return 0;
}

TEST(Task, AwaitingAnAnyTaskRethrowsAndDiscardsTheValue) { EXPECT_EQ(run_v(await_any_task()), 1); }

Coro<std::unique_ptr<int>> make_unique_later() {
  co_await asyncio::sleep(1);
  co_return std::make_unique<int>(3);
}

Coro<int> await_move_only_task() {
  auto t = asyncio::create_task(make_unique_later());
  std::unique_ptr<int> p = co_await t;
  co_return *p;
}

TEST(Task, MoveOnlyResultComesOutOfTheTask) { EXPECT_EQ(run_v(await_move_only_task()), 3); }

TEST(Task, DoneCallbackRunsWhenTheTaskFinishes) {
  auto loop = virtual_loop();
  auto t = loop->create_task(value_after(1, 4));
  int seen = 0;
  t.add_done_callback([&](Future<int> f) { seen = f.result(); });
  loop->run_until_complete(t);
  run_briefly(*loop);
  EXPECT_EQ(seen, 4);
}

// ---- cancellation ----------------------------------------------------------------------------

Coro<void> cancel_sleeper_at_1(SleepLog* log, bool* awaiter_saw_cancel) {
  auto t = asyncio::create_task(logged_sleep(log, 10));
  co_await asyncio::sleep(1);
  t.cancel();
  try {
    co_await t;
  } catch (const CancelledError&) {
    *awaiter_saw_cancel = true;
  }
  EXPECT_TRUE(t.cancelled());
  EXPECT_TRUE(t.done());
}

TEST(TaskCancel, DeliversCancelledErrorAtTheSleep) {
  SleepLog log;
  bool awaiter_saw = false;
  run_v(cancel_sleeper_at_1(&log, &awaiter_saw));
  EXPECT_TRUE(log.cancelled);
  EXPECT_DOUBLE_EQ(log.at, 1.0);  // at the cancel, not when the sleep would have ended
  EXPECT_TRUE(awaiter_saw);
}

TEST(TaskCancel, CatchCleanUpAndReraiseEndsCancelled) {
  Live::count = 0;
  SleepLog log;
  bool awaiter_saw = false;
  run_v(cancel_sleeper_at_1(&log, &awaiter_saw));
  EXPECT_TRUE(log.cleaned_up);
  EXPECT_EQ(Live::count, 0);
}

TEST(TaskCancel, DeliversCancelledErrorAtAFutureAwaitAndCancelsTheFuture) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  auto t = loop->create_task(wait_on(f));
  run_briefly(*loop);
  EXPECT_TRUE(t.cancel());
  run_briefly(*loop);
  EXPECT_TRUE(t.cancelled());
  EXPECT_TRUE(f.cancelled());  // Python: cancelling a task cancels the future it waits on
}

Coro<void> await_inner(Task<int> inner, bool* outer_saw_cancel) {
  try {
    co_await inner;
  } catch (const CancelledError&) {
    *outer_saw_cancel = true;
    throw;
  }
}

TEST(TaskCancel, CancellingATaskAwaitingAnotherCancelsTheInnerToo) {
  auto loop = virtual_loop();
  SleepLog inner_log;
  bool outer_saw = false;
  auto inner = loop->create_task(logged_sleep(&inner_log, 100), "inner");
  auto outer = loop->create_task(await_inner(inner, &outer_saw), "outer");
  loop->call_later(1.0, [&] { outer.cancel("stop both"); });
  EXPECT_THROW(loop->run_until_complete(outer), CancelledError);
  EXPECT_TRUE(inner.cancelled());
  EXPECT_TRUE(outer.cancelled());
  EXPECT_TRUE(inner_log.cancelled);
  EXPECT_EQ(inner_log.message, "stop both");
  EXPECT_TRUE(outer_saw);
  EXPECT_DOUBLE_EQ(loop->time(), 1.0);
}

TEST(TaskCancel, InnerSwallowingTheCancellationLetsTheOuterGoOn) {
  // Python: the outer task's await returns the inner result; cancelling() still counts 1.
  auto loop = virtual_loop();
  SleepLog inner_log;
  bool outer_saw = false;
  auto inner = loop->create_task(swallow_cancel(&inner_log));
  auto outer = loop->create_task(await_inner(inner, &outer_saw));
  loop->call_later(1.0, [&] { outer.cancel(); });
  loop->run_until_complete(outer);
  EXPECT_TRUE(inner_log.cancelled);
  EXPECT_FALSE(outer_saw);
  EXPECT_FALSE(outer.cancelled());
  EXPECT_EQ(inner.result(), 42);
  EXPECT_EQ(outer.cancelling(), 1u);
}

TEST(TaskCancel, SwallowingCancellationReturnsAValue) {
  auto loop = virtual_loop();
  SleepLog log;
  auto t = loop->create_task(swallow_cancel(&log));
  loop->call_later(1.0, [&] { t.cancel(); });
  EXPECT_EQ(loop->run_until_complete(t), 42);
  EXPECT_TRUE(log.cancelled);
  EXPECT_FALSE(t.cancelled());
  EXPECT_EQ(t.cancelling(), 1u);
}

TEST(TaskCancel, CancelBeforeTheFirstStepNeverRunsTheBody) {
  auto loop = virtual_loop();
  bool ran = false;
  auto t = loop->create_task(set_true(&ran));
  EXPECT_TRUE(t.cancel());
  run_briefly(*loop);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(t.cancelled());
  EXPECT_THROW(t.result(), CancelledError);
}

TEST(TaskCancel, MessageIsVisibleInCancelledError) {
  auto loop = virtual_loop();
  SleepLog log;
  auto t = loop->create_task(logged_sleep(&log, 10));
  loop->call_later(1.0, [&] { t.cancel("shutting down"); });
  try {
    loop->run_until_complete(t);
    ADD_FAILURE() << "no exception";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "shutting down");
  }
  EXPECT_EQ(log.message, "shutting down");
}

TEST(TaskCancel, CancelOfADoneTaskReturnsFalse) {
  auto loop = virtual_loop();
  auto t = loop->create_task(value_after(0, 1));
  loop->run_until_complete(t);
  EXPECT_FALSE(t.cancel());
  EXPECT_FALSE(t.cancelled());
  EXPECT_EQ(t.cancelling(), 0u);
}

TEST(TaskCancel, CancellingCountsRequestsAndUncancelWithdrawsThem) {
  auto loop = virtual_loop();
  SleepLog log;
  auto t = loop->create_task(swallow_cancel(&log));
  run_briefly(*loop);
  EXPECT_EQ(t.cancelling(), 0u);
  t.cancel();
  t.cancel();
  EXPECT_EQ(t.cancelling(), 2u);
  EXPECT_EQ(t.uncancel(), 1u);
  EXPECT_EQ(t.cancelling(), 1u);
  EXPECT_EQ(loop->run_until_complete(t), 42);
  EXPECT_EQ(t.uncancel(), 0u);
  EXPECT_EQ(t.uncancel(), 0u);  // never below zero
}

Coro<int> catch_once_then_continue(int* caught) {
  for (int i = 0; i < 3; ++i) {
    try {
      co_await asyncio::sleep(1);
    } catch (const CancelledError&) {
      ++*caught;
    }
  }
  co_return 7;
}

TEST(TaskCancel, SeveralCancelsBeforeTheTaskRunsRaiseOnce) {
  auto loop = virtual_loop();
  int caught = 0;
  auto t = loop->create_task(catch_once_then_continue(&caught));
  run_briefly(*loop);
  t.cancel();
  t.cancel();
  t.cancel();
  EXPECT_EQ(loop->run_until_complete(t), 7);
  EXPECT_EQ(caught, 1);
  EXPECT_EQ(t.cancelling(), 3u);
}

Coro<int> cancel_self_then_sleep(bool* after) {
  asyncio::current_task().cancel("self");
  co_await asyncio::sleep(0);
  *after = true;
  co_return 1;
}

TEST(TaskCancel, TaskCancellingItselfGetsCancelledErrorAtItsNextAwait) {
  auto loop = virtual_loop();
  bool after = false;
  auto t = loop->create_task(cancel_self_then_sleep(&after));
  try {
    loop->run_until_complete(t);
    ADD_FAILURE() << "no exception";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "self");
  }
  EXPECT_FALSE(after);
  EXPECT_TRUE(t.cancelled());
}

Coro<int> cancel_self_then_return() {
  asyncio::current_task().cancel();
  co_return 5;
}

TEST(TaskCancel, TaskCancellingItselfAndReturningEndsCancelled) {
  // Python: a cancel requested during the last step wins over the return value.
  auto loop = virtual_loop();
  auto t = loop->create_task(cancel_self_then_return());
  EXPECT_THROW(loop->run_until_complete(t), CancelledError);
  EXPECT_TRUE(t.cancelled());
}

Coro<int> cancel_self_uncancel_then_sleep() {
  AnyTask me = asyncio::current_task();
  me.cancel();
  me.uncancel();  // withdrawn before it was delivered
  co_await asyncio::sleep(1);
  co_return 3;
}

TEST(TaskCancel, UncancelToZeroWithdrawsAnUndeliveredCancel) {
  auto loop = virtual_loop();
  auto t = loop->create_task(cancel_self_uncancel_then_sleep());
  EXPECT_EQ(loop->run_until_complete(t), 3);
}

Coro<int> cancel_while_woken(Future<int> f, Task<void>* victim) {
  // The victim's future is already done (the victim is scheduled) when we cancel it.
  f.set_result(1);
  victim->cancel();
  co_return 0;
}

TEST(TaskCancel, CancelAfterTheAwaitedFutureCompletedStillRaisesAtThatAwait) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  auto victim = loop->create_task(wait_on(f));
  run_briefly(*loop);
  auto killer = loop->create_task(cancel_while_woken(f, &victim));
  run_briefly(*loop);
  EXPECT_TRUE(victim.cancelled());
  EXPECT_TRUE(killer.done());
}

Coro<bool> await_self_via_current_task() {
  try {
    co_await asyncio::current_task();
  } catch (const asyncio::RuntimeError&) {
    co_return true;
  }
  co_return false;
}

TEST(TaskCancel, AwaitingItselfThrowsRuntimeError) { EXPECT_TRUE(run_v(await_self_via_current_task())); }

Coro<bool> await_self_via_handle(Task<bool>* self) {
  co_await asyncio::sleep(0);
  try {
    co_await *self;
  } catch (const asyncio::RuntimeError&) {
    co_return true;
  }
  co_return false;
}

TEST(TaskCancel, AwaitingItsOwnHandleThrowsRuntimeError) {
  auto loop = virtual_loop();
  Task<bool> t;
  t = loop->create_task(await_self_via_handle(&t));
  EXPECT_TRUE(loop->run_until_complete(t));
}

Coro<void> unwind_level(int level, std::vector<int>* order) {
  try {
    if (level == 0)
      co_await asyncio::sleep(100);
    else
      co_await unwind_level(level - 1, order);
  } catch (const CancelledError&) {
    order->push_back(level);
    throw;
  }
}

TEST(TaskCancel, CancellationUnwindsNestedCorosInnermostFirst) {
  auto loop = virtual_loop();
  std::vector<int> order;
  auto t = loop->create_task(unwind_level(3, &order));
  loop->call_later(1.0, [&] { t.cancel(); });
  EXPECT_THROW(loop->run_until_complete(t), CancelledError);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

// ---- current_task / all_tasks ----------------------------------------------------------------

TEST(CurrentTask, OutsideALoopThrows) { EXPECT_THROW(asyncio::current_task(), asyncio::RuntimeError); }

TEST(CurrentTask, InAPlainCallbackIsEmpty) {
  auto loop = virtual_loop();
  bool empty = false;
  loop->call_soon([&] { empty = !asyncio::current_task(); });
  run_briefly(*loop, 1);
  EXPECT_TRUE(empty);
}

Coro<AnyTask> nested_current() { co_return asyncio::current_task(); }

Coro<bool> current_inside(Task<bool>* self) {
  AnyTask here = asyncio::current_task();
  co_await asyncio::sleep(0);
  AnyTask after_yield = asyncio::current_task();
  AnyTask nested = co_await nested_current();
  AnyTask expected = *self;
  co_return here == expected && after_yield == expected && nested == expected;
}

TEST(CurrentTask, InsideATaskIsThatTaskAlsoInNestedCoros) {
  auto loop = virtual_loop();
  Task<bool> t;
  t = loop->create_task(current_inside(&t));
  EXPECT_TRUE(loop->run_until_complete(t));
}

Coro<std::size_t> count_tasks(std::size_t* while_children) {
  auto a = asyncio::create_task(value_after(1, 1));
  auto b = asyncio::create_task(value_after(2, 2));
  auto all = asyncio::all_tasks();
  *while_children = all.size();
  bool has_a = false, has_b = false, has_me = false;
  AnyTask me = asyncio::current_task();
  for (auto& t : all) {
    has_a = has_a || t == AnyTask(a);
    has_b = has_b || t == AnyTask(b);
    has_me = has_me || t == me;
  }
  EXPECT_TRUE(has_a && has_b && has_me);
  co_await a;
  co_await b;
  co_return asyncio::all_tasks().size();
}

TEST(AllTasks, ListsThePendingTasksOfTheRunningLoop) {
  std::size_t during = 0;
  EXPECT_EQ(run_v(count_tasks(&during)), 1u);  // only the main task is left
  EXPECT_EQ(during, 3u);
}

TEST(AllTasks, OutsideALoopThrows) { EXPECT_THROW(asyncio::all_tasks(), asyncio::RuntimeError); }

TEST(AllTasks, TaskCountFollowsPendingTasks) {
  auto loop = virtual_loop();
  EXPECT_EQ(loop->task_count(), 0u);
  auto a = loop->create_task(value_after(1, 1));
  auto b = loop->create_task(value_after(2, 1));
  EXPECT_EQ(loop->task_count(), 2u);
  loop->run_until_complete(a);
  EXPECT_EQ(loop->task_count(), 1u);
  loop->run_until_complete(b);
  EXPECT_EQ(loop->task_count(), 0u);
}

TEST(Task, EnsureFutureWrapsACoroOnTheThreadLoop) {
  asyncio::set_event_loop(nullptr);
  auto t = asyncio::ensure_future(value_after(0, 8));
  EXPECT_EQ(&t.get_loop(), &asyncio::get_event_loop());
  auto same = asyncio::ensure_future(t);
  EXPECT_TRUE(same == t);
  EXPECT_EQ(asyncio::get_event_loop().run_until_complete(t), 8);
  asyncio::set_event_loop(nullptr);
}

TEST(Task, EmptyAnyTaskIsFalse) {
  AnyTask none;
  EXPECT_FALSE(none);
}

TEST(Task, HandleMayOutliveItsLoop) {
  Task<int> done_task, pending_task;
  {
    auto loop = virtual_loop();
    Reports reports;
    reports.install(*loop);
    done_task = loop->create_task(value_after(1, 2));
    pending_task = loop->create_task(value_after(100, 3));
    loop->run_until_complete(done_task);
    loop->close();  // destroys the pending one's coroutine
    loop->set_exception_handler(nullptr);
  }
  EXPECT_EQ(done_task.result(), 2);
  EXPECT_FALSE(pending_task.done());
}

// ---- "Task exception was never retrieved" ----------------------------------------------------

TEST(TaskUnretrieved, DroppedFailedTaskIsReportedWithItsName) {
  auto loop = virtual_loop();
  Reports reports;
  reports.install(*loop);
  loop->create_task(fail_after(1), "doomed");  // handle dropped at once
  loop->call_later(2.0, [&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(reports.items.size(), 1u);
  EXPECT_EQ(reports.items[0].message, "Task exception was never retrieved");
  EXPECT_EQ(reports.items[0].task, "doomed");
  EXPECT_NE(reports.items[0].location.find("task_test.cpp"), std::string::npos);
  ASSERT_TRUE(reports.items[0].exception);
  EXPECT_THROW(std::rethrow_exception(reports.items[0].exception), std::runtime_error);
}

TEST(TaskUnretrieved, ReportedWhenTheLastHandleGoesAfterTheTaskFailed) {
  auto loop = virtual_loop();
  Reports reports;
  reports.install(*loop);
  {
    auto t = loop->create_task(fail_after(1), "late-drop");
    loop->call_later(2.0, [&] { loop->stop(); });
    loop->run_forever();
    EXPECT_TRUE(t.done());
    EXPECT_TRUE(reports.items.empty());  // still held: nothing yet
  }
  ASSERT_EQ(reports.items.size(), 1u);
  EXPECT_EQ(reports.items[0].task, "late-drop");
}

TEST(TaskUnretrieved, NotReportedWhenTheExceptionWasRetrieved) {
  auto loop = virtual_loop();
  Reports reports;
  reports.install(*loop);
  {
    auto t = loop->create_task(fail_after(1), "checked");
    loop->call_later(2.0, [&] { loop->stop(); });
    loop->run_forever();
    EXPECT_TRUE(t.exception());
  }
  {
    auto t = loop->create_task(fail_after(1), "awaited");
    EXPECT_THROW(loop->run_until_complete(t), std::runtime_error);
  }
  {
    auto t = loop->create_task(fail_after(1), "result-called");
    loop->call_later(2.0, [&] { loop->stop(); });
    loop->run_forever();
    EXPECT_THROW(t.result(), std::runtime_error);
  }
  EXPECT_TRUE(reports.items.empty());
}

TEST(TaskUnretrieved, NotReportedWhenAnotherTaskAwaitedIt) {
  auto loop = virtual_loop();
  Reports reports;
  reports.install(*loop);
  EXPECT_EQ(loop->run_until_complete(await_failing_task()), "task failed");
  EXPECT_TRUE(reports.items.empty());
}

TEST(TaskUnretrieved, CancelledTaskIsNotReported) {
  auto loop = virtual_loop();
  Reports reports;
  reports.install(*loop);
  {
    auto t = loop->create_task(sleep_forever());
    loop->call_later(1.0, [&] { t.cancel(); });
    loop->call_later(2.0, [&] { loop->stop(); });
    loop->run_forever();
    EXPECT_TRUE(t.cancelled());
  }
  EXPECT_TRUE(reports.items.empty());
}

TEST(TaskUnretrieved, GoesToTheLogWhenTheLoopIsGone) {
  LogCapture log;
  Task<int> t;
  {
    auto loop = virtual_loop();
    t = loop->create_task(fail_after(1), "orphan");
    loop->call_later(2.0, [&] { loop->stop(); });
    loop->run_forever();
  }
  t = Task<int>();  // last handle dropped after the loop was destroyed
  EXPECT_EQ(log.count("Task exception was never retrieved"), 1u);
  EXPECT_EQ(log.count("orphan"), 1u);
}

// ---- no leaks --------------------------------------------------------------------------------

Coro<int> live_value(double seconds) {
  Live live;
  co_await asyncio::sleep(seconds);
  co_return 1;
}

Coro<int> live_failure() {
  Live live;
  co_await asyncio::sleep(0);
  throw std::runtime_error("x");
}

Coro<void> live_nested(int depth) {
  Live live;
  if (depth == 0) {
    co_await asyncio::sleep(1e9);
    co_return;
  }
  co_await live_nested(depth - 1);
}

Coro<void> live_param(Live) { co_return; }

TEST(TaskLeaks, FinishedTasksFreeTheirFrames) {
  Live::count = 0;
  {
    auto loop = virtual_loop();
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 100; ++i) tasks.push_back(loop->create_task(live_value(i % 7)));
    run_briefly(*loop, 1);
    EXPECT_EQ(Live::count, 100);
    loop->run_until_complete(live_value(10));
    EXPECT_EQ(Live::count, 0);  // handles are still held; frames are not
  }
  EXPECT_EQ(Live::count, 0);
}

TEST(TaskLeaks, FailedAndCancelledTasksFreeTheirFrames) {
  Live::count = 0;
  {
    auto loop = virtual_loop();
    Reports reports;
    reports.install(*loop);
    auto failed = loop->create_task(live_failure());
    auto cancelled = loop->create_task(live_value(100));
    auto cancelled_early = loop->create_task(live_param(Live{}));
    cancelled_early.cancel();
    run_briefly(*loop);
    cancelled.cancel();
    run_briefly(*loop);
    EXPECT_TRUE(failed.done());
    EXPECT_TRUE(cancelled.cancelled());
    EXPECT_TRUE(cancelled_early.cancelled());
    EXPECT_EQ(Live::count, 0);
    failed.exception();
  }
  EXPECT_EQ(Live::count, 0);
}

TEST(TaskLeaks, CloseDestroysPendingFramesIncludingNestedCoros) {
  Live::count = 0;
  auto loop = virtual_loop();
  Reports reports;
  reports.install(*loop);
  auto t = loop->create_task(live_nested(50));
  run_briefly(*loop, 1);
  EXPECT_EQ(Live::count, 51);  // one per level of the parked chain
  auto u = loop->create_task(live_param(Live{}));  // never started: its parameter is in the frame
  EXPECT_EQ(Live::count, 52);
  loop->close();
  EXPECT_EQ(Live::count, 0);
  EXPECT_EQ(reports.items.size(), 2u);
}

TEST(TaskLeaks, RunCancelsLeftoversAndFreesThem) {
  Live::count = 0;
  run_v([]() -> Coro<void> {
    for (int i = 0; i < 10; ++i) asyncio::create_task(sleep_forever());
    co_await asyncio::sleep(1);
  }());
  EXPECT_EQ(Live::count, 0);
}

// ---- conformance: behaviours CPython's test_tasks checks ----------------------------------------

Coro<bool> set_methods_refused() {
  auto t = asyncio::create_task([]() -> Coro<int> { co_return 1; }());
  bool result_refused = false, exception_refused = false;
  try {
    t.set_result(2);
  } catch (const asyncio::RuntimeError& e) {
    result_refused = std::string_view(e.what()).find("set_result") != std::string_view::npos;
  }
  try {
    t.set_exception(std::runtime_error("x"));
  } catch (const asyncio::RuntimeError& e) {
    exception_refused = std::string_view(e.what()).find("set_exception") != std::string_view::npos;
  }
  int v = co_await t;  // the coroutine's own result still arrives
  co_return result_refused && exception_refused && v == 1;
}

TEST(Task, SetResultAndSetExceptionOnATaskRaiseRuntimeError) { EXPECT_TRUE(run_v(set_methods_refused())); }

}  // namespace
