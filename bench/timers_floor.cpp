// SPDX-License-Identifier: MIT
// The floor under the timers workload of core_bench: what setting up 1,000,000 sleeping tasks
// costs on this machine before any runtime logic, measured with no runtime at all.
//
// A task's deadline is taken when its first step runs (sleep() reads the clock then), and the
// first steps run after every task has been created (create_task only schedules). The last timer
// therefore fires about `set-up + 1 s` after the start, whatever the runtime. This program does
// the least any runtime must do for that set-up, on memory allocated the way ours is (2 MiB
// chunks, transparent huge pages advised):
//   create  write `object_bytes` of fresh state per task and queue it;
//   visit   walk the queue once, touch each task and file its deadline in a ~1 ms bucket.
// It prints, for a bare 64-byte object (smaller than any coroutine frame) and for the size our
// sleeping task uses (frame + task state, bench/run_core.sh passes it), RESULT lines:
//   RESULT timers_floor setup_s_<bytes>B <seconds>
//
//   timers_floor [object_bytes...]        (default: 64 344)
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_common.hpp"

namespace {

constexpr std::size_t kChunk = std::size_t{2} << 20;

// 2 MiB chunks with huge pages advised, carved in order: our frame pool's layout.
class ChunkPool {
 public:
  ~ChunkPool() {
    for (void* c : chunks_) std::free(c);
  }
  void* allocate(std::size_t bytes) {
    if (static_cast<std::size_t>(end_ - next_) < bytes) {
      void* c = std::aligned_alloc(kChunk, kChunk);
      if (!c) std::abort();
      ::madvise(c, kChunk, MADV_HUGEPAGE);
      chunks_.push_back(c);
      next_ = static_cast<char*>(c);
      end_ = next_ + kChunk;
    }
    void* p = next_;
    next_ += bytes;
    return p;
  }

 private:
  std::vector<void*> chunks_;
  char* next_ = nullptr;
  char* end_ = nullptr;
};

struct TaskHead {  // the first bytes of each object: what the visit reads and writes
  std::int64_t delay;
  std::int64_t when;
  std::uint64_t state;
};

double measure(std::size_t object_bytes, const std::vector<std::chrono::nanoseconds>& delays) {
  ChunkPool pool;
  std::vector<TaskHead*> ready;  // grows as the loop's ready queue does
  std::vector<std::vector<TaskHead*>> buckets(4096);
  auto start = bench::Clock::now();
  for (auto delay : delays) {
    auto* t = static_cast<TaskHead*>(pool.allocate(object_bytes));
    std::memset(static_cast<void*>(t), 0, object_bytes);  // a constructor writes its fields
    t->delay = delay.count();
    ready.push_back(t);
  }
  for (TaskHead* t : ready) {  // the first steps
    t->when = std::chrono::duration_cast<std::chrono::nanoseconds>(bench::Clock::now() - start).count() + t->delay;
    t->state = 1;
    buckets[static_cast<std::size_t>(t->when >> 20) & 4095].push_back(t);
  }
  return bench::seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::strtoul(argv[i], nullptr, 10));
  if (sizes.empty()) sizes = {64, 344};
  auto delays = bench::timer_delays(bench::kTimerTasks);
  for (std::size_t bytes : sizes) {
    if (bytes < sizeof(TaskHead)) bytes = sizeof(TaskHead);
    bytes = (bytes + 15) / 16 * 16;
    bench::report("timers_floor", ("setup_s_" + std::to_string(bytes) + "B").c_str(), measure(bytes, delays));
  }
}
