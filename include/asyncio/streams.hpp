// SPDX-License-Identifier: MIT
// Streams: Python's high-level asyncio networking (open_connection, start_server, StreamReader,
// StreamWriter), built on transports and protocols.
//
//   auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", 8888);
//   writer.write("hello\n");
//   co_await writer.drain();                        // backpressure: waits while the buffer is full
//   std::string line = co_await reader.readline();  // "" at end of stream
//   writer.close();
//   co_await writer.wait_closed();
//
//   asyncio::Server server = co_await asyncio::start_server(
//       [](asyncio::StreamReader reader, asyncio::StreamWriter writer) -> asyncio::Coro<void> {
//         while (true) {
//           std::string line = co_await reader.readline();
//           if (line.empty()) break;
//           writer.write(line);
//           co_await writer.drain();
//         }
//       },
//       "127.0.0.1", 8888);
//   co_await server.serve_forever();
//
// Bytes are std::string (Python's bytes); arguments are std::string_view.
//
// Lifetimes. StreamReader and StreamWriter are handles: copies share one stream. A connection is
// closed when the last StreamWriter for it is destroyed (Python 3.13 does the same when a writer
// is garbage collected), so a start_server callback that returns closes its connection; to hand a
// connection to another task, give that task the writer. Each connection accepted by
// start_server runs its callback as a task of the loop; an exception escaping the callback is
// reported to the loop's exception handler and closes the connection. The callback (a
// std::function) is kept alive by the task for as long as the coroutine runs.
//
// Limits. A StreamReader buffers at most about `limit` bytes (64 KiB by default) before it stops
// reading from the socket (it pauses the transport at 2 × limit, as asyncio). readline(),
// readuntil() raise LimitOverrunError when no separator is found within `limit` bytes, so a
// peer cannot make the reader's memory grow without bound.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <any>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "asyncio/coro.hpp"
#include "asyncio/transports.hpp"

namespace asyncio {

/// Python's streams._DEFAULT_LIMIT (64 KiB). The `limit` arguments are signed, so that a
/// negative one is Python's ValueError("Limit cannot be <= 0"), not a huge unsigned limit.
inline constexpr std::size_t DEFAULT_LIMIT = 64 * 1024;

namespace detail {
class ReaderState;
class StreamProtocolImpl;
struct WriterCore;
}  // namespace detail

/// Python's asyncio.StreamReader. Only one task may wait on a reader at a time (RuntimeError).
class StreamReader {
 public:
  /// A reader fed by hand with feed_data / feed_eof (no transport), with this buffer limit.
  /// ValueError("Limit cannot be <= 0") unless limit > 0.
  explicit StreamReader(std::ptrdiff_t limit = DEFAULT_LIMIT);
  /// Library-internal: made by open_connection and start_server.
  explicit StreamReader(std::shared_ptr<detail::ReaderState> state) noexcept : s_(std::move(state)) {}

  /// Up to `n` bytes (at least one, unless at EOF: ""), or with n < 0 everything until EOF.
  Coro<std::string> read(std::ptrdiff_t n = -1);
  /// One line including "\n"; at EOF the partial last line, then "". A line longer than the limit
  /// raises LimitOverrunError (a ValueError, as in Python) and is discarded up to its end or as
  /// far as it was buffered.
  Coro<std::string> readline();
  /// Data up to and including `separator`. IncompleteReadError at EOF (partial: what was left);
  /// LimitOverrunError if the separator is not within `limit` bytes (the data stays buffered).
  Coro<std::string> readuntil(std::string separator = "\n");
  /// Exactly `n` bytes; IncompleteReadError if the stream ends first (the data is consumed).
  /// ValueError for a negative n (signed, so that -1 is not read as 2^64 - 1).
  Coro<std::string> readexactly(std::ptrdiff_t n);
  /// True once EOF was fed and the buffer is empty.
  bool at_eof() const;

  // ---- the feeding side (the protocol calls these; public as in Python) ----
  /// RuntimeError("feed_data after feed_eof") once feed_eof was called (Python asserts); the data
  /// is dropped.
  void feed_data(std::string_view data);
  /// Marks the end of the stream (Python's StreamReader.feed_eof()).
  void feed_eof();
  /// The error set with set_exception, or null (Python's StreamReader.exception()).
  std::exception_ptr exception() const;
  /// Makes pending and later reads raise `e` (Python's StreamReader.set_exception()).
  void set_exception(std::exception_ptr e);
  /// The transport that reading is paused and resumed on (null: none).
  void set_transport(Transport* transport);

  /// The buffer limit that readline and readuntil enforce.
  std::size_t limit() const;
  /// Bytes buffered now (not in Python; for monitoring memory).
  std::size_t buffered() const;
  /// Library-internal: the shared state.
  const std::shared_ptr<detail::ReaderState>& state() const noexcept { return s_; }

 private:
  std::shared_ptr<detail::ReaderState> s_;
};

/// Python's asyncio.StreamWriter: a transport plus drain() and wait_closed().
class StreamWriter {
 public:
  StreamWriter() noexcept = default;
  /// Library-internal: made by open_connection and start_server.
  explicit StreamWriter(std::shared_ptr<detail::WriterCore> core) noexcept : c_(std::move(core)) {}

