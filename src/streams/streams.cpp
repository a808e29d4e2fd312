// SPDX-License-Identifier: MIT
// Streams: StreamReader, StreamWriter, the protocol between them and a transport, and the
// open_connection / start_server family (Python's asyncio/streams.py).
#include "asyncio/streams.hpp"

#include <cerrno>
#include <system_error>

#include "asyncio/detail/byte_buffer.hpp"
#include "asyncio/detail/intrusive_fifo.hpp"
#include "asyncio/detail/task_core.hpp"
#include "asyncio/pipes.hpp"
#include "asyncio/sleep.hpp"
#include "asyncio/task.hpp"

namespace asyncio {
namespace detail {

// ---- parking tasks on stream events ------------------------------------------------------------------

class WaitQueue;

/// Parks the current task in a WaitQueue until the queue wakes it (or the task is cancelled).
class ParkedWaiter final : public Suspension {
 public:
  using is_asyncio_awaitable = void;
  explicit ParkedWaiter(WaitQueue& q) noexcept : q_(&q) {}
  ParkedWaiter(const ParkedWaiter& o) noexcept : q_(o.q_) {}  // arguments only (see Suspension)
  ParkedWaiter& operator=(const ParkedWaiter&) = delete;
  ~ParkedWaiter();

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  void await_resume() { task_->resume_checked(aborted_); }
  bool cancel_wait(const std::string&) noexcept override;
  WaitTarget wait_target() const noexcept override;  // diagnostics: the queue's kind

 private:
  friend class WaitQueue;
  friend class IntrusiveFifo<ParkedWaiter>;
  WaitQueue* q_;
  ParkedWaiter* prev_ = nullptr;
  ParkedWaiter* next_ = nullptr;
  TaskCore* task_ = nullptr;
  bool linked_ = false;
  bool aborted_ = false;
};

/// An intrusive FIFO of parked tasks: no allocation to wait.
class WaitQueue {
 public:
  /// `kind` names the wait in task dumps and traces ("stream read", ...).
  explicit WaitQueue(const char* kind) noexcept : kind_(kind) {}
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;
  ~WaitQueue() { wake_all(); }

  bool empty() const noexcept { return fifo_.empty(); }
  void push(ParkedWaiter* w) noexcept {
    fifo_.push_back(w);
    w->linked_ = true;
  }
  void unlink(ParkedWaiter* w) noexcept {
    if (!w->linked_) return;
    fifo_.remove(w);
    w->linked_ = false;
  }
  const char* kind() const noexcept { return kind_; }
  /// Wakes every parked task; each re-checks the state it waited on.
  void wake_all() noexcept {
    while (ParkedWaiter* w = fifo_.front()) {
      unlink(w);
      w->task_->wake();
    }
  }

 private:
  const char* kind_;
  IntrusiveFifo<ParkedWaiter> fifo_;
};

ParkedWaiter::~ParkedWaiter() {
  if (linked_) q_->unlink(this);
}

void ParkedWaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = &require_current_task("wait on a stream");
  q_->push(this);
  task_->park(this, h);
}

WaitTarget ParkedWaiter::wait_target() const noexcept { return {q_->kind()}; }

bool ParkedWaiter::cancel_wait(const std::string&) noexcept {
  if (!linked_) return false;
  q_->unlink(this);
  aborted_ = true;
  task_->wake();
  return true;
}

// ---- the reader's state ---------------------------------------------------------------------------

namespace {
constexpr std::size_t kMinReadChunk = 16 * 1024;
constexpr std::size_t kMaxReadChunk = 256 * 1024;
}  // namespace

class ReaderState {
 public:
  explicit ReaderState(std::ptrdiff_t limit) : limit(checked_limit(limit)) {}

  static std::size_t checked_limit(std::ptrdiff_t limit) {
    if (limit <= 0) throw ValueError("Limit cannot be <= 0");
    return static_cast<std::size_t>(limit);
  }

