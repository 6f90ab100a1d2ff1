// The coordinator's data model: launch configurations, scaling groups,
// instances and activities (DESIGN.md, "Concepts").
//
// Plain data only. The store (coordinator/io/store) persists these structs
// field by field; the decision core (fleet.hpp) mutates them in memory. Every
// enum has to_string()/from_string<E>() with the exact spellings used in the
// database, the HTTP API and docs/lifecycle.md, so a row round-trips.
//
// Times are milliseconds since the Unix epoch as read by the shell's clock
// (TimeMs); durations carry an _ms suffix. Nothing here reads a clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace tide::coordinator {

// Milliseconds since the Unix epoch, as passed in by the shell.
using TimeMs = std::int64_t;

// A span for people: "1500 ms", "10 s", "2 min", "2 min 5 s", "1 h 3 min"
// (milliseconds only under a minute, seconds only under an hour). Activity
// causes, notes and API messages use it.
[[nodiscard]] std::string duration_text(std::int64_t ms);

// ---- enums ----------------------------------------------------------------

enum class TerminationPolicy : std::uint8_t {
  OldestInstance,             // "oldest_instance"
  NewestInstance,             // "newest_instance"
  OldestLaunchConfiguration,  // "oldest_launch_configuration"
};

enum class InstanceOrigin : std::uint8_t {
  Launched,  // "launched": started by tide through a provider
  Attached,  // "attached": an existing server the user added to the group
};

// The instance lifecycle of DESIGN.md; docs/lifecycle.md holds the table and
// coordinator/core/lifecycle.hpp the transitions.
enum class LifecycleState : std::uint8_t {
  Pending,               // "pending": row persisted, provider launch not yet confirmed
  Booting,               // "booting": provider says it runs; waiting for the agent's HELLO
  PendingLaunchHook,     // "pending_launch_hook": held by a launch lifecycle hook
  Warming,               // "warming": agent connected, application not ready yet
  InService,             // "in_service": ready, healthy, in the LB rotation
  OutOfRotation,         // "out_of_rotation": was in service, now not ready or unhealthy
  Draining,              // "draining": leaving; LB drain, waiting for 0 sessions or deadline
  PendingTerminateHook,  // "pending_terminate_hook": held by a terminate lifecycle hook
  Terminating,           // "terminating": provider terminate requested
  Terminated,            // "terminated": gone (terminal)
  LaunchFailed,          // "launch_failed": the provider could not launch it (terminal)
  Detached,              // "detached": left the group without being terminated (terminal)
};

enum class Health : std::uint8_t {
  Healthy,    // "healthy"
  Unhealthy,  // "unhealthy"
};

// Why an instance leaves (persisted, so a restart finishes what was started).
enum class ExitReason : std::uint8_t {
  None,       // "none": not leaving
  ScaleIn,    // "scale_in": desired capacity went down
  Replace,    // "replace": unhealthy, a replacement was launched first
  Detach,     // "detach": user detaches it; it is not terminated
  User,       // "user": user asked to terminate it
  Rollout,    // "rollout": replaced by a rollout's new version (docs/rollout.md)
};

enum class ActivityType : std::uint8_t {
  ScaleOut,                // "scale_out"
  ScaleIn,                 // "scale_in"
  Attach,                  // "attach"
  Detach,                  // "detach"
  ReplaceUnhealthy,        // "replace_unhealthy"
  TerminateUnexpectedly,   // "terminate_unexpectedly": vanished from the provider
  LaunchFailed,            // "launch_failed"
  FailStatic,              // "fail_static": too many unhealthy at once, nothing replaced
  TerminateStray,          // "terminate_stray": provider runs a tide instance the store does not know
  AdoptInstance,           // "adopt_instance": restart found a pending launch actually running
  TerminateInstance,       // "terminate_instance": a user terminated one instance
  Rollout,                 // "rollout": a rollout's batch, pause, failure or end (docs/rollout.md)
  MetricQuery,             // "metric_query": a policy's Prometheus query failed (failed) or works again (successful)
};

enum class ActivityStatus : std::uint8_t {
  Running,              // "running"
  Successful,           // "successful"
  PartiallySuccessful,  // "partially_successful"
  Failed,               // "failed"
  Cancelled,            // "cancelled"
};

[[nodiscard]] std::string_view to_string(TerminationPolicy value);
[[nodiscard]] std::string_view to_string(InstanceOrigin value);
[[nodiscard]] std::string_view to_string(LifecycleState value);
[[nodiscard]] std::string_view to_string(Health value);
[[nodiscard]] std::string_view to_string(ExitReason value);
[[nodiscard]] std::string_view to_string(ActivityType value);
[[nodiscard]] std::string_view to_string(ActivityStatus value);

