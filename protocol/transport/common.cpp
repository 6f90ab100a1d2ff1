#include "protocol/transport/common.hpp"

#include "protocol/transport/detail.hpp"

namespace tide::transport {

std::string_view to_string(TransportError::Kind kind) {
  switch (kind) {
    case TransportError::Kind::PeerGone: return "peer_gone";
    case TransportError::Kind::WouldBlock: return "would_block";
    case TransportError::Kind::TooLarge: return "too_large";
    case TransportError::Kind::Closed: return "closed";
    case TransportError::Kind::InvalidArgument: return "invalid_argument";
    case TransportError::Kind::Io: return "io";
  }
  return "unknown";
}

namespace detail {

void count_send_error(TransportCounters& counters, const TransportError& error) noexcept {
  ++counters.send_errors;
  switch (error.kind) {
    case TransportError::Kind::PeerGone: ++counters.send_peer_gone; break;
    case TransportError::Kind::WouldBlock: ++counters.send_would_block; break;
    case TransportError::Kind::TooLarge:
    case TransportError::Kind::Closed:
    case TransportError::Kind::InvalidArgument:
    case TransportError::Kind::Io: break;
  }
}

}  // namespace detail
}  // namespace tide::transport
