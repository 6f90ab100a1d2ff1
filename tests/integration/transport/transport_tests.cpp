// Integration tests of tide_transport: real ZeroMQ sockets on
// tcp://127.0.0.1 (port read back) driven by a real libuv loop.
#include <sys/resource.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "protocol/transport/dealer.hpp"
#include "protocol/transport/router.hpp"
#include "protocol/transport/zap_handler.hpp"
#include "tests/integration/transport/loop_fixture.hpp"

using namespace tide::transport;
using tide::transport::test::bytes;
using tide::transport::test::LoopFixture;
using tide::transport::test::text;

namespace {

RouterOptions local_router_options() {
  RouterOptions options;
  options.endpoint = "tcp://127.0.0.1:*";
  return options;
}

DealerOptions dealer_options(const std::string& endpoint, const std::string& instance_id) {
  DealerOptions options;
  options.endpoint = endpoint;
  options.routing_id = "a:" + instance_id;
  return options;
}

struct Received {
  PeerId peer;
  std::string user_id;
  std::string body;
};

// Wires a router's on_message into a vector.
void collect(Router& router, std::vector<Received>& into) {
  router.on_message([&into](const PeerId& peer, std::string_view user_id,
                            std::span<const std::uint8_t> frame) {
    into.push_back(Received{peer, std::string(user_id), text(frame)});
  });
}

void collect(Dealer& dealer, std::vector<std::string>& into) {
  dealer.on_message([&into](std::span<const std::uint8_t> frame) { into.push_back(text(frame)); });
}

// Connects a dealer and waits for its handshake, by sending a probe frame
// until the router has it (IMMEDIATE makes sends fail until connected).
bool connect_and_greet(LoopFixture& fx, Dealer& dealer, std::vector<Received>& router_inbox,
                       const std::string& greeting) {
  if (!dealer.connect()) return false;
  const auto frame = bytes(greeting);
  bool sent = false;
  return fx.run_until([&] {
    if (!sent) sent = dealer.send(frame).has_value();
    for (const auto& r : router_inbox) {
      if (r.body == greeting) return true;
    }
    return false;
  });
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto to_s = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return to_s(usage.ru_utime) + to_s(usage.ru_stime);
}

}  // namespace

TEST_CASE_METHOD(LoopFixture, "bind on tcp://127.0.0.1:* reads the port back", "[transport]") {
  Router router(loop(), context(), local_router_options());
  auto endpoint = router.bind();
  REQUIRE(endpoint.has_value());
  CHECK(endpoint->rfind("tcp://127.0.0.1:", 0) == 0);
  CHECK(*endpoint != "tcp://127.0.0.1:*");
  CHECK(router.endpoint() == *endpoint);

  RouterOptions bad_options;
  bad_options.endpoint = "nonsense://x";
  Router bad(loop(), context(), bad_options);
  auto failed = bad.bind();
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().kind == TransportError::Kind::InvalidArgument);
}

