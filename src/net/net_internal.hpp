// SPDX-License-Identifier: MIT
// Private to the networking sources: the socket transport and the server's shared state.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "asyncio/detail/byte_buffer.hpp"
#include "asyncio/future.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/transports.hpp"

namespace asyncio::detail {

class ServerCore;

/// Python's _SelectorSocketTransport: a stream socket driven by the loop's fd listener.
class SocketTransport final : public Transport, private FdListener, private CloseHook {
 public:
  /// `peername` is passed when known (accept gives it for free).
  SocketTransport(EventLoop& loop, Socket sock, std::shared_ptr<StreamProtocolBase> protocol,
                  std::shared_ptr<ServerCore> server, const SocketAddress* peername);
  ~SocketTransport() override;

  /// Schedules connection_made (then reading starts); completes `waiter`, if any, after it.
  void start(Future<void> waiter);

  std::any get_extra_info(std::string_view name, std::any default_value) const override;
  bool is_closing() const noexcept override { return closing_; }
  void close() override;
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
  std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }

  bool is_reading() const noexcept override { return !paused_ && !closing_; }
  void pause_reading() override;
  void resume_reading() override;
  void write(std::string_view data) override;
  void write_eof() override;
  bool can_write_eof() const noexcept override { return true; }
  void abort() override;
  std::size_t get_write_buffer_size() const noexcept override { return wbuf_.size(); }
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override { return {low_, high_}; }
  void set_write_buffer_limits(std::optional<std::ptrdiff_t> high, std::optional<std::ptrdiff_t> low) override;

  // ---- asyncio::sendfile (the transport side; net/transport_sendfile.cpp and streams/sendfile.cpp drive it) ----
  /// A regular file the transport sends with sendfile(2) once its write buffer is empty.
  struct FileSend {
    int fd = -1;
    std::int64_t offset = 0;  // the next byte of the file to send
    std::size_t left = 0;     // bytes still to send
    std::size_t sent = 0;
    Future<void> done;        // result: all sent; exception: the send failed or the connection was lost
  };
  /// Refuses write() (RuntimeError) until end_sendfile(), as Python does while a sendfile runs.
  /// RuntimeError if the transport is closing or another sendfile runs.
  void begin_sendfile();
  void end_sendfile() noexcept;
  /// The native path: sends `send` after the buffered data; completes send->done.
  void send_file(std::shared_ptr<FileSend> send);
  /// The copy path: a write that bypasses the guard, and a wait for the buffer to empty (fails
  /// if the connection is lost first).
  void write_for_sendfile(std::string_view data);
  Future<void> wait_write_buffer_empty();

 protected:
  void write_chunks(std::span<const std::string_view> chunks) override;

 private:
  void on_fd_ready(std::uint32_t events) noexcept override;
  /// The loop closes while the connection is open: close the socket, drop the protocol.
  void loop_closing() noexcept override;
  void unhook() noexcept;
  void read_ready() noexcept;
  void write_ready() noexcept;
  [[gnu::always_inline]] inline void write_data(std::string_view data);
  /// Sends from the file of a running send_file() until the socket is full; false if it failed.
  bool send_file_ready() noexcept;
  /// The write side is idle (buffer empty, no file to send): wakes wait_write_buffer_empty().
  void write_side_idle() noexcept;
  /// The connection is going away: fails the sendfile's waits with `exc` (or a reset).
  void fail_sendfile(std::exception_ptr exc) noexcept;
  bool write_side_busy() const noexcept { return !wbuf_.empty() || file_send_; }
  /// recv() returned `n` <= 0: EOF, "would block" or a read error. Call it straight after
  /// recv(), while errno is recv's.
  void recv_failed(ssize_t n) noexcept;
  void on_eof() noexcept;
  /// Reports `exc` (OS errors only in debug mode, as asyncio) and closes at once.
  void fatal_error(std::exception_ptr exc, const char* message) noexcept;
  void force_close(std::exception_ptr exc) noexcept;
  void schedule_connection_lost(std::exception_ptr exc) noexcept;
  void call_connection_lost(std::exception_ptr exc) noexcept;
  void maybe_pause_protocol() noexcept;
  void maybe_resume_protocol() noexcept;
  /// Watches the socket for what the state needs now (read / write).
  void update_interest() noexcept;
  bool dropped_write() noexcept;

