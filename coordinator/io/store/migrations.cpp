#include "coordinator/io/store/migrations.hpp"

#include <array>
#include <string>

namespace tide::coordinator::store {

namespace {

// Enum columns hold the model's to_string() spellings. They carry no CHECK
// list on purpose: SQLite cannot alter a CHECK without rebuilding the table,
// and a new lifecycle state should not need one. Rows are validated when read
// (an unknown spelling is a StoreError, not a crash).
//
// Schema v1: launch configurations, scaling groups, instances, activities.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE launch_configurations (
  name                      TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  version                   INTEGER NOT NULL CHECK (version >= 1),
  command                   TEXT    NOT NULL,
  port                      INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
  env_json                  TEXT    NOT NULL CHECK (json_valid(env_json)),
  agent_readiness_path      TEXT    NOT NULL,
  agent_report_interval_ms  INTEGER NOT NULL,
  hourly_price              REAL    NOT NULL CHECK (hourly_price >= 0),
  created_ms                INTEGER NOT NULL,
  PRIMARY KEY (name, version)
) STRICT;

CREATE TABLE scaling_groups (
  name                          TEXT    PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
  min_size                      INTEGER NOT NULL CHECK (min_size >= 0),
  max_size                      INTEGER NOT NULL,
  desired                       INTEGER NOT NULL,
  lc_name                       TEXT    NOT NULL,
  lc_version                    INTEGER NOT NULL,
  termination_policy            TEXT    NOT NULL,
  lb_backend                    TEXT    NOT NULL,
  lb_port                       INTEGER NOT NULL CHECK (lb_port BETWEEN 0 AND 65535),
  health_check_grace_period_ms  INTEGER NOT NULL,
  default_cooldown_ms           INTEGER NOT NULL,
  boot_timeout_ms               INTEGER NOT NULL,
  drain_timeout_ms              INTEGER NOT NULL,
  warmup_ms                     INTEGER NOT NULL,
  retry_immediate               INTEGER NOT NULL,
  retry_initial_backoff_ms      INTEGER NOT NULL,
  retry_multiplier              REAL    NOT NULL,
  retry_max_backoff_ms          INTEGER NOT NULL,
  fail_static_share             REAL    NOT NULL,
  replacement_rate              REAL    NOT NULL,
  liveness_window_ms            INTEGER NOT NULL,
  enabled                       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  created_ms                    INTEGER NOT NULL,
  updated_ms                    INTEGER NOT NULL,
  CHECK (min_size <= desired AND desired <= max_size),
  FOREIGN KEY (lc_name, lc_version) REFERENCES launch_configurations (name, version)
    ON DELETE RESTRICT ON UPDATE RESTRICT
) STRICT;

CREATE TABLE instances (
  id                       TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  group_name               TEXT    NOT NULL REFERENCES scaling_groups (name)
                                     ON DELETE RESTRICT ON UPDATE RESTRICT,
  origin                   TEXT    NOT NULL,
  state                    TEXT    NOT NULL,
  protected_from_scale_in  INTEGER NOT NULL CHECK (protected_from_scale_in IN (0, 1)),
  health                   TEXT    NOT NULL,
  health_reason            TEXT    NOT NULL,
  provider_id              TEXT    NOT NULL,
  address                  TEXT    NOT NULL,
  port                     INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
  -- NULL for an attached instance that no launch configuration describes.
  lc_name                  TEXT,
  lc_version               INTEGER,
  enrollment_token_hash    TEXT    NOT NULL,
  agent_key                TEXT    NOT NULL,
  idempotency_key          TEXT    NOT NULL,
  exit_reason              TEXT    NOT NULL,
  activity_id              TEXT    NOT NULL,
  created_ms               INTEGER NOT NULL,
  launched_ms              INTEGER NOT NULL,
  state_since_ms           INTEGER NOT NULL,
  unhealthy_since_ms       INTEGER NOT NULL,
  CHECK ((lc_name IS NULL) = (lc_version IS NULL)),
  FOREIGN KEY (lc_name, lc_version) REFERENCES launch_configurations (name, version)
    ON DELETE RESTRICT ON UPDATE RESTRICT
) STRICT;

-- A launch configuration row never changes once a group or an instance uses
-- it: a change is a new version. The store checks first to give a clear
-- error; the trigger makes it true for any writer.
CREATE TRIGGER launch_configurations_immutable_when_used
BEFORE UPDATE ON launch_configurations
WHEN EXISTS (SELECT 1 FROM scaling_groups WHERE lc_name = OLD.name AND lc_version = OLD.version)
  OR EXISTS (SELECT 1 FROM instances WHERE lc_name = OLD.name AND lc_version = OLD.version)
BEGIN
  SELECT RAISE(ABORT, 'launch configuration is in use and immutable; create a new version');
END;

CREATE TABLE activities (
  id          TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  group_name  TEXT    NOT NULL REFERENCES scaling_groups (name)
                        ON DELETE CASCADE ON UPDATE RESTRICT,
  type        TEXT    NOT NULL,
  cause       TEXT    NOT NULL,
  status      TEXT    NOT NULL,
  start_ms    INTEGER NOT NULL,
  end_ms      INTEGER
) STRICT;

-- Listing per group, newest first, is the one query the API runs.
CREATE INDEX activities_by_group_start ON activities (group_name, start_ms DESC);

-- Per-instance outcome of an activity. instance_id is not a foreign key: an
-- activity outlives the instance rows it mentions.
CREATE TABLE activity_instances (
  activity_id  TEXT    NOT NULL REFERENCES activities (id)
                         ON DELETE CASCADE ON UPDATE RESTRICT,
  instance_id  TEXT    NOT NULL,
  message      TEXT    NOT NULL,
  ok           INTEGER NOT NULL CHECK (ok IN (0, 1)),
  PRIMARY KEY (activity_id, instance_id)
) STRICT;
)sql";

