// Restart reconciliation: stored rows vs. what the provider runs and what the
// LB has. Never double-launch, never orphan.
#include "tests/unit/coordinator/fleet_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::test;

namespace {

constexpr TimeMs kNow = 1'700'000'100'000;

Instance stored(std::string id, LifecycleState state, std::string key) {
  Instance i;
  i.id = id;
  i.group = "web";
  i.state = state;
  i.idempotency_key = std::move(key);
  if (state != LifecycleState::Pending) i.provider_id = "pid-" + id;
  i.address = "127.0.1.1";
  i.port = 8080;
  i.launch_configuration_id = "web";
  i.launch_configuration_version = 1;
  i.created_ms = kNow - 60'000;
  i.launched_ms = kNow - 59'000;
  i.state_since_ms = kNow - 50'000;
  return i;
}

ProviderInstance running(const Instance& i, bool with_pid = true) {
  return ProviderInstance{with_pid ? "pid-" + i.id : "pid-new-" + i.id, i.idempotency_key, i.id, true, "127.0.1.1", 8080};
}

}  // namespace

TEST_CASE("restore adopts, marks vanished, terminates strays, fixes the LB, never double-launches", "[restore][crash]") {
  RestoreInput in;
  in.launch_configurations.push_back(web_config());
  in.groups.push_back(web_group(4));
  const Instance a = stored("i-a", LifecycleState::InService, "k-a");   // running, in LB
  const Instance b = stored("i-b", LifecycleState::InService, "k-b");   // running, LB lost its slot
  const Instance c = stored("i-c", LifecycleState::InService, "k-c");   // gone from the provider
  const Instance d = stored("i-d", LifecycleState::Pending, "k-d");     // launched before the crash
  const Instance e = stored("i-e", LifecycleState::Pending, "k-e");     // launch never reached the provider
  in.instances = {a, b, c, d, e};
  in.provider = {running(a), running(b), running(d, false),
                 ProviderInstance{"pid-stray", "k-stray", "i-stray", true, "127.0.1.50", 8080},
                 ProviderInstance{"pid-foreign", "", "", false, "127.0.1.60", 8080}};
  in.lb = {LbMember{"be_web", "i-a", true}, LbMember{"be_web", "i-c", true}, LbMember{"be_web", "i-gone", false}};

  Fleet fleet(deterministic_deps(3));
  std::vector<Command> out;
  fleet.restore(in, kNow, out);

  // Adopted, untouched in the LB.
  REQUIRE(fleet.instance("i-a") != nullptr);
  CHECK(fleet.instance("i-a")->state == LifecycleState::InService);
  CHECK(fleet.instance("i-a")->runtime.in_lb);
  for (const auto& r : only<LbRegister>(out)) CHECK(r.instance_id != "i-a");
  for (const auto& r : only<LbDrain>(out)) CHECK(r.instance_id != "i-a");

  // The LB lost b's slot: no slot is pointed at it before its agent reports
  // ready in this coordinator's life. Out of rotation until then.
  CHECK(only<LbRegister>(out).empty());
  CHECK(fleet.instance("i-b")->state == LifecycleState::OutOfRotation);
  CHECK_FALSE(fleet.instance("i-b")->runtime.in_lb);

  // Vanished: terminated, recorded, slot freed.
  CHECK(fleet.instance("i-c") == nullptr);
  const auto gone = activities(out, ActivityType::TerminateUnexpectedly);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].instances.at(0).instance_id == "i-c");
  bool terminated_row = false;
  for (const auto& p : only<PersistInstance>(out)) {
    if (p.instance.id == "i-c") terminated_row = p.instance.state == LifecycleState::Terminated;
  }
  CHECK(terminated_row);

  // The pending launch that did happen is adopted under its provider id.
  REQUIRE(fleet.instance("i-d") != nullptr);
  CHECK(fleet.instance("i-d")->state == LifecycleState::Booting);
  CHECK(fleet.instance("i-d")->provider_id == "pid-new-i-d");

  // Exactly one launch: the unconfirmed one, under its original key. With
  // a, b, d, e counting, desired 4 needs nothing more even though c vanished
  // (c's loss is made up by... nobody: 4 remain).
  const auto launches = only<Launch>(out);
  REQUIRE(launches.size() == 1);
  CHECK(launches[0].instance_id == "i-e");
  CHECK(launches[0].idempotency_key == "k-e");

  // Strays: only the tagged one is terminated.
  std::vector<std::string> terminated;
  for (const auto& t : only<Terminate>(out)) terminated.push_back(t.provider_id);
  CHECK(terminated == std::vector<std::string>{"pid-stray"});
  CHECK(activities(out, ActivityType::TerminateStray).size() == 1);

  // LB slots of unknown or vanished instances are freed.
  std::set<std::string> removed;
  for (const auto& r : only<LbRemove>(out)) removed.insert(r.instance_id);
  CHECK(removed == std::set<std::string>{"i-c", "i-gone"});

  // Order: what vanished leaves the LB before anything is launched.
  std::size_t last_remove = 0, first_launch = out.size();
  for (std::size_t k = 0; k < out.size(); ++k) {
    if (std::holds_alternative<LbRemove>(out[k])) last_remove = k;
    if (std::holds_alternative<Launch>(out[k]) && first_launch == out.size()) first_launch = k;
  }
  CHECK(last_remove < first_launch);

  // b's first ready report puts it into rotation.
  out.clear();
  fleet.handle(AgentHello{"i-b", "key-b", {}, 0}, kNow + 100, out);
  fleet.handle(AgentReport{"i-b", true, true, {}, false}, kNow + 200, out);
  const auto regs = only<LbRegister>(out);
  REQUIRE(regs.size() == 1);
  CHECK(regs[0].instance_id == "i-b");
  CHECK(fleet.instance("i-b")->state == LifecycleState::InService);
}

