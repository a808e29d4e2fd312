// SPDX-License-Identifier: MIT
// The echo server of the soak test (bench/soak.sh): a line-based echo on streams, plain or TLS,
// that counts what it serves and what goes wrong, and rewrites a one-line stats file every
// second for the script to read.
//
//   soak_server --stats FILE [--tls CERT KEY] [--readuntil] [--sndbuf BYTES] [--host 127.0.0.1] [--port 0]
//
// Protocol: each line (up to LIMIT bytes, "\n" included) is echoed as it came. A longer line is
// skipped to its end and answered with "ERR line too long\n"; the connection goes on. The
// client sends nothing after an over-long line until it has the answer, so the skip ends exactly
// at that line's "\n".
//
// Two ways to read, so that both paths of StreamReader are soaked: readline() (the default; it
// drops the over-long data itself) or, with --readuntil, readuntil("\n"), which leaves the data
// buffered and says in LimitOverrunError::consumed how much of it to drop.
//
// --sndbuf sets SO_SNDBUF on each accepted socket. Linux grows a loopback socket's send buffer
// up to 4 MiB (tcp_wmem), which swallows a slow reader's whole backlog before the library's own
// write buffer passes its high-water mark; a fixed kernel buffer makes drain() really wait.
//
// Errors are sorted the way bench/soak.sh reports them: a connection reset (ECONNRESET, EPIPE)
// or an over-long line is caused on purpose by the load generator; anything else — another
// exception in a connection, a partial line at EOF, anything the loop's exception handler or
// the log sink receives — is unexpected and also written to stderr (the first 200).
#include <asyncio/asyncio.hpp>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace {

// Twice the longest line the load generator sends (64 KiB), so a legal line never overruns.
constexpr std::ptrdiff_t kLimit = 128 * 1024;
// The streams' default high-water mark: past it, drain() waits (the flow control under test).
constexpr std::size_t kHighWater = 64 * 1024;
const std::string kTooLong = "ERR line too long\n";

struct Config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string stats_path;
  std::string cert, key;  // TLS when set
  bool readuntil = false;
  int sndbuf = 0;  // SO_SNDBUF of accepted sockets; 0: the kernel's default (autotuned)
};

struct Counters {
  std::uint64_t connections = 0;  // accepted, the callback ran
  std::uint64_t active = 0;       // callbacks still running
  std::uint64_t lines = 0;        // lines echoed
  std::uint64_t bytes = 0;        // bytes echoed
  std::uint64_t resets = 0;       // connections that ended with ECONNRESET / EPIPE
  std::uint64_t overlong = 0;     // lines over the limit, answered with kTooLong
  std::uint64_t drain_waits = 0;  // writes that left more than the high-water mark buffered
  std::uint64_t unexpected = 0;
};

Config g_config;
Counters g_count;
std::uint16_t g_port = 0;
std::size_t g_library_active = 0;  // Server::active_count(), sampled by the stats task

void unexpected(std::string_view where, std::string_view what) {
  ++g_count.unexpected;
  if (g_count.unexpected <= 200) {
    std::fprintf(stderr, "soak_server: unexpected (%.*s): %.*s\n", static_cast<int>(where.size()), where.data(),
                 static_cast<int>(what.size()), what.data());
    std::fflush(stderr);
  }
}

bool is_reset(const std::error_code& code) {
  return code == std::errc::connection_reset || code == std::errc::broken_pipe;
}

// After readline() raised LimitOverrunError: its message says whether the line's end was
// buffered (then readline dropped the line through it) or not (then the rest is still coming).
// Python's messages, which this library keeps word for word.
asyncio::Coro<void> skip_line_after_readline(asyncio::StreamReader& reader, bool end_was_buffered) {
  while (!end_was_buffered) {
    std::string tail;
    try {
      tail = co_await reader.readline();
    } catch (const asyncio::LimitOverrunError& e) {
      end_was_buffered = std::string_view(e.what()).starts_with("Separator is found");
      continue;
    }
    if (tail.empty() || tail.back() != '\n') throw std::runtime_error("EOF inside an over-long line");
    co_return;
  }
}

// After readuntil() raised LimitOverrunError with `consumed`: the data is still buffered; drop
// what was looked at and look again until the separator comes.
asyncio::Coro<void> skip_line_after_readuntil(asyncio::StreamReader& reader, std::size_t consumed) {
  for (;;) {
    co_await reader.readexactly(static_cast<std::ptrdiff_t>(consumed));
    std::optional<std::size_t> more;
    try {
      co_await reader.readuntil("\n");
    } catch (const asyncio::LimitOverrunError& e) {
      more = e.consumed;
    }
    if (!more) co_return;
    consumed = *more;
  }
}

// Reads one line; nullopt at a clean EOF, or an empty string after an over-long line was
// skipped.
asyncio::Coro<std::optional<std::string>> next_line(asyncio::StreamReader& reader) {
  if (!g_config.readuntil) {
    std::optional<bool> end_was_buffered;
    std::string line;
    try {
      line = co_await reader.readline();
    } catch (const asyncio::LimitOverrunError& e) {
      end_was_buffered = std::string_view(e.what()).starts_with("Separator is found");
    }
    if (end_was_buffered) {
      co_await skip_line_after_readline(reader, *end_was_buffered);
      co_return std::string();
    }
    if (line.empty()) co_return std::nullopt;
    if (line.back() != '\n') throw std::runtime_error("EOF inside a line (" + std::to_string(line.size()) + " bytes)");
    co_return line;
  }
  std::optional<std::size_t> consumed;
  std::string line;
  try {
    line = co_await reader.readuntil("\n");
  } catch (const asyncio::LimitOverrunError& e) {
    consumed = e.consumed;
  } catch (const asyncio::IncompleteReadError& e) {
    if (!e.partial.empty())
      throw std::runtime_error("EOF inside a line (" + std::to_string(e.partial.size()) + " bytes)");
  }
  if (consumed) {
    co_await skip_line_after_readuntil(reader, *consumed);
    co_return std::string();
  }
  if (line.empty()) co_return std::nullopt;
  co_return line;
}

