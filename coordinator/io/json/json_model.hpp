// JSON views of the coordinator's model for the admin API, and parsing of
// API request bodies. Parsing never throws: a bad field gives a JsonError
// naming it, and nothing is half-applied (callers parse fully, then act).
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "coordinator/core/model.hpp"

namespace tide::coordinator {

struct JsonError {
  std::string field;    // e.g. "max"
  std::string message;  // e.g. "must be an integer 0..10000"
};

[[nodiscard]] nlohmann::json to_json(const LaunchConfiguration& config);
[[nodiscard]] nlohmann::json to_json(const ScalingGroup& group);
[[nodiscard]] nlohmann::json to_json(const Instance& instance);
[[nodiscard]] nlohmann::json to_json(const Activity& activity);

// A new launch configuration from a POST body (id, command, port, env,
// agent.readiness_path, agent.report_interval_ms, agent.readiness_period_ms,
// hourly_price). Unknown keys are refused.
[[nodiscard]] tl::expected<LaunchConfiguration, JsonError> launch_configuration_from_json(
    const nlohmann::json& body);

// A new group from a POST body. `desired` defaults to `min`.
[[nodiscard]] tl::expected<ScalingGroup, JsonError> group_from_json(const nlohmann::json& body);

// Applies a PATCH body (min, max, desired, launch_configuration, ...) to a copy
// of `group`. The caller validates the result as a whole.
[[nodiscard]] tl::expected<ScalingGroup, JsonError> patch_group(ScalingGroup group,
                                                                const nlohmann::json& body);

}  // namespace tide::coordinator
