// The rollout planner (coordinator/core/rollout.hpp) on a fake clock: the
// amount arithmetic, validation, the canary verdict, and a seeded simulation
// of a group (launches that take a random time to become ready, drains that
// take time, a reconciler that launches the target version and scales in old
// instances first) checking the invariants after every step at sizes 1..20.
#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/core/rollout.hpp"

using namespace tide::coordinator;

namespace {

Amount count(std::uint32_t n) { return Amount{n, false}; }
Amount pct(std::uint32_t n) { return Amount{n, true}; }

// A group the way the fleet runs it, reduced to what a rollout touches.
struct SimGroup {
  struct Inst {
    std::string id;
    std::uint32_t version = 1;
    enum class S { Starting, Serving, Leaving, Gone } state = S::Starting;
    TimeMs created_ms = 0;
    TimeMs ready_at_ms = 0;    // Starting -> Serving (never for a broken version)
    TimeMs serving_since_ms = 0;
    TimeMs gone_at_ms = 0;     // Leaving -> Gone
    bool protect = false;
  };

  std::mt19937_64 rng;
  std::uint32_t desired = 0;
  std::uint32_t version = 1;  // what a launch runs (the group's launch configuration version)
  std::vector<std::uint32_t> broken_versions;
  std::vector<Inst> insts;
  std::uint64_t next_id = 0;
  TimeMs now = 0;
  TimeMs startup_min_ms = 200;
  TimeMs startup_max_ms = 2'000;
  TimeMs boot_timeout_ms = 5'000;
  std::vector<std::string> failed_new;  // launched instances that failed (for note_target_failure)

  explicit SimGroup(std::uint64_t seed, std::uint32_t size) : rng(seed), desired(size) {
    for (std::uint32_t i = 0; i < size; ++i) {
      launch();
      insts.back().state = Inst::S::Serving;
    }
  }

  void launch() {
    Inst i;
    i.id = "i-" + std::to_string(next_id++);
    i.version = version;
    i.created_ms = now;
    i.ready_at_ms = now + std::uniform_int_distribution<TimeMs>(startup_min_ms, startup_max_ms)(rng);
    insts.push_back(i);
  }

  [[nodiscard]] std::uint32_t counting() const {
    return static_cast<std::uint32_t>(std::count_if(insts.begin(), insts.end(), [](const Inst& i) {
      return i.state == Inst::S::Starting || i.state == Inst::S::Serving;
    }));
  }
  [[nodiscard]] std::uint32_t serving() const {
    return static_cast<std::uint32_t>(
        std::count_if(insts.begin(), insts.end(), [](const Inst& i) { return i.state == Inst::S::Serving; }));
  }

  [[nodiscard]] RolloutView view(std::uint32_t target) const {
    RolloutView v;
    v.desired = desired;
    for (const auto& i : insts) {
      if (i.state == Inst::S::Gone) continue;
      RolloutMember m;
      m.id = i.id;
      m.target = i.version == target;
      m.replaceable = !i.protect;
      m.counting = i.state == Inst::S::Starting || i.state == Inst::S::Serving;
      m.serving = i.state == Inst::S::Serving;
      m.serving_since_ms = i.serving_since_ms;
      m.created_ms = i.created_ms;
      v.members.push_back(m);
    }
    return v;
  }

  Inst* find(const std::string& id) {
    for (auto& i : insts) {
      if (i.id == id) return &i;
    }
    return nullptr;
  }

  void retire(const std::string& id) {
    Inst* i = find(id);
    REQUIRE(i != nullptr);
    REQUIRE((i->state == Inst::S::Starting || i->state == Inst::S::Serving));
    i->state = Inst::S::Leaving;
    i->gone_at_ms = now + 500;
  }

  // The fleet's reconciler: launches up to desired + surge with the group's
  // version; scales in above it, old versions first, then not serving, then
  // the oldest (choose_scale_in's order with the version rule).
  void reconcile(std::uint32_t surge, std::uint32_t target) {
    const std::uint32_t want = desired + surge;
    while (counting() < want) launch();
    while (counting() > want) {
      Inst* pick = nullptr;
      for (auto& i : insts) {
        if (i.state != Inst::S::Starting && i.state != Inst::S::Serving) continue;
        if (i.protect) continue;
        const auto key = [&](const Inst& x) {
          return std::tuple(x.version == target, x.state == Inst::S::Serving, x.created_ms);
        };
        if (pick == nullptr || key(i) < key(*pick)) pick = &i;
      }
      REQUIRE(pick != nullptr);
      pick->state = Inst::S::Leaving;
      pick->gone_at_ms = now + 500;
    }
  }

