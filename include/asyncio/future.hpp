// SPDX-License-Identifier: MIT
// Layer 3b: Future<T>, a result that will exist later.
//
// A Future is a low-level awaitable: some code (a callback, another task, a thread via
// call_soon_threadsafe) calls set_result or set_exception, and every task awaiting it resumes.
// Handles are cheap to copy and all refer to the same state, like Python references.
//
//   auto fut = loop.create_future<int>();
//   loop.call_later(1.0, [fut]() mutable { fut.set_result(42); });
//   int v = co_await fut;
//
// Futures belong to one loop and one thread; the loop must outlive them, as an io_context must
// outlive its handlers.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>

#include "asyncio/detail/future_state.hpp"
#include "asyncio/detail/ref.hpp"
#include "asyncio/detail/task_core.hpp"
#include "asyncio/loop.hpp"

namespace asyncio {

/// Identifies a done callback for remove_done_callback (C++ cannot compare std::functions).
using CallbackId = std::uint64_t;

namespace detail {

/// Parks the current task until the future is done, then returns its result. `S` is a
/// FutureState<T>, or FutureStateBase for type-erased tasks (result discarded).
template <class S>
class FutureAwaiter final : public Suspension {
 public:
  explicit FutureAwaiter(Ref<S> f) noexcept : f_(std::move(f)) {}
  FutureAwaiter(FutureAwaiter&& o) noexcept : f_(std::move(o.f_)) {}
  ~FutureAwaiter() {
    if (registered_) f_->remove_callback(&on_done, this);
  }

  bool await_ready() const noexcept { return f_->done(); }
  void await_suspend(std::coroutine_handle<> h) {
    task_ = &require_current_task("await a Future");
    if (task_->future() == f_.get()) throw RuntimeError("Task cannot await on itself");
    // A future completes on its own loop's thread: a task of another loop would be woken from
    // there, behind its loop's back (Python raises the same).
    if (f_->loop() != task_->loop()) throw RuntimeError("Task got Future attached to a different loop");
    f_->add_callback(DoneCallback{&on_done, this});
    registered_ = true;
    task_->park(this, h);
  }
  decltype(auto) await_resume() {
    if (task_) task_->resume_checked();
    return f_->take_for_await();
  }
  /// Python: cancelling a task cancels the future it waits on; the task then wakes through the
  /// future's callback and the await raises CancelledError.
  bool cancel_wait(const std::string& msg) noexcept override {
    try {
      return f_->cancel(msg);
    } catch (...) {
      return false;
    }
  }
  WaitTarget wait_target() const noexcept override { return {"future", f_.get()}; }  // diagnostics

 private:
  static void on_done(void* self, FutureStateBase&) {
    auto* a = static_cast<FutureAwaiter*>(self);
    a->registered_ = false;
    a->task_->wake();
  }

  Ref<S> f_;
  TaskCore* task_ = nullptr;
  bool registered_ = false;
};

}  // namespace detail

/// A result that will be set later. Python's asyncio.Future.
template <class T = void>
class Future {
 public:
  /// The result type.
  using value_type = T;
  /// Marks this library's awaitables: only they may be awaited inside a Coro.
  using is_asyncio_awaitable = void;

  /// An empty handle (no state); assign a real future before use.
  Future() noexcept = default;
  /// A new pending future on `loop` (Python's loop.create_future()).
  explicit Future(EventLoop& loop) : s_(detail::Ref<detail::FutureState<T>>::adopt(new detail::FutureState<T>(&loop))) {}
  /// Wraps existing state (library use).
  explicit Future(detail::Ref<detail::FutureState<T>> s) noexcept : s_(std::move(s)) {}

  /// True once it has a result, an exception or was cancelled (Python's Future.done()).
  bool done() const noexcept { return s_->done(); }
  /// True if it was cancelled (Python's Future.cancelled()).
  bool cancelled() const noexcept { return s_->cancelled(); }

  /// The result; rethrows the future's exception; CancelledError if cancelled;
  /// InvalidStateError if not done yet.
  decltype(auto) result() const { return s_->result(); }
  /// The exception (null if the future has a result). CancelledError if cancelled,
  /// InvalidStateError if pending.
  std::exception_ptr exception() const { return s_->exception(); }

  /// Completes the future; InvalidStateError if it is already done.
  template <class U = T>
    requires(!std::is_void_v<T>)
  void set_result(U&& v) {
    s_->set_result(std::forward<U>(v));
  }
  /// Completes a `Future<void>`; InvalidStateError if already done.
  void set_result()
    requires std::is_void_v<T>
  {
    s_->set_result();
  }
  /// Completes it with an exception; InvalidStateError if already done.
  void set_exception(std::exception_ptr e) { s_->set_exception(std::move(e)); }
  /// Stores an exception object: `fut.set_exception(std::runtime_error("boom"))`.
  template <class E>
    requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
  void set_exception(E&& e) {
    s_->set_exception(std::make_exception_ptr(std::forward<E>(e)));
  }

  /// Cancels the future and schedules its callbacks. False if it was already done.
  bool cancel(const std::string& msg = {}) { return s_->cancel(msg); }

  /// Calls `fn(future)` via call_soon once the future is done (at once if it already is).
  CallbackId add_done_callback(std::function<void(Future<T>)> fn) {
    return s_->add_user_callback([fn = std::move(fn)](detail::FutureStateBase& s) {
      fn(Future<T>(detail::Ref<detail::FutureState<T>>(static_cast<detail::FutureState<T>*>(&s))));
    });
  }
  /// Removes a callback added with add_done_callback; returns how many were removed.
  std::size_t remove_done_callback(CallbackId id) noexcept { return s_->remove_callback_id(id); }

  /// The loop it belongs to (Python's Future.get_loop()).
  EventLoop& get_loop() const noexcept { return *s_->loop(); }

  /// `co_await fut`: waits for it and returns its result or rethrows its exception.
  detail::FutureAwaiter<detail::FutureState<T>> operator co_await() const noexcept {
    return detail::FutureAwaiter<detail::FutureState<T>>(s_);
  }

  /// True unless default-constructed or moved from.
  explicit operator bool() const noexcept { return bool(s_); }
  /// True if both refer to the same future.
  friend bool operator==(const Future& a, const Future& b) noexcept { return a.s_ == b.s_; }
  /// Library-internal: the shared state.
  detail::FutureState<T>* state() const noexcept { return s_.get(); }

 protected:
  /// The shared state (one reference).
  detail::Ref<detail::FutureState<T>> s_;
};

// As in CPython, a closed loop still makes futures: setting and reading them works, and only
// scheduling a callback on the closed loop fails (RuntimeError "Event loop is closed").
template <class T>
Future<T> EventLoop::create_future() {
  return Future<T>(*this);
}

}  // namespace asyncio
#pragma GCC visibility pop
