// The local provider: instances are process groups on this host.
//
// Each instance is one session (and process group) led by a small launcher
// shell that starts the application from the launch configuration's command
// (/bin/sh -c) and, when an agent path is set, a tide-agent beside it. The
// instance gets its own loopback address <address_prefix>N (all of
// 127.0.0.0/8 is loopback on Linux), so every instance can use the same port.
// The launcher is detached: instances survive a coordinator crash, and a
// provider restarted over the same state_dir re-adopts them from their
// records:
//
//   <state_dir>/records/<provider_id>.json   one per instance, written atomically
//   <state_dir>/instances/<provider_id>/     app.log (stdout and stderr), app.log.1 (of
//                                            the key's previous instance), agent.log,
//                                            agent-state/, pids, app.exit, exit-reported
//
// An instance lives as long as its application. When the application exits
// the launcher writes its status to app.exit and stops the agent. With an
// exit handler set, the provider watches every recorded application through
// a pidfd and, unless terminate() was called for it, reports the exit once
// (status or signal, uptime, the end of app.log) within milliseconds, sends
// the agent SIGTERM in case the launcher could not, and marks the instance
// directory (exit-reported) so that a restarted provider does not report it
// again. list() and describe() call an instance whose application is dead
// Gone (with the same description of the exit) and SIGKILL what is left of
// it.
//
// The provider id is the request's idempotency key.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "coordinator/io/provider/provider.hpp"

namespace tide::provider {

struct LocalProviderOptions {
  std::string state_dir;                  // created if missing
  std::string address_prefix = "127.0.1.";  // addresses are prefix + N
  std::uint8_t first_host = 1;            // N ranges over [first_host, last_host]
  std::uint8_t last_host = 254;
  std::uint32_t start_timeout_ms = 5'000;   // for the launcher to report its pids
  std::uint32_t kill_timeout_ms = 5'000;    // after SIGKILL, for the group to vanish
  std::uint32_t poll_interval_ms = 20;      // liveness polling while terminating
  // Variables of the coordinator's own environment passed on to applications.
  std::vector<std::string> inherited_env = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"};
  // Wall clock for started_at_ms (Unix epoch ms); defaults to the system clock.
  std::function<std::int64_t()> wall_clock_ms;
};

class LocalProvider final : public Provider {
 public:
  LocalProvider(uv_loop_t* loop, LocalProviderOptions options);
  ~LocalProvider() override;
  LocalProvider(const LocalProvider&) = delete;
  LocalProvider& operator=(const LocalProvider&) = delete;
  LocalProvider(LocalProvider&&) = delete;
  LocalProvider& operator=(LocalProvider&&) = delete;

  [[nodiscard]] std::string_view kind() const override { return "local"; }
  void launch(LaunchRequest request, LaunchCallback done) override;
  void terminate(std::string provider_id, std::uint32_t grace_ms, TerminateCallback done) override;
  void list(ListCallback done) override;
  void describe(std::string provider_id, DescribeCallback done) override;
  // Watches the application of every instance launched here or recorded in
  // state_dir (a pidfd each); see the file comment.
  void set_exit_handler(ExitHandler handler) override;

  // The directory holding an instance's logs and agent state.
  [[nodiscard]] std::string instance_dir(std::string_view provider_id) const;

  struct State;

 private:
  std::shared_ptr<State> m_state;
};

}  // namespace tide::provider
