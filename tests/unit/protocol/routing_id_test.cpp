// An agent's routing id: "a:" + instance id + "/" + 32 random hex digits
// (protocol/SPEC.md 3.2), and the coordinator's check of it.
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "protocol/transport/common.hpp"

using tide::transport::agent_routing_id;
using tide::transport::is_agent_routing_id_for;
using tide::transport::new_agent_routing_id;

TEST_CASE("new agent routing ids name their instance and are never the same twice", "[routing_id]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = new_agent_routing_id("i-7");
    CHECK(id.size() == 2 + 3 + 1 + 32);
    CHECK(id.rfind("a:i-7/", 0) == 0);
    CHECK(is_agent_routing_id_for(id, "i-7"));
    CHECK_FALSE(is_agent_routing_id_for(id, "i-70"));
    CHECK_FALSE(is_agent_routing_id_for(id, "i-"));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
  // The longest instance id still fits ZeroMQ's 255-byte routing id.
  CHECK(new_agent_routing_id(std::string(128, 'x')).size() <= 255);
}

TEST_CASE("only the exact routing id form speaks for an instance", "[routing_id]") {
  const std::string nonce(32, 'f');
  CHECK(is_agent_routing_id_for(agent_routing_id("web-1", nonce), "web-1"));
  CHECK(is_agent_routing_id_for(agent_routing_id("a:b", "0123456789abcdef0123456789abcdef"), "a:b"));
  CHECK_FALSE(is_agent_routing_id_for("a:web-1", "web-1"));                      // older, predictable form
  CHECK_FALSE(is_agent_routing_id_for("", "web-1"));                             // ZeroMQ-chosen id
  CHECK_FALSE(is_agent_routing_id_for(agent_routing_id("web-1", nonce.substr(1)), "web-1"));  // 31 digits
  CHECK_FALSE(is_agent_routing_id_for(agent_routing_id("web-1", nonce + "0"), "web-1"));      // 33 digits
  CHECK_FALSE(is_agent_routing_id_for(agent_routing_id("web-1", std::string(32, 'F')), "web-1"));  // upper case
  CHECK_FALSE(is_agent_routing_id_for(agent_routing_id("web-1", std::string(32, 'g')), "web-1"));
  CHECK_FALSE(is_agent_routing_id_for("b:web-1/" + nonce, "web-1"));
  CHECK_FALSE(is_agent_routing_id_for("a:web-1:" + nonce, "web-1"));
  CHECK_FALSE(is_agent_routing_id_for(agent_routing_id("web-2", nonce), "web-1"));
  CHECK_FALSE(is_agent_routing_id_for(agent_routing_id("web-1", nonce), ""));
}
