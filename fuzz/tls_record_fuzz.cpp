// SPDX-License-Identifier: MIT
// libFuzzer target: the TLS layer's record path (detail::SSLProtocol, src/tls/ssl_transport.cpp),
// in both directions, with no sockets.
//
// Two SSLProtocol objects, a client and a server, each sit on a FakeTransport: a Transport that
// keeps what its protocol writes (the ciphertext "on the wire") until the fuzz input says how it
// reaches the other end's data_received. Everything runs on a virtual-time EventLoop, each step
// inside a loop callback as a socket transport's events would. The certificate (EC P-256,
// CN=localhost) is made once at start-up with OpenSSL's C API; a client trusts it and checks the
// host name (TLS 1.3), or verifies nothing and stops at TLS 1.2.
//
// One input describes a whole scenario:
//
//   byte 0   configuration: bit 0 the client context (verifying TLS 1.3 / unverified TLS 1.2);
//            bits 1, 2 the client's and server's application protocol (Protocol or
//            BufferedProtocol); bit 3 the handshake is left to the operations too (otherwise it
//            completes first, with every flight delivered whole); bits 4-5 the BufferedProtocol's
//            buffer size (1, 13, 512 or 64 KiB bytes); bit 6 eof_received() returns true (which
//            TLS ignores, with a warning); bit 7 the client's layer is put on as start_tls does
//            (no connection_made for the application; it gets the transport once the handshake
//            is done)
//   then     operations until the input ends, each one byte (kind = (byte & 31) % 30, the end it
//            acts on = bit 5, a parameter = bits 6-7) and its arguments (see run_op): ciphertext
//            delivered whole, by record, in fragments, or damaged (bit flips, truncation, drops,
//            replays, swapped records, random bytes, forged records); application writes,
//            writelines, close, abort, write_eof, pause/resume reading, set_protocol, TLS 1.3 key
//            updates and TLS 1.2 renegotiations (through "ssl_object"), things the application
//            does from inside data_received or pause_writing; the socket's EOF, connection reset,
//            high-water mark (the wire is the socket's write buffer: past the mark the layer gets
//            pause_writing, resume_writing once delivery drains it); running the loop and moving
//            virtual time.
//
// The invariants, checked as the scenario runs and in a final phase that delivers everything
// still on the wire, closes both ends and lets the timers fire:
//   - no crash, sanitizer report or leak (ASan's leak checker);
//   - nothing escapes the layer's entry points, and the loop's exception handler is never called:
//     the only errors are the documented ones, given to connection_lost or the handshake's waiter
//     (SSLError, or another std::system_error such as ConnectionResetError);
//   - the application protocols see connection_made (unless start_tls), data, at most one
//     eof_received and exactly one connection_lost, in that order; the handshake waiter finishes;
//   - an end that received only its peer's genuine records, in order (however fragmented), gets
//     a prefix of the plaintext the peer's application wrote, and, when the final phase delivered
//     everything and this end did not close itself first, exactly that plaintext.
//   - the application's pause_writing / resume_writing alternate.
// On a violation the scenario's trace is printed (TLS_RECORD_FUZZ_DUMP=1 prints it always) with
// a line starting "DEFECT", and the process aborts. Three known deviations of the layer (see
// docs/fuzzing.md) are only printed once each, as "NOTE", so that a run goes on exploring;
// TLS_RECORD_FUZZ_STRICT=1 turns them into defects.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <asyncio/asyncio.hpp>

#include <algorithm>
#include <any>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "tls/ssl_internal.hpp"

namespace {

using asyncio::detail::SSLProtocol;

// ---- reporting ------------------------------------------------------------------------------------

std::string g_trace;  // what the current scenario did, printed with a defect
bool g_dump = false;

void trace(const std::string& line) {
  if (g_dump) std::fprintf(stderr, "  %s\n", line.c_str());
  if (g_trace.size() < 64 * 1024) g_trace += "  " + line + "\n";
}

std::string describe(const std::exception_ptr& e) {
  if (!e) return "null";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

bool is_system_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error&) {
    return true;
  } catch (...) {
    return false;
  }
}

[[noreturn]] void defect(const std::string& what) {
  if (!g_dump) std::fprintf(stderr, "scenario:\n%s", g_trace.c_str());
  std::fprintf(stderr, "DEFECT: %s\n", what.c_str());
  std::abort();
}

void check(bool ok, const std::string& what) {
  if (!ok) defect(what);
}

bool g_strict = false;

/// A known deviation (see docs/fuzzing.md): printed once per kind, so that a long run goes on
/// exploring; TLS_RECORD_FUZZ_STRICT=1 makes it a defect.
void note(const char* what) {
  static std::vector<const char*> seen;
  if (g_strict) defect(what);
  if (std::find(seen.begin(), seen.end(), what) != seen.end()) return;
  seen.push_back(what);
  std::fprintf(stderr, "NOTE (printed once): %s\nscenario:\n%s", what, g_trace.c_str());
}

// ---- the certificate and the contexts, made once ---------------------------------------------------

struct Contexts {
  asyncio::ssl::SSLContext server{asyncio::ssl::Side::server};
  asyncio::ssl::SSLContext client_verify{asyncio::ssl::Side::client};
  asyncio::ssl::SSLContext client_tls12{asyncio::ssl::Side::client};
};

void openssl_check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "tls_record_fuzz: set-up failed: %s\n", what);
  ERR_print_errors_fp(stderr);
  std::abort();
}

