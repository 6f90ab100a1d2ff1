// CURVE key pairs (Z85 text, 40 characters per key) and the key-pair file.
//
// The coordinator has a long-term server key pair; each agent makes its own
// key pair on first start and keeps it in a file (mode 0600) so its identity
// survives restarts (protocol/SPEC.md, "Security").
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "protocol/transport/common.hpp"

namespace tide::transport {

inline constexpr std::size_t kZ85KeyLength = 40;     // characters
inline constexpr std::size_t kBinaryKeyLength = 32;  // bytes

// What CURVE adds to every frame on the wire: libzmq checks ZMQ_MAXMSGSIZE
// against the encrypted MESSAGE command, which is the frame plus its
// "\x07MESSAGE" name (8 bytes), short nonce (8), flags byte (1) and
// Poly1305 tag (16). A CURVE socket's ZMQ_MAXMSGSIZE is the frame limit plus
// this, so the limit means the frame the application sends (SPEC 4.2).
inline constexpr std::int64_t kCurveFrameOverheadBytes = 33;

// The ZMQ_MAXMSGSIZE that lets frames of up to `max_frame_bytes` through.
[[nodiscard]] constexpr std::int64_t wire_frame_limit(std::int64_t max_frame_bytes, bool curve) {
  return curve ? max_frame_bytes + kCurveFrameOverheadBytes : max_frame_bytes;
}

struct CurveKeyPair {
  std::string public_z85;
  std::string secret_z85;
  friend bool operator==(const CurveKeyPair&, const CurveKeyPair&) = default;
};

// A fresh key pair from libsodium's random source.
[[nodiscard]] tl::expected<CurveKeyPair, TransportError> generate_curve_keypair();

// Derives the public key of a secret key.
[[nodiscard]] tl::expected<std::string, TransportError> curve_public_from_secret(
    std::string_view secret_z85);

// True for 40 characters of the Z85 alphabet that decode to 32 bytes.
[[nodiscard]] bool is_valid_z85_key(std::string_view key);

// Z85 text of a 32-byte binary key (e.g. the CURVE credential of a ZAP
// request); empty when the input is not 32 bytes.
[[nodiscard]] std::string z85_from_binary_key(std::string_view binary_key);

// Writes the pair atomically (temporary file + rename) with mode 0600.
// File format, one key per line:  "public <z85>\nsecret <z85>\n".
[[nodiscard]] tl::expected<void, TransportError> save_keypair_file(
    const std::filesystem::path& path, const CurveKeyPair& keys);

// Reads a file written by save_keypair_file. Refuses a file that group or
// others may read (like ssh does), a malformed file, and a public key that
// does not belong to the secret key.
[[nodiscard]] tl::expected<CurveKeyPair, TransportError> load_keypair_file(
    const std::filesystem::path& path);

// The agent's and the coordinator's start-up helper: load the file (first
// tightening it to 0600, with a warning, when group or others may read it),
// or generate and save a new pair when the file does not exist yet.
[[nodiscard]] tl::expected<CurveKeyPair, TransportError> load_or_create_keypair_file(
    const std::filesystem::path& path);

}  // namespace tide::transport
