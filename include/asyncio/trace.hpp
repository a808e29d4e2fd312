// SPDX-License-Identifier: MIT
// Timeline traces: when each task ran, when it waited and on what, and the loop's iterations,
// as a Chrome / Perfetto trace-event file (open it in https://ui.perfetto.dev or chrome://tracing;
// tools/trace_to_png.py renders one to a PNG).
//
//   ASYNCIO_TRACE=run.json ./my_program           // every loop the program makes is traced
//
//   asyncio::start_trace(loop, "run.json");       // or from the program
//   ...
//   asyncio::stop_trace(loop);                    // writes the file (so does the loop's destruction)
//
// The file has one track per task: a "run" slice for each step (args: where it resumed and where
// it parked), and between steps a slice named after what the task waited on ("sleep 1 s",
// "await Task-2 'B'", "future", "lock", "queue", "io", ...). A track "event loop" shows each
// iteration with the steps it ran, and "poll" for the time the loop spent waiting between
// iterations.
//
// With ASYNCIO_TRACE, the first loop of the process writes to the given path, later loops to
// "<stem>.2.json", "<stem>.3.json", ... ASYNCIO_TRACE_RING=N keeps only the last N steps (a flight
// recorder; see TraceOptions::ring).
//
// Recording costs one clock read and one 64-byte record per step; the JSON is written at the end.
// By default it stops recording (and says so in the file) after TraceOptions::max_records steps.
// The records' memory is the main cost on machines where first touching memory is slow (see
// docs/benchmarks.md); the ring mode reuses its memory once it has gone round once.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstddef>
#include <string>

#include "asyncio/loop.hpp"

namespace asyncio {

/// How start_trace records: how many steps, and what happens when that many are recorded.
struct TraceOptions {
  /// Steps recorded at most (64 bytes each while recording).
  std::size_t max_records = 5'000'000;
  /// false: stop recording when max_records steps are recorded (the file says how many were
  /// dropped). true: a flight recorder — keep the last max_records steps, reusing the memory.
  bool ring = false;
};

/// Starts recording `loop`'s timeline, to be written to `path`. RuntimeError if the loop is
/// already being traced. Call it on the loop's thread.
void start_trace(EventLoop& loop, std::string path, TraceOptions options = {});
/// Stops recording and writes the file. Returns false if no trace was running. Throws
/// RuntimeError if the file cannot be written.
bool stop_trace(EventLoop& loop);
/// True while `loop` is being traced.
bool is_tracing(const EventLoop& loop) noexcept;

}  // namespace asyncio
#pragma GCC visibility pop
