// Interop of the benchmarks' own ZMTP client (tests/bench/coordinator/zmtp_client)
// with real libzmq: a cppzmq ROUTER, and the coordinator's AgentGateway, on
// tcp://127.0.0.1 with the port read back; NULL and CURVE. Also what the
// client does with a wrong server key, a refusing ZAP handler, and fake
// servers that send garbage, a short greeting, an oversized frame or nothing.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <uv.h>
#include <zmq.hpp>

#include "coordinator/io/server/agent_gateway.hpp"
#include "protocol/codec.hpp"
#include "protocol/messages.hpp"
#include "protocol/transport/common.hpp"
#include "protocol/transport/curve.hpp"
#include "protocol/transport/zap_handler.hpp"
#include "tests/bench/coordinator/zmtp_client.hpp"

namespace zmtp = tide::zmtp;
namespace tx = tide::transport;
namespace proto = tide::protocol;

namespace {

using Clock = std::chrono::steady_clock;

// What the pool reported, per connection.
struct Recorder {
  std::vector<zmtp::ConnectionId> ready;
  std::vector<zmtp::Message> messages;
  std::optional<zmtp::Error> closed;

  zmtp::PoolCallbacks callbacks() {
    zmtp::PoolCallbacks c;
    c.on_ready = [this](zmtp::ConnectionId id, std::uint64_t) { ready.push_back(id); };
    c.on_message = [this](zmtp::ConnectionId, std::uint64_t, const zmtp::Message& m) { messages.push_back(m); };
    c.on_closed = [this](zmtp::ConnectionId, std::uint64_t, const zmtp::Error& e) { closed = e; };
    return c;
  }
};

// Runs `step` (poll the pool, and whatever else) until `done` or 5 s.
bool run_until(const std::function<void()>& step, const std::function<bool()>& done) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (Clock::now() > deadline) return false;
    step();
  }
  return true;
}

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 7);
  return out;
}

zmtp::CurveOptions curve_options(const std::string& server_public_z85, zmtp::KeyPair client) {
  zmtp::CurveOptions curve;
  curve.server_public = *zmtp::z85_decode_key(server_public_z85);
  curve.client = client;
  return curve;
}

// A plain cppzmq ROUTER bound on tcp://127.0.0.1:*; CURVE when given a secret.
struct ZmqRouter {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::router};
  std::string endpoint;

  explicit ZmqRouter(const std::optional<tx::CurveKeyPair>& server = std::nullopt, int heartbeat_ivl_ms = 0) {
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::router_mandatory, true);
    if (heartbeat_ivl_ms > 0) {
      // Ping every heartbeat_ivl_ms; drop a peer silent for 3 intervals.
      socket.set(zmq::sockopt::heartbeat_ivl, heartbeat_ivl_ms);
      socket.set(zmq::sockopt::heartbeat_timeout, 3 * heartbeat_ivl_ms);
    }
    if (server) {
      socket.set(zmq::sockopt::curve_server, true);
      socket.set(zmq::sockopt::curve_secretkey, server->secret_z85);
    }
    socket.bind("tcp://127.0.0.1:*");
    endpoint = socket.get(zmq::sockopt::last_endpoint);
  }

  // One whole message, if one is waiting.
  std::optional<std::vector<zmq::message_t>> receive() {
    std::vector<zmq::message_t> parts;
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) return std::nullopt;
    bool more = part.more();
    parts.push_back(std::move(part));
    while (more) {
      zmq::message_t next;
      (void)socket.recv(next, zmq::recv_flags::none);
      more = next.more();
      parts.push_back(std::move(next));
    }
    return parts;
  }
};

std::vector<std::uint8_t> to_vector(const zmq::message_t& m) {
  return {m.data<std::uint8_t>(), m.data<std::uint8_t>() + m.size()};
}

// A listening TCP socket that is not ZeroMQ.
struct FakeServer {
  int listener = -1;
  int peer = -1;
  std::string endpoint;

