// Round trips for every table, launch-configuration versioning and
// immutability, delete-when-unused rules, foreign keys, transactions.
#include <string>

#include "tests/integration/coordinator/store/store_test_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::store;
using namespace tide::coordinator::store::testing;

namespace {

std::int64_t count(Store& store, const std::string& sql) {
  auto n = store.database().query_int("count", sql);
  TIDE_REQUIRE_OK(n);
  return *n;
}

Activity sample_activity(const std::string& id, TimeMs start_ms,
                         ActivityType type = ActivityType::ScaleOut,
                         ActivityStatus status = ActivityStatus::Successful) {
  Activity a;
  a.id = id;
  a.group = "web-group";
  a.type = type;
  a.cause = "alarm cpu_high: avg cpu_pct 91.5 > 80 for 3 x 1 s";
  a.status = status;
  a.start_ms = start_ms;
  if (status != ActivityStatus::Running) a.end_ms = start_ms + 500;
  a.instances = {{"i-0000000000000001", "launched as pid 4242", true},
                 {"i-0000000000000002", "provider error: no capacity", false}};
  return a;
}

}  // namespace

TEST_CASE("launch configurations round-trip", "[store][crud]") {
  TempDir dir;
  auto store = Store::open(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store);
  LaunchConfiguration config = sample_config();
  config.agent.readiness_period_ms = 150;
  TIDE_REQUIRE_OK(store->insert_launch_configuration(config));
  auto read = store->get_launch_configuration("web", 1);
  TIDE_REQUIRE_OK(read);
  CHECK(*read == config);
  // Rewritten in place while unused: the period goes back to the agent's default.
  config.agent.readiness_period_ms = 0;
  TIDE_REQUIRE_OK(store->update_launch_configuration(config));
  read = store->get_launch_configuration("web", 1);
  TIDE_REQUIRE_OK(read);
  CHECK(*read == config);

  // Same (id, version) twice is a constraint error naming the operation.
  auto again = store->insert_launch_configuration(config);
  REQUIRE_FALSE(again);
  CHECK(again.error().kind == StoreError::Kind::Constraint);
  CHECK_THAT(again.error().message, Catch::StartsWith("insert launch configuration web v1"));

  auto missing = store->get_launch_configuration("web", 9);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().kind == StoreError::Kind::NotFound);

  LaunchConfiguration bad = sample_config("bad");
  bad.agent.report_interval_ms = 5;
  auto refused = store->insert_launch_configuration(bad);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == StoreError::Kind::Invalid);
  CHECK_THAT(refused.error().message, Catch::Contains("report_interval_ms"));
}

TEST_CASE("launch configurations are versioned by id", "[store][crud][lc]") {
  TempDir dir;
  auto store = Store::open(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store);
  LaunchConfiguration config = sample_config();
  config.version = 77;  // ignored: the store picks the next version
  auto v1 = store->create_launch_configuration_version(config);
  TIDE_REQUIRE_OK(v1);
  CHECK(v1->version == 1);
  config.command = "tide-sample-app --port 9090";
  config.port = 9090;
  auto v2 = store->create_launch_configuration_version(config);
  TIDE_REQUIRE_OK(v2);
  CHECK(v2->version == 2);
  auto other = store->create_launch_configuration_version(sample_config("api"));
  TIDE_REQUIRE_OK(other);
  CHECK(other->version == 1);

  auto latest = store->get_latest_launch_configuration("web");
  TIDE_REQUIRE_OK(latest);
  CHECK(*latest == *v2);
  CHECK(store->get_launch_configuration("web", 1)->port == 8080);

  auto all = store->list_launch_configurations();
  TIDE_REQUIRE_OK(all);
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].id == "api");
  CHECK((*all)[1].version == 1);
  CHECK((*all)[2].version == 2);
}

