// SPDX-License-Identifier: MIT
// The loop's wake spin: before a loop sleeps while one of its tasks waits for another thread
// (a Channel send or recv on another loop), it may poll for that thread's post awake instead.
//
// Why: waking a thread asleep in epoll_wait costs an eventfd write on one side and a trip
// through the kernel's scheduler on the other, 5-15 us on bare metal and more on a VM, while a
// thread that is awake sees the post within a cache-line transfer (~0.1 us). Go's scheduler
// spins the same way before it parks a thread.
//
// When: only if such waits have lately been short. The loop keeps a moving average of how long
// it waited for a post (spinning or asleep) and spins for about twice that, never longer than
// kMaxSpinNs. A wait that ended some other way (a descriptor, a timer) counts as a long one. So a
// loop whose peer answers quickly spins and gets its answer awake; a loop whose peer is slow, or
// starved of CPU by a busy machine (where spinning would take the CPU the peer needs), soon stops
// spinning, and starts again once its waits, measured asleep, are short again.
#include <algorithm>
#include <chrono>

#include "asyncio/loop.hpp"
#include "os/cpu_relax.hpp"

namespace asyncio {

namespace {

constexpr std::int64_t kMaxSpinNs = 50'000;   // longer waits are cheaper asleep
constexpr std::int64_t kMinSpinNs = 2'000;    // a spin shorter than this rarely catches anything
constexpr std::int64_t kMissedNs = 2 * kMaxSpinNs;  // what a wait that ended otherwise counts as

std::int64_t clock_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// A moving average weighting the newest sample 1/4: a few quick waits make a loop spin again,
/// and a few slow ones make it stop.
void add_sample(detail::RemoteWaitStats& s, std::int64_t ns) noexcept {
  s.typical_ns = (3 * s.typical_ns + std::min(ns, kMissedNs)) / 4;
}

}  // namespace

bool EventLoop::spin_for_remote_wake(std::int64_t timeout_ns) noexcept {
  detail::RemoteWaitStats& s = remote_waits_;
  std::int64_t start = clock_ns();
  s.waiting_since = start;
  if (s.typical_ns >= kMaxSpinNs) return false;
  std::int64_t budget = std::clamp(2 * s.typical_ns, kMinSpinNs, kMaxSpinNs);
  if (timeout_ns > 0) budget = std::min(budget, timeout_ns);
  auto posted = [this] { return threadsafe_pending_.load(std::memory_order_acquire); };
  if (!detail::os::poll_for(std::chrono::nanoseconds(budget), posted)) return false;
  add_sample(s, clock_ns() - start);
  s.waiting_since = 0;
  return true;
}

void EventLoop::learn_remote_wait() noexcept {
  detail::RemoteWaitStats& s = remote_waits_;
  if (s.waiting_since == 0) return;
  bool posted = threadsafe_pending_.load(std::memory_order_acquire);
  add_sample(s, posted ? clock_ns() - s.waiting_since : kMissedNs);
  s.waiting_since = 0;
}

}  // namespace asyncio
