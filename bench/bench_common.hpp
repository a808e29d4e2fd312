// SPDX-License-Identifier: MIT
// What every C++ peer of the core benchmark shares with the others (bench/run_core.sh):
// the workload sizes, the command line, the `RESULT <workload> <metric> <value>` output line,
// and the peak-RSS measurement. bench/peers/core_asyncio.py mirrors the same choices in Python.
//
// Deliberately free of any event-loop library, so core_bench.cpp (our asyncio) and
// peers/core_asio.cpp (Boost.Asio) measure the same things the same way.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// Full-run sizes; --quick divides each by 100. The spawn batch stays fixed so the shape
// (create a batch of tasks, then await each) is the same in every run and peer.
inline constexpr int kSpawnBatch = 1000;
inline constexpr int kSpawnRounds = 1000;
inline constexpr int kPingPongRoundTrips = 1'000'000;
inline constexpr int kYields = 1'000'000;
inline constexpr int kTimerTasks = 1'000'000;
inline constexpr unsigned kTimerSeed = 42;

inline constexpr const char* kWorkloads[] = {"spawn", "pingpong", "yield", "timers"};

struct Options {
  int divisor = 1;                    // 100 with --quick
  std::vector<std::string> only;      // workloads to run, in kWorkloads order

  bool wants(std::string_view workload) const {
    for (const auto& w : only)
      if (w == workload) return true;
    return false;
  }
};

[[noreturn]] inline void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--quick] [--only spawn,pingpong,yield,timers]\n", argv0);
  std::exit(2);
}

inline bool is_workload(std::string_view name) {
  for (const char* w : kWorkloads)
    if (name == w) return true;
  return false;
}

inline std::vector<std::string> split_workloads(std::string_view list, const char* argv0) {
  std::vector<std::string> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto name = list.substr(0, comma);
    if (!is_workload(name)) usage(argv0);
    out.emplace_back(name);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return out;
}

inline Options parse_options(int argc, char** argv) {
  Options opts;
  for (const char* w : kWorkloads) opts.only.emplace_back(w);
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--quick") {
      opts.divisor = 100;
    } else if (arg == "--only" && i + 1 < argc) {
      opts.only = split_workloads(argv[++i], argv[0]);
    } else {
      usage(argv[0]);
    }
  }
  return opts;
}

inline void report(const char* workload, const char* metric, double value) {
  std::printf("RESULT %s %s %.6g\n", workload, metric, value);
  std::fflush(stdout);  // the runner may be reading a pipe; don't lose lines on a crash
}

// ---- time ----------------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---- memory: VmHWM / VmRSS from /proc/self/status ------------------------------------------

inline long proc_status_kib(std::string_view field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
        line[field.size()] == ':')
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
  }
  std::fprintf(stderr, "%.*s missing from /proc/self/status\n", int(field.size()), field.data());
  std::exit(1);
}

// Makes VmHWM forget the peaks of earlier workloads (Linux >= 4.0), so the timers peak cannot
// hide under an earlier one. If the kernel refuses, the baseline is still the current RSS.
inline void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

// Measures the peak memory a workload adds: construct just before it, call bytes_per() after.
class PeakRss {
 public:
  PeakRss() {
    reset_peak_rss();
    baseline_kib_ = proc_status_kib("VmRSS");
  }
  double bytes_per(long items) const {
    return double(proc_status_kib("VmHWM") - baseline_kib_) * 1024.0 / double(items);
  }

 private:
  long baseline_kib_;
};

// ---- timers workload -----------------------------------------------------------------------

// Every peer runs the timers workload twice in one process. The first run ("wall_s", and the
// bytes per task) pays for the first touch of ~0.4 GB of fresh memory, which on a virtual machine
// costs more than everything else the workload does; the second ("wall_s_rerun") reuses what the
// first one freed, as a long-running server does.

// The sleeping times, uniform in [0, 1) s, from a fixed seed so every run sleeps the same.
inline std::vector<std::chrono::nanoseconds> timer_delays(int n) {
  std::mt19937_64 rng(kTimerSeed);
  std::uniform_int_distribution<std::int64_t> ns(0, 999'999'999);
  std::vector<std::chrono::nanoseconds> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.emplace_back(ns(rng));
  return out;
}

}  // namespace bench
