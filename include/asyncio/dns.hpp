// SPDX-License-Identifier: MIT
// Name resolution on the loop: Python's loop.getaddrinfo / loop.getnameinfo.
//
//   for (const asyncio::AddrInfo& ai : co_await asyncio::getaddrinfo("example.org", 443)) {
//     std::cout << ai.address.to_string() << "\n";
//   }
//
// The system resolver blocks, so it runs on the loop's default executor (asyncio::to_thread), as
// asyncio does. Numeric hosts ("127.0.0.1", "::1") and an empty host are resolved inline with
// AI_NUMERICHOST, never leaving the loop thread. Cancelling the awaiting task raises
// CancelledError at once; the resolver call still finishes on its thread and its result is
// dropped. Failures are std::system_error in gai_category() (the EAI_* code; EAI_SYSTEM is reported
// with the errno in std::system_category()).
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <netdb.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "asyncio/coro.hpp"
#include "asyncio/socket.hpp"

namespace asyncio {

/// One getaddrinfo result (Python's 5-tuple family, type, proto, canonname, sockaddr).
struct AddrInfo {
  int family = 0;  ///< AF_INET, AF_INET6, AF_UNIX.
  int type = 0;  ///< SOCK_STREAM, SOCK_DGRAM, ...
  int proto = 0;  ///< IPPROTO_TCP, IPPROTO_UDP, or 0.
  std::string canonname;  ///< The canonical name (only with AI_CANONNAME, on the first entry).
  SocketAddress address;  ///< The address, port included.
};

/// The error category of getaddrinfo / getnameinfo failures (Python's socket.gaierror).
const std::error_category& gai_category() noexcept;

/// Resolves `host` (empty: Python's None, the wildcard with AI_PASSIVE or loopback otherwise) and
/// `port` (a number or a service name; empty: none). `family`, `type`, `proto` and `flags` are
/// getaddrinfo's hints (0: any).
Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, std::string port, int family = 0, int type = 0,
                                        int proto = 0, int flags = 0);
Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, std::uint16_t port, int family = 0, int type = 0,
                                        int proto = 0, int flags = 0);

/// Python's loop.getnameinfo(sockaddr, flags): (host, service). NI_NUMERICHOST | NI_NUMERICSERV
/// is answered inline; anything else may ask the resolver, on the default executor.
Coro<std::pair<std::string, std::string>> getnameinfo(SocketAddress address, int flags = 0);

namespace detail {
/// The blocking calls, for the executor (and for numeric lookups done inline).
std::vector<AddrInfo> getaddrinfo_blocking(const std::string& host, const std::string& port, int family,
                                           int type, int proto, int flags);
std::pair<std::string, std::string> getnameinfo_blocking(const SocketAddress& address, int flags);
}  // namespace detail

}  // namespace asyncio
#pragma GCC visibility pop
