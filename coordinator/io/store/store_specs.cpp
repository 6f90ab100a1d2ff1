// Store: group specs (schema v3) — scaling policies, scheduled actions,
// lifecycle hooks and notification targets, kept as the API's JSON.
#include <array>

#include <nlohmann/json.hpp>

#include "coordinator/io/store/store.hpp"

namespace tide::coordinator::store {

namespace {

using Kind = StoreError::Kind;

// prepare() caches statements by the SQL literal's address, so each kind has
// its own literals.
struct SpecSql {
  const char* table_label;
  const char* upsert;
  const char* remove;
  const char* list;
};

constexpr SpecSql kPolicySql{
    "policy",
    "INSERT INTO scaling_policies (group_name, name, kind, spec_json, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (group_name, name) DO UPDATE SET kind = excluded.kind, spec_json = excluded.spec_json, "
    "updated_ms = excluded.updated_ms",
    "DELETE FROM scaling_policies WHERE group_name = ?1 AND name = ?2",
    "SELECT group_name, spec_json FROM scaling_policies ORDER BY group_name, name"};
constexpr SpecSql kScheduleSql{
    "scheduled action",
    "INSERT INTO scheduled_actions (group_name, name, spec_json, last_fired_ms, updated_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (group_name, name) DO UPDATE SET spec_json = excluded.spec_json, "
    "last_fired_ms = excluded.last_fired_ms, updated_ms = excluded.updated_ms",
    "DELETE FROM scheduled_actions WHERE group_name = ?1 AND name = ?2",
    "SELECT group_name, spec_json, last_fired_ms FROM scheduled_actions ORDER BY group_name, name"};
constexpr SpecSql kHookSql{
    "lifecycle hook",
    "INSERT INTO lifecycle_hooks (group_name, name, spec_json, updated_ms) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (group_name, name) DO UPDATE SET spec_json = excluded.spec_json, updated_ms = excluded.updated_ms",
    "DELETE FROM lifecycle_hooks WHERE group_name = ?1 AND name = ?2",
    "SELECT group_name, spec_json FROM lifecycle_hooks ORDER BY group_name, name"};
constexpr SpecSql kNotificationSql{
    "notification target",
    "INSERT INTO notification_targets (group_name, name, spec_json, updated_ms) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (group_name, name) DO UPDATE SET spec_json = excluded.spec_json, "
    "updated_ms = excluded.updated_ms",
    "DELETE FROM notification_targets WHERE group_name = ?1 AND name = ?2",
    "SELECT group_name, spec_json FROM notification_targets ORDER BY group_name, name"};

const SpecSql& sql_for(SpecKind kind) {
  switch (kind) {
    case SpecKind::Policy: return kPolicySql;
    case SpecKind::ScheduledAction: return kScheduleSql;
    case SpecKind::LifecycleHook: return kHookSql;
    case SpecKind::NotificationTarget: return kNotificationSql;
  }
  return kPolicySql;
}

std::string op(std::string_view action, SpecKind kind, std::string_view group, std::string_view name) {
  std::string text(action);
  text += ' ';
  text += to_string(kind);
  text += ' ';
  text += group;
  text += '/';
  text += name;
  return text;
}

Result<void> refuse_invalid(const std::string& operation, const std::string& message) {
  return store_error(Kind::Invalid, operation + ": " + message);
}

// NotFound with a clear message when the group is missing, instead of the
// foreign key's "FOREIGN KEY constraint failed".
Result<void> require_group(Database& db, const std::string& operation, std::string_view group) {
  auto s = db.prepare(operation, "SELECT 1 FROM scaling_groups WHERE name = ?1");
  if (!s) return tl::unexpected(s.error());
  ResetOnExit reset(*s);
  (*s)->bind(1, group);
  auto row = db.step(operation, **s);
  if (!row) return tl::unexpected(row.error());
  if (!*row) return store_error(Kind::NotFound, operation + ": group " + std::string(group) + " does not exist");
  return {};
}

// Parses a stored spec; a row that no longer parses is Invalid (never a crash).
template <class T, class Parse>
Result<T> read_spec(const std::string& operation, const std::string& group, const std::string& text, Parse parse) {
  nlohmann::json body = nlohmann::json::parse(text, nullptr, false);
  if (body.is_discarded()) return store_error(Kind::Invalid, operation + ": stored JSON does not parse");
  auto spec = parse(body, group);
  if (!spec) {
    return store_error(Kind::Invalid, operation + ": stored spec is invalid: " + spec.error().field + " " +
                                          spec.error().message);
  }
  return std::move(*spec);
}

}  // namespace

std::string_view to_string(SpecKind kind) {
  switch (kind) {
    case SpecKind::Policy: return "policy";
    case SpecKind::ScheduledAction: return "scheduled action";
    case SpecKind::LifecycleHook: return "lifecycle hook";
    case SpecKind::NotificationTarget: return "notification target";
  }
  return "spec";
}

Result<void> Store::put_policy(const ScalingPolicy& policy, TimeMs now_ms) {
  const std::string& group = policy_group(policy);
  const std::string operation = op("put", SpecKind::Policy, group, policy_name(policy));
  const auto valid = std::visit([](const auto& p) { return validate(p); }, policy);
  if (!valid) return refuse_invalid(operation, valid.error().message);
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  if (auto r = require_group(m_db, operation, group); !r) return r;
  auto s = m_db.prepare(operation, kPolicySql.upsert);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, group);
  (*s)->bind(2, policy_name(policy));
  (*s)->bind(3, std::holds_alternative<AlarmPolicy>(policy) ? "alarm" : "target_tracking");
  (*s)->bind(4, to_json(policy).dump());
  (*s)->bind(5, now_ms);
  if (auto r = m_db.run(operation, **s); !r) return r;
  return tx->commit();
}

