// SPDX-License-Identifier: MIT
// Future<T>: result/exception/cancel, done callbacks, awaiting from tasks, unretrieved exceptions.
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using asyncio::EventLoop;
using asyncio::Future;

std::shared_ptr<EventLoop> virtual_loop() { return asyncio::new_event_loop({.virtual_time = true}); }

/// Runs the loop until everything ready now (and what that schedules, up to a bound) has run.
void run_briefly(EventLoop& loop, int iterations = 3) {
  for (int i = 0; i < iterations; ++i) {
    loop.stop();
    loop.run_forever();  // one iteration
  }
}

// ---- state -----------------------------------------------------------------------------------

TEST(Future, NewFutureIsPending) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  EXPECT_TRUE(static_cast<bool>(f));
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(&f.get_loop(), loop.get());
}

TEST(Future, ClosedLoopStillCreatesUsableFutures) {
  auto loop = virtual_loop();
  loop->close();
  auto f = loop->create_future<int>();
  EXPECT_FALSE(f.done());
  f.set_result(3);
  EXPECT_EQ(f.result(), 3);
  // Scheduling the callback on the closed loop is what fails.
  EXPECT_THROW(f.add_done_callback([](Future<int>) {}), asyncio::RuntimeError);
}

TEST(Future, DefaultConstructedHandleIsEmpty) {
  Future<int> f;
  EXPECT_FALSE(static_cast<bool>(f));
}

TEST(Future, ConstructingOnALoopMatchesCreateFuture) {
  auto loop = virtual_loop();
  Future<int> f(*loop);
  EXPECT_FALSE(f.done());
  EXPECT_EQ(&f.get_loop(), loop.get());
}

TEST(Future, ResultOfPendingFutureThrowsInvalidStateError) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  EXPECT_THROW(f.result(), asyncio::InvalidStateError);
}

TEST(Future, ExceptionOfPendingFutureThrowsInvalidStateError) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  EXPECT_THROW(f.exception(), asyncio::InvalidStateError);
}

TEST(Future, SetResultCompletesTheFuture) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.set_result(5);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.result(), 5);
  EXPECT_EQ(f.exception(), nullptr);
}

TEST(Future, VoidFutureSetResult) {
  auto loop = virtual_loop();
  auto f = loop->create_future();
  f.set_result();
  EXPECT_TRUE(f.done());
  EXPECT_NO_THROW(f.result());
}

TEST(Future, CopiesShareTheState) {
  auto loop = virtual_loop();
  auto f = loop->create_future<std::string>();
  Future<std::string> g = f;
  EXPECT_TRUE(f == g);
  g.set_result("shared");
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), "shared");
  EXPECT_FALSE(f == loop->create_future<std::string>());
}

TEST(Future, SetResultTwiceThrowsInvalidStateError) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.set_result(1);
  EXPECT_THROW(f.set_result(2), asyncio::InvalidStateError);
  EXPECT_EQ(f.result(), 1);
}

TEST(Future, SetExceptionAfterResultThrowsInvalidStateError) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.set_result(1);
  EXPECT_THROW(f.set_exception(std::runtime_error("late")), asyncio::InvalidStateError);
}

TEST(Future, SetExceptionMakesResultRethrow) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.set_exception(std::runtime_error("bad"));
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_THROW(f.result(), std::runtime_error);
  std::exception_ptr e = f.exception();
  ASSERT_TRUE(e);
  try {
    std::rethrow_exception(e);
  } catch (const std::runtime_error& x) {
    EXPECT_STREQ(x.what(), "bad");
  }
}

TEST(Future, SetExceptionTakesAnExceptionPtr) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  auto e = std::make_exception_ptr(std::out_of_range("range"));
  f.set_exception(e);
  EXPECT_EQ(f.exception(), e);
}

TEST(Future, SetExceptionWithNullThrowsValueError) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  EXPECT_THROW(f.set_exception(std::exception_ptr{}), asyncio::ValueError);
  EXPECT_FALSE(f.done());
}

