// The decision core on a fake clock: the rule, the reconciler's choices,
// health and replacement, fail-static, the replacement rate limit, retries,
// draining and the crash-safety order of commands.
#include <set>

#include "tests/unit/coordinator/fleet_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;

// ---- the rule ---------------------------------------------------------------

TEST_CASE("readiness drives LB registration in both directions, at once", "[rule]") {
  Harness h(web_group(1));
  const std::string id = h.pending().at(0);
  h.on(LaunchSucceeded{id, "pid-1", "127.0.1.1", 8080});
  auto c = h.on(AgentHello{id, "key", {}, 0});
  CHECK(only<LbRegister>(c).empty());  // HELLO alone is not readiness
  CHECK(h.fleet.instance(id)->state == LifecycleState::Warming);

  c = h.on(AgentReport{id, false, true, {}, false});
  CHECK(only<LbRegister>(c).empty());

  c = h.on(AgentReport{id, true, true, {}, false});
  REQUIRE(index_of<LbRegister>(c) == 0);  // the LB change comes before the state row
  const auto reg = only<LbRegister>(c).at(0);
  CHECK(reg.backend == "be_web");
  CHECK(reg.address == "127.0.1.1");
  CHECK(reg.port == 8080);
  CHECK(h.fleet.instance(id)->state == LifecycleState::InService);

  // A report that changes nothing produces nothing.
  CHECK(h.on(AgentReport{id, true, true, {}, false}).empty());

  c = h.on(AgentReport{id, false, true, "warming cache", false});
  REQUIRE(only<LbDrain>(c).size() == 1);
  CHECK(h.fleet.instance(id)->state == LifecycleState::OutOfRotation);

  c = h.on(AgentReport{id, true, true, {}, false});
  CHECK(only<LbRegister>(c).size() == 1);
  CHECK(h.fleet.instance(id)->state == LifecycleState::InService);
}

TEST_CASE("a HELLO and a ready report that beat the provider's answer are not lost", "[rule]") {
  Harness h(web_group(1));
  const std::string id = h.pending().at(0);
  CHECK(only<LbRegister>(h.on(AgentHello{id, "key", "127.0.1.1", 8080})).empty());
  CHECK(only<LbRegister>(h.on(AgentReport{id, true, true, {}, false})).empty());  // not launched yet
  const auto c = h.on(LaunchSucceeded{id, "pid-1", "127.0.1.1", 8080});
  CHECK(only<LbRegister>(c).size() == 1);
  CHECK(h.fleet.instance(id)->state == LifecycleState::InService);
}

TEST_CASE("an agent that drains on its own leaves rotation and is asked to undrain", "[rule]") {
  Harness h(web_group(1));
  h.bring_up();
  const std::string id = h.in_service().at(0);
  auto c = h.on(AgentReport{id, true, true, {}, true});
  CHECK(only<LbDrain>(c).size() == 1);
  CHECK(only<SendUndrain>(c).size() == 1);
  CHECK_FALSE(h.fleet.instance(id)->runtime.in_lb);
  c = h.on(AgentReport{id, true, true, {}, false});
  CHECK(only<LbRegister>(c).size() == 1);
}

TEST_CASE("wants_rotation is exactly ready && healthy && not draining", "[rule]") {
  Instance i;
  i.state = LifecycleState::InService;
  for (int ready = 0; ready < 2; ++ready) {
    for (int healthy = 0; healthy < 2; ++healthy) {
      for (int agent_draining = 0; agent_draining < 2; ++agent_draining) {
        for (int leaving = 0; leaving < 2; ++leaving) {
          i.runtime.ready = ready == 1;
          i.health = healthy == 1 ? Health::Healthy : Health::Unhealthy;
          i.runtime.agent_draining = agent_draining == 1;
          i.exit_reason = leaving == 1 ? ExitReason::ScaleIn : ExitReason::None;
          CHECK(wants_rotation(i) == (ready && healthy && !agent_draining && !leaving));
        }
      }
    }
  }
  i = Instance{};
  i.state = LifecycleState::Booting;
  i.runtime.ready = true;
  CHECK_FALSE(wants_rotation(i));  // no HELLO yet
}