Result<void> Store::put_scheduled_action(const ScheduledAction& action, TimeMs now_ms) {
  const std::string operation = op("put", SpecKind::ScheduledAction, action.group, action.name);
  if (auto v = validate(action); !v) return refuse_invalid(operation, v.error().message);
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  if (auto r = require_group(m_db, operation, action.group); !r) return r;
  auto s = m_db.prepare(operation, kScheduleSql.upsert);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, action.group);
  (*s)->bind(2, action.name);
  (*s)->bind(3, to_json(action).dump());
  (*s)->bind_optional(4, action.last_fired_ms ? std::optional<std::int64_t>(*action.last_fired_ms) : std::nullopt);
  (*s)->bind(5, now_ms);
  if (auto r = m_db.run(operation, **s); !r) return r;
  return tx->commit();
}

Result<void> Store::put_lifecycle_hook(const LifecycleHook& hook, TimeMs now_ms) {
  const std::string operation = op("put", SpecKind::LifecycleHook, hook.group, hook.name);
  if (auto v = validate(hook); !v) return refuse_invalid(operation, v.error().message);
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  if (auto r = require_group(m_db, operation, hook.group); !r) return r;
  auto s = m_db.prepare(operation, kHookSql.upsert);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, hook.group);
  (*s)->bind(2, hook.name);
  (*s)->bind(3, to_json(hook).dump());
  (*s)->bind(4, now_ms);
  if (auto r = m_db.run(operation, **s); !r) return r;
  return tx->commit();
}

Result<void> Store::put_notification_target(const NotificationTarget& target, TimeMs now_ms) {
  const std::string operation = op("put", SpecKind::NotificationTarget, target.group, target.name);
  if (auto v = validate(target); !v) return refuse_invalid(operation, v.error().message);
  auto tx = Transaction::begin(m_db, operation);
  if (!tx) return tl::unexpected(tx.error());
  if (auto r = require_group(m_db, operation, target.group); !r) return r;
  auto s = m_db.prepare(operation, kNotificationSql.upsert);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, target.group);
  (*s)->bind(2, target.name);
  (*s)->bind(3, to_json(target).dump());
  (*s)->bind(4, now_ms);
  if (auto r = m_db.run(operation, **s); !r) return r;
  return tx->commit();
}

Result<void> Store::delete_spec(SpecKind kind, std::string_view group, std::string_view name) {
  const std::string operation = op("delete", kind, group, name);
  auto s = m_db.prepare(operation, sql_for(kind).remove);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, group);
  (*s)->bind(2, name);
  if (auto r = m_db.run(operation, **s); !r) return r;
  if (m_db.changes() == 0) return store_error(Kind::NotFound, operation + ": no such " + std::string(to_string(kind)));
  return {};
}

Result<void> Store::set_schedule_last_fired(std::string_view group, std::string_view name, TimeMs fired_ms) {
  const std::string operation = op("record fire of", SpecKind::ScheduledAction, group, name);
  auto s = m_db.prepare(operation,
                        "UPDATE scheduled_actions SET last_fired_ms = ?3 WHERE group_name = ?1 AND name = ?2");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, group);
  (*s)->bind(2, name);
  (*s)->bind(3, fired_ms);
  if (auto r = m_db.run(operation, **s); !r) return r;
  if (m_db.changes() == 0) return store_error(Kind::NotFound, operation + ": no such scheduled action");
  return {};
}

Result<GroupSpecs> Store::load_specs() {
  GroupSpecs specs;
  // One loop per table; each row's spec is parsed by the API's parser.
  const auto each_row = [this](SpecKind kind, auto&& on_row) -> Result<void> {
    const std::string operation = "load " + std::string(to_string(kind)) + "s";
    auto s = m_db.prepare(operation, sql_for(kind).list);
    if (!s) return tl::unexpected(s.error());
    ResetOnExit reset(*s);
    for (;;) {
      auto row = m_db.step(operation, **s);
      if (!row) return tl::unexpected(row.error());
      if (!*row) return {};
      if (auto r = on_row(operation, **s); !r) return r;
    }
  };
  auto r = each_row(SpecKind::Policy, [&](const std::string& operation, Statement& s) -> Result<void> {
    auto policy = read_spec<ScalingPolicy>(operation, s.column_text(0), s.column_text(1), policy_from_json);
    if (!policy) return tl::unexpected(policy.error());
    specs.policies.push_back(std::move(*policy));
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  r = each_row(SpecKind::ScheduledAction, [&](const std::string& operation, Statement& s) -> Result<void> {
    auto action = read_spec<ScheduledAction>(operation, s.column_text(0), s.column_text(1),
                                             scheduled_action_from_json);
    if (!action) return tl::unexpected(action.error());
    if (!s.column_is_null(2)) action->last_fired_ms = s.column_int(2);
    specs.schedules.push_back(std::move(*action));
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  r = each_row(SpecKind::LifecycleHook, [&](const std::string& operation, Statement& s) -> Result<void> {
    auto hook = read_spec<LifecycleHook>(operation, s.column_text(0), s.column_text(1), lifecycle_hook_from_json);
    if (!hook) return tl::unexpected(hook.error());
    specs.hooks.push_back(std::move(*hook));
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  r = each_row(SpecKind::NotificationTarget, [&](const std::string& operation, Statement& s) -> Result<void> {
    auto target = read_spec<NotificationTarget>(operation, s.column_text(0), s.column_text(1),
                                                notification_target_from_json);
    if (!target) return tl::unexpected(target.error());
    specs.notifications.push_back(std::move(*target));
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  return specs;
}

}  // namespace tide::coordinator::store
