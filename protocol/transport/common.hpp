// Shared vocabulary of tide's ZeroMQ transport (protocol/SPEC.md, "Transport").
//
// The transport moves opaque frames: it knows nothing of the msgpack envelope.
// Every callback it makes runs on the libuv loop thread, and no exception from
// cppzmq or from a callback ever escapes into libuv.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tide::transport {

// A ROUTER's name for a peer: the peer's ZMQ_ROUTING_ID (binary-safe bytes).
// Agents use "a:" + instance_id (see agent_routing_id()).
using PeerId = std::string;

// The routing id an agent sets so that a reconnecting agent keeps its identity.
[[nodiscard]] inline std::string agent_routing_id(std::string_view instance_id) {
  std::string id = "a:";
  id += instance_id;
  return id;
}

struct TransportError {
  enum class Kind : std::uint8_t {
    PeerGone,         // ROUTER_MANDATORY: no connected peer with that routing id
    WouldBlock,       // high-water mark reached (or, with IMMEDIATE, not connected)
    TooLarge,         // frame larger than the configured max_frame_bytes
    Closed,           // the socket was closed (or never opened)
    InvalidArgument,  // bad endpoint, bad key, bad option value
    Io,               // any other ZeroMQ or file-system error
  };
  Kind kind = Kind::Io;
  std::string detail;  // human readable, includes zmq_strerror()/strerror()
  int error_number = 0;  // errno / zmq_errno() when there is one, else 0
};

[[nodiscard]] std::string_view to_string(TransportError::Kind kind);

// Monotonic counters, read them at any time from the loop thread.
struct TransportCounters {
  std::uint64_t frames_in = 0;        // frames handed to on_message
  std::uint64_t bytes_in = 0;
  std::uint64_t frames_out = 0;       // frames accepted by zmq_send
  std::uint64_t bytes_out = 0;
  std::uint64_t dropped_in = 0;         // messages with a wrong frame count, thrown callbacks
  std::uint64_t dropped_multipart = 0;  // of which: a wrong frame count (SPEC 3.1: one frame each)
  std::uint64_t send_errors = 0;      // every failed send (all kinds)
  std::uint64_t send_peer_gone = 0;   // of which PeerGone
  std::uint64_t send_would_block = 0; // of which WouldBlock
};

}  // namespace tide::transport
