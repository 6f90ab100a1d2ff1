// Helpers shared by the coordinator core tests: a group on a fake clock and
// filters over the command stream.
#pragma once

#include <algorithm>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/core/fleet.hpp"

namespace tide::coordinator::test {

inline LaunchConfiguration web_config() {
  LaunchConfiguration c;
  c.id = "web";
  c.version = 1;
  c.command = "python3 -m http.server $PORT";
  c.port = 8080;
  return c;
}

inline ScalingGroup web_group(std::uint32_t desired) {
  ScalingGroup g;
  g.name = "web";
  g.min = 0;
  g.max = 100;
  g.desired = desired;
  g.launch_configuration_id = "web";
  g.lb.backend = "be_web";
  g.health_check_grace_period_ms = 0;
  g.boot_timeout_ms = 60'000;
  g.drain_timeout_ms = 5'000;
  g.liveness_window_ms = 3'000;
  return g;
}

template <class T>
std::vector<T> only(const std::vector<Command>& commands) {
  std::vector<T> result;
  for (const Command& c : commands) {
    if (const T* t = std::get_if<T>(&c)) result.push_back(*t);
  }
  return result;
}

template <class T>
std::ptrdiff_t index_of(const std::vector<Command>& commands, std::size_t nth = 0) {
  for (std::size_t k = 0; k < commands.size(); ++k) {
    if (std::holds_alternative<T>(commands[k]) && nth-- == 0) return static_cast<std::ptrdiff_t>(k);
  }
  return -1;
}

inline std::vector<Activity> activities(const std::vector<Command>& commands, ActivityType type) {
  std::vector<Activity> result;
  for (const Command& c : commands) {
    if (const auto* r = std::get_if<RecordActivity>(&c); r && r->activity.type == type) result.push_back(r->activity);
    if (const auto* u = std::get_if<UpdateActivity>(&c); u && u->activity.type == type) result.push_back(u->activity);
  }
  return result;
}

// A fleet with one group whose instances the test drives by hand.
struct Harness {
  explicit Harness(ScalingGroup group, std::uint64_t seed = 7) : fleet(deterministic_deps(seed)) {
    REQUIRE(fleet.put_launch_configuration(web_config()));
    REQUIRE(fleet.put_group(std::move(group), now, out));
    out.clear();  // tests look at what follows the group's creation
  }

  std::vector<Command> take() { return std::exchange(out, {}); }

  std::vector<Command> on(const Event& e) {
    fleet.handle(e, now, out);
    return take();
  }

  std::vector<std::string> pending() const {
    std::vector<std::string> ids;
    for (const Instance* i : fleet.instances_of("web")) {
      if (i->state == LifecycleState::Pending) ids.push_back(i->id);
    }
    return ids;
  }

  // Every pending instance launches, says HELLO and reports ready.
  void bring_up() {
    int n = 0;
    for (const std::string& id : pending()) {
      ++n;
      on(LaunchSucceeded{id, "pid-" + id, "127.0.1." + std::to_string(n), 8080});
      on(AgentHello{id, "key-" + id, {}, 0});
      on(AgentReport{id, true, true, {}, false});
    }
  }

  std::vector<std::string> in_service() const {
    std::vector<std::string> ids;
    for (const Instance* i : fleet.instances_of("web")) {
      if (i->state == LifecycleState::InService) ids.push_back(i->id);
    }
    return ids;
  }

  // Advances the fake clock, keeping the given agents alive with reports.
  void advance(TimeMs ms, const std::vector<std::string>& alive) {
    now += ms;
    for (const std::string& id : alive) {
      const Instance* i = fleet.instance(id);
      if (i != nullptr) fleet.handle(AgentReport{id, i->runtime.ready.value_or(true), true, {}, false}, now, out);
    }
  }

  TimeMs now = 1'700'000'000'000;
  Fleet fleet;
  std::vector<Command> out;
};

}  // namespace tide::coordinator::test
