// SPDX-License-Identifier: MIT
#include "asyncio/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "asyncio/loop.hpp"
#include "asyncio/threads.hpp"
#include "net/sendfile_internal.hpp"
#include "os/sendfile.hpp"

namespace asyncio {

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK; }

/// One non-blocking system call, retried while interrupted: true once the operation is over (the
/// result went to `done`, or the error to `err`), false if it would block.
template <class Call, class Done>
bool try_syscall(int& err, Call call, Done done) noexcept {
  for (;;) {
    auto r = call();
    if (r >= 0) {
      done(r);
      return true;
    }
    if (errno == EINTR) continue;
    if (would_block(errno)) return false;
    err = errno;
    return true;
  }
}

}  // namespace

// ---- SocketAddress -------------------------------------------------------------------------------

SocketAddress::SocketAddress() noexcept {
  std::memset(&storage_, 0, sizeof storage_);
  storage_.ss_family = AF_UNSPEC;
}

SocketAddress::SocketAddress(const sockaddr* sa, socklen_t len) noexcept : SocketAddress() {
  if (!sa || len == 0) return;
  if (len > sizeof storage_) len = sizeof storage_;
  std::memcpy(&storage_, sa, len);
  len_ = len;
}

SocketAddress SocketAddress::ip(std::string_view host, std::uint16_t port) {
  SocketAddress a;
  std::string h(host);
  // Python accepts "[::1]" in a few places; strip brackets for convenience.
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    return SocketAddress(reinterpret_cast<sockaddr*>(&v4), sizeof v4);
  }
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    return SocketAddress(reinterpret_cast<sockaddr*>(&v6), sizeof v6);
  }
  if (h.find('%') != std::string::npos) {
    // A scoped IPv6 address ("fe80::1%eth0"): the numeric-only resolver parses the scope.
    addrinfo hints{};
    hints.ai_family = AF_INET6;
    hints.ai_flags = AI_NUMERICHOST;
    addrinfo* res = nullptr;
    if (::getaddrinfo(h.c_str(), nullptr, &hints, &res) == 0 && res) {
      SocketAddress out(res->ai_addr, res->ai_addrlen);
      ::freeaddrinfo(res);
      reinterpret_cast<sockaddr_in6*>(out.native())->sin6_port = htons(port);
      return out;
    }
  }
  throw ValueError("not a numeric IP address: '" + std::string(host) + "' (resolve names with getaddrinfo)");
}

SocketAddress SocketAddress::unix_path(std::string_view path) {
  sockaddr_un un{};
  if (path.size() >= sizeof un.sun_path) throw ValueError("AF_UNIX path too long: " + std::string(path));
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, path.data(), path.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  // A filesystem path carries its terminating NUL; an abstract name is exactly its bytes.
  if (path.empty() || path[0] != '\0') len += 1;
  return SocketAddress(reinterpret_cast<sockaddr*>(&un), len);
}

