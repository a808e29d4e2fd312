// SPDX-License-Identifier: MIT
// The unit of work in the loop's ready queue.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <string>

namespace asyncio::detail {

/// Something the loop runs once per scheduling: a task step, a call_soon callback, an fd callback.
/// Whoever pushes a Runnable onto the ready queue hands the queue one reference (if the object is
/// counted); run() or discard() consumes it. discard() is called instead of run() when a closing
/// loop drops queued work.
class Runnable {
 public:
  virtual void run() = 0;
  virtual void discard() noexcept = 0;
  /// What debug-mode reports call this item ("Task 'worker' ...", "callback").
  virtual std::string describe() const { return "callback"; }

 protected:
  ~Runnable() = default;
};

}  // namespace asyncio::detail
#pragma GCC visibility pop
