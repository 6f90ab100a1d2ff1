#include "coordinator/core/cron.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <exception>
#include <vector>

namespace tide::coordinator {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr std::array<std::string_view, 12> kMonthNames{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

// Fire times further than this from the starting point are not looked for.
constexpr int kHorizonYears = 5;

struct FieldSpec {
  std::string_view name;
  int lo;
  int hi;
  int name_base;  // value of the first name (JAN = 1, SUN = 0)
  const std::string_view* names;
  std::size_t name_count;
};

constexpr FieldSpec kMinute{"minute", 0, 59, 0, nullptr, 0};
constexpr FieldSpec kHour{"hour", 0, 23, 0, nullptr, 0};
constexpr FieldSpec kDay{"day-of-month", 1, 31, 0, nullptr, 0};
constexpr FieldSpec kMonth{"month", 1, 12, 1, kMonthNames.data(), kMonthNames.size()};
constexpr FieldSpec kWeekday{"day-of-week", 0, 7, 0, kDayNames.data(), kDayNames.size()};

CronError field_error(const FieldSpec& spec, std::string_view token, const std::string& reason) {
  return CronError{std::string(spec.name), std::string(token),
                   std::string(spec.name) + " field: " + reason + " in '" + std::string(token) + "'"};
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

// A number (at most 4 digits, so it cannot overflow) or, for month and
// day-of-week, a three-letter name in any case.
tl::expected<int, std::string> parse_value(const FieldSpec& spec, std::string_view text) {
  if (all_digits(text)) {
    if (text.size() > 4) {
      return tl::make_unexpected(std::string(text) + " is out of range " + std::to_string(spec.lo) + "-" +
                                 std::to_string(spec.hi));
    }
    int value = 0;
    for (char c : text) value = value * 10 + (c - '0');
    if (value < spec.lo || value > spec.hi) {
      return tl::make_unexpected(std::to_string(value) + " is out of range " + std::to_string(spec.lo) + "-" +
                                 std::to_string(spec.hi));
    }
    return value;
  }
  if (spec.names != nullptr && text.size() == 3) {
    std::string upper(text);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (std::size_t i = 0; i < spec.name_count; ++i) {
      if (spec.names[i] == upper) return spec.name_base + static_cast<int>(i);
    }
  }
  std::string reason = "'" + std::string(text) + "' is not a number";
  if (spec.names != nullptr) {
    reason += " or a name (" + std::string(spec.names[0]) + ".." + std::string(spec.names[spec.name_count - 1]) +
              ")";
  }
  return tl::make_unexpected(reason);
}

// Parses one field into `bits` (bit i = value i allowed).
tl::expected<void, CronError> parse_field(const FieldSpec& spec, std::string_view field, std::uint64_t& bits) {
  bits = 0;
  std::size_t pos = 0;
  while (true) {
    const std::size_t comma = field.find(',', pos);
    const std::string_view item = field.substr(pos, comma == std::string_view::npos ? field.npos : comma - pos);
    if (item.empty()) return tl::make_unexpected(field_error(spec, field, "empty list item"));

    std::string_view base = item;
    int step = 1;
    bool has_step = false;
    if (const std::size_t slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      const std::string_view step_text = item.substr(slash + 1);
      const int span = spec.hi - spec.lo + 1;
      if (!all_digits(step_text) || step_text.size() > 4) {
        return tl::make_unexpected(field_error(spec, item, "step '" + std::string(step_text) + "' is not a number"));
      }
      step = 0;
      for (char c : step_text) step = step * 10 + (c - '0');
      if (step < 1 || step > span) {
        return tl::make_unexpected(
            field_error(spec, item, "step " + std::to_string(step) + " must be 1-" + std::to_string(span)));
      }
      has_step = true;
    }

    int first = spec.lo;
    int last = spec.hi;
    if (base == "*") {
      // `*` on day-of-week means 0-6; 7 would only repeat Sunday.
      if (spec.name == kWeekday.name) last = 6;
    } else if (const std::size_t dash = base.find('-'); dash != std::string_view::npos) {
      auto a = parse_value(spec, base.substr(0, dash));
      if (!a) return tl::make_unexpected(field_error(spec, item, a.error()));
      auto b = parse_value(spec, base.substr(dash + 1));
      if (!b) return tl::make_unexpected(field_error(spec, item, b.error()));
      if (*a > *b) {
        return tl::make_unexpected(field_error(
            spec, item, "range " + std::to_string(*a) + "-" + std::to_string(*b) + " is backwards"));
      }
      first = *a;
      last = *b;
    } else {
      auto a = parse_value(spec, base);
      if (!a) return tl::make_unexpected(field_error(spec, item, a.error()));
      first = *a;
      // `7/15` means 7-<max>/15 (as cronie reads it); a lone value is itself.
      last = has_step ? spec.hi : *a;
    }
    for (int value = first; value <= last; value += step) {
      const int bit = (spec.name == kWeekday.name && value == 7) ? 0 : value;
      bits |= std::uint64_t{1} << bit;
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return {};
}

std::vector<std::string_view> split_blanks(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0) ++i;
    std::size_t j = i;
    while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j])) == 0) ++j;
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string_view expand_macro(std::string_view text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  return {};
}

unsigned days_in_month(int year, int month) {
  const date::year_month_day_last last{date::year{year} / date::month{static_cast<unsigned>(month)} / date::last};
  return static_cast<unsigned>(last.day());
}

bool day_matches(const CronExpr& expr, int year, int month, int day) {
  const date::year_month_day ymd{date::year{year}, date::month{static_cast<unsigned>(month)},
                                 date::day{static_cast<unsigned>(day)}};
  const auto weekday = date::weekday{date::sys_days{ymd}}.c_encoding();  // 0 = Sunday
  const bool dom = expr.days.test(static_cast<std::size_t>(day));
  const bool dow = expr.weekdays.test(weekday);
  // Vixie cron: both restricted -> either; otherwise (one is `*`) -> both.
  if (expr.days_star || expr.weekdays_star) return dom && dow;
  return dom || dow;
}

// The lowest set bit >= from, or -1.
template <std::size_t N>
int next_bit(const std::bitset<N>& bits, int from) {
  for (int i = from; i < static_cast<int>(N); ++i) {
    if (bits.test(static_cast<std::size_t>(i))) return i;
  }
  return -1;
}

// The first local minute >= start that matches, skipping whole months,
// days and hours that cannot match. nullopt past `limit_year`.
std::optional<date::local_seconds> next_local_match(const CronExpr& expr, date::local_seconds start,
                                                    int limit_year) {
  const auto day_point = date::floor<days>(start);
  const date::year_month_day ymd{day_point};
  const date::hh_mm_ss<seconds> tod{start - day_point};
  int y = static_cast<int>(ymd.year());
  int m = static_cast<int>(static_cast<unsigned>(ymd.month()));
  int d = static_cast<int>(static_cast<unsigned>(ymd.day()));
  int hh = static_cast<int>(tod.hours().count());
  int mm = static_cast<int>(tod.minutes().count());

  const auto next_day = [&] {
    ++d;
    hh = 0;
    mm = 0;
  };
  while (y <= limit_year) {
    if (!expr.months.test(static_cast<std::size_t>(m)) || d > static_cast<int>(days_in_month(y, m))) {
      if (++m > 12) {
        m = 1;
        ++y;
      }
      d = 1;
      hh = 0;
      mm = 0;
      continue;
    }
    if (!day_matches(expr, y, m, d)) {
      next_day();
      continue;
    }
    const int h = next_bit(expr.hours, hh);
    if (h < 0) {
      next_day();
      continue;
    }
    if (h != hh) {
      hh = h;
      mm = 0;
    }
    const int minute = next_bit(expr.minutes, mm);
    if (minute < 0) {
      if (++hh > 23) {
        next_day();
      } else {
        mm = 0;
      }
      continue;
    }
    mm = minute;
    const date::year_month_day found{date::year{y}, date::month{static_cast<unsigned>(m)},
                                     date::day{static_cast<unsigned>(d)}};
    return date::local_days{found} + hours{hh} + minutes{mm};
  }
  return std::nullopt;
}

// Local wall-clock time -> UTC with the DST rules.
date::sys_seconds to_sys(const date::time_zone& zone, date::local_seconds local) {
  const date::local_info info = zone.get_info(local);
  if (info.result == date::local_info::nonexistent) {
    // Skipped by a spring-forward: the first valid instant after the gap.
    return info.second.begin;
  }
  // unique, or ambiguous (fall back): `first` is the offset of the first
  // occurrence, so a repeated local time fires once, the first time.
  return date::sys_seconds{local.time_since_epoch() - info.first.offset};
}

TimeMs to_ms(date::sys_seconds t) { return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count(); }

}  // namespace

