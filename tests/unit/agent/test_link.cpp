#include <catch2/catch.hpp>

#include "agent/core/link.hpp"

using namespace tide::agent;
using tide::protocol::Welcome;

TEST_CASE("back-off is capped exponential with full jitter", "[link]") {
  Backoff b(100, 5000);
  CHECK(b.next_delay_ms(0.999) == 99);
  CHECK(b.next_delay_ms(0.5) == 100);   // ceiling 200
  CHECK(b.next_delay_ms(0.5) == 200);   // ceiling 400
  for (int i = 0; i < 10; ++i) (void)b.next_delay_ms(0.0);
  CHECK(b.ceiling_ms() == 5000);
  CHECK(b.next_delay_ms(0.999) <= 5000);
  CHECK(b.next_delay_ms(0.0) == 0);
  b.reset();
  CHECK(b.ceiling_ms() == 100);
}

TEST_CASE("report interval jitter is +-10 %", "[link]") {
  CHECK(jittered_interval_ms(1000, 0.0) == 900);
  CHECK(jittered_interval_ms(1000, 0.5) == 1000);
  CHECK(jittered_interval_ms(1000, 1.0) == 1100);
}

TEST_CASE("session goes through hello welcome reports liveness and reconnect", "[link]") {
  LinkSession s(LinkTiming{100, 5000, 3000});
  std::uint64_t now = 1000;
  CHECK(s.poll(now, 0.5) == LinkAction::OpenSocket);
  s.socket_opened(now);
  CHECK(s.state() == LinkState::Connecting);
  CHECK(s.poll(now, 0.5) == LinkAction::SendHello);
  s.hello_sent(now, false, 0.5);  // not connected yet: retry after back-off
  CHECK(s.poll(now, 0.5) == LinkAction::None);
  CHECK(s.next_wakeup_ms() == now + 50);
  now += 50;
  CHECK(s.poll(now, 0.5) == LinkAction::SendHello);
  s.hello_sent(now, true, 0.5);
  CHECK(s.poll(now + 2999, 0.5) == LinkAction::None);

  Welcome w{"s1", 1000, 1000, 3};
  s.welcome(w, now + 10);
  now += 10;
  CHECK(s.state() == LinkState::Established);
  CHECK(s.poll(now, 0.5) == LinkAction::SendReport);  // at once after WELCOME
  CHECK(s.next_seq() == 1);
  s.report_sent(now, 0.5);
  CHECK(s.poll(now + 999, 0.5) == LinkAction::None);
  CHECK(s.next_wakeup_ms() == now + 1000);
  CHECK(s.poll(now + 1000, 0.5) == LinkAction::SendReport);
  CHECK(s.next_seq() == 2);
  s.report_sent(now + 1000, 0.5);

  // A readiness change reports at once.
  s.request_report();
  CHECK(s.next_wakeup_ms() == 0);
  CHECK(s.poll(now + 1001, 0.5) == LinkAction::SendReport);
  s.report_sent(now + 1001, 0.5);

  // Heard at now+2000; lost after 3 silent heartbeat intervals.
  s.heard(now + 2000);
  s.report_sent(now + 2000, 0.5);
  s.report_sent(now + 3000, 0.5);
  s.report_sent(now + 4000, 0.5);
  CHECK(s.poll(now + 4999, 0.5) == LinkAction::None);
  CHECK(s.poll(now + 5000, 0.5) == LinkAction::CloseSocket);
  CHECK(s.state() == LinkState::Closed);
  CHECK(s.poll(now + 5000, 0.5) == LinkAction::None);  // back-off: 50 ms
  CHECK(s.poll(now + 5050, 0.5) == LinkAction::OpenSocket);
  s.socket_opened(now + 5050);
  CHECK(s.poll(now + 5050, 0.5) == LinkAction::SendHello);
  s.hello_sent(now + 5050, true, 0.5);
  s.welcome(w, now + 5060);
  CHECK(s.next_seq() == 1);  // seq restarts per session
  CHECK(s.sessions() == 2);
}

TEST_CASE("session: no welcome in time means a fresh socket", "[link]") {
  LinkSession s(LinkTiming{100, 5000, 3000});
  CHECK(s.poll(0, 0.0) == LinkAction::OpenSocket);
  s.socket_opened(0);
  CHECK(s.poll(0, 0.0) == LinkAction::SendHello);
  s.hello_sent(0, true, 0.0);
  CHECK(s.next_wakeup_ms() == 3000);
  CHECK(s.poll(3000, 0.0) == LinkAction::CloseSocket);
  CHECK(s.poll(3000, 0.0) == LinkAction::OpenSocket);  // zero jitter
}

TEST_CASE("session says HELLO again on ERROR 410 and backs off on refusal", "[link]") {
  LinkSession s(LinkTiming{100, 5000, 3000});
  (void)s.poll(0, 0.0);
  s.socket_opened(0);
  (void)s.poll(0, 0.0);
  s.hello_sent(0, true, 0.0);
  s.welcome(Welcome{"s", 1000, 1000, 3}, 5);
  s.session_unknown(100);
  CHECK(s.state() == LinkState::Connecting);
  CHECK(s.poll(100, 0.0) == LinkAction::SendHello);
  s.drop(200, 0.99);
  CHECK(s.state() == LinkState::Closed);
  CHECK(s.poll(200, 0.0) == LinkAction::None);
  CHECK(s.next_wakeup_ms() == 200 + 99);
  CHECK(s.poll(299, 0.0) == LinkAction::OpenSocket);
}

TEST_CASE("commands are idempotent by command id", "[link]") {
  CommandLog log(3);
  CHECK(log.first_time(1));
  CHECK_FALSE(log.first_time(1));
  CHECK(log.first_time(2));
  CHECK(log.first_time(3));
  CHECK(log.first_time(4));  // forgets 1
  CHECK(log.first_time(1));
  CHECK_FALSE(log.first_time(4));
}
