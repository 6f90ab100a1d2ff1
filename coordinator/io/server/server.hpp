// Server: tide-coordinator's imperative shell around the decision core.
//
// One libuv loop owns everything. Events come in from the agents (gateway),
// the provider, the load balancer, the admin API and a tick timer; each is
// handed to the Fleet (coordinator/core), and the commands the Fleet returns
// are executed here in order: persist first, then act (provider calls, LB
// changes, agent commands), and feed results back in as new events.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <tl/expected.hpp>
#include <uv.h>

#include "coordinator/core/fleet.hpp"
#include "coordinator/core/history.hpp"
#include "coordinator/core/lb_metrics.hpp"
#include "coordinator/core/metric_query.hpp"
#include "coordinator/core/metrics.hpp"
#include "coordinator/core/scaling.hpp"
#include "coordinator/core/schedule.hpp"
#include "coordinator/io/json/policy_json.hpp"
#include "coordinator/io/notify/notifier.hpp"
#include "coordinator/io/server/agent_gateway.hpp"
#include "coordinator/io/server/change_feed.hpp"
#include "coordinator/io/server/config.hpp"
#include "coordinator/io/server/http_api.hpp"
#include "coordinator/io/store/sqlite.hpp"

namespace tide::coordinator::store {
class Store;
}
namespace tide::provider {
class Provider;
}
namespace tide::haproxy {
class LoadBalancer;
}  // namespace tide::haproxy
namespace tide::prometheus {
class PrometheusClient;
}  // namespace tide::prometheus

namespace tide::coordinator {

// Hex SHA-256: how enrollment tokens are stored and compared.
[[nodiscard]] std::string sha256_hex(std::string_view text);

struct ServerCounters {
  std::uint64_t lb_operations = 0;
  std::uint64_t lb_failures = 0;
  std::uint64_t store_failures = 0;
  LatencyHistogram lb_latency;              // register / rotation changes, HAProxy round trip
  LatencyHistogram report_to_lb_latency;    // REPORT received → HAProxy acknowledged the change
  std::uint64_t metric_queries = 0;         // Prometheus queries asked
  std::uint64_t metric_query_failures = 0;  // ... that gave no value
  // Activities started (status running) and ended (their final status).
  std::map<std::pair<ActivityType, ActivityStatus>, std::uint64_t> activities;
};

// What the groups do by themselves, as stored (schema v3), keyed by
// (group, name). The engines (Autoscaler, schedule entries, Fleet hooks) are
// fed from here.
using SpecKey = std::pair<std::string, std::string>;
struct LiveSpecs {
  std::map<SpecKey, ScalingPolicy> policies;
  std::map<SpecKey, ScheduledAction> schedules;
  std::map<SpecKey, LifecycleHook> hooks;
  std::map<SpecKey, NotificationTarget> notifications;
};

class Server final : public AgentGatewayHandler {
 public:
  // `binary_dir` is where tide-coordinator lives (tide-agent is expected beside it).
  Server(uv_loop_t* loop, CoordinatorConfig config, std::filesystem::path binary_dir);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the store, starts the load balancer and the provider, restores the
  // fleet against what actually runs, then opens the agent link and the API.
  // `ready` runs once all of that is done (or failed).
  void start(std::function<void(tl::expected<void, std::string>)> ready);
  // Stops taking requests, says GOODBYE to agents, stops the embedded HAProxy
  // and closes everything; instances keep running. `done` runs at the end.
  void stop(std::function<void()> done);

  // Applies a configuration re-read from the file (SIGHUP): the load
  // balancer's frontends, TLS certificates, time-outs and access logs (HAProxy
  // reloaded seamlessly when its configuration changed, certificates loaded
  // without a reload). Logs what was applied and what changed but takes a
  // restart; a configuration the load balancer refuses changes nothing.
  void reload(const CoordinatorConfig& fresh);

  [[nodiscard]] std::uint16_t api_port() const { return m_api_port; }
  [[nodiscard]] const std::string& agent_endpoint() const { return m_agent_endpoint; }

  // AgentGatewayHandler
  bool allow_agent_key(std::string_view agent_key) override;
  HelloVerdict on_hello(const protocol::Hello& hello, std::string_view agent_key) override;
  void on_report(const std::string& instance_id, const protocol::Report& report) override;
  void on_lost(const std::string& instance_id, std::string_view reason) override;
  void on_ack(const std::string& instance_id, std::uint64_t command_id) override;
  void on_hook_result(const std::string& instance_id, const protocol::HookResult& result) override;

