// The coordinator's decision core: groups, instances and activities in
// memory, and every decision about them (docs/lifecycle.md).
//
// Fleet is pure: it never reads a clock (now_ms is passed in), never does
// I/O, and draws ids, tokens and tie-breaking randomness from FleetDeps.
// Each call appends the commands the shell must run, in order, to `out`.
//
// Indexes: instances by id (hash map) and, per group, a compact member array
// of (instance, next deadline) so a Tick scans 16-byte entries and touches
// only instances whose timer is due. A REPORT that changes nothing costs one
// hash lookup and a few compares and emits nothing.
//
// Tallies: each group keeps the counts the reconciler decides on (instances
// that count toward desired, replacements not yet in service, unhealthy
// ones) up to date at every change (Fleet::retally), so a reconcile that has
// nothing to do costs O(1) instead of a walk over every instance; it walks the
// members only to choose which ones to replace or scale in. audit() recounts
// them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/core/commands.hpp"
#include "coordinator/core/events.hpp"
#include "coordinator/core/lifecycle.hpp"
#include "coordinator/core/model.hpp"
#include "coordinator/core/policy_model.hpp"
#include "coordinator/core/rollout.hpp"

namespace tide::coordinator {

struct EnrollmentToken {
  std::string token;  // handed to the instance once (Launch command)
  std::string hash;   // what is stored (Instance::enrollment_token_hash)
};

// Everything the core would otherwise take from the environment.
struct FleetDeps {
  std::function<std::string()> new_instance_id;      // "i-<hex>"
  std::function<std::string()> new_activity_id;      // "a-<hex>"
  std::function<std::string()> new_idempotency_key;
  std::function<EnrollmentToken()> new_enrollment_token;  // the shell uses a CSPRNG + SHA-256
  // Lifecycle action tokens ("h-<hex>"), unique per pending action. Empty:
  // the fleet derives them from `seed` (unique, not unguessable).
  std::function<std::string()> new_action_token;
  std::uint64_t seed = 0;                            // scale-in tie breaking
};

// Deterministic ids from a seeded engine (tests, simulations). The token is
// NOT secret and its "hash" is the token reversed: never use it in
// production.
[[nodiscard]] FleetDeps deterministic_deps(std::uint64_t seed);

// ---- pure helpers (exposed for tests and the docs) ------------------------

// Picks `count` instances to scale in among `candidates` (never protected
// ones): launched before attached; not in service (pending, booting, warming,
// out of rotation, unhealthy) before in service; then the group's
// termination policy; ties broken by `rng`.
[[nodiscard]] std::vector<const Instance*> choose_scale_in(std::span<const Instance* const> candidates,
                                                           const ScalingGroup& group, std::size_t count,
                                                           std::mt19937_64& rng);

// Wait before the next launch after `consecutive_failures` failed launches:
// 0 for the first `immediate_retries`, then initial * multiplier^k, capped.
[[nodiscard]] std::int64_t retry_delay_ms(const RetryPolicy& policy, std::uint32_t consecutive_failures);

// How many replacements may be in flight at once: max(1, floor(rate * desired)).
[[nodiscard]] std::uint32_t replacement_limit(const ScalingGroup& group);

// Strictly more than `share` of `total`.
[[nodiscard]] bool exceeds_share(std::size_t count, std::size_t total, double share);

// Fail-static guards against a monitoring failure (docs/lifecycle.md,
// "Fail-static"): the coordinator loses contact with several instances of a
// sizeable group at once while nothing says they are broken. It applies when
// the group counts at least kFailStaticMinInstances instances, and at least
// kFailStaticMinLost of them — and strictly more than `share` — lost contact
// within one liveness window. Instances that are known to be broken (their
// agent reports them unhealthy, they vanished at the provider, they never
// said HELLO) never count: they are replaced whatever the group's size.
inline constexpr std::size_t kFailStaticMinInstances = 4;
inline constexpr std::size_t kFailStaticMinLost = 2;

// An agent that drains although tide does not remove the instance (a DRAIN
// it kept from before a coordinator restart, or its application's
// STOPPING=1) is sent UNDRAIN when its REPORT first says so, and again at
// most this often while its REPORTs keep saying so: an UNDRAIN can be lost,
// and the agent can drain again between two REPORTs.
inline constexpr TimeMs kUndrainRepeatMs = 5'000;
[[nodiscard]] bool fail_static_applies(std::size_t lost, std::size_t counting, double share);

// THE RULE, for one instance: in rotation iff the latest report says ready,
// it is healthy and nobody drains it (neither tide nor the agent). Under
// fail-static an instance held after losing contact is judged by its last
// report as if it were healthy.
[[nodiscard]] bool wants_rotation(const Instance& instance);

// Heartbeats extend a lifecycle action by its hook's heartbeat timeout, but
// never past min(100 x heartbeat timeout, 48 h) after the action started
// (AWS's global timeout): then the default result applies.
inline constexpr std::int64_t kMaxLifecycleWaitMs = 48LL * 3'600'000;
inline constexpr std::int64_t kMaxLifecycleHeartbeats = 100;

// One lifecycle action holding an instance (docs/lifecycle.md, "Lifecycle
// hooks"): the instance waits in pending_launch_hook or
// pending_terminate_hook until every action is completed or timed out.
struct PendingLifecycleAction {
  std::string group;
  std::string instance_id;
  std::string hook_name;
  HookTransition transition = HookTransition::Launching;
  std::string token;        // completes or heartbeats this action alone
  std::string agent_script; // non-empty: the agent runs this script (RunHook)
  TimeMs started_ms = 0;
  TimeMs deadline_ms = 0;   // the default result applies then, unless a heartbeat extends it
  TimeMs give_up_ms = 0;    // heartbeats cannot extend past this
  HookResult default_result = HookResult::Continue;
  friend bool operator==(const PendingLifecycleAction&, const PendingLifecycleAction&) = default;
};

// ---- restart reconciliation input -----------------------------------------

// One instance the provider says it runs.
struct ProviderInstance {
  std::string provider_id;
  std::string idempotency_key;  // as passed to Launch; empty when unknown
  std::string instance_id;      // tide's id from the instance's tag; empty when untagged
  bool tagged_by_tide = false;  // carries tide's tag: only these may be terminated as strays
  std::string address;
  std::uint16_t port = 0;
};

// One slot of an LB backend that is not in maintenance.
struct LbMember {
  std::string backend;
  std::string instance_id;   // as registered by tide
  bool in_rotation = false;  // ready (true) or draining (false)
};

// After a restart the shell matches the load balancer's slots to stored rows
// by endpoint; when two rows name one endpoint, the slot goes to the row with
// the higher rank: in service, then the other states its agent said HELLO
// in, then booting, then leaving, then pending (never served).
[[nodiscard]] int lb_claim_rank(const Instance& i);

struct RestoreInput {
  std::vector<LaunchConfiguration> launch_configurations;
  std::vector<ScalingGroup> groups;
  std::vector<Instance> instances;          // non-terminal stored rows
  std::vector<Activity> running_activities; // rows with status running
  std::vector<ProviderInstance> provider;   // provider's list, all groups
  std::vector<LbMember> lb;                 // every backend's live slots
  // Rollouts that were not finished (docs/rollout.md): they go on.
  std::vector<Rollout> rollouts;
  // Instances the user detached (terminal rows): their servers may still run
  // at the provider with tide's tag, and are never taken for strays.
  std::vector<std::string> detached;
  // Every group's lifecycle hooks (as set_hooks would set them), so that
  // instances stored in pending_launch_hook / pending_terminate_hook are held
  // again with fresh actions.
  std::vector<LifecycleHook> hooks;
};

// What attach() hands back: the new instance and the one-time enrollment
// token its agent needs (only the token's hash is kept).
struct Attached {
  Instance instance;
  std::string enrollment_token;
};

class Fleet {
 public:
  explicit Fleet(FleetDeps deps);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // ---- configuration and user requests ----
  [[nodiscard]] tl::expected<void, ModelError> put_launch_configuration(LaunchConfiguration config);
  // Creates or updates a group and reconciles it.
  [[nodiscard]] tl::expected<void, ModelError> put_group(ScalingGroup group, TimeMs now_ms,
                                                         std::vector<Command>& out);
  [[nodiscard]] tl::expected<void, ModelError> set_desired(std::string_view group, std::uint32_t desired,
                                                           std::string cause, TimeMs now_ms,
                                                           std::vector<Command>& out);
  // Sets min, max and desired at once (a scheduled action); the reconcile's
  // activity carries `cause` and the numbers.
  [[nodiscard]] tl::expected<void, ModelError> set_capacity(std::string_view group, std::uint32_t min,
                                                            std::uint32_t max, std::uint32_t desired,
                                                            std::string cause, TimeMs now_ms,
                                                            std::vector<Command>& out);
  // Replaces the group's lifecycle hooks (docs/lifecycle.md, "Lifecycle
  // hooks"); they apply to transitions that start after the call.
  [[nodiscard]] tl::expected<void, ModelError> set_hooks(std::string_view group, std::vector<LifecycleHook> hooks);
  // Adds an existing server; it waits for its agent's HELLO (boot timeout).
  // Raises desired by one when `increment_desired` (refused above max).
  [[nodiscard]] tl::expected<Attached, ModelError> attach(std::string_view group, std::string address,
                                                             std::uint16_t port, bool protect,
                                                             bool increment_desired, TimeMs now_ms,
                                                             std::vector<Command>& out);
  // Drains the instance and lets it leave the group alive. Returns the
  // instance as the request left it (it may already be gone from the fleet:
  // an instance that was never in rotation leaves at once).
  [[nodiscard]] tl::expected<Instance, ModelError> detach(std::string_view instance_id, bool decrement_desired,
                                                      TimeMs now_ms, std::vector<Command>& out);
  // Forgets a group that has no instance left (terminal instances are gone
  // from memory already). Refused while any instance is alive.
  [[nodiscard]] tl::expected<void, ModelError> remove_group(std::string_view name);
  // Drains and terminates one instance (also a protected one: the user asked
  // for it by name). Without `decrement_desired` the group launches a
  // replacement; with it, desired goes down by one (refused below min).
  // Returns the instance as the request left it (see detach).
  [[nodiscard]] tl::expected<Instance, ModelError> terminate(std::string_view instance_id, bool decrement_desired,
                                                         TimeMs now_ms, std::vector<Command>& out);
  [[nodiscard]] tl::expected<Instance, ModelError> set_protected(std::string_view instance_id, bool value,
                                                                 TimeMs now_ms, std::vector<Command>& out);

