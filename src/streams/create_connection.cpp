// SPDX-License-Identifier: MIT
// Client connections: Python's loop.create_connection and loop.create_unix_connection. The
// socket comes from net/connect.cpp (Happy Eyeballs); here it gets its transport and, with ssl=,
// a TLS layer between the transport and the application's protocol.
#include <sys/socket.h>

#include <optional>

#include "net/net_internal.hpp"
#if ASYNCIO_HAS_TLS
#include "tls/ssl_internal.hpp"
#endif

namespace asyncio::detail {

namespace {

#if !ASYNCIO_HAS_TLS
/// Built without TLS (ASYNCIO_WITH_TLS=OFF): a connection never has TLS settings.
struct SSLOptions {};
#endif

/// The transport of a connected socket, once the protocol's connection_made ran (for TLS: once
/// the handshake is done too; the application then holds the TLS transport).
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>> connection_transport(
    Socket sock, ProtocolFactory factory, std::optional<SSLOptions> ssl = std::nullopt) {
  EventLoop& loop = get_running_loop();
  std::shared_ptr<StreamProtocolBase> protocol = factory();
  if (!protocol) throw ValueError("the protocol factory returned null");
  Future<void> handshake = ssl ? loop.create_future<void>() : Future<void>();
#if ASYNCIO_HAS_TLS
  auto wire = wrap_for_ssl(loop, protocol, ssl, handshake);
#else
  std::shared_ptr<StreamProtocolBase> wire = protocol;
#endif
  Future<void> waiter = loop.create_future<void>();
  auto transport = std::make_shared<SocketTransport>(loop, std::move(sock), wire, nullptr, nullptr);
  transport->start(waiter);
  std::exception_ptr failed;
  try {
    co_await wait_until_started(*transport, std::move(waiter));
  } catch (...) {
    failed = std::current_exception();
  }
  if (failed) {
    // Cancelled or failed before the handshake is awaited: its future must not keep an error
    // nobody will retrieve (the closing connection fails the handshake).
    if (handshake) abandon_future(handshake);
    std::rethrow_exception(failed);
  }
  std::shared_ptr<Transport> app_transport = transport;
#if ASYNCIO_HAS_TLS
  if (ssl) {
    co_await wait_until_started(*transport, handshake);  // closes the socket on failure
    app_transport = static_cast<SSLProtocol&>(*wire).app_transport();
  }
#endif
  co_return std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>(app_transport, protocol);
}

/// Python's checks of ssl= and server_hostname=, and the TLS settings of one connection.
std::optional<SSLOptions> client_ssl_options(const ConnectOptions& options, [[maybe_unused]] const std::string& host) {
#if ASYNCIO_HAS_TLS
  if (options.ssl) {
    if (options.ssl->side() != ssl::Side::client) throw ValueError("a client connection needs a client-side SSLContext");
    std::string hostname = options.server_hostname.empty() ? host : options.server_hostname;
    if (hostname.empty() && options.ssl->check_hostname())
      throw ValueError("You must set server_hostname when using ssl without a host");
    return SSLOptions{*options.ssl, false, hostname, options.ssl_handshake_timeout, options.ssl_shutdown_timeout};
  }
#endif
  if (!options.server_hostname.empty()) throw ValueError("server_hostname is only meaningful with ssl");
  return std::nullopt;
}

}  // namespace

Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>> create_connection(
    ProtocolFactory factory, std::string host, std::uint16_t port, ConnectOptions options) {
  std::optional<SSLOptions> ssl = client_ssl_options(options, host);
  Socket sock;
  if (!host.empty() || port != 0) {
    if (options.sock) throw ValueError("host/port and sock can not be specified at the same time");
    sock = co_await open_stream_socket(std::move(host), port, options);
  } else {
    if (!options.sock) throw ValueError("host and port was not specified and no sock specified");
    if (options.sock.type() != SOCK_STREAM) throw ValueError("A Stream Socket was expected");
    sock = std::move(options.sock);
  }
  co_return co_await connection_transport(std::move(sock), std::move(factory), std::move(ssl));
}

Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>> create_unix_connection(
    ProtocolFactory factory, std::string path, Socket sock) {
  if (!path.empty()) {
    if (sock) throw ValueError("path and sock can not be specified at the same time");
    sock = Socket(AF_UNIX, SOCK_STREAM);
    co_await sock_connect(sock, SocketAddress::unix_path(path));
  } else {
    if (!sock) throw ValueError("no path and sock were specified");
    if (sock.family() != AF_UNIX || sock.type() != SOCK_STREAM)
      throw ValueError("A UNIX Domain Stream Socket was expected");
  }
  co_return co_await connection_transport(std::move(sock), std::move(factory));
}

}  // namespace asyncio::detail