// ---- scale-in choice --------------------------------------------------------

namespace {

Instance member(std::string id, TimeMs created, LifecycleState state = LifecycleState::InService) {
  Instance i;
  i.id = std::move(id);
  i.group = "web";
  i.state = state;
  i.created_ms = created;
  i.launch_configuration_id = "web";
  i.launch_configuration_version = 1;
  return i;
}

std::vector<std::string> pick(const std::vector<Instance>& pool, const ScalingGroup& g, std::size_t n,
                              std::uint64_t seed = 1) {
  std::vector<const Instance*> ptrs;
  for (const Instance& i : pool) ptrs.push_back(&i);
  std::mt19937_64 rng(seed);
  std::vector<std::string> ids;
  for (const Instance* i : choose_scale_in(ptrs, g, n, rng)) ids.push_back(i->id);
  return ids;
}

}  // namespace

TEST_CASE("scale-in never picks protected instances", "[reconciler]") {
  ScalingGroup g = web_group(0);
  std::vector<Instance> pool{member("a", 1), member("b", 2), member("c", 3)};
  pool[0].protected_from_scale_in = true;
  pool[2].protected_from_scale_in = true;
  CHECK(pick(pool, g, 3) == std::vector<std::string>{"b"});
}

TEST_CASE("scale-in ordering: launched before attached, then not in service, then policy", "[reconciler]") {
  ScalingGroup g = web_group(0);
  g.termination_policy = TerminationPolicy::OldestInstance;
  std::vector<Instance> pool{member("attached-warming", 1, LifecycleState::Warming),
                             member("old-in-service", 2), member("new-in-service", 5),
                             member("warming", 9, LifecycleState::Warming), member("unhealthy", 10),
                             member("pending", 11, LifecycleState::Pending)};
  pool[0].origin = InstanceOrigin::Attached;
  pool[4].health = Health::Unhealthy;
  CHECK(pick(pool, g, 6) == std::vector<std::string>{"warming", "unhealthy", "pending", "old-in-service",
                                                     "new-in-service", "attached-warming"});

  g.termination_policy = TerminationPolicy::NewestInstance;
  CHECK(pick(pool, g, 6) == std::vector<std::string>{"pending", "unhealthy", "warming", "new-in-service",
                                                     "old-in-service", "attached-warming"});
}

TEST_CASE("oldest_launch_configuration removes other configurations, then lower versions", "[reconciler]") {
  ScalingGroup g = web_group(0);
  g.termination_policy = TerminationPolicy::OldestLaunchConfiguration;
  g.launch_configuration_version = 3;
  std::vector<Instance> pool{member("v3", 1), member("v2", 2), member("other", 3)};
  pool[0].launch_configuration_version = 3;
  pool[1].launch_configuration_version = 2;
  pool[2].launch_configuration_id = "legacy";
  pool[2].launch_configuration_version = 9;
  CHECK(pick(pool, g, 3) == std::vector<std::string>{"other", "v2", "v3"});
}

TEST_CASE("scale-in ties are broken by the injected seed, reproducibly", "[reconciler]") {
  ScalingGroup g = web_group(0);
  std::vector<Instance> pool;
  for (int k = 0; k < 8; ++k) pool.push_back(member("i" + std::to_string(k), 100));
  CHECK(pick(pool, g, 1, 42) == pick(pool, g, 1, 42));
  std::set<std::string> seen;
  for (std::uint64_t seed = 0; seed < 32; ++seed) seen.insert(pick(pool, g, 1, seed).at(0));
  CHECK(seen.size() > 1);
}

// ---- capacity, draining, crash-safety order ----------------------------------

