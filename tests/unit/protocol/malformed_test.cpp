// Untrusted input: every malformed frame gets the right DecodeError kind and
// decode() never throws, crashes or allocates without bound.
#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "protocol/codec.hpp"
#include "tests/unit/protocol/sample_messages.hpp"

using namespace tide::protocol;
using Kind = DecodeError::Kind;
using Bytes = std::vector<std::uint8_t>;
using Packer = msgpack::packer<msgpack::sbuffer>;

namespace {

Bytes build(const std::function<void(Packer&)>& write) {
  msgpack::sbuffer buffer;
  Packer pk(buffer);
  write(pk);
  const auto* data = reinterpret_cast<const std::uint8_t*>(buffer.data());
  return Bytes(data, data + buffer.size());
}

void str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

// A v1.0 envelope around a body written by `body`.
Bytes frame(std::string_view command, const std::function<void(Packer&)>& body,
            std::uint64_t major = 1, std::uint64_t minor = 0) {
  return build([&](Packer& pk) {
    pk.pack_array(5);
    str(pk, "TIDE");
    pk.pack_uint64(major);
    pk.pack_uint64(minor);
    str(pk, command);
    body(pk);
  });
}

Bytes ack_frame(std::uint64_t major = 1, std::uint64_t minor = 0) {
  return frame(
      "ACK",
      [](Packer& pk) {
        pk.pack_map(1);
        str(pk, "command_id");
        pk.pack_uint64(5);
      },
      major, minor);
}

// A REPORT with the required fields and one extra entry written by `extra`
// (which must write exactly one key and one value).
Bytes report_with(const std::function<void(Packer&)>& extra) {
  return frame("REPORT", [&](Packer& pk) {
    pk.pack_map(5);
    str(pk, "seq");
    pk.pack_uint64(3);
    str(pk, "timestamp_ms");
    pk.pack_uint64(1000);
    str(pk, "ready");
    pk.pack_true();
    str(pk, "healthy");
    pk.pack_true();
    extra(pk);
  });
}

Bytes report_metric(std::string_view name, const std::function<void(Packer&)>& value) {
  return report_with([&](Packer& pk) {
    str(pk, "metrics");
    pk.pack_map(1);
    str(pk, name);
    value(pk);
  });
}

Bytes report_probe(const std::function<void(Packer&)>& probe_body) {
  return report_with([&](Packer& pk) {
    str(pk, "probes");
    pk.pack_array(1);
    probe_body(pk);
  });
}

Bytes golden(std::string_view name) {
  const auto path = std::filesystem::path(TIDE_TEST_DATA_DIR) / "golden" / (std::string(name) + ".bin");
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Case {
  const char* what;
  Bytes input;
  Kind kind;
};

tl::expected<Message, DecodeError> decode_no_throw(const Bytes& input) {
  tl::expected<Message, DecodeError> result = tl::make_unexpected(DecodeError{});
  REQUIRE_NOTHROW(result = decode(input));
  return result;
}

void check_cases(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto result = decode_no_throw(c.input);
    REQUIRE_FALSE(result.has_value());
    INFO("detail: " << result.error().detail);
    CHECK(to_string(result.error().kind) == to_string(c.kind));
    CHECK_FALSE(result.error().detail.empty());
  }
}

}  // namespace

TEST_CASE("framing errors: empty, not msgpack, trailing bytes, oversized", "[malformed]") {
  Bytes trailing = golden("ack");
  trailing.push_back(0x00);
  Bytes two_frames = golden("ack");
  const Bytes second = golden("ack");
  two_frames.insert(two_frames.end(), second.begin(), second.end());
  Bytes oversized(kMaxFrameBytes + 1, 0x00);
  Bytes huge_valid_prefix = golden("report");
  huge_valid_prefix.resize(kMaxFrameBytes + 1, 0x00);
  check_cases({
      {"empty", {}, Kind::Malformed},
      {"0xc1 is never used", {0xc1}, Kind::Malformed},
      {"text", {'h', 'e', 'l', 'l', 'o'}, Kind::Malformed},
      {"trailing byte", trailing, Kind::Malformed},
      {"two frames in one", two_frames, Kind::Malformed},
      {"one byte over the limit", oversized, Kind::Oversized},
      {"valid prefix, over the limit", huge_valid_prefix, Kind::Oversized},
  });
}

