// SPDX-License-Identifier: MIT
// The socket transport: Python's _SelectorSocketTransport on the loop's fd listener.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <system_error>

#include "asyncio/log.hpp"
#include "net/net_internal.hpp"

namespace asyncio {

SocketAddress SocketView::getsockname() const {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity();
  if (::getsockname(fd, a.native(), &len) < 0) throw std::system_error(errno, std::system_category(), "getsockname");
  a.set_native_size(len);
  return a;
}

SocketAddress SocketView::getpeername() const {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity();
  if (::getpeername(fd, a.native(), &len) < 0) throw std::system_error(errno, std::system_category(), "getpeername");
  a.set_native_size(len);
  return a;
}

namespace detail {

char* shared_read_buffer() {
  static thread_local std::unique_ptr<char[]> buf(new char[kMaxRead]);
  return buf.get();
}

bool is_os_error(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error&) {
    return true;
  } catch (...) {
    return false;
  }
}

SocketTransport::SocketTransport(EventLoop& loop, Socket sock, std::shared_ptr<StreamProtocolBase> protocol,
                                 std::shared_ptr<ServerCore> server, const SocketAddress* peername)
    : loop_(&loop), sock_(std::move(sock)), fd_(sock_.fileno()), server_(std::move(server)) {
  set_protocol(std::move(protocol));
  if ((sock_.family() == AF_INET || sock_.family() == AF_INET6) && sock_.type() == SOCK_STREAM) {
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // asyncio's _set_nodelay
  }
  try {
    sockname_ = sock_.getsockname();
  } catch (const std::system_error&) {
  }
  if (peername) {
    peername_ = *peername;
  } else {
    try {
      peername_ = sock_.getpeername();
    } catch (const std::system_error&) {
    }
  }
  if (server_) server_->attach(this);
}

SocketTransport::~SocketTransport() {
  unhook();
  // Normally connection_lost unregistered everything. A transport can also die with the loop
  // (its pending connection_lost callback discarded by close()): unregister while that is legal.
  if (interest_ != 0 && !loop_->is_closed()) {
    try {
      loop_->set_fd_listener(fd_, nullptr, 0);
    } catch (...) {
    }
  }
  if (server_) server_->detach(this);
}

void SocketTransport::start(Future<void> waiter) {
  self_ = std::static_pointer_cast<SocketTransport>(BaseTransport::shared_from_this());
  loop_->add_close_hook(this);
  hooked_ = true;
  loop_->call_soon([self = self_, waiter]() mutable {
    if (self->stream_) {
      self->protocol_connected_ = true;
      try {
        self->stream_->connection_made(*self);
      } catch (...) {
        std::exception_ptr e = std::current_exception();
        if (waiter && !waiter.done()) waiter.set_exception(e);
        self->fatal_error(e, "Fatal error: protocol.connection_made() call failed.");
        return;
      }
    }
    self->reading_ = true;
    self->update_interest();
    if (waiter && !waiter.done()) waiter.set_result();
  });
}

std::any SocketTransport::get_extra_info(std::string_view name, std::any default_value) const {
  if (name == "peername") return peername_.empty() ? default_value : std::any(peername_);
  if (name == "sockname") return sockname_.empty() ? default_value : std::any(sockname_);
  if (name == "socket") return std::any(SocketView{sock_.fileno(), sock_.family(), sock_.type()});
  return default_value;
}

void SocketTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  protocol_ = std::move(protocol);
  stream_ = dynamic_cast<StreamProtocolBase*>(protocol_.get());
  buffered_ = dynamic_cast<BufferedProtocol*>(protocol_.get());
  plain_ = buffered_ ? nullptr : dynamic_cast<Protocol*>(protocol_.get());
}

// ---- readiness -------------------------------------------------------------------------------------

void SocketTransport::update_interest() noexcept {
  std::uint32_t want = 0;
  if (reading_ && !closing_ && !paused_ && !read_eof_) want |= poll_readable;
  if (write_side_busy() && sock_) want |= poll_writable;
  if (want == interest_) return;
  try {
    loop_->set_fd_listener(fd_, this, want);
    interest_ = want;
  } catch (...) {
    // Only a broken epoll set or a closed loop get here; neither can be reported to anyone who
    // could act on it. The transport stops being watched.
    interest_ = 0;
  }
}

