// Property test of the Fleet's incremental bookkeeping: long seeded random
// sequences of every event and user request (launch results, HELLOs,
// reports, lost agents, ticks across timers, drains, terminations, vanished
// instances, attach, detach, terminate, protection, hooks, desired and group
// changes, a restart) must leave the per-group tallies and member indexes
// equal to a recount (Fleet::audit) after every step.
//
// The hidden "[.trace]" case prints the whole command stream of one such
// sequence, one line per command: run it before and after a change to the
// core that must not change behaviour and diff the two outputs.
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "tests/unit/coordinator/fleet_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;

namespace {

std::string describe(const Instance& i) {
  std::ostringstream s;
  s << i.id << ' ' << i.group << ' ' << to_string(i.origin) << ' ' << to_string(i.state) << " since "
    << i.state_since_ms << (i.protected_from_scale_in ? " protected" : "") << ' ' << to_string(i.health) << " ("
    << i.health_reason << ") since " << i.unhealthy_since_ms << " pid " << i.provider_id << ' ' << i.address << ':'
    << i.port << " lc " << i.launch_configuration_id << '/' << i.launch_configuration_version << " key "
    << i.agent_key << " idem " << i.idempotency_key << " exit " << to_string(i.exit_reason) << " activity "
    << i.activity_id << " created " << i.created_ms << " launched " << i.launched_ms << " lb " << i.runtime.in_lb
    << i.runtime.lb_member << i.runtime.health_held << i.runtime.is_replacement;
  return s.str();
}

std::string describe(const Activity& a) {
  std::ostringstream s;
  s << a.id << ' ' << a.group << ' ' << to_string(a.type) << ' ' << to_string(a.status) << " [" << a.cause << "] "
    << a.start_ms << '-' << a.end_ms.value_or(-1);
  for (const ActivityInstance& ai : a.instances) s << ' ' << ai.instance_id << ':' << ai.ok << ':' << ai.message;
  return s.str();
}

std::string describe(const Command& command) {
  std::ostringstream s;
  std::visit(
      [&](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, PersistInstance>) {
          s << "persist " << describe(c.instance);
        } else if constexpr (std::is_same_v<T, PersistGroup>) {
          s << "group " << c.group.name << ' ' << c.group.min << '/' << c.group.desired << '/' << c.group.max
            << (c.group.enabled ? "" : " disabled") << " updated " << c.group.updated_ms;
        } else if constexpr (std::is_same_v<T, RecordActivity>) {
          s << "record " << describe(c.activity);
        } else if constexpr (std::is_same_v<T, UpdateActivity>) {
          s << "update " << describe(c.activity);
        } else if constexpr (std::is_same_v<T, Launch>) {
          s << "launch " << c.instance_id << ' ' << c.group << ' ' << c.idempotency_key << ' '
            << c.launch_configuration_id << '/' << c.launch_configuration_version << ' ' << c.enrollment_token;
        } else if constexpr (std::is_same_v<T, Terminate>) {
          s << "terminate " << c.instance_id << ' ' << c.group << ' ' << c.provider_id << ' ' << c.idempotency_key
            << ' ' << to_string(c.origin);
        } else if constexpr (std::is_same_v<T, LbRegister>) {
          s << "lb-register " << c.backend << ' ' << c.instance_id << ' ' << c.address << ':' << c.port;
        } else if constexpr (std::is_same_v<T, LbDrain>) {
          s << "lb-drain " << c.backend << ' ' << c.instance_id;
        } else if constexpr (std::is_same_v<T, LbRemove>) {
          s << "lb-remove " << c.backend << ' ' << c.instance_id;
        } else if constexpr (std::is_same_v<T, SendDrain>) {
          s << "drain " << c.instance_id << ' ' << c.timeout_ms;
        } else if constexpr (std::is_same_v<T, SendUndrain>) {
          s << "undrain " << c.instance_id;
        } else if constexpr (std::is_same_v<T, RunHook>) {
          s << "run-hook " << c.instance_id << ' ' << c.script << ' ' << c.hook_name << ' ' << c.timeout_ms;
        } else if constexpr (std::is_same_v<T, NotifyHookTimeout>) {
          s << "hook-timeout " << c.timeout.group << ' ' << c.timeout.instance_id << ' ' << c.timeout.hook_name
            << ' ' << to_string(c.timeout.default_result) << ' ' << c.timeout.at_ms;
        }
      },
      command);
  return s.str();
}

