#include "coordinator/core/scaling.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace tide::coordinator {

namespace {

tl::unexpected<ModelError> fail(std::string message) {
  return tl::unexpected<ModelError>(ModelError{std::move(message), {}});
}

std::uint32_t clamp_to(const ScalingGroup& group, std::uint32_t value) {
  return std::clamp(value, group.min, std::max(group.min, group.max));
}

std::string adjustment_text(const AlarmPolicy& policy) {
  const std::string sign = policy.adjustment > 0 ? "+" : "";
  switch (policy.adjustment_type) {
    case AdjustmentType::ChangeInCapacity:
      return "change " + sign + std::to_string(policy.adjustment);
    case AdjustmentType::ExactCapacity:
      return "exact " + std::to_string(policy.adjustment);
    case AdjustmentType::PercentChangeInCapacity: {
      std::string text = "change " + sign + std::to_string(policy.adjustment) + " %";
      if (policy.min_adjustment_magnitude > 0) {
        text += " (at least " + std::to_string(policy.min_adjustment_magnitude) + ")";
      }
      return text;
    }
  }
  return "";
}

// The alarm's condition over its last `evaluation_periods` periods ending at
// now, newest first; stops at the first period that fails (missing data
// fails; so does a series younger than the whole span). On success `values` holds every period's
// value, oldest first.
bool alarm_condition(const AlarmPolicy& policy, std::string_view group,
                     const MetricWindows& windows, TimeMs now_ms, std::vector<double>& values) {
  values.clear();
  const std::string series = metric_series(policy.metric, policy.query);
  const TimeMs span_start =
      now_ms - static_cast<TimeMs>(policy.evaluation_periods) * policy.period_ms;
  const auto first = windows.first_sample_ms(group, series);
  if (!first || *first > span_start) return false;  // no history as long as the span yet
  for (std::uint32_t k = 0; k < policy.evaluation_periods; ++k) {
    const TimeMs to = now_ms - static_cast<TimeMs>(k) * policy.period_ms;
    const auto stats = windows.stats(group, series, to - policy.period_ms, to);
    if (!stats) return false;
    const double value = stats->value(policy.statistic);
    if (!compare(value, policy.comparison, policy.threshold)) return false;
    values.push_back(value);
  }
  std::reverse(values.begin(), values.end());
  return true;
}

// How many reporters make a policy's latest window complete, so that it may
// scale in: every eligible instance for what instances report (agents, load
// balancer); the one value per poll for a Prometheus query. 0: never.
template <class Policy>
std::uint32_t required_reporters(const Policy& policy, const GroupStatus& status) {
  return policy.query.empty() ? status.eligible : 1;
}

std::string alarm_cause(const AlarmPolicy& policy, const std::vector<double>& values) {
  std::string text =
      "alarm " + policy.name + ": " + policy.metric + " " +
      std::string(to_string(policy.statistic)) + " " + format_value(values.back()) + " " +
      std::string(to_string(policy.comparison)) + " " + format_value(policy.threshold) + " for " +
      std::to_string(policy.evaluation_periods) + " x " + duration_text(policy.period_ms) + " (";
  constexpr std::size_t kShown = 6;  // a long series is cut to its newest values
  std::size_t first = 0;
  if (values.size() > kShown) {
    first = values.size() - kShown;
    text += "..., ";
  }
  for (std::size_t k = first; k < values.size(); ++k) {
    if (k > first) text += ", ";
    text += format_value(values[k]);
  }
  text += "), " + adjustment_text(policy);
  return text;
}

}  // namespace

// ---- helpers --------------------------------------------------------------

std::string format_value(double value) {
  char buffer[32];
  const int n = std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string("?");
}

GroupStatus group_status(const ScalingGroup& group, std::span<const Instance* const> instances,
                         TimeMs now_ms) {
  GroupStatus status{&group, 0, 0};
  for (const Instance* instance : instances) {
    if (instance == nullptr) continue;
    if (instance->state == LifecycleState::InService) ++status.in_service;
    if (metrics_eligible(*instance, group, now_ms)) ++status.eligible;
  }
  return status;
}

std::uint32_t apply_adjustment(const AlarmPolicy& policy, std::uint32_t desired) {
  const auto current = static_cast<std::int64_t>(desired);
  std::int64_t result = current;
  switch (policy.adjustment_type) {
    case AdjustmentType::ChangeInCapacity:
      result = current + policy.adjustment;
      break;
    case AdjustmentType::ExactCapacity:
      result = policy.adjustment;
      break;
    case AdjustmentType::PercentChangeInCapacity: {
      // Truncate towards zero (12.7 -> 12, -6.7 -> -6) but move at least one
      // instance, as AWS does; then the policy's minimum step.
      std::int64_t step = current * policy.adjustment / 100;
      const std::int64_t sign = policy.adjustment > 0 ? 1 : -1;
      step = sign * std::max<std::int64_t>({std::llabs(step), 1, policy.min_adjustment_magnitude});
      result = current + step;
      break;
    }
  }
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(result, 0, UINT32_MAX));
}