  void tick(TimeMs step_ms) {
    now += step_ms;
    for (auto& i : insts) {
      const bool broken = std::find(broken_versions.begin(), broken_versions.end(), i.version) != broken_versions.end();
      if (i.state == Inst::S::Starting && !broken && now >= i.ready_at_ms) {
        i.state = Inst::S::Serving;
        i.serving_since_ms = now;
      } else if (i.state == Inst::S::Starting && broken && now - i.created_ms >= boot_timeout_ms) {
        i.state = Inst::S::Gone;  // unhealthy: terminated, the reconciler replaces it
        failed_new.push_back(i.id);
      } else if (i.state == Inst::S::Leaving && now >= i.gone_at_ms) {
        i.state = Inst::S::Gone;
      }
    }
  }
};

struct RunResult {
  RolloutState state = RolloutState::Running;
  TimeMs took_ms = 0;
  std::uint32_t min_serving = UINT32_MAX;
  std::uint32_t max_counting = 0;
  std::vector<RolloutNote::Kind> notes;
};

// Runs the rollout v1 -> v2 until it is terminal or `limit_ms` passes,
// checking the invariants after every step.
RunResult run(SimGroup& g, Rollout& r, TimeMs limit_ms, const std::function<void(Rollout&, TimeMs)>& operator_acts = {}) {
  RunResult out;
  const TimeMs step = 100;
  const TimeMs start = g.now;
  while (!is_terminal(r.state) && g.now - start < limit_ms) {
    if (operator_acts) operator_acts(r, g.now);
    for (const auto& id : g.failed_new) {
      const auto* inst = g.find(id);
      if (inst != nullptr && inst->version == target_version(r)) note_target_failure(r, id, g.now);
    }
    g.failed_new.clear();
    const std::uint32_t target = target_version(r);
    const RolloutView view = g.view(target);
    const std::uint32_t before_serving = g.serving();
    const RolloutDecision d = advance(r, view, g.now);
    g.version = target_version(r);  // the fleet launches the rollout's target
    for (const auto& n : d.notes) out.notes.push_back(n.kind);
    const std::uint32_t floor = std::min(g.desired, resolve_up(r.strategy.min_healthy, g.desired));
    std::uint32_t max_surge = resolve_up(r.strategy.max_surge, g.desired);
    if (max_surge == 0 && floor >= g.desired) max_surge = 1;
    const std::uint32_t allowed = g.desired + std::max(max_surge, r.strategy.canary.count);
    CHECK(d.surge <= std::max(max_surge, r.strategy.canary.count));
    for (const auto& id : d.retire) {
      const auto* inst = g.find(id);
      REQUIRE(inst != nullptr);
      CHECK(inst->version != target);  // only old instances are retired
      CHECK_FALSE(inst->protect);
      g.retire(id);
    }
    // Retiring never takes the serving capacity below the floor (when it was
    // at or above it; a broken version only ever adds non-serving instances).
    if (before_serving >= floor) CHECK(g.serving() >= floor);
    g.reconcile(d.surge, g.version);
    CHECK(g.counting() <= allowed);
    out.min_serving = std::min(out.min_serving, g.serving());
    out.max_counting = std::max(out.max_counting, g.counting());
    g.tick(step);
  }
  out.state = r.state;
  out.took_ms = g.now - start;
  return out;
}

// Runs the rollout with the shell's load-balancer figures for the canary
// (`canary`, and the old version's `baseline`) until it is terminal; calls
// `each` after every step with that step's decision.
void run_with_figures(SimGroup& g, Rollout& r, const TrafficFigures& canary, const TrafficFigures& baseline,
                      const std::function<void(const RolloutDecision&)>& each) {
  while (!is_terminal(r.state) && g.now < 600'000) {
    const auto d = advance(r, g.view(target_version(r)), g.now, std::pair{canary, baseline});
    g.version = target_version(r);
    for (const auto& id : d.retire) g.retire(id);
    g.reconcile(d.surge, g.version);
    each(d);
    g.tick(100);
  }
}

Rollout start(const SimGroup& g, RolloutStrategy strategy) {
  ScalingGroup group;
  group.name = "web";
  group.launch_configuration_id = "app";
  group.launch_configuration_version = 1;
  group.desired = g.desired;
  return new_rollout("r-1", group, "app", 2, std::move(strategy), g.now);
}

}  // namespace

