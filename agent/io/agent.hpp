// The tide-agent daemon: one libuv loop driving the probes, the notify
// socket, the metrics reader and the link to the coordinator. The decisions
// live in agent/core; this is the shell that does the I/O.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <tl/expected.hpp>
#include <zmq.hpp>

#include "agent/core/link.hpp"
#include "agent/core/metrics.hpp"
#include "agent/core/readiness.hpp"
#include "agent/io/config.hpp"
#include "agent/io/probes.hpp"
#include "protocol/codec.hpp"
#include "protocol/transport/dealer.hpp"

namespace tide::agent {

inline constexpr std::string_view kAgentVersion = "0.1.0";

struct AgentCounters {
  std::uint64_t reports_sent = 0;
  std::uint64_t reports_dropped = 0;     // the transport could not take it (not connected)
  std::uint64_t bad_messages = 0;        // malformed frames from the coordinator
  std::uint64_t unexpected_messages = 0; // valid but not expected here
  std::uint64_t version_mismatches = 0;
  std::uint64_t notify_ignored = 0;      // notify lines not understood
  std::uint64_t sessions = 0;
  std::uint64_t reconnects = 0;
};

class Agent {
 public:
  Agent(uv_loop_t* loop, AgentConfig config);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Loads (or makes) the key pair, opens the notify socket, starts probes,
  // the link, signals and the systemd watchdog.
  [[nodiscard]] tl::expected<void, std::string> start();

  // Says GOODBYE, closes every handle; uv_run then returns.
  void stop(const std::string& reason);

  [[nodiscard]] int exit_code() const { return m_exit_code; }
  [[nodiscard]] const AgentCounters& counters() const { return m_counters; }

 private:
  // link
  void pump_link();
  static void on_link_timer(uv_timer_t* timer);
  void open_socket();
  void close_socket();
  bool send(const protocol::Message& message);
  void send_hello();
  void send_report();
  void on_frame(std::span<const std::uint8_t> frame);
  void on_transport_event(transport::DealerEvent event);
  void handle(const protocol::Message& message);

  // readiness
  bool on_probe(std::size_t index, const ProbeOutcome& outcome);  // the probe passes now
  void on_notify_readable();
  void readiness_changed();

  // commands
  void on_drain(const protocol::Drain& drain);
  void on_undrain(const protocol::Undrain& undrain);
  void on_hook_run(const protocol::HookRun& run);
  void on_shutdown(const protocol::Shutdown& shutdown);
  void run_side_command(const std::string& what, const std::string& command, std::uint32_t timeout_ms);

  // systemd
  void sd_notify(const char* text);

  [[nodiscard]] std::uint64_t now_ms() const;
  [[nodiscard]] double random_unit();
  [[nodiscard]] protocol::Metrics read_metrics();

  uv_loop_t* m_loop;
  AgentConfig m_config;
  Readiness m_readiness;
  LinkSession m_session;
  MetricsSampler m_sampler;
  CommandLog m_commands;
  AgentCounters m_counters;
  std::mt19937_64 m_rng;

  zmq::context_t m_context;
  std::optional<transport::DealerCurve> m_curve;
  std::unique_ptr<transport::Dealer> m_dealer;
  // Closed dealers wait here: a Dealer may not be destroyed inside its own
  // callback, and its poll handles need one more loop turn to close.
  std::vector<std::unique_ptr<transport::Dealer>> m_old_dealers;
  uv_timer_t* m_link_timer = nullptr;
  uv_timer_t* m_watchdog_timer = nullptr;
  uv_signal_t* m_sigterm = nullptr;
  uv_signal_t* m_sigint = nullptr;

  std::vector<std::unique_ptr<ProbeRunner>> m_probes;
  int m_notify_fd = -1;
  uv_poll_t* m_notify_poll = nullptr;
  std::map<std::string, double> m_custom_metrics;
  std::map<std::uint64_t, protocol::HookResult> m_hook_results;  // finished hooks, by command id

  std::uint64_t m_last_bad_log_ms = 0;
  bool m_version_logged = false;
  bool m_stopping = false;
  int m_exit_code = 0;
  std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);
};

}  // namespace tide::agent
