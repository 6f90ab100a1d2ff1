// Encoding and decoding of tide protocol frames (protocol/SPEC.md).
//
// decode() takes untrusted bytes. It never throws and never allocates more
// than a small bound whatever the input: it returns a DecodeError for every
// malformed, truncated, oversized, wrongly typed, out-of-bounds or unknown
// input.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "protocol/messages.hpp"

namespace tide::protocol {

struct DecodeError {
  enum class Kind : std::uint8_t {
    Oversized,           // frame larger than kMaxFrameBytes
    Malformed,           // not msgpack, truncated, or trailing bytes
    BadEnvelope,         // not [signature, major, minor, command, body]
    UnsupportedVersion,  // envelope major version != kVersionMajor
    UnknownCommand,      // command name not in SPEC.md
    WrongType,           // a field has the wrong msgpack type
    OutOfBounds,         // a field violates its bound
  };
  Kind kind = Kind::Malformed;
  std::string detail;  // human readable, names the field when there is one
  std::uint32_t peer_major = 0;  // set for UnsupportedVersion
};

std::string_view to_string(DecodeError::Kind kind);

// Validates every bound of SPEC.md; encode() of an invalid message is a bug.
[[nodiscard]] tl::expected<void, DecodeError> validate(const Message& message);

// Encodes one frame. Asserts (debug) that the message validates.
[[nodiscard]] std::vector<std::uint8_t> encode(const Message& message);

[[nodiscard]] tl::expected<Message, DecodeError> decode(std::span<const std::uint8_t> frame);

}  // namespace tide::protocol