TEST(Future, CancelMarksItCancelledAndDone) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_THROW(f.result(), asyncio::CancelledError);
  EXPECT_THROW(f.exception(), asyncio::CancelledError);
}

TEST(Future, CancelOfDoneFutureReturnsFalse) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.set_result(1);
  EXPECT_FALSE(f.cancel());
  EXPECT_FALSE(f.cancelled());
  auto g = loop->create_future<int>();
  EXPECT_TRUE(g.cancel());
  EXPECT_FALSE(g.cancel());
}

TEST(Future, CancelMessageReachesCancelledError) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.cancel("no longer needed");
  try {
    f.result();
    ADD_FAILURE() << "no exception";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_EQ(e.message(), "no longer needed");
    EXPECT_STREQ(e.what(), "no longer needed");
  }
}

TEST(Future, CancelledErrorIsNotAStdException) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.cancel();
  bool std_caught = false, cancel_caught = false;
  try {
    try {
      f.result();
    } catch (const std::exception&) {
      std_caught = true;
    }
  } catch (const asyncio::CancelledError&) {
    cancel_caught = true;
  }
  EXPECT_FALSE(std_caught);
  EXPECT_TRUE(cancel_caught);
}

TEST(Future, CancelledFutureRejectsSetResultAndSetException) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.cancel();
  EXPECT_THROW(f.set_result(1), asyncio::InvalidStateError);
  EXPECT_THROW(f.set_exception(std::runtime_error("x")), asyncio::InvalidStateError);
}

// ---- done callbacks --------------------------------------------------------------------------

TEST(FutureCallbacks, RunViaCallSoonAfterTheFutureIsDone) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  int seen = 0;
  f.add_done_callback([&](Future<int> g) { seen = g.result(); });
  run_briefly(*loop);
  EXPECT_EQ(seen, 0);  // not done: nothing runs
  f.set_result(3);
  EXPECT_EQ(seen, 0);  // scheduled, not called synchronously
  run_briefly(*loop, 1);
  EXPECT_EQ(seen, 3);
}

TEST(FutureCallbacks, AddedToADoneFutureRunsSoonNotAtOnce) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.set_result(8);
  int seen = 0;
  f.add_done_callback([&](Future<int> g) { seen = g.result(); });
  EXPECT_EQ(seen, 0);
  run_briefly(*loop, 1);
  EXPECT_EQ(seen, 8);
}

TEST(FutureCallbacks, RunOnceEach) {
  auto loop = virtual_loop();
  auto f = loop->create_future();
  int calls = 0;
  f.add_done_callback([&](Future<>) { ++calls; });
  f.set_result();
  run_briefly(*loop, 5);
  EXPECT_EQ(calls, 1);
}

TEST(FutureCallbacks, RunInRegistrationOrder) {
  auto loop = virtual_loop();
  auto f = loop->create_future();
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) f.add_done_callback([&order, i](Future<>) { order.push_back(i); });
  f.set_result();
  run_briefly(*loop);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(FutureCallbacks, RunWhenTheFutureIsCancelled) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  bool saw_cancel = false;
  f.add_done_callback([&](Future<int> g) { saw_cancel = g.cancelled(); });
  f.cancel();
  run_briefly(*loop);
  EXPECT_TRUE(saw_cancel);
}

TEST(FutureCallbacks, RunWhenTheFutureFails) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  bool saw_exception = false;
  f.add_done_callback([&](Future<int> g) { saw_exception = g.exception() != nullptr; });
  f.set_exception(std::runtime_error("x"));
  run_briefly(*loop);
  EXPECT_TRUE(saw_exception);
}

TEST(FutureCallbacks, RemoveDoneCallbackPreventsTheCall) {
  auto loop = virtual_loop();
  auto f = loop->create_future();
  bool called = false;
  auto id = f.add_done_callback([&](Future<>) { called = true; });
  EXPECT_EQ(f.remove_done_callback(id), 1u);
  EXPECT_EQ(f.remove_done_callback(id), 0u);
  f.set_result();
  run_briefly(*loop);
  EXPECT_FALSE(called);
}

