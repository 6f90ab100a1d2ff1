// The coordinator's durable state in one SQLite file (docs/store.md).
//
// What lives here is what must survive a coordinator crash: launch
// configurations, scaling groups, instances and their lifecycle state,
// activities, and idempotency keys for provider calls. Agent reports and
// metrics never do: they change every second and live in memory only, so
// there is deliberately no API that writes per report. What is kept of them
// is each group's history, one sample per group every 10 s.
//
// Rules the store enforces:
//   - launch configurations are versioned by (id, version) and immutable once
//     a group or an instance uses them; a change is a new version; delete only
//     when unused;
//   - a group is deleted only when none of its instances is still alive;
//   - every multi-row change runs in one transaction;
//   - every failure is a StoreError naming the operation; nothing throws.
//
// "A change is written before the action it leads to": before a provider call
// the shell runs begin_provider_call() (instance row + idempotency key,
// atomically), then makes the call, then finish_provider_call(). After a crash,
// requested_provider_calls() lists what may or may not have happened; the
// shell asks the provider by idempotency key instead of launching again.
//
// Single-threaded: a Store belongs to the coordinator's loop thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/core/history.hpp"
#include "coordinator/core/model.hpp"
#include "coordinator/core/policy_model.hpp"
#include "coordinator/core/rollout.hpp"
#include "coordinator/io/json/policy_json.hpp"
#include "coordinator/io/store/sqlite.hpp"

namespace tide::coordinator::store {

// Not in the core model: the store's record of one provider call.
enum class ProviderCallState : std::uint8_t {
  Requested,  // "requested": written before the call; outcome unknown after a crash
  Completed,  // "completed": the call returned and `result` holds its answer
};
[[nodiscard]] std::string_view to_string(ProviderCallState state);

struct IdempotencyRecord {
  std::string key;          // the idempotency key handed to the provider, 1..256 bytes
  std::string operation;    // "launch", "terminate", ...
  std::string instance_id;  // the instance it acts on; empty for none
  ProviderCallState state = ProviderCallState::Requested;
  std::string result;  // provider's answer (e.g. JSON), empty while requested
  TimeMs requested_ms = 0;
  std::optional<TimeMs> completed_ms;  // set exactly when state is Completed
  friend bool operator==(const IdempotencyRecord&, const IdempotencyRecord&) = default;
};

// Filters for list_activities(); all optional. Times are start times, ms since
// the epoch: since_ms inclusive, until_ms exclusive.
struct ActivityFilter {
  std::optional<ActivityStatus> status;
  std::optional<ActivityType> type;
  std::optional<TimeMs> since_ms;
  std::optional<TimeMs> until_ms;
  std::uint32_t limit = 100;  // 1..1000; newest first
};

// Everything a group does by itself (schema v3), all groups at once.
struct GroupSpecs {
  std::vector<ScalingPolicy> policies;         // by group, then name
  std::vector<ScheduledAction> schedules;      // with last_fired_ms
  std::vector<LifecycleHook> hooks;
  std::vector<NotificationTarget> notifications;
};

enum class SpecKind : std::uint8_t { Policy, ScheduledAction, LifecycleHook, NotificationTarget };
[[nodiscard]] std::string_view to_string(SpecKind kind);  // "policy", "scheduled action", ...

class Store {
 public:
  // Opens or creates the file, sets WAL / foreign keys / busy timeout /
  // synchronous, and applies pending migrations. Refuses a file from a newer
  // tide (NewerSchema) and a file that is not a database (Corrupt).
  [[nodiscard]] static Result<Store> open(const std::string& path, const OpenOptions& options = {});

  [[nodiscard]] std::int64_t schema_version() const { return m_schema_version; }
  // For tools and tests (PRAGMAs, raw reads). Keep writes to the API.
  [[nodiscard]] Database& database() { return m_db; }

  // Groups several API calls into one atomic change (they nest as savepoints).
  [[nodiscard]] Result<Transaction> begin_transaction(std::string_view operation);

