// Fault paths with the real binaries (docs/lifecycle.md, "Health and
// fail-static", "Crash safety"): a crashed application in a small group is
// taken out of rotation and replaced; a coordinator restart after an
// instance died while it was down never sends a request to a replacement
// that is not ready; a launch whose application exits at once fails fast
// with its output and follows the retry policy. Each was a reproduction of
// a bug before its fix.
#include <signal.h>
#include <unistd.h>

#include <thread>

#include <catch2/catch.hpp>

#include "fleet_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace st = tide::system_test;
using tide::system_test::Fleet;

// The instances the coordinator lists as in service.
std::vector<json> in_service_instances(const Fleet& fleet) {
  std::vector<json> out;
  const auto listed = fleet.api("GET", "/v1/instances?group=web").body;
  if (!listed.is_object() || !listed.contains("instances")) return out;
  for (const auto& i : listed["instances"]) {
    if (i.value("state", "") == "in_service") out.push_back(i);
  }
  return out;
}

// The tide-sample-app process of the instance with this provider id: the
// local provider runs it in a directory named after the provider id.
pid_t app_pid(const std::string& provider_id) {
  for (const pid_t pid : st::processes_matching("tide-sample-app")) {
    const std::string cmdline = st::read_file("/proc/" + std::to_string(pid) + "/cmdline");
    if (cmdline.find("tide-sample-app") == std::string::npos) continue;
    std::error_code ec;
    const auto cwd = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
    if (!ec && cwd.filename() == provider_id) return pid;
  }
  return 0;
}

// Requests through the frontend while `until` is false; counts the answers
// that came from an application that was not ready yet (its "not ready" 503,
// as opposed to HAProxy's own 503 when no server is in rotation).
struct Probe {
  int ok = 0;
  int early = 0;
  int other = 0;
};
Probe probe_frontend(const Fleet& fleet, std::chrono::milliseconds timeout, const std::function<bool()>& until) {
  Probe p;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline && !until()) {
    for (int k = 0; k < 10; ++k) {
      const auto r = st::http("GET", fleet.frontend(), "/");
      if (r.status == 200) ++p.ok;
      else if (r.status == 503 && r.text.find("not ready") != std::string::npos) ++p.early;
      else ++p.other;
      std::this_thread::sleep_for(10ms);
    }
  }
  return p;
}

std::size_t count_activities(const Fleet& fleet, const std::string& type, const std::string& needle = "") {
  std::size_t n = 0;
  for (const auto& a : fleet.api("GET", "/v1/groups/web/activities").body.value("activities", json::array())) {
    if (a.value("type", "") == type && a.value("cause", "").find(needle) != std::string::npos) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("kill -9 of the application in a group of 1, 2 or 3: out of rotation, replaced, serving again",
          "[system][faults]") {
  for (const int size : {1, 3}) {
    CAPTURE(size);
    Fleet fleet;
    fleet.start_coordinator();
    fleet.create_group(size, 1000);
    REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == size; }));
    const auto before = in_service_instances(fleet);
    REQUIRE(static_cast<int>(before.size()) == size);
    const std::string victim = before.at(0)["id"];
    const pid_t pid = app_pid(before.at(0)["provider_id"]);
    REQUIRE(pid > 0);
    REQUIRE(::kill(pid, SIGKILL) == 0);

    // Until the replacement serves, no request may reach an application that
    // is not ready; with a group of 1 HAProxy answers 503 meanwhile.
    const auto seen = probe_frontend(fleet, 30s, [&] {
      const auto now = in_service_instances(fleet);
      return static_cast<int>(now.size()) == size &&
             std::none_of(now.begin(), now.end(), [&](const json& i) { return i["id"] == victim; });
    });
    INFO("ok " << seen.ok << ", early " << seen.early << ", other " << seen.other);
    const std::string log = fleet.log();
    INFO(log.substr(log.size() > 4000 ? log.size() - 4000 : 0));
    REQUIRE(st::eventually(5s, [&] { return fleet.in_service() == size; }));
    CHECK(seen.early == 0);
    CHECK(fleet.served_before_ready() == 0);
    CHECK_FALSE(fleet.api("GET", "/v1/groups/web").body.value("fail_static", true));
    CHECK(count_activities(fleet, "terminate_unexpectedly") + count_activities(fleet, "replace_unhealthy") >= 1);
    CHECK(st::eventually(10s, [&] { return static_cast<int>(fleet.app_processes()) == size; }));
    for (int k = 0; k < 20; ++k) CHECK(st::http("GET", fleet.frontend(), "/").status == 200);
  }
}

