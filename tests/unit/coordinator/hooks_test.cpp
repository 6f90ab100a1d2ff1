// Lifecycle hooks on a fake clock (docs/lifecycle.md, "Lifecycle hooks"):
// launch and terminate hooks hold instances, completion by token, instance
// id or agent script, heartbeats, time-outs with each default result,
// abandon as a failed launch, deleted hooks and restarts.
#include <algorithm>

#include "tests/unit/coordinator/fleet_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;

namespace {

LifecycleHook hook(std::string name, HookTransition transition, std::int64_t timeout_ms = 60'000,
                   HookResult default_result = HookResult::Continue, std::string script = {}) {
  LifecycleHook h;
  h.group = "web";
  h.name = std::move(name);
  h.transition = transition;
  h.heartbeat_timeout_ms = timeout_ms;
  h.default_result = default_result;
  h.notification_metadata = "meta-" + h.name;
  h.agent_script = std::move(script);
  return h;
}

LifecycleHook launch_hook(std::string name, std::int64_t timeout_ms = 60'000,
                          HookResult default_result = HookResult::Continue, std::string script = {}) {
  return hook(std::move(name), HookTransition::Launching, timeout_ms, default_result, std::move(script));
}

LifecycleHook terminate_hook(std::string name, std::int64_t timeout_ms = 60'000,
                             HookResult default_result = HookResult::Continue) {
  return hook(std::move(name), HookTransition::Terminating, timeout_ms, default_result);
}

// Launches the pending instance `id`, says HELLO and reports ready.
std::vector<Command> boot(Harness& h, const std::string& id, int n = 1) {
  std::vector<Command> all;
  for (const Event& e : {Event{LaunchSucceeded{id, "pid-" + id, "127.0.1." + std::to_string(n), 8080}},
                         Event{AgentHello{id, "key-" + id, {}, 0}}, Event{AgentReport{id, true, true, {}, false}}}) {
    auto c = h.on(e);
    all.insert(all.end(), c.begin(), c.end());
  }
  return all;
}

// Lets `ms` pass in one-second steps: every live agent reports (ready) and
// the fleet ticks. Returns every command.
std::vector<Command> wait(Harness& h, TimeMs ms) {
  std::vector<Command> all;
  for (TimeMs passed = 0; passed < ms; passed += 1'000) {
    h.now += std::min<TimeMs>(1'000, ms - passed);
    for (const Instance* i : h.fleet.instances_of("web")) {
      if (i->runtime.agent_connected) h.fleet.handle(AgentReport{i->id, true, true, {}, false}, h.now, h.out);
    }
    h.fleet.handle(Tick{}, h.now, h.out);
    auto c = h.take();
    all.insert(all.end(), c.begin(), c.end());
  }
  return all;
}

LifecycleState state_of(const Harness& h, const std::string& id) {
  const Instance* i = h.fleet.instance(id);
  REQUIRE(i != nullptr);
  return i->state;
}

}  // namespace

// ---- launching ----------------------------------------------------------------

TEST_CASE("without launch hooks HELLO goes straight to warming", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {terminate_hook("t")}));  // a terminate hook does not hold a launch
  const std::string id = h.pending().at(0);
  const auto c = boot(h, id);
  CHECK(only<LbRegister>(c).size() == 1);
  CHECK(state_of(h, id) == LifecycleState::InService);
  CHECK(h.fleet.lifecycle_actions("web").empty());
}