TEST_CASE_METHOD(LoopFixture, "1,000 frames each way arrive complete and in order", "[transport]") {
  Router router(loop(), context(), local_router_options());
  std::vector<Received> router_inbox;
  collect(router, router_inbox);
  auto endpoint = router.bind();
  REQUIRE(endpoint);

  Dealer dealer(loop(), context(), dealer_options(*endpoint, "i-1"));
  std::vector<std::string> dealer_inbox;
  collect(dealer, dealer_inbox);
  REQUIRE(connect_and_greet(*this, dealer, router_inbox, "hello"));
  router_inbox.clear();

  constexpr int kCount = 1000;
  int up_sent = 0;
  int down_sent = 0;
  const std::uint64_t would_block_before = dealer.counters().send_would_block;
  std::uint64_t would_block = 0;
  // Pump both directions from the loop: the agent's SNDHWM is 16, so sends
  // fail with WouldBlock in bursts and are retried on the next tick.
  const bool done = run_until(
      [&] {
        while (up_sent < kCount) {
          auto r = dealer.send(bytes("up-" + std::to_string(up_sent)));
          if (!r) {
            REQUIRE(r.error().kind == TransportError::Kind::WouldBlock);
            ++would_block;
            break;
          }
          ++up_sent;
        }
        while (down_sent < kCount) {
          auto r = router.send("a:i-1", bytes("down-" + std::to_string(down_sent)));
          if (!r) {
            REQUIRE(r.error().kind == TransportError::Kind::WouldBlock);
            break;
          }
          ++down_sent;
        }
        return router_inbox.size() >= kCount && dealer_inbox.size() >= kCount;
      },
      10000);
  REQUIRE(done);
  REQUIRE(router_inbox.size() == kCount);
  REQUIRE(dealer_inbox.size() == kCount);
  for (int i = 0; i < kCount; ++i) {
    const auto idx = static_cast<std::size_t>(i);
    REQUIRE(router_inbox[idx].body == "up-" + std::to_string(i));
    REQUIRE(router_inbox[idx].peer == "a:i-1");
    REQUIRE(router_inbox[idx].user_id.empty());  // no CURVE here
    REQUIRE(dealer_inbox[idx] == "down-" + std::to_string(i));
  }
  CHECK(router.counters().frames_in == kCount + 1);
  CHECK(router.counters().frames_out == kCount);
  CHECK(dealer.counters().frames_in == kCount);
  CHECK(dealer.counters().send_would_block - would_block_before == would_block);
  CHECK(router.counters().dropped_in == 0);
}

TEST_CASE_METHOD(LoopFixture, "CURVE with ZAP: an unknown key is refused, an allowed key gets through",
                 "[transport][curve]") {
  const auto server_keys = generate_curve_keypair();
  const auto good_keys = generate_curve_keypair();
  const auto bad_keys = generate_curve_keypair();
  REQUIRE(server_keys);
  REQUIRE(good_keys);
  REQUIRE(bad_keys);
  REQUIRE(good_keys->public_z85 != bad_keys->public_z85);

  std::vector<ZapRequest> zap_seen;
  ZapHandler zap(loop(), context(), [&](const ZapRequest& request) {
    zap_seen.push_back(request);
    ZapDecision decision;
    decision.allow = request.client_key_z85 == good_keys->public_z85;
    decision.status_text = decision.allow ? "known key" : "unknown key";
    return decision;
  });
  REQUIRE(zap.bind());  // before the router binds

  RouterOptions options = local_router_options();
  options.curve_server_secret_z85 = server_keys->secret_z85;
  Router router(loop(), context(), options);
  std::vector<Received> router_inbox;
  collect(router, router_inbox);
  auto endpoint = router.bind();
  REQUIRE(endpoint);

  auto curve_options = [&](const std::string& id, const CurveKeyPair& client) {
    DealerOptions o = dealer_options(*endpoint, id);
    o.curve = DealerCurve{server_keys->public_z85, client};
    return o;
  };

  SECTION("unknown key") {
    Dealer intruder(loop(), context(), curve_options("intruder", *bad_keys));
    std::vector<DealerEvent> events;
    intruder.on_event([&](DealerEvent e) { events.push_back(e); });
    REQUIRE(intruder.connect());
    std::uint64_t attempts = 0;
    const bool refused = run_until([&] {
      // IMMEDIATE: nothing may even be queued while no handshake succeeded.
      if (intruder.send(bytes("let me in"))) ++attempts;
      for (auto e : events) {
        if (e == DealerEvent::AuthFailed) return true;
      }
      return false;
    });
    REQUIRE(refused);
    run_for(200);  // give a wrongly let-in frame time to show up
    CHECK(attempts == 0);
    CHECK(router_inbox.empty());
    CHECK(router.counters().frames_in == 0);
    REQUIRE_FALSE(zap_seen.empty());
    CHECK(zap_seen.front().client_key_z85 == bad_keys->public_z85);
    CHECK(zap_seen.front().mechanism == "CURVE");
    CHECK(zap_seen.front().domain == "tide");
    CHECK(zap_seen.front().address == "127.0.0.1");
    CHECK(zap.counters().refused >= 1);
    CHECK(zap.counters().allowed == 0);
    for (auto e : events) CHECK(e != DealerEvent::Connected);
  }

  SECTION("allowed key, and the router sees it as User-Id") {
    Dealer agent(loop(), context(), curve_options("good", *good_keys));
    std::vector<DealerEvent> events;
    agent.on_event([&](DealerEvent e) { events.push_back(e); });
    std::vector<std::string> agent_inbox;
    collect(agent, agent_inbox);
    REQUIRE(connect_and_greet(*this, agent, router_inbox, "HELLO"));
    REQUIRE(router_inbox.size() == 1);
    CHECK(router_inbox[0].peer == "a:good");
    CHECK(router_inbox[0].user_id == good_keys->public_z85);
    CHECK(zap.counters().allowed == 1);
    REQUIRE_FALSE(events.empty());
    CHECK(events.front() == DealerEvent::Connected);

    REQUIRE(router.send("a:good", bytes("WELCOME")));
    REQUIRE(run_until([&] { return !agent_inbox.empty(); }));
    CHECK(agent_inbox[0] == "WELCOME");
  }

  SECTION("wrong server key: the handshake fails and nothing is delivered") {
    const auto impostor_server = generate_curve_keypair();
    REQUIRE(impostor_server);
    DealerOptions o = curve_options("confused", *good_keys);
    o.curve->server_public_z85 = impostor_server->public_z85;
    Dealer agent(loop(), context(), o);
    REQUIRE(agent.connect());
    run_for(300);
    CHECK_FALSE(agent.send(bytes("x")).has_value());
    CHECK(router_inbox.empty());
  }
}

