// Servers: Python's Server, loop.create_server and loop.create_unix_server.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <system_error>

#include "asyncio/dns.hpp"
#include "asyncio/log.hpp"
#include "asyncio/sleep.hpp"
#include "asyncio/task.hpp"
#include "net_internal.hpp"
#include "ssl_internal.hpp"

namespace asyncio {

namespace detail {

namespace {
// asyncio's constants.ACCEPT_RETRY_DELAY: after EMFILE and friends, stop accepting this long.
constexpr double kAcceptRetryDelay = 1.0;
}  // namespace

/// Accepts on one listening socket.
class ServerCore::Listener final : public FdListener {
 public:
  Listener(ServerCore& core, const Socket& sock) noexcept : core_(core), sock_(sock) {}
  ~Listener() { stop(); }

  void start() {
    if (registered_) return;
    core_.loop_->set_fd_listener(sock_.fileno(), this, poll_readable);
    registered_ = true;
  }
  void stop() noexcept {
    retry_.cancel();
    if (!registered_) return;
    registered_ = false;
    if (core_.loop_usable()) {
      try {
        core_.loop_->set_fd_listener(sock_.fileno(), nullptr, 0);
      } catch (...) {
      }
    }
  }

  void on_fd_ready(std::uint32_t) noexcept override {
    // Up to `backlog` connections per readiness event, as asyncio does.
    for (int i = 0; i < core_.backlog_ && registered_; ++i) {
      SocketAddress peer;
      socklen_t len = SocketAddress::capacity();
      int fd = ::accept4(sock_.fileno(), peer.native(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED) return;
        if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
          // Out of descriptors or memory: the listening socket stays readable, so keep watching
          // it and we would spin. Stop accepting for a while; connections wait in the backlog.
          core_.loop_->call_exception_handler(
              {"socket.accept() out of system resource",
               std::make_exception_ptr(std::system_error(err, std::system_category(), "accept")), {}, {}});
          back_off();
          return;
        }
        core_.loop_->call_exception_handler(
            {"Error accepting a connection",
             std::make_exception_ptr(std::system_error(err, std::system_category(), "accept")), {}, {}});
        return;
      }
      peer.set_native_size(len);
      core_.on_accepted(fd, sock_, peer);
    }
  }

 private:
  void back_off() noexcept {
    stop();
    try {
      std::weak_ptr<ServerCore> weak = core_.weak_from_this();
      retry_ = core_.loop_->call_later(kAcceptRetryDelay, [weak, this] {
        // The listener belongs to the core; if the core is alive and serving, so is this.
        if (auto core = weak.lock(); core && core->serving_) {
          try {
            start();
          } catch (...) {
            core->loop_->call_exception_handler(
                {"Error resuming accept() after a resource shortage", std::current_exception(), {}, {}});
          }
        }
      });
    } catch (...) {
    }
  }

  ServerCore& core_;
  const Socket& sock_;
  TimerHandle retry_;
  bool registered_ = false;
};

ServerCore::ServerCore(EventLoop& loop, std::vector<Socket> sockets, ProtocolFactory factory, int backlog,
                       bool keep_alive)
    : loop_(&loop), sockets_(std::move(sockets)), factory_(std::move(factory)), backlog_(backlog), keep_alive_(keep_alive) {
  for (const Socket& s : sockets_) listeners_.push_back(std::make_unique<Listener>(*this, s));
  loop_->add_close_hook(this);
  hooked_ = true;
}

ServerCore::~ServerCore() { close(); }

bool ServerCore::loop_usable() const noexcept { return EventLoop::is_alive(loop_) && !loop_->is_closed(); }

void ServerCore::start_serving() {
  if (serving_ || closed_) return;
  serving_ = true;
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    sockets_[i].listen(backlog_);
    listeners_[i]->start();
  }
}

void ServerCore::close() noexcept {
  if (closed_) return;
  closed_ = true;
  serving_ = false;
  if (hooked_) {
    hooked_ = false;
    if (EventLoop::is_alive(loop_)) loop_->remove_close_hook(this);
  }
  listeners_.clear();  // unregisters
  if (!unix_path_.empty()) {
    struct stat st{};
    if (::stat(unix_path_.c_str(), &st) == 0 && st.st_dev == unix_dev_ && st.st_ino == unix_ino_)
      ::unlink(unix_path_.c_str());
  }
  sockets_.clear();  // closes
  if (serving_forever && !serving_forever.done()) {
    try {
      serving_forever.cancel();
    } catch (...) {
    }
  }
  serving_forever = {};
  if (clients_.empty()) wakeup();
}

void ServerCore::wakeup() noexcept {
  if (woken) return;
  woken = true;
  std::vector<Future<void>> ws = std::move(waiters);
  waiters.clear();
  for (auto& w : ws) {
    try {
      if (!w.done()) w.set_result();
    } catch (...) {
    }
  }
}

