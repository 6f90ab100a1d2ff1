#include "coordinator/core/fleet.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "coordinator/core/lifecycle.hpp"

namespace tide::coordinator {

namespace {

constexpr TimeMs kNever = std::numeric_limits<TimeMs>::max();
constexpr TimeMs kAtOnce = std::numeric_limits<TimeMs>::min();  // due at the next Tick
constexpr std::int64_t kMaxHookRunTimeoutMs = 7'200'000;        // protocol HOOK_RUN.timeout_ms bound

std::string hex64(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(16, '0');
  for (std::size_t i = 0; i < 16; ++i) {
    text[15 - i] = kDigits[value & 0xFU];
    value >>= 4U;
  }
  return text;
}

tl::unexpected<ModelError> fail(std::string message) {
  return tl::unexpected<ModelError>(ModelError{std::move(message), {}});
}

// Leaving for any reason, or already gone: does not count toward desired.
bool counts(const Instance& i) { return is_member_state(i.state) && i.exit_reason == ExitReason::None; }

bool is_in_service(const Instance& i) {
  return i.state == LifecycleState::InService && i.health == Health::Healthy;
}

// Launched but not in service yet: a replacement in one of these states
// still takes room under the group's replacement limit.
bool is_starting(LifecycleState state) {
  return state == LifecycleState::Pending || state == LifecycleState::Booting ||
         state == LifecycleState::PendingLaunchHook || state == LifecycleState::Warming;
}

// What the reconciler decides on, per group (Fleet::GroupState::tally). Each
// instance adds its tally_bits(); Fleet::retally() keeps the sum current.
struct Tally {
  std::uint32_t counting = 0;     // counts(): toward desired
  std::uint32_t replacing = 0;    // counting replacements not in service yet
  std::uint32_t unhealthy = 0;    // counting and unhealthy (fail-static share)
  std::uint32_t replaceable = 0;  // counting, unhealthy and not protected
  std::uint32_t lost = 0;         // counting, unhealthy because contact was lost (fail-static share)
  std::uint32_t lost_replaceable = 0;  // lost and not protected: held back under fail-static
  friend bool operator==(const Tally&, const Tally&) = default;
};

constexpr std::uint8_t kCounting = 1U << 0U;
constexpr std::uint8_t kReplacing = 1U << 1U;
constexpr std::uint8_t kUnhealthy = 1U << 2U;
constexpr std::uint8_t kReplaceable = 1U << 3U;
constexpr std::uint8_t kLost = 1U << 4U;
constexpr std::uint8_t kLostReplaceable = 1U << 5U;

std::uint8_t tally_bits(const Instance& i) {
  if (!counts(i)) {
    // Lost contact and already being replaced still says "lost together"
    // (fail-static): the first of several losses is replaced before the
    // next one is reported.
    const bool lost_replaced = !is_terminal(i.state) && i.exit_reason == ExitReason::Replace &&
                               i.health == Health::Unhealthy && i.runtime.contact_lost;
    return lost_replaced ? kLost : 0;
  }
  unsigned bits = kCounting;
  // A replacement that turned unhealthy before serving will never serve: it
  // is replaced in turn and must not hold the room it would take.
  if (i.runtime.is_replacement && is_starting(i.state) && i.health == Health::Healthy) bits |= kReplacing;
  if (i.health == Health::Unhealthy) {
    bits |= kUnhealthy;
    if (!i.protected_from_scale_in) bits |= kReplaceable;
    if (i.runtime.contact_lost) {
      bits |= kLost;
      if (!i.protected_from_scale_in) bits |= kLostReplaceable;
    }
  }
  return static_cast<std::uint8_t>(bits);
}

void add_bits(Tally& t, std::uint8_t bits) {
  if ((bits & kCounting) != 0) ++t.counting;
  if ((bits & kReplacing) != 0) ++t.replacing;
  if ((bits & kUnhealthy) != 0) ++t.unhealthy;
  if ((bits & kReplaceable) != 0) ++t.replaceable;
  if ((bits & kLost) != 0) ++t.lost;
  if ((bits & kLostReplaceable) != 0) ++t.lost_replaceable;
}

void remove_bits(Tally& t, std::uint8_t bits) {
  if ((bits & kCounting) != 0) --t.counting;
  if ((bits & kReplacing) != 0) --t.replacing;
  if ((bits & kUnhealthy) != 0) --t.unhealthy;
  if ((bits & kReplaceable) != 0) --t.replaceable;
  if ((bits & kLost) != 0) --t.lost;
  if ((bits & kLostReplaceable) != 0) --t.lost_replaceable;
}

std::string describe(const Tally& t) {
  return "counting " + std::to_string(t.counting) + ", replacing " + std::to_string(t.replacing) + ", unhealthy " +
         std::to_string(t.unhealthy) + ", replaceable " + std::to_string(t.replaceable) + ", lost " + std::to_string(t.lost) +
         ", lost replaceable " + std::to_string(t.lost_replaceable);
}

bool is_hook_state(LifecycleState state) {
  return state == LifecycleState::PendingLaunchHook || state == LifecycleState::PendingTerminateHook;
}

// How long heartbeats may hold an action in all (AWS: 100 x the heartbeat
// timeout or 48 h, whichever is smaller).
std::int64_t give_up_after_ms(const LifecycleHook& hook) {
  return std::min(hook.heartbeat_timeout_ms * kMaxLifecycleHeartbeats, kMaxLifecycleWaitMs);
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31U);
}

std::string percent(double share) { return std::to_string(static_cast<int>(std::lround(share * 100.0))) + " %"; }

}  // namespace

// ---- deps and pure helpers -----------------------------------------------

FleetDeps deterministic_deps(std::uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  FleetDeps deps;
  deps.new_instance_id = [engine] { return "i-" + hex64((*engine)()); };
  deps.new_activity_id = [engine] { return "a-" + hex64((*engine)()); };
  deps.new_idempotency_key = [engine] { return "k-" + hex64((*engine)()); };
  deps.new_enrollment_token = [engine] {
    EnrollmentToken t;
    t.token = "t-" + hex64((*engine)());
    t.hash = std::string(t.token.rbegin(), t.token.rend());
    return t;
  };
  deps.new_action_token = [engine] { return "h-" + hex64((*engine)()); };
  deps.seed = seed;
  return deps;
}

std::vector<const Instance*> choose_scale_in(std::span<const Instance* const> candidates,
                                             const ScalingGroup& group, std::size_t count,
                                             std::mt19937_64& rng) {
  struct Keyed {
    int origin;       // launched (0) before attached (1)
    int in_service;   // not in service (0) before in service (1)
    int current;      // another launch configuration or version (0) before the group's (1)
    std::int64_t policy_a;
    std::int64_t policy_b;
    std::uint64_t tie;
    const Instance* instance;
  };
  std::vector<Keyed> keyed;
  keyed.reserve(candidates.size());
  for (const Instance* i : candidates) {
    if (i->protected_from_scale_in) continue;
    Keyed k{};
    k.origin = i->origin == InstanceOrigin::Launched ? 0 : 1;
    k.in_service = is_in_service(*i) ? 1 : 0;
    k.current = i->launch_configuration_id == group.launch_configuration_id &&
                        i->launch_configuration_version == group.launch_configuration_version
                    ? 1
                    : 0;
    switch (group.termination_policy) {
      case TerminationPolicy::OldestInstance:
        k.policy_a = i->created_ms;
        break;
      case TerminationPolicy::NewestInstance:
        k.policy_a = -i->created_ms;
        break;
      case TerminationPolicy::OldestLaunchConfiguration:
        // A configuration other than the group's current one is older by
        // definition; within the same id, the lower version goes first.
        k.policy_a = i->launch_configuration_id == group.launch_configuration_id ? 1 : 0;
        k.policy_b = i->launch_configuration_version;
        break;
    }
    k.tie = rng();
    k.instance = i;
    keyed.push_back(k);
  }
  const std::size_t n = std::min(count, keyed.size());
  auto key = [](const Keyed& k) {
    return std::tie(k.origin, k.in_service, k.current, k.policy_a, k.policy_b, k.tie);
  };
  std::partial_sort(keyed.begin(), keyed.begin() + static_cast<std::ptrdiff_t>(n), keyed.end(),
                    [&](const Keyed& a, const Keyed& b) { return key(a) < key(b); });
  std::vector<const Instance*> chosen;
  chosen.reserve(n);
  for (std::size_t i = 0; i < n; ++i) chosen.push_back(keyed[i].instance);
  return chosen;
}

std::int64_t retry_delay_ms(const RetryPolicy& policy, std::uint32_t consecutive_failures) {
  if (consecutive_failures <= policy.immediate_retries) return 0;
  const std::uint32_t step = consecutive_failures - policy.immediate_retries - 1;
  double delay = static_cast<double>(policy.initial_backoff_ms);
  const double cap = static_cast<double>(policy.max_backoff_ms);
  for (std::uint32_t i = 0; i < step && delay < cap; ++i) delay *= policy.multiplier;
  return static_cast<std::int64_t>(std::min(delay, cap));
}

std::uint32_t replacement_limit(const ScalingGroup& group) {
  const double limit = std::floor(group.replacement_rate * static_cast<double>(group.desired));
  return std::max<std::uint32_t>(1, static_cast<std::uint32_t>(limit));
}

bool exceeds_share(std::size_t count, std::size_t total, double share) {
  if (total == 0) return false;
  return static_cast<double>(count) > share * static_cast<double>(total);
}

bool fail_static_applies(std::size_t lost, std::size_t counting, double share) {
  return counting >= kFailStaticMinInstances && lost >= kFailStaticMinLost && exceeds_share(lost, counting, share);
}

bool wants_rotation(const Instance& i) {
  // A launch hook holds the instance out of rotation even when it is ready.
  if (i.state == LifecycleState::PendingLaunchHook) return false;
  if (!is_connected_state(i.state)) return false;
  // Under fail-static an instance the coordinator lost contact with is judged
  // by its last report, as if it were healthy: a monitoring failure must not
  // empty the load balancer.
  const bool healthy = i.health == Health::Healthy || i.runtime.health_held;
  return i.runtime.ready.value_or(false) && healthy && !i.runtime.agent_draining &&
         i.exit_reason == ExitReason::None;
}

int lb_claim_rank(const Instance& i) {
  if (i.state == LifecycleState::Pending) return 0;
  if (!is_member_state(i.state) || i.exit_reason != ExitReason::None) return 1;
  if (i.state == LifecycleState::Booting) return 2;
  if (i.state != LifecycleState::InService) return 3;
  return 4;
}

// ---- Fleet internals ------------------------------------------------------

struct Fleet::GroupState {
  ScalingGroup cfg;
  std::vector<Member> members;
  Tally tally;                             // sum of the members' tally_bits (Fleet::retally)
  std::uint32_t consecutive_failures = 0;  // failed launches in a row (retry policy)
  TimeMs next_launch_ms = 0;               // launches wait until then
  bool launch_waiting = false;             // a Tick must reconcile (once next_launch_ms passes)
  bool fail_static = false;
  std::string fail_static_activity;
  std::vector<LifecycleHook> hooks;        // lifecycle hooks of this group (both transitions)
  std::optional<Rollout> rollout;          // the rollout that is not finished (docs/rollout.md)
  bool traffic_sampled = false;            // the load balancer's figures reach this group
  std::uint32_t surge = 0;                 // instances the rollout runs above desired
  bool rollout_due = false;                // a member changed: the rollout steps after this event
};

// One pending lifecycle action (docs/lifecycle.md, "Lifecycle hooks").
struct Fleet::HookAction {
  LifecycleHook hook;  // a copy: editing the group's hooks affects later transitions only
  std::string token;
  TimeMs started_ms = 0;
  TimeMs deadline_ms = 0;  // default result then, unless a heartbeat moves it
  TimeMs give_up_ms = 0;   // heartbeats cannot move the deadline past this
  bool removed = false;    // the hook was deleted while pending: continue at the next Tick
};

struct Fleet::Entry {
  Instance inst;
  GroupState* group = nullptr;
  std::size_t member_index = 0;
  std::uint8_t tally_bits = 0;       // what this entry adds to group->tally
  std::vector<HookAction> actions;   // only in pending_launch_hook / pending_terminate_hook
  TimeMs hook_deadline_ms = kNever;  // earliest action deadline (kAtOnce for a removed hook)
  std::string hook_note;             // this transition's hook outcomes, for activity messages
  // The load balancer's counters for this instance: the latest sample, and
  // where the current window (its first sample, or a canary's start) began.
  TrafficFigures traffic;
  TrafficFigures traffic_origin;
  bool traffic_seen = false;
};

Fleet::Fleet(FleetDeps deps) : m_deps(std::move(deps)), m_rng(m_deps.seed) {}
Fleet::~Fleet() = default;

Fleet::Entry* Fleet::find(std::string_view id) {
  auto it = m_instances.find(id);
  return it == m_instances.end() ? nullptr : it->second.get();
}

