#include "coordinator/io/json/rollout_json.hpp"

#include <array>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <utility>
#include <vector>

#include "coordinator/io/json/fields.hpp"

namespace tide::coordinator {

namespace {

constexpr std::array kRolloutStates{
    RolloutState::Running,    RolloutState::Paused,    RolloutState::RollingBack, RolloutState::Succeeded,
    RolloutState::RolledBack, RolloutState::Cancelled, RolloutState::Failed,
};
constexpr std::array kRolloutPhases{RolloutPhase::Canary, RolloutPhase::Batch};

constexpr std::uint32_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t kMaxI64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMinI64 = std::numeric_limits<std::int64_t>::min();
constexpr std::size_t kMaxName = 4'096;
constexpr std::size_t kMaxReason = 65'536;

template <class E, std::size_t N>
std::optional<E> by_spelling(const std::array<E, N>& values, std::string_view text) {
  for (E value : values) {
    if (to_string(value) == text) return value;
  }
  return std::nullopt;
}

// A JSON integer within 0..2^32-1 (parsed documents hold non-negative
// integers as unsigned, values built in code as signed).
std::optional<std::uint32_t> small_count(const json& value) {
  if (value.is_number_unsigned()) {
    if (value.get<std::uint64_t>() > kMaxU32) return std::nullopt;
    return static_cast<std::uint32_t>(value.get<std::uint64_t>());
  }
  if (value.is_number_integer()) {
    const std::int64_t signed_value = value.get<std::int64_t>();
    if (signed_value < 0 || signed_value > static_cast<std::int64_t>(kMaxU32)) return std::nullopt;
    return static_cast<std::uint32_t>(signed_value);
  }
  return std::nullopt;
}

// A count or a percentage: "25%", "3" or 3.
tl::expected<void, JsonError> read_amount(Fields& f, const std::string& key, Amount& out) {
  if (!f.has(key)) return {};
  const json& value = f.at(key);
  if (value.is_number_integer()) {
    Amount count;
    TIDE_JSON_TRY(f.integer<std::uint32_t>(key, count.value, 0, kMaxU32));
    out = count;
    return {};
  }
  const auto parsed = value.is_string() ? parse_amount(value.get_ref<const std::string&>()) : std::nullopt;
  if (!parsed) return f.fail(key, "must be a count (3 or \"3\") or a percentage up to 100 (\"25%\")");
  out = *parsed;
  return {};
}

// A finite, non-negative number: a document built in code may hold an
// infinity, which dump() would write as null.
tl::expected<void, JsonError> read_ratio(Fields& f, const std::string& key, double& out) {
  if (!f.has(key)) return {};
  const json& value = f.at(key);
  if (!value.is_number()) return f.fail(key, "must be a number");
  const double number = value.get<double>();
  if (!std::isfinite(number) || number < 0.0) return f.fail(key, "must be a finite number >= 0");
  out = number;
  return {};
}

tl::expected<void, JsonError> read_canary(Fields& f, const std::string& prefix, CanarySpec& out) {
  if (!f.has("canary")) return {};
  const json& body = f.at("canary");
  if (!body.is_object()) return f.fail("canary", "must be an object");
  Fields cf(body, prefix + "canary.");
  std::int64_t min_requests = static_cast<std::int64_t>(out.min_requests);
  TIDE_JSON_TRY(cf.integer<std::uint32_t>("count", out.count, 0, kMaxU32));
  TIDE_JSON_TRY(cf.duration<std::int64_t>("bake", out.bake_ms, 0, kMaxI64));
  TIDE_JSON_TRY(cf.integer<std::int64_t>("min_requests", min_requests, 0, kMaxI64));
  TIDE_JSON_TRY(read_ratio(cf, "max_error_share_increase", out.max_error_share_increase));
  TIDE_JSON_TRY(read_ratio(cf, "max_latency_ratio", out.max_latency_ratio));
  TIDE_JSON_TRY(cf.duration<std::int64_t>("latency_floor", out.latency_floor_ms, 0, kMaxI64));
  TIDE_JSON_TRY(cf.no_unknown_keys());
  out.min_requests = static_cast<std::uint64_t>(min_requests);
  return {};
}

// The strategy's keys of `f`; absent keys keep their defaults. `prefix` is
// what error fields start with ("strategy." inside a record).
tl::expected<void, JsonError> read_strategy(Fields& f, const std::string& prefix, RolloutStrategy& s) {
  TIDE_JSON_TRY(read_amount(f, "batch", s.batch));
  TIDE_JSON_TRY(read_amount(f, "max_surge", s.max_surge));
  TIDE_JSON_TRY(read_amount(f, "min_healthy", s.min_healthy));
  TIDE_JSON_TRY(f.boolean("pause_after_first_batch", s.pause_after_first_batch));
  TIDE_JSON_TRY(f.boolean("pause_between_batches", s.pause_between_batches));
  if (f.has("pause_at_percent")) {
    const json& list = f.at("pause_at_percent");
    if (!list.is_array()) return f.fail("pause_at_percent", "must be a list of integers");
    s.pause_at_percent.clear();
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto value = small_count(list[i]);
      if (!value) {
        return f.fail("pause_at_percent[" + std::to_string(i) + "]",
                      "must be an integer 0.." + std::to_string(kMaxU32));
      }
      s.pause_at_percent.push_back(*value);
    }
  }
  TIDE_JSON_TRY(f.duration<std::int64_t>("bake", s.bake_ms, 0, kMaxI64));
  TIDE_JSON_TRY(f.duration<std::int64_t>("batch_deadline", s.batch_deadline_ms, 0, kMaxI64));
  TIDE_JSON_TRY(read_canary(f, prefix, s.canary));
  if (f.has("on_failure")) {
    std::string text;
    TIDE_JSON_TRY(f.text("on_failure", text, 64));
    const auto action = parse_failure_action(text);
    if (!action) return f.fail("on_failure", "must be rollback, pause or cancel");
    s.on_failure = *action;
  }
  TIDE_JSON_TRY(f.boolean("include_protected", s.include_protected));
  return {};
}

// ---- the stored record ------------------------------------------------------------

tl::expected<void, JsonError> require(Fields& f, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (!f.has(key)) return f.fail(key, "missing");
  }
  return {};
}