 private:
  // The core's clock: the wall clock read once at construction, advanced by
  // the monotonic clock. Records carry (nearly) wall time; deadlines
  // (liveness, boot, drain, hooks, back-off) never jump when the system
  // clock is stepped — a clock set an hour ahead must not declare every
  // agent lost. A restart reads the wall clock afresh.
  [[nodiscard]] TimeMs now_ms() const;
  // The system clock, for what must follow it (cron schedules).
  [[nodiscard]] static TimeMs wall_clock_ms();
  [[nodiscard]] tl::expected<void, std::string> open_store();
  [[nodiscard]] tl::expected<void, std::string> start_load_balancer();
  [[nodiscard]] tl::expected<void, std::string> start_provider();
  void adopt_lb_members(RestoreInput input, std::function<void(RestoreInput)> next);
  void restore_with_provider(RestoreInput input,
                             std::function<void(tl::expected<void, std::string>)> ready);
  void restore(std::function<void(tl::expected<void, std::string>)> ready);
  [[nodiscard]] tl::expected<void, std::string> start_agent_link();
  [[nodiscard]] tl::expected<void, std::string> start_api_and_timers();
  void start_provider_checks();
  void check_provider();
  void describe_at_provider(const std::string& instance_id);
  void register_routes();
  void register_spec_routes();
  void register_apply_routes();
  void register_cost_routes();
  void register_rollout_routes();
  void register_history_routes();
  void register_console_routes();
  // Tells the console's live pages what a command or an API request changed.
  void note_change(const Command& command);
  void note_change(const ApiRequest& request);
  // The rollout's record with where the group stands (routes_rollout.cpp).
  [[nodiscard]] nlohmann::json rollout_json(const Rollout& rollout) const;
  [[nodiscard]] static std::string new_rollout_id();

  // ---- automation (automation.cpp): policies, schedules, hooks ----
  [[nodiscard]] tl::expected<void, std::string> load_specs();
  void put_policy_in_memory(const ScalingPolicy& policy);
  void remove_policy_in_memory(const std::string& group, const std::string& name);
  [[nodiscard]] tl::expected<void, JsonError> check_policy_metric(
      const ScalingPolicy& policy) const;
  [[nodiscard]] tl::expected<void, JsonError> check_schedule(const ScheduledAction& action) const;
  [[nodiscard]] std::optional<TimeMs> next_schedule_fire(const ScheduledAction& action,
                                                         TimeMs now) const;
  [[nodiscard]] nlohmann::json spec_json(const ScheduledAction& action) const;
  [[nodiscard]] tl::expected<nlohmann::json, ApiResponse> execute_policy_now(
      const std::string& group, const std::string& name, bool honour_cooldown);
  void hooks_changed(const std::string& group);
  void forget_group_specs(const std::string& group);
  void record_metrics(const std::string& instance_id, const protocol::Report& report);
  void run_schedules(TimeMs wall, TimeMs now);
  void run_policies(TimeMs now);
  void automation_tick();
  // Sends what `build` makes for the group's notification targets, if any.
  void notify(const std::string& group,
              const std::function<std::vector<OutgoingNotification>(
                  const std::vector<NotificationTarget>&, const NotificationOptions&)>& build);
  void notify_activity(const Activity& activity);
  void notify_hook_timeout(const HookTimeout& timeout);
  void notify_rollout(const RolloutNotice& notice);
  void poll_metric_queries();
  void on_metric_query(const MetricQuery& query, tl::expected<double, std::string> value);
  void sample_traffic();
  void record_lb_metrics(const LbTrafficSample& sample);

  // ---- history (history.cpp): a sample of every group per interval ----
  // At start: prunes what is past the retention and finds where the minute
  // rollups stop.
  void start_history();
  // The timer's work: one sample per group into the store, then the minute
  // rollups of the minutes that ended, and the hourly prune.
  void sample_history();
  void roll_up_history(TimeMs now);
  void prune_history(TimeMs now);
  void history_store_failed(const store::StoreError& error);
  // The rows of one group (or of all: `group` empty) that give `range`'s
  // points, by group, oldest first: minute rollups where they serve, raw
  // samples for the rest (history_reads).
  [[nodiscard]] tl::expected<std::map<std::string, std::vector<HistorySample>>, store::StoreError>
  read_history(const std::string& group, const HistoryRange& range, const MetricSelection& metrics);

