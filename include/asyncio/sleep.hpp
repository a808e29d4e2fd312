// SPDX-License-Identifier: MIT
// sleep(delay): park the current task for a while without blocking the loop.
//
//   co_await asyncio::sleep(1.5);                          // seconds, like Python
//   co_await asyncio::sleep(std::chrono::milliseconds(20));
//   co_await asyncio::sleep(0);                            // yield once to the loop
//
// The timer lives inside the awaiter, in the coroutine's own frame: sleeping allocates nothing.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <coroutine>
#include <cstdint>
#include <optional>

#include "asyncio/detail/task_core.hpp"
#include "asyncio/detail/timer_heap.hpp"
#include "asyncio/loop.hpp"

namespace asyncio {

namespace detail {

class [[nodiscard("co_await the sleep, or nothing sleeps")]] SleepAwaiter : public Suspension {
 public:
  using is_asyncio_awaitable = void;
  explicit SleepAwaiter(std::int64_t delay_ns) noexcept : delay_(delay_ns) { node_.self = this; }
  SleepAwaiter(const SleepAwaiter& o) noexcept : SleepAwaiter(o.delay_) {}
  ~SleepAwaiter() {
    if (node_.scheduled()) task_->loop()->remove_timer(&node_);
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    task_ = &require_current_task("sleep");
    task_->park(this, h);
    if (delay_ <= 0) {
      task_->wake();  // sleep(0): back of the ready queue
      return;
    }
    node_.when = deadline_after(task_->loop()->now_ns(), delay_);
    node_.on_expire = &expire;
    task_->loop()->add_timer(&node_);
  }
  void await_resume() { task_->resume_checked(aborted_); }

  WaitTarget wait_target() const noexcept override { return {"sleep", nullptr, delay_}; }  // diagnostics
  bool cancel_wait(const std::string&) noexcept override {
    if (!node_.scheduled()) return false;  // sleep(0), or the timer already fired
    task_->loop()->remove_timer(&node_);
    aborted_ = true;
    task_->wake();
    return true;
  }

 private:
  struct Node : TimerNode {
    SleepAwaiter* self = nullptr;
  };
  static void expire(TimerNode* n) { static_cast<Node*>(n)->self->task_->wake(); }

  Node node_;
  std::int64_t delay_;
  TaskCore* task_ = nullptr;
  bool aborted_ = false;
};

template <class T>
class [[nodiscard("co_await the sleep, or nothing sleeps")]] SleepResultAwaiter final : public SleepAwaiter {
 public:
  SleepResultAwaiter(std::int64_t delay_ns, T result) : SleepAwaiter(delay_ns), result_(std::move(result)) {}
  T await_resume() {
    SleepAwaiter::await_resume();
    return std::move(result_);
  }

 private:
  T result_;
};

}  // namespace detail

/// Suspends the current task for `delay` (seconds as a number, or a std::chrono duration).
/// sleep(0) yields to the other ready tasks once; a negative delay is 0; +inf (or any delay
/// past the clock's range) sleeps until cancelled; NaN is a ValueError, as in Python 3.13.
/// Cancellable: raises CancelledError.
template <detail::Delay D>
detail::SleepAwaiter sleep(D delay) {
  return detail::SleepAwaiter(detail::delay_ns(delay));
}

/// Python's sleep(delay, result): returns `result` after the delay.
template <detail::Delay D, class T>
detail::SleepResultAwaiter<T> sleep(D delay, T result) {
  return detail::SleepResultAwaiter<T>(detail::delay_ns(delay), std::move(result));
}

}  // namespace asyncio
#pragma GCC visibility pop
