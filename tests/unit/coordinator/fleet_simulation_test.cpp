// Deterministic simulation of the coordinator's fault paths, in the manner of
// chrony's test/simulation: the REAL decision core (Fleet) runs against
// simulated parts on one fake clock, and invariants are checked after every
// step.
//
// The simulated world:
// - a provider that launches after random delays (sometimes slowly, sometimes
//   failing), gives each instance an address from a small loopback pool (so
//   addresses are reused), runs an application (alive; ready some time after
//   start) and an agent beside it, reports an application's exit
//   (InstanceVanished) after a short delay when it watches it (the local
//   provider does), and answers a periodic provider check with what it runs;
// - agents that say HELLO after the launch, REPORT every ~1 s (+-10 %) and at
//   once when their probe sees readiness or health change, follow
//   DRAIN/UNDRAIN, lose (at most two in a row) and duplicate REPORTs, and
//   reconnect after a coordinator restart (ERROR 410 / back-off);
// - a gateway that drops stale or duplicate REPORTs (SPEC 7.1) and declares
//   an agent lost after 3 s without a message (SPEC 7.2);
// - a load balancer with the semantics of coordinator/io/haproxy/driver.hpp
//   (register takes another member at the same endpoint out first; drain
//   answers LbDrained after a while, also for a slot it does not know; remove
//   frees the slot at once); HAProxy keeps its slots across coordinator
//   crashes and the restarted shell adopts them by endpoint, as
//   Server::adopt_lb_members and Driver::adopt_members do;
// - a store that keeps every Persist*/RecordActivity/UpdateActivity row, so a
//   coordinator crash (also in the middle of a command batch) restarts with
//   Fleet::restore(store, provider list, adopted LB members);
// - faults: application crash (agent alive, or seen by the provider), a spell
//   of not-ready, an agent that drains on its own, agent crash (restarted or
//   not), a whole instance dying, coordinator crash and restart, provider
//   failures and slowness, lost and duplicated REPORTs, an LB without a free
//   slot; user requests: set_desired, terminate and detach with and without
//   decrement, set_protected; one or two groups of 1, 2, 3, 4 or 10.
//
// A run is `steps` random actions with 50 ms..1 s of simulated time after
// each, then the faults stop (and dead agents are restarted: monitoring is
// repaired) and the fleet must converge.
//
// Invariants (see check() and converged() for the exact code):
//   I1a  a slot in rotation never sends traffic to an instance other than the
//        one it was registered for (the provider reused the address);
//   I1b  a slot in rotation belongs to an instance whose last delivered
//        REPORT was ready, healthy and not draining (after a restart: the last
//        one before the crash, until it reports again);
//   I1c  while the coordinator is up, a slot in rotation is one the core
//        believes in rotation (Instance::runtime.in_lb);
//   I2a  a dead application leaves rotation at once (kRevealedBoundMs) when
//        its agent's report of it is delivered;
//   I2b  a dead application leaves rotation within kDeadBoundMs of its death
//        or of the coordinator's (re)start, whichever is later;
//   I3   once faults stop, every group converges within kConvergeBoundMs:
//        desired instances, each serving (in service, in rotation, its
//        application alive and ready) or protected and unhealthy, and nothing
//        else (no launch, drain or termination pending);
//   I4   no two live fleet instances share a provider id or an idempotency
//        key; no two slots (in rotation or draining) point at one endpoint;
//        at the end every instance the provider runs belongs to the fleet, is
//        being terminated, or was detached;
//   I5   tide never terminates an instance it detached (it belongs to the
//        user);
//   I6   the agent of every process tide launched for a live fleet instance
//        can enroll (its HELLO is never refused);
//   and Fleet::audit() is empty after every step.
//
// The eight core bugs it found (a use after free and a stray termination of
// a detached server in restore, adopted LB slots of pending instances left
// in rotation or never released, a relaunch that kept the lost agent's key,
// a drain forgotten across a crash, and two ways the replacement limit
// stalled replacing) are fixed; each one's minimal sequence is a regression
// case at the end.
//
// TIDE_SIM_SEED=<n> replays one seed and prints every event and command;
// TIDE_SIM_SEEDS, TIDE_SIM_FIRST and TIDE_SIM_STEPS change which seeds and how
// many steps the cases below run; "[simulation-long]" runs 20,000 seeds x 500
// steps.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "tests/unit/coordinator/fleet_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;

namespace {

// ---- timing of the simulated parts (ms) -------------------------------------

constexpr TimeMs kStart = 1'700'000'000'000;
constexpr TimeMs kTickMs = 250;             // the shell's tick_interval_ms
constexpr TimeMs kGatewaySweepMs = 100;     // the gateway checks liveness this often
constexpr TimeMs kAgentLivenessMs = 3'000;  // 3 report intervals without a message: AgentLost
constexpr TimeMs kProviderCheckMs = 5'000;  // provider.check_interval_ms
constexpr TimeMs kLbReconcileMs = 5'000;    // load_balancer.reconcile_interval_ms
constexpr TimeMs kReportMs = 1'000;         // report_interval_ms (+-10 % jitter)
constexpr TimeMs kProbeStartupMs = 100;     // agent probes until first ready
constexpr TimeMs kProbeMs = 1'000;          // then
constexpr TimeMs kBackoffCapMs = 5'000;     // agent reconnect back-off cap (SPEC 7.2)
constexpr TimeMs kWelcomeTimeoutMs = 3'000;
constexpr int kMaxLostInRow = 2;  // REPORT losses come in bursts of at most two

// ---- bounds of the invariants ----------------------------------------------

// I2a: the core acts on the report that reveals a dead application in the
// same step; 100 ms is THE RULE's latency target (DESIGN.md).
constexpr TimeMs kRevealedBoundMs = 100;
// I2b, counted from the application's death or the current coordinator's
// start, whichever is later. The slowest path that must still take a dead
// application out of rotation:
//  - its agent is alive: the probe sees it within kProbeMs (1 s) and reports
//    at once; with at most two REPORTs lost in a row (2 x 1.1 s) the
//    report is delivered within 3.2 s, else the gateway declares the agent
//    lost (3 s) and its next REPORT (ERROR 410, HELLO, REPORT) follows within
//    1.1 s; after a restart an agent in back-off says HELLO within the cap
//    (5 s) and its first REPORT says what is true: <= 5 s + 2 x 1.1 s;
//  - the provider saw it end (its agent died with it): the exit report
//    (<= 300 ms), or the provider check every kProviderCheckMs (5 s) — this
//    one never depends on fail-static;
// so 7.2 s plus one tick and delivery slack: 8 s.
constexpr TimeMs kDeadBoundMs = 8'000;
// I3: from the end of the faults (a coordinator may still be down for up to
// 8 s, launch back-off is capped at 8 s, boot/drain timeouts are <= 20 s).
constexpr TimeMs kConvergeBoundMs = 120'000;

// ---- a tiny deterministic random source -------------------------------------

class Random {
 public:
  explicit Random(std::uint64_t seed) : m_engine(seed) {}
  // Uniform in [lo, hi].
  TimeMs between(TimeMs lo, TimeMs hi) {
    return lo + static_cast<TimeMs>(m_engine() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  // True with probability per_mille / 1000.
  bool chance(std::uint64_t per_mille) { return m_engine() % 1000 < per_mille; }
  std::size_t index(std::size_t n) { return static_cast<std::size_t>(m_engine() % n); }

 private:
  std::mt19937_64 m_engine;
};

// ---- describing events and commands (the replay trace) -----------------------

std::string describe(const Event& event) {
  std::ostringstream s;
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, AgentHello>) {
          s << "AgentHello " << e.instance_id << ' ' << e.address << ':' << e.port;
        } else if constexpr (std::is_same_v<T, AgentReport>) {
          s << "AgentReport " << e.instance_id << " ready=" << e.ready << " healthy=" << e.healthy
            << " draining=" << e.draining;
        } else if constexpr (std::is_same_v<T, AgentLost>) {
          s << "AgentLost " << e.instance_id << " (" << e.reason << ')';
        } else if constexpr (std::is_same_v<T, LaunchSucceeded>) {
          s << "LaunchSucceeded " << e.instance_id << ' ' << e.provider_id << ' ' << e.address
            << ':' << e.port;
        } else if constexpr (std::is_same_v<T, LaunchFailed>) {
          s << "LaunchFailed " << e.instance_id << " (" << e.message << ')';
        } else if constexpr (std::is_same_v<T, TerminateCompleted>) {
          s << "TerminateCompleted " << e.instance_id;
        } else if constexpr (std::is_same_v<T, InstanceVanished>) {
          s << "InstanceVanished " << e.instance_id << " (" << e.message << ')';
        } else if constexpr (std::is_same_v<T, LbDrained>) {
          s << "LbDrained " << e.instance_id;
        } else if constexpr (std::is_same_v<T, LbRegisterFailed>) {
          s << "LbRegisterFailed " << e.instance_id << " (" << e.message << ')';
        } else if constexpr (std::is_same_v<T, Tick>) {
          s << "Tick";
        }
      },
      event);
  return s.str();
}

std::string describe(const Command& command) {
  std::ostringstream s;
  std::visit(
      [&](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, PersistInstance>) {
          const Instance& i = c.instance;
          s << "PersistInstance " << i.id << ' ' << i.group << ' ' << to_string(i.state) << ' '
            << to_string(i.health) << " exit=" << to_string(i.exit_reason)
            << (i.protected_from_scale_in ? " protected" : "") << " pid=" << i.provider_id << ' '
            << i.address << ':' << i.port;
        } else if constexpr (std::is_same_v<T, PersistGroup>) {
          s << "PersistGroup " << c.group.name << ' ' << c.group.min << '/' << c.group.desired
            << '/' << c.group.max;
        } else if constexpr (std::is_same_v<T, RecordActivity>) {
          s << "RecordActivity " << to_string(c.activity.type) << ' '
            << to_string(c.activity.status) << " [" << c.activity.cause << ']';
        } else if constexpr (std::is_same_v<T, UpdateActivity>) {
          s << "UpdateActivity " << to_string(c.activity.type) << ' '
            << to_string(c.activity.status);
        } else if constexpr (std::is_same_v<T, Launch>) {
          s << "Launch " << c.instance_id << ' ' << c.group << " key=" << c.idempotency_key;
        } else if constexpr (std::is_same_v<T, Terminate>) {
          s << "Terminate " << c.instance_id << " pid=" << c.provider_id
            << " key=" << c.idempotency_key;
        } else if constexpr (std::is_same_v<T, LbRegister>) {
          s << "LbRegister " << c.backend << ' ' << c.instance_id << ' ' << c.address << ':'
            << c.port;
        } else if constexpr (std::is_same_v<T, LbDrain>) {
          s << "LbDrain " << c.backend << ' ' << c.instance_id;
        } else if constexpr (std::is_same_v<T, LbRemove>) {
          s << "LbRemove " << c.backend << ' ' << c.instance_id;
        } else if constexpr (std::is_same_v<T, SendDrain>) {
          s << "SendDrain " << c.instance_id;
        } else if constexpr (std::is_same_v<T, SendUndrain>) {
          s << "SendUndrain " << c.instance_id;
        } else if constexpr (std::is_same_v<T, SetAgentAccess>) {
          s << "SetAgentAccess " << c.instance_id << (c.revoke ? " revoke" : "")
            << (c.enrollment_open ? " open" : "");
        } else if constexpr (std::is_same_v<T, RunHook>) {
          s << "RunHook " << c.instance_id << ' ' << c.script;
        } else if constexpr (std::is_same_v<T, NotifyHookTimeout>) {
          s << "NotifyHookTimeout " << c.timeout.instance_id;
        }
      },
      command);
  return s.str();
}

