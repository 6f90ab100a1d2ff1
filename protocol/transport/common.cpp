#include "protocol/transport/common.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

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

std::string agent_routing_id(std::string_view instance_id, std::string_view nonce_hex) {
  std::string id = "a:";
  id += instance_id;
  id += '/';
  id += nonce_hex;
  return id;
}

std::string new_agent_routing_id(std::string_view instance_id) {
  std::array<unsigned char, kRoutingNonceHexDigits / 2> nonce{};
  std::size_t filled = 0;
  while (filled < nonce.size()) {
    const ssize_t n = getrandom(nonce.data() + filled, nonce.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed: " + std::string(std::strerror(errno)));
    }
    filled += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(kRoutingNonceHexDigits);
  for (const unsigned char byte : nonce) {
    hex += kHex[byte >> 4U];
    hex += kHex[byte & 0x0fU];
  }
  return agent_routing_id(instance_id, hex);
}

bool is_agent_routing_id_for(std::string_view routing_id, std::string_view instance_id) {
  const std::size_t prefix = 2 + instance_id.size() + 1;
  if (routing_id.size() != prefix + kRoutingNonceHexDigits) return false;
  if (routing_id.substr(0, 2) != "a:" || routing_id.substr(2, instance_id.size()) != instance_id ||
      routing_id[prefix - 1] != '/') {
    return false;
  }
  for (const char c : routing_id.substr(prefix)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
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

tl::expected<void, TransportError> check_send(TransportCounters& counters, bool open, const char* closed_text,
                                              std::size_t frame_bytes, std::int64_t max_frame_bytes) {
  std::optional<TransportError> err;
  if (!open) {
    err = TransportError{TransportError::Kind::Closed, closed_text, 0};
  } else if (static_cast<std::int64_t>(frame_bytes) > max_frame_bytes) {
    err = TransportError{TransportError::Kind::TooLarge,
                         "frame of " + std::to_string(frame_bytes) + " bytes is too large", 0};
  }
  if (!err) return {};
  count_send_error(counters, *err);
  return tl::unexpected(std::move(*err));
}

tl::expected<void, TransportError> finish_send(TransportCounters& counters, int rc, int err_no,
                                               std::size_t frame_bytes) {
  if (rc < 0) {
    auto err = send_error(err_no);
    count_send_error(counters, err);
    return tl::unexpected(std::move(err));
  }
  ++counters.frames_out;
  counters.bytes_out += frame_bytes;
  return {};
}

}  // namespace detail
}  // namespace tide::transport
