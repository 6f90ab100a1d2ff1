#include "coordinator/core/model.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <utility>

#include "coordinator/core/enum_names.hpp"

namespace tide::coordinator {

namespace {

using detail::Names;
using detail::name_of;
using detail::value_of;

constexpr Names<TerminationPolicy, 3> kTerminationPolicyNames{{
    {TerminationPolicy::OldestInstance, "oldest_instance"},
    {TerminationPolicy::NewestInstance, "newest_instance"},
    {TerminationPolicy::OldestLaunchConfiguration, "oldest_launch_configuration"},
}};
constexpr Names<InstanceOrigin, 2> kOriginNames{{
    {InstanceOrigin::Launched, "launched"},
    {InstanceOrigin::Attached, "attached"},
}};
constexpr Names<LifecycleState, 12> kStateNames{{
    {LifecycleState::Pending, "pending"},
    {LifecycleState::Booting, "booting"},
    {LifecycleState::PendingLaunchHook, "pending_launch_hook"},
    {LifecycleState::Warming, "warming"},
    {LifecycleState::InService, "in_service"},
    {LifecycleState::OutOfRotation, "out_of_rotation"},
    {LifecycleState::Draining, "draining"},
    {LifecycleState::PendingTerminateHook, "pending_terminate_hook"},
    {LifecycleState::Terminating, "terminating"},
    {LifecycleState::Terminated, "terminated"},
    {LifecycleState::LaunchFailed, "launch_failed"},
    {LifecycleState::Detached, "detached"},
}};
constexpr Names<Health, 2> kHealthNames{{
    {Health::Healthy, "healthy"},
    {Health::Unhealthy, "unhealthy"},
}};
constexpr Names<ExitReason, 6> kExitReasonNames{{
    {ExitReason::None, "none"},
    {ExitReason::ScaleIn, "scale_in"},
    {ExitReason::Replace, "replace"},
    {ExitReason::Detach, "detach"},
    {ExitReason::User, "user"},
    {ExitReason::Rollout, "rollout"},
}};
constexpr Names<ActivityType, 13> kActivityTypeNames{{
    {ActivityType::ScaleOut, "scale_out"},
    {ActivityType::ScaleIn, "scale_in"},
    {ActivityType::Attach, "attach"},
    {ActivityType::Detach, "detach"},
    {ActivityType::ReplaceUnhealthy, "replace_unhealthy"},
    {ActivityType::TerminateUnexpectedly, "terminate_unexpectedly"},
    {ActivityType::LaunchFailed, "launch_failed"},
    {ActivityType::FailStatic, "fail_static"},
    {ActivityType::TerminateStray, "terminate_stray"},
    {ActivityType::AdoptInstance, "adopt_instance"},
    {ActivityType::TerminateInstance, "terminate_instance"},
    {ActivityType::Rollout, "rollout"},
    {ActivityType::MetricQuery, "metric_query"},
}};
constexpr Names<ActivityStatus, 5> kActivityStatusNames{{
    {ActivityStatus::Running, "running"},
    {ActivityStatus::Successful, "successful"},
    {ActivityStatus::PartiallySuccessful, "partially_successful"},
    {ActivityStatus::Failed, "failed"},
    {ActivityStatus::Cancelled, "cancelled"},
}};

}  // namespace

std::string_view to_string(TerminationPolicy value) { return name_of(kTerminationPolicyNames, value); }
std::string_view to_string(InstanceOrigin value) { return name_of(kOriginNames, value); }
std::string_view to_string(LifecycleState value) { return name_of(kStateNames, value); }
std::string_view to_string(Health value) { return name_of(kHealthNames, value); }
std::string_view to_string(ExitReason value) { return name_of(kExitReasonNames, value); }
std::string duration_text(std::int64_t ms) {
  if (ms % 1'000 != 0 && ms < 60'000) return std::to_string(ms) + " ms";
  const std::int64_t s = ms / 1'000;
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3'600) return std::to_string(s / 60) + " min" + (s % 60 == 0 ? "" : " " + std::to_string(s % 60) + " s");
  return std::to_string(s / 3'600) + " h" + (s % 3'600 / 60 == 0 ? "" : " " + std::to_string(s % 3'600 / 60) + " min");
}

std::string_view to_string(ActivityType value) { return name_of(kActivityTypeNames, value); }
std::string_view to_string(ActivityStatus value) { return name_of(kActivityStatusNames, value); }

template <>
std::optional<TerminationPolicy> from_string<TerminationPolicy>(std::string_view text) {
  return value_of(kTerminationPolicyNames, text);
}
template <>
std::optional<InstanceOrigin> from_string<InstanceOrigin>(std::string_view text) {
  return value_of(kOriginNames, text);
}
template <>
std::optional<LifecycleState> from_string<LifecycleState>(std::string_view text) {
  return value_of(kStateNames, text);
}
template <>
std::optional<Health> from_string<Health>(std::string_view text) {
  return value_of(kHealthNames, text);
}
template <>
std::optional<ExitReason> from_string<ExitReason>(std::string_view text) {
  return value_of(kExitReasonNames, text);
}
template <>
std::optional<ActivityType> from_string<ActivityType>(std::string_view text) {
  return value_of(kActivityTypeNames, text);
}
template <>
std::optional<ActivityStatus> from_string<ActivityStatus>(std::string_view text) {
  return value_of(kActivityStatusNames, text);
}

namespace {

tl::unexpected<ModelError> fail(std::string field, std::string message) {
  return tl::unexpected<ModelError>(ModelError{std::move(message), std::move(field)});
}

constexpr const char* kNameRule = "1..128 bytes of [A-Za-z0-9._:-], starting with a letter or digit";

}  // namespace

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  if (std::isalnum(static_cast<unsigned char>(name.front())) == 0) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

tl::expected<void, ModelError> validate(const ScalingGroup& group) {
  if (!is_valid_name(group.name)) return fail("name", std::string("group name must be ") + kNameRule);
  if (group.min > group.max) {
    return fail("min", "min " + std::to_string(group.min) + " > max " + std::to_string(group.max));
  }
  if (group.desired < group.min) {
    return fail("desired", "desired " + std::to_string(group.desired) + " < min " + std::to_string(group.min));
  }
  if (group.desired > group.max) {
    return fail("desired", "desired " + std::to_string(group.desired) + " > max " + std::to_string(group.max));
  }
  if (!is_valid_name(group.launch_configuration_id)) {
    return fail("launch_configuration", std::string("launch configuration id must be ") + kNameRule);
  }
  if (group.launch_configuration_version < 1) {
    return fail("launch_configuration_version", "launch_configuration_version must be >= 1");
  }
  const std::pair<const char*, std::int64_t> durations[] = {
      {"health_check_grace_period_ms", group.health_check_grace_period_ms},
      {"default_cooldown_ms", group.default_cooldown_ms},
      {"drain_timeout_ms", group.drain_timeout_ms},
      {"warmup_ms", group.warmup_ms}};
  for (const auto& [field, value] : durations) {
    if (value < 0) return fail(field, std::string(field) + " must be >= 0");
  }
  if (group.boot_timeout_ms <= 0) return fail("boot_timeout_ms", "boot_timeout_ms must be > 0");
  if (group.liveness_window_ms <= 0) return fail("liveness_window_ms", "liveness_window_ms must be > 0");
  if (!(group.fail_static_share > 0.0 && group.fail_static_share <= 1.0)) {
    return fail("fail_static_share", "fail_static_share must be in (0, 1]");
  }
  if (!(group.replacement_rate > 0.0 && group.replacement_rate <= 1.0)) {
    return fail("replacement_rate", "replacement_rate must be in (0, 1]");
  }
  const RetryPolicy& r = group.retry;
  if (r.initial_backoff_ms <= 0 || r.max_backoff_ms < r.initial_backoff_ms ||
      !(r.multiplier >= 1.0 && std::isfinite(r.multiplier))) {
    return fail("retry", "retry: initial_backoff_ms > 0, max_backoff_ms >= initial, multiplier >= 1");
  }
  return {};
}

std::string env_file_problem(std::string_view name, std::string_view path) {
  if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string_view::npos) {
    return "the variable name must be non-empty, without '=' or NUL";
  }
  if (path.empty() || path.front() != '/') return "must be an absolute path";
  if (path.find_first_of(std::string_view("\0\n\r", 3)) != std::string_view::npos) {
    return "must not contain NUL or a line break";
  }
  return {};
}

tl::expected<void, ModelError> validate(const LaunchConfiguration& config) {
  if (!is_valid_name(config.id)) return fail("id", std::string("launch configuration id must be ") + kNameRule);
  if (config.command.find_first_of(std::string_view("\0", 1)) != std::string::npos) {
    return fail("command", "command must not contain NUL");
  }
  for (const auto& [name, value] : config.env) {
    if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string::npos) {
      return fail("env." + name, "env." + name + ": the variable name must be non-empty, without '=' or NUL");
    }
    if (value.find('\0') != std::string::npos) return fail("env." + name, "env." + name + ": the value must not contain NUL");
  }
  for (const auto& [name, path] : config.env_files) {
    if (auto problem = env_file_problem(name, path); !problem.empty()) {
      return fail("env_files." + name, "env_files." + name + ": " + problem);
    }
    if (config.env.count(name) != 0) return fail("env_files." + name, "env_files." + name + ": also set in env");
  }
  if (config.version < 1) return fail("version", "launch configuration version must be >= 1");
  if (!(config.hourly_price >= 0.0 && std::isfinite(config.hourly_price))) {
    return fail("hourly_price", "hourly_price must be a finite number >= 0");
  }
  if (config.agent.report_interval_ms < 100 || config.agent.report_interval_ms > 60'000) {
    return fail("agent.report_interval_ms", "agent.report_interval_ms must be 100..60000");
  }
  if (config.agent.readiness_period_ms != 0 &&
      (config.agent.readiness_period_ms < kMinReadinessPeriodMs ||
       config.agent.readiness_period_ms > kMaxReadinessPeriodMs)) {
    return fail("agent.readiness_period_ms", "agent.readiness_period_ms must be 0 (the agent's default) or 10..60000");
  }
  return {};
}

}  // namespace tide::coordinator
