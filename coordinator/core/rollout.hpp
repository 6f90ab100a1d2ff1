// Readiness-gated rollout (docs/rollout.md): replaces a group's instances
// with another launch configuration version, batch by batch, launching
// before it removes (max surge), never letting the serving capacity fall
// below a floor (min healthy), gating every step on the new instances being
// ready and healthy for a bake time, with an optional canary step, pause
// points, a progress deadline per batch and a failure policy.
//
// Pure: the rollout is plain data; advance() looks at a snapshot of the
// group (RolloutView) and the time, updates the rollout and says what the
// fleet must do now: run `surge` instances above desired (the fleet's
// reconciler launches them with the group's current version, which is the
// rollout's target) and drain-and-terminate `retire` (old-version instances,
// without replacement: surge goes down by as many in the same decision).
//
// Invariants advance() keeps by construction (checked in a seeded random
// simulation at sizes 1..20, tests/unit/coordinator/rollout_test.cpp):
//   - counting instances never exceed desired + max surge;
//   - an old instance is retired only while the serving capacity without it
//     stays at or above the floor;
//   - progress is gated on new instances that have been serving for the
//     bake time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/core/model.hpp"

namespace tide::coordinator {

// A count of instances or a percentage of the group's desired capacity.
struct Amount {
  std::uint32_t value = 0;
  bool percent = false;
  friend bool operator==(const Amount&, const Amount&) = default;
};

// "25%" or "3"; nullopt for anything else (a percentage above 100 too).
[[nodiscard]] std::optional<Amount> parse_amount(std::string_view text);
[[nodiscard]] std::string to_string(const Amount& amount);

// The amount of `desired`: a count as it is; a percentage rounded up
// (batch sizes and surge) or, for the capacity floor, rounded up too, as
// AWS's MinHealthyPercentage does (90 % of 1 is 1). Never above `desired`
// for the floor; batch sizes are at least 1.
[[nodiscard]] std::uint32_t resolve_up(const Amount& amount, std::uint32_t desired);

enum class RolloutState : std::uint8_t {
  Running,      // replacing batch by batch
  Paused,       // waiting for resume (a pause point, a failure with on_failure pause, or asked)
  RollingBack,  // replacing the new version's instances with the old version again
  Succeeded,    // every instance runs the target version
  RolledBack,   // the rollback finished: every instance runs the old version again
  Cancelled,    // stopped where it was; instances stay as they are
  Failed,       // stopped after a failure (on_failure cancel, or the rollback itself failed)
};
[[nodiscard]] std::string_view to_string(RolloutState state);
[[nodiscard]] bool is_terminal(RolloutState state);

enum class FailureAction : std::uint8_t { Rollback, Pause, Cancel };
[[nodiscard]] std::string_view to_string(FailureAction action);
[[nodiscard]] std::optional<FailureAction> parse_failure_action(std::string_view text);

// The canary step: `count` new instances take real traffic beside the old
// ones for `bake_ms`; the load balancer's own per-server figures of the two
// sets are compared (canary_verdict).
struct CanarySpec {
  std::uint32_t count = 0;                     // 0: no canary step
  std::int64_t bake_ms = 300'000;
  std::uint64_t min_requests = 20;             // the canary must have served this many to be judged
  double max_error_share_increase = 0.01;      // canary 5xx share minus the old version's
  double max_latency_ratio = 2.0;              // canary mean response time over the old version's
  std::int64_t latency_floor_ms = 20;          // response times below this are never a failure
  friend bool operator==(const CanarySpec&, const CanarySpec&) = default;
};

struct RolloutStrategy {
  Amount batch{25, true};         // old instances replaced per batch (at least 1)
  Amount max_surge{1, false};     // instances above desired while replacing
  Amount min_healthy{90, true};   // serving capacity floor, of desired
  bool pause_after_first_batch = false;
  bool pause_between_batches = false;
  std::vector<std::uint32_t> pause_at_percent;  // pause once this share of the old instances is replaced
  std::int64_t bake_ms = 0;                      // a new instance must serve this long before it counts
  std::int64_t batch_deadline_ms = 600'000;      // a batch not done by then is a failure
  CanarySpec canary;
  FailureAction on_failure = FailureAction::Rollback;
  bool include_protected = false;  // replace instances protected from scale-in too
  friend bool operator==(const RolloutStrategy&, const RolloutStrategy&) = default;
};

// Refuses what can never make progress or can never be meant (surge 0 with a
// floor of 100 %, a deadline shorter than the bake time, ...), naming the field.
[[nodiscard]] tl::expected<void, ModelError> validate(const RolloutStrategy& strategy);

// What a batch is doing.
enum class RolloutPhase : std::uint8_t {
  Canary,  // the canary instances serve beside the old ones
  Batch,   // replacing the batch's old instances
};
[[nodiscard]] std::string_view to_string(RolloutPhase phase);

struct Rollout {
  std::string id;     // "r-<hex>"
  std::string group;
  std::string from_launch_configuration;  // what the group ran before
  std::uint32_t from_version = 0;
  std::string to_launch_configuration;    // the target
  std::uint32_t to_version = 0;
  RolloutStrategy strategy;
  RolloutState state = RolloutState::Running;
  RolloutPhase phase = RolloutPhase::Batch;
  std::uint32_t batch = 0;                 // 1-based once the first batch started; 0 before
  std::vector<std::string> batch_old;      // the old instances this batch replaces
  std::vector<std::string> canary;         // the canary's instances (new version)
  TimeMs batch_started_ms = 0;
  std::uint32_t replaced = 0;              // old instances retired so far (this direction)
  std::uint32_t old_at_start = 0;          // old instances when this direction started
  std::uint32_t failures_in_batch = 0;     // new instances that failed in this batch
  std::uint32_t next_pause_percent = 0;    // index into strategy.pause_at_percent
  bool between_batches = false;            // the batch is done, the next not started (a pause point)
  std::string reason;                      // why paused, failed or rolled back
  TimeMs created_ms = 0;
  TimeMs updated_ms = 0;
  TimeMs finished_ms = 0;                  // 0 while not terminal
  friend bool operator==(const Rollout&, const Rollout&) = default;
};

// Where the rollout is going now (the rollback goes back to `from`).
[[nodiscard]] std::string target_launch_configuration(const Rollout& rollout);
[[nodiscard]] std::uint32_t target_version(const Rollout& rollout);

// One instance of the group as the rollout sees it.
struct RolloutMember {
  std::string id;
  bool target = false;       // runs the rollout's current target version
  bool replaceable = true;   // launched by tide, and not protected unless include_protected
  bool counting = true;      // counts toward desired (not leaving)
  bool serving = false;      // in service, ready and healthy: in rotation
  TimeMs serving_since_ms = 0;
  TimeMs created_ms = 0;
};

struct RolloutView {
  std::uint32_t desired = 0;
  std::vector<RolloutMember> members;
};

// The load balancer's counters for one set of instances over the canary's
// bake time (differences of HAProxy's cumulative per-server figures).
struct TrafficFigures {
  std::uint64_t requests = 0;
  std::uint64_t errors_5xx = 0;         // HTTP 5xx answered by the servers
  std::uint64_t connection_errors = 0;  // failed connections and responses (HAProxy econ + eresp)
  double mean_response_ms = 0.0;        // HAProxy's rtime average
  friend bool operator==(const TrafficFigures&, const TrafficFigures&) = default;
};

struct CanaryVerdict {
  enum class Outcome : std::uint8_t { Wait, Pass, Fail };
  Outcome outcome = Outcome::Wait;
  std::string reason;  // the figures it decided on
};

// Compares the canary with the old version: fails on an error share
// (5xx + connection errors over requests) more than max_error_share_increase
// above the old version's, or a mean response time above max_latency_ratio
// times the old version's (and above latency_floor_ms). Waits while the
// canary has served fewer than min_requests. Without old-version traffic to
// compare with, the old share counts as 0 and latency is not judged.
[[nodiscard]] CanaryVerdict canary_verdict(const CanarySpec& spec, const TrafficFigures& canary,
                                           const TrafficFigures& baseline);

// What happened in one advance(), for activities and notifications.
struct RolloutNote {
  enum class Kind : std::uint8_t {
    CanaryStarted,
    CanaryPassed,
    BatchStarted,
    BatchDone,
    Paused,
    Failed,
    RollbackStarted,
    Succeeded,
    RolledBack,
  };
  Kind kind = Kind::BatchStarted;
  std::uint32_t batch = 0;
  std::vector<std::string> instances;
  std::string message;
};
[[nodiscard]] std::string_view to_string(RolloutNote::Kind kind);

struct RolloutDecision {
  std::uint32_t surge = 0;             // run desired + surge instances
  std::vector<std::string> retire;     // drain and terminate these, without replacement
  std::vector<RolloutNote> notes;
  bool changed = false;                // the rollout record changed: persist it
};

// Starts a rollout record for `group` from its current version to the target.
[[nodiscard]] Rollout new_rollout(std::string id, const ScalingGroup& group, std::string to_launch_configuration,
                                  std::uint32_t to_version, RolloutStrategy strategy, TimeMs now_ms);

// One step. `canary_figures`: the canary's and the old version's traffic
// since the canary started serving, when the shell has them.
[[nodiscard]] RolloutDecision advance(Rollout& rollout, const RolloutView& view, TimeMs now_ms,
                                      const std::optional<std::pair<TrafficFigures, TrafficFigures>>& canary_figures =
                                          std::nullopt);

// A new instance of the target version failed (its launch, or its health
// before it was baked): counted against the batch; as many failures as the
// batch has instances (1 in the canary) fail the rollout at the next advance().
void note_target_failure(Rollout& rollout, std::string_view instance_id, TimeMs now_ms);

// Operator actions. Each refuses (with a message) what the state does not allow.
[[nodiscard]] tl::expected<void, ModelError> pause(Rollout& rollout, std::string reason, TimeMs now_ms);
[[nodiscard]] tl::expected<void, ModelError> resume(Rollout& rollout, TimeMs now_ms);
[[nodiscard]] tl::expected<void, ModelError> cancel(Rollout& rollout, std::string reason, TimeMs now_ms);
[[nodiscard]] tl::expected<void, ModelError> rollback(Rollout& rollout, std::string reason, TimeMs now_ms);

}  // namespace tide::coordinator
