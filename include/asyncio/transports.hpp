// SPDX-License-Identifier: MIT
// Transports and servers: Python's loop.create_connection / loop.create_server and friends.
//
// A transport owns a connected socket and moves bytes; a protocol (protocols.hpp) reacts to them.
// This is asyncio's low-level, callback-based networking layer, and the fastest one here: the
// loop calls the transport synchronously when the socket is ready, reads go into one reused
// buffer (or straight into a BufferedProtocol's memory), and write() sends at once when nothing is
// queued, buffering only what the socket did not take. In the steady state nothing allocates.
//
//   auto [transport, protocol] = co_await asyncio::create_connection(
//       [] { return std::make_shared<MyProtocol>(); }, "127.0.0.1", 8888);
//   asyncio::Server server = co_await asyncio::create_server(
//       [] { return std::make_shared<Echo>(); }, "127.0.0.1", 8888);
//   co_await server.serve_forever();
//
// Lifetimes. A transport keeps itself alive from creation until its protocol's connection_lost
// has run (as asyncio's loop does); a shared_ptr to it stays usable afterwards (is_closing() is
// true, write() is ignored). The transport holds its protocol until connection_lost. A Server is
// a handle: copies share one server, and when the last copy goes away the server closes (like
// leaving Python's `async with server:`); connections already accepted go on until they end.
//
// Flow control. write() never blocks and never fails for lack of space: data the socket does not
// take is buffered, and when the buffer grows past the high water mark (64 KiB by default) the
// protocol's pause_writing() is called; resume_writing() follows when it drains to the low mark.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <any>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/coro.hpp"
#include "asyncio/dns.hpp"
#include "asyncio/protocols.hpp"
#include "asyncio/socket.hpp"
#include "asyncio/version.hpp"
#if ASYNCIO_HAS_TLS
#include "asyncio/ssl.hpp"
#endif

namespace asyncio {

class EventLoop;

/// Python's asyncio.BaseTransport.
class BaseTransport : public std::enable_shared_from_this<BaseTransport> {
 public:
  virtual ~BaseTransport() = default;

  /// Python's get_extra_info(name, default): "peername" and "sockname" give a SocketAddress,
  /// "socket" a SocketView (non-owning). Anything else (or a closed socket's live value) gives
  /// `default_value`.
  virtual std::any get_extra_info(std::string_view name, std::any default_value = {}) const = 0;
  /// Typed shortcut: `t.get_extra_info<asyncio::SocketAddress>("peername")`.
  template <class T>
  std::optional<T> get_extra_info(std::string_view name) const {
    std::any v = get_extra_info(name, std::any{});
    if (const T* p = std::any_cast<T>(&v)) return *p;
    return std::nullopt;
  }

  /// True once close() or abort() was called, or the connection was lost.
  virtual bool is_closing() const noexcept = 0;
  /// Closes after the buffered data is sent; connection_lost(null) follows on a later iteration.
  virtual void close() = 0;
  /// Switches protocols (Python's set_protocol); the new one receives subsequent events.
  virtual void set_protocol(std::shared_ptr<BaseProtocol> protocol) = 0;
  /// The protocol that receives this transport's events.
  virtual std::shared_ptr<BaseProtocol> get_protocol() const = 0;
};

/// A socket as get_extra_info("socket") and Server::sockets() describe it, without ownership
/// (Python's TransportSocket).
struct SocketView {
  int fd = -1;  ///< The descriptor (-1 if none).
  int family = 0;  ///< AF_INET, AF_INET6 or AF_UNIX.
  int type = 0;  ///< SOCK_STREAM or SOCK_DGRAM.
  /// The socket's local address.
  SocketAddress getsockname() const;
  /// The socket's peer address.
  SocketAddress getpeername() const;
};

/// A bidirectional stream transport (Python's asyncio.Transport).
class Transport : public BaseTransport {
 public:
  /// This transport, shared (it lives as long as someone holds it).
  std::shared_ptr<Transport> shared_from_this() {
    return std::static_pointer_cast<Transport>(BaseTransport::shared_from_this());
  }

  // ---- reading ----
  /// True unless reading is paused or the transport is closing.
  virtual bool is_reading() const noexcept = 0;
  /// Stops calling data_received until resume_reading (the socket is no longer watched).
  virtual void pause_reading() = 0;
  /// Starts calling data_received again (Python's resume_reading()).
  virtual void resume_reading() = 0;

