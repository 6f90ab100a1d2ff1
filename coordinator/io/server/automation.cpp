// Server: what groups do by themselves — metrics from REPORTs into the
// windows, scheduled actions, alarm and target-tracking policies
// (docs/policies.md, docs/schedules.md).
// The decisions are the core's (coordinator/core/scaling.hpp, schedule.hpp);
// this file feeds them and carries their results to the Fleet and the store.
#include <spdlog/spdlog.h>

#include "coordinator/core/cron.hpp"
#include "coordinator/core/notification.hpp"
#include "coordinator/io/prometheus/prometheus_client.hpp"
#include "coordinator/io/server/server.hpp"
#include "coordinator/io/store/store.hpp"

namespace tide::coordinator {

namespace {

// Policies run once a second whatever the tick: the windows have 1-second
// buckets, and alarm periods are whole seconds.
constexpr std::int64_t kPolicyIntervalMs = 1'000;

}  // namespace

tl::expected<void, std::string> Server::load_specs() {
  auto specs = m_store->load_specs();
  if (!specs) return tl::make_unexpected("store: " + specs.error().message);
  for (const auto& policy : specs->policies) put_policy_in_memory(policy);
  for (const auto& action : specs->schedules) {
    if (auto check = check_schedule(action); !check) {
      // Stored while valid, invalid now (a zone removed from tzdata): keep
      // the row, skip the action, say so.
      spdlog::error("scheduled action {}/{} is skipped: {}: {}", action.group, action.name, check.error().field,
                    check.error().message);
    }
    m_specs.schedules[{action.group, action.name}] = action;
  }
  for (const auto& hook : specs->hooks) m_specs.hooks[{hook.group, hook.name}] = hook;
  for (const auto& target : specs->notifications) m_specs.notifications[{target.group, target.name}] = target;
  spdlog::info("loaded {} policies, {} scheduled actions, {} lifecycle hooks, {} notification targets",
               specs->policies.size(), specs->schedules.size(), specs->hooks.size(), specs->notifications.size());
  return {};
}

void Server::put_policy_in_memory(const ScalingPolicy& policy) {
  m_specs.policies[{policy_group(policy), policy_name(policy)}] = policy;
  // A policy changing kind under the same name replaces the old one.
  (void)m_autoscaler.remove_policy(policy_group(policy), policy_name(policy));
  const auto put = std::visit(
      [this](const auto& p) {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, AlarmPolicy>) {
          return m_autoscaler.put_alarm(p);
        } else {
          return m_autoscaler.put_target_tracking(p);
        }
      },
      policy);
  if (!put) spdlog::error("policy {}/{} not loaded: {}", policy_group(policy), policy_name(policy), put.error().message);
}

void Server::remove_policy_in_memory(const std::string& group, const std::string& name) {
  m_specs.policies.erase({group, name});
  (void)m_autoscaler.remove_policy(group, name);
}

tl::expected<void, JsonError> Server::check_policy_metric(const ScalingPolicy& policy) const {
  // Built-in names and any custom metric an application reports are valid;
  // the name itself was checked by validate(). A metric nobody reports is
  // "missing data": it never scales in and never fires. A query needs a
  // Prometheus to ask.
  const std::string& query = std::visit([](const auto& p) -> const std::string& { return p.query; }, policy);
  if (!query.empty() && m_config.prometheus.url.empty()) {
    return tl::make_unexpected(JsonError{
        "query", "no Prometheus is configured: set prometheus.url in the coordinator's configuration"});
  }
  return {};
}

tl::expected<void, JsonError> Server::check_schedule(const ScheduledAction& action) const {
  auto zone = find_zone(action.time_zone);
  if (!zone) return tl::make_unexpected(JsonError{"time_zone", zone.error()});
  if (!action.cron.empty()) {
    if (auto cron = parse_cron(action.cron); !cron) return tl::make_unexpected(JsonError{"cron", cron.error().message});
  }
  return {};
}

std::optional<TimeMs> Server::next_schedule_fire(const ScheduledAction& action, TimeMs now) const {
  auto zone = find_zone(action.time_zone);
  if (!zone) return std::nullopt;
  auto entry = compile_schedule(action, **zone, action.last_fired_ms.value_or(now));
  if (!entry) return std::nullopt;
  return next_fire(*entry, std::max(now, action.last_fired_ms.value_or(now)));
}

void Server::forget_group_specs(const std::string& group) {
  const auto of_group = [&](const auto& item) { return item.first.first == group; };
  std::erase_if(m_specs.policies, of_group);
  std::erase_if(m_specs.schedules, of_group);
  std::erase_if(m_specs.hooks, of_group);
  std::erase_if(m_specs.notifications, of_group);
  m_autoscaler.remove_group(group);
  m_metrics.remove_group(group);
}