TEST_CASE("scale-out persists each instance with its idempotency key before launching it", "[reconciler][crash]") {
  Harness h(web_group(0));
  REQUIRE(h.fleet.set_desired("web", 3, "user request", h.now, h.out));
  const auto c = h.take();
  const auto launches = only<Launch>(c);
  REQUIRE(launches.size() == 3);
  for (std::size_t k = 0; k < 3; ++k) {
    const auto p = index_of<PersistInstance>(c, k);
    const auto l = index_of<Launch>(c, k);
    REQUIRE(p >= 0);
    REQUIRE(p < l);
    const auto& row = std::get<PersistInstance>(c[static_cast<std::size_t>(p)]).instance;
    CHECK(row.id == launches[k].instance_id);
    CHECK(row.state == LifecycleState::Pending);
    CHECK(!row.idempotency_key.empty());
    CHECK(row.idempotency_key == launches[k].idempotency_key);
  }
  const auto acts = activities(c, ActivityType::ScaleOut);
  REQUIRE_FALSE(acts.empty());
  CHECK(acts.back().cause.find("user request") != std::string::npos);
  CHECK(acts.back().instances.size() == 3);
  // A second evaluation does not launch again: pending instances count.
  REQUIRE(h.fleet.set_desired("web", 3, "again", h.now, h.out));
  CHECK(only<Launch>(h.take()).empty());
}

TEST_CASE("set_desired outside [min, max] is refused with a message", "[reconciler]") {
  Harness h(web_group(1));
  auto r = h.fleet.set_desired("web", 101, "user", h.now, h.out);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("outside [min 0, max 100]") != std::string::npos);
  CHECK_FALSE(h.fleet.set_desired("nope", 1, "user", h.now, h.out));
}

