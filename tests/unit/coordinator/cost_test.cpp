// Cost accounting (coordinator/core/cost.hpp): billed intervals, per-group and
// per-launch-configuration totals, the peak sweep and the saving, on tables
// of instance rows.
#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/core/cost.hpp"

using namespace tide::coordinator;

namespace {

constexpr TimeMs kHour = 3'600'000;
constexpr TimeMs kT0 = 1'800'000'000'000;  // the period starts here

Instance launched(std::string id, std::string group, TimeMs start, std::optional<TimeMs> end,
                  std::string lc = "web", std::uint32_t version = 1) {
  Instance i;
  i.id = std::move(id);
  i.group = std::move(group);
  i.origin = InstanceOrigin::Launched;
  i.created_ms = start - 1'000;
  i.launched_ms = start;
  i.state = end ? LifecycleState::Terminated : LifecycleState::InService;
  i.state_since_ms = end ? *end : start;
  i.launch_configuration_id = std::move(lc);
  i.launch_configuration_version = version;
  return i;
}

LaunchConfiguration config(std::string id, std::uint32_t version, double price) {
  LaunchConfiguration c;
  c.id = std::move(id);
  c.version = version;
  c.command = "true";
  c.port = 8080;
  c.hourly_price = price;
  return c;
}

}  // namespace

TEST_CASE("billed_interval: launch, termination, period edges", "[cost]") {
  struct Row {
    const char* what;
    TimeMs start;
    std::optional<TimeMs> end;
    std::optional<std::pair<TimeMs, TimeMs>> expected;  // relative to kT0
  };
  const std::vector<Row> rows = {
      {"inside", kT0 + kHour, kT0 + 2 * kHour, std::pair{kHour, 2 * kHour}},
      {"starts before the period", kT0 - kHour, kT0 + kHour, std::pair{TimeMs{0}, kHour}},
      {"ends after the period", kT0 + 23 * kHour, kT0 + 30 * kHour, std::pair{23 * kHour, 24 * kHour}},
      {"spans the whole period", kT0 - kHour, kT0 + 25 * kHour, std::pair{TimeMs{0}, 24 * kHour}},
      {"alive: billed up to 'to'", kT0 + 20 * kHour, std::nullopt, std::pair{20 * kHour, 24 * kHour}},
      {"ended before the period", kT0 - 2 * kHour, kT0 - kHour, std::nullopt},
      {"ends exactly at 'from'", kT0 - kHour, kT0, std::nullopt},
      {"starts exactly at 'to'", kT0 + 24 * kHour, std::nullopt, std::nullopt},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    const auto got = billed_interval(launched("i-1", "g", row.start, row.end), kT0, kT0 + 24 * kHour);
    REQUIRE(got.has_value() == row.expected.has_value());
    if (got) {
      CHECK(got->start_ms - kT0 == row.expected->first);
      CHECK(got->end_ms - kT0 == row.expected->second);
    }
  }
}

TEST_CASE("billed_interval: unconfirmed and failed launches, detach", "[cost]") {
  Instance pending = launched("i-1", "g", kT0 + kHour, std::nullopt);
  pending.launched_ms = 0;
  pending.state = LifecycleState::Pending;
  CHECK_FALSE(billed_interval(pending, kT0, kT0 + 2 * kHour));

  Instance failed = pending;
  failed.state = LifecycleState::LaunchFailed;
  failed.state_since_ms = kT0 + kHour + 5'000;
  CHECK_FALSE(billed_interval(failed, kT0, kT0 + 2 * kHour));

  // No launch time recorded but it did run: billed from its creation.
  Instance old_row = pending;
  old_row.state = LifecycleState::InService;
  const auto got = billed_interval(old_row, kT0, kT0 + 2 * kHour);
  REQUIRE(got);
  CHECK(got->start_ms == old_row.created_ms);

  // Detached: tide stops billing when it leaves the group.
  Instance detached = launched("i-2", "g", kT0, std::nullopt);
  detached.state = LifecycleState::Detached;
  detached.state_since_ms = kT0 + kHour;
  const auto d = billed_interval(detached, kT0, kT0 + 2 * kHour);
  REQUIRE(d);
  CHECK(d->end_ms == kT0 + kHour);
}

TEST_CASE("compute_cost: a scheduled lunch peak over a fixed base", "[cost]") {
  // Two servers all day, two more from 11:00 to 13:00: 52 instance-hours
  // against a fleet fixed at 4 (96 instance-hours): 45.8 % saved.
  const std::vector<Instance> rows = {
      launched("i-1", "business", kT0 - kHour, std::nullopt),
      launched("i-2", "business", kT0 - kHour, std::nullopt),
      launched("i-3", "business", kT0 + 11 * kHour, kT0 + 13 * kHour),
      launched("i-4", "business", kT0 + 11 * kHour, kT0 + 13 * kHour),
  };
  auto report = compute_cost(rows, {config("web", 1, 0.5)}, kT0, kT0 + 24 * kHour);
  REQUIRE(report);
  REQUIRE(report->groups.size() == 1);
  const CostSummary& g = report->groups[0];
  CHECK(g.group == "business");
  CHECK(g.instances == 4);
  CHECK(g.instance_hours == Approx(52.0));
  CHECK(g.cost == Approx(26.0));
  CHECK(g.peak_instances == 4);
  CHECK(g.peak_hourly_rate == Approx(2.0));
  CHECK(g.peak_fixed_cost == Approx(48.0));
  CHECK(g.saving == Approx(22.0));
  CHECK(g.saving_pct == Approx(22.0 / 48.0 * 100.0));
  REQUIRE(g.by_launch_configuration.size() == 1);
  CHECK(g.by_launch_configuration[0].instance_seconds == Approx(52.0 * 3600.0));
  CHECK(report->total.cost == Approx(26.0));
  CHECK(report->total.peak_instances == 4);
}