void Server::record_metrics(const std::string& instance_id, const protocol::Report& report) {
  const Instance* instance = m_fleet->instance(instance_id);
  if (instance == nullptr) return;
  const ScalingGroup* group = m_fleet->group(instance->group);
  const TimeMs now = now_ms();
  if (group == nullptr || !metrics_eligible(*instance, *group, now)) return;
  const protocol::Metrics& m = report.metrics;
  // At most 6 built-ins + 64 custom metrics (protocol limit).
  std::vector<MetricSample> samples;
  samples.reserve(6 + m.custom.size());
  if (m.cpu_pct) samples.push_back({kMetricCpu, *m.cpu_pct});
  if (m.memory_pct) samples.push_back({kMetricMemory, *m.memory_pct});
  if (m.load1) samples.push_back({kMetricLoad1, *m.load1});
  if (m.net_in_bps) samples.push_back({kMetricNetIn, *m.net_in_bps});
  if (m.net_out_bps) samples.push_back({kMetricNetOut, *m.net_out_bps});
  if (m.tcp_established) samples.push_back({kMetricTcpEstablished, static_cast<double>(*m.tcp_established)});
  for (const auto& [name, value] : m.custom) samples.push_back({name, value});
  m_metrics.record(instance->group, instance_id, now, samples);
}

// Every query the enabled policies of enabled groups read, once per
// interval; a query still waiting for its answer is not asked again.
void Server::poll_metric_queries() {
  if (m_stopping || !m_prometheus) return;
  std::vector<MetricQuery> queries = m_autoscaler.metric_queries();
  std::erase_if(queries, [this](const MetricQuery& q) {
    const ScalingGroup* group = m_fleet->group(q.group);
    return group == nullptr || !group->enabled;
  });
  m_query_health.keep_only(queries);
  for (MetricQuery& query : queries) {
    if (!m_queries_in_flight.emplace(query.group, query.query).second) continue;
    ++m_counters.metric_queries;
    const std::string text = query.query;
    m_prometheus->query(text, [this, query = std::move(query)](tl::expected<double, std::string> value) {
      on_metric_query(query, std::move(value));
    });
  }
}

void Server::on_metric_query(const MetricQuery& query, tl::expected<double, std::string> value) {
  m_queries_in_flight.erase({query.group, query.query});
  if (m_stopping) return;
  const TimeMs now = now_ms();
  if (value) {
    const std::string series = metric_series(query.metric, query.query);
    const MetricSample sample{series, *value};
    m_metrics.record(query.group, "prometheus", now, std::span(&sample, 1));
  } else {
    ++m_counters.metric_query_failures;
    spdlog::debug("group {}: Prometheus query {} failed: {}", query.group, query.query, value.error());
  }
  const auto note = m_query_health.observe(query, value ? std::string_view() : std::string_view(value.error()), now);
  if (!note) return;
  if (note->ok) {
    spdlog::info("group {}: {}", note->group, note->cause);
  } else {
    spdlog::warn("group {}: {}", note->group, note->cause);
  }
  std::vector<Command> out;
  if (!m_fleet->record_metric_query(note->group, note->ok, note->cause, now, out)) return;  // the group is gone
  execute(std::move(out));
}

void Server::automation_tick() {
  if (m_stopping) return;
  const TimeMs now = now_ms();
  run_schedules(wall_clock_ms(), now);
  if (now - m_last_policy_run_ms >= kPolicyIntervalMs) {
    m_last_policy_run_ms = now;
    run_policies(now);
  }
}

// `wall`: cron times follow the system clock, also after it was stepped;
// `now`: the core's clock (Server::now_ms) for what the fleet records.
void Server::run_schedules(TimeMs wall, TimeMs now) {
  if (m_specs.schedules.empty()) return;
  // Compiled each tick from the live specs: a handful of actions, and no
  // cache to keep in step with the API.
  m_schedule_entries.clear();
  for (const auto& [key, action] : m_specs.schedules) {
    auto zone = find_zone(action.time_zone);
    if (!zone) continue;
    auto entry = compile_schedule(action, **zone, action.last_fired_ms.value_or(wall));
    if (entry) m_schedule_entries.push_back(std::move(*entry));
  }
  for (const DueAction& due : due_actions(m_schedule_entries, wall)) {
    const SpecKey key{due.group, due.name};
    const ScalingGroup* group = m_fleet->group(due.group);
    if (group == nullptr) continue;
    if (due.skipped) {
      spdlog::warn("scheduled action {}/{}: the fire at {} was missed by {} s (coordinator down?) and is past "
                   "the grace window; skipped",
                   due.group, due.name, format_rfc3339(due.fire_ms), due.late_ms / 1000);
    } else if (!group->enabled) {
      spdlog::info("scheduled action {}/{} not applied: group {} is disabled", due.group, due.name, due.group);
    } else {
      auto change = apply_scheduled_action(Capacity{group->min, group->max, group->desired}, due);
      if (!change) {
        spdlog::error("scheduled action {}/{}: {}", due.group, due.name, change.error());
      } else if (change->changed) {
        std::vector<Command> out;
        auto set = m_fleet->set_capacity(due.group, change->after.min, change->after.max, change->after.desired,
                                         change->cause, now, out);
        if (!set) {
          spdlog::error("scheduled action {}/{}: {}", due.group, due.name, set.error().message);
        } else {
          spdlog::info("{}", change->cause);
          execute(std::move(out));
        }
      }
    }
    // Fired (or skipped) is recorded either way, so it is never run twice.
    if (auto stored = m_store->set_schedule_last_fired(due.group, due.name, due.fire_ms); !stored) {
      spdlog::error("{}", stored.error().message);
    }
    if (auto it = m_specs.schedules.find(key); it != m_specs.schedules.end()) it->second.last_fired_ms = due.fire_ms;
  }
}

