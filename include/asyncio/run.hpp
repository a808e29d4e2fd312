// SPDX-License-Identifier: MIT
// asyncio::run(coro) and asyncio::Runner: the program's entry point, as Python's asyncio.run() and
// asyncio.Runner.
//
// run() creates a new loop (set as the thread's loop), runs the coroutine to completion, then
// cancels every task still pending and waits for them to finish, and closes the loop. The
// coroutine's result is returned; its exception propagates.
//
//   asyncio::Coro<int> main_coro() { co_await asyncio::sleep(0.1); co_return 0; }
//   int main() { return asyncio::run(main_coro()); }
//
// Ctrl-C. On the main thread, while SIGINT has its default disposition, run() and Runner::run()
// handle SIGINT as Python does: the first Ctrl-C cancels the main task, so that it can clean up
// (its `catch (asyncio::CancelledError&)` blocks and destructors run), and if the cancellation
// ends the task, run() throws asyncio::KeyboardInterrupt. A second Ctrl-C is not swallowed: run()
// stops waiting for the main task and throws KeyboardInterrupt at once (the leftover tasks are
// still cancelled as run() returns), and from then on SIGINT has its default action again, so a
// third one ends the process. A program that installs its own SIGINT handling keeps it.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstdint>
#include <functional>
#include <memory>

#include "asyncio/coro.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/task.hpp"

namespace asyncio {

/// Options of run() and Runner (Python's debug= and loop_factory= arguments).
struct RunOptions {
  /// Debug mode for the loop (Python's debug=True).
  bool debug = false;
  /// The loop's virtual clock (tests): time jumps to the next timer when nothing else can happen.
  bool virtual_time = false;
  /// Makes the loop instead of new_event_loop(); such a loop is not set as the thread's loop
  /// (Python's loop_factory).
  std::function<std::shared_ptr<EventLoop>()> loop_factory{};
};

/// Python 3.11's asyncio.Runner: one loop for several run() calls, closed by close() or the
/// destructor (Python's `with asyncio.Runner() as runner:`).
///
///   asyncio::Runner runner;
///   runner.run(setup());
///   int n = runner.run(work());   // same loop, same thread-local state
///   runner.close();               // cancels leftovers, joins the default executor, closes the loop
class Runner {
 public:
  /// A runner whose loop is made on first use (Python's Runner(debug=..., loop_factory=...)).
  explicit Runner(RunOptions options = {});
  /// close(), errors reported to the loop's exception handler.
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// Runs `coro` to completion on the runner's loop and returns its result (Python's
  /// Runner.run). RuntimeError if called from a running loop or after close(). Handles Ctrl-C as
  /// described at the top of this header.
  template <class T>
  T run(Coro<T> coro, SourceLocation where = SourceLocation::current());

  /// Cancels the tasks left, shuts the default executor down, closes the loop. Idempotent.
  void close();

  /// The runner's loop (made now if need be). RuntimeError after close().
  EventLoop& get_loop();

 private:
  class SigintGuard;
  void lazy_init();
  /// The runner caught Ctrl-C while `task` ran: what run() throws instead of `error`.
  [[noreturn]] void rethrow(std::exception_ptr error, AnyTask& task);

  RunOptions options_;
  std::shared_ptr<EventLoop> loop_;
  bool set_event_loop_ = false;
  bool closed_ = false;
  int interrupt_count_ = 0;
};

/// Installs the runner's SIGINT handler for one run() where Python would (main thread, SIGINT at
/// its default); removes it after.
class Runner::SigintGuard {
 public:
  /// Ctrl-C cancels `task` while the guard lives.
  SigintGuard(Runner& runner, AnyTask task);
  ~SigintGuard();
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  Runner& runner_;
  bool installed_ = false;
};

namespace detail {
/// RuntimeError("<caller> cannot be called from a running event loop") if this thread runs one.
void check_no_running_loop(const char* caller);
}  // namespace detail

template <class T>
T Runner::run(Coro<T> coro, SourceLocation where) {
  detail::check_no_running_loop("Runner.run()");
  lazy_init();
  Task<T> task = loop_->create_task(std::move(coro), {}, where);
  AnyTask any(task);
  SigintGuard guard(*this, any);
  interrupt_count_ = 0;
  try {
    return loop_->run_until_complete(Future<T>(task));
  } catch (...) {
    if (interrupt_count_ > 0) rethrow(std::current_exception(), any);
    throw;
  }
}

/// Python's asyncio.run: a Runner for one coroutine.
template <class T>
T run(Coro<T> main, RunOptions options = {}, SourceLocation where = SourceLocation::current()) {
  detail::check_no_running_loop("asyncio::run()");
  Runner runner(std::move(options));
  return runner.run(std::move(main), where);
}

/// Cancels every task of `loop` and runs the loop until they have all finished (what run() does
/// with the tasks left when the main one returns); errors they end with go to the exception handler.
void cancel_all_tasks(EventLoop& loop);

}  // namespace asyncio
#pragma GCC visibility pop