TEST_CASE("every truncation of every golden frame is Malformed", "[malformed]") {
  for (const auto& sample : tide::protocol::testing::sample_messages()) {
    const Bytes full = golden(sample.file);
    for (std::size_t len = 1; len < full.size(); ++len) {
      CAPTURE(sample.file, len);
      const auto result = decode_no_throw(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len)));
      REQUIRE_FALSE(result.has_value());
      CHECK(result.error().kind == Kind::Malformed);
    }
  }
}

TEST_CASE("huge length headers are refused before anything is allocated", "[malformed]") {
  // Without unpack limits `dd ff 00 00 00` asks msgpack-cxx for ~96 GB
  // (msgpack-c #1013). Containers over the limit are refused on their header.
  check_cases({
      {"array32 bomb", {0xdd, 0xff, 0x00, 0x00, 0x00}, Kind::OutOfBounds},
      {"array32 max", {0xdd, 0xff, 0xff, 0xff, 0xff}, Kind::OutOfBounds},
      {"map32 bomb", {0xdf, 0xff, 0xff, 0xff, 0xff}, Kind::OutOfBounds},
      {"array16 over limit", {0xdc, 0x01, 0x01}, Kind::OutOfBounds},
      {"map16 over limit", {0xde, 0x01, 0x01}, Kind::OutOfBounds},
      {"bin8 (no bin allowed)", {0xc4, 0x01, 0x00}, Kind::OutOfBounds},
      {"fixext1 (no ext allowed)", {0xd4, 0x01, 0x00}, Kind::OutOfBounds},
      {"nested array bomb inside an envelope",
       frame("ACK", [](Packer& pk) { pk.pack_array(0xffffffffU); }), Kind::OutOfBounds},
      {"map bomb as the body", frame("ACK", [](Packer& pk) { pk.pack_map(0xffffffffU); }), Kind::OutOfBounds},
  });
  // A lying str/bin/ext length cannot allocate either: the bytes must be
  // present before anything is copied, and they are not.
  for (const Bytes& input : {Bytes{0xdb, 0xff, 0xff, 0xff, 0xff}, Bytes{0xc6, 0xff, 0xff, 0xff, 0xff},
                             Bytes{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, Bytes{0xda, 0xff, 0xff}}) {
    const auto result = decode_no_throw(input);
    REQUIRE_FALSE(result.has_value());
    CHECK((result.error().kind == Kind::Malformed || result.error().kind == Kind::OutOfBounds));
  }
  // Strings longer than the str limit that are really there.
  const std::string long_text(5000, 'x');
  check_cases({
      {"5000-byte string present in full",
       frame("GOODBYE",
             [&](Packer& pk) {
               pk.pack_map(1);
               str(pk, "reason");
               str(pk, long_text);
             }),
       Kind::OutOfBounds},
      {"nesting deeper than 8", Bytes{0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0},
       Kind::OutOfBounds},
  });
}

TEST_CASE("envelope errors", "[malformed]") {
  check_cases({
      {"not an array", build([](Packer& pk) { pk.pack_map(0); }), Kind::BadEnvelope},
      {"a bare string", build([](Packer& pk) { str(pk, "TIDE"); }), Kind::BadEnvelope},
      {"empty array", build([](Packer& pk) { pk.pack_array(0); }), Kind::BadEnvelope},
      {"wrong signature", build([](Packer& pk) {
         pk.pack_array(5);
         str(pk, "TIDX");
         pk.pack_uint64(1);
         pk.pack_uint64(0);
         str(pk, "ACK");
         pk.pack_map(0);
       }),
       Kind::BadEnvelope},
      {"signature as bin-like int", build([](Packer& pk) {
         pk.pack_array(5);
         pk.pack_uint64(0x54494445);
         pk.pack_uint64(1);
         pk.pack_uint64(0);
         str(pk, "ACK");
         pk.pack_map(0);
       }),
       Kind::BadEnvelope},
      {"major as string", build([](Packer& pk) {
         pk.pack_array(5);
         str(pk, "TIDE");
         str(pk, "1");
         pk.pack_uint64(0);
         str(pk, "ACK");
         pk.pack_map(0);
       }),
       Kind::BadEnvelope},
      {"four elements", build([](Packer& pk) {
         pk.pack_array(4);
         str(pk, "TIDE");
         pk.pack_uint64(1);
         pk.pack_uint64(0);
         str(pk, "ACK");
       }),
       Kind::BadEnvelope},
      {"six elements", build([](Packer& pk) {
         pk.pack_array(6);
         str(pk, "TIDE");
         pk.pack_uint64(1);
         pk.pack_uint64(0);
         str(pk, "ACK");
         pk.pack_map(0);
         pk.pack_nil();
       }),
       Kind::BadEnvelope},
      {"minor negative", build([](Packer& pk) {
         pk.pack_array(5);
         str(pk, "TIDE");
         pk.pack_uint64(1);
         pk.pack_int64(-1);
         str(pk, "ACK");
         pk.pack_map(0);
       }),
       Kind::BadEnvelope},
      {"command as int", build([](Packer& pk) {
         pk.pack_array(5);
         str(pk, "TIDE");
         pk.pack_uint64(1);
         pk.pack_uint64(0);
         pk.pack_uint64(7);
         pk.pack_map(0);
       }),
       Kind::BadEnvelope},
      {"body as array", frame("ACK", [](Packer& pk) { pk.pack_array(0); }), Kind::BadEnvelope},
      {"body as nil", frame("HEARTBEAT", [](Packer& pk) { pk.pack_nil(); }), Kind::BadEnvelope},
      {"unknown command", frame("RESTART", [](Packer& pk) { pk.pack_map(0); }), Kind::UnknownCommand},
      {"lowercase command", frame("ack", [](Packer& pk) { pk.pack_map(0); }), Kind::UnknownCommand},
      {"empty command", frame("", [](Packer& pk) { pk.pack_map(0); }), Kind::UnknownCommand},
  });
}

TEST_CASE("versions: another major is refused with peer_major, any minor is accepted", "[malformed]") {
  SECTION("major 2") {
    const auto result = decode_no_throw(ack_frame(2, 0));
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().kind == Kind::UnsupportedVersion);
    CHECK(result.error().peer_major == 2);
  }
  SECTION("major 0") {
    const auto result = decode_no_throw(ack_frame(0, 9));
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().kind == Kind::UnsupportedVersion);
    CHECK(result.error().peer_major == 0);
  }
  SECTION("a future major may change the envelope's shape after the version") {
    const auto result = decode_no_throw(build([](Packer& pk) {
      pk.pack_array(3);
      str(pk, "TIDE");
      pk.pack_uint64(3);
      pk.pack_map(0);
    }));
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().kind == Kind::UnsupportedVersion);
    CHECK(result.error().peer_major == 3);
  }
  SECTION("a major beyond uint32 is reported clamped") {
    const auto result = decode_no_throw(ack_frame(0x1'0000'0000ULL, 0));
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().kind == Kind::UnsupportedVersion);
    CHECK(result.error().peer_major == 0xffffffffU);
  }
  SECTION("higher minors are accepted") {
    for (std::uint64_t minor : {1ULL, 7ULL, 0xffffffffffffffffULL}) {
      const auto result = decode_no_throw(ack_frame(1, minor));
      REQUIRE(result.has_value());
      CHECK(std::get<Ack>(*result).command_id == 5);
    }
  }
}