TEST_CASE("a launch configuration is immutable once used and deleted only when unused",
          "[store][crud][lc]") {
  TempDir dir;
  auto store = Store::open(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store);
  TIDE_REQUIRE_OK(store->insert_launch_configuration(sample_config()));

  // Unused: may be edited in place.
  LaunchConfiguration edited = sample_config();
  edited.command = "edited";
  TIDE_REQUIRE_OK(store->update_launch_configuration(edited));
  CHECK(store->get_launch_configuration("web", 1)->command == "edited");
  CHECK_FALSE(*store->launch_configuration_in_use("web", 1));

  // A group uses it: frozen.
  TIDE_REQUIRE_OK(store->insert_group(sample_group()));
  CHECK(*store->launch_configuration_in_use("web", 1));
  edited.command = "edited again";
  auto refused = store->update_launch_configuration(edited);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == StoreError::Kind::InUse);
  CHECK_THAT(refused.error().message, Catch::Contains("web v1") && Catch::Contains("new version"));
  CHECK(store->get_launch_configuration("web", 1)->command == "edited");

  // Even a raw UPDATE is stopped by the trigger.
  auto raw = store->database().exec(
      "raw update", "UPDATE launch_configurations SET command = 'x' WHERE name = 'web'");
  REQUIRE_FALSE(raw);
  CHECK(raw.error().kind == StoreError::Kind::Constraint);
  CHECK_THAT(raw.error().message, Catch::Contains("immutable"));

  auto del = store->delete_launch_configuration("web", 1);
  REQUIRE_FALSE(del);
  CHECK(del.error().kind == StoreError::Kind::InUse);

  // The change is a new version; the group moves to it; v1 is now used by an
  // instance only, still frozen.
  auto v2 = store->create_launch_configuration_version(edited);
  TIDE_REQUIRE_OK(v2);
  TIDE_REQUIRE_OK(store->upsert_instance(sample_instance()));  // launched from v1
  ScalingGroup group = sample_group("web-group", "web", v2->version);
  TIDE_REQUIRE_OK(store->update_group(group));
  CHECK(*store->launch_configuration_in_use("web", 1));
  CHECK(store->delete_launch_configuration("web", 1).error().kind == StoreError::Kind::InUse);

  // Once the instance is gone v1 can be deleted; v2 cannot (the group).
  TIDE_REQUIRE_OK(store->delete_instance("i-0000000000000001"));
  TIDE_REQUIRE_OK(store->delete_launch_configuration("web", 1));
  CHECK(store->get_launch_configuration("web", 1).error().kind == StoreError::Kind::NotFound);
  CHECK(store->delete_launch_configuration("web", 2).error().kind == StoreError::Kind::InUse);
  CHECK(store->delete_launch_configuration("web", 5).error().kind == StoreError::Kind::NotFound);
  CHECK(store->update_launch_configuration(sample_config("nope")).error().kind ==
        StoreError::Kind::NotFound);
}

TEST_CASE("scaling groups round-trip", "[store][crud]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  auto read = store.get_group("web-group");
  TIDE_REQUIRE_OK(read);
  CHECK(*read == sample_group());

  ScalingGroup changed = sample_group();
  changed.desired = 7;
  changed.enabled = true;
  changed.lb = LbBinding{"", 0};
  changed.termination_policy = TerminationPolicy::NewestInstance;
  changed.retry.multiplier = 3.25;
  changed.updated_ms = changed.updated_ms + 1;
  TIDE_REQUIRE_OK(store.update_group(changed));
  CHECK(*store.get_group("web-group") == changed);

  ScalingGroup invalid = changed;
  invalid.desired = 11;  // > max
  auto refused = store.update_group(invalid);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == StoreError::Kind::Invalid);
  CHECK_THAT(refused.error().message,
             Catch::Contains("update group web-group") && Catch::Contains("max"));

  // The CHECK holds for raw SQL too.
  auto raw = store.database().exec("raw", "UPDATE scaling_groups SET desired = 99");
  REQUIRE_FALSE(raw);
  CHECK(raw.error().kind == StoreError::Kind::Constraint);

  CHECK(store.update_group(sample_group("ghost")).error().kind == StoreError::Kind::NotFound);
  CHECK(store.get_group("ghost").error().kind == StoreError::Kind::NotFound);
  CHECK(store.insert_group(sample_group()).error().kind == StoreError::Kind::Constraint);

  TIDE_REQUIRE_OK(store.insert_group(sample_group("api-group")));
  auto groups = store.list_groups();
  TIDE_REQUIRE_OK(groups);
  REQUIRE(groups->size() == 2);
  CHECK((*groups)[0].name == "api-group");
}

