// SPDX-License-Identifier: MIT
// Replaces the global operator new/delete of one test program with a counting pair, so a test can
// check that a steady state allocates nothing. Include it from exactly one file of a test program.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace testing_support {
/// Every operator new in this program bumps it (read it before and after the steady state).
inline std::atomic<std::size_t> g_allocations{0};
}  // namespace testing_support

void* operator new(std::size_t n) {
  testing_support::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// g++ flags free() on memory from operator new once it inlines both; here they are a matched pair.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
