// SPDX-License-Identifier: MIT
#include "asyncio/dns.hpp"

#include <cerrno>
#include <cstring>

#include "asyncio/threads.hpp"

namespace asyncio {

namespace {

class GaiCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int code) const override { return ::gai_strerror(code); }
};

[[noreturn]] void throw_gai(int code, const std::string& what) {
  if (code == EAI_SYSTEM) throw std::system_error(errno, std::system_category(), what);
  throw std::system_error(code, gai_category(), what);
}

std::string describe_query(const std::string& host, const std::string& port) {
  return "getaddrinfo('" + host + "', '" + port + "')";
}

bool is_numeric_port(const std::string& port) {
  if (port.empty()) return true;
  for (char c : port)
    if (c < '0' || c > '9') return false;
  return true;
}

/// The inline path: a numeric (or empty) host with a numeric (or no) port never reaches the
/// resolver's network lookups. Returns false if the host is not numeric.
bool try_numeric(const std::string& host, const std::string& port, int family, int type, int proto, int flags,
                 std::vector<AddrInfo>& out) {
  if (!is_numeric_port(port)) return false;
  int nflags = flags | AI_NUMERICSERV | (host.empty() ? 0 : AI_NUMERICHOST);
  try {
    out = detail::getaddrinfo_blocking(host, port, family, type, proto, nflags);
    return true;
  } catch (const std::system_error& e) {
    if (!host.empty() && e.code() == std::error_code(EAI_NONAME, gai_category())) {
      // Not a numeric host, or numeric but of another family than asked: in the second case the
      // resolver gives the same answer, so asking it is merely slower, never different.
      return false;
    }
    throw;
  }
}

}  // namespace

const std::error_category& gai_category() noexcept {
  static const GaiCategory category;
  return category;
}

namespace detail {

std::vector<AddrInfo> getaddrinfo_blocking(const std::string& host, const std::string& port, int family, int type,
                                           int proto, int flags) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = type;
  hints.ai_protocol = proto;
  hints.ai_flags = flags;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.empty() ? nullptr : port.c_str(), &hints, &res);
  if (rc != 0) throw_gai(rc, describe_query(host, port));
  std::vector<AddrInfo> out;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    AddrInfo info;
    info.family = ai->ai_family;
    info.type = ai->ai_socktype;
    info.proto = ai->ai_protocol;
    if (ai->ai_canonname) info.canonname = ai->ai_canonname;
    info.address = SocketAddress(ai->ai_addr, ai->ai_addrlen);
    out.push_back(std::move(info));
  }
  ::freeaddrinfo(res);
  return out;
}

std::pair<std::string, std::string> getnameinfo_blocking(const SocketAddress& address, int flags) {
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  int rc = ::getnameinfo(address.native(), address.native_size(), host, sizeof host, serv, sizeof serv, flags);
  if (rc != 0) throw_gai(rc, "getnameinfo(" + address.to_string() + ")");
  return {host, serv};
}

}  // namespace detail

Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, std::string port, int family, int type, int proto,
                                        int flags) {
  std::vector<AddrInfo> out;
  if (try_numeric(host, port, family, type, proto, flags, out)) co_return out;
  co_return co_await to_thread(&detail::getaddrinfo_blocking, std::move(host), std::move(port), family, type, proto,
                               flags);
}

Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, std::uint16_t port, int family, int type, int proto,
                                        int flags) {
  return getaddrinfo(std::move(host), std::to_string(port), family, type, proto, flags);
}

Coro<std::pair<std::string, std::string>> getnameinfo(SocketAddress address, int flags) {
  if ((flags & (NI_NUMERICHOST | NI_NUMERICSERV)) == (NI_NUMERICHOST | NI_NUMERICSERV) ||
      address.family() == AF_UNIX)
    co_return detail::getnameinfo_blocking(address, flags);
  co_return co_await to_thread(&detail::getnameinfo_blocking, std::move(address), flags);
}

}  // namespace asyncio
