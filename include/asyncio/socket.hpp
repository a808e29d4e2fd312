// SPDX-License-Identifier: MIT
// Sockets on the loop: an owning Socket, socket addresses, and Python's loop.sock_* calls.
//
//   asyncio::Socket s(AF_INET, SOCK_STREAM);
//   co_await asyncio::sock_connect(s, asyncio::SocketAddress::ip("127.0.0.1", 8888));
//   co_await asyncio::sock_sendall(s, "ping\n");
//   std::string reply = co_await asyncio::sock_recv(s, 1024);   // "" means the peer closed
//
// Every descriptor made or adopted here is non-blocking and close-on-exec, and sends use
// MSG_NOSIGNAL, so a peer that went away gives EPIPE (a std::system_error), never SIGPIPE.
// Errors are std::system_error with the errno (compare `e.code()` with std::errc values:
// connection_reset, broken_pipe, connection_refused, ...).
//
// The sock_* calls try the system call at once and only wait when it would block, exactly as
// Python's loop.sock_recv etc. Waiting registers the socket with the running loop (no allocation
// besides a small per-socket record made on the first wait). At most one task may wait to read
// and one to write on a socket at a time (RuntimeError otherwise). Each call is cancellable: a
// cancelled receive consumed nothing; a cancelled sock_sendall may have sent a prefix of the data;
// a cancelled sock_connect leaves the socket half-connected (close it).
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "asyncio/coro.hpp"
#include "asyncio/detail/task_core.hpp"

namespace asyncio {

class Socket;

/// A socket address: IPv4, IPv6 or Unix (Python passes tuples and strings; here it is one type).
class SocketAddress {
 public:
  /// An empty address (family AF_UNSPEC).
  SocketAddress() noexcept;
  /// Copies a native address.
  SocketAddress(const sockaddr* sa, socklen_t len) noexcept;

  /// A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "fe80::1%lo") and a port. Host names
  /// are not resolved here (use getaddrinfo): ValueError.
  static SocketAddress ip(std::string_view host, std::uint16_t port);
  /// A Unix socket path; a path that starts with '\0' is in the abstract namespace (Linux).
  static SocketAddress unix_path(std::string_view path);

  /// AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when empty.
  int family() const noexcept { return storage_.ss_family; }
  /// True if no address was set.
  bool empty() const noexcept { return family() == AF_UNSPEC; }
  /// The numeric host of an IP address ("" for other families).
  std::string host() const;
  /// The port of an IP address (0 for other families).
  std::uint16_t port() const noexcept;
  /// IPv6 flow info and scope id (Python's 4-tuple), 0 otherwise.
  std::uint32_t flowinfo() const noexcept;
  /// The IPv6 scope (interface index); 0 for other families.
  std::uint32_t scope_id() const noexcept;
  /// The path of a Unix address (abstract names start with '\0'; unnamed sockets give "").
  std::string path() const;
  /// "127.0.0.1:8888", "[::1]:8888", "/tmp/x.sock", "@abstract"; "" if empty.
  std::string to_string() const;

  /// The address for system calls.
  const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  /// The address for system calls that fill it in (recvfrom, accept).
  sockaddr* native() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  /// How many bytes of native() are in use.
  socklen_t native_size() const noexcept { return len_; }
  /// Sets the length after a system call filled native() (accept, recvfrom, getsockname).
  void set_native_size(socklen_t len) noexcept { len_ = len; }
  /// The room native() has: sizeof(sockaddr_storage).
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

  /// Byte-for-byte the same address (family, address, port; path for Unix sockets).
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_ = 0;
};

namespace detail {
class SocketIo;
class SockOp;
/// Wraps a descriptor that is already non-blocking and close-on-exec (library use).
Socket wrap_socket(int fd, int family, int type, int proto) noexcept;
}  // namespace detail

/// An owning socket descriptor (Python's socket.socket). Move-only; closes once, on close() or
/// destruction. Always non-blocking and close-on-exec.
class Socket {
 public:
  /// No socket (fileno() == -1).
  Socket() noexcept = default;
  /// A new socket: `Socket(AF_INET6, SOCK_STREAM)`. Throws std::system_error.
  explicit Socket(int family, int type = SOCK_STREAM, int proto = 0);
  /// Takes ownership of `fd` (Python's socket.socket(fileno=fd)), making it non-blocking and
  /// close-on-exec. Throws std::system_error if fd is not a socket.
  static Socket adopt(int fd);
  /// Moves the descriptor; `other` becomes empty.
  Socket(Socket&& other) noexcept;
  /// Closes this socket's descriptor, then takes `other`'s.
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  /// The descriptor, or -1 (Python's socket.fileno()).
  int fileno() const noexcept { return fd_; }
  /// True while it holds a descriptor.
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// AF_INET, AF_INET6 or AF_UNIX.
  int family() const noexcept { return family_; }
  /// SOCK_STREAM or SOCK_DGRAM.
  int type() const noexcept { return type_; }
  /// The protocol passed when it was made (often 0).
  int proto() const noexcept { return proto_; }

