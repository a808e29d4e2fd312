// SPDX-License-Identifier: MIT
// Layer 1: the OS readiness backend.
//
// The loop asks one question of the operating system: "which of these descriptors are ready, waiting
// at most this long?". Everything platform-specific (epoll today, io_uring later) lives behind this
// small interface; nothing above the loop includes an OS polling header.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>

namespace asyncio {

/// Readiness bits, in interest sets and in results.
enum PollBits : std::uint32_t {
  poll_readable = 1u << 0,
  poll_writable = 1u << 1,
  poll_error = 1u << 2,   // error or hang-up; reported to both reader and writer
};

/// One ready descriptor, as Poller::poll reports it.
struct PollEvent {
  int fd;  ///< The descriptor.
  std::uint32_t events;  ///< PollBits
};

/// One readiness backend per loop. Only wakeup() may be called from another thread.
class Poller {
 public:
  virtual ~Poller() = default;
  /// Starts watching `fd` for `interest` (PollBits). Throws std::system_error.
  virtual void add(int fd, std::uint32_t interest) = 0;
  /// Changes the interest set of a watched fd.
  virtual void modify(int fd, std::uint32_t interest) = 0;
  /// Stops watching fd. Tolerates an fd that was already closed.
  virtual void remove(int fd) noexcept = 0;
  /// Waits until an fd is ready, wakeup() is called, or `timeout` passes (negative: no limit).
  /// Fills `out` and returns how many entries were written. EINTR returns 0.
  virtual std::size_t poll(std::span<PollEvent> out, std::chrono::nanoseconds timeout) = 0;
  /// Makes a concurrent or the next poll() return promptly. Thread-safe and async-signal-safe.
  virtual void wakeup() noexcept = 0;
  /// "epoll", ...
  virtual const char* name() const noexcept = 0;
};

/// The best backend for this system (epoll on Linux).
std::unique_ptr<Poller> make_poller();

}  // namespace asyncio
#pragma GCC visibility pop
