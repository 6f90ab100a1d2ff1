#include "coordinator/io/store/store.hpp"

#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "coordinator/io/json/rollout_json.hpp"
#include "coordinator/io/store/migrations.hpp"

namespace tide::coordinator::store {

std::string_view to_string(ProviderCallState state) {
  switch (state) {
    case ProviderCallState::Requested:
      return "requested";
    case ProviderCallState::Completed:
      return "completed";
  }
  return "requested";
}

namespace {

using Kind = StoreError::Kind;

std::string op(std::string_view action, std::string_view subject) {
  std::string text(action);
  text += ' ';
  text += subject;
  return text;
}

std::string op(std::string_view action, std::string_view subject, std::uint32_t version) {
  return op(action, subject) + " v" + std::to_string(version);
}

std::int64_t i64(std::uint32_t value) {
  return static_cast<std::int64_t>(value);
}
std::int64_t i64(std::uint16_t value) {
  return static_cast<std::int64_t>(value);
}
std::int64_t i64(bool value) {
  return value ? 1 : 0;
}

// Reads one row and remembers the first unreadable column: a corrupt or
// hand-edited row becomes an Invalid error, never a crash or a silent 0.
class RowReader {
 public:
  RowReader(const Statement& statement, std::string operation)
      : m_statement(statement), m_operation(std::move(operation)) {}

  std::int64_t i64(int column) const { return m_statement.column_int(column); }
  double real(int column) const { return m_statement.column_double(column); }
  std::string text(int column) const { return m_statement.column_text(column); }
  bool null(int column) const { return m_statement.column_is_null(column); }
  bool boolean(int column) const { return m_statement.column_int(column) != 0; }

  std::uint32_t u32(int column, const char* field) {
    const std::int64_t value = m_statement.column_int(column);
    if (value < 0 || value > std::numeric_limits<std::uint32_t>::max()) {
      fail(std::string(field) + " out of range: " + std::to_string(value));
      return 0;
    }
    return static_cast<std::uint32_t>(value);
  }
  std::uint16_t u16(int column, const char* field) {
    const std::int64_t value = m_statement.column_int(column);
    if (value < 0 || value > std::numeric_limits<std::uint16_t>::max()) {
      fail(std::string(field) + " out of range: " + std::to_string(value));
      return 0;
    }
    return static_cast<std::uint16_t>(value);
  }
  template <class E>
  E enumeration(int column, const char* field, E fallback) {
    const std::string spelling = m_statement.column_text(column);
    auto value = from_string<E>(spelling);
    if (!value) {
      fail(std::string("unknown ") + field + " '" + spelling + "'");
      return fallback;
    }
    return *value;
  }
  void fail(std::string detail) {
    if (!m_error)
      m_error = StoreError{Kind::Invalid, m_operation + ": unreadable row: " + detail, 0};
  }
  [[nodiscard]] const std::optional<StoreError>& error() const { return m_error; }

