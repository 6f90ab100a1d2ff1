// Prometheus as a metric source (coordinator/core/metric_query.hpp and the
// query parts of policy_model.hpp and scaling.hpp): what an answer means,
// when a failing query is worth an activity, which queries the shell polls,
// and how policies on a query's value scale.
#include <array>

#include <catch2/catch.hpp>

#include "coordinator/core/lb_metrics.hpp"
#include "coordinator/core/metric_query.hpp"
#include "coordinator/core/scaling.hpp"

using namespace tide::coordinator;

namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;
constexpr const char* kQuery = "sum(queue_depth)";

std::string vector_answer(std::initializer_list<const char*> values) {
  std::string result;
  int k = 0;
  for (const char* value : values) {
    if (!result.empty()) result += ",";
    result += R"({"metric":{"job":"app","i":")" + std::to_string(k++) + R"("},"value":[1700000000.5,")" + value +
              R"("]})";
  }
  return R"({"status":"success","data":{"resultType":"vector","result":[)" + result + "]}}";
}

MetricQuery query_of(std::string group = "web", std::string query = kQuery) {
  return MetricQuery{std::move(group), std::move(query), "queue_depth", {"queue-high"}};
}

AlarmPolicy query_alarm(std::string name, Comparison comparison, double threshold, std::int32_t adjustment) {
  AlarmPolicy p;
  p.group = "web";
  p.name = std::move(name);
  p.metric = "queue_depth";
  p.query = kQuery;
  p.comparison = comparison;
  p.threshold = threshold;
  p.period_ms = 5'000;
  p.evaluation_periods = 2;
  p.adjustment = adjustment;
  p.cooldown_ms = 0;
  return p;
}

}  // namespace

// ---- answers -----------------------------------------------------------------

TEST_CASE("query_value: a scalar or a one-element vector is the value") {
  CHECK(query_value(200, R"({"status":"success","data":{"resultType":"scalar","result":[1700000000,"42.5"]}})")
            .value() == Approx(42.5));
  CHECK(query_value(200, vector_answer({"7"})).value() == Approx(7.0));
  CHECK(query_value(200, vector_answer({"-0.25e1"})).value() == Approx(-2.5));
}

TEST_CASE("query_value: anything but one number is an error that says what to do") {
  const auto error = [](long status, const std::string& body) {
    const auto value = query_value(status, body);
    REQUIRE_FALSE(value);
    return value.error();
  };
  CHECK_THAT(error(200, vector_answer({})), Catch::Contains("no series"));
  CHECK_THAT(error(200, vector_answer({"1", "2", "3"})), Catch::Contains("3 series") && Catch::Contains("sum"));
  CHECK_THAT(error(200, vector_answer({"NaN"})), Catch::Contains("not a finite number"));
  CHECK_THAT(error(200, vector_answer({"+Inf"})), Catch::Contains("not a finite number"));
  CHECK_THAT(error(200, vector_answer({"twelve"})), Catch::Contains("not a number"));
  CHECK_THAT(error(200, R"({"status":"success","data":{"resultType":"matrix","result":[]}})"),
             Catch::Contains("range vector"));
  CHECK_THAT(error(200, R"({"status":"success","data":{"resultType":"string","result":[1,"x"]}})"),
             Catch::Contains("string"));
  CHECK_THAT(error(400, R"({"status":"error","errorType":"bad_data","error":"parse error at char 4"})"),
             Catch::Contains("bad_data") && Catch::Contains("parse error at char 4"));
  CHECK_THAT(error(502, "<html>Bad Gateway</html>"), Catch::Contains("HTTP 502"));
  CHECK_THAT(error(200, "<html>hello</html>"), Catch::Contains("not JSON"));
  CHECK_THAT(error(200, R"({"status":"success"})"), Catch::Contains("no data"));
  CHECK_THAT(error(200, R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}})"),
             Catch::Contains("no value"));
  CHECK_THAT(error(200, R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}})"),
             Catch::Contains("[time"));
  // A huge error text is cut, not copied whole into the activity history.
  const std::string long_error(5'000, 'x');
  CHECK(error(422, R"({"status":"error","errorType":"execution","error":")" + long_error + R"("})").size() < 300);
}