  void handle(const Event& event);
  void execute(std::vector<Command> commands);
  bool execute_one(const Command& command);  // false: stop the batch (a persist failed)
  void set_agent_access(const SetAgentAccess& access);
  // The log lines of state changes an operator must know about, each once.
  void log_instance_health(const Instance& instance);
  void log_activity(const Activity& activity, bool started);
  void launch(const Launch& command);
  void terminate(const Terminate& command);
  void lb_register(const LbRegister& command);
  void lb_drain(const LbDrain& command);
  void lb_remove(const LbRemove& command);

  [[nodiscard]] std::string metrics_text() const;

  uv_loop_t* m_loop;
  CoordinatorConfig m_config;
  std::filesystem::path m_binary_dir;
  TimeMs m_wall_at_start_ms = 0;
  std::chrono::steady_clock::time_point m_steady_at_start;
  std::string m_server_public_key;
  std::string m_agent_endpoint;
  std::uint16_t m_api_port = 0;

  std::unique_ptr<store::Store> m_store;
  std::unique_ptr<provider::Provider> m_provider;
  std::unique_ptr<haproxy::LoadBalancer> m_lb;  // HAProxy and its driver; none: no load balancer
  std::unique_ptr<Fleet> m_fleet;
  std::unique_ptr<AgentGateway> m_gateway;
  std::unique_ptr<HttpApi> m_api;
  std::unique_ptr<ChangeFeed> m_changes;  // the console's live events; after m_api
  uv_timer_t* m_tick = nullptr;
  uv_timer_t* m_traffic = nullptr;         // sample_traffic() every second
  LbRates m_lb_rates;                      // HAProxy's totals -> per-second rates
  bool m_traffic_sampling = false;         // a sample is in flight
  uv_timer_t* m_provider_check = nullptr;  // check_provider() every provider.check_interval_ms
  bool m_provider_check_running = false;
  bool m_provider_check_failing = false;  // logged once when it fails, once when it works again
  bool m_restored = false;                // the fleet is restored: HELLOs are taken

  LiveSpecs m_specs;
  MetricWindows m_metrics;
  Autoscaler m_autoscaler;
  std::vector<ScheduleEntry> m_schedule_entries;  // compiled from m_specs.schedules
  TimeMs m_last_policy_run_ms = 0;
  std::unique_ptr<notify::Notifier> m_notifier;                // webhooks; created with the links
  std::unique_ptr<prometheus::PrometheusClient> m_prometheus;  // none without prometheus.url
  uv_timer_t* m_prometheus_poll = nullptr;  // poll_metric_queries() every interval
  uv_timer_t* m_history = nullptr;          // sample_history() every history.interval_ms
  TimeMs m_history_rolled_ms = 0;           // the minutes before this are rolled up
  TimeMs m_history_pruned_ms = 0;           // the last prune
  bool m_history_failing = false;           // logged once when it fails, once when it works again
  std::set<std::pair<std::string, std::string>> m_queries_in_flight;  // (group, query)
  QueryHealth m_query_health;

  // Report receipt times of instances whose rotation is changing, for the
  // report → LB latency figure.
  std::unordered_map<std::string, std::uint64_t> m_rotation_started_us;
  // Instances logged as unhealthy (a warning) and not yet as healthy again:
  // each turn is logged once, and an instance that then vanishes is not
  // warned about a second time.
  std::unordered_set<std::string> m_logged_unhealthy;
  // Each live instance's last REPORT and when it came (the console's instance
  // page); forgotten when the instance ends.
  std::unordered_map<std::string, std::pair<TimeMs, protocol::Report>> m_last_reports;
  ServerCounters m_counters;
  // The ZAP allow-list, kept by the core's SetAgentAccess commands.
  std::unordered_map<std::string, std::string>
      m_agent_access;  // instance id -> bound key ("" none)
  std::unordered_map<std::string, std::uint32_t> m_bound_keys;  // key -> instances bound to it
  std::unordered_set<std::string> m_open_enrollments;  // instances waiting for their first HELLO
  bool m_stopping = false;
};

}  // namespace tide::coordinator
