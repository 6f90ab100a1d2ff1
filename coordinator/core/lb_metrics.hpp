// The load balancer's metrics (docs/policies.md, "Metrics"): what users feel,
// from the servers tide placed in HAProxy. The shell samples HAProxy's
// per-server counters every second (LbTrafficSample); LbRates turns each
// sample into per-instance values — request and 5xx rates from the
// differences of the totals, the queue, open sessions and response time as
// they are — that the shell records into the same per-group windows as the
// agents' metrics (MetricWindows), for the instances whose metrics count
// (metrics_eligible, and in rotation).
//
// Pure: the sample and its time come in, nothing here reads a clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "coordinator/core/events.hpp"
#include "coordinator/core/model.hpp"

namespace tide::coordinator {

// Metric names (policies name them like any other metric).
inline constexpr std::string_view kMetricRequestsPerInstance = "requests_per_instance";  // requests/s
inline constexpr std::string_view kMetricResponseTime = "response_time_ms";  // HAProxy's mean, ms
inline constexpr std::string_view kMetricQueue = "queue";                    // requests waiting for the server
inline constexpr std::string_view kMetricHttp5xxRate = "http_5xx_rate";      // 5xx responses/s
inline constexpr std::string_view kMetricSessionsPerInstance = "sessions_per_instance";  // open connections

// True for the metrics that come from the load balancer rather than from
// the agents.
[[nodiscard]] bool is_load_balancer_metric(std::string_view metric);

struct LbInstanceValues {
  std::string instance_id;
  double requests_per_s = 0.0;
  double errors_5xx_per_s = 0.0;
  // HAProxy's average over the server's last 1,024 requests; only given when
  // the server answered requests since the previous sample (a stale average
  // of an idle server is not a response time).
  std::optional<double> response_time_ms;
  double queue = 0.0;
  double sessions = 0.0;
};

class LbRates {
 public:
  // Samples closer together than this give no rates (too noisy); the
  // instance keeps its previous baseline.
  static constexpr TimeMs kMinIntervalMs = 200;

  // One sample at `now_ms`: the values of every server sampled before whose
  // counters did not go down. A server seen for the first time, or whose
  // counters went down (HAProxy reloaded and counts from zero), is only a
  // baseline this time. Servers absent from the sample are forgotten.
  [[nodiscard]] std::vector<LbInstanceValues> update(const std::vector<InstanceTraffic>& servers, TimeMs now_ms);

 private:
  struct Baseline {
    std::uint64_t requests = 0;
    std::uint64_t errors_5xx = 0;
    TimeMs at_ms = 0;
  };
  std::unordered_map<std::string, Baseline> m_last;
};

}  // namespace tide::coordinator