 private:
  const Statement& m_statement;
  std::string m_operation;
  std::optional<StoreError> m_error;
};

// ---- launch configurations -----------------------------------------------------

constexpr const char* kLcColumns =
    "name, version, command, port, env_json, agent_readiness_path, agent_report_interval_ms, "
    "hourly_price, created_ms, agent_readiness_period_ms, env_files_json";

// A map of strings as a JSON object; invalid UTF-8 is replaced instead of
// throwing (the values come from users).
std::string string_map_json(const std::map<std::string, std::string>& map) {
  const nlohmann::json object(map);
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Reads a column written by string_map_json; a malformed one fails the row.
void read_string_map(RowReader& row, int column, const char* field, std::map<std::string, std::string>& out) {
  const auto parsed = nlohmann::json::parse(row.text(column), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    row.fail(std::string(field) + " is not a JSON object");
    return;
  }
  for (const auto& [key, value] : parsed.items()) {
    if (!value.is_string()) {
      row.fail(std::string(field) + " value of '" + key + "' is not a string");
      return;
    }
    out.emplace(key, value.get<std::string>());
  }
}

void bind_launch_configuration(Statement& s, const LaunchConfiguration& c) {
  const std::string env = string_map_json(c.env);
  const std::string env_files = string_map_json(c.env_files);
  s.bind(1, std::string_view(c.id));
  s.bind(2, i64(c.version));
  s.bind(3, std::string_view(c.command));
  s.bind(4, i64(c.port));
  s.bind(5, std::string_view(env));
  s.bind(6, std::string_view(c.agent.readiness_path));
  s.bind(7, i64(c.agent.report_interval_ms));
  s.bind(8, c.hourly_price);
  s.bind(9, c.created_ms);
  s.bind(10, i64(c.agent.readiness_period_ms));
  s.bind(11, std::string_view(env_files));
}

Result<LaunchConfiguration> read_launch_configuration(const Statement& s,
                                                      const std::string& operation) {
  RowReader row(s, operation);
  LaunchConfiguration c;
  c.id = row.text(0);
  c.version = row.u32(1, "version");
  c.command = row.text(2);
  c.port = row.u16(3, "port");
  read_string_map(row, 4, "env_json", c.env);
  c.agent.readiness_path = row.text(5);
  c.agent.report_interval_ms = row.u32(6, "agent_report_interval_ms");
  c.hourly_price = row.real(7);
  c.created_ms = row.i64(8);
  c.agent.readiness_period_ms = row.u32(9, "agent_readiness_period_ms");
  read_string_map(row, 10, "env_files_json", c.env_files);
  if (row.error()) return tl::unexpected(*row.error());
  return c;
}

// ---- scaling groups ---------------------------------------------------------------

constexpr const char* kGroupColumns =
    "name, min_size, max_size, desired, lc_name, lc_version, termination_policy, lb_backend, "
    "lb_port, "
    "health_check_grace_period_ms, default_cooldown_ms, boot_timeout_ms, drain_timeout_ms, "
    "warmup_ms, "
    "retry_immediate, retry_initial_backoff_ms, retry_multiplier, retry_max_backoff_ms, "
    "fail_static_share, replacement_rate, liveness_window_ms, enabled, created_ms, updated_ms";

void bind_group(Statement& s, const ScalingGroup& g) {
  s.bind(1, std::string_view(g.name));
  s.bind(2, i64(g.min));
  s.bind(3, i64(g.max));
  s.bind(4, i64(g.desired));
  s.bind(5, std::string_view(g.launch_configuration_id));
  s.bind(6, i64(g.launch_configuration_version));
  s.bind(7, to_string(g.termination_policy));
  s.bind(8, std::string_view(g.lb.backend));
  s.bind(9, i64(g.lb.port));
  s.bind(10, g.health_check_grace_period_ms);
  s.bind(11, g.default_cooldown_ms);
  s.bind(12, g.boot_timeout_ms);
  s.bind(13, g.drain_timeout_ms);
  s.bind(14, g.warmup_ms);
  s.bind(15, i64(g.retry.immediate_retries));
  s.bind(16, g.retry.initial_backoff_ms);
  s.bind(17, g.retry.multiplier);
  s.bind(18, g.retry.max_backoff_ms);
  s.bind(19, g.fail_static_share);
  s.bind(20, g.replacement_rate);
  s.bind(21, g.liveness_window_ms);
  s.bind(22, i64(g.enabled));
  s.bind(23, g.created_ms);
  s.bind(24, g.updated_ms);
}

Result<ScalingGroup> read_group(const Statement& s, const std::string& operation) {
  RowReader row(s, operation);
  ScalingGroup g;
  g.name = row.text(0);
  g.min = row.u32(1, "min_size");
  g.max = row.u32(2, "max_size");
  g.desired = row.u32(3, "desired");
  g.launch_configuration_id = row.text(4);
  g.launch_configuration_version = row.u32(5, "lc_version");
  g.termination_policy = row.enumeration<TerminationPolicy>(6, "termination_policy",
                                                            TerminationPolicy::OldestInstance);
  g.lb.backend = row.text(7);
  g.lb.port = row.u16(8, "lb_port");
  g.health_check_grace_period_ms = row.i64(9);
  g.default_cooldown_ms = row.i64(10);
  g.boot_timeout_ms = row.i64(11);
  g.drain_timeout_ms = row.i64(12);
  g.warmup_ms = row.i64(13);
  g.retry.immediate_retries = row.u32(14, "retry_immediate");
  g.retry.initial_backoff_ms = row.i64(15);
  g.retry.multiplier = row.real(16);
  g.retry.max_backoff_ms = row.i64(17);
  g.fail_static_share = row.real(18);
  g.replacement_rate = row.real(19);
  g.liveness_window_ms = row.i64(20);
  g.enabled = row.boolean(21);
  g.created_ms = row.i64(22);
  g.updated_ms = row.i64(23);
  if (row.error()) return tl::unexpected(*row.error());
  return g;
}

// ---- instances ----------------------------------------------------------------------

constexpr const char* kInstanceColumns =
    "id, group_name, origin, state, protected_from_scale_in, health, health_reason, provider_id, "
    "address, port, lc_name, lc_version, enrollment_token_hash, agent_key, idempotency_key, "
    "exit_reason, activity_id, created_ms, launched_ms, state_since_ms, unhealthy_since_ms";

void bind_instance(Statement& s, const Instance& i) {
  s.bind(1, std::string_view(i.id));
  s.bind(2, std::string_view(i.group));
  s.bind(3, to_string(i.origin));
  s.bind(4, to_string(i.state));
  s.bind(5, i64(i.protected_from_scale_in));
  s.bind(6, to_string(i.health));
  s.bind(7, std::string_view(i.health_reason));
  s.bind(8, std::string_view(i.provider_id));
  s.bind(9, std::string_view(i.address));
  s.bind(10, i64(i.port));
  // An instance without a launch configuration (attached) stores NULL, which
  // the foreign key lets through; any other value must name a stored version.
  if (i.launch_configuration_id.empty()) {
    s.bind_null(11);
    s.bind_null(12);
  } else {
    s.bind(11, std::string_view(i.launch_configuration_id));
    s.bind(12, i64(i.launch_configuration_version));
  }
  s.bind(13, std::string_view(i.enrollment_token_hash));
  s.bind(14, std::string_view(i.agent_key));
  s.bind(15, std::string_view(i.idempotency_key));
  s.bind(16, to_string(i.exit_reason));
  s.bind(17, std::string_view(i.activity_id));
  s.bind(18, i.created_ms);
  s.bind(19, i.launched_ms);
  s.bind(20, i.state_since_ms);
  s.bind(21, i.unhealthy_since_ms);
}

Result<Instance> read_instance(const Statement& s, const std::string& operation) {
  RowReader row(s, operation);
  Instance i;
  i.id = row.text(0);
  i.group = row.text(1);
  i.origin = row.enumeration<InstanceOrigin>(2, "origin", InstanceOrigin::Launched);
  i.state = row.enumeration<LifecycleState>(3, "state", LifecycleState::Pending);
  i.protected_from_scale_in = row.boolean(4);
  i.health = row.enumeration<Health>(5, "health", Health::Healthy);
  i.health_reason = row.text(6);
  i.provider_id = row.text(7);
  i.address = row.text(8);
  i.port = row.u16(9, "port");
  if (!row.null(10)) {
    i.launch_configuration_id = row.text(10);
    i.launch_configuration_version = row.u32(11, "lc_version");
  }
  i.enrollment_token_hash = row.text(12);
  i.agent_key = row.text(13);
  i.idempotency_key = row.text(14);
  i.exit_reason = row.enumeration<ExitReason>(15, "exit_reason", ExitReason::None);
  i.activity_id = row.text(16);
  i.created_ms = row.i64(17);
  i.launched_ms = row.i64(18);
  i.state_since_ms = row.i64(19);
  i.unhealthy_since_ms = row.i64(20);
  if (row.error()) return tl::unexpected(*row.error());
  return i;
}

// ---- idempotency keys -----------------------------------------------------------------

constexpr const char* kCallColumns =
    "key, operation, instance_id, state, result, requested_ms, completed_ms";

std::optional<ProviderCallState> parse_call_state(std::string_view text) {
  if (text == "requested") return ProviderCallState::Requested;
  if (text == "completed") return ProviderCallState::Completed;
  return std::nullopt;
}

Result<IdempotencyRecord> read_call(const Statement& s, const std::string& operation) {
  RowReader row(s, operation);
  IdempotencyRecord r;
  r.key = row.text(0);
  r.operation = row.text(1);
  r.instance_id = row.null(2) ? std::string() : row.text(2);
  const std::string state = row.text(3);
  if (auto parsed = parse_call_state(state)) {
    r.state = *parsed;
  } else {
    row.fail("unknown state '" + state + "'");
  }
  r.result = row.text(4);
  r.requested_ms = row.i64(5);
  if (!row.null(6)) r.completed_ms = row.i64(6);
  if (row.error()) return tl::unexpected(*row.error());
  return r;
}

// ---- activities ---------------------------------------------------------------------

Result<Activity> read_activity(const Statement& s, const std::string& operation) {
  RowReader row(s, operation);
  Activity a;
  a.id = row.text(0);
  a.group = row.text(1);
  a.type = row.enumeration<ActivityType>(2, "type", ActivityType::ScaleOut);
  a.cause = row.text(3);
  a.status = row.enumeration<ActivityStatus>(4, "status", ActivityStatus::Running);
  a.start_ms = row.i64(5);
  if (!row.null(6)) a.end_ms = row.i64(6);
  if (row.error()) return tl::unexpected(*row.error());
  return a;
}

Result<void> invalid(const std::string& operation, const ModelError& error) {
  return store_error(Kind::Invalid, operation + ": " + error.message);
}

// Runs a statement that must change exactly one row.
Result<void> run_one(Database& db, const std::string& operation, Statement& s) {
  if (auto r = db.run(operation, s); !r) return r;
  if (db.changes() == 0) return store_error(Kind::NotFound, operation + ": no such row");
  return {};
}

}  // namespace

// ---- open -----------------------------------------------------------------------------

Result<Store> Store::open(const std::string& path, const OpenOptions& options) {
  auto db = Database::open(path, options);
  if (!db) return tl::unexpected(db.error());
  auto version = migrate(*db);
  if (!version) return tl::unexpected(version.error());
  return Store(std::move(*db), *version, options);
}

Result<void> Store::checkpoint() {
  return m_db.exec("checkpoint " + m_db.path(), "PRAGMA wal_checkpoint(PASSIVE)");
}

template <class F>
Result<void> Store::durable_transaction(const std::string& operation, F&& body) {
  // synchronous is switched outside the transaction (SQLite applies it per
  // transaction); inside an enclosing transaction the outer commit decides.
  const bool raise_sync = m_options.sync_before_provider_calls &&
                          m_options.synchronous == Synchronous::Normal && !m_db.in_transaction();
  if (raise_sync) {
    if (auto r = m_db.exec(operation + ": synchronous=FULL", "PRAGMA synchronous=FULL"); !r)
      return r;
  }
  Result<void> result = [&]() -> Result<void> {
    auto tx = Transaction::begin(m_db, operation);
    if (!tx) return tl::unexpected(tx.error());
    if (auto r = body(); !r) return r;
    return tx->commit();
  }();
  if (raise_sync) {
    auto restored = m_db.exec(operation + ": synchronous=NORMAL", "PRAGMA synchronous=NORMAL");
    if (result && !restored) return restored;
  }
  return result;
}

Result<Transaction> Store::begin_transaction(std::string_view operation) {
  return Transaction::begin(m_db, operation);
}

Result<std::string> Store::integrity_check() {
  return m_db.query_text("integrity check " + m_db.path(), "PRAGMA integrity_check");
}

// ---- launch configurations --------------------------------------------------------------

Result<void> Store::insert_launch_configuration(const LaunchConfiguration& config) {
  const std::string operation = op("insert launch configuration", config.id, config.version);
  if (auto v = validate(config); !v) return invalid(operation, v.error());
  static const std::string sql = std::string("INSERT INTO launch_configurations (") + kLcColumns +
                                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  bind_launch_configuration(**s, config);
  return m_db.run(operation, **s);
}

Result<LaunchConfiguration> Store::create_launch_configuration_version(LaunchConfiguration config) {
  const std::string operation = op("create launch configuration version of", config.id);
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  auto s = m_db.prepare(
      operation, "SELECT coalesce(max(version), 0) FROM launch_configurations WHERE name = ?1");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, std::string_view(config.id));
  std::int64_t latest = 0;
  {
    ResetOnExit reset(*s);
    auto row = m_db.step(operation, **s);
    if (!row) return tl::unexpected(row.error());
    latest = (*s)->column_int(0);
  }
  if (latest >= std::numeric_limits<std::uint32_t>::max()) {
    return store_error(Kind::Invalid, operation + ": version space exhausted");
  }
  config.version = static_cast<std::uint32_t>(latest + 1);
  if (auto r = insert_launch_configuration(config); !r) return tl::unexpected(r.error());
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return config;
}

Result<bool> Store::launch_configuration_in_use(std::string_view id, std::uint32_t version) {
  const std::string operation = op("check use of launch configuration", id, version);
  auto s = m_db.prepare(
      operation,
      "SELECT EXISTS (SELECT 1 FROM scaling_groups WHERE lc_name = ?1 AND lc_version = ?2)"
      " OR EXISTS (SELECT 1 FROM instances WHERE lc_name = ?1 AND lc_version = ?2)");
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, id);
  (*s)->bind(2, i64(version));
  auto row = m_db.step(operation, **s);
  if (!row) return tl::unexpected(row.error());
  return (*s)->column_int(0) != 0;
}

