// SPDX-License-Identifier: MIT
// TLS (Python's ssl module, the part asyncio uses): an SSLContext to configure, errors to catch,
// and the options that put a connection under TLS.
//
// A connection runs TLS when its ConnectOptions / ServerOptions carry a context (Python's ssl=):
//
//   auto ctx = asyncio::ssl::create_default_context();      // verifies the server, as Python's
//   asyncio::ConnectOptions opts;
//   opts.ssl = ctx;
//   auto [reader, writer] = co_await asyncio::open_connection("example.com", 443, std::move(opts));
//
//   asyncio::ssl::SSLContext server_ctx(asyncio::ssl::Side::server);
//   server_ctx.load_cert_chain("cert.pem", "key.pem");
//   asyncio::ServerOptions sopts;
//   sopts.ssl = server_ctx;
//   asyncio::Server server = co_await asyncio::start_server(handle, "0.0.0.0", 8443, std::move(sopts));
//
// start_tls (transports.hpp) upgrades a connection that is already open. The TLS layer sits
// between the socket transport and your protocol, as CPython's sslproto does: OpenSSL works on
// memory buffers, the socket transport moves the ciphertext, and your protocol sees a Transport
// like any other (get_extra_info adds "ssl_object", "peercert", "cipher", ...).
//
// OpenSSL's headers stay out of this one: SSL_CTX and SSL are only named.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include "asyncio/version.hpp"
#if !ASYNCIO_HAS_TLS
#error "this asyncio was built without TLS (ASYNCIO_WITH_TLS=OFF): ssl.hpp is not available"
#endif

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX
struct ssl_st;      // OpenSSL's SSL

namespace asyncio::ssl {

/// Which end of the handshake a context is for (Python's PROTOCOL_TLS_CLIENT / _SERVER).
enum class Side { client, server };
/// Python's ssl.Purpose: SERVER_AUTH makes a client context (it authenticates servers).
enum class Purpose { server_auth, client_auth };
/// Python's CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED.
enum class VerifyMode { none, optional, required };

/// The error category of OpenSSL's reason codes (SSLError::code()).
const std::error_category& ssl_category() noexcept;

/// Python's ssl.SSLError, an OSError there, so a std::system_error here: handlers of connection
/// errors catch it too. code() is OpenSSL's reason code in ssl_category().
class SSLError : public std::system_error {
 public:
  /// `reason` (an OpenSSL reason code) with a message.
  SSLError(int reason, const std::string& what) : std::system_error(reason, ssl_category(), what) {}
};

/// Python's ssl.SSLCertVerificationError: the peer's certificate was refused. verify_code() is
/// OpenSSL's X509_V_ERR_* value; verify_message() says it in words ("certificate has expired").
class SSLCertVerificationError : public SSLError {
 public:
  /// A failed certificate check: OpenSSL's `verify_code` and its text.
  SSLCertVerificationError(int reason, long verify_code, std::string verify_message, const std::string& what)
      : SSLError(reason, what), verify_code_(verify_code), verify_message_(std::move(verify_message)) {}
  /// OpenSSL's X509_V_ERR_* code (Python's verify_code).
  long verify_code() const noexcept { return verify_code_; }
  /// Why the certificate was refused (Python's verify_message).
  const std::string& verify_message() const noexcept { return verify_message_; }

 private:
  long verify_code_;
  std::string verify_message_;
};

/// Python's ssl.SSLContext: certificates, verification and protocol settings shared by
/// connections. A cheap handle: copies share one OpenSSL context. A client context verifies the
/// server's certificate and host name by default (load the CAs to trust: load_default_certs or
/// load_verify_locations); a server context asks nothing of clients by default.
class SSLContext {
 public:
  /// TLS 1.2 or later. Throws SSLError if OpenSSL cannot make a context.
  explicit SSLContext(Side side = Side::client);

  /// Client or server.
  Side side() const noexcept { return side_; }
  /// The certificate chain (PEM) this end presents, and its private key (PEM; "" if it is in
  /// certfile). SSLError if a file is missing or the key does not match the certificate.
  void load_cert_chain(const std::string& certfile, const std::string& keyfile = "");
  /// CA certificates to trust (PEM file and/or a hashed directory).
  void load_verify_locations(const std::string& cafile, const std::string& capath = "");
  /// The system's CA certificates (Debian: /etc/ssl/certs).
  void load_default_certs();
  /// VerifyMode::none, optional or required (Python's SSLContext.verify_mode = CERT_NONE, ...).
  void set_verify_mode(VerifyMode mode);
  /// The current verification mode.
  VerifyMode verify_mode() const noexcept { return verify_mode_; }
  /// Whether a client checks that the certificate names the server_hostname (default: on for a
  /// client context). Turning it on also requires verification, as Python does.
  void set_check_hostname(bool check);
  /// True if the peer's name is checked against its certificate (Python's check_hostname).
  bool check_hostname() const noexcept { return check_hostname_; }
  /// ALPN protocols to offer (client) or accept (server), in order of preference: {"h2", "http/1.1"}.
  void set_alpn_protocols(const std::vector<std::string>& protocols);
  /// OpenSSL cipher list for TLS 1.2 ("ECDHE+AESGCM"); SSLError if nothing matches.
  void set_ciphers(const std::string& ciphers);

  /// OpenSSL's SSL_CTX, for settings this class does not wrap.
  ssl_ctx_st* native() const noexcept { return ctx_.get(); }

 private:
  std::shared_ptr<ssl_ctx_st> ctx_;
  std::shared_ptr<std::string> alpn_wire_;  // a server's ALPN list, read by OpenSSL's callback
  Side side_;
  VerifyMode verify_mode_;
  bool check_hostname_;
};

/// Python's ssl.create_default_context(): for Purpose::server_auth a client context that
/// verifies servers against the system's CAs (plus `cafile` if given) and checks host names; for
/// Purpose::client_auth a server context.
SSLContext create_default_context(Purpose purpose = Purpose::server_auth, const std::string& cafile = "");

}  // namespace asyncio::ssl
#pragma GCC visibility pop
