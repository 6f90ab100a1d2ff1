// Codec throughput on a realistic REPORT (4 probes, all 6 metrics, 3 custom
// metrics): encode only, decode only, and encode+decode round trips.
// Usage: bench_codec [seconds per measurement, default 2]
//
// Rates are given per second of this thread's CPU time (what the codec costs,
// even on a machine shared with other work) and per second of wall time.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "protocol/codec.hpp"
#include "tests/unit/protocol/sample_messages.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using tide::protocol::Message;

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Rate {
  double per_cpu_s;
  double per_wall_s;
};

// Runs `op` in batches until `seconds` of wall time have passed.
template <typename Op>
Rate measure(double seconds, Op&& op) {
  constexpr int kBatch = 1000;
  std::uint64_t done = 0;
  const auto start = Clock::now();
  const double cpu_start = thread_cpu_s();
  const auto budget = std::chrono::duration<double>(seconds);
  auto elapsed = std::chrono::duration<double>(0);
  while (elapsed < budget) {
    for (int i = 0; i < kBatch; ++i) op();
    done += kBatch;
    elapsed = Clock::now() - start;
  }
  const double cpu = thread_cpu_s() - cpu_start;
  return {static_cast<double>(done) / cpu, static_cast<double>(done) / elapsed.count()};
}

void print(const char* what, Rate r) {
  std::printf("  %-16s %10.0f msg/s per CPU-s (%.2f us/msg)   %10.0f msg/s wall\n", what, r.per_cpu_s,
              1e6 / r.per_cpu_s, r.per_wall_s);
}

volatile std::size_t g_sink = 0;  // keeps the optimiser from dropping the work

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::strtod(argv[1], nullptr) : 2.0;
  if (!(seconds > 0.0)) {
    std::fprintf(stderr, "usage: bench_codec [seconds > 0]\n");
    return 2;
  }
  const Message report = tide::protocol::testing::sample_report();
  const auto frame = tide::protocol::encode(report);
  if (const auto check = tide::protocol::decode(frame); !check || !(*check == report)) {
    std::fprintf(stderr, "bench_codec: the sample REPORT does not round-trip\n");
    return 1;
  }

  const Rate encode_rate = measure(seconds, [&] { g_sink = g_sink + tide::protocol::encode(report).size(); });
  const Rate decode_rate = measure(seconds, [&] {
    const auto m = tide::protocol::decode(frame);
    g_sink = g_sink + m->index();
  });
  const Rate round_trip_rate = measure(seconds, [&] {
    const auto bytes = tide::protocol::encode(report);
    const auto m = tide::protocol::decode(bytes);
    g_sink = g_sink + m->index();
  });

  std::printf("bench_codec: REPORT with 4 probes, 6 metrics, 3 custom metrics\n");
  std::printf("  frame size        %zu bytes\n", frame.size());
  print("encode", encode_rate);
  print("decode+validate", decode_rate);
  print("encode+decode", round_trip_rate);
  return 0;
}
