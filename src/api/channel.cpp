// SPDX-License-Identifier: MIT
// Channel<T>'s untyped part: how a waiting task or thread is parked, woken and cancelled.
#include "asyncio/channel.hpp"

#include "os/cpu_relax.hpp"
#include "os/futex.hpp"


namespace asyncio::detail {

bool ChannelYieldGate::yield_first() noexcept {
  if (help_rate_.load(std::memory_order_relaxed) < kThreshold) {
    unsigned skipped = skipped_.load(std::memory_order_relaxed) + 1;
    skipped_.store(skipped, std::memory_order_relaxed);
    if (skipped % kProbeEvery != 0) return false;
  }
  os::yield_cpu();
  return true;
}

void ChannelYieldGate::learn(bool helped) noexcept {
  int rate = help_rate_.load(std::memory_order_relaxed);
  help_rate_.store(rate + ((helped ? kOne : 0) - rate) / 8, std::memory_order_relaxed);
}

void ChannelTaskWaiter::park_locked(AdaptiveMutex& m, ChannelWaitList& list, std::coroutine_handle<> h, const char* what) {
  task_ = &require_current_task(what);
  loop_ = task_->loop();
  m_ = &m;
  list_ = &list;
  list.push_back(this);
  chan_state.store(State::waiting, std::memory_order_relaxed);
  task_->park(this, h);
  loop_->begin_remote_wait();  // ended by take_resume_state, or leave_locked if it never resumes
}

void ChannelTaskWaiter::notify() noexcept {
  // Served from a task of its own loop: schedule it directly. From anywhere else (another loop,
  // a plain thread): through the loop's remote-wake queue, which needs no allocation. The loop
  // is alive: the waiter was linked, so its task's frame (which the loop's close destroys, after
  // unlinking the waiter under this same mutex) still exists.
  if (t_current_task && t_current_task->loop() == loop_)
    task_->wake();
  else
    loop_->post_remote_wake(this);
}

void ChannelTaskWaiter::remote_wake() noexcept { task_->wake(); }

bool ChannelTaskWaiter::cancel_wait(const std::string&) noexcept {
  {
    std::lock_guard lock(*m_);
    // Its turn came already: the wake-up is on its way, and await_resume gives back what was
    // handed to it before raising the cancellation.
    if (chan_state.load(std::memory_order_relaxed) != State::waiting) return false;
    list_->remove(this);
    chan_state.store(State::aborted, std::memory_order_relaxed);
  }
  task_->wake();
  return true;
}

bool ChannelTaskWaiter::leave_locked() noexcept {
  State s = chan_state.load(std::memory_order_relaxed);
  chan_state.store(State::done, std::memory_order_relaxed);
  loop_->end_remote_wait();  // it parked (waiting or granted) and never resumed
  if (s == State::waiting) list_->remove(this);
  if (s != State::granted) return false;
  loop_->cancel_remote_wake(this);
  return true;
}

ChannelWaiter::State ChannelTaskWaiter::take_resume_state() {
  // Once woken, the waiter is in no list and nobody else writes its state; the wake-up (the
  // loop's lock, or this very thread) ordered the waker's writes before this read.
  State s = chan_state.load(std::memory_order_relaxed);
  if (s == State::idle) return s;
  chan_state.store(State::done, std::memory_order_relaxed);
  if (!task_) return s;  // never parked (closed at once)
  loop_->end_remote_wait();
  if (s == State::granted) return s;  // served
  task_->resume_checked(s == State::aborted);  // aborted: CancelledError; closed: if one is due
  return s;
}

void ChannelThreadWaiter::notify() noexcept {
  // Under the channel's lock, which the woken thread takes again before it returns: it cannot
  // go away (and take woken_ with it) before this wake-up is made.
  woken_.store(1, std::memory_order_release);
  os::futex_wake_one(woken_);
}

void ChannelThreadWaiter::wait(std::unique_lock<AdaptiveMutex>& lock, ChannelWaitList& list,
                               std::optional<std::chrono::nanoseconds> limit) {
  using Clock = std::chrono::steady_clock;
  list.push_back(this);
  chan_state.store(State::waiting, std::memory_order_relaxed);
  const auto deadline = limit ? Clock::now() + *limit : Clock::time_point::max();
  while (chan_state.load(std::memory_order_relaxed) == State::waiting) {
    std::int64_t left = -1;
    if (limit) {
      left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        list.remove(this);
        chan_state.store(State::done, std::memory_order_relaxed);
        throw TimeoutError();
      }
    }
    lock.unlock();
    os::futex_wait(woken_, 0, left);  // returns at once if notify() came meanwhile
    lock.lock();
  }
  if (chan_state.load(std::memory_order_relaxed) == State::closed) throw ChannelClosed();
}

}  // namespace asyncio::detail
