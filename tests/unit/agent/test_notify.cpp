#include <catch2/catch.hpp>

#include <string>

#include "agent/core/notify.hpp"

using tide::agent::parse_notify;

TEST_CASE("sd_notify datagrams", "[notify]") {
  auto m = parse_notify("READY=1\nSTATUS=serving 12 rps\nMAINPID=42\n");
  REQUIRE(m.ready);
  CHECK(*m.ready);
  REQUIRE(m.status);
  CHECK(*m.status == "serving 12 rps");
  CHECK(m.ignored == 1);  // MAINPID
  CHECK_FALSE(m.stopping);

  m = parse_notify("STOPPING=1");
  CHECK(m.stopping);
  CHECK_FALSE(m.ready);

  m = parse_notify("READY=0\nWATCHDOG=1");
  REQUIRE(m.ready);
  CHECK_FALSE(*m.ready);
  CHECK(m.watchdog);
}

TEST_CASE("custom metrics over the notify socket", "[notify]") {
  auto m = parse_notify("METRIC=qps=1234\nMETRIC=latency_p99_ms=12.5\nMETRIC=bad name=1\n"
                        "METRIC=x=nan\nMETRIC=y=12abc\nMETRIC=novalue\nMETRIC==3");
  REQUIRE(m.metrics.size() == 2);
  CHECK(m.metrics[0].first == "qps");
  CHECK(m.metrics[0].second == 1234.0);
  CHECK(m.metrics[1].first == "latency_p99_ms");
  CHECK(m.metrics[1].second == 12.5);
  CHECK(m.ignored == 5);
}

TEST_CASE("garbage on the notify socket is ignored", "[notify]") {
  const std::string binary("\x00\xff\xfe=\n=\n\n\x01READY=2", 13);
  auto m = parse_notify(binary);
  CHECK_FALSE(m.ready);
  CHECK_FALSE(m.stopping);
  CHECK(m.metrics.empty());
  CHECK(m.ignored >= 2);
  CHECK(parse_notify("").ignored == 0);
  const std::string huge(tide::agent::kMaxNotifyDatagram + 1, 'A');
  auto h = parse_notify(huge);
  CHECK(h.ignored == 1);
  CHECK_FALSE(h.ready);
}
