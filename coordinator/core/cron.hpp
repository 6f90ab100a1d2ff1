// 5-field cron expressions (minute hour day-of-month month day-of-week) and
// their fire times in an IANA time zone, for scheduled actions
// (docs/schedules.md).
//
// Pure: the zone is passed in by reference, so nothing here looks up the
// time zone database or reads a clock — except find_zone(), which the shell
// calls once per action to turn a name into a zone (it reads
// /usr/share/zoneinfo the first time a zone is asked for).
//
// Semantics (Vixie cron, with two DST rules from the issue):
// - `*`, lists `1,5,9`, ranges `1-5`, steps `*/5`, `10-50/10` and `7/15`
//   (= `7-<max>/15`); month names JAN..DEC and day names SUN..SAT in any
//   case; day-of-week 0..7 where both 0 and 7 are Sunday.
// - When both day-of-month and day-of-week are restricted (neither field
//   starts with `*`), a day matches if EITHER matches; otherwise both must.
// - A local time that does not exist (spring forward) fires once, at the
//   first instant after the gap (e.g. 02:30 -> 03:00 the same day).
// - A local time that happens twice (fall back) fires once, at its first
//   occurrence.
// - `0 0 31 * *` fires only in months with a 31st, `0 0 29 2 *` only in leap
//   years; an expression that can never fire (`0 0 30 2 *`) is refused.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <date/tz.h>
#include <tl/expected.hpp>

#include "coordinator/core/model.hpp"

namespace tide::coordinator {

// A parsed cron expression: one bit per allowed value of each field.
struct CronExpr {
  std::bitset<60> minutes;   // 0..59
  std::bitset<24> hours;     // 0..23
  std::bitset<32> days;      // 1..31 (bit 0 unused)
  std::bitset<13> months;    // 1..12 (bit 0 unused)
  std::bitset<7> weekdays;   // 0..6, Sunday = 0 (a 7 in the text sets bit 0)
  bool days_star = false;      // day-of-month field starts with `*`
  bool weekdays_star = false;  // day-of-week field starts with `*`
  std::string text;            // the expression as written, for messages
  friend bool operator==(const CronExpr&, const CronExpr&) = default;
};

struct CronError {
  std::string field;    // "minute", "hour", "day-of-month", "month", "day-of-week" or "expression"
  std::string token;    // the offending part of the text
  std::string message;  // full sentence naming field and token, e.g.
                        // "hour field: 24 in '22-24' is out of range 0-23"
};

// Parses "m h dom mon dow" (fields separated by blanks). Also accepts the
// macros @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
[[nodiscard]] tl::expected<CronExpr, CronError> parse_cron(std::string_view text);

// True when the local wall-clock minute `local` matches every field (the
// day fields with the OR rule above). Seconds are ignored.
[[nodiscard]] bool matches(const CronExpr& expr, date::local_seconds local);

// The first fire time strictly after `after_ms`, in ms since the Unix epoch;
// fire times are whole minutes of local time, mapped to UTC with the DST
// rules above. nullopt when there is none within ~5 years of `after_ms`.
// Cost: skips by month, day, hour and minute, so even `0 0 29 2 *` answers
// in microseconds.
[[nodiscard]] std::optional<TimeMs> next_fire(const CronExpr& expr, const date::time_zone& zone,
                                              TimeMs after_ms);

// The latest fire time in (after_ms, up_to_ms], or nullopt if none. Cheap
// when the interval is long (looks back in growing windows from up_to_ms).
[[nodiscard]] std::optional<TimeMs> latest_fire(const CronExpr& expr, const date::time_zone& zone,
                                                TimeMs after_ms, TimeMs up_to_ms);

// Looks a zone up by IANA name ("Asia/Shanghai", "UTC") in the system's
// tzdata. For the shell (coordinator and tidectl); the error names the zone.
[[nodiscard]] tl::expected<const date::time_zone*, std::string> find_zone(std::string_view name);

}  // namespace tide::coordinator