// from_string<E>("in_service") -> LifecycleState::InService; nullopt for an
// unknown spelling (a corrupt row or a bad API request, never a crash).
template <class E>
[[nodiscard]] std::optional<E> from_string(std::string_view text);

template <> std::optional<TerminationPolicy> from_string<TerminationPolicy>(std::string_view text);
template <> std::optional<InstanceOrigin> from_string<InstanceOrigin>(std::string_view text);
template <> std::optional<LifecycleState> from_string<LifecycleState>(std::string_view text);
template <> std::optional<Health> from_string<Health>(std::string_view text);
template <> std::optional<ExitReason> from_string<ExitReason>(std::string_view text);
template <> std::optional<ActivityType> from_string<ActivityType>(std::string_view text);
template <> std::optional<ActivityStatus> from_string<ActivityStatus>(std::string_view text);

// ---- launch configuration -------------------------------------------------

// Bounds of AgentSettings::readiness_period_ms when set (the agent's own).
inline constexpr std::uint32_t kMinReadinessPeriodMs = 10;
inline constexpr std::uint32_t kMaxReadinessPeriodMs = 60'000;

// Settings handed to the agent that runs beside each instance.
struct AgentSettings {
  std::string readiness_path = "/ready";   // HTTP path the agent probes for readiness
  std::uint32_t report_interval_ms = 1000;
  // How often the agent probes readiness once the application was first
  // ready; 0 = the agent's own default (readiness.period_ms, 1 s). Bounds:
  // kMinReadinessPeriodMs..kMaxReadinessPeriodMs.
  std::uint32_t readiness_period_ms = 0;
  friend bool operator==(const AgentSettings&, const AgentSettings&) = default;
};

// Immutable and versioned: a change creates (id, version + 1); instances keep
// the version they were launched with.
struct LaunchConfiguration {
  std::string id;              // user-chosen name, 1..128 bytes
  std::uint32_t version = 1;   // >= 1
  // Local provider fields. Other providers read what they need from env.
  std::string command;                     // shell command that starts the application
  std::uint16_t port = 0;                  // the application's port
  std::map<std::string, std::string> env;  // extra environment
  // Secret environment: NAME -> absolute path of a file the provider reads
  // when it launches an instance, so the value is never stored.
  std::map<std::string, std::string> env_files;
  AgentSettings agent;
  double hourly_price = 0.0;   // currency units per instance-hour, for cost accounting
  TimeMs created_ms = 0;
  friend bool operator==(const LaunchConfiguration&, const LaunchConfiguration&) = default;
};

// ---- scaling group --------------------------------------------------------

// Failed launches: `immediate_retries` retries at once, then waits that grow
// from `initial_backoff_ms` by `multiplier` up to `max_backoff_ms`.
struct RetryPolicy {
  std::uint32_t immediate_retries = 2;
  std::int64_t initial_backoff_ms = 1'000;
  double multiplier = 2.0;
  std::int64_t max_backoff_ms = 60'000;
  friend bool operator==(const RetryPolicy&, const RetryPolicy&) = default;
};

// Where the group's instances are registered. An empty backend means the
// group has no load balancer.
struct LbBinding {
  std::string backend;     // HAProxy backend name
  std::uint16_t port = 0;  // the instances' service port; 0 = the launch configuration's port
  friend bool operator==(const LbBinding&, const LbBinding&) = default;
};

struct ScalingGroup {
  std::string name;  // unique id, 1..128 bytes
  std::uint32_t min = 0;
  std::uint32_t max = 0;
  std::uint32_t desired = 0;  // invariant: min <= desired <= max
  std::string launch_configuration_id;
  std::uint32_t launch_configuration_version = 1;
  TerminationPolicy termination_policy = TerminationPolicy::OldestInstance;
  LbBinding lb;
  std::int64_t health_check_grace_period_ms = 30'000;  // health checks ignored this long after launch
  std::int64_t default_cooldown_ms = 300'000;          // between scaling activities (policies)
  std::int64_t boot_timeout_ms = 300'000;              // launch -> HELLO, else unhealthy
  std::int64_t drain_timeout_ms = 30'000;              // draining -> terminate at the latest
  std::int64_t warmup_ms = 0;                          // metrics ignored this long after in service
  RetryPolicy retry;
  double fail_static_share = 0.3;   // > this share lost contact within one window: hold those (fail_static_applies)
  double replacement_rate = 0.1;    // at most this share of desired replaced at a time (>= 1)
  std::int64_t liveness_window_ms = 10'000;  // no report this long: unhealthy; also the fail-static window
  bool enabled = true;              // disabled: no launches or scale-in, the rule still applies
  TimeMs created_ms = 0;
  TimeMs updated_ms = 0;
  friend bool operator==(const ScalingGroup&, const ScalingGroup&) = default;
};

