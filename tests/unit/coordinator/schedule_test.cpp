// Scheduled-action evaluation (coordinator/core/schedule.hpp) on a fake
// clock: missed fires collapse, the grace window, start/end, one-shots,
// ordering, and how an action changes a group's (min, max, desired).
#include <chrono>
#include <cstdio>
#include <sstream>
#include <utility>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/core/schedule.hpp"
#include "coordinator/tidectl/schedule_preview.hpp"

using namespace tide::coordinator;

namespace {

constexpr std::int64_t kMinute = 60'000;

TimeMs utc(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  REQUIRE(std::sscanf(text.c_str(), "%d-%d-%d %d:%d", &y, &mo, &d, &h, &mi) == 5);
  const date::sys_days day{date::year{y} / date::month{static_cast<unsigned>(mo)} / date::day{static_cast<unsigned>(d)}};
  const auto t = day + std::chrono::hours{h} + std::chrono::minutes{mi};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

const date::time_zone& zone(const std::string& name) {
  auto found = find_zone(name);
  REQUIRE(found);
  return **found;
}

ScheduledAction action(const std::string& name, const std::string& cron, const std::string& tz = "UTC") {
  ScheduledAction a;
  a.group = "web";
  a.name = name;
  a.cron = cron;
  a.time_zone = tz;
  a.desired = 3;
  return a;
}

ScheduleEntry entry(const ScheduledAction& a, TimeMs created_ms) {
  auto compiled = compile_schedule(a, zone(a.time_zone), created_ms);
  REQUIRE(compiled);
  return *compiled;
}

// The shell's side of the contract: persist every returned fire time.
void acted_on(std::vector<ScheduleEntry>& entries, const std::vector<DueAction>& due) {
  for (const auto& d : due) {
    for (auto& e : entries) {
      if (e.action.group == d.group && e.action.name == d.name) e.action.last_fired_ms = d.fire_ms;
    }
  }
}

}  // namespace

TEST_CASE("compile_schedule reports a bad cron expression", "[schedule]") {
  const auto bad = compile_schedule(action("x", "0 25 * * *"), zone("UTC"), 0);
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == "hour field: 25 is out of range 0-23 in '25'");
  CHECK(compile_schedule(action("once", ""), zone("UTC"), 0));
}

