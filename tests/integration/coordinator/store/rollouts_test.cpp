// Rollouts in the store (schema v6): put / replace / list newest first /
// active, a group's rollouts go with it, an upgrade from version 5 keeps the
// rows, and a corrupt record is an error, not a crash.
#include <string>

#include "coordinator/core/rollout.hpp"
#include "coordinator/io/json/rollout_json.hpp"
#include "coordinator/io/store/migrations.hpp"
#include "tests/integration/coordinator/store/store_test_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::store;
using namespace tide::coordinator::store::testing;

namespace {

std::int64_t count(Database& db, const std::string& sql) {
  auto n = db.query_int("count", sql);
  TIDE_REQUIRE_OK(n);
  return *n;
}

Rollout sample_rollout(const std::string& id, TimeMs created_ms, RolloutState state = RolloutState::Running,
                       const std::string& group = "web-group") {
  Rollout r;
  r.id = id;
  r.group = group;
  r.from_launch_configuration = "web";
  r.from_version = 1;
  r.to_launch_configuration = "web";
  r.to_version = 2;
  r.strategy.batch = Amount{2, false};
  r.strategy.pause_at_percent = {50};
  r.strategy.canary.count = 1;
  r.strategy.on_failure = FailureAction::Pause;
  r.state = state;
  r.batch = 1;
  r.batch_old = {"i-1", "i-2"};
  r.canary = {"i-9"};
  r.reason = "say \"why\" \xc3\xa9";
  r.created_ms = created_ms;
  r.updated_ms = created_ms + 10;
  if (is_terminal(state)) r.finished_ms = created_ms + 20;
  return r;
}

std::vector<std::string> ids(const std::vector<Rollout>& rollouts) {
  std::vector<std::string> out;
  for (const Rollout& r : rollouts) out.push_back(r.id);
  return out;
}

}  // namespace