LifecycleHook random_hook(const std::string& group, HookTransition transition, int n, std::mt19937_64& rng) {
  LifecycleHook h;
  h.group = group;
  h.name = (transition == HookTransition::Launching ? "launch-" : "terminate-") + std::to_string(n);
  h.transition = transition;
  h.heartbeat_timeout_ms = 30'000 + static_cast<std::int64_t>(rng() % 30'000);
  h.default_result = rng() % 3 == 0 ? HookResult::Abandon : HookResult::Continue;
  if (rng() % 2 == 0) h.agent_script = "script-" + std::to_string(n);
  return h;
}

// Drives one fleet with a seeded random sequence.
class RandomRun {
 public:
  explicit RandomRun(std::uint64_t seed) : m_rng(seed), m_fleet(deterministic_deps(seed)) {
    REQUIRE(m_fleet.put_launch_configuration(web_config()));
    LaunchConfiguration v2 = web_config();
    v2.version = 2;
    REQUIRE(m_fleet.put_launch_configuration(v2));
    const TerminationPolicy policies[] = {TerminationPolicy::OldestInstance, TerminationPolicy::NewestInstance,
                                          TerminationPolicy::OldestLaunchConfiguration};
    for (int k = 0; k < 3; ++k) {
      ScalingGroup g = web_group(static_cast<std::uint32_t>(2 + k * 2));
      g.name = "g" + std::to_string(k);
      g.min = 0;
      g.max = 12;
      g.termination_policy = policies[k];
      if (k == 1) g.lb.backend.clear();  // a group without a load balancer drains at once
      g.health_check_grace_period_ms = k == 2 ? 2'000 : 0;
      g.retry.immediate_retries = 1;
      g.retry.initial_backoff_ms = 500;
      g.replacement_rate = 0.2;
      REQUIRE(m_fleet.put_group(g, m_now, m_out));
      m_groups.push_back(g.name);
    }
  }

