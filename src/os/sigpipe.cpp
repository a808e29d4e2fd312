// SPDX-License-Identifier: MIT
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

#include "os/signals.hpp"
#include "os/sigpipe_run.hpp"

namespace asyncio::detail::os {

namespace {

constinit thread_local bool t_blocked_by_loop = false;

sigset_t only_sigpipe() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  return set;
}

}  // namespace

bool sigpipe_blocked_by_loop() noexcept { return t_blocked_by_loop; }

void consume_pending_sigpipe() noexcept {
  int saved = errno;
  sigset_t pending;
  sigemptyset(&pending);
  if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) take_sigpipe();
  errno = saved;
}

void take_sigpipe() noexcept {
  sigset_t pipe = only_sigpipe();
  const struct timespec zero {};
  while (sigtimedwait(&pipe, nullptr, &zero) == -1 && errno == EINTR) {
  }
}

SigpipeBlockedWhileRunning::SigpipeBlockedWhileRunning() noexcept {
  if (t_blocked_by_loop || !signal_is_default(SIGPIPE)) return;
  sigset_t pipe = only_sigpipe();
  sigset_t old;
  if (pthread_sigmask(SIG_BLOCK, &pipe, &old) != 0) return;
  if (sigismember(&old, SIGPIPE) == 1) return;  // the application blocks it: writes guard themselves
  active_ = true;
  t_blocked_by_loop = true;
}

SigpipeBlockedWhileRunning::~SigpipeBlockedWhileRunning() {
  if (!active_) return;
  t_blocked_by_loop = false;
  consume_pending_sigpipe();
  sigset_t pipe = only_sigpipe();
  int saved = errno;
  pthread_sigmask(SIG_UNBLOCK, &pipe, nullptr);
  errno = saved;
}

}  // namespace asyncio::detail::os