  // ---- lifecycle actions (docs/lifecycle.md, "Lifecycle hooks") ----
  // Completes the instance's pending action of `hook_name` (empty: every
  // pending action of the instance) with `result`. A non-empty `token` must
  // be the token of that action (or, with an empty hook name, of one of the
  // instance's actions, which then alone is completed). Refused for an
  // unknown instance, an instance not held by a hook, an unknown hook name or
  // a token that does not match.
  [[nodiscard]] tl::expected<void, ModelError> complete_lifecycle_action(std::string_view instance_id,
                                                                         std::string_view hook_name,
                                                                         std::string_view token, HookResult result,
                                                                         TimeMs now_ms, std::vector<Command>& out);
  [[nodiscard]] tl::expected<void, ModelError> complete_lifecycle_action_by_token(std::string_view token,
                                                                                  HookResult result, TimeMs now_ms,
                                                                                  std::vector<Command>& out);
  // Moves the deadline of the matching actions (same matching as
  // complete_lifecycle_action; an empty instance id: by token alone) to
  // now + heartbeat timeout, capped at the action's give_up_ms. Returns the
  // latest new deadline.
  [[nodiscard]] tl::expected<TimeMs, ModelError> record_lifecycle_heartbeat(std::string_view instance_id,
                                                                            std::string_view hook_name,
                                                                            std::string_view token, TimeMs now_ms);
  // The agent's HOOK_RESULT for script `script` (a hook's agent_script):
  // exit status 0 completes the action with continue, any other status with
  // abandon; a script the agent timed out applies the hook's default result.
  // Refused when no pending action of the instance runs that script (a late
  // or duplicate result).
  [[nodiscard]] tl::expected<void, ModelError> on_hook_script_result(std::string_view instance_id,
                                                                     std::string_view script, std::int32_t exit_status,
                                                                     bool timed_out, TimeMs now_ms,
                                                                     std::vector<Command>& out);

