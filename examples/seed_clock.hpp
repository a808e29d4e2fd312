// SPDX-License-Identifier: MIT
// Small helpers the seed examples share: Python's time.time() and datetime.now().
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace seed {

/// Python's time.time(): seconds since the epoch as a double.
inline double time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Python's str(datetime.now()): "2017-04-06 13:39:56.207479".
inline std::string datetime_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm local{};
  localtime_r(&secs, &local);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
  std::snprintf(buf + n, sizeof buf - n, ".%06lld", static_cast<long long>(micros));
  return buf;
}

}  // namespace seed
