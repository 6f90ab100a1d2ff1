// Schema migrations: fresh file, re-open, upgrade from version 1, refusal of
// a newer file, and clear errors for files that are not usable databases.
#include "coordinator/io/store/migrations.hpp"

#include <fstream>
#include <string>

#include <sqlite3.h>

#include "tests/integration/coordinator/store/store_test_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::store;
using namespace tide::coordinator::store::testing;

namespace {

std::string schema_text(Database& db) {
  auto text =
      db.query_text("read schema",
                    "SELECT group_concat(type || ':' || name || ':' || coalesce(sql, ''), '\n') "
                    "FROM (SELECT * FROM sqlite_master ORDER BY type, name)");
  REQUIRE(text);
  return *text;
}

std::int64_t count(Database& db, const std::string& sql) {
  auto n = db.query_int("count", sql);
  TIDE_REQUIRE_OK(n);
  return *n;
}

}  // namespace

TEST_CASE("migration list is ascending from 1 without gaps", "[store][migrations]") {
  std::int64_t expected = 1;
  for (const Migration& migration : migrations()) {
    CHECK(migration.version == expected);
    CHECK_FALSE(migration.description.empty());
    ++expected;
  }
  CHECK(latest_schema_version() == expected - 1);
  CHECK(latest_schema_version() >= 2);
}

TEST_CASE("a fresh file is created at the latest version with WAL and foreign keys",
          "[store][migrations]") {
  TempDir dir;
  auto store = Store::open(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store);
  CHECK(store->schema_version() == latest_schema_version());
  Database& db = store->database();
  CHECK(count(db, "PRAGMA user_version") == latest_schema_version());
  CHECK(*db.query_text("mode", "PRAGMA journal_mode") == "wal");
  CHECK(count(db, "PRAGMA foreign_keys") == 1);
  CHECK(count(db, "PRAGMA synchronous") == 1);  // NORMAL; provider calls are synced
  for (const char* table : {"launch_configurations", "scaling_groups", "instances", "activities",
                            "activity_instances", "idempotency_keys"}) {
    INFO(table);
    CHECK(count(db, std::string(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '") +
                        table + "'") == 1);
  }
  CHECK(*store->integrity_check() == "ok");
}

TEST_CASE("synchronous=FULL can be chosen", "[store][migrations]") {
  TempDir dir;
  OpenOptions options;
  options.synchronous = Synchronous::Full;
  auto store = Store::open(dir.file("tide.db"), options);
  TIDE_REQUIRE_OK(store);
  CHECK(count(store->database(), "PRAGMA synchronous") == 2);
}

TEST_CASE("re-opening a current file changes nothing", "[store][migrations]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  std::string before;
  {
    Store store = seeded_store(path);
    TIDE_REQUIRE_OK(store.upsert_instance(sample_instance()));
    before = schema_text(store.database());
  }
  for (int i = 0; i < 2; ++i) {
    auto store = Store::open(path);
    TIDE_REQUIRE_OK(store);
    CHECK(store->schema_version() == latest_schema_version());
    CHECK(schema_text(store->database()) == before);
    auto instance = store->get_instance("i-0000000000000001");
    TIDE_REQUIRE_OK(instance);
    CHECK(*instance == sample_instance());
  }
}

TEST_CASE("a version 1 file is upgraded and keeps its rows", "[store][migrations]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  {
    auto db = Database::open(path, OpenOptions{});
    TIDE_REQUIRE_OK(db);
    auto version = migrate(*db, 1);
    TIDE_REQUIRE_OK(version);
    REQUIRE(*version == 1);
    CHECK(count(*db, "SELECT count(*) FROM sqlite_master WHERE name = 'idempotency_keys'") == 0);
    // Rows as a version-1 tide wrote them (plain SQL: the current Store API
    // may not match an old schema).
    TIDE_REQUIRE_OK(db->exec(
        "seed v1",
        "INSERT INTO launch_configurations VALUES ('web', 1, 'run', 8080, '{\"A\":\"1\"}', "
        "'/ready', 1000, 0.5, 10);"
        "INSERT INTO scaling_groups VALUES ('g', 0, 4, 2, 'web', 1, 'newest_instance', "
        "'be', 0, 1000, 2000, 3000, 4000, 0, 2, 1000, 2.0, 60000, 0.3, 0.1, 10000, 1, 20, 21);"
        "INSERT INTO instances VALUES ('i-1', 'g', 'launched', 'in_service', 0, 'healthy', "
        "'', 'pid:1', '127.0.1.1', 8080, 'web', 1, 'hash', 'key', 'idem-1', 'none', '', "
        "30, 31, 32, 0);"
        "INSERT INTO activities VALUES ('a-1', 'g', 'scale_out', 'user', 'successful', 40, 41);"
        "INSERT INTO activity_instances VALUES ('a-1', 'i-1', 'launched', 1);"));
  }
  auto store = Store::open(path);
  TIDE_REQUIRE_OK(store);
  CHECK(store->schema_version() == latest_schema_version());
  auto instance = store->get_instance("i-1");
  TIDE_REQUIRE_OK(instance);
  CHECK(instance->state == LifecycleState::InService);
  CHECK(instance->launch_configuration_version == 1);
  auto group = store->get_group("g");
  TIDE_REQUIRE_OK(group);
  CHECK(group->termination_policy == TerminationPolicy::NewestInstance);
  CHECK(group->desired == 2);
  auto config = store->get_launch_configuration("web", 1);
  TIDE_REQUIRE_OK(config);
  CHECK(config->env.at("A") == "1");
  auto activity = store->get_activity("a-1");
  TIDE_REQUIRE_OK(activity);
  REQUIRE(activity->instances.size() == 1);
  CHECK(activity->instances[0].message == "launched");
  // What version 2 added works on the upgraded file.
  IdempotencyRecord call{"idem-2", "terminate", "i-1",       ProviderCallState::Requested,
                         "",       50,          std::nullopt};
  TIDE_REQUIRE_OK(store->insert_idempotency_key(call));
  CHECK(*store->get_idempotency_key("idem-2") == call);
  CHECK(*store->integrity_check() == "ok");
}