// Schema v2: idempotency keys for provider calls, and the indexes the
// reconcile-at-start queries need.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE idempotency_keys (
  key           TEXT    PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 256),
  operation     TEXT    NOT NULL CHECK (length(operation) >= 1),
  instance_id   TEXT    REFERENCES instances (id) ON DELETE CASCADE ON UPDATE RESTRICT,
  state         TEXT    NOT NULL CHECK (state IN ('requested', 'completed')),
  result        TEXT    NOT NULL,
  requested_ms  INTEGER NOT NULL,
  completed_ms  INTEGER,
  CHECK ((state = 'completed') = (completed_ms IS NOT NULL))
) STRICT;

CREATE INDEX idempotency_keys_requested ON idempotency_keys (state) WHERE state = 'requested';
CREATE INDEX idempotency_keys_by_instance ON idempotency_keys (instance_id);
CREATE INDEX instances_by_group ON instances (group_name);
CREATE INDEX instances_by_lc ON instances (lc_name, lc_version);
CREATE INDEX scaling_groups_by_lc ON scaling_groups (lc_name, lc_version);
)sql";

// Schema v3: what a group does by itself: scaling policies,
// scheduled actions, lifecycle hooks and notification targets. Each row keeps
// its spec as the admin API's JSON (coordinator/io/json/policy_json.hpp) and
// is validated when read; the few columns outside the JSON are state the
// coordinator updates (a schedule's last fire) or keys.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE scaling_policies (
  group_name  TEXT    NOT NULL REFERENCES scaling_groups (name) ON DELETE CASCADE ON UPDATE RESTRICT,
  name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  kind        TEXT    NOT NULL CHECK (kind IN ('alarm', 'target_tracking')),
  spec_json   TEXT    NOT NULL CHECK (json_valid(spec_json)),
  updated_ms  INTEGER NOT NULL,
  PRIMARY KEY (group_name, name)
) STRICT;

CREATE TABLE scheduled_actions (
  group_name     TEXT    NOT NULL REFERENCES scaling_groups (name) ON DELETE CASCADE ON UPDATE RESTRICT,
  name           TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  spec_json      TEXT    NOT NULL CHECK (json_valid(spec_json)),
  last_fired_ms  INTEGER,
  updated_ms     INTEGER NOT NULL,
  PRIMARY KEY (group_name, name)
) STRICT;

CREATE TABLE lifecycle_hooks (
  group_name  TEXT    NOT NULL REFERENCES scaling_groups (name) ON DELETE CASCADE ON UPDATE RESTRICT,
  name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  spec_json   TEXT    NOT NULL CHECK (json_valid(spec_json)),
  updated_ms  INTEGER NOT NULL,
  PRIMARY KEY (group_name, name)
) STRICT;

CREATE TABLE notification_targets (
  group_name  TEXT    NOT NULL REFERENCES scaling_groups (name) ON DELETE CASCADE ON UPDATE RESTRICT,
  name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  spec_json   TEXT    NOT NULL CHECK (json_valid(spec_json)),
  updated_ms  INTEGER NOT NULL,
  PRIMARY KEY (group_name, name)
) STRICT;
)sql";

// Schema v4: a launch configuration sets the agent's readiness probe period
// (0 = the agent's default). Rows written before keep the default.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE launch_configurations
  ADD COLUMN agent_readiness_period_ms INTEGER NOT NULL DEFAULT 0
  CHECK (agent_readiness_period_ms = 0 OR agent_readiness_period_ms BETWEEN 10 AND 60000);
)sql";

// Schema v5: a launch configuration names files to read secret environment
// values from at launch (the paths only; the values are never stored).
constexpr const char* kSchemaV5 = R"sql(
ALTER TABLE launch_configurations
  ADD COLUMN env_files_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(env_files_json));
)sql";

// Schema v6: rollouts. Each row keeps the rollout record as the admin API's
// JSON (coordinator/io/json/rollout_json.hpp), read back and checked when
// loaded; the columns beside it are what the store lists by. A group's
// rollouts go with it.
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE rollouts (
  id          TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  group_name  TEXT    NOT NULL REFERENCES scaling_groups (name) ON DELETE CASCADE ON UPDATE RESTRICT,
  state       TEXT    NOT NULL,
  record      TEXT    NOT NULL CHECK (json_valid(record)),
  created_ms  INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL
) STRICT;

