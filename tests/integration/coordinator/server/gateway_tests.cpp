// Integration tests of the coordinator's AgentGateway (protocol/SPEC.md,
// sections 7, 8, 10 and 12): a real gateway on a real libuv loop, simulated
// agents that are real transport::Dealer sockets on tcp://127.0.0.1:*, with
// CURVE (and the ZAP handler) on and off. Only the waits are bounded by the
// loop's clock; nothing is faked.
#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/integration/coordinator/server/gateway_fixture.hpp"

using namespace tide;
using namespace tide::coordinator;
using namespace tide::coordinator::test;
using protocol::ErrorCode;

TEST_CASE("LatencyHistogram quantiles are bucket bounds", "[gateway]") {
  LatencyHistogram histogram;
  CHECK(histogram.quantile_us(0.99) == 0);  // empty
  for (int i = 0; i < 98; ++i) histogram.record_us(4);
  histogram.record_us(800);
  histogram.record_us(12'000);
  CHECK(histogram.count() == 100);
  CHECK(histogram.quantile_us(0.5) == 5);
  CHECK(histogram.quantile_us(0.99) == 1'000);
  CHECK(histogram.quantile_us(1.0) == 20'000);
  histogram.record_us(UINT64_MAX);  // lands in the last bucket, no overflow
  CHECK(histogram.count() == 101);
  histogram.reset();
  CHECK(histogram.count() == 0);
  CHECK(histogram.quantile_us(0.5) == 0);
}

TEST_CASE_METHOD(GatewayFixture, "HELLO is answered by WELCOME with the configured intervals",
                 "[gateway]") {
  const bool curve = GENERATE(false, true);
  INFO("CURVE " << (curve ? "on" : "off"));
  GatewayConfig config = quick_config();
  config.report_interval_ms = 700;
  config.heartbeat_interval_ms = 900;
  config.liveness = 4;
  REQUIRE(start(config, curve));
  handler.tokens["i-1"] = "token-1";
  const auto keys = agent_keys(true);
  auto agent = make_agent("i-1", keys);

  REQUIRE(hello(*agent, "i-1", "token-1"));
  const auto welcomes = agent->all<protocol::Welcome>();
  REQUIRE(welcomes.size() == 1);
  CHECK_FALSE(welcomes[0].session_id.empty());
  CHECK(welcomes[0].report_interval_ms == 700);
  CHECK(welcomes[0].heartbeat_interval_ms == 900);
  CHECK(welcomes[0].liveness == 4);

  REQUIRE(handler.hellos.size() == 1);
  CHECK(handler.hellos[0].instance_id == "i-1");
  // With CURVE the handler learns the key that ZAP let in; without, nothing.
  CHECK(handler.hellos[0].agent_key == (curve ? keys.public_z85 : std::string()));
  if (curve) {
    CHECK(std::count(handler.zap_keys.begin(), handler.zap_keys.end(), keys.public_z85) >= 1);
  } else {
    CHECK(handler.zap_keys.empty());
  }
  CHECK(gateway->connected("i-1"));
  CHECK_FALSE(gateway->connected("i-2"));
  CHECK(gateway->stats().hellos == 1);
  CHECK(gateway->stats().sessions == 1);
  CHECK(gateway->stats().hellos_refused == 0);
}

TEST_CASE_METHOD(GatewayFixture, "CURVE: ZAP refuses a key the handler does not allow",
                 "[gateway][curve]") {
  REQUIRE(start(quick_config(), true));
  handler.tokens["i-1"] = "token-1";
  handler.tokens["i-2"] = "token-2";

  const auto stranger_keys = agent_keys(false);
  auto intruder = make_agent("i-1", stranger_keys);
  REQUIRE(intruder->connect());
  std::size_t sent = 0;
  REQUIRE(run_until([&] {
    // IMMEDIATE: a HELLO cannot even be queued before a handshake succeeds.
    if (intruder->send(make_hello("i-1", "token-1"))) ++sent;
    return intruder->saw(transport::DealerEvent::AuthFailed);
  }));
  run_for(200);  // room for a wrongly admitted frame to show up
  CHECK(sent == 0);
  CHECK(handler.hellos.empty());
  CHECK(gateway->stats().hellos == 0);
  CHECK(gateway->transport_counters().frames_in == 0);
  CHECK(intruder->inbox.empty());
  CHECK_FALSE(intruder->saw(transport::DealerEvent::Connected));
  REQUIRE_FALSE(handler.zap_keys.empty());
  CHECK(handler.zap_keys.front() == stranger_keys.public_z85);

  // An allowed key on another connection is let in and welcomed.
  const auto good_keys = agent_keys(true);
  auto agent = make_agent("i-2", good_keys);
  REQUIRE(hello(*agent, "i-2", "token-2"));
  CHECK(agent->count<protocol::Welcome>() == 1);
  REQUIRE(handler.hellos.size() == 1);
  CHECK(handler.hellos[0].agent_key == good_keys.public_z85);
}

TEST_CASE_METHOD(GatewayFixture, "a refused HELLO gets ERROR 401 or 404 and opens no session",
                 "[gateway]") {
  const bool curve = GENERATE(false, true);
  INFO("CURVE " << (curve ? "on" : "off"));
  REQUIRE(start(quick_config(), curve));
  handler.tokens["i-1"] = "token-1";

  auto wrong_token = make_agent("i-1");
  REQUIRE(hello(*wrong_token, "i-1", "not-the-token"));
  CHECK(wrong_token->errors(ErrorCode::Unauthorized) == 1);
  CHECK(wrong_token->count<protocol::Welcome>() == 0);

  auto unknown = make_agent("i-ghost");
  REQUIRE(hello(*unknown, "i-ghost", "token-1"));
  CHECK(unknown->errors(ErrorCode::UnknownInstance) == 1);
  REQUIRE(unknown->all<protocol::Error>().size() == 1);
  CHECK(unknown->all<protocol::Error>()[0].message == "unknown instance");

  CHECK(handler.hellos.size() == 2);
  CHECK(gateway->stats().hellos_refused == 2);
  CHECK(gateway->stats().sessions == 0);
  CHECK_FALSE(gateway->connected("i-1"));
  CHECK_FALSE(gateway->connected("i-ghost"));

  // The refused agent's REPORT is not taken as being in a session.
  REQUIRE(send_when_connected(*wrong_token, make_report(1)));
  REQUIRE(run_until([&] { return gateway->stats().unknown_session == 1; }));
  CHECK(handler.reports.empty());
}

TEST_CASE_METHOD(GatewayFixture, "REPORTs reach on_report in order", "[gateway]") {
  const bool curve = GENERATE(false, true);
  INFO("CURVE " << (curve ? "on" : "off"));
  REQUIRE(start(quick_config(), curve));
  handler.tokens["i-1"] = "token-1";
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "token-1"));

  constexpr std::uint64_t kCount = 300;
  std::vector<protocol::Message> reports;
  for (std::uint64_t seq = 1; seq <= kCount; ++seq) reports.emplace_back(make_report(seq, seq % 2 == 0));
  REQUIRE(send_all(*agent, reports, [&] { return handler.reports.size() == kCount; }));

  for (std::uint64_t i = 0; i < kCount; ++i) {
    INFO("report " << i);
    REQUIRE(handler.reports[i].instance_id == "i-1");
    REQUIRE(handler.reports[i].seq == i + 1);
    REQUIRE(handler.reports[i].ready == ((i + 1) % 2 == 0));
  }
  CHECK(gateway->stats().reports == kCount);
  CHECK(gateway->stats().reports_stale == 0);
  CHECK(gateway->stats().bad_frames == 0);
  CHECK(gateway->report_latency().count() == kCount);
  CHECK(gateway->report_latency().quantile_us(0.5) > 0);
}

TEST_CASE_METHOD(GatewayFixture, "stale and duplicate REPORT seqs are dropped", "[gateway]") {
  REQUIRE(start(quick_config(), false));
  handler.tokens["i-1"] = "token-1";
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "token-1"));

  const std::vector<protocol::Message> reports{make_report(5), make_report(6), make_report(6),
                                               make_report(3), make_report(7), make_report(7)};
  REQUIRE(send_all(*agent, reports, [&] {
    return handler.reports.size() + gateway->stats().reports_stale == reports.size();
  }));
  std::vector<std::uint64_t> seqs;
  for (const auto& r : handler.reports) seqs.push_back(r.seq);
  CHECK(seqs == std::vector<std::uint64_t>{5, 6, 7});
  CHECK(gateway->stats().reports == 3);
  CHECK(gateway->stats().reports_stale == 3);
  CHECK(gateway->report_latency().count() == 3);
  // Dropping is silent: a stale REPORT is not an error worth answering.
  CHECK(agent->count<protocol::Error>() == 0);
}