Result<void> Store::update_launch_configuration(const LaunchConfiguration& config) {
  const std::string operation = op("update launch configuration", config.id, config.version);
  if (auto v = validate(config); !v) return invalid(operation, v.error());
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  auto used = launch_configuration_in_use(config.id, config.version);
  if (!used) return tl::unexpected(used.error());
  if (*used) {
    return store_error(Kind::InUse, operation +
                                        ": it is used by a group or an instance and is immutable; "
                                        "create a new version instead");
  }
  static const std::string sql =
      "UPDATE launch_configurations SET command = ?3, port = ?4, env_json = ?5, "
      "agent_readiness_path = ?6, agent_report_interval_ms = ?7, hourly_price = ?8, created_ms = "
      "?9, agent_readiness_period_ms = ?10, env_files_json = ?11 "
      "WHERE name = ?1 AND version = ?2";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  bind_launch_configuration(**s, config);
  if (auto r = run_one(m_db, operation, **s); !r) return r;
  return tx->commit();
}

Result<LaunchConfiguration> Store::get_launch_configuration(std::string_view id,
                                                            std::uint32_t version) {
  const std::string operation = op("get launch configuration", id, version);
  static const std::string sql = std::string("SELECT ") + kLcColumns +
                                 " FROM launch_configurations WHERE name = ?1 AND version = ?2";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, id);
  (*s)->bind(2, i64(version));
  auto row = m_db.step(operation, **s);
  if (!row) return tl::unexpected(row.error());
  if (!*row) return store_error(Kind::NotFound, operation + ": no such launch configuration");
  return read_launch_configuration(**s, operation);
}