  void feed_data(std::string_view data) {
    // Python asserts this; data after the end would be read as if the stream went on.
    if (eof) throw RuntimeError("feed_data after feed_eof");
    if (data.empty()) return;
    buffer.append(data);
    after_feed();
  }
  /// The transport reads straight into the buffer (BufferedProtocol).
  std::span<char> get_buffer() {
    std::span<char> space = buffer.prepare(read_chunk);
    offered = std::min(space.size(), read_chunk);
    return space.first(offered);
  }
  void buffer_updated(std::size_t n) {
    buffer.commit(n);
    // A read that filled what we offered suggests more is coming: offer more next time.
    if (n == offered && read_chunk < kMaxReadChunk) read_chunk *= 2;
    after_feed();
  }
  void feed_eof() noexcept {
    eof = true;
    waiter.wake_all();
  }
  void set_exception(std::exception_ptr e) noexcept {
    exc = std::move(e);
    // As CPython: only a reader still waiting is woken with the error. One that data (or EOF)
    // already woke resumes normally and gets those bytes first.
    if (!waiter.empty()) woken_by_error = true;
    waiter.wake_all();
  }
  void maybe_resume_transport() {
    if (paused && buffer.size() <= limit) {
      paused = false;
      if (transport) transport->resume_reading();
    }
  }
  void check() const {
    if (exc) std::rethrow_exception(exc);
  }
  /// After a wait: raises the error only if the wait ended because of it (set_exception while
  /// the reader was parked), not if data or EOF had woken it first.
  void check_wake() {
    if (std::exchange(woken_by_error, false)) check();
  }
  /// Python's _wait_for_data, minus the await: checks, resumes reading, returns the awaiter.
  /// A reader that must wait again after an error was set gets the error instead: no more data
  /// can come (CPython would wait for ever there).
  ParkedWaiter wait_for_data(const char* func) {
    if (!waiter.empty())
      throw RuntimeError(std::string(func) + "() called while another coroutine is already waiting for incoming data");
    woken_by_error = false;
    check();
    if (paused) {
      paused = false;
      if (transport) transport->resume_reading();
    }
    return ParkedWaiter(waiter);
  }
  std::string take(std::size_t n) {
    std::string out(buffer.data(), n);
    buffer.consume(n);
    maybe_resume_transport();
    return out;
  }

  std::size_t limit;
  ByteBuffer buffer;
  std::exception_ptr exc;
  Transport* transport = nullptr;
  WaitQueue waiter{"stream read"};  // at most one task
  std::size_t read_chunk = kMinReadChunk;
  std::size_t offered = 0;
  bool eof = false;
  bool paused = false;
  bool woken_by_error = false;

 private:
  void after_feed() {
    waiter.wake_all();
    if (transport && !paused && buffer.size() > 2 * limit) {
      transport->pause_reading();
      paused = true;
    }
  }
};

// ---- the protocol between a transport and the streams ---------------------------------------------

/// Python's StreamReaderProtocol (with FlowControlMixin), as a BufferedProtocol: the transport
/// reads straight into the StreamReader's buffer.
class StreamProtocolImpl final : public BufferedProtocol, public std::enable_shared_from_this<StreamProtocolImpl> {
 public:
  StreamProtocolImpl(std::shared_ptr<ReaderState> reader, ClientConnectedCallback cb)
      : reader_(std::move(reader)), cb_(std::move(cb)) {}

  void connection_made(Transport& transport) override;
  void connection_lost(std::exception_ptr exc) override {
    if (reader_) {
      if (exc)
        reader_->set_exception(exc);
      else
        reader_->feed_eof();
      reader_->transport = nullptr;
    }
    closed = true;
    closed_exc = exc;
    close_waiters.wake_all();
    connection_lost_ = true;
    lost_exc = exc;
    if (paused) drain_waiters.wake_all();
    transport_ = nullptr;
  }
  bool eof_received() override {
    reader_->feed_eof();
    return !over_ssl_;  // keep the connection open for writing (half-close); TLS has none
  }
  /// StreamWriter::start_tls: the connection goes on over `transport`.
  void replace_transport(Transport& transport) {
    transport_ = &transport;
    reader_->transport = &transport;
    over_ssl_ = true;
  }
  bool server_side() const noexcept { return bool(cb_); }
  std::span<char> get_buffer(std::size_t) override { return reader_->get_buffer(); }
  void buffer_updated(std::size_t nbytes) override { reader_->buffer_updated(nbytes); }
  void pause_writing() override { paused = true; }
  void resume_writing() override {
    paused = false;
    drain_waiters.wake_all();
  }

