// SPDX-License-Identifier: MIT
// Private to the library: busy-waiting for another thread. The pause a busy-wait makes between
// two looks at a flag, so that a hyperthread sibling gets the core's resources meanwhile, and
// the poll built on it (the loop's wake spin, to_thread's loop and workers).
#pragma once

#include <chrono>
#include <thread>

namespace asyncio::detail::os {

/// One spin-wait pause (x86 PAUSE, Arm YIELD; nothing elsewhere).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Gives the rest of the time slice to another runnable thread of this CPU, if there is one.
inline void yield_cpu() noexcept { std::this_thread::yield(); }

/// Polls `ready()` for up to `budget`; true once it holds. A few microseconds of pure spinning,
/// then the CPU given away between looks, so that on a busy machine the poller does not hold
/// the time slice that the thread it waits for needs.
template <class Ready>
bool poll_for(std::chrono::nanoseconds budget, Ready ready) noexcept {
  auto start = std::chrono::steady_clock::now();
  auto yield_after = start + std::chrono::microseconds(5);
  auto until = start + budget;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= until) return false;
    if (now >= yield_after) yield_cpu();
  }
}

}  // namespace asyncio::detail::os
