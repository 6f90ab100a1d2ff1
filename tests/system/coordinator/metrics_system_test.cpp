// System test of the load balancer's metrics as an operator reads them, with
// the real binaries: a steady request rate through HAProxy to two instances,
// and `GET /v1/groups/{g}/metrics`, `tidectl group metrics -o json` and its
// table checked against the rate the load generator achieved, then the
// figures falling once the load stops. Then the coordinator's own /metrics:
// `promtool check metrics` on a live fleet, the families an operator alerts
// on, and the shipped dashboard and alerting rules against them.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
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

const std::string kMonitoring = std::string(TIDE_TEST_DATA_DIR) + "/../../packaging/monitoring";

// The value of the sample written exactly as `series` (name and labels), if any.
std::optional<double> sample(const std::string& text, const std::string& series) {
  const std::string key = "\n" + series + " ";
  const auto at = text.find(key);
  if (at == std::string::npos) return std::nullopt;
  const auto begin = at + key.size();
  const auto end = text.find('\n', begin);
  return std::stod(text.substr(begin, end - begin));
}

// Every family name of a /metrics text (its TYPE lines).
std::set<std::string> families(const std::string& text) {
  std::set<std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) == 0) out.insert(line.substr(7, line.find(' ', 7) - 7));
  }
  return out;
}

// The tide_ metric names a text mentions (queries of the dashboard, rules),
// with a histogram's _bucket/_sum/_count suffix taken off.
std::set<std::string> tide_names(const std::string& text) {
  std::set<std::string> out;
  const std::regex name(R"(\btide_[a-zA-Z0-9_]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator();
       ++it) {
    std::string found = it->str();
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (found.size() > suffix.size() && found.ends_with(suffix))
        found.resize(found.size() - suffix.size());
    }
    out.insert(found);
  }
  return out;
}

