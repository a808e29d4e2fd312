// SPDX-License-Identifier: MIT
// libFuzzer target: StreamReader (readline, readuntil, readexactly, read) against a reference model.
//
// One input describes a whole scenario:
//
//   byte 0        the reader's limit: 1..64 (so limits are hit), or the default 64 KiB
//   byte 1        flags: the alphabet the data is mapped to, how the stream ends (EOF, with or
//                 without the last data, or an error set with set_exception)
//   byte 2        how many operations the consumer runs (1..32)
//   byte 3        how many chunk sizes follow (1..16)
//   ...           the chunk sizes, cycled over the data: size 0..63, plus "same step as the next
//                 chunk" and "an empty step after this one" bits
//   ...           the operations, each one byte plus its arguments (see parse_op)
//   the rest      the stream's data
//
// A real loop runs two tasks: a consumer that runs the operations (and a final read(-1)) and
// records each outcome, and a producer that feeds the chunks one step at a time (feed_data, then
// sleep(0)) and finally feed_eof() or set_exception(). The reference model is CPython's
// Lib/asyncio/streams.py transcribed over a std::string, with the loop's scheduling reduced to
// one rule: whenever the consumer waits for data or yields with sleep(0), the producer runs
// exactly one step (a wait lasts until a step that wakes it: data, EOF or the error). Each
// outcome (value, or exception type and its partial / expected / consumed / message) and the
// reader's state after it (buffered(), at_eof(), producer steps done) must match; on a mismatch
// the scenario and both outcomes are printed and the fuzzer traps. Everything is deterministic.
#include <asyncio/asyncio.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// ---- the scenario -----------------------------------------------------------------------------------

enum class OpKind { Readline, Readuntil, Readexactly, Read, ReadAll, Yield };

struct Op {
  OpKind kind = OpKind::Readline;
  std::string sep;        // Readuntil
  std::ptrdiff_t n = 0;   // Readexactly, Read
  int yields = 0;         // Yield
};

/// One step of the producer: these feed_data calls, then maybe the end, then sleep(0).
struct Step {
  std::vector<std::string> chunks;
  bool eof = false;
  bool error = false;  // set_exception(InjectedError)
};

struct Scenario {
  std::size_t limit = asyncio::DEFAULT_LIMIT;
  std::vector<Step> steps;
  std::vector<Op> ops;  // the last one is always read(-1)
};

/// The error the producer ends the stream with (set_exception).
class InjectedError : public std::runtime_error {
 public:
  InjectedError() : std::runtime_error("injected") {}
};

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  std::uint8_t byte() { return i_ < n_ ? p_[i_++] : 0; }
  std::size_t left() const { return n_ - i_; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
};

/// Maps a raw byte into the scenario's alphabet (small alphabets make separators common).
char map_byte(std::uint8_t b, int alphabet) {
  static const char kAlpha[4][5] = {"", "a\n", "ab\n", "a\r\nb"};
  switch (alphabet) {
    case 1: return kAlpha[1][b % 2];
    case 2: return kAlpha[2][b % 3];
    case 3: return kAlpha[3][b % 4];
    default: return static_cast<char>(b);
  }
}

Op parse_op(Input& in, int alphabet) {
  std::uint8_t b = in.byte();
  Op op;
  switch (b % 8) {
    case 0: op.kind = OpKind::Readline; break;
    case 1: {
      op.kind = OpKind::Readuntil;
      int len = (b >> 3) % 3 + 1;
      for (int i = 0; i < len; ++i) op.sep += map_byte(in.byte(), alphabet);
      break;
    }
    case 2: op.kind = OpKind::Readexactly; op.n = in.byte(); break;
    case 3: op.kind = OpKind::Read; op.n = in.byte(); break;
    case 4: op.kind = OpKind::ReadAll; op.n = -1; break;
    case 5: op.kind = OpKind::Yield; op.yields = (b >> 3) % 4 + 1; break;
    case 6: op.kind = OpKind::Readuntil; op.sep = "\n"; break;
    default: op.kind = OpKind::Readexactly; op.n = b >> 3; break;  // 0..31
  }
  return op;
}

