// SPDX-License-Identifier: MIT
// AdaptiveMutex: a lock for critical sections of a few dozen instructions shared by threads on
// different CPUs (Channel<T>'s state). It spins briefly before it sleeps.
//
// Why not std::mutex: glibc's default mutex sleeps in the kernel (futex) at the first
// contention. When two threads take turns on a lock many million times a second (a producer and
// a consumer of one channel), that is a system call on both sides for nearly every item, though
// the holder would have let go within a hundred nanoseconds. Spinning first turns those into
// cache-line transfers; the sleep stays for a holder that is really busy, or preempted.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <atomic>
#include <cstdint>

namespace asyncio::detail {

/// A mutex (Lockable: works with std::lock_guard and std::unique_lock) that spins on contention
/// for a few hundred nanoseconds, then sleeps on a futex. Not recursive; not fair.
class AdaptiveMutex {
 public:
  AdaptiveMutex() noexcept = default;
  AdaptiveMutex(const AdaptiveMutex&) = delete;
  AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

  /// Takes the lock, waiting (spinning, then sleeping) while another thread holds it.
  void lock() noexcept {
    std::uint32_t expected = kFree;
    if (!state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire, std::memory_order_relaxed))
      lock_contended();
  }
  /// Takes the lock if it is free; never waits.
  bool try_lock() noexcept {
    std::uint32_t expected = kFree;
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire, std::memory_order_relaxed);
  }
  /// Lets the lock go, waking one sleeping waiter if there may be one.
  void unlock() noexcept {
    if (state_.exchange(kFree, std::memory_order_release) == kContended) wake_one();
  }

 private:
  // Ulrich Drepper's three states ("Futexes Are Tricky", mutex 3): kContended means a thread
  // may sleep on the word, so unlock must make the wake-up system call.
  static constexpr std::uint32_t kFree = 0;
  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kContended = 2;

  void lock_contended() noexcept;
  void wake_one() noexcept;

  std::atomic<std::uint32_t> state_{kFree};
};

/// Step `spins` (0, 1, 2, ...) of a spin-wait for another thread: a CPU pause (x86 PAUSE, Arm
/// YIELD) for the first thousand steps, then the rest of the time slice given away, in case the
/// thread waited for was preempted on this CPU. Out of line: the OS layer has the instructions.
void spin_backoff(int spins) noexcept;

}  // namespace asyncio::detail
#pragma GCC visibility pop
