// The exec provider: launch, terminate, list and describe are user scripts.
//
// Each call runs the configured script with one JSON object on stdin and reads
// one JSON object from stdout; exit status 0 is success, 75 (EX_TEMPFAIL) a
// failure worth retrying, any other status a permanent failure whose reason is
// the script's stderr. A script that overruns its timeout is killed (its whole
// process group) and the call fails as retryable. docs/providers.md is the
// contract, field by field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <uv.h>

#include "coordinator/io/provider/provider.hpp"

namespace tide::provider {

struct ExecProviderOptions {
  std::string launch_script;     // required
  std::string terminate_script;  // required
  std::string list_script;       // required
  std::string describe_script;   // optional: without it, describe filters list
  std::uint32_t launch_timeout_ms = 120'000;
  std::uint32_t terminate_timeout_ms = 60'000;  // added to the call's grace_ms
  std::uint32_t list_timeout_ms = 30'000;
  std::uint32_t describe_timeout_ms = 30'000;
  std::string working_dir;                       // empty: the coordinator's
  std::map<std::string, std::string> env;        // extra environment for every script
  // Variables of the coordinator's own environment passed on to the scripts.
  std::vector<std::string> inherited_env = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"};
  std::size_t max_output_bytes = 1 << 20;        // per stream
};

// Exit status a script uses for "failed, but try again later".
inline constexpr int kExecRetryableExitStatus = 75;

class ExecProvider final : public Provider {
 public:
  ExecProvider(uv_loop_t* loop, ExecProviderOptions options);
  ~ExecProvider() override;
  ExecProvider(const ExecProvider&) = delete;
  ExecProvider& operator=(const ExecProvider&) = delete;
  ExecProvider(ExecProvider&&) = delete;
  ExecProvider& operator=(ExecProvider&&) = delete;

  [[nodiscard]] std::string_view kind() const override { return "exec"; }
  void launch(LaunchRequest request, LaunchCallback done) override;
  void terminate(std::string provider_id, std::uint32_t grace_ms, TerminateCallback done) override;
  void list(ListCallback done) override;
  void describe(std::string provider_id, DescribeCallback done) override;

  struct State;

 private:
  std::shared_ptr<State> m_state;
};

// The JSON documents of the contract, exposed for tests and for tidectl.
[[nodiscard]] nlohmann::json launch_request_json(const LaunchRequest& request);
[[nodiscard]] tl::expected<LaunchResult, std::string> parse_launch_result(const nlohmann::json& j);
[[nodiscard]] tl::expected<ProviderInstance, std::string> parse_instance(const nlohmann::json& j);
[[nodiscard]] tl::expected<std::vector<ProviderInstance>, std::string> parse_instance_list(
    const nlohmann::json& j);

}  // namespace tide::provider
