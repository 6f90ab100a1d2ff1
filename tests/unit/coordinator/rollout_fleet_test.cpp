// The rollout inside the Fleet (docs/rollout.md): the group launches the
// target version, old instances drain before they go, the commands carry the
// rollout's record, scaling keeps working, and a restart picks the rollout up
// from its stored record. Driven through the Fleet's events on a fake clock.
#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/unit/coordinator/fleet_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;

namespace {

LaunchConfiguration web_v2() {
  LaunchConfiguration c = web_config();
  c.version = 2;
  c.command = "python3 -m http.server $PORT  # v2";
  return c;
}

// Plays the shell and the instances: launches succeed, agents say HELLO and
// report ready (except versions in `never_ready`), drains and terminations
// complete. Returns every command the fleet emitted on the way.
struct World {
  explicit World(Harness& harness, std::set<std::uint32_t> never = {}) : h(harness), never_ready(std::move(never)) {}

  Harness& h;
  std::set<std::uint32_t> never_ready;
  std::set<std::string> sick;  // instances whose agents report unhealthy
  std::vector<Command> seen;
  int next_address = 1;

  void feed(std::vector<Command> commands) {
    std::vector<Command> pending = std::move(commands);
    while (!pending.empty()) {
      std::vector<Command> next;
      for (const Command& c : pending) {
        seen.push_back(c);
        std::vector<Command> more;
        if (const auto* launch = std::get_if<Launch>(&c)) {
          h.fleet.handle(LaunchSucceeded{launch->instance_id, "pid-" + launch->instance_id,
                                         "127.0.2." + std::to_string(next_address++), 8080},
                         h.now, more);
          h.fleet.handle(AgentHello{launch->instance_id, "key-" + launch->instance_id, {}, 0}, h.now, more);
        } else if (const auto* drain = std::get_if<LbDrain>(&c)) {
          h.fleet.handle(LbDrained{drain->instance_id}, h.now, more);
        } else if (const auto* terminate = std::get_if<Terminate>(&c)) {
          h.fleet.handle(TerminateCompleted{terminate->instance_id}, h.now, more);
        }
        for (auto& m : more) next.push_back(std::move(m));
      }
      pending = std::move(next);
    }
  }

  // One step of `ms`: every live agent reports (ready unless its version is
  // in never_ready), then a Tick.
  void step(TimeMs ms) {
    h.now += ms;
    std::vector<Command> out;
    for (const Instance* i : h.fleet.instances_of("web")) {
      if (i->state == LifecycleState::Pending || i->state == LifecycleState::Booting) continue;
      const bool ready = !never_ready.contains(i->launch_configuration_version);
      const bool healthy = !sick.contains(i->id);
      h.fleet.handle(AgentReport{i->id, ready, healthy, healthy ? "" : "health check failed", false}, h.now, out);
    }
    h.fleet.handle(Tick{}, h.now, out);
    feed(std::move(out));
  }

  [[nodiscard]] std::map<std::uint32_t, int> versions_in_service() const {
    std::map<std::uint32_t, int> v;
    for (const Instance* i : h.fleet.instances_of("web")) {
      if (i->state == LifecycleState::InService) ++v[i->launch_configuration_version];
    }
    return v;
  }
  [[nodiscard]] int in_rotation() const {
    int n = 0;
    for (const Instance* i : h.fleet.instances_of("web")) n += i->runtime.in_lb ? 1 : 0;
    return n;
  }
};

// The group at `size` instances of v1 in service, and v2 defined.
void bring_up_v1(Harness& h, std::uint32_t size) {
  h.bring_up();
  REQUIRE(h.in_service().size() == size);
  REQUIRE(h.fleet.put_launch_configuration(web_v2()));
}

// The notification events the fleet asked for, in order.
std::vector<NotificationEvent> notices(const std::vector<Command>& commands) {
  std::vector<NotificationEvent> events;
  for (const auto& n : only<NotifyRollout>(commands)) events.push_back(n.notice.event);
  return events;
}

}  // namespace

