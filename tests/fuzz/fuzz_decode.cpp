// libFuzzer harness for protocol::decode().
//
// Properties checked on every input:
//   * decode() returns (never throws, crashes or trips a sanitizer);
//   * whatever decodes also validates;
//   * encode(decoded) decodes again, to an equal message, and re-encoding
//     that gives the same bytes (the encoding is canonical).
// Run (scripts/test does this, seeded with tests/data/golden/*.bin):
//   build-fuzz/bin/fuzz_decode -max_total_time=60 -max_len=70000 <corpus dir>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "protocol/codec.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_decode: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tide::protocol;
  const auto first = decode(std::span<const std::uint8_t>(data, size));
  if (!first) {
    if (first.error().detail.empty()) fail("a DecodeError without detail");
    if (first.error().kind == DecodeError::Kind::Oversized && size <= kMaxFrameBytes) {
      fail("Oversized for a frame within kMaxFrameBytes");
    }
    return 0;
  }
  if (!validate(*first)) fail("decoded message does not validate");
  const auto bytes = encode(*first);
  // The canonical encoding may be a little longer than a compact input (a
  // double sent as a fixint re-encodes as float64, omitted optional fields are
  // written out), so an input just under the limit can re-encode just over it;
  // the receiver would then answer Oversized, which is checked instead.
  if (bytes.size() > kMaxFrameBytes) {
    const auto over = decode(bytes);
    if (over || over.error().kind != DecodeError::Kind::Oversized) fail("large frame not refused as Oversized");
    return 0;
  }
  const auto second = decode(bytes);
  if (!second) {
    std::fprintf(stderr, "re-decode error: %s\n", second.error().detail.c_str());
    fail("re-encoded message does not decode");
  }
  if (!(*second == *first)) fail("round trip changed the message");
  if (encode(*second) != bytes) fail("encoding is not canonical");
  return 0;
}