// ---- health notes --------------------------------------------------------------

TEST_CASE("QueryHealth: a note when a query starts failing, changes its error, or works again") {
  QueryHealth health;
  const MetricQuery q = query_of();
  CHECK_FALSE(health.observe(q, "", kT0));  // works: nothing to say
  auto note = health.observe(q, "connection refused", kT0 + 1'000);
  REQUIRE(note);
  CHECK_FALSE(note->ok);
  CHECK(note->group == "web");
  CHECK_THAT(note->cause, Catch::Contains("queue-high") && Catch::Contains("connection refused"));
  CHECK(health.last_error("web", kQuery) == "connection refused");
  // The same error every second: one note only.
  for (int k = 2; k < 30; ++k) CHECK_FALSE(health.observe(q, "connection refused", kT0 + k * 1'000));
  // Another error within a minute of the last note: still quiet; after it: a note.
  CHECK_FALSE(health.observe(q, "no answer within the time-out", kT0 + 30'000));
  CHECK_FALSE(health.observe(q, "connection refused", kT0 + 40'000));
  CHECK(health.observe(q, "no answer within the time-out", kT0 + 70'000));
  // The same error for ever after: no more notes.
  for (int k = 71; k < 400; ++k) CHECK_FALSE(health.observe(q, "no answer within the time-out", kT0 + k * 1'000));
  note = health.observe(q, "", kT0 + 401'000);
  REQUIRE(note);
  CHECK(note->ok);
  CHECK_THAT(note->cause, Catch::Contains("works again"));
  CHECK(health.last_error("web", kQuery).empty());
  CHECK_FALSE(health.observe(q, "", kT0 + 402'000));
}

TEST_CASE("QueryHealth: queries no longer polled are forgotten") {
  QueryHealth health;
  REQUIRE(health.observe(query_of("web"), "boom", kT0));
  REQUIRE(health.observe(query_of("api"), "boom", kT0));
  health.keep_only({query_of("api")});
  CHECK(health.last_error("web", kQuery).empty());
  CHECK(health.last_error("api", kQuery) == "boom");
  // Polled again later, a failure is news again.
  CHECK(health.observe(query_of("web"), "boom", kT0 + 1'000));
}

// ---- policies with a query ---------------------------------------------------------

TEST_CASE("a query policy: validated, and its values kept apart from what agents report") {
  AlarmPolicy p = query_alarm("queue-high", Comparison::Greater, 10.0, 1);
  CHECK(validate(p));
  CHECK(metric_source(p.metric, p.query) == MetricSource::Prometheus);
  CHECK(metric_source("cpu", "") == MetricSource::Agent);
  CHECK(metric_source(std::string(kMetricRequestsPerInstance), "") == MetricSource::LoadBalancer);
  CHECK(metric_series(p.metric, p.query) != p.metric);
  CHECK(is_query_series(metric_series(p.metric, p.query)));
  CHECK_FALSE(is_query_series("queue_depth"));

  p.metric = "cpu";  // a name the agents report
  CHECK(validate(p).error().field == "metric");
  p.metric = std::string(kMetricQueue);  // one the load balancer reports
  CHECK(validate(p).error().field == "metric");
  p.metric = "queue_depth";
  p.query = std::string(kMaxQueryBytes + 1, 'x');
  CHECK(validate(p).error().field == "query");
  p.query = "sum(x)\r\n";
  CHECK(validate(p).error().field == "query");
  p.query = "  \n ";
  CHECK(validate(p).error().field == "query");
  p.query = "sum(\n  rate(x[1m])\n)\t";
  CHECK(validate(p));

  TargetTrackingPolicy t;
  t.group = "web";
  t.name = "per-instance";
  t.metric = "memory";
  t.query = kQuery;
  CHECK(validate(t).error().field == "metric");
}

TEST_CASE("metric_queries: each (group, query) of an enabled policy once") {
  Autoscaler scaler;
  REQUIRE(scaler.put_alarm(query_alarm("queue-high", Comparison::Greater, 10.0, 1)));
  REQUIRE(scaler.put_alarm(query_alarm("queue-low", Comparison::Less, 2.0, -1)));
  AlarmPolicy other = query_alarm("errors", Comparison::Greater, 1.0, 1);
  other.query = "sum(rate(errors[1m]))";
  other.metric = "errors";
  other.enabled = false;
  REQUIRE(scaler.put_alarm(other));
  AlarmPolicy plain = query_alarm("cpu-high", Comparison::Greater, 80.0, 1);
  plain.metric = "cpu";
  plain.query.clear();
  REQUIRE(scaler.put_alarm(plain));
  TargetTrackingPolicy t;
  t.group = "api";
  t.name = "per-instance";
  t.metric = "queue_per_instance";
  t.query = kQuery;
  REQUIRE(scaler.put_target_tracking(t));

  const auto queries = scaler.metric_queries();
  REQUIRE(queries.size() == 2);
  CHECK(queries[0] == MetricQuery{"api", kQuery, "queue_per_instance", {"per-instance"}});
  CHECK(queries[1] == MetricQuery{"web", kQuery, "queue_depth", {"queue-high", "queue-low"}});
}

TEST_CASE("an alarm on a query's value: one value per poll is complete data, none blocks scale-in") {
  Autoscaler scaler;
  ScalingGroup group;
  group.name = "web";
  group.min = 1;
  group.max = 10;
  group.desired = 3;
  REQUIRE(scaler.put_alarm(query_alarm("queue-high", Comparison::Greater, 10.0, 2)));
  REQUIRE(scaler.put_alarm(query_alarm("queue-low", Comparison::Less, 2.0, -1)));
  MetricWindows windows;
  const std::string series = metric_series("queue_depth", kQuery);
  TimeMs now = kT0;
  // 5 eligible instances, but a query has one value per poll: that is complete.
  const GroupStatus status{&group, 3, 5};
  const auto step = [&](std::optional<double> value) {
    if (value) {
      const std::array<MetricSample, 1> sample{{{series, *value}}};
      windows.record("web", "prometheus", now, sample);
    }
    now += 1'000;
    auto decisions = scaler.evaluate(now, windows, std::span<const GroupStatus>(&status, 1));
    for (const auto& d : decisions) group.desired = d.to_desired;
    return decisions;
  };
  // The agents' "queue_depth" (a custom metric of the same name) is not the query's.
  const std::array<MetricSample, 1> agents{{{"queue_depth", 100.0}}};
  for (int k = 0; k < 15; ++k) {
    windows.record("web", "i-1", now, agents);
    CHECK(step(5.0).empty());
  }
  // High for two 5 s periods: +2.
  std::vector<ScalingDecision> decided;
  for (int k = 0; k < 12 && decided.empty(); ++k) decided = step(50.0);
  REQUIRE(decided.size() == 1);
  CHECK(decided[0].to_desired == 5);
  CHECK_THAT(decided[0].cause, Catch::Contains("queue-high") && Catch::Contains("queue_depth"));
  // The query then fails (no values): nothing scales in, however long (the
  // high values still in the span may scale out once more).
  for (int k = 0; k < 60; ++k) {
    for (const auto& d : step(std::nullopt)) CHECK(d.to_desired > d.from_desired);
  }
  // Values again, low: after two full periods of them it scales in.
  const std::uint32_t before = group.desired;
  decided.clear();
  for (int k = 0; k < 12 && decided.empty(); ++k) decided = step(0.5);
  REQUIRE(decided.size() == 1);
  CHECK(decided[0].to_desired == before - 1);
}