TEST_CASE_METHOD(LoopFixture, "a malformed ZAP request is answered 500", "[transport][curve]") {
  ZapHandler zap(loop(), context(), [](const ZapRequest&) { return ZapDecision{true, "", ""}; });
  REQUIRE(zap.bind());
  ZapHandler second(loop(), context(), [](const ZapRequest&) { return ZapDecision{}; });
  CHECK_FALSE(second.bind().has_value());  // the endpoint is taken

  zmq::socket_t client(context(), zmq::socket_type::req);
  client.set(zmq::sockopt::linger, 0);
  client.connect(kZapEndpoint);
  REQUIRE(client.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore));
  REQUIRE(client.send(zmq::str_buffer("req-7"), zmq::send_flags::none));

  std::vector<std::string> reply;
  REQUIRE(run_until([&] {
    zmq::message_t frame;
    // A REQ socket refuses to receive past the end of its reply.
    while (reply.size() < 6 && client.recv(frame, zmq::recv_flags::dontwait)) {
      reply.push_back(frame.to_string());
    }
    return reply.size() >= 6;
  }));
  REQUIRE(reply.size() == 6);
  CHECK(reply[0] == "1.0");
  CHECK(reply[1] == "req-7");
  CHECK(reply[2] == "500");
  CHECK(reply[4].empty());
  CHECK(zap.counters().malformed == 1);
  CHECK(zap.counters().allowed == 0);
}

