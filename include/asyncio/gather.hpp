// SPDX-License-Identifier: MIT
// gather(): run awaitables concurrently and collect their results in order.
//
//   auto [a, b] = co_await asyncio::gather(fetch(1), fetch(2));          // std::tuple
//   std::vector<int> all = co_await asyncio::gather(std::move(coros));   // a range of awaitables
//   auto outcomes = co_await asyncio::gather(asyncio::return_exceptions, f(), g());
//
// Coroutines are wrapped in tasks at once, so they start running before gather is awaited, as in
// Python. The first exception propagates to the awaiter at once (the other children keep running)
// unless `return_exceptions` is passed first, in which case each child gives an Outcome<T>.
// Cancelling the gather (or the task awaiting it) cancels every child. A void child gives
// std::monostate.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <functional>
#include <memory>
#include <tuple>
#include <vector>

#include "asyncio/detail/awaitables.hpp"
#include "asyncio/outcome.hpp"

namespace asyncio {

/// Tag: pass as gather's first argument to get an Outcome per child instead of the first error.
struct ReturnExceptions {
  explicit ReturnExceptions() = default;
};
inline constexpr ReturnExceptions return_exceptions{};

namespace detail {

/// What every gather shares whatever its Result: the one callback function it registers on its
/// children, so that diagnostics recognise a gather among a child's callbacks (await graphs,
/// src/diag/introspect.hpp), and the gather's own future.
class GatherBase {
 public:
  static void on_child_done(void* self, FutureStateBase& child) { static_cast<GatherBase*>(self)->child_done(child); }
  virtual FutureStateBase& gather_future() noexcept = 0;

 protected:
  ~GatherBase() = default;
  virtual void child_done(FutureStateBase& child) = 0;
};

/// The future gather() returns. It counts children through internal callbacks; its own cancel()
/// cancels the children (Python's _GatheringFuture).
template <class Result>
class GatherState final : public FutureState<Result>, public GatherBase {
 public:
  GatherState(EventLoop* loop, std::vector<Ref<FutureStateBase>> children, bool return_exceptions,
              std::function<Result()> collect)
      : FutureState<Result>(loop),
        children_(std::move(children)),
        collect_(std::move(collect)),
        return_exceptions_(return_exceptions) {}
  ~GatherState() override {
    // Children still running when the gather goes away: their outcome is the gather's business,
    // so it must not later be reported as "never retrieved" (CPython's callbacks consume it too).
    for (auto& c : children_) {
      c->remove_callback(&on_child_done, static_cast<GatherBase*>(this));
      if (!c->done()) c->add_callback(DoneCallback{&consume_outcome, nullptr});
    }
  }

  /// Registers with the children; a child that is already done counts at once.
  void attach() {
    if (children_.empty()) {
      this->set_result(collect_());
      return;
    }
    for (auto& c : children_) {
      if (c->done())
        child_done(*c);
      else
        c->add_callback(DoneCallback{&on_child_done, static_cast<GatherBase*>(this)});
    }
  }

  bool cancel(const std::string& msg) override {
    if (this->done()) return false;
    bool any = false;
    for (auto& c : children_)
      if (c->cancel(msg)) any = true;
    if (any) cancel_requested_ = true;
    return any;
  }

 private:
  static void consume_outcome(void*, FutureStateBase& child) {
    if (!child.cancelled()) child.exception();
  }
  FutureStateBase& gather_future() noexcept override { return *this; }
  void child_done(FutureStateBase& child) override {
    auto* g = this;
    ++g->finished_;
    if (g->done()) {
      if (!child.cancelled()) child.exception();  // consumed: nobody else will report it
      return;
    }
    if (!g->return_exceptions_) {
      if (child.cancelled()) {
        g->set_exception(std::make_exception_ptr(CancelledError(child.cancel_message())));
        return;
      }
      if (auto e = child.exception()) {
        g->set_exception(e);
        return;
      }
    }
    if (g->finished_ < g->children_.size()) return;
    if (g->cancel_requested_) {
      g->mark_cancelled(child.cancel_message());
      return;
    }
    try {
      g->set_result(g->collect_());
    } catch (...) {
      g->set_exception(std::current_exception());
    }
  }