TEST_CASE("instances round-trip", "[store][crud]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  Instance launched = sample_instance();
  launched.runtime.agent_connected = true;  // memory only: must not come back
  TIDE_REQUIRE_OK(store.upsert_instance(launched));
  auto read = store.get_instance(launched.id);
  TIDE_REQUIRE_OK(read);
  CHECK(read->runtime == InstanceRuntime{});
  launched.runtime = {};
  CHECK(*read == launched);

  // An attached instance has no launch configuration.
  Instance attached = sample_instance("i-00000000000000a2");
  attached.origin = InstanceOrigin::Attached;
  attached.launch_configuration_id.clear();
  attached.launch_configuration_version = 0;
  attached.state = LifecycleState::InService;
  attached.health = Health::Healthy;
  attached.health_reason.clear();
  attached.exit_reason = ExitReason::None;
  TIDE_REQUIRE_OK(store.upsert_instance(attached));
  CHECK(*store.get_instance(attached.id) == attached);

  // Upsert updates in place.
  launched.state = LifecycleState::Draining;
  launched.agent_key = "other-key";
  launched.state_since_ms += 10;
  TIDE_REQUIRE_OK(store.upsert_instance(launched));
  CHECK(*store.get_instance(launched.id) == launched);

  TIDE_REQUIRE_OK(store.insert_group(sample_group("api-group")));
  TIDE_REQUIRE_OK(store.upsert_instance(sample_instance("i-0000000000000003", "api-group")));
  CHECK(store.list_instances()->size() == 3);
  auto in_web = store.list_instances("web-group");
  TIDE_REQUIRE_OK(in_web);
  REQUIRE(in_web->size() == 2);
  CHECK((*in_web)[0].id == "i-0000000000000001");
  CHECK((*in_web)[1].id == "i-00000000000000a2");

  TIDE_REQUIRE_OK(store.delete_instance(attached.id));
  CHECK(store.get_instance(attached.id).error().kind == StoreError::Kind::NotFound);
  CHECK(store.delete_instance(attached.id).error().kind == StoreError::Kind::NotFound);
}

TEST_CASE("a corrupt row is an error naming the field, not a crash", "[store][crud]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store.upsert_instance(sample_instance()));
  TIDE_REQUIRE_OK(store.database().exec("corrupt", "UPDATE instances SET state = 'levitating'"));
  auto read = store.get_instance("i-0000000000000001");
  REQUIRE_FALSE(read);
  CHECK(read.error().kind == StoreError::Kind::Invalid);
  CHECK_THAT(read.error().message, Catch::Contains("get instance i-0000000000000001") &&
                                       Catch::Contains("state 'levitating'"));
  auto all = store.list_instances();
  REQUIRE_FALSE(all);
  CHECK(all.error().kind == StoreError::Kind::Invalid);

  // An unused configuration (a used one is frozen by a trigger).
  TIDE_REQUIRE_OK(store.insert_launch_configuration(sample_config("spare")));
  TIDE_REQUIRE_OK(store.database().exec(
      "corrupt", "UPDATE launch_configurations SET env_json = '[1]' WHERE name = 'spare'"));
  auto config = store.get_launch_configuration("spare", 1);
  REQUIRE_FALSE(config);
  CHECK_THAT(config.error().message, Catch::Contains("env_json"));
}