  // One random step; returns what it did, for failure messages.
  std::string step() {
    const std::uint64_t op = m_rng() % 100;
    const std::string group = m_groups[m_rng() % m_groups.size()];
    std::ostringstream what;
    if (op < 8) {
      const ScalingGroup& g = *m_fleet.group(group);
      const auto desired = static_cast<std::uint32_t>(g.min + m_rng() % (g.max - g.min + 1));
      what << "set_desired " << group << ' ' << desired;
      note(m_fleet.set_desired(group, desired, "random", m_now, m_out));
    } else if (op < 18) {
      if (const auto i = pick(group, {LifecycleState::Pending})) {
        what << "launch succeeded " << *i;
        const std::string& id = *i;
        m_fleet.handle(LaunchSucceeded{id, "pid-" + id, "127.0.1." + std::to_string(++m_addresses % 250), 8080},
                       m_now, m_out);
      }
    } else if (op < 21) {
      if (const auto i = pick(group, {LifecycleState::Pending})) {
        what << "launch failed " << *i;
        m_fleet.handle(LaunchFailed{*i, "no capacity"}, m_now, m_out);
      }
    } else if (op < 30) {
      if (const auto i = pick(group, {LifecycleState::Booting, LifecycleState::Pending,
                                           LifecycleState::PendingLaunchHook, LifecycleState::Warming,
                                           LifecycleState::Draining})) {
        what << "hello " << *i;
        m_fleet.handle(AgentHello{*i, "key-" + *i, {}, 0}, m_now, m_out);
      }
    } else if (op < 38) {
      // Every agent of the group reports, mostly ready and healthy: keeps
      // instances in service long enough to be scaled in and drained.
      what << "reports " << group;
      for (const Instance* i : m_fleet.instances_of(group)) {
        if (!i->runtime.agent_connected) continue;
        const std::string id = i->id;
        const bool fine = m_rng() % 10 != 0;
        m_fleet.handle(AgentReport{id, fine, fine, fine ? "" : "check failed", false}, m_now, m_out);
      }
    } else if (op < 52) {
      if (const auto i = pick(group, {})) {
        const bool ready = m_rng() % 10 < 7;
        const bool healthy = m_rng() % 10 < 8;
        const bool draining = m_rng() % 20 == 0;
        what << "report " << *i << ' ' << ready << healthy << draining;
        m_fleet.handle(AgentReport{*i, ready, healthy, healthy ? "" : "check failed", draining}, m_now, m_out);
      }
    } else if (op < 55) {
      if (const auto i = pick(group, {})) {
        what << "lost " << *i;
        m_fleet.handle(AgentLost{*i, "gone"}, m_now, m_out);
      }
    } else if (op < 67) {
      // Mostly short steps; sometimes past the liveness window, the drain
      // timeout or a hook's heartbeat timeout.
      const std::uint64_t kind = m_rng() % 10;
      const TimeMs step = kind < 7 ? static_cast<TimeMs>(m_rng() % 1'500)
                          : kind < 9 ? static_cast<TimeMs>(3'000 + m_rng() % 4'000)
                                     : static_cast<TimeMs>(30'000 + m_rng() % 40'000);
      m_now += step;
      what << "tick +" << step;
      m_fleet.handle(Tick{}, m_now, m_out);
    } else if (op < 71) {
      if (const auto i = pick(group, {LifecycleState::Draining})) {
        what << "lb drained " << *i;
        m_fleet.handle(LbDrained{*i}, m_now, m_out);
      }
    } else if (op < 76) {
      if (const auto i = pick(group, {LifecycleState::Terminating, LifecycleState::InService})) {
        what << "terminate completed " << *i;
        m_fleet.handle(TerminateCompleted{*i}, m_now, m_out);
      }
    } else if (op < 78) {
      if (const auto i = pick(group, {})) {
        what << "vanished " << *i;
        m_fleet.handle(InstanceVanished{*i, "process exited"}, m_now, m_out);
      }
    } else if (op < 81) {
      const bool protect = m_rng() % 2 == 0;
      const bool increment = m_rng() % 2 == 0;
      what << "attach " << group << ' ' << protect << increment;
      auto id = m_fleet.attach(group, "10.0.0." + std::to_string(++m_addresses % 250), 8080, protect, increment,
                               m_now, m_out);
      if (!id) m_out.emplace_back(RecordActivity{Activity{"refused", group, {}, id.error().message, {}, 0, {}, {}}});
    } else if (op < 83) {
      if (const auto i = pick(group, {})) {
        const bool decrement = m_rng() % 2 == 0;
        what << "detach " << *i << ' ' << decrement;
        note(m_fleet.detach(*i, decrement, m_now, m_out));
      }
    } else if (op < 85) {
      if (const auto i = pick(group, {})) {
        const bool decrement = m_rng() % 2 == 0;
        what << "terminate " << *i << ' ' << decrement;
        note(m_fleet.terminate(*i, decrement, m_now, m_out));
      }
    } else if (op < 90) {
      if (const auto i = pick(group, {})) {
        const bool value = m_rng() % 3 != 0;
        what << "protect " << *i << ' ' << value;
        note(m_fleet.set_protected(*i, value, m_now, m_out));
      }
    } else if (op < 94) {
      if (const auto i = pick(group, {LifecycleState::PendingLaunchHook, LifecycleState::PendingTerminateHook})) {
        const HookResult result = m_rng() % 3 == 0 ? HookResult::Abandon : HookResult::Continue;
        what << "complete " << *i << ' ' << to_string(result);
        note(m_fleet.complete_lifecycle_action(*i, {}, {}, result, m_now, m_out));
      }
    } else if (op < 96) {
      std::vector<LifecycleHook> hooks;
      const std::uint64_t count = m_rng() % 3;
      for (std::uint64_t k = 0; k < count; ++k) {
        const auto transition = m_rng() % 2 == 0 ? HookTransition::Launching : HookTransition::Terminating;
        hooks.push_back(random_hook(group, transition, static_cast<int>(k), m_rng));
      }
      what << "set_hooks " << group << ' ' << hooks.size();
      note(m_fleet.set_hooks(group, std::move(hooks)));
    } else if (op < 98) {
      ScalingGroup g = *m_fleet.group(group);
      g.enabled = m_rng() % 4 != 0;
      g.replacement_rate = 0.1 * static_cast<double>(1 + m_rng() % 5);
      g.launch_configuration_version = 1 + static_cast<std::uint32_t>(m_rng() % 2);
      what << "put_group " << group << " enabled " << g.enabled;
      note(m_fleet.put_group(g, m_now, m_out));
    } else {
      const auto min = static_cast<std::uint32_t>(m_rng() % 3);
      const auto max = static_cast<std::uint32_t>(8 + m_rng() % 5);
      const auto desired = static_cast<std::uint32_t>(min + m_rng() % (max - min + 1));
      what << "set_capacity " << group << ' ' << min << '/' << desired << '/' << max;
      note(m_fleet.set_capacity(group, min, max, desired, "random schedule", m_now, m_out));
    }
    if (!what.str().empty()) ++m_ops[what.str().substr(0, what.str().find(' '))];
    for (const Command& c : m_out) {
      if (const auto* r = std::get_if<RecordActivity>(&c)) m_activity_types.insert(r->activity.type);
    }
    for (const std::string& name : m_groups) {
      for (const Instance* i : m_fleet.instances_of(name)) {
        m_states.insert(i->state);
        if (i->health == Health::Unhealthy) m_seen_unhealthy = true;
      }
      if (m_fleet.in_fail_static(name)) m_seen_fail_static = true;
    }
    return what.str();
  }

  std::vector<Command> take() { return std::exchange(m_out, {}); }

  // Restarts: a fresh fleet restored from what this one would have stored,
  // with every launched instance still running at the provider.
  void restart(Fleet& fleet, std::vector<Command>& out) const {
    RestoreInput input;
    input.launch_configurations.push_back(web_config());
    LaunchConfiguration v2 = web_config();
    v2.version = 2;
    input.launch_configurations.push_back(v2);
    for (const ScalingGroup* g : m_fleet.groups()) {
      input.groups.push_back(*g);
      for (const LifecycleHook& h : m_fleet.hooks(g->name)) input.hooks.push_back(h);
      for (const Instance* i : m_fleet.instances_of(g->name)) {
        input.instances.push_back(*i);
        if (!i->provider_id.empty()) {
          input.provider.push_back(ProviderInstance{i->provider_id, i->idempotency_key, i->id, true, i->address,
                                                    i->port});
        }
        if (i->runtime.lb_member && !g->lb.backend.empty()) {
          input.lb.push_back(LbMember{g->lb.backend, i->id, i->runtime.in_lb});
        }
      }
    }
    fleet.restore(std::move(input), m_now + 1'000, out);
  }

  const Fleet& fleet() const { return m_fleet; }
  const std::set<LifecycleState>& states() const { return m_states; }
  const std::set<ActivityType>& activity_types() const { return m_activity_types; }
  bool seen_unhealthy() const { return m_seen_unhealthy; }
  bool seen_fail_static() const { return m_seen_fail_static; }
  // How often each kind of step found something to act on ("lb", "hello", ...).
  const std::map<std::string, int>& ops() const { return m_ops; }

 private:
  // The id of a random live instance of `group` in one of `states` (any
  // state when empty); a copy, since a request may erase the instance while
  // it still reads its id argument.
  std::optional<std::string> pick(const std::string& group, std::initializer_list<LifecycleState> states) {
    std::vector<const Instance*> found;
    for (const Instance* i : m_fleet.instances_of(group)) {
      if (states.size() == 0 || std::find(states.begin(), states.end(), i->state) != states.end()) found.push_back(i);
    }
    if (found.empty()) return std::nullopt;
    return found[m_rng() % found.size()]->id;
  }

  // A refused request is part of the trace (it must stay refused).
  template <class T>
  void note(const tl::expected<T, ModelError>& result) {
    if (!result) m_out.emplace_back(RecordActivity{Activity{"refused", {}, {}, result.error().message, {}, 0, {}, {}}});
  }

  std::mt19937_64 m_rng;
  Fleet m_fleet;
  TimeMs m_now = 1'700'000'000'000;
  std::vector<Command> m_out;
  std::vector<std::string> m_groups;
  int m_addresses = 0;
  std::set<LifecycleState> m_states;
  std::set<ActivityType> m_activity_types;
  bool m_seen_unhealthy = false;
  bool m_seen_fail_static = false;
  std::map<std::string, int> m_ops;
};

}  // namespace

TEST_CASE("tallies equal a recount after every step of long random sequences", "[fleet][property]") {
  constexpr int kSteps = 4'000;
  std::set<LifecycleState> states;
  std::set<ActivityType> types;
  bool unhealthy = false;
  bool fail_static = false;
  std::map<std::string, int> ops;
  for (std::uint64_t seed : {1U, 2U, 3U, 4U, 5U}) {
    RandomRun run(seed);
    REQUIRE(run.fleet().audit().empty());
    for (int k = 0; k < kSteps; ++k) {
      const std::string what = run.step();
      run.take();
      INFO("seed " << seed << ", step " << k << ": " << what);
      REQUIRE(run.fleet().audit() == "");
    }
    std::vector<Command> out;
    Fleet restored(deterministic_deps(99));
    run.restart(restored, out);
    INFO("seed " << seed << ", after a restart");
    REQUIRE(restored.audit() == "");
    states.insert(run.states().begin(), run.states().end());
    types.insert(run.activity_types().begin(), run.activity_types().end());
    unhealthy = unhealthy || run.seen_unhealthy();
    fail_static = fail_static || run.seen_fail_static();
    for (const auto& [name, n] : run.ops()) ops[name] += n;
  }
  // The sequences reach every path the tallies follow.
  for (LifecycleState s : {LifecycleState::Pending, LifecycleState::Booting, LifecycleState::PendingLaunchHook,
                           LifecycleState::Warming, LifecycleState::InService, LifecycleState::OutOfRotation,
                           LifecycleState::Draining, LifecycleState::PendingTerminateHook,
                           LifecycleState::Terminating}) {
    INFO("state " << to_string(s));
    CHECK(states.contains(s));
  }
  for (ActivityType t : {ActivityType::ScaleOut, ActivityType::ScaleIn, ActivityType::ReplaceUnhealthy,
                         ActivityType::LaunchFailed, ActivityType::FailStatic, ActivityType::TerminateUnexpectedly,
                         ActivityType::Attach, ActivityType::Detach, ActivityType::TerminateInstance}) {
    INFO("activity " << to_string(t));
    CHECK(types.contains(t));
  }
  CHECK(unhealthy);
  CHECK(fail_static);
  for (const char* name : {"set_desired", "launch", "hello", "reports", "report", "lost", "tick", "lb", "terminate",
                           "vanished", "attach", "detach", "protect", "complete", "set_hooks", "put_group",
                           "set_capacity"}) {
    INFO("step " << name);
    CHECK(ops[name] >= 10);
  }
}

TEST_CASE("audit reports nothing for an empty fleet and a fresh group", "[fleet][property]") {
  Fleet fleet(deterministic_deps(1));
  CHECK(fleet.audit().empty());
  Harness h(web_group(3));
  CHECK(h.fleet.audit().empty());
  h.bring_up();
  CHECK(h.fleet.audit().empty());
}

TEST_CASE("command trace of a random sequence (diff it across a refactor)", "[.trace]") {
  // TIDE_TRACE_SEED picks another sequence.
  const char* seed = std::getenv("TIDE_TRACE_SEED");
  RandomRun run(seed != nullptr ? std::strtoull(seed, nullptr, 10) : 42U);
  for (const Command& c : run.take()) std::cout << describe(c) << '\n';
  for (int k = 0; k < 6'000; ++k) {
    std::cout << "## " << run.step() << '\n';
    for (const Command& c : run.take()) std::cout << describe(c) << '\n';
  }
  std::vector<Command> out;
  Fleet restored(deterministic_deps(99));
  run.restart(restored, out);
  std::cout << "## restart\n";
  for (const Command& c : out) std::cout << describe(c) << '\n';
}
