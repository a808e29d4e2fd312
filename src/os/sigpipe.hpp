// SPDX-License-Identifier: MIT
// Private to the OS layer: SIGPIPE kept away from a write for one scope.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

namespace asyncio::detail::os {

/// SIGPIPE blocked in this thread for one scope. If the call in between raised one (EPIPE) and
/// none was pending before, it is consumed before the old mask comes back, so it is never
/// delivered; a SIGPIPE that was already pending for another reason stays pending.
///
/// sendfile(2) and write(2) on a pipe have no MSG_NOSIGNAL, and the library must not change the
/// process's disposition of SIGPIPE behind the application's back: this is the one way left.
class SigpipeSuppressed {
 public:
  SigpipeSuppressed() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
  }
  ~SigpipeSuppressed() {
    if (!blocked_) return;
    int saved = errno;
    if (broke_ && !was_pending_) {
      const struct timespec zero {};
      while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
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
};

}  // namespace asyncio::detail::os