TEST_CASE("fleet rollout: 4 instances v1 -> v2, launch before drain, never fewer than 4 in rotation", "[rollout][fleet]") {
  Harness h(web_group(4));
  bring_up_v1(h, 4);
  World w(h);
  RolloutStrategy strategy;  // 25 % batches, surge 1, floor 90 %
  std::vector<Command> out;
  auto started = h.fleet.start_rollout("web", "r-1", "web", 2, strategy, h.now, out);
  REQUIRE(started);
  CHECK(started->from_version == 1);
  CHECK(started->to_version == 2);
  // The group launches v2 from now on; the first surge instance is asked for.
  CHECK(h.fleet.group("web")->launch_configuration_version == 2);
  CHECK_FALSE(only<PersistGroup>(out).empty());
  CHECK_FALSE(only<PersistRollout>(out).empty());
  const auto launches = only<Launch>(out);
  REQUIRE(launches.size() == 1);
  CHECK(launches[0].launch_configuration_version == 2);
  w.feed(std::move(out));

  int least_in_rotation = 4;
  for (int k = 0; k < 200 && h.fleet.rollout("web") != nullptr; ++k) {
    w.step(500);
    least_in_rotation = std::min(least_in_rotation, w.in_rotation());
    CHECK(h.fleet.instances_of("web").size() <= 5 + 1);  // 4 + surge, plus one leaving at most
  }
  REQUIRE(h.fleet.rollout("web") == nullptr);  // finished: forgotten by the fleet
  CHECK(least_in_rotation >= 4);
  CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{2, 4}});
  // The last record says succeeded, and every retirement drained first.
  const auto records = only<PersistRollout>(w.seen);
  REQUIRE_FALSE(records.empty());
  CHECK(records.back().rollout.state == RolloutState::Succeeded);
  CHECK(records.back().rollout.replaced == 4);
  CHECK(only<LbDrain>(w.seen).size() == 4);
  for (const auto& t : only<Terminate>(w.seen)) {
    const auto drained = std::find_if(w.seen.begin(), w.seen.end(), [&](const Command& c) {
      const auto* d = std::get_if<LbDrain>(&c);
      return d != nullptr && d->instance_id == t.instance_id;
    });
    CHECK(drained != w.seen.end());
  }
  const auto notes = activities(w.seen, ActivityType::Rollout);
  CHECK(notes.size() >= 4 + 1);  // a batch at least per old instance, and the end
  CHECK(notices(w.seen) ==
        std::vector<NotificationEvent>{NotificationEvent::RolloutStarted, NotificationEvent::RolloutSucceeded});
  const auto last = only<NotifyRollout>(w.seen).back().notice;
  CHECK(last.group == "web");
  CHECK(last.rollout_id == "r-1");
  CHECK(last.from == "web:1");
  CHECK(last.to == "web:2");
  CHECK(last.replaced == 4);
}

TEST_CASE("fleet rollout: a version that never becomes ready is rolled back and nothing old is lost",
          "[rollout][fleet]") {
  Harness h(web_group(3));
  bring_up_v1(h, 3);
  World w(h, {2});
  RolloutStrategy strategy;
  strategy.batch_deadline_ms = 10'000;
  std::vector<Command> out;
  REQUIRE(h.fleet.start_rollout("web", "r-2", "web", 2, strategy, h.now, out));
  w.feed(std::move(out));
  for (int k = 0; k < 200 && h.fleet.rollout("web") != nullptr; ++k) {
    w.step(500);
    CHECK(w.in_rotation() >= 3);
  }
  REQUIRE(h.fleet.rollout("web") == nullptr);
  const auto records = only<PersistRollout>(w.seen);
  CHECK(records.back().rollout.state == RolloutState::RolledBack);
  // A failure that rolls back says so at the failure, then when it is done.
  CHECK(notices(w.seen) == std::vector<NotificationEvent>{NotificationEvent::RolloutStarted,
                                                          NotificationEvent::RolloutFailed,
                                                          NotificationEvent::RolloutRolledBack});
  CHECK(only<NotifyRollout>(w.seen)[1].notice.message.find("not done within") != std::string::npos);
  CHECK(h.fleet.group("web")->launch_configuration_version == 1);
  CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{1, 3}});
  // The v2 instances left; none of them ever went into rotation.
  for (const auto& r : only<LbRegister>(w.seen)) {
    CHECK(h.fleet.instance(r.instance_id) != nullptr);
  }
}