asyncio::Coro<void> echo(asyncio::StreamReader& reader, asyncio::StreamWriter& writer) {
  for (;;) {
    std::optional<std::string> line = co_await next_line(reader);
    if (!line) co_return;
    if (line->empty()) {
      ++g_count.overlong;
      writer.write(kTooLong);
    } else {
      ++g_count.lines;
      g_count.bytes += line->size();
      writer.write(*line);
    }
    if (writer.transport().get_write_buffer_size() > kHighWater) ++g_count.drain_waits;
    co_await writer.drain();
  }
}

asyncio::Coro<void> handle(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
  ++g_count.connections;
  ++g_count.active;
  if (g_config.sndbuf > 0) {
    auto sock = writer.get_extra_info<asyncio::SocketView>("socket");
    if (sock) {
      if (setsockopt(sock->fd, SOL_SOCKET, SO_SNDBUF, &g_config.sndbuf, sizeof g_config.sndbuf) != 0)
        unexpected("connection", std::string("setsockopt(SO_SNDBUF): ") + std::strerror(errno));
    } else if (!writer.is_closing()) {
      // Without a socket the connection must be gone already: a TLS client that closed or reset
      // right after its handshake (get_extra_info then has no "socket", as in Python).
      unexpected("connection", "no \"socket\" in get_extra_info of an open connection");
    }
  }
  try {
    co_await echo(reader, writer);
  } catch (const std::system_error& e) {
    if (is_reset(e.code()))
      ++g_count.resets;
    else
      unexpected("connection", e.what());
  } catch (const std::exception& e) {
    unexpected("connection", e.what());
  }
  --g_count.active;
  writer.close();
}

// Bytes malloc has handed out and not got back: unlike RSS it does not keep the high-water mark
// of a fragmented heap, so a leak shows here as growth that never comes back down.
std::size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

void write_stats() {
  std::string tmp = g_config.stats_path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return;
  std::fprintf(f,
               "port=%u connections=%llu active=%llu library_active=%zu lines=%llu bytes=%llu resets=%llu "
               "overlong=%llu drain_waits=%llu unexpected=%llu heap=%zu\n",
               g_port, static_cast<unsigned long long>(g_count.connections),
               static_cast<unsigned long long>(g_count.active), g_library_active,
               static_cast<unsigned long long>(g_count.lines), static_cast<unsigned long long>(g_count.bytes),
               static_cast<unsigned long long>(g_count.resets), static_cast<unsigned long long>(g_count.overlong),
               static_cast<unsigned long long>(g_count.drain_waits),
               static_cast<unsigned long long>(g_count.unexpected), heap_in_use());
  std::fclose(f);
  std::rename(tmp.c_str(), g_config.stats_path.c_str());
}

asyncio::Coro<void> serve() {
  asyncio::get_running_loop().set_exception_handler([](asyncio::EventLoop&, const asyncio::ExceptionContext& c) {
    unexpected("exception handler", c.message + ": " + asyncio::describe_exception(c.exception));
  });
  asyncio::ServerOptions options;
  options.backlog = 1024;
  if (!g_config.cert.empty()) {
    asyncio::ssl::SSLContext ctx(asyncio::ssl::Side::server);
    ctx.load_cert_chain(g_config.cert, g_config.key);
    options.ssl = ctx;
  }
  asyncio::ClientConnectedCallback callback = handle;
  asyncio::Server server =
      co_await asyncio::start_server(std::move(callback), g_config.host, g_config.port, std::move(options), kLimit);
  g_port = server.sockets().at(0).getsockname().port();
  std::printf("soak_server: %s on %s port %u, reading with %s\n", g_config.cert.empty() ? "plain" : "TLS",
              g_config.host.c_str(), g_port, g_config.readuntil ? "readuntil" : "readline");
  std::fflush(stdout);
  // Runs until the script kills the process: a soak server has no other reason to stop.
  for (;;) {
    g_library_active = server.active_count();
    write_stats();
    co_await asyncio::sleep(1.0);
  }
}

void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: soak_server --stats FILE [--tls CERT KEY] [--readuntil] [--sndbuf BYTES] [--host H] [--port P]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) usage();
      return std::string(argv[++i]);
    };
    if (a == "--stats") {
      g_config.stats_path = next();
    } else if (a == "--tls") {
      g_config.cert = next();
      g_config.key = next();
    } else if (a == "--readuntil") {
      g_config.readuntil = true;
    } else if (a == "--sndbuf") {
      g_config.sndbuf = std::atoi(next().c_str());
    } else if (a == "--host") {
      g_config.host = next();
    } else if (a == "--port") {
      g_config.port = static_cast<std::uint16_t>(std::atoi(next().c_str()));
    } else {
      usage();
    }
  }
  if (g_config.stats_path.empty()) usage();
  raise_fd_limit();
  // The library's diagnostics are unexpected here too (debug lines aside).
  asyncio::set_log_sink([](asyncio::LogLevel level, std::string_view text) {
    if (level >= asyncio::LogLevel::warning) unexpected("log", text);
  });
  asyncio::run(serve());
}
