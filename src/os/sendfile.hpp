// SPDX-License-Identifier: MIT
// Private to the library: sendfile(2), Linux's in-kernel copy from a file to a socket, behind a
// call the layers above can use without the platform's headers.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace asyncio::detail::os {

/// What Linux moves in one sendfile(2) call at most.
inline constexpr std::size_t kMaxSendfileChunk = 0x7ffff000;

/// Sends up to `count` bytes (capped at kMaxSendfileChunk) of `file_fd` from `offset` to the
/// socket `out_fd`, as sendfile(2) does: the bytes sent, 0 at the file's end, or -1 with errno
/// set. The file's own position does not move.
///
/// Unlike a bare sendfile(2), a peer that has closed the connection gives EPIPE and never
/// raises SIGPIPE, whatever the application did with SIGPIPE's disposition: sendfile has no
/// MSG_NOSIGNAL, so the signal is blocked in this thread for the call and a SIGPIPE the call
/// raised is taken back before the mask is restored.
ssize_t send_file_chunk(int out_fd, int file_fd, std::int64_t offset, std::size_t count) noexcept;

}  // namespace asyncio::detail::os
