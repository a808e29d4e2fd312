// SPDX-License-Identifier: MIT
// Private to the networking sources: what sock_sendfile (net/socket.cpp), the socket transport's
// sendfile (net/transport_sendfile.cpp) and asyncio::sendfile (streams/sendfile.cpp) share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "asyncio/coro.hpp"

namespace asyncio {
class Transport;
}

namespace asyncio::detail {

class SocketTransport;

/// Python's argument checks (ValueError) and the file's kind: true for a regular file, whose
/// `size` is set; false for anything else, which only the copy path can send (without
/// `fallback`, SendfileNotAvailableError).
bool check_sendfile_file(int file_fd, std::int64_t offset, std::optional<std::int64_t> count, bool fallback,
                         std::int64_t& size);
/// A `count` check_sendfile_file accepted (positive), as the copy and native paths take it.
inline std::optional<std::size_t> sendfile_count(std::optional<std::int64_t> count) noexcept {
  if (!count) return std::nullopt;
  return static_cast<std::size_t>(*count);
}

/// Python's _sock_sendfile_fallback / _sendfile_fallback: reads the file from `offset` (`count`
/// bytes, or to its end) block by block on the default executor, since it may be a pipe or a slow
/// disk, and awaits `send_block(block)` for each. `sent` counts the bytes handed over, so that the
/// caller knows them also when this fails or is cancelled part-way.
Coro<void> copy_file_blocks(int file_fd, std::int64_t offset, std::optional<std::size_t> count, std::size_t& sent,
                            std::function<Coro<void>(std::string_view)> send_block);

/// As Python leaves it: the file positioned after what was sent, also after a failure.
void leave_file_after(int file_fd, std::int64_t offset, std::size_t sent) noexcept;

/// The copy path of a transport's sendfile: blocks written to `transport` (the socket transport
/// itself, or a TLS transport over `socket`), each awaited until `socket` has sent it.
Coro<void> transport_sendfile_by_copy(Transport& transport, SocketTransport& socket, int file_fd, std::int64_t offset,
                                      std::optional<std::size_t> count, std::size_t& sent);

/// The native path (sendfile(2) from the socket transport's write handler); false if sendfile(2)
/// refused the file before sending anything. `sent` counts what went out, also on failure.
Coro<bool> transport_sendfile_native(SocketTransport& transport, int file_fd, std::int64_t offset, std::size_t count,
                                     std::size_t& sent);

}  // namespace asyncio::detail