TEST_CASE_METHOD(LoopFixture, "an oversized frame disconnects only its sender", "[transport]") {
  Router router(loop(), context(), local_router_options());
  std::vector<Received> router_inbox;
  std::size_t largest = 0;
  router.on_message([&](const PeerId& peer, std::string_view user_id,
                        std::span<const std::uint8_t> frame) {
    largest = std::max(largest, frame.size());
    router_inbox.push_back(Received{peer, std::string(user_id), text(frame)});
  });
  auto endpoint = router.bind();
  REQUIRE(endpoint);

  Dealer good(loop(), context(), dealer_options(*endpoint, "good"));
  std::vector<std::string> good_inbox;
  collect(good, good_inbox);
  REQUIRE(connect_and_greet(*this, good, router_inbox, "good-1"));

  // The offender lifts its own limit (our Dealer refuses to send oversized
  // frames) and would only reconnect after 10 s, well after this test.
  DealerOptions bad_options = dealer_options(*endpoint, "bad");
  bad_options.max_frame_bytes = 1 << 20;
  bad_options.reconnect_ivl_ms = 10000;
  bad_options.reconnect_ivl_max_ms = 10000;
  Dealer bad(loop(), context(), bad_options);
  REQUIRE(connect_and_greet(*this, bad, router_inbox, "bad-1"));
  REQUIRE(router.send("a:bad", bytes("still here?")));

  const std::vector<std::uint8_t> huge(tide::protocol::kMaxFrameBytes + 1, 0x41);
  REQUIRE(bad.send(huge));
  std::optional<TransportError> gone;
  REQUIRE(run_until([&] {
    auto r = router.send("a:bad", bytes("ping"));
    if (!r) gone = r.error();
    return !r.has_value();
  }));
  CHECK(gone->kind == TransportError::Kind::PeerGone);
  CHECK(router.counters().send_peer_gone >= 1);

  // The other peer is still served both ways.
  REQUIRE(good.send(bytes("good-2")));
  REQUIRE(router.send("a:good", bytes("to-good")));
  REQUIRE(run_until([&] {
    return !good_inbox.empty() && router_inbox.back().body == "good-2";
  }));
  CHECK(good_inbox.front() == "to-good");
  CHECK(largest <= tide::protocol::kMaxFrameBytes);
  for (const auto& r : router_inbox) CHECK(r.body.size() < tide::protocol::kMaxFrameBytes);

  // Our own Dealer refuses to send what the peer would refuse to receive.
  auto too_large = good.send(huge);
  REQUIRE_FALSE(too_large.has_value());
  CHECK(too_large.error().kind == TransportError::Kind::TooLarge);
}

TEST_CASE_METHOD(LoopFixture, "under CURVE the frame limit is the application's frame, both ways",
                 "[transport][curve]") {
  // CURVE adds 33 bytes on the wire; frames of 65,504..65,536 bytes are
  // legal (SPEC 4.2) and must not cost the sender its connection.
  const auto server_keys = generate_curve_keypair();
  const auto client_keys = generate_curve_keypair();
  const auto offender_keys = generate_curve_keypair();
  REQUIRE(server_keys);
  REQUIRE(client_keys);
  REQUIRE(offender_keys);
  ZapHandler zap(loop(), context(), [](const ZapRequest&) { return ZapDecision{true, "", "OK"}; });
  REQUIRE(zap.bind());
  RouterOptions options = local_router_options();
  options.curve_server_secret_z85 = server_keys->secret_z85;
  Router router(loop(), context(), options);
  std::vector<Received> router_inbox;
  collect(router, router_inbox);
  auto endpoint = router.bind();
  REQUIRE(endpoint);

  DealerOptions client_options = dealer_options(*endpoint, "full");
  client_options.curve = DealerCurve{server_keys->public_z85, *client_keys};
  Dealer client(loop(), context(), client_options);
  std::vector<std::string> client_inbox;
  collect(client, client_inbox);
  REQUIRE(connect_and_greet(*this, client, router_inbox, "hi"));

  for (const std::size_t size : {tide::protocol::kMaxFrameBytes - 32, tide::protocol::kMaxFrameBytes}) {
    INFO("frame of " << size << " bytes");
    const std::vector<std::uint8_t> frame(size, 0x42);
    REQUIRE(client.send(frame));
    REQUIRE(router.send("a:full", frame));
    REQUIRE(run_until([&] {
      return router_inbox.back().body.size() == size && !client_inbox.empty() &&
             client_inbox.back().size() == size;
    }));
  }

  // One byte more is refused on the wire: only its sender is disconnected.
  DealerOptions offender_options = dealer_options(*endpoint, "over");
  offender_options.curve = DealerCurve{server_keys->public_z85, *offender_keys};
  offender_options.max_frame_bytes = 1 << 20;
  offender_options.reconnect_ivl_ms = 10000;
  offender_options.reconnect_ivl_max_ms = 10000;
  Dealer offender(loop(), context(), offender_options);
  REQUIRE(connect_and_greet(*this, offender, router_inbox, "over-1"));
  REQUIRE(offender.send(std::vector<std::uint8_t>(tide::protocol::kMaxFrameBytes + 1, 0x43)));
  REQUIRE(run_until([&] { return !router.send("a:over", bytes("ping")).has_value(); }));
  for (const auto& r : router_inbox) CHECK(r.body.size() <= tide::protocol::kMaxFrameBytes);
  REQUIRE(client.send(bytes("still-here")));
  REQUIRE(run_until([&] { return router_inbox.back().body == "still-here"; }));
}