  /// Closes the descriptor (idempotent). Tasks waiting on it in a sock_* call wake with
  /// std::system_error(EBADF).
  void close() noexcept;
  /// Gives up ownership and returns the descriptor (-1 if none).
  int detach() noexcept;

  /// Binds to `address`; std::system_error on failure (Python's socket.bind()).
  void bind(const SocketAddress& address);
  /// A negative backlog is 0, as in Python.
  void listen(int backlog = 100);
  /// The local address (Python's socket.getsockname()).
  SocketAddress getsockname() const;
  /// The peer's address; std::system_error when not connected (Python's socket.getpeername()).
  SocketAddress getpeername() const;
  /// An integer socket option (Python's socket.setsockopt()).
  void setsockopt(int level, int name, int value);
  /// An integer socket option's value (Python's socket.getsockopt()).
  int getsockopt(int level, int name) const;
  /// SHUT_RD, SHUT_WR or SHUT_RDWR.
  void shutdown(int how);

 private:
  friend class detail::SockOp;
  Socket(int fd, int family, int type, int proto) noexcept : fd_(fd), family_(family), type_(type), proto_(proto) {}
  friend class detail::SocketIo;
  friend Socket detail::wrap_socket(int, int, int, int) noexcept;
  detail::SocketIo& io();

  int fd_ = -1;
  int family_ = AF_UNSPEC;
  int type_ = 0;
  int proto_ = 0;
  detail::SocketIo* io_ = nullptr;  // made on the first wait; owned
};

/// A connected pair (Python's socket.socketpair()); AF_UNIX by default.
std::pair<Socket, Socket> socketpair(int family = AF_UNIX, int type = SOCK_STREAM, int proto = 0);

/// What sock_accept returns: `auto [conn, address] = co_await sock_accept(listener);`
struct AcceptResult {
  Socket sock;  ///< The connected socket, non-blocking.
  SocketAddress address;  ///< The peer's address.
};

/// What sock_recvfrom returns: `auto [data, address] = co_await sock_recvfrom(s, 2048);`
struct RecvFromResult {
  std::string data;  ///< The datagram.
  SocketAddress address;  ///< Who sent it.
};
/// What sock_recvfrom_into gives: the datagram's size and its sender.
struct RecvFromIntoResult {
  std::size_t nbytes;  ///< Bytes written into the buffer.
  SocketAddress address;  ///< Who sent it.
};

namespace detail {

/// Base of the sock_* awaiters: try the call; if it would block, wait for readiness and retry.
class SockOp : public Suspension {
 public:
  using is_asyncio_awaitable = void;
  enum Direction : std::uint8_t { reading, writing };

  SockOp(Socket& sock, Direction dir, const char* what) noexcept : sock_(&sock), what_(what), dir_(dir) {}
  // Copies carry the arguments only (see Suspension).
  SockOp(const SockOp& o) noexcept : sock_(o.sock_), what_(o.what_), dir_(o.dir_) {}
  SockOp& operator=(const SockOp&) = delete;

  bool await_ready() { return attempt_now(); }
  void await_suspend(std::coroutine_handle<> h);
  bool cancel_wait(const std::string& msg) noexcept override;
  WaitTarget wait_target() const noexcept override { return {"fd", nullptr, fd_}; }  // diagnostics

  /// Called by SocketIo when the descriptor is ready: true if the operation finished.
  bool on_ready() noexcept { return attempt(); }
  /// Called by SocketIo: finish with `err` (the socket was closed) or a result; wakes the task.
  void complete(int err) noexcept;
  Direction direction() const noexcept { return dir_; }

