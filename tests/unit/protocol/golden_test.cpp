// Golden frames pin the wire format: tests/data/golden/<command>.bin holds the
// encoding of sample_messages(). A change that alters the bytes, or that can no
// longer read a frame an older peer would send, fails here.
//
// To regenerate after a deliberate, SPEC.md-documented change:
//   TIDE_REGENERATE_GOLDEN=1 build/bin/protocol_tests "[golden]"
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "protocol/codec.hpp"
#include "tests/unit/protocol/sample_messages.hpp"

using namespace tide::protocol;
using tide::protocol::testing::sample_messages;

namespace {

std::filesystem::path golden_path(std::string_view file) {
  return std::filesystem::path(TIDE_TEST_DATA_DIR) / "golden" / (std::string(file) + ".bin");
}

std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("golden frames decode to the expected messages and encode byte for byte", "[golden]") {
  const bool regenerate = std::getenv("TIDE_REGENERATE_GOLDEN") != nullptr &&
                          std::string_view(std::getenv("TIDE_REGENERATE_GOLDEN")) == "1";
  for (const auto& sample : sample_messages()) {
    CAPTURE(sample.file);
    const auto path = golden_path(sample.file);
    const auto encoded = encode(sample.message);
    if (regenerate) {
      std::filesystem::create_directories(path.parent_path());
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(encoded.data()), static_cast<std::streamsize>(encoded.size()));
      REQUIRE(out.good());
      WARN("regenerated " << path.string());
    }
    const auto golden = read_file(path);
    const auto decoded = decode(golden);
    INFO((decoded ? std::string() : decoded.error().detail));
    REQUIRE(decoded.has_value());
    CHECK(*decoded == sample.message);
    CHECK(encoded == golden);
  }
}

TEST_CASE("the golden REPORT starts with the documented envelope bytes", "[golden]") {
  // 0x95 = array of 5; 0xa4 "TIDE"; 0x01 major; 0x00 minor; 0xa6 "REPORT".
  const auto golden = read_file(golden_path("report"));
  const std::vector<std::uint8_t> prefix = {0x95, 0xa4, 'T', 'I', 'D', 'E', 0x01, 0x00,
                                            0xa6, 'R',  'E', 'P', 'O', 'R', 'T'};
  REQUIRE(golden.size() > prefix.size());
  CHECK(std::vector<std::uint8_t>(golden.begin(), golden.begin() + static_cast<std::ptrdiff_t>(prefix.size())) ==
        prefix);
}
