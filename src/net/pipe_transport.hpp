// SPDX-License-Identifier: MIT
// Private to the library: the pipe transports (Python's _UnixReadPipeTransport and
// _UnixWritePipeTransport), for connect_read_pipe / connect_write_pipe and the subprocess layer.
#pragma once

#include <memory>

#include "asyncio/detail/byte_buffer.hpp"
#include "asyncio/future.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/transports.hpp"
#include "net/net_internal.hpp"

namespace asyncio::detail {

enum class PipeDirection { read, write };

/// One end of a pipe (or a socket or character device used as one), driven by the loop's fd
/// listener. It owns the descriptor and closes it after connection_lost. A read pipe is a
/// Transport whose writing calls throw RuntimeError; a write pipe one whose reading calls do.
class PipeTransport final : public Transport, private FdListener, private CloseHook {
 public:
  /// Takes `fd` (made non-blocking here). ValueError, and `fd` left open, for a regular file or
  /// a bad descriptor.
  PipeTransport(EventLoop& loop, int fd, PipeDirection direction, std::shared_ptr<StreamProtocolBase> protocol);
  ~PipeTransport() override;

  /// Schedules connection_made (then watching starts); completes `waiter`, if any, after it.
  void start(Future<void> waiter);

  std::any get_extra_info(std::string_view name, std::any default_value) const override;
  bool is_closing() const noexcept override { return closing_; }
  void close() override;
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
  std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }

  bool is_reading() const noexcept override { return reader() && !paused_ && !closing_; }
  void pause_reading() override;
  void resume_reading() override;
  void write(std::string_view data) override;
  void write_eof() override;
  bool can_write_eof() const noexcept override { return !reader(); }
  void abort() override;
  std::size_t get_write_buffer_size() const noexcept override { return wbuf_.size(); }
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override { return flow_.limits(); }
  void set_write_buffer_limits(std::optional<std::ptrdiff_t> high, std::optional<std::ptrdiff_t> low) override;

 protected:
  void write_chunks(std::span<const std::string_view> chunks) override;

 private:
  bool reader() const noexcept { return direction_ == PipeDirection::read; }
  void require(PipeDirection direction, const char* call) const;
  void on_fd_ready(std::uint32_t events) noexcept override;
  void loop_closing() noexcept override;
  void read_ready() noexcept;
  void write_ready() noexcept;
  void peer_closed() noexcept;
  bool dropped_write() noexcept;
  void write_iov(const struct iovec* iov, int count, std::size_t total);
  void fatal_error(std::exception_ptr exc, const char* message) noexcept;
  /// Python's _close: stop everything, drop the buffer, connection_lost(exc) soon.
  void close_now(std::exception_ptr exc) noexcept;
  void call_connection_lost(std::exception_ptr exc) noexcept;
  void maybe_pause_protocol() noexcept { flow_.maybe_pause(wbuf_.size(), protocol_.get(), *loop_); }
  void maybe_resume_protocol() noexcept { flow_.maybe_resume(wbuf_.size(), protocol_.get(), *loop_); }
  template <class T>
  friend void ::asyncio::detail::schedule_start(EventLoop& loop, std::shared_ptr<T> self, Future<void> waiter);
  void make_connection();
  void begin_io() noexcept;
  void update_interest() noexcept;
  void close_fd() noexcept;

  EventLoop* loop_;
  int fd_;
  PipeDirection direction_;
  bool watch_peer_;   // a write end that learns of the reader's departure from readiness
  bool sigpipe_ignored_;
  std::shared_ptr<BaseProtocol> protocol_;
  StreamProtocolBase* stream_ = nullptr;
  Protocol* plain_ = nullptr;
  BufferedProtocol* buffered_ = nullptr;
  std::shared_ptr<PipeTransport> self_;  // the loop's reference, until connection_lost
  ByteBuffer wbuf_;
  WriteFlow flow_;
  std::uint32_t interest_ = 0;
  int conn_lost_ = 0;
  bool started_ = false;     // connection_made ran: watching may start
  bool closing_ = false;
  bool paused_ = false;      // pause_reading()
  bool protocol_connected_ = false;
  bool hooked_ = false;
  // Writing without wasted calls. A write end keeps EPOLLOUT registered after its buffer empties
  // until a writable event finds nothing to write (the next write() that has to buffer then needs
  // no epoll_ctl); and after write_ready() put a whole pipe's worth in at once, the pipe is full,
  // so write() buffers at once instead of a write() that would fail with EAGAIN.
  std::size_t capacity_ = 0;       // the pipe's size in bytes (0: not a pipe)
  bool writable_lingers_ = false;  // EPOLLOUT still wanted with an empty buffer
  bool pipe_full_ = false;         // no room until the next writable event
};

/// Makes and starts a pipe transport for `fd` with `protocol`; `waiter` completes after
/// connection_made. ValueError for a regular file or a bad descriptor (`fd` is closed then).
std::shared_ptr<PipeTransport> open_pipe_transport(EventLoop& loop, int fd, PipeDirection direction,
                                                   std::shared_ptr<StreamProtocolBase> protocol, Future<void> waiter);

}  // namespace asyncio::detail
