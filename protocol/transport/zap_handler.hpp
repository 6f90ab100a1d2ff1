// ZapHandler: the coordinator's ZeroMQ Authentication Protocol (ZAP 1.0,
// rfc.zeromq.org/spec/27) handler, driven from the libuv loop.
//
// Debian's libzmq authenticates nobody unless a ZAP handler is bound to
// inproc://zeromq.zap.01 in the same zmq::context_t, so this must be bound
// BEFORE any CURVE Router binds (and must stay open while it runs).
//
// For every CURVE handshake libzmq asks this handler; the decision callback
// answers allow (status "200", user id = the client's key, which libzmq then
// attaches to every message as "User-Id") or refuse (status "400"). A
// malformed request is answered with status "500" and counted.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <tl/expected.hpp>
#include <uv.h>
#include <zmq.hpp>

#include "protocol/transport/common.hpp"

namespace tide::transport {

class ZmqPoller;

inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

struct ZapRequest {
  std::string request_id;      // opaque, echoed in the reply
  std::string domain;          // the server socket's ZMQ_ZAP_DOMAIN
  std::string address;         // client's IP address, e.g. "127.0.0.1"
  std::string routing_id;      // the client's routing id (may be empty)
  std::string mechanism;       // "CURVE", "NULL" or "PLAIN"
  std::string client_key_z85;  // CURVE only: the client's public key (Z85)
};

struct ZapDecision {
  bool allow = false;
  std::string user_id;      // when allowed; default (empty) = client_key_z85
  std::string status_text;  // e.g. "unknown key"
};

struct ZapCounters {
  std::uint64_t allowed = 0;
  std::uint64_t refused = 0;
  std::uint64_t malformed = 0;  // answered "500"
};

class ZapHandler {
 public:
  // Called on the loop thread for each well-formed request. If it throws,
  // the client is refused with status "500".
  using DecideFn = std::function<ZapDecision(const ZapRequest& request)>;

  ZapHandler(uv_loop_t* loop, zmq::context_t& context, DecideFn decide);
  ~ZapHandler();  // close()
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Binds inproc://zeromq.zap.01 (fails if another handler holds it).
  [[nodiscard]] tl::expected<void, TransportError> bind();

  void close() noexcept;

  [[nodiscard]] const ZapCounters& counters() const noexcept { return m_counters; }

 private:
  bool handle_one() noexcept;

  uv_loop_t* m_loop;
  zmq::context_t& m_context;
  DecideFn m_decide;
  std::optional<zmq::socket_t> m_socket;
  ZmqPoller* m_poller = nullptr;
  ZapCounters m_counters;
  std::uint64_t m_last_warn_ms = 0;
};

}  // namespace tide::transport
