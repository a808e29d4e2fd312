// SPDX-License-Identifier: MIT
// Where a task was created or last suspended. SourceLocation is not available to clang 14
// with libstdc++, so we use the compiler builtins both g++ and clang provide.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstdint>

namespace asyncio {

/// A file/line/function triple captured at the call site through a default argument:
///   void f(asyncio::SourceLocation where = asyncio::SourceLocation::current());
struct SourceLocation {
  const char* file = "";  ///< The source file as compiled ("" if unknown).
  const char* function = "";  ///< The function's name, unqualified ("" if unknown).
  std::uint32_t line = 0;  ///< The line (0 if unknown).

  /// The caller's location, when used as a default argument.
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          const char* function = __builtin_FUNCTION(),
                                          std::uint32_t line = __builtin_LINE()) noexcept {
    return SourceLocation{file, function, line};
  }
  /// The file (std::source_location's spelling).
  const char* file_name() const noexcept { return file; }
  /// The function (std::source_location's spelling).
  const char* function_name() const noexcept { return function; }
  /// The line (std::source_location's spelling).
  std::uint32_t line_number() const noexcept { return line; }
};

}  // namespace asyncio
#pragma GCC visibility pop
