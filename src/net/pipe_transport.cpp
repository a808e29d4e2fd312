// SPDX-License-Identifier: MIT
// The pipe transports: Python's _UnixReadPipeTransport and _UnixWritePipeTransport on the loop's
// fd listener.
#include "net/pipe_transport.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <tuple>

#include "asyncio/log.hpp"
#include "net/net_internal.hpp"
#include "os/pipe_io.hpp"

namespace asyncio::detail {

namespace {

bool watchable(os::FileKind kind) noexcept {
  return kind == os::FileKind::fifo || kind == os::FileKind::socket || kind == os::FileKind::char_device;
}

}  // namespace

PipeTransport::PipeTransport(EventLoop& loop, int fd, PipeDirection direction,
                             std::shared_ptr<StreamProtocolBase> protocol)
    : loop_(&loop), fd_(fd), direction_(direction), sigpipe_ignored_(os::sigpipe_ignored()) {
  os::FileKind kind = os::file_kind(fd);
  if (kind == os::FileKind::bad) throw ValueError("Pipe transport: bad file descriptor " + std::to_string(fd));
  if (!watchable(kind)) throw ValueError("Pipe transport is only for pipes, sockets and character devices");
  // A write end learns that the reader went away from an error event, which Linux reports for
  // FIFOs and sockets (asyncio's "reader trick"); a terminal's readability means input, not that.
  watch_peer_ = direction == PipeDirection::write && kind != os::FileKind::char_device;
  if (direction == PipeDirection::write && kind == os::FileKind::fifo) capacity_ = os::pipe_capacity(fd);
  os::set_nonblocking(fd);
  set_protocol(std::move(protocol));
}

PipeTransport::~PipeTransport() {
  if (hooked_) loop_->remove_close_hook(this);
  if (interest_ != 0 && !loop_->is_closed()) {
    try {
      loop_->set_fd_listener(fd_, nullptr, 0);
    } catch (...) {
    }
  }
  close_fd();
}

std::shared_ptr<PipeTransport> open_pipe_transport(EventLoop& loop, int fd, PipeDirection direction,
                                                   std::shared_ptr<StreamProtocolBase> protocol, Future<void> waiter) {
  std::shared_ptr<PipeTransport> t;
  try {
    t = std::make_shared<PipeTransport>(loop, fd, direction, std::move(protocol));
  } catch (...) {
    if (fd >= 0) os::close_fd(fd);
    throw;
  }
  t->start(std::move(waiter));
  return t;
}

void PipeTransport::start(Future<void> waiter) {
  self_ = std::static_pointer_cast<PipeTransport>(BaseTransport::shared_from_this());
  loop_->add_close_hook(this);
  hooked_ = true;
  schedule_start(*loop_, self_, std::move(waiter));
}

void PipeTransport::make_connection() {
  if (!stream_ || conn_lost_) return;
  protocol_connected_ = true;
  stream_->connection_made(*this);
}

void PipeTransport::begin_io() noexcept {
  started_ = true;
  update_interest();
}

std::any PipeTransport::get_extra_info(std::string_view name, std::any default_value) const {
  if (name == "pipe") return fd_ >= 0 ? std::any(fd_) : default_value;
  return default_value;
}

void PipeTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  protocol_ = std::move(protocol);
  stream_ = dynamic_cast<StreamProtocolBase*>(protocol_.get());
  buffered_ = dynamic_cast<BufferedProtocol*>(protocol_.get());
  plain_ = buffered_ ? nullptr : dynamic_cast<Protocol*>(protocol_.get());
}

void PipeTransport::require(PipeDirection direction, const char* call) const {
  if (direction_ != direction)
    throw RuntimeError(std::string(call) + " on a " + (reader() ? "read" : "write") + " pipe transport");
}

// ---- readiness -------------------------------------------------------------------------------------

void PipeTransport::update_interest() noexcept {
  std::uint32_t want = 0;
  if (started_ && !closing_ && reader() && !paused_) want |= poll_readable;
  if (started_ && !conn_lost_ && watch_peer_) want |= poll_readable;
  if (!wbuf_.empty() && !conn_lost_) want |= poll_writable;
  if (writable_lingers_ && !conn_lost_ && !closing_) want |= poll_writable;
  if (want == interest_) return;
  try {
    loop_->set_fd_listener(fd_, this, want);
    interest_ = want;
  } catch (...) {
    interest_ = 0;  // a broken epoll set or a closed loop: nobody to tell
  }
}

