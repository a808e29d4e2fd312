// SPDX-License-Identifier: MIT
// The TLS layer (see ssl_internal.hpp): SSLProtocol on the socket transport, SSLTransport for the
// application. States: handshake → wrapped → shutdown (close_notify sent, the socket closing) →
// closed (connection_lost ran). Python's sslproto also waits for the peer's close_notify before
// closing the socket; like most servers we send ours and close, bounded by shutdown_timeout.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <climits>
#include <system_error>

#include "asyncio/log.hpp"
#include "net/net_internal.hpp"
#include "tls/ssl_internal.hpp"

namespace asyncio::detail {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kLogThresholdForLostWrites = 5;  // asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::exception_ptr connection_error(int err, const std::string& what) {
  return std::make_exception_ptr(std::system_error(err, std::system_category(), what));
}

std::string format_timeout(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

}  // namespace

void check_ssl_timeouts(double handshake_timeout, double shutdown_timeout) {
  // Python's SSLProtocol: positive numbers only (NaN is none); +inf waits without a limit.
  if (!(handshake_timeout > 0))
    throw ValueError("ssl_handshake_timeout should be a positive number, got " + format_timeout(handshake_timeout));
  if (!(shutdown_timeout > 0))
    throw ValueError("ssl_shutdown_timeout should be a positive number, got " + format_timeout(shutdown_timeout));
}

namespace {

// Client side: SNI, and the name (or address) the certificate must carry.
void set_server_name(SSL* ssl, const ssl::SSLContext& ctx, const std::string& host) {
  if (host.empty()) {
    if (ctx.check_hostname()) throw ValueError("check_hostname requires server_hostname");
    return;
  }
  bool ip = is_ip_literal(host);
  if (!ip) SSL_set_tlsext_host_name(ssl, host.c_str());
  if (!ctx.check_hostname()) return;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  int ok = 1;
  if (ip) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  if (ok != 1) throw_ssl_error("server_hostname " + host);
}

}  // namespace

// ---- SSLProtocol: setting up ----------------------------------------------------------------------

SSLProtocol::SSLProtocol(EventLoop& loop, std::shared_ptr<StreamProtocolBase> app, SSLOptions options,
                         Future<void> waiter)
    : loop_(&loop), options_(std::move(options)), waiter_(std::move(waiter)) {
  check_ssl_timeouts(options_.handshake_timeout, options_.shutdown_timeout);
  set_app_protocol(std::move(app));
  ssl_ = SSL_new(options_.context.native());
  if (!ssl_) throw_ssl_error("SSL_new");
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (!rbio_ || !wbio_) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    SSL_free(ssl_);
    throw_ssl_error("BIO_new");
  }
  BIO_set_mem_eof_return(rbio_, -1);  // an empty read BIO means "more to come", not EOF
  SSL_set_bio(ssl_, rbio_, wbio_);
  if (options_.server_side) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    try {
      set_server_name(ssl_, options_.context, options_.server_hostname);
    } catch (...) {
      SSL_free(ssl_);
      throw;
    }
  }
}

SSLProtocol::~SSLProtocol() {
  cancel_timers();
  SSL_free(ssl_);
}

void SSLProtocol::set_app_protocol(std::shared_ptr<BaseProtocol> app) {
  auto stream = std::dynamic_pointer_cast<StreamProtocolBase>(app);
  if (app && !stream) throw ValueError("a TLS transport needs a Protocol or BufferedProtocol");
  app_ = std::move(stream);
  app_buffered_ = dynamic_cast<BufferedProtocol*>(app_.get());
  app_plain_ = app_buffered_ ? nullptr : dynamic_cast<Protocol*>(app_.get());
}

std::shared_ptr<Transport> SSLProtocol::app_transport() const { return app_transport_; }

void SSLProtocol::cancel_timers() {
  handshake_timer_.cancel();
  shutdown_timer_.cancel();
}

// ---- the handshake --------------------------------------------------------------------------------

void SSLProtocol::connection_made(Transport& transport) {
  transport_ = &transport;
  app_transport_ = std::make_shared<SSLTransport>(weak_from_this());
  std::weak_ptr<SSLProtocol> self = weak_from_this();
  handshake_timer_ = loop_->call_later(options_.handshake_timeout, [self] {
    auto p = self.lock();
    if (!p || p->state_ != State::handshake) return;
    p->fail_handshake(connection_error(ECONNABORTED, "SSL handshake is taking longer than " +
                                                         format_timeout(p->options_.handshake_timeout) +
                                                         " seconds: aborting the connection"));
  });
  do_handshake();
}