TEST_CASE("fleet rollout: operator actions, a second start refused, unknown version refused", "[rollout][fleet]") {
  Harness h(web_group(2));
  bring_up_v1(h, 2);
  World w(h);
  std::vector<Command> out;
  CHECK_FALSE(h.fleet.start_rollout("web", "r-x", "web", 9, {}, h.now, out));
  CHECK_FALSE(h.fleet.start_rollout("nope", "r-x", "web", 2, {}, h.now, out));
  RolloutStrategy bad;
  bad.batch = Amount{0, false};
  const auto refused = h.fleet.start_rollout("web", "r-x", "web", 2, bad, h.now, out);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().field == "batch");
  CHECK(h.fleet.rollout("web") == nullptr);
  CHECK(h.fleet.group("web")->launch_configuration_version == 1);  // nothing half-applied

  REQUIRE(h.fleet.start_rollout("web", "r-3", "web", 2, {}, h.now, out));
  CHECK_FALSE(h.fleet.start_rollout("web", "r-4", "web", 2, {}, h.now, out));
  auto paused = h.fleet.act_on_rollout("web", Fleet::RolloutAction::Pause, "lunch", h.now, out);
  REQUIRE(paused);
  CHECK(paused->state == RolloutState::Paused);
  CHECK_FALSE(h.fleet.act_on_rollout("web", Fleet::RolloutAction::Pause, "", h.now, out));
  REQUIRE(h.fleet.act_on_rollout("web", Fleet::RolloutAction::Resume, "", h.now, out));
  auto cancelled = h.fleet.act_on_rollout("web", Fleet::RolloutAction::Cancel, "", h.now, out);
  REQUIRE(cancelled);
  CHECK(cancelled->state == RolloutState::Cancelled);
  CHECK(h.fleet.rollout("web") == nullptr);
  CHECK_FALSE(h.fleet.act_on_rollout("web", Fleet::RolloutAction::Resume, "", h.now, out));
  // An operator's pause is announced with its reason; a cancel is not an event.
  CHECK(notices(out) ==
        std::vector<NotificationEvent>{NotificationEvent::RolloutStarted, NotificationEvent::RolloutPaused});
  CHECK(only<NotifyRollout>(out)[1].notice.message == "paused by request: lunch");
  w.feed(std::move(out));
  for (int k = 0; k < 20; ++k) w.step(500);
  // Cancelled where it was: the group keeps 2 instances, whatever their versions.
  int live = 0;
  for (const auto& [version, n] : w.versions_in_service()) live += n;
  CHECK(live == 2);
}

TEST_CASE("fleet rollout: scale-in during a rollout removes old instances first; scale-out launches the new version",
          "[rollout][fleet]") {
  Harness h(web_group(6));
  bring_up_v1(h, 6);
  World w(h);
  RolloutStrategy strategy;
  strategy.pause_after_first_batch = true;
  std::vector<Command> out;
  REQUIRE(h.fleet.start_rollout("web", "r-5", "web", 2, strategy, h.now, out));
  w.feed(std::move(out));
  for (int k = 0; k < 100 && h.fleet.rollout("web")->state != RolloutState::Paused; ++k) w.step(500);
  REQUIRE(h.fleet.rollout("web")->state == RolloutState::Paused);
  CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{1, 4}, {2, 2}});

  REQUIRE(h.fleet.set_desired("web", 3, "test", h.now, out));
  w.feed(std::move(out));
  for (int k = 0; k < 20; ++k) w.step(500);
  CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{1, 1}, {2, 2}});

  REQUIRE(h.fleet.set_desired("web", 5, "test", h.now, out));
  w.feed(std::move(out));
  for (int k = 0; k < 20; ++k) w.step(500);
  CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{1, 1}, {2, 4}});

  REQUIRE(h.fleet.act_on_rollout("web", Fleet::RolloutAction::Resume, "", h.now, out));
  w.feed(std::move(out));
  for (int k = 0; k < 100 && h.fleet.rollout("web") != nullptr; ++k) w.step(500);
  CHECK(h.fleet.rollout("web") == nullptr);
  CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{2, 5}});
}

