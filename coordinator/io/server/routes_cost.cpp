// GET /v1/cost?from=<ms>&to=<ms>[&group=G] (docs/api.md, "Cost"): instance-
// hours and cost per group and launch configuration over a period, next to
// what a fleet fixed at the period's peak would have cost. The arithmetic is
// the core's (coordinator/core/cost.hpp); this reads the rows and the clock.
#include <charconv>
#include <cstdlib>

#include "coordinator/core/cost.hpp"
#include "coordinator/io/server/server.hpp"
#include "coordinator/io/store/store.hpp"

namespace tide::coordinator {

using nlohmann::json;

namespace {

constexpr TimeMs kDefaultPeriodMs = 24 * 3'600'000LL;

json summary_json(const CostSummary& s) {
  json body{{"instances", s.instances},
            {"instance_seconds", s.instance_seconds},
            {"instance_hours", s.instance_hours},
            {"cost", s.cost},
            {"peak_instances", s.peak_instances},
            {"peak_hourly_rate", s.peak_hourly_rate},
            {"peak_fixed_cost", s.peak_fixed_cost},
            {"saving", s.saving},
            {"saving_pct", s.saving_pct},
            {"attached_instances", s.attached_instances},
            {"attached_instance_seconds", s.attached_instance_seconds}};
  if (!s.group.empty()) {
    body["group"] = s.group;
    json lines = json::array();
    for (const CostLine& line : s.by_launch_configuration) {
      lines.push_back({{"launch_configuration", line.launch_configuration_id},
                       {"version", line.launch_configuration_version},
                       {"hourly_price", line.hourly_price},
                       {"price_known", line.price_known},
                       {"instances", line.instances},
                       {"instance_seconds", line.instance_seconds},
                       {"instance_hours", line.instance_hours},
                       {"cost", line.cost}});
    }
    body["launch_configurations"] = lines;
  }
  return body;
}

// An epoch-millisecond query parameter; nullopt when absent.
tl::expected<std::optional<TimeMs>, ApiResponse> time_param(const ApiRequest& request, const char* key) {
  const auto it = request.params.find(key);
  if (it == request.params.end() || it->second.empty()) return std::optional<TimeMs>{};
  // Up to the end of year 9999 UTC: a number that overflows, or a time no
  // record can have, is a mistake, not a time.
  constexpr TimeMs kLatest = 253'402'300'799'999;
  TimeMs value = 0;
  const std::string& text = it->second;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0 || value > kLatest) {
    return tl::make_unexpected(api_error(
        400, std::string(key) + ": epoch milliseconds from 0 to " + std::to_string(kLatest) + ", got '" + text + "'",
        key));
  }
  return std::optional<TimeMs>{value};
}

}  // namespace

void Server::register_cost_routes() {
  m_api->route("GET", "/v1/cost", [this](const ApiRequest& request) {
    auto from = time_param(request, "from");
    if (!from) return from.error();
    auto to = time_param(request, "to");
    if (!to) return to.error();
    const TimeMs until = to->value_or(now_ms());
    const TimeMs since = from->value_or(until - kDefaultPeriodMs);
    std::optional<std::string> group;
    if (const auto it = request.params.find("group"); it != request.params.end() && !it->second.empty()) {
      if (m_fleet->group(it->second) == nullptr) return api_error(404, "no group '" + it->second + "'");
      group = it->second;
    }
    auto instances = m_store->list_instances();
    if (!instances) return api_error(500, instances.error().message);
    auto configs = m_store->list_launch_configurations();
    if (!configs) return api_error(500, configs.error().message);
    auto report = compute_cost(*instances, *configs, since, until, group);
    if (!report) return api_error(400, "from: " + report.error().message, "from");
    json groups = json::array();
    for (const CostSummary& summary : report->groups) groups.push_back(summary_json(summary));
    ApiResponse response;
    response.body = json{{"from_ms", report->from_ms},
                         {"to_ms", report->to_ms},
                         {"period_hours", static_cast<double>(report->to_ms - report->from_ms) / 3'600'000.0},
                         {"groups", groups},
                         {"total", summary_json(report->total)}};
    return response;
  });
}

}  // namespace tide::coordinator