void PipeTransport::on_fd_ready(std::uint32_t events) noexcept {
  if (reader()) {
    if ((events & (poll_readable | poll_error)) && (interest_ & poll_readable)) read_ready();
    return;
  }
  if ((events & poll_writable) && (interest_ & poll_writable)) write_ready();
  // The write end of a pipe is never readable: an event here says the reader has gone.
  if ((events & (poll_readable | poll_error)) && (interest_ & poll_readable) && !conn_lost_) peer_closed();
}

void PipeTransport::read_ready() noexcept {
  char* buf;
  std::size_t size;
  if (buffered_) {
    try {
      std::span<char> span = buffered_->get_buffer(0);
      if (span.empty()) throw RuntimeError("get_buffer() returned an empty buffer");
      buf = span.data();
      size = span.size();
    } catch (...) {
      fatal_error(std::current_exception(), "Fatal error: protocol failed to allocate a buffer.");
      return;
    }
  } else {
    buf = shared_read_buffer();
    size = kMaxRead;
  }
  ssize_t n = ::read(fd_, buf, size);
  if (n < 0) {
    if (!would_block(errno)) fatal_error(os_error(errno, "read"), "Fatal read error on pipe transport");
    return;
  }
  if (n == 0) {
    // The writer closed its end: EOF, then the transport closes (a pipe has no half-close).
    if (loop_->get_debug()) log(LogLevel::info, "pipe transport was closed by peer");
    closing_ = true;
    update_interest();
    try {
      if (stream_) stream_->eof_received();
    } catch (...) {
      report_fatal_error(*loop_, std::current_exception(), "Fatal error: protocol.eof_received() call failed.");
    }
    close_now(nullptr);
    return;
  }
  try {
    if (buffered_)
      buffered_->buffer_updated(static_cast<std::size_t>(n));
    else if (plain_)
      plain_->data_received(std::string_view(buf, static_cast<std::size_t>(n)));
  } catch (...) {
    fatal_error(std::current_exception(), "Fatal error: protocol.data_received() call failed.");
  }
}

void PipeTransport::peer_closed() noexcept {
  if (wbuf_.empty())
    close_now(nullptr);
  else
    close_now(os_error(EPIPE, "write"));
}

void PipeTransport::write_ready() noexcept {
  pipe_full_ = false;
  if (wbuf_.empty()) {  // the lingering interest found nothing to write: drop it now
    writable_lingers_ = false;
    update_interest();
    return;
  }
  iovec iov{const_cast<char*>(wbuf_.data()), wbuf_.size()};
  ssize_t n = os::write_quiet(fd_, &iov, 1, sigpipe_ignored_);
  if (n < 0) {
    if (would_block(errno)) return;
    int err = errno;
    wbuf_.clear();
    ++conn_lost_;
    update_interest();
    fatal_error(os_error(err, "write"), "Fatal write error on pipe transport");
    return;
  }
  wbuf_.consume(static_cast<std::size_t>(n));
  if (!wbuf_.empty()) return;
  writable_lingers_ = true;
  pipe_full_ = capacity_ > 0 && static_cast<std::size_t>(n) >= capacity_;
  update_interest();
  maybe_resume_protocol();  // may write, close or abort
  if (closing_ && wbuf_.empty()) close_now(nullptr);  // write_eof() or close() was waiting for it
}

// ---- writing ---------------------------------------------------------------------------------------

bool PipeTransport::dropped_write() noexcept {
  if (!conn_lost_ && !closing_) return false;
  if (conn_lost_ >= kLogThresholdForConnlostWrites) log(LogLevel::warning, "pipe closed by peer or os.write(pipe, data) raised exception.");
  ++conn_lost_;
  return true;
}

void PipeTransport::write(std::string_view data) {
  require(PipeDirection::write, "write()");
  if (data.empty() || dropped_write()) return;
  iovec iov{const_cast<char*>(data.data()), data.size()};
  write_iov(&iov, 1, data.size());
}

void PipeTransport::write_chunks(std::span<const std::string_view> chunks) {
  require(PipeDirection::write, "writelines()");
  constexpr std::size_t kMaxIov = 64;
  while (!chunks.empty()) {
    iovec iov[kMaxIov];
    int count = 0;
    std::size_t total = 0;
    for (; !chunks.empty() && count < static_cast<int>(kMaxIov); chunks = chunks.subspan(1)) {
      if (chunks.front().empty()) continue;
      iov[count++] = {const_cast<char*>(chunks.front().data()), chunks.front().size()};
      total += chunks.front().size();
    }
    if (count == 0 || dropped_write()) return;
    write_iov(iov, count, total);
  }
}