void SocketTransport::on_fd_ready(std::uint32_t events) noexcept {
  // Neither handler destroys the transport: closing only schedules connection_lost, which holds
  // the last internal reference.
  if ((events & poll_readable) && (interest_ & poll_readable)) read_ready();
  if ((events & poll_writable) && (interest_ & poll_writable)) write_ready();
}

void SocketTransport::read_ready() noexcept {
  if (buffered_) {
    std::span<char> buf;
    try {
      buf = buffered_->get_buffer(0);
      if (buf.empty()) throw RuntimeError("get_buffer() returned an empty buffer");
    } catch (...) {
      fatal_error(std::current_exception(), "Fatal error: protocol failed to allocate a buffer.");
      return;
    }
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0) return recv_failed(n);
    try {
      buffered_->buffer_updated(static_cast<std::size_t>(n));
    } catch (...) {
      fatal_error(std::current_exception(), "Fatal error: protocol.buffer_updated() call failed.");
    }
    return;
  }
  char* buf = shared_read_buffer();
  ssize_t n = ::recv(fd_, buf, kMaxRead, 0);
  if (n <= 0) return recv_failed(n);
  if (!plain_) return;  // no protocol able to take data: drop it
  try {
    plain_->data_received(std::string_view(buf, static_cast<std::size_t>(n)));
  } catch (...) {
    fatal_error(std::current_exception(), "Fatal error: protocol.data_received() call failed.");
  }
}

void SocketTransport::recv_failed(ssize_t n) noexcept {
  if (n == 0)
    on_eof();
  else if (!would_block(errno))
    fatal_error(os_error(errno, "recv"), "Fatal read error on socket transport");
}

void SocketTransport::on_eof() noexcept {
  bool keep_open = false;
  try {
    keep_open = stream_ && stream_->eof_received();
  } catch (...) {
    fatal_error(std::current_exception(), "Fatal error: protocol.eof_received() call failed.");
    return;
  }
  if (keep_open) {
    // Half-closed: stop reading (the socket would report EOF forever), keep writing.
    read_eof_ = true;
    update_interest();
  } else {
    close();
  }
}

void SocketTransport::write_ready() noexcept {
  if (!wbuf_.empty()) {
    ssize_t n = ::send(fd_, wbuf_.data(), wbuf_.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (would_block(errno)) return;
      int err = errno;
      wbuf_.clear();
      update_interest();
      fatal_error(os_error(err, "send"), "Fatal write error on socket transport");
      return;
    }
    wbuf_.consume(static_cast<std::size_t>(n));
    maybe_resume_protocol();  // may write, close or abort
    if (!wbuf_.empty() || conn_lost_) return;
  }
  if (file_send_ && (!send_file_ready() || file_send_)) return;  // failed, or the socket is full
  update_interest();
  write_side_idle();
}

void SocketTransport::write_side_idle() noexcept {
  if (empty_waiter_) {
    auto waiter = std::move(empty_waiter_);
    if (!waiter.done()) waiter.set_result();
  }
  if (sendfile_busy_ || conn_lost_) return;  // a sendfile's copy path writes again soon
  if (closing_) {
    ++conn_lost_;
    schedule_connection_lost(nullptr);
  } else if (eof_ && sock_) {
    ::shutdown(fd_, SHUT_WR);
  }
}

// ---- writing ---------------------------------------------------------------------------------------

bool SocketTransport::dropped_write() noexcept {
  if (!conn_lost_ && sock_) return false;
  if (conn_lost_ >= kLogThresholdForConnlostWrites) log(LogLevel::warning, "socket.send() raised exception.");
  ++conn_lost_;
  return true;
}

void SocketTransport::write(std::string_view data) {
  if (eof_) throw RuntimeError("Cannot call write() after write_eof()");
  if (sendfile_busy_) throw RuntimeError("unable to write; sendfile is in progress");
  write_data(data);
}

void SocketTransport::write_for_sendfile(std::string_view data) { write_data(data); }

