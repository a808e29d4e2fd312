// SPDX-License-Identifier: MIT
// Private to the diagnostics layer: the recorder behind trace.hpp.
//
// While a trace runs, every ready item the loop runs leaves one 64-byte record: when it started
// and ended, which task it was, and — for a task that parked — where it parked and on what.
// Nothing is formatted while the program runs; write() turns the records into Chrome / Perfetto
// trace-event JSON at the end (diag/trace.cpp).
//
// Recording is kept cheap: one clock read per item (an item's end is the next one's start); the
// clock is the CPU's time-stamp counter where it is invariant (calibrated against steady_clock
// when the file is written); records go to 2 MiB chunks backed by transparent huge pages, so a
// growing trace neither copies nor takes a page fault every 4 KiB.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "diag/introspect.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace asyncio::detail {

/// An append-only log of trivially copyable records in 2 MiB chunks (huge pages where allowed).
template <class T>
class ChunkedLog {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  static constexpr std::size_t kChunkBytes = std::size_t{2} << 20;
  static constexpr std::size_t kPerChunk = kChunkBytes / sizeof(T);

  ChunkedLog() = default;
  ChunkedLog(const ChunkedLog&) = delete;
  ChunkedLog& operator=(const ChunkedLog&) = delete;
  ~ChunkedLog();

  /// Makes the log a ring of at least `records` records: once full, new records overwrite the
  /// oldest, and memory is reused instead of growing (call before the first push).
  void set_ring(std::size_t records) noexcept { ring_chunks_ = records == 0 ? 0 : (records + kPerChunk - 1) / kPerChunk; }

  /// A new slot at the end, with garbage in it (the caller fills what it uses).
  T& push() {
    if (next_ == end_) advance();
    ++pushed_;
    return *next_++;
  }
  /// Records pushed since the start (more than are kept, once a ring has wrapped).
  std::size_t pushed() const noexcept { return pushed_; }
  /// Records kept.
  std::size_t size() const noexcept { return wrapped_ ? ring_chunks_ * kPerChunk : pushed_; }
  /// Visits the records kept, oldest first.
  template <class F>
  void for_each(F&& f) const {
    if (!wrapped_) {
      std::size_t left = pushed_;
      for (void* c : chunks_) {
        const T* p = static_cast<const T*>(c);
        std::size_t n = left < kPerChunk ? left : kPerChunk;
        for (std::size_t i = 0; i < n; ++i) f(p[i]);
        left -= n;
      }
      return;
    }
    // Oldest: the rest of the current chunk (last lap), the chunks after it, then this lap's part.
    const T* cur = static_cast<const T*>(chunks_[current_]);
    for (const T* p = next_; p != cur + kPerChunk; ++p) f(*p);
    for (std::size_t k = 1; k < chunks_.size(); ++k) {
      const T* c = static_cast<const T*>(chunks_[(current_ + k) % chunks_.size()]);
      for (std::size_t i = 0; i < kPerChunk; ++i) f(c[i]);
    }
    for (const T* p = cur; p != next_; ++p) f(*p);
  }

 private:
  void advance();  // diag/trace.cpp: a new chunk, or the next one of a full ring
  std::vector<void*> chunks_;
  T* next_ = nullptr;
  T* end_ = nullptr;
  std::size_t pushed_ = 0;
  std::size_t current_ = 0;      // index of the chunk next_ points into
  std::size_t ring_chunks_ = 0;  // 0: grow without bound
  bool wrapped_ = false;
};

class Tracer {
 public:
  enum Flags : std::uint8_t {
    kCallback = 1,        // a plain callback (else a task step)
    kFinished = 2,        // the task ended in this step
    kParked = 4,          // the task parked: file/function/line and the wait fields are set
    kIterationStart = 8,  // the first item of a loop iteration
    kWaitIsType = 16,     // `wait` is the awaiter's std::type_info (it gave no WaitTarget::kind)
    kTargetTask = 32,     // `value` is the id of the awaited task
  };

  struct Record {
    std::int64_t t0, t1;       // trace clock
    std::uint64_t task;        // task id; 0 for a callback
    const char* file;          // where the task parked
    const char* function;
    const void* wait;          // WaitTarget::kind (a string), or a std::type_info (kWaitIsType)
    std::int64_t value;        // WaitTarget::value, or the awaited task's id (kTargetTask)
    std::uint32_t line;
    std::uint8_t flags;
  };
  static_assert(sizeof(Record) == 64);

  struct TaskMeta {
    std::uint64_t id;
    const char* created_file;
    const char* function;       // the top coroutine, when known
    std::uint32_t created_line;
    std::uint32_t name;         // index in names_, or kNoName ("Task-<id>")
  };
  static constexpr std::uint32_t kNoName = ~std::uint32_t{0};

  /// `ring`: keep the last max_records steps (memory reused) instead of stopping when full.
  Tracer(EventLoop& loop, std::string path, int loop_index, std::size_t max_records, bool ring);

  /// The trace clock: TSC ticks on x86 with an invariant TSC, else steady_clock nanoseconds.
  std::int64_t now() const noexcept {
#if defined(__x86_64__) || defined(__i386__)
    if (use_tsc_) return static_cast<std::int64_t>(__rdtsc());
#endif
    return steady_ns();
  }
  static std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  /// The loop starts an iteration (after `polls` polls so far): the next item recorded is its
  /// first. Returns the iteration's start time: a fresh clock read if the loop polled since the
  /// last item ended, else that item's end (nothing but a few instructions ran in between; a
  /// clock read costs as much as a whole task switch on some machines).
  std::int64_t begin_iteration(std::uint64_t polls) noexcept {
    iteration_start_ = true;
    return polls == polls_at_end_ ? end_t_ : now();
  }
  /// The iteration's last item ended at `t`; the loop had polled `polls` times.
  void end_iteration(std::int64_t t, std::uint64_t polls) noexcept {
    end_t_ = t;
    polls_at_end_ = polls;
  }
  /// A task is about to run its first step.
  void first_step(TaskCore& task);
  /// A ready item ran from t0 to t1. `task` is null for a plain callback; `finished` says the task
  /// ended in this step.
  void item(TaskCore* task, std::int64_t t0, std::int64_t t1, bool finished);

  /// Writes the JSON file; false (with `error`) on failure.
  bool write(std::string& error);
  const std::string& path() const noexcept { return path_; }

 private:
  EventLoop* loop_;  // read by write() only while the loop is alive (names of live tasks)
  std::string path_;
  int loop_index_;
  std::size_t max_records_;
  std::size_t dropped_ = 0;
  bool ring_ = false;
  bool use_tsc_ = false;
  bool iteration_start_ = false;
  std::int64_t end_t_ = 0;                     // when the last iteration's last item ended
  std::uint64_t polls_at_end_ = ~std::uint64_t{0};  // the loop's poll count then (none yet)
  std::int64_t start_ticks_ = 0;
  std::int64_t start_ns_ = 0;
  ChunkedLog<Record> records_;
  ChunkedLog<TaskMeta> tasks_;
  std::vector<std::string> names_;
  TaskMeta* pending_meta_ = nullptr;  // the task whose first step is running
};

}  // namespace asyncio::detail