Fleet::GroupState* Fleet::find_group(std::string_view name) {
  auto it = m_groups.find(name);
  return it == m_groups.end() ? nullptr : it->second.get();
}

void Fleet::persist(const Entry& e, std::vector<Command>& out) { out.emplace_back(PersistInstance{e.inst}); }

void Fleet::share_access(const Entry& e, std::vector<Command>& out) const {
  const Instance& i = e.inst;
  out.emplace_back(SetAgentAccess{i.id, i.agent_key, i.agent_key.empty() && !i.enrollment_token_hash.empty(), false});
}

std::uint32_t Fleet::drain_timeout(const GroupState& g) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(g.cfg.drain_timeout_ms, 0, UINT32_MAX));
}

Terminate Fleet::terminate_command(const Entry& e) const {
  const Instance& i = e.inst;
  const auto grace = static_cast<std::uint32_t>(
      std::clamp<std::int64_t>(e.group->cfg.drain_timeout_ms, 0, std::int64_t{kMaxTerminateGraceMs}));
  return Terminate{i.id, i.group, i.provider_id, i.idempotency_key, i.origin, grace};
}

void Fleet::update_deadline(Entry& e) {
  const Instance& i = e.inst;
  const ScalingGroup& cfg = e.group->cfg;
  TimeMs deadline = kNever;
  if (i.state == LifecycleState::Booting) {
    if (i.health == Health::Healthy) deadline = i.state_since_ms + cfg.boot_timeout_ms;
  } else if (is_connected_state(i.state)) {
    if (i.health == Health::Healthy) deadline = i.runtime.last_report_ms + cfg.liveness_window_ms;
  } else if (i.state == LifecycleState::Draining) {
    deadline = i.state_since_ms + cfg.drain_timeout_ms;
  }
  e.group->members[e.member_index].deadline_ms = std::min(deadline, e.hook_deadline_ms);
}

void Fleet::retally(Entry& e) {
  const std::uint8_t bits = tally_bits(e.inst);
  if (bits == e.tally_bits) return;
  const bool room = (e.tally_bits & kReplacing) != 0 && (bits & kReplacing) == 0;
  remove_bits(e.group->tally, e.tally_bits);
  add_bits(e.group->tally, bits);
  e.tally_bits = bits;
  if (room) room_for_replacement(*e.group);
}

void Fleet::room_for_replacement(GroupState& g) {
  // However the replacement stopped taking room (in service by its REPORT or
  // by the provider's late answer, unhealthy, scaled in, gone), an unhealthy
  // instance waiting for its turn must not wait for an unrelated event.
  if (g.tally.replaceable > 0) g.launch_waiting = true;
}

std::string Fleet::audit_group(const GroupState& g) {
  Tally recount;
  for (std::size_t k = 0; k < g.members.size(); ++k) {
    const Entry& e = *g.members[k].entry;
    if (e.group != &g || e.member_index != k) {
      return "group " + g.cfg.name + ": member " + std::to_string(k) + " (" + e.inst.id + ") has index " +
             std::to_string(e.member_index) + (e.group != &g ? " and another group" : "");
    }
    if (e.tally_bits != tally_bits(e.inst)) {
      return "group " + g.cfg.name + ": instance " + e.inst.id + " (" + std::string(to_string(e.inst.state)) +
             ") is tallied as " + std::to_string(e.tally_bits) + ", is " + std::to_string(tally_bits(e.inst));
    }
    add_bits(recount, e.tally_bits);
  }
  if (!(recount == g.tally)) {
    return "group " + g.cfg.name + ": tally " + describe(g.tally) + "; recount " + describe(recount);
  }
  return {};
}

std::string Fleet::audit() const {
  std::size_t members = 0;
  for (const auto& [name, g] : m_groups) {
    if (std::string error = audit_group(*g); !error.empty()) return error;
    members += g->members.size();
  }
  for (const auto& [id, e] : m_instances) {
    const GroupState* g = e->group;
    if (g == nullptr || e->member_index >= g->members.size() || g->members[e->member_index].entry != e.get()) {
      return "instance " + id + " is not at its place in its group's members";
    }
  }
  if (members != m_instances.size()) {
    return std::to_string(members) + " group members but " + std::to_string(m_instances.size()) + " instances";
  }
  return {};
}

void Fleet::add_member(GroupState& g, Entry& e) {
  e.group = &g;
  e.member_index = g.members.size();
  e.tally_bits = 0;
  g.members.push_back(Member{&e, kNever});
  retally(e);
  update_deadline(e);
}

void Fleet::erase(Entry& e) {
  GroupState& g = *e.group;
  const std::size_t index = e.member_index;
  if (index + 1 != g.members.size()) {
    g.members[index] = g.members.back();
    g.members[index].entry->member_index = index;
  }
  g.members.pop_back();
  const bool room = (e.tally_bits & kReplacing) != 0;
  remove_bits(g.tally, e.tally_bits);
  e.tally_bits = 0;
  if (room) room_for_replacement(g);
  drop_actions(e);
  const std::string id = e.inst.id;  // e dies with the erase below
  m_instances.erase(id);
}

void Fleet::set_state(Entry& e, LifecycleState to, TimeMs now) {
  // Leaving a hook state by any way (completion, drain, vanished) ends its
  // actions: their tokens no longer complete anything.
  if (!e.actions.empty() && !is_hook_state(to)) drop_actions(e);
  e.inst.state = to;
  e.inst.state_since_ms = now;
  retally(e);
  rollout_due(*e.group);
}

// A member of a group with a rollout changed state or rotation: the rollout
// takes its next step at the end of the event (not at the next tick), so a
// batch starts the moment the previous one's new instances are in rotation.
void Fleet::rollout_due(GroupState& g) {
  if (!g.rollout || g.rollout_due) return;
  g.rollout_due = true;
  m_rollouts_due.push_back(g.cfg.name);
}

void Fleet::step_due_rollouts(TimeMs now, std::vector<Command>& out) {
  // A step can make another member change (a retirement drains): that is
  // due again and waits for the next event or tick, so this never loops.
  std::vector<std::string> due;
  due.swap(m_rollouts_due);
  for (const std::string& name : due) {
    GroupState* g = find_group(name);
    if (g == nullptr) continue;
    g->rollout_due = false;
    if (g->rollout) advance_rollout(*g, now, out);
  }
}

// ---- activities -------------------------------------------------------------

std::string Fleet::start_activity(GroupState& g, ActivityType type, std::string cause, TimeMs now,
                                  std::vector<std::string> instance_ids, std::vector<Command>& out) {
  RunningActivity ra;
  ra.activity.id = m_deps.new_activity_id();
  ra.activity.group = g.cfg.name;
  ra.activity.type = type;
  ra.activity.cause = std::move(cause);
  ra.activity.status = ActivityStatus::Running;
  ra.activity.start_ms = now;
  for (auto& id : instance_ids) ra.activity.instances.push_back(ActivityInstance{std::move(id), {}, true});
  ra.open = static_cast<std::uint32_t>(ra.activity.instances.size());
  out.emplace_back(RecordActivity{ra.activity});
  std::string id = ra.activity.id;
  m_activities.emplace(id, std::move(ra));
  return id;
}

void Fleet::record_finished_activity(const std::string& group, ActivityType type, std::string cause,
                                     ActivityStatus status, TimeMs now, std::vector<ActivityInstance> instances,
                                     std::vector<Command>& out) {
  Activity a;
  a.id = m_deps.new_activity_id();
  a.group = group;
  a.type = type;
  a.cause = std::move(cause);
  a.status = status;
  a.start_ms = now;
  a.end_ms = now;
  a.instances = std::move(instances);
  out.emplace_back(RecordActivity{std::move(a)});
}

tl::expected<void, ModelError> Fleet::record_metric_query(std::string_view group, bool ok, std::string cause,
                                                         TimeMs now_ms, std::vector<Command>& out) {
  const GroupState* g = find_group(group);
  if (g == nullptr) return tl::make_unexpected(ModelError{"no group '" + std::string(group) + "'", "group"});
  record_finished_activity(g->cfg.name, ActivityType::MetricQuery, std::move(cause),
                           ok ? ActivityStatus::Successful : ActivityStatus::Failed, now_ms, {}, out);
  return {};
}

void Fleet::activity_instance_done(const std::string& activity_id, const std::string& instance_id, bool ok,
                                   const std::string& message, TimeMs now, std::vector<Command>& out) {
  if (activity_id.empty()) return;
  auto it = m_activities.find(activity_id);
  if (it == m_activities.end()) return;
  RunningActivity& ra = it->second;
  // Scale-outs carry thousands of instances: index them once instead of
  // scanning per outcome, and write the row only when the activity ends.
  if (ra.index.size() != ra.activity.instances.size()) {
    ra.index.clear();
    for (std::size_t k = 0; k < ra.activity.instances.size(); ++k) {
      ra.index.emplace(ra.activity.instances[k].instance_id, k);
    }
  }
  auto pos = ra.index.find(instance_id);
  if (pos == ra.index.end()) return;
  ActivityInstance& ai = ra.activity.instances[pos->second];
  ai.ok = ok;
  ai.message = message;
  if (ra.open > 0) --ra.open;
  if (ra.open > 0) return;
  std::size_t good = 0;
  for (const ActivityInstance& each : ra.activity.instances) good += each.ok ? 1 : 0;
  const std::size_t total = ra.activity.instances.size();
  ra.activity.status = good == total ? ActivityStatus::Successful
                       : good == 0   ? ActivityStatus::Failed
                                     : ActivityStatus::PartiallySuccessful;
  ra.activity.end_ms = now;
  out.emplace_back(UpdateActivity{std::move(ra.activity)});
  m_activities.erase(it);
}

// ---- configuration ----------------------------------------------------------

tl::expected<void, ModelError> Fleet::put_launch_configuration(LaunchConfiguration config) {
  if (auto ok = validate(config); !ok) return tl::unexpected(ok.error());
  auto key = std::make_pair(config.id, config.version);
  auto it = m_configs.find(key);
  if (it != m_configs.end() && !(it->second == config)) {
    return fail("launch configuration " + config.id + " version " + std::to_string(config.version) +
                " exists with other content (configurations are immutable: add a version)");
  }
  m_configs.insert_or_assign(std::move(key), std::move(config));
  return {};
}

tl::expected<void, ModelError> Fleet::put_group(ScalingGroup group, TimeMs now_ms, std::vector<Command>& out) {
  if (auto ok = validate(group); !ok) return tl::unexpected(ok.error());
  if (!m_configs.contains({group.launch_configuration_id, group.launch_configuration_version})) {
    return fail("unknown launch configuration " + group.launch_configuration_id + " version " +
                std::to_string(group.launch_configuration_version));
  }
  GroupState* g = find_group(group.name);
  std::string why;
  if (g == nullptr) {
    auto state = std::make_unique<GroupState>();
    g = state.get();
    m_groups.emplace(group.name, std::move(state));
    if (group.created_ms == 0) group.created_ms = now_ms;
    why = "group " + group.name + " created";
  } else {
    group.created_ms = g->cfg.created_ms;
    why = "group " + group.name + " updated";
  }
  group.updated_ms = now_ms;
  g->cfg = std::move(group);
  out.emplace_back(PersistGroup{g->cfg});
  // Timers depend on the group's durations.
  for (Member& m : g->members) update_deadline(*m.entry);
  reconcile(*g, now_ms, out, why);
  return {};
}

tl::expected<void, ModelError> Fleet::set_desired(std::string_view group, std::uint32_t desired, std::string cause,
                                                  TimeMs now_ms, std::vector<Command>& out) {
  GroupState* g = find_group(group);
  if (g == nullptr) return fail("unknown group " + std::string(group));
  if (desired < g->cfg.min || desired > g->cfg.max) {
    return tl::unexpected<ModelError>(ModelError{"desired " + std::to_string(desired) + " outside [min " +
                                                     std::to_string(g->cfg.min) + ", max " +
                                                     std::to_string(g->cfg.max) + "] of group " + g->cfg.name,
                                                 "desired"});
  }
  const std::uint32_t before = g->cfg.desired;
  g->cfg.desired = desired;
  g->cfg.updated_ms = now_ms;
  out.emplace_back(PersistGroup{g->cfg});
  reconcile(*g, now_ms, out,
            cause + ": desired " + std::to_string(before) + " -> " + std::to_string(desired));
  return {};
}

tl::expected<void, ModelError> Fleet::set_capacity(std::string_view group, std::uint32_t min, std::uint32_t max,
                                                   std::uint32_t desired, std::string cause, TimeMs now_ms,
                                                   std::vector<Command>& out) {
  GroupState* g = find_group(group);
  if (g == nullptr) return fail("unknown group " + std::string(group));
  ScalingGroup next = g->cfg;
  next.min = min;
  next.max = max;
  next.desired = desired;
  if (auto ok = validate(next); !ok) return tl::unexpected(ok.error());
  const std::string change = "min " + std::to_string(g->cfg.min) + " -> " + std::to_string(min) + ", max " +
                             std::to_string(g->cfg.max) + " -> " + std::to_string(max) + ", desired " +
                             std::to_string(g->cfg.desired) + " -> " + std::to_string(desired);
  next.updated_ms = now_ms;
  g->cfg = std::move(next);
  out.emplace_back(PersistGroup{g->cfg});
  reconcile(*g, now_ms, out, cause + ": " + change);
  return {};
}

