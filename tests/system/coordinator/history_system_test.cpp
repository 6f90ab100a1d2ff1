// Per-group history on a live fleet (docs/api.md, "History"): the real
// tide-coordinator samples a group of tide-sample-app instances (every
// 200 ms here: history.interval), GET /v1/groups/web/history and
// GET /v1/history answer with its capacity and metrics, bad parameters are
// refused naming them, `tidectl group history` prints them, and what was
// recorded is still there after the coordinator restarts.
#include <set>

#include "fleet_fixture.hpp"

using namespace tide::system_test;

namespace {

// The samples of group web over the last `since`; an empty array when the
// coordinator does not answer (restarting).
json web_samples(const Fleet& fleet, const std::string& query = "since=10m") {
  const auto answer = fleet.api("GET", "/v1/groups/web/history?" + query);
  if (answer.status != 200 || !answer.body.is_object()) return json::array();
  return answer.body.value("samples", json::array());
}

}  // namespace

TEST_CASE(
    "history: a live group's capacity and metrics, by group and for all, kept across a restart",
    "[system][history]") {
  Fleet fleet;
  fleet.add_config("history:\n  interval: 200ms\n");
  fleet.start_coordinator();
  fleet.create_group(1, 300, json{{"min", 1}, {"max", 3}, {"warmup_ms", 0}});
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 1; }));
  // A policy on a metric the application reports, and one on a metric
  // nothing reports: the first is in the history, the second has no value.
  const std::string metric = "app_requests_per_s";
  for (const auto& [name, watched] :
       {std::pair{"load-high", metric}, std::pair{"orders", std::string("orders")}}) {
    const auto put = fleet.api(
        "PUT", std::string("/v1/groups/web/policies/") + name,
        json{{"metric", watched}, {"comparison", ">"}, {"threshold", 1000}, {"adjustment", 1}});
    INFO(put.text);
    REQUIRE(put.status == 201);
  }

  // A sample that shows the instance in service, healthy, in rotation, with
  // the application's metric and the agents' built-in ones.
  const auto serving = [&](const json& sample) {
    return sample.value("in_service", 0) == 1 && sample.value("healthy", 0) == 1 &&
           sample.value("in_lb", 0) == 1 && sample["metrics"].contains(metric) &&
           sample["metrics"].contains("cpu");
  };
  REQUIRE(st::eventually(30s, [&] {
    const json samples = web_samples(fleet);
    return !samples.empty() && serving(samples.back());
  }));

  const auto answer = fleet.api("GET", "/v1/groups/web/history?since=10m");
  INFO(answer.text);
  REQUIRE(answer.status == 200);
  const json& body = answer.body;
  CHECK(body["group"] == "web");
  CHECK(body["step_s"] == 10);  // 10 min at the default step: 10 s
  CHECK(body["until_ms"].get<std::int64_t>() - body["since_ms"].get<std::int64_t>() == 600'000);
  const json last = body["samples"].back();
  CHECK(last["min"] == 1);
  CHECK(last["max"] == 3);
  CHECK(last["desired"] == 1);
  CHECK(last["pending"] == 0);
  CHECK(last["t_ms"].get<std::int64_t>() % 10'000 == 0);  // a bucket's start
  std::set<std::string> names;
  for (const auto& name : body["metrics"]) names.insert(name.get<std::string>());
  CHECK(names.contains(metric));
  CHECK(names.contains("cpu"));  // the agents' built-in metrics
  CHECK(names.contains("tcp_established"));
  CHECK_FALSE(names.contains("orders"));  // nothing reports it: no value, not 0
  // Samples are in time order, one per step.
  std::int64_t previous = 0;
  for (const auto& sample : body["samples"]) {
    CHECK(sample["t_ms"].get<std::int64_t>() > previous);
    previous = sample["t_ms"].get<std::int64_t>();
  }

  // All groups at once, at a step of a minute, with only the metrics asked for.
  const auto all = fleet.api("GET", "/v1/history?since=1h&step=60s&metrics=" + metric);
  INFO(all.text);
  REQUIRE(all.status == 200);
  CHECK(all.body["step_s"] == 60);
  REQUIRE(all.body["groups"].contains("web"));
  const json minute = all.body["groups"]["web"].back();
  CHECK(minute["t_ms"].get<std::int64_t>() % 60'000 == 0);
  CHECK(minute["in_service"] == 1);
  CHECK(minute["metrics"].size() == 1);
  CHECK(minute["metrics"].contains(metric));

  // Bad parameters are refused, naming them; an unknown group is 404.
  for (const auto& [query, field] :
       {std::pair{"since=yesterday", "since"}, std::pair{"until=soon", "until"},
        std::pair{"step=15s", "step"}, std::pair{"step=0s", "step"}, std::pair{"step=fast", "step"},
        std::pair{"since=1m&until=1h", "since"}, std::pair{"since=30d&step=10s", "step"}}) {
    const auto refused = fleet.api("GET", std::string("/v1/groups/web/history?") + query);
    INFO(query << ": " << refused.text);
    CHECK(refused.status == 400);
    CHECK(refused.body.value("field", "") == field);
  }
  CHECK(fleet.api("GET", "/v1/history?step=25s").status == 400);
  CHECK(fleet.api("GET", "/v1/groups/nope/history").status == 404);
  // RFC 3339 times are taken as well as durations ago.
  CHECK(
      fleet
          .api(
              "GET",
              "/v1/groups/web/history?since=2020-01-01T00:00:00Z&until=2020-01-01T01:00:00%2B08:00")
          .status == 400);  // until before since
  const auto rfc = fleet.api("GET", "/v1/groups/web/history?since=2020-01-01T00:00:00Z&step=1d");
  CHECK(rfc.status == 200);
  CHECK(rfc.body["since_ms"] == 1'577'836'800'000);

  // tidectl: a table with the capacity columns and one per metric, and the
  // API's document with -o json.
  const auto table =
      fleet.tidectl({"group", "history", "web", "--since", "10m"}, "tidectl-table.log");
  INFO(table.output);
  CHECK(table.exit_code == 0);
  CHECK(table.output.find("IN SERVICE") != std::string::npos);
  CHECK(table.output.find(metric) != std::string::npos);
  const auto document =
      fleet.tidectl({"group", "history", "web", "--since", "10m", "--step", "1m", "-o", "json"},
                    "tidectl-json.log");
  INFO(document.output);
  CHECK(document.exit_code == 0);
  const json parsed = json::parse(document.output, nullptr, false);
  REQUIRE(parsed.is_object());
  CHECK(parsed["step_s"] == 60);
  const auto refused =
      fleet.tidectl({"group", "history", "web", "--step", "15s"}, "tidectl-refused.log");
  CHECK(refused.exit_code == 1);
  CHECK(refused.output.find("--step") != std::string::npos);

  // A restart keeps what was recorded: the samples from before it are still
  // answered, and new ones follow.
  const json before = web_samples(fleet);
  REQUIRE_FALSE(before.empty());
  const std::int64_t first_ms = before.front()["t_ms"].get<std::int64_t>();
  fleet.stop_coordinator();
  fleet.start_coordinator();
  const json after = web_samples(fleet);
  REQUIRE_FALSE(after.empty());
  CHECK(after.front()["t_ms"].get<std::int64_t>() == first_ms);
  const std::int64_t stopped_ms = before.back()["t_ms"].get<std::int64_t>();
  CHECK(st::eventually(30s, [&] {
    const json samples = web_samples(fleet);
    return !samples.empty() && samples.back()["t_ms"].get<std::int64_t>() > stopped_ms &&
           serving(samples.back());
  }));
}