std::string SocketAddress::host() const {
  if (family() != AF_INET && family() != AF_INET6) return {};
  char buf[NI_MAXHOST];
  if (::getnameinfo(native(), len_, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) != 0) return {};
  return buf;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::uint32_t SocketAddress::flowinfo() const noexcept {
  return family() == AF_INET6 ? ntohl(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_flowinfo) : 0;
}

std::uint32_t SocketAddress::scope_id() const noexcept {
  return family() == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_scope_id : 0;
}

std::string SocketAddress::path() const {
  if (family() != AF_UNIX) return {};
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
  std::size_t n = len_ > offsetof(sockaddr_un, sun_path) ? len_ - offsetof(sockaddr_un, sun_path) : 0;
  if (n == 0) return {};
  if (un->sun_path[0] == '\0') return std::string(un->sun_path, n);  // abstract: all bytes
  return std::string(un->sun_path, ::strnlen(un->sun_path, n));
}

std::string SocketAddress::to_string() const {
  switch (family()) {
    case AF_INET:
      return host() + ":" + std::to_string(port());
    case AF_INET6: {
      // Built with appends: `"[" + std::string` trips g++ 12's -Wrestrict false positive at -O3.
      std::string s = "[";
      s += host();
      s += "]:";
      s += std::to_string(port());
      return s;
    }
    case AF_UNIX: {
      std::string p = path();
      if (!p.empty() && p[0] == '\0') p[0] = '@';
      return p;
    }
    default:
      return {};
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

// ---- the per-socket readiness record ------------------------------------------------------------

namespace detail {

/// Which task waits to read and which to write on one socket; registered with the loop only
/// while someone waits.
class SocketIo final : public FdListener {
 public:
  explicit SocketIo(int fd) noexcept : fd_(fd) {}

  void attach(SockOp* op, EventLoop& loop) {
    SockOp*& slot = op->direction() == SockOp::reading ? reader_ : writer_;
    if (slot)
      throw RuntimeError(op->direction() == SockOp::reading
                             ? "another task is already waiting to read from this socket"
                             : "another task is already waiting to write to this socket");
    if (!reader_ && !writer_)
      loop_ = &loop;
    else if (loop_ != &loop)
      throw RuntimeError("the socket is waited on by another event loop");
    slot = op;
    try {
      update();
    } catch (...) {
      slot = nullptr;
      throw;
    }
  }

  void detach(SockOp* op) noexcept {
    if (reader_ == op) reader_ = nullptr;
    if (writer_ == op) writer_ = nullptr;
    update_quietly();
  }

  /// The socket is closing: wake every waiter with `err` and unregister.
  void fail_all(int err) noexcept {
    SockOp* r = std::exchange(reader_, nullptr);
    SockOp* w = std::exchange(writer_, nullptr);
    update_quietly();
    if (r) r->complete(err);
    if (w) w->complete(err);
  }

  void on_fd_ready(std::uint32_t events) noexcept override {
    if (reader_ && (events & poll_readable) && reader_->on_ready()) std::exchange(reader_, nullptr)->complete(0);
    if (writer_ && (events & poll_writable) && writer_->on_ready()) std::exchange(writer_, nullptr)->complete(0);
    update_quietly();
  }

 private:
  void update() {
    std::uint32_t want = (reader_ ? poll_readable : 0u) | (writer_ ? poll_writable : 0u);
    if (want == registered_) return;
    loop_->set_fd_listener(fd_, this, want);
    registered_ = want;
  }
  void update_quietly() noexcept {
    try {
      update();
    } catch (...) {
      // epoll_ctl failing on a descriptor we watch cannot be reported anywhere useful; the
      // waiters were already woken or detached.
    }
  }

  EventLoop* loop_ = nullptr;
  int fd_;
  SockOp* reader_ = nullptr;
  SockOp* writer_ = nullptr;
  std::uint32_t registered_ = 0;
};

Socket wrap_socket(int fd, int family, int type, int proto) noexcept { return Socket(fd, family, type, proto); }

// ---- SockOp --------------------------------------------------------------------------------------

SockOp::~SockOp() {
  if (io_) io_->detach(this);
}

bool SockOp::attempt_now() {
  fd_ = sock_->fileno();
  family_ = sock_->family();
  type_ = sock_->type();
  proto_ = sock_->proto();
  if (fd_ < 0) {
    err_ = EBADF;
    return true;
  }
  return attempt();
}

void SockOp::await_suspend(std::coroutine_handle<> h) {
  TaskCore& task = require_current_task(what_);
  SocketIo& io = sock_->io();
  io.attach(this, *task.loop());
  io_ = &io;
  task_ = &task;
  task_->park(this, h);
}

bool SockOp::cancel_wait(const std::string&) noexcept {
  if (!io_) return false;
  std::exchange(io_, nullptr)->detach(this);
  aborted_ = true;
  task_->wake();
  return true;
}

void SockOp::complete(int err) noexcept {
  io_ = nullptr;
  if (err) err_ = err;
  task_->wake();
}

void SockOp::check() {
  if (task_) task_->resume_checked(aborted_);
  if (err_) throw std::system_error(err_, std::system_category(), what_);
}

// ---- the operations ------------------------------------------------------------------------------

bool RecvOp::attempt() noexcept {
  try {
    if (buf_.size() != n_) buf_.resize(n_);
  } catch (...) {
    err_ = ENOMEM;
    return true;
  }
  return try_syscall(
      err_, [&] { return ::recv(fd(), buf_.data(), n_, 0); },
      [&](ssize_t r) { buf_.resize(static_cast<std::size_t>(r)); });
}

bool RecvIntoOp::attempt() noexcept {
  return try_syscall(
      err_, [&] { return ::recv(fd(), buf_.data(), buf_.size(), 0); },
      [&](ssize_t r) { n_ = static_cast<std::size_t>(r); });
}

bool SendAllOp::attempt() noexcept {
  while (!data_.empty()) {
    ssize_t r = ::send(fd(), data_.data(), data_.size(), MSG_NOSIGNAL);
    if (r >= 0) {
      data_.remove_prefix(static_cast<std::size_t>(r));
      continue;
    }
    if (errno == EINTR) continue;
    if (would_block(errno)) return false;
    err_ = errno;
    return true;
  }
  return true;
}

bool ConnectOp::attempt() noexcept {
  if (!started_) {
    for (;;) {
      if (::connect(fd(), addr_.native(), addr_.native_size()) == 0) return true;
      int e = errno;
      if (e == EINPROGRESS || e == EINTR) {
        started_ = true;  // the handshake goes on in the background; writable when it ends
        return false;
      }
      if (would_block(e) && addr_.family() == AF_UNIX) return false;  // backlog full: retry later
      if (e == EISCONN) return true;
      err_ = e;
      return true;
    }
  }
  int e = 0;
  socklen_t len = sizeof e;
  if (::getsockopt(fd(), SOL_SOCKET, SO_ERROR, &e, &len) < 0) e = errno;
  if (e == 0) return true;
  if (e == EINPROGRESS || e == EALREADY) return false;
  err_ = e;
  return true;
}

void ConnectOp::await_resume() {
  try {
    check();
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "Connect call failed " + addr_.to_string());
  }
}

bool AcceptOp::attempt() noexcept {
  for (;;) {
    socklen_t len = SocketAddress::capacity();
    int c = ::accept4(fd(), addr_.native(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      conn_ = c;
      addr_.set_native_size(len);
      return true;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (would_block(e) || e == ECONNABORTED) return false;
    err_ = e;
    return true;
  }
}

AcceptOp::~AcceptOp() {
  if (conn_ >= 0) ::close(conn_);  // accepted, but the task was cancelled before it resumed
}

AcceptResult AcceptOp::await_resume() {
  check();  // may throw CancelledError: the destructor closes a connection accepted meanwhile
  return AcceptResult{wrap_socket(std::exchange(conn_, -1), family_, type_, proto_), addr_};
}

bool SendToOp::attempt() noexcept {
  return try_syscall(
      err_, [&] { return ::sendto(fd(), data_.data(), data_.size(), MSG_NOSIGNAL, addr_.native(), addr_.native_size()); },
      [&](ssize_t r) { n_ = static_cast<std::size_t>(r); });
}

bool RecvFromOp::attempt() noexcept {
  try {
    if (buf_.size() != n_) buf_.resize(n_);
  } catch (...) {
    err_ = ENOMEM;
    return true;
  }
  socklen_t len = 0;
  return try_syscall(
      err_,
      [&] {
        len = SocketAddress::capacity();
        return ::recvfrom(fd(), buf_.data(), n_, 0, addr_.native(), &len);
      },
      [&](ssize_t r) {
        buf_.resize(static_cast<std::size_t>(r));
        addr_.set_native_size(len);
      });
}

bool RecvFromIntoOp::attempt() noexcept {
  socklen_t len = 0;
  return try_syscall(
      err_,
      [&] {
        len = SocketAddress::capacity();
        return ::recvfrom(fd(), buf_.data(), buf_.size(), 0, addr_.native(), &len);
      },
      [&](ssize_t r) {
        n_ = static_cast<std::size_t>(r);
        addr_.set_native_size(len);
      });
}

bool SendFileOp::attempt() noexcept {
  bool at_end = false;
  while (left_ > 0 && !at_end) {
    bool over = try_syscall(
        err_,
        [&] { return os::send_file_chunk(fd(), file_fd_, offset_, left_); },
        [&](ssize_t r) {
          at_end = r == 0;
          offset_ += r;
          left_ -= static_cast<std::size_t>(r);
          sent_ += static_cast<std::size_t>(r);
        });
    if (!over) return false;  // the socket is full: wait until it is writable
    if (err_) return true;
  }
  return true;
}

}  // namespace detail

// ---- Socket --------------------------------------------------------------------------------------

Socket::Socket(int family, int type, int proto) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) throw_errno(errno, "socket");
  fd_ = fd;
  family_ = family;
  type_ = type;
  proto_ = proto;
}

Socket Socket::adopt(int fd) {
  int family = 0, type = 0, proto = 0;
  socklen_t len = sizeof(int);
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0) throw_errno(errno, "adopt socket");
  len = sizeof(int);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) throw_errno(errno, "adopt socket");
  len = sizeof(int);
  if (::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0) proto = 0;
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) throw_errno(errno, "fcntl(O_NONBLOCK)");
  int fdfl = ::fcntl(fd, F_GETFD);
  if (fdfl < 0 || ::fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) throw_errno(errno, "fcntl(FD_CLOEXEC)");
  return Socket(fd, family, type, proto);
}

