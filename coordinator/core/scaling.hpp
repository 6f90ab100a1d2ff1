// The scaling-decision core: alarm (simple scaling) and target-tracking
// policies evaluated over the metric windows, and the rules that combine
// them per group (docs/policies.md).
//
// Pure: the shell calls evaluate() once per tick with `now_ms`, the metric
// windows and each group's status, and applies every returned decision with
// Fleet::set_desired(group, to_desired, cause, ...). Policy state (last fire
// for cooldowns, target-tracking recommendations for the stabilisation
// window, rate-limit history) lives here, in memory only: a coordinator
// restart forgets it (docs/policies.md, "What a restart forgets").
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/core/metrics.hpp"
#include "coordinator/core/model.hpp"
#include "coordinator/core/policy_model.hpp"

namespace tide::coordinator {

// What the shell knows about one group at this tick.
struct GroupStatus {
  const ScalingGroup* group = nullptr;  // desired, min, max, enabled, default_cooldown_ms
  std::uint32_t in_service = 0;         // instances in state in_service (target-tracking formula)
  std::uint32_t eligible = 0;           // instances for which metrics_eligible() holds
};

// Counts in_service and eligible over a group's instances (O(instances); the
// shell may keep the counts itself instead).
[[nodiscard]] GroupStatus group_status(const ScalingGroup& group,
                                       std::span<const Instance* const> instances, TimeMs now_ms);

// One change of a group's desired capacity.
struct ScalingDecision {
  std::string group;
  std::uint32_t from_desired = 0;
  std::uint32_t to_desired = 0;       // already clamped to [min, max]
  std::string cause;                  // for the activity: the policies and the measured values
  std::vector<std::string> policies;  // names of the policies that fired
};

// ---- pure helpers (exposed for tests and the docs) ------------------------

// Desired capacity after an alarm policy's adjustment of `desired`, before
// clamping (never below 0). Percent: desired * adjustment / 100 truncated
// towards zero, but at least 1 in magnitude (AWS's rounding), and at least
// min_adjustment_magnitude in magnitude.
[[nodiscard]] std::uint32_t apply_adjustment(const AlarmPolicy& policy, std::uint32_t desired);

// Target tracking's raw recommendation: nullopt inside the tolerance
// (|value / target - 1| <= tolerance) or when in_service is 0; else
// ceil(in_service * value / target).
[[nodiscard]] std::optional<std::uint32_t> target_tracking_recommendation(
    const TargetTrackingPolicy& policy, std::uint32_t in_service, double value);

// One Prometheus query that policies of a group read: the shell polls it
// and records its value under metric_series(metric, query) for `group`.
struct MetricQuery {
  std::string group;
  std::string query;
  std::string metric;                 // the first policy's name for the value (for logs)
  std::vector<std::string> policies;  // the enabled policies reading it
  friend bool operator==(const MetricQuery&, const MetricQuery&) = default;
};

// "87.5", "80", "0.25": short text for causes.
[[nodiscard]] std::string format_value(double value);

class Autoscaler {
 public:
  // `max_window_ms`: the metric windows' retention; a policy that needs
  // data further back than this is refused.
  explicit Autoscaler(std::int64_t max_window_ms = MetricWindows::kDefaultRetentionMs);

  // Create or replace a policy (validated; a name is unique across both
  // kinds within a group). Replacing keeps its cooldown and history.
  [[nodiscard]] tl::expected<void, ModelError> put_alarm(AlarmPolicy policy);
  [[nodiscard]] tl::expected<void, ModelError> put_target_tracking(TargetTrackingPolicy policy);
  // False when there is no such policy.
  bool remove_policy(std::string_view group, std::string_view name);
  void remove_group(std::string_view group);

