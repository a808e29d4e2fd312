// SPDX-License-Identifier: MIT
// Layer 3c: Task<T>, a Future that drives a Coro on the loop.
//
// create_task() schedules the coroutine's first step at once. Each step resumes the coroutine until
// it parks on something (a sleep, a future, I/O); whoever completes that thing wakes the task, and
// the loop runs its next step. The coroutine's return value or exception becomes the Task's result.
//
//   asyncio::Task<int> t = asyncio::create_task(compute(), "compute");
//   ...                        // compute() runs concurrently from the next loop iteration
//   int v = co_await t;
//
// A pending task is owned by its loop: dropping every handle does not destroy it (unlike Python,
// where an unreferenced task may be garbage collected mid-flight).
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <optional>
#include "asyncio/source_location.hpp"
#include <string>
#include <vector>

#include "asyncio/coro.hpp"
#include "asyncio/detail/task_core.hpp"
#include "asyncio/future.hpp"
#include "asyncio/loop.hpp"

namespace asyncio {

namespace detail {

template <class T>
class TaskState final : public FutureState<T>, public TaskCore {
 public:
  using Handle = std::coroutine_handle<CoroPromise<T>>;
  TaskState(EventLoop* loop, Handle h, std::string name, SourceLocation created)
      : FutureState<T>(loop), TaskCore(this, h, created) {
    if (!name.empty()) FutureStateBase::set_name(std::move(name));
  }
  // Tasks come and go by the million: recycle their memory like coroutine frames.
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { free_frame(p, size); }
  ~TaskState() override {
    if (this->log_exception_)
      this->report_unretrieved("Task exception was never retrieved", get_name(), location_string(created_at()));
    destroy_coro();
  }
  bool cancel(const std::string& msg) override { return TaskCore::cancel(msg); }
  CoroPromiseBase* top_promise() const noexcept override { return top_ ? &typed().promise() : nullptr; }
  std::string describe() const override { return TaskCore::describe(); }

 private:
  void complete_from_coro() override {
    auto& promise = typed().promise();
    if (auto e = promise.exception()) {
      destroy_coro();
      complete_with_exception(e);
    } else if constexpr (std::is_void_v<T>) {
      destroy_coro();
      this->set_result();
    } else {
      T value = promise.take();
      destroy_coro();
      this->set_result(std::move(value));
    }
  }
  std::exception_ptr top_exception() const noexcept override { return typed().promise().exception(); }
  Handle typed() const noexcept { return Handle::from_address(top_.address()); }
};

}  // namespace detail

/// A type-erased task handle: what current_task() and all_tasks() return, and what any Task<T>
/// converts to. Awaiting it waits for the task and rethrows its exception, discarding the value.
class AnyTask {
 public:
  /// Marks this library's awaitables: only they may be awaited inside a Coro.
  using is_asyncio_awaitable = void;
  AnyTask() noexcept = default;
  /// Library-internal: wraps a task's core (null: an empty AnyTask).
  explicit AnyTask(detail::TaskCore* core) noexcept : fut_(core ? core->future() : nullptr), core_(core) {}

  /// The task's name (Python's Task.get_name()).
  std::string get_name() const { return core_->get_name(); }
  /// Renames the task (Python's Task.set_name()).
  void set_name(std::string name) { core_->set_name(std::move(name)); }
  /// Requests cancellation: CancelledError is raised at the task's current await.
  bool cancel(const std::string& msg = {}) { return fut_->cancel(msg); }
  /// Outstanding cancel() requests (Python's Task.cancelling()).
  std::uint32_t cancelling() const noexcept { return core_->cancelling(); }
  /// Takes one cancel() request back; returns the remaining count (Python's Task.uncancel()).
  std::uint32_t uncancel() noexcept { return core_->uncancel(); }
  /// True once the task finished (Python's Task.done()).
  bool done() const noexcept { return fut_->done(); }
  /// True if it ended cancelled (Python's Task.cancelled()).
  bool cancelled() const noexcept { return fut_->cancelled(); }
  /// Its exception, or null; CancelledError if cancelled (Python's Task.exception()).
  std::exception_ptr exception() const { return fut_->exception(); }
  /// The loop it runs on.
  EventLoop& get_loop() const noexcept { return *fut_->loop(); }

  /// `co_await task`: waits for it to finish; rethrows its exception.
  detail::FutureAwaiter<detail::FutureStateBase> operator co_await() const noexcept {
    return detail::FutureAwaiter<detail::FutureStateBase>(fut_);
  }
  /// True unless empty.
  explicit operator bool() const noexcept { return core_ != nullptr; }
  /// True if both refer to the same task.
  friend bool operator==(const AnyTask& a, const AnyTask& b) noexcept { return a.core_ == b.core_; }
  /// Library-internal: the task's core.
  detail::TaskCore* core() const noexcept { return core_; }
  /// Library-internal: the task's future state.
  detail::FutureStateBase* state() const noexcept { return fut_.get(); }

