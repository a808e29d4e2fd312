// SPDX-License-Identifier: MIT
// Private to the library: sleeping on a 32-bit word until another thread changes it and wakes
// the sleepers (Linux's futex(2)), under the adaptive mutex and the channel's blocked threads.
#pragma once

#include <atomic>
#include <cstdint>

namespace asyncio::detail::os {

/// Sleeps while `word` holds `expected`, at most `timeout_ns` (negative: no limit). Returns
/// false if the time ran out; true otherwise, which includes waking because the word differed
/// already, a wake-up, a signal and a spurious return: callers look at the word again.
bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::int64_t timeout_ns) noexcept;

/// Wakes one thread sleeping on `word`, if any.
void futex_wake_one(const std::atomic<std::uint32_t>& word) noexcept;

}  // namespace asyncio::detail::os