 protected:
  ~SockOp();
  /// Performs the system call. True if done (result or err_ set), false if it would block.
  virtual bool attempt() noexcept = 0;
  /// Starts await_resume: CancelledError if due, std::system_error if the call failed.
  void check();
  int fd() const noexcept { return fd_; }

  Socket* sock_;
  const char* what_;
  int err_ = 0;
  int family_ = 0, type_ = 0, proto_ = 0;  // of the socket, noted when the call starts

 private:
  bool attempt_now();

  SocketIo* io_ = nullptr;
  TaskCore* task_ = nullptr;
  int fd_ = -1;
  Direction dir_;
  bool aborted_ = false;
};

class RecvOp final : public SockOp {
 public:
  RecvOp(Socket& s, std::size_t n) noexcept : SockOp(s, reading, "recv"), n_(n) {}
  RecvOp(const RecvOp& o) : SockOp(o), n_(o.n_) {}
  std::string await_resume() {
    check();
    return std::move(buf_);
  }

 private:
  bool attempt() noexcept override;
  std::size_t n_;
  std::string buf_;
};

class RecvIntoOp final : public SockOp {
 public:
  RecvIntoOp(Socket& s, std::span<char> buf) noexcept : SockOp(s, reading, "recv_into"), buf_(buf) {}
  RecvIntoOp(const RecvIntoOp& o) noexcept : SockOp(o), buf_(o.buf_) {}
  std::size_t await_resume() {
    check();
    return n_;
  }

 private:
  bool attempt() noexcept override;
  std::span<char> buf_;
  std::size_t n_ = 0;
};

class SendAllOp final : public SockOp {
 public:
  SendAllOp(Socket& s, std::string_view data) noexcept : SockOp(s, writing, "sendall"), data_(data) {}
  SendAllOp(const SendAllOp& o) noexcept : SockOp(o), data_(o.data_) {}
  void await_resume() { check(); }

 private:
  bool attempt() noexcept override;
  std::string_view data_;
};

class ConnectOp final : public SockOp {
 public:
  ConnectOp(Socket& s, const SocketAddress& a) noexcept : SockOp(s, writing, "connect"), addr_(a) {}
  ConnectOp(const ConnectOp& o) noexcept : SockOp(o), addr_(o.addr_) {}
  void await_resume();

 private:
  bool attempt() noexcept override;
  SocketAddress addr_;
  bool started_ = false;
};

class AcceptOp final : public SockOp {
 public:
  explicit AcceptOp(Socket& s) noexcept : SockOp(s, reading, "accept") {}
  AcceptOp(const AcceptOp& o) noexcept : SockOp(o) {}
  ~AcceptOp();
  AcceptResult await_resume();

 private:
  bool attempt() noexcept override;
  int conn_ = -1;
  SocketAddress addr_;
};

class SendToOp final : public SockOp {
 public:
  SendToOp(Socket& s, std::string_view data, const SocketAddress& a) noexcept
      : SockOp(s, writing, "sendto"), data_(data), addr_(a) {}
  SendToOp(const SendToOp& o) noexcept : SockOp(o), data_(o.data_), addr_(o.addr_) {}
  std::size_t await_resume() {
    check();
    return n_;
  }

 private:
  bool attempt() noexcept override;
  std::string_view data_;
  SocketAddress addr_;
  std::size_t n_ = 0;
};

class RecvFromOp final : public SockOp {
 public:
  RecvFromOp(Socket& s, std::size_t n) noexcept : SockOp(s, reading, "recvfrom"), n_(n) {}
  RecvFromOp(const RecvFromOp& o) : SockOp(o), n_(o.n_) {}
  RecvFromResult await_resume() {
    check();
    return {std::move(buf_), addr_};
  }

 private:
  bool attempt() noexcept override;
  std::size_t n_;
  std::string buf_;
  SocketAddress addr_;
};

class RecvFromIntoOp final : public SockOp {
 public:
  RecvFromIntoOp(Socket& s, std::span<char> buf) noexcept : SockOp(s, reading, "recvfrom_into"), buf_(buf) {}
  RecvFromIntoOp(const RecvFromIntoOp& o) noexcept : SockOp(o), buf_(o.buf_) {}
  RecvFromIntoResult await_resume() {
    check();
    return {n_, addr_};
  }

