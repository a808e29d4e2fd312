// SPDX-License-Identifier: MIT
#include "os/signals.hpp"

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace asyncio::detail::os {

namespace {

// The handler reads routes_ only; route/unroute write it under mutex_.
std::atomic<int> routes_[NSIG];
struct sigaction previous_[NSIG];
std::mutex mutex_;

/// The whole handler: one byte to the loop's pipe. A full pipe drops it: the loop will read the
/// bytes already there and signals of one kind coalesce anyway.
void on_signal(int sig) {
  int fd = routes_[sig].load(std::memory_order_acquire);
  if (fd < 0) return;
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
  errno = saved;
}

struct RoutesInit {
  RoutesInit() {
    for (auto& r : routes_) r.store(-1, std::memory_order_relaxed);
  }
} routes_init_;

}  // namespace

int sigint() noexcept { return SIGINT; }

int signal_count() noexcept { return NSIG; }

RouteError route_signal(int sig, int wakeup_fd) noexcept {
  if (sig <= 0 || sig >= NSIG) return RouteError::invalid;
  if (sig == SIGKILL || sig == SIGSTOP) return RouteError::uncatchable;
  std::lock_guard<std::mutex> lock(mutex_);
  int current = routes_[sig].load(std::memory_order_relaxed);
  if (current == wakeup_fd) return RouteError::none;
  if (current >= 0) return RouteError::taken;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESTART: the signal must not make other threads' system calls fail with EINTR.
  action.sa_flags = SA_RESTART;
  routes_[sig].store(wakeup_fd, std::memory_order_release);
  if (::sigaction(sig, &action, &previous_[sig]) < 0) {
    int err = errno;
    routes_[sig].store(-1, std::memory_order_release);
    errno = err;
    // glibc reserves a few real-time signals for itself and refuses them with EINVAL.
    return err == EINVAL ? RouteError::uncatchable : RouteError::system;
  }
  return RouteError::none;
}

bool unroute_signal(int sig, int wakeup_fd) noexcept {
  if (sig <= 0 || sig >= NSIG) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  if (routes_[sig].load(std::memory_order_relaxed) != wakeup_fd) return false;
  ::sigaction(sig, &previous_[sig], nullptr);
  routes_[sig].store(-1, std::memory_order_release);
  return true;
}

bool signal_is_default(int sig) noexcept {
  struct sigaction current;
  return ::sigaction(sig, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
         current.sa_handler == SIG_DFL;
}

bool on_main_thread() noexcept { return ::syscall(SYS_gettid) == ::getpid(); }

void raise_with_default_action(int sig) noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    routes_[sig].store(-1, std::memory_order_release);
  }
  ::signal(sig, SIG_DFL);
  sigset_t just;
  sigemptyset(&just);
  sigaddset(&just, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &just, nullptr);
  ::raise(sig);
}

const char* signal_name(int sig) noexcept {
  const char* abbrev = ::sigabbrev_np(sig);
  if (!abbrev) return "an unknown signal";
  static thread_local char name[16];
  ::strncpy(name, "SIG", sizeof name);
  ::strncat(name, abbrev, sizeof name - 4);
  return name;
}

}  // namespace asyncio::detail::os
