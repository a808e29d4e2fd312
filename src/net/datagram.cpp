// SPDX-License-Identifier: MIT
// Datagram endpoints: Python's _SelectorDatagramTransport and loop.create_datagram_endpoint.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <map>
#include <system_error>

#include "asyncio/dns.hpp"
#include "asyncio/log.hpp"
#include "asyncio/transports.hpp"
#include "asyncio/future.hpp"
#include "asyncio/loop.hpp"
#include "net/net_internal.hpp"

namespace asyncio::detail {

namespace {

constexpr std::size_t kMaxDatagram = 256 * 1024;  // asyncio's max_size
constexpr std::size_t kHeaderSize = 8;             // asyncio counts this per queued datagram

char* datagram_buffer() {
  static thread_local std::unique_ptr<char[]> buf(new char[kMaxDatagram]);
  return buf.get();
}

class DatagramSocketTransport final : public DatagramTransport, private FdListener, private CloseHook {
 public:
  DatagramSocketTransport(EventLoop& loop, Socket sock, std::shared_ptr<DatagramProtocol> protocol,
                          std::optional<SocketAddress> remote, bool remote_connected)
      : loop_(&loop), sock_(std::move(sock)), fd_(sock_.fileno()), protocol_(std::move(protocol)),
        remote_connected_(remote_connected) {
    if (remote) peername_ = *remote;
    try {
      sockname_ = sock_.getsockname();
    } catch (const std::system_error&) {
    }
  }
  ~DatagramSocketTransport() override {
    unhook();
    if (interest_ && !loop_->is_closed()) {
      try {
        loop_->set_fd_listener(fd_, nullptr, 0);
      } catch (...) {
      }
    }
  }

  void start(Future<void> waiter) {
    self_ = std::static_pointer_cast<DatagramSocketTransport>(BaseTransport::shared_from_this());
    loop_->add_close_hook(this);
    hooked_ = true;
    loop_->call_soon([self = self_, waiter]() mutable {
      if (self->protocol_) {
        self->connected_ = true;
        try {
          self->protocol_->connection_made(*self);
        } catch (...) {
          std::exception_ptr e = std::current_exception();
          if (waiter && !waiter.done()) waiter.set_exception(e);
          self->fatal_error(e, "Fatal error: protocol.connection_made() call failed.");
          return;
        }
      }
      self->reading_ = true;
      self->update_interest();
      if (waiter && !waiter.done()) waiter.set_result();
    });
  }

  // ---- BaseTransport ----
  std::any get_extra_info(std::string_view name, std::any default_value) const override {
    if (name == "peername") return peername_.empty() ? default_value : std::any(peername_);
    if (name == "sockname") return sockname_.empty() ? default_value : std::any(sockname_);
    if (name == "socket") return std::any(SocketView{sock_.fileno(), sock_.family(), sock_.type()});
    return default_value;
  }
  bool is_closing() const noexcept override { return closing_; }
  void close() override {
    if (closing_) return;
    closing_ = true;
    if (queue_.empty()) {
      ++conn_lost_;
      update_interest();
      schedule_connection_lost(nullptr);
    } else {
      update_interest();
    }
  }
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override {
    auto p = std::dynamic_pointer_cast<DatagramProtocol>(protocol);
    if (!p) throw ValueError("a DatagramTransport needs a DatagramProtocol");
    protocol_ = std::move(p);
  }
  std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }

  // ---- DatagramTransport ----
  void sendto(std::string_view data, std::optional<SocketAddress> addr) override {
    if (!peername_.empty()) {
      if (addr && !(*addr == peername_))
        throw ValueError("Invalid address: must be None or " + peername_.to_string());
      // A connected socket sends with send(); a broadcast endpoint is not connected (asyncio).
      if (remote_connected_)
        addr.reset();
      else
        addr = peername_;
    } else if (!addr) {
      throw ValueError("sendto() needs an address: the endpoint has no remote address");
    }
    if (conn_lost_ || !sock_) {
      if (conn_lost_ >= kLogThresholdForConnlostWrites) log(LogLevel::warning, "socket.send() raised exception.");
      ++conn_lost_;
      return;
    }
    if (queue_.empty()) {
      int err = send_one(data, addr);
      if (err == 0) return;
      if (!would_block(err)) {
        report_error(os_error(err, addr ? "sendto" : "send"));
        return;
      }
    }
    queue_.emplace_back(std::string(data), addr);
    queued_ += data.size() + kHeaderSize;
    update_interest();
    maybe_pause_protocol();
  }
  void abort() override { force_close(nullptr); }
  std::size_t get_write_buffer_size() const noexcept override { return queued_; }
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override { return {low_, high_}; }
  void set_write_buffer_limits(std::optional<std::ptrdiff_t> high, std::optional<std::ptrdiff_t> low) override {
    std::tie(low_, high_) = write_buffer_limits(high, low);
    maybe_pause_protocol();
  }