TEST_CASE_METHOD(GatewayFixture, "a message that needs a session gets ERROR 410 before HELLO",
                 "[gateway]") {
  REQUIRE(start(quick_config(), false));
  handler.tokens["i-1"] = "token-1";
  handler.tokens["i-2"] = "token-2";

  auto agent = make_agent("i-1");
  REQUIRE(agent->connect());
  REQUIRE(send_when_connected(*agent, make_report(1)));
  REQUIRE(run_until([&] { return agent->errors(ErrorCode::UnknownSession) == 1; }));
  CHECK(gateway->stats().unknown_session == 1);
  CHECK(gateway->stats().reports == 0);
  CHECK(handler.reports.empty());

  // SPEC 7.1.5: an ACK (or HOOK_RESULT) without a session is answered 410 too.
  auto acker = make_agent("i-2");
  REQUIRE(acker->connect());
  REQUIRE(send_when_connected(*acker, protocol::Ack{42}));
  REQUIRE(run_until([&] { return acker->errors(ErrorCode::UnknownSession) == 1; }));
  CHECK(gateway->stats().unknown_session == 2);
  CHECK(handler.acks.empty());

  // Saying HELLO then makes the same REPORT count.
  REQUIRE(hello(*agent, "i-1", "token-1"));
  CHECK(agent->count<protocol::Welcome>() == 1);
  REQUIRE(agent->send(make_report(1)));
  REQUIRE(run_until([&] { return handler.reports.size() == 1; }));
  CHECK(handler.reports[0].seq == 1);
}