// Writes a self-signed EC certificate for "localhost" and its key into `dir`.
void make_certificate(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  openssl_check(key != nullptr, "EVP_EC_gen");
  X509* cert = X509_new();
  openssl_check(cert != nullptr, "X509_new");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 20L * 365 * 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost");
  openssl_check(san != nullptr, "subjectAltName");
  X509_add_ext(cert, san, -1);
  X509_EXTENSION_free(san);
  openssl_check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign");

  FILE* f = std::fopen(cert_path.c_str(), "w");
  openssl_check(f && PEM_write_X509(f, cert) == 1, "writing the certificate");
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  openssl_check(f && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "writing the key");
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
}

// Leaked on purpose (reachable from a static): the contexts serve every input.
const Contexts& contexts() {
  static const Contexts* c = [] {
    char dir[] = "/tmp/tls_record_fuzz.XXXXXX";
    openssl_check(::mkdtemp(dir) != nullptr, "mkdtemp");
    std::string cert = std::string(dir) + "/cert.pem", key = std::string(dir) + "/key.pem";
    make_certificate(cert, key);
    auto* ctx = new Contexts;
    ctx->server.load_cert_chain(cert, key);
    // No server-side session cache: it would grow with every input and carry state between them.
    SSL_CTX_set_session_cache_mode(ctx->server.native(), SSL_SESS_CACHE_OFF);
    ctx->client_verify.load_verify_locations(cert);  // verifies, and checks "localhost"
    ctx->client_tls12.set_check_hostname(false);
    ctx->client_tls12.set_verify_mode(asyncio::ssl::VerifyMode::none);
    SSL_CTX_set_max_proto_version(ctx->client_tls12.native(), TLS1_2_VERSION);
    ::unlink(cert.c_str());
    ::unlink(key.c_str());
    ::rmdir(dir);
    return ctx;
  }();
  return *c;
}

// ---- the input --------------------------------------------------------------------------------------

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  std::uint8_t byte() { return i_ < n_ ? p_[i_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() << 8 | byte()); }
  std::string bytes(std::size_t n) {
    n = std::min(n, n_ - i_);
    std::string s(reinterpret_cast<const char*>(p_ + i_), n);
    i_ += n;
    return s;
  }
  bool empty() const { return i_ >= n_; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
};

// ---- the application's side -------------------------------------------------------------------------

constexpr std::size_t kMaxWritten = 512 * 1024;  // written per end and input: keeps an input fast

/// What one end's application does from inside data_received (set by an operation).
enum class React { none, echo, close, abort, pause_reading, switch_protocol };

struct End;

/// What one end's application saw, shared by the protocol objects it used (set_protocol swaps).
struct AppLog {
  End* end = nullptr;
  std::string received;
  std::shared_ptr<asyncio::Transport> transport;  // the SSLTransport, once the application has it
  std::exception_ptr lost_exc;
  bool expect_made = true;  // false under start_tls
  bool made = false;
  bool eof = false;
  bool lost = false;
  bool keep_open = false;  // what eof_received returns
  std::size_t buffer_size = 512;
  React react = React::none;
  bool write_in_pause = false;  // the application writes from inside pause_writing
  bool writing_paused = false;

  void on_pause();
  void on_resume();
  void on_made(asyncio::Transport& t);
  /// Under start_tls the application has its transport once the handshake's waiter succeeded.
  void adopt_start_tls();
  void on_data(std::string_view data);
  bool on_eof();
  void on_lost(std::exception_ptr exc);
};

class PlainApp final : public asyncio::Protocol {
 public:
  explicit PlainApp(AppLog* log) : log_(log) {}
  void connection_made(asyncio::Transport& t) override { log_->on_made(t); }
  void data_received(std::string_view data) override { log_->on_data(data); }
  bool eof_received() override { return log_->on_eof(); }
  void connection_lost(std::exception_ptr exc) override { log_->on_lost(std::move(exc)); }
  void pause_writing() override { log_->on_pause(); }
  void resume_writing() override { log_->on_resume(); }

 private:
  AppLog* log_;
};

class BufferedApp final : public asyncio::BufferedProtocol {
 public:
  explicit BufferedApp(AppLog* log) : log_(log), buf_(log->buffer_size) {}
  void connection_made(asyncio::Transport& t) override { log_->on_made(t); }
  std::span<char> get_buffer(std::size_t) override { return {buf_.data(), buf_.size()}; }
  void buffer_updated(std::size_t n) override {
    check(n <= buf_.size(), "buffer_updated beyond the buffer");
    log_->on_data(std::string_view(buf_.data(), n));
  }
  bool eof_received() override { return log_->on_eof(); }
  void connection_lost(std::exception_ptr exc) override { log_->on_lost(std::move(exc)); }
  void pause_writing() override { log_->on_pause(); }
  void resume_writing() override { log_->on_resume(); }

 private:
  AppLog* log_;
  std::vector<char> buf_;
};

std::shared_ptr<asyncio::StreamProtocolBase> make_app(AppLog* log, bool buffered) {
  if (buffered) return std::make_shared<BufferedApp>(log);
  return std::make_shared<PlainApp>(log);
}

// ---- the socket's side --------------------------------------------------------------------------------

/// The socket transport under one SSLProtocol. What the protocol writes stays in `wire` until an
/// operation delivers it to the peer; close/abort/connection loss behave as SocketTransport's
/// (connection_lost on a later iteration, once). Wire data is already "sent": abort keeps it.
class FakeTransport final : public asyncio::Transport {
 public:
  FakeTransport(asyncio::EventLoop& loop, std::shared_ptr<SSLProtocol> protocol, const char* name)
      : loop_(&loop), protocol_(std::move(protocol)), name_(name) {}

