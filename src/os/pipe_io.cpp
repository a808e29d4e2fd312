// SPDX-License-Identifier: MIT
#include "os/pipe_io.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "os/sigpipe.hpp"

namespace asyncio::detail::os {

PipeEnds make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) throw std::system_error(errno, std::system_category(), "pipe2");
  return {fds[0], fds[1]};
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    throw std::system_error(errno, std::system_category(), "fcntl(O_NONBLOCK)");
}

bool is_nonblocking(int fd) noexcept {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK);
}

FileKind file_kind(int fd) noexcept {
  struct stat st;
  if (::fstat(fd, &st) < 0) return FileKind::bad;
  if (S_ISFIFO(st.st_mode)) return FileKind::fifo;
  if (S_ISSOCK(st.st_mode)) return FileKind::socket;
  if (S_ISCHR(st.st_mode)) return FileKind::char_device;
  return FileKind::other;
}

ssize_t write_quiet(int fd, const struct iovec* iov, int count, bool quiet) noexcept {
  if (quiet) return count == 1 ? ::write(fd, iov[0].iov_base, iov[0].iov_len) : ::writev(fd, iov, count);
  SigpipeSuppressed suppressed;
  ssize_t n = count == 1 ? ::write(fd, iov[0].iov_base, iov[0].iov_len) : ::writev(fd, iov, count);
  if (n < 0 && errno == EPIPE) suppressed.broke();
  return n;
}

bool sigpipe_ignored() noexcept {
  struct sigaction current;
  return ::sigaction(SIGPIPE, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
         current.sa_handler == SIG_IGN;
}

std::size_t pipe_capacity(int fd) noexcept {
  int size = ::fcntl(fd, F_GETPIPE_SZ);
  return size > 0 ? static_cast<std::size_t>(size) : 0;
}

void close_fd(int fd) noexcept {
  int saved = errno;
  ::close(fd);
  errno = saved;
}

}  // namespace asyncio::detail::os