void SSLProtocol::do_handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
  std::exception_ptr failure;
  if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
    failure = ssl_error("SSL handshake failed", ssl_);
  flush();  // our next flight, or the alert that tells the peer why we stop
  if (failure)
    fail_handshake(failure);
  else if (r == 1)
    handshake_done();
}

void SSLProtocol::handshake_done() {
  state_ = State::wrapped;
  handshake_timer_.cancel();
  app_connected_ = true;
  try {
    if (options_.call_connection_made) app_->connection_made(*app_transport_);
  } catch (...) {
    auto exc = std::current_exception();
    if (waiter_ && !waiter_.done()) waiter_.set_exception(exc);
    fatal_error(exc, "Exception in protocol.connection_made()");
    return;
  }
  if (waiter_ && !waiter_.done()) waiter_.set_result();
  // The socket paused during the handshake, before the application could hear it: tell it now,
  // so that the resume_writing to come has its pause_writing.
  if (socket_paused_ && state_ == State::wrapped) forward_flow_control(&BaseProtocol::pause_writing, "protocol.pause_writing() failed");
  read_plaintext();  // application data that came with the handshake's last flight
}

void SSLProtocol::fail_handshake(std::exception_ptr exc) {
  state_ = State::closed;
  cancel_timers();
  lost_exc_ = exc;
  if (waiter_ && !waiter_.done()) {
    waiter_.set_exception(exc);
  } else if (loop_->get_debug()) {
    try {
      log(LogLevel::debug, "SSL handshake failed: " + describe_exception(exc));
    } catch (...) {
    }
  }
  if (transport_) transport_->close();  // after the alert, if any, went out
}

// ---- reading --------------------------------------------------------------------------------------

