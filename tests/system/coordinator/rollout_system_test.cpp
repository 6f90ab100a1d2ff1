// Readiness-gated rollouts with the real binaries under continuous load
// (docs/rollout.md): a good version replaces the whole group with no failed
// request; a version that never becomes ready never receives a request, fails
// by its deadline and is rolled back, with no failed request either.
#include <thread>

#include <catch2/catch.hpp>

#include "fleet_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace st = tide::system_test;
using tide::system_test::Fleet;

// Versions of the group's live instances, by count.
std::map<int, int> live_versions(const Fleet& fleet) {
  std::map<int, int> versions;
  const auto listed = fleet.api("GET", "/v1/instances?group=web").body;
  for (const auto& i : listed.value("instances", json::array())) {
    ++versions[i.value("launch_configuration_version", 0)];
  }
  return versions;
}

std::string rollout_state(const Fleet& fleet) {
  const json body = fleet.api("GET", "/v1/groups/web/rollout").body;
  return body.is_object() ? body.value("state", "") : "";
}

}  // namespace

TEST_CASE("rollout: 6 instances v1 -> v2 under load, no failed request, old ones drained", "[system][rollout]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(6, 500);
  REQUIRE(st::eventually(40s, [&] { return fleet.in_service() == 6; }));
  fleet.put_app_version(700);

  st::Child wrk({"wrk", "-t2", "-c16", "-d40s", fleet.frontend() + "/"}, fleet.dir() / "wrk.log");
  std::this_thread::sleep_for(2s);
  const auto started = fleet.api("POST", "/v1/groups/web/rollouts", json{{"batch", "25%"}, {"max_surge", 1}});
  INFO(started.text);
  REQUIRE(started.status == 201);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(st::eventually(120s, [&] { return rollout_state(fleet) == "succeeded"; }));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  REQUIRE(wrk.wait(60s).has_value());

  const auto result = st::parse_wrk(st::read_file(fleet.dir() / "wrk.log"));
  const std::string log = fleet.log();
  INFO(result.output);
  INFO("rollout took " << took.count() << " ms");
  INFO(log.substr(log.size() > 4000 ? log.size() - 4000 : 0));
  CHECK(result.requests > 1000);
  CHECK(result.non_2xx == 0);
  CHECK(result.socket_errors == 0);
  CHECK(fleet.served_before_ready() == 0);
  REQUIRE(st::eventually(30s, [&] { return live_versions(fleet) == std::map<int, int>{{2, 6}}; }));
  CHECK(st::eventually(20s, [&] { return fleet.app_processes() == 6; }));
  // One activity per batch at least, and the retirements drained first.
  const auto activities = fleet.api("GET", "/v1/groups/web/activities?type=rollout");
  INFO(activities.text.substr(0, 3000));
  int batches = 0;
  for (const auto& a : activities.body["activities"]) {
    if (a.value("cause", "").find("batch") != std::string::npos) ++batches;
  }
  CHECK(batches >= 3);  // 25 % of 6 is 2 per batch
}

TEST_CASE("rollout: a version that never becomes ready gets no request, fails by its deadline and is rolled back",
          "[system][rollout]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(3, 500);
  REQUIRE(st::eventually(40s, [&] { return fleet.in_service() == 3; }));
  fleet.put_app_version(100'000'000);  // v2: never ready

  st::Child wrk({"wrk", "-t2", "-c8", "-d30s", fleet.frontend() + "/"}, fleet.dir() / "wrk.log");
  std::this_thread::sleep_for(1s);
  const auto started =
      fleet.api("POST", "/v1/groups/web/rollouts", json{{"batch", 1}, {"batch_deadline_ms", 8000}});
  INFO(started.text);
  REQUIRE(started.status == 201);
  REQUIRE(st::eventually(60s, [&] { return rollout_state(fleet) == "rolled_back"; }));
  REQUIRE(wrk.wait(45s).has_value());

  const auto result = st::parse_wrk(st::read_file(fleet.dir() / "wrk.log"));
  INFO(result.output);
  CHECK(result.requests > 500);
  CHECK(result.non_2xx == 0);
  CHECK(result.socket_errors == 0);
  const auto rollout = fleet.api("GET", "/v1/groups/web/rollout").body;
  CHECK(rollout.value("reason", "").find("not done within") != std::string::npos);
  REQUIRE(st::eventually(30s, [&] { return live_versions(fleet) == std::map<int, int>{{1, 3}}; }));
  CHECK(fleet.group().value("launch_configuration_version", 0) == 1);
  CHECK(fleet.served_before_ready() == 0);
}