CREATE INDEX rollouts_by_group_created ON rollouts (group_name, created_ms DESC);
)sql";

// Schema v7: per-group history (docs/api.md, "History"), one row per group
// and sample (every 10 s) and one per group and minute (its samples
// downsampled), both pruned past the retention. Keyed by (group, time) so
// that a group's range is one index range; a group's history goes with it.
// `metrics` is text, "name=value" pairs separated by spaces, a value that
// averages several samples written "name=mean/samples" (store_history.cpp):
// it is read for every row of a chart, and this parses several times faster
// than JSON.
constexpr const char* kSchemaV7 = R"sql(
CREATE TABLE group_history (
  group_name  TEXT    NOT NULL REFERENCES scaling_groups (name) ON DELETE CASCADE ON UPDATE RESTRICT,
  t_ms        INTEGER NOT NULL,
  min_size    INTEGER NOT NULL CHECK (min_size >= 0),
  max_size    INTEGER NOT NULL CHECK (max_size >= 0),
  desired     INTEGER NOT NULL CHECK (desired >= 0),
  in_service  INTEGER NOT NULL CHECK (in_service >= 0),
  pending     INTEGER NOT NULL CHECK (pending >= 0),
  healthy     INTEGER NOT NULL CHECK (healthy >= 0),
  in_lb       INTEGER NOT NULL CHECK (in_lb >= 0),
  metrics     TEXT    NOT NULL,
  PRIMARY KEY (group_name, t_ms)
) STRICT, WITHOUT ROWID;

CREATE TABLE group_history_minutes (
  group_name  TEXT    NOT NULL REFERENCES scaling_groups (name) ON DELETE CASCADE ON UPDATE RESTRICT,
  t_ms        INTEGER NOT NULL CHECK (t_ms % 60000 = 0),
  min_size    INTEGER NOT NULL CHECK (min_size >= 0),
  max_size    INTEGER NOT NULL CHECK (max_size >= 0),
  desired     INTEGER NOT NULL CHECK (desired >= 0),
  in_service  INTEGER NOT NULL CHECK (in_service >= 0),
  pending     INTEGER NOT NULL CHECK (pending >= 0),
  healthy     INTEGER NOT NULL CHECK (healthy >= 0),
  in_lb       INTEGER NOT NULL CHECK (in_lb >= 0),
  metrics     TEXT    NOT NULL,
  PRIMARY KEY (group_name, t_ms)
) STRICT, WITHOUT ROWID;
)sql";

constexpr std::array kMigrations{
    Migration{1, "launch configurations, scaling groups, instances, activities", kSchemaV1},
    Migration{2, "idempotency keys for provider calls; lookup indexes", kSchemaV2},
    Migration{3, "scaling policies, scheduled actions, lifecycle hooks, notification targets", kSchemaV3},
    Migration{4, "launch configurations: agent readiness probe period", kSchemaV4},
    Migration{5, "launch configurations: environment values read from files", kSchemaV5},
    Migration{6, "rollouts", kSchemaV6},
    Migration{7, "per-group history: samples and minute rollups", kSchemaV7},
};

}  // namespace

std::span<const Migration> migrations() {
  return kMigrations;
}

std::int64_t latest_schema_version() {
  return kMigrations.back().version;
}

Result<std::int64_t> schema_version(Database& db) {
  return db.query_int("read schema version", "PRAGMA user_version");
}

Result<std::int64_t> migrate(Database& db, std::int64_t target_version) {
  const std::int64_t latest = latest_schema_version();
  if (target_version > latest) target_version = latest;
  auto refuse_newer = [&](std::int64_t found) {
    return store_error(StoreError::Kind::NewerSchema,
                       "open " + db.path() + ": schema version " + std::to_string(found) +
                           " is newer than this tide understands (" + std::to_string(latest) +
                           "); refusing to open it — run a newer tide-coordinator");
  };
  auto current = schema_version(db);
  if (!current) return current;
  if (*current > latest) return refuse_newer(*current);

  for (const Migration& migration : kMigrations) {
    if (migration.version <= *current || migration.version > target_version) continue;
    const std::string operation =
        "migrate " + db.path() + " to schema version " + std::to_string(migration.version);
    auto tx = Transaction::begin(db, operation);
    if (!tx) return tl::unexpected(tx.error());
    // Another process may have migrated while we waited for the write lock.
    auto now = schema_version(db);
    if (!now) return now;
    if (*now > latest) return refuse_newer(*now);
    if (*now >= migration.version) {
      *current = *now;
      continue;
    }
    if (auto r = db.exec(operation, migration.sql); !r) return tl::unexpected(r.error());
    if (auto r = db.exec(operation, "PRAGMA user_version = " + std::to_string(migration.version));
        !r) {
      return tl::unexpected(r.error());
    }
    if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
    *current = migration.version;
  }
  return *current;
}

}  // namespace tide::coordinator::store