tl::expected<Attached, ModelError> Fleet::attach(std::string_view group, std::string address, std::uint16_t port,
                                                    bool protect, bool increment_desired, TimeMs now_ms,
                                                    std::vector<Command>& out) {
  GroupState* g = find_group(group);
  if (g == nullptr) return fail("unknown group " + std::string(group));
  if (address.empty()) return fail("attach: address is empty");
  if (increment_desired && g->cfg.desired >= g->cfg.max) {
    return fail("attach: desired would exceed max " + std::to_string(g->cfg.max));
  }
  auto entry = std::make_unique<Entry>();
  Instance& i = entry->inst;
  i.id = m_deps.new_instance_id();
  i.group = g->cfg.name;
  i.origin = InstanceOrigin::Attached;
  i.state = LifecycleState::Booting;  // waits for its agent's HELLO like a launched one
  i.protected_from_scale_in = protect;
  i.address = std::move(address);
  i.port = port;
  i.launch_configuration_id = g->cfg.launch_configuration_id;
  i.launch_configuration_version = g->cfg.launch_configuration_version;
  const EnrollmentToken token = m_deps.new_enrollment_token();
  i.enrollment_token_hash = token.hash;
  i.created_ms = now_ms;
  i.launched_ms = now_ms;
  i.state_since_ms = now_ms;
  Entry& e = *entry;
  m_instances.emplace(i.id, std::move(entry));
  add_member(*g, e);
  if (increment_desired) {
    ++g->cfg.desired;
    g->cfg.updated_ms = now_ms;
    out.emplace_back(PersistGroup{g->cfg});
  }
  persist(e, out);
  share_access(e, out);
  record_finished_activity(g->cfg.name, ActivityType::Attach,
                           "user attached " + e.inst.address + ":" + std::to_string(port) +
                               (protect ? " (protected from scale-in)" : ""),
                           ActivityStatus::Successful, now_ms, {ActivityInstance{e.inst.id, "attached", true}}, out);
  std::string id = e.inst.id;
  const Instance before = e.inst;
  reconcile(*g, now_ms, out, "instance " + id + " attached");
  return Attached{snapshot(id, before), token.token};
}

Instance Fleet::snapshot(const std::string& id, const Instance& before) const {
  if (const Instance* now = instance(id)) return *now;
  if (m_last_departed.id == id) return m_last_departed;
  return before;
}

// A user takes an instance out of its group (detach, terminate): checks it
// may leave and lowers desired when asked to.
tl::expected<Fleet::Entry*, ModelError> Fleet::leave_on_request(std::string_view instance_id, bool decrement_desired,
                                                                std::string_view verb, TimeMs now_ms,
                                                                std::vector<Command>& out) {
  Entry* e = find(instance_id);
  if (e == nullptr) return fail("unknown instance " + std::string(instance_id));
  if (!counts(e->inst)) {
    return fail("instance " + e->inst.id + " is " + std::string(to_string(e->inst.state)) +
                (e->inst.exit_reason != ExitReason::None ? " and already leaving" : ""));
  }
  if (e->inst.state == LifecycleState::Pending) return fail("instance " + e->inst.id + " is still launching");
  GroupState& g = *e->group;
  if (decrement_desired) {
    if (g.cfg.desired <= g.cfg.min) {
      return fail(std::string(verb) + ": desired would go below min " + std::to_string(g.cfg.min));
    }
    --g.cfg.desired;
    g.cfg.updated_ms = now_ms;
    out.emplace_back(PersistGroup{g.cfg});
  }
  return e;
}

tl::expected<Instance, ModelError> Fleet::detach(std::string_view instance_id, bool decrement_desired, TimeMs now_ms,
                                                 std::vector<Command>& out) {
  auto e = leave_on_request(instance_id, decrement_desired, "detach", now_ms, out);
  if (!e) return tl::make_unexpected(e.error());
  GroupState& g = *(*e)->group;
  const Instance before = (*e)->inst;
  const std::string activity = start_activity(g, ActivityType::Detach, "user detached " + before.id, now_ms,
                                              {before.id}, out);
  begin_drain(**e, ExitReason::Detach, activity, now_ms, out);  // may end the instance at once
  reconcile(g, now_ms, out, "instance " + before.id + " detached");
  return snapshot(before.id, before);
}

tl::expected<void, ModelError> Fleet::remove_group(std::string_view name) {
  GroupState* g = find_group(name);
  if (g == nullptr) return fail("unknown group " + std::string(name));
  if (!g->members.empty()) {
    return fail("group " + std::string(name) + " still has " + std::to_string(g->members.size()) +
                " instance(s); set desired to 0 and detach attached ones first");
  }
  std::erase_if(m_activities, [&](const auto& item) { return item.second.activity.group == name; });
  m_groups.erase(m_groups.find(name));
  return {};
}

tl::expected<Instance, ModelError> Fleet::terminate(std::string_view instance_id, bool decrement_desired,
                                                    TimeMs now_ms, std::vector<Command>& out) {
  auto e = leave_on_request(instance_id, decrement_desired, "terminate", now_ms, out);
  if (!e) return tl::make_unexpected(e.error());
  GroupState& g = *(*e)->group;
  const Instance before = (*e)->inst;
  const std::string activity =
      start_activity(g, ActivityType::TerminateInstance,
                     "user terminated " + (*e)->inst.id + (decrement_desired ? ", desired capacity lowered" : ""),
                     now_ms, {(*e)->inst.id}, out);
  begin_drain(**e, ExitReason::User, activity, now_ms, out);
  reconcile(g, now_ms, out, "instance " + before.id + " terminated by the user");
  return snapshot(before.id, before);
}

tl::expected<Instance, ModelError> Fleet::set_protected(std::string_view instance_id, bool value, TimeMs now_ms,
                                                        std::vector<Command>& out) {
  Entry* e = find(instance_id);
  if (e == nullptr) return fail("unknown instance " + std::string(instance_id));
  const Instance before = e->inst;
  if (before.protected_from_scale_in == value) return before;
  e->inst.protected_from_scale_in = value;
  retally(*e);
  persist(*e, out);
  // Unprotecting may allow a pending scale-in or replacement.
  reconcile(*e->group, now_ms, out, "protection of " + before.id + (value ? " set" : " cleared"));
  return snapshot(before.id, before);
}

// ---- the rule -------------------------------------------------------------

void Fleet::apply_rule(Entry& e, TimeMs now, std::vector<Command>& out) {
  Instance& i = e.inst;
  const bool want = wants_rotation(i);
  const LbBinding& lb = e.group->cfg.lb;
  // LB first: the shell runs commands in order, and rotation latency is the
  // product; the state row follows.
  if (want != i.runtime.in_lb) {
    if (!lb.backend.empty()) {
      if (want) {
        out.emplace_back(LbRegister{lb.backend, i.id, i.address, lb.port != 0 ? lb.port : i.port});
        i.runtime.lb_member = true;
      } else {
        out.emplace_back(LbDrain{lb.backend, i.id, drain_timeout(*e.group)});
      }
    }
    i.runtime.in_lb = want;
    if (want) i.runtime.in_lb_since_ms = now;
    rollout_due(*e.group);
  }
  std::optional<LifecycleState> next;
  if (want && (i.state == LifecycleState::Warming || i.state == LifecycleState::OutOfRotation)) {
    next = transition(i.state, LifecycleEvent::Ready);
  } else if (!want && i.state == LifecycleState::InService) {
    next = transition(i.state, LifecycleEvent::NotReady);
  }
  if (next) {
    if (i.state == LifecycleState::Warming && *next == LifecycleState::InService) {
      // The launch is complete only now: the retry policy starts afresh.
      e.group->consecutive_failures = 0;
      e.group->next_launch_ms = 0;
    }
    set_state(e, *next, now);
    persist(e, out);
  }
}

// ---- health and fail-static -------------------------------------------------

void Fleet::mark_unhealthy(Entry& e, std::string reason, bool contact_lost, TimeMs now) {
  note_rollout_failure(e, now);
  e.inst.health = Health::Unhealthy;
  e.inst.health_reason = std::move(reason);
  e.inst.unhealthy_since_ms = now;
  e.inst.runtime.contact_lost = contact_lost;
  retally(e);
  update_deadline(e);
}

void Fleet::health_changed(GroupState& g, std::span<Entry* const> changed, TimeMs now, std::vector<Command>& out) {
  // Those that lost contact within the window are some of the lost ones:
  // count them only when the lost could be too many.
  const std::size_t total = g.tally.counting;
  if (!g.fail_static && fail_static_applies(g.tally.lost, total, g.cfg.fail_static_share)) {
    std::size_t recent = 0;
    const TimeMs window_start = now - g.cfg.liveness_window_ms;
    for (const Member& m : g.members) {
      const Instance& i = m.entry->inst;
      if ((m.entry->tally_bits & kLost) != 0 && i.unhealthy_since_ms > window_start) ++recent;
    }
    if (fail_static_applies(recent, total, g.cfg.fail_static_share)) {
      g.fail_static = true;
      std::vector<std::string> ids;
      // Those that lost contact within the window go back to what their
      // last report says (they may have left rotation a moment ago, before
      // the others were lost too).
      std::vector<Entry*> held;
      for (const Member& m : g.members) {
        Instance& i = m.entry->inst;
        if ((m.entry->tally_bits & kLost) != 0 && (m.entry->tally_bits & kCounting) != 0 &&
            i.unhealthy_since_ms > window_start) {
          i.runtime.health_held = true;
          held.push_back(m.entry);
        }
      }
      for (Entry* e : held) apply_rule(*e, now, out);
      g.fail_static_activity = start_activity(
          g, ActivityType::FailStatic,
          "fail-static: lost contact with " + std::to_string(recent) + " of " + std::to_string(total) +
              " instances within " + std::to_string(g.cfg.liveness_window_ms) + " ms (more than " +
              percent(g.cfg.fail_static_share) + ", at least " + std::to_string(kFailStaticMinLost) + " of at least " +
              std::to_string(kFailStaticMinInstances) +
              "): a monitoring failure is likelier than so many crashes, so those instances stay in the load "
              "balancer as they are and are not replaced until contact returns or at most " +
              percent(g.cfg.fail_static_share) + " are lost; instances known to be broken are still replaced",
          now, std::move(ids), out);
    }
  }
  for (Entry* e : changed) {
    if (g.fail_static && e->inst.health == Health::Unhealthy && e->inst.runtime.contact_lost) {
      e->inst.runtime.health_held = true;
    }
    apply_rule(*e, now, out);
    persist(*e, out);
  }
  reconcile(g, now, out, "health changed");
}

void Fleet::check_fail_static_exit(GroupState& g, TimeMs now, std::vector<Command>& out) {
  if (!g.fail_static) return;
  const std::size_t total = g.tally.counting;
  const std::size_t lost = g.tally.lost;
  if (fail_static_applies(lost, total, g.cfg.fail_static_share)) return;
  g.fail_static = false;
  auto it = m_activities.find(g.fail_static_activity);
  if (it != m_activities.end()) {
    Activity a = std::move(it->second.activity);
    m_activities.erase(it);
    a.status = ActivityStatus::Successful;
    a.end_ms = now;
    a.cause += "; resumed: contact lost with " + std::to_string(lost) + " of " + std::to_string(total);
    out.emplace_back(UpdateActivity{std::move(a)});
  }
  g.fail_static_activity.clear();
  for (const Member& m : g.members) {
    Entry& e = *m.entry;
    if (!e.inst.runtime.health_held) continue;
    e.inst.runtime.health_held = false;
    apply_rule(e, now, out);
  }
  reconcile(g, now, out, "fail-static ended");
}

// ---- launching, draining, terminating --------------------------------------

Fleet::Entry& Fleet::launch_one(GroupState& g, TimeMs now, std::vector<Command>& out, const std::string& activity_id,
                                bool is_replacement) {
  auto entry = std::make_unique<Entry>();
  Instance& i = entry->inst;
  i.id = m_deps.new_instance_id();
  i.group = g.cfg.name;
  i.origin = InstanceOrigin::Launched;
  i.state = LifecycleState::Pending;
  i.launch_configuration_id = g.cfg.launch_configuration_id;
  i.launch_configuration_version = g.cfg.launch_configuration_version;
  i.idempotency_key = m_deps.new_idempotency_key();
  EnrollmentToken token = m_deps.new_enrollment_token();
  i.enrollment_token_hash = std::move(token.hash);
  i.activity_id = activity_id;
  i.created_ms = now;
  i.state_since_ms = now;
  i.runtime.is_replacement = is_replacement;
  Entry& e = *entry;
  m_instances.emplace(i.id, std::move(entry));
  add_member(g, e);
  // Crash safety: the row with its idempotency key is written before the
  // provider is asked, so a restart finds the launch and never repeats it
  // under another key.
  persist(e, out);
  share_access(e, out);
  out.emplace_back(Launch{e.inst.id, g.cfg.name, e.inst.idempotency_key, e.inst.launch_configuration_id,
                          e.inst.launch_configuration_version, std::move(token.token)});
  return e;
}