void ServerCore::detach(SocketTransport* t) noexcept {
  clients_.erase(t);
  if (clients_.empty() && closed_) wakeup();
}

void ServerCore::close_clients() {
  std::vector<SocketTransport*> copy(clients_.begin(), clients_.end());
  for (auto* t : copy) t->close();
}

void ServerCore::abort_clients() {
  std::vector<SocketTransport*> copy(clients_.begin(), clients_.end());
  for (auto* t : copy) t->abort();
}

void ServerCore::set_unix_cleanup(std::string path) {
  struct stat st{};
  if (path.empty() || path[0] == '\0' || ::stat(path.c_str(), &st) != 0) return;
  unix_path_ = std::move(path);
  unix_dev_ = st.st_dev;
  unix_ino_ = st.st_ino;
}

void ServerCore::on_accepted(int fd, const Socket& listening, const SocketAddress& peer) noexcept {
  Socket conn = wrap_socket(fd, listening.family(), listening.type(), listening.proto());
  if (keep_alive_) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  }
  std::shared_ptr<StreamProtocolBase> protocol;
  try {
    protocol = factory_();
    if (!protocol) throw RuntimeError("the protocol factory returned null");
    auto t = std::make_shared<SocketTransport>(*loop_, std::move(conn), std::move(protocol), shared_from_this(), &peer);
    t->start({});
  } catch (...) {
    // The connection closes with `conn` (or with the transport that was being made).
    loop_->call_exception_handler({"Error on transport creation for incoming connection", std::current_exception(), {}, {}});
  }
}

/// With ssl=, each accepted connection's protocol goes behind its own TLS layer.
ProtocolFactory server_ssl_factory(EventLoop& loop, ProtocolFactory factory, const ServerOptions& options) {
  if (!options.ssl) return factory;
  if (options.ssl->side() != ssl::Side::server) throw ValueError("a server needs a server-side SSLContext");
  SSLOptions ssl{*options.ssl, true, {}, options.ssl_handshake_timeout, options.ssl_shutdown_timeout};
  return [&loop, factory = std::move(factory), ssl = std::move(ssl)]() -> std::shared_ptr<StreamProtocolBase> {
    std::shared_ptr<StreamProtocolBase> app = factory();
    if (!app) return nullptr;
    return std::make_shared<SSLProtocol>(loop, std::move(app), ssl, Future<void>());
  };
}

}  // namespace detail

// ---- Server ----------------------------------------------------------------------------------------

struct Server::Handle {
  explicit Handle(std::shared_ptr<detail::ServerCore> c) noexcept : core(std::move(c)) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { core->close(); }
  std::shared_ptr<detail::ServerCore> core;
};

Server::Server(std::shared_ptr<detail::ServerCore> core) : h_(std::make_shared<Handle>(std::move(core))) {}

const std::shared_ptr<detail::ServerCore>& Server::core() const {
  if (!h_) throw RuntimeError("empty Server handle");
  return h_->core;
}

EventLoop& Server::get_loop() const { return *core()->loop(); }
bool Server::is_serving() const { return core()->is_serving(); }
void Server::close() { core()->close(); }
const std::vector<Socket>& Server::sockets() const { return core()->sockets(); }
void Server::close_clients() { core()->close_clients(); }
void Server::abort_clients() { core()->abort_clients(); }
std::size_t Server::active_count() const { return core()->active_count(); }

Coro<void> Server::start_serving() {
  std::shared_ptr<detail::ServerCore> c = core();
  c->start_serving();
  co_await sleep(0);  // as asyncio: one iteration, so that the listeners are in place
}

namespace {
Coro<void> wait_closed_core(std::shared_ptr<detail::ServerCore> c) {
  if (c->woken) co_return;
  Future<void> waiter = c->loop()->create_future<void>();
  c->waiters.push_back(waiter);
  co_await waiter;
}
}  // namespace

Coro<void> Server::wait_closed() { return wait_closed_core(core()); }

Coro<void> Server::serve_forever() {
  std::shared_ptr<detail::ServerCore> c = core();
  if (c->serving_forever) throw RuntimeError("server is already being awaited on serve_forever()");
  if (c->is_closed()) throw RuntimeError("server is closed");
  c->start_serving();
  Future<void> forever = c->loop()->create_future<void>();
  c->serving_forever = forever;
  std::exception_ptr cancelled;
  try {
    co_await forever;
  } catch (const CancelledError&) {
    cancelled = std::current_exception();
  }
  if (c->serving_forever == forever) c->serving_forever = {};
  if (cancelled) {
    c->close();
    co_await wait_closed_core(c);
    std::rethrow_exception(cancelled);
  }
}

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
