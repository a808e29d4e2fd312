// SPDX-License-Identifier: MIT
// Private to the core: the loop's side of add_signal_handler.
#pragma once

#include <functional>
#include <vector>

#include "asyncio/loop.hpp"

namespace asyncio::detail {

/// The signal handlers of one loop: a non-blocking pipe whose write end the process-wide signal
/// handler (os/signals.cpp) writes signal numbers to, whose read end the loop watches, and the
/// callback of each signal, run with call_soon when its number is read. Made by the loop's first
/// add_signal_handler; gives every signal back when the loop closes.
class SignalHandlers final : private FdListener, private CloseHook {
 public:
  explicit SignalHandlers(EventLoop& loop);
  ~SignalHandlers();
  SignalHandlers(const SignalHandlers&) = delete;
  SignalHandlers& operator=(const SignalHandlers&) = delete;

  void add(int sig, std::function<void()> callback);
  bool remove(int sig);
  bool empty() const noexcept;

 private:
  void on_fd_ready(std::uint32_t events) noexcept override;
  void loop_closing() noexcept override;
  void release() noexcept;

  EventLoop& loop_;
  int read_fd_ = -1;
  int write_fd_ = -1;
  std::vector<std::function<void()>> callbacks_;  // by signal number
};

}  // namespace asyncio::detail