Result<LaunchConfiguration> Store::get_latest_launch_configuration(std::string_view id) {
  const std::string operation = op("get latest launch configuration", id);
  static const std::string sql =
      std::string("SELECT ") + kLcColumns +
      " FROM launch_configurations WHERE name = ?1 ORDER BY version DESC LIMIT 1";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, id);
  auto row = m_db.step(operation, **s);
  if (!row) return tl::unexpected(row.error());
  if (!*row) return store_error(Kind::NotFound, operation + ": no such launch configuration");
  return read_launch_configuration(**s, operation);
}

Result<std::vector<LaunchConfiguration>> Store::list_launch_configurations() {
  const std::string operation = "list launch configurations";
  static const std::string sql =
      std::string("SELECT ") + kLcColumns + " FROM launch_configurations ORDER BY name, version";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  std::vector<LaunchConfiguration> out;
  for (;;) {
    auto row = m_db.step(operation, **s);
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    auto config = read_launch_configuration(**s, operation);
    if (!config) return tl::unexpected(config.error());
    out.push_back(std::move(*config));
  }
  return out;
}

Result<void> Store::delete_launch_configuration(std::string_view id, std::uint32_t version) {
  const std::string operation = op("delete launch configuration", id, version);
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  auto used = launch_configuration_in_use(id, version);
  if (!used) return tl::unexpected(used.error());
  if (*used) {
    return store_error(Kind::InUse, operation + ": still used by a group or an instance");
  }
  auto s =
      m_db.prepare(operation, "DELETE FROM launch_configurations WHERE name = ?1 AND version = ?2");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, id);
  (*s)->bind(2, i64(version));
  if (auto r = run_one(m_db, operation, **s); !r) return r;
  return tx->commit();
}

