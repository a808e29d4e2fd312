// SPDX-License-Identifier: MIT
#include "os/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

namespace asyncio::detail::os {

namespace {
// The word's address as the kernel wants it. std::atomic<std::uint32_t> is a plain 32-bit word
// (static_assert below), which is what every futex user relies on.
std::uint32_t* address(const std::atomic<std::uint32_t>& word) noexcept {
  return reinterpret_cast<std::uint32_t*>(const_cast<std::atomic<std::uint32_t>*>(&word));
}
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
}  // namespace

void futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::int64_t timeout_ns) noexcept {
  timespec rel{};
  timespec* limit = nullptr;
  if (timeout_ns >= 0) {
    rel.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
    rel.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
    limit = &rel;
  }
  ::syscall(SYS_futex, address(word), FUTEX_WAIT_PRIVATE, expected, limit, nullptr, 0);
}

void futex_wake_one(const std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, address(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace asyncio::detail::os