TEST_CASE_METHOD(GatewayFixture, "malformed frames are counted and answered at most once a second",
                 "[gateway]") {
  REQUIRE(start(quick_config(), false));
  handler.tokens["i-1"] = "token-1";
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "token-1"));

  // 50 kinds of garbage: not msgpack, truncated, wrong envelope, unknown
  // command, an out-of-bounds field, a huge length header (msgpack-c #1013).
  std::vector<std::vector<std::uint8_t>> garbage;
  const auto good = protocol::encode(make_report(1));
  for (std::size_t i = 0; i < 50; ++i) {
    switch (i % 5) {
      case 0: garbage.push_back({0xc1, static_cast<std::uint8_t>(i)}); break;  // 0xc1: never used
      case 1: garbage.emplace_back(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2)); break;
      case 2: garbage.push_back({0xdd, 0xff, 0x00, 0x00, 0x00}); break;
      case 3: {
        // ["TIDE", 1, 0, "NOPE", {}]
        garbage.push_back({0x95, 0xa4, 'T', 'I', 'D', 'E', 0x01, 0x00, 0xa4, 'N', 'O', 'P', 'E', 0x80});
        break;
      }
      default: garbage.push_back({0x92, 0x01, 0x02}); break;  // [1, 2]
    }
  }
  std::size_t next = 0;
  REQUIRE(run_until([&] {
    while (next < garbage.size() && agent->send_raw(garbage[next])) ++next;
    return gateway->stats().bad_frames == garbage.size();
  }));
  run_for(300);  // let every ERROR the gateway sent arrive
  const std::size_t errors = agent->errors(ErrorCode::BadMessage);
  CHECK(errors >= 1);
  CHECK(errors <= 2);
  CHECK(agent->undecodable == 0);
  CHECK(gateway->stats().bad_frames == 50);
  CHECK(gateway->stats().reports == 0);

  // The session survives the garbage and still works.
  CHECK(gateway->connected("i-1"));
  REQUIRE(agent->send(make_report(1)));
  REQUIRE(run_until([&] { return handler.reports.size() == 1; }));
}

TEST_CASE_METHOD(GatewayFixture, "an unsupported major version gets ERROR 505", "[gateway]") {
  REQUIRE(start(quick_config(), false));
  handler.tokens["i-1"] = "token-1";
  auto agent = make_agent("i-1");
  REQUIRE(agent->connect());
  // ["TIDE", 2, 0, "HELLO", {}]: a later major may change everything after it.
  const std::vector<std::uint8_t> v2{0x95, 0xa4, 'T', 'I', 'D', 'E', 0x02, 0x00,
                                     0xa5, 'H',  'E', 'L', 'L', 'O', 0x80};
  REQUIRE(run_until([&] { return agent->send_raw(v2); }));
  REQUIRE(run_until([&] { return agent->count<protocol::Error>() == 1; }));
  const auto error = agent->all<protocol::Error>()[0];
  CHECK(error.code == ErrorCode::UnsupportedVersion);
  CHECK(error.message.find("version 1") != std::string::npos);
  CHECK(gateway->stats().bad_frames == 1);
  CHECK(gateway->stats().hellos == 0);
  CHECK(handler.hellos.empty());
}

