// JSON views of the policy model (policy_model.hpp): the admin API's request
// and response bodies, the rows the store keeps, and `tidectl apply` files
// (after YAML -> JSON). One spelling for all three, so a spec round-trips.
//
// Parsing never throws and refuses unknown keys; a JsonError names the field.
// `group` comes from the caller (the URL or the enclosing group in a fleet
// file); a body may repeat it, but it must then match.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "coordinator/core/policy_model.hpp"
#include "coordinator/io/json/json_model.hpp"

namespace tide::coordinator {

// A scaling policy is one of two kinds; they share one name space per group.
using ScalingPolicy = std::variant<AlarmPolicy, TargetTrackingPolicy>;

[[nodiscard]] const std::string& policy_group(const ScalingPolicy& policy);
[[nodiscard]] const std::string& policy_name(const ScalingPolicy& policy);

[[nodiscard]] nlohmann::json to_json(const AlarmPolicy& policy);           // "type": "alarm"
[[nodiscard]] nlohmann::json to_json(const TargetTrackingPolicy& policy);  // "type": "target_tracking"
[[nodiscard]] nlohmann::json to_json(const ScalingPolicy& policy);
// Spec fields only; last_fired_ms is state and is added by the caller.
[[nodiscard]] nlohmann::json to_json(const ScheduledAction& action);
[[nodiscard]] nlohmann::json to_json(const LifecycleHook& hook);
[[nodiscard]] nlohmann::json to_json(const NotificationTarget& target);

// `type` selects the kind ("alarm" when absent). Validated (validate()) too.
[[nodiscard]] tl::expected<ScalingPolicy, JsonError> policy_from_json(const nlohmann::json& body,
                                                                      std::string_view group);
// start/end as `start_ms`/`end_ms` (epoch ms) or `start_time`/`end_time`
// (RFC 3339, e.g. "2026-11-27T11:00:00+08:00").
[[nodiscard]] tl::expected<ScheduledAction, JsonError> scheduled_action_from_json(const nlohmann::json& body,
                                                                                  std::string_view group);
[[nodiscard]] tl::expected<LifecycleHook, JsonError> lifecycle_hook_from_json(const nlohmann::json& body,
                                                                             std::string_view group);
[[nodiscard]] tl::expected<NotificationTarget, JsonError> notification_target_from_json(
    const nlohmann::json& body, std::string_view group);

// "2026-11-27T03:00:00Z" (UTC, second precision) and back; RFC 3339 offsets
// and an optional fraction are accepted when parsing.
[[nodiscard]] std::string format_rfc3339(TimeMs time_ms);
[[nodiscard]] tl::expected<TimeMs, std::string> parse_rfc3339(std::string_view text);

}  // namespace tide::coordinator
