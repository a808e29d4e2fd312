// SPDX-License-Identifier: MIT
// The waiting machinery shared by locks.hpp and queues.hpp.
//
// A task that must wait for a Lock, a Semaphore, an Event, a queue slot or a queue item parks on
// a Waiter: the awaiter object itself, living in the task's coroutine frame, linked into the
// primitive's intrusive FIFO list. Waiting therefore allocates nothing, and waiters are served in
// arrival order.
//
// Resources are handed over at wake-up time ("grant"): releasing a Lock with waiters leaves it
// locked and gives it to the first waiter, a put() with a getter waiting moves the item straight
// into that getter's awaiter. Nobody can barge in between the wake-up and the woken task's next
// step. If the woken task is cancelled before it runs, its await_resume sees the cancellation and
// passes the resource on (to the next waiter, or back to the primitive), so a cancellation never
// swallows a wake-up.
//
// Primitives keep granted-but-not-yet-resumed waiters in a second list, so that a primitive
// destroyed first can "orphan" every waiter that still points at it: such waiters never touch it
// again (they simply stay parked until their task is cancelled or destroyed).
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <coroutine>
#include <cstddef>
#include <cstdint>

#include "asyncio/detail/intrusive_fifo.hpp"
#include "asyncio/detail/task_core.hpp"

namespace asyncio::detail {

class WaitList;

class Waiter : public Suspension {
 public:
  enum class State : std::uint8_t {
    idle,     // not parked (the await completed at once, or has not started)
    waiting,  // parked, linked in the primitive's waiting list
    granted,  // woken with the resource handed over; not resumed yet
    aborted,  // cancelled while waiting (unlinked); the await raises CancelledError
    closed,   // woken because the primitive shut down (Queue.shutdown)
    done,     // resumed
  };

  Waiter() noexcept = default;
  /// g++ moves the operand of co_await into the frame before awaiting it; awaiters are therefore
  /// movable while idle. The move carries only the derived class's configuration.
  Waiter(Waiter&&) noexcept : Suspension() {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  State state() const noexcept { return state_; }
  /// True once the primitive this waiter belonged to was destroyed.
  bool orphaned() const noexcept { return orphaned_; }

  /// Task::cancel while parked: leave the waiting list and wake with CancelledError. A waiter that
  /// was already granted cannot be aborted: its await_resume passes the resource on instead.
  bool cancel_wait(const std::string&) noexcept override;

  /// Links into `list` and parks the current task (call from await_suspend).
  void suspend(WaitList& list, std::coroutine_handle<> h, const char* what);
  /// The primitive hands this (already unlinked) waiter its resource: remember it in `handed`
  /// (or nowhere), mark granted, wake the task.
  void grant(WaitList* handed) noexcept;
  /// Wakes this (already unlinked) waiter because the primitive shut down.
  void close() noexcept;
  /// Leaves whatever list holds the waiter.
  void unlink() noexcept;

 protected:
  ~Waiter();

  TaskCore* task_ = nullptr;
  State state_ = State::idle;

 private:
  friend class WaitList;
  friend class IntrusiveFifo<Waiter>;
  Waiter* prev_ = nullptr;
  Waiter* next_ = nullptr;
  WaitList* list_ = nullptr;
  bool orphaned_ = false;
};

/// A primitive's waiting list: waiters in arrival order, counted, each knowing the list it is in.
class WaitList {
 public:
  WaitList() noexcept = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList() { orphan_all(); }

  bool empty() const noexcept { return fifo_.empty(); }
  std::size_t size() const noexcept { return size_; }
  Waiter* front() const noexcept { return fifo_.front(); }

  void push_back(Waiter* w) noexcept {
    w->list_ = this;
    fifo_.push_back(w);
    ++size_;
  }
  void remove(Waiter* w) noexcept {
    fifo_.remove(w);
    w->list_ = nullptr;
    --size_;
  }
  /// Unlinks and returns the first waiter, or null.
  Waiter* pop_front() noexcept {
    Waiter* w = fifo_.front();
    if (w) remove(w);
    return w;
  }
  /// The primitive is going away: unlink every waiter and mark it orphaned.
  void orphan_all() noexcept {
    while (Waiter* w = pop_front()) w->orphaned_ = true;
  }

 private:
  IntrusiveFifo<Waiter> fifo_;
  std::size_t size_ = 0;
};

inline Waiter::~Waiter() { unlink(); }

inline void Waiter::unlink() noexcept {
  if (list_) list_->remove(this);
}

inline void Waiter::suspend(WaitList& list, std::coroutine_handle<> h, const char* what) {
  task_ = &require_current_task(what);
  list.push_back(this);
  state_ = State::waiting;
  task_->park(this, h);
}

inline void Waiter::grant(WaitList* handed) noexcept {
  if (handed) handed->push_back(this);
  state_ = State::granted;
  task_->wake();
}

inline void Waiter::close() noexcept {
  state_ = State::closed;
  task_->wake();
}

inline bool Waiter::cancel_wait(const std::string&) noexcept {
  if (state_ != State::waiting) return false;
  unlink();
  state_ = State::aborted;
  task_->wake();
  return true;
}

}  // namespace asyncio::detail
#pragma GCC visibility pop
