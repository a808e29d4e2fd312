// SPDX-License-Identifier: MIT
// wait(), wait_for() and as_completed(): waiting on several futures, or on one with a deadline.
//
//   auto [done, pending] = co_await asyncio::wait(tasks, 2.0, asyncio::FIRST_COMPLETED);
//   int v = co_await asyncio::wait_for(slow(), 1.5);            // TimeoutError after 1.5 s
//   for (auto next : asyncio::as_completed(tasks)) int r = co_await next;
//
// wait() never cancels anything: on timeout it returns what is done and what is pending.
// wait_for() cancels the awaitable on timeout, waits for it to finish, then raises TimeoutError.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <deque>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "asyncio/detail/awaitables.hpp"
#include "asyncio/timeout.hpp"

namespace asyncio {

/// When wait() returns (Python's asyncio.FIRST_COMPLETED etc.).
enum class ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::FIRST_COMPLETED;
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::FIRST_EXCEPTION;
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::ALL_COMPLETED;

/// What wait() returns; `auto [done, pending] = co_await wait(...)` works. Input order is kept.
template <class F>
struct WaitResult {
  std::vector<F> done;  ///< The futures that are done.
  std::vector<F> pending;  ///< The others.
};

namespace detail {

/// Completes `signal` when the futures meet the ReturnWhen condition. Unregisters on destruction,
/// so a cancelled wait leaves nothing behind on the futures.
class MultiWait {
 public:
  MultiWait(EventLoop& loop, std::vector<FutureStateBase*> futures, ReturnWhen when);
  ~MultiWait();
  MultiWait(const MultiWait&) = delete;
  MultiWait& operator=(const MultiWait&) = delete;
  /// True if the condition already holds.
  bool satisfied() const noexcept { return satisfied_; }
  Future<void>& signal() noexcept { return signal_; }

 private:
  static void on_done(void* self, FutureStateBase& f);
  void check(FutureStateBase& f);
  friend struct Introspect;  // await graphs show the wait() (src/diag/introspect.hpp)

  std::vector<FutureStateBase*> futures_;
  Future<void> signal_;
  std::size_t remaining_;
  ReturnWhen when_;
  bool satisfied_ = false;
};

/// Python makes a set of the awaitables given to wait() and as_completed(): the same future
/// (or task) twice is one entry. Keeps the first occurrence, in input order.
template <class F>
void drop_duplicates(std::vector<F>& fs) {
  std::unordered_set<const FutureStateBase*> seen;
  seen.reserve(fs.size());
  std::size_t kept = 0;
  for (std::size_t i = 0; i < fs.size(); ++i)
    if (seen.insert(fs[i].state()).second) {
      if (kept != i) fs[kept] = std::move(fs[i]);
      ++kept;
    }
  fs.erase(fs.begin() + static_cast<std::ptrdiff_t>(kept), fs.end());
}

template <class F>
std::vector<FutureStateBase*> states_of(const std::vector<F>& fs) {
  std::vector<FutureStateBase*> out;
  out.reserve(fs.size());
  for (auto& f : fs) out.push_back(f.state());
  return out;
}

}  // namespace detail

namespace detail {
/// What wait() returns as it was given: futures, tasks, AnyTasks.
template <class F>
concept FutureHandle = requires(const F& f) {
  { f.state() } -> std::convertible_to<const FutureStateBase*>;
  { f.done() } -> std::same_as<bool>;
};
}  // namespace detail

/// Waits until `return_when` holds or `timeout` seconds pass (nullopt: no limit). Takes futures
/// or tasks, returned as they were given. ValueError if `fs` is empty. The same future given
/// twice is one entry, as in Python's sets.
template <detail::FutureHandle F>
Coro<WaitResult<F>> wait(std::vector<F> fs, std::optional<double> timeout = std::nullopt,
                         ReturnWhen return_when = ALL_COMPLETED) {
  if (fs.empty()) throw ValueError("Set of Tasks/Futures is empty.");
  detail::check_timeout(timeout);
  detail::drop_duplicates(fs);
  {
    detail::MultiWait waiter(get_running_loop(), detail::states_of(fs), return_when);
    if (!waiter.satisfied()) {
      TimerHandle timer;
      if (timeout) {
        Future<void> signal = waiter.signal();
        timer = get_running_loop().call_later(*timeout, [signal]() mutable {
          if (!signal.done()) signal.set_result();
        });
      }
      struct CancelTimer {
        TimerHandle& t;
        ~CancelTimer() { t.cancel(); }
      } cancel_timer{timer};
      co_await waiter.signal();
    }
  }
  WaitResult<F> result;
  for (auto& f : fs) (f.done() ? result.done : result.pending).push_back(std::move(f));
  co_return result;
}

/// wait() on other awaitables (coroutines, sleep(...), event.wait(), queue.get(), ...): each is
/// wrapped in a Task first, and the Tasks are what comes back in `done` and `pending` (as
/// Python's wait() did with coroutines before 3.11).
///   auto [done, pending] = co_await asyncio::wait(std::move(coros), 1.0, asyncio::FIRST_COMPLETED);
template <class A>
  requires(!detail::FutureHandle<A> && detail::LoopAwaitable<A>)
Coro<WaitResult<Task<detail::value_of<A>>>> wait(std::vector<A> aws, std::optional<double> timeout = std::nullopt,
                                                  ReturnWhen return_when = ALL_COMPLETED) {
  std::vector<Task<detail::value_of<A>>> tasks;
  tasks.reserve(aws.size());
  for (auto& a : aws) tasks.push_back(create_task(std::move(a)));
  co_return co_await wait(std::move(tasks), timeout, return_when);
}

/// Awaits `aw` with a deadline of `timeout` seconds (nullopt: none). On timeout the awaitable
/// is cancelled and awaited, then TimeoutError is raised (Python 3.12's wait_for). A coroutine runs
/// inside the calling task, as in Python 3.12. `aw` is any awaitable of this library:
///   bool ok = co_await asyncio::wait_for(event.wait(), 5);
///   Job j = co_await asyncio::wait_for(queue.get(), 1.5);
template <class A>
Coro<detail::value_of<A>> wait_for(A aw, std::optional<double> timeout) {
  using T = detail::value_of<A>;
  detail::check_timeout(timeout);
  if (timeout && *timeout <= 0) {
    // No time at all: a future that is already done still gives its result; anything else is
    // cancelled, awaited to the end, and reported as a timeout unless it finished anyway.
    Future<T> f = detail::as_future(std::move(aw));
    if (!f.done()) {
      f.cancel();
      std::vector<Future<T>> one;  // (no braced list: g++ 12 miscompiles those in coroutines)
      one.push_back(f);
      co_await wait(std::move(one));
    }
    if (f.cancelled()) throw TimeoutError();
    if constexpr (std::is_void_v<T>) {
      f.state()->take_for_await();
      co_return;
    } else {
      co_return f.state()->take_for_await();
    }
  }
  if constexpr (std::is_void_v<T>)
    co_await asyncio::timeout(timeout, [&aw]() -> A { return std::move(aw); });
  else
    co_return co_await asyncio::timeout(timeout, [&aw]() -> A { return std::move(aw); });
}

namespace detail {

template <class T>
class AsCompletedState {
 public:
  AsCompletedState(std::vector<Future<T>> fs, std::optional<double> timeout) : todo_(std::move(fs)) {
    check_timeout(timeout);  // before any callback points at this
    EventLoop& loop = get_running_loop();
    for (auto& f : todo_) {
      if (f.done())
        done_.push_back(f);
      else
        f.state()->add_callback(DoneCallback{&on_done, this});
    }
    if (timeout) timer_ = loop.call_later(*timeout, [this] { on_timeout(); });
  }
  ~AsCompletedState() {
    timer_.cancel();
    for (auto& f : todo_) f.state()->remove_callback(&on_done, this);
  }
  AsCompletedState(const AsCompletedState&) = delete;
  AsCompletedState& operator=(const AsCompletedState&) = delete;