void Fleet::begin_drain(Entry& e, ExitReason reason, const std::string& activity_id, TimeMs now,
                        std::vector<Command>& out, LifecycleEvent event) {
  Instance& i = e.inst;
  i.exit_reason = reason;
  retally(e);
  if (!activity_id.empty()) i.activity_id = activity_id;
  if (i.state == LifecycleState::Pending) {
    // The launch is in flight: the provider's answer decides (drain right
    // after LaunchSucceeded; nothing to do after LaunchFailed).
    persist(e, out);
    return;
  }
  const auto next = transition(i.state, event);
  if (!next) return;
  const bool was_member = i.runtime.lb_member;
  i.runtime.health_held = false;
  apply_rule(e, now, out);  // exit_reason set: leaves rotation (LbDrain) if it was in
  set_state(e, *next, now);
  if (i.runtime.agent_connected) {
    out.emplace_back(SendDrain{i.id, static_cast<std::uint32_t>(e.group->cfg.drain_timeout_ms)});
  }
  persist(e, out);
  update_deadline(e);
  if (!was_member || e.group->cfg.lb.backend.empty()) finish_drain(e, now, out);
}

void Fleet::finish_drain(Entry& e, TimeMs now, std::vector<Command>& out) {
  Instance& i = e.inst;
  if (i.state != LifecycleState::Draining) return;
  const LbBinding& lb = e.group->cfg.lb;
  if (i.runtime.lb_member && !lb.backend.empty()) out.emplace_back(LbRemove{lb.backend, i.id});
  i.runtime.lb_member = false;
  i.runtime.in_lb = false;
  if (i.exit_reason == ExitReason::Detach) {
    set_state(e, *transition(i.state, LifecycleEvent::DetachComplete), now);
    finish_terminal(e, true, "detached", now, out);
    return;
  }
  set_state(e, *transition(i.state, LifecycleEvent::DrainComplete), now);
  if (start_hooks(e, HookTransition::Terminating, now, out)) {
    // Held by terminate hooks; hooks_done() terminates it.
    update_deadline(e);
    persist(e, out);
    return;
  }
  set_state(e, *transition(i.state, LifecycleEvent::TerminateHookDone), now);
  update_deadline(e);
  persist(e, out);  // terminating is on disk before the provider is asked
  out.emplace_back(terminate_command(e));
}

// Persists a terminal instance, closes its activity entry and forgets it.
void Fleet::finish_terminal(Entry& e, bool ok, const std::string& message, TimeMs now, std::vector<Command>& out) {
  // Whichever way it leaves (a drain frees its slot on the way; a
  // termination, a failed relaunch or a vanishing may not), the load
  // balancer's slot held for it is freed: a slot kept for an instance tide
  // forgot is lost for good.
  if (e.inst.runtime.lb_member && !e.group->cfg.lb.backend.empty()) {
    out.emplace_back(LbRemove{e.group->cfg.lb.backend, e.inst.id});
  }
  e.inst.runtime.lb_member = false;
  e.inst.runtime.in_lb = false;
  persist(e, out);
  out.emplace_back(SetAgentAccess{e.inst.id, e.inst.agent_key, false, true});
  const std::string activity = e.inst.activity_id;
  const std::string id = e.inst.id;
  m_last_departed = e.inst;
  erase(e);
  activity_instance_done(activity, id, ok, message, now, out);
}

// ---- the reconciler ---------------------------------------------------------

// Decides on the group's tally alone; walks the members only to choose which
// instances to replace or scale in (the tally says when there are some).
void Fleet::reconcile(GroupState& g, TimeMs now, std::vector<Command>& out, std::string_view why) {
  assert(audit_group(g).empty());
  const bool may_launch = now >= g.next_launch_ms;
  g.launch_waiting = false;

  // Replace unhealthy instances: launch first, then remove; rate limited. A
  // disabled group replaces nothing (and runs no policies or schedules,
  // which live in the shell), but still follows desired changes a user makes.
  // Under fail-static the instances that lost contact are held; the ones
  // known to be broken are still replaced.
  const std::uint32_t replaceable = g.tally.replaceable - (g.fail_static ? g.tally.lost_replaceable : 0U);
  if (g.cfg.enabled && replaceable > 0) {
    if (!may_launch) {
      g.launch_waiting = true;
    } else if (const std::uint32_t limit = replacement_limit(g.cfg); g.tally.replacing < limit) {
      std::uint32_t replacing = g.tally.replacing;
      std::vector<Entry*> unhealthy;
      unhealthy.reserve(replaceable);
      for (const Member& m : g.members) {
        const std::uint8_t bits = m.entry->tally_bits;
        if ((bits & kReplaceable) != 0 && !(g.fail_static && (bits & kLost) != 0)) unhealthy.push_back(m.entry);
      }
      std::sort(unhealthy.begin(), unhealthy.end(), [](const Entry* a, const Entry* b) {
        return std::tie(a->inst.unhealthy_since_ms, a->inst.id) < std::tie(b->inst.unhealthy_since_ms, b->inst.id);
      });
      for (Entry* x : unhealthy) {
        if (replacing >= limit) break;
        const std::string cause = "instance " + x->inst.id + " is unhealthy (" + x->inst.health_reason +
                                  "): launching a replacement first, then removing it (" +
                                  std::to_string(replacing + 1) + " of at most " + std::to_string(limit) +
                                  " replacements at a time)";
        const std::string activity = start_activity(g, ActivityType::ReplaceUnhealthy, cause, now, {}, out);
        Entry& r = launch_one(g, now, out, activity, true);
        auto& act = m_activities.at(activity);
        act.activity.instances.push_back(ActivityInstance{r.inst.id, "replacement", true});
        act.activity.instances.push_back(ActivityInstance{x->inst.id, "replaced", true});
        act.open = 2;
        begin_drain(*x, ExitReason::Replace, activity, now, out);
        ++replacing;
      }
    }
  }

  // Capacity: bring counting instances to desired (plus a rollout's surge).
  const std::size_t counting = g.tally.counting;
  const std::size_t desired = std::size_t{g.cfg.desired} + g.surge;
  if (counting < desired) {
    if (!may_launch) {
      g.launch_waiting = true;
      return;
    }
    const std::size_t n = desired - counting;
    std::string cause = std::string(why) + ": desired " + std::to_string(desired) + ", " + std::to_string(counting) +
                        " instances: launching " + std::to_string(n);
    const std::string activity = start_activity(g, ActivityType::ScaleOut, std::move(cause), now, {}, out);
    auto& act = m_activities.at(activity);
    act.open = static_cast<std::uint32_t>(n);
    for (std::size_t k = 0; k < n; ++k) {
      Entry& e = launch_one(g, now, out, activity, false);
      act.activity.instances.push_back(ActivityInstance{e.inst.id, {}, true});
    }
    out.emplace_back(UpdateActivity{act.activity});
  } else if (counting > desired) {
    const std::size_t n = counting - desired;
    std::vector<const Instance*> candidates;
    candidates.reserve(counting);
    for (const Member& m : g.members) {
      if ((m.entry->tally_bits & kCounting) != 0) candidates.push_back(&m.entry->inst);
    }
    std::vector<const Instance*> chosen = choose_scale_in(candidates, g.cfg, n, m_rng);
    if (chosen.empty()) return;  // all protected
    std::string cause = std::string(why) + ": desired " + std::to_string(desired) + ", " + std::to_string(counting) +
                        " instances: removing " + std::to_string(chosen.size());
    if (chosen.size() < n) cause += " (" + std::to_string(n - chosen.size()) + " protected from scale-in)";
    std::vector<std::string> ids;
    for (const Instance* i : chosen) ids.push_back(i->id);
    const std::string activity = start_activity(g, ActivityType::ScaleIn, std::move(cause), now, ids, out);
    for (const std::string& id : ids) {
      if (Entry* e = find(id)) begin_drain(*e, ExitReason::ScaleIn, activity, now, out);
    }
  }
}

// ---- events -----------------------------------------------------------------

std::vector<Command> Fleet::handle(const Event& event, TimeMs now_ms) {
  std::vector<Command> out;
  handle(event, now_ms, out);
  return out;
}

void Fleet::handle(const Event& event, TimeMs now_ms, std::vector<Command>& out) {
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, AgentHello>) on_hello(e, now_ms, out);
        else if constexpr (std::is_same_v<T, AgentReport>) on_report(e, now_ms, out);
        else if constexpr (std::is_same_v<T, AgentLost>) on_lost(e, now_ms, out);
        else if constexpr (std::is_same_v<T, LaunchSucceeded>) on_launch_succeeded(e, now_ms, out);
        else if constexpr (std::is_same_v<T, LaunchFailed>) on_launch_failed(e, now_ms, out);
        else if constexpr (std::is_same_v<T, TerminateCompleted>) on_terminated(e, now_ms, out);
        else if constexpr (std::is_same_v<T, InstanceVanished>) on_vanished(e, now_ms, out);
        else if constexpr (std::is_same_v<T, LbDrained>) on_lb_drained(e, now_ms, out);
        else if constexpr (std::is_same_v<T, LbRegisterFailed>) on_lb_register_failed(e, now_ms, out);
        else if constexpr (std::is_same_v<T, LbTrafficSample>) on_lb_traffic(e);
        else if constexpr (std::is_same_v<T, Tick>) on_tick(now_ms, out);
        else static_assert(sizeof(T) == 0, "an Event alternative has no handler");
      },
      event);
  step_due_rollouts(now_ms, out);
}

void Fleet::on_hello(const AgentHello& ev, TimeMs now, std::vector<Command>& out) {
  Entry* e = find(ev.instance_id);
  if (e == nullptr) return;
  Instance& i = e->inst;
  bool changed = false;
  i.runtime.agent_connected = true;
  i.runtime.last_report_ms = now;
  if (i.agent_key.empty() && !ev.agent_key.empty()) {
    i.agent_key = ev.agent_key;
    changed = true;
    share_access(*e, out);
  }
  if (!ev.address.empty() && ev.address != i.address) {
    i.address = ev.address;
    changed = true;
  }
  if (ev.port != 0 && ev.port != i.port) {
    i.port = ev.port;
    changed = true;
  }
  if (i.state == LifecycleState::Booting) {
    set_state(*e, *transition(i.state, LifecycleEvent::AgentHello), now);
    enter_launch_hook(*e, now, out);
    changed = true;
  } else if (is_hook_state(i.state)) {
    // A reconnected agent may have lost a script run it was asked for.
    send_hook_scripts(*e, out);
  }
  if (i.state == LifecycleState::Draining && i.exit_reason != ExitReason::None) {
    out.emplace_back(SendDrain{i.id, static_cast<std::uint32_t>(e->group->cfg.drain_timeout_ms)});
  }
  update_deadline(*e);
  if (changed) persist(*e, out);
  apply_rule(*e, now, out);
}

void Fleet::on_report(const AgentReport& ev, TimeMs now, std::vector<Command>& out) {
  Entry* e = find(ev.instance_id);
  if (e == nullptr) return;
  Instance& i = e->inst;
  i.runtime.last_report_ms = now;
  i.runtime.agent_connected = true;
  undrain_if_unwanted(*e, ev.draining, now, out);
  const ScalingGroup& cfg = e->group->cfg;
  // Health checks do not count during the grace period after launch.
  const TimeMs started = i.launched_ms != 0 ? i.launched_ms : i.created_ms;
  const bool in_grace = now < started + cfg.health_check_grace_period_ms;
  const bool report_healthy = ev.healthy || in_grace;
  const bool health_flip = (i.health == Health::Healthy) != report_healthy;
  if (i.runtime.contact_lost && !health_flip) {
    // Contact is back but the instance is unhealthy all the same: from now
    // on it is the agent's verdict, which fail-static never holds.
    i.runtime.contact_lost = false;
    i.runtime.health_held = false;
    i.health_reason = ev.health_reason.empty() ? "agent reports unhealthy" : ev.health_reason;
    retally(*e);
    i.runtime.ready = ev.ready;
    i.runtime.agent_healthy = ev.healthy;
    i.runtime.agent_draining = ev.draining;
    update_deadline(*e);
    apply_rule(*e, now, out);
    persist(*e, out);
    GroupState& g = *e->group;
    check_fail_static_exit(g, now, out);
    reconcile(g, now, out, "instance " + i.id + " reports unhealthy");
    return;
  }
  // The common case: nothing changed. Only the liveness deadline moves.
  if (i.runtime.ready == ev.ready && i.runtime.agent_healthy == ev.healthy &&
      i.runtime.agent_draining == ev.draining && !health_flip) {
    if (i.health == Health::Healthy && is_connected_state(i.state)) {
      e->group->members[e->member_index].deadline_ms = std::min(now + cfg.liveness_window_ms, e->hook_deadline_ms);
    }
    return;
  }
  i.runtime.ready = ev.ready;
  i.runtime.agent_healthy = ev.healthy;
  i.runtime.agent_draining = ev.draining;
  if (health_flip && is_member_state(i.state) && i.exit_reason == ExitReason::None) {
    Entry* changed[] = {e};
    if (!report_healthy) {
      mark_unhealthy(*e, ev.health_reason.empty() ? "agent reports unhealthy" : ev.health_reason, false, now);
    } else {
      i.health = Health::Healthy;
      i.health_reason.clear();
      i.unhealthy_since_ms = 0;
      i.runtime.health_held = false;
      i.runtime.contact_lost = false;
      retally(*e);
      update_deadline(*e);
    }
    GroupState& g = *e->group;
    health_changed(g, changed, now, out);
    check_fail_static_exit(g, now, out);
    return;
  }
  update_deadline(*e);
  apply_rule(*e, now, out);
  if (i.runtime.is_replacement && i.state == LifecycleState::InService) {
    // A replacement is in service: the rate limit has room for the next one.
    i.runtime.is_replacement = false;
    retally(*e);
    reconcile(*e->group, now, out, "replacement " + i.id + " in service");
  }
}