TEST_CASE("scale-in drains first and terminates after 0 sessions or the drain timeout", "[reconciler][drain]") {
  Harness h(web_group(3));
  h.bring_up();
  REQUIRE(h.in_service().size() == 3);
  REQUIRE(h.fleet.set_desired("web", 1, "user request", h.now, h.out));
  auto c = h.take();
  const auto drains = only<LbDrain>(c);
  REQUIRE(drains.size() == 2);
  CHECK(only<SendDrain>(c).size() == 2);
  CHECK(only<Terminate>(c).empty());
  REQUIRE(activities(c, ActivityType::ScaleIn).size() == 1);

  // First: the LB reports 0 sessions.
  c = h.on(LbDrained{drains[0].instance_id});
  REQUIRE(only<Terminate>(c).size() == 1);
  CHECK(index_of<LbRemove>(c) < index_of<Terminate>(c));
  const auto p = index_of<PersistInstance>(c);
  REQUIRE(p >= 0);
  CHECK(p < index_of<Terminate>(c));
  CHECK(std::get<PersistInstance>(c[static_cast<std::size_t>(p)]).instance.state == LifecycleState::Terminating);

  // Second: sessions linger until the drain timeout.
  h.advance(4'999, h.in_service());
  CHECK(only<Terminate>(h.on(Tick{})).empty());
  h.advance(1, h.in_service());
  c = h.on(Tick{});
  REQUIRE(only<Terminate>(c).size() == 1);
  CHECK(only<Terminate>(c)[0].instance_id == drains[1].instance_id);

  h.on(TerminateCompleted{drains[0].instance_id});
  c = h.on(TerminateCompleted{drains[1].instance_id});
  const auto done = activities(c, ActivityType::ScaleIn);
  REQUIRE_FALSE(done.empty());
  CHECK(done.back().status == ActivityStatus::Successful);
  CHECK(done.back().end_ms.has_value());
  CHECK(h.fleet.instance_count() == 1);
}

TEST_CASE("an instance chosen for scale-in while launching is drained once launched", "[reconciler][drain]") {
  Harness h(web_group(2));
  const auto ids = h.pending();
  REQUIRE(ids.size() == 2);
  REQUIRE(h.fleet.set_desired("web", 1, "user", h.now, h.out));
  h.take();
  std::string leaving;
  for (const auto& id : ids) {
    if (h.fleet.instance(id)->exit_reason == ExitReason::ScaleIn) leaving = id;
  }
  REQUIRE_FALSE(leaving.empty());
  const auto c = h.on(LaunchSucceeded{leaving, "pid-x", "127.0.1.9", 8080});
  REQUIRE(only<Terminate>(c).size() == 1);  // never registered: nothing to drain
  CHECK(only<Terminate>(c)[0].provider_id == "pid-x");
  CHECK(only<Launch>(c).empty());
}

TEST_CASE("detach drains and leaves the instance alive", "[reconciler][drain]") {
  Harness h(web_group(2));
  h.bring_up();
  const std::string id = h.in_service().at(0);
  REQUIRE(h.fleet.detach(id, true, h.now, h.out));
  auto c = h.take();
  CHECK(only<LbDrain>(c).size() == 1);
  CHECK(only<Launch>(c).empty());  // desired went down with it
  c = h.on(LbDrained{id});
  CHECK(only<Terminate>(c).empty());
  CHECK(only<LbRemove>(c).size() == 1);
  REQUIRE_FALSE(only<PersistInstance>(c).empty());
  CHECK(only<PersistInstance>(c).back().instance.state == LifecycleState::Detached);
  CHECK(h.fleet.group("web")->desired == 1);
}

TEST_CASE("a user terminate drains, terminates and replaces unless desired goes down", "[reconciler][drain]") {
  Harness h(web_group(2));
  h.bring_up();
  const std::string id = h.in_service().at(0);
  REQUIRE(h.fleet.set_protected(id, true, h.now, h.out));
  h.take();
  // Protection guards against scale-in, not against a terminate by name.
  REQUIRE(h.fleet.terminate(id, false, h.now, h.out));
  auto c = h.take();
  CHECK(only<LbDrain>(c).size() == 1);
  CHECK(only<Launch>(c).size() == 1);  // desired stays 2: a replacement
  CHECK_FALSE(activities(c, ActivityType::TerminateInstance).empty());
  c = h.on(LbDrained{id});
  REQUIRE(only<Terminate>(c).size() == 1);
  CHECK(only<Terminate>(c)[0].instance_id == id);
  // Leaving instances cannot be terminated twice; unknown ones are refused.
  CHECK_FALSE(h.fleet.terminate(id, false, h.now, h.out));
  CHECK_FALSE(h.fleet.terminate("i-nope", false, h.now, h.out));

  const std::string other = h.in_service().at(0);
  REQUIRE(h.fleet.terminate(other, true, h.now, h.out));
  c = h.take();
  CHECK(only<Launch>(c).empty());
  CHECK(h.fleet.group("web")->desired == 1);
  // min 0 here; a group at min refuses the decrement.
  ScalingGroup g = *h.fleet.group("web");
  g.min = 1;
  REQUIRE(h.fleet.put_group(g, h.now, h.out));
  h.take();
  h.bring_up();  // the replacement launched by the first terminate
  const auto remaining = h.in_service();
  REQUIRE_FALSE(remaining.empty());
  CHECK_FALSE(h.fleet.terminate(remaining.at(0), true, h.now, h.out));
}

TEST_CASE("a group is removed only once it has no instance", "[reconciler]") {
  Harness h(web_group(1));
  h.bring_up();
  CHECK_FALSE(h.fleet.remove_group("web"));
  CHECK_FALSE(h.fleet.remove_group("nope"));
  REQUIRE(h.fleet.set_desired("web", 0, "test", h.now, h.out));
  const std::string id = only<LbDrain>(h.take()).at(0).instance_id;
  h.on(LbDrained{id});
  h.on(TerminateCompleted{id});
  REQUIRE(h.fleet.remove_group("web"));
  CHECK(h.fleet.group("web") == nullptr);
}

// ---- health and replacement -------------------------------------------------

TEST_CASE("an agent that misses the liveness window is replaced: launch first, then remove", "[health]") {
  Harness h(web_group(10));
  h.bring_up();
  auto alive = h.in_service();
  REQUIRE(alive.size() == 10);
  const std::string silent = alive.back();
  alive.pop_back();
  h.advance(2'999, alive);
  CHECK(h.on(Tick{}).empty());
  h.advance(1, alive);
  auto c = h.on(Tick{});
  const Instance* x = h.fleet.instance(silent);
  REQUIRE(x != nullptr);
  CHECK(x->health == Health::Unhealthy);
  CHECK(x->health_reason.find("liveness window 3000 ms") != std::string::npos);
  REQUIRE(only<LbDrain>(c).size() == 1);
  CHECK(only<LbDrain>(c)[0].instance_id == silent);
  REQUIRE(only<Launch>(c).size() == 1);
  CHECK(only<Terminate>(c).empty());  // still draining
  CHECK(x->state == LifecycleState::Draining);
  CHECK(x->exit_reason == ExitReason::Replace);
  const auto acts = activities(c, ActivityType::ReplaceUnhealthy);
  REQUIRE_FALSE(acts.empty());
  CHECK(acts.front().cause.find(silent) != std::string::npos);

  c = h.on(LbDrained{silent});
  REQUIRE(only<Terminate>(c).size() == 1);
  CHECK(only<Launch>(c).empty());
}

TEST_CASE("an instance that never says HELLO within the boot timeout is replaced", "[health]") {
  Harness h(web_group(10));
  const auto ids = h.pending();
  const std::string mute = ids.back();
  h.on(LaunchSucceeded{mute, "pid-mute", "127.0.1.99", 8080});
  h.bring_up();  // everybody else
  auto alive = h.in_service();
  REQUIRE(alive.size() == 9);
  for (int k = 0; k < 29; ++k) {
    h.advance(2'000, alive);
    REQUIRE(h.on(Tick{}).empty());
  }
  h.advance(1'999, alive);
  CHECK(h.on(Tick{}).empty());  // 59,999 ms
  h.advance(1, alive);
  const auto c = h.on(Tick{});
  CHECK(h.fleet.instance(mute) != nullptr);
  CHECK(h.fleet.instance(mute)->health_reason.find("no HELLO") != std::string::npos);
  REQUIRE(only<Launch>(c).size() == 1);
  REQUIRE(only<Terminate>(c).size() == 1);  // it never served: nothing to drain
  CHECK(index_of<Launch>(c) < index_of<Terminate>(c));
  CHECK(only<Terminate>(c)[0].instance_id == mute);
}

TEST_CASE("failing health checks make an instance unhealthy, except during the grace period", "[health]") {
  ScalingGroup g = web_group(10);
  g.health_check_grace_period_ms = 10'000;
  Harness h(g);
  h.bring_up();
  const std::string id = h.in_service().at(0);
  auto c = h.on(AgentReport{id, true, false, "GET /health: 500", false});
  CHECK(c.empty());  // launched 0 ms ago: in grace
  CHECK(h.fleet.instance(id)->health == Health::Healthy);

  h.advance(10'000, h.in_service());
  h.take();
  c = h.on(AgentReport{id, true, false, "GET /health: 500", false});
  CHECK(h.fleet.instance(id)->health == Health::Unhealthy);
  CHECK(h.fleet.instance(id)->health_reason == "GET /health: 500");
  CHECK(only<LbDrain>(c).size() == 1);
  CHECK(only<Launch>(c).size() == 1);
}

TEST_CASE("a protected unhealthy instance leaves rotation but is not replaced", "[health]") {
  Harness h(web_group(10));
  h.bring_up();
  const std::string id = h.in_service().at(0);
  REQUIRE(h.fleet.set_protected(id, true, h.now, h.out));
  h.take();
  auto c = h.on(AgentReport{id, true, false, "disk full", false});
  CHECK(only<LbDrain>(c).size() == 1);
  CHECK(only<Launch>(c).empty());
  // Recovery puts it back.
  c = h.on(AgentReport{id, true, true, {}, false});
  CHECK(only<LbRegister>(c).size() == 1);
  CHECK(h.fleet.instance(id)->health == Health::Healthy);
}

TEST_CASE("fail-static: more than 30 % unhealthy within one window replaces none and keeps the LB", "[health][fail-static]") {
  Harness h(web_group(10));
  h.bring_up();
  auto all = h.in_service();
  std::vector<std::string> alive(all.begin(), all.begin() + 6);
  h.advance(3'000, alive);
  h.take();
  auto c = h.on(Tick{});
  CHECK(h.fleet.in_fail_static("web"));
  CHECK(only<Launch>(c).empty());
  CHECK(only<LbDrain>(c).empty());
  CHECK(only<Terminate>(c).empty());
  const auto acts = activities(c, ActivityType::FailStatic);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].status == ActivityStatus::Running);
  CHECK(acts[0].cause.find("4 of 10") != std::string::npos);
  CHECK(acts[0].cause.find("30 %") != std::string::npos);
  for (std::size_t k = 6; k < 10; ++k) CHECK(h.fleet.instance(all[k])->runtime.in_lb);

  // Ticks while static change nothing.
  h.advance(1'000, alive);
  CHECK(h.on(Tick{}).empty());

  // One comes back: 3 of 10 is not more than 30 %, fail-static ends, the
  // remaining three leave rotation and replacement resumes at its rate.
  c = h.on(AgentReport{all[6], true, true, {}, false});
  CHECK_FALSE(h.fleet.in_fail_static("web"));
  CHECK(only<LbDrain>(c).size() == 3);
  CHECK(only<Launch>(c).size() == 1);  // 10 % of 10
  const auto ended = activities(c, ActivityType::FailStatic);
  REQUIRE_FALSE(ended.empty());
  CHECK(ended.back().status == ActivityStatus::Successful);
}

TEST_CASE("exactly 30 % unhealthy is not fail-static, and replacement is rate limited", "[health][rate]") {
  Harness h(web_group(10));
  h.bring_up();
  auto all = h.in_service();
  std::vector<std::string> alive(all.begin(), all.begin() + 7);
  h.advance(3'000, alive);
  h.take();
  auto c = h.on(Tick{});
  CHECK_FALSE(h.fleet.in_fail_static("web"));
  CHECK(only<LbDrain>(c).size() == 3);
  REQUIRE(only<Launch>(c).size() == 1);  // max(1, 10 % of 10) at a time

  // The replacement comes into service: the next one starts.
  const std::string r = only<Launch>(c)[0].instance_id;
  h.on(LaunchSucceeded{r, "pid-r", "127.0.2.1", 8080});
  h.on(AgentHello{r, "key-r", {}, 0});
  c = h.on(AgentReport{r, true, true, {}, false});
  CHECK(only<LbRegister>(c).size() == 1);
  CHECK(only<Launch>(c).size() == 1);
}

TEST_CASE("replacement_limit and exceeds_share", "[rate]") {
  ScalingGroup g = web_group(10);
  CHECK(replacement_limit(g) == 1);
  g.desired = 3;
  CHECK(replacement_limit(g) == 1);  // at least one
  g.desired = 45;
  CHECK(replacement_limit(g) == 4);
  g.replacement_rate = 0.5;
  CHECK(replacement_limit(g) == 22);
  CHECK_FALSE(exceeds_share(3, 10, 0.3));
  CHECK(exceeds_share(4, 10, 0.3));
  CHECK_FALSE(exceeds_share(0, 0, 0.3));
}

// ---- retries ------------------------------------------------------------------

TEST_CASE("retry_delay_ms: immediate retries, then growing waits up to the cap", "[retry]") {
  RetryPolicy p;
  p.immediate_retries = 2;
  p.initial_backoff_ms = 1'000;
  p.multiplier = 2.0;
  p.max_backoff_ms = 5'000;
  const std::int64_t expected[] = {0, 0, 0, 1'000, 2'000, 4'000, 5'000, 5'000};
  for (std::uint32_t n = 0; n < 8; ++n) {
    INFO("failures " << n);
    CHECK(retry_delay_ms(p, n) == expected[n]);
  }
}

TEST_CASE("failed launches follow the retry policy and each failure is an activity", "[retry]") {
  ScalingGroup g = web_group(1);
  g.retry.immediate_retries = 2;
  g.retry.initial_backoff_ms = 1'000;
  g.retry.multiplier = 2.0;
  g.retry.max_backoff_ms = 4'000;
  Harness h(g);
  auto fail_current = [&] {
    const auto ids = h.pending();
    REQUIRE(ids.size() == 1);
    return h.on(LaunchFailed{ids[0], "quota exceeded: 0 of 0 cores free"});
  };
  // Two immediate retries.
  for (int k = 0; k < 2; ++k) {
    const auto c = fail_current();
    CHECK(only<Launch>(c).size() == 1);
    const auto acts = activities(c, ActivityType::LaunchFailed);
    REQUIRE(acts.size() == 1);
    CHECK(acts[0].status == ActivityStatus::Failed);
    CHECK(acts[0].instances.at(0).message == "quota exceeded: 0 of 0 cores free");
  }
  // Then waits of 1 s, 2 s, 4 s, 4 s.
  for (TimeMs wait : {1'000, 2'000, 4'000, 4'000}) {
    INFO("wait " << wait);
    const auto c = fail_current();
    CHECK(only<Launch>(c).empty());
    h.now += wait - 1;
    CHECK(only<Launch>(h.on(Tick{})).empty());
    h.now += 1;
    CHECK(only<Launch>(h.on(Tick{})).size() == 1);
  }
  // The provider's success alone does not reset the count: an application
  // that dies at start is one more failed launch (back-off 4 s).
  auto id = h.pending().at(0);
  h.on(LaunchSucceeded{id, "pid", "127.0.1.1", 8080});
  auto c = h.on(InstanceVanished{id, "exited with status 1"});
  CHECK(only<Launch>(c).empty());
  CHECK(activities(c, ActivityType::LaunchFailed).size() == 1);
  h.now += 4'000;
  CHECK(only<Launch>(h.on(Tick{})).size() == 1);
  // Going into service resets it: a later failure retries at once.
  id = h.pending().at(0);
  h.on(LaunchSucceeded{id, "pid", "127.0.1.1", 8080});
  h.on(AgentHello{id, "key", {}, 0});
  h.on(AgentReport{id, true, true, {}, false});
  REQUIRE(h.fleet.instance(id)->state == LifecycleState::InService);
  c = h.on(InstanceVanished{id, "exited with status 1"});
  CHECK(activities(c, ActivityType::TerminateUnexpectedly).size() == 1);
  REQUIRE(h.pending().size() == 1);
  CHECK(only<Launch>(fail_current()).size() == 1);
}

TEST_CASE("an instance that vanishes is recorded and replaced", "[health]") {
  Harness h(web_group(2));
  h.bring_up();
  const std::string id = h.in_service().at(0);
  const auto c = h.on(InstanceVanished{id, "process exited with status 137"});
  CHECK(only<LbRemove>(c).size() == 1);
  const auto acts = activities(c, ActivityType::TerminateUnexpectedly);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].cause.find("status 137") != std::string::npos);
  CHECK(only<Launch>(c).size() == 1);
  CHECK(h.fleet.instance(id) == nullptr);
}

TEST_CASE("events for unknown instances are ignored", "[robustness]") {
  Harness h(web_group(1));
  CHECK(h.on(AgentReport{"i-nope", true, true, {}, false}).empty());
  CHECK(h.on(LaunchSucceeded{"i-nope", "p", "a", 1}).empty());
  CHECK(h.on(TerminateCompleted{"i-nope"}).empty());
  CHECK(h.on(LbDrained{"i-nope"}).empty());
}
