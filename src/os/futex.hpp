// SPDX-License-Identifier: MIT
// Private to the library: sleeping on a 32-bit word until another thread changes it and wakes
// the sleepers (Linux's futex(2)), under the adaptive mutex and the channel's blocked threads.
#pragma once

#include <atomic>
#include <cstdint>

namespace asyncio::detail::os {

/// Sleeps while `word` holds `expected`, at most `timeout_ns` (negative: no limit). Returns on a
/// wake-up, at the limit, at once if the word differs already, or on a signal or for no reason:
/// callers look at the word (and their clock) again.
void futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::int64_t timeout_ns) noexcept;

/// Wakes one thread sleeping on `word`, if any.
void futex_wake_one(const std::atomic<std::uint32_t>& word) noexcept;

}  // namespace asyncio::detail::os