  // ---- metric sources ----
  // Records a finished `metric_query` activity for the group: a Prometheus
  // query its policies read failed (`ok` false; `cause` says why) or works
  // again (docs/policies.md, "Prometheus"). Refused for an unknown group.
  [[nodiscard]] tl::expected<void, ModelError> record_metric_query(std::string_view group, bool ok, std::string cause,
                                                                   TimeMs now_ms, std::vector<Command>& out);

  // ---- rollouts (docs/rollout.md) ----
  // Starts replacing the group's instances with `launch_configuration`
  // version `version` (which must exist), with `id` as the rollout's id; the
  // group launches that version from now on. Refused while the group has a
  // rollout that is not finished.
  [[nodiscard]] tl::expected<Rollout, ModelError> start_rollout(std::string_view group, std::string id,
                                                                std::string launch_configuration,
                                                                std::uint32_t version, RolloutStrategy strategy,
                                                                TimeMs now_ms, std::vector<Command>& out);
  enum class RolloutAction : std::uint8_t { Pause, Resume, Cancel, Rollback };
  // Pause, resume, cancel or roll back the group's rollout; refused (naming
  // the state) where the state does not allow it.
  [[nodiscard]] tl::expected<Rollout, ModelError> act_on_rollout(std::string_view group, RolloutAction action,
                                                                 std::string reason, TimeMs now_ms,
                                                                 std::vector<Command>& out);
  // The group's rollout that is not finished; nullptr when there is none.
  [[nodiscard]] const Rollout* rollout(std::string_view group) const;
  // True while some group's rollout is judging a canary: the shell then
  // samples the load balancer's per-server figures (LbTrafficSample).
  [[nodiscard]] bool wants_traffic_samples() const;
  struct RolloutProgress {
    std::uint32_t desired = 0;
    std::uint32_t target_instances = 0;  // counting instances of the rollout's target version
    std::uint32_t old_instances = 0;     // counting instances of any other version
    std::uint32_t serving = 0;           // in service and in rotation, any version
  };
  // The canary's figures beside the old version's since the canary started
  // (LbTrafficSample); nullopt outside a canary step or without load-balancer figures.
  [[nodiscard]] std::optional<std::pair<TrafficFigures, TrafficFigures>> canary_figures(std::string_view group) const;
  // Where the group stands against `rollout`'s current target.
  [[nodiscard]] RolloutProgress rollout_progress(std::string_view group, const Rollout& rollout) const;