TEST_CASE("foreign keys are enforced", "[store][crud][fk]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  auto check_fk = [](const Result<void>& result) {
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == StoreError::Kind::Constraint);
    CHECK_THAT(result.error().message, Catch::Contains("FOREIGN KEY"));
  };
  check_fk(store.insert_group(sample_group("g2", "no-such-lc", 1)));
  check_fk(store.insert_group(sample_group("g2", "web", 2)));
  check_fk(store.upsert_instance(sample_instance("i-x", "no-such-group")));
  Instance wrong_version = sample_instance("i-y");
  wrong_version.launch_configuration_version = 3;
  check_fk(store.upsert_instance(wrong_version));
  Activity orphan = sample_activity("a-1", 100);
  orphan.group = "no-such-group";
  check_fk(store.insert_activity(orphan));
  check_fk(store.upsert_activity_instance("a-none", {"i-1", "m", true}));
  check_fk(store.insert_idempotency_key(
      {"k", "launch", "i-none", ProviderCallState::Requested, "", 1, {}}));
  CHECK(count(store, "SELECT count(*) FROM instances") == 0);
  CHECK(count(store, "SELECT count(*) FROM activities") == 0);
  // A failed multi-row insert leaves nothing behind.
  CHECK(count(store, "SELECT count(*) FROM activity_instances") == 0);
  CHECK(count(store, "SELECT count(*) FROM pragma_foreign_key_check") == 0);
}

TEST_CASE("a group is deleted only when none of its instances is alive", "[store][crud]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  Instance alive = sample_instance("i-1");
  alive.state = LifecycleState::InService;
  Instance gone = sample_instance("i-2");
  gone.state = LifecycleState::Terminated;
  TIDE_REQUIRE_OK(store.upsert_instance(alive));
  TIDE_REQUIRE_OK(store.upsert_instance(gone));
  TIDE_REQUIRE_OK(store.insert_idempotency_key(
      {"k-2", "launch", "i-2", ProviderCallState::Completed, "ok", 1, 2}));
  TIDE_REQUIRE_OK(store.insert_activity(sample_activity("a-1", 100)));

  auto refused = store.delete_group("web-group");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == StoreError::Kind::InUse);
  CHECK_THAT(refused.error().message, Catch::Contains("delete group web-group: 1 instance"));
  CHECK(count(store, "SELECT count(*) FROM instances") == 2);  // rolled back, nothing purged

  alive.state = LifecycleState::Detached;
  TIDE_REQUIRE_OK(store.upsert_instance(alive));
  TIDE_REQUIRE_OK(store.delete_group("web-group"));
  CHECK(store.get_group("web-group").error().kind == StoreError::Kind::NotFound);
  CHECK(count(store, "SELECT count(*) FROM instances") == 0);
  CHECK(count(store, "SELECT count(*) FROM idempotency_keys") == 0);
  CHECK(count(store, "SELECT count(*) FROM activities") == 0);
  CHECK(count(store, "SELECT count(*) FROM activity_instances") == 0);
  CHECK(store.delete_group("web-group").error().kind == StoreError::Kind::NotFound);
  // The launch configuration is free again.
  TIDE_REQUIRE_OK(store.delete_launch_configuration("web", 1));
}

