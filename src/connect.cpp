// Client connections: Python's loop.create_connection (with Happy Eyeballs) and
// loop.create_unix_connection.
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <system_error>

#include "asyncio/task.hpp"
#include "asyncio/wait.hpp"
#include "net_internal.hpp"
#include "ssl_internal.hpp"

namespace asyncio::detail {

namespace {

using Errors = std::vector<std::exception_ptr>;
using LocalAddrs = std::shared_ptr<const std::vector<AddrInfo>>;

std::string lowercase(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

/// Python's _connect_sock: one attempt. Every OS error it meets goes into `errors`.
Coro<Socket> connect_one(AddrInfo info, LocalAddrs local, std::shared_ptr<Errors> errors) {
  try {
    Socket sock(info.family, info.type ? info.type : SOCK_STREAM, info.proto);
    if (!local->empty()) {
      bool bound = false;
      std::exception_ptr last;
      for (const AddrInfo& l : *local) {
        if (l.family != info.family) continue;  // local addresses of another family
        try {
          sock.bind(l.address);
          bound = true;
          break;
        } catch (const std::system_error& e) {
          last = std::make_exception_ptr(
              std::system_error(e.code(), "error while attempting to bind on address " + l.address.to_string() +
                                              ": " + lowercase(e.code().message())));
          errors->push_back(last);
        }
      }
      if (!bound) {
        if (last) {
          errors->pop_back();  // recorded again below, once
          std::rethrow_exception(last);
        }
        throw std::system_error(std::make_error_code(std::errc::address_not_available),
                                "no matching local address with family=" + std::to_string(info.family) + " found");
      }
    }
    co_await sock_connect(sock, info.address);
    co_return sock;
  } catch (const std::system_error&) {
    errors->push_back(std::current_exception());
    throw;
  }
}

Coro<Socket> connect_sequentially(std::vector<AddrInfo> infos, LocalAddrs local, std::shared_ptr<Errors> errors) {
  for (const AddrInfo& info : infos) {
    try {
      co_return co_await connect_one(info, local, errors);
    } catch (const std::system_error&) {
      // recorded; try the next address
    }
  }
  co_return Socket();
}

/// RFC 8305 section 5 / Python's staggered_race: start attempt i+1 when attempt i fails or
/// `delay` passes, whichever comes first; the first connection wins and the others are cancelled.
Coro<Socket> connect_staggered(std::vector<AddrInfo> infos, LocalAddrs local, std::shared_ptr<Errors> errors,
                               double delay) {
  EventLoop& loop = get_running_loop();
  std::vector<Task<Socket>> running;
  std::size_t next = 0;
  Socket winner;
  std::exception_ptr failure;
  try {
    for (;;) {
      if (next < infos.size()) running.push_back(loop.create_task(connect_one(infos[next++], local, errors)));
      if (running.empty()) break;
      std::optional<double> timeout;
      if (next < infos.size()) timeout = delay;
      co_await wait(running, timeout, FIRST_COMPLETED);
      std::vector<Task<Socket>> still;
      for (auto& t : running) {
        if (!t.done()) {
          still.push_back(t);
          continue;
        }
        if (t.cancelled()) continue;
        if (std::exception_ptr e = t.exception()) {
          if (!is_os_error(e) && !failure) failure = e;  // a bug, not a network failure
          continue;
        }
        Socket s = co_await t;
        if (!winner) winner = std::move(s);  // a second success closes as `s` goes
      }
      running = std::move(still);
      if (winner || failure) break;
    }
  } catch (...) {
    failure = std::current_exception();  // our own cancellation, usually
  }
  // The losers own their sockets: cancel them and wait until they are gone.
  for (auto& t : running) t.cancel();
  if (!running.empty()) {
    co_await wait(running);
    for (auto& t : running) {
      if (t.cancelled()) continue;
      if (!t.exception()) {
        Socket late = co_await t;  // connected just before the cancellation: closed here
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
  co_return winner;
}

/// The transport of a connected socket, once the protocol's connection_made ran (for TLS: once
/// the handshake is done too; the application then holds the TLS transport).
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>> connection_transport(
    Socket sock, ProtocolFactory factory, std::optional<SSLOptions> ssl = std::nullopt) {
  EventLoop& loop = get_running_loop();
  std::shared_ptr<StreamProtocolBase> protocol = factory();
  if (!protocol) throw ValueError("the protocol factory returned null");
  Future<void> handshake = ssl ? loop.create_future<void>() : Future<void>();
  auto wire = wrap_for_ssl(loop, protocol, ssl, handshake);
  Future<void> waiter = loop.create_future<void>();
  auto transport = std::make_shared<SocketTransport>(loop, std::move(sock), wire, nullptr, nullptr);
  transport->start(waiter);
  co_await wait_until_started(*transport, std::move(waiter));
  std::shared_ptr<Transport> app_transport = transport;
  if (ssl) {
    co_await wait_until_started(*transport, std::move(handshake));  // closes the socket on failure
    app_transport = static_cast<SSLProtocol&>(*wire).app_transport();
  }
  co_return std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>(app_transport, protocol);
}

/// Python's checks of ssl= and server_hostname=, and the TLS settings of one connection.
std::optional<SSLOptions> client_ssl_options(const ConnectOptions& options, const std::string& host) {
  if (!options.ssl) {
    if (!options.server_hostname.empty()) throw ValueError("server_hostname is only meaningful with ssl");
    return std::nullopt;
  }
  if (options.ssl->side() != ssl::Side::client) throw ValueError("a client connection needs a client-side SSLContext");
  std::string hostname = options.server_hostname.empty() ? host : options.server_hostname;
  if (hostname.empty() && options.ssl->check_hostname())
    throw ValueError("You must set server_hostname when using ssl without a host");
  return SSLOptions{*options.ssl, false, hostname, options.ssl_handshake_timeout, options.ssl_shutdown_timeout};
}

}  // namespace

std::vector<AddrInfo> interleave_addrinfos(const std::vector<AddrInfo>& infos, int first_family_count) {
  // Group by family, keeping the order in which families first appear.
  std::vector<int> order;
  std::map<int, std::vector<AddrInfo>> by_family;
  for (const AddrInfo& ai : infos) {
    if (!by_family.count(ai.family)) order.push_back(ai.family);
    by_family[ai.family].push_back(ai);
  }
  std::vector<std::vector<AddrInfo>> lists;
  for (int f : order) lists.push_back(std::move(by_family[f]));
  std::vector<AddrInfo> out;
  std::size_t skip = 0;
  if (first_family_count > 1 && !lists.empty()) {
    skip = std::min<std::size_t>(static_cast<std::size_t>(first_family_count - 1), lists[0].size());
    out.insert(out.end(), lists[0].begin(), lists[0].begin() + static_cast<std::ptrdiff_t>(skip));
  }
  for (std::size_t row = 0;; ++row) {
    bool any = false;
    for (std::size_t l = 0; l < lists.size(); ++l) {
      std::size_t idx = row + (l == 0 ? skip : 0);
      if (idx < lists[l].size()) {
        out.push_back(lists[l][idx]);
        any = true;
      }
    }
    if (!any) break;
  }
  return out;
}

Coro<Socket> connect_addrinfos(std::vector<AddrInfo> infos, std::vector<AddrInfo> local,
                               std::optional<double> happy_eyeballs_delay, bool all_errors) {
  auto errors = std::make_shared<Errors>();
  auto laddrs = std::make_shared<const std::vector<AddrInfo>>(std::move(local));
  Socket sock;
  if (happy_eyeballs_delay)
    sock = co_await connect_staggered(std::move(infos), laddrs, errors, *happy_eyeballs_delay);
  else
    sock = co_await connect_sequentially(std::move(infos), laddrs, errors);
  if (sock) co_return sock;

  if (all_errors) throw ExceptionGroup("create_connection failed", *errors);
  if (errors->size() == 1) std::rethrow_exception(errors->front());
  if (errors->size() > 1) {
    std::string model = what_of(errors->front());
    bool same = std::all_of(errors->begin(), errors->end(), [&](auto& e) { return what_of(e) == model; });
    if (same) std::rethrow_exception(errors->front());
    std::string text = "Multiple exceptions: ";
    for (std::size_t i = 0; i < errors->size(); ++i) text += (i ? ", " : "") + what_of((*errors)[i]);
    std::error_code code = std::make_error_code(std::errc::connection_refused);
    try {
      std::rethrow_exception(errors->front());
    } catch (const std::system_error& e) {
      code = e.code();
    }
    throw std::system_error(code, text);
  }
  throw TimeoutError("create_connection failed");
}

Coro<Socket> open_stream_socket(std::string host, std::uint16_t port, const ConnectOptions& options) {
  std::vector<AddrInfo> infos = co_await getaddrinfo(host, port, options.family, SOCK_STREAM, options.proto,
                                                     options.flags);
  if (infos.empty())
    throw std::system_error(std::make_error_code(std::errc::address_not_available), "getaddrinfo() returned empty list");
  std::vector<AddrInfo> local;
  if (options.local_addr) {
    local = co_await getaddrinfo(options.local_addr->first, options.local_addr->second, options.family, SOCK_STREAM,
                                 options.proto, options.flags);
    if (local.empty())
      throw std::system_error(std::make_error_code(std::errc::address_not_available),
                              "getaddrinfo() returned empty list");
  }
  int interleave = options.interleave;
  if (options.happy_eyeballs_delay && interleave == 0) interleave = 1;  // as asyncio
  if (interleave) infos = interleave_addrinfos(infos, interleave);
  co_return co_await connect_addrinfos(std::move(infos), std::move(local), options.happy_eyeballs_delay,
                                       options.all_errors);
}

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