  // ---- writing ----
  /// Sends `data` now if the socket takes it, buffers the rest. Never blocks. RuntimeError after
  /// write_eof(); silently ignored once the connection is lost (as asyncio does).
  virtual void write(std::string_view data) = 0;
  /// Writes every chunk, in order, with one system call where possible (sendmsg).
  void writelines(std::initializer_list<std::string_view> chunks) { write_chunks({chunks.begin(), chunks.size()}); }
  /// Writes each chunk of any range of string-likes, in order.
  template <std::ranges::input_range R>
    requires std::convertible_to<std::ranges::range_reference_t<R>, std::string_view>
  void writelines(const R& chunks) {
    if constexpr (std::ranges::contiguous_range<R> &&
                  std::is_same_v<std::ranges::range_value_t<R>, std::string_view>) {
      write_chunks({std::ranges::data(chunks), std::ranges::size(chunks)});
    } else {
      std::string_view batch[64];
      std::size_t n = 0;
      for (auto&& c : chunks) {
        batch[n++] = std::string_view(c);
        if (n == 64) {
          write_chunks({batch, n});
          n = 0;
        }
      }
      if (n) write_chunks({batch, n});
    }
  }
  /// Shuts down the sending side once the buffer is flushed (half-close); reading goes on.
  virtual void write_eof() = 0;
  /// True if write_eof() is supported (Python's can_write_eof()).
  virtual bool can_write_eof() const noexcept = 0;
  /// Closes at once, discarding buffered data; connection_lost(null) follows.
  virtual void abort() = 0;
  /// Bytes buffered, not yet handed to the kernel.
  virtual std::size_t get_write_buffer_size() const noexcept = 0;
  /// (low, high), as Python returns them.
  virtual std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept = 0;
  /// Python's rules: high defaults to 64 KiB (or 4 × low), low to high / 4. ValueError unless
  /// high >= low >= 0 (signed, so that a negative mark is that error, not a huge mark).
  virtual void set_write_buffer_limits(std::optional<std::ptrdiff_t> high = std::nullopt,
                                       std::optional<std::ptrdiff_t> low = std::nullopt) = 0;

