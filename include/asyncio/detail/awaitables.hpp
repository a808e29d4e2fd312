// SPDX-License-Identifier: MIT
// Helpers the high-level functions share: turning "something awaitable" into a Future.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <type_traits>
#include <utility>
#include <variant>

#include "asyncio/coro.hpp"
#include "asyncio/future.hpp"
#include "asyncio/task.hpp"

namespace asyncio::detail {

/// void becomes std::monostate so results fit in tuples and vectors.
template <class T>
using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// Empty (no value_type) for anything that is not an awaitable of this library, so that
/// overloads using value_of drop out instead of failing.
template <class A>
struct AwaitableTraits {};
template <class A>
  requires LoopAwaitable<A>
struct AwaitableTraits<A> {
  using value_type = std::remove_cvref_t<await_result_t<A>>;
};

/// What awaiting an A gives: T for Coro<T>, Future<T>, Task<T>; bool for event.wait(), the item
/// for queue.get(), void for sleep(d), ...
template <class A>
using value_of = typename AwaitableTraits<std::remove_cvref_t<A>>::value_type;

template <class T>
inline constexpr bool is_future_v = false;
template <class T>
inline constexpr bool is_future_v<Future<T>> = true;
template <class T>
inline constexpr bool is_future_v<Task<T>> = true;

/// Python's ensure_future on the running loop: a Coro becomes a Task, futures pass through.
template <class T>
Future<T> as_future(Coro<T>&& c, SourceLocation where = SourceLocation::current()) {
  return get_running_loop().create_task(std::move(c), {}, where);
}
template <class T>
Future<T> as_future(const Future<T>& f) noexcept {
  return f;
}
template <class T>
Future<T> as_future(const Task<T>& t) noexcept {
  return t;
}
/// Any other awaitable (sleep, event.wait(), lock.acquire(), queue.get(), an AnyTask, ...): a
/// Task that awaits it.
template <class A>
  requires(LoopAwaitable<A> && !is_coro_v<std::remove_cvref_t<A>> && !is_future_v<std::remove_cvref_t<A>>)
Future<value_of<A>> as_future(A&& a, SourceLocation where = SourceLocation::current()) {
  return get_running_loop().create_task(await_in_coro(std::remove_cvref_t<A>(std::forward<A>(a))), {}, where);
}

/// Reads the outcome of a done future as a Stored<T>, marking an exception retrieved.
template <class T>
Stored<T> take_stored(const Future<T>& f) {
  if constexpr (std::is_void_v<T>) {
    f.state()->take_for_await();
    return {};
  } else {
    return f.state()->take_for_await();
  }
}

}  // namespace asyncio::detail
#pragma GCC visibility pop
