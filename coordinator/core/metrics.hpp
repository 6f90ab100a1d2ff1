// Rolling per-group, per-metric windows of the load the agents report
// (docs/policies.md, "Metrics").
//
// The shell feeds one record() call per REPORT from an instance for which
// metrics_eligible() holds (in service, ready, healthy, past the group's
// warm-up); the scaling core (scaling.hpp) reads statistics over arbitrary
// windows [from_ms, to_ms).
//
// Storage: per (group, metric) a ring of one-second buckets (sum, count, min,
// max and how many instances last reported in that second). A statistic over a
// window costs O(seconds in the window) and never O(instances); memory is
// bounded by the retention (40 bytes per second per series, allocated on the
// first sample; 1 h = 144 KB per series). Samples older than the retention
// fall out as the ring wraps. Pure: `now_ms` is passed in, nothing here reads
// a clock.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "coordinator/core/model.hpp"
#include "coordinator/core/policy_model.hpp"

namespace tide::coordinator {

// One value of one REPORT: name is kMetricCpu etc. or a custom metric's name.
struct MetricSample {
  std::string_view name;
  double value = 0.0;
};

// True when `instance`'s metrics count for its group at `now_ms`: it is in
// service, its latest report says ready, it is healthy, and it has been in
// service for at least the group's warm-up (ScalingGroup::warmup_ms). Like AWS
// and Kubernetes, warming instances are left out: their start-up load would
// otherwise trigger scale-out. An instance that leaves service and comes back
// warms up again (state_since_ms restarts).
[[nodiscard]] bool metrics_eligible(const Instance& instance, const ScalingGroup& group, TimeMs now_ms);

// Statistics of the samples in one window. Every sample counts once (an
// instance that reports twice in a window counts twice in the average).
struct WindowStats {
  double average = 0.0;
  double minimum = 0.0;
  double maximum = 0.0;
  std::uint64_t samples = 0;  // >= 1: a window without samples has no stats
  [[nodiscard]] double value(Statistic statistic) const;
};

// Stats plus how many distinct instances reported this metric at or after
// the window's start (see MetricWindows::reporters_since).
struct Aggregate {
  WindowStats stats;
  std::uint32_t instances = 0;
};

class MetricWindows {
 public:
  static constexpr std::int64_t kDefaultRetentionMs = 3'600'000;

  // `retention_ms` (rounded up to whole seconds, at least 1 s): the longest
  // window that can be asked for. Older samples are dropped.
  explicit MetricWindows(std::int64_t retention_ms = kDefaultRetentionMs);
  ~MetricWindows();
  MetricWindows(MetricWindows&&) noexcept;
  MetricWindows& operator=(MetricWindows&&) noexcept;
  MetricWindows(const MetricWindows&) = delete;
  MetricWindows& operator=(const MetricWindows&) = delete;

  [[nodiscard]] std::int64_t retention_ms() const;

  // One REPORT's metrics from `instance_id` of `group`, received at `now_ms`.
  // Non-finite values and empty names are ignored; a sample older than the
  // retention (a clock step backwards) is dropped. The caller checks
  // metrics_eligible() first. Cost: a hash lookup for the group and the
  // instance, then O(1) per sample.
  void record(std::string_view group, std::string_view instance_id, TimeMs now_ms,
              std::span<const MetricSample> samples);

  // Stats of `metric` over [from_ms, to_ms) in one-second buckets: a bucket
  // [s, s + 1 s) counts when from_ms <= s < to_ms. nullopt when no sample
  // falls in the window (missing data, which is never "zero"), or the window
  // is empty or older than the retention.
  [[nodiscard]] std::optional<WindowStats> stats(std::string_view group, std::string_view metric, TimeMs from_ms,
                                                 TimeMs to_ms) const;

  // How many distinct instances reported `metric` in a bucket at or after
  // from_ms (rounded like stats()), counting each instance once at its latest
  // report. For a window that ends now this is exactly how many instances
  // contributed to it: compare it with the eligible count to tell complete
  // from incomplete data. Cost: O(seconds since from_ms).
  [[nodiscard]] std::uint32_t reporters_since(std::string_view group, std::string_view metric,
                                              TimeMs from_ms) const;

  // Start of the first second in which `metric` was ever recorded for
  // `group` (nullopt: never). An alarm needs data back to the start of its
  // evaluation span, so a fresh series cannot fire on a partial history.
  [[nodiscard]] std::optional<TimeMs> first_sample_ms(std::string_view group, std::string_view metric) const;

  // stats() and reporters_since(from_ms) together.
  [[nodiscard]] std::optional<Aggregate> aggregate(std::string_view group, std::string_view metric, TimeMs from_ms,
                                                   TimeMs to_ms) const;

  // The instance left the group (terminated, detached): forget its
  // bookkeeping. Its samples stay in the windows they belong to.
  void forget_instance(std::string_view group, std::string_view instance_id);
  // The group was deleted: drop all its windows.
  void remove_group(std::string_view group);

  // Metric names that have samples for `group` (for the API and docs).
  [[nodiscard]] std::vector<std::string> metrics_of(std::string_view group) const;

 private:
  struct GroupWindows;
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  [[nodiscard]] const GroupWindows* find_group(std::string_view group) const;

  std::int64_t m_retention_s;
  std::unordered_map<std::string, std::unique_ptr<GroupWindows>, StringHash, std::equal_to<>> m_groups;
};

}  // namespace tide::coordinator
