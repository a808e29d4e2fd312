// SPDX-License-Identifier: MIT
// Python's loop.create_server and loop.create_unix_server: bind, listen, and hand the sockets
// to a ServerCore (net/server.cpp); with ssl=, each accepted connection gets a TLS layer.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <set>
#include <system_error>

#include "asyncio/dns.hpp"
#include "asyncio/log.hpp"
#include "asyncio/sleep.hpp"
#include "asyncio/task.hpp"
#include "net/net_internal.hpp"
#if ASYNCIO_HAS_TLS
#include "tls/ssl_internal.hpp"
#endif

namespace asyncio {

namespace detail {

namespace {

/// With ssl=, each accepted connection's protocol goes behind its own TLS layer.
ProtocolFactory server_ssl_factory([[maybe_unused]] EventLoop& loop, ProtocolFactory factory,
                                   [[maybe_unused]] const ServerOptions& options) {
#if !ASYNCIO_HAS_TLS
  return factory;  // built without TLS: no ssl= to honour
#else
  if (!options.ssl) return factory;
  if (options.ssl->side() != ssl::Side::server) throw ValueError("a server needs a server-side SSLContext");
  check_ssl_timeouts(options.ssl_handshake_timeout, options.ssl_shutdown_timeout);  // now, not per connection
  SSLOptions ssl{*options.ssl, true, {}, options.ssl_handshake_timeout, options.ssl_shutdown_timeout};
  return [&loop, factory = std::move(factory), ssl = std::move(ssl)]() -> std::shared_ptr<StreamProtocolBase> {
    std::shared_ptr<StreamProtocolBase> app = factory();
    if (!app) return nullptr;
    return std::make_shared<SSLProtocol>(loop, std::move(app), ssl, Future<void>());
  };
#endif
}

}  // namespace
}  // namespace detail

// ---- create_server ---------------------------------------------------------------------------------

namespace {

std::string describe_bind_error(const SocketAddress& a, const std::system_error& e) {
  std::string msg = e.code().message();
  for (auto& ch : msg) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return "error while attempting to bind on address " + a.to_string() + ": " + msg;
}

}  // namespace

Coro<Server> create_server(ProtocolFactory factory, std::vector<std::string> hosts, std::uint16_t port,
                           ServerOptions options) {
  EventLoop& loop = get_running_loop();
  std::vector<Socket> sockets;
  if (options.sock) {
    if (!hosts.empty() || port != 0) throw ValueError("host/port and sock can not be specified at the same time");
    if (options.sock.type() != SOCK_STREAM) throw ValueError("A Stream Socket was expected");
    sockets.push_back(std::move(options.sock));
  } else {
    if (hosts.empty()) throw ValueError("no host to listen on (\"\" means every interface)");
    // Python's host sequence: every host's addresses, each address once (the resolver may repeat
    // one, and two hosts may share one). What was bound closes with `sockets` if a bind fails.
    std::set<std::pair<int, std::string>> seen;
    for (const std::string& host : hosts) {
      std::vector<AddrInfo> infos = co_await getaddrinfo(host, port, options.family, SOCK_STREAM, 0, options.flags);
      for (const AddrInfo& info : infos) {
        std::string key(reinterpret_cast<const char*>(info.address.native()), info.address.native_size());
        if (!seen.insert({info.family, key}).second) continue;
        Socket s(info.family, info.type, info.proto);
        if (options.reuse_address.value_or(true)) s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
        if (options.reuse_port) s.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
        // One socket per family: make IPv6 sockets IPv6-only (Linux enables dual stack by
        // default, which would make the IPv4 wildcard bind fail with EADDRINUSE).
        if (info.family == AF_INET6) s.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1);
        try {
          s.bind(info.address);
        } catch (const std::system_error& e) {
          throw std::system_error(e.code(), describe_bind_error(info.address, e));
        }
        sockets.push_back(std::move(s));
      }
    }
    if (sockets.empty()) throw std::system_error(EADDRNOTAVAIL, std::system_category(), "getaddrinfo() returned empty list");
  }
  factory = detail::server_ssl_factory(loop, std::move(factory), options);
  auto core = std::make_shared<detail::ServerCore>(loop, std::move(sockets), std::move(factory), options.backlog,
                                                   options.keep_alive);
  Server server(core);
  if (options.start_serving) {
    core->start_serving();
    co_await sleep(0);
  }
  co_return server;
}

Coro<Server> create_server(ProtocolFactory factory, std::vector<std::string> hosts, std::uint16_t port) {
  return create_server(std::move(factory), std::move(hosts), port, ServerOptions());
}

Coro<Server> create_server(ProtocolFactory factory, std::string host, std::uint16_t port, ServerOptions options) {
  // (A plain function: the list is built here, outside any coroutine frame.)
  std::vector<std::string> hosts;
  if (!options.sock || !host.empty()) hosts.push_back(std::move(host));
  return create_server(std::move(factory), std::move(hosts), port, std::move(options));
}

Coro<Server> create_server(ProtocolFactory factory, std::string host, std::uint16_t port) {
  return create_server(std::move(factory), std::move(host), port, ServerOptions());
}

Coro<Server> create_unix_server(ProtocolFactory factory, std::string path) {
  return create_unix_server(std::move(factory), std::move(path), ServerOptions());
}

Coro<Server> create_unix_server(ProtocolFactory factory, std::string path, ServerOptions options) {
  EventLoop& loop = get_running_loop();
  std::vector<Socket> sockets;
  bool cleanup = false;
  if (options.sock) {
    if (!path.empty()) throw ValueError("path and sock can not be specified at the same time");
    if (options.sock.family() != AF_UNIX || options.sock.type() != SOCK_STREAM)
      throw ValueError("A UNIX Domain Stream Socket was expected");
    sockets.push_back(std::move(options.sock));
  } else {
    if (path.empty()) throw ValueError("path was not specified, and no sock specified");
    if (path[0] != '\0') {
      // A socket file left by a previous run would make bind fail: remove it, as asyncio does
      // (only sockets: a regular file at that path is an error worth seeing).
      struct stat st{};
      if (::stat(path.c_str(), &st) == 0) {
        if (S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
      } else if (errno != ENOENT) {
        log(LogLevel::error, "Unable to check or remove stale UNIX socket " + path + ": " + std::strerror(errno));
      }
    }
    Socket s(AF_UNIX, SOCK_STREAM);
    try {
      s.bind(SocketAddress::unix_path(path));
    } catch (const std::system_error& e) {
      if (e.code() == std::errc::address_in_use)
        throw std::system_error(e.code(), "Address '" + path + "' is already in use");
      throw;
    }
    sockets.push_back(std::move(s));
    cleanup = options.cleanup_socket;
  }
  factory = detail::server_ssl_factory(loop, std::move(factory), options);
  auto core = std::make_shared<detail::ServerCore>(loop, std::move(sockets), std::move(factory), options.backlog,
                                                   false);
  if (cleanup) core->set_unix_cleanup(path);
  Server server(core);
  if (options.start_serving) {
    core->start_serving();
    co_await sleep(0);
  }
  co_return server;
}

}  // namespace asyncio