TEST_CASE_METHOD(GatewayFixture, "a silent agent is lost after liveness x interval", "[gateway]") {
  GatewayConfig config = quick_config();
  config.report_interval_ms = 100;
  config.heartbeat_interval_ms = 100;
  config.liveness = 3;
  REQUIRE(start(config, false));
  handler.tokens["i-silent"] = "t";
  handler.tokens["i-chatty"] = "t";

  auto silent = make_agent("i-silent");
  auto chatty = make_agent("i-chatty");
  // Taken before the HELLO is sent: the gateway's last receipt is later.
  const std::uint64_t said_hello_ms = now_ms();
  REQUIRE(hello(*silent, "i-silent", "t"));
  REQUIRE(hello(*chatty, "i-chatty", "t"));

  // The chatty agent reports every 50 ms and must outlive the silent one by far.
  std::uint64_t seq = 0;
  std::uint64_t last_sent_ms = 0;
  const auto chatter = [&] {
    if (now_ms() - last_sent_ms >= 50 && chatty->send(make_report(seq + 1))) {
      ++seq;
      last_sent_ms = now_ms();
    }
  };
  REQUIRE(run_until([&] {
    chatter();
    return !handler.lost.empty();
  }));
  REQUIRE(handler.lost.size() == 1);
  CHECK(handler.lost[0].instance_id == "i-silent");
  CHECK(handler.lost[0].reason.find("liveness") != std::string::npos);
  // Not before 3 x 100 ms of silence (the HELLO was its last message).
  CHECK(handler.lost[0].at_ms - said_hello_ms >= 300);
  CHECK(handler.lost[0].at_ms - said_hello_ms < 2000);  // generous: the machine is shared
  CHECK_FALSE(gateway->connected("i-silent"));
  CHECK(gateway->stats().sessions_lost == 1);

  run_until(
      [&] {
        chatter();
        return false;
      },
      800);
  CHECK(handler.lost.size() == 1);
  CHECK(gateway->connected("i-chatty"));
  CHECK(gateway->stats().sessions == 1);

  // SPEC 7.2: a later message from the lost agent gets ERROR 410.
  REQUIRE(silent->send(make_report(1)));
  REQUIRE(run_until([&] { return silent->errors(ErrorCode::UnknownSession) == 1; }));
}

TEST_CASE_METHOD(GatewayFixture, "an idle agent is sent HEARTBEATs, no more often than the interval",
                 "[gateway]") {
  GatewayConfig config = quick_config();
  config.report_interval_ms = 2000;  // lost after 10 s: not within this test
  config.heartbeat_interval_ms = 100;
  REQUIRE(start(config, false));
  handler.tokens["i-1"] = "t";
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "t"));

  const std::uint64_t window_start = now_ms();
  run_for(1000);
  const std::uint64_t window_ms = now_ms() - window_start;
  const std::size_t beats = agent->count<protocol::Heartbeat>();
  CHECK(beats >= 3);
  // The gateway sends one only after heartbeat_interval_ms without sending.
  CHECK(beats <= window_ms / 100 + 1);
  CHECK(handler.lost.empty());
}

TEST_CASE_METHOD(GatewayFixture, "GOODBYE ends the session at once", "[gateway]") {
  GatewayConfig config = quick_config();
  config.report_interval_ms = 2000;
  config.liveness = 5;  // lost by liveness only after 10 s
  REQUIRE(start(config, false));
  handler.tokens["i-1"] = "t";
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "t"));
  REQUIRE(agent->send(make_report(1)));
  const std::uint64_t said_goodbye_ms = now_ms();
  REQUIRE(agent->send(protocol::Goodbye{"agent shutting down"}));
  REQUIRE(run_until([&] { return !handler.lost.empty(); }));
  CHECK(handler.lost[0].at_ms - said_goodbye_ms < 2000);
  CHECK(handler.lost[0].instance_id == "i-1");
  CHECK(handler.lost[0].reason == "agent shutting down");
  CHECK(handler.reports.size() == 1);  // the REPORT before it still counted
  CHECK_FALSE(gateway->connected("i-1"));
  CHECK(gateway->stats().sessions == 0);
  CHECK(gateway->stats().sessions_lost == 1);
}