// ---- scaling groups ----------------------------------------------------------------------

Result<void> Store::insert_group(const ScalingGroup& group) {
  const std::string operation = op("insert group", group.name);
  if (auto v = validate(group); !v) return invalid(operation, v.error());
  static const std::string sql =
      std::string("INSERT INTO scaling_groups (") + kGroupColumns +
      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
      "?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  bind_group(**s, group);
  return m_db.run(operation, **s);
}

Result<void> Store::update_group(const ScalingGroup& group) {
  const std::string operation = op("update group", group.name);
  if (auto v = validate(group); !v) return invalid(operation, v.error());
  // created_ms (?23) is kept as first written.
  static const std::string sql =
      "UPDATE scaling_groups SET min_size = ?2, max_size = ?3, desired = ?4, lc_name = ?5, "
      "lc_version = ?6, termination_policy = ?7, lb_backend = ?8, lb_port = ?9, "
      "health_check_grace_period_ms = ?10, default_cooldown_ms = ?11, boot_timeout_ms = ?12, "
      "drain_timeout_ms = ?13, warmup_ms = ?14, retry_immediate = ?15, retry_initial_backoff_ms = "
      "?16, "
      "retry_multiplier = ?17, retry_max_backoff_ms = ?18, fail_static_share = ?19, "
      "replacement_rate = ?20, liveness_window_ms = ?21, enabled = ?22, updated_ms = ?24 "
      "WHERE name = ?1";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  bind_group(**s, group);
  return run_one(m_db, operation, **s);
}

Result<ScalingGroup> Store::get_group(std::string_view name) {
  const std::string operation = op("get group", name);
  static const std::string sql =
      std::string("SELECT ") + kGroupColumns + " FROM scaling_groups WHERE name = ?1";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, name);
  auto row = m_db.step(operation, **s);
  if (!row) return tl::unexpected(row.error());
  if (!*row) return store_error(Kind::NotFound, operation + ": no such group");
  return read_group(**s, operation);
}

Result<std::vector<ScalingGroup>> Store::list_groups() {
  const std::string operation = "list groups";
  static const std::string sql =
      std::string("SELECT ") + kGroupColumns + " FROM scaling_groups ORDER BY name";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  std::vector<ScalingGroup> out;
  for (;;) {
    auto row = m_db.step(operation, **s);
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    auto group = read_group(**s, operation);
    if (!group) return tl::unexpected(group.error());
    out.push_back(std::move(*group));
  }
  return out;
}

Result<void> Store::delete_group(std::string_view name) {
  const std::string operation = op("delete group", name);
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  auto live = m_db.prepare(operation,
                           "SELECT count(*) FROM instances WHERE group_name = ?1 "
                           "AND state NOT IN (?2, ?3, ?4)");
  if (!live) return tl::unexpected(live.error());
  std::int64_t alive = 0;
  {
    ResetOnExit reset(*live);
    (*live)->bind(1, name);
    (*live)->bind(2, to_string(LifecycleState::Terminated));
    (*live)->bind(3, to_string(LifecycleState::LaunchFailed));
    (*live)->bind(4, to_string(LifecycleState::Detached));
    auto row = m_db.step(operation, **live);
    if (!row) return tl::unexpected(row.error());
    alive = (*live)->column_int(0);
  }
  if (alive > 0) {
    return store_error(Kind::InUse,
                       operation + ": " + std::to_string(alive) +
                           " instance(s) still belong to it; terminate or detach them first");
  }
  auto purge = m_db.prepare(operation, "DELETE FROM instances WHERE group_name = ?1");
  if (!purge) return tl::unexpected(purge.error());
  (*purge)->bind(1, name);
  if (auto r = m_db.run(operation, **purge); !r) return r;
  auto s = m_db.prepare(operation, "DELETE FROM scaling_groups WHERE name = ?1");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, name);
  if (auto r = run_one(m_db, operation, **s); !r) return r;
  return tx->commit();
}

// ---- instances --------------------------------------------------------------------------

Result<void> Store::upsert_instance(const Instance& instance) {
  const std::string operation = op("upsert instance", instance.id);
  static const std::string sql =
      std::string("INSERT INTO instances (") + kInstanceColumns +
      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
      "?19, "
      "?20, ?21) ON CONFLICT (id) DO UPDATE SET group_name = excluded.group_name, "
      "origin = excluded.origin, state = excluded.state, "
      "protected_from_scale_in = excluded.protected_from_scale_in, health = excluded.health, "
      "health_reason = excluded.health_reason, provider_id = excluded.provider_id, "
      "address = excluded.address, port = excluded.port, lc_name = excluded.lc_name, "
      "lc_version = excluded.lc_version, enrollment_token_hash = excluded.enrollment_token_hash, "
      "agent_key = excluded.agent_key, idempotency_key = excluded.idempotency_key, "
      "exit_reason = excluded.exit_reason, activity_id = excluded.activity_id, "
      "created_ms = excluded.created_ms, launched_ms = excluded.launched_ms, "
      "state_since_ms = excluded.state_since_ms, unhealthy_since_ms = excluded.unhealthy_since_ms";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  bind_instance(**s, instance);
  return m_db.run(operation, **s);
}

