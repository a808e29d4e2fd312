// SPDX-License-Identifier: MIT
#include "os/sendfile.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace asyncio::detail::os {

namespace {

/// SIGPIPE blocked in this thread for one scope. If the call in between raised one (EPIPE) and
/// none was pending before, it is consumed before the old mask comes back, so it is never
/// delivered; a SIGPIPE that was already pending for another reason stays pending.
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
    if (broke_ && !was_pending_) {
      const struct timespec zero {};
      int saved = errno;
      while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
      }
      errno = saved;
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeSuppressed(const SigpipeSuppressed&) = delete;
  SigpipeSuppressed& operator=(const SigpipeSuppressed&) = delete;

  void broke() noexcept { broke_ = true; }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool blocked_ = false;
  bool broke_ = false;
};

}  // namespace

ssize_t send_file_chunk(int out_fd, int file_fd, std::int64_t offset, std::size_t count) noexcept {
  off_t off = static_cast<off_t>(offset);
  SigpipeSuppressed quiet;
  ssize_t n = ::sendfile(out_fd, file_fd, &off, std::min(count, kMaxSendfileChunk));
  if (n < 0 && errno == EPIPE) quiet.broke();
  return n;
}

}  // namespace asyncio::detail::os
