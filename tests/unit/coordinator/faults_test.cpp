// Fault semantics (docs/lifecycle.md, "Health and fail-static"): a dead
// instance leaves rotation and is replaced whatever the group's size;
// fail-static holds only instances the coordinator lost contact with, in
// groups of at least four; a launch that dies before serving is a failed
// launch; requests answer with the instance as they left it.
#include "tests/unit/coordinator/fleet_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;

namespace {

// The application died; its agent, still alive, says so.
AgentReport crashed(const std::string& id) { return AgentReport{id, false, false, "readiness probe: connection refused", false}; }

}  // namespace

TEST_CASE("a crashed application leaves rotation and is replaced at once, at every group size", "[faults]") {
  for (const std::uint32_t size : {1U, 2U, 3U, 4U, 10U}) {
    CAPTURE(size);
    Harness h(web_group(size));
    h.bring_up();
    const std::string victim = h.in_service().at(0);
    h.take();
    auto c = h.on(crashed(victim));
    CHECK_FALSE(h.fleet.in_fail_static("web"));
    // Out of rotation in this very step, and a replacement launched.
    const auto drains = only<LbDrain>(c);
    REQUIRE(drains.size() == 1);
    CHECK(drains[0].instance_id == victim);
    CHECK(drains[0].timeout_ms == 5'000);
    CHECK(only<Launch>(c).size() == 1);
    CHECK(activities(c, ActivityType::ReplaceUnhealthy).size() == 1);
    CHECK_FALSE(h.fleet.instance(victim)->runtime.in_lb);
  }
}

TEST_CASE("lost agents in a group of 1 to 3 never trigger fail-static: the group heals", "[faults][fail-static]") {
  for (const std::uint32_t size : {1U, 2U, 3U}) {
    CAPTURE(size);
    Harness h(web_group(size));
    h.bring_up();
    const auto all = h.in_service();
    h.take();
    std::size_t drained = 0;
    std::size_t launched = 0;
    for (const std::string& id : all) {
      auto c = h.on(AgentLost{id, "liveness expired"});
      drained += only<LbDrain>(c).size();
      launched += only<Launch>(c).size();
      CHECK_FALSE(h.fleet.in_fail_static("web"));
    }
    CHECK(drained == size);  // every one out of rotation at once
    CHECK(launched >= 1);    // replacements start (rate limited to one at a time here)
  }
}

TEST_CASE("fail-static holds lost contact in a sizeable group but still replaces the known broken",
          "[faults][fail-static]") {
  Harness h(web_group(10));
  h.bring_up();
  const auto all = h.in_service();
  h.take();
  std::vector<Command> c;
  for (std::size_t k = 0; k < 4; ++k) {
    auto step = h.on(AgentLost{all[k], "liveness expired"});
    c.insert(c.end(), step.begin(), step.end());
  }
  REQUIRE(h.fleet.in_fail_static("web"));
  // The first loss was replaced at once (one replacement at a time in a group
  // of 10); the others, lost within the window, are held as their last
  // report says: back in rotation.
  CHECK(h.fleet.instance(all[0])->exit_reason == ExitReason::Replace);
  for (std::size_t k = 1; k < 4; ++k) CHECK(h.fleet.instance(all[k])->runtime.in_lb);
  CHECK(only<Launch>(c).size() == 1);
  CHECK(activities(c, ActivityType::FailStatic).size() == 1);

  // An application that crashes meanwhile is not held: out of rotation. Its
  // replacement waits for the one in flight (the group's rate limit), and
  // fail-static does not block it.
  c = h.on(crashed(all[5]));
  const auto out5 = only<LbDrain>(c);
  REQUIRE(out5.size() == 1);
  CHECK(out5[0].instance_id == all[5]);
  CHECK(h.fleet.in_fail_static("web"));
  const std::string replacement = h.pending().at(0);
  h.on(LaunchSucceeded{replacement, "pid-r", "127.0.2.1", 8080});
  h.on(AgentHello{replacement, "key-r", {}, 0});
  c = h.on(AgentReport{replacement, true, true, {}, false});
  CHECK(only<Launch>(c).size() == 1);  // the crashed one's replacement

  // A held instance whose agent comes back with a verdict "broken" is no
  // longer held: it leaves rotation. That leaves 3 of 10 lost — not more
  // than 30 %: fail-static ends and the other held ones leave too.
  c = h.on(crashed(all[1]));
  std::set<std::string> drained;
  for (const auto& d : only<LbDrain>(c)) drained.insert(d.instance_id);
  CHECK(drained == std::set<std::string>{all[1], all[2], all[3]});
  CHECK_FALSE(h.fleet.in_fail_static("web"));
}

TEST_CASE("fail_static_applies: at least 4 counting, at least 2 lost, more than the share", "[faults][fail-static]") {
  CHECK_FALSE(fail_static_applies(1, 1, 0.3));
  CHECK_FALSE(fail_static_applies(3, 3, 0.3));
  CHECK_FALSE(fail_static_applies(1, 4, 0.2));  // one is never "together"
  CHECK(fail_static_applies(2, 4, 0.3));
  CHECK_FALSE(fail_static_applies(3, 10, 0.3));  // exactly 30 %
  CHECK(fail_static_applies(4, 10, 0.3));
}

TEST_CASE("an instance that vanishes before it ever served is a failed launch with back-off", "[faults][retry]") {
  ScalingGroup g = web_group(1);
  g.retry.immediate_retries = 1;
  g.retry.initial_backoff_ms = 2'000;
  Harness h(g);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    CAPTURE(attempt);
    const auto pending = h.pending();
    REQUIRE(pending.size() == 1);
    const std::string id = pending[0];
    h.on(LaunchSucceeded{id, "pid-" + id, "127.0.1.1", 8080});
    auto c = h.on(InstanceVanished{id, "application exited with status 127 after 0.01 s; last output: nosuch: not found"});
    CHECK(h.fleet.instance(id) == nullptr);
    const auto failed = activities(c, ActivityType::LaunchFailed);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].cause.find("status 127") != std::string::npos);
    CHECK(failed[0].cause.find("nosuch: not found") != std::string::npos);
    CHECK(activities(c, ActivityType::TerminateUnexpectedly).empty());
    if (attempt == 1) {
      CHECK(only<Launch>(c).size() == 1);  // the immediate retry
    } else {
      CHECK(only<Launch>(c).empty());  // back-off
      h.now += 2'000 * (attempt == 2 ? 1 : 2);
      c = h.on(Tick{});
      CHECK(only<Launch>(c).size() == 1);
    }
  }
}

