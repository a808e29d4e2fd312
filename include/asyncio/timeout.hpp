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
// The block may also be any awaitable itself: `co_await asyncio::timeout(5, event.wait())`.
//
// To ask `cm.expired()` after the block, as Python does after `async with ... as cm:`, keep the
// Timeout: `asyncio::timeout(d)` without a block returns one, and `cm.run(block)` runs the block
// under it (raising TimeoutError as above):
//
//   auto cm = asyncio::timeout(2.0);
//   try { co_await cm.run([&]() -> asyncio::Coro<void> { co_await slow(); }); } catch (const asyncio::TimeoutError&) {}
//   if (cm.expired()) ...
//
// When the deadline passes, the current task is cancelled; the CancelledError unwinds the block
// and leaves it as TimeoutError. A cancellation that came from elsewhere stays a CancelledError
// (decided with cancelling()/uncancel(), exactly as Python does).
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <optional>
#include <type_traits>

#include "asyncio/detail/awaitables.hpp"

namespace asyncio {

class Timeout;

namespace detail {

/// The block of a timeout: a callable taking the Timeout, a callable taking nothing, or an
/// awaitable to await as it is.
template <class F>
decltype(auto) invoke_block(F& body, Timeout& cm) {
  if constexpr (std::is_invocable_v<F&, Timeout&>)
    return body(cm);
  else if constexpr (std::is_invocable_v<F&>)
    return body();
  else
    return std::move(body);
}

template <class F>
using block_value_t = value_of<decltype(invoke_block(std::declval<F&>(), std::declval<Timeout&>()))>;

/// Runs `body` under `external`, or under a Timeout of its own for `when` if that is null (one
/// coroutine frame either way).
template <class F>
Coro<block_value_t<F>> run_timeout_block(Timeout* external, std::optional<double> when, F body);

}  // namespace detail

/// The deadline object of a timeout block (Python's asyncio.Timeout). Not copyable or movable;
/// asyncio::timeout(d) / timeout_at(when) without a block return one to keep.
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
  /// True once the deadline passed and the block was cancelled for it; stays true after the block.
  bool expired() const noexcept { return state_ == State::expiring || state_ == State::expired; }

  /// Python's `async with cm:` — runs the block (a callable, taking this Timeout or nothing, that
  /// returns an awaitable; or an awaitable) under this deadline and returns its result;
  /// TimeoutError if the deadline passed. A Timeout runs one block: RuntimeError ("has already
  /// been entered") the second time.
  ///   auto cm = asyncio::timeout(1.0);
  ///   co_await cm.run([&]() -> asyncio::Coro<void> { co_await work(); });
  template <class F>
  Coro<detail::block_value_t<F>> run(F body) {
    return detail::run_timeout_block(this, std::nullopt, std::move(body));
  }

 private:
  template <class F>
  friend Coro<detail::block_value_t<F>> detail::run_timeout_block(Timeout*, std::optional<double>, F);
  enum class State { created, entered, expiring, expired, exited };
  /// Entering and leaving the block (run() and the block forms).
  void enter();
  /// Given the exception leaving the block (or null), returns what should propagate instead.
  std::exception_ptr exit(std::exception_ptr error);
  void on_timeout();

  std::optional<double> when_;
  Handle handler_;
  AnyTask task_;
  std::uint32_t cancelling_ = 0;
  State state_ = State::created;
};

namespace detail {

template <class F>
Coro<block_value_t<F>> run_timeout_block(Timeout* external, std::optional<double> when, F body) {
  using T = block_value_t<F>;
  std::optional<Timeout> own;
  Timeout& cm = external ? *external : own.emplace(when);
  cm.enter();
  std::exception_ptr error;
  std::optional<Stored<T>> result;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await invoke_block(body, cm);
      result.emplace();
    } else {
      result.emplace(co_await invoke_block(body, cm));
    }
  } catch (...) {
    error = std::current_exception();
  }
  error = cm.exit(error);
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) co_return std::move(*result);
}

}  // namespace detail

/// Runs the block with a deadline at loop time `when` (seconds; nullopt: no deadline).
template <class F>
Coro<detail::block_value_t<F>> timeout_at(std::optional<double> when, F body) {
  return detail::run_timeout_block(nullptr, when, std::move(body));
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

/// Python's asyncio.timeout_at(when) as an object to keep: run blocks with `cm.run(...)`, ask
/// `cm.expired()` afterwards.
inline Timeout timeout_at(std::optional<double> when) {
  detail::check_timeout(when, "when");
  return Timeout(when);
}
/// Python's asyncio.timeout(delay) as an object to keep (the deadline is fixed now, as in Python).
///   auto cm = asyncio::timeout(2.0);
Timeout timeout(std::optional<double> delay);
template <class Rep, class Period>
Timeout timeout(std::chrono::duration<Rep, Period> delay) {
  return timeout(std::optional<double>(std::chrono::duration<double>(delay).count()));
}

}  // namespace asyncio
#pragma GCC visibility pop