TEST_CASE("fleet rollout: a cancel during a rollback leaves the group launching the old version", "[rollout][fleet]") {
  Harness h(web_group(4));
  bring_up_v1(h, 4);
  World w(h);
  RolloutStrategy strategy;
  strategy.pause_after_first_batch = true;
  std::vector<Command> out;
  REQUIRE(h.fleet.start_rollout("web", "r-6", "web", 2, strategy, h.now, out));
  w.feed(std::move(out));
  for (int k = 0; k < 100 && h.fleet.rollout("web")->state != RolloutState::Paused; ++k) w.step(500);
  REQUIRE(h.fleet.rollout("web")->state == RolloutState::Paused);
  CHECK(h.fleet.group("web")->launch_configuration_version == 2);

  REQUIRE(h.fleet.act_on_rollout("web", Fleet::RolloutAction::Rollback, "bad numbers", h.now, out));
  CHECK(h.fleet.group("web")->launch_configuration_version == 1);
  const auto cancelled = h.fleet.act_on_rollout("web", Fleet::RolloutAction::Cancel, "", h.now, out);
  REQUIRE(cancelled);
  CHECK(cancelled->state == RolloutState::Cancelled);
  CHECK(h.fleet.group("web")->launch_configuration_version == 1);
  w.feed(std::move(out));
  for (int k = 0; k < 20; ++k) w.step(500);
  CHECK(h.fleet.group("web")->launch_configuration_version == 1);
  // Stopped where it was: 4 instances, whatever their versions.
  int live = 0;
  for (const auto& [version, n] : w.versions_in_service()) live += n;
  CHECK(live == 4);
}

TEST_CASE("fleet rollout: health replacements during a rollout launch the new version and do not fail it",
          "[rollout][fleet]") {
  Harness h(web_group(4));
  bring_up_v1(h, 4);
  World w(h);
  RolloutStrategy strategy;
  strategy.batch = Amount{1, false};
  strategy.pause_after_first_batch = true;
  std::vector<Command> out;
  REQUIRE(h.fleet.start_rollout("web", "r-7", "web", 2, strategy, h.now, out));
  w.feed(std::move(out));
  for (int k = 0; k < 100 && h.fleet.rollout("web")->state != RolloutState::Paused; ++k) w.step(500);
  REQUIRE(h.fleet.rollout("web")->state == RolloutState::Paused);
  REQUIRE(w.versions_in_service() == std::map<std::uint32_t, int>{{1, 3}, {2, 1}});

  // An old instance and the new one (which served its bake time) fail their
  // health checks: both are replaced, by the version the group launches now.
  std::string old_sick;
  std::string new_sick;
  for (const Instance* i : h.fleet.instances_of("web")) {
    if (i->state != LifecycleState::InService) continue;
    if (i->launch_configuration_version == 1 && old_sick.empty()) old_sick = i->id;
    if (i->launch_configuration_version == 2 && new_sick.empty()) new_sick = i->id;
  }
  w.sick = {old_sick, new_sick};
  for (int k = 0; k < 60; ++k) w.step(500);
  CHECK(h.fleet.instance(old_sick) == nullptr);
  CHECK(h.fleet.instance(new_sick) == nullptr);
  REQUIRE(h.fleet.rollout("web") != nullptr);
  CHECK(h.fleet.rollout("web")->state == RolloutState::Paused);  // not failed: those were health replacements
  CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{1, 2}, {2, 2}});

  REQUIRE(h.fleet.act_on_rollout("web", Fleet::RolloutAction::Resume, "", h.now, out));
  w.feed(std::move(out));
  for (int k = 0; k < 200 && h.fleet.rollout("web") != nullptr; ++k) w.step(500);
  CHECK(h.fleet.rollout("web") == nullptr);
  CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{2, 4}});
  const auto records = only<PersistRollout>(w.seen);
  CHECK(records.back().rollout.state == RolloutState::Succeeded);
}