TEST_CASE_METHOD(GatewayFixture, "a DRAIN is resent until ACKed and not after", "[gateway]") {
  const bool curve = GENERATE(false, true);
  INFO("CURVE " << (curve ? "on" : "off"));
  REQUIRE(start(quick_config(), curve));  // resend every 100 ms, 5 attempts
  handler.tokens["i-1"] = "t";
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "t"));

  const auto id = gateway->send_command("i-1", protocol::Drain{0, 5000});
  REQUIRE(id.has_value());
  CHECK(*id >= 1);
  REQUIRE(run_until([&] { return agent->count<protocol::Drain>() >= 2; }));
  for (const auto& drain : agent->all<protocol::Drain>()) {
    CHECK(drain.command_id == *id);
    CHECK(drain.timeout_ms == 5000);
  }
  CHECK(gateway->stats().commands_sent == 1);
  CHECK(gateway->stats().commands_resent >= 1);

  REQUIRE(agent->send(protocol::Ack{*id}));
  REQUIRE(run_until([&] { return !handler.acks.empty(); }));
  CHECK(handler.acks[0] == std::make_pair(std::string("i-1"), *id));
  const std::uint64_t sent_at_ack = gateway->stats().commands_sent + gateway->stats().commands_resent;
  run_for(500);  // five resend periods
  CHECK(gateway->stats().commands_sent + gateway->stats().commands_resent == sent_at_ack);
  CHECK(agent->count<protocol::Drain>() == sent_at_ack);
  CHECK(gateway->stats().commands_expired == 0);

  // A repeated ACK (the agent re-ACKs a resend it already applied) is not news.
  REQUIRE(agent->send(protocol::Ack{*id}));
  run_for(100);
  CHECK(handler.acks.size() == 1);

  // The next command gets a new id.
  const auto undrain = gateway->send_command("i-1", protocol::Undrain{0});
  REQUIRE(undrain.has_value());
  CHECK(*undrain != *id);
  REQUIRE(run_until([&] { return agent->count<protocol::Undrain>() >= 1; }));
  CHECK(agent->all<protocol::Undrain>()[0].command_id == *undrain);
}

TEST_CASE_METHOD(GatewayFixture, "an unACKed command expires after the configured attempts",
                 "[gateway]") {
  GatewayConfig config = quick_config();
  config.command_resend_ms = 100;
  config.command_attempts = 3;
  REQUIRE(start(config, false));
  handler.tokens["i-1"] = "t";
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "t"));

  const auto id = gateway->send_command("i-1", protocol::Shutdown{0, 1000});
  REQUIRE(id.has_value());
  REQUIRE(run_until([&] { return gateway->stats().commands_expired == 1; }));
  run_for(200);  // no more copies after expiry, and in-flight ones arrive
  CHECK(agent->count<protocol::Shutdown>() == 3);
  CHECK(gateway->stats().commands_sent == 1);
  CHECK(gateway->stats().commands_resent == 2);
  // A late ACK is for a command the gateway gave up on.
  REQUIRE(agent->send(protocol::Ack{*id}));
  run_for(100);
  CHECK(handler.acks.empty());
}

TEST_CASE_METHOD(GatewayFixture, "a command for an agent without a session waits for its HELLO",
                 "[gateway]") {
  GatewayConfig config = quick_config();
  config.command_resend_ms = 200;
  config.command_attempts = 10;  // 2 s to say HELLO
  REQUIRE(start(config, false));
  handler.tokens["i-1"] = "t";

  // No session: nullopt, but the command is queued (the gateway resends it).
  CHECK_FALSE(gateway->send_command("i-1", protocol::Drain{0, 100}).has_value());
  CHECK(gateway->stats().commands_sent == 0);
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "t"));
  REQUIRE(run_until([&] { return agent->count<protocol::Drain>() >= 1; }));
  const auto drain = agent->all<protocol::Drain>()[0];
  CHECK(drain.command_id >= 1);
  CHECK(drain.timeout_ms == 100);
  REQUIRE(agent->send(protocol::Ack{drain.command_id}));
  REQUIRE(run_until([&] { return handler.acks.size() == 1; }));
  CHECK(handler.acks[0].second == drain.command_id);
}