// Inlined into write(): the hot path of every transport write.
void SocketTransport::write_data(std::string_view data) {
  if (data.empty()) return;
  if (dropped_write()) return;
  if (wbuf_.empty()) {
    // The fast path: straight to the kernel; only what it does not take is copied.
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (!would_block(errno)) {
        fatal_error(os_error(errno, "send"), "Fatal write error on socket transport");
        return;
      }
      n = 0;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    if (data.empty()) return;
    wbuf_.append(data);
    update_interest();
  } else {
    wbuf_.append(data);
  }
  maybe_pause_protocol();
}

void SocketTransport::write_chunks(std::span<const std::string_view> chunks) {
  if (eof_) throw RuntimeError("Cannot call write() after write_eof()");
  if (sendfile_busy_) throw RuntimeError("unable to write; sendfile is in progress");
  std::size_t total = 0;
  for (auto c : chunks) total += c.size();
  if (total == 0) return;
  if (dropped_write()) return;
  std::size_t i = 0;
  if (wbuf_.empty()) {
    constexpr std::size_t kMaxIov = 64;
    while (i < chunks.size()) {
      iovec iov[kMaxIov];
      std::size_t count = 0, batch = 0;
      for (std::size_t j = i; j < chunks.size() && count < kMaxIov; ++j) {
        if (chunks[j].empty()) continue;
        iov[count].iov_base = const_cast<char*>(chunks[j].data());
        iov[count].iov_len = chunks[j].size();
        batch += chunks[j].size();
        ++count;
      }
      if (count == 0) return;
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (!would_block(errno)) {
          fatal_error(os_error(errno, "sendmsg"), "Fatal write error on socket transport");
          return;
        }
        n = 0;
      }
      std::size_t sent = static_cast<std::size_t>(n);
      // Skip what went out; the chunk it stopped in is buffered from that point.
      while (i < chunks.size() && sent >= chunks[i].size()) {
        sent -= chunks[i].size();
        ++i;
      }
      if (static_cast<std::size_t>(n) < batch) {
        wbuf_.append(chunks[i].substr(sent));
        ++i;
        break;
      }
    }
  }
  for (; i < chunks.size(); ++i) wbuf_.append(chunks[i]);
  if (wbuf_.empty()) return;
  update_interest();
  maybe_pause_protocol();
}

void SocketTransport::write_eof() {
  if (closing_ || eof_) return;
  eof_ = true;
  if (wbuf_.empty() && !sendfile_busy_ && sock_) ::shutdown(fd_, SHUT_WR);
}

void SocketTransport::set_write_buffer_limits(std::optional<std::ptrdiff_t> high, std::optional<std::ptrdiff_t> low) {
  std::tie(low_, high_) = write_buffer_limits(high, low);
  maybe_pause_protocol();
}

void SocketTransport::maybe_pause_protocol() noexcept {
  if (wbuf_.size() <= high_ || protocol_paused_) return;
  protocol_paused_ = true;
  try {
    protocol_->pause_writing();
  } catch (...) {
    loop_->call_exception_handler({"protocol.pause_writing() failed", std::current_exception(), {}, {}});
  }
}

void SocketTransport::maybe_resume_protocol() noexcept {
  if (!protocol_paused_ || wbuf_.size() > low_) return;
  protocol_paused_ = false;
  try {
    protocol_->resume_writing();
  } catch (...) {
    loop_->call_exception_handler({"protocol.resume_writing() failed", std::current_exception(), {}, {}});
  }
}

// ---- reading control -------------------------------------------------------------------------------

void SocketTransport::pause_reading() {
  if (closing_ || paused_) return;
  paused_ = true;
  update_interest();
}

void SocketTransport::resume_reading() {
  if (closing_ || !paused_) return;
  paused_ = false;
  update_interest();
}

// ---- closing ---------------------------------------------------------------------------------------

void SocketTransport::close() {
  if (closing_) return;
  closing_ = true;
  if (wbuf_.empty() && !sendfile_busy_) {  // (a file is sent only while sendfile_busy_)
    ++conn_lost_;
    update_interest();
    schedule_connection_lost(nullptr);
  } else {
    update_interest();  // stop reading; the buffer (and a file being sent) drains, then connection_lost
  }
}

void SocketTransport::abort() { force_close(nullptr); }

