#include "coordinator/tidectl/schedule_preview.hpp"

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <regex>

#include <CLI/CLI.hpp>

#include "coordinator/core/cron.hpp"

namespace tide::tidectl {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

date::sys_seconds to_seconds(std::int64_t ms) {
  return date::floor<seconds>(date::sys_time<milliseconds>{milliseconds{ms}});
}

std::int64_t to_ms(date::sys_seconds t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// "+08:00", "-04:00", "+10:30".
std::string offset_text(seconds offset) {
  const auto total = offset.count();
  const auto magnitude = total < 0 ? -total : total;
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%c%02lld:%02lld", total < 0 ? '-' : '+',
                static_cast<long long>(magnitude / 3600), static_cast<long long>(magnitude % 3600 / 60));
  return buffer;
}

std::string local_text(date::sys_seconds t, const date::time_zone& zone, const char* format) {
  const auto info = zone.get_info(t);
  // Zones without a letter abbreviation have "+11" as theirs: show the offset once.
  const bool numeric = !info.abbrev.empty() && (info.abbrev[0] == '+' || info.abbrev[0] == '-');
  return date::format(format, zone.to_local(t)) + " " + (numeric ? "" : info.abbrev + " ") +
         offset_text(info.offset);
}

int to_int(const std::string& digits) { return digits.empty() ? 0 : std::stoi(digits); }

}  // namespace

tl::expected<std::int64_t, std::string> parse_preview_time(std::string_view text, const date::time_zone& zone) {
  const std::string input(text);
  static const std::regex kEpoch(R"(^\d{1,12}$)");
  if (std::regex_match(input, kEpoch)) return std::stoll(input) * 1000;
  static const std::regex kIso(
      R"(^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?(Z|z|([+-])(\d{2}):?(\d{2}))?$)");
  std::smatch m;
  const std::string expected = "expected epoch seconds or an ISO 8601 time such as 2026-03-08T01:30 or "
                               "2026-03-08T01:30+08:00, got '" + input + "'";
  if (!std::regex_match(input, m, kIso)) return tl::make_unexpected(expected);
  const date::year_month_day ymd{date::year{to_int(m[1])}, date::month{static_cast<unsigned>(to_int(m[2]))},
                                 date::day{static_cast<unsigned>(to_int(m[3]))}};
  const int hour = to_int(m[4]);
  const int minute = to_int(m[5]);
  const int second = to_int(m[6]);
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 59) {
    return tl::make_unexpected("no such date or time: '" + input + "'");
  }
  const auto local = date::local_days{ymd} + std::chrono::hours{hour} + std::chrono::minutes{minute} + seconds{second};
  if (m[7].matched) {
    seconds offset{0};
    if (m[8].matched) {
      offset = std::chrono::hours{to_int(m[9])} + std::chrono::minutes{to_int(m[10])};
      if (m[8] == "-") offset = -offset;
    }
    return to_ms(date::sys_seconds{local.time_since_epoch() - offset});
  }
  const date::local_info info = zone.get_info(local);
  if (info.result == date::local_info::nonexistent) return to_ms(info.second.begin);
  return to_ms(date::sys_seconds{local.time_since_epoch() - info.first.offset});
}

int run_schedule_preview(const PreviewOptions& options, std::ostream& out, std::ostream& err, std::int64_t now_ms) {
  const auto expr = coordinator::parse_cron(options.cron);
  if (!expr) {
    err << "tidectl: " << expr.error().message << '\n';
    return kPreviewUsage;
  }
  const auto zone = coordinator::find_zone(options.time_zone);
  if (!zone) {
    err << "tidectl: " << zone.error() << '\n';
    return kPreviewUsage;
  }
  const date::time_zone& z = **zone;
  std::int64_t from_ms = now_ms;
  if (!options.from.empty()) {
    const auto parsed = parse_preview_time(options.from, z);
    if (!parsed) {
      err << "tidectl: --from: " << parsed.error() << '\n';
      return kPreviewUsage;
    }
    from_ms = *parsed;
  }

  const auto from = to_seconds(from_ms);
  out << "next " << options.count << " fire times of '" << expr->text << "' in " << options.time_zone << " after "
      << local_text(from, z, "%Y-%m-%d %H:%M:%S") << " (" << date::format("%Y-%m-%d %H:%M:%S UTC", from) << "):\n";
  std::int64_t cursor = from_ms;
  for (int i = 1; i <= options.count; ++i) {
    const auto fire = coordinator::next_fire(*expr, z, cursor);
    if (!fire) {
      out << "  (no further fire time within 5 years)\n";
      break;
    }
    cursor = *fire;
    const auto t = to_seconds(*fire);
    const auto local = z.to_local(t);
    std::string note;
    if (!coordinator::matches(*expr, local)) {
      note = "  <- shifted: the scheduled local time does not exist (DST gap); fires at the gap's end";
    } else if (z.get_info(local).result == date::local_info::ambiguous) {
      note = "  <- this local time happens twice (DST ends); fires only the first time";
    }
    out << std::setw(4) << i << "  " << std::left << std::setw(32) << local_text(t, z, "%a %Y-%m-%d %H:%M")
        << std::right << "  " << date::format("%Y-%m-%d %H:%M UTC", t) << note << '\n';
  }
  return kPreviewOk;
}

void add_schedule_preview(CLI::App& schedule) {
  // CLI11 binds options to storage that must outlive parse().
  static PreviewOptions options;
  auto* preview = schedule.add_subcommand(
      "preview", "print the next fire times of a cron expression (computed locally, no coordinator needed)");
  preview->add_option("cron", options.cron, "5-field cron expression, quoted: '0 11 * * *'")->required();
  preview->add_option("--tz", options.time_zone, "IANA time zone, e.g. Asia/Shanghai")->capture_default_str();
  preview->add_option("--from", options.from,
                      "start after this time: epoch seconds or ISO 8601 (2026-03-08T01:30, local to --tz "
                      "unless it ends in Z or +08:00); default now");
  preview->add_option("-n,--count", options.count, "how many fire times")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  preview->callback([] {
    const auto now_ms = std::chrono::duration_cast<milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const int code = run_schedule_preview(options, std::cout, std::cerr, now_ms);
    std::cout.flush();
    // Done here: skip main()'s HTTP request, keep the exit code.
    if (code == kPreviewOk) throw CLI::Success();
    throw CLI::RuntimeError(code);
  });
}

}  // namespace tide::tidectl
