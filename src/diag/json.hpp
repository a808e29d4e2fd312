// SPDX-License-Identifier: MIT
// JSON strings for the diagnostics' output (traces, asyncio-inspect --json). Task names and file
// names are arbitrary bytes; JSON text must be valid UTF-8, so anything that is not becomes
// U+FFFD (the replacement character) instead of making the whole document unreadable.
#pragma once

#include <string>
#include <string_view>

namespace asyncio::detail {

/// Appends `s` to `out` as the inside of a JSON string: quotes, backslashes and control
/// characters escaped, valid UTF-8 copied, each byte of an invalid sequence replaced by "\ufffd".
void append_json_escaped(std::string& out, std::string_view s);
/// `s` as a JSON string literal, quotes included.
std::string json_quoted(std::string_view s);

}  // namespace asyncio::detail
