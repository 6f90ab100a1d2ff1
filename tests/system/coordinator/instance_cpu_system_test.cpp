// System tests of the local provider's per-instance CPU, with the real
// binaries: every local agent runs with metrics.scope: session, so an
// instance's `cpu` is what its own processes use, whatever else burns CPU on
// the host. A busy and an idle instance side by side beside an unrelated CPU
// hog, and a CPU alarm pair that scales out under CPU load and back in after
// it while the hog keeps the host busy throughout.
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "fleet_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace st = tide::system_test;
using tide::system_test::Fleet;

// A process outside every instance that keeps one core busy while it lives.
st::Child cpu_hog(const Fleet& fleet) {
  return st::Child({"/bin/sh", "-c", "while :; do :; done"}, fleet.dir() / "hog.log");
}

// The host's busy and total jiffies from /proc/stat's "cpu" line.
std::pair<std::uint64_t, std::uint64_t> host_cpu_ticks() {
  std::ifstream in("/proc/stat");
  std::string label;
  in >> label;
  std::uint64_t total = 0, idle = 0;
  for (int i = 1; i <= 8; ++i) {
    std::uint64_t v = 0;
    in >> v;
    total += v;
    if (i == 4 || i == 5) idle += v;  // idle, iowait
  }
  return {total - idle, total};
}

// The last 10 s of `metric` for `group` as GET /v1/groups/{g}/metrics shows
// them ({average, minimum, maximum, samples, reporters}), or null.
json last_10s(const Fleet& fleet, const std::string& group, const std::string& metric) {
  const json body = fleet.api("GET", "/v1/groups/" + group + "/metrics").body;
  for (const json& entry : body.value("metrics", json::array())) {
    if (entry.value("name", "") == metric) return entry["last_10s"];
  }
  return nullptr;
}

// A group of one tide-sample-app instance, out of any load balancer, whose
// metrics count as soon as it is in service. `prefix` runs before the
// application in the same shell (the launch configuration's command).
void create_single_group(const Fleet& fleet, const std::string& name, const std::string& prefix) {
  const std::string command =
      prefix + "exec " + std::string(TIDE_BIN_DIR) + "/tide-sample-app --ready-after-ms 100";
  const auto lc = fleet.api("POST", "/v1/launch-configurations",
                            json{{"id", name}, {"command", command}, {"port", 8080}});
  INFO(lc.text);
  REQUIRE(lc.status == 201);
  const auto group = fleet.api("POST", "/v1/groups",
                               json{{"name", name},
                                    {"launch_configuration", name},
                                    {"min", 0},
                                    {"max", 1},
                                    {"desired", 1},
                                    {"warmup_ms", 0}});
  INFO(group.text);
  REQUIRE(group.status == 201);
}

}  // namespace

TEST_CASE(
    "a local instance reports its own CPU: a busy one high, an idle one low beside a busy host",
    "[system]") {
  Fleet fleet;
  fleet.start_coordinator();
  const st::Child hog = cpu_hog(fleet);
  // The busy application forks a worker that spins; it is one of the
  // instance's processes though not the one the launcher started.
  create_single_group(fleet, "busy", "(while :; do :; done) & ");
  create_single_group(fleet, "idle", "");
  const auto in_service = [&](const std::string& group) {
    return fleet.api("GET", "/v1/groups/" + group).body.value("in_service", -1) == 1;
  };
  REQUIRE(st::eventually(30s, [&] { return in_service("busy") && in_service("idle"); }));

  // Ten seconds of reports (one every 500 ms) from both once they count.
  const auto [busy_start, total_start] = host_cpu_ticks();
  std::this_thread::sleep_for(11s);
  const auto [busy_end, total_end] = host_cpu_ticks();
  const double host_pct = 100.0 * static_cast<double>(busy_end - busy_start) /
                          static_cast<double>(std::max<std::uint64_t>(1, total_end - total_start));
  const json busy = last_10s(fleet, "busy", "cpu");
  const json idle = last_10s(fleet, "idle", "cpu");
  const json idle_memory = last_10s(fleet, "idle", "memory");
  INFO("host " << host_pct << " %, busy instance " << busy.dump() << ", idle instance "
               << idle.dump() << ", idle memory " << idle_memory.dump());
  WARN("cpu over 10 s: host " << host_pct << " %, busy instance " << busy.dump()
                              << ", idle instance " << idle.dump());
  REQUIRE(busy.is_object());
  REQUIRE(idle.is_object());
  REQUIRE(busy["samples"].get<int>() >= 10);
  REQUIRE(idle["samples"].get<int>() >= 10);
  // Two processes spin all along, so the host is busy; were the agents
  // reporting the host, the idle instance would read the same.
  CHECK(host_pct > 40.0);
  // An idle sample app: a readiness probe a second. Every reading stays low
  // (a clock tick is 1 % of 2 cores over 500 ms).
  CHECK(idle["maximum"].get<double>() <= 5.0);
  // The spinning worker gets its share of the cores however many others
  // want them: clearly more than the idle instance.
  CHECK(busy["average"].get<double>() >= 10.0);
  CHECK(busy["average"].get<double>() >= idle["average"].get<double>() + 8.0);
  // Memory is the instance's RSS, a few MB: a small share of MemTotal, not
  // the host's used memory.
  REQUIRE(idle_memory.is_object());
  CHECK(idle_memory["maximum"].get<double>() > 0.0);
  CHECK(idle_memory["maximum"].get<double>() < 5.0);

  for (const std::string group : {"busy", "idle"}) {
    CHECK(fleet.api("PATCH", "/v1/groups/" + group, json{{"desired", 0}}).status == 200);
  }
  CHECK(st::eventually(20s, [&] {
    return fleet.api("GET", "/v1/groups/busy").body.value("actual", -1) == 0 &&
           fleet.api("GET", "/v1/groups/idle").body.value("actual", -1) == 0;
  }));
}

