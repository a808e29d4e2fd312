// SPDX-License-Identifier: MIT
// Servers: Python's Server object and the accept loop behind it (ServerCore); the entry points
// that make one (create_server, create_unix_server) are in streams/create_server.cpp.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <system_error>

#include "asyncio/dns.hpp"
#include "asyncio/log.hpp"
#include "asyncio/sleep.hpp"
#include "asyncio/task.hpp"
#include "net/net_internal.hpp"

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
    // Up to `backlog` connections per readiness event, as asyncio does; but at least one, or a
    // server with backlog <= 0 would never accept and the ready listener would spin the loop.
    for (int i = 0; i < std::max(core_.backlog_, 1) && registered_; ++i) {
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

}  // namespace asyncio
