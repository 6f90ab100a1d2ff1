#include "coordinator/core/policy_model.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <utility>

#include "coordinator/core/enum_names.hpp"
#include "coordinator/core/lb_metrics.hpp"

namespace tide::coordinator {

namespace {

using detail::Names;
using detail::name_of;
using detail::value_of;

constexpr Names<Statistic, 3> kStatisticNames{{
    {Statistic::Average, "average"},
    {Statistic::Maximum, "maximum"},
    {Statistic::Minimum, "minimum"},
}};
constexpr Names<Comparison, 6> kComparisonNames{{
    {Comparison::Greater, ">"},
    {Comparison::GreaterEqual, ">="},
    {Comparison::Less, "<"},
    {Comparison::LessEqual, "<="},
    {Comparison::Equal, "=="},
    {Comparison::NotEqual, "!="},
}};
constexpr Names<AdjustmentType, 3> kAdjustmentNames{{
    {AdjustmentType::ChangeInCapacity, "change"},
    {AdjustmentType::ExactCapacity, "exact"},
    {AdjustmentType::PercentChangeInCapacity, "percent"},
}};
constexpr Names<HookTransition, 2> kTransitionNames{{
    {HookTransition::Launching, "launching"},
    {HookTransition::Terminating, "terminating"},
}};
constexpr Names<HookResult, 2> kHookResultNames{{
    {HookResult::Continue, "continue"},
    {HookResult::Abandon, "abandon"},
}};
constexpr Names<NotificationFormat, 2> kFormatNames{{
    {NotificationFormat::Generic, "generic"},
    {NotificationFormat::WeCom, "wecom"},
}};
constexpr Names<NotificationEvent, 12> kEventNames{{
    {NotificationEvent::ScaleOutSuccessful, "scale_out_successful"},
    {NotificationEvent::ScaleOutFailed, "scale_out_failed"},
    {NotificationEvent::ScaleInSuccessful, "scale_in_successful"},
    {NotificationEvent::ScaleInFailed, "scale_in_failed"},
    {NotificationEvent::ReplaceSuccessful, "replace_successful"},
    {NotificationEvent::ReplaceFailed, "replace_failed"},
    {NotificationEvent::HookTimeout, "hook_timeout"},
    {NotificationEvent::RolloutStarted, "rollout_started"},
    {NotificationEvent::RolloutPaused, "rollout_paused"},
    {NotificationEvent::RolloutFailed, "rollout_failed"},
    {NotificationEvent::RolloutRolledBack, "rollout_rolled_back"},
    {NotificationEvent::RolloutSucceeded, "rollout_succeeded"},
}};

tl::unexpected<ModelError> fail(std::string field, std::string message) {
  return tl::unexpected<ModelError>(ModelError{std::move(message), std::move(field)});
}

// Every message below starts with the field it is about ("metric must be
// ...", "min 3 > max 2"): that word is the field.
tl::unexpected<ModelError> fail(std::string message) {
  std::size_t end = 0;
  while (end < message.size() && (std::isalnum(static_cast<unsigned char>(message[end])) != 0 ||
                                  message[end] == '_' || message[end] == '.')) {
    ++end;
  }
  std::string field = message.substr(0, end);
  return fail(std::move(field), std::move(message));
}

// Group and name are checked the same way by every struct.
tl::expected<void, ModelError> check_names(const std::string& group, const std::string& name) {
  if (!is_valid_name(group)) return fail("group must be 1..128 bytes of [A-Za-z0-9._:-], starting with a letter or digit");
  if (!is_valid_name(name)) return fail("name must be 1..128 bytes of [A-Za-z0-9._:-], starting with a letter or digit");
  return {};
}

bool finite(double value) { return std::isfinite(value); }

// The metric name and query of either policy kind: a query must fit and be
// text, and a query's value must not borrow a name the agents or the load
// balancer report (the two could never be told apart in the API).
tl::expected<void, ModelError> check_metric(const std::string& metric, const std::string& query) {
  if (!is_valid_name(metric)) return fail("metric must be 1..128 bytes of [A-Za-z0-9._:-]");
  if (query.empty()) return {};
  if (query.size() > kMaxQueryBytes) return fail("query must be at most 4096 bytes");
  for (const char c : query) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\n') || u == 0x7f) {
      return fail("query must not contain control characters other than tab and newline");
    }
  }
  if (query.find_first_not_of(" \t\n") == std::string::npos) return fail("query must not be blank");
  if (is_agent_builtin_metric(metric) || is_load_balancer_metric(metric)) {
    return fail("metric '" + metric + "' is reported by " +
                (is_agent_builtin_metric(metric) ? std::string("the agents") : std::string("the load balancer")) +
                "; name the query's value something else (e.g. queue_depth)");
  }
  return {};
}

}  // namespace