tl::expected<CronExpr, CronError> parse_cron(std::string_view text) {
  std::string_view source = text;
  while (!source.empty() && std::isspace(static_cast<unsigned char>(source.front())) != 0) source.remove_prefix(1);
  while (!source.empty() && std::isspace(static_cast<unsigned char>(source.back())) != 0) source.remove_suffix(1);
  std::string_view body = source;
  if (source.starts_with('@')) {
    body = expand_macro(source);
    if (body.empty()) {
      return tl::make_unexpected(CronError{
          "expression", std::string(source),
          "unknown macro '" + std::string(source) + "' (use @yearly, @monthly, @weekly, @daily or @hourly)"});
    }
  }
  const auto fields = split_blanks(body);
  if (fields.size() != 5) {
    return tl::make_unexpected(CronError{
        "expression", std::string(source),
        "expected 5 fields (minute hour day-of-month month day-of-week), got " + std::to_string(fields.size()) +
            " in '" + std::string(source) + "'"});
  }
  CronExpr expr;
  expr.text = std::string(source);
  std::uint64_t bits = 0;
  if (auto ok = parse_field(kMinute, fields[0], bits); !ok) return tl::make_unexpected(ok.error());
  expr.minutes = std::bitset<60>(bits);
  if (auto ok = parse_field(kHour, fields[1], bits); !ok) return tl::make_unexpected(ok.error());
  expr.hours = std::bitset<24>(bits);
  if (auto ok = parse_field(kDay, fields[2], bits); !ok) return tl::make_unexpected(ok.error());
  expr.days = std::bitset<32>(bits);
  if (auto ok = parse_field(kMonth, fields[3], bits); !ok) return tl::make_unexpected(ok.error());
  expr.months = std::bitset<13>(bits);
  if (auto ok = parse_field(kWeekday, fields[4], bits); !ok) return tl::make_unexpected(ok.error());
  expr.weekdays = std::bitset<7>(bits);
  expr.days_star = fields[2].starts_with('*');
  expr.weekdays_star = fields[4].starts_with('*');

  // Only day-of-month restricts the day (day-of-week is `*`): some chosen
  // month must have some chosen day, or the expression never fires.
  if (!expr.days_star && expr.weekdays_star) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!expr.months.test(static_cast<std::size_t>(m))) continue;
      const int max_day = m == 2 ? 29 : static_cast<int>(days_in_month(2001, m));
      for (int d = 1; d <= max_day && !possible; ++d) possible = expr.days.test(static_cast<std::size_t>(d));
    }
    if (!possible) {
      return tl::make_unexpected(CronError{
          "day-of-month", std::string(fields[2]),
          "day-of-month field: no chosen month ('" + std::string(fields[3]) + "') has a day '" +
              std::string(fields[2]) + "', so the expression never fires"});
    }
  }
  return expr;
}

