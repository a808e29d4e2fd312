// SPDX-License-Identifier: MIT
// The socket transport's side of asyncio::sendfile (Python's loop.sendfile; the entry point is
// streams/sendfile.cpp).
//
// The native path hands the file to the socket transport, which sends it with sendfile(2) from
// its own write-readiness handler once the data written before has gone out: the descriptor
// stays the transport's, the kernel copies the file, and reading goes on meanwhile. The copy path
// (a pipe, or a file sendfile(2) refuses) reads blocks on the default executor and writes each
// once the transport's buffer is empty. Either way write() is refused until the send ends, and a
// close() waits for it, as for buffered data.
#include <algorithm>
#include <cerrno>
#include <system_error>

#include "asyncio/transports.hpp"
#include "net/net_internal.hpp"
#include "net/sendfile_internal.hpp"
#include "os/sendfile.hpp"

namespace asyncio {
namespace detail {

namespace {

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
    ssize_t n = os::send_file_chunk(fd_, f.fd, f.offset, f.left);
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

}  // namespace

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

}  // namespace detail
}  // namespace asyncio
