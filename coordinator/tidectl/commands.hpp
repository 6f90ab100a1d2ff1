// What tidectl's subcommands share: the one HTTP request a subcommand
// prepares, how its answer is printed, and small parsers for flag values.
// Each group of subcommands lives in its own file and registers itself on
// the CLI11 app (specs.cpp, cost.cpp, apply.cpp, history.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "coordinator/core/duration.hpp"

namespace CLI {
class App;
}

namespace tide::tidectl {

// A group size or an instance count: what the coordinator accepts (0..10000),
// so that `--desired -1` says so in those words.
inline constexpr int kMaxCapacity = 10'000;

// Exit codes (main.cpp): 0 success, 1 the coordinator refused the request
// (4xx), 2 bad usage or a bad file, 3 unreachable or failed (5xx).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnavailable = 3;

struct Request {
  std::string method = "GET";
  std::string path;
  std::optional<nlohmann::json> body;
  // Prints a successful response in table form.
  std::function<void(const nlohmann::json&)> render;
  // Optional: handles an HTTP error answer (status >= 400) in table mode and
  // returns the exit code; unset = main()'s generic message.
  std::function<int(int status, const nlohmann::json& body)> on_error = nullptr;
};

// "500ms", "10s", "5m", "1h", "1h30m", or a bare number of seconds: the
// coordinator's one duration syntax (core/duration.hpp), plus the bare
// seconds the CLI's flags always took.
[[nodiscard]] inline tl::expected<std::int64_t, std::string> parse_duration_ms(std::string_view text) {
  return coordinator::parse_duration(text, /*bare_seconds=*/true);
}
// A point in time as --since/--until take it: a duration ago ("1h", "30m")
// or a time (ISO 8601, local unless it has an offset; epoch seconds).
[[nodiscard]] tl::expected<std::int64_t, std::string> parse_point_in_time(std::string_view text, std::int64_t now_ms);
// "3/60s": at most 3 instances per 60 s, as {max_instances, period_ms}.
[[nodiscard]] tl::expected<nlohmann::json, std::string> parse_rate_limit(std::string_view text);
// Renders a millisecond duration the way it is typed: "10s", "5m", "1h30m", "500ms".
[[nodiscard]] inline std::string duration_text(std::int64_t ms) { return coordinator::typed_duration(ms); }
// Epoch ms as "2026-11-27 11:00 CST" in `zone` (UTC when the zone is unknown).
[[nodiscard]] std::string time_in_zone(std::int64_t ms, const std::string& zone);

// tidectl policy|schedule (put, list, show, delete)|hook|notification|lifecycle.
// `schedule` already exists (its `preview` is schedule_preview.cpp's).
void add_spec_commands(CLI::App& app, CLI::App& schedule, Request& request, std::int64_t now_ms);
// tidectl cost [--group G] [--from TIME] [--to TIME]
void add_cost_command(CLI::App& app, Request& request, std::int64_t now_ms);
// tidectl apply -f FILE [--dry-run]
void add_apply_command(CLI::App& app, Request& request);
// tidectl group history GROUP [--since D] [--until D] [--step D]
void add_group_history_command(CLI::App& group, Request& request, std::int64_t now_ms);

}  // namespace tide::tidectl
