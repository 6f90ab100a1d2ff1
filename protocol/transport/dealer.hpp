// Dealer: the agent's end of the agent link (ZMQ_DEALER, connects).
//
// Options follow protocol/SPEC.md, "Transport": routing id "a:" + instance_id
// + "/" + a random nonce (new_agent_routing_id()), IMMEDIATE (no queueing towards a dead coordinator:
// reports are latest-state only), RECONNECT_IVL 100 ms .. RECONNECT_IVL_MAX
// 5 s, a small SNDHWM, MAXMSGSIZE = kMaxFrameBytes (+ CURVE's 33), LINGER 0, ZMTP heartbeats.
//
// A message of more than one frame is counted (dropped_in, dropped_multipart),
// logged at most once a second and dropped (SPEC 3.1).
//
// send() never blocks: when the frame cannot be queued it fails with
// WouldBlock and the caller drops it (the next REPORT supersedes it).
// After liveness loss the agent close()s this Dealer and makes a new one.
//
// With monitor_events the Dealer reports connection events (from a ZeroMQ
// socket monitor) so the agent can say HELLO on every (re)connect and log an
// authentication refusal. It costs two more file descriptors per Dealer;
// swarms of simulated agents may turn it off.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include <tl/expected.hpp>
#include <uv.h>
#include <zmq.hpp>

#include "protocol/messages.hpp"
#include "protocol/transport/common.hpp"
#include "protocol/transport/curve.hpp"

namespace tide::transport {

class ZmqPoller;

struct DealerCurve {
  std::string server_public_z85;  // the coordinator's long-term public key
  CurveKeyPair client;            // this agent's own key pair
};

struct DealerOptions {
  std::string endpoint;            // e.g. "tcp://10.0.0.1:7400"
  std::string routing_id;          // new_agent_routing_id(instance_id); empty = let ZeroMQ pick
  std::optional<DealerCurve> curve;  // none = no encryption (tests only)
  bool immediate = true;           // ZMQ_IMMEDIATE
  int reconnect_ivl_ms = 100;      // ZMQ_RECONNECT_IVL
  int reconnect_ivl_max_ms = 5000; // ZMQ_RECONNECT_IVL_MAX
  std::int64_t max_frame_bytes = static_cast<std::int64_t>(protocol::kMaxFrameBytes);
  int sndhwm = 16;                 // messages
  int rcvhwm = 1000;               // messages
  int heartbeat_ivl_ms = 5000;     // ZMQ_HEARTBEAT_IVL
  int heartbeat_timeout_ms = 15000;  // ZMQ_HEARTBEAT_TIMEOUT
  bool monitor_events = true;      // deliver DealerEvent via on_event
};

enum class DealerEvent : std::uint8_t {
  Connected,        // TCP up and handshake done (CURVE: the server accepted us)
  Disconnected,     // the connection dropped; ZeroMQ reconnects by itself
  AuthFailed,       // the server's ZAP handler refused our key (ZAP status 400)
  HandshakeFailed,  // protocol or key mismatch (e.g. wrong server public key)
};

[[nodiscard]] std::string_view to_string(DealerEvent event);

class Dealer {
 public:
  using MessageFn = std::function<void(std::span<const std::uint8_t> frame)>;
  using EventFn = std::function<void(DealerEvent event)>;

  Dealer(uv_loop_t* loop, zmq::context_t& context, DealerOptions options);
  ~Dealer();  // close()
  Dealer(const Dealer&) = delete;
  Dealer& operator=(const Dealer&) = delete;

  // Set before connect(). A frame is valid only during the call. Exceptions
  // thrown by the callbacks are caught, logged and counted in dropped_in.
  void on_message(MessageFn fn) { m_on_message = std::move(fn); }
  void on_event(EventFn fn) { m_on_event = std::move(fn); }

  // Creates the socket, starts the (asynchronous) connect and polling.
  [[nodiscard]] tl::expected<void, TransportError> connect();

  // Never blocks: WouldBlock when not connected (IMMEDIATE) or the queue is
  // full; TooLarge above max_frame_bytes; Closed before connect()/after close().
  [[nodiscard]] tl::expected<void, TransportError> send(std::span<const std::uint8_t> frame);

  // Stops polling and closes the socket (linger 0): anything queued is
  // dropped. Idempotent; safe inside callbacks. The loop must run once more
  // to release the poll handles.
  void close() noexcept;

  [[nodiscard]] const TransportCounters& counters() const noexcept { return m_counters; }

 private:
  bool receive_one() noexcept;
  bool receive_monitor_event() noexcept;

  uv_loop_t* m_loop;
  zmq::context_t& m_context;
  DealerOptions m_options;
  std::optional<zmq::socket_t> m_socket;
  std::optional<zmq::socket_t> m_monitor;
  ZmqPoller* m_poller = nullptr;
  ZmqPoller* m_monitor_poller = nullptr;
  MessageFn m_on_message;
  EventFn m_on_event;
  TransportCounters m_counters;
  std::uint64_t m_last_warn_ms = 0;
  std::uint64_t m_suppressed_warnings = 0;
};

}  // namespace tide::transport