 protected:
  /// Writes several chunks at once (what writelines uses).
  virtual void write_chunks(std::span<const std::string_view> chunks) = 0;
};

/// A datagram transport (Python's asyncio.DatagramTransport), from create_datagram_endpoint.
class DatagramTransport : public BaseTransport {
 public:
  /// This transport, shared (it lives as long as someone holds it).
  std::shared_ptr<DatagramTransport> shared_from_this() {
    return std::static_pointer_cast<DatagramTransport>(BaseTransport::shared_from_this());
  }
  /// Sends one datagram to `addr`, or to the remote address the endpoint was connected to
  /// (nullopt). ValueError for another address on a connected endpoint. Never blocks: what the
  /// socket does not take at once is queued.
  virtual void sendto(std::string_view data, std::optional<SocketAddress> addr = std::nullopt) = 0;
  /// Closes at once, dropping queued datagrams; connection_lost(null) follows.
  virtual void abort() = 0;
  /// Bytes queued (each datagram counts its size plus 8, as asyncio).
  virtual std::size_t get_write_buffer_size() const noexcept = 0;
  /// (low, high) water marks of the send buffer (Python's get_write_buffer_limits()).
  virtual std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept = 0;
  /// As Transport::set_write_buffer_limits.
  virtual void set_write_buffer_limits(std::optional<std::ptrdiff_t> high = std::nullopt,
                                       std::optional<std::ptrdiff_t> low = std::nullopt) = 0;
};

/// Makes the protocol for a new connection.
using ProtocolFactory = std::function<std::shared_ptr<StreamProtocolBase>()>;

/// Options of create_connection / open_connection (Python's keyword arguments).
struct ConnectOptions {
  /// AF_INET, AF_INET6 or 0 (either).
  int family = 0;
  int proto = 0;  ///< The protocol for socket() (0: the default).
  /// getaddrinfo flags.
  int flags = 0;
  /// Bind the socket to this (host, port) first.
  std::optional<std::pair<std::string, std::uint16_t>> local_addr{};
  /// Use this connected socket instead of host and port (Python's sock=): it is adopted.
  Socket sock{};
  /// RFC 8305 Happy Eyeballs: start the next address's attempt this many seconds after the
  /// previous one if it has not finished (Python recommends 0.25). nullopt: one at a time.
  std::optional<double> happy_eyeballs_delay{};
  /// Reorder addresses by family, this many of the first family first (0: keep the resolver's
  /// order; 1 when happy_eyeballs_delay is set).
  int interleave = 0;
  /// Raise every attempt's error in an ExceptionGroup instead of one error.
  bool all_errors = false;
#if ASYNCIO_HAS_TLS
  /// Run TLS over the connection with this context (Python's ssl=); see ssl.hpp.
  std::optional<ssl::SSLContext> ssl{};
#endif
  /// The name the server's certificate must carry, and the SNI sent; defaults to `host`.
  /// ValueError without `ssl`, or when empty with a context that checks host names and no host.
  std::string server_hostname{};
  /// Seconds the TLS handshake may take before the connection is aborted (ConnectionAbortedError,
  /// a std::system_error with ECONNABORTED).
  double ssl_handshake_timeout = 60.0;
  /// Seconds a closing TLS connection may take to flush before it is aborted.
  double ssl_shutdown_timeout = 30.0;
};

/// Options of create_server / start_server.
struct ServerOptions {
  /// AF_INET, AF_INET6 or AF_UNSPEC (every family the host resolves to).
  int family = AF_UNSPEC;
  /// getaddrinfo flags.
  int flags = AI_PASSIVE;
  /// Serve on this listening (or bound) socket instead of host and port (Python's sock=).
  Socket sock{};
  /// listen()'s backlog (negative: 0, as Python's socket.listen); also how many connections are
  /// accepted per wakeup (at least one).
  int backlog = 100;
  /// SO_REUSEADDR; nullopt means true, as asyncio does on POSIX.
  std::optional<bool> reuse_address{};
  /// SO_REUSEPORT: several processes or sockets may listen on the same port.
  bool reuse_port = false;
  /// SO_KEEPALIVE on accepted connections (Python 3.13's keep_alive).
  bool keep_alive = false;
  /// Start accepting at once (else on start_serving / serve_forever).
  bool start_serving = true;
  /// Unix servers: remove the socket file when the server closes, if it is still ours.
  bool cleanup_socket = true;
#if ASYNCIO_HAS_TLS
  /// Serve TLS with this (server-side) context (Python's ssl=); see ssl.hpp.
  std::optional<ssl::SSLContext> ssl{};
#endif
  /// Seconds a client's TLS handshake may take before its connection is aborted.
  double ssl_handshake_timeout = 60.0;
  /// Seconds a closing TLS connection may take to flush before it is aborted.
  double ssl_shutdown_timeout = 30.0;
};

/// Options of create_datagram_endpoint (Python's keyword arguments).
struct DatagramOptions {
  /// Bind to this (host, port) (Python's local_addr).
  std::optional<std::pair<std::string, std::uint16_t>> local_addr{};
  /// Connect to this (host, port): sendto() without an address goes there, and only its
  /// datagrams are received (Python's remote_addr).
  std::optional<std::pair<std::string, std::uint16_t>> remote_addr{};
  /// AF_INET, AF_INET6 (required when neither address is given), or AF_UNIX with the paths below.
  int family = 0;
  int proto = 0;  ///< The protocol for socket() (0: the default).
  int flags = 0;  ///< getaddrinfo flags.
  /// AF_UNIX datagram sockets: bind / connect to these paths (a stale socket file is removed).
  std::string local_path{};
  std::string remote_path{};  ///< See local_path: the peer's path (Python's remote_addr for AF_UNIX).
  bool reuse_port = false;  ///< SO_REUSEPORT: several sockets may bind the same port.
  /// SO_BROADCAST; the socket is then not connected to remote_addr (as asyncio).
  bool allow_broadcast = false;
  /// Use this datagram socket instead (Python's sock=).
  Socket sock{};
};

namespace detail {
class ServerCore;
}

/// A listening server (Python's asyncio.Server). A handle: copies share the server, and the last
/// copy to go away closes it.
class Server {
 public:
  Server() noexcept = default;
  /// Library-internal: made by create_server.
  explicit Server(std::shared_ptr<detail::ServerCore> core);

  /// The loop it serves on (Python's Server.get_loop()).
  EventLoop& get_loop() const;
  /// True while it accepts connections (Python's Server.is_serving()).
  bool is_serving() const;
  /// Starts accepting (idempotent).
  Coro<void> start_serving();
  /// Accepts until the task is cancelled or the server closed; on cancellation, closes the
  /// server and waits for it (RuntimeError if already awaited, or closed).
  Coro<void> serve_forever();
  /// Stops listening and closes the listening sockets. Accepted connections stay open.
  void close();
  /// Waits until the server is closed and every connection it accepted has ended.
  Coro<void> wait_closed();
  /// The listening sockets (empty once closed).
  const std::vector<Socket>& sockets() const;
  /// close() / abort() every accepted connection still open.
  void close_clients();
  /// Aborts every client connection (Python 3.13's Server.abort_clients()).
  void abort_clients();
  /// Connections accepted and not yet ended.
  std::size_t active_count() const;

