// SPDX-License-Identifier: MIT
// timeout(): a deadline around a block of awaits (Python 3.11's `async with asyncio.timeout(d):`).
//
// C++ has no `async with`, so the block is a callable that returns an awaitable; timeout() awaits
// it and returns its result. The callable may take the Timeout object to read or move the
// deadline (Python's `as cm`):
//
//   int v = co_await asyncio::timeout(2.0, [&]() -> asyncio::Coro<int> {
//     co_await step_one();
//     co_return co_await step_two();
//   });
//   co_await asyncio::timeout(10, [&](asyncio::Timeout& cm) -> asyncio::Coro<void> {
//     cm.reschedule(asyncio::get_running_loop().time() + 20);   // more time
//     co_await long_job();
//   });
//
// When the deadline passes, the current task is cancelled; the CancelledError unwinds the block
// and leaves it as TimeoutError. A cancellation that came from elsewhere stays a CancelledError
// (decided with cancelling()/uncancel(), exactly as Python does).
#pragma once

#include <optional>
#include <type_traits>

#include "asyncio/detail/awaitables.hpp"

namespace asyncio {

/// The deadline object of a timeout block (Python's asyncio.Timeout).
class Timeout {
 public:
  /// A deadline on the loop's clock in seconds; nullopt means none.
  explicit Timeout(std::optional<double> when) noexcept : when_(when) {}
  ~Timeout() { handler_.cancel(); }
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;

  /// The deadline in loop time, or nullopt if there is none (Python's Timeout.when()).
  std::optional<double> when() const noexcept { return when_; }
  /// Moves the deadline (nullopt removes it). RuntimeError outside the block or after expiry.
  void reschedule(std::optional<double> when);
  /// True once the deadline passed and the block was cancelled for it.
  bool expired() const noexcept { return state_ == State::expiring || state_ == State::expired; }

  /// Used by timeout_at(): entering and leaving the block.
  void enter();
  /// Given the exception leaving the block (or null), returns what should propagate instead.
  std::exception_ptr exit(std::exception_ptr error);

 private:
  enum class State { created, entered, expiring, expired, exited };
  void on_timeout();

  std::optional<double> when_;
  Handle handler_;
  AnyTask task_;
  std::uint32_t cancelling_ = 0;
  State state_ = State::created;
};

namespace detail {

template <class F>
decltype(auto) invoke_block(F& body, Timeout& cm) {
  if constexpr (std::is_invocable_v<F&, Timeout&>)
    return body(cm);
  else
    return body();
}

template <class F>
using block_value_t = value_of<decltype(invoke_block(std::declval<F&>(), std::declval<Timeout&>()))>;

}  // namespace detail

/// Runs the block with a deadline at loop time `when` (seconds; nullopt: no deadline).
template <class F>
Coro<detail::block_value_t<F>> timeout_at(std::optional<double> when, F body) {
  using T = detail::block_value_t<F>;
  Timeout cm(when);
  cm.enter();
  std::exception_ptr error;
  std::optional<detail::Stored<T>> result;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await detail::invoke_block(body, cm);
      result.emplace();
    } else {
      result.emplace(co_await detail::invoke_block(body, cm));
    }
  } catch (...) {
    error = std::current_exception();
  }
  error = cm.exit(error);
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) co_return std::move(*result);
}

/// Runs the block with a deadline `delay` seconds from now (a number, a std::chrono duration,
/// or nullopt for none).
template <class F>
Coro<detail::block_value_t<F>> timeout(std::optional<double> delay, F body) {
  detail::check_timeout(delay, "delay");
  std::optional<double> when;
  if (delay) when = get_running_loop().time() + *delay;  // +inf stays +inf: no deadline
  return timeout_at(when, std::move(body));
}
template <class Rep, class Period, class F>
Coro<detail::block_value_t<F>> timeout(std::chrono::duration<Rep, Period> delay, F body) {
  return timeout(std::optional<double>(std::chrono::duration<double>(delay).count()), std::move(body));
}

}  // namespace asyncio
