// Cron parsing and fire times (coordinator/core/cron.hpp) on fixed instants:
// tables of valid and invalid expressions, DST gaps and repeats in several
// zones, month ends, Feb 29, the day-of-month / day-of-week OR rule, steps.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/core/cron.hpp"

using namespace tide::coordinator;

namespace {

// "2026-03-08 07:00" (UTC) -> ms since the epoch.
TimeMs utc(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  REQUIRE(std::sscanf(text.c_str(), "%d-%d-%d %d:%d", &y, &mo, &d, &h, &mi) == 5);
  const date::sys_days day{date::year{y} / date::month{static_cast<unsigned>(mo)} / date::day{static_cast<unsigned>(d)}};
  const auto t = day + std::chrono::hours{h} + std::chrono::minutes{mi};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string show(TimeMs ms) {
  return date::format("%Y-%m-%d %H:%M", date::floor<std::chrono::seconds>(
                                            date::sys_time<std::chrono::milliseconds>{std::chrono::milliseconds{ms}}));
}

const date::time_zone& zone(const std::string& name) {
  auto found = find_zone(name);
  REQUIRE(found);
  return **found;
}

CronExpr cron(const std::string& text) {
  auto parsed = parse_cron(text);
  INFO(text << ": " << (parsed ? "" : parsed.error().message));
  REQUIRE(parsed);
  return *parsed;
}

// The next `count` fire times after `from`, as UTC text.
std::vector<std::string> fires(const std::string& expr, const std::string& zone_name, const std::string& from,
                               int count) {
  const CronExpr parsed = cron(expr);
  const date::time_zone& z = zone(zone_name);
  std::vector<std::string> out;
  TimeMs cursor = utc(from);
  for (int i = 0; i < count; ++i) {
    const auto next = next_fire(parsed, z, cursor);
    if (!next) break;
    out.push_back(show(*next));
    cursor = *next;
  }
  return out;
}

using Fires = std::vector<std::string>;

}  // namespace

TEST_CASE("parse_cron accepts the documented syntax", "[cron]") {
  const CronExpr every = cron("* * * * *");
  CHECK(every.minutes.count() == 60);
  CHECK(every.hours.count() == 24);
  CHECK(every.days.count() == 31);
  CHECK(every.months.count() == 12);
  CHECK(every.weekdays.count() == 7);
  CHECK(every.days_star);
  CHECK(every.weekdays_star);

  CHECK(cron("*/5 * * * *").minutes.count() == 12);
  const CronExpr stepped = cron("10-50/20 * * * *");
  CHECK(stepped.minutes.count() == 3);
  CHECK(stepped.minutes.test(10));
  CHECK(stepped.minutes.test(30));
  CHECK(stepped.minutes.test(50));
  const CronExpr from_step = cron("7/15 * * * *");  // 7-59/15
  CHECK(from_step.minutes.count() == 4);
  CHECK(from_step.minutes.test(52));
  CHECK(cron("0 0,12 * * *").hours.count() == 2);
  CHECK(cron("0 0 1 jan,Jul *").months == cron("0 0 1 1,7 *").months);
  CHECK(cron("0 0 * JAN-mar *").months == cron("0 0 * 1-3 *").months);
  CHECK(cron("0 9 * * MON-FRI").weekdays == cron("0 9 * * 1-5").weekdays);
  // 7 and 0 are both Sunday.
  CHECK(cron("0 12 * * 7").weekdays == cron("0 12 * * 0").weekdays);
  CHECK(cron("0 12 * * sun").weekdays == cron("0 12 * * 0").weekdays);
  CHECK(cron("0 12 * * 5-7").weekdays == cron("0 12 * * 0,5,6").weekdays);
  CHECK_FALSE(cron("0 0 13 * 5").days_star);
  CHECK_FALSE(cron("0 0 13 * 5").weekdays_star);
  CHECK(cron("0 0 */2 * 5").days_star);
  // Blanks around and between fields; the text is kept for messages.
  CHECK(cron("  0   11 * *\t* ").text == "0   11 * *\t*");
  CHECK(cron("@daily").hours == cron("@midnight").hours);
  CHECK(cron("@daily").minutes == cron("0 0 * * *").minutes);
  CHECK(cron("@hourly").minutes.count() == 1);
  CHECK(cron("@weekly").weekdays.count() == 1);
  CHECK(cron("@yearly").months.count() == 1);
  CHECK(cron("@annually").text == "@annually");
  CHECK(cron("@monthly").days.count() == 1);
}

TEST_CASE("parse_cron names the field and the bad token", "[cron]") {
  struct Case {
    std::string text;
    std::string field;
    std::string token;
    std::string message;
  };
  const std::vector<Case> cases{
      {"", "expression", "", "expected 5 fields (minute hour day-of-month month day-of-week), got 0 in ''"},
      {"* * * *", "expression", "* * * *",
       "expected 5 fields (minute hour day-of-month month day-of-week), got 4 in '* * * *'"},
      {"0 0 * * * *", "expression", "0 0 * * * *",
       "expected 5 fields (minute hour day-of-month month day-of-week), got 6 in '0 0 * * * *'"},
      {"60 * * * *", "minute", "60", "minute field: 60 is out of range 0-59 in '60'"},
      {"* 22-24 * * *", "hour", "22-24", "hour field: 24 is out of range 0-23 in '22-24'"},
      {"* * 0 * *", "day-of-month", "0", "day-of-month field: 0 is out of range 1-31 in '0'"},
      {"* * * 13 *", "month", "13", "month field: 13 is out of range 1-12 in '13'"},
      {"* * * * 8", "day-of-week", "8", "day-of-week field: 8 is out of range 0-7 in '8'"},
      {"* * * FOO *", "month", "FOO", "month field: 'FOO' is not a number or a name (JAN..DEC) in 'FOO'"},
      {"* * * * MON-FRX", "day-of-week", "MON-FRX",
       "day-of-week field: 'FRX' is not a number or a name (SUN..SAT) in 'MON-FRX'"},
      {"x * * * *", "minute", "x", "minute field: 'x' is not a number in 'x'"},
      {"5-1 * * * *", "minute", "5-1", "minute field: range 5-1 is backwards in '5-1'"},
      {"*/0 * * * *", "minute", "*/0", "minute field: step 0 must be 1-60 in '*/0'"},
      {"* */25 * * *", "hour", "*/25", "hour field: step 25 must be 1-24 in '*/25'"},
      {"*/x * * * *", "minute", "*/x", "minute field: step 'x' is not a number in '*/x'"},
      {"1,,2 * * * *", "minute", "1,,2", "minute field: empty list item in '1,,2'"},
      {"1, * * * *", "minute", "1,", "minute field: empty list item in '1,'"},
      {"99999 * * * *", "minute", "99999", "minute field: 99999 is out of range 0-59 in '99999'"},
      {"- * * * *", "minute", "-", "minute field: '' is not a number in '-'"},
      {"0 0 30 2 *", "day-of-month", "30",
       "day-of-month field: no chosen month ('2') has a day '30', so the expression never fires"},
      {"0 0 31 apr,jun *", "day-of-month", "31",
       "day-of-month field: no chosen month ('apr,jun') has a day '31', so the expression never fires"},
      {"@reboot", "expression", "@reboot",
       "unknown macro '@reboot' (use @yearly, @monthly, @weekly, @daily or @hourly)"},
  };
  for (const auto& c : cases) {
    INFO("'" << c.text << "'");
    const auto parsed = parse_cron(c.text);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().field == c.field);
    CHECK(parsed.error().token == c.token);
    CHECK(parsed.error().message == c.message);
  }
  // Never-firing only matters when day-of-week does not widen the days:
  // with the OR rule the 30th of February is irrelevant.
  CHECK(parse_cron("0 0 30 2 1"));
}