  // ---- launch configurations ----
  // Stores `config` as the next version of config.id (1 for a new id) and
  // returns it with that version set.
  [[nodiscard]] Result<LaunchConfiguration> create_launch_configuration_version(
      LaunchConfiguration config);
  // Inserts exactly (config.id, config.version); Constraint if it exists.
  [[nodiscard]] Result<void> insert_launch_configuration(const LaunchConfiguration& config);
  // Rewrites (config.id, config.version) in place: InUse once a group or an
  // instance uses it (then create a new version), NotFound if absent.
  [[nodiscard]] Result<void> update_launch_configuration(const LaunchConfiguration& config);
  [[nodiscard]] Result<LaunchConfiguration> get_launch_configuration(std::string_view id,
                                                                     std::uint32_t version);
  [[nodiscard]] Result<LaunchConfiguration> get_latest_launch_configuration(std::string_view id);
  // Ordered by id, then version.
  [[nodiscard]] Result<std::vector<LaunchConfiguration>> list_launch_configurations();
  [[nodiscard]] Result<bool> launch_configuration_in_use(std::string_view id,
                                                         std::uint32_t version);
  // InUse while used, NotFound if absent.
  [[nodiscard]] Result<void> delete_launch_configuration(std::string_view id,
                                                         std::uint32_t version);

  // ---- scaling groups ----
  [[nodiscard]] Result<void> insert_group(const ScalingGroup& group);
  [[nodiscard]] Result<void> update_group(const ScalingGroup& group);  // NotFound if absent
  [[nodiscard]] Result<ScalingGroup> get_group(std::string_view name);
  [[nodiscard]] Result<std::vector<ScalingGroup>> list_groups();  // by name
  // InUse while any of its instances is not terminal (terminated,
  // launch_failed, detached). Terminal instance rows, their idempotency keys,
  // the group's activities, specs and rollouts go with it, in one transaction.
  [[nodiscard]] Result<void> delete_group(std::string_view name);

  // ---- instances (InstanceRuntime is memory only and never stored) ----
  [[nodiscard]] Result<void> upsert_instance(const Instance& instance);
  [[nodiscard]] Result<Instance> get_instance(std::string_view id);
  [[nodiscard]] Result<std::vector<Instance>> list_instances();  // by id
  [[nodiscard]] Result<std::vector<Instance>> list_instances(std::string_view group);
  [[nodiscard]] Result<void> delete_instance(std::string_view id);  // NotFound if absent

  // ---- provider calls: write before acting ----
  // Atomically upserts the instance row and inserts `call` (state Requested),
  // durably (fsync) unless OpenOptions::sync_before_provider_calls is off.
  // Inside an enclosing begin_transaction() the outer commit decides: call
  // it outside one when the provider call follows right away.
  // Constraint if the key already exists: the call was already made once.
  [[nodiscard]] Result<void> begin_provider_call(const Instance& instance,
                                                 const IdempotencyRecord& call);
  struct ProviderCall {
    Instance instance;
    IdempotencyRecord call;
  };
  // The same for several calls (a scale-out by N): one transaction, one fsync.
  [[nodiscard]] Result<void> begin_provider_calls(const std::vector<ProviderCall>& calls);
  // Atomically upserts the instance row (e.g. booting, provider id, address)
  // and marks the key Completed with `result`.
  [[nodiscard]] Result<void> finish_provider_call(const Instance& instance, std::string_view key,
                                                  std::string_view result, TimeMs completed_ms);
  [[nodiscard]] Result<void> insert_idempotency_key(const IdempotencyRecord& call);
  // NotFound if absent.
  [[nodiscard]] Result<void> complete_idempotency_key(std::string_view key, std::string_view result,
                                                      TimeMs completed_ms);
  [[nodiscard]] Result<IdempotencyRecord> get_idempotency_key(std::string_view key);
  // Calls whose outcome is unknown (still Requested), oldest first.
  [[nodiscard]] Result<std::vector<IdempotencyRecord>> requested_provider_calls();
  [[nodiscard]] Result<void> delete_idempotency_key(std::string_view key);

  // ---- activities ----
  // Appends the activity and its per-instance rows in one transaction.
  [[nodiscard]] Result<void> insert_activity(const Activity& activity);
  // Sets cause, status and end time; NotFound if absent.
  [[nodiscard]] Result<void> update_activity_status(std::string_view id, ActivityStatus status,
                                                    std::optional<TimeMs> end_ms);
  // Adds or replaces one instance's message.
  [[nodiscard]] Result<void> upsert_activity_instance(std::string_view activity_id,
                                                      const ActivityInstance& entry);
  [[nodiscard]] Result<Activity> get_activity(std::string_view id);
  // Newest first (start_ms, then id), with their per-instance rows.
  [[nodiscard]] Result<std::vector<Activity>> list_activities(std::string_view group,
                                                              const ActivityFilter& filter = {});