// ---- the simulation ------------------------------------------------------------

struct Options {
  std::uint64_t seed = 1;
  int steps = 200;       // fault-phase steps (one random action, then time passes)
  bool verbose = false;  // print every event and command
};

// One violated invariant.
struct Violation {
  std::string invariant;  // "I1a", "I2b", ...
  std::string detail;
  TimeMs at_ms = 0;
  int step = 0;
};

// A slot of a backend (HAProxy's view; survives coordinator crashes).
enum class SlotState : std::uint8_t { Maint, Ready, Drain };

struct Slot {
  std::string instance_id;  // the driver's idea of whose slot it is
  std::string address;      // kept in maint, as HAProxy does
  std::uint16_t port = 0;
  SlotState state = SlotState::Maint;
};

// The driver's memory of one backend (lost when the coordinator crashes).
struct Wanted {
  std::string address;
  std::uint16_t port = 0;
  bool in_rotation = true;
};

struct DrainOp {
  std::string instance_id;
  std::uint64_t op = 0;
  int answers = 1;                          // LbDrained answers owed when the drain ends
  std::optional<LbRegister> then_register;  // a register queued behind the drain
};

struct Backend {
  std::string name;
  std::vector<Slot> slots;
  std::map<std::string, Wanted> wanted;
  std::map<std::string, std::size_t> assignment;  // instance id -> slot index
  std::map<std::size_t, DrainOp> drains;          // slot -> running drain
};

// One instance the provider started (an instance id relaunched under the same
// idempotency key is a new SimInstance).
struct SimInstance {
  int sid = 0;
  std::string fleet_id;
  std::string group;
  std::string key;  // idempotency key
  std::string provider_id;
  std::string token;      // enrollment token from the Launch
  std::string agent_key;  // persisted keypair: the same across agent restarts
  std::size_t addr = 0;   // index into the address pool
  std::uint16_t port = 8080;
  bool running = true;  // the provider runs it (not gone)
  TimeMs gone_ms = -1;
  bool gone_reported = false;  // a coordinator was told it is gone: its address may be reused
  bool terminate_requested = false;
  bool user_owned = false;  // detached: the user's now
  bool refused_reported = false;
  TimeMs launch_answer_ms = 0;  // when the provider's answer reaches the coordinator
  // The application.
  bool app_alive = true;
  TimeMs app_dead_ms = -1;
  TimeMs ready_at_ms = 0;
  TimeMs unready_until_ms = 0;
  TimeMs unready_from_ms = 0;
  // The agent.
  bool agent_alive = true;
  std::uint32_t gen = 0;   // bumped when the agent dies or restarts (its timers die with it)
  bool connected = false;  // the agent believes it has a session
  bool first_ready = false;
  bool seen_ready = false;
  bool seen_healthy = true;
  bool draining = false;
  std::uint64_t seq = 0;
  int lost_in_row = 0;
  std::uint32_t backoff = 0;
  std::uint64_t hello = 0;  // the live HELLO attempt (AgentTimer::hello)
  std::uint64_t link = 0;   // the agent's current connection
  TimeMs link_free_ms = 0;  // FIFO delivery on the agent's connection

  [[nodiscard]] bool app_ready(TimeMs now) const {
    return running && app_alive && now >= ready_at_ms && now >= unready_until_ms;
  }
  [[nodiscard]] bool app_serving() const { return running && app_alive; }
};

// What was delivered to a coordinator about one fleet instance.
struct Seen {
  std::optional<AgentReport> last_report;
  // The first delivered report whose probe saw the application dead, and the
  // coordinator's life it reached.
  TimeMs revealed_ms = -1;
  std::uint64_t revealed_life = 0;
};

struct Session {
  TimeMs last_heard_ms = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t link = 0;  // the connection that said HELLO
};

// Queue items.
struct ToCore {
  std::uint64_t life = 0;
  Event event;
};
struct FromAgent {
  int sid = 0;
  bool hello = false;
  AgentReport report;
  std::uint64_t seq = 0;
  std::uint64_t link = 0;  // the agent's connection (a new one per HELLO)
};
enum class AgentMsg : std::uint8_t { Welcome, Refused, UnknownSession, Drain, Undrain };
struct ToAgent {
  int sid = 0;
  std::uint32_t gen = 0;
  AgentMsg msg = AgentMsg::Welcome;
};
enum class AgentTimerKind : std::uint8_t { Probe, Report, Hello, CoordinatorLost };
struct AgentTimer {
  int sid = 0;
  std::uint32_t gen = 0;
  AgentTimerKind kind = AgentTimerKind::Probe;
  std::uint64_t hello = 0;  // Hello: only the latest scheduled attempt is live
};
enum class CoreTimerKind : std::uint8_t {
  Tick,
  GatewaySweep,
  ProviderCheck,
  LbReconcile,
  CrashDeadline
};
struct CoreTimer {
  std::uint64_t life = 0;
  CoreTimerKind kind = CoreTimerKind::Tick;
};
struct Restart {};
struct DrainDone {
  std::size_t backend = 0;
  std::size_t slot = 0;
  std::uint64_t op = 0;
};
enum class WorldKind : std::uint8_t { AppRecover, AgentRestart, UserShutdown, Kill, ExitReport };
struct WorldEvent {
  int sid = 0;
  WorldKind kind = WorldKind::AppRecover;
  // Kill: the coordinator whose Terminate it answers; ExitReport: the one the
  // provider reports to.
  std::uint64_t life = 0;
};
using What =
    std::variant<ToCore, FromAgent, ToAgent, AgentTimer, CoreTimer, Restart, DrainDone, WorldEvent>;

struct Item {
  TimeMs at = 0;
  std::uint64_t seq = 0;
  What what;
};
struct Later {
  bool operator()(const Item& a, const Item& b) const {
    return std::tie(a.at, a.seq) > std::tie(b.at, b.seq);
  }
};

class Simulation {
 public:
  explicit Simulation(Options options)
      : m_opt(std::move(options)),
        m_plan(m_opt.seed * 4 + 0),
        m_net(m_opt.seed * 4 + 1),
        m_prov(m_opt.seed * 4 + 2),
        m_agents(m_opt.seed * 4 + 3) {}

