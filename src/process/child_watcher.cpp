// SPDX-License-Identifier: MIT
#include "process/child_watcher.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "os/pipe_io.hpp"
#include "os/process.hpp"

namespace asyncio::detail {

namespace {

bool thread_watcher_forced() noexcept {
  const char* v = std::getenv("ASYNCIO_CHILD_WATCHER");
  return v && std::strcmp(v, "thread") == 0;
}

}  // namespace

/// Shared by the watcher and its thread: the loop to post to, cleared (under the mutex) when the
/// watcher goes away, so that the thread never touches a loop that is closing or gone.
struct ChildWatcher::ThreadLink {
  std::mutex mutex;
  EventLoop* loop = nullptr;
  ChildWatcher* watcher = nullptr;
};

ChildWatcher::ChildWatcher(EventLoop& loop, pid_t pid, ExitCallback on_exit)
    : loop_(loop), pid_(pid), on_exit_(std::move(on_exit)) {
  if (!thread_watcher_forced() && os::have_pidfd()) pidfd_ = os::pidfd_open(pid);
  if (pidfd_ >= 0) {
    try {
      loop_.set_fd_listener(pidfd_, this, poll_readable);
      return;
    } catch (...) {
      os::close_fd(pidfd_);
      pidfd_ = -1;
    }
  }
  start_thread();  // no pidfd (old kernel, or EMFILE): the thread needs no descriptor
}

ChildWatcher::~ChildWatcher() { stop_watching(); }

void ChildWatcher::start_thread() {
  link_ = std::make_shared<ThreadLink>();
  link_->loop = &loop_;
  link_->watcher = this;
  std::thread([link = link_, pid = pid_] {
    os::wait_ended(pid);
    std::lock_guard<std::mutex> lock(link->mutex);
    if (!link->loop) return;
    try {
      link->loop->call_soon_threadsafe([link] {
        ChildWatcher* w;
        {
          std::lock_guard<std::mutex> inner(link->mutex);
          w = link->watcher;
        }
        if (w) w->ended();
      });
    } catch (...) {
      // The loop closed meanwhile: its close hook reaps the child.
    }
  }).detach();
}

void ChildWatcher::stop_watching() noexcept {
  if (pidfd_ >= 0) {
    try {
      if (!loop_.is_closed()) loop_.set_fd_listener(pidfd_, nullptr, 0);
    } catch (...) {
    }
    os::close_fd(pidfd_);
    pidfd_ = -1;
  }
  if (link_) {
    std::lock_guard<std::mutex> lock(link_->mutex);
    link_->loop = nullptr;
    link_->watcher = nullptr;
  }
}

void ChildWatcher::on_fd_ready(std::uint32_t) noexcept { ended(); }

void ChildWatcher::ended() noexcept {
  if (reaped_) return;
  std::optional<int> code = os::try_reap(pid_);
  if (!code) return;  // woken early: keep watching
  reaped_ = true;
  stop_watching();
  on_exit_(*code);  // may destroy this watcher's owner: nothing after it
}

void ChildWatcher::send_signal(int sig) {
  if (reaped_) return;
  int r = pidfd_ >= 0 ? os::pidfd_send_signal(pidfd_, sig) : os::send_signal(pid_, sig);
  // ESRCH: a zombie not yet reaped (kill) or already reaped behind our back: nothing to signal.
  if (r < 0 && errno != ESRCH) throw std::system_error(errno, std::system_category(), "send_signal");
}

void ChildWatcher::reap_now() noexcept {
  if (reaped_) return;
  if (!os::try_reap(pid_)) {
    if (pidfd_ >= 0)
      os::pidfd_send_signal(pidfd_, os::sigkill());
    else
      os::send_signal(pid_, os::sigkill());
    os::reap(pid_);
  }
  reaped_ = true;
  stop_watching();
}

}  // namespace asyncio::detail
