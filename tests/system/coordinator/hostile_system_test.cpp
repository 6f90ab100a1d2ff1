// A hostile peer on the agent link, against the real binaries: it holds a
// key the coordinator lets in (another agent's) and keeps trying to speak
// for an instance that is not its own, while clients use the service.
#include <thread>

#include <catch2/catch.hpp>
#include <zmq.hpp>

#include "fleet_fixture.hpp"
#include "protocol/codec.hpp"
#include "protocol/transport/common.hpp"
#include "protocol/transport/curve.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace st = tide::system_test;
namespace proto = tide::protocol;
namespace tx = tide::transport;
using tide::system_test::Fleet;

// The directory the local provider runs the instance `provider_id` in.
std::filesystem::path instance_dir(const Fleet& fleet, const std::string& provider_id) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(fleet.dir() / "state")) {
    if (entry.is_directory() && entry.path().filename() == provider_id) return entry.path();
  }
  return {};
}

// The agent key pair of the instance the local provider runs as `provider_id`.
tx::CurveKeyPair agent_keys_of(const Fleet& fleet, const std::string& provider_id) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(fleet.dir() / "state")) {
    if (entry.path().filename() == "agent.key" && entry.path().parent_path().parent_path().filename() == provider_id) {
      auto keys = tx::load_keypair_file(entry.path());
      if (keys) return *keys;
    }
  }
  FAIL("no agent.key for " << provider_id);
  return {};
}

// One impostor connection: CURVE with `keys`, the given routing id (empty:
// ZeroMQ picks), a HELLO for `instance_id` without a token. Returns the
// ERROR code it was answered with, or 0 when no answer came within 3 s.
int impostor_hello(zmq::context_t& context, const std::string& endpoint, const std::string& server_public,
                   const tx::CurveKeyPair& keys, const std::string& routing_id, const std::string& instance_id) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::curve_serverkey, server_public);
  socket.set(zmq::sockopt::curve_publickey, keys.public_z85);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_z85);
  if (!routing_id.empty()) socket.set(zmq::sockopt::routing_id, routing_id);
  socket.set(zmq::sockopt::rcvtimeo, 3000);
  socket.connect(endpoint);
  proto::Hello hello;
  hello.instance_id = instance_id;
  hello.agent_version = "0.0.0-impostor";
  hello.hostname = "impostor";
  const auto frame = proto::encode(proto::Message{hello});
  (void)socket.send(zmq::buffer(frame), zmq::send_flags::none);
  zmq::message_t answer;
  if (!socket.recv(answer)) return 0;
  const auto decoded = proto::decode(std::span<const std::uint8_t>(answer.data<std::uint8_t>(), answer.size()));
  if (!decoded || !std::holds_alternative<proto::Error>(*decoded)) return -1;
  return static_cast<int>(std::get<proto::Error>(*decoded).code);
}

}  // namespace

TEST_CASE("an impostor with another agent's key cannot disturb an agent's session: no request fails, nobody is lost",
          "[system][hostile]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(2, 500);
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 2; }));
  const auto listed = fleet.api("GET", "/v1/instances?group=web").body["instances"];
  REQUIRE(listed.size() == 2);
  const std::string victim = listed[0]["id"];
  const auto victim_log = instance_dir(fleet, listed[0]["provider_id"]) / "agent.log";
  REQUIRE(std::filesystem::exists(victim_log));
  const std::string accomplice_provider_id = listed[1]["provider_id"];
  const tx::CurveKeyPair stolen = agent_keys_of(fleet, accomplice_provider_id);
  const auto server_keys = tx::load_keypair_file(fleet.dir() / "state" / "coordinator.key");
  REQUIRE(server_keys);

  // The impostor tries for ~8 s, one connection after another, with the
  // routing id older releases used, a guessed nonce, and none.
  std::atomic<bool> done{false};
  std::vector<int> answers;
  std::thread impostor([&] {
    zmq::context_t context(1);
    const std::vector<std::string> routing_ids{"a:" + victim, tx::new_agent_routing_id(victim), ""};
    for (std::size_t round = 0; round < 40; ++round) {
      answers.push_back(impostor_hello(context, fleet.agent_endpoint(), server_keys->public_z85, stolen,
                                       routing_ids[round % routing_ids.size()], victim));
      std::this_thread::sleep_for(150ms);
    }
    done = true;
  });
  int ok = 0;
  int failed = 0;
  while (!done) {
    const auto r = st::http("GET", fleet.frontend(), "/");
    (r.status == 200 ? ok : failed) += 1;
    std::this_thread::sleep_for(5ms);
  }
  impostor.join();

  INFO("requests ok " << ok << ", failed " << failed);
  const std::string log = fleet.log();
  INFO(log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
  REQUIRE(answers.size() == 40);
  for (const int code : answers) CHECK(code == static_cast<int>(proto::ErrorCode::Unauthorized));
  CHECK(failed == 0);
  CHECK(ok > 100);
  // Both instances kept their agents: still the same two, in service and
  // healthy, and the coordinator never lost an agent.
  const auto after = fleet.api("GET", "/v1/instances?group=web").body["instances"];
  REQUIRE(after.size() == 2);
  for (const auto& i : after) {
    CHECK(i.value("state", "") == "in_service");
    CHECK(i.value("health", "") == "healthy");
  }
  // The victim's agent never lost its connection (with a routing id others
  // could use, each impostor's handshake took it over).
  const std::string agent_log = st::read_file(victim_log);
  INFO(agent_log.substr(agent_log.size() > 2000 ? agent_log.size() - 2000 : 0));
  CHECK(agent_log.find("dropped; reconnecting") == std::string::npos);
  const std::string metrics = fleet.api("GET", "/metrics").text;
  CHECK(metrics.find("\ntide_agent_sessions_lost_total 0\n") != std::string::npos);
  CHECK(metrics.find("\ntide_agent_sessions 2\n") != std::string::npos);
  CHECK(metrics.find("\ntide_hellos_refused_total 40\n") != std::string::npos);
}
