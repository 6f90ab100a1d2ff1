// JSON views of a rollout (coordinator/core/rollout.hpp): the record the
// store keeps and the admin API shows (one shape for both, so a stored record
// reads back exactly), and the body of a request that starts a rollout.
//
// Nothing here throws. Amounts are written as strings ("25%", "3"); readers
// also take a count as a JSON integer.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "coordinator/core/model.hpp"
#include "coordinator/core/rollout.hpp"

namespace tide::coordinator {

// {"batch", "max_surge", "min_healthy", "pause_after_first_batch",
//  "pause_between_batches", "pause_at_percent", "bake_ms", "batch_deadline_ms",
//  "canary": {"count", "bake_ms", "min_requests", "max_error_share_increase",
//             "max_latency_ratio", "latency_floor_ms"},
//  "on_failure", "include_protected"}: also a valid request body.
[[nodiscard]] nlohmann::json to_json(const RolloutStrategy& strategy);

// The record: id, group, from/to {launch_configuration, version}, state,
// phase, batch, batch_instances, canary_instances, the counters, times (ms
// since the epoch), reason and strategy.
[[nodiscard]] nlohmann::json to_json(const Rollout& rollout);

// Reads a record written by to_json(Rollout). Every top-level key is
// required and unknown keys are refused; the strategy must pass validate().
// The error names the field ("strategy.canary.bake_ms: must be an integer").
[[nodiscard]] tl::expected<Rollout, std::string> rollout_from_json(const nlohmann::json& record);

// Every RolloutState in declaration order, and the state a spelling
// (to_string) names.
[[nodiscard]] std::span<const RolloutState> rollout_states();
[[nodiscard]] std::optional<RolloutState> parse_rollout_state(std::string_view text);

// POST body that starts a rollout of a group.
struct RolloutRequest {
  std::string launch_configuration;  // "" = the group's current launch configuration
  std::uint32_t version = 0;         // 0 = its latest version
  RolloutStrategy strategy;
  friend bool operator==(const RolloutRequest&, const RolloutRequest&) = default;
};

// Every key is optional: launch_configuration (string), version (integer
// >= 1) and the strategy's keys as to_json(RolloutStrategy) writes them,
// where batch, max_surge and min_healthy may also be non-negative integers.
// Unknown keys, wrong types and negative or out-of-range numbers are refused
// naming the field ("canary.bake_ms"; "" when the body is not an object); the
// strategy is then checked with validate() and its error passed through.
[[nodiscard]] tl::expected<RolloutRequest, ModelError> parse_rollout_request(const nlohmann::json& body);

}  // namespace tide::coordinator
