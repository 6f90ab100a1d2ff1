// GET /metrics: the coordinator's figures in the Prometheus text format,
// written with the Exposition of coordinator/core/exposition.hpp. The list of
// families and what each means is docs/metrics.md.
#include <array>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "common/proc/process_stat.hpp"
#include "coordinator/core/exposition.hpp"
#include "coordinator/io/haproxy/driver.hpp"
#include "coordinator/io/haproxy/load_balancer.hpp"
#include "coordinator/io/notify/notifier.hpp"
#include "coordinator/io/provider/provider.hpp"
#include "coordinator/io/server/server.hpp"

namespace tide::coordinator {

namespace {

// The process_* families every Prometheus client library exports, read from
// /proc/self (the names and meanings of the Go and Python clients).
struct ProcessFigures {
  double cpu_seconds = 0.0;
  double resident_bytes = 0.0;
  double virtual_bytes = 0.0;
  double start_time_seconds = 0.0;
  double open_fds = 0.0;
  double max_fds = 0.0;
};

// When the system booted, in seconds since the epoch (btime of /proc/stat):
// a process's start time is counted in clock ticks from there. Read once.
std::optional<double> boot_time_seconds() {
  static const std::optional<double> btime = []() -> std::optional<double> {
    std::ifstream stat("/proc/stat");
    for (std::string line; std::getline(stat, line);) {
      if (line.rfind("btime ", 0) != 0) continue;
      double seconds = 0;
      const auto [ptr, ec] = std::from_chars(line.data() + 6, line.data() + line.size(), seconds);
      if (ec == std::errc{}) return seconds;
    }
    return std::nullopt;
  }();
  return btime;
}

std::optional<ProcessFigures> process_figures() {
  std::ifstream stat_file("/proc/self/stat");
  std::string line;
  if (!std::getline(stat_file, line)) return std::nullopt;
  const auto stat = parse_process_stat(line);
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const auto boot = boot_time_seconds();
  if (!stat || !boot || ticks <= 0 || page <= 0) return std::nullopt;
  ProcessFigures out;
  out.cpu_seconds = static_cast<double>(stat->own_ticks) / ticks;
  out.start_time_seconds = *boot + static_cast<double>(stat->start_ticks) / ticks;
  out.virtual_bytes = static_cast<double>(stat->vsize_bytes);
  out.resident_bytes = static_cast<double>(stat->rss_pages) * page;
  std::error_code ec;
  std::size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  out.open_fds = static_cast<double>(fds);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) out.max_fds = static_cast<double>(limit.rlim_cur);
  return out;
}

constexpr std::array kStates{
    LifecycleState::Pending,           LifecycleState::Booting,
    LifecycleState::PendingLaunchHook, LifecycleState::Warming,
    LifecycleState::InService,         LifecycleState::OutOfRotation,
    LifecycleState::Draining,          LifecycleState::PendingTerminateHook,
    LifecycleState::Terminating,       LifecycleState::Terminated,
    LifecycleState::LaunchFailed,      LifecycleState::Detached};

// "unknown" until the instance's agent has reported (the coordinator has no
// verdict of its own yet), then the instance's health.
std::string_view health_of(const Instance& instance) {
  if (instance.health == Health::Unhealthy) return "unhealthy";
  return instance.runtime.ready.has_value() ? "healthy" : "unknown";
}

}  // namespace

