// Private to the networking sources: what sock_sendfile (socket.cpp) and the transport-level
// sendfile (transport_sendfile.cpp) share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "asyncio/coro.hpp"

namespace asyncio::detail {

/// The copy path's block: Python's fallback reads up to 256 KiB at a time too.
inline constexpr std::size_t kSendfileBlock = 256 * 1024;

/// Python's argument checks (ValueError) and the file's kind: true for a regular file, whose
/// `size` is set; false for anything else, which only the copy path can send (without
/// `fallback`, SendfileNotAvailableError).
bool check_sendfile_file(int file_fd, std::int64_t offset, std::optional<std::size_t> count, bool fallback,
                         std::int64_t& size);

/// Reads up to `want` bytes of the file into `block` on the default executor (the file may be a
/// pipe or a slow disk). The thread shares `block`, so cancelling the read frees nothing it uses.
Coro<std::size_t> read_file_block(int file_fd, std::shared_ptr<std::vector<char>> block, std::size_t want);

/// As Python leaves it: the file positioned after what was sent, also after a failure.
void leave_file_after(int file_fd, std::int64_t offset, std::size_t sent) noexcept;

}  // namespace asyncio::detail
