// SPDX-License-Identifier: MIT
// Private to the OS layer: SIGPIPE kept away from a write for one scope.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <cerrno>

#include "os/sigpipe_run.hpp"

namespace asyncio::detail::os {

/// SIGPIPE blocked in this thread for one scope. If the call in between raised one (EPIPE) and
/// none was pending before, it is consumed before the old mask comes back, so it is never
/// delivered; a SIGPIPE that was already pending for another reason stays pending.
///
/// Nothing but the write when the loop running on this thread blocks SIGPIPE already
/// (sigpipe_run.hpp), and then a sigtimedwait only after an EPIPE. Otherwise two system calls
/// in the common case (block, restore): whether one was pending before is asked
/// only when SIGPIPE was blocked already, because an unblocked SIGPIPE cannot be pending for this
/// thread while it runs (it would have been delivered on the way back to user space).
///
/// sendfile(2) and write(2) on a pipe have no MSG_NOSIGNAL, and the library must not change the
/// process's disposition of SIGPIPE behind the application's back: this is the one way left.
class SigpipeSuppressed {
 public:
  SigpipeSuppressed() noexcept {
    // The running loop blocks SIGPIPE on this thread already: nothing to do until an EPIPE.
    if ((loop_blocks_ = sigpipe_blocked_by_loop())) return;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
    if (blocked_ && sigismember(&old_, SIGPIPE) == 1) {
      sigset_t pending;
      sigemptyset(&pending);
      was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    }
  }
  ~SigpipeSuppressed() {
    if (loop_blocks_) {
      if (broke_) consume_pending_sigpipe();
      return;
    }
    if (!blocked_) return;
    int saved = errno;
    if (broke_ && !was_pending_) take_sigpipe();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved;
  }
  SigpipeSuppressed(const SigpipeSuppressed&) = delete;
  SigpipeSuppressed& operator=(const SigpipeSuppressed&) = delete;

  /// The call in the scope failed with EPIPE: a SIGPIPE may be pending because of it.
  void broke() noexcept { broke_ = true; }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool blocked_ = false;
  bool broke_ = false;
  bool loop_blocks_ = false;
};

}  // namespace asyncio::detail::os