 private:
  int send_one(std::string_view data, const std::optional<SocketAddress>& addr) noexcept {
    for (;;) {
      ssize_t n = addr ? ::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL, addr->native(), addr->native_size())
                       : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) return 0;
      if (errno == EINTR) continue;
      return errno;
    }
  }

  void update_interest() noexcept {
    std::uint32_t want = 0;
    if (reading_ && !closing_ && sock_) want |= poll_readable;
    if (!queue_.empty() && sock_) want |= poll_writable;
    if (want == interest_) return;
    try {
      loop_->set_fd_listener(fd_, this, want);
      interest_ = want;
    } catch (...) {
      interest_ = 0;
    }
  }

  void on_fd_ready(std::uint32_t events) noexcept override {
    if ((events & poll_readable) && (interest_ & poll_readable)) read_ready();
    if ((events & poll_writable) && (interest_ & poll_writable)) write_ready();
  }

  void read_ready() noexcept {
    char* buf = datagram_buffer();
    SocketAddress from;
    socklen_t len = SocketAddress::capacity();
    ssize_t n = ::recvfrom(fd_, buf, kMaxDatagram, 0, from.native(), &len);
    if (n < 0) {
      if (!would_block(errno)) report_error(os_error(errno, "recvfrom"));
      return;
    }
    from.set_native_size(len);
    if (!protocol_) return;
    try {
      protocol_->datagram_received(std::string_view(buf, static_cast<std::size_t>(n)), from);
    } catch (...) {
      fatal_error(std::current_exception(), "Fatal error: protocol.datagram_received() call failed.");
    }
  }

  void write_ready() noexcept {
    while (!queue_.empty()) {
      auto& [data, addr] = queue_.front();
      int err = send_one(data, addr);
      if (would_block(err)) break;
      std::size_t size = data.size() + kHeaderSize;
      queue_.pop_front();
      queued_ -= size;
      if (err != 0) {
        report_error(os_error(err, "sendto"));
        if (conn_lost_) return;
      }
    }
    maybe_resume_protocol();
    if (!queue_.empty() || conn_lost_) return;
    update_interest();
    if (closing_) {
      ++conn_lost_;
      schedule_connection_lost(nullptr);
    }
  }

  void report_error(std::exception_ptr e) noexcept {
    if (!protocol_) return;
    try {
      protocol_->error_received(e);
    } catch (...) {
      fatal_error(std::current_exception(), "Fatal error: protocol.error_received() call failed.");
    }
  }

  void fatal_error(std::exception_ptr exc, const char* message) noexcept {
    report_fatal_error(*loop_, exc, message);
    force_close(exc);
  }

  void force_close(std::exception_ptr exc) noexcept {
    if (conn_lost_) return;
    queue_.clear();
    queued_ = 0;
    closing_ = true;
    ++conn_lost_;
    update_interest();
    schedule_connection_lost(std::move(exc));
  }

  void schedule_connection_lost(std::exception_ptr exc) noexcept {
    if (!self_) return;
    try {
      loop_->call_soon([self = std::move(self_), exc]() { self->call_connection_lost(exc); });
    } catch (...) {
      auto keep = std::move(self_);
      call_connection_lost(exc);
    }
  }

  void call_connection_lost(std::exception_ptr exc) noexcept {
    unhook();
    if (connected_ && protocol_) {
      try {
        protocol_->connection_lost(exc);
      } catch (...) {
        loop_->call_exception_handler({"Exception in protocol.connection_lost()", std::current_exception(), {}, {}});
      }
    }
    queue_.clear();
    reading_ = false;
    update_interest();
    sock_.close();
    protocol_.reset();
  }

  void loop_closing() noexcept override {
    hooked_ = false;
    auto keep = std::move(self_);
    queue_.clear();
    closing_ = true;
    ++conn_lost_;
    reading_ = false;
    update_interest();
    sock_.close();
    protocol_.reset();
  }

  void unhook() noexcept {
    if (hooked_) {
      hooked_ = false;
      loop_->remove_close_hook(this);
    }
  }

  void maybe_pause_protocol() noexcept {
    if (queued_ <= high_ || protocol_paused_ || !protocol_) return;
    protocol_paused_ = true;
    try {
      protocol_->pause_writing();
    } catch (...) {
      loop_->call_exception_handler({"protocol.pause_writing() failed", std::current_exception(), {}, {}});
    }
  }
  void maybe_resume_protocol() noexcept {
    if (!protocol_paused_ || queued_ > low_ || !protocol_) return;
    protocol_paused_ = false;
    try {
      protocol_->resume_writing();
    } catch (...) {
      loop_->call_exception_handler({"protocol.resume_writing() failed", std::current_exception(), {}, {}});
    }
  }

  EventLoop* loop_;
  Socket sock_;
  int fd_;
  std::shared_ptr<DatagramProtocol> protocol_;
  std::shared_ptr<DatagramSocketTransport> self_;
  std::deque<std::pair<std::string, std::optional<SocketAddress>>> queue_;
  std::size_t queued_ = 0;
  std::size_t high_ = 64 * 1024;
  std::size_t low_ = 16 * 1024;
  SocketAddress peername_;
  SocketAddress sockname_;
  std::uint32_t interest_ = 0;
  int conn_lost_ = 0;
  bool closing_ = false;
  bool reading_ = false;
  bool connected_ = false;
  bool protocol_paused_ = false;
  bool hooked_ = false;
  bool remote_connected_;
};