  [[nodiscard]] const AlarmPolicy* alarm(std::string_view group, std::string_view name) const;
  [[nodiscard]] const TargetTrackingPolicy* target_tracking(std::string_view group,
                                                            std::string_view name) const;
  [[nodiscard]] std::vector<const AlarmPolicy*> alarms_of(std::string_view group) const;
  [[nodiscard]] std::vector<const TargetTrackingPolicy*> target_tracking_of(
      std::string_view group) const;
  // Every distinct (group, query) read by an enabled policy, in group and
  // policy order: what the shell must poll. Disabled groups are the
  // caller's to skip.
  [[nodiscard]] std::vector<MetricQuery> metric_queries() const;
  // When an alarm policy last fired (its cooldown runs from there).
  [[nodiscard]] std::optional<TimeMs> last_fired_ms(std::string_view group,
                                                    std::string_view name) const;
  // Whether the alarm policy's condition held (its metric past the threshold
  // for its consecutive periods) at the latest evaluate(), cooldown or not.
  // False for an unknown or disabled policy and in a disabled group.
  [[nodiscard]] bool in_alarm(std::string_view group, std::string_view name) const;

  // Evaluates every enabled policy of every enabled group in `groups` and
  // returns the groups whose desired capacity changes. Meant to run once per
  // tick (every second): alarms evaluate sliding windows ending at now_ms.
  // Assumes each decision is applied (the next call reads desired again
  // from `groups`).
  [[nodiscard]] std::vector<ScalingDecision> evaluate(TimeMs now_ms, const MetricWindows& windows,
                                                      std::span<const GroupStatus> groups);

  // Runs one alarm policy's adjustment now, whatever its metric says
  // ("execute policy"). Refused for an unknown or disabled policy, a
  // target-tracking policy, and, when `honour_cooldown`, a policy in its
  // cooldown. Works on a disabled group (a user request). to_desired may
  // equal from_desired (at a bound). Starts the policy's cooldown.
  [[nodiscard]] tl::expected<ScalingDecision, ModelError> execute_policy(const ScalingGroup& group,
                                                                         std::string_view name,
                                                                         bool honour_cooldown,
                                                                         TimeMs now_ms);

 private:
  struct AlarmState {
    AlarmPolicy policy;
    std::optional<TimeMs> last_fired_ms;
    bool in_alarm = false;  // condition held at the latest evaluate()
  };
  struct RateWindow {
    std::deque<std::pair<TimeMs, std::uint32_t>> moves;  // (when, instances moved)
    [[nodiscard]] std::uint32_t remaining(const ScalingRateLimit& limit, TimeMs now_ms);
  };
  struct TrackingState {
    TargetTrackingPolicy policy;
    // Recommendations of the stabilisation window as a monotone queue:
    // values strictly decrease from front to back, so the front is the
    // window's highest recommendation.
    std::deque<std::pair<TimeMs, std::uint32_t>> recommendations;
    RateWindow out;
    RateWindow in;
  };
  struct Policies {
    std::vector<AlarmState> alarms;
    std::vector<TrackingState> tracking;
  };
  // One policy's view of the group's capacity at this tick.
  enum class Direction : std::uint8_t {
    Out,   // wants more than desired
    In,    // wants less than desired
    Hold,  // needs at least the current desired (blocks scale-in)
  };
  struct Opinion {
    Direction direction = Direction::Hold;
    std::uint32_t capacity = 0;  // clamped to [min, max]
    bool is_alarm = false;
    std::size_t index = 0;  // into Policies::alarms or ::tracking
    std::string cause;
  };

  void evaluate_group(const GroupStatus& status, Policies& policies, TimeMs now_ms,
                      const MetricWindows& windows, std::vector<Opinion>& opinions,
                      std::vector<ScalingDecision>& out);
  [[nodiscard]] std::int64_t cooldown_ms(const AlarmPolicy& policy,
                                         const ScalingGroup& group) const;

  std::int64_t m_max_window_ms;
  std::map<std::string, Policies, std::less<>> m_groups;
  std::vector<Opinion> m_scratch;
};

}  // namespace tide::coordinator
