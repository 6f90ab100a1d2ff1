#include "coordinator/core/model.hpp"

#include <array>
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
constexpr Names<ExitReason, 5> kExitReasonNames{{
    {ExitReason::None, "none"},
    {ExitReason::ScaleIn, "scale_in"},
    {ExitReason::Replace, "replace"},
    {ExitReason::Detach, "detach"},
    {ExitReason::User, "user"},
}};
constexpr Names<ActivityType, 11> kActivityTypeNames{{
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

tl::unexpected<ModelError> fail(std::string message) {
  return tl::unexpected<ModelError>(ModelError{std::move(message)});
}

bool valid_name(const std::string& name) { return !name.empty() && name.size() <= 128; }

}  // namespace

tl::expected<void, ModelError> validate(const ScalingGroup& group) {
  if (!valid_name(group.name)) return fail("group name must be 1..128 bytes");
  if (group.min > group.max) {
    return fail("min " + std::to_string(group.min) + " > max " + std::to_string(group.max));
  }
  if (group.desired < group.min) {
    return fail("desired " + std::to_string(group.desired) + " < min " + std::to_string(group.min));
  }
  if (group.desired > group.max) {
    return fail("desired " + std::to_string(group.desired) + " > max " + std::to_string(group.max));
  }
  if (!valid_name(group.launch_configuration_id)) {
    return fail("launch_configuration_id must be 1..128 bytes");
  }
  if (group.launch_configuration_version < 1) return fail("launch_configuration_version must be >= 1");
  if (group.health_check_grace_period_ms < 0 || group.default_cooldown_ms < 0 ||
      group.boot_timeout_ms <= 0 || group.drain_timeout_ms < 0 || group.warmup_ms < 0 ||
      group.liveness_window_ms <= 0) {
    return fail("durations must be >= 0 (boot_timeout_ms and liveness_window_ms > 0)");
  }
  if (!(group.fail_static_share > 0.0 && group.fail_static_share <= 1.0)) {
    return fail("fail_static_share must be in (0, 1]");
  }
  if (!(group.replacement_rate > 0.0 && group.replacement_rate <= 1.0)) {
    return fail("replacement_rate must be in (0, 1]");
  }
  const RetryPolicy& r = group.retry;
  if (r.initial_backoff_ms <= 0 || r.max_backoff_ms < r.initial_backoff_ms ||
      !(r.multiplier >= 1.0 && std::isfinite(r.multiplier))) {
    return fail("retry: initial_backoff_ms > 0, max_backoff_ms >= initial, multiplier >= 1");
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
  if (!valid_name(config.id)) return fail("launch configuration id must be 1..128 bytes");
  for (const auto& [name, path] : config.env_files) {
    if (auto problem = env_file_problem(name, path); !problem.empty()) return fail("env_files." + name + ": " + problem);
    if (config.env.count(name) != 0) return fail("env_files." + name + ": also set in env");
  }
  if (config.version < 1) return fail("launch configuration version must be >= 1");
  if (!(config.hourly_price >= 0.0 && std::isfinite(config.hourly_price))) {
    return fail("hourly_price must be a finite number >= 0");
  }
  if (config.agent.report_interval_ms < 100 || config.agent.report_interval_ms > 60'000) {
    return fail("agent.report_interval_ms must be 100..60000");
  }
  if (config.agent.readiness_period_ms != 0 &&
      (config.agent.readiness_period_ms < kMinReadinessPeriodMs ||
       config.agent.readiness_period_ms > kMaxReadinessPeriodMs)) {
    return fail("agent.readiness_period_ms must be 0 (the agent's default) or 10..60000");
  }
  return {};
}

}  // namespace tide::coordinator