  // ---- events ----
  void handle(const Event& event, TimeMs now_ms, std::vector<Command>& out);
  [[nodiscard]] std::vector<Command> handle(const Event& event, TimeMs now_ms);

  // ---- restart ----
  // Loads stored state into an empty fleet and reconciles it against what
  // the provider and the LB actually have: adopts running instances, marks
  // vanished ones terminated, terminates tagged strays, re-issues pending
  // launches with their original idempotency key, fixes LB membership.
  void restore(RestoreInput input, TimeMs now_ms, std::vector<Command>& out);

  // ---- queries ----
  [[nodiscard]] const Instance* instance(std::string_view id) const;
  [[nodiscard]] const ScalingGroup* group(std::string_view name) const;
  [[nodiscard]] std::vector<const ScalingGroup*> groups() const;  // by name
  [[nodiscard]] std::vector<const Instance*> instances_of(std::string_view group) const;
  [[nodiscard]] bool in_fail_static(std::string_view group) const;
  [[nodiscard]] std::size_t instance_count() const;
  // Pending lifecycle actions of the group's instances, by instance id then
  // hook order. Empty for an unknown group.
  [[nodiscard]] std::vector<PendingLifecycleAction> lifecycle_actions(std::string_view group) const;
  [[nodiscard]] std::vector<LifecycleHook> hooks(std::string_view group) const;

