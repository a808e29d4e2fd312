// SPDX-License-Identifier: MIT
// AdaptiveMutex's slow paths: the spin, then the futex sleep.
#include "asyncio/detail/adaptive_mutex.hpp"

#include "os/cpu_relax.hpp"
#include "os/futex.hpp"

namespace asyncio::detail {

namespace {
// Looks at the lock word before sleeping: about 1-3 us with PAUSE, longer than a critical
// section of the channel takes to run and far shorter than a futex sleep and wake-up.
constexpr int kSpins = 100;
}  // namespace

void AdaptiveMutex::lock_contended() noexcept {
  for (int i = 0; i < kSpins; ++i) {
    os::cpu_relax();
    if (state_.load(std::memory_order_relaxed) == kFree && try_lock()) return;
  }
  // Announce a sleeper (kContended) and sleep until the holder lets go; whoever takes the lock
  // from here on keeps kContended, since other sleepers may remain.
  std::uint32_t seen = state_.exchange(kContended, std::memory_order_acquire);
  while (seen != kFree) {
    os::futex_wait(state_, kContended, -1);
    seen = state_.exchange(kContended, std::memory_order_acquire);
  }
}

void AdaptiveMutex::wake_one() noexcept { os::futex_wake_one(state_); }

void spin_backoff(int spins) noexcept {
  if (spins < 1000)
    os::cpu_relax();
  else
    os::yield_cpu();
}

}  // namespace asyncio::detail
