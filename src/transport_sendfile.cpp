// asyncio::sendfile (Python's loop.sendfile): a file sent over a transport.
//
// The native path hands the file to the socket transport, which sends it with sendfile(2) from
// its own write-readiness handler once the data written before has gone out: the descriptor
// stays the transport's, the kernel copies the file, and reading goes on meanwhile. The copy path
// (a pipe, or a file sendfile(2) refuses) reads blocks on the default executor and writes each
// once the transport's buffer is empty. Either way write() is refused until the send ends, and a
// close() waits for it, as for buffered data.
#include <sys/sendfile.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "asyncio/transports.hpp"
#include "net_internal.hpp"
#include "sendfile_internal.hpp"
#include "ssl_internal.hpp"

namespace asyncio {
namespace detail {

namespace {

constexpr std::size_t kMaxPerCall = 0x7ffff000;  // what Linux moves in one sendfile() at most

std::exception_ptr connection_lost_error() {
  return std::make_exception_ptr(std::system_error(ECONNRESET, std::system_category(), "Connection lost"));
}

// sendfile(2) refused the file itself (not the connection): the copy path can still send it.
bool file_not_sendable(int err) noexcept { return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP || err == EOVERFLOW; }

}  // namespace

void SocketTransport::begin_sendfile() {
  if (closing_ || conn_lost_ || !sock_) throw RuntimeError("Transport is closing");
  if (sendfile_busy_) throw RuntimeError("another sendfile is in progress on this transport");
  sendfile_busy_ = true;
}

void SocketTransport::end_sendfile() noexcept {
  if (!sendfile_busy_) return;
  sendfile_busy_ = false;
  file_send_.reset();  // a send its awaiter gave up on stops here
  update_interest();
  if (!write_side_busy()) write_side_idle();  // a close() or write_eof() that waited for us
}

void SocketTransport::send_file(std::shared_ptr<FileSend> send) {
  file_send_ = std::move(send);
  if (wbuf_.empty()) write_ready();  // start at once; the rest when the socket is writable
  update_interest();
}

bool SocketTransport::send_file_ready() noexcept {
  FileSend& f = *file_send_;
  if (f.done.done()) {  // its awaiter was cancelled
    file_send_.reset();
    return true;
  }
  while (f.left > 0) {
    off_t off = f.offset;
    ssize_t n = ::sendfile(fd_, f.fd, &off, std::min(f.left, kMaxPerCall));
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (would_block(err)) return true;
      auto send = std::move(file_send_);
      if (f.sent == 0 && file_not_sendable(err)) {
        send->done.set_exception(std::make_exception_ptr(SendfileNotAvailableError("sendfile(2) cannot send this file")));
        update_interest();
        return true;
      }
      auto exc = os_error(err, "sendfile");
      send->done.set_exception(exc);
      fatal_error(exc, "Fatal write error on socket transport");
      return false;
    }
    if (n == 0) break;  // the file is shorter than it was: it ended
    f.offset += n;
    f.left -= static_cast<std::size_t>(n);
    f.sent += static_cast<std::size_t>(n);
  }
  auto send = std::move(file_send_);
  send->done.set_result();
  return true;
}

Future<void> SocketTransport::wait_write_buffer_empty() {
  Future<void> waiter(*loop_);
  if (conn_lost_ || !sock_)
    waiter.set_exception(connection_lost_error());
  else if (!write_side_busy())
    waiter.set_result();
  else
    empty_waiter_ = waiter;
  return waiter;
}

void SocketTransport::fail_sendfile(std::exception_ptr exc) noexcept {
  if (!exc) exc = connection_lost_error();
  if (auto send = std::move(file_send_); send && !send->done.done()) send->done.set_exception(exc);
  if (auto waiter = std::move(empty_waiter_); waiter && !waiter.done()) waiter.set_exception(exc);
}

namespace {

/// The copy path's hand-over of one block: written to `transport` (the socket transport itself,
/// past the guard that refuses other writes meanwhile, or a TLS transport over it), then awaited
/// until the socket has sent it.
Coro<void> write_block(Transport& transport, SocketTransport& socket, std::string_view block) {
  if (&transport == &socket)
    socket.write_for_sendfile(block);
  else
    transport.write(block);
  co_await socket.wait_write_buffer_empty();
}

Coro<void> transport_sendfile_by_copy(Transport& transport, SocketTransport& socket, int file_fd, std::int64_t offset,
                                      std::optional<std::size_t> count, std::size_t& sent) {
  // Named, not written inside the co_await: g++ 12 destroys such a capturing lambda twice.
  auto send_block = [&transport, &socket](std::string_view block) { return write_block(transport, socket, block); };
  co_await copy_file_blocks(file_fd, offset, count, sent, std::move(send_block));
}

/// The native path; false if sendfile(2) refused the file before sending anything.
Coro<bool> transport_sendfile_native(SocketTransport& transport, int file_fd, std::int64_t offset, std::size_t count,
                                     std::size_t& sent) {
  auto send = std::make_shared<SocketTransport::FileSend>();
  send->fd = file_fd;
  send->offset = offset;
  send->left = count;
  send->done = Future<void>(get_running_loop());
  transport.send_file(send);
  try {
    co_await send->done;
  } catch (const SendfileNotAvailableError&) {
    co_return false;
  } catch (...) {
    sent = send->sent;  // cancelled or failed part-way: what went out still counts
    throw;
  }
  sent = send->sent;
  co_return true;
}

}  // namespace
}  // namespace detail