bool promtool_installed() {
  return std::system("command -v promtool >/dev/null 2>&1") == 0;
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

TEST_CASE(
    "/metrics of a live coordinator passes promtool and has the families the dashboard and alerts "
    "use",
    "[system]") {
  REQUIRE(promtool_installed());  // scripts/install-deps installs Debian's prometheus package
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(2, 300, json{{"min", 1}, {"max", 4}, {"warmup_ms", 0}});
  REQUIRE(st::eventually(40s, [&] { return fleet.in_service() == 2; }));
  // An alarm whose condition holds as soon as there is data (cpu >= 0) and
  // whose adjustment changes nothing (exactly the capacity the group has).
  const auto put = fleet.api("PUT", "/v1/groups/web/policies/always",
                             json{{"metric", "cpu"},
                                  {"comparison", ">="},
                                  {"threshold", 0},
                                  {"period_ms", 1000},
                                  {"evaluation_periods", 1},
                                  {"adjustment_type", "exact"},
                                  {"adjustment", 2}});
  INFO(put.text);
  REQUIRE(put.status == 201);

  std::string text;
  const bool ready = st::eventually(40s, [&] {
    text = fleet.api("GET", "/metrics").text;
    return sample(text, R"(tide_policy_alarm{group="web",policy="always"})") == 1.0 &&
           sample(text, R"(tide_group_lb_instances{group="web",backend="web"})") == 2.0 &&
           text.find("\ntide_group_cpu_ratio{group=\"web\"} ") != std::string::npos;
  });
  INFO(text);
  REQUIRE(ready);
  {
    std::ofstream(fleet.dir() / "metrics.txt") << text;
    const auto check =
        st::run_shell("promtool check metrics < '" + (fleet.dir() / "metrics.txt").string() + "'",
                      fleet.dir() / "promtool.log", 60s);
    INFO(check.output);
    CHECK(check.exit_code == 0);
    CHECK(check.output.empty());  // no lint warning either
  }

  // Capacity, instances by state and health, fail-static, LB membership.
  CHECK(sample(text, R"(tide_group_desired{group="web"})") == 2.0);
  CHECK(sample(text, R"(tide_group_min{group="web"})") == 1.0);
  CHECK(sample(text, R"(tide_group_max{group="web"})") == 4.0);
  CHECK(sample(text, R"(tide_group_instances{group="web",state="in_service"})") == 2.0);
  CHECK(sample(text, R"(tide_group_instances{group="web",state="draining"})") == 0.0);
  CHECK(sample(text, R"(tide_group_instances_health{group="web",health="healthy"})") == 2.0);
  CHECK(sample(text, R"(tide_group_instances_health{group="web",health="unhealthy"})") == 0.0);
  CHECK(sample(text, R"(tide_group_fail_static{group="web"})") == 0.0);
  // HAProxy's slots as tide drives them: two instances in rotation.
  int in_rotation = 0;
  const std::regex slot(
      R"(\ntide_haproxy_server_in_rotation\{backend="web",slot="\d+",instance="i-[0-9a-f]+"\} 1)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), slot); it != std::sregex_iterator();
       ++it)
    ++in_rotation;
  CHECK(in_rotation == 2);
  // The launches were activities: started and ended successfully.
  const auto launched =
      sample(text, R"(tide_activities_total{type="scale_out",status="successful"})");
  REQUIRE(launched.has_value());
  CHECK(*launched >= 1.0);
  // Group metrics in base units: a share of CPU between 0 and 1.
  const auto cpu = sample(text, R"(tide_group_cpu_ratio{group="web"})");
  REQUIRE(cpu.has_value());
  CHECK(within(*cpu, 0.0, 1.0));
  // Latency histograms: the two instances went into rotation.
  const auto rotations = sample(text, "tide_report_to_lb_latency_seconds_count");
  REQUIRE(rotations.has_value());
  CHECK(*rotations >= 2.0);
  CHECK(sample(text, R"(tide_report_to_lb_latency_seconds_bucket{le="+Inf"})") == *rotations);
  const auto rotation_sum = sample(text, "tide_report_to_lb_latency_seconds_sum");
  REQUIRE(rotation_sum.has_value());
  CHECK(within(*rotation_sum / *rotations, 0.0, 10.0));
  CHECK(sample(text, "tide_report_processing_seconds_count").value_or(0) >= 1.0);
  CHECK(sample(text, "tide_lb_latency_seconds_count").value_or(0) >= 2.0);
  // The build and the process.
  CHECK(std::regex_search(text, std::regex(R"(\ntide_build_info\{version="[0-9][^"]*"\} 1\n)")));
  CHECK(within(sample(text, "process_resident_memory_bytes").value_or(0), 1e6, 4e9));
  CHECK(sample(text, "process_virtual_memory_bytes").value_or(0) >=
        sample(text, "process_resident_memory_bytes").value_or(1e18));
  CHECK(within(sample(text, "process_open_fds").value_or(0), 3,
               sample(text, "process_max_fds").value_or(0)));
  const double now_s = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
  CHECK(within(sample(text, "process_start_time_seconds").value_or(0), now_s - 3600, now_s + 5));
  CHECK(within(sample(text, "process_cpu_seconds_total").value_or(-1), 0.0, 3600.0));

  // Every tide_ metric the dashboard's queries and the alerting rules name
  // is a family of this exposition.
  const auto present = families(text);
  for (const char* file : {"tide-dashboard.json", "tide-alerts.yml"}) {
    const std::string content = st::read_file(kMonitoring + "/" + file);
    const auto used = tide_names(content);
    CHECK(used.size() >= 5);
    for (const std::string& name : used) {
      INFO(file << " uses " << name);
      CHECK(present.count(name) == 1);
    }
  }
}

TEST_CASE(
    "the shipped alerting rules pass promtool and the dashboard is Grafana JSON with Prometheus "
    "queries",
    "[system]") {
  REQUIRE(promtool_installed());
  const auto dir = st::make_temp_dir("tide-monitoring");
  const auto rules = st::run_shell("promtool check rules '" + kMonitoring + "/tide-alerts.yml'",
                                   dir / "rules.log", 60s);
  INFO(rules.output);
  CHECK(rules.exit_code == 0);
  CHECK(rules.output.find("SUCCESS: 6 rules found") != std::string::npos);

  const json dashboard =
      json::parse(st::read_file(kMonitoring + "/tide-dashboard.json"), nullptr, false);
  REQUIRE(dashboard.is_object());
  CHECK(dashboard.value("uid", "") == "tide-autoscaler");
  REQUIRE(dashboard["panels"].is_array());
  std::size_t queries = 0;
  bool quantile = false;
  for (const json& panel : dashboard["panels"]) {
    for (const json& target : panel.value("targets", json::array())) {
      const std::string expr = target.value("expr", "");
      CHECK_FALSE(expr.empty());
      quantile = quantile || expr.find("histogram_quantile") != std::string::npos;
      ++queries;
    }
  }
  CHECK(queries >= 10);
  CHECK(quantile);
}