  static Coro<T> next(std::shared_ptr<AsCompletedState> s) {
    while (s->done_.empty()) {
      if (s->timed_out_) throw TimeoutError();
      // Each concurrent awaiter waits on its own future, woken first come first served.
      Future<void> wakeup = get_running_loop().template create_future<void>();
      s->waiters_.push_back(wakeup);
      co_await wakeup;
    }
    Future<T> f = s->done_.front();
    s->done_.pop_front();
    co_return co_await f;
  }

 private:
  static void on_done(void* self, FutureStateBase& fs) {
    auto* s = static_cast<AsCompletedState*>(self);
    for (auto& f : s->todo_)
      if (f.state() == &fs) s->done_.push_back(f);
    s->wake();
  }
  void on_timeout() {
    timed_out_ = true;
    while (!waiters_.empty()) wake();
  }
  /// Wakes the oldest waiter still waiting (a cancelled one is skipped).
  void wake() {
    while (!waiters_.empty()) {
      Future<void> w = waiters_.front();
      waiters_.pop_front();
      if (!w.done()) {
        w.set_result();
        return;
      }
    }
  }

  std::vector<Future<T>> todo_;
  std::deque<Future<T>> done_;
  std::deque<Future<void>> waiters_;
  TimerHandle timer_;
  bool timed_out_ = false;
};

}  // namespace detail

/// The range as_completed() returns: iterate it and await each element.
template <class T>
class AsCompleted {
 public:
  /// The shared state of the iteration.
  using State = detail::AsCompletedState<T>;
  /// Library-internal: made by as_completed.
  AsCompleted(std::vector<Future<T>> fs, std::optional<double> timeout)
      : total_(fs.size()), state_(std::make_shared<State>(std::move(fs), timeout)) {}
  /// How many futures it yields in all.
  std::size_t size() const noexcept { return total_; }

  /// Yields one awaitable per future, in completion order.
  class iterator {
   public:
    /// Library-internal: position `i` over `s`.
    iterator(std::shared_ptr<State> s, std::size_t i) : s_(std::move(s)), i_(i) {}
    /// The next completion, as a coroutine to await.
    Coro<T> operator*() const { return State::next(s_); }
    /// The next position.
    iterator& operator++() {
      ++i_;
      return *this;
    }
    /// False at the end.
    bool operator!=(const iterator& o) const { return i_ != o.i_; }

   private:
    std::shared_ptr<State> s_;
    std::size_t i_;
  };
  /// The first position.
  iterator begin() const { return iterator(state_, 0); }
  /// Past the last position.
  iterator end() const { return iterator(state_, total_); }

 private:
  std::size_t total_;
  std::shared_ptr<State> state_;
};

/// Python's as_completed: `for (auto next : as_completed(tasks)) { auto r = co_await next; }`.
/// Coroutines in `aws` are wrapped in tasks at once; the same future or task given twice is
/// one entry (Python makes a set of them).
template <class A>
AsCompleted<detail::value_of<A>> as_completed(std::vector<A> aws, std::optional<double> timeout = std::nullopt) {
  std::vector<Future<detail::value_of<A>>> fs;
  fs.reserve(aws.size());
  for (auto& a : aws) fs.push_back(detail::as_future(std::move(a)));
  detail::drop_duplicates(fs);
  return AsCompleted<detail::value_of<A>>(std::move(fs), timeout);
}

}  // namespace asyncio
#pragma GCC visibility pop