void Fleet::on_lost(const AgentLost& ev, TimeMs now, std::vector<Command>& out) {
  Entry* e = find(ev.instance_id);
  if (e == nullptr) return;
  Instance& i = e->inst;
  i.runtime.agent_connected = false;
  if (i.health == Health::Unhealthy || !is_connected_state(i.state) || i.exit_reason != ExitReason::None) return;
  mark_unhealthy(*e, "agent lost" + (ev.reason.empty() ? std::string() : ": " + ev.reason), true, now);
  Entry* changed[] = {e};
  health_changed(*e->group, changed, now, out);
}

void Fleet::on_launch_succeeded(const LaunchSucceeded& ev, TimeMs now, std::vector<Command>& out) {
  Entry* e = find(ev.instance_id);
  if (e == nullptr || e->inst.state != LifecycleState::Pending) return;
  Instance& i = e->inst;
  // The failure count is reset only when the instance first goes into
  // service (apply_rule): an application that dies at start is a failed
  // launch however fast the provider said it started.
  i.provider_id = ev.provider_id;
  i.address = ev.address;
  i.port = ev.port;
  i.launched_ms = now;
  set_state(*e, *transition(i.state, LifecycleEvent::LaunchSucceeded), now);
  if (i.runtime.agent_connected) {
    // The agent's HELLO can beat the provider's answer; it will not say it
    // again, so take it now.
    set_state(*e, *transition(i.state, LifecycleEvent::AgentHello), now);
    if (i.exit_reason == ExitReason::None) {
      enter_launch_hook(*e, now, out);
    } else {
      set_state(*e, *transition(i.state, LifecycleEvent::LaunchHookDone), now);  // leaving anyway
    }
  }
  update_deadline(*e);
  persist(*e, out);
  const std::string activity = i.activity_id;
  const std::string id = i.id;
  if (i.exit_reason == ExitReason::None) {
    activity_instance_done(activity, id, true, "launched as " + ev.provider_id, now, out);
    apply_rule(*e, now, out);
    return;
  }
  // Chosen for removal while launching: the activity that chose it tracks it
  // until it is terminated.
  const ExitReason reason = i.exit_reason;
  i.exit_reason = ExitReason::None;
  retally(*e);
  begin_drain(*e, reason, {}, now, out);
}

void Fleet::on_launch_failed(const LaunchFailed& ev, TimeMs now, std::vector<Command>& out) {
  Entry* e = find(ev.instance_id);
  if (e == nullptr || e->inst.state != LifecycleState::Pending) return;
  GroupState& g = *e->group;
  const std::string id = e->inst.id;
  note_rollout_failure(*e, now);
  set_state(*e, *transition(e->inst.state, LifecycleEvent::LaunchFailed), now);
  count_failed_launch(g, id, ev.message, now, out);
  finish_terminal(*e, false, ev.message, now, out);
  reconcile(g, now, out, "retrying after launch failure of " + id);
}

void Fleet::on_terminated(const TerminateCompleted& ev, TimeMs now, std::vector<Command>& out) {
  Entry* e = find(ev.instance_id);
  if (e == nullptr) return;
  const auto next = transition(e->inst.state, LifecycleEvent::TerminateCompleted);
  if (!next) return;
  set_state(*e, *next, now);
  const std::string message = e->hook_note.empty() ? "terminated" : "terminated; " + e->hook_note;
  finish_terminal(*e, true, message, now, out);
}

void Fleet::on_vanished(const InstanceVanished& ev, TimeMs now, std::vector<Command>& out) {
  Entry* e = find(ev.instance_id);
  if (e == nullptr) return;
  Instance& i = e->inst;
  const auto next = transition(i.state, LifecycleEvent::Vanished);
  if (!next) return;
  GroupState& g = *e->group;
  // Leaving anyway (scale-in, replacement, detach, termination): the end tide
  // wanted, only sooner.
  const bool expected = i.state == LifecycleState::Terminating || i.exit_reason != ExitReason::None;
  // It never served: the launch failed (retry policy), whatever the cause —
  // a command that exits at once must not be relaunched in a tight loop.
  const bool never_served = !expected && i.origin == InstanceOrigin::Launched &&
                            (i.state == LifecycleState::Booting || i.state == LifecycleState::PendingLaunchHook ||
                             i.state == LifecycleState::Warming);
  const LbBinding& lb = g.cfg.lb;
  if (i.runtime.lb_member && !lb.backend.empty()) out.emplace_back(LbRemove{lb.backend, i.id});
  i.runtime.in_lb = false;
  i.runtime.lb_member = false;
  const std::string was(to_string(i.state));
  set_state(*e, *next, now);
  const std::string id = i.id;
  if (never_served) {
    count_failed_launch(g, id, "the instance stopped before it was ever in service (" + was + "): " + ev.message,
                        now, out);
  } else if (!expected) {
    record_finished_activity(g.cfg.name, ActivityType::TerminateUnexpectedly,
                             "instance " + id + " (" + was + ") vanished: " + ev.message,
                             ActivityStatus::Successful, now, {ActivityInstance{id, ev.message, true}}, out);
  }
  finish_terminal(*e, expected, ev.message, now, out);
  reconcile(g, now, out, "instance " + id + " vanished");
}

void Fleet::count_failed_launch(GroupState& g, const std::string& instance_id, const std::string& message, TimeMs now,
                                std::vector<Command>& out) {
  ++g.consecutive_failures;
  const std::int64_t delay = retry_delay_ms(g.cfg.retry, g.consecutive_failures);
  g.next_launch_ms = now + delay;
  const std::string retry = delay == 0 ? "retrying now" : "next attempt in " + std::to_string(delay) + " ms";
  record_finished_activity(g.cfg.name, ActivityType::LaunchFailed,
                           "launch of " + instance_id + " failed (" + std::to_string(g.consecutive_failures) +
                               " in a row): " + message + "; " + retry,
                           ActivityStatus::Failed, now, {ActivityInstance{instance_id, message, false}}, out);
}

void Fleet::on_lb_register_failed(const LbRegisterFailed& ev, TimeMs now, std::vector<Command>& out) {
  Entry* e = find(ev.instance_id);
  if (e == nullptr) return;
  Instance& i = e->inst;
  i.runtime.in_lb = false;
  i.runtime.lb_member = false;
  if (!is_member_state(i.state) || i.exit_reason != ExitReason::None) return;
  if (i.health == Health::Healthy || i.runtime.contact_lost) {
    // An instance the load balancer cannot take serves nobody: replace it.
    mark_unhealthy(*e, "the load balancer refused it: " + ev.message, false, now);
    Entry* changed[] = {e};
    health_changed(*e->group, changed, now, out);
    return;
  }
  apply_rule(*e, now, out);
}

void Fleet::on_lb_drained(const LbDrained& ev, TimeMs now, std::vector<Command>& out) {
  Entry* e = find(ev.instance_id);
  if (e == nullptr || e->inst.state != LifecycleState::Draining) return;
  finish_drain(*e, now, out);
}

void Fleet::on_tick(TimeMs now, std::vector<Command>& out) {
  for (auto& [name, gp] : m_groups) {
    GroupState& g = *gp;
    m_scratch.clear();
    for (const Member& m : g.members) {
      if (m.deadline_ms <= now) m_scratch.push_back(m.entry);
    }
    std::vector<Entry*> changed;
    std::vector<std::string> hooks_due;
    for (Entry* e : m_scratch) {
      Instance& i = e->inst;
      if (!e->actions.empty() && e->hook_deadline_ms <= now) {
        // Handled after this loop: a time-out may reconcile the group, and
        // the entries above must not see that half-way.
        hooks_due.push_back(i.id);
        continue;
      }
      if (i.state == LifecycleState::Booting) {
        if (i.exit_reason == ExitReason::None && i.health == Health::Healthy) {
          mark_unhealthy(*e, "no HELLO within the boot timeout of " + std::to_string(g.cfg.boot_timeout_ms) + " ms",
                         false, now);
          changed.push_back(e);
        }
      } else if (is_connected_state(i.state)) {
        if (i.health == Health::Healthy) {
          mark_unhealthy(*e,
                         "no report for " + std::to_string(now - i.runtime.last_report_ms) +
                             " ms (liveness window " + std::to_string(g.cfg.liveness_window_ms) + " ms)",
                         true, now);
          changed.push_back(e);
        }
      } else if (i.state == LifecycleState::Draining) {
        finish_drain(*e, now, out);  // drain timeout; may erase e
        continue;
      }
      update_deadline(*e);
    }
    for (const std::string& id : hooks_due) {
      Entry* e = find(id);
      if (e == nullptr) continue;
      expire_actions(*e, now, out);
      if (Entry* still = find(id)) update_deadline(*still);
    }
    if (!changed.empty()) {
      health_changed(g, changed, now, out);
    } else if (g.launch_waiting && now >= g.next_launch_ms) {
      reconcile(g, now, out, g.consecutive_failures > 0 ? "retry back-off elapsed" : "room for a replacement");
    }
    check_fail_static_exit(g, now, out);
    if (g.rollout) advance_rollout(g, now, out);
  }
}

// ---- restart ----------------------------------------------------------------

