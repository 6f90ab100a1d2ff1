// tide wire protocol: one plain struct per command of protocol/SPEC.md.
//
// These are plain data: no msgpack, no ZeroMQ. protocol/codec.hpp turns them
// into bytes and back, and validates every bound listed here. Field comments
// give the unit and the bounds the decoder enforces (SPEC.md is normative).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tide::protocol {

// Envelope constants. A frame is a msgpack array
//   [ kSignature, major, minor, command-name, body-map ]
// (SPEC.md, "Envelope").
inline constexpr std::string_view kSignature = "TIDE";
inline constexpr std::uint32_t kVersionMajor = 1;
inline constexpr std::uint32_t kVersionMinor = 0;

// Hard upper bound of one frame on the wire; ZMQ_MAXMSGSIZE is set to this.
inline constexpr std::size_t kMaxFrameBytes = 64 * 1024;

// Bounds shared by several commands.
inline constexpr std::size_t kMaxIdLength = 128;        // instance/session ids, names
inline constexpr std::size_t kMaxTextLength = 1024;     // reasons, messages
inline constexpr std::size_t kMaxLabels = 64;
inline constexpr std::size_t kMaxProbes = 32;
inline constexpr std::size_t kMaxCustomMetrics = 64;
inline constexpr std::size_t kMaxCapabilities = 32;
inline constexpr std::size_t kMaxHookOutput = 4096;
inline constexpr std::size_t kMaxTokenLength = 256;       // enrollment_token
inline constexpr std::size_t kMaxVersionLength = 64;      // agent_version
inline constexpr std::size_t kMaxHostLength = 255;        // hostname, service_address
inline constexpr std::uint32_t kMinIntervalMs = 100;      // report/heartbeat interval
inline constexpr std::uint32_t kMaxIntervalMs = 60'000;
inline constexpr std::uint32_t kMinLiveness = 2;          // missed intervals
inline constexpr std::uint32_t kMaxLiveness = 20;
inline constexpr std::uint32_t kMaxLatencyMs = 3'600'000;     // ProbeResult::latency_ms
inline constexpr std::uint32_t kMaxDrainTimeoutMs = 3'600'000;
inline constexpr std::uint32_t kMaxHookTimeoutMs = 7'200'000;
inline constexpr std::uint32_t kMaxGraceMs = 3'600'000;

// Ids (instance_id, session_id, hook names, capabilities, custom metric
// names) are 1..kMaxIdLength bytes of [A-Za-z0-9._:-]; SPEC.md, "Limits".
[[nodiscard]] bool is_valid_id(std::string_view id);

// ---- agent -> coordinator -------------------------------------------------

struct Hello {
  std::string instance_id;       // 1..128 bytes, [A-Za-z0-9._:-]
  std::string enrollment_token;  // 0..256 bytes; empty once the key is bound
  std::string agent_version;     // 1..64 bytes, e.g. "0.1.0"
  std::string hostname;          // 0..255 bytes
  std::string service_address;   // IPv4/IPv6 literal or host name, 0..255 bytes
  std::uint16_t service_port = 0;  // 0 = none
  std::map<std::string, std::string> labels;  // <= 64 entries, key 1..128, value 0..1024
  std::vector<std::string> capabilities;      // <= 32 entries, e.g. "drain", "hooks", "shutdown"
  friend bool operator==(const Hello&, const Hello&) = default;
};

enum class ProbeKind : std::uint8_t { Http, Tcp, Exec, Notify };

// The wire names of ProbeKind: "http", "tcp", "exec", "notify".
std::string_view to_string(ProbeKind kind);
std::optional<ProbeKind> probe_kind_from_string(std::string_view name);

struct ProbeResult {
  std::string name;              // 1..128 bytes
  ProbeKind kind = ProbeKind::Http;
  bool passing = false;          // the probe's state after its thresholds
  std::string message;           // 0..1024 bytes, last failure or status
  std::uint32_t latency_ms = 0;  // of the last attempt, 0..3,600,000
  friend bool operator==(const ProbeResult&, const ProbeResult&) = default;
};

struct Metrics {
  // A missing (std::nullopt) value means "not measured", never zero.
  std::optional<double> cpu_pct;         // 0..100 (share of all cores)
  std::optional<double> memory_pct;      // 0..100
  std::optional<double> load1;           // >= 0
  std::optional<double> net_in_bps;      // bytes/s, >= 0
  std::optional<double> net_out_bps;     // bytes/s, >= 0
  std::optional<std::uint32_t> tcp_established;
  std::map<std::string, double> custom;  // <= 64 entries, name 1..128, finite values
  friend bool operator==(const Metrics&, const Metrics&) = default;
};

