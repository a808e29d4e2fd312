// SPDX-License-Identifier: MIT
// The load generator of the soak test (bench/soak.sh), written with the library itself: CONNS
// slots, half on the plain echo server and half on the TLS one, each holding one connection at a
// time and running one scenario per connection until DURATION has passed:
//
//   echo      1..64 lines of 1 B..64 KiB (log-uniform), one in flight, every echoed byte checked
//   slow      ~1 MiB of lines sent by a second task while this one reads a few bytes per 100 ms
//             for 2..6 s, so the server's write buffer passes its high-water mark and its
//             drain() waits (soak_server --sndbuf keeps the kernel from absorbing it all); then
//             the rest at full speed, all checked
//   reset     SO_LINGER 0 and abort (an RST) in the middle of a line, in the middle of an echo,
//             or with several lines unread
//   overlong  a 128 KiB..1 MiB line: the answer must be "ERR line too long\n" and the connection
//             must still echo a normal line afterwards
//   quick     connect and close at once (TLS: half of them after the handshake, half as a plain
//             TCP connection that never starts one)
//
// Each scenario runs under a 120 s timeout, so nothing can hang past the end. Anything that
// fails in a scenario other than the RST we send ourselves is unexpected and written to stderr
// (the first 200). Every second, and once more at the end, the counters go to the stats file,
// one line per server and one for the client's own event loop.
//
//   soak_load --plain-port P --tls-port Q --cafile CERT --conns N --duration S --stats FILE [--seed X]
#include <asyncio/asyncio.hpp>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

const std::string kHost = "127.0.0.1";
constexpr std::size_t kMaxLine = 64 * 1024;            // the longest legal line, "\n" included
constexpr std::size_t kServerLimit = 128 * 1024;       // soak_server's StreamReader limit
constexpr std::size_t kMaxOverlong = 1024 * 1024;      // the longest over-long line
constexpr std::size_t kSlowTotal = 1024 * 1024;        // what a slow reader has echoed to it
constexpr double kScenarioTimeout = 120.0;
const std::string kTooLong = "ERR line too long\n";

enum class Kind { echo, slow, reset, overlong, quick };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::echo: return "echo";
    case Kind::slow: return "slow";
    case Kind::reset: return "reset";
    case Kind::overlong: return "overlong";
    case Kind::quick: return "quick";
  }
  return "?";
}

struct Counters {
  std::uint64_t connections = 0;  // connections opened
  std::uint64_t requests = 0;     // lines echoed and checked
  std::uint64_t bytes = 0;        // bytes echoed and checked
  std::uint64_t resets = 0;       // RSTs sent on purpose
  std::uint64_t overlong = 0;     // over-long lines answered correctly
  std::uint64_t slow = 0;         // slow readers that got everything back
  std::uint64_t quick = 0;        // connect-and-close done
  std::uint64_t unexpected = 0;
};

struct Target {
  std::string name;
  std::uint16_t port = 0;
  std::optional<asyncio::ssl::SSLContext> ssl;
  Counters count;
};

double g_longest[5] = {};             // the longest scenario of each kind, seconds
std::vector<Target> g_targets;       // set up once, never resized afterwards (slots hold references)
std::uint64_t g_loop_unexpected = 0;  // reported by the client's exception handler or log sink
std::string g_stats_path;
std::mt19937_64 g_rng;
std::string g_pool;  // random bytes without "\n", lines are cut out of it

std::size_t uniform(std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(g_rng); }
double uniform_real(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(g_rng); }
double now() { return asyncio::get_running_loop().time(); }

void report(std::string_view who, std::string_view what) {
  static int reported = 0;
  if (++reported <= 200) {
    std::fprintf(stderr, "soak_load: unexpected (%.*s): %.*s\n", static_cast<int>(who.size()), who.data(),
                 static_cast<int>(what.size()), what.data());
    std::fflush(stderr);
  }
}

// 1 B..64 KiB, log-uniform: mostly small lines, some of every size up to the largest.
std::size_t random_line_size() {
  double x = std::exp(uniform_real(0.0, std::log(static_cast<double>(kMaxLine))));
  return std::clamp<std::size_t>(static_cast<std::size_t>(x), 1, kMaxLine);
}