TEST_CASE_METHOD(GatewayFixture, "a reconnect replaces the session quietly, on the same routing id or a new socket",
                 "[gateway]") {
  const bool curve = GENERATE(false, true);
  const bool same_socket = GENERATE(false, true);
  INFO("CURVE " << (curve ? "on" : "off") << ", " << (same_socket ? "same routing id" : "new socket"));
  REQUIRE(start(quick_config(), curve));
  handler.tokens["i-1"] = "t";
  const auto keys = agent_keys(true);

  auto first = make_agent("i-1", keys);
  REQUIRE(hello(*first, "i-1", "t"));
  const std::vector<protocol::Message> reports{make_report(1), make_report(2), make_report(3)};
  REQUIRE(send_all(*first, reports, [&] { return handler.reports.size() == 3; }));

  // The old connection is still open (a half-dead link). ZeroMQ reconnecting
  // the same socket keeps its routing id (ROUTER_HANDOVER gives the id to the
  // new connection); an agent that opens a new socket has a new nonce.
  auto second = same_socket ? make_peer(first->routing_id(), keys) : make_agent("i-1", keys);
  REQUIRE(hello(*second, "i-1", "t"));
  REQUIRE(second->count<protocol::Welcome>() == 1);
  CHECK(second->all<protocol::Welcome>()[0].session_id !=
        first->all<protocol::Welcome>()[0].session_id);
  CHECK(handler.hellos.size() == 2);
  // Replacing a session is not losing the agent: no on_lost, so the fleet
  // does not mark a healthy instance unhealthy for a reconnect.
  CHECK(handler.lost.empty());
  CHECK(gateway->stats().sessions == 1);
  CHECK(gateway->connected("i-1"));

  // The new session starts again at seq 1.
  REQUIRE(second->send(make_report(1)));
  REQUIRE(run_until([&] { return handler.reports.size() == 4; }));
  CHECK(handler.reports[3].seq == 1);
  CHECK(gateway->stats().reports_stale == 0);

  // Commands go to the new connection.
  const auto id = gateway->send_command("i-1", protocol::Drain{0, 0});
  REQUIRE(id);
  REQUIRE(run_until([&] { return second->count<protocol::Drain>() >= 1; }));
  CHECK(first->count<protocol::Drain>() == 0);
}

TEST_CASE_METHOD(GatewayFixture, "a connection speaks only for the instance its routing id names",
                 "[gateway]") {
  REQUIRE(start(quick_config(), false));
  handler.tokens["i-1"] = "t";
  handler.tokens["i-2"] = "t";
  auto agent = make_agent("i-1");  // routing id a:i-1/<nonce> ...
  REQUIRE(hello(*agent, "i-1", "t"));
  REQUIRE(agent->send(make_hello("i-2", "t")));  // ... cannot speak for i-2
  REQUIRE(run_until([&] { return agent->errors(protocol::ErrorCode::Unauthorized) == 1; }));
  CHECK(agent->all<protocol::Error>().back().message.find("a:i-2/") != std::string::npos);
  CHECK(gateway->connected("i-1"));
  CHECK_FALSE(gateway->connected("i-2"));
  CHECK(handler.lost.empty());
  CHECK(handler.hellos.size() == 1);  // the refusal is the gateway's, before the fleet is asked

  // Predictable or malformed routing ids get no session either.
  for (const std::string& routing_id : {std::string("a:i-2"), std::string("a:i-2/0123"),
                                       transport::agent_routing_id("i-2", std::string(32, 'G')),
                                       transport::agent_routing_id("i-2x", std::string(32, 'a'))}) {
    INFO("routing id " << routing_id);
    auto peer = make_peer(routing_id);
    REQUIRE(peer->connect());
    REQUIRE(send_when_connected(*peer, make_hello("i-2", "t")));
    REQUIRE(run_until([&] { return peer->errors(protocol::ErrorCode::Unauthorized) == 1; }));
    CHECK_FALSE(gateway->connected("i-2"));
  }
  REQUIRE(agent->send(make_report(1)));
  REQUIRE(run_until([&] { return handler.reports.size() == 1; }));
  CHECK(handler.reports[0].instance_id == "i-1");
}