  // Self-check for tests and debug builds, O(instances): recounts every
  // group's tallies and member index and describes the first difference from
  // what the fleet keeps incrementally. Empty when they agree.
  [[nodiscard]] std::string audit() const;

 private:
  struct Entry;
  struct GroupState;
  struct HookAction;
  struct Member {
    Entry* entry;
    TimeMs deadline_ms;  // next time a timer may fire for this instance
  };
  struct RunningActivity {
    Activity activity;
    std::uint32_t open = 0;  // instances whose outcome is not known yet
    std::unordered_map<std::string, std::size_t> index;  // instance id -> position in instances
  };

  Entry* find(std::string_view id);
  tl::expected<Entry*, ModelError> leave_on_request(std::string_view instance_id, bool decrement_desired,
                                                    std::string_view verb, TimeMs now_ms, std::vector<Command>& out);
  GroupState* find_group(std::string_view name);

  void on_hello(const AgentHello& e, TimeMs now, std::vector<Command>& out);
  void on_report(const AgentReport& e, TimeMs now, std::vector<Command>& out);
  void on_lost(const AgentLost& e, TimeMs now, std::vector<Command>& out);
  void on_launch_succeeded(const LaunchSucceeded& e, TimeMs now, std::vector<Command>& out);
  void on_launch_failed(const LaunchFailed& e, TimeMs now, std::vector<Command>& out);
  void on_terminated(const TerminateCompleted& e, TimeMs now, std::vector<Command>& out);
  void on_vanished(const InstanceVanished& e, TimeMs now, std::vector<Command>& out);
  void on_lb_drained(const LbDrained& e, TimeMs now, std::vector<Command>& out);
  void on_lb_register_failed(const LbRegisterFailed& e, TimeMs now, std::vector<Command>& out);
  void on_tick(TimeMs now, std::vector<Command>& out);
  void on_lb_traffic(const LbTrafficSample& sample);
  [[nodiscard]] std::optional<std::pair<TrafficFigures, TrafficFigures>> canary_figures(const GroupState& g,
                                                                                      const Rollout& r) const;

