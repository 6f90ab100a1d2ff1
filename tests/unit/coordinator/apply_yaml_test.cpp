// tidectl apply's YAML -> JSON conversion (coordinator/tidectl/apply.hpp):
// scalar typing, quoted strings, duplicate keys, syntax errors with their
// line, and the path -> line map used to place the coordinator's refusals.
#include <catch2/catch.hpp>

#include "coordinator/tidectl/apply.hpp"

using tide::tidectl::line_of;
using tide::tidectl::yaml_to_json;
using nlohmann::json;

TEST_CASE("yaml_to_json types plain scalars and keeps quoted ones as strings", "[apply][yaml]") {
  auto doc = yaml_to_json(
      "a: 70\n"
      "b: -1.5\n"
      "c: true\n"
      "d: ~\n"
      "e: \"70\"\n"
      "f: '>'\n"
      "g: Asia/Shanghai\n"
      "h: [1, x, 2e3]\n"
      "i:\n"
      "j: 0 11 * * *\n");
  REQUIRE(doc);
  const json& v = doc->value;
  CHECK(v["a"] == 70);
  CHECK(v["a"].is_number_integer());
  CHECK(v["b"] == -1.5);
  CHECK(v["c"] == true);
  CHECK(v["d"].is_null());
  CHECK(v["e"] == "70");
  CHECK(v["f"] == ">");
  CHECK(v["g"] == "Asia/Shanghai");
  CHECK(v["h"] == json::array({1, "x", 2000.0}));
  CHECK(v["i"].is_null());
  CHECK(v["j"] == "0 11 * * *");
}

TEST_CASE("yaml_to_json maps JSON paths to lines", "[apply][yaml]") {
  auto doc = yaml_to_json(
      "groups:\n"                   // 1
      "  - name: web\n"             // 2
      "    policies:\n"             // 3
      "      - name: cpu-high\n"    // 4
      "        threshold: 70\n"     // 5
      "      - name: cpu-low\n"     // 6
      "        env:\n"              // 7
      "          A: b\n");          // 8
  REQUIRE(doc);
  CHECK(line_of(*doc, "groups[0].name") == 2);
  CHECK(line_of(*doc, "groups[0].policies") == 3);
  CHECK(line_of(*doc, "groups[0].policies[0].threshold") == 5);
  CHECK(line_of(*doc, "groups[0].policies[1]") == 6);
  CHECK(line_of(*doc, "groups[0].policies[1].env.A") == 8);
  // A missing field is placed at the nearest object that exists.
  CHECK(line_of(*doc, "groups[0].policies[1].comparison") == 6);
  CHECK(line_of(*doc, "groups[0].policies[0].scale_out_limit.period_ms") == 4);
  CHECK(line_of(*doc, "launch_configurations[3]") == 1);
}

TEST_CASE("yaml_to_json refuses duplicate keys and reports syntax errors with a line", "[apply][yaml]") {
  auto duplicate = yaml_to_json("a: 1\nb:\n  c: 1\n  c: 2\n");
  REQUIRE_FALSE(duplicate);
  CHECK(duplicate.error().line == 4);
  CHECK(duplicate.error().message == "b.c: duplicate key");

  auto broken = yaml_to_json("a: 1\nb: [1, 2\n");
  REQUIRE_FALSE(broken);
  CHECK(broken.error().line >= 2);
  CHECK_FALSE(broken.error().message.empty());

  auto empty = yaml_to_json("");
  REQUIRE(empty);
  CHECK(empty->value.is_null());
}