Scenario parse(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  Scenario s;
  std::uint8_t lb = in.byte();
  s.limit = lb < 240 ? 1 + lb % 64 : asyncio::DEFAULT_LIMIT;
  std::uint8_t flags = in.byte();
  int alphabet = flags & 3;
  bool eof_with_last_data = flags & 4;
  bool end_with_error = (flags & 0x18) == 0x18;  // one in four
  int nops = in.byte() % 32 + 1;
  int nsizes = in.byte() % 16 + 1;
  std::vector<std::uint8_t> sizes;
  for (int i = 0; i < nsizes; ++i) sizes.push_back(in.byte());
  for (int i = 0; i < nops; ++i) s.ops.push_back(parse_op(in, alphabet));
  Op all;
  all.kind = OpKind::ReadAll;
  all.n = -1;
  s.ops.push_back(all);

  std::string rest;
  while (in.left()) rest += map_byte(in.byte(), alphabet);

  // Cut the data into chunks, grouped into producer steps.
  std::size_t pos = 0;
  Step step;
  for (std::size_t k = 0; pos < rest.size(); ++k) {
    std::uint8_t sz = sizes[k % sizes.size()];
    std::size_t len = sz % 64;
    if (k >= 256) len = rest.size() - pos;  // tiny or empty chunks: the rest in one
    len = std::min(len, rest.size() - pos);
    step.chunks.push_back(rest.substr(pos, len));
    pos += len;
    if (!(sz & 0x80) || pos == rest.size()) {  // bit 7: the next chunk goes in the same step
      s.steps.push_back(std::move(step));
      step = Step();
      if (sz & 0x40) s.steps.push_back(Step{{std::string()}, false, false});  // a step that wakes nobody
    }
  }
  if (!step.chunks.empty()) s.steps.push_back(std::move(step));
  // The end. set_exception is always a step of its own: when data and the error arrive before the
  // reader runs, CPython's reader resumes without looking at the error (and may then wait forever),
  // while this port raises it; that corner is outside what the model describes.
  if (end_with_error) {
    Step end;
    end.error = true;
    s.steps.push_back(std::move(end));
  } else if (eof_with_last_data && !s.steps.empty()) {
    s.steps.back().eof = true;
  } else {
    Step end;
    end.eof = true;
    s.steps.push_back(std::move(end));
  }
  return s;
}

// ---- outcomes --------------------------------------------------------------------------------------

enum class Kind { Value, IncompleteRead, LimitOverrun, Injected, OtherError };

struct Outcome {
  Kind kind = Kind::Value;
  std::string data;                       // the value, or IncompleteReadError::partial
  std::optional<std::size_t> expected;    // IncompleteReadError::expected
  std::size_t consumed = 0;               // LimitOverrunError::consumed
  std::string what;                       // LimitOverrunError's message, or the other error's
  std::size_t buffered = 0;               // after the operation
  bool at_eof = false;                    // after the operation
  std::size_t steps = 0;                  // producer steps done by then
};

bool operator==(const Outcome& a, const Outcome& b) {
  return a.kind == b.kind && a.data == b.data && a.expected == b.expected && a.consumed == b.consumed &&
         a.what == b.what && a.buffered == b.buffered && a.at_eof == b.at_eof && a.steps == b.steps;
}

std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return '"' + out + '"';
}

std::string describe(const Op& op) {
  switch (op.kind) {
    case OpKind::Readline: return "readline()";
    case OpKind::Readuntil: return "readuntil(" + escape(op.sep) + ")";
    case OpKind::Readexactly: return "readexactly(" + std::to_string(op.n) + ")";
    case OpKind::Read: return "read(" + std::to_string(op.n) + ")";
    case OpKind::ReadAll: return "read(-1)";
    case OpKind::Yield: return "sleep(0) x" + std::to_string(op.yields);
  }
  return "?";
}

std::string describe(const Outcome& o) {
  std::string s;
  switch (o.kind) {
    case Kind::Value: s = "value " + escape(o.data); break;
    case Kind::IncompleteRead:
      s = "IncompleteReadError(partial=" + escape(o.data) +
          ", expected=" + (o.expected ? std::to_string(*o.expected) : std::string("None")) + ")";
      break;
    case Kind::LimitOverrun:
      s = "LimitOverrunError(consumed=" + std::to_string(o.consumed) + ", \"" + o.what + "\")";
      break;
    case Kind::Injected: s = "InjectedError"; break;
    case Kind::OtherError: s = "other error: " + o.what; break;
  }
  return s + "; then buffered=" + std::to_string(o.buffered) + " at_eof=" + (o.at_eof ? "1" : "0") +
         " steps=" + std::to_string(o.steps);
}

