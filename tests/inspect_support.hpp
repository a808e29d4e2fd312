// SPDX-License-Identifier: MIT
// Helpers for the diagnostics tests (inspect_test, trace_test, watchdog_test): a thread-safe log
// capture, a small JSON reader, and running the project's other binaries (tools, examples).
#pragma once

#include <asyncio/asyncio.hpp>

#include "log_capture.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace inspect_support {

/// Captures asyncio::log lines (the sink may be called from the watchdog thread).
using LogCapture = testing_support::LogCapture;


// ---- a small JSON reader (enough to check trace files) ---------------------------------------

struct Json {
  enum class Type { null, boolean, number, string, array, object } type = Type::null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::map<std::string, Json> obj;

  const Json& operator[](const std::string& key) const {
    static const Json none;
    auto it = obj.find(key);
    return it == obj.end() ? none : it->second;
  }
  bool has(const std::string& key) const { return obj.count(key) != 0; }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}
  /// Parses the whole text; throws std::runtime_error with the offset on a syntax error.
  Json parse() {
    Json v = value();
    ws();
    if (i_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string("JSON: ") + what + " at offset " + std::to_string(i_));
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail("unexpected character");
  }
  void literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) fail("bad literal");
    i_ += word.size();
  }
  std::string string() {
    expect('"');
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("bad escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail("bad \\u escape");
          unsigned code = static_cast<unsigned>(std::stoul(std::string(s_.substr(i_, 4)), nullptr, 16));
          i_ += 4;
          out += code < 0x80 ? static_cast<char>(code) : '?';
          break;
        }
        default: fail("bad escape");
      }
    }
    if (i_ >= s_.size()) fail("unterminated string");
    ++i_;
    return out;
  }
  Json value() {
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    Json v;
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      v.type = Json::Type::object;
      if (eat('}')) return v;
      do {
        ws();
        std::string key = string();
        expect(':');
        v.obj[key] = value();
      } while (eat(','));
      expect('}');
    } else if (c == '[') {
      ++i_;
      v.type = Json::Type::array;
      if (eat(']')) return v;
      do v.arr.push_back(value());
      while (eat(','));
      expect(']');
    } else if (c == '"') {
      v.type = Json::Type::string;
      v.str = string();
    } else if (c == 't') {
      literal("true");
      v.type = Json::Type::boolean;
      v.b = true;
    } else if (c == 'f') {
      literal("false");
      v.type = Json::Type::boolean;
    } else if (c == 'n') {
      literal("null");
    } else {
      std::size_t start = i_;
      if (s_[i_] == '-') ++i_;
      while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == 'e' ||
                                s_[i_] == 'E' || s_[i_] == '+' || s_[i_] == '-'))
        ++i_;
      if (start == i_) fail("unexpected character");
      v.type = Json::Type::number;
      v.num = std::stod(std::string(s_.substr(start, i_ - start)));
    }
    return v;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

/// True if `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF), as
/// JSON text must be.
inline bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto b = [&](std::size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
    unsigned c = b(i);
    std::size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (n > 1 && (b(i + 1) < lo || b(i + 1) > hi)) return false;
    for (std::size_t k = 2; k < n; ++k)
      if (b(i + k) < 0x80 || b(i + k) > 0xBF) return false;
    i += n;
  }
  return true;
}

inline std::string read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return {};
  std::string out;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) out.append(buf, n);
  return out;
}

/// A slice of a trace: the track's name, the slice's name, category, start and duration (seconds).
struct Slice {
  std::string track, name, cat, kind;
  double start = 0, dur = 0;
  char ph = 'X';
};

/// Reads a trace file into its X and i slices, in file order; throws if it is not valid JSON.
inline std::vector<Slice> read_trace(const std::string& path, Json* whole = nullptr) {
  Json doc = JsonParser(read_file(path)).parse();
  std::map<double, std::string> names;
  for (const Json& e : doc["traceEvents"].arr)
    if (e["ph"].str == "M" && e["name"].str == "thread_name") names[e["tid"].num] = e["args"]["name"].str;
  std::vector<Slice> out;
  for (const Json& e : doc["traceEvents"].arr) {
    if (e["ph"].str != "X" && e["ph"].str != "i") continue;
    Slice s;
    s.track = names[e["tid"].num];
    s.name = e["name"].str;
    s.cat = e["cat"].str;
    s.kind = e["args"]["kind"].str;
    s.start = e["ts"].num / 1e6;
    s.dur = e["dur"].num / 1e6;
    s.ph = e["ph"].str[0];
    out.push_back(std::move(s));
  }
  if (whole) *whole = std::move(doc);
  return out;
}

/// The directory of this test binary's build tree (…/build/x), found through /proc/self/exe.
inline std::string build_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string exe(buf, static_cast<std::size_t>(n));
  auto slash = exe.rfind('/');        // …/build/x/tests/name
  std::string tests = exe.substr(0, slash);
  return tests.substr(0, tests.rfind('/'));
}

inline bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

/// Runs a shell command; returns its exit status and stdout+stderr.
inline int run_command(const std::string& command, std::string& output) {
  output.clear();
  std::FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace inspect_support
