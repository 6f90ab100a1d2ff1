// GET /v1/groups/{g}/history and GET /v1/history (docs/api.md, "History"):
// a group's samples, or every group's, over a range at a step. The ranges
// and the downsampling are the core's (coordinator/core/history.hpp); this
// reads the parameters, the clock and the store.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>

#include "coordinator/core/duration.hpp"
#include "coordinator/io/json/policy_json.hpp"
#include "coordinator/io/server/route_helpers.hpp"
#include "coordinator/io/server/server.hpp"
#include "coordinator/io/store/store.hpp"

namespace tide::coordinator {

namespace {

constexpr TimeMs kDefaultSinceMs = 3'600'000;

// `since` or `until`: a duration ago ("1h", "7d") or an RFC 3339 time;
// `fallback` when absent.
tl::expected<TimeMs, ApiResponse> point_param(const ApiRequest& request, const std::string& key,
                                              TimeMs now, TimeMs fallback) {
  const auto it = request.params.find(key);
  if (it == request.params.end() || it->second.empty()) return fallback;
  if (const auto ago = parse_duration(it->second)) return now - *ago;
  if (const auto at = parse_rfc3339(it->second)) return *at;
  return tl::make_unexpected(
      api_error(400,
                key + ": '" + it->second +
                    "' is neither a duration ago (1h, 24h, 7d) nor an RFC 3339 time "
                    "(2026-11-27T11:00:00+08:00)",
                key));
}

// `metrics`: the comma-separated names to answer with; absent: all.
MetricSelection metrics_param(const ApiRequest& request) {
  const auto it = request.params.find("metrics");
  return it == request.params.end() ? MetricSelection{} : select_metrics(it->second);
}

// since, until and step of a request, checked by the core.
tl::expected<HistoryRange, ApiResponse> range_params(const ApiRequest& request, TimeMs now) {
  auto until = point_param(request, "until", now, now);
  if (!until) return tl::make_unexpected(until.error());
  auto since = point_param(request, "since", now, now - kDefaultSinceMs);
  if (!since) return tl::make_unexpected(since.error());
  std::optional<std::int64_t> step;
  if (const auto it = request.params.find("step");
      it != request.params.end() && !it->second.empty()) {
    auto parsed = parse_duration(it->second);
    if (!parsed) return tl::make_unexpected(api_error(400, "step: " + parsed.error(), "step"));
    step = *parsed;
  }
  auto range = history_range(*since, *until, step);
  if (!range)
    return tl::make_unexpected(api_error(400, range.error().message, range.error().field));
  return *range;
}

// The answers are written as text, not built as nlohmann::json: the
// console's overview asks for every group's points at once (100 groups of
// 60 points is 6,000 objects), and a DOM of that costs more than the store's
// read. Names are group and metric ids (letters, digits and ._:-); anything
// else is escaped by nlohmann.
void append_string(std::string& out, const std::string& text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    return c >= 0x20 && c != '"' && c != '\\' && static_cast<unsigned char>(c) < 0x80;
  });
  if (plain) {
    out += '"';
    out += text;
    out += '"';
  } else {
    out += nlohmann::json(text).dump();
  }
}

void append_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  char buffer[32];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, error == std::errc() ? end : buffer);
}

void append_point(std::string& out, const HistorySample& point) {
  out += "{\"t_ms\":";
  out += std::to_string(point.t_ms);
  for (const auto& [key, value] :
       {std::pair{",\"min\":", point.min}, std::pair{",\"max\":", point.max},
        std::pair{",\"desired\":", point.desired}, std::pair{",\"in_service\":", point.in_service},
        std::pair{",\"pending\":", point.pending}, std::pair{",\"healthy\":", point.healthy},
        std::pair{",\"in_lb\":", point.in_lb}}) {
    out += key;
    out += std::to_string(value);
  }
  out += ",\"metrics\":{";
  bool first = true;
  for (const auto& [name, value] : point.metrics) {
    if (!first) out += ',';
    first = false;
    append_string(out, name);
    out += ':';
    append_number(out, value.mean);
  }
  out += "}}";
}

void append_points(std::string& out, const std::vector<HistorySample>& points) {
  out += '[';
  for (std::size_t k = 0; k < points.size(); ++k) {
    if (k != 0) out += ',';
    append_point(out, points[k]);
  }
  out += ']';
}

// `"step_s":60,"since_ms":...,"until_ms":...`
void append_range(std::string& out, const HistoryRange& range) {
  out += "\"step_s\":" + std::to_string(range.step_ms / 1'000) +
         ",\"since_ms\":" + std::to_string(range.since_ms) +
         ",\"until_ms\":" + std::to_string(range.until_ms);
}

ApiResponse json_text(std::string text) {
  ApiResponse response;
  response.text = std::move(text);
  return response;
}

}  // namespace

void Server::register_history_routes() {
  m_api->route("GET", R"(/v1/groups/([^/]+)/history)", [this](const ApiRequest& request) {
    const std::string& name = request.path_params.at(0);
    if (m_fleet->group(name) == nullptr) return api_error(404, "no group '" + name + "'");
    auto range = range_params(request, now_ms());
    if (!range) return range.error();
    auto rows = read_history(name, *range, metrics_param(request));
    if (!rows) return from_store_error(rows.error());
    const std::vector<HistorySample> points = downsample(std::move((*rows)[name]), *range);
    std::string out = "{\"group\":";
    append_string(out, name);
    out += ',';
    append_range(out, *range);
    out += ",\"samples\":";
    append_points(out, points);
    out += ",\"metrics\":[";
    const std::vector<std::string> metrics = history_metric_names(points);
    for (std::size_t k = 0; k < metrics.size(); ++k) {
      if (k != 0) out += ',';
      append_string(out, metrics[k]);
    }
    out += "]}";
    return json_text(std::move(out));
  });

  m_api->route("GET", "/v1/history", [this](const ApiRequest& request) {
    auto range = range_params(request, now_ms());
    if (!range) return range.error();
    auto rows = read_history("", *range, metrics_param(request));
    if (!rows) return from_store_error(rows.error());
    std::string out = "{";
    append_range(out, *range);
    out += ",\"groups\":{";
    // Every group, one without samples as an empty list: the overview draws
    // a line for each.
    bool first = true;
    for (const ScalingGroup* group : m_fleet->groups()) {
      if (!first) out += ',';
      first = false;
      append_string(out, group->name);
      out += ':';
      const auto it = rows->find(group->name);
      append_points(out, it == rows->end() ? std::vector<HistorySample>{}
                                           : downsample(std::move(it->second), *range));
    }
    out += "}}";
    return json_text(std::move(out));
  });
}

}  // namespace tide::coordinator