TEST(FutureCallbacks, RemovingTheFirstCallbackKeepsTheOthers) {
  auto loop = virtual_loop();
  auto f = loop->create_future();
  std::vector<int> order;
  auto first = f.add_done_callback([&](Future<>) { order.push_back(1); });
  f.add_done_callback([&](Future<>) { order.push_back(2); });
  f.remove_done_callback(first);
  f.add_done_callback([&](Future<>) { order.push_back(3); });
  f.set_result();
  run_briefly(*loop);
  EXPECT_EQ(order, (std::vector<int>{2, 3}));
}

TEST(FutureCallbacks, RemoveOfAnUnknownIdReturnsZero) {
  auto loop = virtual_loop();
  auto f = loop->create_future();
  EXPECT_EQ(f.remove_done_callback(0), 0u);
  EXPECT_EQ(f.remove_done_callback(123456), 0u);
}

TEST(FutureCallbacks, CallbackKeepsTheFutureAlive) {
  auto loop = virtual_loop();
  int seen = 0;
  {
    auto f = loop->create_future<int>();
    f.add_done_callback([&](Future<int> g) { seen = g.result(); });
    f.set_result(11);
  }  // our last handle is gone before the callback runs
  run_briefly(*loop);
  EXPECT_EQ(seen, 11);
}

TEST(FutureCallbacks, PendingCallbackDoesNotLeakWhenTheFutureIsDropped) {
  auto loop = virtual_loop();
  auto token = std::make_shared<int>(0);
  {
    auto f = loop->create_future<int>();
    f.add_done_callback([token](Future<int>) {});
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST(FutureCallbacks, ExceptionInCallbackGoesToTheLoopHandler) {
  auto loop = virtual_loop();
  int reports = 0;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext&) { ++reports; });
  auto f = loop->create_future();
  bool second = false;
  f.add_done_callback([](Future<>) { throw std::runtime_error("cb"); });
  f.add_done_callback([&](Future<>) { second = true; });
  f.set_result();
  run_briefly(*loop);
  EXPECT_EQ(reports, 1);
  EXPECT_TRUE(second);
}

// ---- awaiting --------------------------------------------------------------------------------

asyncio::Coro<int> await_int(Future<int> f) { co_return co_await f; }

TEST(FutureAwait, TaskAwaitingAFutureGetsItsResult) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  loop->call_later(2.0, [f]() mutable { f.set_result(21); });
  EXPECT_EQ(loop->run_until_complete(await_int(f)), 21);
  EXPECT_DOUBLE_EQ(loop->time(), 2.0);
}

TEST(FutureAwait, AwaitingAFailedFutureRethrows) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  loop->call_soon([f]() mutable { f.set_exception(std::invalid_argument("nope")); });
  EXPECT_THROW(loop->run_until_complete(await_int(f)), std::invalid_argument);
}

TEST(FutureAwait, AwaitingACancelledFutureRaisesCancelledError) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  loop->call_soon([f]() mutable { f.cancel("gone"); });
  try {
    loop->run_until_complete(await_int(f));
    ADD_FAILURE() << "no exception";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_EQ(e.message(), "gone");
  }
}

TEST(FutureAwait, AwaitingADoneFutureReturnsAtOnce) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  f.set_result(4);
  EXPECT_EQ(loop->run_until_complete(await_int(f)), 4);
}

asyncio::Coro<void> await_into(Future<int> f, std::vector<int>* out) { out->push_back(co_await f); }

