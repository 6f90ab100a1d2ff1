#include "coordinator/core/lb_metrics.hpp"

#include <utility>

namespace tide::coordinator {

bool is_load_balancer_metric(std::string_view metric) {
  return metric == kMetricRequestsPerInstance || metric == kMetricResponseTime || metric == kMetricQueue ||
         metric == kMetricHttp5xxRate || metric == kMetricSessionsPerInstance;
}

std::vector<LbInstanceValues> LbRates::update(const std::vector<InstanceTraffic>& servers, TimeMs now_ms) {
  std::vector<LbInstanceValues> out;
  out.reserve(servers.size());
  std::unordered_map<std::string, Baseline> next;
  next.reserve(servers.size());
  for (const InstanceTraffic& server : servers) {
    if (server.instance_id.empty()) continue;
    const Baseline current{server.cumulative.requests, server.cumulative.errors_5xx, now_ms};
    const auto previous = m_last.find(server.instance_id);
    if (previous == m_last.end()) {
      next.emplace(server.instance_id, current);
      continue;
    }
    const Baseline& last = previous->second;
    const TimeMs elapsed = now_ms - last.at_ms;
    if (current.requests < last.requests || current.errors_5xx < last.errors_5xx) {
      next.emplace(server.instance_id, current);  // counting from zero again: a baseline
      continue;
    }
    if (elapsed < kMinIntervalMs) {
      next.emplace(server.instance_id, last);  // too close: keep the older baseline
      continue;
    }
    const double seconds = static_cast<double>(elapsed) / 1000.0;
    LbInstanceValues values;
    values.instance_id = server.instance_id;
    values.requests_per_s = static_cast<double>(current.requests - last.requests) / seconds;
    values.errors_5xx_per_s = static_cast<double>(current.errors_5xx - last.errors_5xx) / seconds;
    if (current.requests > last.requests) values.response_time_ms = server.cumulative.mean_response_ms;
    values.queue = static_cast<double>(server.queue);
    values.sessions = static_cast<double>(server.sessions);
    out.push_back(std::move(values));
    next.emplace(server.instance_id, current);
  }
  m_last = std::move(next);
  return out;
}

}  // namespace tide::coordinator