  std::vector<Ref<FutureStateBase>> children_;
  std::function<Result()> collect_;
  std::size_t finished_ = 0;
  bool return_exceptions_;
  bool cancel_requested_ = false;
};

template <class Result>
Future<Result> start_gather(std::vector<Ref<FutureStateBase>> children, bool return_exceptions,
                            std::function<Result()> collect) {
  EventLoop& loop = get_running_loop();
  auto* state = new GatherState<Result>(&loop, std::move(children), return_exceptions, std::move(collect));
  Ref<FutureState<Result>> ref = Ref<FutureState<Result>>::adopt(state);
  state->attach();
  return Future<Result>(std::move(ref));
}

template <class T>
Outcome<Stored<T>> take_outcome(const Future<T>& f) {
  if (f.cancelled()) return Outcome<Stored<T>>(std::make_exception_ptr(CancelledError(f.state()->cancel_message())));
  if (auto e = f.state()->exception()) return Outcome<Stored<T>>(e);
  return Outcome<Stored<T>>(take_stored(f));
}

/// Takes each child's value for the plain form (a failure was raised before this runs).
struct TakeStored {
  template <class T>
  auto operator()(const Future<T>& f) const {
    return take_stored(f);
  }
};
/// Takes each child's value or exception for the return_exceptions form.
struct TakeOutcome {
  template <class T>
  auto operator()(const Future<T>& f) const {
    return take_outcome(f);
  }
};

/// The tuple forms: start every child (in argument order), collect with `Take`.
template <class Result, class Take, class... A>
Future<Result> gather_tuple(bool return_exceptions, A&&... aws) {
  // Braced initialisation runs left to right, so the children start in argument order.
  std::tuple<Future<value_of<A>>...> futures{as_future(std::forward<A>(aws))...};
  std::vector<Ref<FutureStateBase>> children;
  std::apply([&](auto&... f) { (children.emplace_back(f.state()), ...); }, futures);
  return start_gather<Result>(std::move(children), return_exceptions, [futures]() {
    return std::apply([](auto&... f) { return Result(Take{}(f)...); }, futures);
  });
}

/// The range forms: start every child (in order), collect a std::vector with `Take`.
template <class Result, class Take, class A>
Future<Result> gather_range(std::vector<A> aws, bool return_exceptions) {
  using T = value_of<A>;
  auto futures = std::make_shared<std::vector<Future<T>>>();
  futures->reserve(aws.size());
  std::vector<Ref<FutureStateBase>> children;
  for (auto& a : aws) {
    futures->push_back(as_future(std::move(a)));
    children.emplace_back(futures->back().state());
  }
  return start_gather<Result>(std::move(children), return_exceptions, [futures]() {
    Result out;
    out.reserve(futures->size());
    for (auto& f : *futures) out.push_back(Take{}(f));
    return out;
  });
}

}  // namespace detail

/// Runs the awaitables concurrently; the result is a std::tuple of their results, in order.
/// Any awaitable of this library goes (`gather(fetch(1), event.wait(), asyncio::sleep(1))`);
/// `gather()` with none is done at once with an empty tuple (Python: an empty list).
template <class... A>
Future<std::tuple<detail::Stored<detail::value_of<A>>...>> gather(A&&... aws) {
  using Result = std::tuple<detail::Stored<detail::value_of<A>>...>;
  return detail::gather_tuple<Result, detail::TakeStored>(false, std::forward<A>(aws)...);
}

/// As above, but every child gives an Outcome (value or exception) and nothing is raised.
template <class... A>
Future<std::tuple<Outcome<detail::Stored<detail::value_of<A>>>...>> gather(ReturnExceptions, A&&... aws) {
  using Result = std::tuple<Outcome<detail::Stored<detail::value_of<A>>>...>;
  return detail::gather_tuple<Result, detail::TakeOutcome>(true, std::forward<A>(aws)...);
}

/// Gathers a range (a std::vector) of same-typed awaitables into a std::vector of results.
template <class A>
Future<std::vector<detail::Stored<detail::value_of<A>>>> gather(std::vector<A> aws) {
  using Result = std::vector<detail::Stored<detail::value_of<A>>>;
  return detail::gather_range<Result, detail::TakeStored>(std::move(aws), false);
}

/// Range form with return_exceptions: a std::vector of Outcomes.
template <class A>
Future<std::vector<Outcome<detail::Stored<detail::value_of<A>>>>> gather(ReturnExceptions, std::vector<A> aws) {
  using Result = std::vector<Outcome<detail::Stored<detail::value_of<A>>>>;
  return detail::gather_range<Result, detail::TakeOutcome>(std::move(aws), true);
}

}  // namespace asyncio
#pragma GCC visibility pop
