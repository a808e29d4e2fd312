// SPDX-License-Identifier: MIT
#include "asyncio/locks.hpp"

namespace asyncio {

using detail::Waiter;
using State = detail::Waiter::State;

namespace detail {

// ---- Lock ----------------------------------------------------------------------------------------

LockAcquire::~LockAcquire() {
  // Destroyed after the lock was handed over but before the task ran (its frame was destroyed
  // with the task): pass the lock on rather than leave it held by nobody.
  if (state_ == State::granted) {
    unlink();
    if (!orphaned()) lock_->release();
  }
}

bool LockAcquire::await_ready() noexcept {
  // A free lock has no waiters (release() hands it to the first one), so taking it now cannot
  // overtake anybody.
  if (lock_->locked_) return false;
  lock_->locked_ = true;
  return true;
}

void LockAcquire::suspend_on_lock(std::coroutine_handle<> h) { suspend(lock_->waiting_, h, "acquire a Lock"); }

bool LockAcquire::await_resume() {
  if (state_ == State::idle) return true;  // taken in await_ready
  if (state_ == State::granted) {
    unlink();
    state_ = State::done;
    try {
      task_->resume_checked();
    } catch (...) {
      // Cancelled after release() handed us the lock: hand it on, so the lock is neither left
      // held nor the wake-up lost.
      if (!orphaned()) lock_->release();
      throw;
    }
    return true;
  }
  state_ = State::done;
  task_->resume_checked(true);  // aborted while waiting: raises CancelledError
  return false;
}

// ---- Semaphore -----------------------------------------------------------------------------------

SemaphoreAcquire::~SemaphoreAcquire() {
  if (state_ == State::granted) {
    unlink();
    if (!orphaned()) {
      sem_->release_unit();
      sem_->grant_free_units();
    }
  }
}

bool SemaphoreAcquire::await_ready() noexcept {
  // First come, first served: a unit may be free while woken waiters have not run yet; a
  // newcomer still queues behind them (CPython 3.12+).
  if (sem_->locked()) return false;
  --sem_->value_;
  return true;
}

void SemaphoreAcquire::await_suspend(std::coroutine_handle<> h) {
  suspend(sem_->waiting_, h, "acquire a Semaphore");
}

bool SemaphoreAcquire::await_resume() {
  if (state_ == State::idle) return true;
  if (state_ == State::granted) {
    unlink();
    state_ = State::done;
    try {
      task_->resume_checked();
    } catch (...) {
      if (!orphaned()) {
        sem_->release_unit();  // the unit we were handed goes to the next waiter
        sem_->grant_free_units();
      }
      throw;
    }
    if (!orphaned()) sem_->grant_free_units();
    return true;
  }
  state_ = State::done;
  task_->resume_checked(true);
  return false;
}

// ---- Event ---------------------------------------------------------------------------------------

bool EventWait::await_ready() const noexcept { return event_->value_; }

void EventWait::await_suspend(std::coroutine_handle<> h) { suspend(event_->waiting_, h, "wait for an Event"); }

bool EventWait::await_resume() {
  if (state_ == State::idle) return true;
  bool aborted = state_ == State::aborted;
  state_ = State::done;
  task_->resume_checked(aborted);
  return true;
}

// ---- Condition -----------------------------------------------------------------------------------

void NotifyWait::await_suspend(std::coroutine_handle<> h) { suspend(cond_->waiting_, h, "wait on a Condition"); }

void NotifyWait::await_resume() {
  bool aborted = state_ == State::aborted;
  state_ = State::done;
  task_->resume_checked(aborted);
}

}  // namespace detail

Lock::~Lock() = default;

void Lock::release() {
  if (!locked_) throw RuntimeError("Lock is not acquired.");
  if (Waiter* w = waiting_.pop_front())
    w->grant(&handed_);  // stays locked: ownership moves to the first waiter
  else
    locked_ = false;
}

void Event::set() noexcept {
  if (value_) return;
  value_ = true;
  while (Waiter* w = waiting_.pop_front()) w->grant(nullptr);
}

Condition::~Condition() = default;

Coro<bool> Condition::wait() {
  if (!locked()) throw RuntimeError("cannot wait on un-acquired lock");
  release();
  std::exception_ptr error;
  try {
    co_await detail::NotifyWait(*this);
  } catch (...) {
    error = std::current_exception();
  }
  // The lock must be held again whatever happened, even if we are cancelled meanwhile (again).
  for (;;) {
    try {
      co_await lock_->acquire();
      break;
    } catch (const CancelledError&) {
      error = std::current_exception();
    }
  }
  if (error) {
    // We may have been notified and are now leaving without acting on it: pass a notification
    // on (a spurious wake-up at worst, which the condition-variable protocol allows).
    wake(1);
    std::rethrow_exception(error);
  }
  co_return true;
}

void Condition::notify(std::size_t n) {
  if (!locked()) throw RuntimeError("cannot notify on un-acquired lock");
  wake(n);
}

void Condition::wake(std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    Waiter* w = waiting_.pop_front();
    if (!w) break;
    w->grant(nullptr);
  }
}