tl::expected<void, JsonError> read_version_ref(Fields& f, const std::string& key, std::string& launch_configuration,
                                               std::uint32_t& version) {
  const json& body = f.at(key);
  if (!body.is_object()) return f.fail(key, "must be an object {launch_configuration, version}");
  Fields vf(body, key + ".");
  TIDE_JSON_TRY(require(vf, {"launch_configuration", "version"}));
  TIDE_JSON_TRY(vf.text("launch_configuration", launch_configuration, kMaxName));
  TIDE_JSON_TRY(vf.integer<std::uint32_t>("version", version, 0, kMaxU32));
  return vf.no_unknown_keys();
}

tl::expected<void, JsonError> read_ids(Fields& f, const std::string& key, std::vector<std::string>& out) {
  const json& list = f.at(key);
  if (!list.is_array()) return f.fail(key, "must be a list of instance ids");
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_string()) return f.fail(key + "[" + std::to_string(i) + "]", "must be a string");
    out.push_back(list[i].get<std::string>());
  }
  return {};
}

template <class E, std::size_t N>
tl::expected<void, JsonError> read_spelling(Fields& f, const std::string& key, const std::array<E, N>& values,
                                            E& out) {
  std::string text;
  TIDE_JSON_TRY(f.text(key, text, 64));
  const auto value = by_spelling(values, text);
  if (!value) return f.fail(key, "unknown value '" + text + "'");
  out = *value;
  return {};
}

tl::expected<Rollout, JsonError> read_record(const json& record) {
  if (!record.is_object()) return tl::make_unexpected(JsonError{"", "must be a JSON object"});
  Fields f(record);
  TIDE_JSON_TRY(require(f, {"id", "group", "from", "to", "state", "phase", "batch", "batch_instances",
                            "canary_instances", "replaced", "old_at_start", "failures_in_batch",
                            "next_pause_percent", "between_batches", "batch_started_ms", "reason", "created_ms",
                            "updated_ms", "finished_ms", "strategy"}));
  Rollout r;
  TIDE_JSON_TRY(f.text("id", r.id, kMaxName));
  TIDE_JSON_TRY(f.text("group", r.group, kMaxName));
  TIDE_JSON_TRY(read_version_ref(f, "from", r.from_launch_configuration, r.from_version));
  TIDE_JSON_TRY(read_version_ref(f, "to", r.to_launch_configuration, r.to_version));
  TIDE_JSON_TRY(read_spelling(f, "state", kRolloutStates, r.state));
  TIDE_JSON_TRY(read_spelling(f, "phase", kRolloutPhases, r.phase));
  TIDE_JSON_TRY(f.integer<std::uint32_t>("batch", r.batch, 0, kMaxU32));
  TIDE_JSON_TRY(read_ids(f, "batch_instances", r.batch_old));
  TIDE_JSON_TRY(read_ids(f, "canary_instances", r.canary));
  TIDE_JSON_TRY(f.integer<std::uint32_t>("replaced", r.replaced, 0, kMaxU32));
  TIDE_JSON_TRY(f.integer<std::uint32_t>("old_at_start", r.old_at_start, 0, kMaxU32));
  TIDE_JSON_TRY(f.integer<std::uint32_t>("failures_in_batch", r.failures_in_batch, 0, kMaxU32));
  TIDE_JSON_TRY(f.integer<std::uint32_t>("next_pause_percent", r.next_pause_percent, 0, kMaxU32));
  TIDE_JSON_TRY(f.boolean("between_batches", r.between_batches));
  TIDE_JSON_TRY(f.integer<std::int64_t>("batch_started_ms", r.batch_started_ms, kMinI64, kMaxI64));
  TIDE_JSON_TRY(f.text("reason", r.reason, kMaxReason));
  TIDE_JSON_TRY(f.integer<std::int64_t>("created_ms", r.created_ms, kMinI64, kMaxI64));
  TIDE_JSON_TRY(f.integer<std::int64_t>("updated_ms", r.updated_ms, kMinI64, kMaxI64));
  TIDE_JSON_TRY(f.integer<std::int64_t>("finished_ms", r.finished_ms, kMinI64, kMaxI64));
  const json& strategy = f.at("strategy");
  if (!strategy.is_object()) return f.fail("strategy", "must be an object");
  Fields sf(strategy, "strategy.");
  TIDE_JSON_TRY(read_strategy(sf, "strategy.", r.strategy));
  TIDE_JSON_TRY(sf.no_unknown_keys());
  TIDE_JSON_TRY(f.no_unknown_keys());
  if (auto valid = validate(r.strategy); !valid) {
    return tl::make_unexpected(JsonError{"strategy." + valid.error().field, valid.error().message});
  }
  // An index into pause_at_percent; advance() never moves it past the end.
  if (r.next_pause_percent > r.strategy.pause_at_percent.size()) {
    return f.fail("next_pause_percent", "is past the end of strategy.pause_at_percent");
  }
  return r;
}

}  // namespace