TEST_CASE("restore: a vanished instance's slot is removed before a replacement is launched on its address",
          "[restore][crash]") {
  RestoreInput in;
  in.launch_configurations.push_back(web_config());
  in.groups.push_back(web_group(1));
  const Instance a = stored("i-a", LifecycleState::InService, "k-a");  // killed while the coordinator was down
  in.instances = {a};
  in.lb = {LbMember{"be_web", "i-a", true}};
  Fleet fleet(deterministic_deps(5));
  std::vector<Command> out;
  fleet.restore(in, kNow, out);
  std::optional<std::size_t> remove_at, launch_at;
  for (std::size_t k = 0; k < out.size(); ++k) {
    if (const auto* r = std::get_if<LbRemove>(&out[k]); r != nullptr && r->instance_id == "i-a") remove_at = k;
    if (std::holds_alternative<Launch>(out[k]) && !launch_at) launch_at = k;
  }
  REQUIRE(remove_at);
  REQUIRE(launch_at);
  CHECK(*remove_at < *launch_at);
  // The replacement is granted access for its enrollment before it launches.
  const auto launch = std::get<Launch>(out[*launch_at]);
  bool access = false;
  for (std::size_t k = 0; k < *launch_at; ++k) {
    if (const auto* s = std::get_if<SetAgentAccess>(&out[k]); s != nullptr && s->instance_id == launch.instance_id) {
      access = s->enrollment_open;
    }
  }
  CHECK(access);
}

TEST_CASE("restore launches what is missing only after counting adopted instances", "[restore][crash]") {
  RestoreInput in;
  in.launch_configurations.push_back(web_config());
  in.groups.push_back(web_group(3));
  const Instance a = stored("i-a", LifecycleState::InService, "k-a");
  const Instance c = stored("i-c", LifecycleState::Warming, "k-c");
  in.instances = {a, c};
  in.provider = {running(a)};
  Fleet fleet(deterministic_deps(3));
  std::vector<Command> out;
  fleet.restore(in, kNow, out);
  // c vanished; a remains: two launches bring it back to 3.
  CHECK(only<Launch>(out).size() == 2);
  CHECK(fleet.instance_count() == 3);
}

TEST_CASE("restore finishes interrupted terminations and drains", "[restore][crash]") {
  RestoreInput in;
  in.launch_configurations.push_back(web_config());
  in.groups.push_back(web_group(1));
  Instance t = stored("i-t", LifecycleState::Terminating, "k-t");
  t.exit_reason = ExitReason::ScaleIn;
  Instance g = stored("i-g", LifecycleState::Terminating, "k-g");  // already gone: fine
  g.exit_reason = ExitReason::ScaleIn;
  Instance d = stored("i-d", LifecycleState::Draining, "k-d");
  d.exit_reason = ExitReason::ScaleIn;
  const Instance keep = stored("i-keep", LifecycleState::InService, "k-keep");
  in.instances = {t, g, d, keep};
  in.provider = {running(t), running(d), running(keep)};
  in.lb = {LbMember{"be_web", "i-keep", true}, LbMember{"be_web", "i-d", false}};
  Fleet fleet(deterministic_deps(3));
  std::vector<Command> out;
  fleet.restore(in, kNow, out);
  const auto terms = only<Terminate>(out);
  REQUIRE(terms.size() == 1);
  CHECK(terms[0].instance_id == "i-t");
  CHECK(activities(out, ActivityType::TerminateUnexpectedly).empty());  // i-g was meant to go
  CHECK(fleet.instance("i-g") == nullptr);
  // The draining one resumes draining; no launches, no scale-in.
  const auto drains = only<LbDrain>(out);
  REQUIRE(drains.size() == 1);
  CHECK(drains[0].instance_id == "i-d");
  CHECK(only<Launch>(out).empty());
  CHECK(activities(out, ActivityType::ScaleIn).empty());
}
