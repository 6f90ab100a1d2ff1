// bench_api_slowloris: latency of legitimate admin-API requests (GET /healthz,
// a fresh connection each) while N other connections are slow or idle: half
// send a request line and one header and then a byte now and then
// (slowloris), half connect and send nothing. Side by side in one run for
// N = 0 and N = --slow (default 500). Target: p99 <= 100 ms with
// 500. Usage: bench_api_slowloris [--slow N] [--requests M]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/integration/coordinator/server/http_api_fixture.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;

namespace {

struct Figures {
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  int failed = 0;
};

Figures measure(int slow_count, int requests) {
  HttpApiFixture api;
  if (!api.start_error().empty()) {
    std::fprintf(stderr, "cannot start the API: %s\n", api.start_error().c_str());
    std::exit(1);
  }
  std::vector<int> slow;
  for (int k = 0; k < slow_count; ++k) {
    const int fd = connect_to(api.port());
    if (fd < 0) {
      std::fprintf(stderr, "connection %d refused\n", k);
      std::exit(1);
    }
    if (k % 2 == 0) (void)send_all(fd, "GET /healthz HTTP/1.1\r\nHost: b\r\nX-Slow: ");
    slow.push_back(fd);
  }
  std::vector<double> latencies;
  Figures f;
  for (int k = 0; k < requests; ++k) {
    if (k % 50 == 0) {
      for (std::size_t s = 0; s < slow.size(); s += 2) (void)send_all(slow[s], "a");
    }
    const auto start = std::chrono::steady_clock::now();
    const std::string answer = exchange(api.port(), "GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n");
    latencies.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (first_status(answer) != 200) ++f.failed;
  }
  for (const int fd : slow) ::close(fd);
  if (latencies.empty()) return f;
  std::sort(latencies.begin(), latencies.end());
  f.p50_ms = latencies[latencies.size() / 2];
  f.p99_ms = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  f.max_ms = latencies[latencies.size() - 1];
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int slow = 500;
  int requests = 1000;  // at least 1
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--slow") == 0) slow = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--requests") == 0) requests = std::max(1, std::atoi(argv[i + 1]));
  }
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  std::printf("%-28s %10s %10s %10s %8s\n", "slow/idle connections", "p50 ms", "p99 ms", "max ms", "failed");
  for (const int n : {0, slow}) {
    const Figures f = measure(n, requests);
    std::printf("%-28d %10.2f %10.2f %10.2f %8d\n", n, f.p50_ms, f.p99_ms, f.max_ms, f.failed);
  }
  return 0;
}
