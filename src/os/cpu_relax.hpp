// SPDX-License-Identifier: MIT
// Private to the library: the pause a busy-wait makes between two looks at a flag, so that a
// hyperthread sibling gets the core's resources meanwhile (the loop's wake spin, to_thread).
#pragma once

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

}  // namespace asyncio::detail::os