/// Writes at once when nothing is queued; buffers what the pipe did not take.
void PipeTransport::write_iov(const struct iovec* iov, int count, std::size_t total) {
  std::size_t sent = 0;
  if (wbuf_.empty() && !pipe_full_) {
    ssize_t n = os::write_quiet(fd_, iov, count, sigpipe_ignored_);
    if (n < 0) {
      if (!would_block(errno)) {
        ++conn_lost_;
        fatal_error(os_error(errno, "write"), "Fatal write error on pipe transport");
        return;
      }
      n = 0;
    }
    sent = static_cast<std::size_t>(n);
    if (sent == total) return;
  }
  for (int i = 0; i < count; ++i) {
    std::string_view chunk(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    if (sent >= chunk.size()) {
      sent -= chunk.size();
      continue;
    }
    wbuf_.append(chunk.substr(sent));
    sent = 0;
  }
  update_interest();
  maybe_pause_protocol();
}

void PipeTransport::write_eof() {
  require(PipeDirection::write, "write_eof()");
  if (closing_) return;
  closing_ = true;
  if (wbuf_.empty()) close_now(nullptr);  // else write_ready() does it once the buffer is out
}

void PipeTransport::set_write_buffer_limits(std::optional<std::ptrdiff_t> high, std::optional<std::ptrdiff_t> low) {
  require(PipeDirection::write, "set_write_buffer_limits()");
  flow_.set_limits(high, low);
  maybe_pause_protocol();
}

// ---- reading control -------------------------------------------------------------------------------

void PipeTransport::pause_reading() {
  require(PipeDirection::read, "pause_reading()");
  if (closing_ || paused_) return;
  paused_ = true;
  update_interest();
}

void PipeTransport::resume_reading() {
  require(PipeDirection::read, "resume_reading()");
  if (closing_ || !paused_) return;
  paused_ = false;
  update_interest();
}

// ---- closing ---------------------------------------------------------------------------------------

void PipeTransport::close() {
  if (closing_) return;
  if (reader())
    close_now(nullptr);
  else
    write_eof();  // what is buffered is written first
}

void PipeTransport::abort() { close_now(nullptr); }

void PipeTransport::fatal_error(std::exception_ptr exc, const char* message) noexcept {
  report_fatal_error(*loop_, exc, message);
  close_now(std::move(exc));
}

void PipeTransport::close_now(std::exception_ptr exc) noexcept {
  closing_ = true;
  wbuf_.clear();
  writable_lingers_ = false;
  if (!self_) {  // connection_lost already scheduled, or never started
    update_interest();
    return;
  }
  ++conn_lost_;
  update_interest();
  try {
    loop_->call_soon([self = std::move(self_), exc]() { self->call_connection_lost(exc); });
  } catch (...) {
    // The loop is closed: nothing will ever call back. Finish here.
    call_connection_lost(exc);
  }
}

void PipeTransport::loop_closing() noexcept {
  hooked_ = false;  // the loop unregistered us
  auto keep = std::move(self_);  // may be the last reference: released at the very end
  wbuf_.clear();
  writable_lingers_ = false;
  closing_ = true;
  ++conn_lost_;
  started_ = false;
  update_interest();
  close_fd();
  protocol_.reset();  // no connection_lost: no loop will run anything any more
  stream_ = nullptr;
  plain_ = nullptr;
  buffered_ = nullptr;
}

void PipeTransport::call_connection_lost(std::exception_ptr exc) noexcept {
  if (hooked_) {
    hooked_ = false;
    loop_->remove_close_hook(this);
  }
  closing_ = true;
  started_ = false;
  wbuf_.clear();
  update_interest();  // unregister before the descriptor closes
  if (protocol_connected_ && protocol_) {
    try {
      protocol_->connection_lost(exc);
    } catch (...) {
      loop_->call_exception_handler({"Exception in protocol.connection_lost()", std::current_exception(), {}, {}});
    }
  }
  close_fd();
  wbuf_.shrink();
  protocol_.reset();
  stream_ = nullptr;
  plain_ = nullptr;
  buffered_ = nullptr;
}

void PipeTransport::close_fd() noexcept {
  if (fd_ < 0) return;
  os::close_fd(fd_);
  fd_ = -1;
}

}  // namespace asyncio::detail
