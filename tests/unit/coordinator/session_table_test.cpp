// SessionTable (coordinator/core/session_table.hpp) on a fake clock: the
// coordinator's side of SPEC section 7 — liveness, heartbeats, reconnects,
// command resends — and a stalled coordinator that must not blame its agents.
#include <string>

#include <catch2/catch.hpp>

#include "coordinator/core/session_table.hpp"

using tide::coordinator::SessionConfig;
using Table = tide::coordinator::SessionTable<std::string>;

namespace {

// The agent of `peer` was heard from (a REPORT or any message).
void hear(Table& t, const std::string& peer, std::uint64_t now) {
  if (auto* s = t.find(peer)) Table::heard(*s, now);
}

SessionConfig config() {
  SessionConfig c;
  c.report_interval_ms = 1000;
  c.heartbeat_interval_ms = 1000;
  c.liveness = 3;
  c.command_resend_ms = 1000;
  c.command_attempts = 3;
  c.poll_interval_ms = 100;
  return c;
}

// Polls every 100 ms from `from` to `to` (inclusive), collecting what is lost.
std::vector<std::string> poll_until(Table& t, std::uint64_t from, std::uint64_t to) {
  std::vector<std::string> lost;
  for (std::uint64_t now = from; now <= to; now += 100) {
    for (const auto& l : t.poll(now).lost) lost.push_back(l.instance_id);
  }
  return lost;
}

}  // namespace

TEST_CASE("a silent session is lost after liveness intervals, a talking one never", "[session]") {
  Table t(config());
  REQUIRE_FALSE(t.open("p1", "i-1", "k1", "s1", 1000));
  REQUIRE_FALSE(t.open("p2", "i-2", "k2", "s2", 1000));
  for (std::uint64_t now = 1100; now <= 3900; now += 100) {
    if (now % 1000 == 0) hear(t, "p2", now);
    CHECK(t.poll(now).lost.empty());
  }
  std::vector<std::string> lost;
  for (std::uint64_t now = 4000; now <= 4200; now += 100) {
    if (now % 1000 == 0) hear(t, "p2", now);
    for (const auto& l : t.poll(now).lost) lost.push_back(l.instance_id);
  }
  CHECK(lost == std::vector<std::string>{"i-1"});
  CHECK(t.find("p1") == nullptr);
  CHECK(t.peer_of("i-1") == nullptr);
  CHECK(t.size() == 1);
}

TEST_CASE("a stalled coordinator does not declare its agents lost for its own silence", "[session]") {
  Table t(config());
  REQUIRE_FALSE(t.open("p1", "i-1", "k1", "s1", 1000));
  CHECK(poll_until(t, 1100, 1500).empty());
  // The loop was blocked for 10 s: the agent's REPORTs wait in the socket
  // and are read after this poll.
  CHECK(t.poll(11'500).lost.empty());
  hear(t, "p1", 11'500);
  CHECK(poll_until(t, 11'600, 14'400).empty());
  // Really silent from then on: lost after liveness intervals, as always.
  CHECK(poll_until(t, 14'500, 14'700) == std::vector<std::string>{"i-1"});
}

TEST_CASE("a stall does not hide a session that stays silent after it", "[session]") {
  Table t(config());
  REQUIRE_FALSE(t.open("p1", "i-1", "k1", "s1", 1000));
  CHECK(t.poll(1100).lost.empty());
  CHECK(t.poll(20'000).lost.empty());  // stalled
  CHECK(poll_until(t, 20'100, 22'900).empty());
  CHECK(poll_until(t, 23'000, 23'200) == std::vector<std::string>{"i-1"});
}

TEST_CASE("heartbeats: with a REPORT after half an interval, by the poll after 1.25 intervals", "[session]") {
  Table t(config());
  REQUIRE_FALSE(t.open("p1", "i-1", "k1", "s1", 0));
  t.sent("p1", 0);
  CHECK_FALSE(t.heartbeat_with_report("p1", 400));
  CHECK(t.heartbeat_with_report("p1", 500));
  CHECK(t.poll(1200).heartbeat.empty());
  const auto due = t.poll(1250);
  REQUIRE(due.heartbeat.size() == 1);
  CHECK(due.heartbeat[0] == "p1");
  CHECK_FALSE(t.heartbeat_with_report("nobody", 5000));
}

TEST_CASE("a reconnect replaces the session quietly; a HELLO for another instance ends the old one",
          "[session]") {
  Table t(config());
  REQUIRE_FALSE(t.open("p1", "i-1", "k1", "s1", 0));
  // The same instance on a new connection: no loss.
  CHECK_FALSE(t.open("p2", "i-1", "k1", "s2", 10));
  CHECK(t.find("p1") == nullptr);
  const std::string* now_on = t.peer_of("i-1");
  CHECK((now_on != nullptr && *now_on == "p2"));
  // The connection now speaks for another instance: i-1 lost its agent.
  auto ended = t.open("p2", "i-9", "k9", "s3", 20);
  REQUIRE(ended);
  CHECK(ended->instance_id == "i-1");
  CHECK(t.peer_of("i-1") == nullptr);
  CHECK(t.size() == 1);
  CHECK(t.close("p2", "goodbye")->instance_id == "i-9");
  CHECK_FALSE(t.close("p2", "again"));
}

TEST_CASE("REPORT sequence numbers only move forward", "[session]") {
  Table t(config());
  REQUIRE_FALSE(t.open("p1", "i-1", "k1", "s1", 0));
  auto* s = t.find("p1");
  REQUIRE(s != nullptr);
  if (s == nullptr) return;
  CHECK(Table::fresh_report(*s, 1));
  CHECK(Table::fresh_report(*s, 5));
  CHECK_FALSE(Table::fresh_report(*s, 5));
  CHECK_FALSE(Table::fresh_report(*s, 3));
}

TEST_CASE("commands are resent until acknowledged, expire after their attempts, and wait for a HELLO",
          "[session]") {
  Table t(config());
  REQUIRE_FALSE(t.open("p1", "i-1", "k1", "s1", 0));
  auto [a, to] = t.add_command("i-1", 0);
  REQUIRE(to);
  CHECK(*to == "p1");
  CHECK(t.poll(900).resend.empty());
  auto due = t.poll(1000);
  REQUIRE(due.resend.size() == 1);
  CHECK(due.resend[0].second == a);
  CHECK(t.acknowledged(a));
  CHECK_FALSE(t.acknowledged(a));
  CHECK(t.poll(2000).resend.empty());

  // No session: queued; attempts still count so it expires.
  auto [b, nowhere] = t.add_command("i-2", 2000);
  CHECK_FALSE(nowhere);
  std::size_t expired = 0;
  for (std::uint64_t now = 2000; now <= 6000; now += 100) expired += t.poll(now).expired.size();
  CHECK(expired == 1);
  CHECK(t.pending_commands() == 0);

  // A command that waits goes out as soon as its agent says HELLO.
  auto [c, later] = t.add_command("i-3", 7000);
  CHECK_FALSE(later);
  REQUIRE_FALSE(t.open("p3", "i-3", "k3", "s", 7500));
  due = t.poll(7500);
  REQUIRE(due.resend.size() == 1);
  CHECK(due.resend[0].first == "p3");
  CHECK(due.resend[0].second == c);
  (void)b;
}