  std::string wire;
  bool closing = false;
  bool aborted = false;
  bool lost = false;
  bool reading = true;
  std::size_t high = 64 * 1024, low = 16 * 1024;
  bool writing_paused = false;

  SSLProtocol* protocol() const { return protocol_.get(); }
  /// Can data_received be called now (as a socket transport would)?
  bool can_receive() const { return protocol_ && !closing && reading; }
  /// Would data for this end be dropped (rather than wait)?
  bool dead() const { return !protocol_ || closing; }

  /// The wire is this transport's write buffer: past `high` the protocol is paused, and resumed
  /// once it drains to `low` (SocketTransport's flow control).
  void update_flow() {
    if (!protocol_ || lost) return;
    try {
      if (!writing_paused && wire.size() > high) {
        writing_paused = true;
        protocol_->pause_writing();
      } else if (writing_paused && wire.size() <= low) {
        writing_paused = false;
        protocol_->resume_writing();
      }
    } catch (...) {
      defect(std::string("exception escaped SSLProtocol::pause/resume_writing: ") +
             describe(std::current_exception()));
    }
  }

  /// The first `n` bytes of the wire left it (delivered or lost).
  void consume(std::size_t n) {
    wire.erase(0, n);
    update_flow();
  }

  void lose(std::exception_ptr exc) {
    if (lost_scheduled_) return;
    lost_scheduled_ = true;
    closing = true;
    std::shared_ptr<FakeTransport> self = std::static_pointer_cast<FakeTransport>(shared_from_this());
    loop_->call_soon([self, exc] { self->call_connection_lost(exc); });
  }

  std::any get_extra_info(std::string_view name, std::any default_value) const override {
    if (name == "fuzz_transport") return std::any(std::string(name_));
    return default_value;
  }
  bool is_closing() const noexcept override { return closing; }
  void close() override {
    trace(std::string(name_) + " socket: close()");
    lose(nullptr);
  }
  void set_protocol(std::shared_ptr<asyncio::BaseProtocol>) override {
    defect("the TLS layer called set_protocol on its socket transport");
  }
  std::shared_ptr<asyncio::BaseProtocol> get_protocol() const override { return protocol_; }
  bool is_reading() const noexcept override { return reading && !closing; }
  void pause_reading() override { reading = false; }
  void resume_reading() override { reading = true; }
  void write(std::string_view data) override {
    check(!lost, std::string(name_) + ": the TLS layer wrote to its socket transport after connection_lost");
    wire.append(data);
    update_flow();
  }
  void write_eof() override { defect("the TLS layer called write_eof on its socket transport"); }
  bool can_write_eof() const noexcept override { return true; }
  void abort() override {
    trace(std::string(name_) + " socket: abort()");
    aborted = true;
    lose(nullptr);
  }
  std::size_t get_write_buffer_size() const noexcept override { return wire.size(); }
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override { return {low, high}; }
  void set_write_buffer_limits(std::optional<std::ptrdiff_t> h, std::optional<std::ptrdiff_t> l) override {
    if (h) high = static_cast<std::size_t>(*h);
    if (l) low = static_cast<std::size_t>(*l);
    update_flow();
  }

 protected:
  void write_chunks(std::span<const std::string_view> chunks) override {
    for (auto c : chunks) write(c);
  }

 private:
  void call_connection_lost(std::exception_ptr exc) {
    lost = true;
    std::shared_ptr<SSLProtocol> p = std::move(protocol_);  // as SocketTransport: released after
    trace(std::string(name_) + " socket: connection_lost(" + describe(exc) + ")");
    try {
      p->connection_lost(exc);
    } catch (...) {
      defect(std::string("exception escaped SSLProtocol::connection_lost: ") + describe(std::current_exception()));
    }
  }

  asyncio::EventLoop* loop_;
  std::shared_ptr<SSLProtocol> protocol_;
  const char* name_;
  bool lost_scheduled_ = false;
};

// ---- one end of the connection --------------------------------------------------------------------------

struct End {
  const char* name = "";
  End* peer = nullptr;
  AppLog app;
  bool buffered = false;
  std::shared_ptr<FakeTransport> sock;
  std::weak_ptr<SSLProtocol> tls;
  asyncio::Future<void> waiter;
  std::string sent;           // what this application wrote while its transport was open
  std::string last_record;    // the last genuine record delivered to this end (for replays)
  bool tainted = false;       // this end received something other than its peer's records in order
  bool ended_locally = false;  // closed, aborted, EOF or reset on this end's own account
  bool eof_delivered = false;  // the socket's EOF reached this end
  bool write_failed = false;   // a write of this end's application aborted the connection
  bool renegotiating = false;  // this end started a TLS 1.2 renegotiation (and holds its writes)
  std::uint32_t salt = 0;      // makes the two ends' bytes differ
  std::uint32_t counter = 0;   // makes the bytes this end writes
  std::size_t written = 0;     // bytes offered to write, bounded per input
};

ssl_st* ssl_object(End& e) {
  if (!e.app.transport) return nullptr;
  auto ssl = e.app.transport->get_extra_info<ssl_st*>("ssl_object");
  return ssl ? *ssl : nullptr;
}

