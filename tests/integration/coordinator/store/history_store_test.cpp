// Per-group history in the store (schema v7): batches in one transaction,
// a group's range and all groups' ranges in time order, minute rollups with
// their sample counts, prune, a group's history going with it, an upgrade
// from version 6, unreadable rows, and the size of a row on disk
// (docs/store.md, "History").
#include <filesystem>
#include <string>
#include <vector>

#include "coordinator/io/store/migrations.hpp"
#include "tests/integration/coordinator/store/store_test_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::store;
using namespace tide::coordinator::store::testing;

namespace {

constexpr TimeMs kT0 = 1'800'000'000'000;  // a whole hour
constexpr TimeMs kInterval = 10'000;

HistorySample sample(TimeMs t_ms, std::uint32_t desired,
                     std::map<std::string, HistoryValue> metrics = {}) {
  HistorySample s;
  s.t_ms = t_ms;
  s.min = 1;
  s.max = 10;
  s.desired = desired;
  s.in_service = desired;
  s.pending = 1;
  s.healthy = desired;
  s.in_lb = desired - 1;
  s.metrics = std::move(metrics);
  return s;
}

Store two_groups(const std::string& path) {
  Store store = seeded_store(path);  // web-group
  TIDE_REQUIRE_OK(store.insert_group(sample_group("api")));
  return store;
}

std::int64_t count(Store& store, const std::string& sql) {
  auto n = store.database().query_int("count", sql);
  TIDE_REQUIRE_OK(n);
  return *n;
}

}  // namespace

TEST_CASE("history: a batch round-trips; a group's range is half-open and in time order",
          "[store][history]") {
  TempDir dir;
  Store store = two_groups(dir.file("tide.db"));
  std::vector<GroupHistorySample> batch;
  for (int k = 3; k >= 0; --k) {  // written newest first: read back oldest first
    const TimeMs t = kT0 + k * kInterval;
    batch.push_back(
        {"web-group", sample(t, 3 + static_cast<std::uint32_t>(k),
                             {{"cpu", {41.5, 1}}, {"requests_per_instance", {0.125 * k, 1}}})});
    batch.push_back({"api", sample(t, 2)});  // no metric has data
  }
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Raw, batch));

  auto rows =
      store.read_history(HistoryTable::Raw, "web-group", kT0 + kInterval, kT0 + 3 * kInterval);
  TIDE_REQUIRE_OK(rows);
  REQUIRE(rows->size() == 2);  // from inclusive, to exclusive
  CHECK((*rows)[0] ==
        sample(kT0 + kInterval, 4, {{"cpu", {41.5, 1}}, {"requests_per_instance", {0.125, 1}}}));
  CHECK((*rows)[1] ==
        sample(kT0 + 2 * kInterval, 5, {{"cpu", {41.5, 1}}, {"requests_per_instance", {0.25, 1}}}));

  auto api = store.read_history(HistoryTable::Raw, "api", kT0, kT0 + 10 * kInterval);
  TIDE_REQUIRE_OK(api);
  REQUIRE(api->size() == 4);
  CHECK((*api)[0] == sample(kT0, 2));
  CHECK(api->back().t_ms == kT0 + 3 * kInterval);

  auto all = store.read_all_history(HistoryTable::Raw, kT0, kT0 + 2 * kInterval);
  TIDE_REQUIRE_OK(all);
  REQUIRE(all->size() == 2);
  CHECK(all->at("api").size() == 2);
  REQUIRE(all->at("web-group").size() == 2);
  CHECK(all->at("web-group")[0].t_ms == kT0);
  CHECK(all->at("web-group")[1].t_ms == kT0 + kInterval);

  auto nothing =
      store.read_history(HistoryTable::Raw, "web-group", kT0 + kInterval, kT0 + kInterval);
  TIDE_REQUIRE_OK(nothing);
  CHECK(nothing->empty());
  auto unknown = store.read_history(HistoryTable::Raw, "nope", kT0, kT0 + kInterval);
  TIDE_REQUIRE_OK(unknown);
  CHECK(unknown->empty());
}

