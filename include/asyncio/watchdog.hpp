// SPDX-License-Identifier: MIT
// The watchdog: a thread that reports an event loop stalled by one step for longer than a
// threshold *while it is still stalled* — the seed's lesson (a blocking call inside a coroutine
// holds every other task) caught as it happens.
//
//   asyncio::enable_watchdog(loop, 0.25);   // seconds, or a std::chrono duration
//   ASYNCIO_WATCHDOG=0.25 ./my_program      // the same for every loop the program makes
//
// reports through asyncio::log (see log.hpp), at warning level:
//
//   asyncio WARNING: watchdog: the event loop has been blocked for 0.27 s (still blocked) by
//   Task 'A' (id 1), in the step that resumed at seed_blocking_sleep.cpp:48 in factorial()
//
// and, once the step ends, how long it held the loop in total. The loop publishes a step counter
// and the running task's resume point in atomics at the start of each step; the watchdog thread
// samples them a few times per threshold and never touches the loop itself. Cost while enabled: a
// dozen atomic stores per step (plain moves on x86); when disabled, nothing.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <chrono>

#include "asyncio/loop.hpp"

namespace asyncio {

/// Starts (or restarts with a new threshold) the watchdog of `loop`. Call on the loop's thread.
void enable_watchdog(EventLoop& loop, double threshold_seconds);
template <class Rep, class Period>
void enable_watchdog(EventLoop& loop, std::chrono::duration<Rep, Period> threshold) {
  enable_watchdog(loop, std::chrono::duration<double>(threshold).count());
}
/// Stops the watchdog thread (joins it). Returns false if none was running.
bool disable_watchdog(EventLoop& loop);

}  // namespace asyncio
#pragma GCC visibility pop