TEST_CASE_METHOD(LoopFixture, "sending to a vanished routing id is an error (ROUTER_MANDATORY)",
                 "[transport]") {
  Router router(loop(), context(), local_router_options());
  std::vector<Received> router_inbox;
  collect(router, router_inbox);
  auto endpoint = router.bind();
  REQUIRE(endpoint);

  auto never_seen = router.send("a:nobody", bytes("x"));
  REQUIRE_FALSE(never_seen.has_value());
  CHECK(never_seen.error().kind == TransportError::Kind::PeerGone);

  auto dealer = std::make_unique<Dealer>(loop(), context(), dealer_options(*endpoint, "leaver"));
  REQUIRE(connect_and_greet(*this, *dealer, router_inbox, "hi"));
  REQUIRE(router.send("a:leaver", bytes("hello back")));
  dealer->close();
  REQUIRE(run_until([&] { return !router.send("a:leaver", bytes("anyone?")).has_value(); }));
  auto after = router.send("a:leaver", bytes("anyone?"));
  REQUIRE_FALSE(after.has_value());
  CHECK(after.error().kind == TransportError::Kind::PeerGone);
  CHECK(router.counters().send_peer_gone >= 2);
}

TEST_CASE_METHOD(LoopFixture, "a reconnecting dealer with the same routing id takes over (HANDOVER)",
                 "[transport]") {
  Router router(loop(), context(), local_router_options());
  std::vector<Received> router_inbox;
  collect(router, router_inbox);
  auto endpoint = router.bind();
  REQUIRE(endpoint);

  Dealer first(loop(), context(), dealer_options(*endpoint, "i-42"));
  std::vector<std::string> first_inbox;
  collect(first, first_inbox);
  REQUIRE(connect_and_greet(*this, first, router_inbox, "from-first"));

  // The old connection stays open (as a half-dead TCP connection would).
  Dealer second(loop(), context(), dealer_options(*endpoint, "i-42"));
  std::vector<std::string> second_inbox;
  collect(second, second_inbox);
  REQUIRE(connect_and_greet(*this, second, router_inbox, "from-second"));
  CHECK(router_inbox.back().peer == "a:i-42");

  REQUIRE(router.send("a:i-42", bytes("to-current")));
  REQUIRE(run_until([&] { return !second_inbox.empty(); }));
  run_for(100);
  CHECK(second_inbox == std::vector<std::string>{"to-current"});
  CHECK(first_inbox.empty());
}

TEST_CASE_METHOD(LoopFixture, "idle sockets do not spin", "[transport]") {
  Router router(loop(), context(), local_router_options());
  std::vector<Received> router_inbox;
  collect(router, router_inbox);
  auto endpoint = router.bind();
  REQUIRE(endpoint);
  Dealer dealer(loop(), context(), dealer_options(*endpoint, "idle"));
  std::vector<std::string> dealer_inbox;
  collect(dealer, dealer_inbox);
  REQUIRE(connect_and_greet(*this, dealer, router_inbox, "hi"));
  REQUIRE(router.send("a:idle", bytes("welcome")));
  REQUIRE(run_until([&] { return !dealer_inbox.empty(); }));

  // Busy-polling a socket costs a full core: ~1 s of CPU per second. An
  // idle loop here wakes only for the fixture's 2 ms deadline check.
  const double before = cpu_seconds();
  run_for(1000);
  const double used = cpu_seconds() - before;
  INFO("CPU seconds used while idle for 1 s: " << used);
  CHECK(used < 0.15);

  // And it still works afterwards (no missed edge).
  REQUIRE(dealer.send(bytes("after idle")));
  REQUIRE(run_until([&] { return router_inbox.back().body == "after idle"; }));
}