// Order matters (docs/lifecycle.md, "Crash safety"): whatever vanished while
// the coordinator was down leaves the load balancer first, then strays go,
// then interrupted launches are asked for again, and only then does the
// reconciler launch anything new — so a new instance that is given a
// vanished one's address never inherits its slot.
void Fleet::restore(RestoreInput input, TimeMs now, std::vector<Command>& out) {
  for (LaunchConfiguration& c : input.launch_configurations) {
    auto key = std::make_pair(c.id, c.version);
    m_configs.insert_or_assign(std::move(key), std::move(c));
  }
  for (ScalingGroup& sg : input.groups) {
    auto state = std::make_unique<GroupState>();
    state->cfg = std::move(sg);
    std::string name = state->cfg.name;
    m_groups.insert_or_assign(std::move(name), std::move(state));
  }
  for (LifecycleHook& hook : input.hooks) {
    GroupState* g = find_group(hook.group);
    if (g == nullptr || !validate(hook)) continue;  // the store validated it; a bad row holds nothing
    g->hooks.push_back(std::move(hook));
  }
  for (Activity& a : input.running_activities) {
    RunningActivity ra;
    ra.activity = std::move(a);
    std::string id = ra.activity.id;
    m_activities.insert_or_assign(std::move(id), std::move(ra));
  }
  // What the provider runs, by idempotency key and by provider id.
  std::unordered_map<std::string_view, std::size_t> by_key;
  std::unordered_map<std::string_view, std::size_t> by_pid;
  for (std::size_t k = 0; k < input.provider.size(); ++k) {
    const ProviderInstance& p = input.provider[k];
    if (!p.idempotency_key.empty()) by_key.emplace(p.idempotency_key, k);
    if (!p.provider_id.empty()) by_pid.emplace(p.provider_id, k);
  }
  std::vector<bool> matched(input.provider.size(), false);
  std::unordered_map<std::string_view, const LbMember*> lb_by_id;
  for (const LbMember& m : input.lb) lb_by_id.emplace(m.instance_id, &m);
  const std::unordered_set<std::string> detached(input.detached.begin(), input.detached.end());

  std::vector<Entry*> adopted;
  std::vector<Entry*> relaunch;
  std::vector<Entry*> vanished;
  for (Instance& stored : input.instances) {
    if (is_terminal(stored.state)) continue;
    GroupState* g = find_group(stored.group);
    if (g == nullptr) continue;  // a group deleted under it: nothing can own it
    auto entry = std::make_unique<Entry>();
    entry->inst = std::move(stored);
    entry->inst.runtime = InstanceRuntime{};
    Entry& e = *entry;
    Instance& i = e.inst;
    m_instances.insert_or_assign(i.id, std::move(entry));
    add_member(*g, e);
    if (auto it = lb_by_id.find(i.id); it != lb_by_id.end()) i.runtime.lb_member = true;
    if (i.origin == InstanceOrigin::Attached) {
      adopted.push_back(&e);
      continue;
    }
    std::optional<std::size_t> hit;
    if (auto it = by_pid.find(i.provider_id); !i.provider_id.empty() && it != by_pid.end()) hit = it->second;
    if (auto it = by_key.find(i.idempotency_key); !hit && !i.idempotency_key.empty() && it != by_key.end()) {
      hit = it->second;
    }
    if (hit) {
      matched[*hit] = true;
      adopted.push_back(&e);
    } else if (i.state == LifecycleState::Pending) {
      relaunch.push_back(&e);
    } else {
      vanished.push_back(&e);
    }
  }

  // 1. Vanished: out of the load balancer at once, then gone.
  for (Entry* e : vanished) {
    Instance& i = e->inst;
    GroupState& g = *e->group;
    const bool expected = i.state == LifecycleState::Terminating || i.state == LifecycleState::PendingTerminateHook;
    if (i.runtime.lb_member && !g.cfg.lb.backend.empty()) out.emplace_back(LbRemove{g.cfg.lb.backend, i.id});
    i.runtime.lb_member = false;
    const std::string id = i.id;
    const std::string was = std::string(to_string(i.state));
    const std::string message = "not running at the provider after a coordinator restart";
    set_state(*e, LifecycleState::Terminated, now);
    if (!expected) {
      record_finished_activity(g.cfg.name, ActivityType::TerminateUnexpectedly,
                               "instance " + id + " (" + was + ") " + message, ActivityStatus::Successful, now,
                               {ActivityInstance{id, message, true}}, out);
    }
    finish_terminal(*e, expected, expected ? "terminated" : message, now, out);
  }
  // LB slots held for instances tide does not know at all.
  for (const LbMember& m : input.lb) {
    if (find(m.instance_id) == nullptr) out.emplace_back(LbRemove{m.backend, m.instance_id});
  }

  // 2. Strays: tide-tagged instances the store does not know.
  for (std::size_t k = 0; k < input.provider.size(); ++k) {
    const ProviderInstance& p = input.provider[k];
    if (matched[k] || !p.tagged_by_tide) continue;
    if (!p.instance_id.empty() && find(p.instance_id) != nullptr) continue;
    // Detached: the user's server now, still carrying tide's tag.
    if (!p.instance_id.empty() && detached.contains(p.instance_id)) continue;
    out.emplace_back(Terminate{p.instance_id, {}, p.provider_id, p.idempotency_key, InstanceOrigin::Launched,
                               kMaxTerminateGraceMs});
    record_finished_activity({}, ActivityType::TerminateStray,
                             "provider runs " + p.provider_id + " tagged by tide (instance " +
                                 (p.instance_id.empty() ? "?" : p.instance_id) +
                                 ") that the store does not know: terminating it",
                             ActivityStatus::Successful, now,
                             {ActivityInstance{p.instance_id.empty() ? p.provider_id : p.instance_id, "terminated", true}},
                             out);
  }

  // 3. Adopted instances: the agent reconnects within the liveness window.
  //    A slot that already serves one keeps serving it; no slot is pointed
  //    at an instance before its agent reported ready in this coordinator's
  //    life (THE RULE, from the first report on).
  for (Entry* e : adopted) {
    Instance& i = e->inst;
    const std::string id = i.id;  // `i` dies with the entry when it leaves at once
    const LbBinding& lb = e->group->cfg.lb;
    i.runtime.last_report_ms = now;
    share_access(*e, out);
    auto lb_it = lb_by_id.find(i.id);
    const LbMember* member = lb_it == lb_by_id.end() ? nullptr : lb_it->second;
    if (i.state == LifecycleState::Pending) {
      free_slot_of_pending(*e, out);
      const ProviderInstance* p = nullptr;
      if (auto it = by_key.find(i.idempotency_key); it != by_key.end()) p = &input.provider[it->second];
      if (p != nullptr) {
        LaunchSucceeded ev{i.id, p->provider_id, p->address, p->port};
        on_launch_succeeded(ev, now, out);
      }
      continue;
    }
    if (is_member_state(i.state) && i.exit_reason != ExitReason::None) {
      // Chosen to leave, and the crash came before its draining row
      // (begin_drain writes the exit reason first): leave now.
      set_state(*e, *transition(i.state, LifecycleEvent::BeginDrain), now);
      persist(*e, out);
    }
    if (i.state == LifecycleState::InService) {
      if (lb.backend.empty() || (member != nullptr && member->in_rotation)) {
        // Serving as the last coordinator left it: keep it until the first
        // report says otherwise.
        i.runtime.ready = true;
        i.runtime.in_lb = !lb.backend.empty();
        i.runtime.in_lb_since_ms = now;
      } else {
        set_state(*e, *transition(i.state, LifecycleEvent::NotReady), now);
        persist(*e, out);
      }
    }
    if (member != nullptr && member->in_rotation && !i.runtime.in_lb && !lb.backend.empty()) {
      out.emplace_back(LbDrain{lb.backend, i.id, drain_timeout(*e->group)});
    } else if (i.state == LifecycleState::Draining && i.runtime.lb_member && !lb.backend.empty()) {
      out.emplace_back(LbDrain{lb.backend, i.id, drain_timeout(*e->group)});  // the shell resumes polling for 0 sessions
    }
    if (i.state == LifecycleState::Draining && !i.runtime.lb_member) {
      finish_drain(*e, now, out);
    } else if (i.state == LifecycleState::Terminating) {
      out.emplace_back(terminate_command(*e));
    } else if (i.state == LifecycleState::PendingTerminateHook) {
      // Held again with fresh actions (new tokens, deadline now + timeout);
      // agent scripts are asked for again at the agent's HELLO.
      if (!start_hooks(*e, HookTransition::Terminating, now, out)) {
        set_state(*e, *transition(i.state, LifecycleEvent::TerminateHookDone), now);
        persist(*e, out);
        out.emplace_back(terminate_command(*e));
      }
    } else if (i.state == LifecycleState::PendingLaunchHook) {
      if (!start_hooks(*e, HookTransition::Launching, now, out)) {
        set_state(*e, *transition(i.state, LifecycleEvent::LaunchHookDone), now);
        persist(*e, out);
      }
    }
    if (find(id) != nullptr) update_deadline(*e);
  }

  // 4. Launches that may never have reached the provider: ask again with the
  //    same idempotency key (a launch that did happen is not repeated), with
  //    a fresh enrollment token (the old one was only in the lost memory).
  for (Entry* e : relaunch) {
    Instance& i = e->inst;
    free_slot_of_pending(*e, out);
    // A new process with a new agent: the key and the address a HELLO of the
    // lost one announced are not its own.
    i.agent_key.clear();
    i.address.clear();
    i.port = 0;
    EnrollmentToken token = m_deps.new_enrollment_token();
    i.enrollment_token_hash = std::move(token.hash);
    persist(*e, out);
    share_access(*e, out);
    out.emplace_back(Launch{i.id, i.group, i.idempotency_key, i.launch_configuration_id,
                            i.launch_configuration_version, std::move(token.token)});
  }

  // Activities whose instances are all gone are over.
  std::vector<std::string> done;
  for (auto& [id, ra] : m_activities) {
    ra.open = 0;
    for (ActivityInstance& ai : ra.activity.instances) {
      const Entry* e = find(ai.instance_id);
      if (e != nullptr && e->inst.activity_id == id) ++ra.open;
    }
    if (ra.open == 0 && ra.activity.type != ActivityType::FailStatic) done.push_back(id);
  }
  for (const std::string& id : done) {
    auto it = m_activities.find(id);
    Activity a = std::move(it->second.activity);
    m_activities.erase(it);
    a.status = ActivityStatus::Successful;
    a.end_ms = now;
    out.emplace_back(UpdateActivity{std::move(a)});
  }

  // 5. Rollouts go on where they were: their surge counts before the
  //    reconciler below looks at capacity.
  for (Rollout& r : input.rollouts) {
    GroupState* g = find_group(r.group);
    if (g == nullptr || is_terminal(r.state)) continue;
    g->rollout = std::move(r);
    advance_rollout(*g, now, out);
  }

  // 6. Only now: capacity.
  for (auto& [name, g] : m_groups) reconcile(*g, now, out, "coordinator restarted");
}

void Fleet::undrain_if_unwanted(Entry& e, bool reported_draining, TimeMs now, std::vector<Command>& out) {
  // The agent drains (a DRAIN from before a restart, or its own STOPPING=1)
  // although tide does not remove it: tell it tide does not ask for that.
  Instance& i = e.inst;
  if (!reported_draining || i.exit_reason != ExitReason::None || !is_member_state(i.state)) return;
  const bool news = !i.runtime.agent_draining;
  if (!news && now < i.runtime.undrain_sent_ms + kUndrainRepeatMs) return;
  out.emplace_back(SendUndrain{i.id});
  i.runtime.undrain_sent_ms = now;
}

void Fleet::free_slot_of_pending(Entry& e, std::vector<Command>& out) {
  // A pending instance never was in rotation. The shell maps slots to stored
  // rows by endpoint, and a pending row's address (announced by a HELLO
  // before the provider's answer) may since belong to another instance:
  // whoever that slot serves, it is not this instance's.
  Instance& i = e.inst;
  if (i.runtime.lb_member && !e.group->cfg.lb.backend.empty()) {
    out.emplace_back(LbRemove{e.group->cfg.lb.backend, i.id});
  }
  i.runtime.lb_member = false;
  i.runtime.in_lb = false;
}

// ---- lifecycle hooks --------------------------------------------------------

void Fleet::refresh_hook_deadline(Entry& e) {
  TimeMs earliest = kNever;
  for (const HookAction& a : e.actions) earliest = std::min(earliest, a.removed ? kAtOnce : a.deadline_ms);
  e.hook_deadline_ms = earliest;
}

void Fleet::drop_actions(Entry& e) {
  for (const HookAction& a : e.actions) m_action_tokens.erase(a.token);
  e.actions.clear();
  e.hook_deadline_ms = kNever;
}

// Starts one action per hook of `transition`; false when the group has none
// (the caller passes the hook state at once).
bool Fleet::start_hooks(Entry& e, HookTransition transition, TimeMs now, std::vector<Command>& out) {
  drop_actions(e);
  e.hook_note.clear();
  for (const LifecycleHook& hook : e.group->hooks) {
    if (hook.transition != transition) continue;
    HookAction a;
    a.hook = hook;
    do {
      a.token = m_deps.new_action_token ? m_deps.new_action_token()
                                        : "h-" + hex64(splitmix64(m_deps.seed ^ ++m_token_counter));
    } while (m_action_tokens.contains(a.token));  // a token names one action only
    a.started_ms = now;
    a.deadline_ms = now + hook.heartbeat_timeout_ms;
    a.give_up_ms = now + give_up_after_ms(hook);
    m_action_tokens.emplace(a.token, e.inst.id);
    e.actions.push_back(std::move(a));
  }
  if (e.actions.empty()) return false;
  refresh_hook_deadline(e);
  if (e.inst.runtime.agent_connected) send_hook_scripts(e, out);
  return true;
}

void Fleet::send_hook_scripts(const Entry& e, std::vector<Command>& out) const {
  for (const HookAction& a : e.actions) {
    if (a.removed || a.hook.agent_script.empty()) continue;
    const auto timeout = static_cast<std::uint32_t>(std::clamp<std::int64_t>(a.hook.heartbeat_timeout_ms, 1,
                                                                             kMaxHookRunTimeoutMs));
    out.emplace_back(RunHook{e.inst.id, a.hook.agent_script, a.hook.name, a.hook.transition, timeout});
  }
}

// The instance just entered pending_launch_hook.
void Fleet::enter_launch_hook(Entry& e, TimeMs now, std::vector<Command>& out) {
  if (start_hooks(e, HookTransition::Launching, now, out)) return;
  set_state(e, *transition(e.inst.state, LifecycleEvent::LaunchHookDone), now);
}

void Fleet::finish_action(Entry& e, std::size_t index, HookResult result, std::string note, TimeMs now,
                          std::vector<Command>& out) {
  const std::string hook_name = e.actions[index].hook.name;
  m_action_tokens.erase(e.actions[index].token);
  e.actions.erase(e.actions.begin() + static_cast<std::ptrdiff_t>(index));
  if (!e.hook_note.empty()) e.hook_note += "; ";
  e.hook_note += "lifecycle hook " + hook_name + ": " + std::string(to_string(result));
  if (!note.empty()) e.hook_note += " (" + note + ")";
  refresh_hook_deadline(e);
  // Abandon skips the remaining hooks, as in AWS.
  if (result == HookResult::Abandon || e.actions.empty()) {
    hooks_done(e, result, hook_name, now, out);
  } else {
    update_deadline(e);
  }
}

