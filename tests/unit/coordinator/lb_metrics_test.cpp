// The load balancer's metrics from HAProxy's counters (coordinator/core/
// lb_metrics.hpp): rates from the differences of the totals, a baseline on
// the first sight and after a reload, nothing from samples too close
// together, the response time only when the server answered something.
#include <catch2/catch.hpp>

#include "coordinator/core/lb_metrics.hpp"

using namespace tide::coordinator;

namespace {

InstanceTraffic server(std::string id, std::uint64_t requests, std::uint64_t errors = 0, double mean_ms = 0.0,
                       std::uint64_t queue = 0, std::uint64_t sessions = 0) {
  InstanceTraffic t;
  t.instance_id = std::move(id);
  t.cumulative.requests = requests;
  t.cumulative.errors_5xx = errors;
  t.cumulative.mean_response_ms = mean_ms;
  t.queue = queue;
  t.sessions = sessions;
  return t;
}

}  // namespace

TEST_CASE("lb metrics: rates from the totals, one value per server sampled before", "[lb_metrics]") {
  LbRates rates;
  CHECK(rates.update({server("i-1", 1'000), server("i-2", 50)}, 10'000).empty());  // baselines only
  const auto values = rates.update({server("i-1", 1'500, 10, 12.5, 3, 7), server("i-2", 50, 0, 40.0)}, 12'000);
  REQUIRE(values.size() == 2);
  CHECK(values[0].instance_id == "i-1");
  CHECK(values[0].requests_per_s == Approx(250.0));
  CHECK(values[0].errors_5xx_per_s == Approx(5.0));
  REQUIRE(values[0].response_time_ms);
  CHECK(*values[0].response_time_ms == Approx(12.5));
  CHECK(values[0].queue == 3.0);
  CHECK(values[0].sessions == 7.0);
  // An idle server: 0 requests/s, and HAProxy's stale average is no response time.
  CHECK(values[1].requests_per_s == 0.0);
  CHECK_FALSE(values[1].response_time_ms);
}

TEST_CASE("lb metrics: a reload (counters down) is a new baseline, not a negative or huge rate", "[lb_metrics]") {
  LbRates rates;
  (void)rates.update({server("i-1", 9'000, 90)}, 0);
  CHECK(rates.update({server("i-1", 120, 0)}, 1'000).empty());
  const auto after = rates.update({server("i-1", 320, 2)}, 2'000);
  REQUIRE(after.size() == 1);
  CHECK(after[0].requests_per_s == Approx(200.0));
  CHECK(after[0].errors_5xx_per_s == Approx(2.0));
}

TEST_CASE("lb metrics: samples too close keep the older baseline; absent servers are forgotten", "[lb_metrics]") {
  LbRates rates;
  (void)rates.update({server("i-1", 0), server("i-2", 0)}, 0);
  CHECK(rates.update({server("i-1", 100), server("i-2", 10)}, 100).empty());  // 100 ms: too close
  const auto values = rates.update({server("i-1", 1'000)}, 1'000);            // i-2 left HAProxy
  REQUIRE(values.size() == 1);
  CHECK(values[0].requests_per_s == Approx(1'000.0));  // over the whole second since the baseline
  // i-2 comes back (an address reused, a slot refilled): a baseline again.
  CHECK(rates.update({server("i-1", 2'000), server("i-2", 500)}, 2'000).size() == 1);
  CHECK(rates.update({server("i-2", 900)}, 3'000).at(0).requests_per_s == Approx(400.0));
}

TEST_CASE("lb metrics: the metric names are the load balancer's", "[lb_metrics]") {
  for (const auto name : {kMetricRequestsPerInstance, kMetricResponseTime, kMetricQueue, kMetricHttp5xxRate,
                          kMetricSessionsPerInstance}) {
    CHECK(is_load_balancer_metric(name));
  }
  CHECK_FALSE(is_load_balancer_metric("cpu"));
  CHECK_FALSE(is_load_balancer_metric("app_busy_pct"));
}