TEST_CASE("a provider call is written before it is made, atomically with its instance",
          "[store][crud][idempotency]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  Instance pending = sample_instance("i-1");
  pending.state = LifecycleState::Pending;
  pending.provider_id.clear();
  pending.launched_ms = 0;
  pending.idempotency_key = "launch-i-1";
  IdempotencyRecord call{"launch-i-1", "launch", "i-1",       ProviderCallState::Requested,
                         "",           1000,     std::nullopt};
  TIDE_REQUIRE_OK(store.begin_provider_call(pending, call));
  CHECK(*store.get_instance("i-1") == pending);
  // The call's commit was forced to disk; the connection is back to NORMAL.
  CHECK(count(store, "PRAGMA synchronous") == 1);
  auto requested = store.requested_provider_calls();
  TIDE_REQUIRE_OK(requested);
  REQUIRE(requested->size() == 1);
  CHECK((*requested)[0] == call);

  // The same key again is refused, and the instance change that came with it
  // is rolled back.
  Instance changed = pending;
  changed.state = LifecycleState::Booting;
  auto again = store.begin_provider_call(changed, call);
  REQUIRE_FALSE(again);
  CHECK(again.error().kind == StoreError::Kind::Constraint);
  CHECK(store.get_instance("i-1")->state == LifecycleState::Pending);

  Instance booted = pending;
  booted.state = LifecycleState::Booting;
  booted.provider_id = "pid:99";
  booted.launched_ms = 1200;
  TIDE_REQUIRE_OK(store.finish_provider_call(booted, "launch-i-1", "{\"pid\":99}", 1200));
  CHECK(*store.get_instance("i-1") == booted);
  auto done = store.get_idempotency_key("launch-i-1");
  TIDE_REQUIRE_OK(done);
  CHECK(done->state == ProviderCallState::Completed);
  CHECK(done->result == "{\"pid\":99}");
  CHECK(done->completed_ms == 1200);
  CHECK(store.requested_provider_calls()->empty());

  // Finishing an unknown key changes nothing.
  Instance other = booted;
  other.state = LifecycleState::Warming;
  auto unknown = store.finish_provider_call(other, "no-such-key", "", 1300);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().kind == StoreError::Kind::NotFound);
  CHECK(store.get_instance("i-1")->state == LifecycleState::Booting);

  // A key without an instance, and deletion.
  IdempotencyRecord loose{"sweep-1", "terminate", "",          ProviderCallState::Requested,
                          "",        5,           std::nullopt};
  TIDE_REQUIRE_OK(store.insert_idempotency_key(loose));
  CHECK(*store.get_idempotency_key("sweep-1") == loose);
  TIDE_REQUIRE_OK(store.complete_idempotency_key("sweep-1", "gone", 6));
  TIDE_REQUIRE_OK(store.delete_idempotency_key("sweep-1"));
  CHECK(store.get_idempotency_key("sweep-1").error().kind == StoreError::Kind::NotFound);
}

TEST_CASE("activities are appended, updated and listed newest first", "[store][crud][activity]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store.insert_group(sample_group("api-group")));

  Activity running = sample_activity("a-3", 3000, ActivityType::ScaleIn, ActivityStatus::Running);
  running.instances.clear();
  TIDE_REQUIRE_OK(store.insert_activity(sample_activity("a-1", 1000)));
  TIDE_REQUIRE_OK(store.insert_activity(sample_activity("a-2", 2000, ActivityType::ReplaceUnhealthy,
                                                        ActivityStatus::PartiallySuccessful)));
  TIDE_REQUIRE_OK(store.insert_activity(running));
  Activity elsewhere = sample_activity("a-9", 2500);
  elsewhere.group = "api-group";
  TIDE_REQUIRE_OK(store.insert_activity(elsewhere));

  CHECK(*store.get_activity("a-1") == sample_activity("a-1", 1000));
  CHECK(store.insert_activity(sample_activity("a-1", 1000)).error().kind ==
        StoreError::Kind::Constraint);

  // Progress of the running one: per-instance messages, then the end.
  TIDE_REQUIRE_OK(store.upsert_activity_instance("a-3", {"i-5", "draining", true}));
  TIDE_REQUIRE_OK(store.upsert_activity_instance("a-3", {"i-6", "draining", true}));
  TIDE_REQUIRE_OK(store.upsert_activity_instance("a-3", {"i-5", "terminated after drain", true}));
  TIDE_REQUIRE_OK(store.update_activity_status("a-3", ActivityStatus::Successful, 3900));
  auto finished = store.get_activity("a-3");
  TIDE_REQUIRE_OK(finished);
  CHECK(finished->status == ActivityStatus::Successful);
  CHECK(finished->end_ms == 3900);
  REQUIRE(finished->instances.size() == 2);
  CHECK(finished->instances[0] == ActivityInstance{"i-5", "terminated after drain", true});
  CHECK(finished->instances[1].instance_id == "i-6");
  CHECK(store.update_activity_status("a-none", ActivityStatus::Failed, 1).error().kind ==
        StoreError::Kind::NotFound);

  auto ids = [&](const ActivityFilter& filter) {
    auto list = store.list_activities("web-group", filter);
    TIDE_REQUIRE_OK(list);
    std::vector<std::string> out;
    for (const Activity& a : *list) out.push_back(a.id);
    return out;
  };
  auto filter = [](auto set) {
    ActivityFilter f;
    set(f);
    return f;
  };
  using V = std::vector<std::string>;
  CHECK(ids({}) == V{"a-3", "a-2", "a-1"});
  CHECK(ids(filter([](ActivityFilter& f) { f.limit = 2; })) == V{"a-3", "a-2"});
  CHECK(ids(filter([](ActivityFilter& f) { f.status = ActivityStatus::Successful; })) ==
        V{"a-3", "a-1"});
  CHECK(ids(filter([](ActivityFilter& f) { f.type = ActivityType::ReplaceUnhealthy; })) ==
        V{"a-2"});
  CHECK(ids(filter([](ActivityFilter& f) { f.since_ms = 2000; })) == V{"a-3", "a-2"});
  CHECK(ids(filter([](ActivityFilter& f) { f.until_ms = 2000; })) == V{"a-1"});
  CHECK(ids(filter([](ActivityFilter& f) {
          f.status = ActivityStatus::Successful;
          f.since_ms = 1001;
          f.until_ms = 5000;
        })) == V{"a-3"});
  CHECK(ids(filter([](ActivityFilter& f) { f.type = ActivityType::Detach; })).empty());
  auto full = store.list_activities("web-group");
  TIDE_REQUIRE_OK(full);
  CHECK((*full)[2] == sample_activity("a-1", 1000));
  CHECK(store.list_activities("web-group", filter([](ActivityFilter& f) { f.limit = 0; }))
            .error()
            .kind == StoreError::Kind::Invalid);
  CHECK(store.list_activities("api-group")->size() == 1);
}