// ---- Semaphore -----------------------------------------------------------------------------------

namespace {
std::size_t checked_value(std::ptrdiff_t value) {
  if (value < 0) throw ValueError("Semaphore initial value must be >= 0");
  return static_cast<std::size_t>(value);
}
}  // namespace

Semaphore::Semaphore(std::ptrdiff_t value) : value_(checked_value(value)) {}
Semaphore::~Semaphore() = default;

void Semaphore::release() { release_unit(); }

void Semaphore::release_unit() noexcept {
  if (Waiter* w = waiting_.pop_front())
    w->grant(&handed_);  // the unit goes straight to the first waiter
  else
    ++value_;
}

void Semaphore::grant_free_units() noexcept {
  while (value_ > 0 && !waiting_.empty()) {
    --value_;
    waiting_.pop_front()->grant(&handed_);
  }
}

BoundedSemaphore::BoundedSemaphore(std::ptrdiff_t value) : Semaphore(value), bound_(static_cast<std::size_t>(value)) {}

void BoundedSemaphore::release() {
  if (value() >= bound_) throw ValueError("BoundedSemaphore released too many times");
  release_unit();
}

// ---- Barrier -------------------------------------------------------------------------------------

Barrier::Barrier(std::size_t parties) : parties_(parties) {
  if (parties == 0) throw ValueError("parties must be >= 1");
}

Coro<std::size_t> Barrier::wait() {
  auto held = co_await cond_.scoped();
  // Block while the barrier drains or resets.
  co_await cond_.wait_for([this] { return state_ != State::draining && state_ != State::resetting; });
  if (state_ == State::broken) throw BrokenBarrierError("Barrier aborted");
  std::size_t index = count_++;
  std::exception_ptr error;
  try {
    if (index + 1 == parties_) {
      state_ = State::draining;  // the last party releases the others
      cond_.notify_all();
    } else {
      co_await cond_.wait_for([this] { return state_ != State::filling; });
      if (state_ == State::broken || state_ == State::resetting)
        throw BrokenBarrierError("Abort or reset of barrier");
    }
  } catch (...) {
    error = std::current_exception();
  }
  --count_;
  exit_one();
  if (error) std::rethrow_exception(error);
  co_return index;
}

void Barrier::exit_one() {
  // The last task out refills the barrier and wakes the ones waiting for the drain to end.
  if (count_ == 0) {
    if (state_ == State::resetting || state_ == State::draining) state_ = State::filling;
    cond_.notify_all();
  }
}

Coro<void> Barrier::reset() {
  auto held = co_await cond_.scoped();
  if (count_ > 0) {
    state_ = State::resetting;
  } else {
    state_ = State::filling;
  }
  cond_.notify_all();
}

Coro<void> Barrier::abort() {
  auto held = co_await cond_.scoped();
  state_ = State::broken;
  cond_.notify_all();
}

}  // namespace asyncio