TEST_CASE_METHOD(GatewayFixture, "CURVE: impostors with keys ZAP lets in cannot disturb another agent's session",
                 "[gateway][curve]") {
  // Two enrolled agents, each bound to its key. An impostor holding a key
  // that passes ZAP (agent 2's, or a fresh one while an enrollment is open)
  // keeps connecting as agent 1 — with the routing id older releases used,
  // a guessed nonce, or none — and says HELLO for i-1. Agent 1 must not
  // lose one REPORT, its connection or its session.
  REQUIRE(start(quick_config(), true));
  handler.tokens["i-1"] = "t1";
  handler.tokens["i-2"] = "t2";
  handler.tokens["i-3"] = "t3";  // launched, its agent not there yet: enrollment open
  const auto keys_1 = agent_keys(true);
  const auto keys_2 = agent_keys(true);
  auto agent_1 = make_agent("i-1", keys_1);
  auto agent_2 = make_agent("i-2", keys_2);
  REQUIRE(hello(*agent_1, "i-1", "t1"));
  REQUIRE(hello(*agent_2, "i-2", "t2"));
  handler.bound_keys["i-1"] = keys_1.public_z85;
  handler.bound_keys["i-2"] = keys_2.public_z85;

  const std::vector<std::string> routing_ids{
      "a:i-1", transport::new_agent_routing_id("i-1"), std::string(), "a:i-1/" + std::string(32, '0')};
  std::uint64_t seq = 0;
  std::size_t send_failures = 0;
  std::size_t impostors_refused = 0;
  for (int round = 0; round < 24; ++round) {
    const bool fresh_key = round % 2 == 1;
    auto impostor = make_peer(routing_ids[static_cast<std::size_t>(round) % routing_ids.size()],
                              fresh_key ? agent_keys(true) : keys_2);
    REQUIRE(impostor->connect());
    bool said_hello = false;
    bool answered = false;
    // Agent 1 reports every 20 ms meanwhile; IMMEDIATE makes a send fail
    // while its connection is down.
    REQUIRE(run_until(
        [&] {
          if (!said_hello) said_hello = impostor->send(make_hello("i-1", ""));
          answered = impostor->errors(protocol::ErrorCode::Unauthorized) > 0;
          return answered;
        },
        5000));
    ++impostors_refused;
    for (int i = 0; i < 3; ++i) {
      if (agent_1->send(make_report(++seq))) {
        run_for(20);
      } else {
        ++send_failures;
      }
    }
    impostor->close();
  }
  REQUIRE(run_until([&] {
    std::size_t from_1 = 0;
    for (const auto& r : handler.reports) from_1 += r.instance_id == "i-1" ? 1U : 0U;
    return from_1 == seq;
  }));
  CHECK(impostors_refused == 24);
  CHECK(send_failures == 0);
  CHECK_FALSE(agent_1->saw(transport::DealerEvent::Disconnected));
  CHECK(agent_1->errors(protocol::ErrorCode::UnknownSession) == 0);
  CHECK(handler.lost.empty());
  CHECK(gateway->connected("i-1"));
  CHECK(gateway->connected("i-2"));
  CHECK(gateway->stats().sessions == 2);
  // Every report of agent 1 arrived, in order, in its one session.
  std::uint64_t expected = 0;
  for (const auto& r : handler.reports) {
    if (r.instance_id == "i-1") CHECK(r.seq == ++expected);
  }
  // Commands still reach agent 1 on its own connection.
  REQUIRE(gateway->send_command("i-1", protocol::Drain{0, 0}));
  REQUIRE(run_until([&] { return agent_1->count<protocol::Drain>() >= 1; }));
}

TEST_CASE_METHOD(GatewayFixture, "CURVE: a frame from another key on a session's routing id is dropped",
                 "[gateway][curve]") {
  REQUIRE(start(quick_config(), true));
  handler.tokens["i-1"] = "t";
  auto owner = make_agent("i-1", agent_keys(true));
  REQUIRE(hello(*owner, "i-1", "t"));

  // Another key ZAP lets in that somehow learned the routing id (its nonce
  // is never sent in clear) takes the connection over; its frames are not
  // the session's.
  auto impostor = make_peer(owner->routing_id(), agent_keys(true));
  REQUIRE(impostor->connect());
  REQUIRE(send_when_connected(*impostor, make_report(100)));
  REQUIRE(run_until([&] { return gateway->stats().bad_frames == 1; }));
  CHECK(handler.reports.empty());
  CHECK(gateway->stats().reports == 0);
}

TEST_CASE_METHOD(GatewayFixture, "stop() says GOODBYE to every session", "[gateway]") {
  REQUIRE(start(quick_config(), false));
  handler.tokens["i-1"] = "t";
  // Not IMMEDIATE: with it, libzmq discards a DEALER's unread inbound
  // messages when the connection drops, and here the agent shares the
  // gateway's loop thread, so it cannot read before stop() closes the ROUTER.
  auto agent = make_agent("i-1", std::nullopt, false);
  REQUIRE(hello(*agent, "i-1", "t"));
  gateway->stop("coordinator upgrade");
  gateway->stop("again");  // idempotent
  CHECK_FALSE(gateway->connected("i-1"));
  REQUIRE(run_until([&] { return agent->count<protocol::Goodbye>() == 1; }, 2000));
  CHECK(agent->all<protocol::Goodbye>()[0].reason == "coordinator upgrade");
  // send_command after stop is refused, not a crash.
  CHECK_FALSE(gateway->send_command("i-1", protocol::Drain{0, 0}).has_value());
}