std::string_view to_string(Statistic value) { return name_of(kStatisticNames, value); }
std::string_view to_string(Comparison value) { return name_of(kComparisonNames, value); }
std::string_view to_string(AdjustmentType value) { return name_of(kAdjustmentNames, value); }
std::string_view to_string(HookTransition value) { return name_of(kTransitionNames, value); }
std::string_view to_string(HookResult value) { return name_of(kHookResultNames, value); }
std::string_view to_string(NotificationFormat value) { return name_of(kFormatNames, value); }
std::string_view to_string(NotificationEvent value) { return name_of(kEventNames, value); }

std::string notification_event_names() {
  std::string names;
  for (const auto& [event, name] : kEventNames) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names;
}

template <>
std::optional<Statistic> from_string<Statistic>(std::string_view text) {
  return value_of(kStatisticNames, text);
}
template <>
std::optional<Comparison> from_string<Comparison>(std::string_view text) {
  return value_of(kComparisonNames, text);
}
template <>
std::optional<AdjustmentType> from_string<AdjustmentType>(std::string_view text) {
  return value_of(kAdjustmentNames, text);
}
template <>
std::optional<HookTransition> from_string<HookTransition>(std::string_view text) {
  return value_of(kTransitionNames, text);
}
template <>
std::optional<HookResult> from_string<HookResult>(std::string_view text) {
  return value_of(kHookResultNames, text);
}
template <>
std::optional<NotificationFormat> from_string<NotificationFormat>(std::string_view text) {
  return value_of(kFormatNames, text);
}
template <>
std::optional<NotificationEvent> from_string<NotificationEvent>(std::string_view text) {
  return value_of(kEventNames, text);
}

bool is_agent_builtin_metric(std::string_view metric) {
  return metric == kMetricCpu || metric == kMetricMemory || metric == kMetricLoad1 || metric == kMetricNetIn ||
         metric == kMetricNetOut || metric == kMetricTcpEstablished;
}

std::string_view to_string(MetricSource value) {
  switch (value) {
    case MetricSource::Agent: return "agent";
    case MetricSource::LoadBalancer: return "load_balancer";
    case MetricSource::Prometheus: return "prometheus";
  }
  return "agent";
}

MetricSource metric_source(std::string_view metric, std::string_view query) {
  if (!query.empty()) return MetricSource::Prometheus;
  return is_load_balancer_metric(metric) ? MetricSource::LoadBalancer : MetricSource::Agent;
}

namespace {
constexpr std::string_view kQuerySeriesPrefix = "promql ";
}  // namespace

std::string metric_series(std::string_view metric, std::string_view query) {
  if (query.empty()) return std::string(metric);
  return std::string(kQuerySeriesPrefix) + std::string(query);
}

bool is_query_series(std::string_view series) {
  return series.starts_with(kQuerySeriesPrefix);
}

bool compare(double value, Comparison comparison, double threshold) {
  switch (comparison) {
    case Comparison::Greater: return value > threshold;
    case Comparison::GreaterEqual: return value >= threshold;
    case Comparison::Less: return value < threshold;
    case Comparison::LessEqual: return value <= threshold;
    case Comparison::Equal: return value == threshold;
    case Comparison::NotEqual: return value != threshold;
  }
  return false;
}

namespace {

// cpu and memory as the agents report them (no query) are percentages: a
// threshold above 100 could never be reached.
bool is_percent_metric(std::string_view metric, std::string_view query) {
  return query.empty() && (metric == kMetricCpu || metric == kMetricMemory);
}

}  // namespace

