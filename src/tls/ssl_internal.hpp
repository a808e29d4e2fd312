// SPDX-License-Identifier: MIT
// Private to the networking sources: the TLS layer between a socket transport and the
// application's protocol (Python's asyncio/sslproto.py).
//
//   socket transport ──ciphertext──▶ SSLProtocol ──plaintext──▶ application protocol
//                    ◀─────────────             ◀── SSLTransport (what the application holds)
//
// OpenSSL runs on two memory BIOs: what the socket delivers is written into the read BIO, what
// OpenSSL produces is taken from the write BIO and written to the socket transport. The socket
// transport owns the SSLProtocol; the SSLProtocol owns the SSLTransport, which only points back
// (weakly): a handle the application keeps after the connection is gone becomes inert.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "asyncio/future.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/protocols.hpp"
#include "asyncio/ssl.hpp"
#include "asyncio/transports.hpp"

struct bio_st;  // OpenSSL's BIO

namespace asyncio::detail {

/// The error OpenSSL's queue describes (SSLError, or SSLCertVerificationError when `ssl` failed
/// to verify its peer); clears the queue.
std::exception_ptr ssl_error(const std::string& what, ssl_st* ssl);
[[noreturn]] void throw_ssl_error(const std::string& what);

/// Python's checks of ssl_handshake_timeout and ssl_shutdown_timeout: ValueError unless each is
/// a positive number (+inf: no limit).
void check_ssl_timeouts(double handshake_timeout, double shutdown_timeout);

struct SSLOptions {
  ssl::SSLContext context;
  bool server_side = false;
  std::string server_hostname;
  double handshake_timeout = 60.0;
  double shutdown_timeout = 30.0;
  /// False for start_tls: the application's protocol already had its connection_made.
  bool call_connection_made = true;
};

class SSLTransport;

class SSLProtocol final : public Protocol, public std::enable_shared_from_this<SSLProtocol> {
 public:
  /// `waiter` (may be empty) completes once the handshake is done and the application's
  /// connection_made ran, or fails with the handshake's error.
  SSLProtocol(EventLoop& loop, std::shared_ptr<StreamProtocolBase> app, SSLOptions options, Future<void> waiter);
  ~SSLProtocol() override;

  /// The application's transport (null until connection_made).
  std::shared_ptr<Transport> app_transport() const;

  // ---- events from the socket transport ----
  void connection_made(Transport& transport) override;
  void data_received(std::string_view data) override;
  bool eof_received() override;
  void connection_lost(std::exception_ptr exc) override;
  void pause_writing() override;
  void resume_writing() override;

 private:
  friend class SSLTransport;
  enum class State { handshake, wrapped, shutdown, closed };

  void set_app_protocol(std::shared_ptr<BaseProtocol> app);
  void do_handshake();
  void handshake_done();
  void fail_handshake(std::exception_ptr exc);
  void read_plaintext();
  /// Encrypts `data` (after any backlog) and, with `flush_now`, hands the records to the socket.
  void write_plaintext(std::string_view data, bool flush_now = true);
  /// Retries the backlog; true once it is empty.
  bool write_backlog();
  /// SSL_write of `rest` until all is taken (true), OpenSSL wants to read first (false, `rest`
  /// is what is left), or the connection failed (false, `rest` empty).
  bool encrypt(std::string_view& rest);
  void peer_closed();
  void start_shutdown();
  /// In the shutdown state: reads (and drops) what the peer still sends until its close_notify,
  /// then closes the connection.
  void read_until_close_notify();
  void finish_shutdown();
  void abort_connection(std::exception_ptr exc);
  void fatal_error(std::exception_ptr exc, const char* message);
  /// pause_writing / resume_writing passed on to the application (once it is connected).
  void forward_flow_control(void (BaseProtocol::*event)(), const char* failure);
  void flush();
  void cancel_timers();
  std::any extra_info(std::string_view name) const;

  EventLoop* loop_;
  SSLOptions options_;
  Future<void> waiter_;
  ssl_st* ssl_ = nullptr;
  bio_st* rbio_ = nullptr;  // owned by ssl_
  bio_st* wbio_ = nullptr;  // owned by ssl_
  Transport* transport_ = nullptr;  // the socket transport, from connection_made to connection_lost
  std::shared_ptr<StreamProtocolBase> app_;
  Protocol* app_plain_ = nullptr;
  BufferedProtocol* app_buffered_ = nullptr;
  std::shared_ptr<SSLTransport> app_transport_;
  std::exception_ptr lost_exc_;  // why we aborted, for connection_lost
  std::vector<char> rbuf_;       // plaintext for a Protocol (a BufferedProtocol brings its own)
  std::string out_;              // ciphertext on its way to the socket transport
  TimerHandle handshake_timer_;
  TimerHandle shutdown_timer_;
  State state_ = State::handshake;
  std::string backlog_;           // plaintext SSL_write could not take yet (a renegotiation runs)
  int lost_writes_ = 0;
  bool socket_paused_ = false;   // the socket transport's last flow-control word was pause_writing
  bool app_connected_ = false;
  bool flushing_ = false;
};

/// The transport the application sees on a TLS connection.
class SSLTransport final : public Transport {
 public:
  explicit SSLTransport(std::weak_ptr<SSLProtocol> protocol) noexcept : p_(std::move(protocol)) {}

  std::any get_extra_info(std::string_view name, std::any default_value) const override;
  /// Also true once the connection underneath is failing or gone: a writer stops at once (drain()
  /// raises) instead of sending into a connection the peer has reset.
  bool is_closing() const noexcept override;
  void close() override;
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
  std::shared_ptr<BaseProtocol> get_protocol() const override;
  bool is_reading() const noexcept override;
  void pause_reading() override;
  void resume_reading() override;
  void write(std::string_view data) override;
  /// TLS has no half-close (RuntimeError, as Python's NotImplementedError).
  void write_eof() override;
  bool can_write_eof() const noexcept override { return false; }
  void abort() override;
  std::size_t get_write_buffer_size() const noexcept override;
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override;
  void set_write_buffer_limits(std::optional<std::ptrdiff_t> high, std::optional<std::ptrdiff_t> low) override;
  /// The socket transport underneath (null once the connection is gone).
  Transport* socket_transport() const noexcept;

 protected:
  void write_chunks(std::span<const std::string_view> chunks) override;

 private:
  friend class SSLProtocol;
  std::weak_ptr<SSLProtocol> p_;
  bool closed_ = false;
};

/// The protocol that goes on the socket transport: `app` itself, or `app` behind a new TLS layer.
std::shared_ptr<StreamProtocolBase> wrap_for_ssl(EventLoop& loop, std::shared_ptr<StreamProtocolBase> app,
                                                 const std::optional<SSLOptions>& ssl, Future<void> handshake_waiter);

}  // namespace asyncio::detail