  /// True unless default-constructed.
  explicit operator bool() const noexcept { return bool(h_); }
  /// Library-internal: the shared state.
  const std::shared_ptr<detail::ServerCore>& core() const;

 private:
  struct Handle;
  std::shared_ptr<Handle> h_;
};

namespace detail {
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>> create_connection(
    ProtocolFactory factory, std::string host, std::uint16_t port, ConnectOptions options);
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>> create_unix_connection(
    ProtocolFactory factory, std::string path, Socket sock);
/// Connects a socket the way create_connection does (resolution, local_addr, Happy Eyeballs).
Coro<Socket> open_stream_socket(std::string host, std::uint16_t port, const ConnectOptions& options);
/// Tries `infos` in order, or staggered by `happy_eyeballs_delay` (RFC 8305), binding to a
/// matching `local` address first if any are given. Throws what the attempts failed with.
Coro<Socket> connect_addrinfos(std::vector<AddrInfo> infos, std::vector<AddrInfo> local,
                               std::optional<double> happy_eyeballs_delay, bool all_errors);
/// Python's _interleave_addrinfos: alternate families, `first_family_count` of the first first.
std::vector<AddrInfo> interleave_addrinfos(const std::vector<AddrInfo>& infos, int first_family_count);

using DatagramProtocolFactory = std::function<std::shared_ptr<DatagramProtocol>()>;
Coro<std::pair<std::shared_ptr<DatagramTransport>, std::shared_ptr<DatagramProtocol>>> create_datagram_endpoint(
    DatagramProtocolFactory factory, DatagramOptions options);

template <class F>
using factory_protocol_t = typename std::invoke_result_t<F&>::element_type;
}  // namespace detail

// (Overloads instead of `Options options = {}` defaults: g++ 12 destroys a braced temporary made
// inside a co_await expression twice, and a default argument is made in the caller's.)

/// Connects to host:port and runs a protocol on the connection (Python's loop.create_connection).
/// Returns once connection_made has run. `factory()` returns a std::shared_ptr to a
/// StreamProtocolBase subclass; the pair holds it with its own type.
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>> create_connection(
    F factory, std::string host, std::uint16_t port, ConnectOptions options) {
  auto r = co_await detail::create_connection(ProtocolFactory(std::move(factory)), std::move(host), port,
                                              std::move(options));
  co_return std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>(
      std::move(r.first), std::static_pointer_cast<detail::factory_protocol_t<F>>(r.second));
}
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>> create_connection(
    F factory, std::string host, std::uint16_t port) {
  return create_connection(std::move(factory), std::move(host), port, ConnectOptions());
}
/// The same with an already connected socket (Python's create_connection(sock=...)).
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>> create_connection(
    F factory, Socket sock) {
  ConnectOptions options;
  options.sock = std::move(sock);
  return create_connection(std::move(factory), std::string(), 0, std::move(options));
}

/// Runs a protocol on a connection accepted outside this loop's servers, from sock_accept() or
/// handed over by another component (Python's loop.connect_accepted_socket). The transport owns
/// `sock` from then on; ValueError (when awaited) unless it is a stream socket.
///   auto [conn, address] = co_await asyncio::sock_accept(listener);
///   auto [transport, protocol] = co_await asyncio::connect_accepted_socket(factory, std::move(conn));
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>> connect_accepted_socket(
    F factory, Socket sock) {
  return create_connection(std::move(factory), std::move(sock));
}

#if ASYNCIO_HAS_TLS
/// Options of start_tls (Python's keyword arguments).
struct StartTlsOptions {
  /// This end answers the handshake (needs a server-side context).
  bool server_side = false;
  /// A client's expected certificate name and SNI (see ConnectOptions::server_hostname).
  std::string server_hostname{};
  double ssl_handshake_timeout = 60.0;  ///< Seconds the TLS handshake may take (Python's ssl_handshake_timeout).
  double ssl_shutdown_timeout = 30.0;  ///< Seconds the TLS shutdown may take (Python's ssl_shutdown_timeout).
};

/// Upgrades an open connection to TLS (Python's loop.start_tls): runs the handshake on
/// `transport`'s socket and returns the TLS transport, through which `protocol` (which already
/// had its connection_made) is served from then on; use it instead of `transport`. On failure the
/// connection is closed and the handshake's error raised. RuntimeError for a transport that is not
/// a socket connection of this library (a TLS transport, say).
///   auto tls = co_await asyncio::start_tls(*transport, protocol, ctx, {.server_hostname = "example.com"});
Coro<std::shared_ptr<Transport>> start_tls(Transport& transport, std::shared_ptr<StreamProtocolBase> protocol,
                                           ssl::SSLContext sslcontext, StartTlsOptions options = {});
#endif

/// Sends a file over a stream transport (Python's loop.sendfile): from `offset`, `count` bytes or
/// to the end of the file, after whatever was written before. Returns the bytes sent; the file is
/// left positioned after them, also when the send fails or is cancelled part-way. A regular file
/// goes through sendfile(2) (the kernel copies it; reading goes on meanwhile); anything else, or
/// a file sendfile(2) refuses, is read on the default executor and written block by block unless
/// `fallback` is false (SendfileNotAvailableError). Until it ends, write() on the transport raises
/// RuntimeError, and close() waits for it as for buffered data. RuntimeError if the transport is
/// closing; ValueError for a count that is not positive or a negative offset (signed, as Python's
/// ints: -1 is that error, not "to the end").
///   int fd = ::open("index.html", O_RDONLY | O_CLOEXEC);
///   std::size_t sent = co_await asyncio::sendfile(writer.transport(), fd);
Coro<std::size_t> sendfile(Transport& transport, int file_fd, std::int64_t offset = 0,
                           std::optional<std::int64_t> count = std::nullopt, bool fallback = true);

/// Listens on host:port (host "": every interface; port 0: any free port) and runs a protocol per
/// accepted connection (Python's loop.create_server). A host that resolves to several addresses
/// (IPv4 and IPv6) gets one listening socket each; IPv6 sockets are IPv6-only, as in asyncio.
Coro<Server> create_server(ProtocolFactory factory, std::string host, std::uint16_t port, ServerOptions options);
Coro<Server> create_server(ProtocolFactory factory, std::string host, std::uint16_t port);
/// Listens on every address of every host (Python's host sequence); each address once, one
/// socket each (Server::sockets). With port 0 each socket gets its own free port. Name the list
/// before a co_await (g++ 12 destroys braced temporaries in a throwing co_await twice):
///   std::vector<std::string> hosts{"127.0.0.1", "::1"};
///   asyncio::Server server = co_await asyncio::create_server(factory, hosts, 8888);
Coro<Server> create_server(ProtocolFactory factory, std::vector<std::string> hosts, std::uint16_t port,
                           ServerOptions options);
Coro<Server> create_server(ProtocolFactory factory, std::vector<std::string> hosts, std::uint16_t port);

/// Unix sockets (Python's loop.create_unix_connection / create_unix_server). A stale socket file
/// at `path` is removed before binding, as asyncio does; path "" with `sock` adopts a connected
/// socket.
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>> create_unix_connection(
    F factory, std::string path, Socket sock) {
  auto r = co_await detail::create_unix_connection(ProtocolFactory(std::move(factory)), std::move(path),
                                                   std::move(sock));
  co_return std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>(
      std::move(r.first), std::static_pointer_cast<detail::factory_protocol_t<F>>(r.second));
}
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>> create_unix_connection(
    F factory, std::string path) {
  return create_unix_connection(std::move(factory), std::move(path), Socket());
}
Coro<Server> create_unix_server(ProtocolFactory factory, std::string path, ServerOptions options);
Coro<Server> create_unix_server(ProtocolFactory factory, std::string path);

/// A UDP (or Unix datagram) endpoint driving a DatagramProtocol (Python's
/// loop.create_datagram_endpoint). Returns once connection_made has run.
///   asyncio::DatagramOptions opts;
///   opts.local_addr = std::pair<std::string, std::uint16_t>("127.0.0.1", 9999);
///   auto [transport, protocol] = co_await asyncio::create_datagram_endpoint(
///       [] { return std::make_shared<MyDatagramProtocol>(); }, std::move(opts));
template <class F>
Coro<std::pair<std::shared_ptr<DatagramTransport>, std::shared_ptr<detail::factory_protocol_t<F>>>>
create_datagram_endpoint(F factory, DatagramOptions options) {
  auto r = co_await detail::create_datagram_endpoint(detail::DatagramProtocolFactory(std::move(factory)),
                                                     std::move(options));
  co_return std::pair<std::shared_ptr<DatagramTransport>, std::shared_ptr<detail::factory_protocol_t<F>>>(
      std::move(r.first), std::static_pointer_cast<detail::factory_protocol_t<F>>(r.second));
}

}  // namespace asyncio
#pragma GCC visibility pop