Socket::Socket(Socket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      family_(o.family_),
      type_(o.type_),
      proto_(o.proto_),
      io_(std::exchange(o.io_, nullptr)) {}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    family_ = o.family_;
    type_ = o.type_;
    proto_ = o.proto_;
    io_ = std::exchange(o.io_, nullptr);
  }
  return *this;
}

Socket::~Socket() { close(); }

void Socket::close() noexcept {
  if (io_) {
    io_->fail_all(EBADF);
    delete std::exchange(io_, nullptr);
  }
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

int Socket::detach() noexcept {
  if (io_) {
    io_->fail_all(EBADF);
    delete std::exchange(io_, nullptr);
  }
  return std::exchange(fd_, -1);
}

detail::SocketIo& Socket::io() {
  if (!io_) io_ = new detail::SocketIo(fd_);
  return *io_;
}

void Socket::bind(const SocketAddress& address) {
  if (::bind(fd_, address.native(), address.native_size()) < 0) throw_errno(errno, "bind " + address.to_string());
}

void Socket::listen(int backlog) {
  // As Python's socket.listen: Linux would read a negative backlog as the largest one.
  if (backlog < 0) backlog = 0;
  if (::listen(fd_, backlog) < 0) throw_errno(errno, "listen");
}

SocketAddress Socket::getsockname() const {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity();
  if (::getsockname(fd_, a.native(), &len) < 0) throw_errno(errno, "getsockname");
  a.set_native_size(len);
  return a;
}

SocketAddress Socket::getpeername() const {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity();
  if (::getpeername(fd_, a.native(), &len) < 0) throw_errno(errno, "getpeername");
  a.set_native_size(len);
  return a;
}

void Socket::setsockopt(int level, int name, int value) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) < 0) throw_errno(errno, "setsockopt");
}

