// SPDX-License-Identifier: MIT
// Where the library's diagnostics go (the loop's default exception handler, debug-mode reports).
// Python routes these to the "asyncio" logger; we route them to one replaceable sink.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <functional>
#include <string_view>

namespace asyncio {

enum class LogLevel { debug, info, warning, error };

/// Receives every diagnostic line. Thread-safe to call; the sink itself must tolerate calls from
/// any thread. The default writes "asyncio <LEVEL>: <text>" to stderr.
using LogSink = std::function<void(LogLevel, std::string_view)>;

/// Replaces the sink and returns the previous one. Pass nullptr to restore the default.
///   auto old = asyncio::set_log_sink([&](auto, auto text) { lines.emplace_back(text); });
LogSink set_log_sink(LogSink sink);

/// Sends one line to the current sink.
void log(LogLevel level, std::string_view text);

}  // namespace asyncio
#pragma GCC visibility pop
