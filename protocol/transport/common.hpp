// Shared vocabulary of tide's ZeroMQ transport (protocol/SPEC.md, "Transport").
//
// The transport moves opaque frames: it knows nothing of the msgpack envelope.
// Every callback it makes runs on the libuv loop thread, and no exception from
// cppzmq or from a callback ever escapes into libuv.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tide::transport {

// A ROUTER's name for a peer: the peer's ZMQ_ROUTING_ID (binary-safe bytes).
// Agents use new_agent_routing_id().
using PeerId = std::string;

// An agent's routing id (SPEC 3.2): "a:" + instance_id + "/" + 32 hex digits
// of a fresh random nonce, chosen once per socket, so ZeroMQ's own
// reconnects keep it. The nonce makes it unguessable: the coordinator's
// ROUTER hands a routing id's connection to whoever connects with that id
// (ZMQ_ROUTER_HANDOVER), and libzmq's ZAP request does not carry the
// client's routing id, so a predictable one could be taken over by any peer
// whose key passes ZAP.
[[nodiscard]] std::string new_agent_routing_id(std::string_view instance_id);

// The same with a given nonce (tests and tools that need a fixed id).
[[nodiscard]] std::string agent_routing_id(std::string_view instance_id, std::string_view nonce_hex);

inline constexpr std::size_t kRoutingNonceHexDigits = 32;

// True when `routing_id` is "a:" + instance_id + "/" + 32 lowercase hex
// digits: the only routing id the coordinator takes a HELLO for
// `instance_id` from.
[[nodiscard]] bool is_agent_routing_id_for(std::string_view routing_id, std::string_view instance_id);

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