int Socket::getsockopt(int level, int name) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &len) < 0) throw_errno(errno, "getsockopt");
  return value;
}

void Socket::shutdown(int how) {
  if (::shutdown(fd_, how) < 0) throw_errno(errno, "shutdown");
}

std::pair<Socket, Socket> socketpair(int family, int type, int proto) {
  int fds[2];
  if (::socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto, fds) < 0) throw_errno(errno, "socketpair");
  return {detail::wrap_socket(fds[0], family, type, proto), detail::wrap_socket(fds[1], family, type, proto)};
}

// ---- sock_sendfile ------------------------------------------------------------------------------

namespace detail {

bool check_sendfile_file(int file_fd, std::int64_t offset, std::optional<std::int64_t> count, bool fallback,
                         std::int64_t& size) {
  // In Python's order: count, then offset.
  if (count && *count <= 0) throw ValueError("count must be a positive integer (got " + std::to_string(*count) + ")");
  if (offset < 0) throw ValueError("offset must be a non-negative integer (got " + std::to_string(offset) + ")");
  struct stat st {};
  if (::fstat(file_fd, &st) < 0) throw_errno(errno, "fstat");
  bool regular = S_ISREG(st.st_mode);
  if (!regular && !fallback) throw SendfileNotAvailableError("not a regular file");
  size = st.st_size;
  return regular;
}

Coro<void> copy_file_blocks(int file_fd, std::int64_t offset, std::optional<std::size_t> count, std::size_t& sent,
                            std::function<Coro<void>(std::string_view)> send_block) {
  constexpr std::size_t kBlock = 256 * 1024;  // Python's fallback reads as much at a time
  std::int64_t start = offset + static_cast<std::int64_t>(sent);
  if (start != 0 && ::lseek(file_fd, start, SEEK_SET) < 0) throw_errno(errno, "lseek");
  // Shared with the reading thread: if this task is cancelled mid-read, the thread still owns it.
  auto block = std::make_shared<std::vector<char>>(count ? std::min(*count, kBlock) : kBlock);
  for (;;) {
    std::size_t want = count ? std::min(block->size(), *count - sent) : block->size();
    if (want == 0) break;
    // Named, not written inside the co_await: g++ 12 destroys such a capturing lambda twice.
    auto read_block = [file_fd, block, want] {
      ssize_t r;
      do r = ::read(file_fd, block->data(), want);
      while (r < 0 && errno == EINTR);
      if (r < 0) throw_errno(errno, "read");
      return static_cast<std::size_t>(r);
    };
    std::size_t n = co_await to_thread(std::move(read_block));
    if (n == 0) break;
    co_await send_block(std::string_view(block->data(), n));
    sent += n;
  }
}

void leave_file_after(int file_fd, std::int64_t offset, std::size_t sent) noexcept {
  if (sent > 0) ::lseek(file_fd, offset + static_cast<std::int64_t>(sent), SEEK_SET);
}

}  // namespace detail