// Completes the actions named by `tokens`, in order, while the instance stays
// in the hook state it was in (an abandon, or the last continue, moves it on;
// tokens of later hooks must not complete anything).
void Fleet::finish_actions(Entry& e, std::vector<std::string> tokens, HookResult result, const std::string& note,
                           TimeMs now, std::vector<Command>& out) {
  const std::string id = e.inst.id;
  const LifecycleState state = e.inst.state;
  for (const std::string& token : tokens) {
    Entry* cur = find(id);
    if (cur == nullptr || cur->inst.state != state) return;
    for (std::size_t k = 0; k < cur->actions.size(); ++k) {
      if (cur->actions[k].token != token) continue;
      finish_action(*cur, k, result, note, now, out);
      break;
    }
  }
}

// Every action of the current transition is done (or one abandoned).
void Fleet::hooks_done(Entry& e, HookResult result, const std::string& hook_name, TimeMs now,
                       std::vector<Command>& out) {
  Instance& i = e.inst;
  GroupState& g = *e.group;
  drop_actions(e);
  if (i.state == LifecycleState::PendingLaunchHook) {
    if (result == HookResult::Continue) {
      e.hook_note.clear();
      set_state(e, *transition(i.state, LifecycleEvent::LaunchHookDone), now);
      update_deadline(e);
      persist(e, out);
      apply_rule(e, now, out);  // already ready: into rotation at once
      if (i.runtime.is_replacement && i.state == LifecycleState::InService) {
        i.runtime.is_replacement = false;
        retally(e);
        reconcile(g, now, out, "replacement " + i.id + " in service");
      }
      return;
    }
    // Abandoned: a failed launch (retry policy), drained and terminated; the
    // reconciler launches a replacement once the back-off allows.
    const std::string id = i.id;
    count_failed_launch(g, id, "abandoned by lifecycle hook " + hook_name + ": " + e.hook_note, now, out);
    // The launch's activity closed when the provider confirmed it; the
    // launch_failed row above is this instance's record from here on.
    i.activity_id.clear();
    begin_drain(e, ExitReason::Replace, {}, now, out, LifecycleEvent::LaunchHookAbandoned);
    reconcile(g, now, out, "launch of " + id + " abandoned by lifecycle hook " + hook_name);
    return;
  }
  if (i.state == LifecycleState::PendingTerminateHook) {
    set_state(e, *transition(i.state, LifecycleEvent::TerminateHookDone), now);
    update_deadline(e);
    persist(e, out);  // terminating is on disk before the provider is asked
    out.emplace_back(terminate_command(e));
  }
}

// Applies the default result of every action whose deadline passed, and
// continues actions of deleted hooks.
void Fleet::expire_actions(Entry& e, TimeMs now, std::vector<Command>& out) {
  const std::string id = e.inst.id;
  const LifecycleState state = e.inst.state;
  std::vector<std::string> due;
  for (const HookAction& a : e.actions) {
    if (a.removed || a.deadline_ms <= now) due.push_back(a.token);
  }
  for (const std::string& token : due) {
    Entry* cur = find(id);
    if (cur == nullptr || cur->inst.state != state) return;
    for (std::size_t k = 0; k < cur->actions.size(); ++k) {
      HookAction& a = cur->actions[k];
      if (a.token != token) continue;
      if (a.removed) {
        finish_action(*cur, k, HookResult::Continue, "hook deleted while pending", now, out);
        break;
      }
      const HookResult result = a.hook.default_result;
      out.emplace_back(NotifyHookTimeout{HookTimeout{cur->group->cfg.name, id, a.hook.name, a.hook.transition,
                                                     result, a.hook.notification_metadata, now}});
      std::string note = "no completion within " + std::to_string(now - a.started_ms) +
                         " ms: timed out, default result " + std::string(to_string(result)) + " applied";
      finish_action(*cur, k, result, std::move(note), now, out);
      break;
    }
  }
}

tl::expected<std::vector<std::string>, ModelError> Fleet::match_actions(std::string_view instance_id,
                                                                        std::string_view hook_name,
                                                                        std::string_view token) {
  const Entry* e = find(instance_id);
  if (e == nullptr) return fail("unknown instance " + std::string(instance_id));
  if (e->actions.empty()) {
    return fail("instance " + e->inst.id + " is " + std::string(to_string(e->inst.state)) +
                ": no lifecycle action is pending");
  }
  std::vector<std::string> tokens;
  bool hook_found = hook_name.empty();
  for (const HookAction& a : e->actions) {
    if (!hook_name.empty() && a.hook.name != hook_name) continue;
    hook_found = true;
    if (!token.empty() && a.token != token) continue;
    tokens.push_back(a.token);
  }
  if (!hook_found) {
    return fail("no pending lifecycle action of hook " + std::string(hook_name) + " on instance " + e->inst.id);
  }
  if (tokens.empty()) {
    return fail("lifecycle action token " + std::string(token) + " does not match the pending action" +
                (hook_name.empty() ? "s" : " of hook " + std::string(hook_name)) + " of instance " + e->inst.id);
  }
  return tokens;
}

tl::expected<void, ModelError> Fleet::complete_lifecycle_action(std::string_view instance_id,
                                                                std::string_view hook_name, std::string_view token,
                                                                HookResult result, TimeMs now_ms,
                                                                std::vector<Command>& out) {
  auto tokens = match_actions(instance_id, hook_name, token);
  if (!tokens) return tl::make_unexpected(tokens.error());
  finish_actions(*find(instance_id), std::move(*tokens), result, "completed", now_ms, out);
  return {};
}

tl::expected<void, ModelError> Fleet::complete_lifecycle_action_by_token(std::string_view token, HookResult result,
                                                                         TimeMs now_ms, std::vector<Command>& out) {
  auto it = m_action_tokens.find(token);
  if (token.empty() || it == m_action_tokens.end()) {
    return fail("no pending lifecycle action has token " + std::string(token));
  }
  const std::string instance_id = it->second;  // the map changes below
  return complete_lifecycle_action(instance_id, {}, token, result, now_ms, out);
}

tl::expected<TimeMs, ModelError> Fleet::record_lifecycle_heartbeat(std::string_view instance_id,
                                                                   std::string_view hook_name,
                                                                   std::string_view token, TimeMs now_ms) {
  std::string id(instance_id);
  if (id.empty()) {
    auto it = m_action_tokens.find(token);
    if (token.empty() || it == m_action_tokens.end()) {
      return fail("no pending lifecycle action has token " + std::string(token));
    }
    id = it->second;
  }
  auto tokens = match_actions(id, hook_name, token);
  if (!tokens) return tl::make_unexpected(tokens.error());
  Entry& e = *find(id);
  TimeMs latest = 0;
  for (HookAction& a : e.actions) {
    if (std::find(tokens->begin(), tokens->end(), a.token) == tokens->end()) continue;
    a.deadline_ms = std::max(a.deadline_ms, std::min(now_ms + a.hook.heartbeat_timeout_ms, a.give_up_ms));
    latest = std::max(latest, a.deadline_ms);
  }
  refresh_hook_deadline(e);
  update_deadline(e);
  return latest;
}

tl::expected<void, ModelError> Fleet::on_hook_script_result(std::string_view instance_id, std::string_view script,
                                                            std::int32_t exit_status, bool timed_out, TimeMs now_ms,
                                                            std::vector<Command>& out) {
  Entry* e = find(instance_id);
  if (e == nullptr) return fail("unknown instance " + std::string(instance_id));
  for (const HookAction& a : e->actions) {
    if (a.removed || a.hook.agent_script != script) continue;
    HookResult result = exit_status == 0 ? HookResult::Continue : HookResult::Abandon;
    std::string note = "agent script " + a.hook.agent_script + " exited with status " + std::to_string(exit_status);
    if (timed_out) {
      // The agent gave up on the script after the heartbeat timeout: the
      // same as the coordinator's own time-out.
      result = a.hook.default_result;
      note = "agent script " + a.hook.agent_script + " timed out, default result " +
             std::string(to_string(result)) + " applied";
      out.emplace_back(NotifyHookTimeout{HookTimeout{e->group->cfg.name, e->inst.id, a.hook.name,
                                                     a.hook.transition, result, a.hook.notification_metadata,
                                                     now_ms}});
    }
    finish_actions(*e, {a.token}, result, note, now_ms, out);
    return {};
  }
  return fail("no pending lifecycle action of instance " + e->inst.id + " runs agent script " + std::string(script));
}

std::vector<PendingLifecycleAction> Fleet::lifecycle_actions(std::string_view group) const {
  std::vector<PendingLifecycleAction> result;
  auto it = m_groups.find(group);
  if (it == m_groups.end()) return result;
  std::vector<const Entry*> held;
  for (const Member& m : it->second->members) {
    if (!m.entry->actions.empty()) held.push_back(m.entry);
  }
  std::sort(held.begin(), held.end(), [](const Entry* a, const Entry* b) { return a->inst.id < b->inst.id; });
  for (const Entry* e : held) {
    for (const HookAction& a : e->actions) {
      result.push_back(PendingLifecycleAction{e->inst.group, e->inst.id, a.hook.name, a.hook.transition, a.token,
                                              a.hook.agent_script, a.started_ms, a.deadline_ms, a.give_up_ms,
                                              a.hook.default_result});
    }
  }
  return result;
}

std::vector<LifecycleHook> Fleet::hooks(std::string_view group) const {
  auto it = m_groups.find(group);
  return it == m_groups.end() ? std::vector<LifecycleHook>{} : it->second->hooks;
}

// ---- queries ----------------------------------------------------------------

// ---- rollouts -------------------------------------------------------------------

void Fleet::on_lb_traffic(const LbTrafficSample& sample) {
  for (const InstanceTraffic& server : sample.servers) {
    Entry* e = find(server.instance_id);
    if (e == nullptr) continue;
    const TrafficFigures& now = server.cumulative;
    if (!e->traffic_seen) {
      e->traffic_origin = now;
      e->traffic_seen = true;
    } else if (now.requests < e->traffic.requests || now.errors_5xx < e->traffic.errors_5xx ||
               now.connection_errors < e->traffic.connection_errors) {
      // HAProxy restarted its counters (a reload): keep what was counted.
      e->traffic_origin.requests = now.requests - std::min(now.requests, e->traffic.requests - e->traffic_origin.requests);
      e->traffic_origin.errors_5xx =
          now.errors_5xx - std::min(now.errors_5xx, e->traffic.errors_5xx - e->traffic_origin.errors_5xx);
      e->traffic_origin.connection_errors =
          now.connection_errors -
          std::min(now.connection_errors, e->traffic.connection_errors - e->traffic_origin.connection_errors);
    }
    e->traffic = now;
    e->group->traffic_sampled = true;
  }
}

std::optional<std::pair<TrafficFigures, TrafficFigures>> Fleet::canary_figures(const GroupState& g,
                                                                                const Rollout& r) const {
  if (!g.traffic_sampled || r.phase != RolloutPhase::Canary) return std::nullopt;
  TrafficFigures canary;
  TrafficFigures baseline;
  double canary_weighted = 0.0;
  double baseline_weighted = 0.0;
  const auto add = [](TrafficFigures& sum, double& weighted, const Entry& e) {
    const std::uint64_t requests = e.traffic.requests - std::min(e.traffic.requests, e.traffic_origin.requests);
    sum.requests += requests;
    sum.errors_5xx += e.traffic.errors_5xx - std::min(e.traffic.errors_5xx, e.traffic_origin.errors_5xx);
    sum.connection_errors +=
        e.traffic.connection_errors - std::min(e.traffic.connection_errors, e.traffic_origin.connection_errors);
    weighted += e.traffic.mean_response_ms * static_cast<double>(requests);
  };
  for (const Member& m : g.members) {
    const Entry& e = *m.entry;
    if (!e.traffic_seen) continue;
    if (std::find(r.canary.begin(), r.canary.end(), e.inst.id) != r.canary.end()) {
      add(canary, canary_weighted, e);
    } else if (e.inst.launch_configuration_id != r.to_launch_configuration ||
               e.inst.launch_configuration_version != r.to_version) {
      add(baseline, baseline_weighted, e);
    }
  }
  if (canary.requests > 0) canary.mean_response_ms = canary_weighted / static_cast<double>(canary.requests);
  if (baseline.requests > 0) baseline.mean_response_ms = baseline_weighted / static_cast<double>(baseline.requests);
  return std::pair{canary, baseline};
}

std::optional<std::pair<TrafficFigures, TrafficFigures>> Fleet::canary_figures(std::string_view group) const {
  const auto it = m_groups.find(group);
  if (it == m_groups.end() || !it->second->rollout) return std::nullopt;
  return canary_figures(*it->second, *it->second->rollout);
}

RolloutView Fleet::rollout_view(const GroupState& g, const Rollout& r) const {
  const std::string lc = target_launch_configuration(r);
  const std::uint32_t version = target_version(r);
  RolloutView view;
  view.desired = g.cfg.desired;
  view.members.reserve(g.members.size());
  for (const Member& m : g.members) {
    const Instance& i = m.entry->inst;
    RolloutMember x;
    x.id = i.id;
    x.target = i.launch_configuration_id == lc && i.launch_configuration_version == version;
    x.replaceable = i.origin == InstanceOrigin::Launched && (!i.protected_from_scale_in || r.strategy.include_protected);
    x.counting = (m.entry->tally_bits & kCounting) != 0;
    x.serving = i.state == LifecycleState::InService && i.runtime.in_lb && i.health == Health::Healthy;
    x.serving_since_ms = i.runtime.in_lb_since_ms;
    x.created_ms = i.created_ms;
    view.members.push_back(std::move(x));
  }
  return view;
}