TEST(FutureAwait, SeveralTasksAwaitingOneFutureAllGetTheResult) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  std::vector<int> got;
  std::vector<asyncio::Task<void>> tasks;
  for (int i = 0; i < 3; ++i) tasks.push_back(loop->create_task(await_into(f, &got)));
  loop->call_later(1.0, [f]() mutable { f.set_result(6); });
  loop->run_until_complete(tasks.back());
  run_briefly(*loop);
  EXPECT_EQ(got, (std::vector<int>{6, 6, 6}));
}

asyncio::Coro<int> await_unique(Future<std::unique_ptr<int>> f) {
  std::unique_ptr<int> p = co_await f;
  co_return p ? *p : -1;
}

TEST(FutureAwait, MoveOnlyResultIsMovedToTheAwaiter) {
  auto loop = virtual_loop();
  auto f = loop->create_future<std::unique_ptr<int>>();
  loop->call_soon([f]() mutable { f.set_result(std::make_unique<int>(12)); });
  EXPECT_EQ(loop->run_until_complete(await_unique(f)), 12);
}

TEST(FutureAwait, ResultSetFromAnotherThreadWakesTheTask) {
  // Future handles are not thread-safe (their reference count is not atomic), so the other
  // thread must not copy one: it refers to the loop thread's handle and only the loop thread
  // touches it, inside the call_soon_threadsafe callback.
  auto loop = asyncio::new_event_loop();
  auto f = loop->create_future<int>();
  Future<int>* target = &f;
  std::thread producer;
  loop->call_soon([&] {
    producer = std::thread([&loop, target] {
      loop->call_soon_threadsafe([target] { target->set_result(99); });
    });
  });
  EXPECT_EQ(loop->run_until_complete(await_int(f)), 99);
  producer.join();
}

// ---- unretrieved exceptions ------------------------------------------------------------------

TEST(FutureUnretrieved, DroppedFailedFutureIsReported) {
  auto loop = virtual_loop();
  std::vector<asyncio::ExceptionContext> reports;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& c) { reports.push_back(c); });
  {
    auto f = loop->create_future<int>();
    f.set_exception(std::runtime_error("lost"));
  }
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].message, "Future exception was never retrieved");
  EXPECT_TRUE(reports[0].exception);
}

TEST(FutureUnretrieved, RetrievedExceptionIsNotReported) {
  auto loop = virtual_loop();
  int reports = 0;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext&) { ++reports; });
  {
    auto f = loop->create_future<int>();
    f.set_exception(std::runtime_error("seen"));
    EXPECT_TRUE(f.exception());
  }
  {
    auto f = loop->create_future<int>();
    f.set_exception(std::runtime_error("seen"));
    EXPECT_THROW(f.result(), std::runtime_error);
  }
  EXPECT_EQ(reports, 0);
}

TEST(FutureUnretrieved, CancelledFutureIsNotReported) {
  auto loop = virtual_loop();
  int reports = 0;
  loop->set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext&) { ++reports; });
  { loop->create_future<int>().cancel(); }
  EXPECT_EQ(reports, 0);
}

// ---- conformance: behaviours CPython's test_futures / test_tasks check ------------------------------

TEST(FutureCallbacks, RemovingAfterTheFutureIsDoneRemovesNothingAndTheCallStillHappens) {
  auto loop = virtual_loop();
  auto f = loop->create_future<int>();
  int calls = 0;
  auto id = f.add_done_callback([&](Future<int>) { ++calls; });
  f.set_result(1);  // the call is scheduled now
  EXPECT_EQ(f.remove_done_callback(id), 0u);
  run_briefly(*loop);
  EXPECT_EQ(calls, 1);
}

TEST(FutureAwait, AwaitingAFutureOfAnotherLoopIsRuntimeError) {
  auto other = virtual_loop();
  auto foreign = other->create_future<int>();
  auto loop = virtual_loop();
  auto t = loop->create_task([](Future<int> f) -> asyncio::Coro<int> { co_return co_await f; }(foreign));
  EXPECT_THROW(loop->run_until_complete(Future<int>(t)), asyncio::RuntimeError);
  EXPECT_FALSE(foreign.done());
}

}  // namespace