TEST_CASE("a transaction groups calls and rolls back unless committed", "[store][crud]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  {
    auto tx = store.begin_transaction("two instances");
    TIDE_REQUIRE_OK(tx);
    TIDE_REQUIRE_OK(store.upsert_instance(sample_instance("i-1")));
    TIDE_REQUIRE_OK(store.begin_provider_call(
        sample_instance("i-2"), {"k", "launch", "i-2", ProviderCallState::Requested, "", 1, {}}));
    // Dropped without commit.
  }
  CHECK(store.list_instances()->empty());
  CHECK(store.requested_provider_calls()->empty());
  {
    auto tx = store.begin_transaction("two instances");
    TIDE_REQUIRE_OK(tx);
    TIDE_REQUIRE_OK(store.upsert_instance(sample_instance("i-1")));
    TIDE_REQUIRE_OK(store.upsert_instance(sample_instance("i-2")));
    TIDE_REQUIRE_OK(tx->commit());
  }
  CHECK(store.list_instances()->size() == 2);
}

TEST_CASE("several provider calls are written together or not at all",
          "[store][crud][idempotency]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  auto call = [](const std::string& id, const std::string& key) {
    Instance instance = sample_instance(id);
    instance.state = LifecycleState::Pending;
    instance.idempotency_key = key;
    return Store::ProviderCall{
        instance, {key, "launch", id, ProviderCallState::Requested, "", 7, std::nullopt}};
  };
  // The third reuses the first one's key: the whole batch is refused.
  auto refused =
      store.begin_provider_calls({call("i-1", "k-1"), call("i-2", "k-2"), call("i-3", "k-1")});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == StoreError::Kind::Constraint);
  CHECK(store.list_instances()->empty());
  CHECK(store.requested_provider_calls()->empty());
  CHECK(count(store, "PRAGMA synchronous") == 1);

  TIDE_REQUIRE_OK(
      store.begin_provider_calls({call("i-1", "k-1"), call("i-2", "k-2"), call("i-3", "k-3")}));
  CHECK(store.list_instances()->size() == 3);
  CHECK(store.requested_provider_calls()->size() == 3);
  Store::ProviderCall completed = call("i-4", "k-4");
  completed.call.state = ProviderCallState::Completed;
  CHECK(store.begin_provider_calls({completed}).error().kind == StoreError::Kind::Invalid);
}