Result<Instance> Store::get_instance(std::string_view id) {
  const std::string operation = op("get instance", id);
  static const std::string sql =
      std::string("SELECT ") + kInstanceColumns + " FROM instances WHERE id = ?1";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, id);
  auto row = m_db.step(operation, **s);
  if (!row) return tl::unexpected(row.error());
  if (!*row) return store_error(Kind::NotFound, operation + ": no such instance");
  return read_instance(**s, operation);
}

namespace {
Result<std::vector<Instance>> collect_instances(Database& db, Statement& s,
                                                const std::string& operation) {
  ResetOnExit reset(&s);
  std::vector<Instance> out;
  for (;;) {
    auto row = db.step(operation, s);
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    auto instance = read_instance(s, operation);
    if (!instance) return tl::unexpected(instance.error());
    out.push_back(std::move(*instance));
  }
  return out;
}
}  // namespace

Result<std::vector<Instance>> Store::list_instances() {
  const std::string operation = "list instances";
  static const std::string sql =
      std::string("SELECT ") + kInstanceColumns + " FROM instances ORDER BY id";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  return collect_instances(m_db, **s, operation);
}

Result<std::vector<Instance>> Store::list_instances(std::string_view group) {
  const std::string operation = op("list instances of group", group);
  static const std::string sql = std::string("SELECT ") + kInstanceColumns +
                                 " FROM instances WHERE group_name = ?1 ORDER BY id";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, group);
  return collect_instances(m_db, **s, operation);
}

Result<void> Store::delete_instance(std::string_view id) {
  const std::string operation = op("delete instance", id);
  auto s = m_db.prepare(operation, "DELETE FROM instances WHERE id = ?1");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, id);
  return run_one(m_db, operation, **s);
}

// ---- provider calls ------------------------------------------------------------------------

Result<void> Store::insert_idempotency_key(const IdempotencyRecord& call) {
  const std::string operation = op("insert idempotency key", call.key);
  static const std::string sql = std::string("INSERT INTO idempotency_keys (") + kCallColumns +
                                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, std::string_view(call.key));
  (*s)->bind(2, std::string_view(call.operation));
  if (call.instance_id.empty()) {
    (*s)->bind_null(3);
  } else {
    (*s)->bind(3, std::string_view(call.instance_id));
  }
  (*s)->bind(4, to_string(call.state));
  (*s)->bind(5, std::string_view(call.result));
  (*s)->bind(6, call.requested_ms);
  (*s)->bind_optional(7, call.completed_ms);
  return m_db.run(operation, **s);
}

Result<void> Store::complete_idempotency_key(std::string_view key, std::string_view result,
                                             TimeMs completed_ms) {
  const std::string operation = op("complete idempotency key", key);
  auto s = m_db.prepare(
      operation,
      "UPDATE idempotency_keys SET state = 'completed', result = ?2, completed_ms = ?3 "
      "WHERE key = ?1");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, key);
  (*s)->bind(2, result);
  (*s)->bind(3, completed_ms);
  return run_one(m_db, operation, **s);
}

Result<IdempotencyRecord> Store::get_idempotency_key(std::string_view key) {
  const std::string operation = op("get idempotency key", key);
  static const std::string sql =
      std::string("SELECT ") + kCallColumns + " FROM idempotency_keys WHERE key = ?1";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, key);
  auto row = m_db.step(operation, **s);
  if (!row) return tl::unexpected(row.error());
  if (!*row) return store_error(Kind::NotFound, operation + ": no such key");
  return read_call(**s, operation);
}

Result<std::vector<IdempotencyRecord>> Store::requested_provider_calls() {
  const std::string operation = "list requested provider calls";
  static const std::string sql =
      std::string("SELECT ") + kCallColumns +
      " FROM idempotency_keys WHERE state = 'requested' ORDER BY requested_ms, key";
  auto s = m_db.prepare(operation, sql.c_str());
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  std::vector<IdempotencyRecord> out;
  for (;;) {
    auto row = m_db.step(operation, **s);
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    auto call = read_call(**s, operation);
    if (!call) return tl::unexpected(call.error());
    out.push_back(std::move(*call));
  }
  return out;
}

Result<void> Store::delete_idempotency_key(std::string_view key) {
  const std::string operation = op("delete idempotency key", key);
  auto s = m_db.prepare(operation, "DELETE FROM idempotency_keys WHERE key = ?1");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, key);
  return run_one(m_db, operation, **s);
}

Result<void> Store::begin_provider_call(const Instance& instance, const IdempotencyRecord& call) {
  const std::string operation = op("begin provider call", call.operation) + " for " + instance.id;
  if (call.state != ProviderCallState::Requested || call.completed_ms) {
    return store_error(Kind::Invalid, operation + ": a new call must be in state requested");
  }
  return durable_transaction(operation, [&]() -> Result<void> {
    if (auto r = upsert_instance(instance); !r) return r;
    return insert_idempotency_key(call);
  });
}

