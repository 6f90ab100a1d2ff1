// `tidectl schedule preview '<cron>' --tz <zone> [--from <time>] [-n N]`:
// prints the next N fire times of a cron expression in a zone and in UTC,
// computed locally with the coordinator's own cron code (core/cron.hpp), so
// a user can check an expression — and its DST behaviour — before trusting
// it. No coordinator is needed.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include <date/tz.h>
#include <tl/expected.hpp>

namespace CLI {
class App;
}

namespace tide::tidectl {

struct PreviewOptions {
  std::string cron;
  std::string time_zone = "UTC";
  std::string from;  // "" = now; epoch seconds; or ISO 8601 (see parse_preview_time)
  int count = 10;
};

// Exit codes as tidectl's: 0 printed, 2 bad expression, zone or time.
inline constexpr int kPreviewOk = 0;
inline constexpr int kPreviewUsage = 2;

// Prints the preview to `out` (errors to `err`) and returns the exit code.
// `now_ms` is used when options.from is empty.
[[nodiscard]] int run_schedule_preview(const PreviewOptions& options, std::ostream& out, std::ostream& err,
                                       std::int64_t now_ms);

// "1767268800" (epoch seconds), "2026-03-08", "2026-03-08T01:30",
// "2026-03-08 01:30:15", each optionally ending in "Z" or "+08:00"/"-0500".
// Without an offset the time is local to `zone` (a skipped local time means
// the end of the gap; a repeated one its first occurrence, as for fires).
[[nodiscard]] tl::expected<std::int64_t, std::string> parse_preview_time(std::string_view text,
                                                                         const date::time_zone& zone);

// Adds `preview` under the `tidectl schedule` subcommand. The subcommand
// exits by itself (CLI::Success / CLI::RuntimeError) and never reaches the
// HTTP request main() makes for the other subcommands.
void add_schedule_preview(CLI::App& schedule);

}  // namespace tide::tidectl