  // Runs the fault phase and the convergence phase; returns the violations
  // (empty: every invariant held).
  std::vector<Violation> run() {
    setup();
    for (m_step = 1; m_step <= m_opt.steps && !stopped(); ++m_step) {
      act();
      check();
      advance_to(m_now + m_plan.between(50, 1'000));
    }
    quiesce();
    return m_violations;
  }

  [[nodiscard]] std::uint64_t events() const { return m_events; }
  [[nodiscard]] const std::map<std::string, int>& counts() const { return m_counts; }
  [[nodiscard]] const std::map<std::string, TimeMs>& maxima() const { return m_max; }

 private:
  // ---- setup -------------------------------------------------------------------

  void setup() {
    const std::uint32_t sizes[] = {1, 2, 3, 4, 10};
    const std::size_t groups = 1 + m_plan.index(2);
    std::uint32_t pool = 0;
    for (std::size_t k = 0; k < groups; ++k) {
      ScalingGroup g = web_group(sizes[m_plan.index(5)]);
      g.name = "g" + std::to_string(k);
      g.lb.backend = "be_g" + std::to_string(k);
      g.min = m_plan.chance(300) ? 0 : g.desired / 2;
      g.max = g.desired + static_cast<std::uint32_t>(m_plan.index(3));
      g.termination_policy = m_plan.chance(500) ? TerminationPolicy::OldestInstance
                                                : TerminationPolicy::NewestInstance;
      g.health_check_grace_period_ms = m_plan.chance(250) ? 2'000 : 0;
      g.boot_timeout_ms = 20'000;
      g.drain_timeout_ms = m_plan.chance(500) ? 1'000 : 5'000;
      const TimeMs windows[] = {3'000, 5'000, 10'000};
      g.liveness_window_ms = windows[m_plan.index(3)];
      g.retry.immediate_retries = 2;
      g.retry.initial_backoff_ms = 500;
      g.retry.max_backoff_ms = 8'000;
      g.replacement_rate = m_plan.chance(700) ? 0.1 : 0.5;
      m_group_cfg.push_back(g);
      Backend b;
      b.name = g.lb.backend;
      // Mostly room to spare; sometimes just enough for max, so that a
      // register finds no free slot (LbRegisterFailed) while others drain.
      b.slots.resize(m_plan.chance(200) ? g.max : g.max + replacement_limit(g) + 3);
      m_backends.push_back(std::move(b));
      pool += g.max + replacement_limit(g);
    }
    // Small: addresses are reused as soon as the provider may.
    pool += 2 + static_cast<std::uint32_t>(m_plan.index(3));
    for (std::uint32_t n = 1; n <= pool; ++n) {
      m_pool.push_back(Address{"127.0.1." + std::to_string(n), -1});
      m_pool_index.emplace(m_pool.back().ip, m_pool.size() - 1);
    }
    m_visible_exit_per_mille = std::array<std::uint64_t, 3>{0, 500, 1000}[m_plan.index(3)];
    if (m_opt.verbose) {
      std::cout << "seed " << m_opt.seed << ": " << groups << " group(s), " << pool
                << " addresses, provider sees " << m_visible_exit_per_mille / 10
                << " % of application exits\n";
      for (std::size_t k = 0; k < m_group_cfg.size(); ++k) {
        const ScalingGroup& g = m_group_cfg[k];
        std::cout << "  " << g.name << " min " << g.min << " desired " << g.desired << " max "
                  << g.max << " grace " << g.health_check_grace_period_ms << " drain "
                  << g.drain_timeout_ms << " liveness window " << g.liveness_window_ms
                  << " replacement rate " << g.replacement_rate << " slots "
                  << m_backends[k].slots.size() << '\n';
      }
    }
    start_life();
    std::vector<Command> out;
    REQUIRE(m_fleet->put_launch_configuration(web_config()));
    for (const ScalingGroup& g : m_group_cfg) REQUIRE(m_fleet->put_group(g, m_now, out));
    execute(std::move(out), "setup");
  }

  // ---- the clock -------------------------------------------------------------------

  void at(TimeMs when, What what) { m_queue.push(Item{when, ++m_seq, std::move(what)}); }

  void advance_to(TimeMs until) {
    while (!m_queue.empty() && m_queue.top().at <= until && !stopped()) {
      Item item = m_queue.top();
      m_queue.pop();
      m_now = item.at;
      ++m_events;
      std::visit([&](auto& w) { on(w); }, item.what);
      check();
    }
    m_now = std::max(m_now, until);
  }

  [[nodiscard]] bool stopped() const { return !m_violations.empty(); }

  void trace(const std::string& line) {
    if (m_opt.verbose) std::cout << "t=" << (m_now - kStart) << " " << line << '\n';
  }

  // ---- the coordinator ----------------------------------------------------------------

  void start_life() {
    ++m_life;
    m_up = true;
    m_life_start = m_now;
    m_fleet = std::make_unique<Fleet>(deterministic_deps(m_opt.seed * 1'000 + m_life));
    m_sessions.clear();
    at(m_now + kTickMs, CoreTimer{m_life, CoreTimerKind::Tick});
    at(m_now + kGatewaySweepMs, CoreTimer{m_life, CoreTimerKind::GatewaySweep});
    at(m_now + kProviderCheckMs, CoreTimer{m_life, CoreTimerKind::ProviderCheck});
    at(m_now + kLbReconcileMs, CoreTimer{m_life, CoreTimerKind::LbReconcile});
  }

  void crash(const std::string& why) {
    trace("** coordinator crashes (" + why + ")");
    ++m_counts["crash"];
    m_up = false;
    m_crash_armed = false;
    m_fleet.reset();
    m_sessions.clear();
    for (Backend& b : m_backends) {  // the driver's memory; HAProxy keeps its slots
      b.wanted.clear();
      b.assignment.clear();
      b.drains.clear();
    }
    for (SimInstance& s : m_sims) {
      if (s.agent_alive && s.connected)
        at(m_now + kAgentLivenessMs, AgentTimer{s.sid, s.gen, AgentTimerKind::CoordinatorLost});
    }
    at(m_now + m_plan.between(200, 8'000), Restart{});
  }

  void on(Restart&) {
    trace("** coordinator restarts");
    start_life();
    RestoreInput in;
    in.launch_configurations.push_back(web_config());
    for (const auto& [name, g] : m_store_groups) in.groups.push_back(g);
    for (const auto& [id, row] : m_store_rows) {
      if (row.state == LifecycleState::Detached) {
        in.detached.push_back(id);
      } else if (!is_terminal(row.state)) {
        in.instances.push_back(row);
      }
    }
    for (const auto& [id, a] : m_store_activities) {
      if (a.status == ActivityStatus::Running) in.running_activities.push_back(a);
    }
    provider_list_to_coordinator();
    for (const SimInstance& s : m_sims) {
      if (!s.running) continue;
      in.provider.push_back(
          ProviderInstance{s.provider_id, s.key, s.fleet_id, true, m_pool[s.addr].ip, s.port});
    }
    adopt_lb_members(in);
    std::vector<Command> out;
    m_fleet->restore(std::move(in), m_now, out);
    const std::uint64_t life = m_life;
    execute(std::move(out), "restore");
    if (m_up && m_life == life) lb_reconcile();
  }

  // Server::adopt_lb_members + Driver::adopt_members: slots (in index order,
  // also those in maintenance, which keep their address) are matched to
  // stored instances by backend and endpoint; of two stored instances at an
  // endpoint the higher lb_claim_rank wins (the first by id on a tie), the
  // first slot of an instance wins.
  void adopt_lb_members(RestoreInput& in) {
    for (Backend& b : m_backends) {
      std::map<std::pair<std::string, std::uint16_t>, std::string> by_endpoint;
      std::map<std::string, int> rank;
      for (const Instance& i : in.instances) {
        const ScalingGroup* g = stored_group(i.group);
        if (g == nullptr || g->lb.backend != b.name || i.address.empty()) continue;
        rank[i.id] = lb_claim_rank(i);
        auto [it, added] = by_endpoint.emplace(
            std::make_pair(i.address, g->lb.port != 0 ? g->lb.port : i.port), i.id);
        if (!added && rank[i.id] > rank[it->second]) it->second = i.id;
      }
      for (std::size_t k = 0; k < b.slots.size(); ++k) {
        Slot& slot = b.slots[k];
        if (slot.address.empty()) continue;
        auto it = by_endpoint.find({slot.address, slot.port});
        if (it == by_endpoint.end() || b.assignment.contains(it->second)) continue;
        const bool ready = slot.state == SlotState::Ready;
        b.assignment[it->second] = k;
        b.wanted[it->second] = Wanted{slot.address, slot.port, ready};
        if (slot.instance_id != it->second) {
          trace("LB adopts " + b.name + "/s" + std::to_string(k + 1) + " (" + slot.instance_id +
                ") as " + it->second);
        }
        slot.instance_id = it->second;
        ++m_counts["LB slot adopted"];
        in.lb.push_back(LbMember{b.name, it->second, ready});
      }
    }
  }

  // The LB reconcile (plan_backend), right after the restore and every
  // kLbReconcileMs: the driver keeps slots only for members it wants; slots
  // nobody wants and wanted-out-of-rotation slots go to maintenance; slots
  // with an operation running are left alone.
  void lb_reconcile() {
    for (Backend& b : m_backends) {
      std::map<std::size_t, std::string> owner;
      for (const auto& [id, k] : b.assignment) owner[k] = id;
      for (std::size_t k = 0; k < b.slots.size(); ++k) {
        Slot& slot = b.slots[k];
        if (b.drains.contains(k)) continue;
        auto o = owner.find(k);
        auto w = o == owner.end() ? b.wanted.end() : b.wanted.find(o->second);
        if (w == b.wanted.end()) {
          if (slot.state != SlotState::Maint) {
            trace("LB reconcile: " + b.name + "/s" + std::to_string(k + 1) + " (" +
                  slot.instance_id + ") to maint");
            slot.state = SlotState::Maint;
          }
          if (o != owner.end()) b.assignment.erase(o->second);
        } else if (!w->second.in_rotation && slot.state != SlotState::Maint) {
          trace("LB reconcile: " + b.name + "/s" + std::to_string(k + 1) + " (" + slot.instance_id +
                ") to maint");
          slot.state = SlotState::Maint;
        } else if (w->second.in_rotation && slot.state != SlotState::Ready) {
          slot.state = SlotState::Ready;
        }
      }
    }
  }

  // Hands one event to the core and runs what it returns.
  void core(const Event& event) {
    if (!m_up) return;
    trace("-> " + describe(event));
    std::vector<Command> out;
    m_fleet->handle(event, m_now, out);
    execute(std::move(out), "event");
  }

  // Runs the commands in order, as the shell does; a crash armed for "the
  // middle of a batch" runs only a prefix of the first non-empty batch.
  void execute(std::vector<Command> out, const char* what) {
    std::size_t limit = out.size();
    const bool crash_here = m_crash_armed && !out.empty();
    if (crash_here) limit = m_plan.index(out.size());
    for (std::size_t k = 0; k < limit; ++k) {
      trace("   " + describe(out[k]));
      apply(out[k]);
    }
    if (crash_here) ++m_counts["crash mid-batch"];
    if (crash_here)
      crash(std::string("after ") + std::to_string(limit) + " of " + std::to_string(out.size()) +
            " commands of a " + what + " batch");
  }

  void apply(const Command& command) {
    std::visit(
        [&](const auto& c) {
          using T = std::decay_t<decltype(c)>;
          if constexpr (std::is_same_v<T, PersistInstance>) {
            m_store_rows[c.instance.id] = c.instance;
            if (c.instance.state == LifecycleState::Detached) user_takes(c.instance.id);
          } else if constexpr (std::is_same_v<T, PersistGroup>) {
            m_store_groups[c.group.name] = c.group;
          } else if constexpr (std::is_same_v<T, RecordActivity>) {
            m_store_activities[c.activity.id] = c.activity;
            if (c.activity.type == ActivityType::FailStatic) ++m_counts["fail-static entered"];
            if (c.activity.type == ActivityType::ReplaceUnhealthy) ++m_counts["replace unhealthy"];
          } else if constexpr (std::is_same_v<T, UpdateActivity>) {
            m_store_activities[c.activity.id] = c.activity;
          } else if constexpr (std::is_same_v<T, Launch>) {
            provider_launch(c);
          } else if constexpr (std::is_same_v<T, Terminate>) {
            provider_terminate(c);
          } else if constexpr (std::is_same_v<T, LbRegister>) {
            lb_register(c);
          } else if constexpr (std::is_same_v<T, LbDrain>) {
            lb_drain(c);
          } else if constexpr (std::is_same_v<T, LbRemove>) {
            lb_remove(c.backend, c.instance_id);
          } else if constexpr (std::is_same_v<T, SendDrain>) {
            to_agent_of(c.instance_id, AgentMsg::Drain);
          } else if constexpr (std::is_same_v<T, SendUndrain>) {
            to_agent_of(c.instance_id, AgentMsg::Undrain);
          } else if constexpr (std::is_same_v<T, SetAgentAccess> || std::is_same_v<T, RunHook> ||
                               std::is_same_v<T, NotifyHookTimeout>) {
            // The ZAP allow-list follows the fleet (the HELLO check below asks
            // the fleet); no hooks in this simulation.
          }
        },
        command);
  }

  void on(ToCore& m) {
    if (!m_up || m.life != m_life) return;  // lost with the coordinator it was meant for
    if (const auto* v = std::get_if<InstanceVanished>(&m.event)) mark_reported(v->instance_id);
    core(m.event);
  }

  void on(CoreTimer& t) {
    if (!m_up || t.life != m_life) return;
    switch (t.kind) {
      case CoreTimerKind::Tick:
        at(m_now + kTickMs, CoreTimer{m_life, CoreTimerKind::Tick});
        core(Tick{});
        break;
      case CoreTimerKind::GatewaySweep: {
        at(m_now + kGatewaySweepMs, CoreTimer{m_life, CoreTimerKind::GatewaySweep});
        std::vector<int> lost;
        for (const auto& [sid, session] : m_sessions) {
          if (m_now - session.last_heard_ms >= kAgentLivenessMs) lost.push_back(sid);
        }
        for (int sid : lost) {
          ++m_counts["agent lost (liveness)"];
          m_sessions.erase(sid);
          core(AgentLost{m_sims[static_cast<std::size_t>(sid)].fleet_id,
                         "no message for 3 intervals"});
          if (!m_up) return;
        }
        break;
      }
      case CoreTimerKind::ProviderCheck:
        at(m_now + kProviderCheckMs, CoreTimer{m_life, CoreTimerKind::ProviderCheck});
        provider_check();
        break;
      case CoreTimerKind::LbReconcile:
        at(m_now + kLbReconcileMs, CoreTimer{m_life, CoreTimerKind::LbReconcile});
        lb_reconcile();
        break;
      case CoreTimerKind::CrashDeadline:
        if (m_crash_armed) crash("no command batch came");
        break;
    }
  }

  // Server::check_provider: every launched instance the fleet believes alive
  // (confirmed before the list was asked for) that the provider no longer
  // runs vanished.
  void provider_check() {
    // Only what the check reports as vanished counts as told: the shell
    // ignores instances the provider had not confirmed when it listed.
    std::set<std::string> running;
    for (const SimInstance& s : m_sims) {
      if (s.running) running.insert(s.provider_id);
    }
    std::vector<std::string> gone;
    for (const ScalingGroup* g : m_fleet->groups()) {
      for (const Instance* i : m_fleet->instances_of(g->name)) {
        if (i->origin != InstanceOrigin::Launched || i->provider_id.empty() ||
            i->launched_ms == 0 || i->launched_ms >= m_now || i->state == LifecycleState::Pending ||
            running.contains(i->provider_id)) {
          continue;
        }
        gone.push_back(i->id);
      }
    }
    for (const std::string& id : gone) {
      ++m_counts["vanished by provider check"];
      mark_reported(id);
      core(InstanceVanished{id, "the provider no longer runs it"});
      if (!m_up) return;
    }
  }

  // ---- the provider ---------------------------------------------------------------

  struct Address {
    std::string ip;
    int holder = -1;  // sid; -1: free
    bool used = false;
  };

  // A list handed to a coordinator tells it about every instance gone so far.
  void provider_list_to_coordinator() {
    for (SimInstance& s : m_sims) {
      if (!s.running && !s.gone_reported) {
        s.gone_reported = true;
        release_address(s);
      }
    }
  }

  void mark_reported(const std::string& fleet_id) {
    for (SimInstance& s : m_sims) {
      if (s.fleet_id == fleet_id && !s.running && !s.gone_reported) {
        s.gone_reported = true;
        release_address(s);
      }
    }
  }

  void release_address(const SimInstance& s) {
    if (m_pool[s.addr].holder == s.sid) m_pool[s.addr].holder = -1;
  }

  TimeMs provider_delay() {
    if (m_faults && m_now < m_slow_until) return m_prov.between(2'000, 15'000);
    return m_prov.between(20, 400);
  }

  void provider_launch(const Launch& c) {
    const std::uint64_t life = m_life;
    for (SimInstance& s : m_sims) {
      if (s.key == c.idempotency_key && s.running) {
        // Server::launch: a re-issued launch found running can never enroll
        // (its token died with the old coordinator): terminated and failed.
        kill(s, false);
        s.terminate_requested = true;
        s.gone_reported = true;
        release_address(s);
        at(m_now + provider_delay(),
           ToCore{life, LaunchFailed{c.instance_id, "already launched before a restart"}});
        return;
      }
    }
    const std::uint64_t fail = m_faults ? (m_now < m_outage_until ? 700 : 50) : 0;
    if (m_prov.chance(fail)) {
      at(m_now + provider_delay(),
         ToCore{life, LaunchFailed{c.instance_id, "provider: no capacity"}});
      return;
    }
    std::optional<std::size_t> addr;
    for (std::size_t k = 0; k < m_pool.size(); ++k) {
      if (m_pool[k].holder < 0) {
        addr = k;
        break;
      }
    }
    if (!addr) {
      at(m_now + provider_delay(),
         ToCore{life, LaunchFailed{c.instance_id, "provider: no free address"}});
      return;
    }
    SimInstance s;
    s.sid = static_cast<int>(m_sims.size());
    s.fleet_id = c.instance_id;
    s.group = c.group;
    s.key = c.idempotency_key;
    s.provider_id = "p-" + std::to_string(s.sid);
    s.token = c.enrollment_token;
    s.agent_key = "agent-key-" + std::to_string(s.sid);
    s.addr = *addr;
    s.ready_at_ms = m_now + m_agents.between(200, 3'000);
    s.launch_answer_ms = m_now + provider_delay();
    if (m_pool[*addr].used) ++m_counts["address reused"];
    m_pool[*addr].used = true;
    m_pool[*addr].holder = s.sid;
    m_sims.push_back(s);
    m_by_fleet_id[c.instance_id] = s.sid;
    m_seen.erase(c.instance_id);  // a new process: nothing it said yet
    ++m_counts["launch"];
    trace("provider starts " + s.provider_id + " for " + s.fleet_id + " at " + m_pool[*addr].ip);
    at(s.launch_answer_ms,
       ToCore{life, LaunchSucceeded{c.instance_id, s.provider_id, m_pool[*addr].ip, s.port}});
    schedule_hello(m_sims.back(), m_now + m_agents.between(50, 500));
    at(m_now + kProbeStartupMs, AgentTimer{s.sid, s.gen, AgentTimerKind::Probe});
    at(m_now + m_agents.between(kReportMs * 9 / 10, kReportMs * 11 / 10),
       AgentTimer{s.sid, s.gen, AgentTimerKind::Report});
  }

  void provider_terminate(const Terminate& c) {
    const std::uint64_t life = m_life;
    if (c.origin == InstanceOrigin::Attached || c.provider_id.empty()) {
      at(m_now, ToCore{life, TerminateCompleted{c.instance_id}});
      return;
    }
    SimInstance* s = by_provider_id(c.provider_id);
    if (s == nullptr || !s->running) {
      if (s != nullptr && !s->gone_reported) {
        // Terminating an instance that is already dead tells tide it is
        // gone: the provider may give its address to the next launch.
        s->gone_reported = true;
        release_address(*s);
      }
      at(m_now + provider_delay(), ToCore{life, TerminateCompleted{c.instance_id}});
      return;
    }
    if (s->user_owned) {
      const std::string what = "tide terminates " + s->provider_id + " (" + s->fleet_id +
                               "), which it detached: the server belongs to the user";
      violation("I5", what);
    }
    s->terminate_requested = true;
    at(m_now + m_prov.between(10, 300), WorldEvent{s->sid, WorldKind::Kill, life});
  }

  SimInstance* by_provider_id(const std::string& provider_id) {
    for (SimInstance& s : m_sims) {
      if (s.provider_id == provider_id) return &s;
    }
    return nullptr;
  }

  // The instance stops: application and agent die, the provider no longer
  // runs it. `goodbye`: the agent was stopped (SIGTERM) and says GOODBYE.
  void kill(SimInstance& s, bool goodbye) {
    if (!s.running) return;
    s.running = false;
    s.gone_ms = m_now;
    if (s.app_alive) s.app_dead_ms = m_now;
    s.app_alive = false;
    agent_dies(s);
    if (goodbye && m_up && m_sessions.erase(s.sid) > 0) {
      core(AgentLost{s.fleet_id, "GOODBYE"});
    }
  }

  void agent_dies(SimInstance& s) {
    s.agent_alive = false;
    s.connected = false;
    ++s.gen;
  }

  void user_takes(const std::string& fleet_id) {
    auto it = m_by_fleet_id.find(fleet_id);
    if (it == m_by_fleet_id.end()) return;
    SimInstance& s = m_sims[static_cast<std::size_t>(it->second)];
    if (s.user_owned || !s.running) return;
    s.user_owned = true;
    trace("user owns " + s.provider_id + " (" + fleet_id + ") now");
    at(m_now + m_plan.between(2'000, 15'000), WorldEvent{s.sid, WorldKind::UserShutdown, 0});
  }

  void on(WorldEvent& w) {
    SimInstance& s = m_sims[static_cast<std::size_t>(w.sid)];
    switch (w.kind) {
      case WorldKind::AppRecover:
        if (!s.running || s.app_alive) return;
        trace("application of " + s.fleet_id + " restarts");
        s.app_alive = true;
        s.app_dead_ms = -1;
        m_seen[s.fleet_id].revealed_ms = -1;
        s.ready_at_ms = m_now + m_agents.between(200, 3'000);
        break;
      case WorldKind::AgentRestart:
        if (!s.running || s.agent_alive) return;
        trace("agent of " + s.fleet_id + " restarts");
        start_agent(s);
        break;
      case WorldKind::UserShutdown:
        if (!s.running) return;
        trace("user shuts down detached " + s.provider_id);
        kill(s, false);
        s.gone_reported = true;  // not tide's any more
        release_address(s);
        break;
      case WorldKind::Kill: {
        trace("provider terminated " + s.provider_id + " (" + s.fleet_id + ")");
        kill(s, true);
        s.gone_reported = true;  // tide asked for it
        release_address(s);
        if (m_up && w.life == m_life) core(TerminateCompleted{s.fleet_id});
        break;
      }
      case WorldKind::ExitReport:
        if (!m_up || w.life != m_life) return;
        mark_reported(s.fleet_id);
        ++m_counts["exit reported"];
        core(InstanceVanished{s.fleet_id, "application exited (status 137)"});
        break;
    }
  }

  // ---- agents and the gateway ---------------------------------------------------------

  void start_agent(SimInstance& s) {
    s.agent_alive = true;
    ++s.gen;
    s.connected = false;
    s.first_ready = false;
    s.seen_ready = false;
    s.seen_healthy = true;
    s.draining = false;
    s.backoff = 0;
    schedule_hello(s, m_now + m_agents.between(50, 500));
    at(m_now + kProbeStartupMs, AgentTimer{s.sid, s.gen, AgentTimerKind::Probe});
    at(m_now + m_agents.between(kReportMs * 9 / 10, kReportMs * 11 / 10),
       AgentTimer{s.sid, s.gen, AgentTimerKind::Report});
  }

  // The agent's next HELLO attempt replaces any it had planned.
  void schedule_hello(SimInstance& s, TimeMs when) {
    at(when, AgentTimer{s.sid, s.gen, AgentTimerKind::Hello, ++s.hello});
  }

  TimeMs next_backoff(SimInstance& s) {
    const TimeMs ceiling =
        std::min<TimeMs>(kBackoffCapMs, TimeMs{100} << std::min<std::uint32_t>(s.backoff, 10));
    ++s.backoff;
    return m_agents.between(1, ceiling);
  }

  void on(AgentTimer& t) {
    SimInstance& s = m_sims[static_cast<std::size_t>(t.sid)];
    if (!s.agent_alive || t.gen != s.gen) return;
    switch (t.kind) {
      case AgentTimerKind::Probe: {
        const bool ready = s.app_ready(m_now);
        const bool healthy = s.app_serving();
        if (ready) s.first_ready = true;
        at(m_now + (s.first_ready ? kProbeMs : kProbeStartupMs),
           AgentTimer{s.sid, s.gen, AgentTimerKind::Probe});
        if (ready != s.seen_ready || healthy != s.seen_healthy) {
          s.seen_ready = ready;
          s.seen_healthy = healthy;
          send_report(s);  // at once on a change
        }
        break;
      }
      case AgentTimerKind::Report:
        at(m_now + m_agents.between(kReportMs * 9 / 10, kReportMs * 11 / 10),
           AgentTimer{s.sid, s.gen, AgentTimerKind::Report});
        send_report(s);
        break;
      case AgentTimerKind::Hello:
        if (s.connected || t.hello != s.hello) return;
        if (!m_up) {
          schedule_hello(s, m_now + next_backoff(s));
          return;
        }
        ++s.link;  // a fresh socket: what the old one had in flight is lost
        send_from_agent(s, FromAgent{s.sid, true, {}, 0, s.link}, false);
        schedule_hello(s, m_now + kWelcomeTimeoutMs);
        break;
      case AgentTimerKind::CoordinatorLost:
        // No HEARTBEAT for `liveness` intervals: drop the socket, back off.
        if (m_up || !s.connected) return;
        s.connected = false;
        schedule_hello(s, m_now + next_backoff(s));
        break;
    }
  }

  void send_report(SimInstance& s) {
    if (!s.connected) return;
    AgentReport r;
    r.instance_id = s.fleet_id;
    r.ready = s.seen_ready && !s.draining;  // Server::on_report: ready && !draining
    r.healthy = s.seen_healthy;
    r.health_reason = s.seen_healthy ? "" : "readiness probe: connection refused";
    r.draining = s.draining;
    send_from_agent(s, FromAgent{s.sid, false, r, ++s.seq, s.link}, true);
  }

  void send_from_agent(SimInstance& s, FromAgent message, bool lossy) {
    if (!m_up) return;  // nobody listens; the agent notices by the missing HEARTBEATs
    if (lossy && m_faults && s.lost_in_row < kMaxLostInRow && m_net.chance(50)) {
      ++s.lost_in_row;
      ++m_counts["report lost"];
      return;
    }
    s.lost_in_row = 0;
    const TimeMs when = std::max(s.link_free_ms, m_now + m_net.between(1, 20));
    s.link_free_ms = when;
    if (lossy && m_faults && m_net.chance(30)) {
      ++m_counts["report duplicated"];
      at(when + m_net.between(0, 1'500), message);  // the gateway drops it by seq
    }
    at(when, std::move(message));
  }

  void on(FromAgent& m) {
    if (!m_up) return;
    SimInstance& s = m_sims[static_cast<std::size_t>(m.sid)];
    const TimeMs delay = m_net.between(1, 20);
    if (m.hello) {
      // Server::on_hello: a known instance, its bound key or its enrollment token.
      const Instance* i = m_fleet->instance(s.fleet_id);
      bool ok = i != nullptr;
      if (ok && !i->agent_key.empty()) ok = i->agent_key == s.agent_key;
      if (ok && i->agent_key.empty())
        ok = std::string(s.token.rbegin(), s.token.rend()) == i->enrollment_token_hash;
      if (!ok) {
        trace("gateway refuses HELLO of " + s.fleet_id +
              (i == nullptr ? " (unknown)" : " (not authorised)"));
        // I6: the agent of the process the provider runs for a live fleet
        // instance can always enroll (its Launch carried the token).
        auto current = m_by_fleet_id.find(s.fleet_id);
        if (i != nullptr && s.running && !s.user_owned && current != m_by_fleet_id.end() &&
            current->second == s.sid && !s.refused_reported) {
          s.refused_reported = true;
          const std::string what = "the agent of " + s.fleet_id + " (" + s.provider_id +
                                   ") is refused: the instance is bound to " + i->agent_key +
                                   ", the agent has " + s.agent_key;
          violation("I6", what);
        }
        at(m_now + delay, ToAgent{s.sid, s.gen, AgentMsg::Refused});
        return;
      }
      m_sessions[s.sid] = Session{m_now, 0, m.link};
      at(m_now + delay, ToAgent{s.sid, s.gen, AgentMsg::Welcome});
      core(AgentHello{s.fleet_id, s.agent_key, m_pool[s.addr].ip, s.port});
      return;
    }
    auto session = m_sessions.find(s.sid);
    if (session == m_sessions.end()) {
      at(m_now + delay, ToAgent{s.sid, s.gen, AgentMsg::UnknownSession});
      return;
    }
    if (m.link != session->second.link) return;     // from a connection that is gone
    if (m.seq <= session->second.last_seq) return;  // stale or duplicate (SPEC 7.1.4)
    session->second.last_seq = m.seq;
    session->second.last_heard_ms = m_now;
    Seen& seen = m_seen[s.fleet_id];
    const Seen before = seen;
    seen.last_report = m.report;
    // The agent's probe saw the death (its health is the application's
    // liveness here; `ready` may be false for draining alone).
    if (s.app_dead_ms >= 0 && !s.app_alive && !m.report.healthy && seen.revealed_ms < 0) {
      seen.revealed_ms = m_now;
      seen.revealed_life = m_life;
    }
    const std::uint64_t life = m_life;
    core(m.report);
    // A crash cut the report's batch short: its LB command may or may not
    // have run. A report that would take the slot out of rotation died with
    // that coordinator (the next one acts on what the agent tells it); one
    // that put it in did happen if the slot is in.
    const bool wants_in = m.report.ready && m.report.healthy && !m.report.draining;
    if ((!m_up || m_life != life) && !wants_in) m_seen[s.fleet_id] = before;
  }

  void on(ToAgent& m) {
    SimInstance& s = m_sims[static_cast<std::size_t>(m.sid)];
    if (!s.agent_alive || m.gen != s.gen) return;
    switch (m.msg) {
      case AgentMsg::Welcome:
        s.connected = true;
        s.backoff = 0;
        s.seq = 0;
        send_report(s);  // the first REPORT of a session says what is true now
        break;
      case AgentMsg::Refused:
        s.connected = false;
        schedule_hello(s, m_now + next_backoff(s));
        break;
      case AgentMsg::UnknownSession:
        if (!s.connected) return;
        s.connected = false;
        schedule_hello(s, m_now + 1);  // HELLO again at once
        break;
      case AgentMsg::Drain:
      case AgentMsg::Undrain: {
        const bool draining = m.msg == AgentMsg::Drain;
        if (draining == s.draining) return;
        s.draining = draining;
        send_report(s);
        break;
      }
    }
  }

  void to_agent_of(const std::string& fleet_id, AgentMsg msg) {
    auto it = m_by_fleet_id.find(fleet_id);
    if (it == m_by_fleet_id.end() || !m_sessions.contains(it->second))
      return;  // no session: not sent
    const SimInstance& s = m_sims[static_cast<std::size_t>(it->second)];
    at(m_now + m_net.between(1, 20), ToAgent{s.sid, s.gen, msg});
  }

  // ---- the load balancer ---------------------------------------------------------------

  Backend* backend(const std::string& name) {
    for (Backend& b : m_backends) {
      if (b.name == name) return &b;
    }
    return nullptr;
  }

  void lb_register(const LbRegister& c) {
    Backend* b = backend(c.backend);
    if (b == nullptr) {
      at(m_now + 1, ToCore{m_life, LbRegisterFailed{c.instance_id, "unknown backend"}});
      return;
    }
    // Driver::register_instance: another wanted member at this endpoint can
    // only be an instance that is gone; it is taken out first.
    std::vector<std::string> same;
    for (const auto& [id, w] : b->wanted) {
      if (id != c.instance_id && w.address == c.address && w.port == c.port) same.push_back(id);
    }
    for (const std::string& id : same) {
      trace("LB takes " + id + " out: " + c.instance_id + " registers at its endpoint");
      ++m_counts["LB endpoint taken over"];
      lb_remove(b->name, id);
    }
    std::size_t slot = 0;
    if (auto a = b->assignment.find(c.instance_id); a != b->assignment.end()) {
      slot = a->second;
    } else {
      std::set<std::size_t> taken;
      for (const auto& [id, k] : b->assignment) taken.insert(k);
      for (const auto& [k, d] : b->drains) taken.insert(k);
      std::optional<std::size_t> free;
      for (std::size_t k = 0; k < b->slots.size(); ++k) {
        if (!taken.contains(k)) {
          free = k;
          break;
        }
      }
      if (!free) {
        // Server::lb_register: a refusal for good.
        ++m_counts["LB register refused (no free slot)"];
        lb_remove(b->name, c.instance_id);
        at(m_now + 1,
           ToCore{m_life, LbRegisterFailed{c.instance_id, b->name + " has no free slot"}});
        return;
      }
      slot = *free;
      b->assignment[c.instance_id] = slot;
    }
    b->wanted[c.instance_id] = Wanted{c.address, c.port, true};
    if (auto d = b->drains.find(slot); d != b->drains.end()) {
      d->second.then_register = c;  // runs once the drain of this slot ends
      return;
    }
    Slot& s = b->slots[slot];
    s.instance_id = c.instance_id;
    s.address = c.address;
    s.port = c.port;
    s.state = SlotState::Ready;
  }

  void lb_drain(const LbDrain& c) {
    Backend* b = backend(c.backend);
    if (b == nullptr || !b->assignment.contains(c.instance_id)) {
      // The drain fails (no slot); the shell answers LbDrained all the same.
      at(m_now + m_prov.between(1, 5), ToCore{m_life, LbDrained{c.instance_id}});
      return;
    }
    b->wanted.erase(c.instance_id);
    const std::size_t slot = b->assignment.at(c.instance_id);
    if (auto d = b->drains.find(slot); d != b->drains.end()) {
      ++d->second.answers;
      return;
    }
    b->slots[slot].state = SlotState::Drain;
    const std::uint64_t op = ++m_lb_ops;
    b->drains[slot] = DrainOp{c.instance_id, op, 1, std::nullopt};
    const TimeMs sessions_end =
        m_prov.between(5, std::max<TimeMs>(5, std::min<TimeMs>(c.timeout_ms, 2'000)));
    at(m_now + sessions_end, DrainDone{static_cast<std::size_t>(b - m_backends.data()), slot, op});
  }

  void on(DrainDone& d) {
    Backend& b = m_backends[d.backend];
    auto it = b.drains.find(d.slot);
    if (it == b.drains.end() || it->second.op != d.op)
      return;  // the coordinator that asked crashed
    DrainOp op = it->second;
    b.drains.erase(it);
    Slot& slot = b.slots[d.slot];
    slot.state = SlotState::Maint;
    // Free the slot unless the instance was registered again meanwhile.
    if (auto a = b.assignment.find(op.instance_id);
        a != b.assignment.end() && a->second == d.slot && !b.wanted.contains(op.instance_id)) {
      b.assignment.erase(a);
    }
    for (int k = 0; k < op.answers; ++k) core(LbDrained{op.instance_id});
    if (op.then_register && m_up && b.wanted.contains(op.then_register->instance_id)) {
      lb_register(*op.then_register);
    }
  }

  // Driver::remove_instance: out at once and the slot freed.
  void lb_remove(const std::string& backend_name, const std::string& instance_id) {
    Backend* b = backend(backend_name);
    if (b == nullptr) return;
    b->wanted.erase(instance_id);
    auto a = b->assignment.find(instance_id);
    if (a == b->assignment.end()) return;
    const std::size_t slot = a->second;
    b->assignment.erase(a);
    b->slots[slot].state = SlotState::Maint;
    if (auto d = b->drains.find(slot); d != b->drains.end()) {
      // The drain ends now; its answer is still owed.
      const int answers = d->second.answers;
      const std::string id = d->second.instance_id;
      b->drains.erase(d);
      for (int k = 0; k < answers; ++k) at(m_now + 1, ToCore{m_life, LbDrained{id}});
    }
  }

  // ---- faults and requests ------------------------------------------------------------

  // Live, tide-owned instances the provider runs.
  std::vector<SimInstance*> running_sims() {
    std::vector<SimInstance*> found;
    for (SimInstance& s : m_sims) {
      if (s.running && !s.user_owned) found.push_back(&s);
    }
    return found;
  }

  std::optional<std::string> random_fleet_instance() {
    if (!m_up) return std::nullopt;
    std::vector<std::string> ids;
    for (const ScalingGroup* g : m_fleet->groups()) {
      for (const Instance* i : m_fleet->instances_of(g->name)) ids.push_back(i->id);
    }
    if (ids.empty()) return std::nullopt;
    return ids[m_plan.index(ids.size())];
  }

  template <class T>
  void note(const char* what, const tl::expected<T, ModelError>& result) {
    ++m_counts[what];
    if (!result) trace(std::string("   refused: ") + result.error().message);
  }

  void act() {
    const std::uint64_t roll = m_plan.index(1000);
    auto sims = running_sims();
    SimInstance* victim = sims.empty() ? nullptr : sims[m_plan.index(sims.size())];
    std::vector<Command> out;
    if (roll < 300) {
      return;  // time passes
    } else if (roll < 380) {
      if (!m_up) return;
      const ScalingGroup& g = *m_fleet->groups()[m_plan.index(m_fleet->groups().size())];
      const auto desired = g.min + static_cast<std::uint32_t>(m_plan.index(g.max - g.min + 1));
      trace("user: set_desired " + g.name + " " + std::to_string(desired));
      note("set_desired", m_fleet->set_desired(g.name, desired, "user", m_now, out));
    } else if (roll < 420) {
      if (auto id = random_fleet_instance()) {
        const bool decrement = m_plan.chance(500);
        trace("user: terminate " + *id + (decrement ? " decrement" : ""));
        note("terminate", m_fleet->terminate(*id, decrement, m_now, out));
      }
    } else if (roll < 450) {
      if (auto id = random_fleet_instance()) {
        const bool decrement = m_plan.chance(500);
        trace("user: detach " + *id + (decrement ? " decrement" : ""));
        note("detach", m_fleet->detach(*id, decrement, m_now, out));
      }
    } else if (roll < 490) {
      if (auto id = random_fleet_instance()) {
        const bool value = m_plan.chance(600);
        trace("user: set_protected " + *id + (value ? " true" : " false"));
        note("protect", m_fleet->set_protected(*id, value, m_now, out));
      }
    } else if (roll < 590) {
      if (victim == nullptr || !victim->app_alive) return;
      ++m_counts["app crash"];
      if (m_plan.chance(m_visible_exit_per_mille)) {
        // The local provider watches the application: it ends the instance
        // (SIGTERM to the agent, which says GOODBYE) and reports the exit.
        trace("fault: application of " + victim->fleet_id + " exits; the provider sees it");
        kill(*victim, true);
        if (m_plan.chance(800)) {
          const TimeMs when =
              std::max(m_now + m_plan.between(20, 300), victim->launch_answer_ms + 1);
          at(when, WorldEvent{victim->sid, WorldKind::ExitReport, m_life});
        }
      } else {
        if (!victim->agent_alive) return;  // nobody could ever tell (see the I2b note)
        trace("fault: application of " + victim->fleet_id + " dies; its agent lives");
        victim->app_alive = false;
        victim->app_dead_ms = m_now;
        m_seen[victim->fleet_id].revealed_ms = -1;
        if (m_plan.chance(300))
          at(m_now + m_plan.between(3'000, 20'000),
             WorldEvent{victim->sid, WorldKind::AppRecover, 0});
      }
    } else if (roll < 640) {
      if (victim == nullptr || !victim->app_alive) return;
      ++m_counts["not ready spell"];
      trace("fault: application of " + victim->fleet_id + " not ready for a while");
      victim->unready_until_ms = m_now + m_plan.between(500, 8'000);
      victim->unready_from_ms = m_now;
    } else if (roll < 710) {
      if (victim == nullptr || !victim->agent_alive || !victim->app_alive) return;
      ++m_counts["agent crash"];
      trace("fault: agent of " + victim->fleet_id + " dies");
      agent_dies(*victim);
      if (m_plan.chance(500))
        at(m_now + m_plan.between(1'000, 10'000),
           WorldEvent{victim->sid, WorldKind::AgentRestart, 0});
    } else if (roll < 770) {
      if (victim == nullptr) return;
      ++m_counts["instance dies"];
      trace("fault: instance " + victim->fleet_id + " (" + victim->provider_id + ") dies");
      kill(*victim, false);
      if (m_plan.chance(500)) {
        const TimeMs when = std::max(m_now + m_plan.between(20, 300), victim->launch_answer_ms + 1);
        at(when, WorldEvent{victim->sid, WorldKind::ExitReport, m_life});
      }
    } else if (roll < 810) {
      if (!m_up) return;
      if (m_plan.chance(500)) {
        trace("fault: the coordinator will crash in the middle of its next command batch");
        m_crash_armed = true;
        at(m_now + 2'000, CoreTimer{m_life, CoreTimerKind::CrashDeadline});
      } else {
        crash("fault");
      }
      return;
    } else if (roll < 850) {
      trace("fault: provider outage");
      m_outage_until = m_now + m_plan.between(2'000, 15'000);
    } else if (roll < 890) {
      trace("fault: provider slow");
      m_slow_until = m_now + m_plan.between(2'000, 15'000);
    } else if (roll < 920) {
      // The application says STOPPING=1 on its own: the agent drains; tide,
      // which does not remove it, answers UNDRAIN.
      if (victim == nullptr || !victim->agent_alive || victim->draining) return;
      ++m_counts["agent drains itself"];
      trace("fault: agent of " + victim->fleet_id + " drains on its own");
      victim->draining = true;
      send_report(*victim);
    } else {
      return;
    }
    execute(std::move(out), "request");
  }

  // ---- the end: faults stop, the fleet must converge -----------------------------------

  void quiesce() {
    if (stopped()) return;
    m_faults = false;
    m_crash_armed = false;
    trace(
        "** faults stop; every dead agent of a running instance restarts (monitoring is repaired)");
    // Without this, a group held in fail-static after losing contact with
    // permanently dead agents never converges, by design (docs/lifecycle.md:
    // it waits for contact or a user's hand).
    for (SimInstance& s : m_sims) {
      if (s.running && !s.user_owned && !s.agent_alive) {
        at(m_now + m_plan.between(1'000, 10'000), WorldEvent{s.sid, WorldKind::AgentRestart, 0});
      }
    }
    const TimeMs deadline = m_now + kConvergeBoundMs;
    std::string why;
    while (!stopped()) {
      why = converged();
      if (why.empty()) break;
      if (m_now >= deadline) {
        violation("I3", "not converged " + std::to_string(kConvergeBoundMs) +
                            " ms after the faults stopped: " + why + describe_fleet());
        return;
      }
      advance_to(m_now + 500);
    }
    if (stopped()) return;
    trace("** converged");
    // I4: no orphan.
    for (const SimInstance& s : m_sims) {
      if (!s.running || s.user_owned || s.terminate_requested) continue;
      if (m_fleet->instance(s.fleet_id) == nullptr) {
        violation("I4", "orphan: the provider runs " + s.provider_id + " (" + s.fleet_id +
                            ") that the fleet does not know");
        return;
      }
    }
  }

  // Empty when every group is as the user asked; else what is not.
  std::string converged() {
    if (!m_up) return "the coordinator is down";
    for (const Backend& b : m_backends) {
      // The driver keeps a slot for every member it wants (also out of
      // rotation): one for an instance the fleet forgot is lost for good.
      for (const auto& [id, w] : b.wanted) {
        if (m_fleet->instance(id) == nullptr) {
          return b.name + ": the driver keeps a slot for " + id + ", which the fleet does not know";
        }
      }
    }
    for (const ScalingGroup* g : m_fleet->groups()) {
      Backend& b = *backend(g->lb.backend);
      // Protected instances are never scaled in and, unhealthy, only leave
      // rotation (docs/lifecycle.md): they may exceed desired, and they may
      // be broken; every other instance serves, and together they make
      // desired.
      std::uint32_t unprotected = 0;
      std::uint32_t protected_ones = 0;
      for (const Instance* i : m_fleet->instances_of(g->name)) {
        if (i->exit_reason != ExitReason::None || !is_member_state(i->state)) {
          return g->name + ": " + i->id + " is " + std::string(to_string(i->state)) + " (exit " +
                 std::string(to_string(i->exit_reason)) + ")";
        }
        const bool serving = is_serving(*i, b);
        if (i->protected_from_scale_in && (serving || i->health == Health::Unhealthy)) {
          ++protected_ones;
        } else if (serving && !i->protected_from_scale_in) {
          ++unprotected;
        } else {
          return g->name + ": " + i->id + " is " + std::string(to_string(i->state)) + ", " +
                 std::string(to_string(i->health)) + " (" + i->health_reason + ")" +
                 (i->protected_from_scale_in ? ", protected" : "") + ", not serving";
        }
      }
      if (unprotected != (g->desired > protected_ones ? g->desired - protected_ones : 0)) {
        return g->name + ": " + std::to_string(unprotected) + " serving + " +
               std::to_string(protected_ones) + " protected, desired " + std::to_string(g->desired);
      }
      for (std::size_t k = 0; k < b.slots.size(); ++k) {
        const Slot& slot = b.slots[k];
        if (slot.state == SlotState::Drain)
          return b.name + "/s" + std::to_string(k + 1) + " still draining";
        if (slot.state == SlotState::Ready) {
          const Instance* i = m_fleet->instance(slot.instance_id);
          if (i == nullptr || !is_serving(*i, b)) {
            return b.name + "/s" + std::to_string(k + 1) + " in rotation for " + slot.instance_id +
                   ", not serving";
          }
        }
      }
    }
    return {};
  }

  std::string describe_fleet() {
    if (!m_up) return {};
    std::ostringstream out;
    for (const ScalingGroup* g : m_fleet->groups()) {
      out << "\n    group " << g->name << " " << g->min << '/' << g->desired << '/' << g->max
          << (m_fleet->in_fail_static(g->name) ? " fail-static" : "");
      for (const Instance* i : m_fleet->instances_of(g->name)) {
        out << "\n      " << i->id << ' ' << to_string(i->state) << ' ' << to_string(i->health)
            << " (" << i->health_reason << ") exit " << to_string(i->exit_reason)
            << (i->protected_from_scale_in ? " protected" : "")
            << (i->runtime.is_replacement ? " replacement" : "")
            << (i->runtime.contact_lost ? " contact-lost" : "")
            << (i->runtime.health_held ? " held" : "") << " in_lb " << i->runtime.in_lb;
      }
    }
    return out.str();
  }

  // In service, in rotation at its endpoint, and its application alive and
  // ready (ground truth).
  bool is_serving(const Instance& i, const Backend& b) {
    if (i.state != LifecycleState::InService) return false;
    auto it = m_by_fleet_id.find(i.id);
    if (it == m_by_fleet_id.end()) return false;
    const SimInstance& s = m_sims[static_cast<std::size_t>(it->second)];
    if (!s.app_ready(m_now)) return false;
    auto a = b.assignment.find(i.id);
    if (a == b.assignment.end()) return false;
    const Slot& slot = b.slots[a->second];
    return slot.state == SlotState::Ready && slot.instance_id == i.id &&
           slot.address == m_pool[s.addr].ip;
  }

  // ---- invariants -----------------------------------------------------------------------

  void note_max(const std::string& what, TimeMs value) {
    TimeMs& slot = m_max[what];
    slot = std::max(slot, value);
  }

  void violation(const std::string& invariant, const std::string& detail) {
    trace("!! " + invariant + ": " + detail);
    m_violations.push_back(Violation{invariant, detail, m_now - kStart, m_step});
  }

  const ScalingGroup* stored_group(const std::string& name) const {
    auto it = m_store_groups.find(name);
    return it == m_store_groups.end() ? nullptr : &it->second;
  }

  void check() {
    if (stopped()) return;
    std::map<std::pair<std::string, std::uint16_t>, std::string> endpoints;
    for (const Backend& b : m_backends) {
      for (std::size_t k = 0; k < b.slots.size(); ++k) {
        const Slot& slot = b.slots[k];
        if (slot.state == SlotState::Maint) continue;
        const std::string where = b.name + "/s" + std::to_string(k + 1);
        // I4: never two slots at one endpoint.
        auto [it, fresh] = endpoints.emplace(std::make_pair(slot.address, slot.port), where);
        if (!fresh) {
          return violation("I4", where + " and " + it->second + " both point at " + slot.address +
                                     ":" + std::to_string(slot.port));
        }
        if (slot.state == SlotState::Ready) check_in_rotation(where, slot);
        if (stopped()) return;
      }
    }
    if (!m_up) return;
    if (std::string audit = m_fleet->audit(); !audit.empty()) return violation("audit", audit);
    // I4: no duplicate.
    std::map<std::string, std::string> pids;
    std::map<std::string, std::string> keys;
    for (const ScalingGroup* g : m_fleet->groups()) {
      for (const Instance* i : m_fleet->instances_of(g->name)) {
        if (!i->provider_id.empty() && !pids.emplace(i->provider_id, i->id).second) {
          return violation("I4", "duplicate: " + i->id + " and " + pids[i->provider_id] +
                                     " have provider id " + i->provider_id);
        }
        if (!i->idempotency_key.empty() && !keys.emplace(i->idempotency_key, i->id).second) {
          return violation("I4", "duplicate: " + i->id + " and " + keys[i->idempotency_key] +
                                     " have idempotency key " + i->idempotency_key);
        }
      }
    }
  }

  void check_in_rotation(const std::string& where, const Slot& slot) {
    const std::string& id = slot.instance_id;
    // I1a: the process at the slot's endpoint is the instance the slot is for.
    auto addr = m_pool_index.find(slot.address);
    if (addr != m_pool_index.end()) {
      const int holder = m_pool[addr->second].holder;
      if (holder >= 0) {
        const SimInstance& owner = m_sims[static_cast<std::size_t>(holder)];
        if (owner.running && owner.fleet_id != id) {
          return violation("I1a", where + " is in rotation for " + id + " but " + slot.address +
                                      " is " + owner.fleet_id + " (" + owner.provider_id + ") now");
        }
      }
    }
    // I1b: its last delivered report said ready, healthy, not draining.
    auto seen = m_seen.find(id);
    if (seen == m_seen.end() || !seen->second.last_report) {
      return violation("I1b", where + " is in rotation for " + id + ", which never reported");
    }
    const AgentReport& r = *seen->second.last_report;
    if (!r.ready || !r.healthy || r.draining) {
      return violation("I1b", where + " is in rotation for " + id +
                                  " whose last report says ready=" + std::to_string(r.ready) +
                                  " healthy=" + std::to_string(r.healthy) +
                                  " draining=" + std::to_string(r.draining));
    }
    // I1c: the core agrees.
    if (m_up) {
      const Instance* i = m_fleet->instance(id);
      if (i == nullptr || !i->runtime.in_lb) {
        return violation("I1c", where + " is in rotation for " + id + ", which the core " +
                                    (i == nullptr ? "does not know"
                                                  : "does not hold in rotation (" +
                                                        std::string(to_string(i->state)) + ")"));
      }
    }
    // I2: a dead application leaves rotation within its bound.
    auto sim = m_by_fleet_id.find(id);
    if (sim == m_by_fleet_id.end()) return;
    const SimInstance& s = m_sims[static_cast<std::size_t>(sim->second)];
    if (s.app_serving() && !s.app_ready(m_now) && m_up) {
      note_max("not-ready application in rotation, ms",
               m_now - std::max(s.unready_from_ms, m_life_start));
    }
    if (s.app_serving() || !m_up) return;
    const TimeMs dead = s.app_dead_ms >= 0 ? s.app_dead_ms : s.gone_ms;
    if (seen->second.revealed_ms >= 0 && seen->second.revealed_life == m_life &&
        m_now > seen->second.revealed_ms + kRevealedBoundMs) {
      return violation("I2a", where + " is in rotation for " + id +
                                  " whose dead application was reported " +
                                  std::to_string(m_now - seen->second.revealed_ms) + " ms ago");
    }
    const TimeMs since = std::max(dead, m_life_start);
    note_max("dead application in rotation, ms (bound " + std::to_string(kDeadBoundMs) + ")",
             m_now - since);
    if (m_now > since + kDeadBoundMs) {
      return violation("I2b", where + " is in rotation for " + id + " whose application died " +
                                  std::to_string(m_now - dead) + " ms ago (coordinator up for " +
                                  std::to_string(m_now - m_life_start) + " ms)");
    }
  }

  Options m_opt;
  Random m_plan;    // actions, faults and requests
  Random m_net;     // delays, losses, duplicates
  Random m_prov;    // provider and LB timings and failures
  Random m_agents;  // application and agent timings
  TimeMs m_now = kStart;
  int m_step = 0;
  std::uint64_t m_seq = 0;
  std::uint64_t m_events = 0;
  std::priority_queue<Item, std::vector<Item>, Later> m_queue;

  // The coordinator.
  std::unique_ptr<Fleet> m_fleet;
  bool m_up = false;
  std::uint64_t m_life = 0;
  TimeMs m_life_start = 0;
  bool m_crash_armed = false;
  std::map<int, Session> m_sessions;  // sid -> gateway session
  // The store (survives crashes).
  std::map<std::string, Instance> m_store_rows;  // by id, as Store::list_instances
  std::map<std::string, ScalingGroup> m_store_groups;
  std::map<std::string, Activity> m_store_activities;

  // The world.
  std::vector<ScalingGroup> m_group_cfg;
  std::vector<Backend> m_backends;
  std::vector<Address> m_pool;
  std::unordered_map<std::string, std::size_t> m_pool_index;
  std::deque<SimInstance> m_sims;  // stable references: the core may launch while one is in use
  std::unordered_map<std::string, int> m_by_fleet_id;  // latest process of each fleet instance
  std::unordered_map<std::string, Seen> m_seen;
  std::uint64_t m_lb_ops = 0;
  bool m_faults = true;
  TimeMs m_outage_until = 0;
  TimeMs m_slow_until = 0;
  std::uint64_t m_visible_exit_per_mille = 500;

  std::vector<Violation> m_violations;
  std::map<std::string, int> m_counts;  // what happened, for the coverage line
  std::map<std::string, TimeMs> m_max;  // worst cases seen, against their bounds
};

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text == nullptr ? fallback : std::strtoull(text, nullptr, 10);
}

struct Outcome {
  std::uint64_t seed = 0;
  std::vector<Violation> violations;
};

// Runs `seeds` seeds from `first`; returns the failing ones.
std::vector<Outcome> run_seeds(std::uint64_t first, std::uint64_t seeds, int steps) {
  std::vector<Outcome> failed;
  std::map<std::string, int> counts;
  std::map<std::string, TimeMs> maxima;
  std::uint64_t events = 0;
  for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
    Simulation sim(Options{seed, steps, false});
    auto violations = sim.run();
    events += sim.events();
    for (const auto& [name, n] : sim.counts()) counts[name] += n;
    for (const auto& [name, v] : sim.maxima()) maxima[name] = std::max(maxima[name], v);
    if (!violations.empty()) failed.push_back(Outcome{seed, std::move(violations)});
  }
  std::ostringstream s;
  s << seeds << " seeds x " << steps << " steps: " << events << " events;";
  for (const auto& [name, n] : counts) s << ' ' << name << ' ' << n << ';';
  for (const auto& [name, v] : maxima) s << " worst " << name << ' ' << v << ';';
  WARN(s.str());
  return failed;
}

std::string report(const std::vector<Outcome>& failed) {
  std::ostringstream s;
  s << failed.size() << " failing seed(s)";
  std::map<std::string, int> by_invariant;
  for (const Outcome& o : failed) ++by_invariant[o.violations.front().invariant];
  for (const auto& [inv, n] : by_invariant) s << "; " << inv << ": " << n;
  s << '\n';
  for (std::size_t k = 0; k < failed.size() && k < 10; ++k) {
    const Violation& v = failed[k].violations.front();
    s << "  seed " << failed[k].seed << " step " << v.step << " t=" << v.at_ms << " " << v.invariant
      << ": " << v.detail << "\n    replay: TIDE_SIM_SEED=" << failed[k].seed
      << " coordinator_core_tests \"[simulation]\"\n";
  }
  return s.str();
}

#ifdef NDEBUG
constexpr std::uint64_t kDefaultSeeds = 2'000;
#else
constexpr std::uint64_t kDefaultSeeds = 100;  // debug and sanitizer builds are ~20x slower
#endif
constexpr int kDefaultSteps = 200;

// The seeds and steps of a case, or the one seed TIDE_SIM_SEED replays with
// every event and command printed.
void run_case(std::uint64_t seeds, int steps) {
  steps = static_cast<int>(env_number("TIDE_SIM_STEPS", static_cast<std::uint64_t>(steps)));
  if (const char* one = std::getenv("TIDE_SIM_SEED")) {
    Simulation sim(Options{std::strtoull(one, nullptr, 10), steps, true});
    const auto violations = sim.run();
    for (const Violation& v : violations) {
      std::cout << "VIOLATION " << v.invariant << " at step " << v.step << ", t=" << v.at_ms << ": "
                << v.detail << '\n';
    }
    CHECK(violations.empty());
    return;
  }
  const auto failed =
      run_seeds(env_number("TIDE_SIM_FIRST", 1), env_number("TIDE_SIM_SEEDS", seeds), steps);
  INFO(report(failed));
  CHECK(failed.empty());
}

}  // namespace

TEST_CASE("simulated fleets keep the rule, heal and converge under faults", "[simulation]") {
  run_case(kDefaultSeeds, kDefaultSteps);
}

TEST_CASE("simulated fleets, many more seeds and longer runs", "[.][simulation-long]") {
  run_case(20'000, 500);
}

// ---- the bugs the simulation found: each one's minimal sequence ----------------

namespace {

// A stored row as the store hands it to restore().
Instance row(const std::string& id, LifecycleState state, const std::string& address) {
  Instance i;
  i.id = id;
  i.group = "web";
  i.state = state;
  i.idempotency_key = "k-" + id;
  if (state != LifecycleState::Pending) i.provider_id = "pid-" + id;
  i.address = address;
  i.port = 8080;
  i.launch_configuration_id = "web";
  i.launch_configuration_version = 1;
  i.created_ms = kStart - 60'000;
  i.launched_ms = state == LifecycleState::Pending ? 0 : kStart - 59'000;
  i.state_since_ms = kStart - 50'000;
  return i;
}

RestoreInput restore_input(std::uint32_t desired) {
  RestoreInput in;
  in.launch_configurations.push_back(web_config());
  in.groups.push_back(web_group(desired));
  return in;
}

ProviderInstance runs(const Instance& i, const std::string& address) {
  return ProviderInstance{"pid-" + i.id, i.idempotency_key, i.id, true, address, 8080};
}

template <class T>
bool names(const std::vector<Command>& commands, const std::string& id) {
  for (const T& c : only<T>(commands)) {
    if (c.instance_id == id) return true;
  }
  return false;
}

}  // namespace

TEST_CASE(
    "found by the simulation: restore detaches an adopted instance at once without reading its "
    "erased entry",
    "[simulation][regression]") {
  // restore(): finish_drain(x) -> detached -> finish_terminal -> erase(x);
  // the loop then read `i.id` with `i` in x (a sanitizer build reported
  // heap-use-after-free).
  RestoreInput in = restore_input(0);
  Instance x = row("i-x", LifecycleState::Draining, "127.0.1.1");
  x.exit_reason = ExitReason::Detach;
  in.instances = {x};
  in.provider = {runs(x, "127.0.1.1")};
  Fleet fleet(deterministic_deps(1));
  std::vector<Command> out;
  fleet.restore(std::move(in), kStart, out);
  CHECK(fleet.instance(x.id) == nullptr);
  CHECK_FALSE(names<Terminate>(out, x.id));  // detached: the user's server
  bool detached = false;
  for (const PersistInstance& p : only<PersistInstance>(out))
    detached = detached || (p.instance.id == x.id && p.instance.state == LifecycleState::Detached);
  CHECK(detached);
}

TEST_CASE("found by the simulation: restore never takes a detached server for a stray",
          "[simulation][regression]") {
  // The user detached x (row: detached, terminal, passed as
  // RestoreInput::detached); the provider still runs x with tide's tag.
  RestoreInput in = restore_input(1);
  in.provider.push_back(ProviderInstance{"pid-x", "k-x", "i-x", true, "127.0.1.1", 8080});
  in.detached.push_back("i-x");
  Fleet fleet(deterministic_deps(1));
  std::vector<Command> out;
  fleet.restore(std::move(in), kStart, out);
  CHECK_FALSE(names<Terminate>(out, "i-x"));
}

TEST_CASE("found by the simulation: restore frees a slot adopted for a pending instance",
          "[simulation][regression]") {
  for (const bool provider_runs_it : {false, true}) {
    CAPTURE(provider_runs_it);
    // x said HELLO (address 127.0.1.1) before the provider's answer, died,
    // and the coordinator crashed; y got 127.0.1.1 and is in rotation; the
    // shell maps that slot by endpoint to x (ids in order: x first).
    RestoreInput in = restore_input(2);
    const Instance x = row("i-a", LifecycleState::Pending, "127.0.1.1");
    const Instance y = row("i-b", LifecycleState::InService, "127.0.1.1");
    in.instances = {x, y};
    in.provider = {runs(y, "127.0.1.1")};
    if (provider_runs_it)
      in.provider.push_back(runs(x, "127.0.1.2"));  // relaunched meanwhile, elsewhere
    in.lb = {LbMember{"be_web", x.id, true}};
    Fleet fleet(deterministic_deps(1));
    std::vector<Command> out;
    fleet.restore(std::move(in), kStart, out);
    // A pending instance never was in rotation: its slot must go.
    CHECK((names<LbRemove>(out, x.id) || names<LbDrain>(out, x.id)));
  }
}

TEST_CASE(
    "found by the simulation: a slot adopted for an instance that leaves without a drain is freed",
    "[simulation][regression]") {
  // x was terminating when the coordinator crashed (its LbRemove had run);
  // HAProxy's freed slot still shows x's address, so the shell adopts it
  // for x (out of rotation).
  RestoreInput in = restore_input(0);
  const Instance x = row("i-x", LifecycleState::Terminating, "127.0.1.1");
  in.instances = {x};
  in.provider = {runs(x, "127.0.1.1")};
  in.lb = {LbMember{"be_web", x.id, false}};
  Fleet fleet(deterministic_deps(1));
  std::vector<Command> out;
  fleet.restore(std::move(in), kStart, out);
  REQUIRE(names<Terminate>(out, x.id));
  fleet.handle(TerminateCompleted{x.id}, kStart + 100, out);
  REQUIRE(fleet.instance(x.id) == nullptr);
  CHECK(names<LbRemove>(out, x.id));  // the slot the core held for x must be freed
}

TEST_CASE(
    "found by the simulation: a launch re-issued after a restart forgets the lost agent's key: the "
    "new agent enrolls",
    "[simulation][regression]") {
  // x's first process said HELLO (key bound) before the provider's answer,
  // then died; the coordinator crashed; restore re-issues the launch.
  RestoreInput in = restore_input(1);
  Instance x = row("i-x", LifecycleState::Pending, "127.0.1.1");
  x.agent_key = "key-of-the-first-process";
  in.instances = {x};
  Fleet fleet(deterministic_deps(1));
  std::vector<Command> out;
  fleet.restore(std::move(in), kStart, out);
  REQUIRE(names<Launch>(out, x.id));
  // The new process's agent has another key: it must be able to enroll.
  bool open = false;
  for (const SetAgentAccess& a : only<SetAgentAccess>(out))
    open = open || (a.instance_id == x.id && a.enrollment_open);
  CHECK(open);
  CHECK(fleet.instance(x.id)->agent_key.empty());
}

TEST_CASE("found by the simulation: an unhealthy replacement that never served is replaced in turn",
          "[simulation][regression]") {
  Harness h(web_group(2));  // replacement limit 1
  h.bring_up();
  const std::string a = h.in_service().at(0);
  h.on(AgentReport{a, false, false, "crashed", false});  // replaced: r launched first
  const std::string r = h.pending().at(0);
  h.on(LaunchSucceeded{r, "pid-r", "127.0.1.9", 8080});
  h.on(AgentHello{r, "key-r", {}, 0});
  auto c = h.on(
      AgentReport{r, false, false, "crashed", false});  // the replacement crashes while warming
  h.now += 60'000;
  auto later = h.on(Tick{});
  c.insert(c.end(), later.begin(), later.end());
  CHECK(only<Launch>(c).size() == 1);  // r must be replaced in turn
}

TEST_CASE("found by the simulation: restore resumes a drain whose draining row was not written",
          "[simulation][regression]") {
  // scale-in chose x: begin_drain wrote out_of_rotation (exit scale_in),
  // then LbDrain ran, and the coordinator crashed before the draining row.
  RestoreInput in = restore_input(1);
  Instance x = row("i-x", LifecycleState::OutOfRotation, "127.0.1.1");
  x.exit_reason = ExitReason::ScaleIn;
  const Instance y = row("i-y", LifecycleState::InService, "127.0.1.2");
  in.instances = {x, y};
  in.provider = {runs(x, "127.0.1.1"), runs(y, "127.0.1.2")};
  in.lb = {LbMember{"be_web", y.id, true}};
  Fleet fleet(deterministic_deps(1));
  std::vector<Command> out;
  fleet.restore(std::move(in), kStart, out);
  for (int k = 1; k <= 10; ++k) fleet.handle(Tick{}, kStart + k * 10'000, out);
  CHECK(names<Terminate>(out, x.id));  // it was leaving: it must be terminated
}

TEST_CASE(
    "found by the simulation: room under the replacement limit is taken by the next unhealthy "
    "instance",
    "[simulation][regression]") {
  SECTION("a replacement goes into service by its launch answer") {
    Harness h(web_group(3));  // replacement limit 1
    h.bring_up();
    const auto all = h.in_service();
    h.on(AgentReport{all[0], false, false, "crashed", false});  // r1 launched first
    h.on(AgentReport{all[1], false, false, "crashed", false});  // waits: one replacement at a time
    const std::string r1 = h.pending().at(0);
    // r1's agent is faster than the provider's answer.
    h.on(AgentHello{r1, "key-r1", "127.0.1.9", 8080});
    h.on(AgentReport{r1, true, true, {}, false});
    auto c = h.on(LaunchSucceeded{r1, "pid-r1", "127.0.1.9", 8080});
    REQUIRE(h.fleet.instance(r1)->state == LifecycleState::InService);
    h.now += 1'000;
    auto later = h.on(Tick{});
    c.insert(c.end(), later.begin(), later.end());
    CHECK(only<Launch>(c).size() == 1);  // all[1]'s replacement, now that r1 serves
  }
  SECTION("scale-in takes the replacement in flight") {
    ScalingGroup g = web_group(3);  // replacement limit 1
    g.termination_policy = TerminationPolicy::NewestInstance;
    Harness h(g);
    h.bring_up();
    const auto all = h.in_service();
    h.on(AgentReport{all[0], false, false, "crashed", false});  // r1 launched first
    h.on(AgentReport{all[1], false, false, "crashed", false});  // waits: one replacement at a time
    const std::string r1 = h.pending().at(0);
    REQUIRE(h.fleet.set_desired("web", 2, "user", h.now,
                                h.out));  // scale-in chooses r1 (newest, not in service)
    REQUIRE(h.fleet.instance(r1)->exit_reason == ExitReason::ScaleIn);
    std::vector<Command> c = h.take();
    for (const Event& e :
         {Event{LaunchSucceeded{r1, "pid-r1", "127.0.1.9", 8080}}, Event{TerminateCompleted{r1}}}) {
      auto step = h.on(e);  // r1 launches, is drained at once, terminated
      c.insert(c.end(), step.begin(), step.end());
    }
    REQUIRE(h.fleet.instance(r1) == nullptr);
    for (int k = 1; k <= 60; ++k) {  // a quiet minute: the agents report as before
      h.now += 1'000;
      for (const Event& e : {Event{AgentReport{all[1], false, false, "crashed", false}},
                             Event{AgentReport{all[2], true, true, {}, false}}, Event{Tick{}}}) {
        auto later = h.on(e);
        c.insert(c.end(), later.begin(), later.end());
      }
    }
    CHECK(only<Launch>(c).size() == 1);  // all[1] is still unhealthy and must be replaced
  }
}

TEST_CASE("found by the simulation: an agent that drains again between two REPORTs is asked again",
          "[simulation][regression]") {
  // The agent drains on its own, is sent UNDRAIN, undrains and drains again
  // before its next REPORT: every REPORT it sends says draining.
  Harness h(web_group(1));
  h.bring_up();
  const std::string a = h.in_service().at(0);
  auto c = h.on(AgentReport{a, false, true, {}, true});
  REQUIRE(only<SendUndrain>(c).size() == 1);
  std::size_t asked = 1;
  for (int k = 1; k <= 12; ++k) {  // 12 s of REPORTs that all say draining
    h.now += 1'000;
    asked += only<SendUndrain>(h.on(AgentReport{a, false, true, {}, true})).size();
  }
  CHECK(asked >= 3);  // asked again, at most every kUndrainRepeatMs
  CHECK(asked <= 1 + 12'000 / kUndrainRepeatMs);
  h.now += 1'000;
  CHECK(only<SendUndrain>(h.on(AgentReport{a, true, true, {}, false})).empty());
  CHECK(h.fleet.instance(a)->state == LifecycleState::InService);
}
