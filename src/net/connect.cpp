// SPDX-License-Identifier: MIT
// Happy Eyeballs: Python's staggered connection attempts over the addresses of a host (RFC 8305),
// the socket half of loop.create_connection; streams/create_connection.cpp puts a transport on
// the socket it returns.
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <system_error>

#include "asyncio/task.hpp"
#include "asyncio/wait.hpp"
#include "net/net_internal.hpp"

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
  detail::check_timeout(happy_eyeballs_delay, "happy_eyeballs_delay");
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

}  // namespace asyncio::detail
