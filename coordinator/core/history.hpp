// Per-group history (docs/api.md, "History"): every 10 s the shell takes one
// sample of each group — its capacity and the value of every metric its
// policies read or its instances report — and keeps them for a week in the
// store, for the web console's charts and `tidectl group history`.
//
// Pure: the fleet's groups and instances and the metric windows come in,
// samples come out; a range and a step come in, one point per step comes
// out. `now_ms` is passed in, nothing here reads a clock.
//
// Points are aligned: the bucket of a time t is [floor(t / step) * step,
// + step), so every group's points, and the points of two requests, share
// their times. A range [since_ms, until_ms] covers the buckets from the one
// holding since_ms to the one holding until_ms; each point stands for its
// whole bucket and carries the bucket's start as its t_ms.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/core/metrics.hpp"
#include "coordinator/core/model.hpp"

namespace tide::coordinator {

// One sample per group this often; every step is a multiple of it.
inline constexpr std::int64_t kHistoryIntervalMs = 10'000;
// The store also keeps one point per group and minute (the "minute rollup"):
// a chart with a step of a whole number of minutes reads six times fewer
// rows.
inline constexpr std::int64_t kHistoryRollupMs = 60'000;
inline constexpr std::int64_t kDefaultHistoryRetentionMs = 7 * 86'400'000LL;
// The default step keeps a range at most this many points (a chart's width).
inline constexpr std::int64_t kHistoryDefaultPoints = 720;
// A range and step that make more buckets than this (a week of raw samples)
// are refused: the answer would be too large to be of use.
inline constexpr std::int64_t kHistoryMaxPoints = 60'480;

// A metric's value in a sample or point: the mean of `samples` values.
// A raw sample holds one value per metric; a point holds the mean of the
// samples of its bucket that had the metric, and how many there were, so
// that points can be merged again without weighting a sparse minute like a
// full one.
struct HistoryValue {
  double mean = 0.0;
  std::uint32_t samples = 1;
  friend bool operator==(const HistoryValue&, const HistoryValue&) = default;
};

// A group at one moment (a raw sample), or a bucket of them (a point).
struct HistorySample {
  TimeMs t_ms = 0;
  std::uint32_t min = 0;
  std::uint32_t max = 0;
  std::uint32_t desired = 0;
  std::uint32_t in_service = 0;
  // Launched and not yet in service: pending, booting, held by a launch
  // hook, or warming up.
  std::uint32_t pending = 0;
  // Live instances whose agent has reported and that are healthy (what
  // /metrics counts as "healthy").
  std::uint32_t healthy = 0;
  std::uint32_t in_lb = 0;  // in the load balancer's rotation
  // By metric name (a policy's `metric`, or what the agents and the load
  // balancer report). A metric without data at that moment is absent, never
  // zero.
  std::map<std::string, HistoryValue> metrics;
  friend bool operator==(const HistorySample&, const HistorySample&) = default;
};

struct GroupHistorySample {
  std::string group;
  HistorySample sample;
  friend bool operator==(const GroupHistorySample&, const GroupHistorySample&) = default;
};

// A metric one of the group's policies reads: `metric` names it; with a
// `query` its values are that Prometheus query's (metric_series).
struct PolicyMetric {
  std::string metric;
  std::string query;
};

// What is sampled of one group.
struct HistorySource {
  const ScalingGroup* group = nullptr;
  std::vector<const Instance*> instances;
  std::vector<PolicyMetric> policy_metrics;
};

// Over how long a metric's samples are averaged into one value: the
// windows the agents and the load balancer feed (every second) over
// `metric_window_ms`, as /metrics does; a Prometheus query, asked less
// often, over `query_window_ms`.
struct HistoryWindows {
  std::int64_t metric_window_ms = kHistoryIntervalMs;
  std::int64_t query_window_ms = kHistoryIntervalMs;
};

// The sample of one group at `now_ms`: its capacity fields, the mean over
// the last metric window of every non-query series with samples (the
// built-in metrics, the load balancer's, custom ones), and every policy
// metric with data, under the policy's metric name.
[[nodiscard]] HistorySample sample_group(const HistorySource& source, const MetricWindows& windows,
                                         TimeMs now_ms, const HistoryWindows& spans = {});
[[nodiscard]] std::vector<GroupHistorySample> sample_groups(std::span<const HistorySource> sources,
                                                            const MetricWindows& windows,
                                                            TimeMs now_ms,
                                                            const HistoryWindows& spans = {});

// ---- ranges and downsampling ----------------------------------------------------------

struct HistoryRange {
  TimeMs since_ms = 0;
  TimeMs until_ms = 0;
  std::int64_t step_ms = kHistoryIntervalMs;
  // The time the buckets cover: [first_ms, end_ms).
  [[nodiscard]] TimeMs first_ms() const;
  [[nodiscard]] TimeMs end_ms() const;
};

struct HistoryError {
  std::string message;
  std::string field;  // "since" or "step": the request parameter at fault
};

// The start of the bucket of `t_ms` (floor, also before 1970).
[[nodiscard]] TimeMs history_bucket(TimeMs t_ms, std::int64_t step_ms);
// The smallest multiple of kHistoryIntervalMs for which [since, until] has
// at most kHistoryDefaultPoints buckets.
[[nodiscard]] std::int64_t default_history_step(TimeMs since_ms, TimeMs until_ms);
// Checks a requested range: since after until is refused ("since"); a step,
// when given, must be a positive multiple of kHistoryIntervalMs that makes
// at most kHistoryMaxPoints buckets ("step"); without one the default step
// applies.
[[nodiscard]] tl::expected<HistoryRange, HistoryError> history_range(
    TimeMs since_ms, TimeMs until_ms, std::optional<std::int64_t> step_ms);

// One point per bucket of `range` that holds samples, in time order: the
// capacity fields of the bucket's last sample, each metric's mean over the
// samples that have it (weighted by their HistoryValue::samples). A bucket
// without samples gives no point: the chart shows a gap. `samples` are
// sorted by t_ms (as the store returns them); those outside the range's
// buckets are ignored. Taken by value: the points are made in its place
// (pass an rvalue to spare the copy).
[[nodiscard]] std::vector<HistorySample> downsample(std::vector<HistorySample> samples,
                                                    const HistoryRange& range);

// Which metrics a read keeps: all of them, or only those named (none when
// `names` is empty). A chart that draws one metric need not read a dozen.
struct MetricSelection {
  bool all = true;
  std::vector<std::string> names;  // sorted, when !all
  [[nodiscard]] bool keeps(std::string_view name) const;
};
// "cpu,queue" -> those two; "" -> none.
[[nodiscard]] MetricSelection select_metrics(std::string_view comma_separated);

// The metric names that occur in `points`, sorted.
[[nodiscard]] std::vector<std::string> history_metric_names(std::span<const HistorySample> points);

// ---- where a range is read from ----------------------------------------------------------

enum class HistoryTable : std::uint8_t {
  Raw,      // one row per sample
  Minutes,  // one row per minute: downsample() of the minute's raw samples
};

// One read of the store: rows of `table` with from_ms <= t_ms < to_ms.
struct HistoryRead {
  HistoryTable table = HistoryTable::Raw;
  TimeMs from_ms = 0;
  TimeMs to_ms = 0;
  friend bool operator==(const HistoryRead&, const HistoryRead&) = default;
};

// The reads that give `range`'s points, in time order (their rows
// concatenated are sorted): the minute rollups where the step is a whole
// number of minutes and the minutes are rolled up (before `rolled_until_ms`),
// the raw samples for the rest.
[[nodiscard]] std::vector<HistoryRead> history_reads(const HistoryRange& range,
                                                     TimeMs rolled_until_ms);

// The minute rollups of [from_ms, to_ms) (whole minutes) from that span's
// raw samples of one group, sorted by t_ms: downsample() by minute.
[[nodiscard]] std::vector<HistorySample> roll_up_minutes(std::vector<HistorySample> samples,
                                                         TimeMs from_ms, TimeMs to_ms);

}  // namespace tide::coordinator