TEST_CASE("history: a read keeps only the metrics asked for", "[store][history]") {
  TempDir dir;
  Store store = two_groups(dir.file("tide.db"));
  const std::vector<GroupHistorySample> batch{
      {"web-group",
       sample(kT0, 3, {{"cpu", {41.5, 1}}, {"memory", {30.0, 1}}, {"queue", {2.0, 1}}})},
      {"api", sample(kT0, 2, {{"memory", {12.0, 1}}})}};
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Raw, batch));
  auto one =
      store.read_history(HistoryTable::Raw, "web-group", kT0, kT0 + 1, select_metrics("queue,cpu"));
  TIDE_REQUIRE_OK(one);
  REQUIRE(one->size() == 1);
  CHECK((*one)[0] == sample(kT0, 3, {{"cpu", {41.5, 1}}, {"queue", {2.0, 1}}}));
  auto all = store.read_all_history(HistoryTable::Raw, kT0, kT0 + 1, select_metrics(""));
  TIDE_REQUIRE_OK(all);
  REQUIRE(all->size() == 2);
  CHECK(all->at("web-group")[0] == sample(kT0, 3));  // the capacity only
  CHECK(all->at("api")[0] == sample(kT0, 2));
}

TEST_CASE("history: minute rows keep their sample counts; the tables are apart",
          "[store][history]") {
  TempDir dir;
  Store store = two_groups(dir.file("tide.db"));
  const std::vector<GroupHistorySample> minutes{
      {"web-group", sample(kT0, 3, {{"cpu", {37.25, 6}}, {"queue", {2.5, 2}}})},
      {"web-group", sample(kT0 + 60'000, 4, {{"cpu", {40.0, 5}}})}};
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Minutes, minutes));
  auto rows = store.read_history(HistoryTable::Minutes, "web-group", kT0, kT0 + 120'000);
  TIDE_REQUIRE_OK(rows);
  REQUIRE(rows->size() == 2);
  CHECK((*rows)[0] == minutes[0].sample);
  CHECK((*rows)[1] == minutes[1].sample);
  auto raw = store.read_history(HistoryTable::Raw, "web-group", kT0, kT0 + 120'000);
  TIDE_REQUIRE_OK(raw);
  CHECK(raw->empty());

  // A minute row is on a whole minute (the column's CHECK).
  const std::vector<GroupHistorySample> unaligned{{"web-group", sample(kT0 + 1, 3)}};
  CHECK_FALSE(store.insert_history(HistoryTable::Minutes, unaligned));
}

TEST_CASE("history: values keep a float's precision; odd values survive", "[store][history]") {
  TempDir dir;
  Store store = two_groups(dir.file("tide.db"));
  const std::map<std::string, HistoryValue> metrics{
      {"network_in", {123456789.123456789, 1}},
      {"tiny", {1.0e-30, 1}},
      {"negative", {-3.75, 1}},
      {"huge", {1.0e300, 1}},  // beyond a float: kept as a double
      {"zero", {0.0, 1}}};
  const std::vector<GroupHistorySample> batch{{"web-group", sample(kT0, 3, metrics)}};
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Raw, batch));
  auto rows = store.read_history(HistoryTable::Raw, "web-group", kT0, kT0 + 1);
  TIDE_REQUIRE_OK(rows);
  REQUIRE(rows->size() == 1);
  const auto& read = (*rows)[0].metrics;
  REQUIRE(read.size() == metrics.size());
  for (const auto& [name, value] : metrics) {
    INFO(name);
    CHECK(read.at(name).mean == Approx(value.mean).epsilon(1e-7));
    CHECK(read.at(name).samples == 1);
  }
  CHECK(read.at("zero").mean == 0.0);
}

TEST_CASE("history: a batch is one transaction; a row of the same group and time is replaced",
          "[store][history]") {
  TempDir dir;
  Store store = two_groups(dir.file("tide.db"));
  const std::vector<GroupHistorySample> bad{{"web-group", sample(kT0, 3)},
                                            {"deleted-meanwhile", sample(kT0, 1)}};
  auto refused = store.insert_history(HistoryTable::Raw, bad);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == StoreError::Kind::Constraint);
  CHECK(count(store, "SELECT count(*) FROM group_history") == 0);

  const std::vector<GroupHistorySample> first{{"web-group", sample(kT0, 3, {{"cpu", {10.0, 1}}})}};
  const std::vector<GroupHistorySample> again{{"web-group", sample(kT0, 4, {{"cpu", {20.0, 1}}})}};
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Raw, first));
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Raw, again));
  auto rows = store.read_history(HistoryTable::Raw, "web-group", kT0, kT0 + 1);
  TIDE_REQUIRE_OK(rows);
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0] == again[0].sample);
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Raw, {}));  // nothing to add is no error
}

