#include <catch2/catch.hpp>

#include "agent/core/readiness.hpp"

using tide::agent::NotifyMessage;
using tide::agent::ProbeSpec;
using tide::agent::ProbeState;
using tide::agent::Readiness;
using tide::agent::SourceRole;
using tide::protocol::ProbeKind;

namespace {
ProbeSpec http(std::string name, std::uint32_t success, std::uint32_t failure,
               SourceRole role = SourceRole::Readiness) {
  return ProbeSpec{std::move(name), ProbeKind::Http, role, success, failure};
}
NotifyMessage ready_msg(bool ready) {
  NotifyMessage m;
  m.ready = ready;
  return m;
}
}  // namespace

TEST_CASE("probe state follows success and failure thresholds", "[readiness]") {
  ProbeState p(2, 3);
  CHECK_FALSE(p.passing());
  CHECK_FALSE(p.record(true, "ok", 1));
  CHECK_FALSE(p.passing());
  CHECK(p.record(true, "ok", 1));  // second success: passes
  CHECK(p.passing());
  CHECK_FALSE(p.record(false, "503", 1));
  CHECK_FALSE(p.record(false, "503", 1));
  CHECK(p.passing());  // two failures are below the threshold of 3
  CHECK_FALSE(p.record(true, "ok", 1));  // a success resets the failure count
  CHECK_FALSE(p.record(false, "503", 1));
  CHECK_FALSE(p.record(false, "503", 1));
  CHECK(p.record(false, "503", 1));
  CHECK_FALSE(p.passing());
  CHECK(p.message() == "503");
  CHECK_FALSE(p.record(true, "ok", 1));  // needs 2 successes again
  CHECK(p.record(true, "ok", 1));
}

TEST_CASE("thresholds below 1 behave as 1", "[readiness]") {
  ProbeState p(0, 0);
  CHECK(p.record(true, "", 0));
  CHECK(p.record(false, "", 0));
}

TEST_CASE("transition table of one readiness probe with thresholds 1/1", "[readiness]") {
  // (passing before, attempt) -> (passing after, change reported)
  struct Row { bool before; bool attempt; bool after; bool changed; };
  const Row rows[] = {{false, false, false, false}, {false, true, true, true},
                      {true, true, true, false}, {true, false, false, true}};
  for (const auto& row : rows) {
    ProbeState p(1, 1, row.before);
    CHECK(p.record(row.attempt, "", 0) == row.changed);
    CHECK(p.passing() == row.after);
  }
}

TEST_CASE("no source configured means ready", "[readiness]") {
  Readiness r({}, false);
  CHECK(r.status().ready);
  CHECK(r.status().healthy);
  CHECK(r.status().ready_reason == "no readiness source configured");
}

TEST_CASE("ready only when every readiness source passes", "[readiness]") {
  Readiness r({http("web", 1, 1), http("db", 1, 1)}, true);
  CHECK_FALSE(r.status().ready);
  CHECK_FALSE(r.record_probe(0, true, "200", 3));
  CHECK_FALSE(r.record_probe(1, true, "200", 3));
  CHECK_FALSE(r.status().ready);
  CHECK(r.status().ready_reason == "application has not said READY=1");
  CHECK(r.apply_notify(ready_msg(true)));
  CHECK(r.status().ready);
  CHECK(r.record_probe(1, false, "connection refused", 0));
  CHECK_FALSE(r.status().ready);
  CHECK(r.status().ready_reason == "probe db: connection refused");
  CHECK(r.record_probe(1, true, "200", 1));
  CHECK(r.status().ready);
  // STOPPING=1 takes it out; READY=1 brings it back.
  NotifyMessage stopping;
  stopping.stopping = true;
  CHECK(r.apply_notify(stopping));
  CHECK_FALSE(r.status().ready);
  CHECK(r.status().ready_reason == "application said STOPPING=1");
  CHECK(r.apply_notify(ready_msg(true)));
  CHECK(r.apply_notify(ready_msg(false)));
  CHECK_FALSE(r.status().ready);
}

TEST_CASE("a status-only notify does not change readiness", "[readiness]") {
  Readiness r({}, true);
  NotifyMessage status;
  status.status = "warming caches";
  CHECK_FALSE(r.apply_notify(status));
  CHECK(r.notify_status() == "warming caches");
  auto probes = r.probe_results();
  REQUIRE(probes.size() == 1);
  CHECK(probes[0].kind == ProbeKind::Notify);
  CHECK(probes[0].message == "warming caches");
  CHECK_FALSE(probes[0].passing);
}

TEST_CASE("health checks are separate from readiness", "[readiness]") {
  Readiness r({http("ready", 1, 1), http("alive", 1, 2, SourceRole::Health)}, false);
  CHECK(r.status().healthy);  // not probed yet is not unhealthy
  CHECK_FALSE(r.status().ready);
  CHECK_FALSE(r.record_probe(1, false, "timeout", 1000));
  CHECK(r.status().healthy);
  CHECK(r.record_probe(1, false, "timeout", 1000));
  CHECK_FALSE(r.status().healthy);
  CHECK(r.status().health_reason == "check alive: timeout");
  CHECK(r.record_probe(0, true, "200", 1));
  CHECK(r.status().ready);  // unhealthy does not decide readiness
}

TEST_CASE("drain forces not ready until undrain", "[readiness]") {
  Readiness r({http("web", 1, 1)}, false);
  CHECK(r.record_probe(0, true, "200", 1));
  CHECK(r.drain());
  CHECK_FALSE(r.status().ready);
  CHECK(r.status().draining);
  CHECK(r.status().ready_reason == "draining");
  CHECK_FALSE(r.drain());  // idempotent
  CHECK_FALSE(r.record_probe(0, true, "200", 1));
  CHECK(r.undrain());
  CHECK(r.status().ready);
  CHECK_FALSE(r.status().draining);
}

TEST_CASE("probe results carry every source", "[readiness]") {
  Readiness r({http("web", 1, 1), ProbeSpec{"port", ProbeKind::Tcp, SourceRole::Readiness, 1, 1}},
              true);
  REQUIRE(r.record_probe(1, true, "connected", 2) == false);
  auto results = r.probe_results();
  REQUIRE(results.size() == 3);
  CHECK(results[0].name == "web");
  CHECK_FALSE(results[0].passing);
  CHECK(results[0].message == "not probed yet");
  CHECK(results[1].kind == ProbeKind::Tcp);
  CHECK(results[1].passing);
  CHECK(results[1].latency_ms == 2);
  CHECK(results[2].name == "notify");
}