void report_fatal_error(EventLoop& loop, const std::exception_ptr& exc, const char* message) noexcept {
  if (!is_os_error(exc)) {
    loop.call_exception_handler({message, exc, {}, {}});
  } else if (loop.get_debug()) {
    try {
      log(LogLevel::debug, std::string(message) + ": " + describe_exception(exc));
    } catch (...) {
    }
  }
}

void SocketTransport::fatal_error(std::exception_ptr exc, const char* message) noexcept {
  report_fatal_error(*loop_, exc, message);
  force_close(exc);
}

void SocketTransport::force_close(std::exception_ptr exc) noexcept {
  if (conn_lost_) return;
  wbuf_.clear();
  fail_sendfile(exc);
  closing_ = true;
  ++conn_lost_;
  update_interest();
  schedule_connection_lost(std::move(exc));
}

void SocketTransport::schedule_connection_lost(std::exception_ptr exc) noexcept {
  if (!self_) return;  // already scheduled, or never started
  try {
    loop_->call_soon([self = std::move(self_), exc]() { self->call_connection_lost(exc); });
  } catch (...) {
    // The loop is closed: nothing will ever call back. Finish here.
    auto keep = std::move(self_);
    call_connection_lost(exc);
  }
}

void SocketTransport::unhook() noexcept {
  if (hooked_) {
    hooked_ = false;
    loop_->remove_close_hook(this);
  }
}

void SocketTransport::loop_closing() noexcept {
  hooked_ = false;  // the loop unregistered us
  auto keep = std::move(self_);  // may be the last reference: released at the very end
  wbuf_.clear();
  file_send_.reset();  // the loop is closing: its tasks go without being woken
  empty_waiter_ = {};
  closing_ = true;
  ++conn_lost_;
  reading_ = false;
  update_interest();
  sock_.close();
  protocol_.reset();  // no connection_lost: no loop will run anything any more
  stream_ = nullptr;
  plain_ = nullptr;
  buffered_ = nullptr;
  if (server_) {
    auto server = std::move(server_);
    server->detach(this);
  }
}

void SocketTransport::call_connection_lost(std::exception_ptr exc) noexcept {
  unhook();
  if (protocol_connected_ && protocol_) {
    try {
      protocol_->connection_lost(exc);
    } catch (...) {
      loop_->call_exception_handler({"Exception in protocol.connection_lost()", std::current_exception(), {}, {}});
    }
  }
  wbuf_.clear();
  fail_sendfile(exc);
  reading_ = false;
  update_interest();  // unregister before the descriptor closes
  sock_.close();
  wbuf_.shrink();
  protocol_.reset();
  stream_ = nullptr;
  plain_ = nullptr;
  buffered_ = nullptr;
  if (server_) {
    auto server = std::move(server_);
    server->detach(this);
  }
}

std::pair<std::size_t, std::size_t> write_buffer_limits(std::optional<std::ptrdiff_t> high,
                                                        std::optional<std::ptrdiff_t> low) {
  if (!high) {
    // 4 × low, saturated where Python's ints would just grow.
    constexpr std::ptrdiff_t kMax = std::numeric_limits<std::ptrdiff_t>::max() / 4;
    high = !low ? 64 * 1024 : 4 * std::clamp(*low, -kMax, kMax);
  }
  // Python's floor division, so that the message names the same low mark for a negative high.
  if (!low) low = *high / 4 - (*high % 4 < 0 ? 1 : 0);
  if (!(*high >= *low && *low >= 0))
    throw ValueError("high (" + std::to_string(*high) + ") must be >= low (" + std::to_string(*low) + ") must be >= 0");
  return {static_cast<std::size_t>(*low), static_cast<std::size_t>(*high)};
}

Coro<void> wait_until_started(BaseTransport& transport, Future<void> waiter) {
  std::exception_ptr err;
  try {
    co_await waiter;
  } catch (...) {
    err = std::current_exception();
  }
  if (err) {
    // A cancellation that came in after the waiter failed left its error unretrieved.
    abandon_future(waiter);
    transport.close();
    std::rethrow_exception(err);
  }
}

void abandon_future(Future<void>& future) noexcept {
  try {
    if (!future.cancel() && !future.cancelled()) (void)future.exception();
  } catch (...) {
  }
}

}  // namespace detail
}  // namespace asyncio