// `size` bytes, the last one "\n", the others random and different from line to line.
std::string random_line(std::size_t size) {
  std::string line = g_pool.substr(uniform(0, g_pool.size() - size), size - 1);
  line.push_back('\n');
  return line;
}

class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void check_echo(std::string_view sent, std::string_view got) {
  if (sent == got) return;
  std::size_t at = 0;
  while (at < sent.size() && at < got.size() && sent[at] == got[at]) ++at;
  throw Failure("echo differs at byte " + std::to_string(at) + " of " + std::to_string(sent.size()) +
                " (got " + std::to_string(got.size()) + ")");
}

asyncio::Coro<std::pair<asyncio::StreamReader, asyncio::StreamWriter>> connect(Target& t, bool without_tls = false) {
  ++t.count.connections;
  if (t.ssl && !without_tls) {
    asyncio::ConnectOptions options;
    options.ssl = *t.ssl;
    options.server_hostname = "localhost";
    co_return co_await asyncio::open_connection(kHost, t.port, std::move(options));
  }
  co_return co_await asyncio::open_connection(kHost, t.port);
}

int socket_fd(const asyncio::StreamWriter& writer) {
  auto view = writer.get_extra_info<asyncio::SocketView>("socket");
  if (!view) throw Failure("no socket in get_extra_info");
  return view->fd;
}