/// Writes bytes made from `e`'s counter: one write, or writelines for several sizes. What the
/// application writes while its transport is open is what its peer must receive.
void app_write(End& e, const std::vector<std::size_t>& sizes) {
  if (!e.app.transport) return;
  if (e.renegotiating) {
    // The renegotiation's initiator waits for it to finish: its own SSL_write would have to
    // wait for the peer's answer, which is not what this target tests.
    ssl_st* ssl = ssl_object(e);
    if (ssl && SSL_renegotiate_pending(ssl)) return;
    e.renegotiating = false;
  }
  std::vector<std::string> chunks;
  for (std::size_t n : sizes) {
    n = std::min(n, kMaxWritten - e.written);
    e.written += n;
    std::string s(n, '\0');
    for (char& c : s) {
      ++e.counter;
      c = static_cast<char>((e.counter * 131u + (e.counter >> 8) + e.salt) & 0xff);
    }
    chunks.push_back(std::move(s));
  }
  bool open = !e.app.transport->is_closing();
  std::size_t total = 0;
  for (const auto& c : chunks) total += c.size();
  trace(std::string(e.name) + " app: write " + std::to_string(total) + " bytes in " + std::to_string(chunks.size()) +
        " chunk(s)" + (open ? "" : " (transport closing: ignored)"));
  if (open)
    for (const auto& c : chunks) e.sent += c;
  ssl_st* ssl = ssl_object(e);
  if (chunks.size() == 1) {
    e.app.transport->write(chunks[0]);
  } else {
    std::vector<std::string_view> views(chunks.begin(), chunks.end());
    e.app.transport->writelines(views);
  }
  if (open && e.app.transport->is_closing()) {
    // The write itself ended the connection: SSL_write failed.
    check(ssl && SSL_in_init(ssl), std::string(e.name) + ": an application write aborted the connection");
    e.write_failed = true;
    note("an application write during a TLS 1.2 renegotiation aborted the connection: SSL_write "
         "returned SSL_ERROR_WANT_READ, which SSLProtocol::write_plaintext takes for a fatal error "
         "(\"SSL write failed: EOF in violation of protocol\"), and the data is lost");
  }
}

void AppLog::on_pause() {
  adopt_start_tls();
  check(made && !lost, std::string(end->name) + ": pause_writing outside connection_made..lost");
  trace(std::string(end->name) + " app: pause_writing");
  if (writing_paused) note("the application got pause_writing twice in a row");
  writing_paused = true;
  if (!write_in_pause) return;
  // Inside a writelines call too: SSLTransport::write_chunks encrypts every chunk before it hands
  // the records to the socket (one write, as Python's), so a pause, and this write, come after
  // the last chunk, in the order `sent` has them.
  app_write(*end, {100});
}

void AppLog::on_resume() {
  adopt_start_tls();
  check(made && !lost, std::string(end->name) + ": resume_writing outside connection_made..lost");
  trace(std::string(end->name) + " app: resume_writing");
  if (!writing_paused)
    note("the application got resume_writing without pause_writing (SSLProtocol does not pass on a "
         "pause_writing that comes before the handshake is done, but passes on the resume_writing after it)");
  writing_paused = false;
}

void AppLog::on_made(asyncio::Transport& t) {
  check(expect_made, std::string(end->name) + ": connection_made under start_tls");
  check(!made && !lost, std::string(end->name) + ": connection_made twice or after connection_lost");
  made = true;
  transport = t.shared_from_this();
  trace(std::string(end->name) + " app: connection_made");
}

void AppLog::adopt_start_tls() {
  if (expect_made || made || !end->waiter.done() || end->waiter.exception()) return;
  auto tls = end->tls.lock();
  if (!tls) return;
  made = true;
  transport = tls->app_transport();
  check(transport != nullptr, "start_tls: no application transport after the handshake");
  trace(std::string(end->name) + " app: has its transport (start_tls)");
}

void AppLog::on_data(std::string_view data) {
  adopt_start_tls();
  check(made && !eof && !lost, std::string(end->name) + ": data_received outside connection_made..eof/lost");
  check(!data.empty(), std::string(end->name) + ": empty data_received");
  std::size_t at = received.size();
  received.append(data);
  if (!end->tainted) {
    const std::string& want = end->peer->sent;
    if (received.size() > want.size() || want.compare(at, data.size(), data) != 0)
      defect(std::string(end->name) + " received plaintext its peer did not write (at offset " + std::to_string(at) +
             ", " + std::to_string(data.size()) + " bytes; peer wrote " + std::to_string(want.size()) + ")");
  }
  switch (react) {
    case React::none: break;
    case React::echo:
      if (transport && !transport->is_closing() && end->written < kMaxWritten) {
        end->written += data.size();
        std::string copy(data);  // `data` may live in a buffer the write reuses
        end->sent += copy;
        transport->write(copy);
      }
      break;
    case React::close:
      react = React::none;
      end->ended_locally = true;
      if (transport) transport->close();
      break;
    case React::abort:
      react = React::none;
      end->ended_locally = true;
      if (transport) transport->abort();
      break;
    case React::pause_reading:
      react = React::none;
      if (transport) transport->pause_reading();
      break;
    case React::switch_protocol:
      react = React::none;
      end->buffered = !end->buffered;
      if (transport) transport->set_protocol(make_app(this, end->buffered));
      break;
  }
}

bool AppLog::on_eof() {
  adopt_start_tls();
  check(made && !eof && !lost, std::string(end->name) + ": eof_received outside connection_made..lost, or twice");
  eof = true;
  trace(std::string(end->name) + " app: eof_received");
  return keep_open;
}

void AppLog::on_lost(std::exception_ptr exc) {
  adopt_start_tls();
  check(made && !lost, std::string(end->name) + ": connection_lost without connection_made, or twice");
  lost = true;
  lost_exc = exc;
  trace(std::string(end->name) + " app: connection_lost(" + describe(exc) + ")");
  check(!exc || is_system_error(exc),
        std::string(end->name) + ": connection_lost with an undocumented error: " + describe(exc));
}

// ---- the scenario --------------------------------------------------------------------------------------

constexpr int kOpKinds = 30;