TEST_CASE("fleet rollout: a restart in the middle resumes from the stored record", "[rollout][fleet]") {
  for (int cut = 1; cut <= 12; ++cut) {
    CAPTURE(cut);
    Harness h(web_group(4));
  bring_up_v1(h, 4);
    World w(h);
    std::vector<Command> out;
    REQUIRE(h.fleet.start_rollout("web", "r-6", "web", 2, {}, h.now, out));
    w.feed(std::move(out));
    for (int k = 0; k < cut; ++k) w.step(500);

    // What the store holds: the latest rows of everything.
    RestoreInput input;
    input.launch_configurations = {web_config(), web_v2()};
    input.groups = {*h.fleet.group("web")};
    for (const Instance* i : h.fleet.instances_of("web")) {
      input.instances.push_back(*i);
      input.provider.push_back(ProviderInstance{i->provider_id, i->idempotency_key, i->id, true, i->address, i->port});
      if (i->runtime.in_lb) input.lb.push_back(LbMember{"be_web", i->id, true});
    }
    const auto records = only<PersistRollout>(w.seen);
    REQUIRE_FALSE(records.empty());
    if (!is_terminal(records.back().rollout.state)) input.rollouts.push_back(records.back().rollout);

    Fleet restored(deterministic_deps(99));
    std::vector<Command> restored_out;
    restored.restore(input, h.now, restored_out);
    // The restored fleet goes on: agents say HELLO again and report.
    std::vector<Command> pending = std::move(restored_out);
    TimeMs now = h.now;
    int address = 100;
    std::set<std::string> hello_said;
    for (int k = 0; k < 200 && restored.rollout("web") != nullptr; ++k) {
      std::vector<Command> next;
      for (const Command& c : pending) {
        if (const auto* launch = std::get_if<Launch>(&c)) {
          restored.handle(LaunchSucceeded{launch->instance_id, "pid-" + launch->instance_id,
                                          "127.0.3." + std::to_string(address++), 8080},
                          now, next);
          restored.handle(AgentHello{launch->instance_id, "key-" + launch->instance_id, {}, 0}, now, next);
          hello_said.insert(launch->instance_id);
        } else if (const auto* drain = std::get_if<LbDrain>(&c)) {
          restored.handle(LbDrained{drain->instance_id}, now, next);
        } else if (const auto* terminate = std::get_if<Terminate>(&c)) {
          restored.handle(TerminateCompleted{terminate->instance_id}, now, next);
        }
      }
      now += 500;
      for (const Instance* i : restored.instances_of("web")) {
        if (i->state == LifecycleState::Pending) continue;
        if (hello_said.insert(i->id).second) restored.handle(AgentHello{i->id, i->agent_key, {}, 0}, now, next);
        restored.handle(AgentReport{i->id, true, true, {}, false}, now, next);
      }
      restored.handle(Tick{}, now, next);
      pending = std::move(next);
    }
    CHECK(restored.rollout("web") == nullptr);
    std::map<std::uint32_t, int> versions;
    for (const Instance* i : restored.instances_of("web")) {
      if (i->state == LifecycleState::InService) ++versions[i->launch_configuration_version];
    }
    CHECK(versions == std::map<std::uint32_t, int>{{2, 4}});
  }
}

TEST_CASE("fleet rollout: the canary is judged on the load balancer's figures; 20 % errors roll it back",
          "[rollout][fleet]") {
  for (const bool bad : {false, true}) {
    CAPTURE(bad);
    Harness h(web_group(4));
    bring_up_v1(h, 4);
    World w(h);
    RolloutStrategy strategy;
    strategy.canary.count = 1;
    strategy.canary.bake_ms = 5'000;
    strategy.canary.min_requests = 50;
    std::vector<Command> out;
    REQUIRE(h.fleet.start_rollout("web", "r-c", "web", 2, strategy, h.now, out));
    w.feed(std::move(out));
    // Every server answers 100 requests per step; v2 answers 20 % of them
    // with a 5xx when `bad`. HAProxy reloads once in the middle (counters
    // start again from 0).
    std::map<std::string, TrafficFigures> counters;
    std::optional<std::pair<TrafficFigures, TrafficFigures>> seen_figures;
    for (int k = 0; k < 200 && h.fleet.rollout("web") != nullptr; ++k) {
      LbTrafficSample sample;
      for (const Instance* i : h.fleet.instances_of("web")) {
        if (!i->runtime.in_lb) continue;
        TrafficFigures& c = k == 20 ? (counters[i->id] = TrafficFigures{}) : counters[i->id];
        c.requests += 100;
        if (bad && i->launch_configuration_version == 2) c.errors_5xx += 20;
        c.mean_response_ms = 12.0;
        sample.servers.push_back(InstanceTraffic{i->id, c});
      }
      std::vector<Command> more;
      h.fleet.handle(sample, h.now, more);
      w.feed(std::move(more));
      if (auto f = h.fleet.canary_figures("web")) seen_figures = f;
      w.step(500);
    }
    REQUIRE(h.fleet.rollout("web") == nullptr);
    const auto records = only<PersistRollout>(w.seen);
    REQUIRE(seen_figures.has_value());
    CHECK(seen_figures->first.requests > 0);
    CHECK(seen_figures->second.requests > 0);
    if (bad) {
      CHECK(records.back().rollout.state == RolloutState::RolledBack);
      CHECK(records.back().rollout.reason.find("the canary failed") != std::string::npos);
      CHECK(records.back().rollout.reason.find("20.00% errors") != std::string::npos);
      CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{1, 4}});
    } else {
      CHECK(records.back().rollout.state == RolloutState::Succeeded);
      CHECK(w.versions_in_service() == std::map<std::uint32_t, int>{{2, 4}});
    }
  }
}
