// bench_decision: cost of the scaling decision core at the scale
// (100 groups x 2,000 instances; target: one evaluation <= 5 ms).
//
// 1. Ingest: every instance sends one REPORT per simulated second (the six
//    built-in metrics) for --seconds; prints the cost per REPORT.
// 2. Evaluate: each group has one alarm policy (cpu average > 80 for 2 x 5 s)
//    and one target-tracking policy (cpu 50, 60 s window); Autoscaler::
//    evaluate() over all groups is timed --runs times (p50, p99, max). A
//    third of the groups run hot so alarms fire and causes are built.
// 3. group_status(): counting in-service/eligible instances of 2,000
//    Instance structs, times 100 groups (what the shell pays if it does not
//    keep the counts itself).
// 4. Fleet's Tick on a fleet of the same size (unless --no-fleet), for
//    comparison; Fleet itself is not changed.
//
// Usage: bench_decision [--groups N] [--per-group N] [--seconds S] [--runs R] [--no-fleet]
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "coordinator/core/fleet.hpp"
#include "coordinator/core/metrics.hpp"
#include "coordinator/core/scaling.hpp"

using namespace tide::coordinator;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

double fleet_tick_ms(int groups, std::uint32_t per_group) {
  Fleet fleet(deterministic_deps(1));
  LaunchConfiguration config;
  config.id = "web";
  config.command = "true";
  config.port = 8080;
  if (!fleet.put_launch_configuration(config)) return -1.0;
  TimeMs now = 1'700'000'000'000;
  std::vector<Command> out;
  std::vector<std::string> ids;
  for (int g = 0; g < groups; ++g) {
    ScalingGroup group;
    group.name = "g" + std::to_string(g);
    group.max = per_group;
    group.desired = per_group;
    group.launch_configuration_id = "web";
    group.lb.backend = "be";
    group.health_check_grace_period_ms = 0;
    if (!fleet.put_group(group, now, out)) return -1.0;
    for (const Command& c : out) {
      if (const auto* l = std::get_if<Launch>(&c)) ids.push_back(l->instance_id);
    }
    out.clear();
  }
  for (const std::string& id : ids) {
    fleet.handle(LaunchSucceeded{id, "p", "127.0.0.1", 8080}, now, out);
    fleet.handle(AgentHello{id, "k", {}, 0}, now, out);
    fleet.handle(AgentReport{id, true, true, {}, false}, now, out);
    out.clear();
  }
  now += 1'000;
  std::vector<double> ticks;
  for (int k = 0; k < 20; ++k) {
    const auto start = Clock::now();
    fleet.handle(Tick{}, now, out);
    ticks.push_back(ms_since(start));
    out.clear();
  }
  return percentile(ticks, 0.5);
}

}  // namespace