TEST_CASE("history: prune deletes what is older in both tables; latest_history_ms",
          "[store][history]") {
  TempDir dir;
  Store store = two_groups(dir.file("tide.db"));
  auto empty = store.latest_history_ms(HistoryTable::Minutes);
  TIDE_REQUIRE_OK(empty);
  CHECK_FALSE(empty->has_value());

  std::vector<GroupHistorySample> raw, minutes;
  for (int k = 0; k < 30; ++k) {
    for (const char* group : {"web-group", "api"})
      raw.push_back({group, sample(kT0 + k * kInterval, 3)});
  }
  for (int m = 0; m < 5; ++m) minutes.push_back({"api", sample(kT0 + m * 60'000, 3)});
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Raw, raw));
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Minutes, minutes));
  CHECK(*store.latest_history_ms(HistoryTable::Raw) == std::optional<TimeMs>(kT0 + 29 * kInterval));
  CHECK(*store.latest_history_ms(HistoryTable::Minutes) == std::optional<TimeMs>(kT0 + 4 * 60'000));

  auto pruned = store.prune_history(kT0 + 120'000);  // 12 raw rows per group, 2 minute rows
  TIDE_REQUIRE_OK(pruned);
  CHECK(*pruned == 2 * 12 + 2);
  CHECK(count(store, "SELECT count(*) FROM group_history") == 2 * 18);
  CHECK(count(store, "SELECT min(t_ms) FROM group_history") == kT0 + 120'000);
  CHECK(count(store, "SELECT count(*) FROM group_history_minutes") == 3);
  auto again = store.prune_history(kT0 + 120'000);
  TIDE_REQUIRE_OK(again);
  CHECK(*again == 0);
}

TEST_CASE("history: a deleted group's history goes with it", "[store][history]") {
  TempDir dir;
  Store store = two_groups(dir.file("tide.db"));
  const std::vector<GroupHistorySample> raw{{"web-group", sample(kT0, 3)}, {"api", sample(kT0, 1)}};
  const std::vector<GroupHistorySample> minutes{{"api", sample(kT0, 1)}};
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Raw, raw));
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Minutes, minutes));
  TIDE_REQUIRE_OK(store.delete_group("api"));
  CHECK(count(store, "SELECT count(*) FROM group_history WHERE group_name = 'api'") == 0);
  CHECK(count(store, "SELECT count(*) FROM group_history_minutes") == 0);
  auto all = store.read_all_history(HistoryTable::Raw, kT0, kT0 + 1);
  TIDE_REQUIRE_OK(all);
  CHECK(all->size() == 1);
  CHECK(all->contains("web-group"));
  // A new group of the same name starts with no history.
  TIDE_REQUIRE_OK(store.insert_group(sample_group("api")));
  auto fresh = store.read_history(HistoryTable::Raw, "api", 0, kT0 + 1);
  TIDE_REQUIRE_OK(fresh);
  CHECK(fresh->empty());
}

TEST_CASE("history: a row the store cannot have written is Invalid, not a crash",
          "[store][history]") {
  TempDir dir;
  Store store = two_groups(dir.file("tide.db"));
  for (const char* metrics :
       {"cpu", "cpu=", "=1", "cpu=abc", "cpu=1/0", "cpu=1/x", "cpu=1 x", "cpu=1;"}) {
    INFO(metrics);
    TIDE_REQUIRE_OK(store.database().exec("clear", "DELETE FROM group_history"));
    TIDE_REQUIRE_OK(store.database().exec(
        "raw insert",
        std::string("INSERT INTO group_history VALUES ('api', 1, 0, 1, 1, 1, 0, 1, 1, '") +
            metrics + "')"));
    auto rows = store.read_history(HistoryTable::Raw, "api", 0, 2);
    REQUIRE_FALSE(rows);
    CHECK(rows.error().kind == StoreError::Kind::Invalid);
    CHECK_THAT(rows.error().message, Catch::Contains("unreadable metrics"));
  }
  TIDE_REQUIRE_OK(store.database().exec("clear", "DELETE FROM group_history"));
  TIDE_REQUIRE_OK(store.database().exec(
      "raw insert",
      "INSERT INTO group_history VALUES ('api', 1, 0, 1, 5000000000, 1, 0, 1, 1, '')"));
  auto rows = store.read_history(HistoryTable::Raw, "api", 0, 2);
  REQUIRE_FALSE(rows);
  CHECK(rows.error().kind == StoreError::Kind::Invalid);
}

