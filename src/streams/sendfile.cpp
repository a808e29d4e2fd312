// SPDX-License-Identifier: MIT
// asyncio::sendfile (Python's loop.sendfile): a file sent over a transport. A socket transport
// sends it natively or by copying (net/transport_sendfile.cpp); over TLS only the copy path can
// send it, through the encryption.
#include <optional>

#include "asyncio/transports.hpp"
#include "net/net_internal.hpp"
#include "net/sendfile_internal.hpp"
#if ASYNCIO_HAS_TLS
#include "tls/ssl_internal.hpp"
#endif

namespace asyncio {

#if ASYNCIO_HAS_TLS
namespace {

/// TLS: only the copy path can send a file (the kernel would send it unencrypted), as in Python.
Coro<std::size_t> sendfile_over_tls(detail::SSLTransport& tls, int file_fd, std::int64_t offset,
                                    std::optional<std::int64_t> count, bool fallback) {
  if (!fallback) throw SendfileNotAvailableError("fallback is disabled and native sendfile is not supported over TLS");
  auto* socket = dynamic_cast<detail::SocketTransport*>(tls.socket_transport());
  if (tls.is_closing() || !socket) throw RuntimeError("Transport is closing");
  std::int64_t size = 0;
  detail::check_sendfile_file(file_fd, offset, count, fallback, size);
  auto keep_alive = tls.shared_from_this();
  std::size_t sent = 0;
  std::exception_ptr failure;
  try {
    co_await detail::transport_sendfile_by_copy(tls, *socket, file_fd, offset, detail::sendfile_count(count), sent);
  } catch (...) {
    failure = std::current_exception();
  }
  detail::leave_file_after(file_fd, offset, sent);
  if (failure) std::rethrow_exception(failure);
  co_return sent;
}

}  // namespace
#endif

Coro<std::size_t> sendfile(Transport& transport, int file_fd, std::int64_t offset,
                           std::optional<std::int64_t> count_arg, bool fallback) {
#if ASYNCIO_HAS_TLS
  if (auto* tls = dynamic_cast<detail::SSLTransport*>(&transport))
    co_return co_await sendfile_over_tls(*tls, file_fd, offset, count_arg, fallback);
#endif
  auto* socket_transport = dynamic_cast<detail::SocketTransport*>(&transport);
  if (!socket_transport) throw SendfileNotAvailableError("sendfile is not supported by this transport");
  if (transport.is_closing()) throw RuntimeError("Transport is closing");
  std::int64_t size = 0;
  bool regular = detail::check_sendfile_file(file_fd, offset, count_arg, fallback, size);
  std::optional<std::size_t> count = detail::sendfile_count(count_arg);
  auto keep_alive = transport.shared_from_this();
  socket_transport->begin_sendfile();
  std::size_t sent = 0;
  std::exception_ptr failure;
  try {
    bool done = false;
    if (regular) {
      std::size_t to_end = offset < size ? static_cast<std::size_t>(size - offset) : 0;
      std::size_t want = count ? *count : to_end;
      if (want == 0)
        done = true;
      else
        done = co_await detail::transport_sendfile_native(*socket_transport, file_fd, offset, want, sent);
      if (!done && !fallback) throw SendfileNotAvailableError("sendfile(2) cannot send this file");
    }
    if (!done)
      co_await detail::transport_sendfile_by_copy(*socket_transport, *socket_transport, file_fd, offset, count, sent);
  } catch (...) {
    failure = std::current_exception();
  }
  socket_transport->end_sendfile();
  detail::leave_file_after(file_fd, offset, sent);
  if (failure) std::rethrow_exception(failure);
  co_return sent;
}

}  // namespace asyncio
