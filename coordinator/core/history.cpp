#include "coordinator/core/history.hpp"

#include <algorithm>
#include <cassert>
#include <functional>
#include <limits>
#include <set>
#include <utility>

#include "coordinator/core/duration.hpp"
#include "coordinator/core/lifecycle.hpp"
#include "coordinator/core/policy_model.hpp"

namespace tide::coordinator {

namespace {

// Launched and on its way into service; the states a chart shows as
// "pending" next to in_service.
bool is_launching(LifecycleState state) {
  switch (state) {
    case LifecycleState::Pending:
    case LifecycleState::Booting:
    case LifecycleState::PendingLaunchHook:
    case LifecycleState::Warming:
      return true;
    case LifecycleState::InService:
    case LifecycleState::OutOfRotation:
    case LifecycleState::Draining:
    case LifecycleState::PendingTerminateHook:
    case LifecycleState::Terminating:
    case LifecycleState::Terminated:
    case LifecycleState::LaunchFailed:
    case LifecycleState::Detached:
      return false;
  }
  return false;
}

// How many buckets of `step_ms` [since_ms, until_ms] touches.
std::int64_t bucket_count(TimeMs since_ms, TimeMs until_ms, std::int64_t step_ms) {
  return (history_bucket(until_ms, step_ms) - history_bucket(since_ms, step_ms)) / step_ms + 1;
}

}  // namespace

HistorySample sample_group(const HistorySource& source, const MetricWindows& windows, TimeMs now_ms,
                           const HistoryWindows& spans) {
  assert(source.group != nullptr);
  const ScalingGroup& group = *source.group;
  HistorySample sample;
  sample.t_ms = now_ms;
  sample.min = group.min;
  sample.max = group.max;
  sample.desired = group.desired;
  for (const Instance* instance : source.instances) {
    if (is_terminal(instance->state)) continue;
    if (instance->state == LifecycleState::InService) ++sample.in_service;
    if (is_launching(instance->state)) ++sample.pending;
    // Before its agent's first report an instance's health is unknown, not
    // healthy: /metrics counts it the same way.
    if (instance->health == Health::Healthy && instance->runtime.ready.has_value())
      ++sample.healthy;
    if (instance->runtime.in_lb) ++sample.in_lb;
  }
  for (const std::string& series : windows.metrics_of(group.name)) {
    // A query's values are taken below, under the name a policy gives them.
    if (is_query_series(series)) continue;
    if (const auto stats =
            windows.stats(group.name, series, now_ms - spans.metric_window_ms, now_ms)) {
      sample.metrics[series] = HistoryValue{stats->average, 1};
    }
  }
  for (const PolicyMetric& policy : source.policy_metrics) {
    // Without a query the policy's series is the metric's own, taken above.
    if (policy.query.empty()) continue;
    const std::string series = metric_series(policy.metric, policy.query);
    if (const auto stats =
            windows.stats(group.name, series, now_ms - spans.query_window_ms, now_ms)) {
      sample.metrics[policy.metric] = HistoryValue{stats->average, 1};
    }
  }
  return sample;
}

std::vector<GroupHistorySample> sample_groups(std::span<const HistorySource> sources,
                                              const MetricWindows& windows, TimeMs now_ms,
                                              const HistoryWindows& spans) {
  std::vector<GroupHistorySample> out;
  out.reserve(sources.size());
  for (const HistorySource& source : sources) {
    out.push_back(
        GroupHistorySample{source.group->name, sample_group(source, windows, now_ms, spans)});
  }
  return out;
}

TimeMs HistoryRange::first_ms() const {
  return history_bucket(since_ms, step_ms);
}

TimeMs HistoryRange::end_ms() const {
  return history_bucket(until_ms, step_ms) + step_ms;
}

TimeMs history_bucket(TimeMs t_ms, std::int64_t step_ms) {
  assert(step_ms > 0);
  const TimeMs q = t_ms / step_ms;
  return (t_ms % step_ms != 0 && t_ms < 0 ? q - 1 : q) * step_ms;
}

std::int64_t default_history_step(TimeMs since_ms, TimeMs until_ms) {
  const std::int64_t span = std::max<std::int64_t>(0, until_ms - since_ms);
  const std::int64_t per_step = kHistoryDefaultPoints * kHistoryIntervalMs;
  std::int64_t step =
      std::max<std::int64_t>(1, (span + per_step - 1) / per_step) * kHistoryIntervalMs;
  // The buckets are aligned, so a span of exactly N steps can touch N + 1 of
  // them; one or two larger steps always do.
  while (bucket_count(since_ms, until_ms, step) > kHistoryDefaultPoints) step += kHistoryIntervalMs;
  return step;
}

tl::expected<HistoryRange, HistoryError> history_range(TimeMs since_ms, TimeMs until_ms,
                                                       std::optional<std::int64_t> step_ms) {
  if (since_ms > until_ms) {
    return tl::make_unexpected(HistoryError{"since: must not be after until", "since"});
  }
  HistoryRange range{since_ms, until_ms, kHistoryIntervalMs};
  if (!step_ms) {
    range.step_ms = default_history_step(since_ms, until_ms);
    return range;
  }
  if (*step_ms <= 0 || *step_ms % kHistoryIntervalMs != 0) {
    return tl::make_unexpected(
        HistoryError{"step: must be a positive multiple of " + typed_duration(kHistoryIntervalMs) +
                         " (got " + typed_duration(std::max<std::int64_t>(0, *step_ms)) + ")",
                     "step"});
  }
  range.step_ms = *step_ms;
  if (const std::int64_t buckets = bucket_count(since_ms, until_ms, range.step_ms);
      buckets > kHistoryMaxPoints) {
    return tl::make_unexpected(
        HistoryError{"step: " + typed_duration(range.step_ms) + " makes " +
                         std::to_string(buckets) + " points in this range, more than " +
                         std::to_string(kHistoryMaxPoints) + "; take a larger step",
                     "step"});
  }
  return range;
}

std::vector<HistorySample> downsample(std::vector<HistorySample> samples,
                                      const HistoryRange& range) {
  assert(std::is_sorted(
      samples.begin(), samples.end(),
      [](const HistorySample& a, const HistorySample& b) { return a.t_ms < b.t_ms; }));
  const TimeMs first = range.first_ms();
  const TimeMs end = range.end_ms();
  const auto in_range = [&](const HistorySample& sample) {
    return sample.t_ms >= first && sample.t_ms < end;
  };
  // In place: the points overwrite the samples they are made of. A bucket
  // of one sample (the store's rows at their own resolution) is moved as it
  // is, without touching its metrics.
  std::size_t written = 0;
  std::size_t next = 0;
  while (next < samples.size()) {
    if (!in_range(samples[next])) {
      ++next;
      continue;
    }
    const TimeMs bucket = history_bucket(samples[next].t_ms, range.step_ms);
    std::size_t last = next + 1;
    while (last < samples.size() && in_range(samples[last]) &&
           history_bucket(samples[last].t_ms, range.step_ms) == bucket) {
      ++last;
    }
    HistorySample point = std::move(samples[next]);
    std::erase_if(point.metrics, [](const auto& entry) { return entry.second.samples == 0; });
    if (last - next > 1) {
      // Sums while the bucket is read, means at its end.
      for (auto& [name, value] : point.metrics) value.mean *= static_cast<double>(value.samples);
      for (std::size_t k = next + 1; k < last; ++k) {
        const HistorySample& sample = samples[k];
        // The capacity a bucket ends with: what the chart's step line shows next.
        point.min = sample.min;
        point.max = sample.max;
        point.desired = sample.desired;
        point.in_service = sample.in_service;
        point.pending = sample.pending;
        point.healthy = sample.healthy;
        point.in_lb = sample.in_lb;
        for (const auto& [name, value] : sample.metrics) {
          if (value.samples == 0) continue;
          HistoryValue& sum = point.metrics.try_emplace(name, HistoryValue{0.0, 0}).first->second;
          sum.mean += value.mean * static_cast<double>(value.samples);
          sum.samples += value.samples;
        }
      }
      for (auto& [name, value] : point.metrics) value.mean /= static_cast<double>(value.samples);
    }
    point.t_ms = bucket;
    samples[written++] = std::move(point);
    next = last;
  }
  samples.resize(written);
  return samples;
}

bool MetricSelection::keeps(std::string_view name) const {
  return all || std::binary_search(names.begin(), names.end(), name, std::less<>());
}

MetricSelection select_metrics(std::string_view comma_separated) {
  MetricSelection selection{false, {}};
  while (!comma_separated.empty()) {
    const std::size_t comma = comma_separated.find(',');
    const std::string_view name = comma_separated.substr(0, comma);
    if (!name.empty()) selection.names.emplace_back(name);
    if (comma == std::string_view::npos) break;
    comma_separated.remove_prefix(comma + 1);
  }
  std::sort(selection.names.begin(), selection.names.end());
  selection.names.erase(std::unique(selection.names.begin(), selection.names.end()),
                        selection.names.end());
  return selection;
}

std::vector<std::string> history_metric_names(std::span<const HistorySample> points) {
  std::set<std::string> names;
  for (const HistorySample& point : points) {
    for (const auto& [name, value] : point.metrics) names.insert(name);
  }
  return {names.begin(), names.end()};
}

std::vector<HistoryRead> history_reads(const HistoryRange& range, TimeMs rolled_until_ms) {
  const TimeMs first = range.first_ms();
  const TimeMs end = range.end_ms();
  std::vector<HistoryRead> reads;
  TimeMs raw_from = first;
  // A step of whole minutes has whole minutes in each bucket, so a minute's
  // rollup falls in one bucket as its samples would.
  if (range.step_ms % kHistoryRollupMs == 0) {
    const TimeMs rolled = std::clamp(history_bucket(rolled_until_ms, kHistoryRollupMs), first, end);
    if (rolled > first) reads.push_back(HistoryRead{HistoryTable::Minutes, first, rolled});
    raw_from = rolled;
  }
  if (raw_from < end) reads.push_back(HistoryRead{HistoryTable::Raw, raw_from, end});
  return reads;
}

std::vector<HistorySample> roll_up_minutes(std::vector<HistorySample> samples, TimeMs from_ms,
                                           TimeMs to_ms) {
  assert(from_ms % kHistoryRollupMs == 0 && to_ms % kHistoryRollupMs == 0);
  if (to_ms <= from_ms) return {};
  return downsample(std::move(samples), HistoryRange{from_ms, to_ms - 1, kHistoryRollupMs});
}

}  // namespace tide::coordinator
