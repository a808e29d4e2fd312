// SPDX-License-Identifier: MIT
// Synchronization primitives between tasks of one loop: Lock, Event, Condition, Semaphore,
// BoundedSemaphore, Barrier (Python's asyncio.locks).
//
// Like Python's, they are for tasks of a single event loop and are not thread-safe; to
// synchronize with other threads use call_soon_threadsafe or run_coroutine_threadsafe.
//
//   asyncio::Lock lock;
//   {
//     auto held = co_await lock.scoped();      // async with lock:
//     co_await write_both_files();             //     ...
//   }                                          // released here, also on exceptions
//
//   asyncio::Event ready;
//   co_await ready.wait();                     // another task calls ready.set()
//
// Guarantees (see docs/sync-and-threads.md):
//  - Fair: waiters are served in arrival order. A release hands the lock (a semaphore unit, a
//    notification) to the first waiter at once, so a task that arrives later cannot take it first.
//  - Cancellation-safe: a waiter cancelled after it was handed the resource, but before it ran,
//    passes it on to the next waiter; a cancelled Lock waiter never leaves the lock held; a
//    cancelled Condition.wait re-acquires the lock before raising CancelledError.
//  - A wait allocates nothing: the waiter is the awaiter, in the waiting task's coroutine frame.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <coroutine>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "asyncio/coro.hpp"
#include "asyncio/detail/waiters.hpp"
#include "asyncio/errors.hpp"