std::span<const RolloutState> rollout_states() { return kRolloutStates; }

std::optional<RolloutState> parse_rollout_state(std::string_view text) { return by_spelling(kRolloutStates, text); }

json to_json(const RolloutStrategy& s) {
  return json{{"batch", to_string(s.batch)},
              {"max_surge", to_string(s.max_surge)},
              {"min_healthy", to_string(s.min_healthy)},
              {"pause_after_first_batch", s.pause_after_first_batch},
              {"pause_between_batches", s.pause_between_batches},
              {"pause_at_percent", s.pause_at_percent},
              {"bake_ms", s.bake_ms},
              {"batch_deadline_ms", s.batch_deadline_ms},
              {"canary", {{"count", s.canary.count},
                          {"bake_ms", s.canary.bake_ms},
                          {"min_requests", s.canary.min_requests},
                          {"max_error_share_increase", s.canary.max_error_share_increase},
                          {"max_latency_ratio", s.canary.max_latency_ratio},
                          {"latency_floor_ms", s.canary.latency_floor_ms}}},
              {"on_failure", to_string(s.on_failure)},
              {"include_protected", s.include_protected}};
}

json to_json(const Rollout& r) {
  return json{{"id", r.id},
              {"group", r.group},
              {"from", {{"launch_configuration", r.from_launch_configuration}, {"version", r.from_version}}},
              {"to", {{"launch_configuration", r.to_launch_configuration}, {"version", r.to_version}}},
              {"state", to_string(r.state)},
              {"phase", to_string(r.phase)},
              {"batch", r.batch},
              {"batch_instances", r.batch_old},
              {"canary_instances", r.canary},
              {"replaced", r.replaced},
              {"old_at_start", r.old_at_start},
              {"failures_in_batch", r.failures_in_batch},
              {"next_pause_percent", r.next_pause_percent},
              {"between_batches", r.between_batches},
              {"batch_started_ms", r.batch_started_ms},
              {"reason", r.reason},
              {"created_ms", r.created_ms},
              {"updated_ms", r.updated_ms},
              {"finished_ms", r.finished_ms},
              {"strategy", to_json(r.strategy)}};
}

tl::expected<Rollout, std::string> rollout_from_json(const json& record) {
  auto rollout = read_record(record);
  if (!rollout) {
    const JsonError& e = rollout.error();
    return tl::make_unexpected(e.field.empty() ? e.message : e.field + ": " + e.message);
  }
  return std::move(*rollout);
}

tl::expected<RolloutRequest, ModelError> parse_rollout_request(const json& body) {
  const auto refuse = [](JsonError e) {
    return tl::make_unexpected(ModelError{std::move(e.message), std::move(e.field)});
  };
  if (!body.is_object()) return refuse(JsonError{"", "the body must be a JSON object"});
  Fields f(body);
  RolloutRequest request;
  if (auto ok = f.text("launch_configuration", request.launch_configuration, 128); !ok) return refuse(ok.error());
  if (auto ok = f.integer<std::uint32_t>("version", request.version, 1, kMaxU32); !ok) return refuse(ok.error());
  if (auto ok = read_strategy(f, "", request.strategy); !ok) return refuse(ok.error());
  if (auto ok = f.no_unknown_keys(); !ok) return refuse(ok.error());
  if (auto valid = validate(request.strategy); !valid) return tl::make_unexpected(valid.error());
  return request;
}

}  // namespace tide::coordinator
