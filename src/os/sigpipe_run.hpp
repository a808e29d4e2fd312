// SPDX-License-Identifier: MIT
// Private to the library: SIGPIPE kept away from a loop's thread while the loop runs.
#pragma once

namespace asyncio::detail::os {

/// For the time a loop runs on this thread (EventLoop::run_forever), SIGPIPE is blocked here, so a
/// write to a pipe or socket whose reader has gone fails with EPIPE instead of ending the process:
/// what Python gets by ignoring SIGPIPE from start-up, without changing the disposition the
/// application chose. The transports then write with one system call (sigpipe.hpp says what a
/// write costs otherwise) and consume the SIGPIPE their EPIPE left pending; what is still pending
/// when the loop stops (a raw write() of the application's own, on this thread) is consumed too,
/// since that write already saw EPIPE. Nothing is done unless SIGPIPE has its default action and
/// this thread does not block it already. Threads started from the loop's thread while it runs
/// inherit the blocked SIGPIPE (docs/processes-and-signals.md); children get a clean mask.
class SigpipeBlockedWhileRunning {
 public:
  SigpipeBlockedWhileRunning() noexcept;
  ~SigpipeBlockedWhileRunning();
  SigpipeBlockedWhileRunning(const SigpipeBlockedWhileRunning&) = delete;
  SigpipeBlockedWhileRunning& operator=(const SigpipeBlockedWhileRunning&) = delete;

 private:
  bool active_ = false;
};

/// True on a thread whose running loop blocks SIGPIPE (SigpipeBlockedWhileRunning).
bool sigpipe_blocked_by_loop() noexcept;

/// Takes a SIGPIPE pending for this thread, if one is, without delivering it.
void consume_pending_sigpipe() noexcept;

/// Takes one pending SIGPIPE (blocked here) without asking first whether there is one; errno
/// may change.
void take_sigpipe() noexcept;

}  // namespace asyncio::detail::os