int main(int argc, char** argv) {
  int groups = 100;
  std::uint32_t per_group = 2'000;
  int seconds = 60;
  int runs = 200;
  bool with_fleet = true;
  for (int k = 1; k < argc; ++k) {
    const std::string arg = argv[k];
    const bool has_value = k + 1 < argc;
    if (arg == "--groups" && has_value) groups = std::atoi(argv[++k]);
    else if (arg == "--per-group" && has_value) per_group = static_cast<std::uint32_t>(std::atoi(argv[++k]));
    else if (arg == "--seconds" && has_value) seconds = std::atoi(argv[++k]);
    else if (arg == "--runs" && has_value) runs = std::atoi(argv[++k]);
    else if (arg == "--no-fleet") with_fleet = false;
    else {
      std::fprintf(stderr, "usage: bench_decision [--groups N] [--per-group N] [--seconds S] [--runs R] [--no-fleet]\n");
      return 2;
    }
  }
  if (groups < 1 || per_group < 1 || seconds < 10 || runs < 1) {
    std::fprintf(stderr, "bench_decision: groups, per-group, runs >= 1 and seconds >= 10\n");
    return 2;
  }

  std::vector<ScalingGroup> group_list;
  std::vector<std::vector<std::string>> ids(static_cast<std::size_t>(groups));
  for (int g = 0; g < groups; ++g) {
    ScalingGroup group;
    group.name = "g" + std::to_string(g);
    group.min = 1;
    group.max = per_group * 2;
    group.desired = per_group;
    group_list.push_back(group);
    for (std::uint32_t i = 0; i < per_group; ++i) {
      ids[static_cast<std::size_t>(g)].push_back("i-" + std::to_string(g) + "-" + std::to_string(i));
    }
  }

  // 1. Ingest.
  MetricWindows windows;
  const TimeMs t0 = 1'700'000'000'000;
  const auto ingest_start = Clock::now();
  std::uint64_t reports = 0;
  for (int s = 0; s < seconds; ++s) {
    for (int g = 0; g < groups; ++g) {
      const double cpu = g % 3 == 0 ? 90.0 : 50.0;  // a third of the groups run hot
      const auto& group_ids = ids[static_cast<std::size_t>(g)];
      for (std::uint32_t i = 0; i < per_group; ++i) {
        const double jitter = static_cast<double>(i % 7);
        const std::array<MetricSample, 6> samples{{{kMetricCpu, cpu + jitter},
                                                   {kMetricMemory, 40.0 + jitter},
                                                   {kMetricLoad1, 0.5},
                                                   {kMetricNetIn, 1.0e6},
                                                   {kMetricNetOut, 2.0e6},
                                                   {kMetricTcpEstablished, 120.0}}};
        // Phases spread over the second, as the agents' jitter does.
        const TimeMs at = t0 + s * 1'000 + static_cast<TimeMs>((i * 997) % 1'000);
        windows.record(group_list[static_cast<std::size_t>(g)].name, group_ids[i], at, samples);
        ++reports;
      }
    }
  }
  const double ingest_ms = ms_since(ingest_start);

  // 2. Evaluate.
  Autoscaler scaler;
  for (const ScalingGroup& group : group_list) {
    AlarmPolicy alarm;
    alarm.group = group.name;
    alarm.name = "cpu-high";
    alarm.metric = std::string(kMetricCpu);
    alarm.comparison = Comparison::Greater;
    alarm.threshold = 80.0;
    alarm.period_ms = 5'000;
    alarm.evaluation_periods = 2;
    alarm.adjustment = 1;
    TargetTrackingPolicy tracking;
    tracking.group = group.name;
    tracking.name = "cpu-50";
    tracking.metric = std::string(kMetricCpu);
    tracking.target = 50.0;
    tracking.window_ms = 60'000;
    if (!scaler.put_alarm(alarm) || !scaler.put_target_tracking(tracking)) {
      std::fprintf(stderr, "bench_decision: policy refused\n");
      return 1;
    }
  }
  std::vector<GroupStatus> statuses;
  for (const ScalingGroup& group : group_list) statuses.push_back(GroupStatus{&group, per_group, per_group});
  const TimeMs now = t0 + seconds * 1'000;
  std::vector<double> evals;
  std::size_t first_decisions = 0;
  for (int k = 0; k < runs; ++k) {
    const auto start = Clock::now();
    const auto decisions = scaler.evaluate(now, windows, statuses);
    evals.push_back(ms_since(start));
    if (k == 0) first_decisions = decisions.size();
  }

  // 3. group_status over Instance structs.
  std::vector<Instance> instances(per_group);
  std::vector<const Instance*> pointers;
  for (Instance& i : instances) {
    i.state = LifecycleState::InService;
    i.runtime.ready = true;
    i.state_since_ms = t0;
    pointers.push_back(&i);
  }
  const auto status_start = Clock::now();
  std::uint64_t eligible = 0;
  for (int g = 0; g < groups; ++g) {
    eligible += group_status(group_list[static_cast<std::size_t>(g)], pointers, now).eligible;
  }
  const double status_ms = ms_since(status_start);

  std::printf("scale: %d groups x %u instances, %d simulated seconds, 6 metrics per report\n", groups, per_group,
              seconds);
  std::printf("ingest: %llu reports in %.0f ms = %.3f us per report (%.0f reports/s on one core)\n",
              static_cast<unsigned long long>(reports), ingest_ms, ingest_ms * 1'000.0 / static_cast<double>(reports),
              static_cast<double>(reports) / (ingest_ms / 1'000.0));
  std::printf("evaluate (%d groups, 1 alarm + 1 target tracking each; %zu decisions on the first run): "
              "min %.3f ms, p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms over %d runs (target <= 5 ms)\n",
              groups, first_decisions, *std::min_element(evals.begin(), evals.end()), percentile(evals, 0.5),
              percentile(evals, 0.9), percentile(evals, 0.99),
              *std::max_element(evals.begin(), evals.end()), runs);
  std::printf("group_status over %d x %u instances: %.3f ms (%llu eligible)\n", groups, per_group, status_ms,
              static_cast<unsigned long long>(eligible));
  if (with_fleet) {
    const double tick = fleet_tick_ms(groups, per_group);
    std::printf("Fleet Tick over the same fleet (nothing due), p50 of 20: %.3f ms\n", tick);
  }
  return 0;
}
