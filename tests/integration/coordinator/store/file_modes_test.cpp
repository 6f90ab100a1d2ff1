// The database and its -wal and -shm files are 0600 whatever the umask, looser
// existing ones are tightened at open, and the state directory the coordinator
// creates is 0700 (tightened to at most 0750).
#include <string>
#include <vector>

#include <sys/stat.h>

#include "common/files/private_files.hpp"
#include "tests/integration/coordinator/store/store_test_support.hpp"

using namespace tide::coordinator;
using namespace tide::coordinator::store;
using namespace tide::coordinator::store::testing;

namespace {

// Sets the umask for one test and restores it.
class Umask {
 public:
  explicit Umask(mode_t mask) : m_saved(::umask(mask)) {}
  ~Umask() { ::umask(m_saved); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;

 private:
  mode_t m_saved;
};

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// The modes of the database, its WAL and its shared memory, in that order.
std::vector<mode_t> database_modes(const std::string& db) {
  return {mode_of(db), mode_of(db + "-wal"), mode_of(db + "-shm")};
}

}  // namespace

TEST_CASE("a new database, its WAL and its shared memory are 0600 under umask 022",
          "[store][modes]") {
  const Umask umask(022);
  TempDir dir;
  const std::string db = dir.file("tide.db");
  auto store = Store::open(db);
  TIDE_REQUIRE_OK(store);
  TIDE_REQUIRE_OK(store->insert_launch_configuration(sample_config()));
  CHECK(database_modes(db) == std::vector<mode_t>{0600, 0600, 0600});
}

TEST_CASE("an existing database with looser modes is tightened at open, not refused",
          "[store][modes]") {
  const Umask umask(022);
  TempDir dir;
  const std::string db = dir.file("tide.db");
  {
    auto store = Store::open(db);
    TIDE_REQUIRE_OK(store);
    TIDE_REQUIRE_OK(store->insert_launch_configuration(sample_config()));
  }
  REQUIRE(::chmod(db.c_str(), 0644) == 0);
  // A crash leaves the WAL and shared memory behind; an older tide made them 0644.
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string path = db + suffix;
    if (!std::filesystem::exists(path)) REQUIRE(tide::files::ensure_private_file(path, 0644));
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
  }
  auto reopened = Store::open(db);
  TIDE_REQUIRE_OK(reopened);
  CHECK(database_modes(db) == std::vector<mode_t>{0600, 0600, 0600});
  TIDE_REQUIRE_OK(reopened->get_launch_configuration("web", 1));
}

TEST_CASE("the state directory is created 0700 under umask 022 and tightened to at most 0750",
          "[store][modes]") {
  const Umask umask(022);
  TempDir dir;
  const auto state_dir = dir.path() / "var" / "lib" / "tide";
  auto made = tide::files::ensure_private_dir(state_dir);
  REQUIRE(made);
  CHECK_FALSE(made->has_value());
  CHECK(mode_of(state_dir.string()) == 0700);

  SECTION("0755 loses the bits others had") {
    REQUIRE(::chmod(state_dir.c_str(), 0755) == 0);
    auto tightened = tide::files::ensure_private_dir(state_dir);
    REQUIRE(tightened);
    REQUIRE(tightened->has_value());
    CHECK((*tightened)->before == 0755);
    CHECK((*tightened)->after == 0750);
    CHECK(mode_of(state_dir.string()) == 0750);
  }
  SECTION("packaging's 0750 is left as it is") {
    REQUIRE(::chmod(state_dir.c_str(), 0750) == 0);
    auto kept = tide::files::ensure_private_dir(state_dir);
    REQUIRE(kept);
    CHECK_FALSE(kept->has_value());
    CHECK(mode_of(state_dir.string()) == 0750);
  }
  SECTION("a file in the way is an error") {
    const auto file = dir.path() / "file";
    REQUIRE(tide::files::ensure_private_file(file));
    CHECK(mode_of(file.string()) == 0600);
    CHECK_FALSE(tide::files::ensure_private_dir(file));
  }
}

TEST_CASE("env_files are stored as paths and read back", "[store][lc]") {
  TempDir dir;
  auto store = Store::open(dir.file("tide.db"));
  TIDE_REQUIRE_OK(store);
  LaunchConfiguration config = sample_config();
  config.env_files = {{"DB_PASSWORD", "/etc/tide/secrets/db"}, {"API_KEY", "/run/secrets/api"}};
  TIDE_REQUIRE_OK(store->insert_launch_configuration(config));
  auto read = store->get_launch_configuration("web", 1);
  TIDE_REQUIRE_OK(read);
  CHECK(read->env_files == config.env_files);
  CHECK(*read == config);
}
