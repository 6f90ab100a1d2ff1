// tidectl cost [--group G] [--from TIME] [--to TIME]: instance-hours and cost
// over a period next to a fleet fixed at the period's peak (GET /v1/cost).
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <date/tz.h>

#include "coordinator/tidectl/client.hpp"
#include "coordinator/tidectl/commands.hpp"
#include "coordinator/tidectl/schedule_preview.hpp"
#include "coordinator/tidectl/table.hpp"

namespace tide::tidectl {

using nlohmann::json;

namespace {

std::string fixed(const json& value, int decimals) {
  if (!value.is_number()) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value.get<double>());
  return buffer;
}

Column number(std::string header, std::string key, int decimals) {
  return Column{std::move(header), [key = std::move(key), decimals](const json& row) {
                  return fixed(row.contains(key) ? row[key] : json(), decimals);
                }};
}

void render_cost(const json& body) {
  const std::int64_t from = body.value("from_ms", 0LL);
  const std::int64_t to = body.value("to_ms", 0LL);
  std::cout << "period: " << time_in_zone(from, "UTC") << " .. " << time_in_zone(to, "UTC") << " ("
            << fixed(body.value("period_hours", json()), 1) << " h)\n\n";
  const std::vector<Column> columns = {
      field("GROUP", "group"),           number("INSTANCE-HOURS", "instance_hours", 2),
      number("COST", "cost", 2),         field("PEAK", "peak_instances"),
      number("FIXED AT PEAK", "peak_fixed_cost", 2), number("SAVING", "saving", 2),
      Column{"SAVING %", [](const json& row) { return fixed(row.value("saving_pct", json()), 1) + " %"; }}};
  json rows = body.value("groups", json::array());
  if (rows.size() > 1 && body.contains("total")) {
    json total = body["total"];
    total["group"] = "(all)";
    rows.push_back(total);
  }
  print_table(std::cout, columns, rows);

  json lines = json::array();
  json attached = json::array();
  for (const auto& group : body.value("groups", json::array())) {
    for (auto line : group.value("launch_configurations", json::array())) {
      line["group"] = group.value("group", "");
      line["lc"] = line.value("launch_configuration", "") + " v" + to_text(line.value("version", json()));
      if (!line.value("price_known", true)) line["lc"] = line["lc"].get<std::string>() + " (deleted)";
      lines.push_back(line);
    }
    if (group.value("attached_instances", 0) > 0) attached.push_back(group);
  }
  if (!lines.empty()) {
    std::cout << "\nby launch configuration:\n";
    print_table(std::cout,
                {field("GROUP", "group"), field("LAUNCH CONFIG", "lc"), field("INSTANCES", "instances"),
                 number("INSTANCE-HOURS", "instance_hours", 2), number("PRICE/H", "hourly_price", 4),
                 number("COST", "cost", 2)},
                lines);
  }
  if (!attached.empty()) {
    std::cout << "\nattached servers (not launched by tide, not billed here):\n";
    for (auto& group : attached) group["attached_hours"] = group.value("attached_instance_seconds", 0.0) / 3600.0;
    print_table(std::cout,
                {field("GROUP", "group"), field("SERVERS", "attached_instances"), number("HOURS", "attached_hours", 2)},
                attached);
  }
}

// A time flag: ISO 8601 (UTC unless it carries an offset), epoch seconds,
// or "now".
std::int64_t time_flag(const std::string& flag, const std::string& text, std::int64_t now_ms) {
  if (text == "now") return now_ms;
  auto ms = parse_preview_time(text, *date::locate_zone("UTC"));
  if (!ms) throw CLI::ValidationError(flag, ms.error());
  return *ms;
}

}  // namespace

void add_cost_command(CLI::App& app, Request& request, std::int64_t now_ms) {
  static std::string group, from, to, last = "24h";
  auto* cost = app.add_subcommand("cost", "instance-hours and cost over a period, against a fleet fixed at the peak");
  cost->add_option("--group,-g", group, "only this group");
  cost->add_option("--from", from, "period start: ISO 8601 (UTC unless it has an offset) or epoch seconds; default: --last before --to");
  cost->add_option("--to", to, "period end (default now)");
  cost->add_option("--last", last, "period length when --from is not given (e.g. 7d, 12h)")->capture_default_str();
  cost->callback([&request, now_ms] {
    const std::int64_t until = to.empty() ? now_ms : time_flag("--to", to, now_ms);
    std::int64_t since = 0;
    if (from.empty()) {
      auto span = parse_duration_ms(last);
      if (!span) throw CLI::ValidationError("--last", span.error());
      since = until - *span;
    } else {
      since = time_flag("--from", from, now_ms);
    }
    if (since >= until) throw CLI::ValidationError("--from", "must be before --to");
    std::string path = "/v1/cost?from=" + std::to_string(since) + "&to=" + std::to_string(until);
    if (!group.empty()) path += "&group=" + url_encode(group);
    request = Request{"GET", path, std::nullopt, render_cost, nullptr};
  });
}

}  // namespace tide::tidectl
