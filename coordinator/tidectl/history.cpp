// tidectl group history GROUP [--since 24h] [--until TIME] [--step 5m]: a
// group's capacity and metrics over time (GET /v1/groups/{g}/history), one
// line per step in local time.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "coordinator/core/notification.hpp"
#include "coordinator/tidectl/client.hpp"
#include "coordinator/tidectl/commands.hpp"
#include "coordinator/tidectl/table.hpp"

namespace tide::tidectl {

using nlohmann::json;

namespace {

// A metric's value the way a column shows it: six significant digits.
std::string metric_text(const json& value) {
  if (!value.is_number()) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", value.get<double>());
  return buffer;
}

void render_history(const json& body) {
  std::cout << "group " << body.value("group", "") << ", every "
            << duration_text(body.value("step_s", 0LL) * 1'000) << ", "
            << time_text(body.value("since_ms", 0LL)) << " .. "
            << time_text(body.value("until_ms", 0LL)) << "\n\n";
  std::vector<Column> columns{
      Column{"TIME", [](const json& row) { return time_text(row.value("t_ms", std::int64_t{0})); },
             "t_ms"},
      field("MIN", "min"),
      field("DESIRED", "desired"),
      field("MAX", "max"),
      field("IN SERVICE", "in_service"),
      field("PENDING", "pending"),
      field("HEALTHY", "healthy"),
      field("IN LB", "in_lb")};
  for (const auto& name : body.value("metrics", json::array())) {
    if (!name.is_string()) continue;
    columns.push_back(Column{
        name.get<std::string>(), [metric = name.get<std::string>()](const json& row) {
          const json& metrics = row.contains("metrics") ? row["metrics"] : json();
          return metric_text(metrics.is_object() && metrics.contains(metric) ? metrics[metric]
                                                                             : json());
        }});
  }
  print_table(std::cout, columns, body.value("samples", json::array()));
}

// --since and --until as the API takes them: a duration ago goes as typed
// (the coordinator's clock decides what "ago" is), a time as RFC 3339.
std::string point_param(const std::string& flag, const std::string& text, std::int64_t now_ms) {
  if (coordinator::parse_duration(text)) return text;
  const auto at = parse_point_in_time(text, now_ms);
  if (!at) throw CLI::ValidationError(flag, at.error());
  return coordinator::format_rfc3339_utc(*at);
}

}  // namespace

void add_group_history_command(CLI::App& group, Request& request, std::int64_t now_ms) {
  static std::string name, since = "24h", until, step;
  auto* history = group.add_subcommand(
      "history", "a group's capacity and metrics over time, one line per step");
  history->add_option("group", name)->required();
  history
      ->add_option(
          "--since", since,
          "from: a duration ago (1h, 7d) or a time (2026-12-06T11:00, local unless it ends in Z or "
          "+08:00)")
      ->capture_default_str();
  history->add_option("--until", until, "to: a duration ago or a time (default now)");
  history->add_option(
      "--step", step,
      "one line per step, a multiple of 10s (default: the smallest that gives at most 720 lines)");
  history->callback([&request, now_ms] {
    std::string path = "/v1/groups/" + url_encode(name) +
                       "/history?since=" + url_encode(point_param("--since", since, now_ms));
    if (!until.empty()) path += "&until=" + url_encode(point_param("--until", until, now_ms));
    if (!step.empty()) {
      const auto ms = parse_duration_ms(step);
      if (!ms) throw CLI::ValidationError("--step", ms.error());
      path += "&step=" + coordinator::typed_duration(*ms);
    }
    request = Request{"GET", path, std::nullopt, render_history, nullptr};
  });
}

}  // namespace tide::tidectl
