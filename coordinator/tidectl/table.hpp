// Plain-text tables for tidectl's default output.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tide::tidectl {

struct Column {
  std::string header;
  // Renders the cell for one row (a JSON object).
  std::function<std::string(const nlohmann::json& row)> cell;
};

// A column that shows the value under `key` (a "/"-separated path) as text.
[[nodiscard]] Column field(std::string header, std::string key);
// A column that shows how long ago the epoch-millisecond value under `key` was.
[[nodiscard]] Column age(std::string header, std::string key, std::int64_t now_ms);

// Prints rows under aligned headers; "(none)" when there are no rows.
void print_table(std::ostream& out, const std::vector<Column>& columns,
                 const nlohmann::json& rows);

// Prints one object as "key: value" lines, nested objects indented.
void print_object(std::ostream& out, const nlohmann::json& object, int indent = 0);

// "3d4h", "5m10s", "42s".
[[nodiscard]] std::string format_duration_ms(std::int64_t ms);

[[nodiscard]] std::string to_text(const nlohmann::json& value);

}  // namespace tide::tidectl