class Scenario {
 public:
  Scenario(asyncio::EventLoop& loop, std::uint8_t config) : loop_(loop) {
    const Contexts& ctx = contexts();
    bool tls12 = config & 1;
    client_.name = "client";
    server_.name = "server";
    client_.peer = &server_;
    server_.peer = &client_;
    client_.buffered = config & 2;
    server_.buffered = config & 4;
    static constexpr std::size_t kBufferSizes[4] = {1, 13, 512, 64 * 1024};
    for (End* e : {&client_, &server_}) {
      e->app.end = e;
      e->salt = e == &server_ ? 7u : 0u;
      e->app.buffer_size = kBufferSizes[(config >> 4) & 3];
      e->app.keep_open = config & 0x40;
    }
    bool start_tls = config & 0x80;
    client_.app.expect_made = !start_tls;
    trace(std::string("config: ") + (tls12 ? "TLS 1.2 unverified" : "TLS 1.3 verified") +
          ", client " + (client_.buffered ? "buffered" : "plain") + ", server " +
          (server_.buffered ? "buffered" : "plain") + ", buffer " + std::to_string(client_.app.buffer_size) +
          (start_tls ? ", start_tls" : "") + (client_.app.keep_open ? ", eof_received true" : ""));

    asyncio::detail::SSLOptions copt{tls12 ? ctx.client_tls12 : ctx.client_verify, false, "localhost", 10.0, 5.0,
                                     !start_tls};
    asyncio::detail::SSLOptions sopt{ctx.server, true, "", 10.0, 5.0, true};
    make_end(client_, std::move(copt));
    make_end(server_, std::move(sopt));
  }

  End& end(bool server) { return server ? server_ : client_; }

  /// Runs one iteration of the loop (a stop() first keeps it from waiting or moving the clock).
  void spin(int n = 1) {
    for (int i = 0; i < n; ++i) {
      loop_.stop();
      loop_.run_forever();
      refresh_start_tls();
    }
  }

  /// Moves the virtual clock by `seconds`, firing the timers due on the way.
  void advance(double seconds) {
    loop_.call_later(seconds, [this] { loop_.stop(); });
    loop_.run_forever();
    refresh_start_tls();
  }

  /// Runs `fn` as a callback of the loop, then the iteration after it.
  template <class F>
  void on_loop(F fn) {
    loop_.call_soon(std::move(fn));
    spin(2);
  }

  void start() {
    for (End* e : {&client_, &server_}) {
      std::shared_ptr<FakeTransport> sock = e->sock;
      loop_.call_soon([sock] {
        try {
          sock->protocol()->connection_made(*sock);
        } catch (...) {
          defect(std::string("exception escaped SSLProtocol::connection_made: ") +
                 describe(std::current_exception()));
        }
      });
    }
    spin(2);
  }

  /// Delivers every flight whole until both handshakes are over (or nothing moves).
  void complete_handshake() {
    for (int round = 0; round < 16; ++round) {
      bool moved = deliver_all(server_);
      moved = deliver_all(client_) || moved;
      spin();
      if (!moved) break;
    }
  }