TEST_CASE("a version 6 file gains the history tables and keeps its rows",
          "[store][history][migrations]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  {
    auto db = Database::open(path, OpenOptions{});
    TIDE_REQUIRE_OK(db);
    auto version = migrate(*db, 6);
    TIDE_REQUIRE_OK(version);
    REQUIRE(*version == 6);
    auto tables = db->query_int(
        "count", "SELECT count(*) FROM sqlite_master WHERE name LIKE 'group_history%'");
    TIDE_REQUIRE_OK(tables);
    CHECK(*tables == 0);
    // A launch configuration and a group as a version-6 tide wrote them.
    TIDE_REQUIRE_OK(db->exec(
        "seed v6",
        "INSERT INTO launch_configurations VALUES ('web', 1, 'run', 8080, '{}', '/healthz', 700, "
        "0.5, 10, 0, '{}');"
        "INSERT INTO scaling_groups VALUES ('g', 0, 4, 2, 'web', 1, 'newest_instance', "
        "'be', 0, 1000, 2000, 3000, 4000, 0, 2, 1000, 2.0, 60000, 0.3, 0.1, 10000, 1, 20, 21);"));
  }
  auto store = Store::open(path);
  TIDE_REQUIRE_OK(store);
  CHECK(store->schema_version() == latest_schema_version());
  auto group = store->get_group("g");
  TIDE_REQUIRE_OK(group);
  CHECK(group->desired == 2);
  const std::vector<GroupHistorySample> batch{{"g", sample(kT0, 2, {{"cpu", {12.5, 1}}})}};
  TIDE_REQUIRE_OK(store->insert_history(HistoryTable::Raw, batch));
  auto rows = store->read_history(HistoryTable::Raw, "g", kT0, kT0 + 1);
  TIDE_REQUIRE_OK(rows);
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0] == batch[0].sample);
  CHECK(*store->integrity_check() == "ok");
}

// The figure docs/store.md gives: a day of one group's samples with the
// metrics a group behind the load balancer has (the agents' six, the load
// balancer's five, one custom), written as the coordinator writes them (a
// transaction per sample), and its minute rollups.
TEST_CASE("history: a row of a dozen metrics takes at most 400 bytes on disk", "[store][history]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  Store store = seeded_store(path);
  TIDE_REQUIRE_OK(store.database().exec("vacuum", "VACUUM"));
  TIDE_REQUIRE_OK(store.database().exec("checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)"));
  const auto empty_bytes = static_cast<std::int64_t>(std::filesystem::file_size(path));
  constexpr int kSamples = 8'640;  // a day at 10 s
  for (int k = 0; k < kSamples; ++k) {
    const double wave = static_cast<double>(k % 97) / 97.0;
    const std::map<std::string, HistoryValue> metrics{
        {"cpu", {23.0 + 40.0 * wave, 1}},
        {"memory", {41.0 + wave, 1}},
        {"load1", {0.5 + 2.0 * wave, 1}},
        {"network_in", {180'000.0 + 90'000.0 * wave, 1}},
        {"network_out", {2'400'000.0 + 1'000'000.0 * wave, 1}},
        {"tcp_established", {120.0 + 37.0 * wave, 1}},
        {"requests_per_instance", {85.0 + 40.0 * wave, 1}},
        {"response_time_ms", {12.0 + 5.0 * wave, 1}},
        {"queue", {0.0, 1}},
        {"http_5xx_rate", {0.01 * wave, 1}},
        {"sessions_per_instance", {14.0 + 6.0 * wave, 1}},
        {"app_busy_pct", {30.0 + 50.0 * wave, 1}}};
    HistorySample s = sample(kT0 + k * kInterval, 6, metrics);
    const std::vector<GroupHistorySample> batch{{"web-group", std::move(s)}};
    TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Raw, batch));
  }
  auto raw = store.read_history(HistoryTable::Raw, "web-group", kT0, kT0 + kSamples * kInterval);
  TIDE_REQUIRE_OK(raw);
  REQUIRE(raw->size() == static_cast<std::size_t>(kSamples));
  std::vector<GroupHistorySample> minutes;
  for (HistorySample& point : roll_up_minutes(*raw, kT0, kT0 + kSamples * kInterval)) {
    minutes.push_back({"web-group", std::move(point)});
  }
  CHECK(minutes.size() == static_cast<std::size_t>(kSamples / 6));
  TIDE_REQUIRE_OK(store.insert_history(HistoryTable::Minutes, minutes));
  TIDE_REQUIRE_OK(store.database().exec("checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)"));
  const auto bytes = static_cast<std::int64_t>(std::filesystem::file_size(path)) - empty_bytes;
  const double per_row =
      static_cast<double>(bytes) / static_cast<double>(kSamples + minutes.size());
  WARN("history: " << bytes << " bytes for " << kSamples << " samples and " << minutes.size()
                   << " minute rows: " << per_row << " bytes per row");
  CHECK(per_row <= 400.0);
}