  void reconcile(GroupState& g, TimeMs now, std::vector<Command>& out, std::string_view why);
  // One step of the group's rollout: surge, retirements, notes, persistence.
  void advance_rollout(GroupState& g, TimeMs now, std::vector<Command>& out);
  [[nodiscard]] RolloutView rollout_view(const GroupState& g, const Rollout& r) const;
  // A new instance of the rollout's target failed (launch or health).
  void note_rollout_failure(const Entry& e, TimeMs now);
  Entry& launch_one(GroupState& g, TimeMs now, std::vector<Command>& out, const std::string& activity_id,
                    bool is_replacement);
  void begin_drain(Entry& e, ExitReason reason, const std::string& activity_id, TimeMs now,
                   std::vector<Command>& out, LifecycleEvent event = LifecycleEvent::BeginDrain);
  void finish_drain(Entry& e, TimeMs now, std::vector<Command>& out);
  // Lifecycle hooks.
  bool start_hooks(Entry& e, HookTransition transition, TimeMs now, std::vector<Command>& out);
  void enter_launch_hook(Entry& e, TimeMs now, std::vector<Command>& out);
  void send_hook_scripts(const Entry& e, std::vector<Command>& out) const;
  void drop_actions(Entry& e);
  void refresh_hook_deadline(Entry& e);
  void finish_action(Entry& e, std::size_t index, HookResult result, std::string note, TimeMs now,
                     std::vector<Command>& out);
  void finish_actions(Entry& e, std::vector<std::string> tokens, HookResult result, const std::string& note,
                      TimeMs now, std::vector<Command>& out);
  void hooks_done(Entry& e, HookResult result, const std::string& hook_name, TimeMs now, std::vector<Command>& out);
  void expire_actions(Entry& e, TimeMs now, std::vector<Command>& out);
  tl::expected<std::vector<std::string>, ModelError> match_actions(std::string_view instance_id,
                                                                   std::string_view hook_name,
                                                                   std::string_view token);
  void apply_rule(Entry& e, TimeMs now, std::vector<Command>& out);
  void set_state(Entry& e, LifecycleState to, TimeMs now);
  void rollout_due(GroupState& g);
  void step_due_rollouts(TimeMs now, std::vector<Command>& out);
  // contact_lost: the coordinator lost contact (AgentLost, liveness), as
  // opposed to a verdict that the instance is broken.
  void mark_unhealthy(Entry& e, std::string reason, bool contact_lost, TimeMs now);
  // A failed launch: the retry policy's back-off and a launch_failed activity.
  void count_failed_launch(GroupState& g, const std::string& instance_id, const std::string& message, TimeMs now,
                           std::vector<Command>& out);
  void share_access(const Entry& e, std::vector<Command>& out) const;
  [[nodiscard]] static std::uint32_t drain_timeout(const GroupState& g);
  [[nodiscard]] Terminate terminate_command(const Entry& e) const;
  void health_changed(GroupState& g, std::span<Entry* const> changed, TimeMs now, std::vector<Command>& out);
  void check_fail_static_exit(GroupState& g, TimeMs now, std::vector<Command>& out);
  void finish_terminal(Entry& e, bool ok, const std::string& message, TimeMs now, std::vector<Command>& out);
  void persist(const Entry& e, std::vector<Command>& out);
  // Brings the group's tally up to date with `e`. Call it after every write
  // of a field the tally reads (state, exit_reason, health,
  // protected_from_scale_in, runtime.is_replacement); debug builds and
  // audit() recount to catch a missed call.
  void retally(Entry& e);
  // A replacement stopped taking room under the limit: reconcile at the next Tick.
  static void room_for_replacement(GroupState& g);
  void free_slot_of_pending(Entry& e, std::vector<Command>& out);
  void undrain_if_unwanted(Entry& e, bool reported_draining, TimeMs now, std::vector<Command>& out);
  [[nodiscard]] static std::string audit_group(const GroupState& g);
  void update_deadline(Entry& e);
  void add_member(GroupState& g, Entry& e);
  void erase(Entry& e);

  std::string start_activity(GroupState& g, ActivityType type, std::string cause, TimeMs now,
                             std::vector<std::string> instance_ids, std::vector<Command>& out);
  void record_finished_activity(const std::string& group, ActivityType type, std::string cause,
                                ActivityStatus status, TimeMs now, std::vector<ActivityInstance> instances,
                                std::vector<Command>& out);
  void activity_instance_done(const std::string& activity_id, const std::string& instance_id, bool ok,
                              const std::string& message, TimeMs now, std::vector<Command>& out);

  FleetDeps m_deps;
  std::mt19937_64 m_rng;
  std::map<std::pair<std::string, std::uint32_t>, LaunchConfiguration> m_configs;
  std::map<std::string, std::unique_ptr<GroupState>, std::less<>> m_groups;
  std::vector<std::string> m_rollouts_due;  // groups whose rollout steps after the current event
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  std::unordered_map<std::string, std::unique_ptr<Entry>, StringHash, std::equal_to<>> m_instances;
  std::unordered_map<std::string, RunningActivity, StringHash, std::equal_to<>> m_activities;
  std::unordered_map<std::string, std::string, StringHash, std::equal_to<>> m_action_tokens;  // token -> instance
  std::uint64_t m_token_counter = 0;  // fallback action tokens (FleetDeps::new_action_token empty)
  std::vector<Entry*> m_scratch;  // reused by on_tick
  // The last instance that left the fleet (finish_terminal): what a request
  // that ended an instance at once answers with.
  Instance m_last_departed;
  [[nodiscard]] Instance snapshot(const std::string& id, const Instance& before) const;
};

}  // namespace tide::coordinator