void SSLProtocol::data_received(std::string_view data) {
  if (state_ == State::closed) return;
  while (!data.empty()) {
    int n = BIO_write(rbio_, data.data(), static_cast<int>(std::min<std::size_t>(data.size(), INT_MAX)));
    if (n <= 0) return fatal_error(ssl_error("BIO_write", nullptr), "Fatal error on SSL transport");
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  if (state_ == State::handshake)
    do_handshake();  // reads what follows the handshake itself when it ends
  else if (state_ == State::wrapped)
    read_plaintext();
  else if (state_ == State::shutdown)
    read_until_close_notify();
}

void SSLProtocol::read_plaintext() {
  try {
    while (state_ == State::wrapped) {
      ERR_clear_error();
      int n;
      if (app_buffered_) {
        std::span<char> buf = app_buffered_->get_buffer(0);
        if (buf.empty()) throw RuntimeError("get_buffer() returned an empty buffer");
        n = SSL_read(ssl_, buf.data(), static_cast<int>(std::min<std::size_t>(buf.size(), INT_MAX)));
        if (n > 0) {
          app_buffered_->buffer_updated(static_cast<std::size_t>(n));
          continue;
        }
      } else {
        if (rbuf_.empty()) rbuf_.resize(kReadChunk);
        n = SSL_read(ssl_, rbuf_.data(), static_cast<int>(rbuf_.size()));
        if (n > 0) {
          if (app_plain_) app_plain_->data_received(std::string_view(rbuf_.data(), static_cast<std::size_t>(n)));
          continue;
        }
      }
      int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
      if (err == SSL_ERROR_ZERO_RETURN) {
        peer_closed();
        break;
      }
      fatal_error(ssl_error("SSL read failed", ssl_), "Fatal error on SSL transport");
      return;
    }
  } catch (...) {
    fatal_error(std::current_exception(), "Fatal error: protocol.data_received() call failed.");
    return;
  }
  if (!backlog_.empty() && state_ == State::wrapped) write_backlog();  // after a renegotiation's step
  flush();  // reading can produce output too (a key update's answer)
}

void SSLProtocol::peer_closed() {
  bool keep_open = false;
  try {
    keep_open = app_->eof_received();
  } catch (...) {
    fatal_error(std::current_exception(), "Error calling eof_received()");
    return;
  }
  if (keep_open) log(LogLevel::warning, "returning true from eof_received() has no effect when using ssl");
  start_shutdown();
}

bool SSLProtocol::eof_received() {
  if (state_ == State::handshake) {
    fail_handshake(connection_error(ECONNRESET, "Connection lost during the SSL handshake"));
  } else if (state_ == State::wrapped) {
    // The socket ended without close_notify: what was decrypted is delivered, then EOF.
    read_plaintext();
    if (state_ == State::wrapped) peer_closed();
  } else if (state_ == State::shutdown) {
    finish_shutdown();  // no close_notify will come now
  }
  return false;
}

// ---- writing --------------------------------------------------------------------------------------

void SSLProtocol::write_plaintext(std::string_view data, bool flush_now) {
  if (data.empty()) return;
  // (No write can come during the handshake: the application gets this transport after it.)
  if (state_ != State::wrapped) {
    if (++lost_writes_ >= kLogThresholdForLostWrites) log(LogLevel::warning, "SSL transport: write after close ignored.");
    return;
  }
  if (backlog_.empty()) {
    std::string_view rest = data;
    if (!encrypt(rest)) {
      backlog_.assign(rest);  // (empty after a fatal error: the connection is gone)
      return;
    }
  } else {
    backlog_.append(data);  // behind what waits already, in order
    if (!write_backlog()) return;
  }
  if (flush_now) flush();
}

bool SSLProtocol::write_backlog() {
  std::string_view rest = backlog_;
  bool done = encrypt(rest);
  backlog_.erase(0, backlog_.size() - rest.size());
  return done;
}

bool SSLProtocol::encrypt(std::string_view& rest) {
  while (!rest.empty()) {
    ERR_clear_error();
    int n = SSL_write(ssl_, rest.data(), static_cast<int>(std::min<std::size_t>(rest.size(), INT_MAX)));
    if (n > 0) {
      rest.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      // A renegotiation the peer started is running: the rest waits (as in Python's write
      // backlog) and is retried after the next read; its handshake messages go out meanwhile.
      ERR_clear_error();
      flush();
      return false;
    }
    rest = {};
    fatal_error(ssl_error("SSL write failed", ssl_), "Fatal error on SSL transport");
    return false;
  }
  return true;
}

void SSLProtocol::flush() {
  if (flushing_ || !transport_) return;  // a write from inside the socket transport's callbacks
  flushing_ = true;
  try {
    while (std::size_t pending = BIO_ctrl_pending(wbio_)) {
      out_.resize(pending);
      int n = BIO_read(wbio_, out_.data(), static_cast<int>(std::min<std::size_t>(pending, INT_MAX)));
      if (n <= 0 || !transport_) break;
      transport_->write(std::string_view(out_.data(), static_cast<std::size_t>(n)));
    }
  } catch (...) {
    flushing_ = false;
    fatal_error(std::current_exception(), "Fatal error on SSL transport");
    return;
  }
  flushing_ = false;
}

void SSLProtocol::pause_writing() {
  socket_paused_ = true;
  forward_flow_control(&BaseProtocol::pause_writing, "protocol.pause_writing() failed");
}

void SSLProtocol::resume_writing() {
  socket_paused_ = false;
  forward_flow_control(&BaseProtocol::resume_writing, "protocol.resume_writing() failed");
}

void SSLProtocol::forward_flow_control(void (BaseProtocol::*event)(), const char* failure) {
  if (!app_connected_) return;
  try {
    (app_.get()->*event)();
  } catch (...) {
    loop_->call_exception_handler({failure, std::current_exception(), {}, {}});
  }
}

// ---- closing --------------------------------------------------------------------------------------

void SSLProtocol::start_shutdown() {
  if (app_transport_) app_transport_->closed_ = true;
  if (state_ == State::handshake) return abort_connection(nullptr);
  if (state_ != State::wrapped) return;
  if (!backlog_.empty()) write_backlog();  // what can still go before close_notify
  state_ = State::shutdown;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // queues close_notify
  ERR_clear_error();
  flush();
  std::weak_ptr<SSLProtocol> self = weak_from_this();
  shutdown_timer_ = loop_->call_later(options_.shutdown_timeout, [self] {
    if (auto p = self.lock(); p && p->transport_) p->transport_->abort();
  });
  // As Python's SSLProtocol: the socket stays open, reading, until the peer's close_notify (or
  // its end, or the shutdown timeout). Closing at once would make the kernel answer whatever the
  // peer still sends (a late session ticket, data crossing our close_notify) with a reset, and a
  // reset makes the peer's kernel drop what it has received and not yet delivered.
  if (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) {
    finish_shutdown();
    return;
  }
  // Paused by the application? The close_notify must still be read.
  if (transport_ && !transport_->is_closing() && !transport_->is_reading()) transport_->resume_reading();
  read_until_close_notify();  // (the peer's close_notify may be in the read BIO already)
}

void SSLProtocol::read_until_close_notify() {
  char sink[4096];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_, sink, sizeof sink);  // data after our close_notify is dropped, as Python
    if (n > 0) continue;
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      ERR_clear_error();
      flush();
      return;  // more to come from the peer
    }
    break;  // its close_notify (SSL_ERROR_ZERO_RETURN), or a broken stream: nothing more to wait for
  }
  ERR_clear_error();
  finish_shutdown();
}