TEST_CASE_METHOD(GatewayFixture, "a multi-part message is counted as a bad frame and answered 400",
                 "[gateway]") {
  REQUIRE(start(quick_config(), false));
  handler.tokens["i-1"] = "token-1";
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "token-1"));

  // A raw DEALER with the agent's routing id would take its connection over;
  // this one speaks for nobody.
  zmq::socket_t raw(agents_context, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::routing_id, "a:raw");
  raw.connect(endpoint);
  const auto report = protocol::encode(make_report(1));
  REQUIRE(raw.send(zmq::buffer(report), zmq::send_flags::sndmore));
  REQUIRE(raw.send(zmq::buffer(report), zmq::send_flags::none));
  REQUIRE(run_until([&] { return gateway->stats().bad_frames == 1; }));
  CHECK(gateway->stats().multipart_frames == 1);
  CHECK(gateway->transport_counters().dropped_multipart == 1);
  CHECK(gateway->stats().unknown_session == 0);  // never decoded
  zmq::message_t answer;
  REQUIRE(run_until([&] { return raw.recv(answer, zmq::recv_flags::dontwait).has_value(); }));
  const auto error =
      protocol::decode(std::span<const std::uint8_t>(answer.data<std::uint8_t>(), answer.size()));
  REQUIRE(error);
  REQUIRE(std::holds_alternative<protocol::Error>(*error));
  CHECK(std::get<protocol::Error>(*error).code == ErrorCode::BadMessage);

  // The agent's session is untouched.
  REQUIRE(agent->send(make_report(1)));
  REQUIRE(run_until([&] { return handler.reports.size() == 1; }));
}

TEST_CASE_METHOD(GatewayFixture,
                 "410, 401 and 404 are answered every time; only 400 and 505 are limited",
                 "[gateway]") {
  REQUIRE(start(quick_config(), false));
  auto agent = make_agent("i-1");  // the fleet does not know i-1 yet
  REQUIRE(agent->connect());
  const std::uint64_t started_ms = now_ms();

  // A garbage frame first: its 400 must not use up the answers below.
  REQUIRE(run_until([&] { return agent->send_raw({0x92, 0x01, 0x02}); }));  // [1, 2]: no envelope
  REQUIRE(run_until([&] { return agent->errors(ErrorCode::BadMessage) == 1; }));
  // Two REPORTs without a session: each gets its 410 (SPEC 7.1.5).
  REQUIRE(agent->send(make_report(1)));
  REQUIRE(agent->send(make_report(2)));
  REQUIRE(run_until([&] { return agent->errors(ErrorCode::UnknownSession) == 2; }));
  // The agent says HELLO right after the 410: refused, it must hear why.
  REQUIRE(hello(*agent, "i-1", "token-1"));
  CHECK(agent->errors(ErrorCode::UnknownInstance) == 1);
  handler.tokens["i-1"] = "token-1";
  REQUIRE(hello(*agent, "i-1", "wrong"));
  CHECK(agent->errors(ErrorCode::Unauthorized) == 1);
  // ... and the next right HELLO is welcomed.
  REQUIRE(hello(*agent, "i-1", "token-1"));
  CHECK(agent->count<protocol::Welcome>() == 1);
  // All of it inside the one second the 400 limit spans.
  INFO("took " << now_ms() - started_ms << " ms");
  CHECK(now_ms() - started_ms < 1000);

  // A second bad frame within the second is still not answered.
  REQUIRE(agent->send_raw({0xc1}));
  REQUIRE(run_until([&] { return gateway->stats().bad_frames == 2; }));
  run_for(100);
  if (now_ms() - started_ms < 1000) CHECK(agent->errors(ErrorCode::BadMessage) == 1);
}

TEST_CASE_METHOD(GatewayFixture, "command ids keep rising across a coordinator restart",
                 "[gateway]") {
  REQUIRE(start(quick_config(), false));
  handler.tokens["i-1"] = "t";
  auto agent = make_agent("i-1");
  REQUIRE(hello(*agent, "i-1", "t"));
  std::uint64_t last_id = 0;
  for (int i = 0; i < 3; ++i) {
    const auto id = gateway->send_command("i-1", protocol::Drain{0, 0});
    REQUIRE(id);
    CHECK(*id > last_id);
    last_id = *id;
  }
  agent->close();
  gateway->stop("restart");

  // A new gateway (a restarted coordinator) must not hand out ids the agent
  // has already applied: the agent would only ACK them again (SPEC 8).
  gateway.reset();
  REQUIRE(start(quick_config(), false));
  auto again = make_agent("i-1");
  REQUIRE(hello(*again, "i-1", "t"));
  const auto after_restart = gateway->send_command("i-1", protocol::Drain{0, 0});
  REQUIRE(after_restart);
  CHECK(*after_restart > last_id);
}
