#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "protocol/codec.hpp"
#include "tests/unit/protocol/sample_messages.hpp"

using namespace tide::protocol;
using tide::protocol::testing::sample_messages;

TEST_CASE("every command round-trips with non-default values in every field", "[codec]") {
  const auto samples = sample_messages();
  REQUIRE(samples.size() == std::variant_size_v<Message>);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& sample = samples[i];
    CAPTURE(sample.file);
    REQUIRE(sample.message.index() == i);  // one sample per variant alternative
    REQUIRE(validate(sample.message).has_value());
    const auto frame = encode(sample.message);
    REQUIRE(frame.size() <= kMaxFrameBytes);
    const auto decoded = decode(frame);
    INFO((decoded ? std::string() : decoded.error().detail));
    REQUIRE(decoded.has_value());
    CHECK(*decoded == sample.message);
    CHECK(command_name(*decoded) == command_name(sample.message));
  }
}

TEST_CASE("optional fields may be absent and keep their defaults", "[codec]") {
  Report r;
  r.seq = 1;
  const auto decoded = decode(encode(r));
  REQUIRE(decoded.has_value());
  const auto& got = std::get<Report>(*decoded);
  CHECK_FALSE(got.metrics.cpu_pct.has_value());
  CHECK_FALSE(got.metrics.tcp_established.has_value());
  CHECK(got == r);
}

TEST_CASE("extreme in-bounds values survive the round trip", "[codec]") {
  Report r;
  r.seq = std::numeric_limits<std::uint64_t>::max();
  r.timestamp_ms = std::numeric_limits<std::uint64_t>::max();
  r.ready_reason.assign(kMaxTextLength, 'x');
  r.health_reason = "caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x8c\x8a";  // multibyte UTF-8
  r.metrics.cpu_pct = 100.0;
  r.metrics.memory_pct = 0.0;
  r.metrics.load1 = 1e300;
  r.metrics.net_in_bps = std::numeric_limits<double>::denorm_min();
  r.metrics.tcp_established = std::numeric_limits<std::uint32_t>::max();
  for (int i = 0; i < static_cast<int>(kMaxCustomMetrics); ++i) {
    r.metrics.custom["m" + std::to_string(i)] = -1.5 * i;
  }
  for (std::size_t i = 0; i < kMaxProbes; ++i) {
    r.probes.push_back({"p" + std::to_string(i), ProbeKind::Exec, true, std::string(kMaxTextLength, 'm'),
                        kMaxLatencyMs});
  }
  const auto frame = encode(r);
  CHECK(frame.size() <= kMaxFrameBytes);
  const auto decoded = decode(frame);
  INFO((decoded ? std::string() : decoded.error().detail));
  REQUIRE(decoded.has_value());
  CHECK(std::get<Report>(*decoded) == r);

  HookResult h{std::numeric_limits<std::uint64_t>::max(), std::string(kMaxIdLength, 'h'),
               std::numeric_limits<std::int32_t>::min(), false, std::string(kMaxHookOutput, 'o')};
  const auto hd = decode(encode(h));
  REQUIRE(hd.has_value());
  CHECK(std::get<HookResult>(*hd) == h);
}

TEST_CASE("validate() refuses out-of-bounds messages and names the field", "[codec]") {
  struct Case {
    const char* what;
    Message message;
    const char* field;
  };
  Report nan_report;
  nan_report.seq = 1;
  nan_report.metrics.load1 = std::nan("");
  Report cpu_report;
  cpu_report.seq = 1;
  cpu_report.metrics.cpu_pct = 100.5;
  Report neg_report;
  neg_report.seq = 1;
  neg_report.metrics.net_out_bps = -1.0;
  Report inf_custom;
  inf_custom.seq = 1;
  inf_custom.metrics.custom["x"] = std::numeric_limits<double>::infinity();
  Report bad_utf8;
  bad_utf8.seq = 1;
  bad_utf8.ready_reason = "\xc0\xaf";  // overlong '/'
  Report too_many_probes;
  too_many_probes.seq = 1;
  too_many_probes.probes.resize(kMaxProbes + 1, ProbeResult{"p", ProbeKind::Tcp, true, "", 0});
  const std::vector<Case> cases = {
      {"empty instance id", Hello{"", "", "0.1.0", "", "", 0, {}, {}}, "instance_id"},
      {"bad id charset", Hello{"i 1", "", "0.1.0", "", "", 0, {}, {}}, "instance_id"},
      {"long instance id", Hello{std::string(kMaxIdLength + 1, 'a'), "", "0.1.0", "", "", 0, {}, {}},
       "instance_id"},
      {"empty agent version", Hello{"i-1", "", "", "", "", 0, {}, {}}, "agent_version"},
      {"long token", Hello{"i-1", std::string(kMaxTokenLength + 1, 't'), "0.1", "", "", 0, {}, {}},
       "enrollment_token"},
      {"empty label key", Hello{"i-1", "", "0.1", "", "", 0, {{"", "v"}}, {}}, "labels key"},
      {"bad capability", Hello{"i-1", "", "0.1", "", "", 0, {}, {"drain now"}}, "capabilities"},
      {"report interval low", Welcome{"s-1", 99, 1000, 3}, "report_interval_ms"},
      {"heartbeat interval high", Welcome{"s-1", 1000, 60'001, 3}, "heartbeat_interval_ms"},
      {"liveness 1", Welcome{"s-1", 1000, 1000, 1}, "liveness"},
      {"liveness 21", Welcome{"s-1", 1000, 1000, 21}, "liveness"},
      {"empty session", Welcome{"", 1000, 1000, 3}, "session_id"},
      {"seq 0", Report{}, "seq"},
      {"nan metric", nan_report, "load1"},
      {"cpu over 100", cpu_report, "cpu_pct"},
      {"negative bps", neg_report, "net_out_bps"},
      {"infinite custom", inf_custom, "custom"},
      {"bad utf8", bad_utf8, "ready_reason"},
      {"too many probes", too_many_probes, "probes"},
      {"drain command 0", Drain{0, 10}, "command_id"},
      {"drain timeout", Drain{1, kMaxDrainTimeoutMs + 1}, "timeout_ms"},
      {"undrain command 0", Undrain{0}, "command_id"},
      {"hook transition", HookRun{1, "h", "rebooting", 10}, "transition"},
      {"hook timeout 0", HookRun{1, "h", "launching", 0}, "timeout_ms"},
      {"hook output", HookResult{1, "h", 0, false, std::string(kMaxHookOutput + 1, 'o')}, "output"},
      {"shutdown grace", Shutdown{1, kMaxGraceMs + 1}, "grace_ms"},
      {"ack 0", Ack{0}, "command_id"},
      {"error code", Error{static_cast<ErrorCode>(418), "", 0}, "code"},
      {"goodbye reason", Goodbye{std::string(kMaxTextLength + 1, 'r')}, "reason"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto result = validate(c.message);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().kind == DecodeError::Kind::OutOfBounds);
    CHECK_THAT(result.error().detail, Catch::Contains(c.field));
  }
}
