// CURVE key helpers and the agent's key-pair file.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "protocol/transport/curve.hpp"

using namespace tide::transport;

namespace {

struct TempDir {
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tide-keys-XXXXXX").string();
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("CURVE key helpers", "[transport][curve]") {
  auto keys = generate_curve_keypair();
  REQUIRE(keys);
  CHECK(is_valid_z85_key(keys->public_z85));
  CHECK(is_valid_z85_key(keys->secret_z85));
  auto derived = curve_public_from_secret(keys->secret_z85);
  REQUIRE(derived);
  CHECK(*derived == keys->public_z85);

  CHECK_FALSE(is_valid_z85_key(""));
  CHECK_FALSE(is_valid_z85_key(keys->public_z85.substr(1)));
  CHECK_FALSE(is_valid_z85_key(std::string(40, '"')));  // '"' is not in Z85
  CHECK_FALSE(curve_public_from_secret("short").has_value());
  CHECK(z85_from_binary_key("too short").empty());
  CHECK(z85_from_binary_key(std::string(32, '\0')).size() == 40);
}

TEST_CASE("key-pair file round trip with mode 0600", "[transport][curve]") {
  TempDir dir;
  REQUIRE_FALSE(dir.path.empty());
  const auto file = dir.path / "agent.key";
  auto keys = generate_curve_keypair();
  REQUIRE(keys);

  REQUIRE(save_keypair_file(file, *keys));
  CHECK(mode_of(file) == 0600);
  CHECK_FALSE(std::filesystem::exists(dir.path / "agent.key.tmp"));
  auto loaded = load_keypair_file(file);
  REQUIRE(loaded);
  CHECK(*loaded == *keys);

  SECTION("a file others may read is refused") {
    REQUIRE(::chmod(file.c_str(), 0644) == 0);
    auto refused = load_keypair_file(file);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == TransportError::Kind::InvalidArgument);
    CHECK(refused.error().detail.find("chmod 600") != std::string::npos);
    // Saving again restores the mode.
    REQUIRE(save_keypair_file(file, *keys));
    CHECK(mode_of(file) == 0600);
  }

  SECTION("a public key that does not match the secret is refused") {
    auto other = generate_curve_keypair();
    REQUIRE(other);
    REQUIRE(save_keypair_file(file, CurveKeyPair{other->public_z85, keys->secret_z85}));
    auto refused = load_keypair_file(file);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().detail.find("does not match") != std::string::npos);
  }

  SECTION("a garbled file is refused with its line number") {
    {
      std::ofstream out(file, std::ios::trunc);
      out << "public " << keys->public_z85 << "\nsecret not-a-key\n";
    }
    auto refused = load_keypair_file(file);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().detail.find(":2:") != std::string::npos);
  }

  SECTION("a missing file is an I/O error") {
    auto missing = load_keypair_file(dir.path / "nope.key");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().kind == TransportError::Kind::Io);
  }

  SECTION("invalid keys are not saved") {
    CHECK_FALSE(save_keypair_file(dir.path / "x.key", CurveKeyPair{"a", "b"}).has_value());
    CHECK_FALSE(std::filesystem::exists(dir.path / "x.key"));
  }
}

TEST_CASE("load_or_create_keypair_file keeps the identity across restarts", "[transport][curve]") {
  TempDir dir;
  const auto file = dir.path / "identity.key";
  auto first = load_or_create_keypair_file(file);
  REQUIRE(first);
  CHECK(mode_of(file) == 0600);
  auto second = load_or_create_keypair_file(file);
  REQUIRE(second);
  CHECK(*second == *first);
}

TEST_CASE("load_or_create_keypair_file tightens its own key file instead of refusing it", "[transport][curve]") {
  TempDir dir;
  const auto file = dir.path / "coordinator.key";
  auto first = load_or_create_keypair_file(file);
  REQUIRE(first);
  REQUIRE(::chmod(file.c_str(), 0644) == 0);
  auto again = load_or_create_keypair_file(file);
  REQUIRE(again);
  CHECK(*again == *first);
  CHECK(mode_of(file) == 0600);
}