// The connection ends with an RST instead of a FIN: the server's next recv or send fails with
// ECONNRESET (or EPIPE), whatever it was doing.
void reset(asyncio::StreamWriter& writer) {
  linger lg{};
  lg.l_onoff = 1;
  lg.l_linger = 0;
  if (setsockopt(socket_fd(writer), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0) throw Failure("SO_LINGER failed");
  writer.transport().abort();
}

asyncio::Coro<void> close(asyncio::StreamWriter& writer) {
  writer.close();
  co_await writer.wait_closed();
}

asyncio::Coro<void> echo_one(Target& t, asyncio::StreamReader& reader, asyncio::StreamWriter& writer, std::size_t size) {
  std::string line = random_line(size);
  writer.write(line);
  co_await writer.drain();
  std::string back = co_await reader.readexactly(static_cast<std::ptrdiff_t>(line.size()));
  check_echo(line, back);
  ++t.count.requests;
  t.count.bytes += line.size();
}

asyncio::Coro<void> run_echo(Target& t, double deadline) {
  auto [reader, writer] = co_await connect(t);
  std::size_t n = uniform(1, 64);
  for (std::size_t i = 0; i < n && now() < deadline; ++i) co_await echo_one(t, reader, writer, random_line_size());
  co_await close(writer);
}

asyncio::Coro<void> send_lines(asyncio::StreamWriter writer, std::shared_ptr<const std::vector<std::string>> lines) {
  for (const std::string& line : *lines) {
    writer.write(line);
    co_await writer.drain();
  }
}

asyncio::Coro<void> run_slow(Target& t) {
  auto [reader, writer] = co_await connect(t);
  auto lines = std::make_shared<std::vector<std::string>>();
  std::string expected;
  while (expected.size() < kSlowTotal) {
    lines->push_back(random_line(uniform(16 * 1024, kMaxLine)));
    expected += lines->back();
  }
  asyncio::Task<void> sender = asyncio::create_task(send_lines(writer, lines));
  std::string got;
  std::exception_ptr failure;
  try {
    double slow_until = now() + uniform_real(2.0, 6.0);
    while (now() < slow_until) {
      got += co_await reader.readexactly(static_cast<std::ptrdiff_t>(uniform(1, 64)));
      co_await asyncio::sleep(0.1);
    }
    got += co_await reader.readexactly(static_cast<std::ptrdiff_t>(expected.size() - got.size()));
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    sender.cancel();
    try {
      co_await sender;
    } catch (...) {
    }
    std::rethrow_exception(failure);
  }
  co_await sender;
  check_echo(expected, got);
  ++t.count.slow;
  t.count.requests += lines->size();
  t.count.bytes += expected.size();
  co_await close(writer);
}

asyncio::Coro<void> run_reset(Target& t) {
  auto [reader, writer] = co_await connect(t);
  switch (uniform(0, 2)) {
    case 0: {  // in the middle of a line: the server is inside readline / readuntil
      std::string line = random_line(uniform(1024, kMaxLine));
      writer.write(std::string_view(line).substr(0, line.size() / 2));
      co_await writer.drain();
      co_await asyncio::sleep(uniform_real(0.0, 0.05));
      break;
    }
    case 1: {  // in the middle of an echo: the server is writing
      std::string line = random_line(uniform(16 * 1024, kMaxLine));
      writer.write(line);
      co_await writer.drain();
      std::string part = co_await reader.readexactly(static_cast<std::ptrdiff_t>(uniform(1, line.size() - 1)));
      check_echo(std::string_view(line).substr(0, part.size()), part);
      break;
    }
    default: {  // several lines written, none of the echoes read
      for (std::size_t i = uniform(2, 8); i > 0; --i) writer.write(random_line(uniform(1, kMaxLine)));
      co_await asyncio::sleep(uniform_real(0.0, 0.05));
      break;
    }
  }
  reset(writer);
  ++t.count.resets;
}

asyncio::Coro<void> run_overlong(Target& t) {
  auto [reader, writer] = co_await connect(t);
  std::size_t payload = uniform(kServerLimit + 1, kMaxOverlong);
  std::string line;
  line.reserve(payload + 1);
  while (line.size() < payload) line.append(g_pool, 0, std::min(g_pool.size(), payload - line.size()));
  line.push_back('\n');
  writer.write(line);
  co_await writer.drain();
  std::string answer = co_await reader.readline();
  if (answer != kTooLong) throw Failure("over-long line answered with " + std::to_string(answer.size()) + " bytes");
  ++t.count.overlong;
  co_await echo_one(t, reader, writer, random_line_size());  // and the connection still works
  co_await close(writer);
}

asyncio::Coro<void> run_quick(Target& t) {
  bool without_tls = t.ssl && uniform(0, 1) == 0;
  auto [reader, writer] = co_await connect(t, without_tls);
  co_await close(writer);
  ++t.count.quick;
}

asyncio::Coro<void> run_scenario(Target& t, Kind kind, double deadline) {
  switch (kind) {
    case Kind::echo: co_await run_echo(t, deadline); break;
    case Kind::slow: co_await run_slow(t); break;
    case Kind::reset: co_await run_reset(t); break;
    case Kind::overlong: co_await run_overlong(t); break;
    case Kind::quick: co_await run_quick(t); break;
  }
}

Kind pick_kind() {
  std::size_t r = uniform(0, 99);
  if (r < 60) return Kind::echo;
  if (r < 70) return Kind::slow;
  if (r < 82) return Kind::reset;
  if (r < 90) return Kind::overlong;
  return Kind::quick;
}

asyncio::Coro<void> slot(Target& t, double deadline) {
  co_await asyncio::sleep(uniform_real(0.0, 2.0));  // ramp up instead of 1,000 SYNs at once
  while (now() < deadline) {
    Kind kind = pick_kind();
    bool failed = false;
    double started = now();
    auto body = [&]() -> asyncio::Coro<void> { co_await run_scenario(t, kind, deadline); };
    try {
      co_await asyncio::timeout(kScenarioTimeout, body);
    } catch (const std::exception& e) {
      ++t.count.unexpected;
      report(t.name + " " + kind_name(kind), e.what());
      failed = true;
    }
    double took = now() - started;
    double& longest = g_longest[static_cast<int>(kind)];
    longest = std::max(longest, took);
    if (failed) co_await asyncio::sleep(0.1);  // a dead server must not make the slot spin
  }
}

void write_stats(bool done) {
  std::string tmp = g_stats_path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return;
  for (const Target& t : g_targets) {
    const Counters& c = t.count;
    std::fprintf(f,
                 "name=%s connections=%llu requests=%llu bytes=%llu resets=%llu overlong=%llu slow=%llu quick=%llu "
                 "unexpected=%llu\n",
                 t.name.c_str(), static_cast<unsigned long long>(c.connections),
                 static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.bytes),
                 static_cast<unsigned long long>(c.resets), static_cast<unsigned long long>(c.overlong),
                 static_cast<unsigned long long>(c.slow), static_cast<unsigned long long>(c.quick),
                 static_cast<unsigned long long>(c.unexpected));
  }
  std::fprintf(f, "name=client unexpected=%llu done=%d longest", static_cast<unsigned long long>(g_loop_unexpected),
               done ? 1 : 0);
  for (int k = 0; k < 5; ++k) std::fprintf(f, " %s=%.1f", kind_name(static_cast<Kind>(k)), g_longest[k]);
  std::fprintf(f, "\n");
  std::fclose(f);
  std::rename(tmp.c_str(), g_stats_path.c_str());
}