  void run_op(Input& in) {
    std::uint8_t op = in.byte();
    End& e = end(op & 0x20);
    End& p = *e.peer;
    int param = op >> 6;
    if (g_dump)
      trace("op " + std::to_string((op & 0x1f) % kOpKinds) + " on the " + e.name + ", parameter " +
            std::to_string(param) + " (wire: " + std::to_string(client_.sock->wire.size()) + " to the server, " +
            std::to_string(server_.sock->wire.size()) + " to the client)");
    switch ((op & 0x1f) % kOpKinds) {
      case 0: on_loop([&] { deliver_all(e); }); break;
      case 1: on_loop([&] { deliver_genuine(e, record_len(p.sock->wire), {}); }); break;
      case 2: {
        std::size_t n = static_cast<std::size_t>(in.byte()) + 1;
        if (param == 3) n *= 64;
        on_loop([&e, n, this] { deliver_genuine(e, n, {}); });
        break;
      }
      case 3: {
        // The next record(s) in fragments whose sizes follow.
        std::vector<std::size_t> frags;
        for (int i = 0, k = param + 1; i < k; ++i) frags.push_back(in.byte() % 32 + 1);
        std::size_t n = record_len(p.sock->wire);
        if (param & 1) n += record_len(p.sock->wire.substr(std::min(n, p.sock->wire.size())));
        on_loop([&e, n, frags, this] { deliver_genuine(e, n, frags); });
        break;
      }
      case 4: {
        std::string junk = in.bytes(in.byte() % 64 + 1);
        on_loop([&e, junk, this] { deliver_forged(e, junk, "random bytes"); });
        break;
      }
      case 5: {
        // A well-formed record header over random content: the record layer's decryption and
        // content-type checks rather than its framing.
        static constexpr std::uint8_t kTypes[4] = {20, 21, 22, 23};
        std::uint8_t type = param == 0 ? in.byte() : kTypes[in.byte() % 4];
        std::size_t len = param == 3 ? in.u16() % 18000 : in.byte();
        std::string body = in.bytes(len);
        body.resize(len, '\x5a');
        std::string rec;
        rec += static_cast<char>(type);
        rec += '\x03';
        rec += '\x03';
        rec += static_cast<char>(len >> 8);
        rec += static_cast<char>(len & 0xff);
        rec += body;
        on_loop([&e, rec, this] { deliver_forged(e, rec, "forged record"); });
        break;
      }
      case 6: {
        std::uint16_t pos = in.u16();
        std::uint8_t mask = static_cast<std::uint8_t>(in.byte() | 1);
        on_loop([&e, pos, mask, this] {
          if (e.eof_delivered || !e.sock->can_receive()) return;  // the record stays on the wire
          std::string rec = take_record(*e.peer);
          if (rec.empty()) return;
          rec[pos % rec.size()] = static_cast<char>(rec[pos % rec.size()] ^ mask);
          deliver_forged(e, rec, "record with flipped bits at " + std::to_string(pos % rec.size()));
        });
        break;
      }
      case 7: {
        std::uint16_t keep = in.u16();
        on_loop([&e, keep, this] {
          if (e.eof_delivered || !e.sock->can_receive()) return;
          std::string rec = take_record(*e.peer);
          if (rec.empty()) return;
          rec.resize(keep % rec.size());
          if (rec.empty()) {
            e.tainted = true;
            trace(std::string("dropped a record to ") + e.name);
            return;
          }
          deliver_forged(e, rec, "truncated record");
        });
        break;
      }
      case 8:
        on_loop([&e] {
          if (take_record(*e.peer).empty()) return;
          e.tainted = true;
          trace(std::string("dropped a record to ") + e.name);
        });
        break;
      case 9:
        on_loop([&e, this] {
          if (!e.last_record.empty()) deliver_forged(e, e.last_record, "replayed record");
        });
        break;
      case 10:
        on_loop([&e] {
          std::string& w = e.peer->sock->wire;
          std::size_t a = record_len(w);
          if (a == 0 || a >= w.size()) return;
          std::size_t b = record_len(w.substr(a));
          std::string first = w.substr(0, a), second = w.substr(a, b);
          w.replace(0, a + b, second + first);
          e.tainted = true;
          trace(std::string("swapped two records to ") + e.name);
        });
        break;
      case 11: {
        std::uint8_t b = in.byte();
        std::size_t n = param == 0   ? b
                        : param == 1 ? std::size_t{b} * 16
                        : param == 2 ? std::size_t{b} * 257
                                     : 16384 + std::size_t{b} - 128;  // around a record's payload limit
        on_loop([&e, n] { app_write(e, {n}); });
        break;
      }
      case 12: {
        std::vector<std::size_t> sizes;
        for (int i = 0, k = param + 2; i < k; ++i) sizes.push_back(in.byte());
        on_loop([&e, sizes] { app_write(e, sizes); });
        break;
      }
      case 13:
        on_loop([&e] {
          if (!e.app.transport) return;
          trace(std::string(e.name) + " app: close()");
          e.ended_locally = true;
          e.app.transport->close();
        });
        break;
      case 14:
        on_loop([&e] {
          if (!e.app.transport) return;
          trace(std::string(e.name) + " app: abort()");
          e.ended_locally = true;
          e.app.transport->abort();
        });
        break;
      case 15:
        on_loop([&e] {
          if (!e.app.transport) return;
          try {
            e.app.transport->write_eof();
            defect("SSLTransport::write_eof did not throw");
          } catch (const asyncio::RuntimeError&) {
            // documented: TLS has no half-close
          }
          check(!e.app.transport->can_write_eof(), "SSLTransport::can_write_eof");
        });
        break;
      case 16:
        on_loop([&e] {
          if (e.app.transport) e.app.transport->pause_reading();
        });
        break;
      case 17:
        on_loop([&e] {
          if (e.app.transport) e.app.transport->resume_reading();
        });
        break;
      case 18: on_loop([&e, this] { socket_eof(e); }); break;
      case 19:
        on_loop([&e] {
          if (e.sock->closing) return;
          trace(std::string(e.name) + " socket: connection reset");
          e.ended_locally = true;
          e.sock->lose(std::make_exception_ptr(
              std::system_error(ECONNRESET, std::system_category(), "fuzz: connection reset by peer")));
        });
        break;
      case 20: {
        // The socket transport's high-water mark (its flow control pauses and resumes the layer).
        std::size_t high = std::size_t{in.byte()} * 16;
        on_loop([&e, high] {
          trace(std::string(e.name) + " socket: high-water mark " + std::to_string(high));
          e.sock->set_write_buffer_limits(static_cast<std::ptrdiff_t>(high), static_cast<std::ptrdiff_t>(high / 4));
        });
        break;
      }
      case 21: spin(param + 1); break;
      case 22: {
        double secs = (in.byte() % 64) / 4.0;
        trace("advance the clock by " + std::to_string(secs) + " s");
        advance(secs);
        break;
      }
      case 23: on_loop([&e] { query(e); }); break;
      case 24: {
        bool requested = param & 1, then_write = param & 2;
        on_loop([&e, requested, then_write] {
          if (!e.app.transport || e.app.transport->is_closing()) return;
          auto ssl = e.app.transport->get_extra_info<ssl_st*>("ssl_object");
          if (!ssl || !*ssl || SSL_version(*ssl) != TLS1_3_VERSION || !SSL_is_init_finished(*ssl)) return;
          trace(std::string(e.name) + ": key update" + (requested ? " (requested)" : ""));
          if (SSL_key_update(*ssl, requested ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) != 1)
            ERR_clear_error();
          if (then_write) app_write(e, {1});
        });
        break;
      }
      case 25: {
        std::uint8_t b = in.byte();
        on_loop([&e, b] {
          if (!e.app.transport) return;
          std::ptrdiff_t hi = std::ptrdiff_t{b} * 1024;
          e.app.transport->set_write_buffer_limits(hi, hi / 4);
          auto [l, h] = e.app.transport->get_write_buffer_limits();
          (void)l;
          (void)h;
        });
        break;
      }
      case 26:
        on_loop([&e] {
          if (!e.app.transport) return;
          e.buffered = !e.buffered;
          trace(std::string(e.name) + " app: set_protocol(" + (e.buffered ? "buffered" : "plain") + ")");
          e.app.transport->set_protocol(make_app(&e.app, e.buffered));
          check(e.app.transport->get_protocol() != nullptr || e.app.lost, "get_protocol after set_protocol");
        });
        break;
      case 27: {
        static constexpr React kReacts[4] = {React::echo, React::close, React::abort, React::pause_reading};
        switch (in.byte() % 3) {
          case 0: e.app.react = kReacts[param]; break;
          case 1: e.app.react = React::switch_protocol; break;
          default: e.app.write_in_pause = !e.app.write_in_pause; break;
        }
        break;
      }
      case 29:
        on_loop([&e, this] {
          // A TLS 1.2 renegotiation started by this end (a server's HelloRequest, or a client's
          // new ClientHello, which OpenSSL's server refuses by default). What the layer does on
          // the other end when it arrives while that application writes is the question; the
          // initiator's message leaves by its write BIO like the layer's own output.
          if (!e.app.transport || e.app.transport->is_closing()) return;
          ssl_st* ssl = ssl_object(e);
          if (!ssl || SSL_version(ssl) != TLS1_2_VERSION || !SSL_is_init_finished(ssl)) return;
          trace(std::string(e.name) + ": renegotiate");
          if (SSL_renegotiate(ssl) != 1) {
            ERR_clear_error();
            return;
          }
          e.renegotiating = true;
          renegotiated_ = true;
          // OpenSSL's server refuses a client's renegotiation (no_renegotiation), and the client
          // then fails its own handshake: that end goes down by its own doing.
          if (!SSL_is_server(ssl)) e.ended_locally = true;
          SSL_do_handshake(ssl);
          ERR_clear_error();
          BIO* wbio = SSL_get_wbio(ssl);
          char buf[4096];
          int n;
          while ((n = BIO_read(wbio, buf, sizeof buf)) > 0) e.sock->write(std::string_view(buf, static_cast<std::size_t>(n)));
        });
        break;
      default:  // 28: a genuine record delivered together with the start of the next one
        on_loop([&e, this] {
          const std::string& w = e.peer->sock->wire;
          std::size_t a = record_len(w);
          deliver_genuine(e, a + std::min<std::size_t>(3, w.size() - a), {});
        });
        break;
    }
  }