bool matches(const CronExpr& expr, date::local_seconds local) {
  const auto day_point = date::floor<days>(local);
  const date::year_month_day ymd{day_point};
  const date::hh_mm_ss<seconds> tod{local - day_point};
  return expr.months.test(static_cast<unsigned>(ymd.month())) &&
         day_matches(expr, static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month())),
                     static_cast<int>(static_cast<unsigned>(ymd.day()))) &&
         expr.hours.test(static_cast<std::size_t>(tod.hours().count())) &&
         expr.minutes.test(static_cast<std::size_t>(tod.minutes().count()));
}

std::optional<TimeMs> next_fire(const CronExpr& expr, const date::time_zone& zone, TimeMs after_ms) {
  const date::sys_seconds after_s = date::floor<seconds>(date::sys_time<milliseconds>{milliseconds{after_ms}});
  date::local_seconds cursor = date::floor<minutes>(zone.to_local(after_s));
  const int limit_year = static_cast<int>(date::year_month_day{date::floor<days>(cursor)}.year()) + kHorizonYears;
  // Local time maps to UTC monotonically (a gap collapses onto its end, a
  // repeated hour onto its first occurrence), so the first match whose UTC
  // time is past `after_ms` is the answer. Matches before it can only be
  // the rest of the current minute or of a repeated hour: a few iterations.
  while (true) {
    const auto local = next_local_match(expr, cursor, limit_year);
    if (!local) return std::nullopt;
    const TimeMs fire_ms = to_ms(to_sys(zone, *local));
    if (fire_ms > after_ms) return fire_ms;
    cursor = *local + minutes{1};
  }
}

std::optional<TimeMs> latest_fire(const CronExpr& expr, const date::time_zone& zone, TimeMs after_ms,
                                  TimeMs up_to_ms) {
  if (up_to_ms <= after_ms) return std::nullopt;
  const auto first = next_fire(expr, zone, after_ms);
  if (!first || *first > up_to_ms) return std::nullopt;
  // Walking forward from `first` could take a fire per minute for years
  // after a long outage; look back from `up_to_ms` in growing windows
  // instead and walk only the window that holds a fire.
  constexpr std::array<std::int64_t, 6> kWindowsMs{60'000, 3'600'000, 86'400'000, 32 * 86'400'000LL,
                                                   400 * 86'400'000LL, 6 * 366 * 86'400'000LL};
  std::optional<TimeMs> found;
  for (const std::int64_t window_ms : kWindowsMs) {
    const TimeMs start_ms = std::max(after_ms, up_to_ms - window_ms);
    found = next_fire(expr, zone, start_ms);
    if (found && *found <= up_to_ms) break;
    found.reset();
    if (start_ms == after_ms) break;
  }
  if (!found) found = first;
  while (true) {
    const auto next = next_fire(expr, zone, *found);
    if (!next || *next > up_to_ms) return found;
    found = next;
  }
}

tl::expected<const date::time_zone*, std::string> find_zone(std::string_view name) {
  if (name.empty()) return tl::make_unexpected(std::string("time zone name is empty"));
  try {
    return date::locate_zone(std::string(name));
  } catch (const std::exception& error) {
    return tl::make_unexpected("unknown time zone '" + std::string(name) + "' (" + error.what() + ")");
  }
}

}  // namespace tide::coordinator