namespace {

Coro<void> send_all_block(Socket& sock, std::string_view block) { co_await sock_sendall(sock, block); }

}  // namespace

Coro<std::size_t> sock_sendfile(Socket& sock, int file_fd, std::int64_t offset, std::optional<std::int64_t> count_arg,
                                bool fallback) {
  if (sock.type() != SOCK_STREAM) throw ValueError("only SOCK_STREAM type sockets are supported");
  std::int64_t size = 0;
  bool regular = detail::check_sendfile_file(file_fd, offset, count_arg, fallback, size);
  std::optional<std::size_t> count = detail::sendfile_count(count_arg);
  std::size_t sent = 0;
  std::exception_ptr failure;
  try {
    if (regular) {
      std::size_t to_end = offset < size ? static_cast<std::size_t>(size - offset) : 0;
      detail::SendFileOp op(sock, file_fd, offset, count ? *count : to_end);
      try {
        sent = co_await op;
      } catch (...) {
        sent = op.sent();
        throw;
      }
    } else {
      // Named, not written inside the co_await: g++ 12 destroys such a capturing lambda twice.
      auto send_block = [&sock](std::string_view block) { return send_all_block(sock, block); };
      co_await detail::copy_file_blocks(file_fd, offset, count, sent, std::move(send_block));
    }
  } catch (...) {
    failure = std::current_exception();
  }
  // As Python: the file is left positioned after what was sent (sendfile(2) does not move it),
  // also when the send failed or was cancelled part-way.
  detail::leave_file_after(file_fd, offset, sent);
  if (failure) std::rethrow_exception(failure);
  co_return sent;
}

Coro<std::size_t> sock_sendfile(Socket& sock, int file_fd, std::int64_t offset) {
  return sock_sendfile(sock, file_fd, offset, std::nullopt, true);
}

}  // namespace asyncio