  // ---- group specs (store_specs.cpp) ----
  // Create or replace by (group, name); validated first; NotFound when the
  // group does not exist. A policy's name is unique across both kinds.
  [[nodiscard]] Result<void> put_policy(const ScalingPolicy& policy, TimeMs now_ms);
  // Also stores action.last_fired_ms (the caller decides what a new or
  // changed action counts as already fired).
  [[nodiscard]] Result<void> put_scheduled_action(const ScheduledAction& action, TimeMs now_ms);
  [[nodiscard]] Result<void> put_lifecycle_hook(const LifecycleHook& hook, TimeMs now_ms);
  [[nodiscard]] Result<void> put_notification_target(const NotificationTarget& target, TimeMs now_ms);
  // NotFound when absent.
  [[nodiscard]] Result<void> delete_spec(SpecKind kind, std::string_view group, std::string_view name);
  [[nodiscard]] Result<void> set_schedule_last_fired(std::string_view group, std::string_view name,
                                                     TimeMs fired_ms);
  [[nodiscard]] Result<GroupSpecs> load_specs();

  // ---- rollouts (schema v6) ----
  // Inserts or replaces the record by id. Invalid when its strategy does not
  // pass validate(); Constraint when its group does not exist.
  [[nodiscard]] Result<void> put_rollout(const Rollout& rollout);
  // The group's rollouts, newest first (created_ms, then id); limit 1..1000.
  [[nodiscard]] Result<std::vector<Rollout>> list_rollouts(std::string_view group, std::size_t limit);
  // Every rollout not in a terminal state (is_terminal), oldest first.
  [[nodiscard]] Result<std::vector<Rollout>> active_rollouts();

  // ---- group history (schema v7, store_history.cpp) ----
  // Adds the samples (or, for HistoryTable::Minutes, the minute points) in
  // one transaction; a row that exists for the same group and time is
  // replaced. Constraint when a group does not exist (nothing is added).
  [[nodiscard]] Result<void> insert_history(HistoryTable table, std::span<const GroupHistorySample> samples);
  // One group's rows with from_ms <= t_ms < to_ms, oldest first, with the
  // metrics `metrics` keeps.
  [[nodiscard]] Result<std::vector<HistorySample>> read_history(HistoryTable table, std::string_view group,
                                                                TimeMs from_ms, TimeMs to_ms,
                                                                const MetricSelection& metrics = {});
  // Every group's rows with from_ms <= t_ms < to_ms, oldest first; a group
  // without any is absent. One index range per group.
  [[nodiscard]] Result<std::map<std::string, std::vector<HistorySample>>> read_all_history(
      HistoryTable table, TimeMs from_ms, TimeMs to_ms, const MetricSelection& metrics = {});
  // Deletes the rows of both tables with t_ms < before_ms; returns how many.
  [[nodiscard]] Result<std::int64_t> prune_history(TimeMs before_ms);
  // The newest t_ms of any group in `table`; nullopt when it is empty.
  [[nodiscard]] Result<std::optional<TimeMs>> latest_history_ms(HistoryTable table);

  // PRAGMA integrity_check: "ok" or SQLite's list of problems.
  [[nodiscard]] Result<std::string> integrity_check();
  // Copies the WAL into the main file without waiting for readers (PASSIVE).
  // SQLite also does this by itself every 1000 pages; the shell may call it
  // from an idle timer to keep that cost off a busy tick.
  [[nodiscard]] Result<void> checkpoint();

 private:
  Store(Database db, std::int64_t version, OpenOptions options)
      : m_db(std::move(db)), m_schema_version(version), m_options(options) {}
  // Runs `body` in a transaction whose commit is fsynced when asked to.
  template <class F>
  Result<void> durable_transaction(const std::string& operation, F&& body);
  Database m_db;
  std::int64_t m_schema_version = 0;
  OpenOptions m_options;
};

}  // namespace tide::coordinator::store
