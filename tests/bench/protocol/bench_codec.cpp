// Codec throughput on a realistic REPORT (4 probes, all 6 metrics, 3 custom
// metrics): encode only, decode only, and encode+decode round trips.
// Usage: bench_codec [seconds per measurement, default 2]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "protocol/codec.hpp"
#include "tests/unit/protocol/sample_messages.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using tide::protocol::Message;

// Runs `op` in batches until `seconds` have passed; returns operations/s.
template <typename Op>
double measure(double seconds, Op&& op) {
  constexpr int kBatch = 1000;
  std::uint64_t done = 0;
  const auto start = Clock::now();
  const auto budget = std::chrono::duration<double>(seconds);
  auto elapsed = std::chrono::duration<double>(0);
  while (elapsed < budget) {
    for (int i = 0; i < kBatch; ++i) op();
    done += kBatch;
    elapsed = Clock::now() - start;
  }
  return static_cast<double>(done) / elapsed.count();
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

  const double encode_rate = measure(seconds, [&] { g_sink = g_sink + tide::protocol::encode(report).size(); });
  const double decode_rate = measure(seconds, [&] {
    const auto m = tide::protocol::decode(frame);
    g_sink = g_sink + m->index();
  });
  const double round_trip_rate = measure(seconds, [&] {
    const auto bytes = tide::protocol::encode(report);
    const auto m = tide::protocol::decode(bytes);
    g_sink = g_sink + m->index();
  });

  std::printf("bench_codec: REPORT with 4 probes, 6 metrics, 3 custom metrics\n");
  std::printf("  frame size        %zu bytes\n", frame.size());
  std::printf("  encode            %10.0f msg/s  (%.2f us/msg)\n", encode_rate, 1e6 / encode_rate);
  std::printf("  decode+validate   %10.0f msg/s  (%.2f us/msg)\n", decode_rate, 1e6 / decode_rate);
  std::printf("  encode+decode     %10.0f msg/s  (%.2f us/msg)\n", round_trip_rate, 1e6 / round_trip_rate);
  return 0;
}
