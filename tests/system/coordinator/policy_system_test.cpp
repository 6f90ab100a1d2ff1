// System tests of what a group does by itself, with the real binaries: an
// alarm pair that scales out under real load (requests through HAProxy, which
// tide-sample-app reports as a custom metric through its agent) and back in
// when the load stops, and a scheduled action that fires at its minute.
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

#include "fleet_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace st = tide::system_test;
using tide::system_test::Fleet;

std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("a load alarm pair scales out under load and back in after it, failing no request", "[system]") {
  Fleet fleet;
  fleet.start_coordinator();
  // Warm-up 0 so the first instance's metrics count as soon as it serves.
  fleet.create_group(1, 300, json{{"min", 1}, {"max", 3}, {"warmup_ms", 0}});
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 1; }));

  // The alarm metric is one the application reports itself through its
  // agent's notify socket (METRIC=app_requests_per_s=...): the requests it
  // answered per second. Nothing else running on the machine can raise it,
  // keep it up or hold it down (the instances' own `cpu`, which a crowded
  // machine does hold down, has its alarm test in
  // instance_cpu_system_test.cpp). It reaches the group's windows before any
  // load: 0 while nobody calls.
  const std::string metric = "app_requests_per_s";
  REQUIRE(st::eventually(15s, [&] { return fleet.group_metric(metric).has_value(); }));
  CHECK(*fleet.group_metric(metric) < 1.0);

  const auto put = [&](const std::string& name, const json& body) {
    const auto answer = fleet.api("PUT", "/v1/groups/web/policies/" + name, body);
    INFO(answer.text);
    REQUIRE(answer.status == 201);
  };
  // The load below is a few hundred requests/s per instance on any machine
  // (it waits on timers rather than the CPU), quiet is exactly 0: thresholds
  // far from both.
  put("load-high", json{{"metric", metric}, {"comparison", ">"}, {"threshold", 20}, {"period_ms", 5000},
                        {"evaluation_periods", 2}, {"adjustment", 1}, {"cooldown_ms", 15000}});
  put("load-low", json{{"metric", metric}, {"comparison", "<"}, {"threshold", 1}, {"period_ms", 5000},
                       {"evaluation_periods", 3}, {"adjustment", -1}, {"cooldown_ms", 5000}});
  // A bad policy is refused whole, naming the field.
  const auto bad = fleet.api("PUT", "/v1/groups/web/policies/bad",
                             json{{"metric", metric}, {"comparison", "~"}, {"threshold", 1}, {"adjustment", 1}});
  CHECK(bad.status == 400);
  CHECK(bad.body.value("field", "") == "comparison");
  CHECK(fleet.api("GET", "/v1/groups/web/policies").body["policies"].size() == 2);

  // Load through HAProxy: 8 connections, each request answered after 10 ms
  // (a timer in the application, not CPU), for 30 s.
  const std::int64_t load_started = epoch_ms();
  st::Child wrk({"wrk", "-t2", "-c8", "-d30s", fleet.frontend() + "/?delay_ms=10"}, fleet.dir() / "wrk.log");
  const bool scaled_out = st::eventually(30s, [&] { return !fleet.activity("scale_out", "load-high").is_null(); });
  if (!scaled_out) WARN(fleet.api("GET", "/metrics").text);
  REQUIRE(scaled_out);
  const json activity = fleet.activity("scale_out", "load-high");
  INFO(activity.dump());
  const double reaction_s = static_cast<double>(activity["start_ms"].get<std::int64_t>() - load_started) / 1000.0;
  WARN("load start -> scale-out activity: " << reaction_s << " s (cause: " << activity["cause"] << ")");
  CHECK(reaction_s >= 9.0);   // two full 5-second periods must hold first
  CHECK(reaction_s <= 20.0);  // ... and then it acts within a tick or two (DESIGN.md: <= 1 period + 1 s)
  CHECK(activity["cause"].get<std::string>().find(metric) != std::string::npos);
  CHECK(st::eventually(30s, [&] { return fleet.in_service() >= 2; }));
  REQUIRE(wrk.wait(40s).has_value());

  // Quiet: load-low holds for 3 x 5 s and brings the group back to min,
  // however busy the machine is.
  REQUIRE(st::eventually(60s, [&] { return fleet.group().value("desired", -1) == 1 && fleet.live_instances() == 1; }));
  CHECK(!fleet.activity("scale_in", "load-low").is_null());

  const auto result = st::parse_wrk(st::read_file(fleet.dir() / "wrk.log"));
  INFO(result.output);
  CHECK(result.requests > 1000);
  CHECK(result.non_2xx == 0);
  CHECK(result.socket_errors == 0);

  // Executing a policy by hand, honouring its cooldown or not.
  const auto executed = fleet.api("POST", "/v1/groups/web/policies/load-high/execute", json{{"honour_cooldown", false}});
  INFO(executed.text);
  CHECK(executed.status == 200);
  CHECK(executed.body.value("to_desired", 0) == 2);
  CHECK(fleet.api("POST", "/v1/groups/web/policies/load-high/execute", json::object()).status == 409);  // cooldown
}