struct Report {
  std::uint64_t seq = 0;           // per session, starts at 1, strictly increasing
  std::uint64_t timestamp_ms = 0;  // agent's wall clock, Unix epoch milliseconds
  bool ready = false;
  std::string ready_reason;        // 0..1024 bytes, why (not) ready
  bool healthy = true;
  std::string health_reason;       // 0..1024 bytes
  bool draining = false;           // the agent honours a DRAIN
  std::vector<ProbeResult> probes; // <= 32 entries
  Metrics metrics;
  friend bool operator==(const Report&, const Report&) = default;
};

// The result of a lifecycle-hook script that HOOK_RUN asked for.
struct HookResult {
  std::uint64_t command_id = 0;  // the HOOK_RUN's command_id
  std::string hook_name;         // 1..128 bytes
  std::int32_t exit_status = 0;  // process exit status; -1 when killed or failed to start
  bool timed_out = false;
  std::string output;            // 0..4096 bytes, tail of stdout+stderr
  friend bool operator==(const HookResult&, const HookResult&) = default;
};

// ---- coordinator -> agent -------------------------------------------------

struct Welcome {
  std::string session_id;                   // 1..128 bytes
  std::uint32_t report_interval_ms = 1000;  // 100..60,000
  std::uint32_t heartbeat_interval_ms = 1000;  // 100..60,000
  std::uint32_t liveness = 3;               // 2..20 missed intervals = peer lost
  friend bool operator==(const Welcome&, const Welcome&) = default;
};

struct Drain {
  std::uint64_t command_id = 0;   // >= 1, echoed in ACK
  std::uint32_t timeout_ms = 0;   // how long the coordinator waits for connections to end
  friend bool operator==(const Drain&, const Drain&) = default;
};

struct Undrain {
  std::uint64_t command_id = 0;
  friend bool operator==(const Undrain&, const Undrain&) = default;
};

struct HookRun {
  std::uint64_t command_id = 0;
  std::string hook_name;          // 1..128 bytes, names a script in the agent's config
  std::string transition;         // "launching" or "terminating"
  std::uint32_t timeout_ms = 0;   // 1..7,200,000
  friend bool operator==(const HookRun&, const HookRun&) = default;
};

struct Shutdown {
  std::uint64_t command_id = 0;
  std::uint32_t grace_ms = 0;     // 0..3,600,000 for the pre-stop command
  friend bool operator==(const Shutdown&, const Shutdown&) = default;
};

// ---- either direction -----------------------------------------------------

struct Heartbeat {
  friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

struct Ack {
  std::uint64_t command_id = 0;
  friend bool operator==(const Ack&, const Ack&) = default;
};

enum class ErrorCode : std::uint16_t {
  BadMessage = 400,          // malformed, out of bounds or unknown command
  Unauthorized = 401,        // enrollment token or key binding refused
  UnknownInstance = 404,     // instance id not known to the coordinator
  UnknownSession = 410,      // REPORT without a live session: say HELLO again
  UnsupportedVersion = 505,  // envelope major version not spoken
  Internal = 500,
};

// The known codes; anything else is refused by the decoder (OutOfBounds).
std::optional<ErrorCode> error_code_from_uint(std::uint64_t code);

struct Error {
  ErrorCode code = ErrorCode::BadMessage;
  std::string message;            // 0..1024 bytes, human readable
  std::uint64_t command_id = 0;   // the command it answers, 0 if none
  friend bool operator==(const Error&, const Error&) = default;
};

struct Goodbye {
  std::string reason;             // 0..1024 bytes
  friend bool operator==(const Goodbye&, const Goodbye&) = default;
};

using Message = std::variant<Hello, Welcome, Report, Heartbeat, Drain, Undrain,
                             HookRun, HookResult, Shutdown, Ack, Error, Goodbye>;

// The command name on the wire ("HELLO", "REPORT", ...).
std::string_view command_name(const Message& message);

// Hook transitions carried by HOOK_RUN.transition.
inline constexpr std::string_view kTransitionLaunching = "launching";
inline constexpr std::string_view kTransitionTerminating = "terminating";

}  // namespace tide::protocol