struct ModelError {
  std::string message;  // names the field, e.g. "desired 7 > max 5"
  std::string field;    // the request field at fault ("desired", "env_files.KEY"); "" when none is
};

// Names of groups, launch configurations, policies, scheduled actions, hooks
// and notification targets (they appear in URL paths, files and logs):
// 1..128 bytes of [A-Za-z0-9._:-], starting with a letter or digit. No '/',
// space, NUL or line break, and never "." or "..".
[[nodiscard]] bool is_valid_name(std::string_view name);

// Checks bounds and the invariant min <= desired <= max.
[[nodiscard]] tl::expected<void, ModelError> validate(const ScalingGroup& group);
[[nodiscard]] tl::expected<void, ModelError> validate(const LaunchConfiguration& config);

// Why `name` cannot be an environment variable read from a file, or `path`
// cannot be its file ("" when both can): a name is non-empty without '=' or
// NUL; a path is absolute, without NUL or newline.
[[nodiscard]] std::string env_file_problem(std::string_view name, std::string_view path);

// ---- instance -------------------------------------------------------------

// What the coordinator knows from the agent; memory only, never persisted.
struct InstanceRuntime {
  bool agent_connected = false;
  std::optional<bool> ready;      // latest report; nullopt before the first report
  bool agent_healthy = true;      // latest report's health verdict
  bool agent_draining = false;    // latest report says the agent honours a DRAIN
  TimeMs last_report_ms = 0;      // last REPORT or HELLO (liveness)
  bool in_lb = false;             // in rotation: the core sent LbRegister and no drain since
  TimeMs in_lb_since_ms = 0;      // when it last went into rotation (a rollout's bake time)
  bool lb_member = false;         // holds an LB slot (registered once, LbRemove not yet sent)
  bool health_held = false;       // turned unhealthy under fail-static: LB left as it was
  // Unhealthy because the coordinator lost contact (AgentLost, no report
  // within the liveness window), not because anything said it is broken:
  // only these can be a monitoring failure (fail-static).
  bool contact_lost = false;
  bool is_replacement = false;    // launched to replace an unhealthy instance (rate limit)
  TimeMs undrain_sent_ms = 0;     // last SendUndrain for a drain tide did not ask for
  friend bool operator==(const InstanceRuntime&, const InstanceRuntime&) = default;
};

struct Instance {
  std::string id;      // "i-<16 hex>"
  std::string group;   // ScalingGroup::name
  InstanceOrigin origin = InstanceOrigin::Launched;
  LifecycleState state = LifecycleState::Pending;
  bool protected_from_scale_in = false;
  Health health = Health::Healthy;
  std::string health_reason;  // why unhealthy, empty when healthy
  std::string provider_id;    // provider's handle (pid, cloud id); empty until launched
  std::string address;        // service address (e.g. 127.0.1.7)
  std::uint16_t port = 0;     // service port
  std::string launch_configuration_id;
  std::uint32_t launch_configuration_version = 0;
  std::string enrollment_token_hash;  // hex SHA-256 of the one-time token
  std::string agent_key;              // bound CURVE public key (Z85), empty until first HELLO
  std::string idempotency_key;        // passed to the provider's launch; a retry never double-launches
  ExitReason exit_reason = ExitReason::None;
  std::string activity_id;            // the activity currently acting on this instance, if any
  TimeMs created_ms = 0;              // row created (launch decided / attached)
  TimeMs launched_ms = 0;             // provider confirmed the launch; 0 = not yet
  TimeMs state_since_ms = 0;          // entered the current state
  TimeMs unhealthy_since_ms = 0;      // turned unhealthy; 0 when healthy
  InstanceRuntime runtime;            // not persisted
  friend bool operator==(const Instance&, const Instance&) = default;
};

// ---- activity -------------------------------------------------------------

struct ActivityInstance {
  std::string instance_id;
  std::string message;  // per-instance outcome, e.g. the provider's error text
  bool ok = true;
  friend bool operator==(const ActivityInstance&, const ActivityInstance&) = default;
};

struct Activity {
  std::string id;     // "a-<16 hex>"
  std::string group;
  ActivityType type = ActivityType::ScaleOut;
  std::string cause;  // human text: who asked and the measured values
  ActivityStatus status = ActivityStatus::Running;
  TimeMs start_ms = 0;
  std::optional<TimeMs> end_ms;  // set when no longer running
  std::vector<ActivityInstance> instances;
  friend bool operator==(const Activity&, const Activity&) = default;
};

}  // namespace tide::coordinator