 private:
  bool attempt() noexcept override;
  std::span<char> buf_;
  std::size_t n_ = 0;
  SocketAddress addr_;
};

/// sendfile(2) from `file_fd` at `offset` until `count` bytes went out or the file ended.
class SendFileOp final : public SockOp {
 public:
  SendFileOp(Socket& s, int file_fd, std::int64_t offset, std::size_t count) noexcept
      : SockOp(s, writing, "sendfile"), file_fd_(file_fd), offset_(offset), left_(count) {}
  SendFileOp(const SendFileOp& o) noexcept : SockOp(o), file_fd_(o.file_fd_), offset_(o.offset_), left_(o.left_) {}
  std::size_t await_resume() {
    check();
    return sent_;
  }
  /// Bytes sent so far (also after a failure).
  std::size_t sent() const noexcept { return sent_; }

 private:
  bool attempt() noexcept override;
  int file_fd_;
  std::int64_t offset_;
  std::size_t left_;
  std::size_t sent_ = 0;
};

}  // namespace detail

/// Receives up to `nbytes` (Python's loop.sock_recv). An empty string means end of stream.
/// ValueError("negative buffersize in recv") for a negative nbytes, as Python's socket.recv.
inline detail::RecvOp sock_recv(Socket& sock, std::ptrdiff_t nbytes) {
  if (nbytes < 0) throw ValueError("negative buffersize in recv");
  return {sock, static_cast<std::size_t>(nbytes)};
}
/// Receives into `buf`; returns the byte count (0: end of stream). No allocation.
inline detail::RecvIntoOp sock_recv_into(Socket& sock, std::span<char> buf) noexcept { return {sock, buf}; }
/// Sends all of `data`, waiting as needed. `data` must stay alive until the await completes.
inline detail::SendAllOp sock_sendall(Socket& sock, std::string_view data) noexcept { return {sock, data}; }
/// Connects to an already resolved address (resolve names with getaddrinfo first).
/// std::system_error "Connect call failed ..." on failure.
inline detail::ConnectOp sock_connect(Socket& sock, const SocketAddress& address) noexcept {
  return {sock, address};
}
/// Accepts a connection; the new socket is non-blocking and close-on-exec.
inline detail::AcceptOp sock_accept(Socket& sock) noexcept { return detail::AcceptOp(sock); }
/// Sends one datagram; returns the bytes sent.
inline detail::SendToOp sock_sendto(Socket& sock, std::string_view data, const SocketAddress& address) noexcept {
  return {sock, data, address};
}
/// Receives one datagram of at most `bufsize` bytes, with its sender. ValueError("negative
/// buffersize in recvfrom") for a negative bufsize, as Python's socket.recvfrom.
inline detail::RecvFromOp sock_recvfrom(Socket& sock, std::ptrdiff_t bufsize) {
  if (bufsize < 0) throw ValueError("negative buffersize in recvfrom");
  return {sock, static_cast<std::size_t>(bufsize)};
}
/// Receives one datagram into `buf`, with its sender.
inline detail::RecvFromIntoOp sock_recvfrom_into(Socket& sock, std::span<char> buf) noexcept { return {sock, buf}; }

/// Sends `count` bytes of the open file `file_fd` from `offset` (to the end of the file when
/// `count` is nullopt) over the stream socket `sock`, waiting whenever the socket is full
/// (Python's loop.sock_sendfile). Returns the bytes sent; afterwards the file's position is
/// `offset` plus that, as in Python, also when the send fails part-way. A regular file goes
/// through sendfile(2), without copying through user space; anything else (a pipe, say) is read
/// on the default executor and sent with sock_sendall, or, with `fallback` false, raises
/// SendfileNotAvailableError. ValueError for a socket that is not SOCK_STREAM, a count that is
/// not positive ("count must be a positive integer (got -1)") or a negative offset.
///   int fd = ::open("index.html", O_RDONLY | O_CLOEXEC);
///   std::size_t sent = co_await asyncio::sock_sendfile(conn, fd);
Coro<std::size_t> sock_sendfile(Socket& sock, int file_fd, std::int64_t offset, std::optional<std::int64_t> count,
                                bool fallback);
Coro<std::size_t> sock_sendfile(Socket& sock, int file_fd, std::int64_t offset = 0);

}  // namespace asyncio
#pragma GCC visibility pop
