// SPDX-License-Identifier: MIT
#include "asyncio/log.hpp"

#include <cstdio>
#include <mutex>
#include <string>

namespace asyncio {

namespace {
std::mutex sink_mutex;
LogSink& sink_slot() {
  static LogSink sink;
  return sink;
}
const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "DEBUG";
    case LogLevel::info: return "INFO";
    case LogLevel::warning: return "WARNING";
    case LogLevel::error: return "ERROR";
  }
  return "?";
}
}  // namespace

LogSink set_log_sink(LogSink sink) {
  std::lock_guard lock(sink_mutex);
  LogSink old = std::move(sink_slot());
  sink_slot() = std::move(sink);
  return old;
}

void log(LogLevel level, std::string_view text) {
  std::lock_guard lock(sink_mutex);
  if (sink_slot()) {
    sink_slot()(level, text);
    return;
  }
  std::string line = std::string("asyncio ") + level_name(level) + ": ";
  line.append(text);
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace asyncio
