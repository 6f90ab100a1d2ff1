// "A writer killed mid-transaction loses nothing committed": a child process
// commits K instance rows, then opens a transaction, writes far more than the
// page cache holds (so uncommitted pages really reach the WAL file), tells the
// parent, and is SIGKILLed before it commits. The parent reopens the file and
// must find exactly the K committed rows and an intact, migrated database.
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <string>

#include <poll.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator/io/store/migrations.hpp"
#include "tests/integration/coordinator/store/store_test_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::store;
using namespace tide::coordinator::store::testing;

namespace {

constexpr int kCommitted = 50;
constexpr int kUncommitted = 20'000;

std::string instance_id(int n) {
  return "i-" + std::to_string(1'000'000 + n);
}

// The child's whole life. Returns its exit status; never returns to Catch.
int child_main(const std::string& path, int to_parent, int from_parent) {
  auto store = Store::open(path);
  if (!store) return 10;
  if (!store->insert_launch_configuration(sample_config())) return 11;
  if (!store->insert_group(sample_group())) return 12;
  for (int n = 0; n < kCommitted; ++n) {
    if (!store->upsert_instance(sample_instance(instance_id(n)))) return 13;
  }
  // Keep the page cache tiny so the open transaction spills into the WAL.
  if (!store->database().exec("small cache", "PRAGMA cache_size = 16")) return 14;
  if (::write(to_parent, "C", 1) != 1) return 15;
  auto tx = store->begin_transaction("doomed");
  if (!tx) return 16;
  for (int n = kCommitted; n < kCommitted + kUncommitted; ++n) {
    if (!store->upsert_instance(sample_instance(instance_id(n)))) return 17;
  }
  if (!store->insert_activity(Activity{"a-doomed",
                                       "web-group",
                                       ActivityType::ScaleOut,
                                       "never committed",
                                       ActivityStatus::Running,
                                       1,
                                       std::nullopt,
                                       {}})) {
    return 18;
  }
  if (::write(to_parent, "U", 1) != 1) return 19;
  // Wait to be killed; the parent never answers. Bounded so a broken parent
  // cannot leave us behind.
  char byte = 0;
  pollfd wait_for{from_parent, POLLIN, 0};
  (void)::poll(&wait_for, 1, 30'000);
  (void)::read(from_parent, &byte, 1);
  return 20;  // not killed: the parent will report it
}

char read_byte(int fd) {
  pollfd ready{fd, POLLIN, 0};
  REQUIRE(::poll(&ready, 1, 60'000) == 1);
  char byte = 0;
  REQUIRE(::read(fd, &byte, 1) == 1);
  return byte;
}

std::uintmax_t size_of(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

}  // namespace

TEST_CASE("a writer killed mid-transaction loses nothing committed", "[store][crash]") {
  TempDir dir;
  const std::string path = dir.file("tide.db");
  int to_parent[2];
  int from_parent[2];
  REQUIRE(::pipe(to_parent) == 0);
  REQUIRE(::pipe(from_parent) == 0);

  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(to_parent[0]);
    ::close(from_parent[1]);
    // _exit: no atexit handlers, no Catch reporting, no sanitizer leak check
    // of a half-torn-down process.
    ::_exit(child_main(path, to_parent[1], from_parent[0]));
  }
  ::close(to_parent[1]);
  ::close(from_parent[0]);

  const char committed = read_byte(to_parent[0]);
  const std::uintmax_t wal_after_commit = size_of(path + "-wal");
  const char uncommitted = read_byte(to_parent[0]);
  const std::uintmax_t wal_mid_transaction = size_of(path + "-wal");
  REQUIRE(::kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  ::close(to_parent[0]);
  ::close(from_parent[1]);

  REQUIRE(committed == 'C');
  REQUIRE(uncommitted == 'U');
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  // The uncommitted transaction really wrote pages to the WAL file, so the
  // recovery below has something to discard.
  INFO("WAL bytes after commit " << wal_after_commit << ", mid transaction "
                                 << wal_mid_transaction);
  CHECK(wal_mid_transaction > wal_after_commit);

  auto store = Store::open(path);
  TIDE_REQUIRE_OK(store);
  CHECK(store->schema_version() == latest_schema_version());
  auto check = store->integrity_check();
  TIDE_REQUIRE_OK(check);
  CHECK(*check == "ok");
  auto instances = store->list_instances();
  TIDE_REQUIRE_OK(instances);
  CHECK(instances->size() == static_cast<std::size_t>(kCommitted));
  for (int n = 0; n < kCommitted; ++n) {
    auto instance = store->get_instance(instance_id(n));
    TIDE_REQUIRE_OK(instance);
    CHECK(*instance == sample_instance(instance_id(n)));
  }
  CHECK(store->get_instance(instance_id(kCommitted)).error().kind == StoreError::Kind::NotFound);
  CHECK(store->get_activity("a-doomed").error().kind == StoreError::Kind::NotFound);
  auto fk =
      store->database().query_int("fk check", "SELECT count(*) FROM pragma_foreign_key_check");
  TIDE_REQUIRE_OK(fk);
  CHECK(*fk == 0);
  // And it is writable again.
  TIDE_REQUIRE_OK(store->upsert_instance(sample_instance(instance_id(kCommitted))));
}
