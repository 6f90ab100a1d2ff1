#include "coordinator/tidectl/table.hpp"

#include <algorithm>
#include <ctime>
#include <set>

#include "coordinator/core/duration.hpp"

namespace tide::tidectl {

std::string to_text(const nlohmann::json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_number_float()) {
    const double number = value.get<double>();
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.2f", number);
    return buffer;
  }
  return value.dump();
}

namespace {

const nlohmann::json& lookup(const nlohmann::json& row, const std::string& key) {
  static const nlohmann::json kNull;
  const nlohmann::json* node = &row;
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t slash = key.find('/', start);
    const std::string part =
        key.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!node->is_object() || !node->contains(part)) return kNull;
    node = &(*node)[part];
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return *node;
}

}  // namespace

Column field(std::string header, std::string key) {
  return Column{std::move(header), [key](const nlohmann::json& row) { return to_text(lookup(row, key)); }, key};
}

namespace {
bool g_wide = false;
}  // namespace

void set_wide_tables(bool wide) { g_wide = wide; }

std::string time_text(std::int64_t epoch_ms) {
  if (epoch_ms <= 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(epoch_ms / 1'000);
  std::tm local{};
  localtime_r(&seconds, &local);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &local);
  // tm_gmtoff is within a day; two digits each for hours and minutes.
  const int offset_min = static_cast<int>(local.tm_gmtoff / 60);
  const int magnitude = offset_min < 0 ? -offset_min : offset_min;
  char zone[16];
  std::snprintf(zone, sizeof zone, "%c%02d:%02d", offset_min < 0 ? '-' : '+', magnitude / 60 % 100, magnitude % 60);
  return std::string(buffer) + zone;
}

std::pair<std::string, std::string> readable_ms_field(const std::string& key, std::int64_t value) {
  // Fields that hold a point in time; anything else ending in _ms is a span.
  // A value past 2001 in epoch ms is a time whatever its name.
  static const std::set<std::string> kTimes{"created", "updated", "launched", "state_since", "start", "end",
                                            "next_fire", "last_fired", "finished", "batch_started", "at", "from",
                                            "to", "since", "until", "deadline", "last_seen", "started"};
  const std::string stem = key.ends_with("_ms") ? key.substr(0, key.size() - 3) : key;
  if (kTimes.contains(stem) || value >= 1'000'000'000'000) return {stem, time_text(value)};
  return {stem, coordinator::typed_duration(std::max<std::int64_t>(value, 0))};
}

std::string format_duration_ms(std::int64_t ms) {
  if (ms < 0) ms = 0;
  std::int64_t s = ms / 1000;
  const std::int64_t d = s / 86400;
  s %= 86400;
  const std::int64_t h = s / 3600;
  s %= 3600;
  const std::int64_t m = s / 60;
  s %= 60;
  if (d > 0) return std::to_string(d) + "d" + std::to_string(h) + "h";
  if (h > 0) return std::to_string(h) + "h" + std::to_string(m) + "m";
  if (m > 0) return std::to_string(m) + "m" + std::to_string(s) + "s";
  return std::to_string(s) + "s";
}

Column age(std::string header, std::string key, std::int64_t now_ms) {
  return Column{std::move(header), [key = std::move(key), now_ms](const nlohmann::json& row) {
                  const auto& value = lookup(row, key);
                  if (!value.is_number() || value.get<std::int64_t>() <= 0) return std::string("-");
                  return format_duration_ms(now_ms - value.get<std::int64_t>());
                }};
}

void print_table(std::ostream& out, const std::vector<Column>& columns, const nlohmann::json& rows) {
  if (!rows.is_array() || rows.empty()) {
    out << "(none)\n";
    return;
  }
  std::vector<Column> shown = columns;
  if (g_wide) {
    std::set<std::string> keys;
    for (const auto& column : columns) keys.insert(column.key);
    for (const auto& row : rows) {
      if (!row.is_object()) continue;
      for (const auto& [key, value] : row.items()) {
        if (value.is_structured() || !keys.insert(key).second) continue;
        std::string header = key.ends_with("_ms") ? key.substr(0, key.size() - 3) : key;
        std::transform(header.begin(), header.end(), header.begin(),
                       [](char c) { return c == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))); });
        shown.push_back(Column{header, [key = key](const nlohmann::json& r) {
                                 const auto& v = lookup(r, key);
                                 if (key.ends_with("_ms") && v.is_number_integer()) {
                                   return readable_ms_field(key, v.get<std::int64_t>()).second;
                                 }
                                 return to_text(v);
                               },
                               key});
      }
    }
  }
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> widths;
  for (const auto& column : shown) widths.push_back(column.header.size());
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < shown.size(); ++i) {
      line.push_back(shown[i].cell(row));
      widths[i] = std::max(widths[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  const auto print_line = [&](const std::vector<std::string>& line) {
    for (std::size_t i = 0; i < line.size(); ++i) {
      out << line[i];
      if (i + 1 < line.size()) out << std::string(widths[i] - line[i].size() + 2, ' ');
    }
    out << '\n';
  };
  std::vector<std::string> headers;
  for (const auto& column : shown) headers.push_back(column.header);
  print_line(headers);
  for (const auto& line : cells) print_line(line);
}

void print_object(std::ostream& out, const nlohmann::json& object, int indent) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  if (!object.is_object()) {
    out << pad << to_text(object) << '\n';
    return;
  }
  for (const auto& [key, value] : object.items()) {
    if (value.is_object() && !value.empty()) {
      out << pad << key << ":\n";
      print_object(out, value, indent + 2);
    } else if (value.is_array() && !value.empty() && value.front().is_object()) {
      out << pad << key << ":\n";
      for (const auto& item : value) {
        print_object(out, item, indent + 4);
        out << '\n';
      }
    } else if (value.is_array()) {
      std::string joined;
      for (const auto& item : value) joined += (joined.empty() ? "" : ", ") + to_text(item);
      out << pad << key << ": " << (joined.empty() ? "-" : joined) << '\n';
    } else if (key.ends_with("_ms") && value.is_number_integer()) {
      const auto [name, text] = readable_ms_field(key, value.get<std::int64_t>());
      out << pad << name << ": " << text << '\n';
    } else {
      out << pad << key << ": " << to_text(value) << '\n';
    }
  }
}

}  // namespace tide::tidectl
