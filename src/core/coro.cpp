// SPDX-License-Identifier: MIT
#include "asyncio/coro.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "asyncio/log.hpp"
#include "asyncio/task.hpp"  // location_string, short_function_name

namespace asyncio::detail {

constinit thread_local CoroPromiseBase* t_last_await = nullptr;

void report_never_awaited(const SourceLocation& created) noexcept {
  // Python: "RuntimeWarning: coroutine 'fetch' was never awaited".
  try {
    std::string text = "coroutine '";
    text += short_function_name(created.function_name());
    text += "'";
    if (std::string at = location_string(created); !at.empty()) text += " (" + at + ")";
    text += " was never awaited: the Coro was destroyed without running; co_await it or pass it to create_task()";
    log(LogLevel::warning, text);
  } catch (...) {
  }
}

namespace {

// Coroutine frames and task states are small, short-lived and numerous (a million sleeping tasks
// is a million of each). They come from per-thread free lists in 16-byte size classes up to 1 KiB,
// refilled by carving 2 MiB chunks (backed by transparent huge pages where the kernel allows):
// no malloc call per object and one page fault per 2 MiB instead of one per 4 KiB.
// The memory is kept for reuse, never returned to the OS; chunks stay reachable from a global list.
// Larger frames, and every frame under a sanitizer (which must see real lifetimes), use malloc.
constexpr std::size_t kClassSize = 16;
constexpr std::size_t kClasses = 64;
constexpr std::size_t kChunkSize = std::size_t{2} << 20;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kUsePool = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kUsePool = false;
#else
constexpr bool kUsePool = true;
#endif
#else
constexpr bool kUsePool = true;
#endif

struct FreeNode {
  FreeNode* next;
};

// Trivially destructible on purpose: frames may be freed while thread_locals are torn down.
struct FramePool {
  FreeNode* heads[kClasses];
  char* bump;
  char* bump_end;
};
constinit thread_local FramePool t_pool{};

std::mutex chunks_mutex;
std::vector<void*>& chunks() {
  static std::vector<void*>* list = new std::vector<void*>();  // never destroyed: frames may outlive statics
  return *list;
}

void* new_chunk() {
  void* p = std::aligned_alloc(kChunkSize, kChunkSize);
  if (!p) throw std::bad_alloc();
  ::madvise(p, kChunkSize, MADV_HUGEPAGE);  // a hint; failure is harmless
  std::lock_guard lock(chunks_mutex);
  chunks().push_back(p);
  return p;
}

std::size_t class_of(std::size_t size) noexcept { return (size + kClassSize - 1) / kClassSize - 1; }

}  // namespace

void* allocate_frame(std::size_t size) {
  std::size_t c = class_of(size);
  if (!kUsePool || c >= kClasses) {
    void* p = std::malloc(size);
    if (!p) throw std::bad_alloc();
    return p;
  }
  if (FreeNode* n = t_pool.heads[c]) {
    t_pool.heads[c] = n->next;
    return n;
  }
  std::size_t bytes = (c + 1) * kClassSize;
  if (static_cast<std::size_t>(t_pool.bump_end - t_pool.bump) < bytes) {
    t_pool.bump = static_cast<char*>(new_chunk());
    t_pool.bump_end = t_pool.bump + kChunkSize;
  }
  void* p = t_pool.bump;
  t_pool.bump += bytes;
  return p;
}

void free_frame(void* p, std::size_t size) noexcept {
  std::size_t c = class_of(size);
  if (!kUsePool || c >= kClasses) {
    std::free(p);
    return;
  }
  auto* n = static_cast<FreeNode*>(p);
  n->next = t_pool.heads[c];
  t_pool.heads[c] = n;
}

}  // namespace asyncio::detail