TEST_CASE("a version 3 file gains agent_readiness_period_ms = 0 and keeps its rows",
          "[store][migrations]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  {
    auto db = Database::open(path, OpenOptions{});
    TIDE_REQUIRE_OK(db);
    auto version = migrate(*db, 3);
    TIDE_REQUIRE_OK(version);
    REQUIRE(*version == 3);
    CHECK(count(*db, "SELECT count(*) FROM pragma_table_info('launch_configurations') "
                     "WHERE name = 'agent_readiness_period_ms'") == 0);
    // A launch configuration, used by a group, as a version-3 tide wrote them.
    TIDE_REQUIRE_OK(db->exec(
        "seed v3",
        "INSERT INTO launch_configurations VALUES ('web', 1, 'run', 8080, '{}', "
        "'/healthz', 700, 0.5, 10);"
        "INSERT INTO scaling_groups VALUES ('g', 0, 4, 2, 'web', 1, 'newest_instance', "
        "'be', 0, 1000, 2000, 3000, 4000, 0, 2, 1000, 2.0, 60000, 0.3, 0.1, 10000, 1, 20, 21);"));
  }
  auto store = Store::open(path);
  TIDE_REQUIRE_OK(store);
  CHECK(store->schema_version() == latest_schema_version());
  auto config = store->get_launch_configuration("web", 1);
  TIDE_REQUIRE_OK(config);
  CHECK(config->agent.readiness_path == "/healthz");
  CHECK(config->agent.report_interval_ms == 700);
  CHECK(config->agent.readiness_period_ms == 0);  // the agent's default

  // The new column round-trips through a new version of the configuration.
  LaunchConfiguration next = *config;
  next.agent.readiness_period_ms = 250;
  auto created = store->create_launch_configuration_version(next);
  TIDE_REQUIRE_OK(created);
  auto stored = store->get_launch_configuration("web", created->version);
  TIDE_REQUIRE_OK(stored);
  CHECK(stored->agent.readiness_period_ms == 250);
  CHECK(stored->agent.readiness_path == "/healthz");

  // Out of bounds is refused by the store's validation and by the column's CHECK.
  next.agent.readiness_period_ms = 5;
  auto refused = store->create_launch_configuration_version(next);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message, Catch::Contains("readiness_period_ms"));
  auto raw = store->database().exec(
      "raw insert", "INSERT INTO launch_configurations VALUES ('raw', 1, 'run', 8080, '{}', "
                    "'/ready', 1000, 0, 10, 70000)");
  CHECK_FALSE(raw);
  CHECK(*store->integrity_check() == "ok");
}