std::optional<std::uint32_t> target_tracking_recommendation(const TargetTrackingPolicy& policy,
                                                            std::uint32_t in_service,
                                                            double value) {
  if (in_service == 0 || !(policy.target > 0.0) || !std::isfinite(value)) return std::nullopt;
  const double ratio = value / policy.target;
  // The epsilon keeps 55 / 50 inside a 10 % tolerance despite rounding.
  if (std::fabs(ratio - 1.0) <= policy.tolerance + 1e-9) return std::nullopt;
  // The epsilon keeps 3 * (0.7 / 0.7) from becoming 4 through rounding.
  const double wanted = std::ceil(static_cast<double>(in_service) * ratio - 1e-9);
  return static_cast<std::uint32_t>(std::clamp(wanted, 0.0, 4'294'967'295.0));
}

// ---- Autoscaler -----------------------------------------------------------

std::uint32_t Autoscaler::RateWindow::remaining(const ScalingRateLimit& limit, TimeMs now_ms) {
  while (!moves.empty() && moves.front().first <= now_ms - limit.period_ms) moves.pop_front();
  if (limit.max_instances == 0) return UINT32_MAX;
  std::uint64_t used = 0;
  for (const auto& move : moves) used += move.second;
  return used >= limit.max_instances ? 0 : limit.max_instances - static_cast<std::uint32_t>(used);
}

Autoscaler::Autoscaler(std::int64_t max_window_ms) : m_max_window_ms(max_window_ms) {}

tl::expected<void, ModelError> Autoscaler::put_alarm(AlarmPolicy policy) {
  if (auto ok = validate(policy); !ok) return ok;
  const std::int64_t span_ms =
      policy.period_ms * static_cast<std::int64_t>(policy.evaluation_periods);
  if (span_ms > m_max_window_ms) {
    return fail("period x evaluation_periods = " + duration_text(span_ms) +
                " exceeds the metric retention of " + duration_text(m_max_window_ms));
  }
  Policies& p = m_groups[policy.group];
  for (const TrackingState& t : p.tracking) {
    if (t.policy.name == policy.name) {
      return fail("group " + policy.group + " already has a target-tracking policy named " +
                  policy.name);
    }
  }
  for (AlarmState& a : p.alarms) {
    if (a.policy.name == policy.name) {
      a.policy = std::move(policy);
      return {};
    }
  }
  p.alarms.push_back(AlarmState{std::move(policy), std::nullopt, false});
  return {};
}

tl::expected<void, ModelError> Autoscaler::put_target_tracking(TargetTrackingPolicy policy) {
  if (auto ok = validate(policy); !ok) return ok;
  if (policy.window_ms > m_max_window_ms) {
    return fail("window " + duration_text(policy.window_ms) + " exceeds the metric retention of " +
                duration_text(m_max_window_ms));
  }
  Policies& p = m_groups[policy.group];
  for (const AlarmState& a : p.alarms) {
    if (a.policy.name == policy.name) {
      return fail("group " + policy.group + " already has an alarm policy named " + policy.name);
    }
  }
  for (TrackingState& t : p.tracking) {
    if (t.policy.name == policy.name) {
      t.policy = std::move(policy);
      return {};
    }
  }
  p.tracking.push_back(TrackingState{std::move(policy), {}, {}, {}});
  return {};
}

bool Autoscaler::remove_policy(std::string_view group, std::string_view name) {
  const auto it = m_groups.find(group);
  if (it == m_groups.end()) return false;
  auto& alarms = it->second.alarms;
  auto& tracking = it->second.tracking;
  const auto a = std::find_if(alarms.begin(), alarms.end(),
                              [&](const AlarmState& s) { return s.policy.name == name; });
  if (a != alarms.end()) {
    alarms.erase(a);
    return true;
  }
  const auto t = std::find_if(tracking.begin(), tracking.end(),
                              [&](const TrackingState& s) { return s.policy.name == name; });
  if (t != tracking.end()) {
    tracking.erase(t);
    return true;
  }
  return false;
}

void Autoscaler::remove_group(std::string_view group) {
  if (const auto it = m_groups.find(group); it != m_groups.end()) m_groups.erase(it);
}

const AlarmPolicy* Autoscaler::alarm(std::string_view group, std::string_view name) const {
  const auto it = m_groups.find(group);
  if (it == m_groups.end()) return nullptr;
  for (const AlarmState& a : it->second.alarms) {
    if (a.policy.name == name) return &a.policy;
  }
  return nullptr;
}

const TargetTrackingPolicy* Autoscaler::target_tracking(std::string_view group,
                                                        std::string_view name) const {
  const auto it = m_groups.find(group);
  if (it == m_groups.end()) return nullptr;
  for (const TrackingState& t : it->second.tracking) {
    if (t.policy.name == name) return &t.policy;
  }
  return nullptr;
}

std::vector<const AlarmPolicy*> Autoscaler::alarms_of(std::string_view group) const {
  std::vector<const AlarmPolicy*> result;
  if (const auto it = m_groups.find(group); it != m_groups.end()) {
    for (const AlarmState& a : it->second.alarms) result.push_back(&a.policy);
  }
  return result;
}

std::vector<const TargetTrackingPolicy*> Autoscaler::target_tracking_of(
    std::string_view group) const {
  std::vector<const TargetTrackingPolicy*> result;
  if (const auto it = m_groups.find(group); it != m_groups.end()) {
    for (const TrackingState& t : it->second.tracking) result.push_back(&t.policy);
  }
  return result;
}

std::vector<MetricQuery> Autoscaler::metric_queries() const {
  std::vector<MetricQuery> out;
  const auto add = [&out](const std::string& group, const auto& policy) {
    if (!policy.enabled || policy.query.empty()) return;
    const auto same = std::find_if(out.begin(), out.end(), [&](const MetricQuery& q) {
      return q.group == group && q.query == policy.query;
    });
    if (same != out.end()) {
      same->policies.push_back(policy.name);
      return;
    }
    out.push_back(MetricQuery{group, policy.query, policy.metric, {policy.name}});
  };
  for (const auto& [group, policies] : m_groups) {
    for (const AlarmState& a : policies.alarms) add(group, a.policy);
    for (const TrackingState& t : policies.tracking) add(group, t.policy);
  }
  return out;
}

std::optional<TimeMs> Autoscaler::last_fired_ms(std::string_view group,
                                                std::string_view name) const {
  const auto it = m_groups.find(group);
  if (it == m_groups.end()) return std::nullopt;
  for (const AlarmState& a : it->second.alarms) {
    if (a.policy.name == name) return a.last_fired_ms;
  }
  return std::nullopt;
}

bool Autoscaler::in_alarm(std::string_view group, std::string_view name) const {
  const auto it = m_groups.find(group);
  if (it == m_groups.end()) return false;
  for (const AlarmState& a : it->second.alarms) {
    if (a.policy.name == name) return a.in_alarm;
  }
  return false;
}

std::int64_t Autoscaler::cooldown_ms(const AlarmPolicy& policy, const ScalingGroup& group) const {
  return policy.cooldown_ms.value_or(group.default_cooldown_ms);
}

std::vector<ScalingDecision> Autoscaler::evaluate(TimeMs now_ms, const MetricWindows& windows,
                                                  std::span<const GroupStatus> groups) {
  std::vector<ScalingDecision> out;
  for (const GroupStatus& status : groups) {
    if (status.group == nullptr) continue;
    const auto it = m_groups.find(status.group->name);
    if (it == m_groups.end()) continue;
    if (!status.group->enabled) {
      for (AlarmState& a : it->second.alarms) a.in_alarm = false;  // nothing is evaluated
      continue;
    }
    evaluate_group(status, it->second, now_ms, windows, m_scratch, out);
  }
  return out;
}

void Autoscaler::evaluate_group(const GroupStatus& status, Policies& policies, TimeMs now_ms,
                                const MetricWindows& windows, std::vector<Opinion>& opinions,
                                std::vector<ScalingDecision>& out) {
  const ScalingGroup& group = *status.group;
  const std::uint32_t desired = group.desired;
  opinions.clear();

  // ---- alarms ----
  std::vector<double> values;
  for (std::size_t k = 0; k < policies.alarms.size(); ++k) {
    AlarmState& state = policies.alarms[k];
    const AlarmPolicy& policy = state.policy;
    state.in_alarm = policy.enabled && alarm_condition(policy, group.name, windows, now_ms, values);
    if (!state.in_alarm) continue;
    const std::uint32_t target = clamp_to(group, apply_adjustment(policy, desired));
    const bool cooling =
        state.last_fired_ms && now_ms - *state.last_fired_ms < cooldown_ms(policy, group);
    Opinion opinion{Direction::Hold, desired, true, k, {}};
    if (target > desired) {
      // In its cooldown a scale-out alarm whose condition still holds keeps
      // the capacity it asked for: nobody may scale in under it.
      if (!cooling) opinion = Opinion{Direction::Out, target, true, k, {}};
    } else if (target < desired) {
      if (cooling) continue;
      // Scale-in needs every eligible instance to have reported within the
      // latest period: a silent instance may be the busy one.
      const std::uint32_t reporters = windows.reporters_since(
          group.name, metric_series(policy.metric, policy.query), now_ms - policy.period_ms);
      const std::uint32_t required = required_reporters(policy, status);
      if (required == 0 || reporters < required) continue;
      opinion = Opinion{Direction::In, target, true, k, {}};
    }
    opinion.cause = alarm_cause(policy, values);
    opinions.push_back(std::move(opinion));
  }

  // ---- target tracking ----
  for (std::size_t k = 0; k < policies.tracking.size(); ++k) {
    TrackingState& state = policies.tracking[k];
    const TargetTrackingPolicy& policy = state.policy;
    if (!policy.enabled) continue;
    const std::string head = "target tracking " + policy.name + ": " + policy.metric + " average ";
    const std::string series = metric_series(policy.metric, policy.query);
    const auto stats = windows.stats(group.name, series, now_ms - policy.window_ms, now_ms);
    if (!stats || status.in_service == 0) {
      // Missing data (or nobody in service to scale from): keep the
      // current capacity, which blocks scale-in by other policies too.
      opinions.push_back(Opinion{Direction::Hold, desired, false, k,
                                 head + (stats ? "no instance in service" : "no data") + " over " +
                                     duration_text(policy.window_ms)});
      continue;
    }
    double value = stats->average;
    auto raw = target_tracking_recommendation(policy, status.in_service, value);
    std::string span = duration_text(policy.window_ms);
    if (policy.scale_out_window_ms > 0 && policy.scale_out_window_ms < policy.window_ms) {
      // The recent span may ask for more than the window (a step in load);
      // it never asks for less: scale-in stays on the whole window.
      const auto recent =
          windows.stats(group.name, series, now_ms - policy.scale_out_window_ms, now_ms);
      if (recent) {
        const auto fast =
            target_tracking_recommendation(policy, status.in_service, recent->average);
        if (fast && *fast > std::max(raw.value_or(desired), desired)) {
          value = recent->average;
          raw = fast;
          span = duration_text(policy.scale_out_window_ms);
        }
      }
    }
    const std::uint32_t recommendation = raw.value_or(desired);  // inside the tolerance: hold

    // Stabilisation window: a monotone queue of (time, recommendation).
    auto& history = state.recommendations;
    while (!history.empty() && history.front().first <= now_ms - policy.scale_in_stabilization_ms) {
      history.pop_front();
    }
    while (!history.empty() && history.back().second <= recommendation) history.pop_back();
    history.emplace_back(now_ms, recommendation);
    const std::uint32_t highest = history.front().second;

    std::string cause = head + format_value(value) + " over " + span + ", target " +
                        format_value(policy.target) + ", " + std::to_string(status.in_service) +
                        " in service";
    if (!raw) {
      opinions.push_back(Opinion{Direction::Hold, desired, false, k, cause + ": within tolerance"});
    } else if (recommendation > desired) {
      const std::uint32_t allowed = state.out.remaining(policy.scale_out_limit, now_ms);
      const std::uint32_t capacity =
          clamp_to(group, static_cast<std::uint32_t>(std::min<std::uint64_t>(
                              recommendation, static_cast<std::uint64_t>(desired) + allowed)));
      cause += ": " + std::to_string(recommendation);
      if (capacity < clamp_to(group, recommendation))
        cause += " (rate limit: " + std::to_string(capacity) + ")";
      opinions.push_back(Opinion{capacity > desired ? Direction::Out : Direction::Hold,
                                 std::max(capacity, desired), false, k, cause});
    } else if (recommendation == desired) {
      opinions.push_back(Opinion{Direction::Hold, desired, false, k,
                                 cause + ": " + std::to_string(recommendation)});
    } else if (!policy.disable_scale_in) {
      cause += ": " + std::to_string(recommendation);
      // Incomplete: an eligible instance did not report within the window,
      // or the window reaches back before the first sample (a restart).
      const std::uint32_t reporters =
          windows.reporters_since(group.name, series, now_ms - policy.window_ms);
      const std::uint32_t required = required_reporters(policy, status);
      const auto first = windows.first_sample_ms(group.name, series);
      if (required == 0 || reporters < required || !first || *first > now_ms - policy.window_ms) {
        opinions.push_back(
            Opinion{Direction::Hold, desired, false, k,
                    cause + ", scale-in held: " +
                        (policy.query.empty() ? std::to_string(reporters) + " of " +
                                                    std::to_string(required) + " instances reported"
                                              : std::string("the Prometheus query has no value in "
                                                            "the window or no history as long"))});
        continue;
      }
      if (highest >= desired) {
        opinions.push_back(Opinion{Direction::Hold, desired, false, k,
                                   cause + ", held by the highest recommendation of the last " +
                                       duration_text(policy.scale_in_stabilization_ms) + " (" +
                                       std::to_string(highest) + ")"});
        continue;
      }
      const std::uint32_t allowed = state.in.remaining(policy.scale_in_limit, now_ms);
      const std::uint32_t floor = desired > allowed ? desired - allowed : 0;
      const std::uint32_t capacity = clamp_to(group, std::max(highest, floor));
      if (highest != recommendation) {
        cause += ", highest of the last " + duration_text(policy.scale_in_stabilization_ms) + " " +
                 std::to_string(highest);
      }
      if (capacity > clamp_to(group, highest))
        cause += " (rate limit: " + std::to_string(capacity) + ")";
      opinions.push_back(Opinion{capacity < desired ? Direction::In : Direction::Hold,
                                 std::min(capacity, desired), false, k, cause});
    }
    // disable_scale_in and a lower recommendation: no opinion, so other
    // policies may still scale in.
  }

  if (opinions.empty()) return;
  std::uint32_t to = 0;
  for (const Opinion& o : opinions) to = std::max(to, o.capacity);
  to = clamp_to(group, to);
  if (to == desired) return;

  ScalingDecision decision{group.name, desired, to, {}, {}};
  const Direction direction = to > desired ? Direction::Out : Direction::In;
  const std::uint32_t moved = to > desired ? to - desired : desired - to;
  for (const Opinion& o : opinions) {
    // Scale-out: every policy that asked for more acted (the largest won).
    // Scale-in: only the policies whose capacity was chosen acted; a policy
    // that asked for less was held back by the others and may try again.
    if (o.direction != direction) continue;
    if (direction == Direction::In && o.capacity != to) continue;
    if (o.is_alarm) {
      policies.alarms[o.index].last_fired_ms = now_ms;
      decision.policies.push_back(policies.alarms[o.index].policy.name);
    } else {
      TrackingState& t = policies.tracking[o.index];
      (direction == Direction::Out ? t.out : t.in).moves.emplace_back(now_ms, moved);
      decision.policies.push_back(t.policy.name);
    }
    if (!decision.cause.empty()) decision.cause += "; ";
    decision.cause += o.cause;
  }
  if (decision.policies.empty()) {
    // Only reachable when clamping moved a hold into the range: the group's
    // bounds changed under its desired capacity. Fleet enforces them anyway.
    decision.cause = "desired " + std::to_string(desired) + " outside [" +
                     std::to_string(group.min) + ", " + std::to_string(group.max) + "]";
  }
  out.push_back(std::move(decision));
}

tl::expected<ScalingDecision, ModelError> Autoscaler::execute_policy(const ScalingGroup& group,
                                                                     std::string_view name,
                                                                     bool honour_cooldown,
                                                                     TimeMs now_ms) {
  const auto it = m_groups.find(group.name);
  if (it != m_groups.end()) {
    for (AlarmState& state : it->second.alarms) {
      if (state.policy.name != name) continue;
      if (!state.policy.enabled) return fail("policy " + std::string(name) + " is disabled");
      const std::int64_t cooldown = cooldown_ms(state.policy, group);
      if (honour_cooldown && state.last_fired_ms && now_ms - *state.last_fired_ms < cooldown) {
        return fail("policy " + std::string(name) + " is in its cooldown for another " +
                    duration_text(cooldown - (now_ms - *state.last_fired_ms)));
      }
      state.last_fired_ms = now_ms;
      return ScalingDecision{
          group.name,
          group.desired,
          clamp_to(group, apply_adjustment(state.policy, group.desired)),
          "policy " + state.policy.name + " executed by request: " + adjustment_text(state.policy),
          {state.policy.name}};
    }
    for (const TrackingState& state : it->second.tracking) {
      if (state.policy.name == name) {
        return fail("policy " + std::string(name) +
                    " is a target-tracking policy; only alarm policies can be executed");
      }
    }
  }
  return fail("group " + group.name + " has no policy named " + std::string(name));
}

}  // namespace tide::coordinator
