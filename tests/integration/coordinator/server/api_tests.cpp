// The admin API's spec, apply and cost routes on a real Server (local
// provider, no load balancer, a temporary state directory), and tidectl's
// apply against it: real HTTP on 127.0.0.1, real SQLite, a real process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include "coordinator/io/store/store.hpp"
#include "tests/integration/coordinator/server/server_fixture.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;
using nlohmann::json;

namespace {

json lc_body(const std::string& id, double price = 0.5) {
  return json{{"id", id}, {"command", "sleep 1000"}, {"port", 8080}, {"hourly_price", price}};
}

json group_body(const std::string& name, const std::string& lc) {
  return json{{"name", name}, {"launch_configuration", lc}, {"min", 0}, {"max", 6}, {"desired", 0}};
}

json alarm(const std::string& name, double threshold, int adjustment) {
  return json{{"name", name},          {"metric", "cpu"},       {"comparison", adjustment > 0 ? ">" : "<"},
              {"threshold", threshold}, {"period_ms", 10'000},  {"evaluation_periods", 2},
              {"adjustment", adjustment}};
}

// The brief's fleet: business and session groups, a lunch-peak schedule
// pair and a CPU alarm pair on the business group.
json fleet() {
  json business = group_body("business-servers", "web");
  business["policies"] = json::array({alarm("cpu-high", 70, 1), alarm("cpu-low", 20, -1)});
  business["schedules"] = json::array(
      {json{{"name", "lunch-start"}, {"cron", "0 11 * * *"}, {"time_zone", "Asia/Shanghai"}, {"min", 4}, {"desired", 4}},
       json{{"name", "lunch-end"}, {"cron", "0 13 * * *"}, {"time_zone", "Asia/Shanghai"}, {"min", 0}, {"desired", 0}}});
  business["hooks"] = json::array({json{{"name", "warm-cache"}, {"transition", "launching"}, {"heartbeat_timeout_ms", 60'000}}});
  business["notifications"] = json::array(
      {json{{"name", "ops"}, {"url", "http://127.0.0.1:9/hook"}, {"format", "wecom"}, {"events", {"scale_out_failed"}}}});
  return json{{"launch_configurations", json::array({lc_body("web"), lc_body("session")})},
              {"groups", json::array({business, group_body("session-servers", "session")})}};
}

std::size_t count_action(const json& body, const std::string& action) {
  std::size_t n = 0;
  for (const auto& change : body["changes"]) n += change["action"] == action ? 1U : 0U;
  return n;
}

const json* find_change(const json& body, const std::string& kind, const std::string& name) {
  for (const auto& change : body["changes"]) {
    if (change["kind"] == kind && change["name"] == name) return &change;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("spec routes: create, replace, list, show, delete; bad bodies name the field", "[api]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  REQUIRE(server.call("POST", "/v1/launch-configurations", lc_body("web")).status == 201);
  REQUIRE(server.call("POST", "/v1/groups", group_body("web", "web")).status == 201);

  const std::string base = "/v1/groups/web/policies/";
  auto created = server.call("PUT", base + "cpu-high", alarm("cpu-high", 70, 1));
  CHECK(created.status == 201);
  CHECK(created.body["threshold"] == 70.0);
  auto replaced = server.call("PUT", base + "cpu-high", alarm("cpu-high", 80, 2));
  CHECK(replaced.status == 200);
  auto listed = server.call("GET", "/v1/groups/web/policies");
  REQUIRE(listed.status == 200);
  REQUIRE(listed.body["policies"].size() == 1);
  CHECK(listed.body["policies"][0]["threshold"] == 80.0);
  CHECK(listed.body["policies"][0]["adjustment"] == 2);

  json bad = alarm("cpu-high", 70, 1);
  bad["threshold"] = "high";
  auto refused = server.call("PUT", base + "cpu-high", bad);
  CHECK(refused.status == 400);
  CHECK(refused.body["field"] == "threshold");
  json unknown = alarm("cpu-high", 70, 1);
  unknown["thresold"] = 70;
  refused = server.call("PUT", base + "cpu-high", unknown);
  CHECK(refused.status == 400);
  CHECK(refused.body["field"] == "thresold");
  // Refused bodies changed nothing.
  CHECK(server.call("GET", base + "cpu-high").body["threshold"] == 80.0);

  CHECK(server.call("PUT", "/v1/groups/nope/policies/x", alarm("x", 1, 1)).status == 404);
  CHECK(server.call("GET", "/v1/groups/nope/schedules").status == 404);

  json schedule{{"cron", "0 11 * * *"}, {"time_zone", "Asia/Shanghai"}, {"min", 4}, {"desired", 4}};
  auto put_schedule = server.call("PUT", "/v1/groups/web/schedules/lunch-start", schedule);
  CHECK(put_schedule.status == 201);
  CHECK(put_schedule.body["next_fire_ms"].is_number());
  schedule["time_zone"] = "Mars/Olympus";
  refused = server.call("PUT", "/v1/groups/web/schedules/lunch-start", schedule);
  CHECK(refused.status == 400);
  CHECK(refused.body["field"] == "time_zone");

  CHECK(server.call("PUT", "/v1/groups/web/hooks/h", json{{"transition", "terminating"}}).status == 201);
  refused = server.call("PUT", "/v1/groups/web/hooks/h", json{{"transition", "sideways"}});
  CHECK(refused.status == 400);
  CHECK(refused.body["field"] == "transition");
  CHECK(server.call("PUT", "/v1/groups/web/notifications/n",
                    json{{"url", "http://127.0.0.1:9/"}, {"events", {"scale_in_failed"}}})
            .status == 201);
  refused = server.call("PUT", "/v1/groups/web/notifications/n", json{{"url", "http://127.0.0.1:9/"}, {"events", {"nope"}}});
  CHECK(refused.status == 400);
  CHECK(refused.body["field"] == "events[0]");
  CHECK(server.call("GET", "/v1/groups/web/hooks").body["hooks"].size() == 1);
  CHECK(server.call("GET", "/v1/groups/web/notifications").body["notifications"].size() == 1);

  CHECK(server.call("DELETE", base + "cpu-high").status == 200);
  CHECK(server.call("GET", base + "cpu-high").status == 404);
  CHECK(server.call("DELETE", base + "cpu-high").status == 404);
}

TEST_CASE("apply: create, idempotent second apply, dry run, update, delete", "[api][apply]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());

  auto first = server.call("POST", "/v1/apply", fleet());
  REQUIRE(first.status == 200);
  CHECK(first.body["applied"] == true);
  // 2 LCs, 2 groups, 2 policies, 2 schedules, 1 hook, 1 notification.
  CHECK(count_action(first.body, "create") == 10);
  CHECK(server.call("GET", "/v1/groups/business-servers").status == 200);
  CHECK(server.call("GET", "/v1/groups/business-servers/policies").body["policies"].size() == 2);
  CHECK(server.call("GET", "/v1/groups/business-servers/schedules").body["schedules"].size() == 2);
  CHECK(server.call("GET", "/v1/groups/session-servers").body["launch_configuration"] == "session");

  auto second = server.call("POST", "/v1/apply", fleet());
  REQUIRE(second.status == 200);
  CHECK(count_action(second.body, "unchanged") == second.body["changes"].size());
  CHECK(second.body["changes"].size() == 10);
  // Nothing new was stored: still version 1 of each launch configuration.
  CHECK(server.call("GET", "/v1/launch-configurations").body["launch_configurations"].size() == 2);

  json changed = fleet();
  changed["groups"][0]["policies"][0]["threshold"] = 85;
  changed["groups"][0]["max"] = 8;
  changed["launch_configurations"][0]["hourly_price"] = 0.75;
  auto dry = server.call("POST", "/v1/apply?dry_run=true", changed);
  REQUIRE(dry.status == 200);
  CHECK(dry.body["applied"] == false);
  CHECK(count_action(dry.body, "update") == 3);
  const json* policy = find_change(dry.body, "policy", "business-servers/cpu-high");
  REQUIRE(policy != nullptr);
  CHECK((*policy)["action"] == "update");
  CHECK((*policy)["fields"] == json::array({"threshold"}));
  const json* group = find_change(dry.body, "group", "business-servers");
  REQUIRE(group != nullptr);
  CHECK((*group)["fields"] == json::array({"launch_configuration_version", "max"}));
  // The dry run changed nothing.
  CHECK(server.call("GET", "/v1/groups/business-servers/policies/cpu-high").body["threshold"] == 70.0);
  CHECK(server.call("GET", "/v1/groups/business-servers").body["max"] == 6);

  auto update = server.call("POST", "/v1/apply", changed);
  REQUIRE(update.status == 200);
  CHECK(update.body["applied"] == true);
  CHECK(server.call("GET", "/v1/groups/business-servers/policies/cpu-high").body["threshold"] == 85.0);
  auto business = server.call("GET", "/v1/groups/business-servers").body;
  CHECK(business["max"] == 8);
  CHECK(business["launch_configuration_version"] == 2);
  CHECK(server.call("GET", "/v1/launch-configurations/web").body["hourly_price"] == 0.75);
  CHECK(count_action(server.call("POST", "/v1/apply", changed).body, "unchanged") == 10);

  // A list present in the file is the whole truth for that kind.
  json fewer = changed;
  fewer["groups"][0]["policies"].erase(1);
  fewer["groups"][0]["hooks"] = json::array();
  auto removed = server.call("POST", "/v1/apply", fewer);
  REQUIRE(removed.status == 200);
  CHECK(count_action(removed.body, "delete") == 2);
  CHECK(server.call("GET", "/v1/groups/business-servers/policies/cpu-low").status == 404);
  CHECK(server.call("GET", "/v1/groups/business-servers/hooks").body["hooks"].empty());
  // A kind the file leaves out is left alone.
  json no_lists = fewer;
  no_lists["groups"][0].erase("schedules");
  auto untouched = server.call("POST", "/v1/apply", no_lists);
  CHECK(count_action(untouched.body, "delete") == 0);
  CHECK(server.call("GET", "/v1/groups/business-servers/schedules").body["schedules"].size() == 2);
}

TEST_CASE("apply refuses a bad file whole, naming the JSON path", "[api][apply]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  struct Row {
    const char* what;
    std::function<void(json&)> spoil;
    const char* field;
  };
  const std::vector<Row> rows = {
      {"policy threshold", [](json& f) { f["groups"][0]["policies"][1]["threshold"] = "high"; },
       "groups[0].policies[1].threshold"},
      {"unknown group field", [](json& f) { f["groups"][1]["maxx"] = 3; }, "groups[1].maxx"},
      {"schedule zone", [](json& f) { f["groups"][0]["schedules"][0]["time_zone"] = "Nowhere/City"; },
       "groups[0].schedules[0].time_zone"},
      {"launch configuration port", [](json& f) { f["launch_configurations"][1]["port"] = 0; },
       "launch_configurations[1].port"},
      {"group references no LC", [](json& f) { f["groups"][1]["launch_configuration"] = "missing"; },
       "groups[1].launch_configuration"},
      {"duplicate policy", [](json& f) { f["groups"][0]["policies"][1]["name"] = "cpu-high"; },
       "groups[0].policies[1].name"},
      {"notification event", [](json& f) { f["groups"][0]["notifications"][0]["events"][0] = "boom"; },
       "groups[0].notifications[0].events[0]"},
      {"unknown top-level key", [](json& f) { f["group"] = json::array(); }, "group"},
      {"rollout batch", [](json& f) { f["groups"][0]["rollout"] = json{{"batch", "0"}}; }, "groups[0].rollout.batch"},
      {"rollout canary", [](json& f) { f["groups"][1]["rollout"] = json{{"canary", {{"count", "one"}}}}; },
       "groups[1].rollout.canary.count"},
      {"rollout strategy that cannot progress",
       [](json& f) { f["groups"][0]["rollout"] = json{{"max_surge", 0}, {"min_healthy", "100%"}}; },
       "groups[0].rollout.max_surge"},
      {"rollout names a version", [](json& f) { f["groups"][0]["rollout"] = json{{"version", 2}}; },
       "groups[0].rollout.version"},
      {"rollout unknown key", [](json& f) { f["groups"][0]["rollout"] = json{{"bach", 1}}; },
       "groups[0].rollout.bach"},
      {"rollout not an object", [](json& f) { f["groups"][1]["rollout"] = "25%"; }, "groups[1].rollout"},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    json file = fleet();
    row.spoil(file);
    auto refused = server.call("POST", "/v1/apply", file);
    CHECK(refused.status == 400);
    CHECK(refused.body["field"] == row.field);
    // Refused whole: not even the valid launch configurations were created.
    CHECK(server.call("GET", "/v1/launch-configurations").body["launch_configurations"].empty());
    CHECK(server.call("GET", "/v1/groups").body["groups"].empty());
  }
}

TEST_CASE("cost route: billed hours from stored instance rows", "[api][cost]") {
  const TimeMs now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  constexpr TimeMs kHour = 3'600'000;
  ServerFixture server([&](const std::filesystem::path& dir) {
    auto store = store::Store::open((dir / "tide.db").string());
    REQUIRE(store);
    LaunchConfiguration lc;
    lc.id = "web";
    lc.command = "true";
    lc.port = 8080;
    lc.hourly_price = 2.0;
    REQUIRE(store->insert_launch_configuration(lc));
    ScalingGroup g;
    g.name = "web";
    g.launch_configuration_id = "web";
    g.max = 4;
    REQUIRE(store->insert_group(g));
    for (int i = 0; i < 2; ++i) {
      Instance instance;
      instance.id = "i-000000000000000" + std::to_string(i);
      instance.group = "web";
      instance.launch_configuration_id = "web";
      instance.launch_configuration_version = 1;
      instance.created_ms = now - 3 * kHour;
      instance.launched_ms = now - 3 * kHour + i * kHour;  // 3 h and 2 h before now
      instance.state = LifecycleState::Terminated;
      instance.state_since_ms = now - kHour;               // both end an hour ago
      REQUIRE(store->upsert_instance(instance));
    }
  });
  REQUIRE(server.start_error().empty());
  const std::string period = "?from=" + std::to_string(now - 4 * kHour) + "&to=" + std::to_string(now);
  auto cost = server.call("GET", "/v1/cost" + period);
  REQUIRE(cost.status == 200);
  REQUIRE(cost.body["groups"].size() == 1);
  const json& web = cost.body["groups"][0];
  CHECK(web["group"] == "web");
  CHECK(web["instance_hours"].get<double>() == Approx(3.0));
  CHECK(web["cost"].get<double>() == Approx(6.0));
  CHECK(web["peak_instances"] == 2);
  CHECK(web["peak_fixed_cost"].get<double>() == Approx(2 * 2.0 * 4));
  CHECK(web["saving_pct"].get<double>() == Approx(62.5));
  CHECK(web["launch_configurations"][0]["version"] == 1);
  CHECK(cost.body["total"]["cost"].get<double>() == Approx(6.0));

  CHECK(server.call("GET", "/v1/cost?group=web").status == 200);  // default period: the last 24 h
  CHECK(server.call("GET", "/v1/cost?group=nope").status == 404);
  auto bad = server.call("GET", "/v1/cost?from=yesterday");
  CHECK(bad.status == 400);
  CHECK(bad.body["field"] == "from");
  CHECK(server.call("GET", "/v1/cost?from=2000&to=1000").status == 400);
  // Numbers that overflow, or times past the year 9999, are not times.
  for (const std::string query : {"to=99999999999999999999999", "from=-5", "to=253402300800000", "to=12abc"}) {
    INFO(query);
    const auto refused = server.call("GET", "/v1/cost?" + query);
    CHECK(refused.status == 400);
    CHECK(refused.body["field"] == query.substr(0, query.find('=')));
  }
}

TEST_CASE("tidectl apply: the file, a second apply, a bad line", "[api][apply][tidectl]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const std::string tidectl = std::string(TIDE_BIN_DIR) + "/tidectl --endpoint " + server.endpoint();
  const std::string good = std::string(TIDE_TEST_DATA_DIR) + "/coordinator/apply/fleet.yaml";

  auto dry = run(tidectl + " apply -f " + good + " --dry-run");
  INFO(dry.output);
  CHECK(dry.exit_code == 0);
  CHECK(dry.output.find("dry run: 9 change(s) would be made") != std::string::npos);
  CHECK(server.call("GET", "/v1/groups").body["groups"].empty());

  auto applied = run(tidectl + " apply -f " + good);
  INFO(applied.output);
  CHECK(applied.exit_code == 0);
  CHECK(applied.output.find("9 change(s) applied") != std::string::npos);
  auto policy = server.call("GET", "/v1/groups/business-servers/policies/cpu-high");
  CHECK(policy.body["comparison"] == ">");
  CHECK(policy.body["period_ms"] == 10'000);

  auto again = run(tidectl + " apply -f " + good);
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK(again.output.find("nothing to change") != std::string::npos);

  auto bad = run(tidectl + " apply -f " + std::string(TIDE_TEST_DATA_DIR) + "/coordinator/apply/bad_threshold.yaml");
  INFO(bad.output);
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("bad_threshold.yaml:18: groups[0].policies[0].threshold:") != std::string::npos);

  auto broken = run(tidectl + " apply -f " + std::string(TIDE_TEST_DATA_DIR) + "/coordinator/apply/broken.yaml");
  INFO(broken.output);
  CHECK(broken.exit_code == 2);
  CHECK(broken.output.find("broken.yaml:4:") != std::string::npos);

  auto cost = run(tidectl + " cost --last 2h");
  INFO(cost.output);
  CHECK(cost.exit_code == 0);
  CHECK(cost.output.find("period:") != std::string::npos);

  auto listed = run(tidectl + " policy list business-servers");
  INFO(listed.output);
  CHECK(listed.exit_code == 0);
  CHECK(listed.output.find("cpu average > 70 for 2 x 10s") != std::string::npos);
}

TEST_CASE("attach then detach or terminate before the agent connects answers with the instance (no crash)",
          "[api][faults]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  REQUIRE(server.call("POST", "/v1/launch-configurations", lc_body("web")).status == 201);
  REQUIRE(server.call("POST", "/v1/groups", group_body("g", "web")).status == 201);
  struct Row {
    const char* verb;
    json body;
  };
  const std::vector<Row> rows = {{"detach", json::object()},
                                 {"detach", json{{"decrement_desired", true}}},
                                 {"terminate", json::object()},
                                 {"terminate", json{{"decrement_desired", true}}}};
  int port = 9000;
  for (const Row& row : rows) {
    INFO(row.verb << " " << row.body.dump());
    auto attached = server.call("POST", "/v1/groups/g/attach", json{{"address", "127.0.0.9"}, {"port", ++port}});
    REQUIRE(attached.status == 201);
    CHECK(attached.body["enrollment_token"].is_string());
    CHECK_FALSE(attached.body["enrollment_token"].get<std::string>().empty());
    const std::string id = attached.body["id"];
    auto left = server.call("POST", "/v1/instances/" + id + "/" + row.verb, row.body);
    CHECK(left.status == 200);
    CHECK(left.body["id"] == id);
    // The coordinator is still there and consistent.
    auto health = server.call("GET", "/healthz");
    CHECK(health.status == 200);
    auto shown = server.call("GET", "/v1/instances/" + id);
    CHECK(shown.status == 200);
  }
}

TEST_CASE("a body nested deeper than the limit is refused with 400 on every route, before it is parsed",
          "[api][faults]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const std::string deep(100'000, '[');
  for (const char* path : {"/v1/apply", "/v1/groups", "/v1/launch-configurations"}) {
    INFO(path);
    httplib::Client client("127.0.0.1", server.port());
    client.set_read_timeout(10, 0);
    auto result = client.Post(path, deep, "application/json");
    REQUIRE(result);
    CHECK(result->status == 400);
    CHECK(result->body.find("nests deeper") != std::string::npos);
  }
  CHECK(server.call("GET", "/healthz").status == 200);
  // Brackets inside strings do not count, and 64 levels are fine.
  CHECK_FALSE(json_nesting_over(R"({"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})", 2));
  CHECK(json_nesting_over("[[[", 2) == std::optional<std::size_t>(2));
  CHECK_FALSE(json_nesting_over(std::string(64, '[') + std::string(64, ']'), 64));
  CHECK_FALSE(json_nesting_over(R"(["\"[[[["])", 1));
}

TEST_CASE("instance action bodies: wrong types and unknown keys are a 400 naming the field, and change nothing",
          "[api][hostile]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  REQUIRE(server.call("POST", "/v1/launch-configurations", lc_body("web")).status == 201);
  REQUIRE(server.call("POST", "/v1/groups", group_body("g", "web")).status == 201);
  auto attached = server.call("POST", "/v1/groups/g/attach", json{{"address", "127.0.0.9"}, {"port", 9100}});
  REQUIRE(attached.status == 201);
  const std::string id = attached.body["id"];
  struct Row {
    std::string path;
    json body;
    std::string field;  // "" = no field (not an object)
  };
  const std::vector<Row> rows = {
      {"/v1/groups/g/attach", json{{"address", "127.0.0.9"}, {"port", 9101}, {"protected", "yes"}}, "protected"},
      {"/v1/groups/g/attach", json{{"address", "127.0.0.9"}, {"port", 9101}, {"increment_desired", "yes"}},
       "increment_desired"},
      {"/v1/groups/g/attach", json{{"address", "127.0.0.9"}, {"port", 9101}, {"protect", true}}, "protect"},
      {"/v1/instances/" + id + "/detach", json{{"decrement_desired", 0}}, "decrement_desired"},
      {"/v1/instances/" + id + "/detach", json::array(), ""},
      {"/v1/instances/" + id + "/detach", json{{"decrement", true}}, "decrement"},
      {"/v1/instances/" + id + "/terminate", json{{"decrement_desired", "true"}}, "decrement_desired"},
      {"/v1/instances/" + id + "/terminate", json{{"force", true}}, "force"},
      {"/v1/instances/" + id + "/protection", json{{"protected", true}, {"why", "x"}}, "why"},
  };
  for (const Row& row : rows) {
    INFO(row.path << " " << row.body.dump());
    const auto answer = server.call("POST", row.path, row.body);
    CHECK(answer.status == 400);
    if (row.field.empty()) {
      CHECK_FALSE(answer.body.contains("field"));
    } else {
      CHECK(answer.body["field"] == row.field);
    }
  }
  // Nothing changed: one attached instance, still there, desired 1.
  auto listed = server.call("GET", "/v1/instances?group=g");
  REQUIRE(listed.status == 200);
  CHECK(listed.body["instances"].size() == 1);
  CHECK(server.call("GET", "/v1/groups/g").body["desired"] == 1);
}

TEST_CASE("?all lists the instances that are gone too", "[api]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  REQUIRE(server.call("POST", "/v1/launch-configurations", lc_body("web")).status == 201);
  REQUIRE(server.call("POST", "/v1/groups", group_body("g", "web")).status == 201);
  auto attached = server.call("POST", "/v1/groups/g/attach", json{{"address", "127.0.0.9"}, {"port", 9200}});
  REQUIRE(attached.status == 201);
  const std::string id = attached.body["id"];
  REQUIRE(server.call("POST", "/v1/instances/" + id + "/detach", json{{"decrement_desired", true}}).status == 200);
  CHECK(server.call("GET", "/v1/instances?group=g").body["instances"].empty());
  for (const std::string path : {"/v1/instances?group=g&all", "/v1/instances?all"}) {
    INFO(path);
    const auto all = server.call("GET", path);
    REQUIRE(all.status == 200);
    REQUIRE(all.body["instances"].size() == 1);
    CHECK(all.body["instances"][0]["id"] == id);
    CHECK(all.body["instances"][0]["state"] == "detached");
  }
}

TEST_CASE("cross-field and name errors name their field; names that could never be addressed are refused",
          "[api][hostile]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  REQUIRE(server.call("POST", "/v1/launch-configurations", lc_body("web")).status == 201);
  REQUIRE(server.call("POST", "/v1/groups", group_body("g", "web")).status == 201);
  struct Row {
    std::string method;
    std::string path;
    json body;
    std::string field;
  };
  json bad_sizes = group_body("h", "web");
  bad_sizes["min"] = 3;
  bad_sizes["max"] = 2;
  json bad_desired = group_body("h", "web");
  bad_desired["desired"] = 9;
  json slash = group_body("a/b", "web");
  json dot = group_body("..", "web");
  json lc_slash = lc_body("x/y");
  json lc_env = lc_body("envy");
  lc_env["env"] = json{{"A=B", "1"}};
  const std::vector<Row> rows = {
      {"POST", "/v1/groups", bad_sizes, "min"},
      {"POST", "/v1/groups", bad_desired, "desired"},
      {"POST", "/v1/groups", slash, "name"},
      {"POST", "/v1/groups", dot, "name"},
      {"PATCH", "/v1/groups/g", json{{"desired", 7}}, "desired"},
      {"POST", "/v1/launch-configurations", lc_slash, "id"},
      {"POST", "/v1/launch-configurations", lc_env, "env.A=B"},
      {"PUT", "/v1/groups/g/schedules/lunch", json{{"cron", "0 12 * * *"}}, "desired"},
      {"PUT", "/v1/groups/g/notifications/n", json{{"url", "http://"}, {"events", json::array({"hook_timeout"})}},
       "url"},
      {"PUT", "/v1/groups/g/notifications/n",
       json{{"url", "http://host/a b"}, {"events", json::array({"hook_timeout"})}}, "url"},
      {"PUT", "/v1/groups/g/policies/p",
       json{{"metric", "cpu"}, {"comparison", ">"}, {"threshold", 50}, {"period_ms", 500},
            {"evaluation_periods", 1}, {"adjustment", 1}},
       "period_ms"},
  };
  for (const Row& row : rows) {
    INFO(row.method << " " << row.path << " " << row.body.dump());
    const auto answer = server.call(row.method, row.path, row.body);
    CHECK(answer.status == 400);
    CHECK(answer.body["field"] == row.field);
  }
  // Nothing was created or changed.
  CHECK(server.call("GET", "/v1/groups").body["groups"].size() == 1);
  CHECK(server.call("GET", "/v1/groups/g").body["desired"] == 0);
  CHECK(server.call("GET", "/v1/groups/g/notifications").body["notifications"].empty());
}

namespace {

// A TCP port nobody listens on now (the kernel's pick for an ephemeral bind).
int unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

json sample_app_lc(const std::string& id, int port, int ready_after_ms) {
  return json{{"id", id},
              {"command", std::string(TIDE_BIN_DIR) + "/tide-sample-app --ready-after-ms " + std::to_string(ready_after_ms)},
              {"port", port},
              {"agent", {{"readiness_path", "/ready"}}}};
}

bool eventually(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

}  // namespace

TEST_CASE("rollout routes: start, 409 while one runs, follow it to the end, history, refusals name the field",
          "[api][rollout]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const int port = unused_port();
  REQUIRE(port > 0);
  REQUIRE(server.call("POST", "/v1/launch-configurations", sample_app_lc("app", port, 200)).status == 201);
  json group = group_body("g", "app");
  group["desired"] = 2;
  REQUIRE(server.call("POST", "/v1/groups", group).status == 201);
  REQUIRE(eventually([&] { return server.call("GET", "/v1/groups/g").body.value("in_service", 0) == 2; },
                     std::chrono::seconds(30)));

  // No rollout yet.
  CHECK(server.call("GET", "/v1/groups/g/rollout").status == 404);
  CHECK(server.call("POST", "/v1/groups/g/rollout/pause").status == 404);
  CHECK(server.call("POST", "/v1/groups/nope/rollouts", json::object()).status == 404);

  // Version 2 of the launch configuration, then bodies that are refused whole.
  REQUIRE(server.call("POST", "/v1/launch-configurations", sample_app_lc("app", port, 300)).status == 201);
  for (const auto& [body, field] : std::vector<std::pair<json, std::string>>{
           {json{{"batch", "0"}}, "batch"},
           {json{{"bogus", 1}}, "bogus"},
           {json{{"canary", {{"count", "one"}}}}, "canary.count"},
           {json{{"max_surge", 0}, {"min_healthy", "100%"}}, "max_surge"},
           {json::array(), "?"}}) {  // not an object: no field to name
    INFO(body.dump());
    const auto refused = server.call("POST", "/v1/groups/g/rollouts", body);
    CHECK(refused.status == 400);
    CHECK(refused.body.value("field", "?") == field);
  }
  const auto unknown_version = server.call("POST", "/v1/groups/g/rollouts", json{{"version", 9}});
  CHECK(unknown_version.status == 404);
  CHECK(unknown_version.body.value("field", "") == "version");
  CHECK(server.call("GET", "/v1/groups/g").body.value("launch_configuration_version", 0) == 1);  // nothing applied

  const auto started = server.call("POST", "/v1/groups/g/rollouts", json{{"batch", 1}, {"max_surge", "1"}});
  REQUIRE(started.status == 201);
  const std::string id = started.body["id"];
  CHECK(started.body["to"]["version"] == 2);
  CHECK(started.body["from"]["version"] == 1);
  // While it runs, the group launches what the rollout says: another launch
  // configuration is refused (the rollout would undo it at its next step).
  REQUIRE(server.call("POST", "/v1/launch-configurations", sample_app_lc("other", port, 300)).status == 201);
  const auto elsewhere = server.call("PATCH", "/v1/groups/g", json{{"launch_configuration", "other"}});
  CHECK(elsewhere.status == 409);
  CHECK(elsewhere.body.value("field", "") == "launch_configuration");
  CHECK(server.call("GET", "/v1/groups/g").body.value("launch_configuration", "") == "app");
  CHECK(started.body["state"] == "running");
  CHECK(started.body["progress"]["desired"] == 2);
  const auto second = server.call("POST", "/v1/groups/g/rollouts", json::object());
  CHECK(second.status == 409);

  REQUIRE(eventually([&] { return server.call("GET", "/v1/groups/g/rollout").body.value("state", "") == "succeeded"; },
                     std::chrono::seconds(60)));
  const auto done = server.call("GET", "/v1/groups/g/rollout");
  CHECK(done.body["id"] == id);
  CHECK(done.body["replaced"] == 2);
  CHECK(done.body["finished_ms"].get<std::int64_t>() > 0);
  const auto history = server.call("GET", "/v1/groups/g/rollouts?limit=5");
  REQUIRE(history.status == 200);
  REQUIRE(history.body["rollouts"].size() == 1);
  CHECK(history.body["rollouts"][0]["state"] == "succeeded");
  CHECK(server.call("GET", "/v1/groups/g/rollouts?limit=0").status == 400);
  // Every live instance runs version 2, and the finished rollout takes no actions.
  REQUIRE(eventually(
      [&] {
        const auto listed = server.call("GET", "/v1/instances?group=g").body;
        int v2 = 0;
        for (const auto& i : listed.value("instances", json::array())) {
          if (i.value("state", "") == "in_service" && i.value("launch_configuration_version", 0) == 2) ++v2;
        }
        return v2 == 2 && listed["instances"].size() == 2;
      },
      std::chrono::seconds(20)));
  CHECK(server.call("POST", "/v1/groups/g/rollout/resume").status == 404);
  bool batch_activity = false;
  for (const auto& a : server.call("GET", "/v1/groups/g/activities").body.value("activities", json::array())) {
    batch_activity = batch_activity || (a.value("type", "") == "rollout" &&
                                        a.value("cause", "").find("batch 2") != std::string::npos);
  }
  CHECK(batch_activity);
}

namespace {

// A fleet file (YAML) of one launch configuration of the sample app and one
// group of two instances; `rollout` (YAML lines, indented by 6) is the
// group's `rollout` key when it is not empty.
std::string rollout_fleet_yaml(int port, int ready_after_ms, const std::string& rollout) {
  std::string text = "launch_configurations:\n"
                     "  - id: app\n"
                     "    command: \"" + std::string(TIDE_BIN_DIR) + "/tide-sample-app --ready-after-ms " +
                     std::to_string(ready_after_ms) + "\"\n"
                     "    port: " + std::to_string(port) + "\n"
                     "    agent: {readiness_path: /ready}\n"
                     "groups:\n"
                     "  - name: g\n"
                     "    launch_configuration: app\n"
                     "    min: 0\n"
                     "    max: 6\n"
                     "    desired: 2\n";
  if (!rollout.empty()) text += "    rollout:\n" + rollout;
  return text;
}

json rollout_fleet(int port, int ready_after_ms, const std::optional<json>& rollout) {
  json group = group_body("g", "app");
  group["desired"] = 2;
  if (rollout) group["rollout"] = *rollout;
  return json{{"launch_configurations", json::array({sample_app_lc("app", port, ready_after_ms)})},
              {"groups", json::array({group})}};
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

}  // namespace

TEST_CASE("apply: a new version with `rollout` starts a rollout, without it the plan says what stays old; "
          "dry runs and second applies start nothing; refused while one runs",
          "[api][apply][rollout]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const int port = unused_port();
  REQUIRE(port > 0);
  const json strategy{{"batch", 1}, {"pause_after_first_batch", true}};

  // A new group with `rollout`: nothing to roll, and the key is not a field of the group.
  auto created = server.call("POST", "/v1/apply", rollout_fleet(port, 200, strategy));
  REQUIRE(created.status == 200);
  CHECK(find_change(created.body, "rollout", "g") == nullptr);
  CHECK_FALSE(server.call("GET", "/v1/groups/g").body.contains("rollout"));
  REQUIRE(eventually([&] { return server.call("GET", "/v1/groups/g").body.value("in_service", 0) == 2; },
                     std::chrono::seconds(30)));
  auto same = server.call("POST", "/v1/apply", rollout_fleet(port, 200, strategy));
  REQUIRE(same.status == 200);
  CHECK(count_action(same.body, "unchanged") == same.body["changes"].size());

  // Version 2 without `rollout`: new instances only; the answer says who keeps app:1.
  auto plain = server.call("POST", "/v1/apply", rollout_fleet(port, 300, std::nullopt));
  REQUIRE(plain.status == 200);
  CHECK(find_change(plain.body, "rollout", "g") == nullptr);
  REQUIRE(plain.body["notes"].size() == 1);
  const std::string note = plain.body["notes"][0];
  CHECK(note.find("2 running instance(s) keep app:1") != std::string::npos);
  CHECK(note.find("tidectl rollout start g") != std::string::npos);
  CHECK(server.call("GET", "/v1/groups/g").body["launch_configuration_version"] == 2);
  CHECK(server.call("GET", "/v1/groups/g/rollout").status == 404);

  // Version 3 with `rollout`: the dry run plans it and starts nothing.
  const std::filesystem::path file = server.dir() / "fleet.yaml";
  write_text(file, rollout_fleet_yaml(port, 400, "      batch: 1\n      pause_after_first_batch: true\n"));
  auto dry = server.call("POST", "/v1/apply?dry_run=true", rollout_fleet(port, 400, strategy));
  REQUIRE(dry.status == 200);
  const json* planned = find_change(dry.body, "rollout", "g");
  REQUIRE(planned != nullptr);
  CHECK((*planned)["action"] == "start");
  CHECK((*planned)["id"].is_null());
  CHECK((*planned)["from"] == "app:2");
  CHECK((*planned)["to"] == "app:3");
  CHECK((*planned)["summary"].get<std::string>().find("app:2 -> app:3 (batch 1, max surge 1, min healthy 90%") == 0);
  CHECK(dry.body["notes"].empty());
  const std::string tidectl = std::string(TIDE_BIN_DIR) + "/tidectl --endpoint " + server.endpoint();
  auto dry_cli = run(tidectl + " apply -f " + file.string() + " --dry-run");
  INFO(dry_cli.output);
  CHECK(dry_cli.exit_code == 0);
  CHECK(dry_cli.output.find("r-? app:2 -> app:3 (batch 1") != std::string::npos);
  CHECK(server.call("GET", "/v1/groups/g/rollout").status == 404);
  CHECK(server.call("GET", "/v1/groups/g").body["launch_configuration_version"] == 2);

  // The real apply starts it from the version the group ran.
  auto applied = run(tidectl + " apply -f " + file.string());
  INFO(applied.output);
  CHECK(applied.exit_code == 0);
  CHECK(applied.output.find("tidectl rollout status g --watch") != std::string::npos);
  const auto rollout = server.call("GET", "/v1/groups/g/rollout");
  REQUIRE(rollout.status == 200);
  const std::string id = rollout.body["id"];
  CHECK(applied.output.find("started rollout " + id + " of g: app:2 -> app:3") != std::string::npos);
  CHECK(rollout.body["from"]["version"] == 2);
  CHECK(rollout.body["to"]["version"] == 3);
  CHECK(rollout.body["old_at_start"] == 2);
  CHECK(rollout.body["strategy"]["pause_after_first_batch"] == true);
  CHECK(server.call("GET", "/v1/groups/g").body["launch_configuration_version"] == 3);

  // The same file again starts nothing, even while the rollout runs.
  auto again = server.call("POST", "/v1/apply", rollout_fleet(port, 400, strategy));
  REQUIRE(again.status == 200);
  CHECK(count_action(again.body, "unchanged") == again.body["changes"].size());
  CHECK(server.call("GET", "/v1/groups/g/rollouts").body["rollouts"].size() == 1);

  // Another version with `rollout` while it runs: refused whole, dry run too.
  for (const char* path : {"/v1/apply?dry_run=true", "/v1/apply"}) {
    INFO(path);
    auto refused = server.call("POST", path, rollout_fleet(port, 500, strategy));
    CHECK(refused.status == 409);
    CHECK(refused.body["field"] == "groups[0].rollout");
    CHECK(refused.body["error"].get<std::string>().find(id) != std::string::npos);
  }
  write_text(file, rollout_fleet_yaml(port, 500, "      batch: 1\n"));
  auto refused_cli = run(tidectl + " apply -f " + file.string());
  INFO(refused_cli.output);
  CHECK(refused_cli.exit_code == 1);
  CHECK(refused_cli.output.find("fleet.yaml:12: groups[0].rollout: group 'g' has rollout " + id) != std::string::npos);
  CHECK(server.call("GET", "/v1/launch-configurations/app").body["version"] == 3);
  CHECK(server.call("GET", "/v1/groups/g/rollout").body["id"] == id);
}

TEST_CASE("group metrics: every metric a policy uses is listed, without data as null with a note; 404 for an "
          "unknown group; tidectl group metrics prints them",
          "[api][metrics][tidectl]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  REQUIRE(server.call("POST", "/v1/launch-configurations", lc_body("web")).status == 201);
  REQUIRE(server.call("POST", "/v1/groups", group_body("web", "web")).status == 201);

  // Nothing uses a metric and nothing reports: an empty list.
  auto empty = server.call("GET", "/v1/groups/web/metrics");
  REQUIRE(empty.status == 200);
  CHECK(empty.body["group"] == "web");
  CHECK(empty.body["at_ms"].is_number());
  CHECK(empty.body["metrics"] == json::array());

  // Two alarms on cpu (2 x 10 s and 3 x 10 s), target tracking on a metric
  // of the load balancer over 45 s, and an alarm on a custom metric.
  REQUIRE(server.call("PUT", "/v1/groups/web/policies/cpu-high", alarm("cpu-high", 70, 1)).status == 201);
  json cpu_low = alarm("cpu-low", 20, -1);
  cpu_low["evaluation_periods"] = 3;
  REQUIRE(server.call("PUT", "/v1/groups/web/policies/cpu-low", cpu_low).status == 201);
  REQUIRE(server.call("PUT", "/v1/groups/web/policies/rps",
                      json{{"type", "target_tracking"}, {"metric", "requests_per_instance"}, {"target", 100},
                           {"window_ms", 45'000}})
              .status == 201);
  json jobs = alarm("jobs-high", 50, 1);
  jobs["metric"] = "jobs_waiting";
  REQUIRE(server.call("PUT", "/v1/groups/web/policies/jobs-high", jobs).status == 201);

  auto listed = server.call("GET", "/v1/groups/web/metrics");
  REQUIRE(listed.status == 200);
  const json& metrics = listed.body["metrics"];
  REQUIRE(metrics.size() == 3);
  CHECK(metrics[0]["name"] == "cpu");
  CHECK(metrics[1]["name"] == "jobs_waiting");
  CHECK(metrics[2]["name"] == "requests_per_instance");

  CHECK(metrics[0]["source"] == "agent");
  CHECK(metrics[0]["used_by"] == json::array({"cpu-high", "cpu-low"}));
  CHECK(metrics[0]["window_ms"] == 30'000);
  CHECK(metrics[1]["source"] == "agent");
  CHECK(metrics[1]["window_ms"] == 20'000);
  CHECK(metrics[2]["source"] == "load_balancer");
  CHECK(metrics[2]["used_by"] == json::array({"rps"}));
  CHECK(metrics[2]["window_ms"] == 45'000);
  for (const json& metric : metrics) {
    INFO(metric.dump());
    CHECK(metric["average"].is_null());
    CHECK(metric["minimum"].is_null());
    CHECK(metric["maximum"].is_null());
    CHECK(metric["samples"] == 0);
    CHECK(metric["reporters"] == 0);
    CHECK(metric["eligible"] == 0);
    CHECK(metric["last_10s"]["average"].is_null());
    CHECK(metric["last_10s"]["samples"] == 0);
    REQUIRE(metric["note"].is_string());
    CHECK(metric["note"].get<std::string>().find("missing data") != std::string::npos);
    CHECK(metric["note"].get<std::string>().find("blocks scale-in") != std::string::npos);
  }

  auto unknown = server.call("GET", "/v1/groups/nope/metrics");
  CHECK(unknown.status == 404);
  CHECK(unknown.body["error"].get<std::string>().find("nope") != std::string::npos);

  const std::string tidectl = std::string(TIDE_BIN_DIR) + "/tidectl --endpoint " + server.endpoint();
  auto table = run(tidectl + " group metrics web");
  INFO(table.output);
  CHECK(table.exit_code == 0);
  for (const char* header : {"METRIC", "SOURCE", "USED BY", "WINDOW", "AVG", "MIN", "MAX", "REPORTERS", "NOTE"}) {
    CHECK(table.output.find(header) != std::string::npos);
  }
  CHECK(table.output.find("cpu-high,cpu-low") != std::string::npos);
  CHECK(table.output.find("load_balancer") != std::string::npos);
  CHECK(table.output.find("45s") != std::string::npos);
  CHECK(table.output.find("0/0") != std::string::npos);
  auto as_json = run(tidectl + " -o json group metrics web");
  INFO(as_json.output);
  CHECK(as_json.exit_code == 0);
  CHECK(json::parse(as_json.output)["metrics"].size() == 3);
  // Global flags work after the subcommand too.
  auto json_after = run(std::string(TIDE_BIN_DIR) + "/tidectl group metrics web -o json --endpoint " + server.endpoint());
  INFO(json_after.output);
  CHECK(json_after.exit_code == 0);
  CHECK(json::parse(json_after.output)["metrics"].size() == 3);
  // A command that does not exist is named, with the nearest one; a bare
  // tidectl prints its help.
  auto typo = run(tidectl + " groups list");
  INFO(typo.output);
  CHECK(typo.exit_code == 2);
  CHECK(typo.output.find("unknown command 'groups' for 'tidectl'; did you mean 'group'?") != std::string::npos);
  auto nested = run(tidectl + " group ls");
  CHECK(nested.output.find("unknown command 'ls' for 'tidectl group'; did you mean 'list'?") != std::string::npos);
  auto bare = run(std::string(TIDE_BIN_DIR) + "/tidectl");
  CHECK(bare.exit_code == 0);
  CHECK(bare.output.find("Usage: tidectl") != std::string::npos);
  auto missing = run(tidectl + " group metrics nope");
  INFO(missing.output);
  CHECK(missing.exit_code == 1);
}