  EventLoop* loop_;
  Socket sock_;
  int fd_;
  std::shared_ptr<BaseProtocol> protocol_;
  StreamProtocolBase* stream_ = nullptr;
  Protocol* plain_ = nullptr;
  BufferedProtocol* buffered_ = nullptr;
  std::shared_ptr<SocketTransport> self_;  // the loop's reference, until connection_lost
  std::shared_ptr<ServerCore> server_;
  ByteBuffer wbuf_;
  std::shared_ptr<FileSend> file_send_;  // the file being sent after wbuf_, if any
  Future<void> empty_waiter_;            // wait_write_buffer_empty()'s, until the buffer empties
  std::size_t high_ = 64 * 1024;
  std::size_t low_ = 16 * 1024;
  SocketAddress peername_;
  SocketAddress sockname_;
  std::uint32_t interest_ = 0;
  int conn_lost_ = 0;
  bool closing_ = false;
  bool eof_ = false;             // write_eof() requested
  bool paused_ = false;          // pause_reading()
  bool read_eof_ = false;        // EOF received and the protocol kept the connection open
  bool reading_ = false;         // connection_made ran: reading may start
  bool protocol_paused_ = false;  // pause_writing() was called
  bool protocol_connected_ = false;
  bool hooked_ = false;  // registered as the loop's CloseHook
  bool sendfile_busy_ = false;  // begin_sendfile() .. end_sendfile(): write() is refused
};

/// The state every handle of one Server shares, and that its connections report to.
class ServerCore final : public std::enable_shared_from_this<ServerCore>, private CloseHook {
 public:
  ServerCore(EventLoop& loop, std::vector<Socket> sockets, ProtocolFactory factory, int backlog, bool keep_alive);
  ~ServerCore();
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  void start_serving();
  void close() noexcept;
  bool is_serving() const noexcept { return serving_; }
  bool is_closed() const noexcept { return closed_; }
  void attach(SocketTransport* t) { clients_.insert(t); }
  void detach(SocketTransport* t) noexcept;
  void close_clients();
  void abort_clients();
  std::size_t active_count() const noexcept { return clients_.size(); }
  /// Removes the Unix socket file on close if it is still the one we bound (Python 3.13).
  void set_unix_cleanup(std::string path);

  EventLoop* loop() const noexcept { return loop_; }
  const std::vector<Socket>& sockets() const noexcept { return sockets_; }

  // wait_closed / serve_forever bookkeeping (see Server).
  std::vector<Future<void>> waiters;
  bool woken = false;
  Future<void> serving_forever;

 private:
  class Listener;
  friend class Listener;
  void on_accepted(int fd, const Socket& listening, const SocketAddress& peer) noexcept;
  void wakeup() noexcept;
  void loop_closing() noexcept override { close(); }
  /// False once the loop is closed or gone: nothing may be unregistered from it then.
  bool loop_usable() const noexcept;

  EventLoop* loop_;
  std::vector<Socket> sockets_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  ProtocolFactory factory_;
  std::unordered_set<SocketTransport*> clients_;
  int backlog_;
  bool keep_alive_;
  bool serving_ = false;
  bool closed_ = false;
  bool hooked_ = false;
  std::string unix_path_;
  dev_t unix_dev_ = 0;
  ino_t unix_ino_ = 0;
};

/// Python's max_size for one read.
inline constexpr std::size_t kMaxRead = 256 * 1024;
/// After this many writes on a lost connection, each further one is logged (asyncio's
/// LOG_THRESHOLD_FOR_CONNLOST_WRITES).
inline constexpr int kLogThresholdForConnlostWrites = 5;

/// One read buffer (kMaxRead bytes) per thread for plain protocols: data_received gets a view of
/// it, valid during the call only, so every transport of the loop can share it.
char* shared_read_buffer();

/// A transport's non-blocking call found nothing to do: try again at the next readiness event.
inline bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

/// The std::system_error a failed system call becomes (asyncio raises OSError).
inline std::exception_ptr os_error(int err, const char* what) {
  return std::make_exception_ptr(std::system_error(err, std::system_category(), what));
}

/// True for an OS error (std::system_error): a network failure rather than a bug.
bool is_os_error(const std::exception_ptr& e) noexcept;

/// How a transport reports the error that ends its connection, as asyncio's _fatal_error: OS
/// errors (a peer's reset, a TLS failure) only in debug mode, anything else (a bug in a protocol
/// callback) to the loop's exception handler.
void report_fatal_error(EventLoop& loop, const std::exception_ptr& exc, const char* message) noexcept;

/// Python's _FlowControlMixin._set_write_buffer_limits: the (low, high) marks for the arguments of
/// set_write_buffer_limits, or ValueError.
std::pair<std::size_t, std::size_t> write_buffer_limits(std::optional<std::ptrdiff_t> high,
                                                        std::optional<std::ptrdiff_t> low);

/// Waits for a transport that start() scheduled to call its protocol's connection_made (the
/// `waiter` given to start()). If that fails, or the wait is cancelled, the transport is closed
/// before the error propagates, so a half-made connection never keeps its descriptor.
Coro<void> wait_until_started(BaseTransport& transport, Future<void> waiter);

/// For a future whose awaiter is gone: cancels it if pending, else marks its exception retrieved,
/// so that an error set later, or already set, is not logged as never retrieved.
void abandon_future(Future<void>& future) noexcept;

}  // namespace asyncio::detail