  bool connection_lost_ = false;
  std::exception_ptr lost_exc;
  bool paused = false;  // writing
  WaitQueue drain_waiters{"stream drain"};
  bool closed = false;
  std::exception_ptr closed_exc;
  WaitQueue close_waiters{"stream close"};

 private:
  std::shared_ptr<ReaderState> reader_;
  ClientConnectedCallback cb_;
  Transport* transport_ = nullptr;
  bool over_ssl_ = false;
};

}  // namespace detail

namespace detail {

struct WriterCore {
  WriterCore(std::shared_ptr<Transport> t, std::shared_ptr<StreamProtocolImpl> p, std::shared_ptr<ReaderState> r,
             EventLoop* l) noexcept
      : transport(std::move(t)), protocol(std::move(p)), reader(std::move(r)), loop(l) {}
  WriterCore(const WriterCore&) = delete;
  WriterCore& operator=(const WriterCore&) = delete;
  // The last StreamWriter of a connection closes it (as a garbage-collected writer does in
  // Python 3.13), unless the loop is already gone.
  ~WriterCore() {
    if (EventLoop::is_alive(loop) && !loop->is_closed() && !transport->is_closing()) {
      try {
        transport->close();
      } catch (...) {
      }
    }
  }

  std::shared_ptr<Transport> transport;
  std::shared_ptr<StreamProtocolImpl> protocol;
  std::shared_ptr<ReaderState> reader;
  EventLoop* loop;
};

namespace {

/// Runs a start_server callback; what escapes it is reported and closes the connection, as in
/// Python's StreamReaderProtocol.connection_made done-callback.
Coro<void> run_client(ClientConnectedCallback cb, StreamReader reader, StreamWriter writer) {
  std::shared_ptr<Transport> transport = writer.transport_ptr();
  std::exception_ptr error;
  bool cancelled = false;
  try {
    co_await cb(std::move(reader), std::move(writer));
  } catch (const CancelledError&) {
    cancelled = true;
    error = std::current_exception();
  } catch (...) {
    error = std::current_exception();
  }
  if (!error) co_return;
  if (!cancelled) {
    get_running_loop().call_exception_handler({"Unhandled exception in client_connected_cb", error, {}, {}});
  }
  transport->close();
  if (cancelled) std::rethrow_exception(error);
}

}  // namespace

void StreamProtocolImpl::connection_made(Transport& transport) {
  transport_ = &transport;
  if (!reader_) return;  // a writer alone (a write pipe)
  reader_->transport = &transport;
  over_ssl_ = transport.get_extra_info("sslcontext").has_value();
  if (!cb_) return;
  EventLoop& loop = get_running_loop();
  auto core = std::make_shared<WriterCore>(transport.shared_from_this(), shared_from_this(), reader_, &loop);
  loop.create_task(run_client(cb_, StreamReader(reader_), StreamWriter(std::move(core))));
}

// ---- reading ---------------------------------------------------------------------------------------

namespace {

Coro<std::string> read_impl(std::shared_ptr<ReaderState> s, std::ptrdiff_t n) {
  s->check();
  if (n == 0) co_return std::string();
  if (n < 0) {
    // Everything until EOF, in blocks of `limit` (Python reads the same way).
    std::string all;
    for (;;) {
      std::string block = co_await read_impl(s, static_cast<std::ptrdiff_t>(s->limit));
      if (block.empty()) break;
      all += block;
    }
    co_return all;
  }
  if (s->buffer.empty() && !s->eof) {
    co_await s->wait_for_data("read");
    s->check_wake();
  }
  co_return s->take(std::min(static_cast<std::size_t>(n), s->buffer.size()));
}

Coro<std::string> readuntil_impl(std::shared_ptr<ReaderState> s, std::string separator) {
  if (separator.empty()) throw ValueError("Separator should be at least one-byte string");
  s->check();
  const std::size_t seplen = separator.size();
  std::size_t offset = 0;
  std::size_t isep;
  for (;;) {
    std::size_t buflen = s->buffer.size();
    if (buflen >= offset + seplen) {
      isep = s->buffer.view().find(separator, offset);
      if (isep != std::string_view::npos) break;
      // The separator may start in the last seplen-1 bytes: look again from there next time.
      offset = buflen + 1 - seplen;
      if (offset > s->limit) throw LimitOverrunError("Separator is not found, and chunk exceed the limit", offset);
    }
    if (s->eof) {
      std::string partial(s->buffer.view());
      s->buffer.clear();
      throw IncompleteReadError(std::move(partial), std::nullopt);
    }
    co_await s->wait_for_data("readuntil");
    s->check_wake();
  }
  if (isep > s->limit) throw LimitOverrunError("Separator is found, but chunk is longer than limit", isep);
  co_return s->take(isep + seplen);
}

Coro<std::string> readline_impl(std::shared_ptr<ReaderState> s) {
  s->check();
  // The common case without a second coroutine: a whole line is already buffered.
  std::size_t nl = s->buffer.view().find('\n');
  if (nl != std::string_view::npos && nl <= s->limit) co_return s->take(nl + 1);
  try {
    co_return co_await readuntil_impl(s, "\n");
  } catch (IncompleteReadError& e) {
    co_return std::move(e.partial);
  } catch (const LimitOverrunError& e) {
    // Drop the overlong line: through its end if it is buffered, else everything buffered.
    std::string_view v = s->buffer.view();
    if (v.size() > e.consumed && v[e.consumed] == '\n')
      s->buffer.consume(e.consumed + 1);
    else
      s->buffer.clear();
    s->maybe_resume_transport();
    throw;
  }
}

Coro<std::string> readexactly_impl(std::shared_ptr<ReaderState> s, std::ptrdiff_t signed_n) {
  if (signed_n < 0) throw ValueError("readexactly size can not be less than zero");
  s->check();
  const auto n = static_cast<std::size_t>(signed_n);
  if (n == 0) co_return std::string();
  while (s->buffer.size() < n) {
    if (s->eof) {
      std::string partial(s->buffer.view());
      s->buffer.clear();
      throw IncompleteReadError(std::move(partial), n);
    }
    co_await s->wait_for_data("readexactly");
    s->check_wake();
  }
  co_return s->take(n);
}

}  // namespace
}  // namespace detail

