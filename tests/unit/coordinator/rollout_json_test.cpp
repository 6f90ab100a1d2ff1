// Rollouts as JSON: the stored record reads back exactly (every state and
// phase, seeded random records), corrupt records are refused with the field,
// and the request body takes amounts in both forms and names every bad field.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/core/rollout.hpp"
#include "coordinator/io/json/rollout_json.hpp"

using namespace tide::coordinator;
using nlohmann::json;

namespace {

Rollout sample_rollout() {
  Rollout r;
  r.id = "r-00000000000000ab";
  r.group = "web-group";
  r.from_launch_configuration = "web";
  r.from_version = 3;
  r.to_launch_configuration = "web";
  r.to_version = 4;
  r.strategy.batch = Amount{2, false};
  r.strategy.pause_at_percent = {25, 50};
  r.strategy.canary.count = 1;
  r.state = RolloutState::Running;
  r.phase = RolloutPhase::Batch;
  r.batch = 2;
  r.batch_old = {"i-1", "i-2"};
  r.canary = {"i-9"};
  r.batch_started_ms = 1'700'000'000'500;
  r.replaced = 2;
  r.old_at_start = 6;
  r.failures_in_batch = 1;
  r.next_pause_percent = 1;
  r.reason = "25% replaced";
  r.created_ms = 1'700'000'000'000;
  r.updated_ms = 1'700'000'000'600;
  return r;
}

// A random record with a strategy that passes validate().
Rollout random_rollout(std::mt19937_64& rng) {
  const auto pick = [&](std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); };
  const auto u32 = [&] {
    return pick(4) == 0 ? std::numeric_limits<std::uint32_t>::max() : static_cast<std::uint32_t>(pick(1000));
  };
  const auto time = [&] { return static_cast<std::int64_t>(rng()); };  // any int64, negative too
  const auto text = [&] {
    static const std::vector<std::string> texts{"", "web", "a \"quoted\" name", "\xc3\xa9t\xc3\xa9", "line\nbreak",
                                                std::string("nul\0inside", 10), "r-0123456789abcdef"};
    return texts[pick(texts.size())];
  };
  const auto amount = [&](std::uint32_t max_count) {
    return pick(2) == 0 ? Amount{static_cast<std::uint32_t>(pick(101)), true}
                        : Amount{static_cast<std::uint32_t>(pick(max_count + 1)), false};
  };
  Rollout r;
  r.id = text();
  r.group = text();
  r.from_launch_configuration = text();
  r.from_version = u32();
  r.to_launch_configuration = text();
  r.to_version = u32();
  RolloutStrategy& s = r.strategy;
  s.batch = amount(50);
  if (s.batch.value == 0) s.batch.value = 1;
  s.max_surge = amount(1000);
  s.min_healthy = amount(10'000);
  if (s.max_surge.value == 0 && s.min_healthy.percent && s.min_healthy.value == 100) s.max_surge.value = 1;
  s.pause_after_first_batch = pick(2) == 0;
  s.pause_between_batches = pick(2) == 0;
  for (std::uint32_t p = 1; p < 100; p += 1 + static_cast<std::uint32_t>(pick(40))) {
    if (pick(2) == 0) s.pause_at_percent.push_back(p);
  }
  s.bake_ms = static_cast<std::int64_t>(pick(86'400'001));
  s.batch_deadline_ms = s.bake_ms + 2'000 + static_cast<std::int64_t>(pick(86'398'000));
  s.canary.count = static_cast<std::uint32_t>(pick(101));
  const auto canary_room = std::min<std::int64_t>(s.batch_deadline_ms - 1'000, 86'399'001);
  s.canary.bake_ms = 1'000 + static_cast<std::int64_t>(pick(static_cast<std::uint64_t>(canary_room)));
  s.canary.min_requests = rng() >> 1;
  s.canary.max_error_share_increase = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  s.canary.max_latency_ratio = std::uniform_real_distribution<double>(1.0, 1000.0)(rng);
  s.canary.latency_floor_ms = static_cast<std::int64_t>(rng() >> 1);
  s.on_failure = std::array{FailureAction::Rollback, FailureAction::Pause, FailureAction::Cancel}[pick(3)];
  s.include_protected = pick(2) == 0;
  r.state = rollout_states()[pick(rollout_states().size())];
  r.phase = pick(2) == 0 ? RolloutPhase::Canary : RolloutPhase::Batch;
  r.batch = u32();
  for (std::uint64_t i = pick(5); i > 0; --i) r.batch_old.push_back(text());
  for (std::uint64_t i = pick(3); i > 0; --i) r.canary.push_back(text());
  r.batch_started_ms = time();
  r.replaced = u32();
  r.old_at_start = u32();
  r.failures_in_batch = u32();
  r.next_pause_percent = static_cast<std::uint32_t>(pick(s.pause_at_percent.size() + 1));
  r.between_batches = pick(2) == 0;
  r.reason = text();
  r.created_ms = time();
  r.updated_ms = time();
  r.finished_ms = time();
  return r;
}

void check_round_trip(const Rollout& rollout) {
  const json record = to_json(rollout);
  INFO(record.dump());
  auto back = rollout_from_json(record);
  INFO((back ? std::string() : back.error()));
  REQUIRE(back);
  CHECK(*back == rollout);
  // Through text too, as the store keeps it.
  auto reparsed = rollout_from_json(json::parse(record.dump()));
  REQUIRE(reparsed);
  CHECK(*reparsed == rollout);
}

std::string record_error(const json& record) {
  auto back = rollout_from_json(record);
  REQUIRE_FALSE(back);
  CHECK_FALSE(back.error().empty());
  return back.error();
}

ModelError request_error(const json& body) {
  INFO(body.dump());
  auto request = parse_rollout_request(body);
  REQUIRE_FALSE(request);
  CHECK_FALSE(request.error().message.empty());
  return request.error();
}

}  // namespace

TEST_CASE("a record shows the API's shape", "[json][rollout]") {
  const json record = to_json(sample_rollout());
  CHECK(record["from"] == json{{"launch_configuration", "web"}, {"version", 3}});
  CHECK(record["to"] == json{{"launch_configuration", "web"}, {"version", 4}});
  CHECK(record["state"] == "running");
  CHECK(record["phase"] == "batch");
  CHECK(record["batch_instances"] == json{"i-1", "i-2"});
  CHECK(record["canary_instances"] == json{"i-9"});
  const json& strategy = record["strategy"];
  CHECK(strategy["batch"] == "2");
  CHECK(strategy["max_surge"] == "1");
  CHECK(strategy["min_healthy"] == "90%");
  CHECK(strategy["pause_at_percent"] == json{25, 50});
  CHECK(strategy["on_failure"] == "rollback");
  CHECK(strategy["canary"]["count"] == 1);
  CHECK(strategy["canary"].size() == 6);
  CHECK(record.size() == 20);
}

TEST_CASE("every state and phase reads back", "[json][rollout]") {
  std::size_t states = 0;
  for (int value = 0; value <= 255; ++value) {
    const auto state = static_cast<RolloutState>(value);
    if (to_string(state) == "unknown") continue;
    ++states;
    INFO(to_string(state));
    CHECK(parse_rollout_state(to_string(state)) == state);
    Rollout r = sample_rollout();
    r.state = state;
    check_round_trip(r);
  }
  CHECK(states == rollout_states().size());
  CHECK(states == 7);
  CHECK_FALSE(parse_rollout_state("RUNNING"));
  for (int value = 0; value <= 255; ++value) {
    const auto phase = static_cast<RolloutPhase>(value);
    if (to_string(phase) == "unknown") continue;
    Rollout r = sample_rollout();
    r.phase = phase;
    check_round_trip(r);
  }
}

TEST_CASE("seeded random records read back exactly", "[json][rollout]") {
  std::mt19937_64 rng(20260115);
  for (int i = 0; i < 2'000; ++i) {
    const Rollout r = random_rollout(rng);
    REQUIRE(validate(r.strategy));
    check_round_trip(r);
  }
}

TEST_CASE("a record missing a key, with an unknown key or a wrong type is refused, naming the field",
          "[json][rollout]") {
  const json good = to_json(sample_rollout());
  for (const auto& [key, value] : good.items()) {
    json record = good;
    record.erase(key);
    INFO(key);
    CHECK(record_error(record) == key + ": missing");
  }
  json extra = good;
  extra["surprise"] = 1;
  CHECK(record_error(extra) == "surprise: unknown field");
  json extra_strategy = good;
  extra_strategy["strategy"]["canary"]["surprise"] = 1;
  CHECK(record_error(extra_strategy) == "strategy.canary.surprise: unknown field");

  const std::vector<std::pair<std::string, json>> bad{
      {"state", "sleeping"},          {"phase", 3},
      {"batch", -1},                  {"batch", 4294967296},
      {"batch_instances", "i-1"},     {"canary_instances", json{1}},
      {"between_batches", "yes"},     {"created_ms", 1.5},
      {"from", "web:3"},              {"strategy", json::array()},
      {"next_pause_percent", 3},      {"finished_ms", "18446744073709551615"},
  };
  for (const auto& [key, value] : bad) {
    json record = good;
    record[key] = value;
    INFO(key << " = " << value.dump());
    CHECK_THAT(record_error(record), Catch::StartsWith(key));
  }
  json missing_version = good;
  missing_version["to"].erase("version");
  CHECK(record_error(missing_version) == "to.version: missing");
  json huge_time = good;
  huge_time["updated_ms"] = std::numeric_limits<std::uint64_t>::max();
  CHECK_THAT(record_error(huge_time), Catch::StartsWith("updated_ms"));
  for (const json& not_record : {json(nullptr), json(1), json("x"), json::array({good})}) {
    CHECK(record_error(not_record) == "must be a JSON object");
  }
}

TEST_CASE("a record whose strategy could never have been accepted is refused", "[json][rollout]") {
  json record = to_json(sample_rollout());
  record["strategy"]["batch"] = "0";
  CHECK_THAT(record_error(record), Catch::StartsWith("strategy.batch:"));
  record = to_json(sample_rollout());
  record["strategy"]["bake_ms"] = 700'000;
  CHECK_THAT(record_error(record), Catch::StartsWith("strategy.batch_deadline_ms:"));
  record = to_json(sample_rollout());
  record["strategy"]["canary"]["bake_ms"] = "1s";
  CHECK_THAT(record_error(record), Catch::StartsWith("strategy.canary.bake_ms:"));
}

TEST_CASE("an empty request takes the group's current version and the default strategy", "[json][rollout]") {
  auto request = parse_rollout_request(json::object());
  REQUIRE(request);
  CHECK(*request == RolloutRequest{});
  auto nulls = parse_rollout_request(json{{"version", nullptr}, {"canary", nullptr}});
  REQUIRE(nulls);
  CHECK(*nulls == RolloutRequest{});
}

TEST_CASE("a full request is read, amounts in both forms", "[json][rollout]") {
  const json body = {
      {"launch_configuration", "web"},
      {"version", 7},
      {"batch", "25%"},
      {"max_surge", 2},
      {"min_healthy", "3"},
      {"pause_after_first_batch", true},
      {"pause_between_batches", true},
      {"pause_at_percent", {10, 50, 90}},
      {"bake_ms", 30'000},
      {"batch_deadline_ms", 900'000},
      {"canary",
       {{"count", 2},
        {"bake_ms", 120'000},
        {"min_requests", 50},
        {"max_error_share_increase", 0.02},
        {"max_latency_ratio", 1.5},
        {"latency_floor_ms", 40}}},
      {"on_failure", "pause"},
      {"include_protected", true},
  };
  auto request = parse_rollout_request(body);
  INFO((request ? std::string() : request.error().field + ": " + request.error().message));
  REQUIRE(request);
  CHECK(request->launch_configuration == "web");
  CHECK(request->version == 7);
  const RolloutStrategy& s = request->strategy;
  CHECK(s.batch == Amount{25, true});
  CHECK(s.max_surge == Amount{2, false});
  CHECK(s.min_healthy == Amount{3, false});
  CHECK(s.pause_after_first_batch);
  CHECK(s.pause_between_batches);
  CHECK(s.pause_at_percent == std::vector<std::uint32_t>{10, 50, 90});
  CHECK(s.bake_ms == 30'000);
  CHECK(s.batch_deadline_ms == 900'000);
  CHECK(s.canary == CanarySpec{2, 120'000, 50, 0.02, 1.5, 40});
  CHECK(s.on_failure == FailureAction::Pause);
  CHECK(s.include_protected);

  // The strategy as shown is a request body that gives the same strategy.
  auto again = parse_rollout_request(to_json(s));
  REQUIRE(again);
  CHECK(again->strategy == s);

  for (const auto& [given, expected] : std::vector<std::pair<json, Amount>>{
           {"1", {1, false}}, {1, {1, false}}, {"100%", {100, true}}, {"1%", {1, true}}, {"007", {7, false}}}) {
    auto amount = parse_rollout_request(json{{"batch", given}});
    INFO(given.dump());
    REQUIRE(amount);
    CHECK(amount->strategy.batch == expected);
  }
}

TEST_CASE("every bad request field is named", "[json][rollout]") {
  const std::vector<std::pair<json, std::string>> cases{
      {{{"launch_configuration", 3}}, "launch_configuration"},
      {{{"launch_configuration", std::string(129, 'a')}}, "launch_configuration"},
      {{{"version", 0}}, "version"},
      {{{"version", -1}}, "version"},
      {{{"version", 4294967296}}, "version"},
      {{{"version", "3"}}, "version"},
      {{{"version", 1.0}}, "version"},
      {{{"batch", -1}}, "batch"},
      {{{"batch", "101%"}}, "batch"},
      {{{"batch", "25 %"}}, "batch"},
      {{{"batch", "-1"}}, "batch"},
      {{{"batch", "4294967296"}}, "batch"},
      {{{"batch", 4294967296}}, "batch"},
      {{{"batch", 2.5}}, "batch"},
      {{{"batch", true}}, "batch"},
      {{{"max_surge", "%"}}, "max_surge"},
      {{{"min_healthy", json::object()}}, "min_healthy"},
      {{{"pause_after_first_batch", 1}}, "pause_after_first_batch"},
      {{{"pause_between_batches", "true"}}, "pause_between_batches"},
      {{{"include_protected", nullptr}, {"on_failure", "retry"}}, "on_failure"},
      {{{"on_failure", 1}}, "on_failure"},
      {{{"pause_at_percent", 50}}, "pause_at_percent"},
      {{{"pause_at_percent", {10, -20}}}, "pause_at_percent[1]"},
      {{{"pause_at_percent", {10, "20"}}}, "pause_at_percent[1]"},
      {{{"pause_at_percent", {4294967296}}}, "pause_at_percent[0]"},
      {{{"bake_ms", -1}}, "bake_ms"},
      {{{"bake_ms", 9223372036854775808ULL}}, "bake_ms"},
      {{{"bake_ms", 1e30}}, "bake_ms"},
      {{{"batch_deadline_ms", "600000"}}, "batch_deadline_ms"},
      {{{"canary", 1}}, "canary"},
      {{{"canary", {{"count", -1}}}}, "canary.count"},
      {{{"canary", {{"count", 1.5}}}}, "canary.count"},
      {{{"canary", {{"bake_ms", -5}}}}, "canary.bake_ms"},
      {{{"canary", {{"bake_ms", "5m"}}}}, "canary.bake_ms"},
      {{{"canary", {{"min_requests", -1}}}}, "canary.min_requests"},
      {{{"canary", {{"max_error_share_increase", -0.1}}}}, "canary.max_error_share_increase"},
      {{{"canary", {{"max_latency_ratio", "2"}}}}, "canary.max_latency_ratio"},
      {{{"canary", {{"max_latency_ratio", std::numeric_limits<double>::infinity()}}}}, "canary.max_latency_ratio"},
      {{{"canary", {{"latency_floor_ms", -1}}}}, "canary.latency_floor_ms"},
      {{{"canary", {{"count", 1}, {"bake", 1}}}}, "canary.bake"},
      {{{"batches", "25%"}}, "batches"},
      {{{"strategy", json::object()}}, "strategy"},
  };
  for (const auto& [body, field] : cases) {
    INFO(body.dump());
    CHECK(request_error(body).field == field);
  }
  CHECK(request_error(json{{"batches", 1}}).message == "unknown field");
  for (const json& not_object : {json(nullptr), json::array(), json("{}"), json(1), json(true)}) {
    CHECK(request_error(not_object).field.empty());
  }
}

TEST_CASE("a request's strategy is validated and the error passed through", "[json][rollout]") {
  CHECK(request_error(json{{"batch", 0}}).field == "batch");
  CHECK(request_error(json{{"batch", "0%"}}).field == "batch");
  CHECK(request_error(json{{"max_surge", 1001}}).field == "max_surge");
  CHECK(request_error(json{{"max_surge", 0}, {"min_healthy", "100%"}}).field == "max_surge");
  CHECK(request_error(json{{"bake_ms", 600'000}}).field == "batch_deadline_ms");
  CHECK(request_error(json{{"pause_at_percent", {50, 40}}}).field == "pause_at_percent");
  CHECK(request_error(json{{"pause_at_percent", {100}}}).field == "pause_at_percent");
  CHECK(request_error(json{{"canary", {{"count", 1}, {"bake_ms", 10}}}}).field == "canary.bake_ms");
  CHECK(request_error(json{{"canary", {{"count", 1}, {"max_latency_ratio", 0.5}}}}).field ==
        "canary.max_latency_ratio");
  RolloutStrategy zero_batch;
  zero_batch.batch = Amount{0, false};
  const ModelError direct = validate(zero_batch).error();
  const ModelError passed = request_error(json{{"batch", 0}});
  CHECK(passed.message == direct.message);
}