  /// Buffers or sends at once (see Transport::write); follow with `co_await drain()`.
  void write(std::string_view data);
  /// Writes each chunk in order (Python's StreamWriter.writelines()).
  void writelines(std::initializer_list<std::string_view> chunks);
  /// Writes each chunk of any range of string-likes.
  template <std::ranges::input_range R>
  void writelines(const R& chunks) {
    transport().writelines(chunks);
  }
  /// Waits while the transport's buffer is above its high water mark (until it drains below the
  /// low one). Raises the reader's error if the connection failed, and std::system_error
  /// (ECONNRESET, "Connection lost") once the connection is gone.
  Coro<void> drain();
  /// True if write_eof() is supported (Python's StreamWriter.can_write_eof()).
  bool can_write_eof() const;
  /// Half-close: the peer reads EOF; we can still read.
  void write_eof();
  /// Closes the connection (after the buffered data is sent).
  void close();
  /// True once close() was called or the connection is going (Python's is_closing()).
  bool is_closing() const;
  /// Waits until the connection is closed; raises the error it was lost with, if any.
  Coro<void> wait_closed();
  /// The transport's extra info `name` ("peername", "sockname", "socket", ...), or `default_value`.
  std::any get_extra_info(std::string_view name, std::any default_value = {}) const;
  /// The extra info as a T, or nullopt if missing or of another type.
  template <class T>
  std::optional<T> get_extra_info(std::string_view name) const {
    return transport().get_extra_info<T>(name);
  }
  /// The transport underneath (Python's StreamWriter.transport).
  Transport& transport() const;
  /// The transport underneath, shared.
  std::shared_ptr<Transport> transport_ptr() const;
#if ASYNCIO_HAS_TLS
  /// Upgrades the connection to TLS (Python 3.11's StreamWriter.start_tls): drains, runs the
  /// handshake (as the server if this writer came from start_server), and from then on this
  /// writer and its reader go through TLS. On failure the connection is closed.
  ///   co_await writer.start_tls(asyncio::ssl::create_default_context(), "example.com");
  Coro<void> start_tls(ssl::SSLContext sslcontext, std::string server_hostname = "",
                       double ssl_handshake_timeout = 60.0);
#endif

  /// True unless default-constructed.
  explicit operator bool() const noexcept { return bool(c_); }

 private:
  std::shared_ptr<detail::WriterCore> c_;
};

/// The connection callback of start_server.
using ClientConnectedCallback = std::function<Coro<void>(StreamReader, StreamWriter)>;

/// Connects and returns (reader, writer) (Python's asyncio.open_connection).
Coro<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, std::uint16_t port,
                                                            ConnectOptions options, std::ptrdiff_t limit = DEFAULT_LIMIT);
Coro<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, std::uint16_t port);
/// Serves `client_connected_cb(reader, writer)` for each connection, each in its own task
/// (Python's asyncio.start_server).
Coro<Server> start_server(ClientConnectedCallback client_connected_cb, std::string host, std::uint16_t port,
                          ServerOptions options, std::ptrdiff_t limit = DEFAULT_LIMIT);
Coro<Server> start_server(ClientConnectedCallback client_connected_cb, std::string host, std::uint16_t port);
/// The same on every address of every host (see create_server with a host list).
Coro<Server> start_server(ClientConnectedCallback client_connected_cb, std::vector<std::string> hosts,
                          std::uint16_t port, ServerOptions options, std::ptrdiff_t limit = DEFAULT_LIMIT);
Coro<Server> start_server(ClientConnectedCallback client_connected_cb, std::vector<std::string> hosts,
                          std::uint16_t port);
/// The same on Unix sockets.
Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection(std::string path, std::ptrdiff_t limit = DEFAULT_LIMIT);
Coro<Server> start_unix_server(ClientConnectedCallback client_connected_cb, std::string path, ServerOptions options,
                               std::ptrdiff_t limit = DEFAULT_LIMIT);
Coro<Server> start_unix_server(ClientConnectedCallback client_connected_cb, std::string path);

/// Streams over pipes: a StreamReader reading the read end `fd` of a pipe (or FIFO, socket or
/// terminal), through a read pipe transport (pipes.hpp) that owns `fd`. The transport is returned
/// too: it closes itself when the writer's end closes (the reader then sees EOF); close it
/// yourself to stop reading earlier.
///
///   auto [reader, transport] = co_await asyncio::open_read_pipe(fds[0]);
///   std::string line = co_await reader.readline();
Coro<std::pair<StreamReader, std::shared_ptr<Transport>>> open_read_pipe(int fd, std::ptrdiff_t limit = DEFAULT_LIMIT);

/// A StreamWriter writing to the write end `fd` of a pipe, through a write pipe transport that
/// owns `fd`; drain() waits while the pipe is full. As for connections, the last StreamWriter
/// closes the pipe (after writing what is buffered).
///
///   asyncio::StreamWriter writer = co_await asyncio::open_write_pipe(fds[1]);
///   writer.write("line\n");
///   co_await writer.drain();
Coro<StreamWriter> open_write_pipe(int fd);

namespace detail {
/// A StreamWriter over `transport` (already connected to another protocol), and the protocol
/// whose pause_writing / resume_writing / connection_lost the caller forwards from the transport
/// so that drain() and wait_closed() work: the subprocess layer's stdin.
std::pair<StreamWriter, std::shared_ptr<BaseProtocol>> make_stream_writer(std::shared_ptr<Transport> transport);
/// Room at the end of `reader`'s buffer for a transport to read into (a BufferedProtocol's
/// get_buffer), then how much it wrote there (buffer_updated): the subprocess layer feeds a
/// child's output to its StreamReader this way, without a copy.
std::span<char> reader_get_buffer(StreamReader& reader);
void reader_buffer_updated(StreamReader& reader, std::size_t nbytes);
}  // namespace detail

}  // namespace asyncio
#pragma GCC visibility pop