StreamReader::StreamReader(std::ptrdiff_t limit) : s_(std::make_shared<detail::ReaderState>(limit)) {}

Coro<std::string> StreamReader::read(std::ptrdiff_t n) { return detail::read_impl(s_, n); }
Coro<std::string> StreamReader::readline() { return detail::readline_impl(s_); }
Coro<std::string> StreamReader::readuntil(std::string separator) {
  return detail::readuntil_impl(s_, std::move(separator));
}
Coro<std::string> StreamReader::readexactly(std::ptrdiff_t n) { return detail::readexactly_impl(s_, n); }
bool StreamReader::at_eof() const { return s_->eof && s_->buffer.empty(); }
void StreamReader::feed_data(std::string_view data) { s_->feed_data(data); }
void StreamReader::feed_eof() { s_->feed_eof(); }
std::exception_ptr StreamReader::exception() const { return s_->exc; }
void StreamReader::set_exception(std::exception_ptr e) { s_->set_exception(std::move(e)); }
void StreamReader::set_transport(Transport* transport) { s_->transport = transport; }
std::size_t StreamReader::limit() const { return s_->limit; }
std::size_t StreamReader::buffered() const { return s_->buffer.size(); }

// ---- writing ---------------------------------------------------------------------------------------

namespace {

Coro<void> drain_impl(std::shared_ptr<detail::WriterCore> c) {
  if (c->reader) c->reader->check();
  if (c->transport->is_closing()) {
    // Let connection_lost run if the connection is going away (asyncio yields here too).
    co_await sleep(0);
  }
  detail::StreamProtocolImpl& p = *c->protocol;
  if (p.connection_lost_) throw std::system_error(ECONNRESET, std::system_category(), "Connection lost");
  if (!p.paused) co_return;
  co_await detail::ParkedWaiter(p.drain_waiters);
  if (p.connection_lost_ && p.lost_exc) std::rethrow_exception(p.lost_exc);
}

#if ASYNCIO_HAS_TLS
Coro<void> start_tls_impl(std::shared_ptr<detail::WriterCore> c, ssl::SSLContext ctx, StartTlsOptions options) {
  co_await drain_impl(c);
  options.server_side = c->protocol->server_side();
  std::shared_ptr<Transport> tls = co_await start_tls(*c->transport, c->protocol, std::move(ctx), std::move(options));
  c->transport = tls;
  c->protocol->replace_transport(*tls);
}
#endif

Coro<void> wait_closed_impl(std::shared_ptr<detail::WriterCore> c) {
  detail::StreamProtocolImpl& p = *c->protocol;
  while (!p.closed) co_await detail::ParkedWaiter(p.close_waiters);
  if (p.closed_exc) std::rethrow_exception(p.closed_exc);
}

}  // namespace

