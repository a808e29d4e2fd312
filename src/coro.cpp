#include "asyncio/coro.hpp"

#include <cstdlib>
#include <new>

#include "asyncio/log.hpp"

namespace asyncio::detail {

constinit thread_local CoroPromiseBase* t_last_await = nullptr;

void report_never_awaited(const SourceLocation&) noexcept {
  try {
    log(LogLevel::warning,
        "a Coro was destroyed without being awaited (Python: coroutine was never awaited); "
        "co_await it or pass it to create_task()");
  } catch (...) {
  }
}

namespace {

// Size classes of 64 bytes up to 1 KiB; larger frames go straight to malloc. Each thread keeps
// its own lists (frames are created and destroyed on the loop's thread; a frame freed on another
// thread simply joins that thread's list).
constexpr std::size_t kClassSize = 64;
constexpr std::size_t kClasses = 16;
constexpr std::size_t kMaxCachedPerClass = 4096;

struct FreeNode {
  FreeNode* next;
};

// Sanitizers must see every frame's real lifetime, so they get plain malloc/free.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kUseCache = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kUseCache = false;
#else
constexpr bool kUseCache = true;
#endif
#else
constexpr bool kUseCache = true;
#endif

// Trivially destructible, so it is still readable while other thread_locals (a thread's loop and
// the frames it destroys) are torn down after the cache itself.
thread_local bool t_cache_gone = false;

struct FrameCache {
  FreeNode* heads[kClasses] = {};
  std::size_t counts[kClasses] = {};
  ~FrameCache() {
    t_cache_gone = true;
    for (auto*& head : heads) {
      while (head) std::free(std::exchange(head, head->next));
    }
  }
};

thread_local FrameCache t_cache;

std::size_t class_of(std::size_t size) noexcept { return (size + kClassSize - 1) / kClassSize - 1; }

}  // namespace

void* allocate_frame(std::size_t size) {
  std::size_t c = class_of(size);
  if (kUseCache && c < kClasses && !t_cache_gone) {
    if (FreeNode* n = t_cache.heads[c]) {
      t_cache.heads[c] = n->next;
      --t_cache.counts[c];
      return n;
    }
    size = (c + 1) * kClassSize;
  }
  void* p = std::malloc(size);
  if (!p) throw std::bad_alloc();
  return p;
}

void free_frame(void* p, std::size_t size) noexcept {
  std::size_t c = class_of(size);
  if (kUseCache && c < kClasses && !t_cache_gone && t_cache.counts[c] < kMaxCachedPerClass) {
    auto* n = static_cast<FreeNode*>(p);
    n->next = t_cache.heads[c];
    t_cache.heads[c] = n;
    ++t_cache.counts[c];
    return;
  }
  std::free(p);
}

}  // namespace asyncio::detail
