// SPDX-License-Identifier: MIT
// Private to the library: pipes, and reads and writes on them, behind calls the layers above can
// use without the platform's headers.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

namespace asyncio::detail::os {

/// A pipe's two ends, both close-on-exec and blocking.
struct PipeEnds {
  int read = -1;
  int write = -1;
};

/// pipe2(O_CLOEXEC), or std::system_error (EMFILE when descriptors run out).
PipeEnds make_pipe();

/// O_NONBLOCK on, or std::system_error.
void set_nonblocking(int fd);

/// O_NONBLOCK's current state (false for a bad descriptor).
bool is_nonblocking(int fd) noexcept;

/// What kind of file a descriptor is, as far as pipe transports care.
enum class FileKind { fifo, socket, char_device, other, bad };

/// The kind of `fd`. Pipe transports take FIFOs, sockets and character devices (as Python's);
/// `other` is a regular file or a directory (which never block, so the loop cannot watch them).
FileKind file_kind(int fd) noexcept;

/// write(2)/writev(2) that gives EPIPE, never SIGPIPE, when the read end has gone (see
/// sigpipe.hpp). `quiet` says SIGPIPE is ignored already (sigpipe_ignored()), which saves the
/// three system calls that keep it away.
ssize_t write_quiet(int fd, const struct iovec* iov, int count, bool quiet) noexcept;

/// True if the process ignores SIGPIPE (its disposition is SIG_IGN).
bool sigpipe_ignored() noexcept;

/// The size of the pipe `fd` is an end of, in bytes (F_GETPIPE_SZ); 0 if that cannot be told.
std::size_t pipe_capacity(int fd) noexcept;

/// close(2), keeping errno.
void close_fd(int fd) noexcept;

}  // namespace asyncio::detail::os
