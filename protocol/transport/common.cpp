#include "protocol/transport/common.hpp"

#include <optional>
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
