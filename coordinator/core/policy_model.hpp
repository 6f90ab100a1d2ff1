// Plain data for everything that changes a group's capacity by itself or
// reacts to its lifecycle: alarm (simple scaling) policies, target tracking
// policies, scheduled actions, lifecycle hooks and notification targets
// (DESIGN.md, "Concepts").
//
// Like model.hpp: plain structs, no clock, enums with one spelling each used
// by the store, the HTTP API, `tidectl apply` and the docs. Each struct has a
// validate() that names the offending field, so a bad API request or fleet
// file is refused whole before anything is stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/core/model.hpp"

namespace tide::coordinator {

// ---- enums ----------------------------------------------------------------

// How the samples of a window are reduced to one value.
enum class Statistic : std::uint8_t {
  Average,  // "average"
  Maximum,  // "maximum"
  Minimum,  // "minimum"
};

enum class Comparison : std::uint8_t {
  Greater,       // ">"
  GreaterEqual,  // ">="
  Less,          // "<"
  LessEqual,     // "<="
  Equal,         // "=="
  NotEqual,      // "!="
};

// What an alarm policy's `adjustment` means (AWS simple scaling).
enum class AdjustmentType : std::uint8_t {
  ChangeInCapacity,         // "change": desired += adjustment
  ExactCapacity,            // "exact": desired = adjustment
  PercentChangeInCapacity,  // "percent": desired += desired * adjustment / 100
};

enum class HookTransition : std::uint8_t {
  Launching,    // "launching": after the agent's HELLO, before the instance may enter rotation
  Terminating,  // "terminating": after drain, before the provider terminates it
};

enum class HookResult : std::uint8_t {
  Continue,  // "continue"
  Abandon,   // "abandon": launching -> terminate, counts as a failed launch
};

enum class NotificationFormat : std::uint8_t {
  Generic,  // "generic": tide's JSON body
  WeCom,    // "wecom": WeCom (WeChat Work) group-robot markdown message
};

// What a notification target subscribes to.
enum class NotificationEvent : std::uint8_t {
  ScaleOutSuccessful,  // "scale_out_successful"
  ScaleOutFailed,      // "scale_out_failed"
  ScaleInSuccessful,   // "scale_in_successful"
  ScaleInFailed,       // "scale_in_failed"
  ReplaceSuccessful,   // "replace_successful": unhealthy instance replaced
  ReplaceFailed,       // "replace_failed"
  HookTimeout,         // "hook_timeout": a lifecycle hook ran out of time
  RolloutStarted,      // "rollout_started": a rollout began (docs/rollout.md)
  RolloutPaused,       // "rollout_paused": a rollout waits for resume
  RolloutFailed,       // "rollout_failed": a batch, the canary or a rollback failed
  RolloutRolledBack,   // "rollout_rolled_back": a rollback finished, the old version runs
  RolloutSucceeded,    // "rollout_succeeded": every instance runs the target version
};

[[nodiscard]] std::string_view to_string(Statistic value);
[[nodiscard]] std::string_view to_string(Comparison value);
[[nodiscard]] std::string_view to_string(AdjustmentType value);
[[nodiscard]] std::string_view to_string(HookTransition value);
[[nodiscard]] std::string_view to_string(HookResult value);
[[nodiscard]] std::string_view to_string(NotificationFormat value);
[[nodiscard]] std::string_view to_string(NotificationEvent value);
// Every event name, comma-separated, for error messages and help texts.
[[nodiscard]] std::string notification_event_names();

template <> std::optional<Statistic> from_string<Statistic>(std::string_view text);
template <> std::optional<Comparison> from_string<Comparison>(std::string_view text);
template <> std::optional<AdjustmentType> from_string<AdjustmentType>(std::string_view text);
template <> std::optional<HookTransition> from_string<HookTransition>(std::string_view text);
template <> std::optional<HookResult> from_string<HookResult>(std::string_view text);
template <> std::optional<NotificationFormat> from_string<NotificationFormat>(std::string_view text);
template <> std::optional<NotificationEvent> from_string<NotificationEvent>(std::string_view text);

// True when `value comparison threshold` holds.
[[nodiscard]] bool compare(double value, Comparison comparison, double threshold);

// ---- metrics --------------------------------------------------------------

// Built-in metric names, as reported by the agent (protocol Metrics); any
// other valid id is a custom metric the application reports.
inline constexpr std::string_view kMetricCpu = "cpu";                   // % of all cores
inline constexpr std::string_view kMetricMemory = "memory";             // % of memory
inline constexpr std::string_view kMetricLoad1 = "load1";
inline constexpr std::string_view kMetricNetIn = "network_in";          // bytes/s
inline constexpr std::string_view kMetricNetOut = "network_out";        // bytes/s
inline constexpr std::string_view kMetricTcpEstablished = "tcp_established";

// True for the names above: what every agent reports.
[[nodiscard]] bool is_agent_builtin_metric(std::string_view metric);

// Where a policy's metric comes from (docs/policies.md, "Metrics"): the
// agents (built-in or custom names), the load balancer (lb_metrics.hpp), or
// Prometheus when the policy has a `query`: the value of that PromQL instant
// query, which `metric` names.
enum class MetricSource : std::uint8_t {
  Agent,         // "agent"
  LoadBalancer,  // "load_balancer"
  Prometheus,    // "prometheus"
};
[[nodiscard]] std::string_view to_string(MetricSource value);
[[nodiscard]] MetricSource metric_source(std::string_view metric, std::string_view query);

inline constexpr std::size_t kMaxQueryBytes = 4'096;

// The key of a policy's values in the metric windows: the metric's name, or
// for a Prometheus query "promql " + the query. A space never occurs in a
// metric name, so a query's values never mix with what agents report, and
// policies with the same query share one series (and one query per poll).
[[nodiscard]] std::string metric_series(std::string_view metric, std::string_view query);
// True for a series metric_series() made of a query.
[[nodiscard]] bool is_query_series(std::string_view series);

// ---- scaling policies -----------------------------------------------------

// Simple scaling: when `metric statistic comparison threshold` holds for
// `evaluation_periods` consecutive periods of `period_ms`, adjust desired,
// then wait out the cooldown.
struct AlarmPolicy {
  std::string group;
  std::string name;  // unique within the group, 1..128 bytes of [A-Za-z0-9._:-]
  bool enabled = true;
  std::string metric;
  Statistic statistic = Statistic::Average;
  Comparison comparison = Comparison::Greater;
  double threshold = 0.0;
  std::int64_t period_ms = 60'000;         // >= 1,000, a whole number of seconds
  std::uint32_t evaluation_periods = 1;    // consecutive periods, 1..1,000
  AdjustmentType adjustment_type = AdjustmentType::ChangeInCapacity;
  std::int32_t adjustment = 1;             // instances, or percent for Percent*
  std::uint32_t min_adjustment_magnitude = 0;  // percent only: move at least this many
  std::optional<std::int64_t> cooldown_ms;     // nullopt: the group's default_cooldown_ms
  std::string query;  // non-empty: `metric` is this PromQL query's value (MetricSource::Prometheus)
  friend bool operator==(const AlarmPolicy&, const AlarmPolicy&) = default;
};

// At most `max_instances` added (or removed) per `period_ms`; 0 = no limit.
struct ScalingRateLimit {
  std::uint32_t max_instances = 0;
  std::int64_t period_ms = 60'000;
  friend bool operator==(const ScalingRateLimit&, const ScalingRateLimit&) = default;
};

// Keeps `metric` (average over `window_ms`) near `target`:
// desired = ceil(in_service * value / target), nothing inside the tolerance,
// scale out at once, scale in only to the highest recommendation of the
// stabilisation window.
struct TargetTrackingPolicy {
  std::string group;
  std::string name;
  bool enabled = true;
  std::string metric;
  double target = 50.0;                      // > 0
  double tolerance = 0.1;                    // 0..1: no change while |value/target - 1| <= tolerance
  std::int64_t window_ms = 60'000;           // metric averaged over this window, >= 1,000
  // 0: scale out on the window's average only. Otherwise the average over
  // this shorter, most recent span may also scale out (never in): a step in
  // load (a flash crowd) reaches the size it needs in one move instead of
  // waiting for the window's average to catch up. 1,000..window_ms.
  std::int64_t scale_out_window_ms = 0;
  std::int64_t scale_in_stabilization_ms = 300'000;
  ScalingRateLimit scale_out_limit;
  ScalingRateLimit scale_in_limit;
  bool disable_scale_in = false;
  // Non-empty: `metric` is this PromQL query's value (MetricSource::Prometheus).
  // The formula treats it as a per-instance value, like every metric.
  std::string query;
  friend bool operator==(const TargetTrackingPolicy&, const TargetTrackingPolicy&) = default;
};

// ---- scheduled actions ----------------------------------------------------

// Sets any of min, max and desired at the fire times of `cron` (5 fields) in
// `time_zone`, between `start_ms` and `end_ms`. Without `cron` it fires once,
// at `start_ms`.
struct ScheduledAction {
  std::string group;
  std::string name;
  std::string cron;                  // "" = one-shot
  std::string time_zone = "UTC";     // IANA name, e.g. "Asia/Shanghai"
  std::optional<TimeMs> start_ms;    // required for a one-shot
  std::optional<TimeMs> end_ms;
  std::optional<std::uint32_t> min;
  std::optional<std::uint32_t> max;
  std::optional<std::uint32_t> desired;  // at least one of min, max, desired
  std::optional<TimeMs> last_fired_ms;   // state: the last fire time acted on (persisted)
  friend bool operator==(const ScheduledAction&, const ScheduledAction&) = default;
};

// ---- lifecycle hooks ------------------------------------------------------

struct LifecycleHook {
  std::string group;
  std::string name;
  HookTransition transition = HookTransition::Launching;
  std::int64_t heartbeat_timeout_ms = 300'000;  // 30 s .. 7,200 s
  HookResult default_result = HookResult::Continue;  // applied on time-out
  std::string notification_metadata;            // opaque, passed on in notifications, <= 1,024 bytes
  std::string agent_script;  // non-empty: the agent runs its hook of this name; exit 0 = continue
  friend bool operator==(const LifecycleHook&, const LifecycleHook&) = default;
};

// ---- notifications --------------------------------------------------------

struct NotificationTarget {
  std::string group;
  std::string name;
  std::string url;  // http:// or https://
  NotificationFormat format = NotificationFormat::Generic;
  std::vector<NotificationEvent> events;  // non-empty, no duplicates
  friend bool operator==(const NotificationTarget&, const NotificationTarget&) = default;
};

[[nodiscard]] tl::expected<void, ModelError> validate(const AlarmPolicy& policy);
[[nodiscard]] tl::expected<void, ModelError> validate(const TargetTrackingPolicy& policy);
// Checks the fields only; a cron expression and a zone are checked by
// cron.hpp's parse_cron / the shell's zone database.
[[nodiscard]] tl::expected<void, ModelError> validate(const ScheduledAction& action);
[[nodiscard]] tl::expected<void, ModelError> validate(const LifecycleHook& hook);
[[nodiscard]] tl::expected<void, ModelError> validate(const NotificationTarget& target);


}  // namespace tide::coordinator
