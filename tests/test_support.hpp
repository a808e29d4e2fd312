// SPDX-License-Identifier: MIT
// Shared helpers for the tests: run a coroutine on simulated time, spin the loop, small coroutines.
#pragma once

#include <asyncio/asyncio.hpp>

#include <memory>
#include <stdexcept>
#include <string>

namespace testing_support {

/// Runs `c` with asyncio::run on the virtual clock; returns its result.
template <class T>
T run_v(asyncio::Coro<T> c) {
  return asyncio::run(std::move(c), asyncio::RunOptions{.debug = false, .virtual_time = true});
}

/// Like run_v, for tests of wake-ups: a lost wake-up would leave every task parked; the 1-hour
/// guard then fires (virtual time jumps to it) and the test fails with TimeoutError, not a hang.
template <class T>
T run_guarded_v(asyncio::Coro<T> c) {
  return asyncio::run(asyncio::wait_for(std::move(c), 3600.0), asyncio::RunOptions{.debug = false, .virtual_time = true});
}

/// A new loop on the virtual clock.
inline std::shared_ptr<asyncio::EventLoop> virtual_loop() { return asyncio::new_event_loop({.virtual_time = true}); }

/// Lets every ready task run `n` times.
inline asyncio::Coro<void> spin(int n = 5) {
  for (int i = 0; i < n; ++i) co_await asyncio::sleep(0);
}

/// Awaits `t`; true if it ended with CancelledError.
template <class T>
asyncio::Coro<bool> ends_cancelled(asyncio::Task<T> t) {
  try {
    co_await t;
  } catch (const asyncio::CancelledError&) {
    co_return true;
  }
  co_return false;
}

/// The running loop's clock.
inline double now() { return asyncio::get_running_loop().time(); }

/// Sleeps `delay` then returns `value`.
template <class T>
asyncio::Coro<T> after(double delay, T value) {
  co_await asyncio::sleep(delay);
  co_return value;
}

/// Sleeps `delay` then throws std::runtime_error(what).
inline asyncio::Coro<int> fail_after(double delay, std::string what) {
  co_await asyncio::sleep(delay);
  throw std::runtime_error(what);
}

/// A void coroutine that sleeps `delay`.
inline asyncio::Coro<void> nap(double delay) { co_await asyncio::sleep(delay); }

/// Sleeps forever (until cancelled).
inline asyncio::Coro<void> forever() { co_await asyncio::sleep(1e9); }

}  // namespace testing_support
