// core/duration: the one duration syntax of the CLI, the YAML files and the API.
#include <catch2/catch.hpp>

#include <random>

#include "coordinator/core/duration.hpp"

using tide::coordinator::parse_duration;
using tide::coordinator::typed_duration;

TEST_CASE("parse_duration reads units and compounds, refuses everything else", "[duration]") {
  CHECK(parse_duration("500ms") == 500);
  CHECK(parse_duration("10s") == 10'000);
  CHECK(parse_duration("5m") == 300'000);
  CHECK(parse_duration("1h30m") == 5'400'000);
  CHECK(parse_duration("2d") == 172'800'000);
  CHECK(parse_duration("1m500ms") == 60'500);
  CHECK(parse_duration("0s") == 0);
  // A bare number is seconds only where the caller allows it (the CLI).
  CHECK(parse_duration("90", true) == 90'000);
  CHECK_FALSE(parse_duration("90"));
  CHECK_FALSE(parse_duration("1h30", true));  // a unit-less tail after a unit
  for (const char* bad : {"", "s", "-5s", "1.5s", "10 s", "10S", "1x", "ms", "1h-30m", "99999999999999999999s",
                          "4000000000000d"}) {
    INFO(bad);
    const auto parsed = parse_duration(bad, true);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().find("is not a duration (e.g. 500ms, 10s, 5m, 1h, 1h30m)") != std::string::npos);
  }
}

TEST_CASE("typed_duration writes what parse_duration reads back", "[duration]") {
  CHECK(typed_duration(0) == "0s");
  CHECK(typed_duration(1'500) == "1500ms");
  CHECK(typed_duration(90'000) == "1m30s");
  CHECK(typed_duration(3'600'000) == "1h");
  CHECK(typed_duration(86'400'000) == "24h");
  std::mt19937_64 random(20261206);
  for (int i = 0; i < 10'000; ++i) {
    const auto ms = static_cast<std::int64_t>(random() % 400'000'000'000ULL) / (i % 2 == 0 ? 1'000 : 1) * (i % 2 == 0 ? 1'000 : 1);
    INFO(ms);
    REQUIRE(parse_duration(typed_duration(ms)) == ms);
  }
}