tl::expected<void, ModelError> validate(const AlarmPolicy& policy) {
  if (auto ok = check_names(policy.group, policy.name); !ok) return ok;
  if (auto ok = check_metric(policy.metric, policy.query); !ok) return ok;
  if (!finite(policy.threshold)) return fail("threshold must be a finite number");
  if (is_percent_metric(policy.metric, policy.query) && (policy.threshold < 0.0 || policy.threshold > 100.0)) {
    return fail("threshold", policy.metric + " is a percentage: the threshold must be 0..100");
  }
  if (policy.period_ms < 1'000 || policy.period_ms % 1'000 != 0 || policy.period_ms > 86'400'000) {
    return fail("period_ms", "period must be a whole number of seconds, 1..86400");
  }
  if (policy.evaluation_periods < 1 || policy.evaluation_periods > 1'000) {
    return fail("evaluation_periods must be 1..1000");
  }
  if (policy.adjustment_type == AdjustmentType::ExactCapacity && policy.adjustment < 0) {
    return fail("adjustment must be >= 0 for an exact capacity");
  }
  if (policy.adjustment_type != AdjustmentType::ExactCapacity && policy.adjustment == 0) {
    return fail("adjustment must not be 0 for a change or percent adjustment");
  }
  if (policy.adjustment_type == AdjustmentType::PercentChangeInCapacity &&
      (policy.adjustment < -100 || policy.adjustment > 10'000)) {
    return fail("adjustment must be -100..10000 percent");
  }
  if (policy.adjustment_type != AdjustmentType::PercentChangeInCapacity && policy.min_adjustment_magnitude != 0) {
    return fail("min_adjustment_magnitude applies to percent adjustments only");
  }
  if (policy.cooldown_ms && (*policy.cooldown_ms < 0 || *policy.cooldown_ms > 86'400'000)) {
    return fail("cooldown_ms", "cooldown must be 0..86400 s");
  }
  return {};
}

tl::expected<void, ModelError> validate(const TargetTrackingPolicy& policy) {
  if (auto ok = check_names(policy.group, policy.name); !ok) return ok;
  if (auto ok = check_metric(policy.metric, policy.query); !ok) return ok;
  if (!(finite(policy.target) && policy.target > 0.0)) return fail("target must be a finite number > 0");
  if (is_percent_metric(policy.metric, policy.query) && policy.target > 100.0) {
    return fail("target", policy.metric + " is a percentage: the target must be above 0 and at most 100");
  }
  if (!(finite(policy.tolerance) && policy.tolerance >= 0.0 && policy.tolerance < 1.0)) {
    return fail("tolerance must be in [0, 1)");
  }
  if (policy.window_ms < 1'000 || policy.window_ms > 86'400'000) return fail("window_ms", "window must be 1..86400 s");
  if (policy.scale_out_window_ms != 0 &&
      (policy.scale_out_window_ms < 1'000 || policy.scale_out_window_ms > policy.window_ms)) {
    return fail("scale_out_window_ms", "scale_out_window must be 0 (off) or 1 s..the window");
  }
  if (policy.scale_in_stabilization_ms < 0 || policy.scale_in_stabilization_ms > 86'400'000) {
    return fail("scale_in_stabilization_ms", "scale_in_stabilization must be 0..86400 s");
  }
  for (const auto* limit : {&policy.scale_out_limit, &policy.scale_in_limit}) {
    if (limit->period_ms < 1'000 || limit->period_ms > 86'400'000) {
      return fail("rate_limit.period", "rate limit period must be 1..86400 s");
    }
  }
  return {};
}

tl::expected<void, ModelError> validate(const ScheduledAction& action) {
  if (auto ok = check_names(action.group, action.name); !ok) return ok;
  if (!action.min && !action.max && !action.desired) return fail("desired", "set at least one of min, max, desired");
  if (action.min && action.max && *action.min > *action.max) {
    return fail("min " + std::to_string(*action.min) + " > max " + std::to_string(*action.max));
  }
  if (action.desired && action.max && *action.desired > *action.max) {
    return fail("desired " + std::to_string(*action.desired) + " > max " + std::to_string(*action.max));
  }
  if (action.desired && action.min && *action.desired < *action.min) {
    return fail("desired " + std::to_string(*action.desired) + " < min " + std::to_string(*action.min));
  }
  if (action.cron.empty() && !action.start_ms) return fail("start_time", "a one-shot action (no cron) needs start_time");
  if (action.start_ms && action.end_ms && *action.end_ms <= *action.start_ms) {
    return fail("end_time must be after start_time");
  }
  if (action.time_zone.empty() || action.time_zone.size() > 128) return fail("time_zone must be 1..128 bytes");
  return {};
}

tl::expected<void, ModelError> validate(const LifecycleHook& hook) {
  if (auto ok = check_names(hook.group, hook.name); !ok) return ok;
  if (hook.heartbeat_timeout_ms < 30'000 || hook.heartbeat_timeout_ms > 7'200'000) {
    return fail("heartbeat_timeout_ms", "heartbeat_timeout must be 30..7200 s");
  }
  if (hook.notification_metadata.size() > 1'024) return fail("notification_metadata must be <= 1024 bytes");
  if (!hook.agent_script.empty() && !is_valid_name(hook.agent_script)) {
    return fail("agent_script must be 1..128 bytes of [A-Za-z0-9._:-]");
  }
  return {};
}

tl::expected<void, ModelError> validate(const NotificationTarget& target) {
  if (auto ok = check_names(target.group, target.name); !ok) return ok;
  const bool http = target.url.starts_with("http://") || target.url.starts_with("https://");
  if (!http || target.url.size() > 2'048) return fail("url must be an http:// or https:// URL of <= 2048 bytes");
  // A host, and nothing that could split a request line or a header.
  const std::string_view rest = std::string_view(target.url).substr(target.url.find("//") + 2);
  const std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.empty() || host.front() == ':' || host.front() == '@') return fail("url must name a host");
  for (const char c : target.url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return fail("url must not contain spaces or control characters");
  }
  if (target.events.empty()) return fail("events must name at least one event");
  for (std::size_t i = 0; i < target.events.size(); ++i) {
    for (std::size_t j = i + 1; j < target.events.size(); ++j) {
      if (target.events[i] == target.events[j]) {
        return fail("events", "events lists " + std::string(to_string(target.events[i])) + " twice");
      }
    }
  }
  return {};
}

}  // namespace tide::coordinator