  FakeServer() {
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener, 16) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    endpoint = "tcp://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  }
  ~FakeServer() {
    if (peer >= 0) ::close(peer);
    ::close(listener);
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  // The client's connection is in the backlog once its connect() started.
  void accept_and_send(const std::vector<std::uint8_t>& data, bool then_close) {
    peer = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(peer >= 0);
    if (!data.empty()) REQUIRE(::write(peer, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    if (then_close) {
      ::close(peer);
      peer = -1;
    }
  }
};

std::vector<std::uint8_t> zmtp_greeting(std::string_view mechanism) {
  std::vector<std::uint8_t> g(64, 0);
  g[0] = 0xFF;
  g[8] = 1;
  g[9] = 0x7F;
  g[10] = 3;
  g[11] = 0;
  std::memcpy(g.data() + 12, mechanism.data(), mechanism.size());
  g[32] = 1;
  return g;
}

// Accepts every HELLO; records reports and the keys it saw.
class RecordingHandler : public tide::coordinator::AgentGatewayHandler {
 public:
  bool allow_agent_key(std::string_view) override { return true; }
  tide::coordinator::HelloVerdict on_hello(const proto::Hello& hello, std::string_view key) override {
    hellos.push_back(hello);
    keys.emplace_back(key);
    return tide::coordinator::HelloVerdict{true, proto::ErrorCode::Unauthorized, ""};
  }
  void on_report(const std::string& instance_id, const proto::Report& report) override {
    reports.emplace_back(instance_id, report);
  }
  void on_lost(const std::string&, std::string_view) override {}
  void on_ack(const std::string&, std::uint64_t) override {}
  void on_hook_result(const std::string&, const proto::HookResult&) override {}

  std::vector<proto::Hello> hellos;
  std::vector<std::string> keys;
  std::vector<std::pair<std::string, proto::Report>> reports;
};

}  // namespace

TEST_CASE("zmtp_client: Z85 keys match libzmq's encoding") {
  const auto keys = tx::generate_curve_keypair();
  REQUIRE(keys);
  const auto decoded = zmtp::z85_decode_key(keys->public_z85);
  REQUIRE(decoded);
  CHECK(zmtp::z85_encode_key(*decoded) == keys->public_z85);
  const std::string binary(reinterpret_cast<const char*>(decoded->data()), decoded->size());
  CHECK(tx::z85_from_binary_key(binary) == keys->public_z85);
  // Our own key pairs are usable by libzmq.
  const auto ours = zmtp::generate_keypair();
  CHECK(tx::is_valid_z85_key(zmtp::z85_encode_key(ours.public_key)));
  CHECK(tx::curve_public_from_secret(zmtp::z85_encode_key(ours.secret_key)).value_or("") ==
        zmtp::z85_encode_key(ours.public_key));
  CHECK_FALSE(zmtp::z85_decode_key("short"));
  CHECK_FALSE(zmtp::z85_decode_key(std::string(40, '"')));
  CHECK_FALSE(zmtp::z85_decode_key(std::string(40, '#')));  // every block above 2^32 - 1
}

TEST_CASE("zmtp_client: bad endpoints and options are refused") {
  zmtp::Pool pool;
  CHECK(pool.connect("ipc:///tmp/x", {}).error().kind == zmtp::Error::Kind::InvalidArgument);
  CHECK(pool.connect("tcp://127.0.0.1", {}).error().kind == zmtp::Error::Kind::InvalidArgument);
  CHECK(pool.connect("tcp://127.0.0.1:0", {}).error().kind == zmtp::Error::Kind::InvalidArgument);
  CHECK(pool.connect("tcp://127.0.0.1:99999", {}).error().kind == zmtp::Error::Kind::InvalidArgument);
  CHECK(pool.connect("tcp://example.com:80", {}).error().kind == zmtp::Error::Kind::InvalidArgument);
  zmtp::SessionOptions long_id;
  long_id.routing_id.assign(256, 'x');
  CHECK(pool.connect("tcp://127.0.0.1:1", long_id).error().kind == zmtp::Error::Kind::InvalidArgument);
  CHECK(pool.send(12345, std::vector<std::uint8_t>{1}).error().kind == zmtp::Error::Kind::Closed);
}

TEST_CASE("zmtp_client: talks to a real libzmq ROUTER, NULL and CURVE") {
  const bool curve = GENERATE(false, true);
  INFO("CURVE " << curve);
  const auto server_keys = tx::generate_curve_keypair();
  REQUIRE(server_keys);
  ZmqRouter router(curve ? std::optional<tx::CurveKeyPair>(*server_keys) : std::nullopt);

  Recorder recorder;
  zmtp::Pool pool({}, recorder.callbacks());
  zmtp::SessionOptions options;
  options.routing_id = "a:i-7";
  if (curve) options.curve = curve_options(server_keys->public_z85, zmtp::generate_keypair());
  auto id = pool.connect(router.endpoint, options, 7);
  REQUIRE(id);
  CHECK(pool.send(*id, std::vector<std::uint8_t>{1}).error().kind == zmtp::Error::Kind::NotReady);
  const auto poll = [&pool] { REQUIRE(pool.poll(5)); };
  REQUIRE(run_until(poll, [&] { return !recorder.ready.empty() || recorder.closed; }));
  REQUIRE_FALSE(recorder.closed);
  CHECK(pool.ready(*id));

  // A short frame, a long frame (> 255 bytes: the 8-byte size form) and a
  // multipart message, client -> ROUTER; the routing id is the one we announced.
  const auto small = bytes(100, 1);
  const auto large = bytes(70'000, 2);
  REQUIRE(pool.send(*id, small));
  REQUIRE(pool.send(*id, large));
  const std::vector<std::uint8_t> part_a{'a'};
  const auto part_b = bytes(300, 3);
  const std::span<const std::uint8_t> parts[2] = {part_a, part_b};
  REQUIRE(pool.send(*id, std::span<const std::span<const std::uint8_t>>(parts)));
  std::vector<std::vector<zmq::message_t>> received;
  REQUIRE(run_until(
      [&] {
        poll();
        while (auto m = router.receive()) received.push_back(std::move(*m));
      },
      [&] { return received.size() >= 3; }));
  REQUIRE(received[0].size() == 2);
  CHECK(received[0][0].to_string() == "a:i-7");
  CHECK(to_vector(received[0][1]) == small);
  REQUIRE(received[1].size() == 2);
  CHECK(to_vector(received[1][1]) == large);
  REQUIRE(received[2].size() == 3);
  CHECK(to_vector(received[2][1]) == part_a);
  CHECK(to_vector(received[2][2]) == part_b);

  // ROUTER -> client: a short, a long and a two-part message.
  const auto reply_large = bytes(5'000, 4);
  REQUIRE(router.socket.send(zmq::buffer(std::string("a:i-7")), zmq::send_flags::sndmore));
  REQUIRE(router.socket.send(zmq::buffer(small), zmq::send_flags::none));
  REQUIRE(router.socket.send(zmq::buffer(std::string("a:i-7")), zmq::send_flags::sndmore));
  REQUIRE(router.socket.send(zmq::buffer(reply_large), zmq::send_flags::none));
  REQUIRE(router.socket.send(zmq::buffer(std::string("a:i-7")), zmq::send_flags::sndmore));
  REQUIRE(router.socket.send(zmq::buffer(part_a), zmq::send_flags::sndmore));
  REQUIRE(router.socket.send(zmq::buffer(part_b), zmq::send_flags::none));
  REQUIRE(run_until(poll, [&] { return recorder.messages.size() >= 3; }));
  REQUIRE(recorder.messages[0].size() == 1);
  CHECK(recorder.messages[0][0] == small);
  REQUIRE(recorder.messages[1].size() == 1);
  CHECK(recorder.messages[1][0] == reply_large);
  REQUIRE(recorder.messages[2].size() == 2);
  CHECK(recorder.messages[2][0] == part_a);
  CHECK(recorder.messages[2][1] == part_b);
  CHECK_FALSE(recorder.closed);

  // Closing the ROUTER is seen as a closed connection, not a crash.
  router.socket.close();
  REQUIRE(run_until(poll, [&] { return recorder.closed.has_value(); }));
  CHECK(recorder.closed->kind == zmtp::Error::Kind::Closed);
  CHECK(pool.size() == 0);
}

TEST_CASE("zmtp_client: answers libzmq's ZMTP heartbeats and stays connected") {
  const bool curve = GENERATE(false, true);
  INFO("CURVE " << curve);
  const auto server_keys = tx::generate_curve_keypair();
  REQUIRE(server_keys);
  // The ROUTER pings every 100 ms and drops a peer that has not answered
  // (PONG or anything else) for 300 ms.
  ZmqRouter router(curve ? std::optional<tx::CurveKeyPair>(*server_keys) : std::nullopt, 100);

  Recorder recorder;
  zmtp::Pool pool({}, recorder.callbacks());
  zmtp::SessionOptions options;
  options.routing_id = "a:hb";
  if (curve) options.curve = curve_options(server_keys->public_z85, zmtp::generate_keypair());
  auto id = pool.connect(router.endpoint, options);
  REQUIRE(id);
  const auto poll = [&pool] { REQUIRE(pool.poll(5)); };
  REQUIRE(run_until(poll, [&] { return !recorder.ready.empty() || recorder.closed; }));
  // 1 s of heartbeats with no application traffic at all.
  const auto until = Clock::now() + std::chrono::seconds(1);
  while (Clock::now() < until) poll();
  REQUIRE_FALSE(recorder.closed);
  REQUIRE(pool.send(*id, std::vector<std::uint8_t>{'h', 'i'}));
  std::optional<std::vector<zmq::message_t>> message;
  REQUIRE(run_until(
      [&] {
        poll();
        if (!message) message = router.receive();
      },
      [&] { return message.has_value(); }));
  REQUIRE(message->size() == 2);
  CHECK(message->at(1).to_string() == "hi");
}

TEST_CASE("zmtp_client: HELLO gets WELCOME and a REPORT arrives intact at a real AgentGateway") {
  const bool curve = GENERATE(false, true);
  INFO("CURVE " << curve);
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  RecordingHandler handler;
  tide::coordinator::GatewayConfig config;
  config.router.endpoint = "tcp://127.0.0.1:*";
  std::optional<tx::CurveKeyPair> server_keys;
  if (curve) {
    server_keys = *tx::generate_curve_keypair();
    config.router.curve_server_secret_z85 = server_keys->secret_z85;
  }
  {
    tide::coordinator::AgentGateway gateway(&loop, config, handler);
    auto endpoint = gateway.start();
    REQUIRE(endpoint);

    Recorder recorder;
    zmtp::Pool pool({}, recorder.callbacks());
    zmtp::SessionOptions options;
    options.routing_id = tx::new_agent_routing_id("i-42");
    const auto client_keys = zmtp::generate_keypair();
    if (curve) options.curve = curve_options(server_keys->public_z85, client_keys);
    auto id = pool.connect(*endpoint, options);
    REQUIRE(id);
    const auto step = [&] {
      REQUIRE(pool.poll(2));
      uv_run(&loop, UV_RUN_NOWAIT);
    };
    REQUIRE(run_until(step, [&] { return !recorder.ready.empty() || recorder.closed; }));
    REQUIRE_FALSE(recorder.closed);

    proto::Hello hello;
    hello.instance_id = "i-42";
    hello.enrollment_token = "token";
    hello.agent_version = "0.1.0";
    hello.hostname = "zmtp-test";
    hello.capabilities = {"drain"};
    REQUIRE(pool.send(*id, proto::encode(proto::Message{hello})));
    const auto is_welcome = [&recorder] {
      for (const auto& m : recorder.messages) {
        auto decoded = proto::decode(m.at(0));
        if (decoded && std::holds_alternative<proto::Welcome>(*decoded)) return true;
      }
      return false;
    };
    REQUIRE(run_until(step, is_welcome));
    REQUIRE(handler.hellos.size() == 1);
    CHECK(handler.hellos[0] == hello);
    CHECK(handler.keys[0] == (curve ? zmtp::z85_encode_key(client_keys.public_key) : std::string()));

    proto::Report report;
    report.seq = 1;
    report.timestamp_ms = 1'700'000'000'123;
    report.ready = true;
    report.ready_reason = std::string(400, 'r');  // the frame is > 255 bytes: the long form
    report.healthy = true;
    report.probes.push_back(proto::ProbeResult{"http", proto::ProbeKind::Http, true, "", 2});
    report.metrics.cpu_pct = 12.5;
    report.metrics.custom["bench_sent_us"] = 1'700'000'000'123'456.0;
    const auto frame = proto::encode(proto::Message{report});
    REQUIRE(frame.size() > 255);
    REQUIRE(pool.send(*id, frame));
    REQUIRE(run_until(step, [&] { return !handler.reports.empty(); }));
    CHECK(handler.reports[0].first == "i-42");
    CHECK(handler.reports[0].second == report);
    CHECK(gateway.stats().bad_frames == 0);
    pool.close_all();
    gateway.stop("test done");
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("zmtp_client: a wrong CURVE server key fails the handshake cleanly") {
  const auto server_keys = tx::generate_curve_keypair();
  REQUIRE(server_keys);
  ZmqRouter router(*server_keys);
  Recorder recorder;
  zmtp::Pool pool({}, recorder.callbacks());
  zmtp::SessionOptions options;
  options.routing_id = "a:wrong";
  const auto wrong = zmtp::generate_keypair();
  options.curve = curve_options(zmtp::z85_encode_key(wrong.public_key), zmtp::generate_keypair());
  REQUIRE(pool.connect(router.endpoint, options));
  REQUIRE(run_until([&] { REQUIRE(pool.poll(5)); }, [&] { return recorder.closed.has_value(); }));
  CHECK(recorder.ready.empty());
  CHECK(recorder.closed->kind == zmtp::Error::Kind::Handshake);
  CHECK(pool.size() == 0);
}

TEST_CASE("zmtp_client: a ZAP refusal ends the handshake with the server's ERROR") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    zmq::context_t context(1);
    tx::ZapHandler zap(&loop, context, [](const tx::ZapRequest&) {
      tx::ZapDecision decision;
      decision.allow = false;
      decision.status_text = "unknown agent key";
      return decision;
    });
    REQUIRE(zap.bind());
    const auto server_keys = tx::generate_curve_keypair();
    REQUIRE(server_keys);
    zmq::socket_t router(context, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::curve_server, true);
    router.set(zmq::sockopt::curve_secretkey, server_keys->secret_z85);
    router.set(zmq::sockopt::zap_domain, "tide");
    router.bind("tcp://127.0.0.1:*");
    const std::string endpoint = router.get(zmq::sockopt::last_endpoint);

    Recorder recorder;
    zmtp::Pool pool({}, recorder.callbacks());
    zmtp::SessionOptions options;
    options.routing_id = "a:refused";
    options.curve = curve_options(server_keys->public_z85, zmtp::generate_keypair());
    REQUIRE(pool.connect(endpoint, options));
    REQUIRE(run_until(
        [&] {
          REQUIRE(pool.poll(2));
          uv_run(&loop, UV_RUN_NOWAIT);
        },
        [&] { return recorder.closed.has_value(); }));
    CHECK(recorder.ready.empty());
    CHECK(recorder.closed->kind == zmtp::Error::Kind::Handshake);
    CHECK(zap.counters().refused == 1);
    zap.close();
    router.close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("zmtp_client: garbage, a short greeting, an oversized frame or silence from a server are errors") {
  FakeServer server;
  Recorder recorder;
  zmtp::PoolOptions pool_options;
  pool_options.handshake_timeout_ms = 300;
  zmtp::Pool pool(pool_options, recorder.callbacks());
  zmtp::SessionOptions options;
  options.routing_id = "a:fake";
  options.max_frame_bytes = 1000;
  REQUIRE(pool.connect(server.endpoint, options));
  const auto poll = [&pool] { REQUIRE(pool.poll(5)); };

  zmtp::Error::Kind expected = zmtp::Error::Kind::Io;
  SECTION("not ZMTP at all") {
    const std::string text = "HTTP/1.1 400 Bad Request\r\n\r\n";
    server.accept_and_send(std::vector<std::uint8_t>(text.begin(), text.end()), false);
    expected = zmtp::Error::Kind::Protocol;
  }
  SECTION("a greeting cut short, then the connection closes") {
    auto greeting = zmtp_greeting("NULL");
    greeting.resize(20);
    server.accept_and_send(greeting, true);
    expected = zmtp::Error::Kind::Handshake;
  }
  SECTION("a ZMTP 2 peer") {
    auto greeting = zmtp_greeting("NULL");
    greeting[10] = 1;
    server.accept_and_send(greeting, false);
    expected = zmtp::Error::Kind::Protocol;
  }
  SECTION("the other mechanism") {
    server.accept_and_send(zmtp_greeting("CURVE"), false);
    expected = zmtp::Error::Kind::Handshake;
  }
  SECTION("a frame larger than max_frame_bytes") {
    auto data = zmtp_greeting("NULL");
    const std::uint8_t huge[9] = {0x06, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};  // LONG | COMMAND
    data.insert(data.end(), huge, huge + 9);
    server.accept_and_send(data, false);
    expected = zmtp::Error::Kind::TooLarge;
  }
  SECTION("a malformed READY command") {
    auto data = zmtp_greeting("NULL");
    const std::uint8_t ready[] = {0x04, 12, 5, 'R', 'E', 'A', 'D', 'Y', 11, 'S', 'o', 'c', 'k', 'e'};
    data.insert(data.end(), ready, ready + sizeof ready);
    server.accept_and_send(data, false);
    expected = zmtp::Error::Kind::Protocol;
  }
  SECTION("a peer of the wrong socket type") {
    auto data = zmtp_greeting("NULL");
    std::vector<std::uint8_t> body{5, 'R', 'E', 'A', 'D', 'Y', 11};
    const std::string name = "Socket-Type";
    const std::string value = "PUB";
    body.insert(body.end(), name.begin(), name.end());
    body.insert(body.end(), {0, 0, 0, static_cast<std::uint8_t>(value.size())});
    body.insert(body.end(), value.begin(), value.end());
    data.push_back(0x04);
    data.push_back(static_cast<std::uint8_t>(body.size()));
    data.insert(data.end(), body.begin(), body.end());
    server.accept_and_send(data, false);
    expected = zmtp::Error::Kind::Handshake;
  }
  SECTION("a server that accepts and says nothing: the handshake times out") {
    server.accept_and_send({}, false);
    expected = zmtp::Error::Kind::Io;
  }
  REQUIRE(run_until(poll, [&] { return recorder.closed.has_value(); }));
  INFO(recorder.closed->detail);
  CHECK(recorder.closed->kind == expected);
  CHECK(recorder.ready.empty());
  CHECK(pool.size() == 0);
}

TEST_CASE("zmtp_client: a refused TCP connection is reported, not thrown") {
  // A port that was just free: bind, read the port, close.
  std::string endpoint;
  {
    FakeServer gone;
    endpoint = gone.endpoint;
  }
  Recorder recorder;
  zmtp::Pool pool({}, recorder.callbacks());
  auto id = pool.connect(endpoint, {});
  if (!id) {
    CHECK(id.error().kind == zmtp::Error::Kind::Io);
    return;
  }
  REQUIRE(run_until([&] { REQUIRE(pool.poll(5)); }, [&] { return recorder.closed.has_value(); }));
  CHECK(recorder.closed->kind == zmtp::Error::Kind::Io);
}