 private:
  detail::Ref<detail::FutureStateBase> fut_;
  detail::TaskCore* core_ = nullptr;
};

/// Python's asyncio.Task: a Future<T> whose result comes from a coroutine run by the loop.
template <class T = void>
class Task : public Future<T> {
 public:
  Task() noexcept = default;
  /// Library-internal: made by create_task.
  explicit Task(detail::Ref<detail::TaskState<T>> s) noexcept
      : Future<T>(detail::Ref<detail::FutureState<T>>(std::move(s))) {}

  /// The task's name (Python's Task.get_name()).
  std::string get_name() const { return core().get_name(); }
  /// Renames the task (Python's Task.set_name()).
  void set_name(std::string name) { core().set_name(std::move(name)); }
  /// How many cancellation requests are outstanding (Python 3.11's Task.cancelling()).
  std::uint32_t cancelling() const noexcept { return core().cancelling(); }
  /// Withdraws one cancellation request; returns how many remain.
  std::uint32_t uncancel() noexcept { return core().uncancel(); }

  /// A task's outcome comes from its coroutine: RuntimeError, as Python's Task.set_result.
  template <class... U>
  [[noreturn]] void set_result(U&&...) {
    throw RuntimeError("Task does not support set_result operation");
  }
  /// RuntimeError, as Python's Task.set_exception.
  template <class E>
  [[noreturn]] void set_exception(E&&) {
    throw RuntimeError("Task does not support set_exception operation");
  }

  /// The same task, without its result type.
  operator AnyTask() const noexcept { return AnyTask(&core()); }
  /// Library-internal: the task's core.
  detail::TaskCore& core() const noexcept {
    return *static_cast<detail::TaskState<T>*>(this->s_.get());
  }
};

/// The task running now on the running loop; an empty handle if the loop is running a plain
/// callback. RuntimeError if no loop is running.
AnyTask current_task();
/// The tasks of the running loop that are not done yet.
std::vector<AnyTask> all_tasks();

template <class T>
Task<T> EventLoop::create_task(Coro<T> coro, std::string name, SourceLocation where) {
  if (closed_) throw RuntimeError("Event loop is closed");
  auto* state = new detail::TaskState<T>(this, coro.release(), std::move(name), where);
  state->start();
  return Task<T>(detail::Ref<detail::TaskState<T>>::adopt(state));
}

/// Wraps the coroutine in a Task on the running loop and schedules it (Python's create_task).
///   auto t = asyncio::create_task(worker(1), "worker-1");
template <class T>
Task<T> create_task(Coro<T> coro, std::string name = {},
                    SourceLocation where = SourceLocation::current()) {
  return get_running_loop().create_task(std::move(coro), std::move(name), where);
}

namespace detail {
/// An awaitable of this library that is not a Coro: a Future, a Task, sleep(...), event.wait(),
/// lock.acquire(), queue.get(), ... Functions that take a coroutine take these too, by awaiting
/// them inside a Coro of their own.
template <class A>
concept NonCoroAwaitable = LoopAwaitable<A> && !is_coro_v<std::remove_cvref_t<A>>;
}  // namespace detail

/// create_task of any other awaitable of this library, as Python's create_task of a coroutine
/// that awaits it: `asyncio::create_task(event.wait())`, `asyncio::create_task(asyncio::sleep(1))`.
template <detail::NonCoroAwaitable A>
auto create_task(A aw, std::string name = {}, SourceLocation where = SourceLocation::current()) {
  return create_task(detail::await_in_coro(std::move(aw)), std::move(name), where);
}

/// create_task of a coroutine callable (a capturing coroutine lambda): the callable is moved into
/// the task's frame first, so its captures live as long as the task (see make_coro).
///   auto t = asyncio::create_task([n]() -> asyncio::Coro<int> { co_return n * 2; });
template <class F>
  requires detail::CoroutineCallable<std::decay_t<F>>
auto create_task(F&& fn, std::string name = {}, SourceLocation where = SourceLocation::current()) {
  return create_task(make_coro(std::forward<F>(fn)), std::move(name), where);
}

/// Python's ensure_future: a coroutine becomes a Task on get_event_loop() (which need not be
/// running yet, as in the seed's programs); a Future or Task is returned as it is.
template <class T>
Task<T> ensure_future(Coro<T> coro, SourceLocation where = SourceLocation::current()) {
  return get_event_loop().create_task(std::move(coro), {}, where);
}
template <class T>
Task<T> ensure_future(Task<T> task) noexcept {
  return task;
}
template <class T>
Future<T> ensure_future(Future<T> future) noexcept {
  return future;
}

namespace detail {
/// Runs the loop until `f` is done (run_until_complete's body, untyped).
void run_until_done(EventLoop& loop, FutureStateBase& f);
}  // namespace detail

template <class T>
T EventLoop::run_until_complete(Future<T> future) {
  detail::run_until_done(*this, *future.state());
  if constexpr (std::is_void_v<T>)
    future.state()->take_for_await();
  else
    return future.state()->take_for_await();
}

template <class T>
T EventLoop::run_until_complete(Coro<T> coro, SourceLocation where) {
  // Check before wrapping (as Python does): on a running loop the task would otherwise be left
  // behind and run there, although the call failed.
  check_can_run();
  return run_until_complete(Future<T>(create_task(std::move(coro), {}, where)));
}

}  // namespace asyncio
#pragma GCC visibility pop
