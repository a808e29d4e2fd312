// SPDX-License-Identifier: MIT
// Durations and deadlines as they enter the library: the one conversion every delay, timeout and
// point in time goes through, so that no value a program can pass is undefined behaviour.
//
// Python takes seconds as floats, and ported code passes whatever it passed there: 0, a negative
// number, 1e-12, a huge number or float('inf') meaning "no timeout", and by mistake NaN. The
// rules, the same everywhere (sleep, call_later/call_at, timeout/timeout_at/reschedule, wait_for,
// wait, as_completed, the TLS and Happy Eyeballs delays, the thread-side waits):
//   - NaN is a ValueError (as Python 3.13's sleep);
//   - +inf, and anything past the clock's range (about 292 years), means never;
//   - zero, negative numbers and -inf mean now;
//   - adding a delay to the clock saturates at never instead of wrapping around.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

namespace asyncio::detail {

/// The clock's "never": a deadline no clock reaches, a delay that never ends.
inline constexpr std::int64_t kNeverNs = std::numeric_limits<std::int64_t>::max();

/// ValueError("Invalid <what>: NaN (not a number)"); out of line, off the hot paths.
[[noreturn]] void throw_nan_duration(const char* what);

/// Seconds (a delay, or a point on the loop's clock) as nanoseconds, by the rules above; `what`
/// names the value in the ValueError for NaN.
inline std::int64_t seconds_to_ns(double seconds, const char* what) {
  if (std::isnan(seconds)) [[unlikely]] throw_nan_duration(what);
  if (seconds <= 0) return 0;
  // 9223372036.854775807 s is the last representable value; doubles near it are 2^-20 s apart,
  // so compare against a bound the conversion cannot round past.
  if (seconds >= 9.2e9) return kNeverNs;
  return static_cast<std::int64_t>(seconds * 1e9);
}

/// A delay in seconds (Python's float delays) as nanoseconds: NaN raises ValueError, +inf and
/// huge values are kNeverNs, zero and negative values are 0.
inline std::int64_t delay_ns(double seconds) { return seconds_to_ns(seconds, "delay"); }

/// A std::chrono duration as a delay in nanoseconds, by the same rules (without overflow for
/// durations such as hours::max(); a floating-point NaN raises ValueError).
template <class Rep, class Period>
std::int64_t delay_ns(std::chrono::duration<Rep, Period> d) {
  if constexpr (std::is_floating_point_v<Rep>) {
    return seconds_to_ns(std::chrono::duration<double>(d).count(), "delay");
  } else {
    if (d.count() <= 0) return 0;
    // Compared in long double, whatever the unit and width of the count.
    if (std::chrono::duration<long double>(d).count() >= 9.2e9L) return kNeverNs;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }
}

/// Any numeric type as seconds, as delay_ns(double); whole seconds need no NaN check (sleep(0)
/// folds to a constant).
template <class N>
  requires std::is_arithmetic_v<N>
std::int64_t delay_ns(N seconds) {
  if constexpr (std::is_integral_v<N>) {
    if (seconds <= 0) return 0;
    if (static_cast<std::uintmax_t>(seconds) >= 9'200'000'000u) return kNeverNs;
    return static_cast<std::int64_t>(seconds) * 1'000'000'000;
  } else {
    return delay_ns(static_cast<double>(seconds));
  }
}

/// A point on the loop's clock (seconds, as EventLoop::time()) as nanoseconds: NaN raises
/// ValueError, +inf and huge values are kNeverNs, values at or before the clock's zero are 0.
inline std::int64_t when_ns(double when) { return seconds_to_ns(when, "time"); }

/// `now + delay` on the loop's clock, saturating at kNeverNs.
constexpr std::int64_t deadline_after(std::int64_t now, std::int64_t delay) noexcept {
  if (delay <= 0) return now;
  return now > kNeverNs - delay ? kNeverNs : now + delay;
}

/// Checks an optional timeout in seconds (nullopt: none): NaN raises ValueError.
inline void check_timeout(std::optional<double> timeout, const char* what = "timeout") {
  if (timeout && std::isnan(*timeout)) throw_nan_duration(what);
}

/// A timeout for a blocking wait on a thread (condition variables): nullopt when it never ends
/// (none given, +inf, or longer than any steady_clock deadline can express), otherwise the time
/// to wait, at least zero. NaN raises ValueError.
inline std::optional<std::chrono::nanoseconds> blocking_timeout(std::optional<double> timeout) {
  if (!timeout) return std::nullopt;
  std::int64_t ns = seconds_to_ns(*timeout, "timeout");
  // steady_clock::now() + d must not overflow: leave room for the clock's own reading.
  constexpr std::int64_t kLongest = std::int64_t{100} * 365 * 24 * 3600 * 1'000'000'000;
  if (ns >= kLongest) return std::nullopt;
  return std::chrono::nanoseconds(ns);
}

}  // namespace asyncio::detail
#pragma GCC visibility pop