void dump(const Scenario& s) {
  std::fprintf(stderr, "limit=%zu\nproducer steps:\n", s.limit);
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    std::string line;
    for (const std::string& c : s.steps[i].chunks) line += " feed_data(" + escape(c) + ")";
    if (s.steps[i].eof) line += " feed_eof()";
    if (s.steps[i].error) line += " set_exception(InjectedError)";
    std::fprintf(stderr, "  %zu:%s\n", i + 1, line.c_str());
  }
  std::fprintf(stderr, "consumer operations:\n");
  for (std::size_t i = 0; i < s.ops.size(); ++i) std::fprintf(stderr, "  %zu: %s\n", i, describe(s.ops[i]).c_str());
}

std::string hex(const std::string& s) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return '"' + out + '"';
}

/// One JSON line with the scenario and the outcomes, for fuzz/crosscheck.py (bytes in hex).
void print_json(const Scenario& s, const std::vector<Outcome>& outcomes) {
  static const char* const kinds[] = {"readline", "readuntil", "readexactly", "read", "readall", "yield"};
  static const char* const outs[] = {"value", "incomplete", "overrun", "injected", "other"};
  std::string j = "{\"limit\":" + std::to_string(s.limit) + ",\"steps\":[";
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    j += i ? ",{\"chunks\":[" : "{\"chunks\":[";
    for (std::size_t k = 0; k < s.steps[i].chunks.size(); ++k) j += (k ? "," : "") + hex(s.steps[i].chunks[k]);
    j += std::string("],\"eof\":") + (s.steps[i].eof ? "true" : "false") +
         ",\"error\":" + (s.steps[i].error ? "true" : "false") + "}";
  }
  j += "],\"ops\":[";
  for (std::size_t i = 0; i < s.ops.size(); ++i) {
    const Op& op = s.ops[i];
    j += std::string(i ? "," : "") + "{\"op\":\"" + kinds[static_cast<int>(op.kind)] + "\",\"sep\":" + hex(op.sep) +
         ",\"n\":" + std::to_string(op.n) + ",\"yields\":" + std::to_string(op.yields) + "}";
  }
  j += "],\"outcomes\":[";
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& o = outcomes[i];
    j += std::string(i ? "," : "") + "{\"kind\":\"" + outs[static_cast<int>(o.kind)] + "\",\"data\":" + hex(o.data) +
         ",\"expected\":" + (o.expected ? std::to_string(*o.expected) : std::string("null")) +
         ",\"consumed\":" + std::to_string(o.consumed) + ",\"what\":" + hex(o.what) +
         ",\"buffered\":" + std::to_string(o.buffered) + ",\"at_eof\":" + (o.at_eof ? "true" : "false") +
         ",\"steps\":" + std::to_string(o.steps) + "}";
  }
  j += "]}\n";
  std::fputs(j.c_str(), stdout);
}

[[noreturn]] void fail(const Scenario& s, const std::string& why) {
  std::fprintf(stderr, "\n==== stream_reader_fuzz: MISMATCH: %s\n", why.c_str());
  dump(s);
  std::fflush(stderr);
  __builtin_trap();
}

// ---- the reference model: CPython's StreamReader over a std::string ---------------------------------

class Model {
 public:
  explicit Model(const Scenario& s) : s_(s) {}

  std::vector<Outcome> run() {
    std::vector<Outcome> out;
    for (const Op& op : s_.ops) {
      if (op.kind == OpKind::Yield) {
        for (int i = 0; i < op.yields; ++i) step();  // each sleep(0) lets the producer run one step
        continue;
      }
      Outcome o;
      try {
        o.data = perform(op);
      } catch (const Incomplete& e) {
        o.kind = Kind::IncompleteRead;
        o.data = e.partial;
        o.expected = e.expected;
      } catch (const Overrun& e) {
        o.kind = Kind::LimitOverrun;
        o.consumed = e.consumed;
        o.what = e.message;
      } catch (const Injected&) {
        o.kind = Kind::Injected;
      }
      o.buffered = buf_.size();
      o.at_eof = eof_ && buf_.empty();
      o.steps = steps_;
      out.push_back(std::move(o));
    }
    return out;
  }
  /// The buffer once the producer has run all its steps (after run()).
  std::size_t final_buffered() {
    while (steps_ < s_.steps.size()) step();
    return buf_.size();
  }

 private:
  struct Incomplete {
    std::string partial;
    std::optional<std::size_t> expected;
  };
  struct Overrun {
    std::string message;
    std::size_t consumed;
  };
  struct Injected {};