TEST_CASE("next_fire in UTC and a zone without DST", "[cron]") {
  CHECK(fires("*/15 * * * *", "UTC", "2026-01-01 10:07", 3) == Fires{"2026-01-01 10:15", "2026-01-01 10:30",
                                                                      "2026-01-01 10:45"});
  // Strictly after: a fire exactly at `after` is not returned again.
  CHECK(fires("0 11 * * *", "UTC", "2026-01-01 11:00", 1) == Fires{"2026-01-02 11:00"});
  // Asia/Shanghai is UTC+8 all year.
  CHECK(fires("0 11 * * *", "Asia/Shanghai", "2026-11-27 00:00", 2) == Fires{"2026-11-27 03:00",
                                                                             "2026-11-28 03:00"});
  CHECK(fires("0 13 * * *", "Asia/Shanghai", "2026-07-01 04:59", 1) == Fires{"2026-07-01 05:00"});
  // Sub-minute `after`: the next whole minute.
  const CronExpr every = cron("* * * * *");
  CHECK(next_fire(every, zone("UTC"), utc("2026-01-01 10:07") + 30'500) == utc("2026-01-01 10:08"));
  CHECK(next_fire(every, zone("UTC"), utc("2026-01-01 10:07") - 1) == utc("2026-01-01 10:07"));
}

TEST_CASE("spring forward: a skipped local time fires once at the end of the gap", "[cron][dst]") {
  // New York, 2026-03-08: 02:00 EST -> 03:00 EDT (07:00 UTC).
  CHECK(fires("30 2 * * *", "America/New_York", "2026-03-07 12:00", 3) ==
        Fires{"2026-03-08 07:00", "2026-03-09 06:30", "2026-03-10 06:30"});
  // Four skipped times of the same gap collapse into one fire at 03:00.
  CHECK(fires("*/15 2 * * *", "America/New_York", "2026-03-08 06:00", 2) ==
        Fires{"2026-03-08 07:00", "2026-03-09 06:00"});
  // A job at 03:00 itself and one in the gap both fire at 07:00 UTC, once.
  CHECK(fires("30 2,3 * * *", "America/New_York", "2026-03-08 06:00", 2) ==
        Fires{"2026-03-08 07:00", "2026-03-08 07:30"});
  // Every minute: 01:59 EST then 03:00 EDT, nothing in between.
  CHECK(fires("* * * * *", "America/New_York", "2026-03-08 06:58", 2) ==
        Fires{"2026-03-08 06:59", "2026-03-08 07:00"});
  // Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST (01:00 UTC).
  CHECK(fires("30 2 * * *", "Europe/Berlin", "2026-03-28 12:00", 2) == Fires{"2026-03-29 01:00", "2026-03-30 00:30"});
  // Lord Howe moves by 30 minutes: 02:00 -> 02:30 (+11) on 2026-10-04.
  CHECK(fires("15 2 * * *", "Australia/Lord_Howe", "2026-10-03 12:00", 2) ==
        Fires{"2026-10-03 15:30", "2026-10-04 15:15"});
}

TEST_CASE("fall back: a repeated local time fires once, the first time", "[cron][dst]") {
  // New York, 2026-11-01: 01:00-01:59 happens as EDT (05:xx UTC), then EST (06:xx UTC).
  CHECK(fires("30 1 * * *", "America/New_York", "2026-10-31 12:00", 2) == Fires{"2026-11-01 05:30", "2026-11-02 06:30"});
  CHECK(fires("*/30 * * * *", "America/New_York", "2026-11-01 04:45", 3) ==
        Fires{"2026-11-01 05:00", "2026-11-01 05:30", "2026-11-01 07:00"});
  // Asked from inside the second 01:xx: the repeated times are behind it.
  CHECK(fires("30 1 * * *", "America/New_York", "2026-11-01 06:10", 1) == Fires{"2026-11-02 06:30"});
  CHECK(fires("45 1 * * *", "America/New_York", "2026-11-01 06:10", 1) == Fires{"2026-11-02 06:45"});
  // Berlin, 2026-10-25: 02:00-02:59 repeats (CEST 00:xx UTC, then CET 01:xx UTC).
  CHECK(fires("30 2 * * *", "Europe/Berlin", "2026-10-24 12:00", 2) == Fires{"2026-10-25 00:30", "2026-10-26 01:30"});
  // Lord Howe, 2026-04-05: 01:30-01:59 repeats (+11, then +10:30).
  CHECK(fires("45 1 * * *", "Australia/Lord_Howe", "2026-04-04 12:00", 2) ==
        Fires{"2026-04-04 14:45", "2026-04-05 15:15"});
}

TEST_CASE("month ends and February 29", "[cron]") {
  CHECK(fires("0 0 31 * *", "UTC", "2026-01-31 00:00", 6) ==
        Fires{"2026-03-31 00:00", "2026-05-31 00:00", "2026-07-31 00:00", "2026-08-31 00:00", "2026-10-31 00:00",
              "2026-12-31 00:00"});
  CHECK(fires("0 0 30 * *", "UTC", "2027-01-30 00:00", 2) == Fires{"2027-03-30 00:00", "2027-04-30 00:00"});
  CHECK(fires("0 0 29 2 *", "UTC", "2028-02-29 00:00", 2) == Fires{"2032-02-29 00:00", "2036-02-29 00:00"});
  // 2100 is not a leap year: more than 5 years ahead, given up.
  CHECK(fires("0 0 29 2 *", "UTC", "2096-03-01 00:00", 1).empty());
  CHECK(fires("0 0 29 2 *", "UTC", "2099-03-01 00:00", 1) == Fires{"2104-02-29 00:00"});
}

TEST_CASE("0 0 29 2 * answers in microseconds, not by stepping minutes", "[cron]") {
  const CronExpr leap = cron("0 0 29 2 *");
  const date::time_zone& z = zone("Europe/Berlin");
  const TimeMs from = utc("2027-03-01 00:00");
  REQUIRE(next_fire(leap, z, from) == utc("2028-02-28 23:00"));  // 00:00 CET
  constexpr int kRuns = 2'000;
  const auto t0 = std::chrono::steady_clock::now();
  TimeMs sum = 0;
  for (int i = 0; i < kRuns; ++i) sum += next_fire(leap, z, from + i).value_or(0);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(sum != 0);
  const double per_call_us = std::chrono::duration<double, std::micro>(elapsed).count() / kRuns;
  INFO("next_fire('0 0 29 2 *') took " << per_call_us << " us per call");
  // Generous for sanitizer builds; stepping by minute would take ~1 s per call.
  CHECK(per_call_us < 1'000.0);
}

TEST_CASE("day-of-month and day-of-week: OR when both restricted, AND otherwise", "[cron]") {
  // The 13th (a Monday in April 2026) or any Friday.
  CHECK(fires("0 0 13 * 5", "UTC", "2026-04-01 00:00", 6) ==
        Fires{"2026-04-03 00:00", "2026-04-10 00:00", "2026-04-13 00:00", "2026-04-17 00:00", "2026-04-24 00:00",
              "2026-05-01 00:00"});
  // Day-of-month starts with `*`: both must match (odd days that are Fridays).
  CHECK(fires("0 0 */2 * 5", "UTC", "2026-04-01 00:00", 3) ==
        Fires{"2026-04-03 00:00", "2026-04-17 00:00", "2026-05-01 00:00"});
  // Weekdays only, from a Saturday.
  CHECK(fires("0 9 * * MON-FRI", "UTC", "2026-04-04 00:00", 2) == Fires{"2026-04-06 09:00", "2026-04-07 09:00"});
  CHECK(fires("0 12 * * 7", "UTC", "2026-04-01 00:00", 1) == Fires{"2026-04-05 12:00"});
  // Months by name, steps in hours.
  CHECK(fires("0 */6 1 jan,jul *", "UTC", "2026-01-01 05:00", 4) ==
        Fires{"2026-01-01 06:00", "2026-01-01 12:00", "2026-01-01 18:00", "2026-07-01 00:00"});
  CHECK(fires("10-50/20 8 * * *", "UTC", "2026-01-01 08:10", 3) ==
        Fires{"2026-01-01 08:30", "2026-01-01 08:50", "2026-01-02 08:10"});
}

TEST_CASE("matches and latest_fire", "[cron]") {
  const CronExpr lunch = cron("0 11 * * *");
  const auto local = date::local_days{date::year{2026} / 11 / 27} + std::chrono::hours{11};
  CHECK(matches(lunch, local));
  CHECK_FALSE(matches(lunch, local + std::chrono::minutes{1}));
  const date::time_zone& shanghai = zone("Asia/Shanghai");
  // Three days missed: the latest fire only.
  CHECK(latest_fire(lunch, shanghai, utc("2026-11-24 12:00"), utc("2026-11-27 04:00")) == utc("2026-11-27 03:00"));
  CHECK(latest_fire(lunch, shanghai, utc("2026-11-27 03:00"), utc("2026-11-27 04:00")) == std::nullopt);
  CHECK(latest_fire(lunch, shanghai, utc("2026-11-27 02:59"), utc("2026-11-27 03:00")) == utc("2026-11-27 03:00"));
  // Every minute over a year-long outage: found without walking the year.
  const CronExpr every = cron("* * * * *");
  CHECK(latest_fire(every, shanghai, utc("2025-01-01 00:00"), utc("2026-06-01 12:34") + 59'000) ==
        utc("2026-06-01 12:34"));
  // Every minute on the 1st only, looked for from the 15th.
  CHECK(latest_fire(cron("* * 1 * *"), zone("UTC"), utc("2026-01-01 00:00"), utc("2026-03-15 00:00")) ==
        utc("2026-03-01 23:59"));
}

TEST_CASE("find_zone", "[cron]") {
  CHECK(find_zone("Asia/Shanghai"));
  CHECK(find_zone("UTC"));
  const auto bad = find_zone("Mars/Olympus_Mons");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().find("unknown time zone 'Mars/Olympus_Mons'") == 0);
  CHECK_FALSE(find_zone(""));
}