void remove_stale_unix_socket(const std::string& path) {
  if (path.empty() || path[0] == '\0') return;
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
}

/// Python's rule: a (family, proto) pair both addresses resolve to.
struct Candidate {
  int family = 0;
  int proto = 0;
  std::optional<SocketAddress> local, remote;
};

// (Built outside the coroutine: g++ 12 mishandles some braced temporaries inside coroutines.)
Candidate make_candidate(int family, int proto) {
  Candidate c;
  c.family = family;
  c.proto = proto;
  return c;
}

}  // namespace

Coro<std::pair<std::shared_ptr<DatagramTransport>, std::shared_ptr<DatagramProtocol>>> create_datagram_endpoint(
    DatagramProtocolFactory factory, DatagramOptions options) {
  EventLoop& loop = get_running_loop();
  Socket sock;
  std::optional<SocketAddress> remote;
  bool remote_connected = true;
  const bool have_local = options.local_addr || !options.local_path.empty();
  const bool have_remote = options.remote_addr || !options.remote_path.empty();
  if (options.sock) {
    if (options.sock.type() != SOCK_DGRAM) throw ValueError("A datagram socket was expected");
    if (have_local || have_remote || options.family || options.proto || options.flags || options.reuse_port ||
        options.allow_broadcast)
      throw ValueError("socket modifier keyword arguments can not be used when sock is specified");
    sock = std::move(options.sock);
    try {
      remote = sock.getpeername();  // an already connected socket keeps its peer
    } catch (const std::system_error&) {
    }
  } else {
    std::vector<Candidate> candidates;
    if (options.family == AF_UNIX) {
      Candidate c = make_candidate(AF_UNIX, options.proto);
      if (!options.local_path.empty()) {
        remove_stale_unix_socket(options.local_path);
        c.local = SocketAddress::unix_path(options.local_path);
      }
      if (!options.remote_path.empty()) c.remote = SocketAddress::unix_path(options.remote_path);
      candidates.push_back(c);
    } else if (!have_local && !have_remote) {
      if (options.family == 0) throw ValueError("unexpected address family");
      candidates.push_back(make_candidate(options.family, options.proto));
    } else {
      // Resolve both, and keep the (family, proto) pairs for which every given address resolved.
      std::map<std::pair<int, int>, Candidate> by_key;
      std::vector<std::pair<int, int>> order;
      for (int which = 0; which < 2; ++which) {
        const auto& addr = which == 0 ? options.local_addr : options.remote_addr;
        if (!addr) continue;
        std::vector<AddrInfo> infos =
            co_await getaddrinfo(addr->first, addr->second, options.family, SOCK_DGRAM, options.proto, options.flags);
        if (infos.empty())
          throw std::system_error(std::make_error_code(std::errc::address_not_available),
                                  "getaddrinfo() returned empty list");
        for (const AddrInfo& ai : infos) {
          std::pair<int, int> key(ai.family, ai.proto);
          auto it = by_key.find(key);
          if (it == by_key.end()) {
            it = by_key.emplace(key, make_candidate(ai.family, ai.proto)).first;
            order.push_back(key);
          }
          auto& slot = which == 0 ? it->second.local : it->second.remote;
          if (!slot) slot = ai.address;
        }
      }
      for (const auto& key : order) {
        const Candidate& c = by_key.at(key);
        if ((options.local_addr && !c.local) || (options.remote_addr && !c.remote)) continue;
        candidates.push_back(c);
      }
      if (candidates.empty()) throw ValueError("can not get address information");
    }
    std::exception_ptr first_error;
    for (const Candidate& c : candidates) {
      std::exception_ptr error;
      try {
        Socket s(c.family, SOCK_DGRAM, c.proto);
        if (options.reuse_port) s.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
        if (options.allow_broadcast) s.setsockopt(SOL_SOCKET, SO_BROADCAST, 1);
        if (c.local) s.bind(*c.local);
        sock = std::move(s);
      } catch (const std::system_error&) {
        error = std::current_exception();
      }
      if (!error && c.remote) {
        if (!options.allow_broadcast) {
          try {
            co_await sock_connect(sock, *c.remote);
          } catch (const std::system_error&) {
            error = std::current_exception();
          }
        }
        if (!error) {
          remote = c.remote;
          remote_connected = !options.allow_broadcast;
        }
      }
      if (!error) break;
      sock.close();
      if (!first_error) first_error = error;
    }
    if (!sock) std::rethrow_exception(first_error);
  }
  std::shared_ptr<DatagramProtocol> protocol = factory();
  if (!protocol) throw ValueError("the protocol factory returned null");
  Future<void> waiter = loop.create_future<void>();
  auto transport = std::make_shared<DatagramSocketTransport>(loop, std::move(sock), protocol, remote, remote_connected);
  transport->start(waiter);
  co_await wait_until_started(*transport, std::move(waiter));
  co_return std::pair<std::shared_ptr<DatagramTransport>, std::shared_ptr<DatagramProtocol>>(transport, protocol);
}

}  // namespace asyncio::detail
