// SPDX-License-Identifier: MIT
// asyncio::run(coro): the program's entry point, as Python's asyncio.run().
//
// It creates a new loop (set as the thread's loop), runs the coroutine to completion, then cancels
// every task still pending and waits for them to finish, and closes the loop. The coroutine's
// result is returned; its exception propagates.
//
//   asyncio::Coro<int> main_coro() { co_await asyncio::sleep(0.1); co_return 0; }
//   int main() { return asyncio::run(main_coro()); }
#pragma once

#include <memory>

#include "asyncio/coro.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/task.hpp"

namespace asyncio {

/// What asyncio::run takes besides the coroutine (Python's `debug=` and `loop_factory=`).
struct RunOptions {
  /// Debug mode (also ASYNCIO_DEBUG=1): slow steps are reported.
  bool debug = false;
  /// Run on simulated time (see LoopOptions::virtual_time).
  bool virtual_time = false;
};

namespace detail {
/// The part of run() that does not depend on T: make and install the loop.
std::shared_ptr<EventLoop> begin_run(const RunOptions& options);
/// Cancels what is left, waits for it, and closes the loop. Never throws.
void end_run(const std::shared_ptr<EventLoop>& loop) noexcept;
}  // namespace detail

template <class T>
T run(Coro<T> main, RunOptions options = {}, SourceLocation where = SourceLocation::current()) {
  std::shared_ptr<EventLoop> loop = detail::begin_run(options);
  struct End {
    std::shared_ptr<EventLoop>& loop;
    ~End() { detail::end_run(loop); }
  } end{loop};
  return loop->run_until_complete(std::move(main), where);
}

/// Cancels all pending tasks of `loop` and runs the loop until they are finished, reporting
/// exceptions (other than CancelledError) they end with. Used by run(); useful before close().
void cancel_all_tasks(EventLoop& loop);

}  // namespace asyncio