  /// The producer's next step, if any; true if it woke a waiting reader.
  bool step() {
    if (steps_ == s_.steps.size()) return false;
    const Step& st = s_.steps[steps_++];
    bool woke = false;
    for (const std::string& c : st.chunks) {
      if (c.empty()) continue;  // feed_data(b'') returns at once
      buf_ += c;
      woke = true;
    }
    if (st.eof) eof_ = woke = true;
    if (st.error) error_ = woke = true;
    return woke;
  }
  /// _wait_for_data: parked until a step wakes us; the error is raised by the await itself.
  void wait_for_data() {
    if (eof_) fail(s_, "model: _wait_for_data after EOF");
    for (;;) {
      if (steps_ == s_.steps.size()) fail(s_, "model: waiting with the producer finished");
      if (step()) break;
    }
    if (error_) throw Injected{};
  }
  void check() const {
    if (error_) throw Injected{};
  }
  std::string take(std::size_t n) {
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }

  std::string perform(const Op& op) {
    switch (op.kind) {
      case OpKind::Readline: return readline();
      case OpKind::Readuntil: return readuntil(op.sep);
      case OpKind::Readexactly: return readexactly(static_cast<std::size_t>(op.n));
      case OpKind::Read:
      case OpKind::ReadAll: return read(op.n);
      case OpKind::Yield: break;
    }
    return {};
  }

  std::string readline() {
    try {
      return readuntil("\n");
    } catch (Incomplete& e) {
      return e.partial;
    } catch (const Overrun& e) {
      if (e.consumed < buf_.size() && buf_[e.consumed] == '\n')
        buf_.erase(0, e.consumed + 1);
      else
        buf_.clear();
      throw;  // Python raises ValueError(e.args[0]); the port keeps the LimitOverrunError (a ValueError)
    }
  }

  std::string readuntil(const std::string& sep) {
    check();
    const std::size_t seplen = sep.size();
    std::size_t offset = 0;
    std::size_t isep = 0;
    for (;;) {
      std::size_t buflen = buf_.size();
      if (buflen - offset >= seplen) {  // offset <= buflen always
        isep = buf_.find(sep, offset);
        if (isep != std::string::npos) break;
        offset = buflen + 1 - seplen;
        if (offset > s_.limit) throw Overrun{"Separator is not found, and chunk exceed the limit", offset};
      }
      if (eof_) {
        std::string chunk = buf_;
        buf_.clear();
        throw Incomplete{chunk, std::nullopt};
      }
      wait_for_data();
    }
    if (isep > s_.limit) throw Overrun{"Separator is found, but chunk is longer than limit", isep};
    return take(isep + seplen);
  }

  std::string read(std::ptrdiff_t n) {
    check();
    if (n == 0) return {};
    if (n < 0) {
      std::string all;
      for (;;) {
        std::string block = read(static_cast<std::ptrdiff_t>(s_.limit));
        if (block.empty()) break;
        all += block;
      }
      return all;
    }
    if (buf_.empty() && !eof_) wait_for_data();
    return take(static_cast<std::size_t>(n));
  }

  std::string readexactly(std::size_t n) {
    check();
    if (n == 0) return {};
    while (buf_.size() < n) {
      if (eof_) {
        std::string incomplete = buf_;
        buf_.clear();
        throw Incomplete{incomplete, n};
      }
      wait_for_data();
    }
    return take(n);
  }

  const Scenario& s_;
  std::string buf_;
  bool eof_ = false;
  bool error_ = false;
  std::size_t steps_ = 0;
};

// ---- the real thing ---------------------------------------------------------------------------------

struct Shared {
  std::size_t steps = 0;      // producer steps done
  std::size_t progress = 0;   // consumer operations finished (and yields)
  bool consumer_done = false;
  bool deadlock = false;
};

asyncio::Coro<std::string> perform(asyncio::StreamReader reader, const Op& op) {
  switch (op.kind) {
    case OpKind::Readline: co_return co_await reader.readline();
    case OpKind::Readuntil: {
      std::string sep = op.sep;
      asyncio::Coro<std::string> c = reader.readuntil(sep);
      co_return co_await std::move(c);
    }
    case OpKind::Readexactly: co_return co_await reader.readexactly(static_cast<std::size_t>(op.n));
    case OpKind::Read:
    case OpKind::ReadAll: co_return co_await reader.read(op.n);
    case OpKind::Yield: break;
  }
  co_return std::string();
}