TEST_CASE("one launch hook holds a ready instance out of rotation until completed", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("warm-cache")}));
  const std::string id = h.pending().at(0);
  auto c = boot(h, id);
  CHECK(only<LbRegister>(c).empty());
  CHECK(state_of(h, id) == LifecycleState::PendingLaunchHook);
  const auto persisted = only<PersistInstance>(c);
  REQUIRE_FALSE(persisted.empty());
  CHECK(persisted.back().instance.state == LifecycleState::PendingLaunchHook);

  const auto actions = h.fleet.lifecycle_actions("web");
  REQUIRE(actions.size() == 1);
  CHECK(actions[0].instance_id == id);
  CHECK(actions[0].hook_name == "warm-cache");
  CHECK(actions[0].transition == HookTransition::Launching);
  CHECK(actions[0].started_ms == h.now);
  CHECK(actions[0].deadline_ms == h.now + 60'000);
  CHECK(actions[0].give_up_ms == h.now + 100 * 60'000);
  CHECK_FALSE(actions[0].token.empty());

  // Reports change nothing while held.
  CHECK(only<LbRegister>(h.on(AgentReport{id, false, true, {}, false})).empty());
  CHECK(only<LbRegister>(h.on(AgentReport{id, true, true, {}, false})).empty());

  c.clear();
  REQUIRE(h.fleet.complete_lifecycle_action(id, "warm-cache", {}, HookResult::Continue, h.now, c));
  REQUIRE(only<LbRegister>(c).size() == 1);  // already ready: into rotation at once
  CHECK(state_of(h, id) == LifecycleState::InService);
  CHECK(h.fleet.lifecycle_actions("web").empty());
}

TEST_CASE("two launch hooks: the instance waits for both", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a"), launch_hook("b")}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  REQUIRE(h.fleet.lifecycle_actions("web").size() == 2);
  std::vector<Command> c;
  REQUIRE(h.fleet.complete_lifecycle_action(id, "b", {}, HookResult::Continue, h.now, c));
  CHECK(state_of(h, id) == LifecycleState::PendingLaunchHook);
  CHECK(only<LbRegister>(c).empty());
  REQUIRE(h.fleet.lifecycle_actions("web").size() == 1);
  CHECK(h.fleet.lifecycle_actions("web")[0].hook_name == "a");
  // The completed hook cannot be completed twice.
  CHECK_FALSE(h.fleet.complete_lifecycle_action(id, "b", {}, HookResult::Continue, h.now, c));
  REQUIRE(h.fleet.complete_lifecycle_action(id, "a", {}, HookResult::Continue, h.now, c));
  CHECK(only<LbRegister>(c).size() == 1);
  CHECK(state_of(h, id) == LifecycleState::InService);
}

TEST_CASE("an empty hook name completes every pending action of the instance", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a"), launch_hook("b")}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  std::vector<Command> c;
  REQUIRE(h.fleet.complete_lifecycle_action(id, {}, {}, HookResult::Continue, h.now, c));
  CHECK(state_of(h, id) == LifecycleState::InService);
}

TEST_CASE("abandon on launch terminates the instance, counts as a failed launch and is replaced", "[hooks]") {
  ScalingGroup g = web_group(1);
  g.retry.immediate_retries = 0;  // the first failure already waits
  g.retry.initial_backoff_ms = 10'000;
  Harness h(g);
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a"), launch_hook("b")}));
  const std::string id = h.pending().at(0);
  boot(h, id);

  std::vector<Command> c;
  REQUIRE(h.fleet.complete_lifecycle_action(id, "a", {}, HookResult::Abandon, h.now, c));
  // Never in rotation; drained and terminated at once (it held no LB slot).
  CHECK(only<LbRegister>(c).empty());
  const auto terminates = only<Terminate>(c);
  REQUIRE(terminates.size() == 1);
  CHECK(terminates[0].instance_id == id);
  CHECK(state_of(h, id) == LifecycleState::Terminating);
  CHECK(h.fleet.lifecycle_actions("web").empty());  // abandon skips hook b
  const auto failed = activities(c, ActivityType::LaunchFailed);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].status == ActivityStatus::Failed);
  CHECK(failed[0].cause.find("lifecycle hook a") != std::string::npos);
  CHECK(failed[0].cause.find("1 in a row") != std::string::npos);
  CHECK(failed[0].cause.find("next attempt in 10000 ms") != std::string::npos);
  // The back-off holds the replacement.
  CHECK(only<Launch>(c).empty());
  CHECK(h.pending().empty());

  auto later = wait(h, 9'000);
  CHECK(only<Launch>(later).empty());
  later = wait(h, 1'000);
  REQUIRE(only<Launch>(later).size() == 1);
  const std::string replacement = h.pending().at(0);
  CHECK(replacement != id);

  // A second abandon in a row waits longer (multiplier 2).
  boot(h, replacement, 2);
  c.clear();
  REQUIRE(h.fleet.complete_lifecycle_action(replacement, {}, {}, HookResult::Abandon, h.now, c));
  const auto again = activities(c, ActivityType::LaunchFailed);
  REQUIRE(again.size() == 1);
  CHECK(again[0].cause.find("2 in a row") != std::string::npos);
  CHECK(again[0].cause.find("next attempt in 20000 ms") != std::string::npos);
}

TEST_CASE("a launch that passes its hooks resets the failure count", "[hooks]") {
  ScalingGroup g = web_group(1);
  g.retry.immediate_retries = 0;
  g.retry.initial_backoff_ms = 1'000;
  Harness h(g);
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a")}));
  std::string id = h.pending().at(0);
  boot(h, id);
  std::vector<Command> c;
  REQUIRE(h.fleet.complete_lifecycle_action(id, "a", {}, HookResult::Abandon, h.now, c));
  wait(h, 1'000);
  id = h.pending().at(0);
  boot(h, id, 2);
  REQUIRE(h.fleet.complete_lifecycle_action(id, "a", {}, HookResult::Continue, h.now, c));
  CHECK(state_of(h, id) == LifecycleState::InService);
  // Scale out by one more and abandon: back to "1 in a row".
  REQUIRE(h.fleet.set_desired("web", 2, "test", h.now, c));
  const std::string next = h.pending().at(0);
  boot(h, next, 3);
  c.clear();
  REQUIRE(h.fleet.complete_lifecycle_action(next, "a", {}, HookResult::Abandon, h.now, c));
  REQUIRE(activities(c, ActivityType::LaunchFailed).size() == 1);
  CHECK(activities(c, ActivityType::LaunchFailed)[0].cause.find("1 in a row") != std::string::npos);
}

// ---- terminating --------------------------------------------------------------

TEST_CASE("terminate hooks hold an instance after drain and before the provider terminates it", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {terminate_hook("flush-logs"), terminate_hook("deregister")}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  REQUIRE(state_of(h, id) == LifecycleState::InService);

  std::vector<Command> c;
  REQUIRE(h.fleet.set_desired("web", 0, "test", h.now, c));
  CHECK(only<LbDrain>(c).size() == 1);
  CHECK(state_of(h, id) == LifecycleState::Draining);
  CHECK(h.fleet.lifecycle_actions("web").empty());  // not before the drain ends

  c = h.on(LbDrained{id});
  CHECK(only<LbRemove>(c).size() == 1);
  CHECK(only<Terminate>(c).empty());
  CHECK(state_of(h, id) == LifecycleState::PendingTerminateHook);
  REQUIRE(h.fleet.lifecycle_actions("web").size() == 2);

  c.clear();
  REQUIRE(h.fleet.complete_lifecycle_action(id, "flush-logs", {}, HookResult::Continue, h.now, c));
  CHECK(only<Terminate>(c).empty());
  REQUIRE(h.fleet.complete_lifecycle_action(id, "deregister", {}, HookResult::Continue, h.now, c));
  REQUIRE(only<Terminate>(c).size() == 1);
  // terminating is persisted before the provider is asked.
  CHECK(index_of<PersistInstance>(c) < index_of<Terminate>(c));
  CHECK(state_of(h, id) == LifecycleState::Terminating);

  // The scale-in activity's message names the hooks.
  c = h.on(TerminateCompleted{id});
  const auto scale_in = activities(c, ActivityType::ScaleIn);
  REQUIRE(scale_in.size() == 1);
  CHECK(scale_in[0].instances.at(0).message.find("lifecycle hook deregister: continue") != std::string::npos);
}

TEST_CASE("abandon on a terminate hook skips the remaining hooks and terminates", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {terminate_hook("a"), terminate_hook("b")}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  std::vector<Command> c;
  REQUIRE(h.fleet.set_desired("web", 0, "test", h.now, c));
  h.on(LbDrained{id});
  c.clear();
  REQUIRE(h.fleet.complete_lifecycle_action(id, "a", {}, HookResult::Abandon, h.now, c));
  CHECK(only<Terminate>(c).size() == 1);
  CHECK(h.fleet.lifecycle_actions("web").empty());
  CHECK(activities(c, ActivityType::LaunchFailed).empty());  // not a launch
}

TEST_CASE("a detached instance skips terminate hooks", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {terminate_hook("a")}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  std::vector<Command> c;
  REQUIRE(h.fleet.detach(id, true, h.now, c));
  h.on(LbDrained{id});
  CHECK(h.fleet.instance(id) == nullptr);  // detached and forgotten
  CHECK(h.fleet.lifecycle_actions("web").empty());
}

// ---- time-outs ----------------------------------------------------------------

TEST_CASE("a launch hook that times out applies its default result and asks for a notification", "[hooks]") {
  const HookResult result = GENERATE(HookResult::Continue, HookResult::Abandon);
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("slow", 30'000, result)}));
  const std::string id = h.pending().at(0);
  boot(h, id);

  // Reports every second keep the agent alive but do not move the hook's deadline.
  auto c = wait(h, 29'000);
  CHECK(only<NotifyHookTimeout>(c).empty());
  CHECK(state_of(h, id) == LifecycleState::PendingLaunchHook);
  c = wait(h, 1'000);
  const auto notes = only<NotifyHookTimeout>(c);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].timeout.group == "web");
  CHECK(notes[0].timeout.instance_id == id);
  CHECK(notes[0].timeout.hook_name == "slow");
  CHECK(notes[0].timeout.transition == HookTransition::Launching);
  CHECK(notes[0].timeout.default_result == result);
  CHECK(notes[0].timeout.notification_metadata == "meta-slow");
  CHECK(notes[0].timeout.at_ms == h.now);
  CHECK(h.fleet.lifecycle_actions("web").empty());
  if (result == HookResult::Continue) {
    CHECK(only<LbRegister>(c).size() == 1);
    CHECK(state_of(h, id) == LifecycleState::InService);
  } else {
    CHECK(only<LbRegister>(c).empty());
    CHECK(only<Terminate>(c).size() == 1);
    const auto failed = activities(c, ActivityType::LaunchFailed);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].cause.find("timed out") != std::string::npos);
    CHECK(failed[0].cause.find("slow") != std::string::npos);
    CHECK(only<Launch>(c).size() == 1);  // default retry policy: the first failures retry at once
  }
}

TEST_CASE("a terminate hook that times out terminates with either default result", "[hooks]") {
  const HookResult result = GENERATE(HookResult::Continue, HookResult::Abandon);
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {terminate_hook("t", 45'000, result)}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  std::vector<Command> c;
  REQUIRE(h.fleet.set_desired("web", 0, "test", h.now, c));
  h.on(LbDrained{id});
  c = wait(h, 44'000);
  CHECK(only<Terminate>(c).empty());
  c = wait(h, 1'000);
  REQUIRE(only<NotifyHookTimeout>(c).size() == 1);
  CHECK(only<NotifyHookTimeout>(c)[0].timeout.transition == HookTransition::Terminating);
  CHECK(only<NotifyHookTimeout>(c)[0].timeout.default_result == result);
  CHECK(only<Terminate>(c).size() == 1);
  CHECK(index_of<NotifyHookTimeout>(c) < index_of<Terminate>(c));
  c = h.on(TerminateCompleted{id});
  const auto scale_in = activities(c, ActivityType::ScaleIn);
  REQUIRE(scale_in.size() == 1);
  CHECK(scale_in[0].instances.at(0).message.find("timed out") != std::string::npos);
}

TEST_CASE("a heartbeat moves the deadline, up to the global limit", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("slow", 30'000, HookResult::Abandon)}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  const TimeMs started = h.now;
  wait(h, 20'000);
  auto deadline = h.fleet.record_lifecycle_heartbeat(id, "slow", {}, h.now);
  REQUIRE(deadline);
  CHECK(*deadline == h.now + 30'000);
  CHECK(h.fleet.lifecycle_actions("web").at(0).deadline_ms == h.now + 30'000);
  auto c = wait(h, 29'000);  // 49 s after the start: past the first deadline
  CHECK(only<NotifyHookTimeout>(c).empty());
  CHECK(state_of(h, id) == LifecycleState::PendingLaunchHook);
  // By token alone (empty instance id).
  const std::string token = h.fleet.lifecycle_actions("web").at(0).token;
  REQUIRE(h.fleet.record_lifecycle_heartbeat({}, {}, token, h.now));

  // Heartbeats cannot hold it past 100 x the timeout.
  h.now = started + 100 * 30'000 - 10'000;
  deadline = h.fleet.record_lifecycle_heartbeat(id, {}, {}, h.now);
  REQUIRE(deadline);
  CHECK(*deadline == started + 100 * 30'000);
  c = wait(h, 9'000);
  CHECK(only<NotifyHookTimeout>(c).empty());
  c = wait(h, 1'000);
  CHECK(only<NotifyHookTimeout>(c).size() == 1);
  CHECK(only<Terminate>(c).size() == 1);  // abandoned
}

TEST_CASE("the global limit is 48 h for long heartbeat timeouts", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("long", 7'200'000)}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  CHECK(h.fleet.lifecycle_actions("web").at(0).give_up_ms == h.now + 48LL * 3'600'000);
}

// ---- completion and refusals -------------------------------------------------

TEST_CASE("completion by token, and refusals", "[hooks]") {
  Harness h(web_group(2));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a"), launch_hook("b")}));
  const auto ids = h.pending();
  boot(h, ids.at(0), 1);
  boot(h, ids.at(1), 2);
  const auto actions = h.fleet.lifecycle_actions("web");
  REQUIRE(actions.size() == 4);
  std::set<std::string> tokens;
  for (const auto& a : actions) tokens.insert(a.token);
  CHECK(tokens.size() == 4);  // unique

  std::vector<Command> c;
  // Unknown instance, unknown hook, unknown token, a token of another instance.
  auto r = h.fleet.complete_lifecycle_action("i-nope", {}, {}, HookResult::Continue, h.now, c);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("unknown instance") != std::string::npos);
  r = h.fleet.complete_lifecycle_action(ids.at(0), "nope", {}, HookResult::Continue, h.now, c);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("hook nope") != std::string::npos);
  CHECK_FALSE(h.fleet.complete_lifecycle_action_by_token("h-nope", HookResult::Continue, h.now, c));
  CHECK_FALSE(h.fleet.complete_lifecycle_action_by_token("", HookResult::Continue, h.now, c));
  const auto of = [&](const std::string& id, const std::string& hook_name) {
    for (const auto& a : actions) {
      if (a.instance_id == id && a.hook_name == hook_name) return a.token;
    }
    return std::string();
  };
  r = h.fleet.complete_lifecycle_action(ids.at(0), "a", of(ids.at(1), "a"), HookResult::Continue, h.now, c);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("does not match") != std::string::npos);
  r = h.fleet.complete_lifecycle_action(ids.at(0), "a", of(ids.at(0), "b"), HookResult::Continue, h.now, c);
  CHECK_FALSE(r);
  CHECK(h.fleet.lifecycle_actions("web").size() == 4);  // nothing completed
  CHECK(c.empty());

  // By token alone.
  REQUIRE(h.fleet.complete_lifecycle_action_by_token(of(ids.at(0), "a"), HookResult::Continue, h.now, c));
  REQUIRE(h.fleet.complete_lifecycle_action_by_token(of(ids.at(0), "b"), HookResult::Continue, h.now, c));
  CHECK(state_of(h, ids.at(0)) == LifecycleState::InService);
  CHECK(state_of(h, ids.at(1)) == LifecycleState::PendingLaunchHook);
  // A used token is gone.
  CHECK_FALSE(h.fleet.complete_lifecycle_action_by_token(of(ids.at(0), "a"), HookResult::Continue, h.now, c));
  // By instance id and matching token.
  REQUIRE(h.fleet.complete_lifecycle_action(ids.at(1), {}, of(ids.at(1), "b"), HookResult::Continue, h.now, c));
  CHECK(h.fleet.lifecycle_actions("web").size() == 1);  // only b's own action
  // An instance that is not held.
  r = h.fleet.complete_lifecycle_action(ids.at(0), {}, {}, HookResult::Continue, h.now, c);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("no lifecycle action is pending") != std::string::npos);
  CHECK_FALSE(h.fleet.record_lifecycle_heartbeat("i-nope", {}, {}, h.now));
  CHECK_FALSE(h.fleet.record_lifecycle_heartbeat({}, {}, "h-nope", h.now));
}

TEST_CASE("a replaced or vanished held instance ends its actions", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a")}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  const std::string token = h.fleet.lifecycle_actions("web").at(0).token;
  h.on(InstanceVanished{id, "process exited"});
  CHECK(h.fleet.lifecycle_actions("web").empty());
  std::vector<Command> c;
  CHECK_FALSE(h.fleet.complete_lifecycle_action_by_token(token, HookResult::Continue, h.now, c));
  // A user termination of a held instance drains it; its actions end too.
  const std::string next = h.pending().at(0);
  boot(h, next, 2);
  REQUIRE(h.fleet.lifecycle_actions("web").size() == 1);
  REQUIRE(h.fleet.terminate(next, false, h.now, c));
  CHECK(h.fleet.lifecycle_actions("web").empty());
}

// ---- agent scripts ------------------------------------------------------------

TEST_CASE("a hook with an agent script asks the agent to run it; exit 0 continues, others abandon", "[hooks]") {
  const int status = GENERATE(0, 3);
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a", 120'000, HookResult::Continue, "warm.sh"), launch_hook("b")}));
  const std::string id = h.pending().at(0);
  auto c = boot(h, id);
  const auto runs = only<RunHook>(c);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].instance_id == id);
  CHECK(runs[0].script == "warm.sh");
  CHECK(runs[0].hook_name == "a");
  CHECK(runs[0].transition == HookTransition::Launching);
  CHECK(runs[0].timeout_ms == 120'000);

  // A reconnecting agent is asked again.
  c = h.on(AgentHello{id, "key-" + id, {}, 0});
  CHECK(only<RunHook>(c).size() == 1);

  c.clear();
  CHECK_FALSE(h.fleet.on_hook_script_result(id, "other.sh", 0, false, h.now, c));
  REQUIRE(h.fleet.on_hook_script_result(id, "warm.sh", status, false, h.now, c));
  if (status == 0) {
    CHECK(state_of(h, id) == LifecycleState::PendingLaunchHook);  // b still pending
    REQUIRE(h.fleet.lifecycle_actions("web").size() == 1);
    CHECK(h.fleet.lifecycle_actions("web")[0].hook_name == "b");
  } else {
    CHECK(only<Terminate>(c).size() == 1);
    const auto failed = activities(c, ActivityType::LaunchFailed);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].cause.find("exited with status 3") != std::string::npos);
  }
  // A duplicate result is refused.
  CHECK_FALSE(h.fleet.on_hook_script_result(id, "warm.sh", status, false, h.now, c));
}

TEST_CASE("an agent script that timed out applies the default result", "[hooks]") {
  Harness h(web_group(1));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a", 60'000, HookResult::Abandon, "warm.sh")}));
  const std::string id = h.pending().at(0);
  boot(h, id);
  std::vector<Command> c;
  REQUIRE(h.fleet.on_hook_script_result(id, "warm.sh", -1, true, h.now, c));
  CHECK(only<NotifyHookTimeout>(c).size() == 1);
  CHECK(only<Terminate>(c).size() == 1);
}

// ---- configuration changes ------------------------------------------------------

TEST_CASE("hooks added later apply to later transitions; deleted hooks continue at the next tick", "[hooks]") {
  Harness h(web_group(2));
  const auto ids = h.pending();
  boot(h, ids.at(0), 1);
  CHECK(state_of(h, ids.at(0)) == LifecycleState::InService);  // no hooks yet
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a"), launch_hook("b")}));
  CHECK(state_of(h, ids.at(0)) == LifecycleState::InService);  // not retroactive
  boot(h, ids.at(1), 2);
  REQUIRE(h.fleet.lifecycle_actions("web").size() == 2);

  // Edit b's timeout, delete a: a continues at the next tick; b keeps the
  // timeout it started with.
  LifecycleHook b = launch_hook("b", 600'000);
  REQUIRE(h.fleet.set_hooks("web", {b}));
  REQUIRE(h.fleet.lifecycle_actions("web").size() == 2);
  auto c = wait(h, 1'000);
  CHECK(only<NotifyHookTimeout>(c).empty());
  const auto left = h.fleet.lifecycle_actions("web");
  REQUIRE(left.size() == 1);
  CHECK(left[0].hook_name == "b");
  CHECK(left[0].deadline_ms == left[0].started_ms + 60'000);

  REQUIRE(h.fleet.set_hooks("web", {}));
  c = wait(h, 1'000);
  CHECK(only<LbRegister>(c).size() == 1);
  CHECK(state_of(h, ids.at(1)) == LifecycleState::InService);
}

TEST_CASE("set_hooks refuses bad hooks", "[hooks]") {
  Harness h(web_group(0));
  CHECK_FALSE(h.fleet.set_hooks("nope", {}));
  CHECK_FALSE(h.fleet.set_hooks("web", {launch_hook("a"), terminate_hook("a")}));
  CHECK_FALSE(h.fleet.set_hooks("web", {launch_hook("a", 1'000)}));
  LifecycleHook other = launch_hook("a");
  other.group = "api";
  CHECK_FALSE(h.fleet.set_hooks("web", {other}));
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a")}));
  CHECK(h.fleet.hooks("web").size() == 1);
}

TEST_CASE("a disabled group still runs its hooks", "[hooks]") {
  ScalingGroup g = web_group(1);
  Harness h(g);
  REQUIRE(h.fleet.set_hooks("web", {launch_hook("a", 30'000, HookResult::Continue)}));
  g.enabled = false;
  std::vector<Command> c;
  REQUIRE(h.fleet.put_group(g, h.now, c));
  const std::string id = h.pending().at(0);
  boot(h, id);
  CHECK(state_of(h, id) == LifecycleState::PendingLaunchHook);
  c = wait(h, 30'000);
  CHECK(only<NotifyHookTimeout>(c).size() == 1);
  CHECK(state_of(h, id) == LifecycleState::InService);
}

// ---- restart ----------------------------------------------------------------------

TEST_CASE("restore holds stored hook states again with fresh actions", "[hooks][restore]") {
  constexpr TimeMs kNow = 1'700'000'100'000;
  auto stored = [&](std::string id, LifecycleState state) {
    Instance i;
    i.id = std::move(id);
    i.group = "web";
    i.state = state;
    i.idempotency_key = "k-" + i.id;
    i.provider_id = "pid-" + i.id;
    i.address = "127.0.1.1";
    i.port = 8080;
    i.launch_configuration_id = "web";
    i.launch_configuration_version = 1;
    i.created_ms = kNow - 60'000;
    i.launched_ms = kNow - 59'000;
    i.state_since_ms = kNow - 50'000;
    return i;
  };
  RestoreInput in;
  in.launch_configurations.push_back(web_config());
  in.groups.push_back(web_group(1));
  in.hooks = {launch_hook("a", 60'000, HookResult::Continue, "warm.sh"), terminate_hook("t")};
  const Instance launching = stored("i-l", LifecycleState::PendingLaunchHook);
  Instance leaving = stored("i-t", LifecycleState::PendingTerminateHook);
  leaving.exit_reason = ExitReason::ScaleIn;
  in.instances = {launching, leaving};
  in.provider = {ProviderInstance{"pid-i-l", "k-i-l", "i-l", true, "127.0.1.1", 8080},
                 ProviderInstance{"pid-i-t", "k-i-t", "i-t", true, "127.0.1.2", 8080}};

  Fleet fleet(deterministic_deps(3));
  std::vector<Command> out;
  fleet.restore(in, kNow, out);
  CHECK(only<Terminate>(out).empty());
  CHECK(only<Launch>(out).empty());  // the held instance counts toward desired
  CHECK(only<RunHook>(out).empty());  // no agent yet
  auto actions = fleet.lifecycle_actions("web");
  REQUIRE(actions.size() == 2);
  for (const auto& a : actions) {
    CHECK(a.started_ms == kNow);
    CHECK(a.deadline_ms == kNow + 60'000);
  }
  CHECK(fleet.instance("i-l")->state == LifecycleState::PendingLaunchHook);
  CHECK(fleet.instance("i-t")->state == LifecycleState::PendingTerminateHook);

  // The agent's HELLO asks for the script again.
  out.clear();
  fleet.handle(AgentHello{"i-l", "key", {}, 0}, kNow + 1'000, out);
  REQUIRE(only<RunHook>(out).size() == 1);
  CHECK(only<RunHook>(out)[0].script == "warm.sh");
  out.clear();
  REQUIRE(fleet.on_hook_script_result("i-l", "warm.sh", 0, false, kNow + 2'000, out));
  CHECK(fleet.instance("i-l")->state == LifecycleState::Warming);

  // The terminate hook completes as usual.
  out.clear();
  REQUIRE(fleet.complete_lifecycle_action("i-t", "t", {}, HookResult::Continue, kNow + 2'000, out));
  CHECK(only<Terminate>(out).size() == 1);
}

TEST_CASE("restore without hooks passes stored hook states", "[hooks][restore]") {
  constexpr TimeMs kNow = 1'700'000'100'000;
  RestoreInput in;
  in.launch_configurations.push_back(web_config());
  in.groups.push_back(web_group(0));
  Instance i;
  i.id = "i-t";
  i.group = "web";
  i.state = LifecycleState::PendingTerminateHook;
  i.exit_reason = ExitReason::ScaleIn;
  i.idempotency_key = "k-t";
  i.provider_id = "pid-t";
  i.launch_configuration_id = "web";
  i.launch_configuration_version = 1;
  in.instances = {i};
  in.provider = {ProviderInstance{"pid-t", "k-t", "i-t", true, "127.0.1.2", 8080}};
  Fleet fleet(deterministic_deps(3));
  std::vector<Command> out;
  fleet.restore(in, kNow, out);
  CHECK(only<Terminate>(out).size() == 1);
  CHECK(fleet.lifecycle_actions("web").empty());
}
