// agent_footprint: runs the real tide-agent for a while (default 60 s) with
// one report per second and one HTTP probe per second against a local
// tide-sample-app, talking to an in-process CURVE coordinator, and prints
// the agent's peak RSS (VmHWM) and CPU % of one core (utime+stime deltas).
//
//   agent_footprint [--duration-s N]     target: RSS <= 8 MB, CPU <= 0.2 %
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/integration/agent/harness.hpp"

using namespace tide;
using namespace tide::test;

namespace {

long status_kb(int pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + std::strlen(key), nullptr, 10);
  }
  return -1;
}

long threads(int pid) { return status_kb(pid, "Threads:"); }

// utime + stime in clock ticks (fields 14 and 15 of /proc/<pid>/stat).
long long cpu_ticks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  const auto close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(s.substr(close + 2));
  std::string f;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::atoll(f.c_str());
    if (i == 15) stime = std::atoll(f.c_str());
  }
  return utime + stime;
}

}  // namespace

int main(int argc, char** argv) {
  int duration_s = 60;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--duration-s") == 0) duration_s = std::atoi(argv[i + 1]);
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  const auto dir = make_temp_dir();
  int rc = 0;
  {
    auto server = *transport::generate_curve_keypair();
    TestCoordinator coord(&loop, server, 0);
    coord.report_interval_ms = 1000;
    coord.heartbeat_interval_ms = 1000;
    coord.start();
    std::unique_ptr<Child> app;
    const int port = start_sample_app(&loop, app, 0);
    std::map<std::string, std::string> env{
        {"TIDE_COORDINATOR_ENDPOINT", "tcp://127.0.0.1:" + std::to_string(coord.port())},
        {"TIDE_COORDINATOR_PUBLIC_KEY", server.public_z85},
        {"TIDE_INSTANCE_ID", "i-bench"},
        {"TIDE_STATE_DIR", (dir / "state").string()},
        {"TIDE_READINESS_HTTP", "http://127.0.0.1:" + std::to_string(port) + "/ready"},
        {"TIDE_LOG_LEVEL", "warn"}};
    Child agent(&loop, {std::string(TIDE_BIN_DIR) + "/tide-agent"}, env, false);
    if (!run_until(&loop, [&] { return coord.count<protocol::Report>() >= 1; }, 10000)) {
      std::fprintf(stderr, "agent_footprint: no report from the agent\n");
      return 1;
    }
    run_for(&loop, 2000);  // warm-up: first probe, first reports
    const long long ticks0 = cpu_ticks(agent.pid());
    const auto t0 = wall_ms();
    const auto reports0 = coord.count<protocol::Report>();
    long peak_rss = 0;
    while (wall_ms() < t0 + static_cast<std::uint64_t>(duration_s) * 1000u && !agent.exited()) {
      run_for(&loop, 1000);
      peak_rss = std::max(peak_rss, status_kb(agent.pid(), "VmRSS:"));
    }
    const long long ticks1 = cpu_ticks(agent.pid());
    const double wall_s = static_cast<double>(wall_ms() - t0) / 1000.0;
    const double cpu_pct = 100.0 * static_cast<double>(ticks1 - ticks0) /
                           static_cast<double>(::sysconf(_SC_CLK_TCK)) / wall_s;
    const long hwm = status_kb(agent.pid(), "VmHWM:");
    const auto reports = coord.count<protocol::Report>() - reports0;
    const bool ready = !coord.all<protocol::Report>().empty() && coord.all<protocol::Report>().back().first.ready;
    std::printf("agent_footprint: %.0f s, %zu reports (%.2f/s), probe ready=%s, threads=%ld\n", wall_s, reports,
                static_cast<double>(reports) / wall_s, ready ? "yes" : "no", threads(agent.pid()));
    std::printf("  peak RSS (VmHWM)   %.2f MB   (target <= 8 MB)%s\n", static_cast<double>(hwm) / 1024.0,
                hwm <= 8 * 1024 ? "" : "  OVER");
    std::printf("  max sampled VmRSS  %.2f MB\n", static_cast<double>(peak_rss) / 1024.0);
    std::printf("  CPU                %.3f %% of one core (target <= 0.2 %%)%s\n", cpu_pct,
                cpu_pct <= 0.2 ? "" : "  OVER");
    if (!ready || reports == 0) rc = 1;
    agent.kill(SIGTERM);
    run_until(&loop, [&] { return agent.exited(); }, 5000);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  std::filesystem::remove_all(dir);
  return rc;
}