Result<void> Store::begin_provider_calls(const std::vector<ProviderCall>& calls) {
  const std::string operation = "begin " + std::to_string(calls.size()) + " provider calls";
  for (const ProviderCall& c : calls) {
    if (c.call.state != ProviderCallState::Requested || c.call.completed_ms) {
      return store_error(Kind::Invalid,
                         operation + ": key " + c.call.key + " must be in state requested");
    }
  }
  return durable_transaction(operation, [&]() -> Result<void> {
    for (const ProviderCall& c : calls) {
      if (auto r = upsert_instance(c.instance); !r) return r;
      if (auto r = insert_idempotency_key(c.call); !r) return r;
    }
    return {};
  });
}

Result<void> Store::finish_provider_call(const Instance& instance, std::string_view key,
                                         std::string_view result, TimeMs completed_ms) {
  const std::string operation = op("finish provider call", key) + " for " + instance.id;
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  if (auto r = upsert_instance(instance); !r) return r;
  if (auto r = complete_idempotency_key(key, result, completed_ms); !r) return r;
  return tx->commit();
}

// ---- activities ----------------------------------------------------------------------------

Result<void> Store::upsert_activity_instance(std::string_view activity_id,
                                             const ActivityInstance& entry) {
  const std::string operation =
      op("record instance", entry.instance_id) + " in activity " + std::string(activity_id);
  auto s = m_db.prepare(operation,
                        "INSERT INTO activity_instances (activity_id, instance_id, message, ok) "
                        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (activity_id, instance_id) "
                        "DO UPDATE SET message = excluded.message, ok = excluded.ok");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, activity_id);
  (*s)->bind(2, std::string_view(entry.instance_id));
  (*s)->bind(3, std::string_view(entry.message));
  (*s)->bind(4, i64(entry.ok));
  return m_db.run(operation, **s);
}

Result<void> Store::insert_activity(const Activity& activity) {
  const std::string operation = op("insert activity", activity.id);
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  auto s =
      m_db.prepare(operation,
                   "INSERT INTO activities (id, group_name, type, cause, status, start_ms, end_ms) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, std::string_view(activity.id));
  (*s)->bind(2, std::string_view(activity.group));
  (*s)->bind(3, to_string(activity.type));
  (*s)->bind(4, std::string_view(activity.cause));
  (*s)->bind(5, to_string(activity.status));
  (*s)->bind(6, activity.start_ms);
  (*s)->bind_optional(7, activity.end_ms);
  if (auto r = m_db.run(operation, **s); !r) return r;
  for (const ActivityInstance& entry : activity.instances) {
    if (auto r = upsert_activity_instance(activity.id, entry); !r) return r;
  }
  return tx->commit();
}

Result<void> Store::update_activity_status(std::string_view id, ActivityStatus status,
                                           std::optional<TimeMs> end_ms) {
  const std::string operation = op("update activity", id);
  auto s = m_db.prepare(operation, "UPDATE activities SET status = ?2, end_ms = ?3 WHERE id = ?1");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, id);
  (*s)->bind(2, to_string(status));
  (*s)->bind_optional(3, end_ms);
  return run_one(m_db, operation, **s);
}

namespace {
Result<void> load_activity_instances(Database& db, Activity& activity,
                                     const std::string& operation) {
  auto s =
      db.prepare(operation,
                 "SELECT instance_id, message, ok FROM activity_instances WHERE activity_id = ?1 "
                 "ORDER BY rowid");
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, std::string_view(activity.id));
  for (;;) {
    auto row = db.step(operation, **s);
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    activity.instances.push_back(
        ActivityInstance{(*s)->column_text(0), (*s)->column_text(1), (*s)->column_int(2) != 0});
  }
  return {};
}
}  // namespace

Result<Activity> Store::get_activity(std::string_view id) {
  const std::string operation = op("get activity", id);
  Activity activity;
  {
    auto s =
        m_db.prepare(operation,
                     "SELECT id, group_name, type, cause, status, start_ms, end_ms FROM activities "
                     "WHERE id = ?1");
    if (!s) return tl::unexpected(s.error());
    ResetOnExit reset(*s);
    (*s)->bind(1, id);
    auto row = m_db.step(operation, **s);
    if (!row) return tl::unexpected(row.error());
    if (!*row) return store_error(Kind::NotFound, operation + ": no such activity");
    auto read = read_activity(**s, operation);
    if (!read) return tl::unexpected(read.error());
    activity = std::move(*read);
  }
  if (auto r = load_activity_instances(m_db, activity, operation); !r)
    return tl::unexpected(r.error());
  return activity;
}

