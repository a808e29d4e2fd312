// SPDX-License-Identifier: MIT
#include "os/remove_at_exit.hpp"

#include <signal.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace asyncio::detail::os {
namespace {

// Read by a signal handler: a fixed buffer, and a lock-free flag saying whether it holds a path
// (cleared while the buffer is rewritten). sockaddr_un's limit is the longest path that matters.
char g_path[sizeof(sockaddr_un::sun_path)];
std::atomic<pid_t> g_owner{0};  // the process that registered g_path; 0: nothing to remove
std::mutex g_mutex;             // serialises remove_at_exit / forget_at_exit
bool g_handlers_installed = false;

void remove_now() noexcept {
  if (g_owner.load() == ::getpid()) ::unlink(g_path);
  g_owner.store(0);
}

void at_exit() { remove_now(); }

extern "C" void on_terminating_signal(int sig) {
  // Only async-signal-safe calls: getpid, unlink, sigaction (SA_RESETHAND did it), raise.
  if (g_owner.load() == ::getpid()) ::unlink(g_path);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);  // delivered when this handler returns: the process dies of `sig` as before
}

void install_handlers() noexcept {
  std::atexit(at_exit);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    bool is_default = !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL;
    if (!is_default) continue;  // the program's own handler (or SIG_IGN) stays
    struct sigaction sa {};
    sa.sa_handler = on_terminating_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    ::sigaction(sig, &sa, nullptr);
  }
}

}  // namespace

bool remove_at_exit(const std::string& path) noexcept {
  if (path.size() >= sizeof g_path) return false;
  std::lock_guard lock(g_mutex);
  g_owner.store(0);
  std::memcpy(g_path, path.c_str(), path.size() + 1);
  g_owner.store(::getpid());
  if (!g_handlers_installed) {
    g_handlers_installed = true;
    install_handlers();
  }
  return true;
}

void forget_at_exit() noexcept {
  std::lock_guard lock(g_mutex);
  g_owner.store(0);
}

}  // namespace asyncio::detail::os