TEST_CASE("compute_cost: the peak sweep", "[cost]") {
  struct Row {
    const char* what;
    std::vector<std::pair<TimeMs, TimeMs>> intervals;  // hours from kT0
    std::uint32_t peak;
  };
  const std::vector<Row> rows = {
      {"disjoint", {{0, 1}, {2, 3}, {4, 5}}, 1},
      {"touching (half-open)", {{0, 1}, {1, 2}, {2, 3}}, 1},
      {"nested", {{0, 10}, {2, 8}, {4, 6}}, 3},
      {"chain of overlaps", {{0, 3}, {2, 5}, {4, 7}, {6, 9}}, 2},
      {"crossing both edges", {{-5, 30}, {-1, 1}, {23, 25}}, 2},
      {"outside only", {{-5, -1}, {25, 30}}, 0},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    std::vector<Instance> instances;
    for (const auto& [start, end] : row.intervals) {
      instances.push_back(launched("i-" + std::to_string(instances.size()), "g", kT0 + start * kHour,
                                   kT0 + end * kHour));
    }
    auto report = compute_cost(instances, {config("web", 1, 1.0)}, kT0, kT0 + 24 * kHour);
    REQUIRE(report);
    CHECK(report->total.peak_instances == row.peak);
    CHECK(report->total.peak_fixed_cost == Approx(row.peak * 24.0));
  }
}

TEST_CASE("compute_cost: per launch configuration version, prices, attached servers", "[cost]") {
  std::vector<Instance> rows = {
      launched("i-1", "web", kT0, kT0 + 2 * kHour, "app", 1),
      launched("i-2", "web", kT0 + 2 * kHour, kT0 + 4 * kHour, "app", 2),
      launched("i-3", "session", kT0, kT0 + 4 * kHour, "free", 1),
      launched("i-4", "web", kT0, kT0 + kHour, "gone", 7),
  };
  Instance attached = launched("i-5", "web", kT0, std::nullopt);
  attached.origin = InstanceOrigin::Attached;
  attached.created_ms = kT0;
  rows.push_back(attached);
  const std::vector<LaunchConfiguration> configs = {config("app", 1, 1.0), config("app", 2, 3.0),
                                                    config("free", 1, 0.0)};
  auto report = compute_cost(rows, configs, kT0, kT0 + 4 * kHour);
  REQUIRE(report);
  REQUIRE(report->groups.size() == 2);
  const CostSummary& session = report->groups[0];
  CHECK(session.group == "session");
  CHECK(session.cost == 0.0);  // a zero price is a zero cost, not an error
  CHECK(session.instance_hours == Approx(4.0));
  CHECK(session.peak_fixed_cost == 0.0);
  CHECK(session.saving_pct == 0.0);

  const CostSummary& web = report->groups[1];
  CHECK(web.group == "web");
  CHECK(web.instances == 3);
  CHECK(web.attached_instances == 1);
  CHECK(web.attached_instance_seconds == Approx(4.0 * 3600.0));
  REQUIRE(web.by_launch_configuration.size() == 3);
  CHECK(web.by_launch_configuration[0].launch_configuration_version == 1);
  CHECK(web.by_launch_configuration[0].cost == Approx(2.0));
  CHECK(web.by_launch_configuration[1].launch_configuration_version == 2);
  CHECK(web.by_launch_configuration[1].cost == Approx(6.0));
  CHECK(web.by_launch_configuration[2].launch_configuration_id == "gone");
  CHECK_FALSE(web.by_launch_configuration[2].price_known);
  CHECK(web.cost == Approx(8.0));
  // Highest rate at once: v1 (1.0) + the unknown-price one (0) in hour 0,
  // v2 (3.0) in hours 2-4.
  CHECK(web.peak_instances == 2);
  CHECK(web.peak_hourly_rate == Approx(3.0));
  CHECK(web.peak_fixed_cost == Approx(12.0));

  auto only_web = compute_cost(rows, configs, kT0, kT0 + 4 * kHour, std::string("web"));
  REQUIRE(only_web);
  REQUIRE(only_web->groups.size() == 1);
  CHECK(only_web->total.cost == Approx(8.0));
}

TEST_CASE("compute_cost refuses an empty period", "[cost]") {
  CHECK_FALSE(compute_cost({}, {}, kT0, kT0));
  CHECK_FALSE(compute_cost({}, {}, kT0, kT0 - 1));
  auto empty = compute_cost({}, {}, kT0, kT0 + kHour);
  REQUIRE(empty);
  CHECK(empty->groups.empty());
  CHECK(empty->total.cost == 0.0);
}
