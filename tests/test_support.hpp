// Shared helpers for the high-level API tests: run a coroutine on simulated time.
#pragma once

#include <asyncio/asyncio.hpp>

#include <stdexcept>
#include <string>

namespace testing_support {

/// Runs `c` with asyncio::run on the virtual clock; returns its result.
template <class T>
T run_v(asyncio::Coro<T> c) {
  return asyncio::run(std::move(c), asyncio::RunOptions{.debug = false, .virtual_time = true});
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