TEST_CASE("wrong field types name the field", "[malformed]") {
  struct TypeCase {
    const char* what;
    Bytes input;
    const char* field;
  };
  const std::vector<TypeCase> cases = {
      {"command_id as str", frame("ACK",
                                  [](Packer& pk) {
                                    pk.pack_map(1);
                                    str(pk, "command_id");
                                    str(pk, "5");
                                  }),
       "command_id"},
      {"command_id as float", frame("ACK",
                                    [](Packer& pk) {
                                      pk.pack_map(1);
                                      str(pk, "command_id");
                                      pk.pack_double(5.5);
                                    }),
       "command_id"},
      {"missing required command_id", frame("ACK", [](Packer& pk) { pk.pack_map(0); }), "command_id"},
      {"missing required seq", frame("REPORT",
                                     [](Packer& pk) {
                                       pk.pack_map(1);
                                       str(pk, "ready");
                                       pk.pack_true();
                                     }),
       "seq"},
      {"draining as int", report_with([](Packer& pk) {
         str(pk, "draining");
         pk.pack_uint64(1);
       }),
       "draining"},
      {"non-string body key", frame("ACK",
                                    [](Packer& pk) {
                                      pk.pack_map(1);
                                      pk.pack_uint64(1);
                                      pk.pack_uint64(5);
                                    }),
       "<key>"},
      {"probes as map", report_with([](Packer& pk) {
         str(pk, "probes");
         pk.pack_map(0);
       }),
       "probes"},
      {"probe as string", report_probe([](Packer& pk) { str(pk, "http"); }), "probes[0]"},
      {"probe without name", report_probe([](Packer& pk) {
         pk.pack_map(2);
         str(pk, "kind");
         str(pk, "tcp");
         str(pk, "passing");
         pk.pack_true();
       }),
       "probes[0].name"},
      {"metrics as array", report_with([](Packer& pk) {
         str(pk, "metrics");
         pk.pack_array(0);
       }),
       "metrics"},
      {"cpu as string", report_metric("cpu_pct", [](Packer& pk) { str(pk, "50"); }), "metrics.cpu_pct"},
      {"custom value as string", report_metric("custom",
                                               [](Packer& pk) {
                                                 pk.pack_map(1);
                                                 str(pk, "q");
                                                 str(pk, "1");
                                               }),
       "metrics.custom value"},
      {"labels as array", frame("HELLO",
                                [](Packer& pk) {
                                  pk.pack_map(3);
                                  str(pk, "instance_id");
                                  str(pk, "i-1");
                                  str(pk, "agent_version");
                                  str(pk, "0.1");
                                  str(pk, "labels");
                                  pk.pack_array(0);
                                }),
       "labels"},
      {"capability as int", frame("HELLO",
                                  [](Packer& pk) {
                                    pk.pack_map(3);
                                    str(pk, "instance_id");
                                    str(pk, "i-1");
                                    str(pk, "agent_version");
                                    str(pk, "0.1");
                                    str(pk, "capabilities");
                                    pk.pack_array(1);
                                    pk.pack_uint64(1);
                                  }),
       "capabilities[0]"},
      {"error code as string", frame("ERROR",
                                     [](Packer& pk) {
                                       pk.pack_map(1);
                                       str(pk, "code");
                                       str(pk, "401");
                                     }),
       "code"},
      {"exit_status as bool", frame("HOOK_RESULT",
                                    [](Packer& pk) {
                                      pk.pack_map(3);
                                      str(pk, "command_id");
                                      pk.pack_uint64(1);
                                      str(pk, "hook_name");
                                      str(pk, "h");
                                      str(pk, "exit_status");
                                      pk.pack_false();
                                    }),
       "exit_status"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto result = decode_no_throw(c.input);
    REQUIRE_FALSE(result.has_value());
    INFO("detail: " << result.error().detail);
    CHECK(result.error().kind == Kind::WrongType);
    CHECK_THAT(result.error().detail, Catch::Contains(c.field));
  }
}

TEST_CASE("out-of-bounds values name the field", "[malformed]") {
  struct BoundCase {
    const char* what;
    Bytes input;
    const char* field;
  };
  auto uint_field = [](std::string_view command, std::string_view field, std::uint64_t value) {
    return frame(command, [=](Packer& pk) {
      pk.pack_map(1);
      str(pk, field);
      pk.pack_uint64(value);
    });
  };
  auto hello_with = [](const std::function<void(Packer&)>& extra) {
    return frame("HELLO", [&](Packer& pk) {
      pk.pack_map(3);
      str(pk, "instance_id");
      str(pk, "i-1");
      str(pk, "agent_version");
      str(pk, "0.1");
      extra(pk);
    });
  };
  const std::vector<BoundCase> cases = {
      {"ack command_id 0", uint_field("ACK", "command_id", 0), "command_id"},
      {"undrain command_id 0", uint_field("UNDRAIN", "command_id", 0), "command_id"},
      {"negative command_id", frame("ACK",
                                    [](Packer& pk) {
                                      pk.pack_map(1);
                                      str(pk, "command_id");
                                      pk.pack_int64(-3);
                                    }),
       "command_id"},
      {"error code 418", uint_field("ERROR", "code", 418), "code"},
      {"welcome session id with a space", frame("WELCOME",
                                                [](Packer& pk) {
                                                  pk.pack_map(1);
                                                  str(pk, "session_id");
                                                  str(pk, "s 1");
                                                }),
       "session_id"},
      {"liveness 1", frame("WELCOME",
                           [](Packer& pk) {
                             pk.pack_map(2);
                             str(pk, "session_id");
                             str(pk, "s-1");
                             str(pk, "liveness");
                             pk.pack_uint64(1);
                           }),
       "liveness"},
      {"report interval 2^32", frame("WELCOME",
                                     [](Packer& pk) {
                                       pk.pack_map(2);
                                       str(pk, "session_id");
                                       str(pk, "s-1");
                                       str(pk, "report_interval_ms");
                                       pk.pack_uint64(0x1'0000'0000ULL);
                                     }),
       "report_interval_ms"},
      {"service port 70000", hello_with([](Packer& pk) {
         str(pk, "service_port");
         pk.pack_uint64(70000);
       }),
       "service_port"},
      {"65 labels", hello_with([](Packer& pk) {
         str(pk, "labels");
         pk.pack_map(65);
         for (int i = 0; i < 65; ++i) {
           str(pk, "k" + std::to_string(i));
           str(pk, "v");
         }
       }),
       "labels"},
      {"duplicate label key", hello_with([](Packer& pk) {
         str(pk, "labels");
         pk.pack_map(2);
         str(pk, "k");
         str(pk, "a");
         str(pk, "k");
         str(pk, "b");
       }),
       "labels"},
      {"invalid UTF-8 hostname", hello_with([](Packer& pk) {
         str(pk, "hostname");
         str(pk, "\xff\xfe");
       }),
       "hostname"},
      {"UTF-16 surrogate in hostname", hello_with([](Packer& pk) {
         str(pk, "hostname");
         str(pk, "\xed\xa0\x80");
       }),
       "hostname"},
      {"duplicate body key", frame("ACK",
                                   [](Packer& pk) {
                                     pk.pack_map(2);
                                     str(pk, "command_id");
                                     pk.pack_uint64(1);
                                     str(pk, "command_id");
                                     pk.pack_uint64(2);
                                   }),
       "command_id"},
      {"seq 0", frame("REPORT",
                      [](Packer& pk) {
                        pk.pack_map(4);
                        str(pk, "seq");
                        pk.pack_uint64(0);
                        str(pk, "timestamp_ms");
                        pk.pack_uint64(1);
                        str(pk, "ready");
                        pk.pack_true();
                        str(pk, "healthy");
                        pk.pack_true();
                      }),
       "seq"},
      {"cpu 101", report_metric("cpu_pct", [](Packer& pk) { pk.pack_double(101.0); }), "cpu_pct"},
      {"memory -0.5", report_metric("memory_pct", [](Packer& pk) { pk.pack_double(-0.5); }), "memory_pct"},
      {"load NaN", report_metric("load1", [](Packer& pk) { pk.pack_double(std::nan("")); }), "load1"},
      {"net_in +inf",
       report_metric("net_in_bps", [](Packer& pk) { pk.pack_double(std::numeric_limits<double>::infinity()); }),
       "net_in_bps"},
      {"negative tcp_established", report_metric("tcp_established", [](Packer& pk) { pk.pack_int64(-1); }),
       "tcp_established"},
      {"custom -inf", report_metric("custom",
                                    [](Packer& pk) {
                                      pk.pack_map(1);
                                      str(pk, "q");
                                      pk.pack_double(-std::numeric_limits<double>::infinity());
                                    }),
       "custom"},
      {"custom name with a slash", report_metric("custom",
                                                 [](Packer& pk) {
                                                   pk.pack_map(1);
                                                   str(pk, "a/b");
                                                   pk.pack_double(1.0);
                                                 }),
       "custom"},
      {"probe kind udp", report_probe([](Packer& pk) {
         pk.pack_map(3);
         str(pk, "name");
         str(pk, "p");
         str(pk, "kind");
         str(pk, "udp");
         str(pk, "passing");
         pk.pack_true();
       }),
       "probes[0].kind"},
      {"probe latency over an hour", report_probe([](Packer& pk) {
         pk.pack_map(4);
         str(pk, "name");
         str(pk, "p");
         str(pk, "kind");
         str(pk, "tcp");
         str(pk, "passing");
         pk.pack_true();
         str(pk, "latency_ms");
         pk.pack_uint64(kMaxLatencyMs + 1);
       }),
       "latency_ms"},
      {"33 probes", report_with([](Packer& pk) {
         str(pk, "probes");
         pk.pack_array(33);
         for (int i = 0; i < 33; ++i) {
           pk.pack_map(3);
           str(pk, "name");
           str(pk, "p");
           str(pk, "kind");
           str(pk, "tcp");
           str(pk, "passing");
           pk.pack_true();
         }
       }),
       "probes"},
      {"hook transition", frame("HOOK_RUN",
                                [](Packer& pk) {
                                  pk.pack_map(4);
                                  str(pk, "command_id");
                                  pk.pack_uint64(1);
                                  str(pk, "hook_name");
                                  str(pk, "h");
                                  str(pk, "transition");
                                  str(pk, "rebooting");
                                  str(pk, "timeout_ms");
                                  pk.pack_uint64(1000);
                                }),
       "transition"},
      {"exit_status below int32", frame("HOOK_RESULT",
                                        [](Packer& pk) {
                                          pk.pack_map(3);
                                          str(pk, "command_id");
                                          pk.pack_uint64(1);
                                          str(pk, "hook_name");
                                          str(pk, "h");
                                          str(pk, "exit_status");
                                          pk.pack_int64(-0x1'0000'0000LL);
                                        }),
       "exit_status"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto result = decode_no_throw(c.input);
    REQUIRE_FALSE(result.has_value());
    INFO("detail: " << result.error().detail);
    CHECK(result.error().kind == Kind::OutOfBounds);
    CHECK_THAT(result.error().detail, Catch::Contains(c.field));
  }
}

TEST_CASE("forward compatibility: unknown keys are ignored, loose number encodings accepted", "[codec]") {
  SECTION("unknown keys at every level") {
    const auto input = frame("REPORT", [](Packer& pk) {
      pk.pack_map(7);
      str(pk, "seq");
      pk.pack_uint64(9);
      str(pk, "timestamp_ms");
      pk.pack_uint64(1);
      str(pk, "ready");
      pk.pack_true();
      str(pk, "healthy");
      pk.pack_false();
      str(pk, "zone_hint");  // unknown, any type
      pk.pack_array(2);
      pk.pack_nil();
      pk.pack_map(0);
      str(pk, "probes");
      pk.pack_array(1);
      pk.pack_map(4);
      str(pk, "name");
      str(pk, "p");
      str(pk, "kind");
      str(pk, "exec");
      str(pk, "passing");
      pk.pack_false();
      str(pk, "exit_code");  // unknown inside a probe
      pk.pack_int64(-2);
      str(pk, "metrics");
      pk.pack_map(4);
      str(pk, "cpu_pct");
      pk.pack_uint64(50);  // an integer where a double is expected
      str(pk, "memory_pct");
      pk.pack_float(12.5F);  // float32
      str(pk, "load1");
      pk.pack_nil();  // nil = not measured
      str(pk, "gpu_pct");  // unknown metric field
      pk.pack_double(3.0);
    });
    const auto result = decode_no_throw(input);
    INFO((result ? std::string() : result.error().detail));
    REQUIRE(result.has_value());
    const auto& report = std::get<Report>(*result);
    CHECK(report.seq == 9);
    CHECK_FALSE(report.healthy);
    REQUIRE(report.probes.size() == 1);
    CHECK(report.probes[0].kind == ProbeKind::Exec);
    CHECK(report.metrics.cpu_pct == 50.0);
    CHECK(report.metrics.memory_pct == 12.5);
    CHECK_FALSE(report.metrics.load1.has_value());
  }
  SECTION("a heartbeat body may carry unknown keys") {
    const auto result = decode_no_throw(frame("HEARTBEAT", [](Packer& pk) {
      pk.pack_map(1);
      str(pk, "sent_ms");
      pk.pack_uint64(12345);
    }));
    REQUIRE(result.has_value());
    CHECK(std::holds_alternative<Heartbeat>(*result));
  }
}

TEST_CASE("single-byte corruption of every golden frame never throws", "[malformed]") {
  std::size_t decoded_ok = 0;
  std::size_t refused = 0;
  for (const auto& sample : tide::protocol::testing::sample_messages()) {
    const Bytes full = golden(sample.file);
    for (std::size_t i = 0; i < full.size(); ++i) {
      for (const int value : {0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xdd, 0xdf, 0xff}) {
        Bytes corrupt = full;
        corrupt[i] = static_cast<std::uint8_t>(value);
        const auto result = decode_no_throw(corrupt);
        if (result) {
          ++decoded_ok;
          // Whatever decodes must validate and re-encode to something that
          // decodes to the same message.
          CHECK(validate(*result).has_value());
          const auto again = decode(encode(*result));
          REQUIRE(again.has_value());
          CHECK(*again == *result);
        } else {
          ++refused;
        }
      }
    }
  }
  CHECK(refused > 0);
  CHECK(decoded_ok > 0);
}
