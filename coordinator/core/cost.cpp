#include "coordinator/core/cost.hpp"

#include <algorithm>
#include <map>
#include <tuple>

namespace tide::coordinator {

namespace {

constexpr double kMsPerHour = 3'600'000.0;

bool is_terminal(LifecycleState state) {
  switch (state) {
    case LifecycleState::Terminated:
    case LifecycleState::LaunchFailed:
    case LifecycleState::Detached: return true;
    case LifecycleState::Pending:
    case LifecycleState::Booting:
    case LifecycleState::PendingLaunchHook:
    case LifecycleState::Warming:
    case LifecycleState::InService:
    case LifecycleState::OutOfRotation:
    case LifecycleState::Draining:
    case LifecycleState::PendingTerminateHook:
    case LifecycleState::Terminating: return false;
  }
  return false;
}

// One instance starting (+1) or stopping (-1) at `at_ms`, with its price.
struct Edge {
  TimeMs at_ms = 0;
  int delta = 0;
  double price = 0.0;
};

// The most instances, and the highest hourly rate, running at one moment.
// Intervals are half-open: an instance that stops at t and one that starts
// at t never overlap, so stops sort first.
std::pair<std::uint32_t, double> sweep_peak(std::vector<Edge> edges) {
  std::sort(edges.begin(), edges.end(),
            [](const Edge& a, const Edge& b) { return std::tie(a.at_ms, a.delta) < std::tie(b.at_ms, b.delta); });
  std::int64_t running = 0;
  std::int64_t peak = 0;
  double rate = 0.0;
  double peak_rate = 0.0;
  for (const Edge& edge : edges) {
    running += edge.delta;
    rate += edge.delta > 0 ? edge.price : -edge.price;
    peak = std::max(peak, running);
    peak_rate = std::max(peak_rate, rate);
  }
  return {static_cast<std::uint32_t>(peak), peak_rate};
}

void finish(CostSummary& summary, std::vector<Edge> edges, double period_hours) {
  summary.instance_hours = summary.instance_seconds / 3600.0;
  const auto [peak, peak_rate] = sweep_peak(std::move(edges));
  summary.peak_instances = peak;
  summary.peak_hourly_rate = peak_rate;
  summary.peak_fixed_cost = peak_rate * period_hours;
  summary.saving = summary.peak_fixed_cost - summary.cost;
  summary.saving_pct = summary.peak_fixed_cost > 0.0 ? summary.saving / summary.peak_fixed_cost * 100.0 : 0.0;
}

}  // namespace

std::optional<BilledInterval> billed_interval(const Instance& instance, TimeMs from_ms, TimeMs to_ms) {
  TimeMs start = instance.origin == InstanceOrigin::Launched && instance.launched_ms > 0 ? instance.launched_ms
                                                                                        : instance.created_ms;
  if (instance.origin == InstanceOrigin::Launched && instance.launched_ms == 0) {
    // The provider never confirmed a launch: a pending row has not started
    // yet and a failed launch never ran. Any later state means it did run
    // (a row from before launched_ms was recorded), from its creation.
    if (instance.state == LifecycleState::Pending || instance.state == LifecycleState::LaunchFailed) {
      return std::nullopt;
    }
  }
  const TimeMs end = is_terminal(instance.state) ? instance.state_since_ms : to_ms;
  start = std::max(start, from_ms);
  const TimeMs clipped_end = std::min(end, to_ms);
  if (clipped_end <= start) return std::nullopt;
  return BilledInterval{start, clipped_end};
}

tl::expected<CostReport, CostError> compute_cost(const std::vector<Instance>& instances,
                                                 const std::vector<LaunchConfiguration>& configs,
                                                 TimeMs from_ms, TimeMs to_ms, const std::optional<std::string>& group) {
  if (to_ms <= from_ms) return tl::make_unexpected(CostError{"the period is empty: 'to' must be after 'from'"});
  std::map<std::pair<std::string, std::uint32_t>, const LaunchConfiguration*> by_version;
  for (const auto& config : configs) by_version[{config.id, config.version}] = &config;

  CostReport report;
  report.from_ms = from_ms;
  report.to_ms = to_ms;
  report.total.group = "";
  const double period_hours = static_cast<double>(to_ms - from_ms) / kMsPerHour;

  std::map<std::string, CostSummary> groups;
  std::map<std::string, std::map<std::pair<std::string, std::uint32_t>, CostLine>> lines;
  std::map<std::string, std::vector<Edge>> group_edges;
  std::vector<Edge> all_edges;

  for (const Instance& instance : instances) {
    if (group && instance.group != *group) continue;
    const auto interval = billed_interval(instance, from_ms, to_ms);
    if (!interval) continue;
    const double seconds = static_cast<double>(interval->end_ms - interval->start_ms) / 1000.0;
    CostSummary& summary = groups[instance.group];
    summary.group = instance.group;
    if (instance.origin == InstanceOrigin::Attached) {
      ++summary.attached_instances;
      summary.attached_instance_seconds += seconds;
      ++report.total.attached_instances;
      report.total.attached_instance_seconds += seconds;
      continue;
    }
    const auto key = std::pair{instance.launch_configuration_id, instance.launch_configuration_version};
    CostLine& line = lines[instance.group][key];
    if (line.instances == 0) {
      line.launch_configuration_id = key.first;
      line.launch_configuration_version = key.second;
      const auto config = by_version.find(key);
      line.price_known = config != by_version.end();
      line.hourly_price = line.price_known ? config->second->hourly_price : 0.0;
    }
    const double cost = seconds / 3600.0 * line.hourly_price;
    ++line.instances;
    line.instance_seconds += seconds;
    line.cost += cost;
    for (CostSummary* s : {&summary, &report.total}) {
      ++s->instances;
      s->instance_seconds += seconds;
      s->cost += cost;
    }
    for (auto* edges : {&group_edges[instance.group], &all_edges}) {
      edges->push_back(Edge{interval->start_ms, +1, line.hourly_price});
      edges->push_back(Edge{interval->end_ms, -1, line.hourly_price});
    }
  }

  for (auto& [name, summary] : groups) {
    for (auto& [key, line] : lines[name]) {
      line.instance_hours = line.instance_seconds / 3600.0;
      summary.by_launch_configuration.push_back(line);
    }
    finish(summary, std::move(group_edges[name]), period_hours);
    report.groups.push_back(std::move(summary));
  }
  finish(report.total, std::move(all_edges), period_hours);
  return report;
}

}  // namespace tide::coordinator