std::string Server::metrics_text() const {
  Exposition out;
  const auto gauge = MetricType::Gauge;
  const auto counter = MetricType::Counter;

  const std::vector<const ScalingGroup*> groups = m_fleet->groups();
  const auto per_group = [&](std::string_view name, std::string_view help, auto value) {
    out.family(name, gauge, help);
    for (const auto* g : groups) out.sample({{"group", g->name}}, static_cast<double>(value(*g)));
  };

  out.family("tide_build_info", gauge, "The coordinator's version; always 1.");
  out.sample({{"version", TIDE_VERSION}}, 1);

  // ---- groups ----
  per_group("tide_group_desired", "Desired capacity per group.",
            [](const ScalingGroup& g) { return g.desired; });
  per_group("tide_group_min", "Minimum capacity per group (schedules change it).",
            [](const ScalingGroup& g) { return g.min; });
  per_group("tide_group_max", "Maximum capacity per group.",
            [](const ScalingGroup& g) { return g.max; });
  per_group("tide_group_enabled",
            "1 when the group's policies and schedules act, 0 when it is disabled.",
            [](const ScalingGroup& g) { return g.enabled ? 1 : 0; });
  per_group("tide_group_fail_static",
            "1 while the group is in fail-static (unhealthy instances held, not replaced).",
            [&](const ScalingGroup& g) { return m_fleet->in_fail_static(g.name) ? 1 : 0; });

  // Instances counted in one pass per group: by lifecycle state, live ones
  // by health, and those in the load balancer's rotation.
  struct InstanceCounts {
    std::map<LifecycleState, int> by_state;
    std::map<std::string_view, int> by_health{{"healthy", 0}, {"unhealthy", 0}, {"unknown", 0}};
    int in_lb = 0;
  };
  std::vector<InstanceCounts> counts(groups.size());
  for (std::size_t k = 0; k < groups.size(); ++k) {
    for (const Instance* instance : m_fleet->instances_of(groups[k]->name)) {
      ++counts[k].by_state[instance->state];
      if (!is_terminal(instance->state)) ++counts[k].by_health[health_of(*instance)];
      counts[k].in_lb += instance->runtime.in_lb ? 1 : 0;
    }
  }
  out.family("tide_group_instances", gauge,
             "Instances per group and lifecycle state (terminal states left out).");
  for (std::size_t k = 0; k < groups.size(); ++k) {
    for (const LifecycleState state : kStates) {
      if (is_terminal(state)) continue;
      out.sample({{"group", groups[k]->name}, {"state", std::string(to_string(state))}},
                 counts[k].by_state[state]);
    }
  }
  out.family("tide_group_instances_health", gauge,
             "Live instances per group and health: healthy, unhealthy, or unknown before the "
             "agent's first report.");
  for (std::size_t k = 0; k < groups.size(); ++k) {
    for (const auto& [health, count] : counts[k].by_health) {
      out.sample({{"group", groups[k]->name}, {"health", std::string(health)}}, count);
    }
  }
  out.family("tide_group_lb_instances", gauge,
             "Instances of the group in the load balancer's rotation, per backend.");
  for (std::size_t k = 0; k < groups.size(); ++k) {
    if (groups[k]->lb.backend.empty()) continue;
    out.sample({{"group", groups[k]->name}, {"backend", groups[k]->lb.backend}}, counts[k].in_lb);
  }

  // One gauge family per group metric, its unit in the name.
  const TimeMs now = now_ms();
  std::map<std::string_view, std::vector<std::pair<Labels, double>>> metric_samples;
  for (const auto* g : groups) {
    for (const std::string& name : m_metrics.metrics_of(g->name)) {
      if (is_query_series(name)) continue;  // a Prometheus query's values: Prometheus has them
      const auto stats = m_metrics.stats(g->name, name, now - 10'000, now);
      if (!stats) continue;
      const GroupMetricFamily family = group_metric_family(name);
      Labels labels{{"group", g->name}};
      if (family.custom) labels.push_back({"metric", name});
      metric_samples[family.family].emplace_back(std::move(labels), stats->average * family.scale);
    }
  }
  for (const GroupMetricFamily& family : group_metric_families()) {
    out.family(family.family, gauge,
               std::string(group_metric_help_prefix()) + std::string(family.help));
    for (const auto& [labels, value] : metric_samples[family.family]) out.sample(labels, value);
  }

  out.family("tide_policy_alarm", gauge,
             "1 while an alarm policy's condition holds (metric past its threshold for its "
             "periods), else 0.");
  for (const auto* g : groups) {
    for (const AlarmPolicy* policy : m_autoscaler.alarms_of(g->name)) {
      out.sample({{"group", g->name}, {"policy", policy->name}},
                 m_autoscaler.in_alarm(g->name, policy->name) ? 1 : 0);
    }
  }

  out.family("tide_activities_total", counter,
             "Scaling activities by type and status: each counted when it starts (running) and "
             "when it ends.");
  for (const auto& [key, count] : m_counters.activities) {
    out.sample({{"type", std::string(to_string(key.first))},
                {"status", std::string(to_string(key.second))}},
               static_cast<double>(count));
  }

  // ---- agents ----
  const auto& gw = m_gateway->stats();
  out.single("tide_agent_sessions", gauge, "Connected agents.", static_cast<double>(gw.sessions));
  out.single("tide_reports_received_total", counter, "REPORT messages accepted.",
             static_cast<double>(gw.reports));
  out.single("tide_bad_frames_total", counter,
             "Frames dropped as malformed, unexpected or from the wrong key.",
             static_cast<double>(gw.bad_frames));
  out.single("tide_bad_frames_multipart_total", counter,
             "Of the bad frames: messages of more than one frame.",
             static_cast<double>(gw.multipart_frames));
  out.single("tide_reports_stale_total", counter,
             "REPORTs dropped as stale or duplicate (seq not increasing).",
             static_cast<double>(gw.reports_stale));
  out.single("tide_unknown_session_total", counter,
             "Messages that needed a session and had none (answered 410).",
             static_cast<double>(gw.unknown_session));
  out.single("tide_hellos_refused_total", counter, "HELLOs refused.",
             static_cast<double>(gw.hellos_refused));
  out.single("tide_agent_sessions_lost_total", counter,
             "Agent sessions that ended without a reconnect (silence, GOODBYE): the instance lost "
             "its agent.",
             static_cast<double>(gw.sessions_lost));
  out.family("tide_report_processing_seconds", MetricType::Histogram,
             "Decode and handling of one REPORT.");
  out.histogram({}, m_gateway->report_latency());

  // ---- load balancer ----
  out.single("tide_lb_operations_total", counter, "Load-balancer operations.",
             static_cast<double>(m_counters.lb_operations));
  out.single("tide_lb_failures_total", counter, "Load-balancer operations that failed.",
             static_cast<double>(m_counters.lb_failures));
  out.family("tide_lb_latency_seconds", MetricType::Histogram,
             "HAProxy round trip of register operations.");
  out.histogram({}, m_counters.lb_latency);
  out.family(
      "tide_report_to_lb_latency_seconds", MetricType::Histogram,
      "From the REPORT that made an instance ready to HAProxy acknowledging it in rotation.");
  out.histogram({}, m_counters.report_to_lb_latency);
  out.family("tide_haproxy_server_in_rotation", gauge,
             "HAProxy server slots holding an instance, as tide drives them: 1 ready (in "
             "rotation), 0 drained or "
             "in maintenance.");
  if (m_lb) {
    std::set<std::string> backends;
    for (const auto* g : groups) {
      if (!g->lb.backend.empty()) backends.insert(g->lb.backend);
    }
    for (const std::string& backend : backends) {
      const auto& wanted = m_lb->driver().wanted(backend);
      for (const auto& [instance, slot] : m_lb->driver().assignment(backend)) {
        const auto it = wanted.find(instance);
        const bool in_rotation = it != wanted.end() && it->second.in_rotation;
        out.sample({{"backend", backend}, {"slot", std::to_string(slot)}, {"instance", instance}},
                   in_rotation ? 1 : 0);
      }
    }
  }

  // ---- provider, store, notifications, Prometheus ----
  const auto& pm = m_provider->metrics();
  const std::map<std::string, provider::OperationCounters> operations{{"launch", pm.launch},
                                                                      {"terminate", pm.terminate},
                                                                      {"list", pm.list},
                                                                      {"describe", pm.describe}};
  out.family("tide_provider_calls_total", counter, "Provider calls by operation.");
  for (const auto& [name, c] : operations)
    out.sample({{"operation", name}}, static_cast<double>(c.calls));
  out.family("tide_provider_failures_total", counter, "Failed provider calls by operation.");
  for (const auto& [name, c] : operations)
    out.sample({{"operation", name}}, static_cast<double>(c.failures));
  out.single("tide_store_failures_total", counter, "SQLite writes that failed.",
             static_cast<double>(m_counters.store_failures));
  if (m_notifier) {
    const notify::NotifierStats ns = m_notifier->stats();
    out.single("tide_notifications_sent_total", counter, "Webhooks delivered (2xx).",
               static_cast<double>(ns.sent));
    out.single("tide_notifications_failed_total", counter,
               "Webhooks given up on (non-retryable answer or attempts exhausted).",
               static_cast<double>(ns.failed));
    out.single("tide_notifications_retried_total", counter,
               "Webhook attempts scheduled again after a retryable failure.",
               static_cast<double>(ns.retried));
    out.single("tide_notifications_dropped_total", counter, "Webhooks dropped from a full queue.",
               static_cast<double>(ns.dropped));
    out.single("tide_notifications_pending", gauge, "Webhooks waiting or on the wire.",
               static_cast<double>(ns.pending + ns.in_flight));
  }
  if (m_prometheus) {
    out.single("tide_metric_queries_total", counter, "Prometheus queries asked for policies.",
               static_cast<double>(m_counters.metric_queries));
    out.single("tide_metric_query_failures_total", counter,
               "Prometheus queries that gave no value (error, time-out, not one number).",
               static_cast<double>(m_counters.metric_query_failures));
  }

  // ---- process ----
  if (const auto process = process_figures()) {
    out.single("process_cpu_seconds_total", counter,
               "Total user and system CPU time spent in seconds.", process->cpu_seconds);
    out.single("process_resident_memory_bytes", gauge, "Resident memory size in bytes.",
               process->resident_bytes);
    out.single("process_virtual_memory_bytes", gauge, "Virtual memory size in bytes.",
               process->virtual_bytes);
    out.single("process_start_time_seconds", gauge,
               "Start time of the process since unix epoch in seconds.",
               process->start_time_seconds);
    out.single("process_open_fds", gauge, "Number of open file descriptors.", process->open_fds);
    out.single("process_max_fds", gauge, "Maximum number of open file descriptors.",
               process->max_fds);
  }
  return out.text();
}

}  // namespace tide::coordinator