TEST_CASE("a scheduled action fires at its minute and survives a restart of the coordinator", "[system]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(0, 100, json{{"max", 3}});

  // Every minute, in a zone with DST and one without: the first fire is the
  // next minute boundary.
  const auto put = fleet.api("PUT", "/v1/groups/web/schedules/every-minute",
                             json{{"cron", "* * * * *"}, {"time_zone", "Asia/Shanghai"}, {"min", 1}, {"desired", 2}});
  INFO(put.text);
  REQUIRE(put.status == 201);
  const std::int64_t next = put.body.value("next_fire_ms", std::int64_t{0});
  CHECK(next % 60'000 == 0);
  CHECK(next > epoch_ms());
  CHECK(next <= epoch_ms() + 60'000);
  CHECK(fleet.api("PUT", "/v1/groups/web/schedules/bad", json{{"cron", "61 * * * *"}, {"desired", 1}}).body.value("field", "") == "cron");
  CHECK(fleet.api("PUT", "/v1/groups/web/schedules/bad", json{{"cron", "* * * * *"}, {"time_zone", "Mars/Olympus"}, {"desired", 1}}).body.value("field", "") == "time_zone");

  // The stored spec survives a restart (schema v3).
  fleet.kill_coordinator();
  fleet.start_coordinator();
  CHECK(fleet.api("GET", "/v1/groups/web/schedules").body["schedules"].size() == 1);

  REQUIRE(st::eventually(75s, [&] { return fleet.group().value("desired", -1) == 2; }));
  const json group = fleet.group();
  CHECK(group.value("min", -1) == 1);
  const json activity = fleet.activity("scale_out", "every-minute");
  INFO(fleet.api("GET", "/v1/groups/web/activities").text);
  REQUIRE(!activity.is_null());
  // It fired at the minute (plus at most a tick or two of the loop).
  CHECK(activity["start_ms"].get<std::int64_t>() - next < 2'000);
  CHECK(st::eventually(30s, [&] { return fleet.in_service() == 2; }));

  CHECK(fleet.api("DELETE", "/v1/groups/web/schedules/every-minute").status == 200);
  CHECK(fleet.api("GET", "/v1/groups/web/schedules").body["schedules"].empty());
}

TEST_CASE("a launching hook holds a new instance out of rotation until it is completed", "[system]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(0, 100, json{{"max", 3}});
  const auto hook = fleet.api("PUT", "/v1/groups/web/hooks/warm-cache",
                              json{{"transition", "launching"}, {"heartbeat_timeout_ms", 60000},
                                   {"default_result", "abandon"}});
  INFO(hook.text);
  REQUIRE(hook.status == 201);
  REQUIRE(fleet.set_desired(1) == 200);

  // Held: its application is ready, but it is not in service.
  json actions;
  REQUIRE(st::eventually(20s, [&] {
    actions = fleet.api("GET", "/v1/groups/web/lifecycle-actions").body["lifecycle_actions"];
    return actions.size() == 1;
  }));
  const std::string id = actions[0]["instance_id"];
  const std::string token = actions[0]["token"];
  std::this_thread::sleep_for(1s);
  CHECK(fleet.api("GET", "/v1/instances/" + id).body.value("state", "") == "pending_launch_hook");
  CHECK(fleet.in_service() == 0);
  CHECK(st::http("GET", fleet.frontend(), "/").status == 503);  // HAProxy: no server in rotation

  // tidectl shows the held instance and its token.
  {
    st::Child tidectl({std::string(TIDE_BIN_DIR) + "/tidectl", "--endpoint", fleet.api_endpoint(), "lifecycle", "list",
                       "web"},
                      fleet.dir() / "tidectl.log");
    const auto status = tidectl.wait(10s);
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    const std::string listed = st::read_file(fleet.dir() / "tidectl.log");
    INFO(listed);
    CHECK(listed.find(id) != std::string::npos);
    CHECK(listed.find(token) != std::string::npos);
  }

  // A heartbeat moves the deadline; a wrong token is refused; the right one completes it.
  const auto beat = fleet.api("POST", "/v1/instances/" + id + "/lifecycle/heartbeat", json{{"hook", "warm-cache"}});
  CHECK(beat.status == 200);
  CHECK(fleet.api("POST", "/v1/lifecycle/complete", json{{"token", "h-wrong"}, {"result", "continue"}}).status == 404);
  CHECK(fleet.api("POST", "/v1/instances/" + id + "/lifecycle/complete", json{{"result", "maybe"}}).status == 400);
  const auto done = fleet.api("POST", "/v1/lifecycle/complete", json{{"token", token}, {"result", "continue"}});
  INFO(done.text);
  CHECK(done.status == 200);
  REQUIRE(st::eventually(15s, [&] { return fleet.in_service() == 1; }));
  // in_service is the coordinator's state, set as it sends HAProxy the
  // registration: on a busy machine the runtime API may take a moment more.
  CHECK(st::eventually(2s, [&] { return st::http("GET", fleet.frontend(), "/").status == 200; }));
}

TEST_CASE("target tracking on HAProxy's requests per instance scales out under load and back in after it",
          "[system]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(1, 300, json{{"min", 1}, {"max", 4}, {"warmup_ms", 0}});
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 1; }));

  // The load balancer's own figure: nothing the application reports, and
  // nothing else on the machine moves it. 0 while nobody calls.
  const std::string metric = "requests_per_instance";
  REQUIRE(st::eventually(15s, [&] { return fleet.group_metric(metric).has_value(); }));
  CHECK(*fleet.group_metric(metric) < 1.0);

  // Target 20 requests/s per instance. The load: 8 connections, each
  // request answered after 100 ms (a timer, not CPU): ~80 requests/s
  // whatever the machine does: ceil(1 x 80 / 20) = 4 = max.
  const auto put = fleet.api("PUT", "/v1/groups/web/policies/rps-20",
                             json{{"type", "target_tracking"}, {"metric", metric}, {"target", 20},
                                  {"window_ms", 10000}, {"scale_out_window_ms", 1000},
                                  {"scale_in_stabilization_ms", 5000}});
  INFO(put.text);
  REQUIRE(put.status == 201);
  const std::int64_t load_started = epoch_ms();
  st::Child wrk({"wrk", "-t1", "-c8", "-d25s", fleet.frontend() + "/?delay_ms=100"}, fleet.dir() / "wrk.log");
  const bool scaled_out = st::eventually(20s, [&] { return !fleet.activity("scale_out", "rps-20").is_null(); });
  if (!scaled_out) WARN(fleet.api("GET", "/metrics").text);
  REQUIRE(scaled_out);
  const json activity = fleet.activity("scale_out", "rps-20");
  INFO(activity.dump());
  const double reaction_s = static_cast<double>(activity["start_ms"].get<std::int64_t>() - load_started) / 1000.0;
  WARN("load start -> scale-out activity: " << reaction_s << " s (cause: " << activity["cause"] << ")");
  // The 1 s scale-out span acts on the first readings under load (HAProxy is
  // read every second), not after the 10 s window's average catches up.
  CHECK(reaction_s <= 8.0);
  CHECK(st::eventually(30s, [&] { return fleet.in_service() == 4; }));
  // How many steps it took: the first reading under load may cover part of
  // a second without it, so the first step may fall short of 4.
  const json scale_outs = fleet.api("GET", "/v1/groups/web/activities?type=scale_out").body["activities"];
  int steps = 0;
  for (const auto& a : scale_outs) {
    if (a["cause"].get<std::string>().find("rps-20") != std::string::npos) ++steps;
  }
  WARN("scale-out steps to 4: " << steps);
  CHECK(steps >= 1);
  REQUIRE(wrk.wait(40s).has_value());

  // Quiet: the rate falls to 0 and the group goes back to min after the
  // stabilisation window.
  REQUIRE(st::eventually(60s, [&] { return fleet.group().value("desired", -1) == 1 && fleet.live_instances() == 1; }));
  const auto result = st::parse_wrk(st::read_file(fleet.dir() / "wrk.log"));
  INFO(result.output);
  CHECK(result.requests > 500);
  CHECK(result.non_2xx == 0);
  CHECK(result.socket_errors == 0);
}