Transport& StreamWriter::transport() const {
  if (!c_) throw RuntimeError("empty StreamWriter");
  return *c_->transport;
}
std::shared_ptr<Transport> StreamWriter::transport_ptr() const {
  if (!c_) throw RuntimeError("empty StreamWriter");
  return c_->transport;
}
void StreamWriter::write(std::string_view data) { transport().write(data); }
void StreamWriter::writelines(std::initializer_list<std::string_view> chunks) { transport().writelines(chunks); }
Coro<void> StreamWriter::drain() {
  transport();  // throws on an empty handle
  return drain_impl(c_);
}
#if ASYNCIO_HAS_TLS
Coro<void> StreamWriter::start_tls(ssl::SSLContext sslcontext, std::string server_hostname,
                                   double ssl_handshake_timeout) {
  transport();  // throws on an empty handle
  StartTlsOptions options;
  options.server_hostname = std::move(server_hostname);
  options.ssl_handshake_timeout = ssl_handshake_timeout;
  return start_tls_impl(c_, std::move(sslcontext), std::move(options));
}
#endif
bool StreamWriter::can_write_eof() const { return transport().can_write_eof(); }
void StreamWriter::write_eof() { transport().write_eof(); }
void StreamWriter::close() { transport().close(); }
bool StreamWriter::is_closing() const { return transport().is_closing(); }
Coro<void> StreamWriter::wait_closed() {
  transport();
  return wait_closed_impl(c_);
}
std::any StreamWriter::get_extra_info(std::string_view name, std::any default_value) const {
  return transport().get_extra_info(name, std::move(default_value));
}

// ---- opening connections and servers ---------------------------------------------------------------

namespace {

std::pair<std::shared_ptr<detail::ReaderState>, std::shared_ptr<detail::StreamProtocolImpl>> make_stream_protocol(
    std::ptrdiff_t limit) {
  auto reader = std::make_shared<detail::ReaderState>(limit);
  auto protocol = std::make_shared<detail::StreamProtocolImpl>(reader, nullptr);
  return {reader, protocol};
}

ProtocolFactory server_factory(ClientConnectedCallback cb, std::ptrdiff_t limit) {
  if (!cb) throw ValueError("client_connected_cb is empty");
  // Checked here, not per connection as in Python, so that start_server raises it.
  detail::ReaderState::checked_limit(limit);
  return [cb = std::move(cb), limit]() -> std::shared_ptr<StreamProtocolBase> {
    return std::make_shared<detail::StreamProtocolImpl>(std::make_shared<detail::ReaderState>(limit), cb);
  };
}

}  // namespace

Coro<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, std::uint16_t port,
                                                            ConnectOptions options, std::ptrdiff_t limit) {
  auto made_protocol = make_stream_protocol(limit);
  std::shared_ptr<detail::ReaderState> reader = made_protocol.first;
  std::shared_ptr<detail::StreamProtocolImpl> p = made_protocol.second;
  // A named factory: g++ 12 destroys a capturing lambda written inside a co_await twice.
  ProtocolFactory factory = [p] { return p; };
  auto made = co_await detail::create_connection(std::move(factory), std::move(host), port, std::move(options));
  auto core = std::make_shared<detail::WriterCore>(std::move(made.first), p, reader, &get_running_loop());
  co_return std::pair<StreamReader, StreamWriter>(StreamReader(reader), StreamWriter(std::move(core)));
}