TEST_CASE("an application killed while the coordinator was down: its slot goes before a replacement, which gets "
          "no request before it is ready",
          "[system][faults]") {
  Fleet fleet("  keep_running_on_stop: true\n");
  fleet.start_coordinator();
  fleet.create_group(1, 2000);
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 1; }));
  const auto before = in_service_instances(fleet);
  REQUIRE(before.size() == 1);
  const std::string victim = before[0]["id"];
  const pid_t pid = app_pid(before[0]["provider_id"]);
  REQUIRE(pid > 0);

  fleet.kill_coordinator();
  REQUIRE(::kill(pid, SIGKILL) == 0);
  std::this_thread::sleep_for(500ms);
  fleet.start_coordinator();

  // The replacement reuses the loopback address on this /24 (lowest free);
  // the dead instance's slot must not send it traffic before it is ready.
  const auto seen = probe_frontend(fleet, 40s, [&] {
    const auto now = in_service_instances(fleet);
    return now.size() == 1 && now[0]["id"] != victim;
  });
  const std::string log = fleet.log();
  INFO("ok " << seen.ok << ", early " << seen.early << ", other " << seen.other);
  INFO(log.substr(log.size() > 6000 ? log.size() - 6000 : 0));
  REQUIRE(st::eventually(5s, [&] {
    const auto now = in_service_instances(fleet);
    return now.size() == 1 && now[0]["id"] != victim;
  }));
  CHECK(seen.early == 0);
  CHECK(fleet.served_before_ready() == 0);
  CHECK(st::http("GET", fleet.frontend(), "/").status == 200);

  // A plain scale-out that may reuse an address again: still no early request.
  REQUIRE(fleet.set_desired(2) == 200);
  const auto more = probe_frontend(fleet, 30s, [&] { return fleet.in_service() == 2; });
  REQUIRE(fleet.in_service() == 2);
  CHECK(more.early == 0);
  CHECK(fleet.served_before_ready() == 0);
  CHECK(fleet.app_processes() == 2);
}

TEST_CASE("a launch whose application exits at once fails within seconds with its output, with back-off",
          "[system][faults]") {
  Fleet fleet;
  fleet.start_coordinator();
  REQUIRE(fleet.api("POST", "/v1/launch-configurations",
                    json{{"id", "broken"}, {"command", "echo tide-broken-output >&2; exit 3"}, {"port", 8080}})
              .status == 201);
  const auto created = fleet.api("POST", "/v1/groups",
                                 json{{"name", "web"}, {"launch_configuration", "broken"}, {"min", 0}, {"max", 2},
                                      {"desired", 1}, {"load_balancer", {{"backend", "web"}}}});
  REQUIRE(created.status == 201);
  REQUIRE(st::eventually(15s, [&] { return count_activities(fleet, "launch_failed", "tide-broken-output") >= 1; }));
  bool status_named = false;
  const auto activities = fleet.api("GET", "/v1/groups/web/activities").body["activities"];
  INFO(activities.dump(1));
  for (const auto& a : activities) {
    if (a.value("type", "") == "launch_failed") {
      status_named = status_named || a.value("cause", "").find("status 3") != std::string::npos;
    }
  }
  CHECK(status_named);
  // The retry policy's back-off (2 at once, then 1 s, 2 s, 4 s, ...): a
  // handful of attempts in 12 s, not a tight loop.
  std::this_thread::sleep_for(12s);
  const std::size_t failures = count_activities(fleet, "launch_failed");
  CHECK(failures >= 3);
  CHECK(failures <= 8);
  REQUIRE(fleet.set_desired(0) == 200);
}