TEST_CASE("rollout: a canary answering 500 to a fifth of its requests is judged on HAProxy's figures and rolled back",
          "[system][rollout]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(4, 500);
  REQUIRE(st::eventually(40s, [&] { return fleet.in_service() == 4; }));
  fleet.put_app_version(500, "--error-percent 20");  // v2: a bad build

  st::Child wrk({"wrk", "-t2", "-c8", "-d30s", fleet.frontend() + "/"}, fleet.dir() / "wrk.log");
  std::this_thread::sleep_for(1s);
  const json canary{{"count", 1}, {"bake_ms", 60000}, {"min_requests", 50}};
  const auto started = fleet.api("POST", "/v1/groups/web/rollouts", json{{"batch", 1}, {"canary", canary}});
  INFO(started.text);
  REQUIRE(started.status == 201);
  REQUIRE(st::eventually(40s, [&] { return rollout_state(fleet) == "rolled_back"; }));
  const auto rollout = fleet.api("GET", "/v1/groups/web/rollout").body;
  INFO(rollout.dump());
  // Judged on the load balancer's figures well before its 60 s bake time.
  CHECK(rollout.value("reason", "").find("error share above") != std::string::npos);
  CHECK(rollout.value("replaced", 1) == 0);  // no old instance was retired for it
  REQUIRE(wrk.wait(45s).has_value());

  const auto result = st::parse_wrk(st::read_file(fleet.dir() / "wrk.log"));
  INFO(result.output);
  CHECK(result.requests > 500);
  CHECK(result.socket_errors == 0);
  // The canary's 500s reached clients (that is what it is judged on), but
  // only for the moments it took to be judged: a small share of the run.
  CHECK(result.non_2xx > 0);
  CHECK(result.non_2xx * 50 < result.requests);
  REQUIRE(st::eventually(30s, [&] { return live_versions(fleet) == std::map<int, int>{{1, 4}}; }));
  CHECK(fleet.group().value("launch_configuration_version", 0) == 1);
  CHECK(fleet.served_before_ready() == 0);
}

TEST_CASE("rollout: the coordinator killed with SIGKILL mid-rollout resumes it from the store, no failed request",
          "[system][rollout]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(4, 500);
  REQUIRE(st::eventually(40s, [&] { return fleet.in_service() == 4; }));
  fleet.put_app_version(700);

  st::Child wrk({"wrk", "-t2", "-c8", "-d45s", fleet.frontend() + "/"}, fleet.dir() / "wrk.log");
  std::this_thread::sleep_for(1s);
  const auto started = fleet.api("POST", "/v1/groups/web/rollouts", json{{"batch", 1}, {"bake_ms", 2000}});
  INFO(started.text);
  REQUIRE(started.status == 201);
  const std::string id = started.body.value("id", "");
  // Killed once the first batch is done and while the rest is still to come.
  REQUIRE(st::eventually(40s, [&] {
    const json r = fleet.api("GET", "/v1/groups/web/rollout").body;
    return r.is_object() && r.value("replaced", 0) >= 1;
  }));
  fleet.kill_coordinator();
  std::this_thread::sleep_for(2s);
  fleet.start_coordinator();
  const json resumed = fleet.api("GET", "/v1/groups/web/rollout").body;
  INFO(resumed.dump());
  CHECK(resumed.value("id", "") == id);
  REQUIRE(st::eventually(90s, [&] { return rollout_state(fleet) == "succeeded"; }));
  REQUIRE(wrk.wait(60s).has_value());

  const auto result = st::parse_wrk(st::read_file(fleet.dir() / "wrk.log"));
  INFO(result.output);
  CHECK(result.requests > 500);
  CHECK(result.non_2xx == 0);
  CHECK(result.socket_errors == 0);
  REQUIRE(st::eventually(30s, [&] { return live_versions(fleet) == std::map<int, int>{{2, 4}}; }));
  CHECK(st::eventually(20s, [&] { return fleet.app_processes() == 4; }));
  CHECK(fleet.served_before_ready() == 0);
  // One rollout in the history, and it is this one.
  const json history = fleet.api("GET", "/v1/groups/web/rollouts").body;
  REQUIRE(history.value("rollouts", json::array()).size() == 1);
  CHECK(history["rollouts"][0].value("id", "") == id);
}
