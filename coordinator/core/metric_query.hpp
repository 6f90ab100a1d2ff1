// Prometheus as a metric source (docs/policies.md, "Prometheus"): what a
// query's answer means, and when a failing query is worth an activity.
//
// A policy with a `query` reads the value of that PromQL instant query
// (GET /api/v1/query). The shell polls every query the enabled policies read
// (Autoscaler::metric_queries), turns each answer into a value with
// query_value() and records it in the group's metric windows under
// metric_series(); an answer that is not one number records nothing, which
// is missing data: no alarm fires on it and no policy scales in.
//
// Pure: answers and times come in, nothing here does I/O or reads a clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/core/model.hpp"
#include "coordinator/core/scaling.hpp"

namespace tide::coordinator {

// The value of a Prometheus HTTP API answer (`http_status`, `body`) to an
// instant query: a scalar, or a vector of exactly one sample. Anything else
// is an error that says what came back and what to do about it (an empty
// vector: no series matched; several: aggregate them; a matrix: a range
// selector needs a function; NaN or ±Inf: not a number a policy can compare;
// Prometheus's own error: its type and message).
[[nodiscard]] tl::expected<double, std::string> query_value(long http_status, std::string_view body);

// What to put into the activity history about one query's health.
struct QueryNote {
  std::string group;
  bool ok = false;    // false: the query fails; true: it works again
  std::string cause;  // "Prometheus query of policy p (metric m) failed: ..."
};

// Follows each (group, query)'s outcomes and says when they deserve an
// activity: when a query starts failing, when its error changes (at most
// once per kRepeatMs), and when it works again after a failure was noted.
// A query failing every second must not flood the history.
class QueryHealth {
 public:
  static constexpr TimeMs kRepeatMs = 60'000;

  // One poll's outcome: `error` empty for a value.
  [[nodiscard]] std::optional<QueryNote> observe(const MetricQuery& query, std::string_view error, TimeMs now_ms);

  // The queries that are still polled; the others are forgotten.
  void keep_only(const std::vector<MetricQuery>& queries);

  // The query's last error, empty while it works (for the API and /metrics).
  [[nodiscard]] std::string_view last_error(std::string_view group, std::string_view query) const;

 private:
  struct State {
    std::string error;                    // empty: the last poll gave a value
    std::optional<TimeMs> noted_ms;       // when the last failure activity was noted
    std::string noted_error;              // its error
  };
  std::map<std::pair<std::string, std::string>, State, std::less<>> m_states;
};

}  // namespace tide::coordinator
