// SPDX-License-Identifier: MIT
// TaskGroup: structured concurrency (Python 3.11's `async with asyncio.TaskGroup() as tg:`).
//
// The C++ shape is a block that receives the group; task_group() returns only when every task
// started in the group has finished, so no child can outlive it:
//
//   co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> asyncio::Coro<void> {
//     auto a = tg.create_task(fetch("a"));
//     auto b = tg.create_task(fetch("b"));
//     co_return;                       // the group still waits for a and b
//   });
//
// The first child that fails cancels the others and the block itself; when all are finished,
// every failure is raised together as an asyncio::ExceptionGroup. Cancelling the task running the
// group cancels the children too, waits for them, then raises CancelledError.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "asyncio/detail/awaitables.hpp"

namespace asyncio {

/// Python's asyncio.TaskGroup, given to the block of task_group(): children made with its
/// create_task() are all finished before task_group() returns (see the example above).
class TaskGroup {
 public:
  /// Starts `coro` as a task of the group (RuntimeError once the group is finished or aborting).
  template <class T>
  Task<T> create_task(Coro<T> coro, std::string name = {}, SourceLocation where = SourceLocation::current()) {
    if (!is_open()) {
      // The coroutine will never run: close it quietly (no "never awaited" report), as CPython does.
      if (coro) coro.release().destroy();
      check_open();
    }
    Task<T> task = loop_->create_task(std::move(coro), std::move(name), where);
    adopt(task);
    return task;
  }
  /// Starts a task of the group that awaits any other awaitable of this library
  /// (`tg.create_task(asyncio::sleep(1))`, `tg.create_task(queue.get())`).
  template <detail::NonCoroAwaitable A>
  auto create_task(A aw, std::string name = {}, SourceLocation where = SourceLocation::current()) {
    return create_task(detail::await_in_coro(std::move(aw)), std::move(name), where);
  }
  /// Starts a coroutine callable (a capturing coroutine lambda) as a task of the group, the
  /// callable moved into the task's frame first so that its captures live as long as the task:
  ///   for (int i = 0; i < 3; ++i) tg.create_task([i]() -> asyncio::Coro<void> { co_await work(i); });
  template <class F>
    requires detail::CoroutineCallable<std::decay_t<F>>
  auto create_task(F&& fn, std::string name = {}, SourceLocation where = SourceLocation::current()) {
    return create_task(make_coro(std::forward<F>(fn)), std::move(name), where);
  }

  /// Number of children still running.
  std::size_t size() const noexcept { return tasks_.size(); }

  // Used by task_group(): the group is created and entered by it, and exits through it.
  TaskGroup();
  ~TaskGroup();
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  /// Waits for the children after the block ended with `error` (or null); throws the outcome.
  Coro<void> exit(std::exception_ptr error);

 private:
  bool is_open() const noexcept { return !finished_ && !(exiting_ && tasks_.empty()) && !aborting_; }
  void check_open() const;
  void adopt(AnyTask task);
  void abort();
  static void on_task_done_soon(void* self, detail::FutureStateBase& f);
  void on_task_done(detail::FutureStateBase& f);
  friend struct detail::Introspect;  // await graphs show the group (src/diag/introspect.hpp)

  EventLoop* loop_;
  AnyTask parent_;
  std::unordered_map<detail::FutureStateBase*, AnyTask> tasks_;
  std::vector<std::exception_ptr> errors_;
  // Deferred callbacks reach the group through this; it is cleared when the group dies.
  std::shared_ptr<TaskGroup*> self_ = std::make_shared<TaskGroup*>(this);
  Future<void> on_completed_;
  bool exiting_ = false;
  bool finished_ = false;
  bool aborting_ = false;
  bool parent_cancel_requested_ = false;
};

/// Runs `body(tg)` and then waits for every task it started in `tg`. Returns the body's result.
template <class F>
Coro<detail::value_of<std::invoke_result_t<F&, TaskGroup&>>> task_group(F body) {
  using T = detail::value_of<std::invoke_result_t<F&, TaskGroup&>>;
  TaskGroup tg;
  std::exception_ptr error;
  std::optional<detail::Stored<T>> result;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await body(tg);
      result.emplace();
    } else {
      result.emplace(co_await body(tg));
    }
  } catch (...) {
    error = std::current_exception();
  }
  co_await tg.exit(error);
  // As with `async with`, an exception the group did not replace propagates unchanged.
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) co_return std::move(*result);
}

}  // namespace asyncio
#pragma GCC visibility pop