TEST_CASE("a fire is due once, on the first evaluation at or after it", "[schedule]") {
  std::vector<ScheduleEntry> entries{entry(action("hourly", "0 * * * *"), utc("2026-01-01 00:30"))};
  CHECK(due_actions(entries, utc("2026-01-01 00:59")).empty());
  const auto due = due_actions(entries, utc("2026-01-01 01:00") + 400);
  REQUIRE(due.size() == 1);
  CHECK(due[0].group == "web");
  CHECK(due[0].name == "hourly");
  CHECK(due[0].fire_ms == utc("2026-01-01 01:00"));
  CHECK(due[0].late_ms == 400);
  CHECK(due[0].desired == 3u);
  CHECK_FALSE(due[0].min);
  CHECK_FALSE(due[0].skipped);
  acted_on(entries, due);
  CHECK(due_actions(entries, utc("2026-01-01 01:00") + 1'400).empty());
  CHECK(next_wakeup(entries, utc("2026-01-01 01:00") + 1'400) == utc("2026-01-01 02:00"));
}

TEST_CASE("missed fires collapse into the latest; it runs only within the grace window", "[schedule]") {
  std::vector<ScheduleEntry> entries{entry(action("hourly", "0 * * * *"), utc("2026-01-01 00:00"))};
  entries[0].action.last_fired_ms = utc("2026-01-01 01:00");
  // Down from 01:30 to 03:02: 02:00 and 03:00 were missed; 03:00 runs.
  auto due = due_actions(entries, utc("2026-01-01 03:02"));
  REQUIRE(due.size() == 1);
  CHECK(due[0].fire_ms == utc("2026-01-01 03:00"));
  CHECK(due[0].late_ms == 2 * kMinute);
  CHECK_FALSE(due[0].skipped);
  // Exactly at the edge of the default 5 minutes: still runs; one ms later: skipped.
  CHECK_FALSE(due_actions(entries, utc("2026-01-01 03:05"))[0].skipped);
  due = due_actions(entries, utc("2026-01-01 03:05") + 1);
  REQUIRE(due.size() == 1);
  CHECK(due[0].skipped);
  CHECK(due[0].fire_ms == utc("2026-01-01 03:00"));
  // The grace window is a parameter.
  CHECK_FALSE(due_actions(entries, utc("2026-01-01 03:06"), 10 * kMinute)[0].skipped);
  CHECK(due_actions(entries, utc("2026-01-01 03:00") + 1, 0)[0].skipped);
  // Skipped counts as acted on: not reported again.
  acted_on(entries, due);
  CHECK(due_actions(entries, utc("2026-01-01 03:30")).empty());
}

TEST_CASE("an action never fired looks back to its creation only", "[schedule]") {
  const auto a = action("hourly", "0 * * * *");
  // Created at 02:59: the 03:00 fire is its own.
  std::vector<ScheduleEntry> entries{entry(a, utc("2026-01-01 02:59"))};
  CHECK(due_actions(entries, utc("2026-01-01 03:01")).size() == 1);
  // Created a millisecond after 03:00: that fire predates it.
  entries = {entry(a, utc("2026-01-01 03:00") + 1)};
  CHECK(due_actions(entries, utc("2026-01-01 03:01")).empty());
  // Created exactly at a fire time: it counts.
  entries = {entry(a, utc("2026-01-01 03:00"))};
  CHECK(due_actions(entries, utc("2026-01-01 03:00")).size() == 1);
}

TEST_CASE("start and end bound the fires, both inclusive", "[schedule]") {
  auto a = action("hourly", "0 * * * *");
  a.start_ms = utc("2026-01-01 02:00");
  a.end_ms = utc("2026-01-01 04:00");
  std::vector<ScheduleEntry> entries{entry(a, utc("2026-01-01 00:00"))};
  CHECK(due_actions(entries, utc("2026-01-01 01:00")).empty());
  CHECK(next_wakeup(entries, utc("2026-01-01 00:10")) == utc("2026-01-01 02:00"));
  auto due = due_actions(entries, utc("2026-01-01 02:00"));
  REQUIRE(due.size() == 1);
  CHECK(due[0].fire_ms == utc("2026-01-01 02:00"));
  acted_on(entries, due);
  // Down over the end: 03:00 and 04:00 missed, 04:00 is the latest, 05:00 is past the end.
  due = due_actions(entries, utc("2026-01-01 05:01"));
  REQUIRE(due.size() == 1);
  CHECK(due[0].fire_ms == utc("2026-01-01 04:00"));
  CHECK(due[0].skipped);
  acted_on(entries, due);
  CHECK(due_actions(entries, utc("2026-01-01 06:00")).empty());
  CHECK(finished(entries[0], utc("2026-01-01 06:00")));
  CHECK_FALSE(next_wakeup(entries, utc("2026-01-01 06:00")));
}

TEST_CASE("a one-shot fires once, at start", "[schedule]") {
  auto a = action("launch-day", "");
  a.start_ms = utc("2026-06-18 10:00");
  std::vector<ScheduleEntry> entries{entry(a, utc("2026-06-01 00:00"))};
  CHECK(due_actions(entries, utc("2026-06-18 10:00") - 1).empty());
  CHECK_FALSE(finished(entries[0], utc("2026-06-18 09:00")));
  CHECK(next_wakeup(entries, utc("2026-06-18 09:00")) == utc("2026-06-18 10:00"));
  auto due = due_actions(entries, utc("2026-06-18 10:00"));
  REQUIRE(due.size() == 1);
  CHECK(due[0].fire_ms == utc("2026-06-18 10:00"));
  CHECK(due[0].cron.empty());
  // Not yet persisted: still pending, so not finished.
  CHECK_FALSE(finished(entries[0], utc("2026-06-18 10:01")));
  acted_on(entries, due);
  CHECK(due_actions(entries, utc("2026-06-18 10:01")).empty());
  CHECK(finished(entries[0], utc("2026-06-18 10:01")));
  // Missed by more than the grace window: skipped.
  entries[0].action.last_fired_ms.reset();
  due = due_actions(entries, utc("2026-06-18 11:00"));
  REQUIRE(due.size() == 1);
  CHECK(due[0].skipped);
}

TEST_CASE("due actions come sorted by fire time, then group and name", "[schedule]") {
  auto up = action("lunch-start", "0 11 * * *", "Asia/Shanghai");
  auto down = action("lunch-end", "0 13 * * *", "Asia/Shanghai");
  auto other = action("other", "0 11 * * *", "Asia/Shanghai");
  other.group = "api";
  const TimeMs created = utc("2026-11-26 00:00");
  std::vector<ScheduleEntry> entries{entry(down, created), entry(up, created), entry(other, created)};
  // Shanghai 13:03 = 05:03 UTC; with a day's grace both 11:00 and 13:00 are due.
  const auto due = due_actions(entries, utc("2026-11-27 05:03"), 24 * 60 * kMinute);
  REQUIRE(due.size() == 3);
  CHECK(due[0].group == "api");
  CHECK(due[1].name == "lunch-start");
  CHECK(due[2].name == "lunch-end");
  CHECK(due[2].fire_ms == utc("2026-11-27 05:00"));
  // With the default grace the 11:00 ones are stale.
  const auto stale = due_actions(entries, utc("2026-11-27 05:03"));
  REQUIRE(stale.size() == 3);
  CHECK(stale[0].skipped);
  CHECK(stale[1].skipped);
  CHECK_FALSE(stale[2].skipped);
}

TEST_CASE("a daily action across a DST change fires once a day", "[schedule][dst]") {
  std::vector<ScheduleEntry> entries{
      entry(action("night", "30 2 * * *", "America/New_York"), utc("2026-03-07 00:00"))};
  std::vector<TimeMs> fired;
  // Tick every minute for three days, as the shell would (every second is
  // the same, slower).
  for (TimeMs now = utc("2026-03-07 00:00"); now <= utc("2026-03-10 00:00"); now += kMinute) {
    const auto due = due_actions(entries, now);
    for (const auto& d : due) {
      CHECK_FALSE(d.skipped);
      fired.push_back(d.fire_ms);
    }
    acted_on(entries, due);
  }
  CHECK(fired == std::vector<TimeMs>{utc("2026-03-07 07:30"), utc("2026-03-08 07:00"), utc("2026-03-09 06:30")});
}

TEST_CASE("apply_scheduled_action sets, then clamps like AWS", "[schedule]") {
  DueAction due;
  due.group = "web";
  due.name = "lunch-start";
  due.cron = "0 11 * * *";
  due.time_zone = "Asia/Shanghai";
  due.zone = &zone("Asia/Shanghai");
  due.fire_ms = utc("2026-11-27 03:00");
  due.min = 4;
  due.desired = 4;
  const std::string prefix = "scheduled action lunch-start (0 11 * * * Asia/Shanghai) fired at 2026-11-27 11:00 CST";

  auto change = apply_scheduled_action({2, 10, 2}, due);
  REQUIRE(change);
  CHECK(change->before == Capacity{2, 10, 2});
  CHECK(change->after == Capacity{4, 10, 4});
  CHECK(change->changed);
  CHECK(change->cause == prefix + ": min 2 -> 4, desired 2 -> 4");

  struct Case {
    Capacity current;
    std::optional<std::uint32_t> min, max, desired;
    Capacity expected;
    std::string text;
  };
  const std::vector<Case> cases{
      // A new min above desired raises desired.
      {{2, 10, 2}, 4, std::nullopt, std::nullopt, {4, 10, 4}, "min 2 -> 4, desired 2 -> 4"},
      // A new min below desired leaves desired.
      {{2, 10, 6}, 4, std::nullopt, std::nullopt, {4, 10, 6}, "min 2 -> 4"},
      // A new max below desired lowers desired.
      {{2, 10, 8}, std::nullopt, 5, std::nullopt, {2, 5, 5}, "max 10 -> 5, desired 8 -> 5"},
      // A desired beyond the max is clamped, and said so.
      {{2, 10, 2}, std::nullopt, std::nullopt, 12, {2, 10, 10}, "desired 2 -> 10 (asked 12, clamped to max 10)"},
      {{3, 10, 3}, std::nullopt, std::nullopt, 1, {3, 10, 3}, "desired stays 3 (asked 1, clamped to min 3)"},
      // All three.
      {{2, 10, 5}, 0, 4, 1, {0, 4, 1}, "min 2 -> 0, max 10 -> 4, desired 5 -> 1"},
      // Nothing to do.
      {{4, 10, 4}, 4, std::nullopt, 4, {4, 10, 4}, "no change (min 4, max 10, desired 4)"},
  };
  for (const auto& c : cases) {
    due.min = c.min;
    due.max = c.max;
    due.desired = c.desired;
    const auto result = apply_scheduled_action(c.current, due);
    INFO(c.text);
    REQUIRE(result);
    CHECK(result->after == c.expected);
    CHECK(result->changed == (c.expected != c.current));
    CHECK(result->cause == prefix + ": " + c.text);
  }

  // min above the group's max: refused, naming both.
  due.min = 5;
  due.max.reset();
  due.desired.reset();
  const auto refused = apply_scheduled_action({1, 3, 2}, due);
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == prefix + ": not applied: min 5 > max 3 (the group's max)");

  // A late (missed) fire says how late; a one-shot says "once".
  due.min = 2;
  due.cron.clear();
  due.late_ms = 3 * kMinute + 4'000;
  change = apply_scheduled_action({1, 3, 2}, due);
  REQUIRE(change);
  CHECK(change->cause ==
        "scheduled action lunch-start (once Asia/Shanghai) fired at 2026-11-27 11:00 CST, applied 3 min 4 s late: "
        "min 1 -> 2");
}

TEST_CASE("format_local_minute shows the zone's abbreviation", "[schedule]") {
  CHECK(format_local_minute(utc("2026-07-01 12:00"), &zone("Europe/Berlin")) == "2026-07-01 14:00 CEST");
  CHECK(format_local_minute(utc("2026-01-01 12:00"), &zone("America/New_York")) == "2026-01-01 07:00 EST");
  CHECK(format_local_minute(utc("2026-01-01 12:00"), nullptr) == "2026-01-01 12:00 UTC");
}

TEST_CASE("tidectl schedule preview prints fires in the zone and in UTC", "[schedule][tidectl]") {
  using tide::tidectl::PreviewOptions;
  std::ostringstream out;
  std::ostringstream err;
  PreviewOptions options{"30 2 * * *", "America/New_York", "2026-03-07", 3};
  REQUIRE(tide::tidectl::run_schedule_preview(options, out, err, 0) == tide::tidectl::kPreviewOk);
  CHECK(err.str().empty());
  const std::string text = out.str();
  CHECK(text.find("next 3 fire times of '30 2 * * *' in America/New_York after 2026-03-07 00:00:00 EST -05:00 "
                  "(2026-03-07 05:00:00 UTC):") == 0);
  CHECK(text.find("   1  Sat 2026-03-07 02:30 EST -05:00   2026-03-07 07:30 UTC\n") != std::string::npos);
  CHECK(text.find("   2  Sun 2026-03-08 03:00 EDT -04:00   2026-03-08 07:00 UTC  <- shifted") != std::string::npos);
  CHECK(text.find("   3  Mon 2026-03-09 02:30 EDT -04:00   2026-03-09 06:30 UTC\n") != std::string::npos);

  // Without --from: the `now` passed in. Zones without letters show the offset once.
  out.str("");
  options = {"0 0 29 2 *", "Australia/Lord_Howe", "", 1};
  REQUIRE(tide::tidectl::run_schedule_preview(options, out, err, utc("2027-03-01 00:00")) == 0);
  CHECK(out.str().find("   1  Tue 2028-02-29 00:00 +11:00       2028-02-28 13:00 UTC\n") != std::string::npos);

  // Bad input: exit code 2 and the reason.
  const std::vector<std::pair<PreviewOptions, std::string>> bad{
      {{"0 24 * * *", "UTC", "", 1}, "tidectl: hour field: 24 is out of range 0-23 in '24'\n"},
      {{"0 1 * * *", "Mars/Base", "", 1}, "tidectl: unknown time zone 'Mars/Base'"},
      {{"0 1 * * *", "UTC", "2026-02-30", 1}, "tidectl: --from: no such date or time: '2026-02-30'\n"},
      {{"0 1 * * *", "UTC", "yesterday", 1}, "tidectl: --from: expected epoch seconds or an ISO 8601 time"},
  };
  for (const auto& [opts, message] : bad) {
    err.str("");
    CHECK(tide::tidectl::run_schedule_preview(opts, out, err, 0) == tide::tidectl::kPreviewUsage);
    CHECK(err.str().find(message) == 0);
  }
}

TEST_CASE("preview --from accepts epoch seconds and ISO 8601 with or without offset", "[schedule][tidectl]") {
  const date::time_zone& shanghai = zone("Asia/Shanghai");
  const date::time_zone& ny = zone("America/New_York");
  CHECK(tide::tidectl::parse_preview_time("1767225600", shanghai) == utc("2026-01-01 00:00"));
  CHECK(tide::tidectl::parse_preview_time("2026-01-01", shanghai) == utc("2025-12-31 16:00"));
  CHECK(tide::tidectl::parse_preview_time("2026-01-01T08:30", shanghai) == utc("2026-01-01 00:30"));
  CHECK(tide::tidectl::parse_preview_time("2026-01-01 08:30:00Z", shanghai) == utc("2026-01-01 08:30"));
  CHECK(tide::tidectl::parse_preview_time("2026-01-01T08:30-05:00", shanghai) == utc("2026-01-01 13:30"));
  CHECK(tide::tidectl::parse_preview_time("2026-01-01T08:30+0530", shanghai) == utc("2026-01-01 03:00"));
  // In a DST gap: the end of the gap; in a repeated hour: the first one.
  CHECK(tide::tidectl::parse_preview_time("2026-03-08T02:30", ny) == utc("2026-03-08 07:00"));
  CHECK(tide::tidectl::parse_preview_time("2026-11-01T01:30", ny) == utc("2026-11-01 05:30"));
  CHECK_FALSE(tide::tidectl::parse_preview_time("2026-01-01T25:00", ny));
  CHECK_FALSE(tide::tidectl::parse_preview_time("", ny));
  CHECK_FALSE(tide::tidectl::parse_preview_time("2026-1-1", ny));
}
