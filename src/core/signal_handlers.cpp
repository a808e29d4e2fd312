// SPDX-License-Identifier: MIT
// EventLoop::add_signal_handler / remove_signal_handler (Python's, on the os layer's routing).
#include "core/signal_handlers.hpp"

#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "os/pipe_io.hpp"
#include "os/signals.hpp"

namespace asyncio {

namespace detail {

SignalHandlers::SignalHandlers(EventLoop& loop) : loop_(loop), callbacks_(static_cast<std::size_t>(os::signal_count())) {
  os::PipeEnds ends = os::make_pipe();
  read_fd_ = ends.read;
  write_fd_ = ends.write;
  try {
    os::set_nonblocking(read_fd_);
    os::set_nonblocking(write_fd_);
    loop_.set_fd_listener(read_fd_, this, poll_readable);
    loop_.signal_fds_ = 1;
  } catch (...) {
    os::close_fd(read_fd_);
    os::close_fd(write_fd_);
    throw;
  }
  loop_.add_close_hook(this);
}

SignalHandlers::~SignalHandlers() {
  if (read_fd_ < 0) return;
  loop_.remove_close_hook(this);
  release();
}

void SignalHandlers::release() noexcept {
  for (std::size_t sig = 0; sig < callbacks_.size(); ++sig)
    if (callbacks_[sig]) os::unroute_signal(static_cast<int>(sig), write_fd_);
  callbacks_.clear();
  try {
    if (!loop_.is_closed()) loop_.set_fd_listener(read_fd_, nullptr, 0);
  } catch (...) {
  }
  loop_.signal_fds_ = 0;
  os::close_fd(read_fd_);
  os::close_fd(write_fd_);
  read_fd_ = write_fd_ = -1;
}

void SignalHandlers::loop_closing() noexcept { release(); }

void SignalHandlers::add(int sig, std::function<void()> callback) {
  if (!callback) throw ValueError("add_signal_handler: empty callback");
  switch (os::route_signal(sig, write_fd_)) {
    case os::RouteError::none:
      break;
    case os::RouteError::invalid:
      throw ValueError("invalid signal number " + std::to_string(sig));
    case os::RouteError::uncatchable:
      throw RuntimeError("sig " + std::to_string(sig) + " cannot be caught");
    case os::RouteError::taken:
      throw RuntimeError(std::string(os::signal_name(sig)) + " is handled by another event loop");
    case os::RouteError::system:
      throw std::system_error(errno, std::system_category(), "sigaction");
  }
  callbacks_[static_cast<std::size_t>(sig)] = std::move(callback);
}

bool SignalHandlers::remove(int sig) {
  if (sig <= 0 || sig >= os::signal_count()) throw ValueError("invalid signal number " + std::to_string(sig));
  auto& slot = callbacks_[static_cast<std::size_t>(sig)];
  if (!slot) return false;
  os::unroute_signal(sig, write_fd_);
  slot = nullptr;
  return true;
}

bool SignalHandlers::empty() const noexcept {
  for (const auto& c : callbacks_)
    if (c) return false;
  return true;
}

void SignalHandlers::on_fd_ready(std::uint32_t) noexcept {
  unsigned char sigs[64];
  while (true) {
    ssize_t n = ::read(read_fd_, sigs, sizeof sigs);
    if (n <= 0) return;  // drained (EAGAIN), or nothing more to read
    for (ssize_t i = 0; i < n; ++i) {
      std::size_t sig = sigs[i];
      if (sig >= callbacks_.size() || !callbacks_[sig]) continue;  // removed since it was raised
      try {
        // A copy: the callback may remove or replace its own handler while it runs.
        loop_.call_soon(callbacks_[sig]);
      } catch (...) {
        return;  // the loop is closing
      }
    }
  }
}

}  // namespace detail

void EventLoop::add_signal_handler(int sig, std::function<void()> callback) {
  if (closed_) throw RuntimeError("Event loop is closed");
  if (sig <= 0 || sig >= detail::os::signal_count()) throw ValueError("invalid signal number " + std::to_string(sig));
  if (!signals_) signals_ = std::make_unique<detail::SignalHandlers>(*this);
  signals_->add(sig, std::move(callback));
}

bool EventLoop::remove_signal_handler(int sig) {
  if (!signals_ || closed_) {
    if (sig <= 0 || sig >= detail::os::signal_count()) throw ValueError("invalid signal number " + std::to_string(sig));
    return false;
  }
  return signals_->remove(sig);
}

}  // namespace asyncio