TEST_CASE("a file from a newer tide is refused and left untouched", "[store][migrations]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  const std::int64_t newer = latest_schema_version() + 1;
  {
    auto store = Store::open(path);
    TIDE_REQUIRE_OK(store);
    TIDE_REQUIRE_OK(
        store->database().exec("pretend newer", "PRAGMA user_version = " + std::to_string(newer)));
  }
  auto store = Store::open(path);
  REQUIRE_FALSE(store);
  CHECK(store.error().kind == StoreError::Kind::NewerSchema);
  CHECK_THAT(store.error().message, Catch::Contains("newer") && Catch::Contains(path) &&
                                        Catch::Contains(std::to_string(newer)));
  auto db = Database::open(path, OpenOptions{});
  TIDE_REQUIRE_OK(db);
  CHECK(count(*db, "PRAGMA user_version") == newer);
}

TEST_CASE("a file that is not a database gives a clear error", "[store][migrations]") {
  TempDir dir;
  const std::string path = dir.file("garbage.db");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 512; ++i) out << "this is not an sqlite file ";
  }
  auto store = Store::open(path);
  REQUIRE_FALSE(store);
  CHECK(store.error().kind == StoreError::Kind::Corrupt);
  CHECK_THAT(store.error().message, Catch::Contains(path) && Catch::Contains("not a database"));
}

TEST_CASE("a damaged database gives a clear error, not a crash", "[store][migrations]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  {
    Store store = seeded_store(path);
    auto tx = store.begin_transaction("seed");
    TIDE_REQUIRE_OK(tx);
    for (int i = 0; i < 200; ++i) {
      TIDE_REQUIRE_OK(store.upsert_instance(sample_instance("i-" + std::to_string(1000 + i))));
    }
    TIDE_REQUIRE_OK(tx->commit());
    // Move everything into the main file so the damage below hits it.
    TIDE_REQUIRE_OK(store.database().exec("checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)"));
  }
  {
    // Overwrite the pages after the header page with noise.
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(4096);
    for (int i = 0; i < 4096 * 8; ++i) file.put(static_cast<char>(0xA5 ^ (i * 7)));
  }
  auto store = Store::open(path);
  INFO((store ? std::string("opened") : store.error().message));
  if (store) {
    // Opening may succeed (the header is intact); reading must fail cleanly.
    auto instances = store->list_instances();
    auto check = store->integrity_check();
    CHECK((!instances || !check || *check != "ok"));
    if (!instances) CHECK(instances.error().kind == StoreError::Kind::Corrupt);
  } else {
    CHECK(store.error().kind == StoreError::Kind::Corrupt);
    CHECK_THAT(store.error().message, Catch::Contains(path));
  }
}

TEST_CASE("a missing directory gives a clear error", "[store][migrations]") {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/tide.db");
  auto store = Store::open(path);
  REQUIRE_FALSE(store);
  CHECK(store.error().kind == StoreError::Kind::Io);
  CHECK_THAT(store.error().message, Catch::Contains(path));
}

TEST_CASE("a locked database gives Busy after the busy timeout", "[store][migrations]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  OpenOptions options;
  options.busy_timeout_ms = 50;
  Store store = seeded_store(path);
  auto other = Store::open(path, options);
  TIDE_REQUIRE_OK(other);
  // `store` holds the write lock; `other` must give up after 50 ms.
  auto tx = store.begin_transaction("hold the lock");
  TIDE_REQUIRE_OK(tx);
  auto written = other->upsert_instance(sample_instance());
  REQUIRE_FALSE(written);
  CHECK(written.error().kind == StoreError::Kind::Busy);
  CHECK_THAT(written.error().message, Catch::Contains("upsert instance i-0000000000000001"));
  // Readers are not blocked in WAL mode.
  auto group = other->get_group("web-group");
  TIDE_REQUIRE_OK(group);
  TIDE_REQUIRE_OK(tx->commit());
  TIDE_REQUIRE_OK(other->upsert_instance(sample_instance()));
}