void SSLProtocol::finish_shutdown() {
  if (transport_) transport_->close();  // sends what is buffered, close_notify last, then closes
}

void SSLProtocol::abort_connection(std::exception_ptr exc) {
  if (app_transport_) app_transport_->closed_ = true;
  if (!lost_exc_) lost_exc_ = exc;
  if (state_ == State::handshake && waiter_ && !waiter_.done())
    waiter_.set_exception(exc ? exc : connection_error(ECONNABORTED, "SSL connection aborted during the handshake"));
  if (state_ != State::closed) state_ = State::shutdown;
  if (transport_) transport_->abort();
}

void SSLProtocol::fatal_error(std::exception_ptr exc, const char* message) {
  report_fatal_error(*loop_, exc, message);
  abort_connection(exc);
}

void SSLProtocol::connection_lost(std::exception_ptr exc) {
  cancel_timers();
  if (!exc) exc = lost_exc_;
  bool was_handshaking = state_ == State::handshake;
  state_ = State::closed;
  if (app_transport_) app_transport_->closed_ = true;
  if (app_connected_) {
    app_connected_ = false;
    try {
      app_->connection_lost(exc);
    } catch (...) {
      loop_->call_exception_handler({"Exception in protocol.connection_lost()", std::current_exception(), {}, {}});
    }
  } else if (was_handshaking && waiter_ && !waiter_.done()) {
    waiter_.set_exception(exc ? exc : connection_error(ECONNRESET, "Connection lost during the SSL handshake"));
  }
  transport_ = nullptr;
  app_transport_.reset();  // handles the application kept become inert
  app_.reset();
  app_plain_ = nullptr;
  app_buffered_ = nullptr;
}

// ---- what the application's transport reports -----------------------------------------------------

std::any SSLProtocol::extra_info(std::string_view name) const {
  if (name == "ssl_object") return std::any(ssl_);
  if (name == "sslcontext") return std::any(options_.context);
  if (name == "cipher") {
    const char* c = SSL_get_cipher_name(ssl_);
    return c ? std::any(std::string(c)) : std::any();
  }
  if (name == "ssl_version") return std::any(std::string(SSL_get_version(ssl_)));
  if (name == "peercert") {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (!cert) return {};
    char subject[512];
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    X509_free(cert);
    return std::any(std::string(subject));
  }
  if (name == "selected_alpn_protocol") {
    const unsigned char* p = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_, &p, &len);
    return len ? std::any(std::string(reinterpret_cast<const char*>(p), len)) : std::any();
  }
  return {};
}

// ---- SSLTransport ---------------------------------------------------------------------------------

bool SSLTransport::is_closing() const noexcept {
  if (closed_) return true;
  Transport* t = socket_transport();
  return !t || t->is_closing();
}

Transport* SSLTransport::socket_transport() const noexcept {
  auto p = p_.lock();
  return p ? p->transport_ : nullptr;
}

std::any SSLTransport::get_extra_info(std::string_view name, std::any default_value) const {
  auto p = p_.lock();
  if (!p) return default_value;
  std::any v = p->extra_info(name);
  if (v.has_value()) return v;
  if (p->transport_) return p->transport_->get_extra_info(name, std::move(default_value));
  return default_value;
}

void SSLTransport::close() {
  if (closed_) return;
  closed_ = true;
  if (auto p = p_.lock()) p->start_shutdown();
}

void SSLTransport::abort() {
  closed_ = true;
  if (auto p = p_.lock()) p->abort_connection(nullptr);
}

void SSLTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  if (auto p = p_.lock()) p->set_app_protocol(std::move(protocol));
}

std::shared_ptr<BaseProtocol> SSLTransport::get_protocol() const {
  auto p = p_.lock();
  return p ? p->app_ : nullptr;
}

bool SSLTransport::is_reading() const noexcept {
  Transport* t = socket_transport();
  return t && !closed_ && t->is_reading();
}

void SSLTransport::pause_reading() {
  if (Transport* t = socket_transport()) t->pause_reading();
}

void SSLTransport::resume_reading() {
  if (Transport* t = socket_transport()) t->resume_reading();
}

void SSLTransport::write(std::string_view data) {
  if (auto p = p_.lock()) p->write_plaintext(data);
}

void SSLTransport::write_chunks(std::span<const std::string_view> chunks) {
  // One write: the records of every chunk go to the socket together, so that flow control
  // (pause_writing) cannot fire between two chunks of one writelines().
  if (auto p = p_.lock()) {
    for (auto c : chunks) p->write_plaintext(c, /*flush_now=*/false);
    p->flush();
  }
}

void SSLTransport::write_eof() { throw RuntimeError("SSL doesn't support half-closes"); }

std::size_t SSLTransport::get_write_buffer_size() const noexcept {
  auto p = p_.lock();
  if (!p) return 0;
  // The ciphertext the socket holds, and the plaintext a renegotiation holds back.
  return (p->transport_ ? p->transport_->get_write_buffer_size() : 0) + p->backlog_.size();
}

std::pair<std::size_t, std::size_t> SSLTransport::get_write_buffer_limits() const noexcept {
  Transport* t = socket_transport();
  return t ? t->get_write_buffer_limits() : std::pair<std::size_t, std::size_t>{0, 0};
}

void SSLTransport::set_write_buffer_limits(std::optional<std::ptrdiff_t> high, std::optional<std::ptrdiff_t> low) {
  write_buffer_limits(high, low);  // ValueError also once the connection is gone, as in Python
  if (Transport* t = socket_transport()) t->set_write_buffer_limits(high, low);
}

// ---- wiring ---------------------------------------------------------------------------------------

std::shared_ptr<StreamProtocolBase> wrap_for_ssl(EventLoop& loop, std::shared_ptr<StreamProtocolBase> app,
                                                 const std::optional<SSLOptions>& ssl, Future<void> handshake_waiter) {
  if (!ssl) return app;
  return std::make_shared<SSLProtocol>(loop, std::move(app), *ssl, std::move(handshake_waiter));
}

}  // namespace asyncio::detail

namespace asyncio {

Coro<std::shared_ptr<Transport>> start_tls(Transport& transport, std::shared_ptr<StreamProtocolBase> protocol,
                                           ssl::SSLContext sslcontext, StartTlsOptions options) {
  if (!dynamic_cast<detail::SocketTransport*>(&transport)) throw RuntimeError("transport is not supported by start_tls()");
  if (transport.is_closing()) throw RuntimeError("Transport is closing");
  if (!protocol) throw ValueError("start_tls needs a protocol");
  if (sslcontext.side() != (options.server_side ? ssl::Side::server : ssl::Side::client))
    throw ValueError(options.server_side ? "server_side needs a server-side SSLContext"
                                         : "a client needs a client-side SSLContext");
  EventLoop& loop = get_running_loop();
  detail::SSLOptions ssl{std::move(sslcontext), options.server_side, std::move(options.server_hostname),
                         options.ssl_handshake_timeout, options.ssl_shutdown_timeout, false};
  Future<void> waiter = loop.create_future<void>();
  auto layer = std::make_shared<detail::SSLProtocol>(loop, std::move(protocol), std::move(ssl), waiter);
  std::shared_ptr<Transport> keep = transport.shared_from_this();
  // Paused first, so that no data reaches the TLS layer before its connection_made.
  transport.pause_reading();
  transport.set_protocol(layer);
  Handle made = loop.call_soon([layer, keep] { layer->connection_made(*keep); });
  Handle resume = loop.call_soon([keep] { keep->resume_reading(); });
  try {
    co_await detail::wait_until_started(transport, std::move(waiter));  // closes the connection on failure
  } catch (...) {
    made.cancel();  // if the wait ended before they ran (a cancellation)
    resume.cancel();
    throw;
  }
  co_return layer->app_transport();
}

}  // namespace asyncio
