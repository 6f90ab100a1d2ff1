// Where instances come from: the provider interface the coordinator drives.
//
// A provider launches, terminates, lists and describes instances. Every call
// is asynchronous: it returns at once and its callback runs later on the loop
// thread that owns the provider (never inside the call itself). No call blocks
// the loop; file and /proc work runs on the libuv thread pool and child
// processes are watched through uv_spawn exit callbacks, pidfds and uv timers.
//
// The structs here are plain data and deliberately independent of the
// coordinator's model (coordinator/core/model.hpp); the control loop maps
// between the two.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace tide::provider {

// What the launch configuration says about the application (local provider
// fields; the exec provider passes them through to its script unchanged).
struct LaunchConfiguration {
  std::string command;                       // run as /bin/sh -c <command>
  std::uint16_t port = 0;                    // the application's port, 1..65535
  std::map<std::string, std::string> env;    // extra environment for the application
  // Secret environment: NAME -> absolute path of a file on the coordinator's
  // host. The local provider reads the files at launch (read_env_files); the
  // exec provider hands the paths to its script. The values never reach the
  // store.
  std::map<std::string, std::string> env_files;
};

// How to start the agent beside the application. An empty agent_path means
// "start no agent" (tests, or images that bake the agent in themselves).
struct AgentSettings {
  std::string agent_path;               // absolute path of tide-agent, or empty
  std::string coordinator_endpoint;     // e.g. tcp://127.0.0.1:7400
  std::string coordinator_public_key;   // Z85 CURVE public key, 40 chars, or empty
  std::string enrollment_token;         // one-time token for the first HELLO
  std::string readiness_path = "/ready";  // HTTP path probed on the application
  std::uint32_t readiness_period_ms = 0;  // the agent's readiness probe period; 0 = its default
  std::string log_level = "info";
};

struct LaunchRequest {
  std::string instance_id;      // 1..128 bytes, [A-Za-z0-9._:-], not starting with '.'
  std::string group;            // scaling group name
  std::string idempotency_key;  // same rules as instance_id; the instance id is fine
  LaunchConfiguration launch;
  AgentSettings agent;
};

struct LaunchResult {
  std::string provider_id;  // the provider's handle for terminate/describe
  std::string address;      // where the application listens (IP literal or host)
  std::uint16_t port = 0;
  bool existing = false;    // true: a live instance with this idempotency key was returned
};

struct ProviderError {
  std::string message;     // human readable, names what went wrong
  bool retryable = false;  // true: the same call may succeed later
};

enum class InstanceState : std::uint8_t {
  Pending,   // being launched
  Running,   // its processes (or cloud instance) are alive
  Stopping,  // being terminated
  Gone,      // no longer exists (died, or terminated outside the coordinator)
};

[[nodiscard]] std::string_view to_string(InstanceState state);
[[nodiscard]] std::optional<InstanceState> parse_instance_state(std::string_view text);

// One instance that carries tide's tag, as the provider sees it.
struct ProviderInstance {
  std::string provider_id;
  std::string instance_id;
  std::string group;
  std::string idempotency_key;
  std::string address;
  std::uint16_t port = 0;
  InstanceState state = InstanceState::Gone;
  std::int64_t started_at_ms = 0;  // Unix epoch milliseconds, 0 if unknown
  std::string message;             // why it is gone, if known
};

// Per-operation counters, exported by the coordinator's /metrics.
struct OperationCounters {
  std::uint64_t calls = 0;
  std::uint64_t failures = 0;
};

struct ProviderMetrics {
  OperationCounters launch;
  OperationCounters terminate;
  OperationCounters list;
  OperationCounters describe;
};

// An instance whose application stopped although nobody asked the provider to
// terminate it (crash, kill -9, a command that exits at once).
struct InstanceExit {
  std::string provider_id;
  std::string instance_id;    // tide's id from the instance's tag
  std::string message;        // e.g. "application exited with status 127 after 0.04 s; last output: sh: 1: nosuch: not found"
  std::int64_t uptime_ms = 0; // how long the application ran
  // The application's exit status as the shell that started it saw it
  // (0..255), or -1 when nobody could see it (its launcher was gone too).
  int exit_status = -1;
  // N when exit_status is 128 + N for a signal N (1..64): shells report a
  // process killed by signal N so, and cannot tell it from `exit 128+N`.
  int term_signal = 0;
  // The application's last output lines (at most 5, from its last 1 KiB),
  // joined by " | ", control characters and invalid UTF-8 replaced by '?'.
  std::string output_tail;
};
using ExitHandler = std::function<void(InstanceExit)>;

using LaunchCallback = std::function<void(tl::expected<LaunchResult, ProviderError>)>;
using TerminateCallback = std::function<void(tl::expected<void, ProviderError>)>;
using ListCallback = std::function<void(tl::expected<std::vector<ProviderInstance>, ProviderError>)>;
// describe() of an unknown or dead instance succeeds with state Gone.
using DescribeCallback = std::function<void(tl::expected<ProviderInstance, ProviderError>)>;

class Provider {
 public:
  Provider() = default;
  Provider(const Provider&) = delete;
  Provider& operator=(const Provider&) = delete;
  Provider(Provider&&) = delete;
  Provider& operator=(Provider&&) = delete;
  // Destroying a provider with calls in flight is allowed: their handles are
  // still closed properly, but their callbacks are not called.
  virtual ~Provider() = default;

  [[nodiscard]] virtual std::string_view kind() const = 0;

  // Idempotent by request.idempotency_key: while a live instance launched
  // with that key exists, it is returned (existing = true) instead of a new one.
  virtual void launch(LaunchRequest request, LaunchCallback done) = 0;

  // SIGTERM-equivalent, then forced after grace_ms. Idempotent: terminating
  // an instance that is already gone succeeds.
  virtual void terminate(std::string provider_id, std::uint32_t grace_ms,
                         TerminateCallback done) = 0;

  // Every instance carrying tide's tag. Instances found dead are reported once
  // with state Gone and forgotten.
  virtual void list(ListCallback done) = 0;

  virtual void describe(std::string provider_id, DescribeCallback done) = 0;

  // Reports every instance whose application exits unasked, once, on the loop
  // thread. Providers that cannot watch keep the default (nothing is reported;
  // the coordinator's periodic list() finds them). An empty handler stops the
  // reports.
  virtual void set_exit_handler(ExitHandler handler) { m_exit_handler = std::move(handler); }

  [[nodiscard]] const ProviderMetrics& metrics() const { return m_metrics; }

 protected:
  ProviderMetrics m_metrics;
  ExitHandler m_exit_handler;
};

// Checks an instance id or idempotency key: 1..128 bytes of [A-Za-z0-9._:-],
// not starting with '.', so it is safe as a file name. Returns why not, or "".
[[nodiscard]] std::string check_identifier(std::string_view what, std::string_view value);

// The values of a launch configuration's env_files: each file's content
// without one trailing newline. Blocks (file reads): call it off the loop.
// Fails, naming the variable and the file, when a file cannot be read, is
// larger than kMaxEnvFileBytes or holds a NUL byte.
inline constexpr std::size_t kMaxEnvFileBytes = 64 * 1024;
[[nodiscard]] tl::expected<std::map<std::string, std::string>, ProviderError> read_env_files(
    const std::map<std::string, std::string>& env_files);

}  // namespace tide::provider