TEST_CASE("rollouts are put, replaced and listed newest first", "[store][rollout]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store.insert_group(sample_group("other-group")));
  const Rollout first = sample_rollout("r-1", 1'000, RolloutState::Succeeded);
  const Rollout second = sample_rollout("r-2", 2'000, RolloutState::Cancelled);
  Rollout third = sample_rollout("r-3", 3'000);
  TIDE_REQUIRE_OK(store.put_rollout(second));
  TIDE_REQUIRE_OK(store.put_rollout(third));
  TIDE_REQUIRE_OK(store.put_rollout(first));
  TIDE_REQUIRE_OK(store.put_rollout(sample_rollout("r-other", 5'000, RolloutState::Running, "other-group")));

  auto listed = store.list_rollouts("web-group", 10);
  TIDE_REQUIRE_OK(listed);
  CHECK(ids(*listed) == std::vector<std::string>{"r-3", "r-2", "r-1"});
  CHECK(listed->at(0) == third);
  CHECK(listed->at(2) == first);
  auto limited = store.list_rollouts("web-group", 2);
  TIDE_REQUIRE_OK(limited);
  CHECK(ids(*limited) == std::vector<std::string>{"r-3", "r-2"});
  auto none = store.list_rollouts("no-such-group", 10);
  TIDE_REQUIRE_OK(none);
  CHECK(none->empty());

  // Replaced by id: the row follows the record.
  third.state = RolloutState::Paused;
  third.reason = "50% replaced";
  third.next_pause_percent = 1;
  third.updated_ms = 3'500;
  TIDE_REQUIRE_OK(store.put_rollout(third));
  listed = store.list_rollouts("web-group", 10);
  TIDE_REQUIRE_OK(listed);
  REQUIRE(listed->size() == 3);
  CHECK(listed->at(0) == third);
  CHECK(count(store.database(), "SELECT count(*) FROM rollouts") == 4);
  CHECK(count(store.database(), "SELECT count(*) FROM rollouts WHERE id = 'r-3' AND state = 'paused' "
                                "AND updated_ms = 3500") == 1);

  for (const std::size_t bad : {std::size_t{0}, std::size_t{1001}}) {
    auto refused = store.list_rollouts("web-group", bad);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind == StoreError::Kind::Invalid);
  }
}

TEST_CASE("active rollouts are those not in a terminal state, oldest first", "[store][rollout]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  TimeMs created_ms = 10'000;
  for (const RolloutState state : rollout_states()) {
    created_ms -= 100;  // later states are older
    TIDE_REQUIRE_OK(store.put_rollout(sample_rollout("r-" + std::string(to_string(state)), created_ms, state)));
  }
  auto active = store.active_rollouts();
  TIDE_REQUIRE_OK(active);
  CHECK(ids(*active) == std::vector<std::string>{"r-rolling_back", "r-paused", "r-running"});
  for (const Rollout& r : *active) CHECK_FALSE(is_terminal(r.state));

  // A rollout that finishes leaves the active list.
  Rollout running = sample_rollout("r-running", 9'900);
  running.state = RolloutState::Succeeded;
  running.finished_ms = 20'000;
  TIDE_REQUIRE_OK(store.put_rollout(running));
  active = store.active_rollouts();
  TIDE_REQUIRE_OK(active);
  CHECK(ids(*active) == std::vector<std::string>{"r-rolling_back", "r-paused"});
}

TEST_CASE("a rollout is refused when it could not be read back or its group is missing", "[store][rollout]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  Rollout invalid = sample_rollout("r-1", 1'000);
  invalid.strategy.batch = Amount{0, false};
  auto refused = store.put_rollout(invalid);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == StoreError::Kind::Invalid);
  CHECK_THAT(refused.error().message, Catch::StartsWith("put rollout r-1") && Catch::Contains("strategy.batch"));

  auto orphan = store.put_rollout(sample_rollout("r-2", 1'000, RolloutState::Running, "no-such-group"));
  REQUIRE_FALSE(orphan);
  CHECK(orphan.error().kind == StoreError::Kind::Constraint);
  auto unnamed = store.put_rollout(sample_rollout("", 1'000));
  REQUIRE_FALSE(unnamed);
  CHECK(unnamed.error().kind == StoreError::Kind::Constraint);
  CHECK(count(store.database(), "SELECT count(*) FROM rollouts") == 0);
}

TEST_CASE("a group's rollouts go with it and do not block its delete", "[store][rollout]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store.insert_group(sample_group("other-group")));
  TIDE_REQUIRE_OK(store.put_rollout(sample_rollout("r-1", 1'000, RolloutState::Succeeded)));
  TIDE_REQUIRE_OK(store.put_rollout(sample_rollout("r-2", 2'000, RolloutState::Paused)));
  TIDE_REQUIRE_OK(store.put_rollout(sample_rollout("r-3", 3'000, RolloutState::Running, "other-group")));
  TIDE_REQUIRE_OK(store.delete_group("web-group"));
  CHECK(count(store.database(), "SELECT count(*) FROM rollouts WHERE group_name = 'web-group'") == 0);
  auto active = store.active_rollouts();
  TIDE_REQUIRE_OK(active);
  CHECK(ids(*active) == std::vector<std::string>{"r-3"});
  CHECK(count(store.database(), "SELECT count(*) FROM pragma_foreign_key_check") == 0);
}

TEST_CASE("a corrupt rollout row is an error naming the rollout, not a crash", "[store][rollout]") {
  TempDir dir;
  Store store = seeded_store(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store.put_rollout(sample_rollout("r-1", 1'000)));
  Database& db = store.database();
  const auto expect_unreadable = [&](const std::string& detail) {
    auto listed = store.list_rollouts("web-group", 10);
    REQUIRE_FALSE(listed);
    CHECK(listed.error().kind == StoreError::Kind::Invalid);
    CHECK_THAT(listed.error().message, Catch::StartsWith("list rollouts of group web-group: unreadable rollout r-1") &&
                                           Catch::Contains(detail));
    auto active = store.active_rollouts();
    REQUIRE_FALSE(active);
    CHECK(active.error().kind == StoreError::Kind::Invalid);
  };

  TIDE_REQUIRE_OK(db.exec("corrupt", "UPDATE rollouts SET record = json_set(record, '$.state', 'levitating')"));
  expect_unreadable("state: unknown value 'levitating'");
  TIDE_REQUIRE_OK(db.exec("corrupt", "UPDATE rollouts SET record = json_remove(record, '$.strategy')"));
  expect_unreadable("strategy: missing");
  TIDE_REQUIRE_OK(db.exec("corrupt", "UPDATE rollouts SET record = '[]'"));
  expect_unreadable("must be a JSON object");
  // Text that is not JSON at all gets past the CHECK only when checks are off.
  TIDE_REQUIRE_OK(db.exec("corrupt", "PRAGMA ignore_check_constraints = ON; "
                                     "UPDATE rollouts SET record = '{\"id\": \"r-1\", '; "
                                     "PRAGMA ignore_check_constraints = OFF"));
  expect_unreadable("the record is not JSON");

  // A record that reads but disagrees with the columns it is listed by.
  TIDE_REQUIRE_OK(store.put_rollout(sample_rollout("r-1", 1'000)));
  TIDE_REQUIRE_OK(db.exec("corrupt", "UPDATE rollouts SET state = 'paused'"));
  expect_unreadable("differs from its row");

  // Written again, it reads again.
  TIDE_REQUIRE_OK(store.put_rollout(sample_rollout("r-1", 1'000)));
  auto listed = store.list_rollouts("web-group", 10);
  TIDE_REQUIRE_OK(listed);
  CHECK(listed->at(0) == sample_rollout("r-1", 1'000));
}

TEST_CASE("a version 5 file gains the rollouts table and keeps its rows", "[store][rollout][migrations]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  {
    auto db = Database::open(path, OpenOptions{});
    TIDE_REQUIRE_OK(db);
    auto version = migrate(*db, 5);
    TIDE_REQUIRE_OK(version);
    REQUIRE(*version == 5);
    CHECK(count(*db, "SELECT count(*) FROM sqlite_master WHERE name = 'rollouts'") == 0);
    // Rows as a version-5 tide wrote them (plain SQL).
    TIDE_REQUIRE_OK(db->exec(
        "seed v5",
        "INSERT INTO launch_configurations VALUES ('web', 1, 'run', 8080, '{\"A\":\"1\"}', "
        "'/ready', 1000, 0.5, 10, 250, '{\"S\":\"/etc/s\"}');"
        "INSERT INTO scaling_groups VALUES ('web-group', 0, 4, 2, 'web', 1, 'newest_instance', "
        "'be', 0, 1000, 2000, 3000, 4000, 0, 2, 1000, 2.0, 60000, 0.3, 0.1, 10000, 1, 20, 21);"
        "INSERT INTO instances VALUES ('i-1', 'web-group', 'launched', 'in_service', 0, 'healthy', "
        "'', 'pid:1', '127.0.1.1', 8080, 'web', 1, 'hash', 'key', 'idem-1', 'none', '', "
        "30, 31, 32, 0);"
        "INSERT INTO scaling_policies VALUES ('web-group', 'cpu', 'alarm', "
        "'{\"type\":\"alarm\",\"name\":\"cpu\",\"metric\":\"cpu\",\"comparison\":\">\",\"threshold\":70,"
        "\"adjustment\":1}', 40);"));
  }
  auto store = Store::open(path);
  TIDE_REQUIRE_OK(store);
  CHECK(store->schema_version() == latest_schema_version());
  CHECK(store->schema_version() >= 6);
  auto config = store->get_launch_configuration("web", 1);
  TIDE_REQUIRE_OK(config);
  CHECK(config->agent.readiness_period_ms == 250);
  CHECK(config->env_files.at("S") == "/etc/s");
  auto instance = store->get_instance("i-1");
  TIDE_REQUIRE_OK(instance);
  CHECK(instance->state == LifecycleState::InService);
  auto specs = store->load_specs();
  TIDE_REQUIRE_OK(specs);
  CHECK(specs->policies.size() == 1);
  CHECK(count(store->database(), "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                 "AND name = 'rollouts_by_group_created'") == 1);

  // What version 6 added works on the upgraded file.
  const Rollout rollout = sample_rollout("r-1", 1'000);
  TIDE_REQUIRE_OK(store->put_rollout(rollout));
  auto listed = store->list_rollouts("web-group", 10);
  TIDE_REQUIRE_OK(listed);
  REQUIRE(listed->size() == 1);
  CHECK(listed->at(0) == rollout);
  CHECK(*store->integrity_check() == "ok");
}
