// SPDX-License-Identifier: MIT
// Captures what the library logs (asyncio::set_log_sink) while it is alive; shared by the tests.
#pragma once

#include <asyncio/log.hpp>

#include <cstddef>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace testing_support {

/// Collects asyncio::log lines and their levels for its lifetime, then restores the old sink.
/// Thread-safe: the watchdog and executor threads log too.
class LogCapture {
 public:
  LogCapture() {
    old_ = asyncio::set_log_sink([this](asyncio::LogLevel level, std::string_view text) {
      std::lock_guard lock(m_);
      lines_.emplace_back(text);
      levels_.push_back(level);
    });
  }
  ~LogCapture() { asyncio::set_log_sink(std::move(old_)); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> lines() {
    std::lock_guard lock(m_);
    return lines_;
  }
  std::vector<asyncio::LogLevel> levels() {
    std::lock_guard lock(m_);
    return levels_;
  }
  /// Lines containing every one of `needles`.
  std::vector<std::string> matching(std::initializer_list<std::string_view> needles) {
    std::vector<std::string> out;
    for (const auto& line : lines()) {
      bool all = true;
      for (auto needle : needles) all = all && line.find(needle) != std::string::npos;
      if (all) out.push_back(line);
    }
    return out;
  }
  /// How many lines contain every one of `needles`.
  std::size_t count(std::initializer_list<std::string_view> needles) { return matching(needles).size(); }
  std::size_t count(std::string_view needle) { return count({needle}); }

 private:
  std::mutex m_;
  std::vector<std::string> lines_;
  std::vector<asyncio::LogLevel> levels_;
  asyncio::LogSink old_;
};

}  // namespace testing_support