Result<std::vector<Activity>> Store::list_activities(std::string_view group,
                                                     const ActivityFilter& filter) {
  const std::string operation = op("list activities of group", group);
  if (filter.limit < 1 || filter.limit > 1000) {
    return store_error(Kind::Invalid, operation + ": limit must be 1..1000");
  }
  // One statement for every filter combination: a NULL parameter disables
  // its condition, and the (group_name, start_ms DESC) index serves the order.
  auto s = m_db.prepare(
      operation,
      "SELECT id, group_name, type, cause, status, start_ms, end_ms FROM activities "
      "WHERE group_name = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR type = ?3) "
      "AND (?4 IS NULL OR start_ms >= ?4) AND (?5 IS NULL OR start_ms < ?5) "
      "ORDER BY start_ms DESC, id DESC LIMIT ?6");
  if (!s) return tl::unexpected(s.error());
  std::vector<Activity> out;
  {
    ResetOnExit reset(*s);
    (*s)->bind(1, group);
    (*s)->bind_optional(2, filter.status
                               ? std::optional<std::string_view>(to_string(*filter.status))
                               : std::nullopt);
    (*s)->bind_optional(
        3, filter.type ? std::optional<std::string_view>(to_string(*filter.type)) : std::nullopt);
    (*s)->bind_optional(4, filter.since_ms);
    (*s)->bind_optional(5, filter.until_ms);
    (*s)->bind(6, i64(filter.limit));
    for (;;) {
      auto row = m_db.step(operation, **s);
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      auto activity = read_activity(**s, operation);
      if (!activity) return tl::unexpected(activity.error());
      out.push_back(std::move(*activity));
    }
  }
  for (Activity& activity : out) {
    if (auto r = load_activity_instances(m_db, activity, operation); !r)
      return tl::unexpected(r.error());
  }
  return out;
}

// ---- rollouts ----------------------------------------------------------------------

namespace {

// Reads a rollouts row (id, group_name, state, record): the record must read
// back (rollout_from_json) and agree with the columns the store lists by.
Result<Rollout> read_rollout(const Statement& s, const std::string& operation) {
  const std::string id = s.column_text(0);
  const auto unreadable = [&](const std::string& detail) {
    return store_error(Kind::Invalid, operation + ": unreadable rollout " + id + ": " + detail);
  };
  const auto record = nlohmann::json::parse(s.column_text(3), nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded()) return unreadable("the record is not JSON");
  auto rollout = rollout_from_json(record);
  if (!rollout) return unreadable(rollout.error());
  if (rollout->id != id || rollout->group != s.column_text(1) || to_string(rollout->state) != s.column_text(2)) {
    return unreadable("the record's id, group or state differs from its row");
  }
  return std::move(*rollout);
}

Result<std::vector<Rollout>> read_rollouts(Database& db, const std::string& operation, Statement* s) {
  ResetOnExit reset(s);
  std::vector<Rollout> out;
  for (;;) {
    auto row = db.step(operation, *s);
    if (!row) return tl::unexpected(row.error());
    if (!*row) return out;
    auto rollout = read_rollout(*s, operation);
    if (!rollout) return tl::unexpected(rollout.error());
    out.push_back(std::move(*rollout));
  }
}

// The spellings of the terminal states (is_terminal) as a JSON array, for
// SQLite's json_each().
std::string terminal_rollout_states() {
  nlohmann::json names = nlohmann::json::array();
  for (const RolloutState state : rollout_states()) {
    if (is_terminal(state)) names.push_back(to_string(state));
  }
  return names.dump();
}

}  // namespace

Result<void> Store::put_rollout(const Rollout& rollout) {
  const std::string operation = op("put rollout", rollout.id);
  const nlohmann::json record = to_json(rollout);
  // What is written must read back: the same check list_rollouts() makes.
  if (auto readable = rollout_from_json(record); !readable) {
    return store_error(Kind::Invalid, operation + ": " + readable.error());
  }
  const std::string text = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto s = m_db.prepare(operation,
                        "INSERT INTO rollouts (id, group_name, state, record, created_ms, updated_ms) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET "
                        "group_name = excluded.group_name, state = excluded.state, record = excluded.record, "
                        "created_ms = excluded.created_ms, updated_ms = excluded.updated_ms");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, std::string_view(rollout.id));
  (*s)->bind(2, std::string_view(rollout.group));
  (*s)->bind(3, to_string(rollout.state));
  (*s)->bind(4, std::string_view(text));
  (*s)->bind(5, rollout.created_ms);
  (*s)->bind(6, rollout.updated_ms);
  return m_db.run(operation, **s);
}

Result<std::vector<Rollout>> Store::list_rollouts(std::string_view group, std::size_t limit) {
  const std::string operation = op("list rollouts of group", group);
  if (limit < 1 || limit > 1000) return store_error(Kind::Invalid, operation + ": limit must be 1..1000");
  auto s = m_db.prepare(operation,
                        "SELECT id, group_name, state, record FROM rollouts WHERE group_name = ?1 "
                        "ORDER BY created_ms DESC, id DESC LIMIT ?2");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, group);
  (*s)->bind(2, static_cast<std::int64_t>(limit));
  return read_rollouts(m_db, operation, *s);
}

Result<std::vector<Rollout>> Store::active_rollouts() {
  const std::string operation = "list active rollouts";
  static const std::string terminal = terminal_rollout_states();
  auto s = m_db.prepare(operation,
                        "SELECT id, group_name, state, record FROM rollouts "
                        "WHERE state NOT IN (SELECT value FROM json_each(?1)) ORDER BY created_ms, id");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, std::string_view(terminal));
  return read_rollouts(m_db, operation, *s);
}

}  // namespace tide::coordinator::store
