// SPDX-License-Identifier: MIT
// The shared state behind Handle and TimerHandle.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstdint>
#include <functional>

#include "asyncio/detail/runnable.hpp"
#include "asyncio/detail/timer_heap.hpp"

namespace asyncio {
class EventLoop;
}

namespace asyncio::detail {

class HandleState;

/// The timer of a call_later handle, pointing back at its handle.
struct HandleTimerNode : TimerNode {
  HandleState* owner = nullptr;
};

/// A callback the loop runs once per scheduling. Reference counted: user handles, the ready queue,
/// the timer heap and fd watchers each hold one while they refer to it.
class HandleState final : public Runnable {
 public:
  HandleState(EventLoop* loop, std::function<void()> fn) : fn_(std::move(fn)), loop_(loop) {
    timer.owner = this;
  }

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }
  void run() override;
  void discard() noexcept override { release(); }

  /// Marks cancelled, drops the callback (and what it captured), and leaves the timer heap.
  void cancel() noexcept;
  bool cancelled() const noexcept { return cancelled_; }
  EventLoop* loop() const noexcept { return loop_; }

  HandleTimerNode timer;  // used only by call_later / call_at

 private:
  std::function<void()> fn_;
  EventLoop* loop_;
  std::uint32_t refs_ = 1;
  bool cancelled_ = false;
  bool running_ = false;  // fn_ is executing: cancel() must not destroy it under its own feet
};

}  // namespace asyncio::detail
#pragma GCC visibility pop