TEST_CASE("a CPU alarm pair follows the instances' own CPU, not the host's", "[system]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(1, 300, json{{"min", 1}, {"max", 2}, {"warmup_ms", 0}});
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 1; }));
  // Something else keeps the host busy from start to end.
  const st::Child hog = cpu_hog(fleet);

  const auto put = [&](const std::string& name, const json& body) {
    const auto answer = fleet.api("PUT", "/v1/groups/web/policies/" + name, body);
    INFO(answer.text);
    REQUIRE(answer.status == 201);
  };
  // Under load the single-threaded application spins on one core: up to 50 %
  // of 2 cores, less when the machine is crowded. Quiet, it reads ~0.
  put("cpu-high", json{{"metric", "cpu"},
                       {"comparison", ">"},
                       {"threshold", 10},
                       {"period_ms", 3000},
                       {"evaluation_periods", 2},
                       {"adjustment", 1},
                       {"cooldown_ms", 60000}});
  put("cpu-low", json{{"metric", "cpu"},
                      {"comparison", "<"},
                      {"threshold", 3},
                      {"period_ms", 3000},
                      {"evaluation_periods", 3},
                      {"adjustment", -1},
                      {"cooldown_ms", 5000}});

  // The hog alone: two periods and more pass without a scale-out.
  std::this_thread::sleep_for(10s);
  CHECK(fleet.activity("scale_out", "cpu-high").is_null());
  CHECK(fleet.group().value("desired", -1) == 1);

  // CPU load through HAProxy: each request spins 20 ms in the application.
  st::Child wrk({"wrk", "-t1", "-c4", "-d25s", fleet.frontend() + "/?cpu_ms=20"},
                fleet.dir() / "wrk.log");
  const bool scaled_out =
      st::eventually(25s, [&] { return !fleet.activity("scale_out", "cpu-high").is_null(); });
  if (!scaled_out) WARN(fleet.api("GET", "/v1/groups/web/metrics").text);
  REQUIRE(scaled_out);
  CHECK(fleet.activity("scale_out", "cpu-high")["cause"].get<std::string>().find("cpu") !=
        std::string::npos);
  CHECK(st::eventually(30s, [&] { return fleet.in_service() == 2; }));
  REQUIRE(wrk.wait(40s).has_value());

  // Quiet again while the hog still spins: cpu-low holds for 3 x 3 s and
  // brings the group back to 1.
  const bool scaled_in = st::eventually(
      60s, [&] { return fleet.group().value("desired", -1) == 1 && fleet.live_instances() == 1; });
  if (!scaled_in) WARN(fleet.api("GET", "/v1/groups/web/metrics").text);
  CHECK(scaled_in);
  CHECK(!fleet.activity("scale_in", "cpu-low").is_null());

  const auto result = st::parse_wrk(st::read_file(fleet.dir() / "wrk.log"));
  INFO(result.output);
  CHECK(result.requests > 100);
  CHECK(result.non_2xx == 0);
  CHECK(result.socket_errors == 0);
}