TEST_CASE("an instance that vanishes after serving is replaced at once and its slot removed", "[faults]") {
  Harness h(web_group(2));
  h.bring_up();
  const std::string victim = h.in_service().at(0);
  h.take();
  auto c = h.on(InstanceVanished{victim, "application was killed by signal 9 (SIGKILL)"});
  const auto removes = only<LbRemove>(c);
  REQUIRE(removes.size() == 1);
  CHECK(removes[0].instance_id == victim);
  CHECK(index_of<LbRemove>(c) < index_of<Launch>(c));
  CHECK(only<Launch>(c).size() == 1);
  CHECK(activities(c, ActivityType::TerminateUnexpectedly).size() == 1);
  // Its agent may no longer connect.
  bool revoked = false;
  for (const auto& a : only<SetAgentAccess>(c)) revoked = revoked || (a.instance_id == victim && a.revoke);
  CHECK(revoked);
}

TEST_CASE("a registration the load balancer refuses makes the instance unhealthy and replaced", "[faults]") {
  Harness h(web_group(1));
  h.bring_up();
  const std::string id = h.in_service().at(0);
  h.take();
  auto c = h.on(LbRegisterFailed{id, "set server addr refused"});
  CHECK_FALSE(h.fleet.instance(id)->runtime.in_lb);
  CHECK(h.fleet.instance(id)->health == Health::Unhealthy);
  CHECK(h.fleet.instance(id)->health_reason.find("refused") != std::string::npos);
  CHECK(only<Launch>(c).size() == 1);
  CHECK(only<LbDrain>(c).empty());  // never in rotation: nothing to drain
}

TEST_CASE("detach and terminate of an attached server whose agent never connected answer with the instance",
          "[faults][requests]") {
  for (const bool terminate : {false, true}) {
    for (const bool decrement : {false, true}) {
      CAPTURE(terminate, decrement);
      Harness h(web_group(0));
      auto attached = h.fleet.attach("web", "10.0.0.5", 8080, false, true, h.now, h.out);
      REQUIRE(attached);
      CHECK(attached->instance.state == LifecycleState::Booting);
      CHECK_FALSE(attached->enrollment_token.empty());
      const std::string id = attached->instance.id;
      h.take();
      auto left = terminate ? h.fleet.terminate(id, decrement, h.now, h.out) : h.fleet.detach(id, decrement, h.now, h.out);
      REQUIRE(left);
      CHECK(left->id == id);
      // Never in rotation: it leaves at once and the fleet forgets it; the
      // answer still describes it.
      if (!terminate) {
        CHECK(h.fleet.instance(id) == nullptr);
        CHECK(left->state == LifecycleState::Detached);
      } else {
        CHECK(left->exit_reason == ExitReason::User);
      }
    }
  }
}

TEST_CASE("every launch grants its enrollment before the provider is asked, and a bound key replaces it",
          "[faults][access]") {
  Harness h2(web_group(0));
  std::vector<Command> out;
  REQUIRE(h2.fleet.set_desired("web", 1, "test", h2.now, out));
  const auto access = index_of<SetAgentAccess>(out);
  const auto launch = index_of<Launch>(out);
  REQUIRE(access >= 0);
  REQUIRE(launch >= 0);
  CHECK(access < launch);
  const std::string id = only<Launch>(out).at(0).instance_id;
  CHECK(only<SetAgentAccess>(out).at(0).enrollment_open);
  h2.on(LaunchSucceeded{id, "pid", "127.0.1.1", 8080});
  auto hello = h2.on(AgentHello{id, "key-1", {}, 0});
  const auto bound = only<SetAgentAccess>(hello);
  REQUIRE(bound.size() == 1);
  CHECK(bound[0].agent_key == "key-1");
  CHECK_FALSE(bound[0].enrollment_open);
}