asyncio::Coro<void> stats_loop() {
  for (;;) {
    write_stats(false);
    co_await asyncio::sleep(1.0);
  }
}

struct Config {
  std::uint16_t plain_port = 0, tls_port = 0;
  std::string cafile;
  std::size_t conns = 1000;
  double duration = 600;
  std::uint64_t seed = 1;
};

asyncio::Coro<void> main_coro(Config cfg) {
  asyncio::get_running_loop().set_exception_handler([](asyncio::EventLoop&, const asyncio::ExceptionContext& c) {
    ++g_loop_unexpected;
    report("exception handler", c.message + ": " + asyncio::describe_exception(c.exception));
  });
  g_targets.resize(2);
  g_targets[0].name = "plain";
  g_targets[0].port = cfg.plain_port;
  g_targets[1].name = "tls";
  g_targets[1].port = cfg.tls_port;
  g_targets[1].ssl = asyncio::ssl::create_default_context(asyncio::ssl::Purpose::server_auth, cfg.cafile);

  asyncio::Task<void> stats = asyncio::create_task(stats_loop());
  double deadline = now() + cfg.duration;
  std::vector<asyncio::Coro<void>> slots;
  for (std::size_t i = 0; i < cfg.conns; ++i) slots.push_back(slot(g_targets[i % 2], deadline));
  co_await asyncio::gather(std::move(slots));
  stats.cancel();
  try {
    co_await stats;
  } catch (const asyncio::CancelledError&) {
  }
  write_stats(true);
  for (const Target& t : g_targets) {
    const Counters& c = t.count;
    std::printf("soak_load %s: %llu connections, %llu lines / %llu bytes checked, %llu resets, %llu over-long, "
                "%llu slow readers, %llu quick, %llu unexpected\n",
                t.name.c_str(), static_cast<unsigned long long>(c.connections),
                static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.bytes),
                static_cast<unsigned long long>(c.resets), static_cast<unsigned long long>(c.overlong),
                static_cast<unsigned long long>(c.slow), static_cast<unsigned long long>(c.quick),
                static_cast<unsigned long long>(c.unexpected));
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
  std::fprintf(stderr,
               "usage: soak_load --plain-port P --tls-port Q --cafile CERT --conns N --duration S --stats FILE "
               "[--seed X]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) usage();
      return std::string(argv[++i]);
    };
    if (a == "--plain-port") {
      cfg.plain_port = static_cast<std::uint16_t>(std::atoi(next().c_str()));
    } else if (a == "--tls-port") {
      cfg.tls_port = static_cast<std::uint16_t>(std::atoi(next().c_str()));
    } else if (a == "--cafile") {
      cfg.cafile = next();
    } else if (a == "--conns") {
      cfg.conns = static_cast<std::size_t>(std::atol(next().c_str()));
    } else if (a == "--duration") {
      cfg.duration = std::atof(next().c_str());
    } else if (a == "--stats") {
      g_stats_path = next();
    } else if (a == "--seed") {
      cfg.seed = static_cast<std::uint64_t>(std::atoll(next().c_str()));
    } else {
      usage();
    }
  }
  if (!cfg.plain_port || !cfg.tls_port || cfg.cafile.empty() || g_stats_path.empty()) usage();
  raise_fd_limit();
  g_rng.seed(cfg.seed);
  g_pool.resize(kMaxLine * 2);
  for (char& c : g_pool) {
    c = static_cast<char>(g_rng() & 0xff);
    if (c == '\n') c = 'n';
  }
  asyncio::set_log_sink([](asyncio::LogLevel level, std::string_view text) {
    if (level < asyncio::LogLevel::warning) return;
    ++g_loop_unexpected;
    report("log", text);
  });
  asyncio::run(main_coro(cfg));
}
