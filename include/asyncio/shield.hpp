// SPDX-License-Identifier: MIT
// shield(): protect an awaitable from cancellation.
//
//   auto r = co_await asyncio::shield(save_to_disk());
//
// If the task awaiting the shield is cancelled, the await raises CancelledError but the inner
// task keeps running to completion (the loop owns it). Python's asyncio.shield. If the inner work
// then fails, nobody is left to see the exception: it goes to the loop's exception handler.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include "asyncio/detail/awaitables.hpp"

namespace asyncio {

namespace detail {

/// Lives in the inner future's callback list and holds the outer future.
template <class T>
struct ShieldLink {
  Ref<FutureState<T>> outer;
  static void on_inner_done(void* arg, FutureStateBase& inner_base) {
    std::unique_ptr<ShieldLink> link(static_cast<ShieldLink*>(arg));
    auto& inner = static_cast<FutureState<T>&>(inner_base);
    FutureState<T>& outer = *link->outer;
    if (outer.cancelled()) {
      // Nobody awaits the inner work any more: a failure would be lost, so the loop's exception
      // handler reports it (a result is simply dropped).
      if (inner.cancelled()) return;
      if (auto e = inner.exception())
        inner.loop()->call_exception_handler({"shielded awaitable failed after the shield was cancelled", e,
                                              inner.describe(), {}});
      return;
    }
    if (inner.cancelled()) {
      outer.cancel(inner.cancel_message());
    } else if (auto e = inner.exception()) {
      outer.set_exception(e);
    } else if constexpr (std::is_void_v<T>) {
      outer.set_result();
    } else {
      outer.set_result(inner.take_for_await());
    }
  }
  static void drop(void* arg) noexcept { delete static_cast<ShieldLink*>(arg); }
};

}  // namespace detail

/// An outer future that follows `aw` but whose cancellation does not reach it.
template <class A>
Future<detail::value_of<A>> shield(A&& aw) {
  using T = detail::value_of<A>;
  Future<T> inner = detail::as_future(std::forward<A>(aw));
  if (inner.done()) return inner;
  Future<T> outer(inner.get_loop());
  auto* link = new detail::ShieldLink<T>{detail::Ref<detail::FutureState<T>>(outer.state())};
  inner.state()->add_callback(
      detail::DoneCallback{&detail::ShieldLink<T>::on_inner_done, link, &detail::ShieldLink<T>::drop});
  return outer;
}

}  // namespace asyncio
#pragma GCC visibility pop