  /// Delivers what is left, closes both ends, lets the timers fire; checks the invariants.
  void finish() {
    trace("final phase: " + std::to_string(client_.sock->wire.size()) + " bytes on the wire to the server, " +
          std::to_string(server_.sock->wire.size()) + " to the client");
    for (End* e : {&client_, &server_}) {
      e->app.react = React::none;
      e->app.write_in_pause = false;
      if (e->sock->protocol() && !e->sock->closing) e->sock->reading = true;
    }
    pump(false);
    for (End* e : {&client_, &server_}) check_received_all(*e);

    for (End* e : {&client_, &server_}) {
      if (e->app.transport && !e->app.transport->is_closing()) {
        trace(std::string(e->name) + " app: close()");
        e->app.transport->close();
      }
    }
    pump(true);
    advance(60);  // past the handshake and shutdown timeouts
    pump(true);
    for (End* e : {&client_, &server_}) e->sock->lose(nullptr);
    spin(3);

    for (End* e : {&client_, &server_}) {
      AppLog& a = e->app;
      std::string who = e->name;
      check(e->sock->lost, who + ": the socket transport's connection_lost never ran");
      check(e->waiter.done(), who + ": the handshake waiter never finished");
      std::exception_ptr wexc = e->waiter.exception();
      check(!wexc || is_system_error(wexc), who + ": the handshake waiter failed with an undocumented error: " +
                                                describe(wexc));
      if (a.expect_made) {
        check(a.made == !wexc, who + ": connection_made and the waiter disagree (" + describe(wexc) + ")");
        check(!a.made || a.lost, who + ": connection_made without connection_lost");
      }
      check(e->tls.expired(), who + ": the SSLProtocol outlived its socket transport");
    }
  }

  ~Scenario() {
    for (End* e : {&client_, &server_}) {
      e->app.transport.reset();
      e->sock.reset();
    }
  }

 private:
  void make_end(End& e, asyncio::detail::SSLOptions options) {
    e.waiter = loop_.create_future<void>();
    auto tls = std::make_shared<SSLProtocol>(loop_, make_app(&e.app, e.buffered), std::move(options), e.waiter);
    e.tls = tls;
    e.sock = std::make_shared<FakeTransport>(loop_, std::move(tls), e.name);
  }

  /// start_tls gives the application its transport once the handshake is done.
  void refresh_start_tls() { client_.app.adopt_start_tls(); }

  /// The first record's length (header and body), or what is there if it is incomplete.
  static std::size_t record_len(std::string_view w) {
    if (w.size() < 5) return w.size();
    std::size_t n = 5 + (static_cast<std::size_t>(static_cast<std::uint8_t>(w[3])) << 8 |
                         static_cast<std::uint8_t>(w[4]));
    return std::min(n, w.size());
  }

  /// Takes the first record off `from`'s wire (it never reaches the peer as it was).
  static std::string take_record(End& from) {
    std::string& w = from.sock->wire;
    std::size_t n = record_len(w);
    std::string rec = w.substr(0, n);
    from.sock->consume(n);
    return rec;
  }

  void data_received(End& e, std::string_view data) {
    try {
      e.sock->protocol()->data_received(data);
    } catch (...) {
      defect(std::string("exception escaped SSLProtocol::data_received: ") + describe(std::current_exception()));
    }
  }

