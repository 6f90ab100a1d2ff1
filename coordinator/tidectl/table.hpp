// Plain-text tables for tidectl's default output.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace tide::tidectl {

struct Column {
  std::string header;
  // Renders the cell for one row (a JSON object).
  std::function<std::string(const nlohmann::json& row)> cell;
  // The row's key this column shows, if it shows one; `-o wide` adds a
  // column for every other scalar key of the rows.
  std::string key = {};
};

// `-o wide`: print_table also shows every scalar field no column shows.
void set_wide_tables(bool wide);

// A column that shows the value under `key` (a "/"-separated path) as text.
[[nodiscard]] Column field(std::string header, std::string key);
// A column that shows how long ago the epoch-millisecond value under `key` was.
[[nodiscard]] Column age(std::string header, std::string key, std::int64_t now_ms);

// Prints rows under aligned headers; "(none)" when there are no rows.
void print_table(std::ostream& out, const std::vector<Column>& columns,
                 const nlohmann::json& rows);

// Prints one object as "key: value" lines, nested objects indented. Epoch
// milliseconds ("created_ms") are shown as local RFC 3339 times ("created:
// 2026-12-06T15:01:02+08:00"), other "_ms" values as durations ("10s").

void print_object(std::ostream& out, const nlohmann::json& object, int indent = 0);

// Epoch milliseconds as a local RFC 3339 time with its offset (TZ applies):
// "2026-12-06T15:01:02+08:00"; "-" for 0 or less (never happened).
[[nodiscard]] std::string time_text(std::int64_t epoch_ms);

// A "<name>_ms" field for people: {"created", "2026-...+08:00"} for a time,
// {"cooldown", "5m"} for a duration.
[[nodiscard]] std::pair<std::string, std::string> readable_ms_field(const std::string& key, std::int64_t value);

// "3d4h", "5m10s", "42s".
[[nodiscard]] std::string format_duration_ms(std::int64_t ms);

[[nodiscard]] std::string to_text(const nlohmann::json& value);

}  // namespace tide::tidectl
