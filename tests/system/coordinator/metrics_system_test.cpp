// System test of the load balancer's metrics as an operator reads them, with
// the real binaries: a steady request rate through HAProxy to two instances,
// and `GET /v1/groups/{g}/metrics`, `tidectl group metrics -o json` and its
// table checked against the rate the load generator achieved, then the
// figures falling once the load stops.
#include <chrono>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include "fleet_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace st = tide::system_test;
using tide::system_test::Fleet;

// `metric`'s entry in a GET /v1/groups/{g}/metrics body, or null.
json metric_entry(const json& body, const std::string& metric) {
  for (const json& entry : body.value("metrics", json::array())) {
    if (entry.value("name", "") == metric) return entry;
  }
  return nullptr;
}

json group_metrics(const Fleet& fleet) {
  return fleet.api("GET", "/v1/groups/web/metrics").body;
}

// The whitespace-separated fields of the table row that starts with `metric`.
std::vector<std::string> table_row(const std::string& table, const std::string& metric) {
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(metric + " ", 0) != 0) continue;
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string word; words >> word;) fields.push_back(word);
    return fields;
  }
  return {};
}

bool within(double value, double low, double high) {
  return value >= low && value <= high;
}

}  // namespace

TEST_CASE(
    "group metrics show HAProxy's request rate per instance under a steady load, and its fall "
    "after it",
    "[system]") {
  Fleet fleet;
  fleet.start_coordinator();
  // Two instances, and min 2: a policy that wants fewer changes nothing.
  fleet.create_group(2, 300, json{{"min", 2}, {"max", 4}, {"warmup_ms", 0}});
  REQUIRE(st::eventually(40s, [&] { return fleet.in_service() == 2; }));

  // A target far above the load: the policy makes the metric one the group
  // uses (listed with its window even before data) and never scales.
  const auto put = fleet.api("PUT", "/v1/groups/web/policies/rps",
                             json{{"type", "target_tracking"},
                                  {"metric", "requests_per_instance"},
                                  {"target", 100000},
                                  {"window_ms", 10000}});
  INFO(put.text);
  REQUIRE(put.status == 201);

  // A steady load that waits on timers, not on the CPU: 8 connections, each
  // request answered after 100 ms, so ~80 requests/s in all (~40 per
  // instance) whatever else the machine does.
  constexpr int kLoadSeconds = 40;
  const auto load_started = std::chrono::steady_clock::now();
  st::Child wrk({"wrk", "-t1", "-c8", "-d" + std::to_string(kLoadSeconds) + "s",
                 fleet.frontend() + "/?delay_ms=100"},
                fleet.dir() / "wrk.log");

  // Once the 10 s window lies wholly inside the load, and every sample in it
  // saw requests on both instances.
  std::this_thread::sleep_until(load_started + 12s);
  json loaded;
  const bool full = st::eventually(20s, [&] {
    loaded = group_metrics(fleet);
    const json rps = metric_entry(loaded, "requests_per_instance");
    return rps.is_object() && rps.value("reporters", 0) == 2 && rps["minimum"].is_number() &&
           rps["minimum"].get<double>() > 0.0;
  });
  INFO(loaded.dump());
  REQUIRE(full);
  const auto as_json = fleet.tidectl({"-o", "json", "group", "metrics", "web"}, "tidectl-json.log");
  const auto table = fleet.tidectl({"group", "metrics", "web"}, "tidectl-table.log");
  REQUIRE(wrk.wait(std::chrono::seconds(kLoadSeconds + 30)).has_value());
  const auto load = st::parse_wrk(st::read_file(fleet.dir() / "wrk.log"));
  INFO(load.output);
  REQUIRE(load.requests > 0);
  CHECK(load.non_2xx == 0);
  CHECK(load.socket_errors == 0);
  // What the load achieved, per instance and second; the timers make it
  // steady, so the 10 s window agrees with the whole run's average.
  const double driven_per_instance = static_cast<double>(load.requests) / kLoadSeconds / 2.0;
  WARN("driven: " << driven_per_instance << " requests/s per instance");

  // The API.
  const json rps = metric_entry(loaded, "requests_per_instance");
  CHECK(rps["source"] == "load_balancer");
  CHECK(rps["used_by"] == json::array({"rps"}));
  CHECK(rps["window_ms"] == 10000);
  CHECK(within(rps["average"].get<double>(), 0.5 * driven_per_instance, 1.5 * driven_per_instance));
  CHECK(rps["maximum"].get<double>() >= rps["average"].get<double>());
  CHECK(rps["reporters"] == 2);
  CHECK(rps["eligible"] == 2);  // in service, ready, warmed up and in rotation
  CHECK(rps["note"].is_null());
  CHECK(rps["last_10s"]["reporters"] == 2);
  // HAProxy's mean time to the response headers: the application's 100 ms
  // delay at least, and nothing like a stuck request.
  const json response_time = metric_entry(loaded, "response_time_ms");
  REQUIRE(response_time.is_object());
  CHECK(response_time["source"] == "load_balancer");
  CHECK(response_time["used_by"].empty());
  CHECK(response_time["samples"].get<int>() > 0);
  CHECK(within(response_time["average"].get<double>(), 90.0, 5000.0));
  CHECK(response_time["reporters"] == 2);
  for (const char* other : {"queue", "http_5xx_rate", "sessions_per_instance"}) {
    INFO(other);
    const json entry = metric_entry(loaded, other);
    REQUIRE(entry.is_object());
    CHECK(entry["source"] == "load_balancer");
  }
  CHECK(metric_entry(loaded, "http_5xx_rate")["maximum"] == 0.0);

  // tidectl -o json: the API's JSON, read a moment later.
  {
    INFO(as_json.output);
    CHECK(as_json.exit_code == 0);
    const json body = json::parse(as_json.output, nullptr, false);
    const json from_tidectl = metric_entry(body, "requests_per_instance");
    REQUIRE(from_tidectl.is_object());
    CHECK(from_tidectl["source"] == "load_balancer");
    CHECK(from_tidectl["reporters"] == 2);
    REQUIRE(from_tidectl["average"].is_number());
    CHECK(within(from_tidectl["average"].get<double>(), 0.5 * driven_per_instance,
                 1.5 * driven_per_instance));
    CHECK(metric_entry(body, "response_time_ms").is_object());
  }

  // The table: METRIC SOURCE USED-BY WINDOW AVG MIN MAX REPORTERS (no NOTE
  // column while every metric's data is complete).
  {
    INFO(table.output);
    CHECK(table.exit_code == 0);
    const auto row = table_row(table.output, "requests_per_instance");
    REQUIRE(row.size() >= 8);
    CHECK(row[1] == "load_balancer");
    CHECK(row[2] == "rps");
    CHECK(row[3] == "10s");
    CHECK(within(std::stod(row[4]), 0.5 * driven_per_instance, 1.5 * driven_per_instance));
    CHECK(row[7] == "2/2");
    const auto response_row = table_row(table.output, "response_time_ms");
    REQUIRE(response_row.size() >= 8);
    CHECK(response_row[1] == "load_balancer");
  }

  // Far from its target, the policy never scaled.
  CHECK(fleet.activity("scale_out", "target tracking rps").is_null());
  CHECK(fleet.group().value("desired", -1) == 2);

  // Quiet: the idle seconds (0 requests/s) fill the window, and with no
  // request answered there is no response time to record.
  json quiet;
  const bool fell = st::eventually(40s, [&] {
    quiet = group_metrics(fleet);
    const json after = metric_entry(quiet, "requests_per_instance");
    const json time_after = metric_entry(quiet, "response_time_ms");
    return after.is_object() && after["maximum"].is_number() &&
           after["maximum"].get<double>() < 1.0 && after.value("reporters", 0) == 2 &&
           (time_after.is_null() || time_after.value("samples", -1) == 0);
  });
  INFO(quiet.dump());
  CHECK(fell);
}
