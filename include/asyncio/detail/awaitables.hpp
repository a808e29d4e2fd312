// SPDX-License-Identifier: MIT
// Helpers the high-level functions share: turning "something awaitable" into a Future.
#pragma once

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

template <class A>
struct AwaitableTraits;
template <class T>
struct AwaitableTraits<Coro<T>> {
  using value_type = T;
};
template <class T>
struct AwaitableTraits<Future<T>> {
  using value_type = T;
};
template <class T>
struct AwaitableTraits<Task<T>> {
  using value_type = T;
};

/// T for Coro<T>, Future<T>, Task<T>.
template <class A>
using value_of = typename AwaitableTraits<std::remove_cvref_t<A>>::value_type;

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