Coro<Server> start_server(ClientConnectedCallback client_connected_cb, std::string host, std::uint16_t port,
                          ServerOptions options, std::ptrdiff_t limit) {
  return create_server(server_factory(std::move(client_connected_cb), limit), std::move(host), port,
                       std::move(options));
}

Coro<Server> start_server(ClientConnectedCallback client_connected_cb, std::vector<std::string> hosts,
                          std::uint16_t port, ServerOptions options, std::ptrdiff_t limit) {
  return create_server(server_factory(std::move(client_connected_cb), limit), std::move(hosts), port,
                       std::move(options));
}

Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection(std::string path, std::ptrdiff_t limit) {
  auto made_protocol = make_stream_protocol(limit);
  std::shared_ptr<detail::ReaderState> reader = made_protocol.first;
  std::shared_ptr<detail::StreamProtocolImpl> p = made_protocol.second;
  ProtocolFactory factory = [p] { return p; };  // named: see open_connection
  auto made = co_await detail::create_unix_connection(std::move(factory), std::move(path), Socket());
  auto core = std::make_shared<detail::WriterCore>(std::move(made.first), p, reader, &get_running_loop());
  co_return std::pair<StreamReader, StreamWriter>(StreamReader(reader), StreamWriter(std::move(core)));
}

Coro<Server> start_unix_server(ClientConnectedCallback client_connected_cb, std::string path, ServerOptions options,
                               std::ptrdiff_t limit) {
  return create_unix_server(server_factory(std::move(client_connected_cb), limit), std::move(path),
                            std::move(options));
}

}  // namespace asyncio

namespace asyncio {

Coro<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, std::uint16_t port) {
  return open_connection(std::move(host), port, ConnectOptions(), DEFAULT_LIMIT);
}
Coro<Server> start_server(ClientConnectedCallback client_connected_cb, std::string host, std::uint16_t port) {
  return start_server(std::move(client_connected_cb), std::move(host), port, ServerOptions(), DEFAULT_LIMIT);
}
Coro<Server> start_server(ClientConnectedCallback client_connected_cb, std::vector<std::string> hosts,
                          std::uint16_t port) {
  return start_server(std::move(client_connected_cb), std::move(hosts), port, ServerOptions(), DEFAULT_LIMIT);
}
Coro<Server> start_unix_server(ClientConnectedCallback client_connected_cb, std::string path) {
  return start_unix_server(std::move(client_connected_cb), std::move(path), ServerOptions(), DEFAULT_LIMIT);
}

// ---- pipes ------------------------------------------------------------------------------------------

Coro<std::pair<StreamReader, std::shared_ptr<Transport>>> open_read_pipe(int fd, std::ptrdiff_t limit) {
  auto made_protocol = make_stream_protocol(limit);
  std::shared_ptr<detail::ReaderState> reader = made_protocol.first;
  std::shared_ptr<detail::StreamProtocolImpl> p = made_protocol.second;
  ProtocolFactory factory = [p] { return p; };  // named: see open_connection
  auto made = co_await detail::connect_pipe(std::move(factory), fd, true);
  co_return std::pair<StreamReader, std::shared_ptr<Transport>>(StreamReader(reader), std::move(made.first));
}

Coro<StreamWriter> open_write_pipe(int fd) {
  auto p = std::make_shared<detail::StreamProtocolImpl>(nullptr, nullptr);
  ProtocolFactory factory = [p] { return p; };
  auto made = co_await detail::connect_pipe(std::move(factory), fd, false);
  co_return StreamWriter(std::make_shared<detail::WriterCore>(std::move(made.first), p, nullptr, &get_running_loop()));
}

std::span<char> detail::reader_get_buffer(StreamReader& reader) { return reader.state()->get_buffer(); }

void detail::reader_buffer_updated(StreamReader& reader, std::size_t nbytes) { reader.state()->buffer_updated(nbytes); }

std::pair<StreamWriter, std::shared_ptr<BaseProtocol>> detail::make_stream_writer(std::shared_ptr<Transport> transport) {
  auto p = std::make_shared<detail::StreamProtocolImpl>(nullptr, nullptr);
  p->connection_made(*transport);
  StreamWriter writer(std::make_shared<detail::WriterCore>(std::move(transport), p, nullptr, &get_running_loop()));
  return {std::move(writer), std::move(p)};
}

}  // namespace asyncio
