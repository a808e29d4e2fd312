// SPDX-License-Identifier: MIT
#include "os/sendfile.hpp"

#include <sys/sendfile.h>

#include <algorithm>
#include <cerrno>

#include "os/sigpipe.hpp"

namespace asyncio::detail::os {

ssize_t send_file_chunk(int out_fd, int file_fd, std::int64_t offset, std::size_t count) noexcept {
  off_t off = static_cast<off_t>(offset);
  SigpipeSuppressed quiet;
  ssize_t n = ::sendfile(out_fd, file_fd, &off, std::min(count, kMaxSendfileChunk));
  if (n < 0 && errno == EPIPE) quiet.broke();
  return n;
}

}  // namespace asyncio::detail::os