TEST_CASE_METHOD(LoopFixture, "a callback may close its own socket, and throwing is contained",
                 "[transport]") {
  Router router(loop(), context(), local_router_options());
  int calls = 0;
  router.on_message([&](const PeerId&, std::string_view, std::span<const std::uint8_t>) {
    ++calls;
    if (calls == 1) throw std::runtime_error("handler bug");
    router.close();
  });
  auto endpoint = router.bind();
  REQUIRE(endpoint);
  Dealer dealer(loop(), context(), dealer_options(*endpoint, "x"));
  REQUIRE(dealer.connect());
  int sent = 0;
  REQUIRE(run_until([&] {
    while (sent < 5 && dealer.send(bytes("m"))) ++sent;
    return calls >= 2;
  }));
  run_for(50);
  CHECK(calls == 2);  // closed inside the second call: no more deliveries
  CHECK(router.counters().dropped_in == 1);
  auto r = router.send("a:x", bytes("y"));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == TransportError::Kind::Closed);
}

TEST_CASE_METHOD(LoopFixture, "a multi-part message is counted, reported and dropped by the router",
                 "[transport]") {
  Router router(loop(), context(), local_router_options());
  std::vector<Received> router_inbox;
  collect(router, router_inbox);
  std::vector<std::pair<PeerId, std::string>> refused;
  router.on_refused(
      [&](const PeerId& peer, std::string_view reason) { refused.emplace_back(peer, reason); });
  auto endpoint = router.bind();
  REQUIRE(endpoint);

  // A raw DEALER may send what tide's Dealer never does: several frames.
  zmq::socket_t raw(context(), zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::routing_id, "a:raw");
  raw.connect(*endpoint);
  REQUIRE(raw.send(zmq::buffer(std::string("part-1")), zmq::send_flags::sndmore));
  REQUIRE(raw.send(zmq::buffer(std::string("part-2")), zmq::send_flags::sndmore));
  REQUIRE(raw.send(zmq::buffer(std::string("part-3")), zmq::send_flags::none));
  REQUIRE(raw.send(zmq::buffer(std::string("single")), zmq::send_flags::none));

  REQUIRE(run_until([&] { return !router_inbox.empty(); }));
  CHECK(router.counters().dropped_multipart == 1);
  CHECK(router.counters().dropped_in == 1);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].first == "a:raw");
  CHECK_FALSE(refused[0].second.empty());
  // Only the one-frame message got through, whole.
  REQUIRE(router_inbox.size() == 1);
  CHECK(router_inbox[0].body == "single");
  CHECK(router.counters().frames_in == 1);
}

TEST_CASE_METHOD(LoopFixture, "a multi-part message is counted and dropped by the dealer",
                 "[transport]") {
  zmq::socket_t raw(context(), zmq::socket_type::router);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::router_mandatory, 1);
  raw.bind("tcp://127.0.0.1:*");
  const std::string endpoint = raw.get(zmq::sockopt::last_endpoint);
  Dealer dealer(loop(), context(), dealer_options(endpoint, "d"));
  std::vector<std::string> dealer_inbox;
  collect(dealer, dealer_inbox);
  REQUIRE(dealer.connect());

  // ROUTER_MANDATORY: the first frame fails until the dealer is connected.
  const auto send_raw = [&](std::initializer_list<std::string> parts) {
    if (!raw.send(zmq::buffer(std::string("a:d")),
                  zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return false;
    }
    std::size_t i = 0;
    for (const auto& part : parts) {
      const bool last = ++i == parts.size();
      (void)raw.send(zmq::buffer(part), last ? zmq::send_flags::none : zmq::send_flags::sndmore);
    }
    return true;
  };
  bool sent = false;
  REQUIRE(run_until([&] {
    try {
      if (!sent) sent = send_raw({"part-1", "part-2"});
    } catch (const zmq::error_t&) {
      // EHOSTUNREACH until the handshake is done.
    }
    return sent;
  }));
  REQUIRE(send_raw({"single"}));
  REQUIRE(run_until([&] { return !dealer_inbox.empty(); }));
  CHECK(dealer.counters().dropped_multipart == 1);
  CHECK(dealer.counters().dropped_in == 1);
  CHECK(dealer_inbox == std::vector<std::string>{"single"});
}
