// SPDX-License-Identifier: MIT
// The untyped machinery of a Task: the step function, and the park/wake protocol awaiters use.
//
// A task is always in one of three places: running (its step is on the stack), scheduled (in the
// loop's ready queue), or parked on a Suspension — an awaiter in its coroutine frame that knows how
// to wake it (a timer, a future's callback) and how to abort the wait when the task is cancelled.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <coroutine>
#include <cstdint>
#include <memory>
#include "asyncio/source_location.hpp"
#include <string>

#include "asyncio/detail/future_state.hpp"
#include "asyncio/detail/runnable.hpp"
#include "asyncio/loop.hpp"

namespace asyncio::detail {

class CoroPromiseBase;
class TaskCore;

/// The task whose step is running on this thread, or null.
extern constinit thread_local TaskCore* t_current_task;

/// What a parked task waits on, for diagnostics only (inspect.hpp, trace.hpp; never on a hot path).
struct WaitTarget {
  const char* kind = nullptr;                // "sleep", "future", "lock", "fd", ...; null: unknown
  const FutureStateBase* future = nullptr;   // the awaited future or task, if any
  std::int64_t value = 0;                    // sleep: the delay in ns; fd: the descriptor
};

/// An awaiter that parks a task. Lives in the task's coroutine frame (Coro's await_transform
/// refers to it in place, so it is never copied or moved while awaited).
class Suspension {
 public:
  /// What the task waits on (diagnostics). The default says nothing; diagnostics then show the
  /// awaiter's type name.
  virtual WaitTarget wait_target() const noexcept { return {}; }
  /// Called by Task::cancel while the task is parked here. Abort the wait and wake the task so
  /// that the await raises CancelledError, returning true; or return false if the wait cannot be
  /// aborted (the task is then already scheduled, and the cancellation is delivered on resume).
  virtual bool cancel_wait(const std::string& msg) noexcept = 0;

 protected:
  ~Suspension() = default;

 private:
  friend class TaskCore;
  std::coroutine_handle<> resume_;  // the suspended coroutine (kept here, in the frame)
};

class TaskCore : public TaskLink {
 public:
  TaskCore(FutureStateBase* future, std::coroutine_handle<> top, SourceLocation created) noexcept;

  // ---- the protocol awaiters use ----
  /// The awaiter `s` suspends the coroutine `h`; the task waits until someone calls wake().
  void park(Suspension* s, std::coroutine_handle<> h) noexcept {
    s->resume_ = h;
    waiter_ = s;
  }
  /// Schedules the task's next step (idempotent while scheduled).
  void wake() {
    if (scheduled_) return;
    scheduled_ = true;
    future_->add_ref();  // the ready queue's reference
    loop()->schedule(this);
  }
  /// Called first thing in an awaiter's await_resume: throws CancelledError if a cancellation is
  /// due at this await (`aborted`: the awaiter itself was aborted by cancel_wait).
  void resume_checked(bool aborted = false) {
    bool due = deliver_cancel_ || aborted;
    deliver_cancel_ = false;
    if (due) throw CancelledError(future_->cancel_message());
  }
  /// Instead of resume_checked, for an await that completed something it cannot take back (a
  /// Channel send whose item went in): a cancellation due at this await is delivered at the
  /// task's next suspension instead, as for a task cancelled while it runs.
  void defer_cancel() noexcept {
    if (!deliver_cancel_) return;
    deliver_cancel_ = false;
    must_cancel_ = true;
  }

  /// Links the task into the loop's list and schedules its first step.
  void start();

  // ---- Python's Task API ----
  bool cancel(const std::string& msg);
  std::uint32_t cancelling() const noexcept { return num_cancels_requested_; }
  std::uint32_t uncancel() noexcept;
  std::string get_name() const;
  void set_name(std::string name);
  std::uint64_t id() const noexcept { return id_; }
  SourceLocation created_at() const noexcept { return SourceLocation{created_file_, "", created_line_}; }
  /// Innermost coroutine's last await site, or the creation site before the first step.
  SourceLocation resume_location() const noexcept;
  /// The promise of the coroutine the task was created with (null once it finished).
  virtual CoroPromiseBase* top_promise() const noexcept = 0;
  bool is_running() const noexcept { return t_current_task == this; }
  FutureStateBase* future() const noexcept { return future_; }
  EventLoop* loop() const noexcept { return future_->loop(); }

  // ---- Runnable / TaskLink ----
  void run() override;
  void discard() noexcept override;
  std::string describe() const override;
  void destroy_pending() noexcept override;

 protected:
  ~TaskCore() = default;
  /// Moves the finished top coroutine's outcome into the future (typed, in TaskState<T>).
  virtual void complete_from_coro() = 0;
  void destroy_coro() noexcept;
  /// Sets the outcome from an exception the coroutine ended with.
  void complete_with_exception(std::exception_ptr e);

  std::coroutine_handle<> top_;

 private:
  void step();
  void finish_from_top();
  void finish_bookkeeping() noexcept;
  /// The exception the finished top coroutine ended with, if any.
  virtual std::exception_ptr top_exception() const noexcept = 0;

  friend struct Introspect;  // diagnostics read the fields below (src/diag/introspect.hpp)

  // Field order keeps the object compact (it is per task: see bench timers).
  FutureStateBase* future_;
  Suspension* waiter_ = nullptr;  // where the task is parked (or was, until its next step)
  CoroPromiseBase* innermost_ = nullptr;  // valid while parked
  const char* created_file_;
  std::uint64_t id_;
  std::uint32_t created_line_;
  std::uint32_t num_cancels_requested_ = 0;
  bool scheduled_ = false;
  bool deliver_cancel_ = false;
  bool started_ = false;
  bool linked_ = false;

 protected:
  bool must_cancel_ = false;
};

/// The current task, or throws RuntimeError (awaiting outside a task cannot be resumed).
TaskCore& require_current_task(const char* what);

/// "file.cpp:12" for diagnostics.
std::string location_string(const SourceLocation& loc);
/// "fetch" from "asyncio::Coro<int> fetch(int)" or "fetch" (what __builtin_FUNCTION gives).
std::string short_function_name(const char* full);

}  // namespace asyncio::detail
#pragma GCC visibility pop