namespace asyncio {

class Lock;
class Semaphore;
class Event;
class Condition;

/// Raised by Barrier.wait when the barrier is aborted or reset (Python's BrokenBarrierError,
/// a RuntimeError).
class BrokenBarrierError : public RuntimeError {
 public:
  BrokenBarrierError() : RuntimeError("BrokenBarrierError") {}
  using RuntimeError::RuntimeError;
};

/// Holds an acquired Lock, Semaphore or Condition and releases it when destroyed: the C++ shape
/// of `async with lock:`. Move-only. Obtained from `co_await x.scoped()`.
template <class P>
class [[nodiscard]] LockGuard {
 public:
  LockGuard() noexcept = default;
  /// Takes ownership of an acquired `p` (made by the `scoped()` awaitables).
  explicit LockGuard(P& p) noexcept : p_(&p) {}
  /// Moves ownership; `o` releases nothing.
  LockGuard(LockGuard&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  /// Releases what this guard holds, then takes over `o`'s.
  LockGuard& operator=(LockGuard&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~LockGuard() { reset(); }

  /// Releases now instead of at the end of the scope.
  void release() { reset(); }
  /// True while this guard holds the primitive.
  bool owns() const noexcept { return p_ != nullptr; }
  /// True while it holds the primitive.
  explicit operator bool() const noexcept { return owns(); }

 private:
  void reset() {
    if (P* p = std::exchange(p_, nullptr)) p->release();
  }
  P* p_ = nullptr;
};

namespace detail {

/// co_await lock.acquire(): returns true once the lock is held.
class LockAcquire : public Waiter {
 public:
  using is_asyncio_awaitable = void;
  explicit LockAcquire(Lock& lock) noexcept : lock_(&lock) {}
  LockAcquire(LockAcquire&&) noexcept = default;
  ~LockAcquire();
  bool await_ready() noexcept;
  void await_suspend(std::coroutine_handle<> h) { suspend_on_lock(h); }
  bool await_resume();
  WaitTarget wait_target() const noexcept override { return {"lock"}; }  // diagnostics

 private:
  void suspend_on_lock(std::coroutine_handle<> h);
  Lock* lock_;
};

/// co_await sem.acquire(): returns true once a unit is held.
class SemaphoreAcquire : public Waiter {
 public:
  using is_asyncio_awaitable = void;
  explicit SemaphoreAcquire(Semaphore& sem) noexcept : sem_(&sem) {}
  SemaphoreAcquire(SemaphoreAcquire&&) noexcept = default;
  ~SemaphoreAcquire();
  bool await_ready() noexcept;
  void await_suspend(std::coroutine_handle<> h);
  bool await_resume();
  WaitTarget wait_target() const noexcept override { return {"semaphore"}; }  // diagnostics

 private:
  Semaphore* sem_;
};

/// co_await event.wait(): returns true once the event is set.
class EventWait final : public Waiter {
 public:
  using is_asyncio_awaitable = void;
  explicit EventWait(Event& event) noexcept : event_(&event) {}
  bool await_ready() const noexcept;
  void await_suspend(std::coroutine_handle<> h);
  bool await_resume();
  WaitTarget wait_target() const noexcept override { return {"event"}; }  // diagnostics

 private:
  Event* event_;
};

/// The notification half of Condition.wait (the lock is handled by Condition::wait).
class NotifyWait final : public Waiter {
 public:
  using is_asyncio_awaitable = void;
  explicit NotifyWait(Condition& cond) noexcept : cond_(&cond) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  void await_resume();
  WaitTarget wait_target() const noexcept override { return {"condition"}; }  // diagnostics

 private:
  Condition* cond_;
};

/// acquire() that gives a LockGuard instead of true.
template <class P, class Acquire>
class ScopedAcquire final : public Acquire {
 public:
  explicit ScopedAcquire(P& p) noexcept : Acquire(p), p_(&p) {}
  /// `p` is what the guard releases, `target` what Acquire waits on (Condition: its lock).
  template <class Target>
  ScopedAcquire(P& p, Target& target) noexcept : Acquire(target), p_(&p) {}
  LockGuard<P> await_resume() {
    Acquire::await_resume();
    return LockGuard<P>(*p_);
  }

 private:
  P* p_;
};

}  // namespace detail

/// A mutual-exclusion lock for tasks (Python's asyncio.Lock). Not reentrant, not thread-safe.
///   co_await lock.acquire(); ... lock.release();
///   { auto held = co_await lock.scoped(); ... }     // async with lock:
class Lock {
 public:
  Lock() noexcept = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  ~Lock();

  /// Waits until the lock is free and takes it; returns true. Waiters are served in FIFO order.
  /// A free lock is taken without suspending.
  [[nodiscard]] detail::LockAcquire acquire() noexcept { return detail::LockAcquire(*this); }
  /// Acquires and returns a guard that releases the lock at the end of its scope.
  [[nodiscard]] detail::ScopedAcquire<Lock, detail::LockAcquire> scoped() noexcept {
    return detail::ScopedAcquire<Lock, detail::LockAcquire>(*this);
  }
  /// Releases the lock, handing it to the first waiter if there is one. RuntimeError if the lock
  /// is not held. (Like Python's, any task may release it, not only the one that acquired it.)
  void release();
  /// True while the lock is held — including while it has been handed to a woken waiter that has
  /// not run yet (Python reports False in that instant; here nobody else can take it then).
  bool locked() const noexcept { return locked_; }
  /// Number of tasks waiting to acquire.
  std::size_t waiters() const noexcept { return waiting_.size(); }

 private:
  friend class detail::LockAcquire;
  bool locked_ = false;
  detail::WaitList waiting_;
  detail::WaitList handed_;  // granted waiters that have not resumed yet
};

/// A flag tasks can wait for (Python's asyncio.Event).
class Event {
 public:
  Event() noexcept = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// True once set() was called and clear() has not been since (Python's Event.is_set()).
  bool is_set() const noexcept { return value_; }
  /// Sets the flag and wakes every waiter. Idempotent.
  void set() noexcept;
  /// Resets the flag; later wait() calls block until set() again. Waiters already woken by an
  /// earlier set() still return true.
  void clear() noexcept { value_ = false; }
  /// Returns true once the flag is set (at once if it already is).
  [[nodiscard]] detail::EventWait wait() noexcept { return detail::EventWait(*this); }

 private:
  friend class detail::EventWait;
  bool value_ = false;
  detail::WaitList waiting_;
};

/// A condition variable for tasks, over a Lock (Python's asyncio.Condition).
///   auto held = co_await cond.scoped();
///   co_await cond.wait_for([&] { return !items.empty(); });
class Condition {
 public:
  /// With its own Lock.
  Condition() noexcept : lock_(&own_) {}
  /// Over an existing lock, which must outlive the condition (Python's Condition(lock)).
  explicit Condition(Lock& lock) noexcept : lock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;
  ~Condition();

  /// The underlying lock.
  [[nodiscard]] detail::LockAcquire acquire() noexcept { return lock_->acquire(); }
  /// Acquires the underlying lock; the guard releases it.
  [[nodiscard]] detail::ScopedAcquire<Condition, detail::LockAcquire> scoped() noexcept {
    return detail::ScopedAcquire<Condition, detail::LockAcquire>(*this, *lock_);
  }
  /// Releases the underlying lock.
  void release() { lock_->release(); }
  /// True if the underlying lock is held.
  bool locked() const noexcept { return lock_->locked(); }

  /// Releases the lock, waits until notified, re-acquires the lock, returns true. RuntimeError if
  /// the lock is not held. If the task is cancelled, the lock is still re-acquired before
  /// CancelledError propagates; a notification it received is passed to another waiter.
  Coro<bool> wait();
  /// Waits until `predicate()` is truthy; returns its last value (Python's wait_for).
  template <class P>
  Coro<std::decay_t<std::invoke_result_t<P&>>> wait_for(P predicate) {
    auto result = predicate();
    while (!result) {
      co_await wait();
      result = predicate();
    }
    co_return result;
  }
  /// Wakes up to `n` waiters (first come, first served). RuntimeError if the lock is not held.
  void notify(std::size_t n = 1);
  /// Wakes every waiter.
  void notify_all() { notify(waiting_.size()); }
  /// Number of tasks waiting to be notified.
  std::size_t waiters() const noexcept { return waiting_.size(); }

 private:
  friend class detail::NotifyWait;
  void wake(std::size_t n) noexcept;

  Lock own_;
  Lock* lock_;
  detail::WaitList waiting_;
};

/// A counter of free units (Python's asyncio.Semaphore): acquire() takes one, waiting while there
/// is none; release() gives one back. Also a rate/concurrency limiter:
///   asyncio::Semaphore slots(10);
///   { auto held = co_await slots.scoped(); co_await fetch(url); }   // at most 10 at once
class Semaphore {
 public:
  /// ValueError if `value` < 0.
  explicit Semaphore(std::ptrdiff_t value = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  virtual ~Semaphore();

  /// `co_await sem.acquire()`: takes one unit, waiting while the value is 0.
  [[nodiscard]] detail::SemaphoreAcquire acquire() noexcept { return detail::SemaphoreAcquire(*this); }
  /// `auto guard = co_await sem.scoped()`: acquire() with a guard that releases on every path.
  [[nodiscard]] detail::ScopedAcquire<Semaphore, detail::SemaphoreAcquire> scoped() noexcept {
    return detail::ScopedAcquire<Semaphore, detail::SemaphoreAcquire>(*this);
  }
  /// Gives a unit back: to the first waiter if there is one, else to the counter.
  virtual void release();
  /// True if acquire() would have to wait: no unit is free, or other tasks are ahead — waiting,
  /// or woken with a unit and not run yet (Python 3.12's first-come-first-served rule).
  bool locked() const noexcept { return value_ == 0 || !waiting_.empty() || !handed_.empty(); }
  /// Free units now (units handed to woken waiters are not counted).
  std::size_t value() const noexcept { return value_; }
  /// How many coroutines are waiting in acquire().
  std::size_t waiters() const noexcept { return waiting_.size(); }

 protected:
  /// release() without the BoundedSemaphore check.
  void release_unit() noexcept;
  /// Hands free units to queued waiters. Waiters queue behind woken ones even while units are
  /// free (FIFO), so each woken waiter leaving calls this to let them in.
  void grant_free_units() noexcept;

 private:
  friend class detail::SemaphoreAcquire;
  std::size_t value_;
  detail::WaitList waiting_;
  detail::WaitList handed_;
};

/// A Semaphore that refuses to go above its initial value: release() without a matching
/// acquire() raises ValueError (Python's asyncio.BoundedSemaphore).
class BoundedSemaphore : public Semaphore {
 public:
  /// A semaphore starting at `value`, whose release() beyond that raises ValueError.
  explicit BoundedSemaphore(std::ptrdiff_t value = 1);
  void release() override;

 private:
  std::size_t bound_;
};

/// Lets `parties` tasks wait until all of them have arrived (Python 3.11's asyncio.Barrier).
///   std::size_t index = co_await barrier.wait();   // 0 .. parties-1, in arrival order
class Barrier {
 public:
  /// ValueError if `parties` is 0.
  explicit Barrier(std::size_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// Waits for the other parties; returns this task's arrival index. BrokenBarrierError if the
  /// barrier is or becomes broken (abort) or is reset while waiting. A cancelled party leaves
  /// the barrier: its place must be taken by another task before the barrier passes.
  Coro<std::size_t> wait();
  /// Returns the barrier to the empty state; tasks waiting in it get BrokenBarrierError.
  Coro<void> reset();
  /// Puts the barrier in the broken state: current and future wait() calls raise
  /// BrokenBarrierError until reset().
  Coro<void> abort();

  /// How many tasks must wait() before all pass (Python's Barrier.parties).
  std::size_t parties() const noexcept { return parties_; }
  /// Tasks waiting in the barrier while it is filling.
  std::size_t n_waiting() const noexcept { return state_ == State::filling ? count_ : 0; }
  /// True once the barrier is broken (Python's Barrier.broken).
  bool broken() const noexcept { return state_ == State::broken; }

 private:
  enum class State { filling, draining, resetting, broken };
  void exit_one();

  Condition cond_;
  std::size_t parties_;
  std::size_t count_ = 0;
  State state_ = State::filling;
};

}  // namespace asyncio
#pragma GCC visibility pop