void Server::run_policies(TimeMs now) {
  if (m_specs.policies.empty()) return;
  std::vector<GroupStatus> statuses;
  for (const ScalingGroup* group : m_fleet->groups()) {
    const auto instances = m_fleet->instances_of(group->name);
    statuses.push_back(group_status(*group, instances, now));
  }
  for (const ScalingDecision& decision : m_autoscaler.evaluate(now, m_metrics, statuses)) {
    if (decision.to_desired == decision.from_desired) continue;
    std::vector<Command> out;
    if (auto set = m_fleet->set_desired(decision.group, decision.to_desired, decision.cause, now, out); !set) {
      spdlog::error("policy decision for {}: {}", decision.group, set.error().message);
      continue;
    }
    spdlog::info("{}: desired {} -> {} ({})", decision.group, decision.from_desired, decision.to_desired,
                 decision.cause);
    execute(std::move(out));
  }
}

tl::expected<nlohmann::json, ApiResponse> Server::execute_policy_now(const std::string& group, const std::string& name,
                                                                     bool honour_cooldown) {
  const ScalingGroup* g = m_fleet->group(group);
  if (g == nullptr) return tl::make_unexpected(api_error(404, "no group '" + group + "'"));
  if (m_specs.policies.count({group, name}) == 0) return tl::make_unexpected(api_error(404, "no policy '" + name + "'"));
  const TimeMs now = now_ms();
  auto decision = m_autoscaler.execute_policy(*g, name, honour_cooldown, now);
  if (!decision) return tl::make_unexpected(api_error(409, decision.error().message));
  if (decision->to_desired != decision->from_desired) {
    std::vector<Command> out;
    if (auto set = m_fleet->set_desired(group, decision->to_desired, decision->cause, now, out); !set) {
      return tl::make_unexpected(api_error(409, set.error().message));
    }
    execute(std::move(out));
  }
  return nlohmann::json{{"group", group},
                        {"policy", name},
                        {"from_desired", decision->from_desired},
                        {"to_desired", decision->to_desired},
                        {"cause", decision->cause}};
}

void Server::notify(const std::string& group, const std::function<std::vector<OutgoingNotification>(
                                                  const std::vector<NotificationTarget>&, const NotificationOptions&)>& build) {
  if (m_notifier == nullptr) return;
  std::vector<NotificationTarget> targets;
  for (const auto& [key, target] : m_specs.notifications) {
    if (key.first == group) targets.push_back(target);
  }
  if (targets.empty()) return;
  NotificationOptions options;
  options.tide_version = TIDE_VERSION;
  m_notifier->send(build(targets, options));
}

void Server::notify_activity(const Activity& activity) {
  if (activity.status == ActivityStatus::Running || !notification_event_for(activity)) return;
  notify(activity.group, [&](const auto& targets, const auto& options) {
    return notifications_for(activity, targets, options);
  });
}

void Server::notify_hook_timeout(const HookTimeout& timeout) {
  notify(timeout.group, [&](const auto& targets, const auto& options) {
    return notifications_for(timeout, targets, options);
  });
}

void Server::notify_rollout(const RolloutNotice& notice) {
  notify(notice.group, [&](const auto& targets, const auto& options) {
    return notifications_for(notice, targets, options);
  });
}

void Server::hooks_changed(const std::string& group) {
  std::vector<LifecycleHook> hooks;
  for (const auto& [key, hook] : m_specs.hooks) {
    if (key.first == group) hooks.push_back(hook);
  }
  if (auto set = m_fleet->set_hooks(group, std::move(hooks)); !set) {
    spdlog::error("lifecycle hooks of {}: {}", group, set.error().message);
  }
}

}  // namespace tide::coordinator