asyncio::Coro<void> consumer(asyncio::StreamReader reader, const Scenario& s, Shared& sh,
                             std::vector<Outcome>& out) {
  for (const Op& op : s.ops) {
    if (op.kind == OpKind::Yield) {
      for (int i = 0; i < op.yields; ++i) {
        co_await asyncio::sleep(0);
        ++sh.progress;
      }
      continue;
    }
    Outcome o;
    try {
      o.data = co_await perform(reader, op);
    } catch (const asyncio::IncompleteReadError& e) {
      o.kind = Kind::IncompleteRead;
      o.data = e.partial;
      o.expected = e.expected;
    } catch (const asyncio::LimitOverrunError& e) {
      o.kind = Kind::LimitOverrun;
      o.consumed = e.consumed;
      o.what = e.what();
    } catch (const InjectedError&) {
      o.kind = Kind::Injected;
    } catch (const std::exception& e) {
      o.kind = Kind::OtherError;
      o.what = e.what();
    }
    o.buffered = reader.buffered();
    o.at_eof = reader.at_eof();
    o.steps = sh.steps;
    out.push_back(std::move(o));
    ++sh.progress;
  }
  sh.consumer_done = true;
}

asyncio::Coro<void> producer(asyncio::StreamReader reader, const Scenario& s, Shared& sh) {
  for (const Step& st : s.steps) {
    for (const std::string& c : st.chunks) reader.feed_data(c);
    if (st.eof) reader.feed_eof();
    if (st.error) reader.set_exception(std::make_exception_ptr(InjectedError()));
    ++sh.steps;
    co_await asyncio::sleep(0);
  }
  // After the last step the consumer never needs to wait: if a whole round of the loop passes
  // without it making progress, it is stuck on the reader (the loop would then wait forever).
  std::size_t last = sh.progress;
  while (!sh.consumer_done) {
    co_await asyncio::sleep(0);
    if (sh.consumer_done) break;
    if (sh.progress == last) {
      sh.deadlock = true;
      co_return;
    }
    last = sh.progress;
  }
}

asyncio::Coro<void> scenario_main(const Scenario& s, Shared& sh, std::vector<Outcome>& out,
                                  std::size_t& final_buffered) {
  asyncio::StreamReader reader(s.limit);
  // The consumer is created first, so it runs first, on an empty buffer.
  asyncio::Task<void> c = asyncio::create_task(consumer(reader, s, sh, out));
  asyncio::Task<void> p = asyncio::create_task(producer(reader, s, sh));
  co_await p;
  if (sh.deadlock) {
    c.cancel();
    try {
      co_await c;
    } catch (const asyncio::CancelledError&) {
    }
    co_return;
  }
  co_await c;
  final_buffered = reader.buffered();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  Scenario s = parse(data, size);

  Model model(s);
  std::vector<Outcome> expected = model.run();
  std::size_t expected_final = model.final_buffered();

  Shared sh;
  std::vector<Outcome> actual;
  std::size_t actual_final = 0;
  // One loop for every input (creating a loop per input would cost more than the scenario); each
  // scenario's tasks are finished when run_until_complete returns.
  static const std::shared_ptr<asyncio::EventLoop> loop = [] {
    std::shared_ptr<asyncio::EventLoop> l = asyncio::new_event_loop();
    asyncio::set_event_loop(l);
    return l;
  }();
  loop->run_until_complete(scenario_main(s, sh, actual, actual_final));

  // STREAM_READER_FUZZ_DUMP=1: print each scenario and its outcomes (to read what a seed does).
  // STREAM_READER_FUZZ_JSON=1: print them as JSON lines on stdout (fuzz/crosscheck.py).
  static const bool dump_all = std::getenv("STREAM_READER_FUZZ_DUMP") != nullptr;
  static const bool json = std::getenv("STREAM_READER_FUZZ_JSON") != nullptr;
  if (json) print_json(s, actual);
  if (dump_all) {
    dump(s);
    std::fprintf(stderr, "outcomes:\n");
    for (const Outcome& o : actual) std::fprintf(stderr, "  %s\n", describe(o).c_str());
  }
  if (sh.deadlock) {
    fail(s, "the consumer is stuck waiting after the last producer step (operation " +
                std::to_string(actual.size()) + " of the non-yield operations)");
  }
  std::size_t k = 0;  // index over non-yield operations
  for (std::size_t i = 0; i < s.ops.size(); ++i) {
    if (s.ops[i].kind == OpKind::Yield) continue;
    if (k >= expected.size() || k >= actual.size()) fail(s, "outcome count differs");
    if (!(expected[k] == actual[k])) {
      fail(s, "operation " + std::to_string(i) + " " + describe(s.ops[i]) + "\n  expected: " +
                  describe(expected[k]) + "\n  actual:   " + describe(actual[k]));
    }
    ++k;
  }
  if (expected.size() != actual.size()) fail(s, "outcome count differs");
  if (expected_final != actual_final) {
    fail(s, "buffered() at the end: expected " + std::to_string(expected_final) + ", actual " +
                std::to_string(actual_final));
  }
  return 0;
}