void Fleet::note_rollout_failure(const Entry& e, TimeMs now) {
  const GroupState& g = *e.group;
  if (!g.rollout || e.inst.health == Health::Unhealthy) return;
  Rollout& r = const_cast<GroupState&>(g).rollout.value();
  const Instance& i = e.inst;
  // Only a new instance that had not proved itself yet counts against the
  // batch; one that served its bake time and failed later is a health
  // replacement like any other.
  const bool target = i.launch_configuration_id == target_launch_configuration(r) &&
                      i.launch_configuration_version == target_version(r);
  const bool proved = i.runtime.in_lb && now - i.runtime.in_lb_since_ms >= r.strategy.bake_ms;
  if (target && i.created_ms >= r.created_ms && !proved) note_target_failure(r, i.id, now);
}

namespace {

// The notification a rollout note raises, if any (docs/notifications.md):
// batches and canary steps are activities only.
std::optional<NotificationEvent> notice_event(RolloutNote::Kind kind) {
  switch (kind) {
    case RolloutNote::Kind::Paused:
      return NotificationEvent::RolloutPaused;
    case RolloutNote::Kind::Failed:
      return NotificationEvent::RolloutFailed;
    case RolloutNote::Kind::RolledBack:
      return NotificationEvent::RolloutRolledBack;
    case RolloutNote::Kind::Succeeded:
      return NotificationEvent::RolloutSucceeded;
    case RolloutNote::Kind::CanaryStarted:
    case RolloutNote::Kind::CanaryPassed:
    case RolloutNote::Kind::BatchStarted:
    case RolloutNote::Kind::BatchDone:
    case RolloutNote::Kind::RollbackStarted:
      return std::nullopt;
  }
  return std::nullopt;
}

NotifyRollout rollout_notice(const Rollout& r, NotificationEvent event, std::string message, TimeMs now) {
  RolloutNotice notice;
  notice.group = r.group;
  notice.rollout_id = r.id;
  notice.event = event;
  notice.from = r.from_launch_configuration + ":" + std::to_string(r.from_version);
  notice.to = r.to_launch_configuration + ":" + std::to_string(r.to_version);
  notice.batch = r.batch;
  notice.replaced = r.replaced;
  notice.old_at_start = r.old_at_start;
  notice.message = std::move(message);
  notice.at_ms = now;
  return NotifyRollout{std::move(notice)};
}

}  // namespace

void Fleet::advance_rollout(GroupState& g, TimeMs now, std::vector<Command>& out) {
  Rollout& r = *g.rollout;
  const RolloutView view = rollout_view(g, r);
  const bool was_canary = r.phase == RolloutPhase::Canary;
  RolloutDecision d = advance(r, view, now, canary_figures(g, r));
  if (!was_canary && r.phase == RolloutPhase::Canary) {
    // The canary's window starts at the next sample for every server of the
    // group: older figures (another rollout's) count for nothing.
    for (const Member& m : g.members) m.entry->traffic_seen = false;
    g.traffic_sampled = false;
  }

  // The group launches the rollout's target (a rollback turns it around). A
  // rollout that stopped short (cancelled, or failed with nowhere to go)
  // leaves the group launching what it launched last: a cancel during a
  // rollback must not turn the group back to the version it was leaving.
  const std::string lc = target_launch_configuration(r);
  const std::uint32_t version = target_version(r);
  const bool stopped_short = r.state == RolloutState::Cancelled || r.state == RolloutState::Failed;
  if (!stopped_short && (g.cfg.launch_configuration_id != lc || g.cfg.launch_configuration_version != version)) {
    g.cfg.launch_configuration_id = lc;
    g.cfg.launch_configuration_version = version;
    g.cfg.updated_ms = now;
    out.emplace_back(PersistGroup{g.cfg});
  }
  for (RolloutNote& note : d.notes) {
    std::vector<ActivityInstance> instances;
    for (auto& id : note.instances) instances.push_back(ActivityInstance{std::move(id), {}, true});
    const ActivityStatus status =
        note.kind == RolloutNote::Kind::Failed ? ActivityStatus::Failed : ActivityStatus::Successful;
    record_finished_activity(g.cfg.name, ActivityType::Rollout, "rollout " + r.id + ": " + note.message, status, now,
                             std::move(instances), out);
    if (const auto event = notice_event(note.kind)) out.emplace_back(rollout_notice(r, *event, note.message, now));
  }
  std::vector<std::string> retiring;
  for (const std::string& id : d.retire) {
    const Entry* e = find(id);
    if (e != nullptr && (e->tally_bits & kCounting) != 0) retiring.push_back(id);
  }
  if (!retiring.empty()) {
    const std::string cause = "rollout " + r.id + " batch " + std::to_string(r.batch) + ": " +
                              std::to_string(retiring.size()) + " instance(s) make room for " + lc + ":" +
                              std::to_string(version) + " (drained first)";
    const std::string activity = start_activity(g, ActivityType::Rollout, cause, now, retiring, out);
    for (const std::string& id : retiring) {
      if (Entry* e = find(id)) begin_drain(*e, ExitReason::Rollout, activity, now, out);
    }
  }
  const bool finished = is_terminal(r.state);
  const std::uint32_t surge = finished ? 0 : d.surge;
  const bool surge_changed = surge != g.surge;
  g.surge = surge;
  if (d.changed || finished) out.emplace_back(PersistRollout{r});
  if (finished) g.rollout.reset();
  if (surge_changed || !retiring.empty() || finished) reconcile(g, now, out, "rollout");
}

tl::expected<Rollout, ModelError> Fleet::start_rollout(std::string_view group, std::string id,
                                                       std::string launch_configuration, std::uint32_t version,
                                                       RolloutStrategy strategy, TimeMs now_ms,
                                                       std::vector<Command>& out) {
  GroupState* g = find_group(group);
  if (g == nullptr) return tl::make_unexpected(ModelError{"no group '" + std::string(group) + "'", ""});
  if (g->rollout) {
    return tl::make_unexpected(ModelError{"group '" + g->cfg.name + "' has rollout " + g->rollout->id + " " +
                                              std::string(to_string(g->rollout->state)) +
                                              ": cancel it or wait for it to finish",
                                          ""});
  }
  if (!m_configs.contains({launch_configuration, version})) {
    return tl::make_unexpected(ModelError{
        "no launch configuration " + launch_configuration + " version " + std::to_string(version),
        "launch_configuration"});
  }
  if (auto valid = validate(strategy); !valid) return tl::make_unexpected(valid.error());
  g->rollout = new_rollout(std::move(id), g->cfg, std::move(launch_configuration), version, std::move(strategy),
                           now_ms);
  Rollout started = *g->rollout;
  record_finished_activity(g->cfg.name, ActivityType::Rollout,
                           "rollout " + started.id + " started: " + started.from_launch_configuration + ":" +
                               std::to_string(started.from_version) + " -> " + started.to_launch_configuration + ":" +
                               std::to_string(started.to_version),
                           ActivityStatus::Successful, now_ms, {}, out);
  out.emplace_back(PersistRollout{started});
  out.emplace_back(rollout_notice(started, NotificationEvent::RolloutStarted, "", now_ms));
  advance_rollout(*g, now_ms, out);
  return g->rollout ? *g->rollout : started;
}

tl::expected<Rollout, ModelError> Fleet::act_on_rollout(std::string_view group, RolloutAction action,
                                                        std::string reason, TimeMs now_ms, std::vector<Command>& out) {
  GroupState* g = find_group(group);
  if (g == nullptr) return tl::make_unexpected(ModelError{"no group '" + std::string(group) + "'", ""});
  if (!g->rollout) {
    return tl::make_unexpected(ModelError{"group '" + g->cfg.name + "' has no rollout in progress", ""});
  }
  Rollout& r = *g->rollout;
  tl::expected<void, ModelError> done;
  std::string verb;
  switch (action) {
    case RolloutAction::Pause:
      done = pause(r, reason, now_ms);
      verb = "paused";
      break;
    case RolloutAction::Resume:
      done = resume(r, now_ms);
      verb = "resumed";
      break;
    case RolloutAction::Cancel:
      done = cancel(r, reason, now_ms);
      verb = "cancelled";
      break;
    case RolloutAction::Rollback:
      done = rollback(r, reason, now_ms);
      verb = "rolling back";
      break;
  }
  if (!done) return tl::make_unexpected(done.error());
  record_finished_activity(g->cfg.name, ActivityType::Rollout,
                           "rollout " + r.id + " " + verb + " by request" + (reason.empty() ? "" : ": " + reason),
                           ActivityStatus::Successful, now_ms, {}, out);
  out.emplace_back(PersistRollout{r});
  if (action == RolloutAction::Pause) {
    out.emplace_back(rollout_notice(r, NotificationEvent::RolloutPaused,
                                    "paused by request" + (reason.empty() ? "" : ": " + reason), now_ms));
  }
  Rollout after = r;
  advance_rollout(*g, now_ms, out);  // may finish it (a cancel), which forgets it
  return g->rollout ? *g->rollout : after;
}

const Rollout* Fleet::rollout(std::string_view group) const {
  const auto it = m_groups.find(group);
  return it == m_groups.end() || !it->second->rollout ? nullptr : &*it->second->rollout;
}

bool Fleet::wants_traffic_samples() const {
  return std::any_of(m_groups.begin(), m_groups.end(), [](const auto& item) {
    return item.second->rollout && item.second->rollout->phase == RolloutPhase::Canary;
  });
}

Fleet::RolloutProgress Fleet::rollout_progress(std::string_view group, const Rollout& r) const {
  RolloutProgress p;
  const auto it = m_groups.find(group);
  if (it == m_groups.end()) return p;
  const GroupState& g = *it->second;
  p.desired = g.cfg.desired;
  for (const RolloutMember& m : rollout_view(g, r).members) {
    if (m.serving) ++p.serving;
    if (!m.counting) continue;
    ++(m.target ? p.target_instances : p.old_instances);
  }
  return p;
}

const Instance* Fleet::instance(std::string_view id) const {
  auto it = m_instances.find(id);
  return it == m_instances.end() ? nullptr : &it->second->inst;
}

tl::expected<void, ModelError> Fleet::set_hooks(std::string_view group, std::vector<LifecycleHook> hooks) {
  GroupState* g = find_group(group);
  if (g == nullptr) return fail("unknown group " + std::string(group));
  for (const LifecycleHook& hook : hooks) {
    if (auto ok = validate(hook); !ok) return tl::unexpected(ok.error());
    if (hook.group != g->cfg.name) return fail("hook " + hook.name + " belongs to group " + hook.group);
  }
  for (std::size_t a = 0; a < hooks.size(); ++a) {
    for (std::size_t b = a + 1; b < hooks.size(); ++b) {
      if (hooks[a].name == hooks[b].name) return fail("hook " + hooks[a].name + " appears twice");
    }
  }
  g->hooks = std::move(hooks);
  // Actions of a deleted hook complete with continue at the next Tick.
  for (Member& m : g->members) {
    Entry& e = *m.entry;
    bool any = false;
    for (HookAction& a : e.actions) {
      const bool kept = std::any_of(g->hooks.begin(), g->hooks.end(), [&](const LifecycleHook& h) {
        return h.name == a.hook.name && h.transition == a.hook.transition;
      });
      if (!kept && !a.removed) {
        a.removed = true;
        any = true;
      }
    }
    if (any) {
      refresh_hook_deadline(e);
      update_deadline(e);
    }
  }
  return {};
}

std::vector<const ScalingGroup*> Fleet::groups() const {
  std::vector<const ScalingGroup*> out;
  out.reserve(m_groups.size());
  for (const auto& [name, state] : m_groups) out.push_back(&state->cfg);
  return out;
}

const ScalingGroup* Fleet::group(std::string_view name) const {
  auto it = m_groups.find(name);
  return it == m_groups.end() ? nullptr : &it->second->cfg;
}

std::vector<const Instance*> Fleet::instances_of(std::string_view group) const {
  std::vector<const Instance*> result;
  auto it = m_groups.find(group);
  if (it == m_groups.end()) return result;
  for (const Member& m : it->second->members) result.push_back(&m.entry->inst);
  std::sort(result.begin(), result.end(), [](const Instance* a, const Instance* b) {
    return std::tie(a->created_ms, a->id) < std::tie(b->created_ms, b->id);
  });
  return result;
}

bool Fleet::in_fail_static(std::string_view group) const {
  auto it = m_groups.find(group);
  return it != m_groups.end() && it->second->fail_static;
}

std::size_t Fleet::instance_count() const { return m_instances.size(); }

}  // namespace tide::coordinator
