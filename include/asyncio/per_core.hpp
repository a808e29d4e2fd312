// SPDX-License-Identifier: MIT
// A loop per core: run_per_core(fn) starts one thread per CPU the process may use, each running
// its own event loop with fn(index) as its main coroutine, and returns when all have finished.
//
//   asyncio::run_per_core([](std::size_t index) -> asyncio::Coro<void> {
//     auto server = co_await asyncio::start_server(handle, "0.0.0.0", 8080,
//                                                  {.reuse_port = true});   // every loop, one port
//     co_await server.serve_forever();
//   });
//
// asyncio's model is kept: each loop and everything made on it (tasks, locks, queues,
// transports) belongs to its thread. Loops talk through what is made to cross threads:
// Channel<T>, run_coroutine_threadsafe + wrap_future, call_soon_threadsafe (docs/multicore.md).
//
// Failures: the first loop whose main coroutine fails (any exception but CancelledError)
// cancels every other loop's main task; run_per_core waits for all of them, then raises an
// ExceptionGroup holding every failure, in the order they happened. Loops that ended with
// CancelledError because of that are not failures.
//
// Signals: the calling thread runs a small loop of its own that waits for the others. SIGTERM
// there cancels every loop's main task (run_per_core then returns); Ctrl-C (SIGINT, main thread)
// does the same and then raises KeyboardInterrupt, as asyncio::run does.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstddef>
#include <functional>

#include "asyncio/coro.hpp"
#include "asyncio/run.hpp"

namespace asyncio {

/// How run_per_core starts its loops.
struct PerCoreOptions {
  /// Loops (threads) to start; 0: usable_cpu_count().
  std::size_t loops = 0;
  /// Pins loop i's thread to the i-th CPU the process may use (wrapping around when there are
  /// more loops than CPUs). A pinning failure is that loop's failure (std::system_error).
  bool pin = false;
  /// SIGTERM cancels every loop's main task, and run_per_core returns once all have finished
  /// (a clean stop). Installed only while SIGTERM has its default disposition. (SIGINT follows
  /// asyncio::run, whatever this says: on the main thread the first Ctrl-C cancels every loop,
  /// and run_per_core raises KeyboardInterrupt once they have all finished; a second one is not
  /// swallowed.)
  bool handle_signals = true;
  /// Each loop's options, as asyncio::run takes them.
  RunOptions run{};
};

/// The number of CPUs the process may run on: its affinity mask (taskset, cpusets, container
/// limits), not the machine's count (Python's os.process_cpu_count(), 3.13).
std::size_t usable_cpu_count();

/// The main coroutine of loop `index` (0 .. loops-1), called on that loop's thread.
using PerCoreMain = std::function<Coro<void>(std::size_t index)>;

/// Runs `fn(i)` on each of `options.loops` loops, each on a thread of its own, as asyncio::run
/// runs one coroutine (on the way out, each loop cancels and awaits the tasks left, shuts its
/// default executor down and closes). Returns when every loop has finished. The first failure
/// cancels every other loop's main task; ExceptionGroup with every failure at the end.
void run_per_core(PerCoreMain fn, PerCoreOptions options = {});
/// The same with `loops` loops (0: one per usable CPU).
void run_per_core(PerCoreMain fn, std::size_t loops);

}  // namespace asyncio
#pragma GCC visibility pop