TEST_CASE("amounts: counts and percentages of desired, rounded up", "[rollout]") {
  CHECK(resolve_up(pct(25), 1) == 1);
  CHECK(resolve_up(pct(25), 4) == 1);
  CHECK(resolve_up(pct(25), 5) == 2);
  CHECK(resolve_up(pct(25), 20) == 5);
  CHECK(resolve_up(pct(90), 1) == 1);
  CHECK(resolve_up(pct(90), 10) == 9);
  CHECK(resolve_up(pct(90), 11) == 10);
  CHECK(resolve_up(pct(0), 7) == 0);
  CHECK(resolve_up(pct(100), 7) == 7);
  CHECK(resolve_up(count(3), 7) == 3);
  CHECK(resolve_up(pct(100), 4'000'000'000U) == 4'000'000'000U);  // no overflow
  CHECK(parse_amount("25%") == pct(25));
  CHECK(parse_amount("3") == count(3));
  CHECK(parse_amount("100%") == pct(100));
  CHECK_FALSE(parse_amount("101%"));
  CHECK_FALSE(parse_amount("%"));
  CHECK_FALSE(parse_amount(""));
  CHECK_FALSE(parse_amount("-1"));
  CHECK_FALSE(parse_amount("2.5"));
  CHECK_FALSE(parse_amount("3 "));
  CHECK_FALSE(parse_amount("99999999999"));
  CHECK(to_string(pct(25)) == "25%");
  CHECK(to_string(count(1)) == "1");
}

TEST_CASE("strategies that can never make progress are refused, naming the field", "[rollout]") {
  RolloutStrategy ok;
  CHECK(validate(ok));
  auto refused = [](RolloutStrategy s) {
    auto r = validate(s);
    REQUIRE_FALSE(r);
    CHECK_FALSE(r.error().message.empty());
    return r.error().field;
  };
  RolloutStrategy s;
  s.max_surge = count(0);
  s.min_healthy = pct(100);
  CHECK(refused(s) == "max_surge");
  s = {};
  s.batch = count(0);
  CHECK(refused(s) == "batch");
  s = {};
  s.batch = count(10'001);
  CHECK(refused(s) == "batch");
  s = {};
  s.min_healthy = count(10'001);
  CHECK(refused(s) == "min_healthy");
  s = {};
  s.bake_ms = 700'000;
  CHECK(refused(s) == "batch_deadline_ms");  // the default deadline is 600 s
  s = {};
  s.pause_at_percent = {50, 20};
  CHECK(refused(s) == "pause_at_percent");
  s = {};
  s.pause_at_percent = {100};
  CHECK(refused(s) == "pause_at_percent");
  s = {};
  s.canary.count = 1;
  s.canary.bake_ms = 10;
  CHECK(refused(s) == "canary.bake_ms");
  s = {};
  s.canary.count = 1;
  s.canary.max_latency_ratio = 0.5;
  CHECK(refused(s) == "canary.max_latency_ratio");
  s = {};
  s.max_surge = count(0);
  s.min_healthy = count(5);  // refused only at sizes where it stalls: there it surges by one
  CHECK(validate(s));
}

TEST_CASE("canary verdict: error share and response time against the old version", "[rollout]") {
  CanarySpec spec;
  spec.min_requests = 100;
  spec.max_error_share_increase = 0.01;
  spec.max_latency_ratio = 2.0;
  spec.latency_floor_ms = 20;
  const TrafficFigures baseline{10'000, 10, 0, 30.0};
  CHECK(canary_verdict(spec, {99, 50, 0, 30.0}, baseline).outcome == CanaryVerdict::Outcome::Wait);
  CHECK(canary_verdict(spec, {1'000, 5, 0, 35.0}, baseline).outcome == CanaryVerdict::Outcome::Pass);
  const auto bad = canary_verdict(spec, {1'000, 200, 0, 30.0}, baseline);  // 20 % 5xx
  CHECK(bad.outcome == CanaryVerdict::Outcome::Fail);
  CHECK(bad.reason.find("20.00% errors") != std::string::npos);
  CHECK(canary_verdict(spec, {1'000, 0, 30, 30.0}, baseline).outcome == CanaryVerdict::Outcome::Fail);  // refused connections
  CHECK(canary_verdict(spec, {1'000, 0, 0, 90.0}, baseline).outcome == CanaryVerdict::Outcome::Fail);   // 3x slower
  CHECK(canary_verdict(spec, {1'000, 0, 0, 15.0}, {1'000, 0, 0, 2.0}).outcome ==
        CanaryVerdict::Outcome::Pass);  // slower, but under the floor
  CHECK(canary_verdict(spec, {1'000, 0, 0, 500.0}, {}).outcome == CanaryVerdict::Outcome::Pass);  // nothing to compare
}

TEST_CASE("simulation: every size 1..20 and strategy replaces the whole group within the floor and the surge",
          "[rollout][simulation]") {
  std::uint64_t seed = 1;
  std::size_t runs = 0;
  for (std::uint32_t size = 1; size <= 20; ++size) {
    for (const Amount batch : {count(1), pct(25), pct(50), pct(100), count(3)}) {
      for (const Amount surge : {count(0), count(1), count(2), pct(25)}) {
        for (const Amount floor : {pct(0), pct(50), pct(90), pct(100)}) {
          for (const std::int64_t bake : {std::int64_t{0}, std::int64_t{1'000}}) {
            RolloutStrategy strategy;
            strategy.batch = batch;
            strategy.max_surge = surge;
            strategy.min_healthy = floor;
            strategy.bake_ms = bake;
            strategy.batch_deadline_ms = 60'000;
            if (!validate(strategy)) continue;
            CAPTURE(size, to_string(batch), to_string(surge), to_string(floor), bake, seed);
            SimGroup g(seed++, size);
            Rollout r = start(g, strategy);
            const auto result = run(g, r, 3'600'000);
            REQUIRE(result.state == RolloutState::Succeeded);
            // Every instance runs v2, as many as desired, all serving.
            CHECK(g.counting() == size);
            CHECK(g.serving() == size);
            for (const auto& i : g.insts) {
              if (i.state == SimGroup::Inst::S::Serving) CHECK(i.version == 2);
            }
            CHECK(r.replaced == size);
            // Each batch's time is bounded by a start-up, a bake and the steps around them.
            const std::uint32_t batches = r.batch;
            CHECK(batches <= size);
            CHECK(result.took_ms <= static_cast<TimeMs>(batches) * (g.startup_max_ms + bake + 1'000) * size);
            ++runs;
          }
        }
      }
    }
  }
  CHECK(runs > 1'000);
}

TEST_CASE("a version that never becomes ready: only the first batch is ever retired, deadline, rollback",
          "[rollout][simulation]") {
  for (std::uint32_t size = 1; size <= 12; ++size) {
    for (const Amount floor : {pct(100), pct(50), pct(0)}) {
    CAPTURE(size, to_string(floor));
    SimGroup g(100 + size, size);
    g.broken_versions = {2};
    RolloutStrategy strategy;
    strategy.batch_deadline_ms = 20'000;
    strategy.min_healthy = floor;
    strategy.max_surge = count(1);
    strategy.batch = pct(25);
    Rollout r = start(g, strategy);
    const auto result = run(g, r, 600'000);
    CHECK(result.state == RolloutState::RolledBack);
    // Nothing served by v2; a batch is done only when its new instances
    // serve, so no second batch of old instances ever left.
    const std::uint32_t first_batch = resolve_up(pct(25), size);
    CHECK(result.min_serving >= std::max(resolve_up(floor, size), size - first_batch));
    CHECK(result.min_serving >= size - first_batch);
    CHECK(std::find(result.notes.begin(), result.notes.end(), RolloutNote::Kind::Failed) != result.notes.end());
    CHECK(std::find(result.notes.begin(), result.notes.end(), RolloutNote::Kind::RollbackStarted) !=
          result.notes.end());
    CHECK(g.counting() == size);
    for (const auto& i : g.insts) {
      if (i.state == SimGroup::Inst::S::Serving) CHECK(i.version == 1);
    }
    CHECK(r.reason.find("failed") != std::string::npos);
    }
  }
}

TEST_CASE("on_failure pause and cancel stop where they are; resume and rollback are refused where they mean nothing",
          "[rollout]") {
  SimGroup g(7, 4);
  g.broken_versions = {2};
  RolloutStrategy strategy;
  strategy.batch_deadline_ms = 10'000;
  strategy.on_failure = FailureAction::Pause;
  Rollout r = start(g, strategy);
  (void)run(g, r, 60'000, [](Rollout&, TimeMs) {});
  // run() stops only at a terminal state; a paused rollout runs out the time.
  CHECK(r.state == RolloutState::Paused);
  CHECK(r.reason.find("failed") != std::string::npos);
  CHECK_FALSE(pause(r, "", g.now));
  CHECK(g.serving() == 4);

  // The operator rolls back from the pause.
  REQUIRE(rollback(r, "bad build", g.now));
  CHECK(r.state == RolloutState::RollingBack);
  CHECK_FALSE(rollback(r, "", g.now));
  const auto result = run(g, r, 600'000);
  CHECK(result.state == RolloutState::RolledBack);
  CHECK_FALSE(resume(r, g.now));
  CHECK_FALSE(cancel(r, "", g.now));
  CHECK_FALSE(rollback(r, "", g.now));

  SimGroup g2(8, 4);
  g2.broken_versions = {2};
  strategy.on_failure = FailureAction::Cancel;
  Rollout r2 = start(g2, strategy);
  CHECK(run(g2, r2, 600'000).state == RolloutState::Failed);
  CHECK(g2.serving() == 4);
}

TEST_CASE("pause points: after the first batch, between batches and at percentages; resume goes on", "[rollout]") {
  SECTION("after the first batch") {
    SimGroup g(11, 8);
    RolloutStrategy strategy;
    strategy.batch = pct(25);
    strategy.pause_after_first_batch = true;
    Rollout r = start(g, strategy);
    (void)run(g, r, 30'000);
    REQUIRE(r.state == RolloutState::Paused);
    CHECK(r.batch == 1);
    CHECK(r.replaced == 2);
    CHECK(r.reason == "after the first batch");
    // Paused: nothing moves however long it stays.
    (void)run(g, r, 30'000);
    CHECK(r.replaced == 2);
    REQUIRE(resume(r, g.now));
    CHECK(run(g, r, 600'000).state == RolloutState::Succeeded);
    CHECK(r.batch == 4);
  }
  SECTION("between batches") {
    SimGroup g(12, 4);
    RolloutStrategy strategy;
    strategy.batch = count(2);
    strategy.pause_between_batches = true;
    Rollout r = start(g, strategy);
    int pauses = 0;
    for (int i = 0; i < 10 && !is_terminal(r.state); ++i) {
      (void)run(g, r, 20'000);
      if (r.state == RolloutState::Paused) {
        ++pauses;
        REQUIRE(resume(r, g.now));
      }
    }
    CHECK(r.state == RolloutState::Succeeded);
    CHECK(pauses == 1);  // after batch 1 of 2; the last batch ends the rollout
  }
  SECTION("at 50 %") {
    SimGroup g(13, 10);
    RolloutStrategy strategy;
    strategy.batch = count(2);
    strategy.pause_at_percent = {50};
    Rollout r = start(g, strategy);
    (void)run(g, r, 60'000);
    REQUIRE(r.state == RolloutState::Paused);
    CHECK(r.replaced == 6);  // the first batch boundary at or past 50 %
    REQUIRE(resume(r, g.now));
    CHECK(run(g, r, 600'000).state == RolloutState::Succeeded);
  }
}

TEST_CASE("protected instances are left alone unless asked", "[rollout]") {
  SimGroup g(21, 5);
  g.insts[0].protect = true;
  Rollout r = start(g, RolloutStrategy{});
  CHECK(run(g, r, 600'000).state == RolloutState::Succeeded);
  CHECK(r.replaced == 4);
  CHECK(g.insts[0].state == SimGroup::Inst::S::Serving);
  CHECK(g.insts[0].version == 1);
}

TEST_CASE("desired changes mid-rollout: scale-out launches the new version, scale-in removes old ones first",
          "[rollout][simulation]") {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    CAPTURE(seed);
    SimGroup g(1000 + seed, 6);
    RolloutStrategy strategy;
    strategy.batch = pct(25);
    strategy.bake_ms = 500;
    Rollout r = start(g, strategy);
    std::mt19937_64 rng(seed);
    const auto result = run(g, r, 3'600'000, [&](Rollout&, TimeMs) {
      if (std::uniform_int_distribution<int>(0, 60)(rng) == 0) {
        g.desired = std::uniform_int_distribution<std::uint32_t>(1, 12)(rng);
      }
    });
    REQUIRE(result.state == RolloutState::Succeeded);
    CHECK(g.counting() == g.desired);
    for (const auto& i : g.insts) {
      if (i.state == SimGroup::Inst::S::Serving || i.state == SimGroup::Inst::S::Starting) CHECK(i.version == 2);
    }
  }
}

TEST_CASE("canary: serves beside the old version, passes into the first batch or fails into a rollback",
          "[rollout]") {
  RolloutStrategy strategy;
  strategy.canary.count = 1;
  strategy.canary.bake_ms = 5'000;
  strategy.canary.min_requests = 10;
  strategy.batch = pct(50);

  SECTION("healthy figures: the canary passes and counts as the first replacement") {
    SimGroup g(31, 4);
    Rollout r = start(g, strategy);
    TimeMs canary_started = -1;
    std::uint32_t most = 0;
    // The shell's figures: the canary as good as the old version.
    run_with_figures(g, r, {500, 0, 0, 10.0}, {5'000, 0, 0, 10.0}, [&](const RolloutDecision& d) {
      for (const auto& n : d.notes) {
        if (n.kind == RolloutNote::Kind::CanaryStarted) canary_started = g.now;
      }
      most = std::max(most, g.counting());
    });
    CHECK(r.state == RolloutState::Succeeded);
    CHECK(canary_started == 0);
    CHECK(most == 5);  // 4 + the canary
    CHECK(r.canary.size() == 1);
  }

  SECTION("20 % errors: the canary fails and the group goes back, never below 4 serving") {
    SimGroup g(32, 4);
    Rollout r = start(g, strategy);
    std::uint32_t least = 4;
    TimeMs failed_at = -1;
    run_with_figures(g, r, {500, 100, 0, 10.0}, {5'000, 0, 0, 10.0}, [&](const RolloutDecision& d) {
      for (const auto& n : d.notes) {
        if (n.kind == RolloutNote::Kind::Failed && failed_at < 0) failed_at = g.now;
      }
      least = std::min(least, g.serving());
    });
    CHECK(r.state == RolloutState::RolledBack);
    // Judged worse as soon as it serves (the canary started at 0): it does
    // not wait out its bake time.
    REQUIRE(failed_at >= 0);
    CHECK(failed_at < strategy.canary.bake_ms);
    CHECK(least == 4);
    CHECK(r.reason.find("20.00% errors") != std::string::npos);
    for (const auto& i : g.insts) {
      if (i.state == SimGroup::Inst::S::Serving) CHECK(i.version == 1);
    }
  }

  SECTION("no traffic to judge: passes on readiness and health at the deadline") {
    strategy.batch_deadline_ms = 20'000;
    SimGroup g(33, 2);
    Rollout r = start(g, strategy);
    std::string passed;
    run_with_figures(g, r, {}, {}, [&](const RolloutDecision& d) {
      for (const auto& n : d.notes) {
        if (n.kind == RolloutNote::Kind::CanaryPassed) passed = n.message;
      }
    });
    CHECK(r.state == RolloutState::Succeeded);
    CHECK(passed.find("readiness and health only") != std::string::npos);
  }
}

TEST_CASE("a rollout record copied at any step (a coordinator restart) goes on to the same end", "[rollout]") {
  for (int cut = 0; cut < 400; cut += 7) {
    CAPTURE(cut);
    SimGroup g(41, 7);
    RolloutStrategy strategy;
    strategy.batch = pct(25);
    strategy.bake_ms = 300;
    Rollout r = start(g, strategy);
    for (int i = 0; i < cut && !is_terminal(r.state); ++i) {
      const auto d = advance(r, g.view(target_version(r)), g.now);
      for (const auto& id : d.retire) g.retire(id);
      g.reconcile(d.surge, target_version(r));
      g.tick(100);
    }
    Rollout restored = r;  // what the store gives back: plain data
    CHECK(run(g, restored, 600'000).state == RolloutState::Succeeded);
    CHECK(g.counting() == 7);
  }
}