namespace {

/// TLS: only the copy path can send a file (the kernel would send it unencrypted), as in Python.
Coro<std::size_t> sendfile_over_tls(detail::SSLTransport& tls, int file_fd, std::int64_t offset,
                                    std::optional<std::size_t> count, bool fallback) {
  if (!fallback) throw SendfileNotAvailableError("fallback is disabled and native sendfile is not supported over TLS");
  auto* socket = dynamic_cast<detail::SocketTransport*>(tls.socket_transport());
  if (tls.is_closing() || !socket) throw RuntimeError("Transport is closing");
  std::int64_t size = 0;
  detail::check_sendfile_file(file_fd, offset, count, fallback, size);
  auto keep_alive = tls.shared_from_this();
  std::size_t sent = 0;
  std::exception_ptr failure;
  try {
    co_await detail::transport_sendfile_by_copy(tls, *socket, file_fd, offset, count, sent);
  } catch (...) {
    failure = std::current_exception();
  }
  detail::leave_file_after(file_fd, offset, sent);
  if (failure) std::rethrow_exception(failure);
  co_return sent;
}

}  // namespace

Coro<std::size_t> sendfile(Transport& transport, int file_fd, std::int64_t offset, std::optional<std::size_t> count,
                           bool fallback) {
  if (auto* tls = dynamic_cast<detail::SSLTransport*>(&transport))
    co_return co_await sendfile_over_tls(*tls, file_fd, offset, count, fallback);
  auto* socket_transport = dynamic_cast<detail::SocketTransport*>(&transport);
  if (!socket_transport) throw SendfileNotAvailableError("sendfile is not supported by this transport");
  if (transport.is_closing()) throw RuntimeError("Transport is closing");
  std::int64_t size = 0;
  bool regular = detail::check_sendfile_file(file_fd, offset, count, fallback, size);
  auto keep_alive = transport.shared_from_this();
  socket_transport->begin_sendfile();
  std::size_t sent = 0;
  std::exception_ptr failure;
  try {
    bool done = false;
    if (regular) {
      std::size_t to_end = offset < size ? static_cast<std::size_t>(size - offset) : 0;
      std::size_t want = count ? *count : to_end;
      if (want == 0)
        done = true;
      else
        done = co_await detail::transport_sendfile_native(*socket_transport, file_fd, offset, want, sent);
      if (!done && !fallback) throw SendfileNotAvailableError("sendfile(2) cannot send this file");
    }
    if (!done)
      co_await detail::transport_sendfile_by_copy(*socket_transport, *socket_transport, file_fd, offset, count, sent);
  } catch (...) {
    failure = std::current_exception();
  }
  socket_transport->end_sendfile();
  detail::leave_file_after(file_fd, offset, sent);
  if (failure) std::rethrow_exception(failure);
  co_return sent;
}

}  // namespace asyncio