  /// Delivers up to `n` bytes of the peer's wire to `e`, in fragments of the given sizes (the last
  /// one takes the rest). Bytes for a closed end are dropped; a paused end leaves them waiting.
  bool deliver_genuine(End& e, std::size_t n, std::vector<std::size_t> frags) {
    std::string& w = e.peer->sock->wire;
    n = std::min(n, w.size());
    if (n == 0) return false;
    if (e.eof_delivered || e.sock->dead()) {
      e.peer->sock->consume(n);
      return false;
    }
    std::string rec = w.substr(0, std::min(n, record_len(w)));
    if (!rec.empty() && rec.size() == record_len(w)) e.last_record = rec;
    std::size_t done = 0;
    std::size_t i = 0;
    while (done < n) {
      if (!e.sock->can_receive() || e.eof_delivered) break;
      std::size_t k = i < frags.size() ? std::min(frags[i], n - done) : n - done;
      ++i;
      std::string chunk = w.substr(0, k);
      e.peer->sock->consume(k);
      done += k;
      trace(std::to_string(k) + " genuine bytes to " + e.name);
      data_received(e, chunk);
    }
    return done > 0;
  }

  bool deliver_all(End& e) { return deliver_genuine(e, e.peer->sock->wire.size(), {}); }

  void deliver_forged(End& e, const std::string& bytes, const std::string& what) {
    if (e.eof_delivered || !e.sock->can_receive()) return;
    e.tainted = true;
    trace(what + " (" + std::to_string(bytes.size()) + " bytes) to " + e.name);
    data_received(e, bytes);
  }

  void socket_eof(End& e) {
    if (e.eof_delivered || e.sock->dead()) return;
    e.eof_delivered = true;
    trace(std::string(e.name) + " socket: EOF");
    bool keep_open = true;
    try {
      keep_open = e.sock->protocol()->eof_received();
    } catch (...) {
      defect(std::string("exception escaped SSLProtocol::eof_received: ") + describe(std::current_exception()));
    }
    check(!keep_open, "SSLProtocol::eof_received returned true");
    e.sock->close();  // what a socket transport does when eof_received returns false
  }

  /// get_extra_info and the other queries an application makes: nothing may fail.
  static void query(End& e) {
    if (!e.app.transport) return;
    asyncio::Transport& t = *e.app.transport;
    for (const char* key : {"ssl_object", "sslcontext", "cipher", "ssl_version", "peercert",
                            "selected_alpn_protocol", "fuzz_transport", "peername", "nonexistent"})
      (void)t.get_extra_info(key, std::any(0));
    (void)t.is_reading();
    (void)t.is_closing();
    (void)t.get_write_buffer_size();
    (void)t.get_write_buffer_limits();
    (void)t.get_protocol();
  }

  /// Delivers everything on the wires, both ways, until nothing moves; with `eofs`, an end whose
  /// peer's socket closed and whose wire is empty then gets the socket's EOF.
  void pump(bool eofs) {
    for (int round = 0; round < 64; ++round) {
      bool moved = false;
      for (End* e : {&client_, &server_}) {
        moved |= deliver_all(*e);
        if (!e->peer->sock->wire.empty() && e->sock->dead()) {
          e->peer->sock->consume(e->peer->sock->wire.size());  // nobody reads it any more
          moved = true;
        }
        if (eofs && e->peer->sock->closing && e->peer->sock->wire.empty() && !e->eof_delivered && !e->sock->dead()) {
          socket_eof(*e);
          moved = true;
        }
      }
      spin(2);
      if (!moved) break;
    }
  }

  /// After everything was delivered: an end that only ever got its peer's records in order, and
  /// did not end the connection itself, has all that its peer wrote.
  void check_received_all(End& e) {
    // (After a renegotiation, which writes wait and which fail depends on OpenSSL's handshake
    // states; the prefix check in AppLog::on_data still holds.)
    if (e.tainted || e.ended_locally || e.eof_delivered || !e.app.made || e.peer->write_failed || renegotiated_)
      return;
    const std::string& want = e.peer->sent;
    if (e.app.received != want)
      defect(std::string(e.name) + " received " + std::to_string(e.app.received.size()) + " bytes, its peer wrote " +
             std::to_string(want.size()) + " (untainted, delivered in order)");
  }

  asyncio::EventLoop& loop_;
  bool renegotiated_ = false;
  End client_;
  End server_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_dump = std::getenv("TLS_RECORD_FUZZ_DUMP") != nullptr;
  g_strict = std::getenv("TLS_RECORD_FUZZ_STRICT") != nullptr;
  // The layer logs (a write after close, eof_received returning true); not news here.
  asyncio::set_log_sink([](asyncio::LogLevel, std::string_view text) {
    if (g_dump) std::fprintf(stderr, "  log: %.*s\n", static_cast<int>(text.size()), text.data());
  });
  contexts();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  g_trace.clear();
  if (g_dump) std::fprintf(stderr, "scenario (%zu bytes):\n", size);
  Input in(data, size);
  std::uint8_t config = in.byte();
  {
    asyncio::EventLoop loop(asyncio::LoopOptions{.virtual_time = true});
    loop.set_exception_handler([](asyncio::EventLoop&, const asyncio::ExceptionContext& c) {
      defect("the loop's exception handler was called: " + c.message + ": " + describe(c.exception));
    });
    {
      Scenario s(loop, config);
      s.start();
      if (!(config & 8)) s.complete_handshake();
      for (int ops = 0; ops < 256 && !in.empty(); ++ops) s.run_op(in);
      s.finish();
    }
    loop.close();
  }
  ERR_clear_error();
  return 0;
}
