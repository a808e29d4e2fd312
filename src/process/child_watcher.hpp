// SPDX-License-Identifier: MIT
// Private to the process layer: learning, on the loop, that a child has ended.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>

#include "asyncio/loop.hpp"

namespace asyncio::detail {

/// Watches one child and reaps it on the loop's thread, then calls `on_exit(returncode)` there.
///
/// With a pidfd (Linux 5.3+) the loop watches the pidfd like any descriptor: no SIGCHLD handler is
/// taken from the application and no thread is needed (CPython's PidfdChildWatcher). Where pidfd
/// is missing or no descriptor is left, a thread waits for the child without reaping it and
/// posts to the loop (CPython's ThreadedChildWatcher, without its race: because the reaping
/// happens on the loop's thread, where signals are sent too, a signal can never reach a reused
/// pid). ASYNCIO_CHILD_WATCHER=thread in the environment forces the thread (for tests).
class ChildWatcher final : private FdListener {
 public:
  using ExitCallback = std::function<void(int returncode)>;

  /// Starts watching `pid` (throws std::system_error if neither way can be set up; the caller
  /// then kills and reaps the child itself).
  ChildWatcher(EventLoop& loop, pid_t pid, ExitCallback on_exit);
  ~ChildWatcher();
  ChildWatcher(const ChildWatcher&) = delete;
  ChildWatcher& operator=(const ChildWatcher&) = delete;

  /// Sends `sig` to the child if it has not been reaped; a no-op once it has (never a reused
  /// pid). std::system_error for other failures (EINVAL for a bad signal number).
  void send_signal(int sig);

  /// The loop is closing: kill the child if it still runs and reap it now (blocking briefly), so
  /// nothing is left behind; on_exit is not called.
  void reap_now() noexcept;

  bool reaped() const noexcept { return reaped_; }
  bool uses_pidfd() const noexcept { return pidfd_ >= 0; }

 private:
  struct ThreadLink;
  void on_fd_ready(std::uint32_t events) noexcept override;
  void start_thread();
  void ended() noexcept;
  void stop_watching() noexcept;

  EventLoop& loop_;
  pid_t pid_;
  ExitCallback on_exit_;
  int pidfd_ = -1;
  std::shared_ptr<ThreadLink> link_;  // the thread's way back to the loop, in thread mode
  bool reaped_ = false;
};

}  // namespace asyncio::detail
